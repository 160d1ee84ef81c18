"""Launch a grid on SLURM with submitit (or locally), see where every run stands, and collect the records.

    submit(grid file)   one job array per resource shape; runs already finished, queued or running are skipped,
                        so relaunching a grid is safe; the git SHA (and diff when dirty) is recorded per launch
    status(grid file)   one state per run (below), the error tail and log path of failed ones
    collect(grid file)  `results/records/<grid>.jsonl`: finished runs' records plus a line per unfinished run,
                        merged into what the file already holds; each finished run's small files (those the
                        tables and figures read) copied into `results/archive/<grid>/<run id>/` (below)

Run states:
    done      its record is there (`record.json`, or `result.json` of schema 1; `hiera.records`), and the run
              directory's `spec.json` is the grid's current entry; or, never submitted under this root, its
              collected copy in the archive (`results/archive/<grid>/<run id>`, committed) has both ("archived"):
              a run finished on another machine or cluster, or before a fresh clone, is not run again
    running   in the queue and started (squeue), or on `local` its process is alive
    pending   in the queue, not started
    failed    ended without a result (the error tail, the log path); submitted again by `submit` and
              `status --resubmit-failed` (it resumes)
    missing   never submitted
    unknown   squeue or sacct failed or timed out (`HIERA_QUEUE_TIMEOUT_S`, default 60 s), so the job may still be
              alive: never submitted again unless `--force`
    stale     the run directory's `spec.json` differs from the grid's entry (the grid file changed since it ran):
              not submitted again and not collected as done. Move the directory away, or pass `--resubmit-stale`:
              submit then renames it to `<run dir>.stale-<date>` (nothing is deleted) and submits the run afresh
              (not while its job is still queued or running: cancel that first)

What is guaranteed:
- At most one live submission per run: `submit` holds `<root>/<grid>/.submit.lock` (`hiera.files.Lock`, a POSIX
  record lock that NFS and cluster filesystems share between nodes, dropped by the kernel if the holder dies)
  from the state check through writing every `job.json`; a second submit waits for it
  (`HIERA_SUBMIT_LOCK_WAIT_S`, default 60 s, then one line naming the holder) and then finds those runs queued.
  Each launch has its own record `launches/<date>-<pid>.json`, never overwritten.
- Queue queries cannot lie: a failing or hung squeue/sacct makes the runs it was asked about `unknown`, with one
  line naming the command and how it failed. Each look at a grid (status, collect, submit's look under its lock)
  asks squeue once, and sacct once for every ended job together (`sacct -j id1,id2,...`), whatever the number of
  runs.
- `collect` merges, never destroys: a `done` line is not replaced by a weaker state, and lines of runs it did not
  look at (`--only`, runs since removed from the grid) are kept, unless `--prune`. A root holding none of the
  grid's run directories (a wrong `--root`, an unmounted filesystem) is an error, not a file of `missing`.
  The file is written atomically under `<out>/.<grid>.lock`: a kill at any moment leaves the old file or the new.
- `collect` archives what tables and figures read from a run directory (`ARCHIVE_FILES`, the record's
  `predictions` / `labels`, and `mae/reconstruction.npz` of the lowest seed per variant and setting: ~100s of KB
  each) into `<out>/../archive/<grid>/<run id>/` in the run directory's layout, never checkpoints or tb/, and
  names it in the record (`archive`, relative to `<out>/..`), so the records and the archive together are the
  committed source of truth. Each copy is atomic and skipped when the archived file is already identical (a
  second collect rewrites nothing); nothing in the archive is ever deleted (not by `--prune` either: remove a
  dropped run's folder by hand, in git).

Clusters: `slurm` (submitit's SlurmExecutor: arrays, `--signal` before the time limit, requeue), `local`
(submitit's LocalExecutor: one background process per run) and `debug` (in this process, for breakpoints and
tests). Cluster specifics come from a profile (`slurm/clusters/<name>.json`) or flags, never from grid files;
submit, status and collect build the grid with the same context (seeds, the profile's data paths), so they see
the same specs. Every check that can fail (grid file, glob, partition, results root, dirty tree) fails before
anything is submitted, in one line.

Length (~800 lines): submit, status and collect share the run-state machine (`run_states`, the queue queries,
the locks) and must agree on it exactly; the record format is `hiera.records`, the command line `hiera.cli.grids`.
"""

