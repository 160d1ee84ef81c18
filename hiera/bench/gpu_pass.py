"""The GPU pass: one prepared command that measures what matters most on a short loan of one GPU.

Paper Tables 1, 2, 16 and 17 are speeds on a GPU (A100, fp16, no fused attention, best batch; App. A.3). This
project gets a GPU rarely and briefly (one H100/H200 machine, ~15 minutes in all, no package registry there),
so the pass runs from the source tree (`PYTHONPATH`, nothing installed), with the machine's own torch stack
and the few pure-Python packages it lacks carried as wheels (`slurm/fetch-wheels.sh`), and does its parts in
priority order under one time budget, appending every record as it is measured so a cut-off run keeps what it
measured:

  1 numerics      CUDA vs CPU forward of every ladder step at T (images) and B (video, 16x224), math and SDPA;
                  finite fp16 / bf16 training and MAE losses and gradients
  2 paper_ladder  Table 1 at L, images then video: paper protocol (fp16, math attention, no compile), timm peers
                  and the official release in the same run
  3 modern        the L ladder with bf16 + SDPA (the kernel that ran is in every record), then compiled, and the
                  compiled MAE step beside the official release's
  4 sizes         Table 2 / 16 / 17: every size, images and video, paper protocol, peers
  5 breakdown     where the time goes, the L image ladder (`hiera-study bench --breakdown`)
  6 resume        a short bf16 training run and an MAE run, killed mid-way and resumed on CUDA under
                  deterministic settings, compared weight by weight with uninterrupted runs; peak memory

Usage (on the GPU machine: `bash slurm/gpu-pass.sh OUT`, which sets up the carried wheels first):

    python -m hiera.bench.gpu_pass OUT [--budget-s 450] [--official-python PY] [--parts 1,2,...] [--dry-run]

At most 8 files land in OUT: numerics.jsonl, the bench record files (named by their conditions, as in
results/speed/), breakdown-*.jsonl, resume.jsonl and gpu-pass.log (what ran, what was skipped for lack of
time, errors, the summary). `--dry-run` runs every part on the CPU at a toy scale (tests/test_gpu_pass.py).
Nothing here is estimated: a part without time is listed as skipped, never extrapolated.

Length (~600 lines): one script for one scarce device session, on purpose: it must run from a bare GPU machine
with nothing but this package, its parts share the time budget and the output folder, and splitting it would
spread one measurement plan over files a reader must then reassemble.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hiera.env import REPO, collect_env
from hiera.files import append_jsonl
from hiera.model.masking import default_mask_ratio, mae_q_pool

PART_NAMES = ("numerics", "paper_ladder", "modern", "sizes", "breakdown", "resume")
# Batch sizes timed per model. A power-of-two sweep (the paper's best batch) does not fit an 8-minute loan with
# every part in it: one batch where the L models about saturate an H100/H200 (so the T/S numbers may sit below their
# best batch; `hiera-study bench --protocol paper` sweeps when there is time). Separate-and-pad's overhead (rows
# a-c timed again with it off) is left to such a run too.
GPU_BATCHES = {"image": (256,), "video": (16,)}
# Toy scale for --dry-run (CPU): the demo's proxy hierarchy at 16 channels.
DRY_IMAGE: dict[str, Any] = dict(
    input_size=(32, 32),
    mask_unit_size=(4, 4),
    q_pool=2,
    num_heads=1,
    stages=(1, 1, 1, 1),
    kv_stride=(2, 2),
    embed_dim=16,
    patch_stride=(2, 2),
    patch_kernel=(3, 3),
    patch_padding=(1, 1),
)


@dataclass
class Pass:
    """State of one pass: where records go, the deadline, the log."""

    out: Path
    deadline: float
    dry_run: bool
    device: str
    official_python: str | None
    env: dict[str, Any] = field(default_factory=dict)  # conditions every record carries (bench's keys)
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def log(self, line: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        print(f"[gpu-pass {stamp}] {line}", flush=True)
        with (self.out / "gpu-pass.log").open("a") as f:
            f.write(f"{stamp} {line}\n")

    def append(self, name: str, record: dict[str, Any]) -> None:
        """One JSON line, fsynced at once: a run cut off later keeps it (`hiera.files.append_jsonl`)."""
        append_jsonl(self.out / name, [record])

    def guarded(self, what: str, need_s: float, fn: Callable[[], Any]) -> Any:
        """Run `fn` if about `need_s` seconds are left; record a skip or the error otherwise (never raise: one
        failing measurement must not cost the rest of a one-shot loan)."""
        if self.left() < need_s:
            self.skipped.append(what)
            self.log(f"skip {what}: {self.left():.0f} s left, needs ~{need_s:.0f} s")
            return None
        start = time.monotonic()
        try:
            result = fn()
        except Exception as err:  # noqa: BLE001 - recorded, the pass goes on
            self.errors.append(f"{what}: {type(err).__name__}: {err}")
            where = traceback.extract_tb(err.__traceback__)[-1]
            self.log(f"ERROR {what}: {type(err).__name__}: {err} ({Path(where.filename).name}:{where.lineno})")
            return None
        finally:
            if self.device.startswith("cuda"):
                torch.cuda.empty_cache()
        self.done.append(what)
        self.log(f"done {what} in {time.monotonic() - start:.0f} s")
        return result


# ---- 1. numerics -------------------------------------------------------------------------------------------------
def _ladder(size: str, res: str, dry: bool = False) -> list[str]:
    """The Table-1 steps at one size, in ladder order; a dry run keeps three (the baseline, a separate-and-pad
    row and Hiera) so that every code path runs in seconds. The steps beyond the paper (g) are left out: the pass
    is sized for a short GPU loan and measures the paper's ladder."""
    from hiera.model.ladder import STEP_IDS
    from hiera.model.registry import list_variants

    names = [v.name for v in list_variants(f"hiera_{size}_{res}*") if v.config.num_classes > 0 and v.step in STEP_IDS]
    return [n for n in names if n.endswith((".sup_mvitv2", ".c_no_stride1_pool", f"_{res}"))] if dry else names


