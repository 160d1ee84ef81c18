"""Where every run of a grid stands: its run directory, the SLURM queue (squeue, sacct) and the committed archive.

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

Queue queries cannot lie: a failing or hung squeue/sacct makes the runs it was asked about `unknown`, with one line
naming the command and how it failed. Each look at a grid (status, collect, submit's look under its lock) asks
squeue once, and sacct once for every ended job together (`sacct -j id1,id2,...`), whatever the number of runs.
submit, status and collect all read the states here, so they agree on them exactly.
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from hiera.env import at_root
from hiera.launch.grid import GridContext, GridRun, grid_runs
from hiera.records.run import run_record_path
from hiera.train.pipeline import spec_diff

FAILED_STATES = ("FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL", "DEADLINE")
STATES = ("done", "running", "pending", "failed", "missing", "stale", "unknown")
STARTED = ("RUNNING", "COMPLETING", "CONFIGURING", "STAGE_OUT")  # squeue states shown as running; others pending
QUEUE_TIMEOUT_ENV = "HIERA_QUEUE_TIMEOUT_S"  # squeue / sacct time limit (default 60 s)
SACCT_BATCH = 500  # job ids per sacct call: one call up to this many ended runs, and a bounded command line


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


def select(runs: list[GridRun], only: str | None, grid: str) -> list[GridRun]:
    if not only:
        return runs
    chosen = [r for r in runs if fnmatch.fnmatch(r.spec.run, only)]
    if not chosen:
        sample = ", ".join(r.spec.run for r in runs[:3])
        raise ValueError(f"--only {only!r} matches no run of grid {grid}; run ids look like {sample}")
    return chosen


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


def query(cmd: list[str]) -> str:
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
    text = query(["squeue", "-h", "-r", "-u", os.environ.get("USER", "root"), "-o", "%i|%T"])
    pairs = (line.split("|", 1) for line in text.splitlines() if "|" in line)
    return {job.strip(): state.strip() for job, state in pairs}


def _sacct(job_ids: list[str]) -> dict[str, str]:
    """Job id -> final state (COMPLETED, FAILED, CANCELLED, ...) of ended jobs, in one sacct call per batch."""
    final: dict[str, str] = {}
    for i in range(0, len(job_ids), SACCT_BATCH):
        batch = job_ids[i : i + SACCT_BATCH]
        text = query(["sacct", "-n", "-X", "-P", "-j", ",".join(batch), "-o", "JobID,State"])
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


def states(grid_path: str | Path, ctx: GridContext, root: Path, only: str | None = None) -> tuple[str, list[RunState]]:
    if ctx.seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {ctx.seeds}")
    name, runs = grid_runs(grid_path, ctx)
    return name, run_states(select(runs, only, name), root / name, archive_dir(name))


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
