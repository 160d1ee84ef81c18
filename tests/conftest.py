import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def official_python(tmp_path_factory):
    """An interpreter that sees the official `hiera-transformer` (from PyPI) instead of this project."""
    target = tmp_path_factory.mktemp("official")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                    "hiera-transformer==0.1.4"], check=True)
    wrapper = target / "python"
    wrapper.write_text(f"#!/bin/sh\nPYTHONPATH={target} exec {sys.executable} \"$@\"\n")
    wrapper.chmod(0o755)
    return str(wrapper)



def pytest_unconfigure(config):
    """The run's last line, when the SLURM integration tests were skipped: why, and the command that enables them."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    skipped = [r for r in (reporter.stats.get("skipped", []) if reporter else []) if "slurm" in r.keywords]
    if skipped:
        reason = skipped[0].longrepr[2].removeprefix("Skipped: ") if isinstance(skipped[0].longrepr, tuple) else ""
        reporter.write_line(f"{len(skipped)} SLURM integration tests skipped ({reason}); to run them: "
                            "sudo bash slurm/local-cluster.sh start, then this command again")
