"""The local SLURM cluster (slurm/local-cluster.sh) runs jobs, arrays and cancellations, and sacct sees them.

Skipped unless `sinfo` is on PATH and `slurm/local-cluster.sh status` exits 0. Start it with
`bash slurm/local-cluster.sh start` (as root).
"""

import subprocess
import time
from pathlib import Path

import pytest
from slurm_check import REASON

pytestmark = [pytest.mark.slurm, pytest.mark.skipif(REASON is not None, reason=REASON or "")]

TIMEOUT_S = 30


def run(*args: str) -> str:
    return subprocess.run(args, capture_output=True, text=True, check=True, timeout=30).stdout.strip()


SUBMITTED: list[str] = []  # this module's jobs: cancelled after each test, so a failed test leaves none queued


@pytest.fixture(autouse=True)
def _cancel_leftovers():
    yield
    if SUBMITTED:
        subprocess.run(["scancel", *SUBMITTED], capture_output=True, timeout=30)
        SUBMITTED.clear()


def sbatch(tmp_path: Path, *args: str) -> str:
    """Submit to partition debug with outputs in tmp_path (`hiera-test_<job>_<task>.out`); returns the job id."""
    where = [f"--chdir={tmp_path}", f"--output={tmp_path}/%x_%A_%a.out"]
    job = run("sbatch", "--parsable", "--partition=debug", "--job-name=hiera-test", *where, *args).split(";")[0]
    SUBMITTED.append(job)
    return job


def sacct_states(job_id: str) -> dict[str, str]:
    """{JobID: State} of the job (array tasks as `<id>_<task>`); empty until slurmdbd has the records."""
    out = run("sacct", "-n", "-X", "-P", "-j", job_id, "-o", "JobID,State")
    return dict(line.split("|", 1) for line in out.splitlines() if "|" in line)


def wait_until(predicate, what: str, timeout: float = TIMEOUT_S):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.3)


def final_states(job_id: str, n: int) -> dict[str, str]:
    """Wait until sacct lists `n` records of the job, none of them pending/running, and return them."""

    def done():
        states = sacct_states(job_id)
        ended = len(states) == n and not any(s in {"PENDING", "RUNNING", "REQUEUED"} for s in states.values())
        return states if ended else None

    return wait_until(done, f"job {job_id} to end in sacct")


def test_trivial_job_completes(tmp_path):
    job = sbatch(tmp_path, "--wrap=echo hello")
    assert final_states(job, 1) == {job: "COMPLETED"}
    assert "hello" in next(tmp_path.glob(f"hiera-test_{job}_*.out")).read_text()


def test_array_runs_both_tasks(tmp_path):
    job = sbatch(tmp_path, "--array=0-1", "--wrap=echo task $SLURM_ARRAY_TASK_ID")
    assert final_states(job, 2) == {f"{job}_0": "COMPLETED", f"{job}_1": "COMPLETED"}
    outputs = sorted(p.read_text().strip() for p in tmp_path.glob(f"hiera-test_{job}_*.out"))
    assert outputs == ["task 0", "task 1"]


def test_scancel_shows_cancelled(tmp_path):
    job = sbatch(tmp_path, "--wrap=sleep 300")
    wait_until(lambda: run("squeue", "-h", "-j", job, "-o", "%T") == "RUNNING", f"job {job} to run")
    run("scancel", job)
    state = final_states(job, 1)[job]
    assert state.startswith("CANCELLED"), state
