"""The GPU pass, dry-run on the CPU: every part runs and appends records, and the bare GPU machine has every
package it imports (its own stack, or a wheel of `slurm/gpu-pass-wheels.txt`)."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import torch

from hiera.env import REPO

# Distributions on the GPU machine's Python 3.12 (device tool KINDS.md, as read there on 2026-11-17).
GPU_MACHINE = set(
    """
absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build certifi
charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core cuda-pathfinder
cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock flatbuffers flax fonttools
formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize hypothesis idna
imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib jaxtyping jinja2 joblib kiwisolver
lazy-loader lightning lightning-utilities linear-operator lineax llvmlite lxml markdown markdown-it-py markupsafe
matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict multipledispatch mypy-extensions nanobind narwhals
networkx ninja numba numba-cuda numpy numpyro nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime
nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13
nvidia-ml-py nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir onnxruntime onnxscript
opencv-python-headless optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint packaging pandas pathspec patsy peft
pillow pip pluggy portalocker prometheus-client propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments
pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist python-dateutil
pytorch-lightning pyyaml regex requests rich sacrebleu safetensors scikit-build-core scikit-image scikit-learn scipy
seaborn sentencepiece sentence-transformers setuptools shellingham simplejson six sortedcontainers statsmodels sympy
tabulate tensorboard tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm tokenizers toolz torch
torchaudio torchdiffeq torch-geometric torchmetrics torchvision tqdm transformers treescope triton typer
typing-extensions typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt xarray xxhash yarl zipp
""".split()  # noqa: SIM905 - the list as pasted, one block
)
OFFICIAL = "hiera-transformer"  # runs in its own interpreter; never imported by the project

RECORDER = """
import atexit, os, sys
def _dump():
    names = sorted(set(sys.modules) | {m.split('.')[0] for m in sys.modules})
    with open(os.path.join(os.environ['IMPORTS_DIR'], f'{os.getpid()}.txt'), 'w') as f:
        f.write('\\n'.join(names))
