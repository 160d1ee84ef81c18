"""Speed profiler: samples/s for every variant, in the paper's protocol and a modern one, beside timm peers.

Paper Table 1 times fp16 inference on an A100 at the best batch size with no fused attention (PyTorch 1.12;
paper App. A.3). The official `benchmarking.py` records none of its conditions and silently uses SDPA. Here
every measurement is a record (one JSON line) that carries its conditions, and the protocol is explicit:

    --protocol paper    fp16 autocast, math attention, no compile, batch-size sweep (best reported)
    --protocol modern   bf16 autocast, SDPA, torch.compile, batch-size sweep

Modes: `infer` (forward under inference_mode), `train` (forward + cross-entropy + backward + AdamW step) and
`mae` (the MAE pretraining step of `hiera/model/mae.py`: sparse encoder + decoder + loss, backward, step).
Timing: warm-up steps, then `trials` x `iters` timed steps with device synchronisation around each trial;
the record holds the median and the spread over trials. On CUDA out-of-memory the batch is halved and the
record says which batch was asked for and which ran; an out-of-memory that no smaller batch avoids, at any stage
(building or moving the model, inputs, compile, warm-up, timing, the kernel profile), is a record of its own
(`status: "oom"`, `oom_stage`) and the bench moves on to the next model. Records are appended whole and fsynced
(`hiera.files.append_jsonl`): a kill loses at most the variant being measured, and a torn last line is cut off by the
next append. Rows a-c of the ladder are also measured with
separate-and-pad off, so its overhead (included in the paper's speeds) is visible on its own. With `compile`,
every batch size gets a fresh `torch.compile(fullgraph=True)` with static shapes (falling back to graph breaks if
it must, and saying so); its first call is timed on its own (`compile_s`), graph breaks and recompiles counted.

Length (~750 lines): the timing protocol, its out-of-memory fallbacks and the three implementations it times
(ours, timm's, the official package's) are one measurement; each record's fields come from all of them, and the
record type itself lives in `hiera.records.SpeedRecord`.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F

from hiera import build_model
from hiera.bench.kernels import attention_kernels, backends
from hiera.env import REPO, at_root, collect_env
from hiera.files import append_jsonl
from hiera.model.config import ModelConfig
from hiera.model.flops import flop_count_analysis, model_stats
from hiera.model.ladder import SIZES
from hiera.model.layers.scope import scope
from hiera.model.mae import MaskedAutoencoder
from hiera.model.masking import default_mask_ratio, mae_q_pool, num_kept, random_mask
from hiera.model.registry import Variant, get_variant, list_variants
from hiera.records.speed import CONDITIONS, SpeedRecord

MODES = ("infer", "train", "mae")
# The autocast dtype of each precision, the training precisions' names (`hiera.train.config.PRECISIONS`); fp32: none
AUTOCAST_DTYPES = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
PROTOCOLS: dict[str, dict[str, Any]] = {
    "paper": dict(precision="fp16", attn="math", compile=False, sweep=True),
    "modern": dict(precision="bf16", attn="sdpa", compile=True, sweep=True),
}
# Dense tensor-core peaks (TFLOP/s) from the vendors' datasheets, for MFU; fp32 means plain (non-TF32) fp32.
PEAK_TFLOPS: dict[str, dict[str, float]] = {
    "H100": {"fp16": 989.0, "bf16": 989.0, "fp32": 67.0},  # SXM; the H200 shares the H100's arithmetic
    "H200": {"fp16": 989.0, "bf16": 989.0, "fp32": 67.0},
    "A100": {"fp16": 312.0, "bf16": 312.0, "fp32": 19.5},
    "V100": {"fp16": 125.0, "fp32": 15.7},
    "L4": {"fp16": 121.0, "bf16": 121.0, "fp32": 30.3},
    "A10": {"fp16": 125.0, "bf16": 125.0, "fp32": 31.2},
}


@dataclass(frozen=True)
class BenchConfig:
    mode: str = "infer"
    precision: str = "fp16" if torch.cuda.is_available() else "fp32"
    attn: str = "math"  # ModelConfig.attn_impl for our models; timm's fused-attention switch for peers
    compile: bool = False
    compile_backend: str = "inductor"  # torch.compile backend; the tests use "aot_eager" (same graphs, no codegen)
    batch_sizes: tuple[int, ...] = (64,)
    sweep: bool = False  # powers of two from 1 to max_batch (stopping at the first OOM); the best is flagged
    max_batch: int = 512
    warmup: int = 10
    iters: int = 20
    trials: int = 5
    device: str = "cuda" if torch.cuda.is_available() else "cpu"
    peers: bool = False
    sep_pad_overhead: bool = True
    mask_ratio: float | None = None  # MAE mode; default 0.6 for images, 0.9 for video
    peak_tflops: float | None = None
    protocol: str = "custom"
    official_python: str | None = None  # interpreter of an environment holding the official `hiera-transformer`

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode={self.mode!r} is not one of {', '.join(MODES)}")
        if self.precision not in AUTOCAST_DTYPES:
            raise ValueError(f"precision={self.precision!r} is not one of {', '.join(AUTOCAST_DTYPES)}")
        if self.attn not in ("math", "sdpa"):
            raise ValueError(f"attn={self.attn!r} is not one of 'math', 'sdpa'")
        if not self.device.startswith(("cpu", "cuda")):
            raise ValueError(f"device={self.device!r} must be cpu or cuda[:N]")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError("device='cuda' but no CUDA device is visible; use --device cpu")
        if self.device == "cpu" and self.precision == "fp16":
            raise ValueError("fp16 autocast is not supported on CPU; use --precision bf16 or fp32 there")
        if not self.sweep and (not self.batch_sizes or min(self.batch_sizes) < 1):
            raise ValueError(f"batch sizes must be >= 1, got {list(self.batch_sizes)}")
        if self.max_batch < 1 or self.warmup < 0 or self.iters < 1 or self.trials < 1:
            raise ValueError("need max_batch >= 1, warmup >= 0, iters >= 1, trials >= 1")


# ---- what runs ---------------------------------------------------------------------------------------------------
def timm_peer(variant: Variant) -> str | None:
    """timm's model at the same size and settings, if timm has one (timm has no video MViTv2)."""
    cfg = variant.config
    m = re.fullmatch(r"hiera_(\w+?)_(224|16x224)", variant.name)  # same names in timm (video: its constructor)
    if m and cfg.num_classes > 0:
        return variant.name
    if re.fullmatch(r"hiera_(small|base)_abswin_256", variant.name):  # beyond the paper: timm's abs-win models
        return variant.name
    m = re.fullmatch(r"mvitv2_(\w+)_224", variant.name)
    if m:
        return f"mvitv2_{m[1]}"
    m = re.fullmatch(r"hiera_(small|base|large)_224\.sup_mvitv2", variant.name)
    return f"mvitv2_{m[1]}" if m else None  # T and H ladders use Hiera depths, which MViTv2-T/H do not have


