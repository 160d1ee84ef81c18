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
