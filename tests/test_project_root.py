"""One project root, found from the working directory: two clones with one environment never write into each other.

Before, every output hung off the folder the `hiera` package was imported from: `hiera-study tables` run inside a
second clone rewrote the first clone's `results/tables/`. Now results are read and written under the nearest
folder (from the working directory upward) holding `ablations/` and `results/`, or `$HIERA_ROOT`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hiera.env import REPO

pytestmark = pytest.mark.slow  # each test runs the CLI in fresh processes


def cli(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "HIERA_ROOT"}
    environ.update(PYTHONPATH=str(REPO), **env)
    return subprocess.run(
        [sys.executable, "-m", "hiera.cli", *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=300
    )


def make_project(path: Path) -> Path:
    """A second 'clone': the markers, the paper's reference CSVs the tables need, nothing else."""
    (path / "ablations").mkdir(parents=True)
    shutil.copytree(REPO / "results" / "paper", path / "results" / "paper")
    return path


def test_tables_go_to_the_clone_the_command_runs_in(tmp_path):
    ours = REPO / "results" / "tables" / "tables.md"
    before = ours.read_bytes()
    other = make_project(tmp_path / "clone2")
    (other / "sub" / "dir").mkdir(parents=True)
    out = cli(other / "sub" / "dir", "tables")  # from a subfolder: the root is found upward
    assert out.returncode == 0, out.stderr
    written = other / "results" / "tables" / "tables.md"
    assert written.is_file()
    assert "### Table 1" in written.read_text()
    assert "files in results/tables" in out.stdout  # shown relative to the root it found
    assert ours.read_bytes() == before  # the imported package's clone is untouched


def test_no_project_is_one_line_and_hiera_root_names_one(tmp_path):
    nowhere = tmp_path / "nowhere"
    nowhere.mkdir()
    out = cli(nowhere, "tables")
    assert out.returncode == 2
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "no hiera-study project in" in lines[0]
    assert "HIERA_ROOT" in lines[0]
    assert not (nowhere / "results").exists()  # nothing written
    other = make_project(tmp_path / "clone2")
    out = cli(nowhere, "tables", HIERA_ROOT=str(other))
    assert out.returncode == 0, out.stderr
    assert (other / "results" / "tables" / "tables.md").is_file()
    assert not (nowhere / "results").exists()
