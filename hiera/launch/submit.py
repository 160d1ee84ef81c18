"""Launch a grid on SLURM with submitit (or locally): `submit`, and its dry-run plan.

    submit(grid file)   one job array per resource shape; runs already finished, queued or running are skipped
                        (their states: `hiera.launch.states`), so relaunching a grid is safe; the git SHA (and
                        diff when dirty) is recorded per launch
    status(grid file)   `hiera.launch.states` (one state per run, the error tail and log path of failed ones)
    collect(grid file)  `hiera.launch.collect` (records and the archive)

What is guaranteed:
- At most one live submission per run: `submit` holds `<root>/<grid>/.submit.lock` (`hiera.files.Lock`, a POSIX
  record lock that NFS and cluster filesystems share between nodes, dropped by the kernel if the holder dies)
  from the state check through writing every `job.json`; a second submit waits for it
  (`HIERA_SUBMIT_LOCK_WAIT_S`, default 60 s, then one line naming the holder) and then finds those runs queued.
  Each launch has its own record `launches/<date>-<pid>.json`, never overwritten.
- Every check that can fail (grid file, glob, partition, results root, dirty tree) fails before anything is
  submitted, in one line.

Clusters: `slurm` (submitit's SlurmExecutor: arrays, `--signal` before the time limit, requeue), `local`
(submitit's LocalExecutor: one background process per run) and `debug` (in this process, for breakpoints and
tests). Where a grid runs (profile, root, data paths) is `hiera.launch.profile`; the command line `hiera.cli.grids`.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hiera.env import git_state as code_git_state
from hiera.files import Lock, LockHeld, atomic_write_text
from hiera.launch.grid import Resources, grid_runs
from hiera.launch.profile import ClusterProfile, grid_context, resolve_root
from hiera.launch.states import STATES, QueueError, RunState, archive_dir, env_seconds, query, run_states, select

CLUSTERS = ("slurm", "local", "debug")
LOCK_WAIT_ENV = "HIERA_SUBMIT_LOCK_WAIT_S"  # how long a submit waits for another one of the same grid (default 60 s)
RUN_LOCK = ".lock"  # the lock `run_pipeline` holds in a run directory while it trains (hiera/train/pipeline.py)


# ---- checks -----------------------------------------------------------------------------------------------------


def check_root(root: Path) -> None:
    """The results root must be creatable and writable (a shared filesystem on a real cluster); creates nothing."""
    existing = root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(20, "a parent is not a directory")
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".hiera-write-test-"):
            pass
    except OSError as e:
        raise ValueError(
            f"results root {root} is not writable ({e.strerror}); pass --root DIR on a shared, writable filesystem"
        ) from None


def check_partition(partition: str | None) -> None:
    if shutil.which("sbatch") is None:
        raise ValueError("--cluster slurm needs SLURM's sbatch on PATH; use --cluster local or debug here")
    if not partition:
        raise ValueError(
            "--cluster slurm needs a partition: --partition NAME or a cluster profile with "
            "'partition' (sinfo lists them)"
        )
    try:
        known = [p.rstrip("*") for p in query(["sinfo", "-h", "-o", "%P"]).split()]
    except QueueError:  # the check is a courtesy: sbatch itself refuses an unknown partition
        return
    if partition not in known:
        raise ValueError(f"partition {partition!r} does not exist on this cluster; sinfo lists {', '.join(known)}")


def git_state(allow_dirty: bool) -> dict[str, Any]:
    """The code's git state for a launch record; a dirty tree is refused unless `allow_dirty` (then its diff)."""
    state = code_git_state(diff=True)
    if state["git_dirty"] and not allow_dirty:
        raise ValueError(
            "the git tree has uncommitted changes; commit them (runs record the SHA they ran) or "
            "pass --allow-dirty (the diff is then saved with the launch)"
        )
    return state


# ---- submit -----------------------------------------------------------------------------------------------------


