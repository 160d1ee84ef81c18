"""Where the project is, and the conditions a number was measured under: software versions, hardware, git state.

Two places, two names. `REPO` is the clone the code was imported from: its git state is the code's (records name
it), and subprocesses of ours import from it. `project_root()` is where results are read and written: `$HIERA_ROOT`
when set, else the first folder from the working directory upward that holds both `ablations/` and `results/` (a
clone of this repository). So with two clones and one environment, each command works on the clone it runs in,
and nothing is written next to an installed package. Every record this project writes carries `collect_env()`,
so each number names the machine, software and commit it came from.
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]  # the code's clone (git provenance, PYTHONPATH of our subprocesses)
ROOT_ENV = "HIERA_ROOT"
ROOT_MARKERS = ("ablations", "results")  # what makes a folder a project root


def find_root(start: Path | str | None = None) -> Path | None:
    """`$HIERA_ROOT`, else the nearest folder from `start` (the working directory) upward holding `ROOT_MARKERS`."""
    if os.environ.get(ROOT_ENV):
        return Path(os.environ[ROOT_ENV]).expanduser().resolve()
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if all((folder / m).is_dir() for m in ROOT_MARKERS):
            return folder
    return None


def project_root() -> Path:
    """The project root (`find_root`), or a one-line error saying how to name one."""
    root = find_root()
    if root is None:
        markers = " and ".join(f"{m}/" for m in ROOT_MARKERS)
        raise ValueError(
            f"no hiera-study project in {Path.cwd()} or above (a folder with {markers}); run inside "
            f"your clone or set {ROOT_ENV}=<clone>"
        )
    if not root.is_dir():
        raise ValueError(f"{ROOT_ENV}={root} is not a folder; point it at your clone of hiera-study")
    return root


def at_root(*parts: str) -> Path:
    """A path under the project root, e.g. `at_root("results", "records")`."""
    return project_root().joinpath(*parts)


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


# The SLURM variables that tell one attempt of a run from another (a requeued task keeps its job and array ids and
# counts up SLURM_RESTART_COUNT).
SLURM_FIELDS = {
    "job_id": "SLURM_JOB_ID",
    "array_job_id": "SLURM_ARRAY_JOB_ID",
    "array_task_id": "SLURM_ARRAY_TASK_ID",
    "restart_count": "SLURM_RESTART_COUNT",
    "node": "SLURMD_NODENAME",
    "cpus_per_task": "SLURM_CPUS_PER_TASK",
}


def slurm_env() -> dict[str, str] | None:
    """This process's SLURM job (`SLURM_FIELDS`), or None outside SLURM. A first attempt has no restart count: 0."""
    if "SLURM_JOB_ID" not in os.environ:
        return None
    found = {key: os.environ[var] for key, var in SLURM_FIELDS.items() if var in os.environ}
    found.setdefault("restart_count", "0")
    return found


def git_state(diff: bool = False) -> dict[str, Any]:
    """The code clone's git state: `git_sha`, `git_dirty` (tracked files changed), and with `diff` also
    `git_diff` (the uncommitted diff, None when clean). None values where git or the clone is missing."""
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    state: dict[str, Any] = {"git_sha": _git("rev-parse", "HEAD"), "git_dirty": dirty}
    if diff:
        state["git_diff"] = _git("diff", "HEAD") if dirty else None
    return state


def collect_env() -> dict[str, Any]:
    """Versions, device (and the CPU's model and vector ISA), git SHA and dirty flag, date (UTC)."""
    cuda = torch.cuda.is_available()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **git_state(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "timm": _version("timm"),
        "fvcore": _version("fvcore"),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "device": torch.cuda.get_device_name(0) if cuda else platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        # torch picks its CPU kernels by the vector ISA, so CPU runs repeat bit for bit only on like machines (seen: the
        # demo's top-1 moved by up to 2.4 points on another x86_64 machine with the same code, torch and timm)
        "cpu": cpu_model(),
        "cpu_isa": torch.backends.cpu.get_cpu_capability(),
        "numpy": _version("numpy"),
    }


def cpu_model() -> str | None:
    """The CPU's model name (Linux `/proc/cpuinfo`), None where it cannot be read."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:  # not Linux: the record says nothing rather than guessing
        pass
    return None
