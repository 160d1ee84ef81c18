"""The launcher against a real SLURM (slurm/local-cluster.sh): arrays, requeue, timeout, cancel, failure, relaunch.

Skipped, with the reason, where no local cluster is up (CI starts one: .ci/run).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import grids
import pytest
import torch
from slurm_check import REASON

from hiera.cli import main
from hiera.env import REPO
from hiera.launch.grid import GridContext
from hiera.launch.states import states

pytestmark = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.skipif(REASON is not None, reason=REASON or "")]


def write_grid(tmp_path: Path, grid: str, names=("r0",), samples=256, epochs=1, hours=0.25, data_path=None) -> Path:
    """Proxy runs named `names` (one seed) on partition debug (`tests/grids.py`)."""
    return grids.write_grid(
        tmp_path,
        grid,
        grids.named(names, seeds=False),
        command="--cluster slurm --partition debug",
        train_samples=samples,
        eval_samples=64,
        ckpt_every=2,
        log_every=2,
        mae_epochs=epochs,
        hours=hours,
        data_path=repr(data_path),
    )


def wait(grid: Path, root: Path, until, timeout: float = 300.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        _, found = states(grid, GridContext(), root)
        if until(found):
            return found
        time.sleep(1.0)
    raise AssertionError(f"timed out waiting on {grid.name}: {[(s.run.spec.run, s.state, s.detail) for s in found]}")


def finished(found) -> bool:
    return all(s.state in ("done", "failed") for s in found)


def submit(grid: Path, root: Path, *extra: str) -> None:
    assert (
        main(
            [
                "submit",
                str(grid),
                "--cluster",
                "slurm",
                "--partition",
                "debug",
                "--root",
                str(root),
                "--allow-dirty",
                *extra,
            ]
        )
        == 0
    )


def reference(grid: Path, tmp_path: Path, threads: int, run: str = "r0") -> Path:
    """The same run uninterrupted, in a process with the job's CPU thread count."""
    out = tmp_path / "reference"
    code = (
        f"from hiera.launch.grid import grid_runs, GridContext; from hiera.train.pipeline import run_pipeline;"
        f"_, runs = grid_runs({str(grid)!r}, GridContext());"
        f"run_pipeline(next(r.spec for r in runs if r.spec.run == {run!r}), {str(out)!r}, progress=False)"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS=str(threads))
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=600, capture_output=True)
    return out


def same_weights(a: Path, b: Path) -> bool:
    for phase in ("mae", "finetune"):
        wa = torch.load(a / phase / "checkpoints" / "model.pth", weights_only=True)["model_state"]
        wb = torch.load(b / phase / "checkpoints" / "model.pth", weights_only=True)["model_state"]
        if wa.keys() != wb.keys() or not all(torch.equal(wa[k], wb[k]) for k in wa):
            return False
    return True


def test_smoke_grid_as_an_array_then_relaunch_submits_nothing(tmp_path, capsys):
    root = tmp_path / "root"
    submit(REPO / "ablations" / "smoke.py", root)
    assert "submitted 2 run(s) in 1 job array(s) on slurm" in capsys.readouterr().out
    jobs = [json.loads(p.read_text())["job_id"] for p in sorted(root.glob("smoke/*/seed0/job.json"))]
    assert len({j.split("_")[0] for j in jobs}) == 1
    assert all("_" in j for j in jobs)  # one array
    found = wait(REPO / "ablations" / "smoke.py", root, finished)
    assert [s.state for s in found] == ["done", "done"], [s.detail for s in found]
    for s in found:
        record = json.loads((s.run_dir / "record.json").read_text())
        assert record["run"] == s.run.spec.run
        assert 0 <= record["metrics"]["top1"] <= 100
    submit(REPO / "ablations" / "smoke.py", root)
    assert "submitted 0 run(s)" in capsys.readouterr().out


