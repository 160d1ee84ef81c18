"""Records -> the paper's tables and figures (paper Tables 1, 2, 3, 16, 17; Fig. 1 style plots).

Pure functions of the files in `results/` (see results/README.md): `records` loads and validates them, `tables`
renders Tables 1-3 and the speed tables (Markdown, LaTeX, CSV), `plots` draws the figures for `paper_figures/`.
`register(subparsers)` adds the `tables` and `plots` subcommands to the `hiera-study` command line:

    hiera-study tables [--records DIR ...] [--speed DIR] [--breakdown DIR] [--out results/tables] [--readme README.md]
                       [--grid GLOB]
    hiera-study plots  [--records DIR ...] [--speed DIR] [--breakdown DIR] [--out paper_figures] [--grid GLOB]

Both refuse with one line, before writing anything, records they cannot read and explicitly named sources that
hold none, so a typo or an unmounted disk never replaces the previous tables with empty ones (`_load`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hiera.analysis.records import BREAKDOWN_DIR, PAPER_DIR, RECORDS_DIR, SPEED_DIR, Records, display_path, load_all

__all__ = ["Records", "load_all", "register", "cmd_tables", "cmd_plots"]


def _command(name: str, args: argparse.Namespace, defaults: dict[str, object]) -> str:
    """The command line that reproduces an output, with only the flags that differ from the defaults. `--readme`
    is left out: it copies the tables into a README but changes none of them, so `tables.md` is the same file
    with or without it (its header names both commands)."""
    parts = [f"hiera-study {name}"]
    for flag, value in (("--records", args.records), ("--speed", args.speed), ("--breakdown", args.breakdown),
                        ("--out", args.out), ("--paper", args.paper), ("--grid", args.grid)):
        if value is None or value == defaults.get(flag):
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

    def given(value: object, default: Path) -> list[Path]:
        values = [Path(v) for v in (value if isinstance(value, list) else [value])]
        return [] if [v.resolve() for v in values] == [default.resolve()] else values

    for frame, value, default, what, flag in ((recs.runs, args.records, RECORDS_DIR, "run", "--records"),
                                              (recs.speed, args.speed, SPEED_DIR, "speed", "--speed"),
                                              (recs.breakdown, args.breakdown, BREAKDOWN_DIR, "breakdown",
                                               "--breakdown")):
        paths = given(value, default)
        if paths and frame.empty:
            grid = f" of grid '{args.grid}'" if what == "run" and args.grid != "*" else ""
            raise ValueError(f"{flag} {' '.join(display_path(p) for p in paths)} holds no {what} records{grid}; "
                             "check the path (nothing was written)")
    if args.grid != "*" and recs.runs.empty:
        raise ValueError(f"--grid '{args.grid}' matches no run records in "
                         f"{' '.join(display_path(Path(p)) for p in args.records)}; `ls` them for the grid names "
                         "(nothing was written)")
    return recs


def cmd_tables(args: argparse.Namespace) -> int:
    """`hiera-study tables`: every table into --out, and optionally into a README between the table markers."""
    from hiera.analysis.tables import TABLES_DIR, update_readme, write_tables

    recs = _load(args)
    command = _command("tables", args, {"--records": [RECORDS_DIR], "--speed": SPEED_DIR, "--out": TABLES_DIR,
                                        "--paper": PAPER_DIR, "--grid": "*", "--breakdown": BREAKDOWN_DIR})
    written = write_tables(recs, args.out, command)
    if args.readme is not None:
        update_readme(args.readme, (Path(args.out) / "tables.md").read_text())
    n_runs, n_done = len(recs.runs), int((recs.runs["status"] == "done").sum())
    print(f"{n_runs} run records ({n_done} done), {len(recs.speed)} speed records, {len(recs.breakdown)} breakdown "
          f"records -> {len(written)} files in "
          f"{display_path(Path(args.out))}" + (f"; updated {args.readme}" if args.readme else ""))
    return 0


def cmd_plots(args: argparse.Namespace) -> int:
    """`hiera-study plots`: every figure the records support into --out, with captions and index.md."""
    from hiera.analysis.plots import FIGURES_DIR, plot_all

    recs = _load(args)
    command = _command("plots", args, {"--records": [RECORDS_DIR], "--speed": SPEED_DIR, "--out": FIGURES_DIR,
                                       "--paper": PAPER_DIR, "--grid": "*", "--breakdown": BREAKDOWN_DIR})
    made = plot_all(recs, args.out, command)
    print(f"{len(made)} figures -> {display_path(Path(args.out))} (index.md lists them)")
    return 0


def _common(p: argparse.ArgumentParser, out: Path, what: str) -> None:
    p.add_argument("--records", type=Path, nargs="+", default=[RECORDS_DIR], metavar="PATH",
                   help="directories of <grid>.jsonl run records, single JSONL files, or run directories holding "
                        "result.json (default results/records)")
    p.add_argument("--speed", type=Path, default=SPEED_DIR, metavar="DIR",
                   help="directory of hiera-study bench records (default results/speed)")
    p.add_argument("--breakdown", type=Path, default=BREAKDOWN_DIR, metavar="DIR",
                   help="directory of hiera-study bench --breakdown records (default results/breakdown)")
    p.add_argument("--out", type=Path, default=out, metavar="DIR", help=f"where to write the {what} (default "
                   f"{display_path(out)})")
    p.add_argument("--paper", type=Path, default=PAPER_DIR, metavar="DIR",
                   help="the paper's reference CSVs (default results/paper)")
    p.add_argument("--grid", default="*", metavar="GLOB", help="only grids whose name matches (default all)")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `tables` and `plots` to the `hiera-study` subcommands; each sets `func(args) -> int`."""
    from hiera.env import REPO

    p = subparsers.add_parser("tables", help="paper Tables 1-3 and speed tables from the records (md, tex, csv)")
    _common(p, REPO / "results" / "tables", "tables")
    p.add_argument("--readme", type=Path, metavar="PATH",
                   help="also replace the text between <!-- tables:begin --> and <!-- tables:end --> in this file")
    p.set_defaults(func=cmd_tables)
    p = subparsers.add_parser("plots", help="figures from the records into paper_figures/ (png, pdf, captions)")
    _common(p, REPO / "paper_figures", "figures")
    p.set_defaults(func=cmd_plots)
