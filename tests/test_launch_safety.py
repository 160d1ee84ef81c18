"""The launcher never runs a job twice, never trusts a queue it could not read, and `collect` never destroys records.

Issue 12 parts 1-4, without SLURM: two real `hiera-study submit` processes at once on `--cluster local`; fake
`squeue`/`sacct` commands on PATH that fail, hang or count their calls; stale run directories (spec.json of another
grid entry); `collect` against a wrong root, with `--only`, `--prune`, and under repeated kill -9. The same
concurrent submit against the real local SLURM is in test_slurm_launch.py.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import grids
import pytest

from hiera.cli import main
from hiera.env import REPO
from hiera.files import Lock, atomic_write_text
from hiera.launch.collect import collect
from hiera.launch.grid import GridContext, grid_runs
from hiera.launch.states import format_status
from hiera.launch.submit import format_plan


def write_grid(tmp_path: Path, grid: str = "g", names=("r0",), data_path: str = "None") -> Path:
    """Proxy runs `<name>/seed<seed>` that finish in a few seconds on one CPU (`tests/grids.py`)."""
    return grids.write_grid(tmp_path, grid, grids.named(names), data_path=data_path)


def one_error_line(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, err
    assert err.startswith("hiera-study: error:"), err
    return err


def slurm_job(run_dir: Path, job_id: str) -> None:
    """A run directory as `submit --cluster slurm` leaves it: job.json only."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "job.json").write_text(
        json.dumps({"job_id": job_id, "cluster": "slurm", "submitted": "x", "stdout": "o.log", "stderr": "e.log"})
    )


def finished(run_dir: Path, spec=None, **extra) -> None:
    """A finished run directory as runs wrote it before `record.json`: result.json (schema 1; collect still reads
    it) and spec.json when `spec` is given, as run_pipeline writes it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if spec is not None:
        (run_dir / "spec.json").write_text(json.dumps(spec.to_dict(), sort_keys=True, default=list))
    (run_dir / "result.json").write_text(json.dumps(grids.done_record(spec.run if spec else extra.pop("run"), **extra)))


def fake(bin_dir: Path, name: str, body: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    path.write_text("#!/bin/bash\n" + body + "\n")
    path.chmod(0o755)


@pytest.fixture
def fakebin(tmp_path, monkeypatch) -> Path:
    """A folder first on PATH for fake SLURM commands (squeue/sacct that fail, hang or count)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return bin_dir


# ---- 1. at most one live submission per run --------------------------------------------------------------------

# Each process imports everything first, then waits at a file barrier, so both reach `main` within a millisecond:
# the race two users (or a user and a cron job) would run, made certain instead of likely.
RACER = """
import pathlib, sys, time
from hiera.cli import main
import hiera.launch.submit, hiera.launch.task, submitit  # what submit imports, so neither starts later
barrier = pathlib.Path(sys.argv[1])
(barrier / f"ready-{sys.argv[2]}").touch()
while len(list(barrier.glob("ready-*"))) < 2:
    time.sleep(0.0005)
sys.exit(main(sys.argv[3:]))
"""


@pytest.mark.slow
def test_two_concurrent_local_submits_start_each_run_once(tmp_path):
    grid, root = write_grid(tmp_path, "race", names=("a", "b")), tmp_path / "root"
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    argv = ["submit", str(grid), "--cluster", "local", "--root", str(root), "--allow-dirty"]
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
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
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    submitted = sorted(int(o.split("submitted ")[1].split()[0]) for o, _ in outs)
    assert submitted == [0, 2], outs  # the old code: [2, 2], four jobs for two runs
    launches = sorted((root / "race" / "launches").glob("*.json"))
    assert len(launches) == 2, launches  # the old code: one, the other overwritten (same-second name)
    assert sorted(len(json.loads(p.read_text())["runs"]) for p in launches) == [0, 2]
    run_dirs = [root / "race" / run / "seed0" for run in ("a", "b")]
    deadline = time.time() + 120
    while time.time() < deadline and not all((d / "record.json").is_file() for d in run_dirs):
        time.sleep(0.2)
    for d in run_dirs:
        assert (d / "record.json").is_file(), sorted(p.name for p in d.iterdir())
        for phase in ("mae", "finetune"):  # one writer: every step logged once, in order
            steps = [
                json.loads(x)["step"]
                for x in (d / phase / "metrics.jsonl").read_text().splitlines()
                if "loss" in json.loads(x)
            ]  # training steps (an eval record repeats the step it followed)
            assert steps == sorted(set(steps)), (phase, steps)


