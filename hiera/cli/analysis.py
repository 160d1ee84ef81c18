"""`hiera-study tables` and `hiera-study plots`: the paper's tables and figures from the records (`hiera.analysis`).

    hiera-study tables [--records DIR ...] [--speed DIR] [--breakdown DIR] [--out results/tables] [--readme README.md]
                       [--grid GLOB]
    hiera-study plots  [--records DIR ...] [--speed DIR] [--breakdown DIR] [--out paper_figures] [--grid GLOB]

Both refuse with one line, before writing anything, records they cannot read and explicitly named sources that
hold none, so a typo or an unmounted disk never replaces the previous tables with empty ones (`_load`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hiera.analysis.frames import Records, display_path, load_all
from hiera.env import at_root


def _command(name: str, args: argparse.Namespace) -> str:
    """The command line that reproduces an output, with the flags that were given (unset ones take the project's
    default locations). `--readme` is left out: it copies the tables into a README but changes none of them, so
    `tables.md` is the same file with or without it (its header names both commands)."""
    parts = [f"hiera-study {name}"]
    for flag, value in (
        ("--records", args.records),
        ("--speed", args.speed),
        ("--breakdown", args.breakdown),
        ("--out", args.out),
        ("--paper", args.paper),
        ("--grid", args.grid),
    ):
        if value is None or (flag == "--grid" and value == "*"):
            continue
        values = value if isinstance(value, list) else [value]
        parts.append(f"{flag} " + " ".join(display_path(Path(v)) if flag != "--grid" else f"'{v}'" for v in values))
    return " ".join(parts)


def _load(args: argparse.Namespace) -> Records:
    """The records for `tables` / `plots`, refusing (one line, nothing written) what would overwrite the previous
    outputs with empty ones: an unreadable directory (PermissionError, from the loaders), a `--records`,
    `--speed` or `--breakdown` given explicitly that holds no records (a typo, an unmounted disk), a `--grid`
    that matches no run. The defaults may be empty: a fresh clone has no results/records/ yet, and its tables
    then show the paper's numbers and the committed speed records."""
    recs = load_all(args.records, args.speed, args.paper, args.grid, args.breakdown)
    for frame, value, what, flag in (
        (recs.runs, args.records, "run", "--records"),
        (recs.speed, args.speed, "speed", "--speed"),
        (recs.breakdown, args.breakdown, "breakdown", "--breakdown"),
    ):
        paths = [] if value is None else [Path(v) for v in (value if isinstance(value, list) else [value])]
        if paths and frame.empty:
            grid = f" of grid '{args.grid}'" if what == "run" and args.grid != "*" else ""
            raise ValueError(
                f"{flag} {' '.join(display_path(p) for p in paths)} holds no {what} records{grid}; "
                "check the path (nothing was written)"
            )
    if args.grid != "*" and recs.runs.empty:
        where = " ".join(display_path(Path(p)) for p in args.records) if args.records else "results/records"
        raise ValueError(
            f"--grid '{args.grid}' matches no run records in {where}; `ls` them for the grid names "
            "(nothing was written)"
        )
    return recs


def cmd_tables(args: argparse.Namespace) -> int:
    """`hiera-study tables`: every table into --out, and optionally into a README between the table markers."""
    from hiera.analysis.render import update_readme  # pandas, matplotlib: loaded for these two commands only
    from hiera.analysis.tables import TABLES_DIR, write_tables

    recs = _load(args)
    out = Path(args.out) if args.out is not None else at_root(*TABLES_DIR)
    written = write_tables(recs, out, _command("tables", args))
    if args.readme is not None:
        update_readme(args.readme, (out / "tables.md").read_text())
    n_runs, n_done = len(recs.runs), int((recs.runs["status"] == "done").sum())
    print(
        f"{n_runs} run records ({n_done} done), {len(recs.speed)} speed records, {len(recs.breakdown)} breakdown "
        f"records -> {len(written)} files in "
        f"{display_path(out)}" + (f"; updated {args.readme}" if args.readme else "")
    )
    return 0


def cmd_plots(args: argparse.Namespace) -> int:
    """`hiera-study plots`: every figure the records support into --out, with captions and index.md."""
    from hiera.analysis.plots import FIGURES_DIR, plot_all  # matplotlib, seaborn: this command only

    recs = _load(args)
    out = Path(args.out) if args.out is not None else at_root(*FIGURES_DIR)
    made = plot_all(recs, out, _command("plots", args))
    print(f"{len(made)} figures -> {display_path(out)} (index.md lists them)")
    return 0


def _common(p: argparse.ArgumentParser, out: str, what: str) -> None:
    """The flags `tables` and `plots` share; unset paths are the project's (`hiera.env.project_root`)."""
    p.add_argument(
        "--records",
        type=Path,
        nargs="+",
        metavar="PATH",
        help="directories of <grid>.jsonl run records, single JSONL files, or run directories holding "
        "record.json (default results/records)",
    )
    p.add_argument(
        "--speed", type=Path, metavar="DIR", help="directory of hiera-study bench records (default results/speed)"
    )
    p.add_argument(
        "--breakdown",
        type=Path,
        metavar="DIR",
        help="directory of hiera-study bench --breakdown records (default results/breakdown)",
    )
    p.add_argument("--out", type=Path, metavar="DIR", help=f"where to write the {what} (default {out})")
    p.add_argument("--paper", type=Path, metavar="DIR", help="the paper's reference CSVs (default results/paper)")
    p.add_argument("--grid", default="*", metavar="GLOB", help="only grids whose name matches (default all)")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `tables` and `plots` to the `hiera-study` subcommands; each sets `func(args) -> int`."""
    p = subparsers.add_parser("tables", help="paper Tables 1-3 and speed tables from the records (md, tex, csv)")
    _common(p, "results/tables", "tables")
    p.add_argument(
        "--readme",
        type=Path,
        metavar="PATH",
        help="also replace the text between <!-- tables:begin --> and <!-- tables:end --> in this file",
    )
    p.set_defaults(func=cmd_tables)
    p = subparsers.add_parser("plots", help="figures from the records into paper_figures/ (png, pdf, captions)")
    _common(p, "paper_figures", "figures")
    p.set_defaults(func=cmd_plots)