def build_timm(peer: str, attn: str, num_classes: int) -> torch.nn.Module:
    import timm
    from timm.layers import set_fused_attn

    set_fused_attn(attn == "sdpa")  # read when modules are built; timm's MViTv2 always uses math attention
    m = re.fullmatch(r"hiera_(\w+)_16x224", peer)
    if m:  # timm registers no video Hiera; its constructor builds the official 16x224 model
        from timm.models.hiera import Hiera

        size = SIZES[m[1]]
        return Hiera(
            img_size=(16, 224, 224),
            embed_dim=size.embed_dim,
            num_heads=size.num_heads,
            stages=size.stages,
            q_stride=(1, 2, 2),
            mask_unit_size=(1, 8, 8),
            patch_kernel=(3, 7, 7),
            patch_stride=(2, 4, 4),
            patch_padding=(1, 3, 3),
            sep_pos_embed=True,
            num_classes=num_classes,
        )
    return timm.create_model(peer, pretrained=False, num_classes=num_classes)


def autocast(cfg: BenchConfig):
    dtype = AUTOCAST_DTYPES[cfg.precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=cfg.device.split(":")[0], dtype=dtype)


def make_step(model: torch.nn.Module, mcfg: ModelConfig, cfg: BenchConfig, batch: int) -> Callable[[], None]:
    """One timed unit of work for `cfg.mode` at `batch`, with its inputs already on the device."""

    device = torch.device(cfg.device)
    x = torch.randn(batch, mcfg.in_chans, *mcfg.input_size, device=device)
    if cfg.mode == "infer":
        model.eval()

        def infer_step() -> None:
            with torch.inference_mode(), autocast(cfg):
                model(x)

        return infer_step
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.precision == "fp16")
    classes = max(mcfg.num_classes, 1)
    target = torch.randint(0, classes, (batch,), device=device)
    ratio = cfg.mask_ratio if cfg.mask_ratio is not None else default_mask_ratio(mcfg)
    generator = torch.Generator(device=device).manual_seed(0)
    keep = num_kept(math.prod(mcfg.mask_unit_grid), ratio)

    def step() -> None:
        with autocast(cfg):
            if cfg.mode == "mae":
                # A fresh mask every step, drawn outside the model (a compiled model then traces no generator and
                # knows the kept-unit count K while tracing) but inside the timed step, as the MAE's own draw was.
                mask = random_mask(mcfg, batch, ratio, generator, device)
                loss = model(x, mask=mask, num_kept=keep)[0]
            else:
                loss = F.cross_entropy(model(x), target)
        with scope("backward"):  # profiler ranges for `--breakdown`; no-ops in a timed step
            scaler.scale(loss).backward()
        with scope("optimizer"):
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)

    return step


