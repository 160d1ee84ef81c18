"""Time a model of the official `hiera-transformer` package, run by *its own* interpreter.

The official package also imports as `hiera`, so it cannot share an environment with this project. The
profiler (`hiera/bench/throughput.py`, `--official-python PATH`) runs this file by path with that interpreter:
Python then puts this folder first on `sys.path`, which holds no `hiera` package, so `import hiera` finds the
official one. Keep this file free of imports from this project.

    python official.py '{"name": "hiera_base_224", "mode": "infer", "precision": "fp16", "attn": "math",
                               "batch": 64, "warmup": 10, "iters": 20, "trials": 5, "device": "cuda"}'

prints one JSON line: {"times": [seconds per step, per trial], "params": N, "version": ..., "attn_kernels": [...]}
or {"oom": true}.
The official attention calls `F.scaled_dot_product_attention` whenever torch has it; `attn: "math"` removes
that function for this process so it takes its explicit softmax path, as the paper's timings did.
"""

import contextlib
import json
import sys
import time


def main(spec: dict) -> dict:
    import torch
    import torch.nn.functional as F

    if spec["attn"] == "math" and hasattr(F, "scaled_dot_product_attention"):
        del F.scaled_dot_product_attention
    import hiera  # the official package

    device = torch.device(spec["device"])
    try:  # initialise on the device (seconds per large model on the host), else on the host
        with device:
            model = getattr(hiera, spec["name"])(pretrained=False)
    except Exception:  # noqa: BLE001 - only a speed-up
        model = getattr(hiera, spec["name"])(pretrained=False)
    model = model.to(device)
    params = sum(p.numel() for p in model.parameters())
    size = (3, 16, 224, 224) if "16x224" in spec["name"] else (3, 224, 224)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(spec["precision"])
    amp = (lambda: torch.autocast(device.type, dtype=dtype)) if dtype else contextlib.nullcontext
    x = torch.randn(spec["batch"], *size, device=device)
    mae = spec["name"].startswith("mae_")
    if spec["mode"] == "infer":
        model.eval()

        def step():
            with torch.inference_mode(), amp():
                model(x, mask_ratio=spec["mask_ratio"]) if mae else model(x)
    else:
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        scaler = torch.amp.GradScaler(device.type, enabled=spec["precision"] == "fp16")
        target = torch.randint(0, 1000 if len(size) == 3 else 400, (spec["batch"],), device=device)

        def step():
            with amp():
                if mae:
                    loss = model(x, mask_ratio=spec["mask_ratio"])[0]
                else:  # in train mode the official head returns logits (softmax only in eval)
                    loss = F.cross_entropy(model(x), target)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            opt.zero_grad(set_to_none=True)

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    try:
        for _ in range(spec["warmup"]):
            step()
        sync()
        times = []
        for _ in range(spec["trials"]):
            start = time.perf_counter()
            for _ in range(spec["iters"]):
                step()
            sync()
            times.append((time.perf_counter() - start) / spec["iters"])
    except RuntimeError as err:  # torch.OutOfMemoryError is a RuntimeError
        if "out of memory" in str(err).lower():
            return {"oom": True}
        raise
    # The attention kernels that ran (this folder's kernels.py imports nothing from the project; it is found
    # because Python puts this script's folder first on sys.path).
    from kernels import attention_kernels

    return {
        "times": times,
        "params": params,
        "version": getattr(hiera, "__version__", None),
        "attn_kernels": attention_kernels(step, spec["device"]),
    }


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
