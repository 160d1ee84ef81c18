"""Launch a grid on SLURM with submitit (or locally), see where every run stands, and collect the records.

    submit(grid file)   one job array per resource shape; runs already finished, queued or running are skipped,
                        so relaunching a grid is safe; the git SHA (and diff when dirty) is recorded per launch
    status(grid file)   done / running / pending / failed (error tail + log path) / missing, per run
    collect(grid file)  `results/records/<grid>.jsonl`: finished runs' records plus a line per unfinished run

Clusters: `slurm` (submitit's SlurmExecutor: arrays, `--signal` before the time limit, requeue), `local`
(submitit's LocalExecutor: one background process per run) and `debug` (in this process, for breakpoints and
tests). Cluster specifics come from a profile (`slurm/clusters/<name>.json`) or flags, never from grid files.
Every check that can fail (grid file, glob, partition, results root, dirty tree) fails before anything is
submitted, in one line.
"""

from __future__ import annotations

import dataclasses
import datetime
import fnmatch
import json
import os
import shutil
import subprocess
import tempfile
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hiera.config import check_keys, coerce
from hiera.env import REPO, _git
from hiera.files import atomic_write_text
from hiera.launch.grid import GridContext, GridRun, Resources, grid_runs

CLUSTERS = ("slurm", "local", "debug")
FAILED_STATES = ("FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL",
                 "DEADLINE")


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
                path = REPO / "slurm" / "clusters" / f"{name_or_path}.json"
            if not path.is_file():
                known = sorted(p.stem for p in (REPO / "slurm" / "clusters").glob("*.json"))
                raise FileNotFoundError(f"cluster profile {name_or_path!r} not found; use a JSON file or one of "
                                        f"{', '.join(known)}")
            data = json.loads(path.read_text())
            check_keys(data, cls)
        data.update({k: v for k, v in overrides.items() if v is not None})
        hints = typing.get_type_hints(cls)
        return cls(**{k: coerce(k, v, hints[k]) for k, v in data.items()})


@dataclass
class RunState:
    run: GridRun
    run_dir: Path
    state: str  # done | running | pending | failed | missing
    detail: str = ""
    log: str | None = None
    job_id: str | None = None


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
        raise ValueError(f"results root {root} is not writable ({e.strerror}); pass --root DIR on a shared, "
                         "writable filesystem") from None


def check_partition(partition: str | None) -> None:
    if shutil.which("sbatch") is None:
        raise ValueError("--cluster slurm needs SLURM's sbatch on PATH; use --cluster local or debug here")
    if not partition:
        raise ValueError("--cluster slurm needs a partition: --partition NAME or a cluster profile with "
                         "'partition' (sinfo lists them)")
    out = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=60)
    known = [p.rstrip("*") for p in out.stdout.split()]
    if out.returncode == 0 and partition not in known:
        raise ValueError(f"partition {partition!r} does not exist on this cluster; sinfo lists {', '.join(known)}")


def git_state(allow_dirty: bool) -> dict[str, Any]:
    sha = _git("rev-parse", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    if dirty and not allow_dirty:
        raise ValueError("the git tree has uncommitted changes; commit them (runs record the SHA they ran) or "
                         "pass --allow-dirty (the diff is then saved with the launch)")
    return {"git_sha": sha, "git_dirty": dirty, "git_diff": _git("diff", "HEAD") if dirty else None}


# ---- job states -------------------------------------------------------------------------------------------------

def _squeue() -> dict[str, str]:
    """Job id -> state of this user's queued and running jobs (array tasks one per line, `-r`)."""
    if shutil.which("squeue") is None:
        return {}
    out = subprocess.run(["squeue", "-h", "-r", "-u", os.environ.get("USER", "root"), "-o", "%i|%T"],
                         capture_output=True, text=True, timeout=60)
    pairs = (line.split("|", 1) for line in out.stdout.splitlines() if "|" in line)
    return {job: state for job, state in pairs}


def _sacct(job_id: str) -> str | None:
    if shutil.which("sacct") is None:
        return None
    out = subprocess.run(["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "JobID,State"], capture_output=True,
                         text=True, timeout=60)
    for line in out.stdout.splitlines():
        job, _, state = line.partition("|")
        if job == job_id:
            return state.split()[0] if state else None
    return None


def _pid_alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError):
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.is_file() and stat.read_text().split(") ")[-1].startswith("Z"))