def time_step(step: Callable[[], None], cfg: BenchConfig, warmup: int | None = None) -> list[float]:
    """Seconds per step for each trial (median over `iters` steps is their mean: sync only around a trial).

    `warmup`: untimed steps first (default `cfg.warmup`; fewer when the caller already ran the first step)."""
    cuda = cfg.device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    with stage("warmup"):
        for _ in range(cfg.warmup if warmup is None else warmup):
            step()
        sync()
    times = []
    with stage("timing"):
        for _ in range(cfg.trials):
            start = time.perf_counter()
            for _ in range(cfg.iters):
                step()
            sync()
            times.append((time.perf_counter() - start) / cfg.iters)
    return times


def is_oom(err: BaseException) -> bool:
    return isinstance(err, torch.OutOfMemoryError) or "out of memory" in str(err).lower()


@contextlib.contextmanager
def stage(name: str):
    """Tag an out-of-memory raised inside with the stage it happened in (`err.bench_stage`, the innermost wins), for
    the record and for the CLI's one-line error."""
    try:
        yield
    except BaseException as err:
        if is_oom(err) and getattr(err, "bench_stage", None) is None:
            try:
                err.bench_stage = name  # type: ignore[attr-defined]
            except AttributeError:  # an exception type without a __dict__: the stage stays unknown
                pass
        raise


def _free(cfg: BenchConfig) -> None:
    """Give cached blocks back after an out-of-memory, so the next batch or model starts from a clean allocator."""
    if cfg.device.startswith("cuda"):
        torch.cuda.empty_cache()


# ---- records -------------------------------------------------------------------------------------------------------
def peak_for(device_name: str, precision: str, given: float | None) -> float | None:
    if given is not None:
        return given
    for key, peaks in PEAK_TFLOPS.items():
        if key in device_name:
            return peaks.get(precision)
    return None


def driver_version() -> str | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None


def bench_env(cfg: BenchConfig) -> dict[str, Any]:
    env = collect_env()
    if cfg.device.startswith("cuda"):
        env["device"] = torch.cuda.get_device_name(torch.device(cfg.device))
        env["driver"] = driver_version()
    else:
        env["device"] = f"cpu ({env['device']})"
        env["driver"] = None
    return env


def build_on(model_fn: Callable[[], torch.nn.Module], device: str) -> torch.nn.Module:
    """The model, initialised on `device` where possible: initialising an L or H model on the host and copying it
    takes seconds per model, which a short GPU loan cannot spare. Falls back to building on the host."""
    if device.startswith("cuda"):
        try:
            with torch.device(device):
                return model_fn()
        except Exception:  # noqa: BLE001 - building on the device is only a speed-up
            torch.cuda.empty_cache()
    return model_fn().to(device)