def test_a_second_submit_waits_for_the_lock_then_fails_in_one_line(tmp_path, capsys, monkeypatch):
    grid, root = write_grid(tmp_path, "locked"), tmp_path / "root"
    monkeypatch.setenv("HIERA_SUBMIT_LOCK_WAIT_S", "1")
    held = tmp_path / "held"
    pid = os.fork()
    if pid == 0:  # another live submit: holds the grid's lock (in another process, as a real one would)
        try:
            with Lock(root / "locked" / ".submit.lock", "test holder"):
                held.touch()
                time.sleep(30)
        finally:
            os._exit(0)
    try:
        deadline = time.time() + 10
        while time.time() < deadline and not held.exists():
            time.sleep(0.02)
        started = time.monotonic()
        err = one_error_line(capsys, ["submit", str(grid), "--cluster", "debug", "--root", str(root), "--allow-dirty"])
        waited = time.monotonic() - started
        assert f"pid {pid}" in err, err
        assert ".submit.lock" in err, err
        assert "wait for it" in err, err
        assert 0.9 <= waited < 10, waited  # it waited for the holder, then gave up
        assert not (root / "locked" / "r0").exists()
        assert not (root / "locked" / "launches").exists()
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def test_launch_records_of_one_second_never_overwrite_each_other(tmp_path, capsys):
    grid, root = write_grid(tmp_path, "quick"), tmp_path / "root"
    finished(root / "quick" / "r0" / "seed0", run="r0/seed0")  # done: the submits below submit nothing, fast
    for _ in range(3):
        assert main(["submit", str(grid), "--cluster", "debug", "--root", str(root), "--allow-dirty"]) == 0
    assert capsys.readouterr().out.count("submitted 0 run(s)") == 3
    assert len(list((root / "quick" / "launches").glob("*.json"))) == 3


# ---- 2. queue queries that cannot lie ---------------------------------------------------------------------------


def test_a_failing_squeue_makes_the_run_unknown_and_only_force_resubmits(tmp_path, capsys, fakebin):
    fake(fakebin, "squeue", "echo 'slurm_load_jobs error: Socket timed out' >&2; exit 1")
    grid, root = write_grid(tmp_path, "q"), tmp_path / "root"
    run_dir = root / "q" / "r0" / "seed0"
    slurm_job(run_dir, "4242_0")
    assert main(["status", str(grid), "--root", str(root)]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("r0/seed0"))
    assert " unknown " in line, out
    assert "squeue exited with status 1" in line, out
    assert "Socket timed out" in line, out
    assert out.splitlines()[-1] == "q: 0 done, 0 running, 0 pending, 0 failed, 0 missing, 1 unknown of 1"
    # The old code called this run failed and resubmitted it: a second job beside one that may be running.
    assert (
        main(["status", str(grid), "--root", str(root), "--resubmit-failed", "--cluster", "debug", "--allow-dirty"])
        == 0
    )
    assert main(["submit", str(grid), "--root", str(root), "--cluster", "debug", "--allow-dirty"]) == 0
    out = capsys.readouterr().out
    assert "submitted 0 run(s)" in out
    assert "1 unknown, not submitted" in out
    assert "--force" in out
    assert json.loads((run_dir / "job.json").read_text())["job_id"] == "4242_0"
    assert main(["submit", str(grid), "--root", str(root), "--cluster", "debug", "--allow-dirty", "--force"]) == 0
    assert "submitted 1 run(s)" in capsys.readouterr().out
    assert json.loads((run_dir / "job.json").read_text())["cluster"] == "debug"
    assert (run_dir / "record.json").is_file()


