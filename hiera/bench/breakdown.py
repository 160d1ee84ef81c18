"""Where one step's time goes: per op family, for every step of the Table-1 ladder (`hiera-study bench --breakdown`).

Paper Table 1 (§3.2, "Simplifying MViTv2") reports one throughput per simplification: how much faster each row
is, not why. This module profiles a variant's step with the model's op families marked (`hiera/model/layers/scope.py`:
patch embedding, qkv/proj linears, attention core, q pooling, KV pooling, relative-position bias, norms, MLP,
skip path, layout copies, head) and attributes every profiled op's *self* time to the innermost family range
around it, so a row's speed-up can be read off as "rel-pos bias gone", "conv pools became max pools", ... per
row. Ops under no range count as `other` (the loss, the MAE decoder's glue, ...); in `train` / `mae` mode the
autograd backward is `backward` and the optimizer step (with gradient scaling and zeroing) is `optimizer`.

Why self time of the innermost range: scopes nest (a q-pool's LayerNorm is inside `q_pool`, not `norm`) and an
op's total time includes its children, so summing totals would count time twice; self times partition the
profiled time exactly. The `hiera::*` range events themselves are left out of the families (their self time is
Python between ops plus the profiler's own bookkeeping; an empty range, e.g. the KV-pool range of row f, which
has no pool, must read 0); it is reported on its own as `range_self_ms`. On CUDA the time is the kernels' device
time, attached by the profiler to the op that launched them (`self_device_time_total`).

The profiler slows a step down, so each record also holds the plain wall-clock step time, measured with scopes
off and no profiler (`wall_step_ms`), beside the wall time of the profiled steps (`profiled_step_ms`).
Records: one JSON line per variant in `results/breakdown/breakdown-<mode>-<precision>-<attn>-<device>-pt<torch>.jsonl`
(schema `hiera-study/breakdown/1`, results/README.md), appended whole and fsynced as each variant finishes
(`hiera.files.append_jsonl`: a torn last line of a killed run is cut off by the next append). A variant that runs
out of memory at any stage is a record with `status: "oom"` and its `oom_stage` (the loaders skip it: it has no
times), and the run goes on with the next variant.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch.autograd import DeviceType

from hiera.bench.throughput import (
    BenchConfig,
    bench_env,
    build_on,
    expand_patterns,
    is_oom,
    make_step,
    record_path,
    stage,
    time_step,
    variant_models,
)
from hiera.env import at_root
from hiera.files import append_jsonl
from hiera.model.layers.scope import PREFIX, scopes_on
from hiera.model.registry import get_variant
from hiera.records.speed import BREAKDOWN_FAMILIES, CONDITIONS, TIME_SOURCES, BreakdownRecord

BREAKDOWN_DIR = ("results", "breakdown")  # under the project root
PROFILED_STEPS = 3
# A breakdown explains where time goes; it needs fewer timed steps than a speed record (bench's 10 + 5 x 20), and
# the profiled steps come on top. The CLI uses these unless --warmup / --iters / --trials are given.
DEFAULTS = dict(warmup=3, iters=5, trials=3)
# The autograd engine names every backward node's range so; on CUDA the backward runs on the engine's device
# thread, outside our `hiera::backward` range, and is recognised by this ancestor instead.
AUTOGRAD = "autograd::engine::evaluate_function"


# ---- the step ----------------------------------------------------------------------------------------------------
def wall_step_ms(step: Callable[[], None], cfg: BenchConfig) -> float:
    """Median over `cfg.trials` of the mean step time over `cfg.iters` steps, scopes off, no profiler (ms)."""
    return 1e3 * statistics.median(time_step(step, cfg))


def _sync(cfg: BenchConfig) -> None:
    if cfg.device.startswith("cuda"):
        torch.cuda.synchronize(torch.device(cfg.device))


# ---- attribution -------------------------------------------------------------------------------------------------
def family_of(event: Any) -> str:
    """The family of the innermost `hiera::<family>` range around a profiler event; `backward` for ops the autograd
    engine ran outside any range (CUDA's device threads); `other` for the rest."""
    backward = False
    node = event.cpu_parent
    while node is not None:
        if node.name.startswith(PREFIX):
            family = node.name[len(PREFIX) :]
            if family not in BREAKDOWN_FAMILIES:
                raise ValueError(f"profiler range {node.name!r} names no op family ({', '.join(BREAKDOWN_FAMILIES)})")
            return family
        backward = backward or node.name.startswith(AUTOGRAD)
        node = node.cpu_parent
    return "backward" if backward or event.name.startswith(AUTOGRAD) else "other"


def attribute(events: Iterable[Any], device: bool) -> tuple[dict[str, float], dict[str, float], float]:
    """Self time per family, in microseconds, over all `events` (`prof.events()`).

    Returns (time per family, host self time per family, self time of the `hiera::*` range events themselves).
    With `device` (CUDA) the first is kernel time: each host op's own kernels (`self_device_time_total`); kernels
    the profiler could link to no host op go to `other`, so the families still sum to all kernel time. Without it
    the first two are the same host self times.
    """
    families = dict.fromkeys(BREAKDOWN_FAMILIES, 0.0)
    host = dict.fromkeys(BREAKDOWN_FAMILIES, 0.0)
    ranges = 0.0
    kernels = linked = 0.0
    for e in events:
        if e.device_type != DeviceType.CPU:
            # A kernel or memcpy, already charged to the op that launched it; summed only to find the unlinked
            # rest. The GPU-side copies of our ranges (`gpu_user_annotation`) span kernels and are not time of
            # their own (torch's own summary table skips them too).
            if not e.is_user_annotation and not e.name.startswith(PREFIX):
                kernels += e.self_device_time_total
            continue
        if e.name.startswith(PREFIX):
            ranges += e.self_cpu_time_total
            continue
        family = family_of(e)
        host[family] += e.self_cpu_time_total
        if device:
            own = e.self_device_time_total
            families[family] += own
            linked += own
    if not device:
        return dict(host), host, ranges
    families["other"] += max(0.0, kernels - linked)
    return families, host, ranges


def profile_steps(step: Callable[[], None], cfg: BenchConfig, steps: int) -> tuple[list[Any], float]:
    """Run `steps` steps under the profiler with the scopes on; (events, wall ms per profiled step)."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    if cfg.device.startswith("cuda"):
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    _sync(cfg)
    with scopes_on(), torch.profiler.profile(activities=activities) as prof:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        _sync(cfg)
        elapsed = time.perf_counter() - start
    return list(prof.events()), 1e3 * elapsed / steps


# ---- one variant -------------------------------------------------------------------------------------------------
def _ours(name: str, cfg: BenchConfig, overrides: dict[str, Any]):
    """Our model of `name` as bench builds it: the first `hiera-study` entry of `bench.variant_models`, the variant
    as registered. Rows mae, a-c keep separate-and-pad on, as the paper's speeds do; their dense `off` twin, which
    bench times beside them, is not asked for (the supervised baseline is dense, `off`, by design)."""
    lean = replace(cfg, peers=False, sep_pad_overhead=False, official_python=None)
    for impl, _, sep_pad, model_fn, mcfg, gmacs in variant_models(get_variant(name), lean, overrides):
        if impl == "hiera-study":
            return model_fn, mcfg, sep_pad, gmacs
    raise ValueError(f"{name}: bench builds no model of ours for it")  # not reached: ours always comes first


def check_config(cfg: BenchConfig) -> None:
    """A breakdown profiles one eager step at one batch size; say so for settings that would mean otherwise."""
    if cfg.compile:
        raise ValueError("--breakdown profiles eager steps (compiled graphs have no op-family ranges); drop --compile")
    if cfg.sweep:
        raise ValueError("--breakdown profiles one batch size; drop --sweep and give --batch-size N")


def breakdown_variant(
    name: str,
    cfg: BenchConfig,
    overrides: dict[str, Any] | None = None,
    env: dict[str, Any] | None = None,
    steps: int = PROFILED_STEPS,
) -> BreakdownRecord:
    """The breakdown record of one variant at `cfg.batch_sizes[0]` (schema `hiera-study/breakdown/1`).

    Times are milliseconds per step, averaged over the `steps` profiled steps; `families` sum to `total_ms`.
    """
    check_config(cfg)
    if steps < 1:
        raise ValueError(f"profiled steps must be >= 1, got {steps}")
    overrides = overrides or {}
    env = env or bench_env(cfg)
    variant = get_variant(name)
    model_fn, mcfg, sep_pad, gmacs = _ours(name, cfg, overrides)
    batch = cfg.batch_sizes[0]
    with stage("build"):
        model = build_on(model_fn, cfg.device)
    with stage("inputs"):
        step = make_step(model, mcfg, cfg, batch)  # bench's step; the scopes mark backward and optimizer
    wall = wall_step_ms(step, cfg)  # also the warm-up of the profiled steps
    with stage("profile"):
        events, profiled = profile_steps(step, cfg, steps)
    device = cfg.device.startswith("cuda")
    families_us, host_us, ranges_us = attribute(events, device)
    families = {k: round(v / 1e3 / steps, 4) for k, v in families_us.items()}
    conditions: dict[str, Any] = {k: env.get(k) for k in CONDITIONS}
    return BreakdownRecord(
        variant=variant.name,
        step=variant.step,
        size_label=variant.size_label,
        modality=variant.modality,
        separate_and_pad=sep_pad,
        mode=cfg.mode,
        precision=cfg.precision,
        attn=cfg.attn,
        batch_size=batch,
        input_size=tuple(mcfg.input_size),
        overrides={k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()},
        families=families,
        total_ms=round(sum(families.values()), 4),
        wall_step_ms=round(wall, 4),
        profiled_step_ms=round(profiled, 4),
        range_self_ms=round(ranges_us / 1e3 / steps, 4),
        profiled_steps=steps,
        time_source=TIME_SOURCES["cuda" if device else "cpu"],
        warmup=cfg.warmup,
        iters=cfg.iters,
        trials=cfg.trials,
        gmacs=gmacs,
        # the host side of a GPU step: where launch overhead goes (small models are launch-bound)
        host_families={k: round(v / 1e3 / steps, 4) for k, v in host_us.items()} if device else None,
        **conditions,
    )


# ---- many variants -------------------------------------------------------------------------------------------------
def breakdown_path(out_dir: Path, cfg: BenchConfig, env: dict[str, Any]) -> Path:
    """`breakdown-<mode>-<precision>-<attn>-<device>-pt<torch>.jsonl`: bench's file name with its own prefix."""
    name = record_path(out_dir, replace(cfg, compile=False), env).name
    return out_dir / ("breakdown" + name.removeprefix("bench"))


def format_breakdown(record: BreakdownRecord) -> str:
    """A compact table of one record for the terminal: the families with time, their share, the totals."""
    total, families = record.total_ms or 0.0, record.families or {}
    lines = [f"  {'family':<12} {'ms/step':>10} {'share':>7}"]
    for family in BREAKDOWN_FAMILIES:
        ms = families.get(family, 0.0)
        if ms > 0:
            lines.append(f"  {family:<12} {ms:10.3f} {100 * ms / total:6.1f}%")  # ms > 0, so total > 0
    lines.append(f"  {'total':<12} {total:10.3f}  ({record.time_source}, {record.profiled_steps} profiled steps)")
    wall, profiled = record.wall_step_ms or 0.0, record.profiled_step_ms or 0.0
    lines.append(f"  {'wall':<12} {wall:10.3f}  (no profiler; {profiled:.3f} with it)")
    return "\n".join(lines)


def run_breakdown(
    patterns: Iterable[str],
    cfg: BenchConfig,
    out_dir: Path | None = None,
    progress: Callable[[str], None] = print,
    *,
    overrides: dict[str, Any] | None = None,
    steps: int = PROFILED_STEPS,
) -> Path:
    """Break down every variant matching `patterns` (names or globs, as `hiera-study bench`); append one record per
    variant to the conditions-named JSONL file under `out_dir` (default results/breakdown/) and return its path.
    Each line is written and flushed as its variant finishes, so a cut-off run keeps what it measured."""
    check_config(cfg)
    names = expand_patterns(patterns, cfg.mode, progress)
    env = bench_env(cfg)
    path = breakdown_path(Path(out_dir) if out_dir else at_root(*BREAKDOWN_DIR), cfg, env)
    path.parent.mkdir(parents=True, exist_ok=True)
    for name in names:
        progress(
            f"breakdown {name} ({cfg.mode}, {cfg.precision}, {cfg.attn}, {cfg.device}, batch {cfg.batch_sizes[0]})"
        )
        try:
            record = breakdown_variant(name, cfg, overrides, env, steps)
        except (RuntimeError, torch.OutOfMemoryError) as err:
            if not is_oom(err):
                raise
            record = oom_record(name, cfg, env, getattr(err, "bench_stage", None) or "timing")
            del err  # its traceback holds the step's tensors
            if cfg.device.startswith("cuda"):
                torch.cuda.empty_cache()
        append_jsonl(path, [record.to_json()])
        if record.status == "oom":
            progress(f"  out of memory ({record.oom_stage}) at batch {record.batch_size}; recorded, moving on")
        else:
            progress(format_breakdown(record))
    return path


def oom_record(name: str, cfg: BenchConfig, env: dict[str, Any], where: str) -> BreakdownRecord:
    """The record of a variant that ran out of memory at stage `where`: its conditions, no times."""
    variant = get_variant(name)
    conditions: dict[str, Any] = {k: env.get(k) for k in CONDITIONS}
    return BreakdownRecord(
        status="oom",
        oom_stage=where,
        variant=variant.name,
        step=variant.step,
        size_label=variant.size_label,
        modality=variant.modality,
        mode=cfg.mode,
        precision=cfg.precision,
        attn=cfg.attn,
        batch_size=cfg.batch_sizes[0],
        **conditions,
    )