from __future__ import annotations

import dataclasses
import datetime
import fnmatch
import json
import math
import operator
import os
import shutil
import signal
import subprocess
import tempfile
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from hiera.env import _git, at_root, project_root
from hiera.files import TEMP, Lock, LockHeld, atomic_write, atomic_write_text, read_jsonl
from hiera.launch.grid import GridContext, GridRun, Resources, grid_runs
from hiera.model.config import check_keys, coerce
from hiera.model.registry import get_variant
from hiera.records.run import (
    RUN_RECORD,
    RUN_RECORD_V1,
    RunRecord,
    read_run_record_json,
    run_record_path,
    run_records_text,
)
from hiera.train.config import PHASES
from hiera.train.pipeline import spec_diff, spec_record

CLUSTERS = ("slurm", "local", "debug")
FAILED_STATES = ("FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL", "DEADLINE")
STATES = ("done", "running", "pending", "failed", "missing", "stale", "unknown")
STARTED = ("RUNNING", "COMPLETING", "CONFIGURING", "STAGE_OUT")  # squeue states shown as running; others pending
QUEUE_TIMEOUT_ENV = "HIERA_QUEUE_TIMEOUT_S"  # squeue / sacct time limit (default 60 s)
LOCK_WAIT_ENV = "HIERA_SUBMIT_LOCK_WAIT_S"  # how long a submit waits for another one of the same grid (default 60 s)
SACCT_BATCH = 500  # job ids per sacct call: one call up to this many ended runs, and a bounded command line
RUN_LOCK = ".lock"  # the lock `run_pipeline` holds in a run directory while it trains (hiera/train/pipeline.py)


@dataclass(frozen=True)
class ClusterProfile:
    """Site settings of a SLURM cluster (a JSON file in `slurm/clusters/`; flags override fields)."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    mem_gb: int | None = None  # per node; None = the cluster's default
    cpus_per_gpu: int = 10
    signal_delay_s: int = 120  # SIGUSR2 this long before the time limit: enough to requeue
    array_parallelism: int = 256
    root: str = "results/runs"  # shared filesystem folder of the run directories
    imagenet: str | None = None
    kinetics: str | None = None
    setup: tuple[str, ...] = ()  # shell lines before the task (module load ..., source venv)

    @classmethod
    def load(cls, name_or_path: str | None, **overrides: Any) -> ClusterProfile:
        data: dict[str, Any] = {}
        if name_or_path:
            path = Path(name_or_path)
            if not path.is_file():
                path = at_root("slurm", "clusters", f"{name_or_path}.json")
            if not path.is_file():
                known = sorted(p.stem for p in at_root("slurm", "clusters").glob("*.json"))
                raise FileNotFoundError(
                    f"cluster profile {name_or_path!r} not found; use a JSON file or one of {', '.join(known)}"
                )
            data = json.loads(path.read_text())
            check_keys(data, cls)
        data.update({k: v for k, v in overrides.items() if v is not None})
        for key in PATH_FIELDS:  # "/checkpoint/$USER/..." and "~/..." as a shell would read them
            if isinstance(data.get(key), str):
                data[key] = expand_path(data[key], key)
        hints = typing.get_type_hints(cls)
        return cls(**{k: coerce(k, v, hints[k]) for k, v in data.items()})


PATH_FIELDS = ("root", "imagenet", "kinetics")


def expand_path(value: str, key: str) -> str:
    """`~` and `$VAR` / `${VAR}` expanded; a variable that is not set is a one-line error, not a folder named `$X`."""
    expanded = os.path.expandvars(os.path.expanduser(value))
    if "$" in expanded:
        raise ValueError(
            f"cluster profile field {key}={value!r}: an environment variable in it is not set; set it "
            f"or write the path out"
        )
    return expanded


@dataclass
class RunState:
    run: GridRun
    run_dir: Path
    state: str  # one of STATES
    detail: str = ""
    log: str | None = None
    job_id: str | None = None
    diff: list[str] = field(default_factory=list)  # keys where the run directory's spec.json differs (stale)
    live: bool = False  # its job is queued or running (a stale run is then not moved aside)


# ---- checks -----------------------------------------------------------------------------------------------------


def select(runs: list[GridRun], only: str | None, grid: str) -> list[GridRun]:
    if not only:
        return runs
    chosen = [r for r in runs if fnmatch.fnmatch(r.spec.run, only)]
    if not chosen:
        sample = ", ".join(r.spec.run for r in runs[:3])
        raise ValueError(f"--only {only!r} matches no run of grid {grid}; run ids look like {sample}")
    return chosen


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
        known = [p.rstrip("*") for p in _query(["sinfo", "-h", "-o", "%P"]).split()]
    except QueueError:  # the check is a courtesy: sbatch itself refuses an unknown partition
        return
    if partition not in known:
        raise ValueError(f"partition {partition!r} does not exist on this cluster; sinfo lists {', '.join(known)}")


def git_state(allow_dirty: bool) -> dict[str, Any]:
    sha = _git("rev-parse", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    if dirty and not allow_dirty:
        raise ValueError(
            "the git tree has uncommitted changes; commit them (runs record the SHA they ran) or "
            "pass --allow-dirty (the diff is then saved with the launch)"
        )
    return {"git_sha": sha, "git_dirty": dirty, "git_diff": _git("diff", "HEAD") if dirty else None}


# ---- job states -------------------------------------------------------------------------------------------------


class QueueError(RuntimeError):
    """squeue or sacct failed, timed out or is missing; the message names the command and how it failed."""


def env_seconds(name: str, default: float) -> float:
    """A positive number of seconds from the environment variable `name` (unset or empty: `default`)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name}={raw!r} is not a positive number of seconds; unset it or set e.g. {name}={default:g}")
    return value