def measure(
    model_fn: Callable[[], torch.nn.Module], mcfg: ModelConfig, cfg: BenchConfig, gmacs: float
) -> list[dict[str, Any]]:
    """Time one model at every batch size of `cfg` (or the sweep).

    After timing a batch size, one more step runs under the profiler to record the attention kernels that actually
    ran (`attn_kernels`, `attn_backends`; `hiera/bench/kernels.py`), and on CUDA the peak memory of the timed steps
    (`peak_mem_gib`).

    With `cfg.compile` each batch size starts from a clean dynamo cache (`torch._dynamo.reset()`: otherwise every
    new shape or model adds a cache entry, and past `recompile_limit` dynamo silently runs eager) and compiles with
    static shapes and `fullgraph=True`; on a graph break it compiles again without `fullgraph`. The rows then say
    whether fullgraph held (`compile_fullgraph`), how many graph breaks dynamo took (`graph_breaks`: graphs - 1),
    how many graphs it compiled after the first call (`recompiles`, warm-up and timed steps) and how much longer the
    first call took than a timed step (`compile_s`). Uncompiled rows hold null there.
    """
    try:
        with stage("build"):
            model = build_on(model_fn, cfg.device)
    except (RuntimeError, torch.OutOfMemoryError) as err:
        if not is_oom(err):
            raise
        # The model itself does not fit (an H model beside a leaked one, a small GPU): one record says so, and the
        # bench goes on with the next model instead of losing every later variant.
        del err
        _free(cfg)
        return [{**oom_row(batch_plan(cfg)[0], "build", gmacs, None), **dict.fromkeys(MEASURE_FIELDS)}]
    params = sum(p.numel() for p in model.parameters())
    cuda = cfg.device.startswith("cuda")
    found: dict[int, dict[str, Any]] = {}

    def timer(batch: int) -> list[float]:
        if cuda:
            torch.cuda.reset_peak_memory_stats(cfg.device)
        if cfg.compile:
            step, info, times = _compiled_run(model, mcfg, cfg, batch)
        else:
            with stage("inputs"):
                step, info = make_step(model, mcfg, cfg, batch), dict.fromkeys(COMPILE_FIELDS)
            times = time_step(step, cfg)
        info["peak_mem_gib"] = torch.cuda.max_memory_allocated(cfg.device) / 2**30 if cuda else None
        with stage("profile"):
            kernels = attention_kernels(step, cfg.device)
        found[batch] = {**info, "attn_kernels": kernels, "attn_backends": backends(kernels)}
        return times

    rows = measure_batches(timer, cfg, gmacs, params)
    return [{**r, **found.get(r["batch_size"], dict.fromkeys(MEASURE_FIELDS))} for r in rows]


def _compiled_run(
    model: torch.nn.Module, mcfg: ModelConfig, cfg: BenchConfig, batch: int
) -> tuple[Callable[[], None], dict[str, Any], list[float]]:
    """Compile (fullgraph if dynamo can), time, and say how compilation went: (step, compile fields, times)."""
    from torch._dynamo.exc import Unsupported
    from torch._dynamo.utils import counters

    sync = torch.cuda.synchronize if cfg.device.startswith("cuda") else (lambda: None)
    torch._dynamo.reset()
    for fullgraph in (True, False):
        with stage("inputs"):
            # torch types compile() as returning a callable; of a module it is a module (an OptimizedModule)
            compiled = torch.compile(model, fullgraph=fullgraph, dynamic=False, backend=cfg.compile_backend)
            step = make_step(cast(torch.nn.Module, compiled), mcfg, cfg, batch)
        graphs = counters["stats"]["unique_graphs"]
        start = time.perf_counter()
        try:
            with stage("compile"):
                step()  # the first call traces and compiles
        except Unsupported:  # raised by fullgraph=True where dynamo would break the graph
            if not fullgraph:
                raise
            torch._dynamo.reset()
            continue
        sync()
        first = time.perf_counter() - start
        break
    # Graph breaks as `torch._dynamo.explain` counts them: graphs compiled by the first call, minus one
    # (dynamo's own graph_break counter counts a break again when it retraces the frame that holds it).
    breaks, graphs = max(counters["stats"]["unique_graphs"] - graphs - 1, 0), counters["stats"]["unique_graphs"]
    times = time_step(step, cfg, warmup=max(cfg.warmup - 1, 0))  # the first call was a warm-up step
    recompiles = counters["stats"]["unique_graphs"] - graphs
    info = dict(
        compile_fullgraph=fullgraph,
        graph_breaks=breaks,
        recompiles=recompiles,
        compile_s=max(first - statistics.median(times), 0.0),
    )
    return step, info, times


