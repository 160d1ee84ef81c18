"""Named profiler scopes over the model's op families, for `hiera-study bench --breakdown`.

Paper Table 1 times each simplification as a whole; the breakdown says *where* a step's speed-up comes from
(patch embedding, qkv/proj linears, attention core, q pooling, KV pooling, relative-position bias, norms, MLP,
layout copies, skip path, head). The model marks those regions with `scope(family)`. Scopes are off unless the
breakdown turns them on (`scopes_on()`), so timed runs carry no profiler overhead; under `torch.compile` an
off scope is a `nullcontext`, which traces without a graph break.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

# Every family a scope may name, in the order tables and figures show them ("skip": the skip path and the residual
# adds; "layout": token reordering, unit gathers and the reshapes around attention).
FAMILIES = (
    "patch_embed",
    "linear",
    "attention",
    "q_pool",
    "kv_pool",
    "rel_pos",
    "norm",
    "mlp",
    "skip",
    "layout",
    "head",
)
# The parts of a training step around the model (`hiera.bench.make_step` marks them).
STEP_FAMILIES = ("backward", "optimizer")
PREFIX = "hiera::"
_on = False


def scope(family: str) -> contextlib.AbstractContextManager:
    """A profiler range `hiera::<family>` while scopes are on, else a no-op."""
    if not _on:
        return contextlib.nullcontext()
    if family not in FAMILIES + STEP_FAMILIES:
        raise ValueError(f"unknown op family {family!r}; one of {', '.join(FAMILIES + STEP_FAMILIES)}")
    return torch.profiler.record_function(PREFIX + family)


@contextlib.contextmanager
def scopes_on() -> Iterator[None]:
    """Turn the scopes on for the duration (the breakdown's profiled steps only)."""
    global _on
    previous, _on = _on, True
    try:
        yield
    finally:
        _on = previous
