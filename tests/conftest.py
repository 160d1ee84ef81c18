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


def oracle_cache(name: str) -> Path:
    """The folder (git-ignored `.cache/` of the clone, or `$HIERA_ORACLE_CACHE`) an oracle package installs into."""
    return Path(os.environ.get("HIERA_ORACLE_CACHE", Path(__file__).resolve().parents[1] / ".cache")) / name


OFFICIAL_CACHE = oracle_cache("hiera-transformer-0.1.4")


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _slurm_node_free(request):
    """A SLURM test fails at once, with the one line saying why, when jobs queued before the suite hold the node."""
    if BUSY is not None and request.node.get_closest_marker("slurm") is not None:
        pytest.fail(BUSY, pytrace=False)


# SAM 2's package, for its image encoder trunk (HieraDet). PyPI has it as a source distribution whose setup.py imports
# torch: it is built without isolation against this environment's torch, with its optional CUDA extension off, and
# its pure-Python dependencies (hydra-core, iopath) go into the same folder.
SAM2 = "sam2==1.1.0"
SAM2_DEPS = ("hydra-core==1.3.2", "iopath==0.1.10")


def private_install(target: Path, marker: str, installs: list[list[str]], env: dict[str, str] | None = None) -> str:
    """pip-install into `target` once (each of `installs` is one pip argument list) and return an interpreter that
    sees that folder first; where the registry cannot be reached and nothing is cached, skip with one line.

    `marker`: a file under `target` that exists once the install is whole."""
    if not (target / marker).is_file():
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)  # this helper's own leftover of an interrupted install
        for args in installs:
            out = subprocess.run(
                [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(partial), "--upgrade", *args],
                capture_output=True,
                text=True,
                env={**os.environ, **(env or {})},
            )
            if out.returncode != 0:
                last = (out.stderr.strip().splitlines() or ["no output"])[-1]
                pytest.skip(
                    f"{args[-1]} could not be installed from the package registry ({last}); the parity tests "
                    f"against it need the registry once, then use {target}"
                )
        partial.rename(target)  # whole or not at all: an interrupted install is never taken for a cached one
    wrapper = target / "python"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH={target} exec {sys.executable} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


@pytest.fixture(scope="session")
def official_python():
    """An interpreter that sees the official `hiera-transformer` instead of this project (both import as `hiera`).

    The package is pip-installed from PyPI once into `OFFICIAL_CACHE` (`.cache/` of the clone, or
    `$HIERA_ORACLE_CACHE`) and reused; where the registry cannot be reached and nothing is cached, the tests that
    need it skip with one line saying so."""
    return private_install(OFFICIAL_CACHE, "hiera/__init__.py", [["--no-deps", OFFICIAL]])


@pytest.fixture(scope="session")
def sam2_python():
    """An interpreter that sees SAM 2's package (`sam2`, with hydra-core and iopath), installed once into
    `.cache/sam2-1.1.0` as `official_python` installs the official Hiera."""
    return private_install(
        oracle_cache("sam2-1.1.0"),
        "sam2/modeling/backbones/hieradet.py",
        [["--no-deps", "--no-build-isolation", SAM2], list(SAM2_DEPS)],
        env={"SAM2_BUILD_CUDA": "0", "SAM2_BUILD_ALLOW_ERRORS": "1"},
    )


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