def _numerics_one(p: Pass, name: str, overrides: dict[str, Any], batch: int) -> None:
    """One variant: CPU fp32 vs device fp32 (TF32 off), math and SDPA; fp16/bf16 train and MAE losses finite."""
    import torch.nn.functional as F

    from hiera import build_model
    from hiera.model.mae import MaskedAutoencoder
    from hiera.model.registry import get_variant

    variant = get_variant(name)
    cfg = variant.config.replace(attn_impl="math", **overrides)
    torch.manual_seed(0)
    ref_model = build_model(cfg).eval()
    x = torch.randn(batch, cfg.in_chans, *cfg.input_size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        ref = ref_model.forward_features(x)
    scale = max(ref.abs().max().item(), 1.0)
    base = dict(
        variant=name,
        step=variant.step,
        size_label=variant.size_label,
        modality=variant.modality,
        input_size=list(cfg.input_size),
        batch_size=batch,
        **_env(p),
    )
    dev_x = x.to(p.device)
    for attn in ("math", "sdpa"):
        model = build_model(cfg.replace(attn_impl=attn)).to(p.device).eval()
        model.load_state_dict(ref_model.state_dict())
        with torch.inference_mode():
            out = model.forward_features(dev_x).float().cpu()
        diff = (out - ref).abs().max().item()
        p.append(
            "numerics.jsonl",
            dict(
                base,
                check="forward_fp32_vs_cpu",
                attn=attn,
                precision="fp32",
                max_abs_diff=diff,
                rel_diff=diff / scale,
                ok=diff / scale <= 1e-3,
            ),
        )
    dtypes = (
        {"fp16": torch.float16, "bf16": torch.bfloat16} if p.device.startswith("cuda") else {"bf16": torch.bfloat16}
    )
    target = torch.randint(0, max(cfg.num_classes, 1), (batch,), device=p.device)
    for prec, dtype in dtypes.items():
        for mode in ("train", "mae") if cfg.uses_mask_units else ("train",):
            mcfg = cfg.replace(attn_impl="sdpa")
            model = (
                (
                    MaskedAutoencoder(mcfg.replace(q_pool=mae_q_pool(mcfg.q_pool)))
                    if mode == "mae"
                    else build_model(mcfg)
                )
                .to(p.device)
                .train()
            )
            with torch.autocast(p.device.split(":")[0], dtype=dtype):
                if mode == "mae":
                    loss = model(dev_x, mask_ratio=default_mask_ratio(cfg))[0]
                else:
                    loss = F.cross_entropy(model(dev_x), target)
            loss.backward()
            grads = [q.grad for q in model.parameters() if q.grad is not None]
            finite = bool(torch.isfinite(loss).item()) and all(bool(torch.isfinite(g).all().item()) for g in grads)
            p.append(
                "numerics.jsonl",
                dict(base, check=f"{mode}_loss_finite", attn="sdpa", precision=prec, loss=loss.item(), ok=finite),
            )


def part_numerics(p: Pass) -> None:
    jobs: list[tuple[str, dict[str, Any], int]]
    if p.dry_run:
        jobs = [(n, DRY_IMAGE, 2) for n in _ladder("tiny", "224", dry=True)]
    else:
        jobs = [(n, {}, 2) for n in _ladder("tiny", "224")]
        jobs += [(n, {}, 1) for n in _ladder("base", "16x224")]
    for name, overrides, batch in jobs:
        p.guarded(f"numerics {name}", 10, functools.partial(_numerics_one, p, name, overrides, batch))


# ---- 2-4. speed --------------------------------------------------------------------------------------------------
def _bench(p: Pass, names: list[str], modality: str, need_s: float, **fields: Any) -> None:
    """Time each variant (with peers) into the conditions-named file in OUT, one variant at a time."""
    from hiera.bench.throughput import protocol_config, run

    if p.dry_run:
        # fp16 autocast does not run on a CPU (fp32 stands in), and inductor would spend minutes compiling on a
        # 2-core machine: aot_eager traces exactly what inductor would be given (fullgraph, recompiles).
        fields.update(
            batch_sizes=(2,),
            sweep=False,
            warmup=1,
            iters=1,
            trials=2,
            device="cpu",
            compile_backend="aot_eager",
            precision="fp32",
        )
        overrides: dict[str, Any] = DRY_IMAGE if modality == "image" else {}
    else:
        fields.update(
            batch_sizes=GPU_BATCHES[modality],
            sweep=False,
            warmup=3,
            iters=5,
            trials=3,
            device=p.device,
            sep_pad_overhead=False,
        )
        overrides = {}
    protocol = fields.pop("protocol", None)
    cfg = protocol_config(protocol, official_python=p.official_python, peers=True, **fields)
    for name in names:
        p.guarded(
            f"bench {cfg.mode} {cfg.precision} {cfg.attn}{' compile' if cfg.compile else ''} {name}",
            need_s,
            functools.partial(run, [name], cfg, overrides, out_dir=p.out, progress=p.log),
        )


def part_paper_ladder(p: Pass) -> None:
    if p.dry_run:
        _bench(p, _ladder("tiny", "224", dry=True), "image", 5, protocol="paper")
        return
    _bench(p, _ladder("large", "224"), "image", 25, protocol="paper")
    _bench(p, _ladder("large", "16x224"), "video", 40, protocol="paper")


def part_modern(p: Pass) -> None:
    size = "tiny" if p.dry_run else "large"
    ladder = _ladder(size, "224", dry=p.dry_run)
    hiera_end, baseline = ladder[-1], ladder[0]  # row f (the official name) and the supervised MViTv2
    modality = "image"
    # eager bf16 + SDPA: the fused path and the kernel that ran, every step
    _bench(p, ladder, modality, 5 if p.dry_run else 20, protocol="modern", compile=False)
    # compiled: the ends first (compiling an L model takes about a minute), then the steps between
    order = [hiera_end, baseline] + [n for n in ladder if n not in (hiera_end, baseline)]
    _bench(p, order, modality, 10 if p.dry_run else 120, protocol="modern")
    # the MAE step, compiled, beside the official MAE (its own interpreter)
    mae = f"mae_hiera_{size}_224"
    _bench(p, [mae], modality, 10 if p.dry_run else 120, protocol="modern", mode="mae")


def part_sizes(p: Pass) -> None:
    from hiera.model.registry import list_variants

    if p.dry_run:
        _bench(p, ["hiera_tiny_224", "hiera_small_224"], "image", 5, protocol="paper")
        return
    images = [v.name for v in list_variants("hiera_*_224") if v.step == "f"]
    videos = [v.name for v in list_variants("hiera_*_16x224") if v.step == "f"]
    _bench(p, images, "image", 20, protocol="paper")
    _bench(p, videos, "video", 40, protocol="paper")


# ---- 5. breakdown ------------------------------------------------------------------------------------------------
def part_breakdown(p: Pass) -> None:
    from hiera.bench.breakdown import run_breakdown
    from hiera.bench.throughput import protocol_config

    if p.dry_run:
        cfg = protocol_config(None, device="cpu", precision="fp32", attn="sdpa", batch_sizes=(2,), warmup=1)
        overrides: dict[str, Any] = DRY_IMAGE
        names = _ladder("tiny", "224", dry=True)
    else:
        cfg = protocol_config(None, device=p.device, precision="fp16", attn="math", batch_sizes=(64,), warmup=3)
        overrides = {}
        names = _ladder("large", "224")
    for name in names:
        p.guarded(
            f"breakdown {name}",
            5 if p.dry_run else 20,
            functools.partial(run_breakdown, [name], cfg, overrides=overrides, out_dir=p.out, progress=p.log),
        )


# ---- 6. kill and resume on CUDA ----------------------------------------------------------------------------------
RESUME_MODEL = "hiera_tiny_224.c_no_stride1_pool"  # overlapping max pools + separate-and-pad: the hardest case


def _train_args(phase: str, run_dir: Path, device: str, dry: bool) -> list[str]:
    model = RESUME_MODEL
    recipe = {"mae": "proxy_mae", "supervised": "proxy_supervised"}[phase]
    tiny = DRY_IMAGE if dry else dict(DRY_IMAGE, input_size=(64, 64), embed_dim=32)
    args = [
        "train",
        "--phase",
        phase,
        "--model",
        model,
        "--recipe",
        recipe,
        "--run-dir",
        str(run_dir),
        *(f"model.{k}={v!r}".replace(" ", "") for k, v in tiny.items()),
        "train_samples=256",
        "eval_samples=64",
        "batch_size=32",
        "ckpt_every=1",
        "log_every=1",
        f"device={'cpu' if device == 'cpu' else 'cuda'}",
        f"precision={'fp32' if device == 'cpu' else 'bf16'}",
        "workers=0",
    ]
    if phase == "mae":
        args += ["decoder_dim=16", "recipe.decoder_depth=1", "recipe.epochs=2"]
    return args


# Deterministic kernels for the comparison (cuBLAS needs its workspace setting before CUDA starts).
_DETERMINISTIC = (
    "import sys, torch; torch.use_deterministic_algorithms(True, warn_only=True); "
    "torch.backends.cudnn.benchmark = False; from hiera.cli import main; sys.exit(main(sys.argv[1:]))"
)


def _train_process(args: list[str]) -> subprocess.Popen:
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        CUBLAS_WORKSPACE_CONFIG=":4096:8",
        PYTHONUNBUFFERED="1",
    )
    return subprocess.Popen(
        [sys.executable, "-c", _DETERMINISTIC, *args],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _last_step(run_dir: Path) -> int:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return 0
    steps = []
    for line in path.read_text().splitlines():
        try:
            steps.append(json.loads(line)["step"])
        except (ValueError, KeyError):  # a line being written
            continue
    return max(steps, default=0)


def _resume_one(p: Pass, phase: str) -> None:
    root = p.out.parent / f".gpu-pass-runs-{os.getpid()}" / phase
    ref, cut = root / "ref", root / "cut"
    started = time.monotonic()
    for run_dir in (ref,):
        proc = _train_process(_train_args(phase, run_dir, p.device, p.dry_run))
        _, err = proc.communicate(timeout=max(p.left(), 30))
        if proc.returncode != 0:
            raise RuntimeError(f"uninterrupted {phase} run failed: {err.strip().splitlines()[-1:]}")
    proc = _train_process(_train_args(phase, cut, p.device, p.dry_run))
    killed_at = 0
    while proc.poll() is None:
        killed_at = _last_step(cut)
        if killed_at >= 3:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait()
    killed = proc.returncode == -signal.SIGKILL
    proc = _train_process(_train_args(phase, cut, p.device, p.dry_run))
    _, err = proc.communicate(timeout=max(p.left(), 30))
    if proc.returncode != 0:
        raise RuntimeError(f"resumed {phase} run failed: {err.strip().splitlines()[-1:]}")
    a, b = (torch.load(d / "checkpoints" / "model.pth", weights_only=True)["model_state"] for d in (ref, cut))
    diffs = {k: (a[k].float() - b[k].float()).abs().max().item() for k in a}
    metrics = [[json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()] for d in (ref, cut)]
    for m in metrics:
        for line in m:
            line.pop("time", None)
    starts = len(json.loads((cut / "env.json").read_text()))
    p.append(
        "resume.jsonl",
        dict(
            check=f"{phase}_kill_resume",
            model=RESUME_MODEL,
            phase=phase,
            killed=killed,
            killed_at_step=killed_at,
            starts=starts,
            same_keys=a.keys() == b.keys(),
            identical=a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a),
            max_abs_diff=max(diffs.values(), default=0.0),
            metrics_identical=metrics[0] == metrics[1],
            precision="fp32" if p.device == "cpu" else "bf16",
            deterministic=True,
            wall_s=time.monotonic() - started,
            **_env(p),
        ),
    )


