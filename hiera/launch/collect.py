"""`collect`: a grid's records into `results/records/<grid>.jsonl`, its runs' small files into the archive.

Guarantees:
- `collect` merges, never destroys: a `done` line is not replaced by a weaker state, and lines of runs it did not
  look at (`--only`, runs since removed from the grid) are kept, unless `--prune`. A root holding none of the
  grid's run directories (a wrong `--root`, an unmounted filesystem) is an error, not a file of `missing`, unless
  every run is in the archive. The file is written atomically under `<out>/.<grid>.lock`: a kill at any moment
  leaves the old file or the new.
- `collect` archives what tables and figures read from a run directory (`ARCHIVE_FILES`, the record's
  `predictions` / `labels`, and `mae/reconstruction.npz` of the lowest seed per variant and setting: ~100s of KB
  each) into `<out>/../archive/<grid>/<run id>/` in the run directory's layout, never checkpoints or tb/, and
  names it in the record (`archive`, relative to `<out>/..`), so the records and the archive together are the
  committed source of truth. Each copy is atomic and skipped when the archived file is already identical (a
  second collect rewrites nothing); nothing in the archive is ever deleted (not by `--prune` either: remove a
  dropped run's folder by hand, in git).
The run states it reads are `hiera.launch.states`; the record format is `hiera.records`.
"""

from __future__ import annotations

import operator
from pathlib import Path
from typing import Any

from hiera.env import at_root
from hiera.files import TEMP, Lock, atomic_write, atomic_write_text, read_jsonl
from hiera.launch.grid import GridRun, grid_runs
from hiera.launch.profile import ClusterProfile, grid_context, resolve_root
from hiera.launch.states import archive_dir, env_seconds, run_states, select
from hiera.launch.submit import LOCK_WAIT_ENV
from hiera.model.registry import get_variant
from hiera.records.run import RUN_RECORD, RUN_RECORD_V1, RunRecord, read_run_record_json, run_records_text
from hiera.train.config import PHASES
from hiera.train.phase_dir import as_json
from hiera.train.pipeline import spec_record

# What the tables and figures read from a finished run directory (besides the record's predictions / labels and
# the MAE reconstruction, chosen per run): small text files, copied into the archive with the same relative paths.

ARCHIVE_FILES = (
    "spec.json",
    RUN_RECORD,
    RUN_RECORD_V1,  # a run finished before records had their own name
    *(f"{phase}/{name}" for phase in PHASES for name in ("config.json", "metrics.jsonl")),
)
RECONSTRUCTION = "mae/reconstruction.npz"


def archive_run(run_dir: Path, dest: Path, record: RunRecord, reconstruction: bool) -> list[Path]:
    """Copy a finished run's small files (`ARCHIVE_FILES`, the predictions / labels its record names, and with
    `reconstruction` the MAE reconstruction) from `run_dir` into `dest`, keeping their relative paths.

    Files the run does not have are skipped (a supervised run has no mae/). Each copy is atomic, and one whose
    archived bytes are already identical is not rewritten, so collecting again leaves the archive (and git) alone.
    Returns the files written.
    """
    names = list(ARCHIVE_FILES)
    for name in (record.predictions, record.labels):
        # only paths inside the run directory: an absolute or `..` path would land outside the archive
        if isinstance(name, str) and not Path(name).is_absolute() and ".." not in Path(name).parts:
            names.append(Path(name).as_posix())
    if reconstruction:
        names.append(RECONSTRUCTION)
    written = []
    for name in names:
        src, dst = run_dir / name, dest / name
        if not src.is_file():
            continue
        data = src.read_bytes()
        if dst.is_file() and dst.read_bytes() == data:
            continue
        atomic_write(dst, operator.methodcaller("write", data))  # f.write(data)
        written.append(dst)
    return written


def _reconstruction_seeds(runs: list[GridRun]) -> dict[tuple[Any, Any], int]:
    """The lowest seed of each (variant, setting) of a grid: the one run whose reconstruction is archived (the
    figure shows one run per variant, its lowest seed; the others would only add ~100s of KB each to git)."""
    out: dict[tuple[Any, Any], int] = {}
    for r in runs:
        key = (r.spec.variant, r.spec.setting)
        out[key] = min(out.get(key, r.spec.seed), r.spec.seed)
    return out