atexit.register(_dump)
"""


def wheel_list() -> list[tuple[str, str]]:
    lines = (REPO / "slurm" / "gpu-pass-wheels.txt").read_text().splitlines()
    pairs = [tuple(x.strip().split("==")) for x in lines if x.strip() and not x.startswith("#")]
    assert all(len(p) == 2 for p in pairs), f"every line is name==version: {pairs}"
    return pairs


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    """`bash slurm/gpu-pass.sh OUT --dry-run` as on the GPU machine (PYTHONPATH, nothing installed), with every
    process recording the top-level modules it imported."""
    tmp = tmp_path_factory.mktemp("gpu_pass")
    (tmp / "site").mkdir()
    (tmp / "site" / "sitecustomize.py").write_text(RECORDER)
    imports = tmp / "imports"
    imports.mkdir()
    env = dict(
        os.environ, PYTHON=sys.executable, PYTHONPATH=str(tmp / "site"), IMPORTS_DIR=str(imports), OMP_NUM_THREADS="1"
    )
    out = tmp / "out"
    proc = subprocess.run(
        ["bash", str(REPO / "slurm" / "gpu-pass.sh"), str(out), "--dry-run", "--budget-s", "600"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp,
    )
    names = set()
    for f in imports.glob("*.txt"):
        names |= set(f.read_text().split())
    return proc, out, names


@pytest.mark.slow
def test_dry_run_runs_every_part_and_writes_records(dry_run):
    proc, out, _ = dry_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = (out / "gpu-pass.log").read_text()
    assert "ERROR" not in log, log
    assert not re.search(r"^\S+ skip ", log, re.M), log  # nothing failed or ran out of time
    for part in ("numerics", "paper_ladder", "modern", "sizes", "breakdown", "resume"):
        assert f"part {part}" in log
    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= 8, files  # the device tool brings back at most 8 files
    assert {"numerics.jsonl", "resume.jsonl", "gpu-pass.log"} <= set(files)
    assert any(f.startswith("bench-infer-fp32-math-") for f in files)  # paper protocol (fp32 stands in for fp16)
    assert any(f.startswith("bench-mae-") and "-compile-" in f for f in files)
    assert any(f.startswith("breakdown-") for f in files)

    numerics = [json.loads(x) for x in (out / "numerics.jsonl").read_text().splitlines()]
    assert numerics
    assert all(r["ok"] for r in numerics), [r for r in numerics if not r["ok"]]
    checks = {(r["variant"], r["check"], r["attn"]) for r in numerics}
    assert ("hiera_tiny_224", "forward_fp32_vs_cpu", "sdpa") in checks
    assert ("hiera_tiny_224", "mae_loss_finite", "sdpa") in checks
    resume = [json.loads(x) for x in (out / "resume.jsonl").read_text().splitlines()]
    kill = {r["phase"]: r for r in resume if r["check"].endswith("_kill_resume")}
    assert set(kill) == {"supervised", "mae"}
    for r in kill.values():  # on the CPU the resumed run is bit-identical (tests/test_train.py shows why)
        assert r["killed"], r
        assert r["starts"] == 2, r
        assert r["identical"], r
        assert r["metrics_identical"], r
    for path in out.glob("bench-*.jsonl"):
        for line in path.read_text().splitlines():
            r = json.loads(line)
            assert r["device"].startswith("cpu"), r
            assert r["git_sha"], r  # conditions ride along; CPU says CPU
            assert r["attn_backends"], r  # the kernel that ran
    assert "summary" in proc.stdout
    assert "errors 0" in proc.stdout


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imports_of(path: Path) -> tuple[set[str], set[str]]:
    """Top-level names a source file imports: (at module level, inside functions); relative imports left out."""

    def names(nodes) -> set[str]:
        found = set()
        for node in nodes:
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
        return found

    tree = ast.parse(path.read_text())
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    inside = names(n for f in functions for n in ast.walk(f))
    return names(ast.walk(tree)) - inside, inside


def _requirements(dist: str) -> set[str]:
    """The unconditional requirements of an installed distribution (extras and other Pythons' markers left out)."""
    from packaging.requirements import Requirement

    out = set()
    for text in metadata.requires(dist) or []:
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate({"python_version": "3.12", "extra": ""}):
            out.add(_norm(req.name))
    return out


@pytest.mark.slow
def test_wheel_list_matches_the_imports_the_pass_needs(dry_run):
    """Every distribution the project's loaded modules import (at import time, or in a function that ran), and every
    requirement of a carried wheel, is on the GPU machine or carried; every carried wheel is needed."""
    proc, _, modules = dry_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {"hiera.bench.throughput", "hiera.bench.breakdown", "hiera.model.flops"} <= modules
    modules = modules | {"hiera.bench.gpu_pass"}  # it ran as __main__
    to_dist = metadata.packages_distributions()
    needed = set()
    for module in sorted(m for m in modules if m == "hiera" or m.startswith("hiera.")):
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            continue
        at_import, in_functions = _imports_of(Path(spec.origin))
        # a function's import counts only when it ran (e.g. PyAV, imported only to decode Kinetics videos)
        for name in (at_import | (in_functions & modules)) - set(sys.stdlib_module_names) - {"hiera"}:
            assert name in to_dist, f"{module} imports {name}, which no installed distribution provides"
            needed |= {_norm(d) for d in to_dist[name]}
    carried = {_norm(name) for name, _ in wheel_list()} - {OFFICIAL}
    for dist in sorted(needed & carried):  # what the carried wheels themselves need
        needed |= _requirements(dist)
    machine = {_norm(d) for d in GPU_MACHINE}
    missing = sorted(needed - machine - carried)
    assert not missing, f"needed by the pass but neither on the GPU machine nor carried as a wheel: {missing}"
    unused = sorted(carried - needed)
    assert not unused, f"carried but not needed: {unused}"
    assert "submitit" not in needed
    assert "av" not in needed  # the launcher and the video decoder stay out of it


def test_wheel_list_is_pinned():
    pairs = wheel_list()
    assert len({name for name, _ in pairs}) == len(pairs)
    assert OFFICIAL in {name for name, _ in pairs}
    assert all(re.fullmatch(r"[0-9][0-9a-z.]*", version) for _, version in pairs)


def test_fetch_wheels_downloads_exactly_the_list(tmp_path):
    """Needs PyPI (as the official-package tests do). Run on a copy so the checkout gets no .whl/."""
    shutil.copytree(REPO / "slurm", tmp_path / "slurm")
    env = dict(os.environ, PYTHON=sys.executable, HIERA_DATA_DIR=str(tmp_path / "nowhere"))
    proc = subprocess.run(
        ["bash", str(tmp_path / "slurm" / "fetch-wheels.sh")], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    wheels = sorted(p.name for p in (tmp_path / ".whl").glob("*.whl"))
    assert len(wheels) == len(wheel_list())
    for name, version in wheel_list():
        assert any(
            w.startswith(f"{name.replace('-', '_')}-{version}-") and w.endswith("-none-any.whl") for w in wheels
        ), (name, wheels)
    assert sum(p.stat().st_size for p in (tmp_path / ".whl").iterdir()) < 8 * 2**20


def test_bad_arguments_one_line_exit_2(tmp_path, capsys):
    from hiera.bench.gpu_pass import main

    for argv, says in (
        (["--parts", "numerics,warp"], "unknown part"),
        (["--budget-s", "0"], "positive"),
        (["--official-python", str(tmp_path / "nope")], "does not exist"),
    ):
        assert main([str(tmp_path / "out"), *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0, err
        assert says in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible: the pass would run for real")
def test_no_gpu_is_refused_without_dry_run(tmp_path, capsys):
    from hiera.bench.gpu_pass import main

    assert main([str(tmp_path / "out"), "--parts", "numerics"]) == 2
    assert "no CUDA device" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