def _peak_memory(p: Pass) -> None:
    """Peak device memory of one bf16 training step per L ladder step at batch 32 (images)."""
    if not p.device.startswith("cuda"):
        p.log("peak memory: measured on CUDA only")
        return
    import torch.nn.functional as F

    from hiera import build_model
    from hiera.bench.throughput import build_on

    for name in _ladder("large", "224"):

        def one(n: str = name) -> None:
            from hiera.model.registry import get_variant

            variant = get_variant(n)
            model = build_on(lambda: build_model(variant.config.replace(attn_impl="sdpa")), p.device).train()
            x = torch.randn(32, 3, 224, 224, device=p.device)
            torch.cuda.reset_peak_memory_stats()
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = F.cross_entropy(model(x), torch.zeros(32, dtype=torch.long, device=p.device))
            loss.backward()
            torch.cuda.synchronize()
            p.append(
                "resume.jsonl",
                dict(
                    check="peak_memory_train_step",
                    variant=n,
                    step=variant.step,
                    batch_size=32,
                    precision="bf16",
                    attn="sdpa",
                    peak_mem_gib=torch.cuda.max_memory_allocated() / 2**30,
                    **_env(p),
                ),
            )
            del model, loss

        p.guarded(f"peak memory {name}", 10, one)


def part_resume(p: Pass) -> None:
    for phase in ("supervised", "mae"):
        p.guarded(f"kill and resume ({phase})", 30 if p.dry_run else 60, functools.partial(_resume_one, p, phase))
    _peak_memory(p)