# Record fields of a compiled run (`measure`); null when not compiled.
COMPILE_FIELDS = ("compile_fullgraph", "graph_breaks", "recompiles", "compile_s")
# Every field `measure` adds to a row (null when that batch did not run).
MEASURE_FIELDS = (*COMPILE_FIELDS, "peak_mem_gib", "attn_kernels", "attn_backends")


def batch_plan(cfg: BenchConfig) -> list[int]:
    """The batch sizes a model is timed at: the sweep's powers of two up to `max_batch`, or `batch_sizes`."""
    if cfg.sweep:
        return [2**i for i in range(cfg.max_batch.bit_length()) if 2**i <= cfg.max_batch]
    return list(cfg.batch_sizes)


def oom_row(requested: int, where: str, gmacs: float, params: int | None) -> dict[str, Any]:
    """The row of a model that ran out of memory at batch `requested` (or before any batch: stage `build`)."""
    return dict(
        requested_batch=requested,
        batch_size=None,
        oom=True,
        status="oom",
        oom_stage=where,
        params_m=params and params / 1e6,
        gmacs=gmacs,
        best_batch=False,
    )


def measure_batches(
    timer: Callable[[int], list[float]], cfg: BenchConfig, gmacs: float, params: int | None
) -> list[dict[str, Any]]:
    """Rows for every batch size; on out-of-memory a fixed batch is halved until it fits (the record keeps the
    batch asked for and the one that ran, and `oom_stage` where the larger one failed) and a sweep stops. A batch
    that does not fit even so is an `oom` row with its stage, and the model's later batches are skipped."""
    rows: list[dict[str, Any]] = []
    for requested in batch_plan(cfg):
        batch, failed_at = requested, None
        while True:
            try:
                times = timer(batch)
                break
            except (RuntimeError, torch.OutOfMemoryError) as err:
                if not is_oom(err):
                    raise
                failed_at = failed_at or getattr(err, "bench_stage", None) or "timing"
                del err  # its traceback holds the step's tensors: drop it before freeing the cache
                _free(cfg)
                if cfg.sweep or batch == 1:
                    times = None
                    break
                batch //= 2
        if times is None:  # the sweep stops at the first batch that does not fit
            assert failed_at is not None  # set where the out-of-memory error left `times` None
            rows.append(oom_row(requested, failed_at, gmacs, params))
            break
        rates = sorted(batch / t for t in times)
        flops_per_sample = 2 * gmacs * 1e9 * (1 if cfg.mode == "infer" else 3)  # backward ~ 2x forward
        rate = statistics.median(rates)
        rows.append(
            dict(
                requested_batch=requested,
                batch_size=batch,
                oom=batch != requested,
                status="ok",
                oom_stage=failed_at,
                samples_per_s=rate,
                samples_per_s_min=rates[0],
                samples_per_s_max=rates[-1],
                samples_per_s_iqr=_iqr(rates),
                step_ms=1e3 * statistics.median(times),
                params_m=params and params / 1e6,
                gmacs=gmacs,
                tflops=flops_per_sample * rate / 1e12,
            )
        )
    ok = [r for r in rows if r.get("samples_per_s")]
    best = max(ok, key=lambda r: r["samples_per_s"]) if ok else None
    for r in rows:
        r["best_batch"] = r is best
    return rows


def official_peer(variant: Variant, mode: str) -> str | None:
    """The official package's factory for the Hiera end (its MAE model in `mae` mode)."""
    m = re.fullmatch(r"(?:mae_)?hiera_(\w+?)_(224|16x224)", variant.name)
    if not m or (variant.name.startswith("mae_") and mode != "mae"):
        return None
    return f"{'mae_' if mode == 'mae' else ''}hiera_{m[1]}_{m[2]}"


