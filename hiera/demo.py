"""The Quickstart's main job: paper Table 1 end to end on the embedded data, sized for a laptop CPU.

For every step of the ladder (supervised MViTv2 baseline, the MAE + rel-pos header, rows a-f) at the proxy scale
(`hiera/proxy.py`: Hiera-T's ladder shrunk to 32 channels and 1-1-2-1 blocks, 48x48 inputs, nine 4x4-token mask
units per image; 10,000 training images, 2,000 test images), it
1. MAE-pretrains the step on Fashion-MNIST 3 epochs and finetunes it 3 (the baseline row trains 6 epochs from
   scratch instead), with the `proxy_*` recipes the recipe sweep chose, and evaluates on the test split,
2. profiles its speed with `hiera.bench.throughput` (CPU or GPU, the records' conditions say which),
then collects the run records and prints the Table-1 layout with the paper's numbers beside ours. On CPU it trains
one run per core at once (`--jobs`), each in a single-thread process. `--video` adds the video ladder on moving
Fashion-MNIST (8 frames); `--train-samples`, `--epochs-scale`, `--width` and `--device cuda` scale the proxy up on a
GPU. One seed: the ladder with three seeds and confidence intervals is `ablations/proxy_t01_images.py` (and
`ablations/proxy_appb_supervised.py` from scratch).
The numbers are a pipeline check on a small grey dataset, labelled
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

from hiera.bench.throughput import protocol_config, run
from hiera.env import at_root
from hiera.files import atomic_write_text
from hiera.proxy import ladder_specs
from hiera.records.run import RunRecord, run_records_text
from hiera.train.pipeline import RunSpec, run_pipeline


def demo_specs(
    video: bool = False,
    width: int = 32,
    train_samples: int = 10000,
    eval_samples: int = 2000,
    epochs_scale: float = 1.0,
    device: str = "auto",
    seed: int = 0,
) -> list[RunSpec]:
    """The demo grid: one run per ladder step (and per modality), at the proxy recipes' default lengths (MAE 3 +
    finetuning 3 epochs; the baseline 6 epochs from scratch) times `epochs_scale`."""

    def epochs(base: int) -> int:
        return max(1, round(base * epochs_scale))

    specs = []
    for video_ in (False, True) if video else (False,):
        # video: fewer clips (each is 8 frames)
        samples = max(train_samples // 4, 256) if video_ else train_samples
        evals = max(eval_samples // 4, 256) if video_ else eval_samples
        specs += ladder_specs(
            "demo",
            "demo",
            seed,
            mae_epochs=epochs(3),
            finetune_epochs=epochs(3),
            supervised_epochs=epochs(6),
            train_samples=samples,
            eval_samples=evals,
            video=video_,
            width=width,
            device=device,
            log_every=20,
        )
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
        raise ValueError(f"{manifest} is not the demo's manifest (a JSON object); move it away and run again") from None
    path = out / name if isinstance(name, str) else None
    return path if path is not None and path.is_file() else None


def bench_specs(specs: list[RunSpec], out: Path, device: str, path: Path | None = None) -> Path | None:
    """Inference speed of every step's proxy model (batch 64, fp32 on CPU), records under `out` (in `path` when
    given: every modality's records in that one file)."""

    for modality in sorted({s.train.video for s in specs}):
        group = [s for s in specs if s.train.video == modality]
        cfg = protocol_config(
            None,
            mode="infer",
            batch_sizes=(64,) if not modality else (16,),
            warmup=2,
            iters=5,
            trials=3,
            device=None if device == "auto" else device,
            peers=False,
            sep_pad_overhead=False,
        )
        overrides = dict(group[0].train.model_args)  # a --width; the registered proxy has the rest (10 classes too)
        path = run(
            [s.variant for s in group],
            cfg,
            overrides,
            out_dir=out,
            progress=lambda m: print(m, file=sys.stderr),
            path=path,
        )
    return path