def test_two_concurrent_submits_queue_each_run_once(tmp_path):
    """Two `hiera-study submit` processes reaching `main` at the same moment: one sbatch array, one job per run."""
    from test_launch_safety import RACER

    grid, root = write_grid(tmp_path, "race", names=("r0", "r1")), tmp_path / "root"
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 1))
    argv = ["submit", str(grid), "--cluster", "slurm", "--partition", "debug", "--root", str(root), "--allow-dirty"]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(barrier), str(i), *argv],
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert sorted(int(o.split("submitted ")[1].split()[0]) for o, _ in outs) == [0, 2], outs
    launches = list((root / "race" / "launches").glob("*.json"))
    assert sorted(len(json.loads(p.read_text())["runs"]) for p in launches) == [0, 2]
    found = wait(grid, root, finished)
    assert [s.state for s in found] == ["done", "done"], [s.detail for s in found]
    jobs = subprocess.run(
        ["sacct", "-n", "-X", "-P", "-S", since, "--name", "hiera-race", "-o", "JobID"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert len(jobs) == 2, jobs
    assert len({j.split("_")[0] for j in jobs}) == 1, jobs  # the old code: two arrays
    for s in found:  # one writer per run: every training step logged once
        steps = [
            json.loads(x)["step"]
            for x in (s.run_dir / "mae" / "metrics.jsonl").read_text().splitlines()
            if "loss" in json.loads(x)
        ]
        assert steps == sorted(set(steps)), steps


def test_scontrol_requeue_resumes_bit_identical(tmp_path):
    grid, root = write_grid(tmp_path, "requeue", samples=2048, epochs=2), tmp_path / "root"  # ~35 s of MAE
    submit(grid, root)
    run_dir = root / "requeue" / "r0"
    metrics = run_dir / "mae" / "metrics.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and not (metrics.is_file() and len(metrics.read_text().splitlines()) >= 20):
        time.sleep(0.2)
    assert not (run_dir / "mae" / "result.json").exists(), "the MAE phase ended before the requeue; make it longer"
    job = json.loads((run_dir / "job.json").read_text())["job_id"]
    subprocess.run(["scontrol", "requeue", job], check=True, capture_output=True)
    found = wait(grid, root, finished, timeout=600)
    assert found[0].state == "done", found[0].detail
    assert len(json.loads((run_dir / "mae" / "env.json").read_text())) >= 2  # it really restarted
    job_threads = json.loads((run_dir / "mae" / "env.json").read_text())[0]["cpu_threads"]
    ref = reference(grid, tmp_path, job_threads)
    threads = {e["cpu_threads"] for p in (run_dir, ref) for e in json.loads((p / "mae" / "env.json").read_text())}
    assert len(threads) == 1, f"the job and the reference ran with different thread counts {threads}"
    assert same_weights(run_dir, ref)


def test_a_run_past_its_time_limit_is_requeued_and_finishes(tmp_path):
    # ~130 s of MAE (1024 steps, 1 CPU) against a 2-minute limit whose SIGUSR2 is asked 45 s early (SLURM may send
    # it up to 60 s earlier still, so it lands 15-75 s into an attempt): at least one timeout, requeue and resume.
    grid, root = write_grid(tmp_path, "timeout", samples=8192, epochs=4, hours=2 / 60), tmp_path / "root"
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps({"partition": "debug", "signal_delay_s": 45}))
    assert (
        main(
            ["submit", str(grid), "--cluster", "slurm", "--profile", str(profile), "--root", str(root), "--allow-dirty"]
        )
        == 0
    )
    found = wait(grid, root, finished, timeout=1200)
    assert found[0].state == "done", found[0].detail
    assert len(json.loads((root / "timeout" / "r0" / "mae" / "env.json").read_text())) >= 2  # cut, then resumed
    log = Path(json.loads((root / "timeout" / "r0" / "job.json").read_text())["stdout"]).read_text()
    assert "Job has timed out" in log
    assert "Requeued job" in log


def test_scancel_shows_in_status(tmp_path, capsys):
    grid, root = write_grid(tmp_path, "cancel", samples=32768, epochs=5), tmp_path / "root"
    submit(grid, root)
    wait(grid, root, lambda f: f[0].state == "running", timeout=120)
    job = json.loads((root / "cancel" / "r0" / "job.json").read_text())["job_id"]
    subprocess.run(["scancel", job], check=True)
    found = wait(grid, root, lambda f: f[0].state == "failed", timeout=120)
    assert "CANCELLED" in found[0].detail
    capsys.readouterr()
    assert main(["status", str(grid), "--root", str(root)]) == 0
    assert "failed" in capsys.readouterr().out


def test_a_failing_run_is_the_only_failure(tmp_path, capsys):
    grid, root = write_grid(tmp_path, "failing", names=("ok", "broken")), tmp_path / "root"
    text = grid.read_text().replace("data_path=None", "data_path=None if run_id == 'ok' else '/nonexistent'")
    grid.write_text(text)
    submit(grid, root)
    found = wait(grid, root, finished)
    assert [s.state for s in found] == ["done", "failed"]
    capsys.readouterr()
    assert main(["status", str(grid), "--root", str(root)]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("broken"))
    assert "FileNotFoundError: Fashion-MNIST not found" in line
    assert "log:" in line