def measure_official(name: str, cfg: BenchConfig, gmacs: float, default_ratio: float) -> list[dict[str, Any]]:
    """Time the official package's `name` in its own interpreter (`cfg.official_python`), batch by batch."""
    script = Path(__file__).with_name("official.py")
    found: dict[str, Any] = {}

    def timer(batch: int) -> list[float]:
        ratio = cfg.mask_ratio if cfg.mask_ratio is not None else default_ratio
        spec = dict(
            name=name,
            mode=cfg.mode,
            precision=cfg.precision,
            attn=cfg.attn,
            batch=batch,
            warmup=cfg.warmup,
            iters=cfg.iters,
            trials=cfg.trials,
            device=cfg.device,
            mask_ratio=ratio,
        )
        assert cfg.official_python is not None  # only called with an official environment
        out = subprocess.run(
            [cfg.official_python, str(script), json.dumps(spec)], capture_output=True, text=True, cwd=script.parent
        )
        if out.returncode != 0:
            raise ValueError(f"official package run of {name} failed: {out.stderr.strip().splitlines()[-1:]}")
        result = json.loads(out.stdout.strip().splitlines()[-1])
        if result.get("oom"):
            raise torch.OutOfMemoryError("out of memory in the official run")
        found.update(result)
        return result["times"]

    rows = measure_batches(timer, cfg, gmacs, None)
    for r in rows:
        r["params_m"] = found.get("params", 0) / 1e6 or None
        r["official_version"] = found.get("version")
        if r.get("samples_per_s"):
            r["attn_kernels"] = found.get("attn_kernels")
            r["attn_backends"] = backends(found.get("attn_kernels") or [])
    return rows


def _iqr(values: list[float]) -> float:
    if len(values) < 2:
        return 0.0
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[2] - q[0]


def variant_models(variant: Variant, cfg: BenchConfig, overrides: dict[str, Any]):
    """(impl, label, separate-and-pad state, model factory, model config, GMACs) for a variant and its peers."""

    mcfg = variant.config.replace(attn_impl=cfg.attn, **overrides)
    if cfg.mode == "mae":
        mcfg = mcfg.replace(q_pool=mae_q_pool(mcfg.q_pool))
        if not mcfg.uses_mask_units:
            raise ValueError(f"{variant.name} cannot encode sparsely; --mode mae needs an MAE step of the ladder")
        yield "hiera-study", variant.name, _sep_state(mcfg), (lambda c=mcfg: MaskedAutoencoder(c)), mcfg, None
        official = official_peer(variant, cfg.mode) if cfg.official_python and not overrides else None
        if official:
            yield "official", official, None, None, mcfg, None
        return
    # The committed counts (results/variants/model_stats.json) when they hold this config: fvcore traces a forward
    # pass on the CPU (~15 s for a video L model), which would dominate a short GPU pass.
    gmacs = model_stats(mcfg)[1]
    yield "hiera-study", variant.name, _sep_state(mcfg), (lambda c=mcfg: build_model(c)), mcfg, gmacs
    if cfg.sep_pad_overhead and mcfg.separate_and_pad and mcfg.pool_kernel == "overlap":
        dense = mcfg.replace(separate_and_pad=False)
        yield "hiera-study", variant.name, "off", (lambda c=dense: build_model(c)), dense, model_stats(dense)[1]
    peer = timm_peer(variant) if cfg.peers and not overrides else None
    if peer:
        yield "timm", peer, None, (lambda p=peer, n=mcfg.num_classes: build_timm(p, cfg.attn, n)), mcfg, gmacs
    official = official_peer(variant, cfg.mode) if cfg.official_python and not overrides else None
    if official:
        yield "official", official, None, None, mcfg, gmacs


def _sep_state(mcfg: ModelConfig) -> str | None:
    if mcfg.pool_kernel != "overlap":
        return None  # kernel = stride: pooling stays inside units either way
    return "on" if mcfg.separate_and_pad else "off"