def _executor(cluster: str, folder: Path, res: Resources, profile: ClusterProfile, grid: str):
    import submitit

    if cluster == "debug":
        return submitit.DebugExecutor(folder=folder)
    if cluster == "local":
        local = submitit.LocalExecutor(folder=folder)
        local.update_parameters(
            timeout_min=res.timeout_min, gpus_per_node=res.gpus_per_node, tasks_per_node=res.tasks_per_node, nodes=1
        )
        return local
    # A long run needs many attempts (each ends at the time limit, requeues, resumes): lift submitit's 3.
    ex = submitit.SlurmExecutor(folder=folder, max_num_timeout=1000)
    params: dict[str, Any] = dict(
        job_name=f"hiera-{grid}",
        time=res.timeout_min,
        nodes=res.nodes,
        ntasks_per_node=res.tasks_per_node,
        cpus_per_task=res.cpus_per_task or (profile.cpus_per_gpu if res.gpus_per_node else 1),
        partition=profile.partition,
        signal_delay_s=profile.signal_delay_s,
        array_parallelism=profile.array_parallelism,
        setup=list(profile.setup),
    )
    if res.gpus_per_node:
        params["gpus_per_node"] = res.gpus_per_node
    for key in ("account", "qos", "constraint"):
        if getattr(profile, key):
            params[key] = getattr(profile, key)
    if profile.mem_gb:
        params["mem"] = f"{profile.mem_gb}G"
    ex.update_parameters(**params)
    return ex


def _todo(found: list[RunState], kinds: set[str]) -> list[RunState]:
    """The runs to submit: those in `kinds`, but never a stale run whose job is still queued or running."""
    return [s for s in found if s.state in kinds and not (s.state == "stale" and s.live)]


def _unique(path: Path) -> Path:
    """`path`, or `path` with `-2`, `-3`, ... before its suffix: the first name not taken (callers hold the lock)."""
    n, candidate = 1, path
    while candidate.exists() or candidate.is_symlink():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate


def _move_aside(s: RunState, stamp: str) -> Path | None:
    """Rename a stale run directory to `<run dir>.stale-<stamp>` (never delete); None if a live writer holds it."""
    try:
        lock = Lock(s.run_dir / RUN_LOCK, f"run directory {s.run_dir}").acquire()
    except LockHeld:
        return None
    try:
        target = _unique(s.run_dir.with_name(f"{s.run_dir.name}.stale-{stamp}"))
        s.run_dir.rename(target)
    finally:
        lock.release()
    return target