def run_state(run: GridRun, run_dir: Path, queue: dict[str, str] | None) -> RunState:
    if (run_dir / "result.json").is_file():
        return RunState(run, run_dir, "done")
    job_file = run_dir / "job.json"
    if not job_file.is_file():
        return RunState(run, run_dir, "missing", "never submitted")
    job = json.loads(job_file.read_text())
    log, job_id = job.get("stderr"), job.get("job_id")
    error = run_dir / "error.json"
    err = json.loads(error.read_text()) if error.is_file() else None
    err_text = f"{err['type']}: {err['message']}" if err else ""
    if job["cluster"] == "slurm":
        queue = _squeue() if queue is None else queue
        state = queue.get(job_id)
        if state in ("RUNNING", "COMPLETING", "CONFIGURING", "STAGE_OUT"):
            return RunState(run, run_dir, "running", f"job {job_id}", log, job_id)
        if state is not None:
            return RunState(run, run_dir, "pending", f"job {job_id} {state.lower()}", log, job_id)
        final = _sacct(job_id) or "UNKNOWN"
        detail = err_text or (f"job {job_id} {final}" if final != "COMPLETED" else
                              f"job {job_id} ended without a result; see the log")
        if final in FAILED_STATES and err_text:
            detail = f"{final}: {err_text}"
        return RunState(run, run_dir, "failed", detail, log, job_id)
    if job["cluster"] == "local" and _pid_alive(job_id):
        return RunState(run, run_dir, "running", f"pid {job_id}", log, job_id)
    return RunState(run, run_dir, "failed", err_text or f"{job['cluster']} job {job_id} ended without a result",
                    log, job_id)


def states(grid_path: str | Path, ctx: GridContext, root: Path, only: str | None = None
           ) -> tuple[str, list[RunState]]:
    name, runs = grid_runs(grid_path, ctx)
    runs = select(runs, only, name)
    queue = _squeue()
    return name, [run_state(r, root / name / r.spec.run, queue) for r in runs]


# ---- submit -----------------------------------------------------------------------------------------------------