PARTS: dict[str, Callable[[Pass], None]] = {
    "numerics": part_numerics,
    "paper_ladder": part_paper_ladder,
    "modern": part_modern,
    "sizes": part_sizes,
    "breakdown": part_breakdown,
    "resume": part_resume,
}


def _env(p: Pass) -> dict[str, Any]:
    return dict(p.env, date=collect_env()["date"])


def _pass_env(device: str) -> dict[str, Any]:
    from hiera.bench.throughput import BenchConfig, bench_env

    env = bench_env(BenchConfig(device=device, precision="fp32"))
    return {
        k: env[k]
        for k in ("device", "driver", "torch", "cuda", "cudnn", "cpu_threads", "git_sha", "git_dirty", "python", "timm")
    }


def summary(p: Pass) -> str:
    """What the pass measured, from its own records: ours vs timm and the official release, speed-ups over row
    (a) beside the paper's, MFU, the kernels that ran, numerics and resume checks."""
    lines = [f"done {len(p.done)}, skipped {len(p.skipped)} (time), errors {len(p.errors)}"]
    for path in sorted(p.out.glob("bench-*.jsonl")):
        rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
        best: dict[tuple, dict] = {}
        for r in rows:
            if r.get("samples_per_s") and r.get("best_batch"):
                best[(r["variant"], r["impl"], r["model"], r.get("separate_and_pad"))] = r
        lines.append(f"{path.name}:")
        for (_, impl, model, sep), r in best.items():
            ratio = " ".join(f"{k}={r[k]:.2f}" for k in ("ratio_vs_peer", "ratio_vs_official") if r.get(k))
            mfu = f"mfu={r['mfu']:.1%}" if r.get("mfu") else ""
            kern = ",".join(r.get("attn_backends") or [])
            lines.append(
                f"  {impl:<11} {model:<36} sep_pad={sep or '-':<3} bs {r['batch_size']:>4} "
                f"{r['samples_per_s']:9.1f}/s {mfu} {ratio} {kern}".rstrip()
            )
    for name in ("numerics.jsonl", "resume.jsonl"):
        path = p.out / name
        if path.is_file():
            rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
            bad = [r for r in rows if r.get("ok") is False or r.get("identical") is False]
            lines.append(
                f"{name}: {len(rows)} checks, {len(bad)} not ok"
                + "".join(f"\n  not ok: {r.get('variant', r.get('model'))} {r['check']}" for r in bad)
            )
    return "\n".join(lines)