def submit(
    grid_path: str | Path,
    cluster: str = "slurm",
    only: str | None = None,
    dry_run: bool = False,
    seeds: int = 1,
    profile: ClusterProfile | None = None,
    root: str | Path | None = None,
    allow_dirty: bool = False,
    failed_only: bool = False,
    force: bool = False,
    resubmit_stale: bool = False,
    resubmit: Iterable[str] | None = None,
    echo=print,
) -> list[RunState]:
    """Submit every run of the grid that is missing or failed; returns the runs' states before.

    `failed_only` (or `resubmit`, a set of states) narrows that; `force` adds the `unknown` runs, `resubmit_stale`
    the `stale` ones (their directories are moved aside first). Holds the grid's submit lock throughout.
    """

    # submitit only here, where jobs are made: status and collect (and the CLI that imports this module) also run
    # where it is not installed, e.g. the GPU machine of `hiera.bench.gpu_pass`
    from hiera.launch.task import RunTask

    if cluster not in CLUSTERS:
        raise ValueError(f"--cluster {cluster!r} is not one of {', '.join(CLUSTERS)}")
    profile = profile or ClusterProfile()
    root = resolve_root(root, profile)
    name, runs = grid_runs(grid_path, grid_context(seeds, profile))
    runs = select(runs, only, name)
    kinds = set(resubmit) if resubmit is not None else {"failed"} if failed_only else {"missing", "failed"}
    kinds |= {"unknown"} if force else set()
    kinds |= {"stale"} if resubmit_stale else set()
    grid_dir = root / name
    if dry_run:
        found = run_states(runs, grid_dir, archive_dir(name))
        echo(format_plan(name, found, _todo(found, kinds), root, cluster))
        return found
    if cluster == "slurm":
        check_partition(profile.partition)
    check_root(grid_dir)
    git = git_state(allow_dirty)
    wait_s = env_seconds(LOCK_WAIT_ENV, 60.0)
    # From the state check to the last job.json: a second submit of this grid (another shell, a cron job, a
    # double click) waits here, then finds these runs queued instead of submitting them again.
    with Lock(grid_dir / ".submit.lock", f"grid {name} under {root} (another hiera-study submit)", wait_s):
        found = run_states(runs, grid_dir, archive_dir(name))
        todo = _todo(found, kinds)
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        moved, busy = {}, []
        for s in [s for s in todo if s.diff and resubmit_stale]:
            target = _move_aside(s, stamp)
            if target is None:
                busy.append(s)
            else:
                moved[s.run.spec.run] = str(target)
        todo = [s for s in todo if s not in busy]
        busy += [s for s in found if s.state == "stale" and s.live and "stale" in kinds]
        launch = {
            "grid": name,
            "grid_file": str(Path(grid_path).resolve()),
            "cluster": cluster,
            "date": stamp,
            "pid": os.getpid(),
            "runs": [s.run.spec.run for s in todo],
            "moved_aside": moved,
            "profile": dataclasses.asdict(profile),
            **git,
        }
        atomic_write_text(
            _unique(grid_dir / "launches" / f"{stamp}-{os.getpid()}.json"), json.dumps(launch, indent=1) + "\n"
        )
        groups: dict[Resources, list[RunState]] = {}
        for s in todo:
            groups.setdefault(s.run.resources, []).append(s)
        debug_jobs = []
        for res, group in groups.items():
            ex = _executor(cluster, grid_dir / ".submitit", res, profile, name)
            tasks = [RunTask(s.run.spec.to_dict(), str(s.run_dir)) for s in group]
            if cluster == "slurm" and len(tasks) > 1:
                with ex.batch():
                    jobs = [ex.submit(t) for t in tasks]
            else:
                jobs = [ex.submit(t) for t in tasks]
            for s, job in zip(group, jobs):
                s.run_dir.mkdir(parents=True, exist_ok=True)
                (s.run_dir / "error.json").unlink(missing_ok=True)
                atomic_write_text(
                    s.run_dir / "job.json",
                    json.dumps(
                        {
                            "job_id": str(job.job_id),
                            "cluster": cluster,
                            "submitted": stamp,
                            "git_sha": git["git_sha"],
                            "stdout": str(job.paths.stdout),
                            "stderr": str(job.paths.stderr),
                        },
                        indent=1,
                    )
                    + "\n",
                )
            debug_jobs += jobs if cluster == "debug" else []
        # The debug cluster runs in this process, under the lock: its job ids name no process another submit
        # could see alive. Failures are recorded (error.json), not raised.
        for job in debug_jobs:
            try:
                job.result()
            except Exception:  # noqa: BLE001 - the task wrote error.json; status reports it
                pass
    count = {k: sum(s.state == k for s in found) for k in STATES}
    notes = "".join(
        [
            f"; moved {len(moved)} stale run director{'y' if len(moved) == 1 else 'ies'} aside" if moved else "",
            f"; {len(busy)} stale run(s) not submitted: their job is still queued or running, or a process "
            "holds the run directory (cancel it first)"
            if busy
            else "",
            f"; {count['unknown']} unknown, not submitted (the queue could not be read; --force submits them)"
            if count["unknown"] and "unknown" not in kinds
            else "",
            f"; {count['stale']} stale, not submitted (--resubmit-stale)"
            if count["stale"] and "stale" not in kinds
            else "",
        ]
    )
    echo(
        f"{name}: submitted {len(todo)} run(s) in {len(groups)} job array(s) on {cluster}; {count['done']} done, "
        f"{count['running'] + count['pending']} already queued or running{notes}"
    )
    return found


def format_plan(name: str, found: list[RunState], todo: list[RunState], root: Path, cluster: str) -> str:
    lines = [f"grid {name} ({cluster}, dry run: nothing submitted), run directories under {root / name}/"]
    width = max((len(s.run.spec.run) for s in found), default=0)
    for s in found:
        r = s.run.resources
        action = "submit" if s in todo else f"skip ({s.state})"
        lines.append(
            f"  {s.run.spec.run:<{width}}  {action:<17} nodes {r.nodes} x {r.gpus_per_node} GPU  "
            f"{r.hours:g} h/attempt  ~{s.run.gpu_hours:,.0f} GPU-h  {s.run_dir}"
        )
    hours = sum(s.run.gpu_hours for s in todo)
    lines.append(f"{len(todo)} to submit of {len(found)} runs, ~{hours:,.0f} GPU-hours (A100-class estimate)")
    return "\n".join(lines)