def _query(cmd: list[str]) -> str:
    """stdout of a SLURM query; QueueError if it cannot run, exits non-zero or outlives the time limit."""
    timeout = env_seconds(QUEUE_TIMEOUT_ENV, 60.0)
    if shutil.which(cmd[0]) is None:
        raise QueueError(f"{cmd[0]} is not on PATH (run this where SLURM's commands are)")
    try:
        # A session of its own: on a timeout the whole group (a wrapper script and what it started) is killed,
        # otherwise `communicate` would wait for a grandchild that still holds the pipes.
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    except OSError as e:
        raise QueueError(f"{cmd[0]} could not be started ({e.strerror or e})") from None
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.communicate()
        raise QueueError(f"{cmd[0]} did not answer within {timeout:g} s (the limit is {QUEUE_TIMEOUT_ENV})") from None
    if proc.returncode != 0:
        last = [line.strip() for line in err.splitlines() if line.strip()][-1:]
        why = f": {last[0][:200]}" if last else ""
        raise QueueError(f"{cmd[0]} exited with status {proc.returncode}{why}")
    return out


def _squeue() -> dict[str, str]:
    """Job id -> state of this user's queued and running jobs (array tasks one per line, `-r`)."""
    text = _query(["squeue", "-h", "-r", "-u", os.environ.get("USER", "root"), "-o", "%i|%T"])
    pairs = (line.split("|", 1) for line in text.splitlines() if "|" in line)
    return {job.strip(): state.strip() for job, state in pairs}


def _sacct(job_ids: list[str]) -> dict[str, str]:
    """Job id -> final state (COMPLETED, FAILED, CANCELLED, ...) of ended jobs, in one sacct call per batch."""
    final: dict[str, str] = {}
    for i in range(0, len(job_ids), SACCT_BATCH):
        batch = job_ids[i : i + SACCT_BATCH]
        text = _query(["sacct", "-n", "-X", "-P", "-j", ",".join(batch), "-o", "JobID,State"])
        for line in text.splitlines():
            job, _, state = line.partition("|")
            if state.strip():
                final[job.strip()] = state.split()[0]  # "CANCELLED by 0" -> CANCELLED; a requeued job's last line
    return final


def _pid_alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError):
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.is_file() and stat.read_text().split(") ")[-1].startswith("Z"))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except ValueError as e:
        raise ValueError(
            f"{path} is not valid JSON ({e}); fix it or remove it (the run then counts as never submitted)"
        ) from None