def run_variant(name: str, cfg: BenchConfig, overrides: dict[str, Any], env: dict[str, Any]) -> list[SpeedRecord]:
    variant = get_variant(name)
    records = []
    mae_count = None
    for impl, label, sep_pad, model_fn, mcfg, gmacs in variant_models(variant, cfg, overrides):
        if gmacs is None:
            mae_count = mae_count or mae_gmacs(mcfg, cfg)
            gmacs = mae_count
        rows = (
            measure_official(label, cfg, gmacs, default_mask_ratio(mcfg))
            if impl == "official"
            else measure(model_fn, mcfg, cfg, gmacs)
        )
        for row in rows:
            peak = peak_for(env["device"], cfg.precision, cfg.peak_tflops)
            records.append(
                {
                    "variant": variant.name,
                    "step": variant.step,
                    "size_label": variant.size_label,
                    "modality": variant.modality,
                    "impl": impl,
                    "model": label,
                    "separate_and_pad": sep_pad,
                    "mode": cfg.mode,
                    "precision": cfg.precision,
                    "attn": cfg.attn,
                    "compile": cfg.compile,
                    "protocol": cfg.protocol,
                    "input_size": list(mcfg.input_size),
                    "overrides": {k: _jsonable(v) for k, v in overrides.items()},
                    **row,
                    "warmup": cfg.warmup,
                    "iters": cfg.iters,
                    "trials": cfg.trials,
                    "peak_tflops": peak,
                    "mfu": row["tflops"] / peak if peak and row.get("tflops") else None,
                    **{k: env[k] for k in CONDITIONS},
                }
            )
    add_ratios(records)
    return [SpeedRecord(**r) for r in records]  # an unknown or missing field fails here, not in a table


def mae_gmacs(mcfg: ModelConfig, cfg: BenchConfig) -> float:
    """GMACs of one MAE forward (sparse encoder + decoder) per sample, at the benchmark's mask ratio."""

    FlopCountAnalysis = flop_count_analysis()  # noqa: N806 - the class, under its own name

    model = MaskedAutoencoder(mcfg.replace(attn_impl="math")).eval()
    ratio = cfg.mask_ratio if cfg.mask_ratio is not None else default_mask_ratio(mcfg)
    mask = random_mask(mcfg, 1, ratio, torch.Generator().manual_seed(0))

    class Wrapped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.mae = model

        def forward(self, x, keep):
            return self.mae(x, mask=keep)[0]

    with torch.no_grad():
        analysis = FlopCountAnalysis(Wrapped(), (torch.zeros(1, mcfg.in_chans, *mcfg.input_size), mask))
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        return analysis.total() / 1e9


def add_ratios(records: list[dict]) -> None:
    """On our records, from the same run and batch size: samples/s over timm's (`ratio_vs_peer`), over the
    official package's (`ratio_vs_official`), and dense over separate-and-pad (`sep_pad_overhead`)."""
    peers = {r["batch_size"]: r for r in records if r["impl"] == "timm" and r.get("samples_per_s")}
    officials = {r["batch_size"]: r for r in records if r["impl"] == "official" and r.get("samples_per_s")}
    dense = {r["batch_size"]: r for r in records if r["separate_and_pad"] == "off" and r["impl"] == "hiera-study"}
    for r in records:
        if r["impl"] != "hiera-study" or not r.get("samples_per_s"):
            continue
        peer, official = peers.get(r["batch_size"]), officials.get(r["batch_size"])
        r["ratio_vs_peer"] = r["samples_per_s"] / peer["samples_per_s"] if peer else None
        r["ratio_vs_official"] = r["samples_per_s"] / official["samples_per_s"] if official else None
        other = dense.get(r["batch_size"])
        r["sep_pad_overhead"] = (
            other["samples_per_s"] / r["samples_per_s"]
            if r["separate_and_pad"] == "on" and other and other.get("samples_per_s")
            else None
        )


