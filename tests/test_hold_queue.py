"""slurm/hold-queue.sh: hold a busy cluster's queue for the test suite, then release exactly what it held.

Runs without SLURM: `squeue` and `scontrol` are stand-ins on PATH (squeue prints a fixed queue, scontrol logs its
argv), so the test checks which job gets which call, and that a job someone else held is left alone.
"""

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "slurm" / "hold-queue.sh"
QUEUE = """\
12 PENDING Priority
13 PENDING JobHeldUser
14 RUNNING None
15 PENDING Resources
16 COMPLETING None
"""


def _env(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "queue").write_text(QUEUE)
    (bin_dir / "squeue").write_text(f"#!/bin/sh\ncat {tmp_path / 'queue'}\n")
    (bin_dir / "scontrol").write_text(f'#!/bin/sh\necho "$*" >> {tmp_path / "calls"}\n')
    for tool in ("squeue", "scontrol"):
        (bin_dir / tool).chmod(0o755)
    return dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")


def _run(env, *args):
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=30)


def test_hold_then_release_exactly_the_jobs_it_held(tmp_path):
    env, listed = _env(tmp_path), tmp_path / "held"
    out = _run(env, "hold", str(listed))
    assert out.returncode == 0, out.stderr
    assert listed.read_text().split() == ["12", "15", "14", "16"]  # 13 was held by someone else: not ours
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls == ["hold 12", "hold 15", "requeuehold 14", "requeuehold 16"]
    assert "held 4 job(s)" in out.stderr

    again = _run(env, "hold", str(listed))  # a second hold would overwrite the list of the first: refused
    assert again.returncode == 2
    assert "exists" in again.stderr
    assert listed.read_text().split() == ["12", "15", "14", "16"]

    out = _run(env, "release", str(listed))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "calls").read_text().splitlines()[4:] == [f"release {j}" for j in ("12", "15", "14", "16")]
    assert not listed.exists()
    assert _run(env, "release", str(listed)).returncode == 2  # nothing left to release


def test_an_empty_queue_holds_nothing(tmp_path):
    env, listed = _env(tmp_path), tmp_path / "held"
    (tmp_path / "queue").write_text("")
    assert _run(env, "hold", str(listed)).returncode == 0
    assert listed.read_text() == ""
    assert not (tmp_path / "calls").exists()
    assert _run(env, "release", str(listed)).returncode == 0
