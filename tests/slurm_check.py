"""Why the local SLURM cannot be used here (a reason for `pytest.mark.skipif`), or None when it is up."""

import shutil
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "slurm" / "local-cluster.sh"


def slurm_unavailable() -> str | None:
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return "SLURM is not installed here (start the local one: sudo bash slurm/local-cluster.sh start)"
    status = subprocess.run(["bash", str(SCRIPT), "status"], capture_output=True, text=True, timeout=60)
    if status.returncode != 0:
        last = (status.stdout + status.stderr).strip().splitlines()[-1:] or [""]
        return f"the local SLURM is not up (slurm/local-cluster.sh status: {last[0]})"
    if subprocess.run(["sacct", "-n", "-X", "-j", "1"], capture_output=True, timeout=30).returncode != 0:
        return "sacct does not work (cluster started with HIERA_SLURM_ACCOUNTING=0?)"
    return None


REASON = slurm_unavailable()


def queue_busy() -> str | None:
    """Why the node is not free for the tests, or None: jobs already queued (not held) when the tests start.

    Asked once, at import, before any test submits. Those jobs would take the node, and every SLURM test would then
    wait out its timeout behind them (stop 19: a developer's grid, 9 timeouts, 75 minutes); one early line is
    better. Held jobs (`scontrol hold`, `requeuehold`) never start, so they do not count."""
    out = subprocess.run(["squeue", "-h", "-o", "%i %T %r"], capture_output=True, text=True, timeout=60)
    jobs = [line.split() for line in out.stdout.splitlines() if line.strip()]
    live = [j for j in jobs if not (len(j) > 2 and j[2].startswith("JobHeld"))]
    if not live:
        return None
    shown = ", ".join(f"{j[0]} {j[1].lower()}" for j in live[:3]) + (" ..." if len(live) > 3 else "")
    return (
        f"the local SLURM already has {len(live)} job(s) queued that would take its node ({shown}); hold them "
        "(scontrol hold <id>; a running one: scontrol requeuehold <id>) or let them end, then run the tests again"
    )


BUSY = queue_busy() if REASON is None else None
