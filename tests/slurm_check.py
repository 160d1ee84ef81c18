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
