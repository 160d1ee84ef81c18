"""`hiera-study submit`, `status` and `collect`: a grid file on SLURM (or locally) with submitit (`hiera.launch`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from hiera.launch.collect import collect
from hiera.launch.grid import grid_runs
from hiera.launch.profile import ClusterProfile, grid_context, resolve_root
from hiera.launch.states import archive_dir, format_status, run_states, select
from hiera.launch.submit import submit


def _profile(args: argparse.Namespace):

    return ClusterProfile.load(
        args.profile,
        partition=getattr(args, "partition", None),
        account=getattr(args, "account", None),
        qos=getattr(args, "qos", None),
        constraint=getattr(args, "constraint", None),
        root=args.root,
    )


def cmd_submit(args: argparse.Namespace) -> int:

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

    profile = _profile(args)
    name, runs = grid_runs(args.grid, grid_context(args.seeds, profile))  # the context submit uses: same specs
    found = run_states(select(runs, args.only, name), resolve_root(None, profile) / name, archive_dir(name))
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


def register(sub: argparse._SubParsersAction) -> None:
    """Add `submit`, `status` and `collect` to the `hiera-study` subcommands; each sets `func(args) -> int`."""
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