def _executor(cluster: str, folder: Path, res: Resources, profile: ClusterProfile, grid: str):
    import submitit

    if cluster == "debug":
        return submitit.DebugExecutor(folder=folder)
    if cluster == "local":
        ex = submitit.LocalExecutor(folder=folder)
        ex.update_parameters(timeout_min=res.timeout_min, gpus_per_node=res.gpus_per_node,
                             tasks_per_node=res.tasks_per_node, nodes=1)
        return ex
    # A long run needs many attempts (each ends at the time limit, requeues, resumes): lift submitit's 3.
    ex = submitit.SlurmExecutor(folder=folder, max_num_timeout=1000)
    params: dict[str, Any] = dict(
        job_name=f"hiera-{grid}", time=res.timeout_min, nodes=res.nodes, ntasks_per_node=res.tasks_per_node,
        cpus_per_task=res.cpus_per_task or (profile.cpus_per_gpu if res.gpus_per_node else 1),
        partition=profile.partition, signal_delay_s=profile.signal_delay_s,
        array_parallelism=profile.array_parallelism, setup=list(profile.setup),
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


def submit(grid_path: str | Path, cluster: str = "slurm", only: str | None = None, dry_run: bool = False,
           seeds: int = 1, profile: ClusterProfile | None = None, root: str | Path | None = None,
           allow_dirty: bool = False, failed_only: bool = False, echo=print) -> list[RunState]:
    """Submit every run of the grid that is not done, queued or running; returns the runs' states before."""
    from hiera.launch.task import RunTask

    if cluster not in CLUSTERS:
        raise ValueError(f"--cluster {cluster!r} is not one of {', '.join(CLUSTERS)}")
    profile = profile or ClusterProfile()
    root = Path(root or profile.root)
    root = root if root.is_absolute() else REPO / root
    ctx = GridContext(seeds=seeds, **{k: v for k, v in (("imagenet", profile.imagenet),
                                                          ("kinetics", profile.kinetics)) if v})
    name, found = states(grid_path, ctx, root, only)
    todo = [s for s in found if s.state in (("failed",) if failed_only else ("missing", "failed"))]
    if dry_run:
        echo(format_plan(name, found, todo, root, cluster))
        return found
    if cluster == "slurm":
        check_partition(profile.partition)
    check_root(root / name)
    git = git_state(allow_dirty)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    launch = {"grid": name, "grid_file": str(Path(grid_path).resolve()), "cluster": cluster, "date": stamp,
              "runs": [s.run.spec.run for s in todo], "profile": dataclasses.asdict(profile), **git}
    atomic_write_text(root / name / "launches" / f"{stamp}.json", json.dumps(launch, indent=1) + "\n")
    groups: dict[Resources, list[RunState]] = {}
    for s in todo:
        groups.setdefault(s.run.resources, []).append(s)
    for res, group in groups.items():
        ex = _executor(cluster, root / name / ".submitit", res, profile, name)
        tasks = [RunTask(s.run.spec.to_dict(), str(s.run_dir)) for s in group]
        if cluster == "slurm" and len(tasks) > 1:
            with ex.batch():
                jobs = [ex.submit(t) for t in tasks]
        else:
            jobs = [ex.submit(t) for t in tasks]
        for s, job in zip(group, jobs):
            s.run_dir.mkdir(parents=True, exist_ok=True)
            (s.run_dir / "error.json").unlink(missing_ok=True)
            atomic_write_text(s.run_dir / "job.json", json.dumps({
                "job_id": str(job.job_id), "cluster": cluster, "submitted": stamp, "git_sha": git["git_sha"],
                "stdout": str(job.paths.stdout), "stderr": str(job.paths.stderr)}, indent=1) + "\n")
        if cluster == "debug":  # run in this process, one after the other; failures are recorded, not raised
            for job in jobs:
                try:
                    job.result()
                except Exception:  # noqa: BLE001 - the task wrote error.json; status reports it
                    pass
    echo(f"{name}: submitted {len(todo)} run(s) in {len(groups)} job array(s) on {cluster}; "
         f"{sum(s.state == 'done' for s in found)} done, "
         f"{sum(s.state in ('running', 'pending') for s in found)} already queued or running")
    return found


def format_plan(name: str, found: list[RunState], todo: list[RunState], root: Path, cluster: str) -> str:
    lines = [f"grid {name} ({cluster}, dry run: nothing submitted), run directories under {root / name}/"]
    width = max(len(s.run.spec.run) for s in found)
    for s in found:
        r = s.run.resources
        action = "submit" if s in todo else f"skip ({s.state})"
        lines.append(f"  {s.run.spec.run:<{width}}  {action:<17} nodes {r.nodes} x {r.gpus_per_node} GPU  "
                     f"{r.hours:g} h/attempt  ~{s.run.gpu_hours:,.0f} GPU-h  {s.run_dir}")
    hours = sum(s.run.gpu_hours for s in todo)
    lines.append(f"{len(todo)} to submit of {len(found)} runs, ~{hours:,.0f} GPU-hours (A100-class estimate)")
    return "\n".join(lines)


def format_status(name: str, found: list[RunState]) -> str:
    width = max(len(s.run.spec.run) for s in found)
    lines = []
    for s in found:
        line = f"{s.run.spec.run:<{width}}  {s.state:<8} {s.detail}"
        if s.state == "failed" and s.log:
            line += f"  (log: {s.log})"
        lines.append(line.rstrip())
    counts = {k: sum(s.state == k for s in found) for k in ("done", "running", "pending", "failed", "missing")}
    lines.append(f"{name}: " + ", ".join(f"{v} {k}" for k, v in counts.items()) + f" of {len(found)}")
    return "\n".join(lines)


# ---- collect ----------------------------------------------------------------------------------------------------

def collect(grid_path: str | Path, seeds: int = 1, root: str | Path | None = None,
            out_dir: str | Path | None = None, profile: ClusterProfile | None = None) -> Path:
    """Write `<out_dir>/<grid>.jsonl`: each finished run's record, and a status line for every other run."""
    from hiera.registry import get_variant
    from hiera.train.pipeline import PROXY_DATASETS, SCHEMA

    profile = profile or ClusterProfile()
    root = Path(root or profile.root)
    root = root if root.is_absolute() else REPO / root
    out = Path(out_dir) if out_dir else REPO / "results" / "records"
    name, found = states(grid_path, GridContext(seeds=seeds), root)
    lines = []
    for s in found:
        if s.state == "done":
            lines.append(json.loads((s.run_dir / "result.json").read_text()))
            continue
        spec = s.run.spec
        lines.append({"schema": SCHEMA, "grid": name, "run": spec.run, "status": s.state, "variant": spec.variant,
                      "step": spec.step, "size": spec.size, "modality": get_variant(spec.variant).modality,
                      "dataset": spec.train.dataset, "proxy": spec.train.dataset in PROXY_DATASETS,
                      "seed": spec.seed, "table": spec.table, "ablation": spec.ablation, "setting": spec.setting,
                      "run_dir": str(s.run_dir), **({"error": s.detail} if s.state == "failed" else {})})
    path = out / f"{name}.jsonl"
    atomic_write_text(path, "".join(json.dumps(line, sort_keys=True) + "\n" for line in lines))
    return path
