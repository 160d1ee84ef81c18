"""slurm/local-cluster.sh keeps its MariaDB password off command lines (issue 12: visible to all users in `ps`).

Runs without SLURM: the script is sourced (it only defines its functions then) and `db`, the MariaDB client call,
is replaced by a recorder of its argv and stdin.
"""

import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "slurm" / "local-cluster.sh"


def test_the_database_password_goes_on_stdin_not_argv(tmp_path):
    secret = "s3cretPW9"
    (tmp_path / "dbpass").write_text(secret)
    shell = f"""
source {SCRIPT}
STATE={tmp_path}
db() {{ printf '%s\\n' "$*" >> {tmp_path}/argv; cat >> {tmp_path}/stdin; }}
grant_slurm_user
"""
    subprocess.run(["bash", "-c", shell], check=True, timeout=30)
    argv, stdin = (tmp_path / "argv").read_text(), (tmp_path / "stdin").read_text()
    assert secret not in argv
    assert f"IDENTIFIED BY '{secret}'" in stdin
    assert "GRANT ALL ON slurm_acct_db.*" in stdin


def test_no_other_command_line_carries_the_password():
    """Static: the password file is read only into the heredoc and into slurmdbd.conf (mode 600)."""
    uses = [line.strip() for line in SCRIPT.read_text().splitlines() if "dbpass" in line or "$pass" in line]
    assert uses
    assert all(not line.startswith("db -e") and " -e " not in line for line in uses), uses
    assert any(line.startswith("StoragePass=") for line in uses)
