import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from slurm_check import BUSY

# The official package the parity tests compare against, installed once into this folder (git-ignored) and reused.
OFFICIAL = "hiera-transformer==0.1.4"
OFFICIAL_CACHE = (
    Path(os.environ.get("HIERA_ORACLE_CACHE", Path(__file__).resolve().parents[1] / ".cache"))
    / "hiera-transformer-0.1.4"
)


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _slurm_node_free(request):
    """A SLURM test fails at once, with the one line saying why, when jobs queued before the suite hold the node."""
    if BUSY is not None and request.node.get_closest_marker("slurm") is not None:
        pytest.fail(BUSY, pytrace=False)


@pytest.fixture(scope="session")
def official_python():
    """An interpreter that sees the official `hiera-transformer` instead of this project (both import as `hiera`).

    The package is pip-installed from PyPI once into `OFFICIAL_CACHE` (`.cache/` of the clone, or
    `$HIERA_ORACLE_CACHE`) and reused; where the registry cannot be reached and nothing is cached, the tests that
    need it skip with one line saying so."""
    target = OFFICIAL_CACHE
    if not (target / "hiera" / "__init__.py").is_file():
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)  # this fixture's own leftover of an interrupted install
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--target",
                str(partial),
                "--upgrade",
                OFFICIAL,
            ],
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            last = (out.stderr.strip().splitlines() or ["no output"])[-1]
            pytest.skip(
                f"{OFFICIAL} could not be installed from the package registry ({last}); the parity tests "
                f"against it need the registry once, then use {target}"
            )
        partial.rename(target)  # whole or not at all: an interrupted install is never taken for a cached one
    wrapper = target / "python"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH={target} exec {sys.executable} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def pytest_unconfigure(config):
    """The run's last line, when the SLURM integration tests were skipped: why, and the command that enables them."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    skipped = [r for r in (reporter.stats.get("skipped", []) if reporter else []) if "slurm" in r.keywords]
    if skipped:
        reason = skipped[0].longrepr[2].removeprefix("Skipped: ") if isinstance(skipped[0].longrepr, tuple) else ""
        reporter.write_line(
            f"{len(skipped)} SLURM integration tests skipped ({reason}); to run them: "
            "sudo bash slurm/local-cluster.sh start, then this command again"
        )