def _jsonable(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def record_path(out_dir: Path, cfg: BenchConfig, env: dict[str, Any]) -> Path:
    """timm-style file name that encodes the conditions: bench-<mode>-<precision>-<attn>[-compile]-<device>-pt<v>."""
    device = re.sub(r"[^a-z0-9]+", "_", env["device"].lower()).strip("_")
    torch_v = env["torch"].split("+")[0]
    parts = (
        ["bench", cfg.mode, cfg.precision, cfg.attn] + (["compile"] if cfg.compile else []) + [device, f"pt{torch_v}"]
    )
    return out_dir / ("-".join(parts) + ".jsonl")


def expand_patterns(patterns: Iterable[str], mode: str, progress: Callable[[str], None] = print) -> list[str]:
    """Registered names for names and globs, in the order given, each once. In `mae` mode a glob skips the
    variants that cannot mask (the supervised baseline), saying so; a plain name is kept (and fails later)."""
    names: list[str] = []
    for pattern in patterns:
        if any(c in pattern for c in "*?["):
            matched = [v.name for v in list_variants(pattern)]
            if not matched:
                raise ValueError(f"no variant matches {pattern!r}; `hiera-study variants` lists them")
            if mode == "mae":  # a glob over a ladder skips the supervised baseline, which cannot mask
                skipped = [n for n in matched if not get_variant(n).config.uses_mask_units]
                matched = [n for n in matched if n not in skipped]
                if skipped:
                    progress(f"skipping {', '.join(skipped)}: dense by design, no MAE step")
        else:
            matched = [get_variant(pattern).name]
        names += [n for n in matched if n not in names]
    return names


def run(
    patterns: Iterable[str],
    cfg: BenchConfig,
    overrides: dict[str, Any] | None = None,
    out_dir: Path | None = None,
    isolate: bool = False,
    progress: Callable[[str], None] = print,
    path: Path | None = None,
) -> Path:
    """Benchmark every variant matching `patterns`; append records to the conditions-named JSONL file under
    `out_dir` (default results/speed/), or to `path` when given (the demo keeps its profile in a file of its own)."""
    overrides = overrides or {}
    names = expand_patterns(patterns, cfg.mode, progress)
    env = bench_env(cfg)
    path = Path(path) if path is not None else record_path(out_dir or at_root("results", "speed"), cfg, env)
    path.parent.mkdir(parents=True, exist_ok=True)
    for name in names:
        progress(f"bench {name} ({cfg.mode}, {cfg.precision}, {cfg.attn}{', compile' if cfg.compile else ''})")
        records = run_isolated(name, cfg, overrides) if isolate else run_variant(name, cfg, overrides, env)
        # One write per variant, fsynced, after cutting off a line a killed earlier run tore: an interrupted run
        # loses only the variant it was measuring, and concurrent benches into the same file queue.
        append_jsonl(path, [r.to_json() for r in records])
        for r in records:
            if r.status == "oom" and r.batch_size is None:
                progress(
                    f"  {r.impl:<11} {r.model:<36} out of memory at batch {r.requested_batch} "
                    f"({r.oom_stage}); recorded, moving on"
                )
            if r.samples_per_s:
                extra = f"  x{r.ratio_vs_peer:.2f} vs timm" if r.ratio_vs_peer else ""
                progress(
                    f"  {r.impl:<11} {r.model:<36} sep_pad={r.separate_and_pad or '-':<3} "
                    f"bs {r.batch_size:>4}  {r.samples_per_s:9.1f}/s{extra}"
                )
    return path


def run_isolated(name: str, cfg: BenchConfig, overrides: dict[str, Any]) -> list[SpeedRecord]:
    """Measure one variant in a fresh Python process, so it cannot warm or fragment memory for the next."""
    job = json.dumps({"name": name, "cfg": asdict(cfg), "overrides": overrides})
    out = subprocess.run(
        [sys.executable, "-m", "hiera.bench.throughput", job], capture_output=True, text=True, cwd=REPO
    )
    if out.returncode != 0:
        raise RuntimeError(f"isolated benchmark of {name} failed: {out.stderr.strip().splitlines()[-1:]}")
    return [
        SpeedRecord.from_json(r, f"isolated benchmark of {name}")
        for r in json.loads(out.stdout.strip().splitlines()[-1])
    ]


def _child(job: str) -> None:
    spec = json.loads(job)
    fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in spec["cfg"].items()}
    cfg = BenchConfig(**fields)
    overrides = ModelConfig.from_dict({**get_variant(spec["name"]).config.to_dict(), **spec["overrides"]})
    changed = {k: getattr(overrides, k) for k in spec["overrides"]}
    print(json.dumps([r.to_json() for r in run_variant(spec["name"], cfg, changed, bench_env(cfg))]))


def protocol_config(protocol: str | None, **given: Any) -> BenchConfig:
    """A BenchConfig from a preset, with explicitly given fields winning."""
    if protocol and protocol not in PROTOCOLS:
        raise ValueError(f"protocol={protocol!r} is not one of {', '.join(PROTOCOLS)}")
    base = dict(PROTOCOLS[protocol]) if protocol else {}
    base.update({k: v for k, v in given.items() if v is not None})
    return replace(BenchConfig(), protocol=protocol or "custom", **base)


if __name__ == "__main__":
    _child(sys.argv[1])
