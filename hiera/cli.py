"""`hiera-study` command line. Thin: it parses arguments and calls the library.

    hiera-study variants [PATTERN] [--json] [key=value ...]   list registered variants: step, size, modality,
                                                               sparse (masked) encoding, params and GMACs
    hiera-study variants --write-stats                         recount every variant with fvcore (slow)
    hiera-study bench PATTERN... [--protocol paper|modern] ...  samples/s per variant, records in results/speed/
    hiera-study bench PATTERN... --breakdown [--mode M] ...     where a step's time goes per op family,
                                                               records in results/breakdown/
    hiera-study train --phase mae|finetune|supervised --model NAME --recipe R --run-dir DIR [key=value ...]
                                                               one training phase (resumes when DIR exists)
    hiera-study submit ablations/X.py [--cluster slurm|local|debug] [--only GLOB] [--dry-run] [--seeds N]
                                                               launch a grid (skips done / queued runs)
    hiera-study status ablations/X.py [--resubmit-failed]      one line per run: done/running/pending/failed/missing
                                                               /unknown/stale (hiera/launch/submit.py says what)
    hiera-study collect ablations/X.py [--prune]               finished runs merged into results/records/<grid>.jsonl
    hiera-study tables [--readme README.md]                    paper tables, ours beside the paper's (results/tables/)
    hiera-study plots                                          figures (paper_figures/)
    hiera-study demo [--video] [--device cuda] ...              the Quickstart's main job: the ladder on the
                                                               embedded data, MAE -> finetune -> eval -> speed

Trailing `key=value` arguments override `ModelConfig` fields (variants, bench) or, for `train`, `TrainConfig`
fields, with `model.key=value` for `ModelConfig` and `recipe.key=value` for `Recipe`; unknown keys are errors.

Every expected failure (a bad or non-finite value, a missing, unreadable or misplaced path, a full disk, a busy lock,
a hung queue command, out of memory) is one line, `hiera-study: error: <what is wrong and how to fix it>`, and exit
status 2 (`main`); `--debug` (anywhere on the line) or HIERA_DEBUG=1 prints the traceback too. Any other exception is
a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import subprocess
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

import torch

from hiera.config import parse_overrides
from hiera.flops import load_stats, model_stats, write_stats
from hiera.registry import Variant, list_variants


def variant_rows(variants: list[Variant], overrides: dict) -> list[dict]:
    cache = load_stats()
    rows = []
    for v in variants:
        params, gmacs = model_stats(v.config.replace(**overrides), cache)
        rows.append({**v.summary(), "params_m": round(params, 2), "gmacs": round(gmacs, 2)})
    return rows


def format_table(rows: list[dict]) -> str:
    heads = {
        "name": "name",
        "step": "step",
        "size": "size",
        "modality": "modality",
        "masked": "masked",
        "params_m": "params (M)",
        "gmacs": "GMACs",
    }
    show = {True: "yes", False: "no"}
    cells = [
        [
            show[r[k]] if isinstance(r[k], bool) else f"{r[k]:.2f}" if isinstance(r[k], float) else str(r[k])
            for k in heads
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(heads.values())]
    right = {5, 6}
    fmt = lambda row: "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths)))  # noqa: E731
    return "\n".join([fmt(list(heads.values())), fmt(["-" * w for w in widths]), *map(fmt, cells)])


def cmd_variants(args: argparse.Namespace) -> int:
    variants = list_variants(args.pattern)
    if not variants:
        raise ValueError(f"no variant matches {args.pattern!r}; try 'hiera_*', '*_16x224*' or 'mvitv2_*'")
    if args.write_stats:
        if args.overrides or args.pattern != "*":
            raise ValueError("--write-stats recounts every registered variant; drop the pattern and overrides")
        write_stats(variants, progress=sys.stderr.isatty())
        print(f"wrote counts of {len(variants)} variants")
        return 0
    rows = variant_rows(variants, parse_overrides(args.overrides))
    print(json.dumps(rows, indent=1) if args.json else format_table(rows))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from hiera.demo import run_demo

    torch.set_num_threads(max(1, torch.get_num_threads()))
    summary = run_demo(
        args.out,
        video=args.video,
        width=args.width,
        train_samples=args.train_samples,
        eval_samples=args.eval_samples,
        epochs_scale=args.epochs_scale,
        device=args.device,
        bench=not args.no_bench,
        figures=not args.no_figures,
        jobs=args.jobs,
    )
    print(
        f"demo finished in {summary['wall_s']:.0f} s: {summary['runs']} runs; records in {summary['records']}, "
        f"tables in {Path(summary['tables'][0]).parent if summary.get('tables') else '-'}"
        + (f", figures in {Path(summary['figures'][0]).parent}" if summary.get("figures") else "")
    )
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from hiera.train.config import TrainConfig, parse_train_overrides
    from hiera.train.loop import train

    fields = parse_train_overrides(args.overrides)
    for key in ("phase", "model", "recipe"):
        if getattr(args, key) is not None:
            fields[key] = getattr(args, key)
    missing = [k for k in ("phase", "model", "recipe") if k not in fields]
    if missing:
        raise ValueError(
            f"missing {', '.join('--' + m for m in missing)} (e.g. --phase mae --model hiera_tiny_224 "
            "--recipe in1k_mae)"
        )
    result = train(TrainConfig(**fields), args.run_dir)
    print(json.dumps(result.to_json(), indent=1, sort_keys=True))
    return 0


def _profile(args: argparse.Namespace):
    from hiera.launch.submit import ClusterProfile

    return ClusterProfile.load(
        args.profile,
        partition=getattr(args, "partition", None),
        account=getattr(args, "account", None),
        qos=getattr(args, "qos", None),
        constraint=getattr(args, "constraint", None),
        root=args.root,
    )


def cmd_submit(args: argparse.Namespace) -> int:
    from hiera.launch.submit import submit

    submit(
        args.grid,
        cluster=args.cluster,
        only=args.only,
        dry_run=args.dry_run,
        seeds=args.seeds,
        profile=_profile(args),
        allow_dirty=args.allow_dirty,
        force=args.force,
        resubmit_stale=args.resubmit_stale,
    )
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from hiera.launch.grid import grid_runs
    from hiera.launch.submit import format_status, grid_context, resolve_root, run_states, select, submit

    profile = _profile(args)
    name, runs = grid_runs(args.grid, grid_context(args.seeds, profile))  # the context submit uses: same specs
    found = run_states(select(runs, args.only, name), resolve_root(None, profile) / name)
    print(format_status(name, found))
    # Only what was asked for: failed runs (and, with --force, unknown ones), stale runs; submit looks again under
    # the grid's lock, so a run that changed meanwhile is not submitted twice.
    kinds = set()
    if args.resubmit_failed:
        kinds |= {"failed", "unknown"} if args.force else {"failed"}
    if args.resubmit_stale:
        kinds.add("stale")
    if any(s.state in kinds for s in found):
        submit(
            args.grid,
            cluster=args.cluster,
            only=args.only,
            seeds=args.seeds,
            profile=profile,
            allow_dirty=args.allow_dirty,
            resubmit=kinds,
            resubmit_stale=args.resubmit_stale,
        )
    return 0


def cmd_collect(args: argparse.Namespace) -> int:
    from hiera.launch.submit import collect

    path = collect(
        args.grid,
        seeds=args.seeds,
        profile=_profile(args),
        out_dir=args.out,
        only=args.only,
        prune=args.prune,
        echo=print,
    )
    print(f"records written to {path}")
    return 0


def _grid_args(p: argparse.ArgumentParser, launch: bool) -> None:
    p.add_argument("grid", type=Path, help="a grid file, e.g. ablations/t01_ladder_images.py")
    p.add_argument("--seeds", type=int, default=1, help="seeds per run (default 1)")
    p.add_argument("--only", help="glob over run ids, e.g. 'hiera_large_224.a_*'")
    p.add_argument("--root", help="run directories' root (default: the profile's, else results/runs)")
    p.add_argument("--profile", help="cluster profile: slurm/clusters/NAME.json or a JSON path")
    if launch:
        p.add_argument("--cluster", default="slurm", choices=("slurm", "local", "debug"))
        p.add_argument("--partition")
        p.add_argument("--account")
        p.add_argument("--qos")
        p.add_argument("--constraint")
        p.add_argument("--allow-dirty", action="store_true", help="launch from a dirty git tree (diff recorded)")
        p.add_argument(
            "--force",
            action="store_true",
            help="also submit runs whose state is unknown (submit; status with --resubmit-failed): "
            "squeue/sacct failed or timed out, so their job may still be alive; check by hand first",
        )
        p.add_argument(
            "--resubmit-stale",
            action="store_true",
            help="also submit stale runs (their directory's spec.json differs from the grid's entry): the "
            "old directory is renamed to <run dir>.stale-<date>, nothing is deleted; without this "
            "flag, move a stale run's directory away by hand to run it again",
        )
    else:
        p.add_argument(
            "--prune",
            action="store_true",
            help="let the current states replace every line: a done record whose run directory is gone or "
            "stale becomes its current state, lines of runs no longer in the grid are dropped "
            "(default: merge, never losing a done record)",
        )


def cmd_breakdown(args: argparse.Namespace, patterns: list[str]) -> int:
    """`hiera-study bench PATTERN... --breakdown`: one profiled step-time breakdown per variant (hiera/breakdown.py)."""
    from hiera.bench import protocol_config
    from hiera.breakdown import DEFAULTS, run_breakdown

    given = {
        "--protocol": args.protocol,
        "--compile": args.compile or None,
        "--sweep": args.sweep or None,
        "--max-batch": args.max_batch,
        "--peers": args.peers or None,
        "--isolate": args.isolate or None,
        "--no-sep-pad-overhead": args.no_sep_pad_overhead or None,
        "--peak-tflops": args.peak_tflops,
        "--official-python": args.official_python,
    }
    unused = [flag for flag, value in given.items() if value is not None]
    if unused:
        raise ValueError(
            f"--breakdown profiles our eager model at one batch size; drop {', '.join(unused)} "
            "(it takes --mode, --precision, --attn, --batch-size, --device, --warmup, --iters, --trials, "
            "--mask-ratio, --out)"
        )
    cfg = protocol_config(
        None,
        mode=args.mode,
        precision=args.precision,
        attn=args.attn,
        batch_sizes=(args.batch_size[0],) if args.batch_size else None,
        device=args.device,
        warmup=DEFAULTS["warmup"] if args.warmup is None else args.warmup,
        iters=DEFAULTS["iters"] if args.iters is None else args.iters,
        trials=DEFAULTS["trials"] if args.trials is None else args.trials,
        mask_ratio=args.mask_ratio,
    )
    overrides = parse_overrides([i for i in args.items if "=" in i])
    path = run_breakdown(patterns, cfg, out_dir=args.out, overrides=overrides)
    print(f"breakdown records appended to {path}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from hiera.bench import protocol_config, run

    patterns = [i for i in args.items if "=" not in i]
    if not patterns:
        raise ValueError("name at least one variant or glob, e.g. 'hiera_large_224*'")
    if args.breakdown:
        return cmd_breakdown(args, patterns)
    cfg = protocol_config(
        args.protocol,
        mode=args.mode,
        precision=args.precision,
        attn=args.attn,
        compile=args.compile,
        batch_sizes=tuple(args.batch_size) if args.batch_size else None,
        sweep=True if args.sweep else None,
        max_batch=args.max_batch,
        warmup=args.warmup,
        iters=args.iters,
        trials=args.trials,
        device=args.device,
        peers=args.peers or None,
        sep_pad_overhead=False if args.no_sep_pad_overhead else None,
        mask_ratio=args.mask_ratio,
        peak_tflops=args.peak_tflops,
        official_python=args.official_python,
    )
    overrides = parse_overrides([i for i in args.items if "=" in i])
    path = run(patterns, cfg, overrides, out_dir=args.out, isolate=args.isolate)
    print(f"records appended to {path}")
    return 0


# Failures a user can fix (a bad value, a missing or unreadable path, a full disk, a busy lock, a hung queue command,
# too big a batch): one line naming the fix and exit 2. Anything else is a bug and keeps its traceback.
EXPECTED = (ValueError, OSError, RuntimeError, subprocess.TimeoutExpired, OverflowError)
# What to lower after an out-of-memory, per command.
OOM_FIX = {
    "bench": "lower --batch-size (or --max-batch with --sweep)",
    "train": "lower batch_size=N or use a device with more memory",
    "demo": "lower --width or run with --device cpu",
}


def _one_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    if not lines:
        return "(no message)"
    return lines[0] + (" [more with --debug]" if len(lines) > 1 else "")


def _os_error(e: OSError) -> str:
    """An OSError as `<what is wrong with which path>; <how to fix it>`."""
    path = e.filename
    if path is None:
        return _one_line(str(e))  # raised by our code with its own message
    where = f"{path}" + (f" -> {e.filename2}" if e.filename2 is not None else "")
    if isinstance(e, PermissionError):
        return f"permission denied: {where}; check its owner and mode (ls -ld {path}) or choose another path"
    if isinstance(e, IsADirectoryError):
        return f"{where} is a directory where a file is expected; give a file, or move the directory away"
    if isinstance(e, NotADirectoryError):
        return (
            f"{where}: part of this path is a file where a directory is expected; move that file or choose another path"
        )
    if isinstance(e, FileExistsError):
        return f"{where} already exists (a file where a directory is expected?); move it away or choose another path"
    if isinstance(e, FileNotFoundError):
        return f"no such file or directory: {where}; check the path"
    if e.errno == errno.ENOSPC:
        return (
            f"no space left on the device writing {where}; free space or choose another output directory, then "
            "run again (files written atomically kept their previous version)"
        )
    if e.errno == errno.EROFS:
        return f"{where} is on a read-only file system; choose a writable output directory"
    return f"{e.strerror or _one_line(str(e))}: {where}"


def error_line(e: BaseException, command: str | None = None) -> str:
    """The one line `hiera-study: error: ...` says for an expected failure `e` of `hiera-study <command>`."""
    if isinstance(e, torch.OutOfMemoryError):
        stage = getattr(e, "bench_stage", None)
        step = f"`hiera-study {command}`" + (f" ({stage})" if stage else "")
        return f"out of memory during {step}: {_one_line(str(e))}; {OOM_FIX.get(command or '', 'lower the batch size')}"
    if isinstance(e, subprocess.TimeoutExpired):
        cmd = " ".join(map(str, e.cmd)) if isinstance(e.cmd, (list, tuple)) else str(e.cmd)
        return f"`{cmd}` did not answer within {e.timeout:g} s; check that it works (run it by hand) and try again"
    if isinstance(e, OverflowError):
        return f"a number is out of range ({_one_line(str(e))}); check the key=value overrides and flags"
    if isinstance(e, OSError):
        return _os_error(e)
    return _one_line(str(e))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hiera-study", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the full traceback of an error (also HIERA_DEBUG=1; accepted after the command)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("variants", help="list registered variants with params and GMACs")
    p.add_argument("pattern", nargs="?", default="*", help="glob over names, e.g. 'hiera_large_224*' (default: all)")
    p.add_argument("--json", action="store_true", help="print a JSON list of objects")
    p.add_argument("--write-stats", action="store_true", help="recount every variant with fvcore and save")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="ModelConfig field overrides")
    p.set_defaults(func=cmd_variants)
    p = sub.add_parser("bench", help="samples/s per variant (and timm peers), records in results/speed/")
    p.add_argument(
        "items", nargs="+", metavar="PATTERN|key=value", help="variant names or globs; ModelConfig overrides"
    )
    p.add_argument(
        "--protocol",
        help="preset: 'paper' (fp16, math attention, no compile, batch sweep) or 'modern' "
        "(bf16, SDPA, torch.compile, batch sweep); explicit flags win",
    )
    p.add_argument("--mode", help="infer (default) | train (fwd+bwd+AdamW) | mae (MAE pretraining step)")
    p.add_argument("--precision", help="fp32 | fp16 | bf16 (autocast); default fp16 on GPU, fp32 on CPU")
    p.add_argument("--attn", help="math (default; as the paper) | sdpa")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None, help="torch.compile the model")
    p.add_argument("--batch-size", type=int, nargs="+", help="batch sizes to time (default 64)")
    p.add_argument("--sweep", action="store_true", help="powers of two up to --max-batch; the best is flagged")
    p.add_argument("--max-batch", type=int)
    p.add_argument("--warmup", type=int)
    p.add_argument("--iters", type=int, help="timed steps per trial")
    p.add_argument("--trials", type=int, help="timed trials (median and spread are recorded)")
    p.add_argument("--device", help="cuda (default when present) | cpu")
    p.add_argument("--peers", action="store_true", help="also time timm's hiera_*/mvitv2_* at the same settings")
    p.add_argument(
        "--no-sep-pad-overhead", action="store_true", help="do not also time rows a-c with separate-and-pad off"
    )
    p.add_argument("--mask-ratio", type=float, help="MAE mode (default 0.6 images, 0.9 video)")
    p.add_argument("--peak-tflops", type=float, help="device peak for MFU when the device is not in the table")
    p.add_argument("--isolate", action="store_true", help="each variant in a fresh Python process")
    p.add_argument(
        "--official-python",
        metavar="PYTHON",
        help="interpreter of a separate environment with the official hiera-transformer: time it too",
    )
    p.add_argument(
        "--breakdown",
        action="store_true",
        help="profile where one step's time goes per op family (patch_embed, linear, attention, q_pool, "
        "kv_pool, rel_pos, ...) instead; records in results/breakdown/",
    )
    p.add_argument(
        "--out",
        type=Path,
        help="directory for the JSONL records (default results/speed/; with --breakdown results/breakdown/)",
    )
    p.set_defaults(func=cmd_bench)
    p = sub.add_parser("train", help="one training phase: MAE pretraining, finetuning or supervised")
    p.add_argument("--phase", choices=("mae", "finetune", "supervised"))
    p.add_argument("--model", help="a registered variant (hiera-study variants)")
    p.add_argument("--recipe", help="a preset of hiera/recipes.py, e.g. in1k_mae, in1k_finetune, k400_mae")
    p.add_argument("--run-dir", type=Path, required=True, help="the run directory (an existing one is resumed)")
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="TrainConfig fields (dataset=imagenet data_path=... batch_size=...), model.X=, recipe.X=",
    )
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("submit", help="launch a grid file on SLURM (or local / debug) with submitit")
    _grid_args(p, launch=True)
    p.add_argument(
        "--dry-run", action="store_true", help="print every run, its resources and its directory; submit nothing"
    )
    p.set_defaults(func=cmd_submit)
    p = sub.add_parser(
        "status",
        help="one line per run of a grid: done / running / pending / failed / missing / "
        "unknown (the queue could not be read) / stale (its spec.json differs from the grid)",
    )
    _grid_args(p, launch=True)
    p.add_argument("--resubmit-failed", action="store_true", help="submit the failed runs again (they resume)")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("collect", help="gather a grid's finished runs into results/records/<grid>.jsonl")
    _grid_args(p, launch=False)
    p.add_argument("--out", type=Path, help="records directory (default results/records)")
    p.set_defaults(func=cmd_collect)
    p = sub.add_parser("demo", help="the Quickstart main job: Table 1 on the embedded data")
    p.add_argument("--out", type=Path, help="directory of the demo's runs and records (default results/runs/demo)")
    p.add_argument("--video", action="store_true", help="also the video ladder on moving Fashion-MNIST")
    p.add_argument("--width", type=int, default=32, help="channels of stage 1 of the proxy models (default 32)")
    p.add_argument("--train-samples", type=int, default=10000, help="training images per epoch (default 10000)")
    p.add_argument("--eval-samples", type=int, default=2000, help="test images evaluated (default 2000)")
    p.add_argument("--epochs-scale", type=float, default=1.0, help="multiply every phase's epochs (default 1)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--jobs", type=int, help="runs trained at once (default: one per CPU core; 1 on a GPU)")
    p.add_argument("--no-bench", action="store_true", help="skip the speed profile")
    p.add_argument("--no-figures", action="store_true", help="tables only")
    p.set_defaults(func=cmd_demo)
    from hiera.analysis import register

    register(sub)  # tables, plots
    args, extra = parser.parse_known_args(argv)
    if "--debug" in extra:  # `hiera-study bench ... --debug` works as well as `hiera-study --debug bench ...`
        args.debug, extra = True, [i for i in extra if i != "--debug"]
    flags = [i for i in extra if i.startswith("-")]
    if args.command == "train":
        args.overrides = args.overrides + [i for i in extra if not i.startswith("-")]
        extra = flags
    if flags or (extra and args.command != "variants"):
        parser.error(f"unrecognized arguments: {' '.join(flags or extra)}")
    if args.command == "variants":  # the glob and key=value overrides may come in any order
        items = ([args.pattern] if args.pattern != "*" else []) + args.overrides + extra
        globs = [i for i in items if "=" not in i]
        if len(globs) > 1:
            parser.error(f"one name pattern at most, got {' '.join(globs)}")
        args.pattern = globs[0] if globs else "*"
        args.overrides = [i for i in items if "=" in i]
    debug = args.debug or os.environ.get("HIERA_DEBUG", "").strip() not in ("", "0")
    try:
        return args.func(args)
    except EXPECTED as e:
        if debug:
            traceback.print_exc()
        print(f"hiera-study: error: {error_line(e, args.command)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
