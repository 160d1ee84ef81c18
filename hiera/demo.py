"""The Quickstart's main job: paper Table 1 end to end on the embedded data, sized for a laptop CPU.

For every step of the ladder (supervised MViTv2 baseline, the MAE + rel-pos header, rows a-f) at a proxy scale
(`PROXY`: Hiera-T's ladder shrunk to 32 channels and 1-1-2-1 blocks, 64x64 inputs, 4x4-token mask units, so
Fashion-MNIST has 16 mask units per image), it
1. MAE-pretrains the step on Fashion-MNIST (the baseline row is trained supervised from scratch instead),
2. finetunes it and evaluates on the test split (top-1 / top-5),
3. profiles its speed with `hiera.bench` (CPU or GPU, the records' conditions say which),
then collects the run records and prints the Table-1 layout with the paper's numbers beside ours. `--video`
adds the video ladder on moving Fashion-MNIST (8 frames); `--train-samples`, `--epochs-scale`, `--width` and
`--device cuda` scale the proxy up on a GPU. The numbers are a pipeline check on a small grey dataset, labelled
as such in every record, never ImageNet/Kinetics numbers.

The demo never deletes a file. Its speed profile goes to a new file of this run (`<out>/speed/demo-<UTC time>-<pid>
.jsonl`), and `<out>/demo-manifest.json` names the latest one, which alone the demo's tables and figures show
(`--no-bench`: the latest earlier profile, if any). So `--out results` leaves the user's own `results/speed/*.jsonl`
alone (they used to be deleted to keep the demo's tables to one profile); earlier demo profiles stay beside them
(delete them by hand if unwanted; `hiera-study tables --speed <out>/speed` averages repeated profiles).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from hiera.env import REPO
from hiera.files import atomic_write_text
from hiera.ladder import LADDER
from hiera.train.config import TrainConfig
from hiera.train.pipeline import RunSpec, run_pipeline

# The proxy hierarchy (image). Video: 8 frames, tubelets 2x4x4, mask units 1x4x4.
PROXY: dict[str, Any] = dict(input_size=(64, 64), mask_unit_size=(4, 4), q_pool=2, num_heads=1, stages=(1, 1, 2, 1),
                             kv_stride=(2, 2))
PROXY_VIDEO: dict[str, Any] = dict(
    input_size=(8, 64, 64), mask_unit_size=(1, 4, 4), q_pool=2, num_heads=1, stages=(1, 1, 2, 1), kv_stride=(1, 2, 2),
    q_stride=(1, 2, 2), patch_kernel=(3, 7, 7), patch_stride=(2, 4, 4), patch_padding=(1, 3, 3))


def demo_specs(video: bool = False, width: int = 32, train_samples: int = 4000, eval_samples: int = 2000,
               epochs_scale: float = 1.0, device: str = "auto", seed: int = 0) -> list[RunSpec]:
    """The demo grid: one run per ladder step (and per modality)."""
    specs = []
    for modality in ("image", "video") if video else ("image",):
        res = "224" if modality == "image" else "16x224"
        dataset = "fashion-mnist" if modality == "image" else "moving-fashion-mnist"
        proxy = dict(PROXY if modality == "image" else PROXY_VIDEO, embed_dim=width)
        samples = train_samples if modality == "image" else max(train_samples // 4, 256)
        evals = eval_samples if modality == "image" else max(eval_samples // 4, 256)
        common = dict(size="tiny", dataset=dataset, device=device, seed=seed, train_samples=samples,
                      eval_samples=evals, model_args=proxy, log_every=20)

        def epochs(base: int) -> dict[str, Any]:  # supervised: as many passes as MAE + finetuning
            return {"epochs": max(1, round(base * epochs_scale))}

        for step in LADDER:
            variant = f"hiera_tiny_{res}" + (f".{step.slug}" if step.slug else "")
            if step.id == "sup":
                pre = None
                fin = TrainConfig(phase="supervised", model=variant, recipe="proxy_supervised",
                                  recipe_args=epochs(3), **common)
            else:
                pre = TrainConfig(phase="mae", model=variant, recipe="proxy_mae", decoder_dim=64,
                                  recipe_args=epochs(1), **common)
                fin = TrainConfig(phase="finetune", model=variant, recipe="proxy_finetune",
                                  recipe_args=epochs(2), **common)
            specs.append(RunSpec(grid="demo", run=f"{modality}/{step.id}/seed{seed}", variant=variant, step=step.id,
                                 size="proxy", table="demo", train=fin, pretrain=pre, seed=seed))
    return specs


MANIFEST = "demo-manifest.json"  # in the demo's out dir: the files the demo created that it reads back


def new_profile_path(speed_dir: Path) -> Path:
    """A speed-record file that no one has written yet: the demo's profile of this run."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for n in range(1000):
        path = speed_dir / f"demo-{stamp}-{os.getpid()}{f'-{n}' if n else ''}.jsonl"
        if not path.exists():
            return path
    raise RuntimeError(f"{speed_dir}: no free name for the demo's speed profile; clean up the demo-*.jsonl files")