def _keys(diff: list[str], limit: int = 5) -> str:
    return ", ".join(diff[:limit]) + (f" and {len(diff) - limit} more" if len(diff) > limit else "")


def _from_run_dir(run: GridRun, run_dir: Path, archived: Path | None = None) -> RunState:
    """What the run directory alone tells; state "queue" when only squeue/sacct can tell (a SLURM job).

    A run never submitted under this root whose collected copy is in `archived` (`<archive>/<grid>/<run id>`, with
    its record and the grid's current spec) is done there: the committed archive travels with the clone, so a run
    finished on another machine or cluster is not run again (collect reads it from the archive)."""

    diff = spec_diff(run_dir, run.spec) if run_dir.is_dir() else []
    if run_record_path(run_dir) is not None:
        return RunState(run, run_dir, "done", diff=diff)
    job_file = run_dir / "job.json"
    if not job_file.is_file():
        if _archived_here(run, archived):
            return RunState(run, cast(Path, archived), "done", "archived")
        return RunState(run, run_dir, "missing", "never submitted", diff=diff)
    job = _read_json(job_file)
    log, job_id, cluster = job.get("stderr"), str(job.get("job_id")), job.get("cluster")
    error = run_dir / "error.json"
    err = _read_json(error) if error.is_file() else None
    err_text = f"{err.get('type')}: {err.get('message')}" if err else ""
    if cluster == "slurm":
        return RunState(run, run_dir, "queue", err_text, log, job_id, diff)
    if cluster == "local" and _pid_alive(job_id):
        return RunState(run, run_dir, "running", f"pid {job_id}", log, job_id, diff, live=True)
    return RunState(
        run, run_dir, "failed", err_text or f"{cluster} job {job_id} ended without a result", log, job_id, diff
    )


def _archived_here(run: GridRun, archived: Path | None) -> bool:
    """Whether `archived` holds this very run: its record, and the spec.json it ran with equal to the grid's spec
    now. A copy without spec.json (archived before specs were kept) cannot show that it ran this spec, so it does
    not count: the run is submitted rather than trusted."""
    return (
        archived is not None
        and run_record_path(archived) is not None
        and (archived / "spec.json").is_file()
        and not spec_diff(archived, run.spec)
    )


def archive_dir(grid: str, records_dir: str | Path | None = None) -> Path:
    """Where `collect` archives grid `grid`'s finished runs: `<records_dir>/../archive/<grid>` (by default the
    project's `results/archive/<grid>`, committed with the records)."""
    records = Path(records_dir) if records_dir else at_root("results", "records")
    return records.parent / "archive" / grid


def run_states(runs: list[GridRun], grid_dir: Path, archive: Path | None = None) -> list[RunState]:
    """The state of every run (directories `<grid_dir>/<run id>`), asking squeue once and sacct once in all.

    `archive`: the grid's archive folder (`archive_dir`); a run found only there is done (`_from_run_dir`)."""
    return _states([(r, grid_dir / r.spec.run, archive / r.spec.run if archive else None) for r in runs])


def run_state(run: GridRun, run_dir: Path) -> RunState:
    """The state of one run in `run_dir` (for many runs use `run_states`: it asks the queue once for all)."""
    return _states([(run, run_dir, None)])[0]


