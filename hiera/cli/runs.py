"""`hiera-study train` (one training phase) and `hiera-study demo` (the Quickstart's ladder on the embedded data)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hiera.demo import run_demo
from hiera.train.config import TrainConfig, parse_train_overrides
from hiera.train.loop import train


def cmd_demo(args: argparse.Namespace) -> int:

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


def register(sub: argparse._SubParsersAction) -> None:
    """Add `train` and `demo` to the `hiera-study` subcommands; each sets `func(args) -> int`."""
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