def collect(
    grid_path: str | Path,
    seeds: int = 1,
    root: str | Path | None = None,
    out_dir: str | Path | None = None,
    profile: ClusterProfile | None = None,
    only: str | None = None,
    prune: bool = False,
    echo=None,
) -> Path:
    """Merge into `<out_dir>/<grid>.jsonl`: each finished run's record, and a status line for every other run.

    A `done` line stays when its run now looks weaker (a moved, emptied or stale run directory); lines of runs not
    looked at (outside `only`, or gone from the grid) stay too. `prune` lets the current states replace all.
    """

    profile = profile or ClusterProfile()
    root = resolve_root(root, profile)
    out = Path(out_dir) if out_dir else at_root("results", "records")
    name, runs = grid_runs(grid_path, grid_context(seeds, profile))
    chosen = select(runs, only, name)
    found = run_states(chosen, root / name, archive_dir(name, out))
    # A wrong --root (a typo, an unmounted filesystem) shows as no run directory of the grid at all. Runs done in
    # the archive need none; a grid wholly archived is collected from the archive alone.
    if not any(s.run_dir.is_dir() and s.detail != "archived" for s in found) and any(
        s.detail != "archived" for s in found
    ):
        raise ValueError(
            f"results root {root} holds none of the {len(found)} run directories of grid {name} "
            f"(looked for {root / name}/<run id>); pass the --root (or --profile) the grid was submitted "
            "with, or mount that filesystem; nothing written"
        )
    fresh: dict[str, dict[str, Any]] = {}
    lowest = _reconstruction_seeds(runs)
    for s in found:
        spec = s.run.spec
        if s.state == "done":
            record, written = read_run_record_json(s.run_dir)  # validated
            relative = Path("archive", name, spec.run)
            dest = out.parent / relative
            if not dest.resolve().is_relative_to((out.parent / "archive").resolve()):  # a run id with `..`
                raise ValueError(f"run id {spec.run!r} of grid {name} would archive outside {out.parent / 'archive'}")
            archive_run(s.run_dir, dest, record, spec.seed == lowest[(spec.variant, spec.setting)])
            # The line names the model as the grid does now: the run's spec matched the grid's as the model it
            # computes (`spec_diff`), so a model renamed since (a proxy, named before run schema 3 by the full-size
            # ladder it shrinks plus `model_args`) takes its current name. Written in the current schema.
            named = record.replace(
                variant=spec.variant, size_key=spec.size_key, model_args=as_json(spec.train.model_args) or None
            )
            line = named.to_json()
            if "run_dir" not in written:  # not the folder it was read from now (its archive, once the run's is gone)
                del line["run_dir"]
            # POSIX and relative to the records folder's parent: the same string resolves on any clone
            fresh[spec.run] = {**line, "archive": relative.as_posix()}
            continue
        error = s.detail if s.state in ("failed", "unknown", "stale") else None
        modality = get_variant(spec.variant).modality
        fresh[spec.run] = spec_record(spec, s.state, modality, s.run_dir, error=error).to_json()
    path = out / f"{name}.jsonl"
    out.mkdir(parents=True, exist_ok=True)
    # One collect of a grid at a time: the merge reads the file, then replaces it.
    with Lock(
        out / f".{name}.lock",
        f"records of grid {name} in {out} (another hiera-study collect)",
        env_seconds(LOCK_WAIT_ENV, 60.0),
    ):
        for p in out.glob(f".{name}.jsonl.*.tmp"):  # a killed collect's temporary file; under the lock, no owner
            if TEMP.match(p.name):
                p.unlink(missing_ok=True)
        old = read_jsonl(path) if path.is_file() else []
        # Every line by `RunRecord.to_json` (a finished run's record validated above and named as the grid names it
        # now, a status line), a line of before (a run outside --only) as it was.
        lines: list[dict[str, Any]] = []
        kept, seen = 0, set()
        old_by_run = {r.get("run"): r for r in old if isinstance(r, dict)}
        for r in runs:  # the grid's order; runs outside --only keep their line
            run = r.spec.run
            seen.add(run)
            before = old_by_run.get(run)
            now = fresh.get(run)
            if now is None:
                if before is not None:
                    lines.append(before)
                continue
            if not prune and before is not None and before.get("status") == "done" and now["status"] != "done":
                kept += 1
                lines.append(before)
            else:
                lines.append(now)
        dropped = [r for r in old if not (isinstance(r, dict) and r.get("run") in seen)]
        if not prune:
            lines += dropped  # runs no longer in the grid (or lines without a run id): not ours to delete
        atomic_write_text(path, run_records_text(lines))
    if echo is not None and kept:
        echo(
            f"{name}: kept {kept} done record(s) whose run directories now say otherwise (stale, missing, ...); "
            "--prune replaces them"
        )
    if echo is not None and dropped and not prune:
        echo(f"{name}: kept {len(dropped)} line(s) of runs no longer in the grid; --prune drops them")
    return path