def default_jobs(device: str, runs: int) -> int:
    """Runs trained at once: one per CPU core on CPU (each a single-thread process: the runs are independent, so
    they need no shared thread pool), one on a GPU."""
    import torch

    if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
        return 1
    return max(1, min(runs, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def _train_in_worker(spec: dict[str, Any], run_dir: str, threads: int) -> RunRecord:
    """One run in a worker process (spawned: no CUDA or thread-pool state inherited), `threads` CPU threads."""
    import torch

    torch.set_num_threads(threads)
    return run_pipeline(RunSpec.from_dict(spec), Path(run_dir), progress=False)


def train_specs(specs: list[RunSpec], out: Path, jobs: int) -> list[RunRecord]:
    """Train (or resume) every run under `out/<run id>`, `jobs` at a time; the run records in the order of `specs`."""

    def started(i: int, spec: RunSpec) -> None:
        print(
            f"[{i}/{len(specs)}] {spec.run}: {spec.variant} ({'MAE -> finetune' if spec.pretrain else 'supervised'})",
            file=sys.stderr,
            flush=True,
        )

    def finished(spec: RunSpec, rec: RunRecord, seconds: float) -> None:
        print(f"    {spec.run}: top-1 {rec.top1:.2f}%  ({seconds:.0f} s)", file=sys.stderr, flush=True)

    if jobs <= 1:
        records = []
        for i, spec in enumerate(specs, 1):
            started(i, spec)
            t = time.perf_counter()
            records.append(run_pipeline(spec, out / spec.run))
            finished(spec, records[-1], time.perf_counter() - t)
        return records
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

    import torch

    threads = max(1, torch.get_num_threads() // jobs)
    results: dict[int, RunRecord] = {}
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        pending: dict[Future[RunRecord], int] = {}
        begun: dict[int, float] = {}
        queue = list(enumerate(specs))
        try:
            while queue or pending:
                while queue and len(pending) < jobs:  # submit as workers free up, so "started" lines are true
                    i, spec = queue.pop(0)
                    started(i + 1, spec)
                    begun[i] = time.perf_counter()
                    pending[pool.submit(_train_in_worker, spec.to_dict(), str(out / spec.run), threads)] = i
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    i = pending.pop(future)
                    results[i] = future.result()  # a failed run raises here: the pool is shut down below
                    finished(specs[i], results[i], time.perf_counter() - begun[i])
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)  # running runs end at their next checkpoint on resume
            raise
    return [results[i] for i in range(len(specs))]


def run_demo(
    out: Path | None = None,
    video: bool = False,
    width: int = 32,
    train_samples: int = 10000,
    eval_samples: int = 2000,
    epochs_scale: float = 1.0,
    device: str = "auto",
    bench: bool = True,
    figures: bool = True,
    jobs: int | None = None,
) -> dict[str, Any]:
    """Train, evaluate and profile the demo grid, then write records, tables (and figures); resumable.

    `jobs`: runs trained at once (default `default_jobs`); each gets its share of the CPU threads."""
    out = Path(out) if out else at_root("results", "runs", "demo")
    started = time.perf_counter()
    specs = demo_specs(video, width, train_samples, eval_samples, epochs_scale, device)
    jobs = default_jobs(device, len(specs)) if jobs is None else jobs
    if jobs < 1:
        raise ValueError(f"--jobs {jobs}: train at least one run at a time (--jobs 1 or more)")
    print(f"training {len(specs)} runs, {jobs} at a time", file=sys.stderr, flush=True)
    records = train_specs(specs, out, jobs)
    records_dir = out / "records"
    atomic_write_text(records_dir / "demo.jsonl", run_records_text(records))
    speed_dir = out / "speed"
    profile = latest_profile(out)
    if bench:
        # A file of this run's own: the tables show one profile without deleting anything (the user's records
        # under `--out results` included); the manifest names it for the next `--no-bench` run.
        profile = new_profile_path(speed_dir)
        print("profiling speed (hiera.bench.throughput) ...", file=sys.stderr, flush=True)
        bench_specs(specs, speed_dir, device, path=profile)
        atomic_write_text(out / MANIFEST, json.dumps({"speed": str(profile.relative_to(out))}, indent=1) + "\n")
    summary = {
        "records": str(records_dir),
        "speed": str(profile or speed_dir),
        "runs": len(records),
        "wall_s": round(time.perf_counter() - started, 1),
    }
    summary.update(report(records_dir, profile, out, figures))
    return summary


def report(records_dir: Path, profile: Path | None, out: Path, figures: bool) -> dict[str, Any]:
    """Tables (and figures) of the demo's records and its speed profile (a JSONL file, or None), printed and written
    under `out`."""
    from hiera.analysis import plots, tables  # matplotlib and pandas: loaded when the demo reports, not by the CLI

    # the demo's own records only (breakdown_dir=(): not the repository's results/breakdown/)
    speed_dir = profile if profile is not None else ()
    written = tables.write_tables(
        records_dir=records_dir,
        speed_dir=speed_dir,
        out_dir=out / "tables",
        command="hiera-study demo",
        breakdown_dir=(),
    )
    demo_table = out / "tables" / "demo.md"  # the demo grid in Table 1's layout, paper numbers beside ours
    print(demo_table.read_text() if demo_table.is_file() else "")
    result: dict[str, Any] = {"tables": [str(p) for p in written]}
    if figures:
        result["figures"] = [
            str(p)
            for p in plots.write_plots(
                records_dir=records_dir,
                speed_dir=speed_dir,
                out_dir=out / "figures",
                command="hiera-study demo",
                log=lambda m: print(m, file=sys.stderr),
                breakdown_dir=(),
            )
        ]
    return result