def latest_profile(out: Path) -> Path | None:
    """The speed file of the demo's latest profile under `out`, from its manifest (None: never profiled here)."""
    manifest = out / MANIFEST
    if not manifest.is_file():
        return None
    try:
        name = json.loads(manifest.read_text()).get("speed")
    except (ValueError, AttributeError):
        raise ValueError(f"{manifest} is not the demo's manifest (a JSON object); move it away and run again") \
            from None
    path = out / name if isinstance(name, str) else None
    return path if path is not None and path.is_file() else None


def bench_specs(specs: list[RunSpec], out: Path, device: str, path: Path | None = None) -> Path | None:
    """Inference speed of every step's proxy model (batch 64, fp32 on CPU), records under `out` (in `path` when
    given: every modality's records in that one file)."""
    from hiera.bench import protocol_config, run

    for modality in sorted({s.train.video for s in specs}):
        group = [s for s in specs if s.train.video == modality]
        cfg = protocol_config(None, mode="infer", batch_sizes=(64,) if not modality else (16,), warmup=2, iters=5,
                              trials=3, device=None if device == "auto" else device, peers=False,
                              sep_pad_overhead=False)
        overrides = dict(group[0].train.model_args, num_classes=10)
        path = run([s.variant for s in group], cfg, overrides, out_dir=out,
                   progress=lambda m: print(m, file=sys.stderr), path=path)
    return path


def run_demo(out: Path | None = None, video: bool = False, width: int = 32, train_samples: int = 4000,
             eval_samples: int = 2000, epochs_scale: float = 1.0, device: str = "auto", bench: bool = True,
             figures: bool = True) -> dict[str, Any]:
    """Train, evaluate and profile the demo grid, then write records, tables (and figures); resumable."""
    out = Path(out) if out else REPO / "results" / "runs" / "demo"
    started = time.perf_counter()
    specs = demo_specs(video, width, train_samples, eval_samples, epochs_scale, device)
    records = []
    for i, spec in enumerate(specs, 1):
        t = time.perf_counter()
        print(f"[{i}/{len(specs)}] {spec.run}: {spec.variant} "
              f"({'MAE -> finetune' if spec.pretrain else 'supervised'})", file=sys.stderr, flush=True)
        rec = run_pipeline(spec, out / spec.run)
        records.append(rec)
        print(f"    top-1 {rec['metrics']['top1']:.2f}%  ({time.perf_counter() - t:.0f} s)", file=sys.stderr,
              flush=True)
    records_dir = out / "records"
    atomic_write_text(records_dir / "demo.jsonl", "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
    speed_dir = out / "speed"
    profile = latest_profile(out)
    if bench:
        # A file of this run's own: the tables show one profile without deleting anything (the user's records
        # under `--out results` included); the manifest names it for the next `--no-bench` run.
        profile = new_profile_path(speed_dir)
        print("profiling speed (hiera.bench) ...", file=sys.stderr, flush=True)
        bench_specs(specs, speed_dir, device, path=profile)
        atomic_write_text(out / MANIFEST, json.dumps({"speed": str(profile.relative_to(out))}, indent=1) + "\n")
    summary = {"records": str(records_dir), "speed": str(profile or speed_dir), "runs": len(records),
               "wall_s": round(time.perf_counter() - started, 1)}
    summary.update(report(records_dir, profile, out, figures))
    return summary


def report(records_dir: Path, profile: Path | None, out: Path, figures: bool) -> dict[str, Any]:
    """Tables (and figures) of the demo's records and its speed profile (a JSONL file, or None), printed and written
    under `out`."""
    from hiera.analysis import plots, tables

    # the demo's own records only (breakdown_dir=(): not the repository's results/breakdown/)
    speed_dir = profile if profile is not None else ()
    written = tables.write_tables(records_dir=records_dir, speed_dir=speed_dir, out_dir=out / "tables",
                                  command="hiera-study demo", breakdown_dir=())
    demo_table = out / "tables" / "demo.md"  # the demo grid in Table 1's layout, paper numbers beside ours
    print(demo_table.read_text() if demo_table.is_file() else "")
    result: dict[str, Any] = {"tables": [str(p) for p in written]}
    if figures:
        result["figures"] = [str(p) for p in plots.write_plots(records_dir=records_dir, speed_dir=speed_dir,
                                                                out_dir=out / "figures", command="hiera-study demo",
                                                                log=lambda m: print(m, file=sys.stderr),
                                                                breakdown_dir=())]
    return result
