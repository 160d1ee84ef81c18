"""`hiera-study` command line. Thin: it parses arguments and calls the library.

    hiera-study variants [PATTERN] [--json] [key=value ...]   list registered variants: step, size, modality,
                                                               sparse (masked) encoding, params and GMACs
    hiera-study variants --write-stats                         recount every variant with fvcore (slow)
    hiera-study variants --write-stats --missing-only          count only configs the record lacks, keep the rest
    hiera-study bench PATTERN... [--protocol paper|modern] ...  samples/s per variant, records in results/speed/
    hiera-study bench PATTERN... --breakdown [--mode M] ...     where a step's time goes per op family,
                                                               records in results/breakdown/
    hiera-study train --phase mae|finetune|supervised --model NAME --recipe R --run-dir DIR [key=value ...]
                                                               one training phase (resumes when DIR exists)
    hiera-study submit ablations/X.py [--cluster slurm|local|debug] [--only GLOB] [--dry-run] [--seeds N]
                                                               launch a grid (skips done / queued runs)
    hiera-study status ablations/X.py [--resubmit-failed]      one line per run: done/running/pending/failed/missing
                                                               /unknown/stale (hiera/launch/states.py says what)
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

The subcommands live by topic: `models` (variants, bench), `runs` (train, demo), `grids` (submit, status,
collect), `analysis` (tables, plots); each module's `register` adds its parsers and `main` calls them all.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence

from hiera.cli import analysis, grids, models, runs
from hiera.cli.errors import EXPECTED, error_line

__all__ = ["error_line", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hiera-study", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the full traceback of an error (also HIERA_DEBUG=1; accepted after the command)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    # One place registers every subcommand, in the order `--help` lists them.
    for module in (models, runs, grids, analysis):
        module.register(sub)
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