def test_a_hanging_squeue_times_out_into_unknown(tmp_path, capsys, fakebin, monkeypatch):
    # No `exec`: the sleep is a grandchild holding the pipes, which a plain subprocess.run timeout would wait for.
    fake(fakebin, "squeue", "sleep 60")
    monkeypatch.setenv("HIERA_QUEUE_TIMEOUT_S", "0.5")
    grid, root = write_grid(tmp_path, "hang"), tmp_path / "root"
    slurm_job(root / "hang" / "r0" / "seed0", "77")
    started = time.monotonic()
    assert main(["status", str(grid), "--root", str(root)]) == 0  # the old code: a TimeoutExpired traceback
    assert time.monotonic() - started < 10
    out = capsys.readouterr().out
    assert " unknown " in out
    assert "squeue did not answer within 0.5 s" in out
    assert "HIERA_QUEUE_TIMEOUT_S" in out
    monkeypatch.setenv("HIERA_QUEUE_TIMEOUT_S", "soon")
    err = one_error_line(capsys, ["status", str(grid), "--root", str(root)])
    assert "HIERA_QUEUE_TIMEOUT_S='soon' is not a positive number of seconds" in err


def test_a_failing_or_hanging_sacct_makes_ended_jobs_unknown(tmp_path, capsys, fakebin, monkeypatch):
    fake(fakebin, "squeue", "exit 0")  # the job left the queue: only sacct can say how it ended
    fake(fakebin, "sacct", "echo 'sacct: error: Problem talking to the database' >&2; exit 1")
    grid, root = write_grid(tmp_path, "acct"), tmp_path / "root"
    run_dir = root / "acct" / "r0" / "seed0"
    slurm_job(run_dir, "99")
    assert main(["status", str(grid), "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert " unknown " in out, out
    assert "sacct exited with status 1: sacct: error: Problem talking" in out, out
    fake(fakebin, "sacct", "sleep 60")
    monkeypatch.setenv("HIERA_QUEUE_TIMEOUT_S", "0.3")
    assert main(["submit", str(grid), "--root", str(root), "--cluster", "debug", "--allow-dirty"]) == 0
    assert "submitted 0 run(s)" in capsys.readouterr().out
    assert json.loads((run_dir / "job.json").read_text())["job_id"] == "99"


def test_sacct_is_asked_once_for_all_ended_jobs(tmp_path, capsys, fakebin):
    calls = tmp_path / "sacct-calls"
    fake(fakebin, "squeue", "echo '1_0|RUNNING'")  # one job still runs: sacct is not asked about it
    # Prints FAILED for every id of `-j a,b,c` and logs each call.
    fake(
        fakebin,
        "sacct",
        f'echo "$@" >> {calls}\n'
        'while [ $# -gt 0 ]; do if [ "$1" = -j ]; then ids=$2; fi; shift; done\n'
        'for id in ${ids//,/ }; do echo "$id|FAILED"; done',
    )
    names = [f"r{i}" for i in range(30)]
    grid, root = write_grid(tmp_path, "many", names=names), tmp_path / "root"
    for i, name in enumerate(names):
        slurm_job(root / "many" / name / "seed0", f"1_{i}")
    assert main(["status", str(grid), "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "many: 0 done, 1 running, 0 pending, 29 failed, 0 missing of 30"
    assert "job 1_5 FAILED" in out
    lines = calls.read_text().splitlines()
    assert len(lines) == 1, lines  # the old code: 29 calls, one per ended run
    assert "1_0," not in lines[0]
    assert "1_1,1_2" in lines[0]


def test_a_local_job_whose_process_lives_is_running_not_failed(tmp_path, capsys):
    grid, root = write_grid(tmp_path, "live"), tmp_path / "root"
    run_dir = root / "live" / "r0" / "seed0"
    run_dir.mkdir(parents=True)
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        (run_dir / "job.json").write_text(json.dumps({"job_id": str(sleeper.pid), "cluster": "local"}))
        assert main(["status", str(grid), "--root", str(root)]) == 0
        assert f"r0/seed0  running  pid {sleeper.pid}" in capsys.readouterr().out
        assert main(["submit", str(grid), "--root", str(root), "--cluster", "debug", "--allow-dirty"]) == 0
        assert "submitted 0 run(s)" in capsys.readouterr().out
    finally:
        sleeper.kill()
        sleeper.wait()
    assert main(["status", str(grid), "--root", str(root)]) == 0
    assert " failed " in capsys.readouterr().out  # gone without a result


# ---- 3. bad values and empty things -----------------------------------------------------------------------------


def test_seeds_below_one_and_empty_grids_are_one_line_errors(tmp_path, capsys):
    grid, root = write_grid(tmp_path, "s"), tmp_path / "root"
    for command in (["submit", "--dry-run"], ["status"], ["collect", "--out", str(tmp_path / "rec")]):
        err = one_error_line(capsys, [command[0], str(grid), "--root", str(root), "--seeds", "0", *command[1:]])
        assert "--seeds must be at least 1, got 0" in err
    empty = tmp_path / "empty.py"
    empty.write_text('"""No runs."""\n\ndef runs(ctx):\n    return []\n')
    for command in (["submit", "--dry-run"], ["status"], ["collect", "--out", str(tmp_path / "rec")]):
        err = one_error_line(capsys, [command[0], str(empty), "--root", str(root), *command[1:]])
        assert "grid empty" in err
        assert "has no runs" in err  # the old code: max() arg is an empty sequence
    assert not (tmp_path / "rec").exists()
    assert format_status("x", []) == "x: 0 done, 0 running, 0 pending, 0 failed, 0 missing of 0"
    assert format_plan("x", [], [], root, "debug").endswith("0 to submit of 0 runs, ~0 GPU-hours (A100-class estimate)")


# ---- 4. run identity: stale run directories ---------------------------------------------------------------------


def test_a_run_directory_of_another_spec_is_stale_until_moved_aside(tmp_path, capsys):
    grid, root = write_grid(tmp_path, "st"), tmp_path / "root"
    _, runs = grid_runs(grid, GridContext())
    run_dir = root / "st" / "r0" / "seed0"
    old = dataclasses.replace(runs[0].spec, train=runs[0].spec.train.replace(batch_size=16, eval_samples=48))
    finished(run_dir, old, metrics={"top1": 12.5})  # what the grid's entry was when it ran
    assert main(["status", str(grid), "--root", str(root)]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("r0/seed0"))
    assert " stale " in line, out
    assert "train.batch_size" in line, out
    assert "train.eval_samples" in line, out  # old: done
    assert "--resubmit-stale" in out
    assert out.splitlines()[-1].endswith("1 stale of 1")
    assert main(["submit", str(grid), "--root", str(root), "--cluster", "debug", "--allow-dirty"]) == 0
    assert "submitted 0 run(s)" in capsys.readouterr().out
    assert not (run_dir / "job.json").exists()
    rec = tmp_path / "rec"
    assert main(["collect", str(grid), "--root", str(root), "--out", str(rec)]) == 0
    (line,) = [json.loads(x) for x in (rec / "st.jsonl").read_text().splitlines()]
    assert line["status"] == "stale"  # not collected as done
    assert "train.batch_size" in line["error"]
    assert (
        main(["submit", str(grid), "--root", str(root), "--cluster", "debug", "--allow-dirty", "--resubmit-stale"]) == 0
    )
    assert "submitted 1 run(s)" in capsys.readouterr().out
    (aside,) = list(run_dir.parent.glob("seed0.stale-*"))
    assert json.loads((aside / "result.json").read_text())["metrics"] == {"top1": 12.5}  # kept, not deleted
    assert json.loads((run_dir / "record.json").read_text())["status"] == "done"
    assert json.loads((run_dir / "spec.json").read_text())["train"]["batch_size"] == 32
    assert main(["status", str(grid), "--root", str(root)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "st: 1 done, 0 running, 0 pending, 0 failed, 0 missing of 1"


def test_a_stale_run_with_a_live_job_is_not_moved(tmp_path, capsys):
    grid, root = write_grid(tmp_path, "busy"), tmp_path / "root"
    _, runs = grid_runs(grid, GridContext())
    run_dir = root / "busy" / "r0" / "seed0"
    run_dir.mkdir(parents=True)
    (run_dir / "spec.json").write_text(json.dumps(dataclasses.replace(runs[0].spec, seed=7).to_dict(), default=list))
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        (run_dir / "job.json").write_text(json.dumps({"job_id": str(sleeper.pid), "cluster": "local"}))
        assert (
            main(["submit", str(grid), "--root", str(root), "--cluster", "debug", "--allow-dirty", "--resubmit-stale"])
            == 0
        )
        out = capsys.readouterr().out
        assert "submitted 0 run(s)" in out, out
        assert "1 stale run(s) not submitted: their job is still" in out, out
        assert main(["status", str(grid), "--root", str(root)]) == 0
        assert f"job {sleeper.pid} is still running: cancel it" in capsys.readouterr().out
    finally:
        sleeper.kill()
        sleeper.wait()
    assert not list(run_dir.parent.glob("seed0.stale-*"))


def test_a_stale_run_directory_locked_by_a_live_writer_is_not_moved(tmp_path, capsys):
    """No job in the queue, but a process (a `hiera-study train` by hand, say) holds the run directory's lock."""
    grid, root = write_grid(tmp_path, "held"), tmp_path / "root"
    _, runs = grid_runs(grid, GridContext())
    run_dir = root / "held" / "r0" / "seed0"
    finished(run_dir, dataclasses.replace(runs[0].spec, seed=3))
    ready = tmp_path / "ready"
    pid = os.fork()
    if pid == 0:
        try:
            with Lock(run_dir / ".lock", "test writer"):  # the lock run_pipeline holds while it trains
                ready.touch()
                time.sleep(30)
        finally:
            os._exit(0)
    try:
        deadline = time.time() + 10
        while time.time() < deadline and not ready.exists():
            time.sleep(0.02)
        assert (
            main(["submit", str(grid), "--root", str(root), "--cluster", "debug", "--allow-dirty", "--resubmit-stale"])
            == 0
        )
        assert "submitted 0 run(s)" in capsys.readouterr().out
        assert (run_dir / "result.json").is_file()
        assert not list(run_dir.parent.glob("seed0.stale-*"))
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def test_status_and_collect_build_the_grid_as_submit_does(tmp_path, capsys):
    """A grid entry that depends on the profile (its ImageNet path) is the same entry for submit, status, collect."""
    grid, root = write_grid(tmp_path, "ctx", data_path="ctx.imagenet"), tmp_path / "root"
    profile = tmp_path / "site.json"
    profile.write_text(json.dumps({"imagenet": "/site/imagenet", "root": str(root)}))
    _, runs = grid_runs(grid, GridContext(imagenet="/site/imagenet"))
    finished(root / "ctx" / "r0" / "seed0", runs[0].spec)
    assert main(["status", str(grid), "--profile", str(profile)]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("ctx: 1 done")
    assert main(["collect", str(grid), "--profile", str(profile), "--out", str(tmp_path / "rec")]) == 0
    assert json.loads((tmp_path / "rec" / "ctx.jsonl").read_text())["status"] == "done"
    assert main(["status", str(grid), "--root", str(root)]) == 0  # without the profile: another data path
    assert "train.data_path" in capsys.readouterr().out


# ---- 3. collect merges, never destroys ---------------------------------------------------------------------------


def test_collect_keeps_done_records_unless_pruned_and_filters_with_only(tmp_path, capsys):
    grid, root, rec = write_grid(tmp_path, "m", names=("a", "b", "c")), tmp_path / "root", tmp_path / "rec"
    for run in ("a", "b"):
        finished(root / "m" / run / "seed0", run=f"{run}/seed0", metrics={"top1": 50.0})
    assert main(["collect", str(grid), "--root", str(root), "--out", str(rec)]) == 0
    path = rec / "m.jsonl"
    read = lambda: {x["run"]: x for x in map(json.loads, path.read_text().splitlines())}  # noqa: E731
    assert {k: v["status"] for k, v in read().items()} == {"a/seed0": "done", "b/seed0": "done", "c/seed0": "missing"}
    with path.open("a") as f:  # a line of a run since removed from the grid
        f.write(json.dumps({"run": "gone/seed0", "status": "done", "grid": "m"}) + "\n")
    (root / "m" / "a").rename(tmp_path / "a-moved")  # a run directory moved or lost
    capsys.readouterr()
    assert main(["collect", str(grid), "--root", str(root), "--out", str(rec)]) == 0
    assert "kept 1 done record(s)" in capsys.readouterr().out
    assert {k: v["status"] for k, v in read().items()} == {
        "a/seed0": "done",
        "b/seed0": "done",
        "c/seed0": "missing",
        "gone/seed0": "done",
    }  # the old code: a missing, gone lost
    # --only: only the matching runs are looked at; every other line stays as it was.
    finished(root / "m" / "c" / "seed0", run="c/seed0", metrics={"top1": 70.0})
    (root / "m" / "b" / "seed0" / "result.json").unlink()
    assert main(["collect", str(grid), "--root", str(root), "--out", str(rec), "--only", "c/*"]) == 0
    lines = read()
    assert lines["c/seed0"]["status"] == "done"
    assert lines["b/seed0"]["status"] == "done"
    assert list(lines) == ["a/seed0", "b/seed0", "c/seed0", "gone/seed0"]
    assert main(["collect", str(grid), "--root", str(root), "--out", str(rec), "--prune"]) == 0
    assert {k: v["status"] for k, v in read().items()} == {
        "a/seed0": "missing",
        "b/seed0": "missing",
        "c/seed0": "done",
    }


def test_collect_refuses_a_root_without_the_grid_and_a_bad_only(tmp_path, capsys):
    grid, root, rec = write_grid(tmp_path, "w", names=("a",)), tmp_path / "root", tmp_path / "rec"
    finished(root / "w" / "a" / "seed0", run="a/seed0")
    assert main(["collect", str(grid), "--root", str(root), "--out", str(rec)]) == 0
    before = (rec / "w.jsonl").read_bytes()
    for wrong in (tmp_path / "elsewhere", tmp_path / "unmounted-empty"):
        wrong.mkdir()
        err = one_error_line(capsys, ["collect", str(grid), "--root", str(wrong), "--out", str(rec)])
        assert f"results root {wrong} holds none of the 1 run directories of grid w" in err
        assert "--root" in err
    err = one_error_line(capsys, ["collect", str(grid), "--root", str(root), "--out", str(rec), "--only", "zzz*"])
    assert "--only 'zzz*' matches no run of grid w" in err  # the old code ignored --only
    assert (rec / "w.jsonl").read_bytes() == before


@pytest.mark.slow
def test_collect_killed_at_random_points_leaves_the_old_file_or_the_new(tmp_path):
    """kill -9 of a process collecting in a loop, 30 times at random delays: the file is always whole."""
    names = [f"r{i}" for i in range(120)]
    grid, root, rec = write_grid(tmp_path, "k", names=names), tmp_path / "root", tmp_path / "rec"
    pad = "x" * 2000  # ~250 kB of records: a write (and its fsync) is a measurable part of a collect
    for name in names:
        finished(root / "k" / name / "seed0", run=f"{name}/seed0", extra={"n": 0, "pad": pad})
    path = collect(grid, root=root, out_dir=rec, echo=None)
    rng = random.Random(0)
    newest = {f"{n}/seed0": 0 for n in names}
    for kill in range(30):
        pid = os.fork()
        if pid == 0:  # the child: one import already done (the fork), collect as fast as it can, forever
            try:
                for i in range(1, 10**9):
                    name = names[i % len(names)]
                    atomic_write_text(
                        root / "k" / name / "seed0" / "result.json",
                        json.dumps(grids.done_record(f"{name}/seed0", extra={"n": kill * 10**6 + i, "pad": pad})),
                    )
                    collect(grid, root=root, out_dir=rec, echo=None)
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0.01, 0.3))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        data = path.read_text()
        assert data.endswith("\n")
        lines = [json.loads(x) for x in data.splitlines()]  # strict: no torn line either
        assert sorted(x["run"] for x in lines) == sorted(f"{n}/seed0" for n in names)
        assert all(x["status"] == "done" and x["extra"]["pad"] == pad for x in lines)
        for x in lines:  # the file a whole collect wrote, never an older one coming back
            assert x["extra"]["n"] >= newest[x["run"]]
            newest[x["run"]] = x["extra"]["n"]
    collect(grid, root=root, out_dir=rec, echo=None)
    assert not [p.name for p in rec.iterdir() if p.name.endswith(".tmp")]  # a killed write's leftovers are cleaned