def run_pass(
    out: Path,
    budget_s: float,
    parts: list[str],
    dry_run: bool = False,
    official_python: str | None = None,
    device: str | None = None,
) -> Pass:
    device = device or ("cpu" if dry_run else "cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("no CUDA device is visible; the GPU pass needs one (use --dry-run on a CPU)")
    out.mkdir(parents=True, exist_ok=True)
    p = Pass(
        out=out,
        deadline=time.monotonic() + budget_s,
        dry_run=dry_run,
        device=device,
        official_python=official_python,
        env=_pass_env(device),
    )
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 numerics compare like with like; autocast is unaffected
        torch.backends.cudnn.allow_tf32 = False
    env = p.env
    p.log(
        f"start: budget {budget_s:.0f} s, parts {','.join(parts)}, device {env['device']}, torch {env['torch']}, "
        f"git {env['git_sha']}{' (dirty)' if env['git_dirty'] else ''}, official {official_python or 'none'}"
    )
    for name in parts:
        if p.left() <= 0:
            p.skipped.append(name)
            p.log(f"skip part {name}: out of time")
            continue
        p.log(f"part {name} ({p.left():.0f} s left)")
        PARTS[name](p)
    text = summary(p)
    p.log("summary\n" + text)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hiera.bench.gpu_pass", description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, help="folder for the records (at most 8 files)")
    parser.add_argument(
        "--budget-s",
        type=float,
        default=420.0,
        help="time budget in seconds (default 420: a part never starts without the time it needs)",
    )
    parser.add_argument(
        "--parts", default=",".join(PART_NAMES), help=f"comma-separated, in order (default all: {','.join(PART_NAMES)})"
    )
    parser.add_argument("--official-python", help="interpreter that imports the official hiera-transformer")
    parser.add_argument("--dry-run", action="store_true", help="every part on the CPU at a toy scale")
    args = parser.parse_args(argv)
    parts = [x for x in args.parts.split(",") if x]
    unknown = [x for x in parts if x not in PARTS]
    try:
        if unknown:
            raise ValueError(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PART_NAMES)}")
        if not math.isfinite(args.budget_s) or args.budget_s <= 0:
            raise ValueError(f"--budget-s {args.budget_s} must be a positive number of seconds")
        if args.official_python and not Path(args.official_python).exists():
            raise ValueError(f"--official-python {args.official_python} does not exist")
        p = run_pass(args.out, args.budget_s, parts, args.dry_run, args.official_python)
    except ValueError as err:
        print(f"gpu-pass: {err}", file=sys.stderr)
        return 2
    return 1 if p.errors else 0


if __name__ == "__main__":
    sys.exit(main())