def _states(triples: list[tuple[GridRun, Path, Path | None]]) -> list[RunState]:
    found = [_from_run_dir(run, run_dir, archived) for run, run_dir, archived in triples]
    # (state, SLURM job id): `_from_run_dir` makes a "queue" state only with the job id it read
    queued = [(s, cast(str, s.job_id)) for s in found if s.state == "queue"]
    if queued:
        try:
            live, why = _squeue(), ""
        except QueueError as e:
            live, why = {}, str(e)
        ended = []
        for s, job_id in queued:
            state = live.get(job_id)
            if why:
                s.state, s.detail = "unknown", f"job {s.job_id}: {why}"
            elif state is not None:
                s.live = True
                s.state = "running" if state in STARTED else "pending"
                s.detail = f"job {s.job_id}" + ("" if state in STARTED else f" {state.lower()}")
            elif run_record_path(s.run_dir) is not None:  # it finished between the two looks
                s.state, s.detail = "done", ""
            else:
                ended.append((s, job_id))
        if ended:
            try:
                final, why = _sacct([job_id for _, job_id in ended]), ""
            except QueueError as e:
                final, why = {}, str(e)
            for s, job_id in ended:
                if why:  # squeue says it is gone, but a requeue in flight or a lagging controller cannot be ruled out
                    s.state, s.detail = "unknown", f"job {s.job_id} left the queue; {why}"
                    continue
                state, err_text = final.get(job_id, "UNKNOWN"), s.detail
                s.state = "failed"
                s.detail = err_text or (
                    f"job {s.job_id} {state}"
                    if state != "COMPLETED"
                    else f"job {s.job_id} ended without a result; see the log"
                )
                if state in FAILED_STATES and err_text:
                    s.detail = f"{state}: {err_text}"
    for s in found:
        if not s.diff:
            continue
        keys = _keys(s.diff)
        if s.state == "unknown":
            s.detail += f"; its spec.json also differs from the grid ({keys})"
        else:
            job = f"; job {s.job_id} is still {s.state}: cancel it before --resubmit-stale" if s.live else ""
            s.state, s.detail = "stale", f"spec.json differs from the grid in {keys}{job}"
    return found


def resolve_root(root: str | Path | None, profile: ClusterProfile) -> Path:
    root = Path(root or profile.root)
    return root if root.is_absolute() else project_root() / root


def grid_context(seeds: int, profile: ClusterProfile) -> GridContext:
    """The context every command builds the grid with (so submit, status and collect see the same specs)."""
    if not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {seeds}")
    return GridContext(
        seeds=seeds, **{k: v for k, v in (("imagenet", profile.imagenet), ("kinetics", profile.kinetics)) if v}
    )


def states(grid_path: str | Path, ctx: GridContext, root: Path, only: str | None = None) -> tuple[str, list[RunState]]:
    if ctx.seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {ctx.seeds}")
    name, runs = grid_runs(grid_path, ctx)
    return name, run_states(select(runs, only, name), root / name, archive_dir(name))


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


def format_status(name: str, found: list[RunState]) -> str:
    """One line per run, a note per failed queue command, then the counts (stale / unknown when there are any)."""
    width = max((len(s.run.spec.run) for s in found), default=0)
    lines = []
    for s in found:
        line = f"{s.run.spec.run:<{width}}  {s.state:<8} {s.detail}"
        if s.state == "failed" and s.log:
            line += f"  (log: {s.log})"
        lines.append(line.rstrip())
    if any(s.state == "unknown" for s in found):
        lines.append(
            "unknown: the queue could not be read (see above), so these jobs may still be alive; they are "
            "not submitted again unless --force"
        )
    if any(s.state == "stale" for s in found):
        lines.append(
            "stale: the run directory holds another spec than the grid's; move it away, or pass "
            "--resubmit-stale to submit (it is renamed to <run dir>.stale-<date> and run afresh)"
        )
    counts = {k: sum(s.state == k for s in found) for k in STATES}
    shown = [f"{v} {k}" for k, v in counts.items() if v or k not in ("stale", "unknown")]
    lines.append(f"{name}: " + ", ".join(shown) + f" of {len(found)}")
    return "\n".join(lines)


# ---- collect ----------------------------------------------------------------------------------------------------

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
            record, written = read_run_record_json(s.run_dir)  # validated; copied as written
            relative = Path("archive", name, spec.run)
            dest = out.parent / relative
            if not dest.resolve().is_relative_to((out.parent / "archive").resolve()):  # a run id with `..`
                raise ValueError(f"run id {spec.run!r} of grid {name} would archive outside {out.parent / 'archive'}")
            archive_run(s.run_dir, dest, record, spec.seed == lowest[(spec.variant, spec.setting)])
            # POSIX and relative to the records folder's parent: the same string resolves on any clone
            fresh[spec.run] = {**written, "archive": relative.as_posix()}
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
        # Every line as written: a finished run's record as the run wrote it (validated above; an earlier schema
        # stays that schema), a status line by `RunRecord.to_json`, a line of before as it was.
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
