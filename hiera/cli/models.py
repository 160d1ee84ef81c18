"""`hiera-study variants` and `hiera-study bench` (speed, and `--breakdown`): the registered models, their counts
and their speed (paper Tables 1-2's params, GMACs and im/s)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hiera.bench.breakdown import DEFAULTS, run_breakdown
from hiera.bench.throughput import protocol_config, run
from hiera.model.config import parse_overrides
from hiera.model.flops import load_stats, model_stats, write_stats
from hiera.model.ladder import EXTENSIONS
from hiera.model.registry import Variant, list_variants


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
    if args.missing_only and not args.write_stats:
        raise ValueError("--missing-only goes with --write-stats (count only the variants the record lacks)")
    if args.write_stats:
        if args.overrides or args.pattern != "*":
            raise ValueError("--write-stats recounts every registered variant; drop the pattern and overrides")
        counted = write_stats(variants, progress=sys.stderr.isatty(), missing_only=args.missing_only)
        print(f"wrote counts of {len(variants)} variants ({counted} counted now)")
        return 0
    if args.missing_only:
        raise ValueError("--missing-only goes with --write-stats")
    rows = variant_rows(variants, parse_overrides(args.overrides))
    print(json.dumps(rows, indent=1) if args.json else format_table(rows))
    beyond = [s for s in EXTENSIONS if any(r["step"] == s.id for r in rows)]
    if beyond and not args.json:  # the text table says which steps are not the paper's (JSON: the step ids)
        print(
            "\n".join(
                f"step {s.id}: beyond the paper: {s.title.removeprefix('+ ').removesuffix(' (beyond the paper)')}"
                for s in beyond
            )
        )
    return 0


def cmd_breakdown(args: argparse.Namespace, patterns: list[str]) -> int:
    """`hiera-study bench PATTERN... --breakdown`: one profiled step-time breakdown per variant
    (`hiera/bench/breakdown.py`)."""

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


def register(sub: argparse._SubParsersAction) -> None:
    """Add `variants` and `bench` to the `hiera-study` subcommands; each sets `func(args) -> int`."""
    p = sub.add_parser("variants", help="list registered variants with params and GMACs")
    p.add_argument("pattern", nargs="?", default="*", help="glob over names, e.g. 'hiera_large_224*' (default: all)")
    p.add_argument("--json", action="store_true", help="print a JSON list of objects")
    p.add_argument("--write-stats", action="store_true", help="recount every variant with fvcore and save")
    p.add_argument(
        "--missing-only",
        action="store_true",
        help="with --write-stats: keep the record's entries, count only new configs",
    )
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
