"""Which attention kernel actually ran: SDPA backends read from the profiler, not from what was requested.

Paper App. A.3 times "no fused attention"; today `scaled_dot_product_attention` picks a backend per call from
dtype, head dim, mask, layout and device (flash, memory-efficient, cuDNN, math, CPU flash), and silently falls
back to the math path when it must — e.g. for the 5-D `[B, heads, units, tokens, d]` tensors that the official
Hiera release and timm pass in mask-unit attention. So every speed record names the backends that were
dispatched, per attention shape, from the aten op names the profiler saw (and, on CUDA, the device kernels
under them).

This file imports nothing from the project: `hiera/bench/official.py`, which runs in the official package's own
interpreter, imports it by path too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

# aten op (what SDPA dispatched to) -> backend name used in the records.
BACKENDS = {
    "aten::_scaled_dot_product_flash_attention": "flash",
    "aten::_scaled_dot_product_flash_attention_for_cpu": "cpu_flash",
    "aten::_scaled_dot_product_efficient_attention": "efficient",
    "aten::_scaled_dot_product_cudnn_attention": "cudnn",
    "aten::_scaled_dot_product_attention_math": "math",
    "aten::_scaled_dot_product_attention_math_for_mps": "math",
    "aten::_scaled_dot_product_fused_attention_overrideable": "overrideable",
}
# No SDPA call at all: attention ran as explicit matmul + softmax (the paper's protocol, or a compiler's
# decomposition of it).
EXPLICIT = "explicit"


def attention_kernels(step: Callable[[], Any], device: str) -> list[dict[str, Any]]:
    """Run `step` once under the profiler; one entry per (backend, q shape, k shape, mask shape):
    `{"backend", "op", "q", "k", "mask", "calls", "kernels"}` (forward calls only; `kernels`: the CUDA kernel
    names launched under that op, empty on CPU). Empty when no SDPA backend was dispatched."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])
    with profile(activities=activities, record_shapes=True) as prof:
        step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
    found: dict[tuple, dict[str, Any]] = {}
    for event in prof.events():
        backend = BACKENDS.get(event.name)
        if backend is None:
            continue
        shapes = [list(s) for s in event.input_shapes] if event.input_shapes else []
        q, k = (shapes + [[], []])[:2]
        # The additive mask is the first tensor input after q, k, v (its position differs between the backends'
        # signatures; scalars such as dropout_p have an empty shape).
        mask = next((s for s in shapes[3:] if s), None)
        key = (backend, tuple(q), tuple(k), tuple(mask or ()))
        entry = found.setdefault(
            key, {"backend": backend, "op": event.name, "q": q, "k": k, "mask": mask, "calls": 0, "kernels": []}
        )
        entry["calls"] += 1
        for kernel in getattr(event, "kernels", []) or []:
            name = kernel.name if len(kernel.name) <= 120 else kernel.name[:117] + "..."
            if name not in entry["kernels"]:
                entry["kernels"].append(name)
    return sorted(found.values(), key=lambda e: (e["backend"], e["q"], e["k"]))


def backends(kernels: list[dict[str, Any]]) -> list[str]:
    """The distinct backends of `attention_kernels` output, or `["explicit"]` when none was dispatched."""
    return sorted({k["backend"] for k in kernels}) or [EXPLICIT]
