"""Run directories under crashes and concurrency (issue 12): one live writer, run identity, crash-consistent files,
safe loading, and a kill -9 loop over checkpoint saves.

Each test would fail on the code before: a second writer was not refused, a finished run with other settings
returned its old result, a torn metrics line broke every resume, temp files of killed saves piled up, checkpoints
were 0600, and `last.pth` was unpickled with `weights_only=False` (a planted file ran code).
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import signal
import stat
import threading
import time
from pathlib import Path

import pytest
import torch
from grids import TINY_ARGS

from hiera.cli import main
from hiera.files import LockHeld
from hiera.train.config import TrainConfig
from hiera.train.loop import train
from hiera.train.phase_dir import PhaseDir
from hiera.train.pipeline import RunSpec, run_pipeline, spec_diff


def tiny_cfg(**changes) -> TrainConfig:
    base = dict(
        phase="supervised",
        model="hiera_tiny_224",
        recipe="proxy_supervised",
        train_samples=64,
        eval_samples=32,
        batch_size=32,
        model_args=TINY_ARGS,
        recipe_args={"epochs": 1},
    )
    return TrainConfig(**{**base, **changes})


def tiny_spec(**changes) -> RunSpec:
    cfg = tiny_cfg(**changes.pop("train", {}))
    return RunSpec(
        **{
            **dict(
                grid="adhoc", run="r", variant="hiera_tiny_224", step=None, size_key="proxy", table="adhoc", train=cfg
            ),
            **changes,
        }
    )


def cli_train(run_dir: Path, *extra: str) -> list[str]:
    model = [f"model.{k}={v!r}".replace(" ", "") for k, v in TINY_ARGS.items()]
    return [
        "train",
        "--phase",
        "supervised",
        "--model",
        "hiera_tiny_224",
        "--recipe",
        "proxy_supervised",
        "--run-dir",
        str(run_dir),
        "train_samples=64",
        "eval_samples=32",
        "batch_size=32",
        "recipe.epochs=1",
        *model,
        *extra,
    ]


def error_line(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, err
    assert err.startswith("hiera-study: error:"), err
    return err


def hold_lock(path: Path) -> int:
    """Fork a child that takes the POSIX lock on `path` (as `hiera.files.Lock` does) and sleeps; returns its pid
    once it holds the lock. The caller kills it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: no Python-level clean-up, no pytest machinery
        try:
            f = path.open("a+")
            fcntl.lockf(f, fcntl.LOCK_EX)
            f.seek(0)
            f.truncate()
            f.write(json.dumps({"pid": os.getpid(), "host": "test", "since": "now"}))
            f.flush()
            os.write(w, b"x")
            time.sleep(600)
        finally:
            os._exit(0)
    os.close(w)
    assert os.read(r, 1) == b"x"
    os.close(r)
    return pid


def kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def lock_is_free(path: Path) -> bool:
    """Whether another process could take the lock on `path` now (checked from a forked child, because POSIX
    locks never conflict within one process)."""
    pid = os.fork()
    if pid == 0:
        try:
            with path.open("a+") as f:
                fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os._exit(0)
        except OSError:
            os._exit(1)
        finally:
            os._exit(2)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0


# ---- one live writer --------------------------------------------------------------------------------------------


def test_train_refuses_a_live_writer_then_takes_over_its_stale_lock(tmp_path, capsys):
    run_dir = tmp_path / "run"
    pid = hold_lock(run_dir / ".lock")
    try:
        err = error_line(capsys, cli_train(run_dir))
        assert f"pid {pid}" in err
        assert "in use" in err
        assert not (run_dir / "config.json").exists()  # refused before writing anything
    finally:
        kill(pid)  # kill -9: the kernel drops its lock, the file (with its pid) stays
    assert (run_dir / ".lock").is_file()
    result = train(tiny_cfg(), run_dir, progress=False)
    assert 0 <= result.top1 <= 100
    assert (run_dir / "result.json").is_file()


def test_train_holds_the_lock_for_the_whole_phase(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    seen = []
    log, save = PhaseDir.log, PhaseDir.save

    def checking_log(self, metrics):
        seen.append(("log", lock_is_free(run_dir / ".lock")))
        log(self, metrics)

    def checking_save(self, state, best=False):
        seen.append(("save", lock_is_free(run_dir / ".lock")))
        save(self, state, best)

    monkeypatch.setattr(PhaseDir, "log", checking_log)
    monkeypatch.setattr(PhaseDir, "save", checking_save)
    train(tiny_cfg(ckpt_every=1, log_every=1), run_dir, progress=False)
    assert {kind for kind, _ in seen} == {"log", "save"}, seen
    assert not any(free for _, free in seen), seen
    assert lock_is_free(run_dir / ".lock")  # released at the end


def test_run_pipeline_lock_refuses_or_waits(tmp_path, monkeypatch):
    import hiera.train.pipeline as pipeline

    monkeypatch.setattr(pipeline, "_run_phases", lambda *a: {"ran": True})  # the lock is the point here
    run_dir = tmp_path / "run"
    pid = hold_lock(run_dir / ".lock")
    try:
        with pytest.raises(LockHeld, match=f"pid {pid}") as err:
            run_pipeline(tiny_spec(), run_dir)
        assert "\n" not in str(err.value)
        assert not (run_dir / "spec.json").exists()
        threading.Timer(1.0, kill, [pid]).start()  # the predecessor exits while we wait
        started = time.monotonic()
        assert run_pipeline(tiny_spec(), run_dir, lock_wait_s=30) == {"ran": True}
        assert 0.8 < time.monotonic() - started < 20
    finally:
        try:
            kill(pid)
        except (ProcessLookupError, ChildProcessError):
            pass


def test_submitit_task_waits_for_the_lock_and_records_a_refusal(tmp_path, monkeypatch):
    import hiera.train.pipeline as pipeline
    from hiera.launch.task import LOCK_WAIT_S, RunTask

    assert LOCK_WAIT_S >= 60  # a requeued job waits for its exiting predecessor
    monkeypatch.setattr(pipeline, "_run_phases", lambda *a: {"ran": True})
    run_dir = tmp_path / "run"
    pid = hold_lock(run_dir / ".lock")
    try:
        with pytest.raises(LockHeld):
            RunTask(tiny_spec().to_dict(), str(run_dir), lock_wait_s=0.2)()
        error = json.loads((run_dir / "error.json").read_text())
        assert error["type"] == "LockHeld"
        assert f"pid {pid}" in error["message"]
        threading.Timer(1.0, kill, [pid]).start()
        assert RunTask(tiny_spec().to_dict(), str(run_dir), lock_wait_s=30)() == {"ran": True}
        assert not (run_dir / "error.json").exists()
    finally:
        try:
            kill(pid)
        except (ProcessLookupError, ChildProcessError):
            pass


# ---- run identity -----------------------------------------------------------------------------------------------


def test_finished_phase_with_other_settings_is_refused(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(cli_train(run_dir)) == 0
    capsys.readouterr()
    before = (run_dir / "result.json").read_bytes()
    err = error_line(capsys, cli_train(run_dir, "seed=7"))
    assert "seed" in err
    assert "another configuration" in err
    assert "another run directory" in err
    err = error_line(capsys, cli_train(run_dir, "seed=7", "recipe.lr=0.5"))
    assert "recipe_args.lr, seed" in err
    assert (run_dir / "result.json").read_bytes() == before
    assert main(cli_train(run_dir)) == 0  # the same settings still return the finished result


def test_spec_diff(tmp_path):
    spec = tiny_spec()
    assert spec_diff(tmp_path, spec) == []  # no spec.json yet
    (tmp_path / "spec.json").write_text(json.dumps(spec.to_dict(), default=list))
    assert spec_diff(tmp_path, spec) == []
    other = tiny_spec(seed=3, train={"seed": 3, "batch_size": 16})
    assert spec_diff(tmp_path, other) == ["seed", "train.batch_size", "train.seed"]
    old = spec.to_dict()
    del old["train"]["ckpt_every"], old["extra"]  # written before these fields existed: their defaults count
    (tmp_path / "spec.json").write_text(json.dumps(old, default=list))
    assert spec_diff(tmp_path, spec) == []
    (tmp_path / "spec.json").write_text('{"grid": "adhoc", "ru')
    assert spec_diff(tmp_path, spec) == ["spec.json unreadable"]


def test_a_run_started_under_a_model_renamed_since_is_the_same_run(tmp_path):
    """Before proxies had names, a run named the full-size ladder plus the proxy's fields (and `size` for
    `size_key`): the same model under its registered name is the same run, a different model is not."""
    old = tiny_spec().to_dict()  # hiera_tiny_224 with the micro_32 fields as model_args
    old["size"] = old.pop("size_key")
    old["train"]["size"] = old["train"].pop("size_key")
    (tmp_path / "spec.json").write_text(json.dumps(old, default=list))
    named = {"model": "proxy_micro_32", "model_args": {}}
    assert spec_diff(tmp_path, tiny_spec(variant="proxy_micro_32", train=named)) == []
    wider = tiny_spec(variant="proxy_micro_32", train={**named, "model_args": {"embed_dim": 32}})
    assert spec_diff(tmp_path, wider) == ["train.model_config.embed_dim"]
    step = "proxy_micro_32.e_no_attn_residual"  # row e keeps the kv pooling that row f replaces
    assert spec_diff(tmp_path, tiny_spec(variant=step, train={"model": step, "model_args": {}})) == [
        "train.model_config.kv_mode"
    ]
    # a finished phase trained under the old name is returned, not retrained, under the new one
    first = train(tiny_cfg(), tmp_path / "phase", progress=False)
    again = train(tiny_cfg(**named), tmp_path / "phase", progress=False)
    assert again == first
    with pytest.raises(ValueError, match=r"another configuration \(config.json differs in model_config.embed_dim\)"):
        train(tiny_cfg(model="proxy_micro_32", model_args={"embed_dim": 32}), tmp_path / "phase", progress=False)


def test_run_pipeline_writes_the_spec_first_and_refuses_another(tmp_path, monkeypatch):
    import hiera.train.pipeline as pipeline

    run_dir = tmp_path / "run"

    def crash(spec, run_dir, *rest):
        assert json.loads((run_dir / "spec.json").read_text())["seed"] == 0  # already there when phases start
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "_run_phases", crash)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(tiny_spec(), run_dir)
    monkeypatch.undo()
    with pytest.raises(ValueError, match=r"spec.json differs in seed, train.seed\)") as err:
        run_pipeline(tiny_spec(seed=7, train={"seed": 7}), run_dir)  # an unfinished run ...
    assert "another run directory" in str(err.value)
    assert "\n" not in str(err.value)
    record = run_pipeline(tiny_spec(), run_dir, progress=False)
    assert record.status == "done"
    assert record.seed == 0
    with pytest.raises(ValueError, match="spec.json differs in train.recipe_args.epochs"):
        run_pipeline(tiny_spec(train={"recipe_args": {"epochs": 2}}), run_dir)  # ... and a finished one
    many = tiny_spec(
        grid="g", run="x", step="a", size_key="tiny", table="table1", seed=5, ablation="a", setting="s", extra={"k": 1}
    )
    with pytest.raises(ValueError, match=r"and \d+ more\)"):
        run_pipeline(many, run_dir)
    assert run_pipeline(tiny_spec(), run_dir) == record


# ---- crash-consistent files -------------------------------------------------------------------------------------


def test_run_dir_that_is_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    err = error_line(capsys, cli_train(tmp_path / "file"))
    assert "is a file" in err
    assert "another path" in err
    err = error_line(capsys, cli_train(tmp_path / "file" / "run"))
    assert f"inside {tmp_path / 'file'}" in err
    with pytest.raises(ValueError, match="is a file"):
        run_pipeline(tiny_spec(), tmp_path / "file")
    assert (tmp_path / "file").read_text() == "x"


def test_torn_metrics_line_is_cut_and_skipped(tmp_path, capsys):
    run = PhaseDir(tmp_path)
    run.log({"step": 1, "loss": 1.0})
    with (tmp_path / "metrics.jsonl").open("a") as f:
        f.write('{"step": 2, "lo')  # the crash
    assert run.metrics() == [{"step": 1, "loss": 1.0}]
    assert "torn last line" in capsys.readouterr().err
    run.log({"step": 2, "loss": 0.5})
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in lines] == [{"step": 1, "loss": 1.0}, {"step": 2, "loss": 0.5}]


def test_files_follow_the_umask_and_are_fsynced(tmp_path, monkeypatch):
    old = os.umask(0o022)
    try:
        synced = []
        fsync = os.fsync

        def recording_fsync(fd):
            synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
            fsync(fd)

        monkeypatch.setattr(os, "fsync", recording_fsync)
        PhaseDir(tmp_path / "probe").save({"step": 1}, best=True)
        assert synced.count(False) >= 2
        assert synced.count(True) >= 2  # each file, then its directory
        monkeypatch.undo()
        mae = tiny_cfg(phase="mae", recipe="proxy_mae", decoder_dim=16, recipe_args={"decoder_depth": 1})
        train(mae, tmp_path / "mae", progress=False)
        train(tiny_cfg(), tmp_path / "sup", progress=False)
    finally:
        os.umask(old)
    files = [tmp_path / "sup" / "checkpoints" / n for n in ("last.pth", "best.pth", "model.pth")]
    files += [tmp_path / "mae" / "reconstruction.npz", tmp_path / "sup" / "metrics.jsonl"]
    assert {f.name: oct(f.stat().st_mode & 0o777) for f in files} == {f.name: "0o644" for f in files}


def test_start_removes_temp_files_of_killed_writes(tmp_path):
    run = PhaseDir(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    leftovers = [
        tmp_path / "checkpoints" / ".last.pth.ab12cd_9.tmp",
        tmp_path / ".result.json.x0x0x0x0.tmp",
        tmp_path / "checkpoints" / "model.tmp",
        tmp_path / ".reconstruction.tmp.npz",
    ]
    keep = [tmp_path / "notes.tmp", tmp_path / "checkpoints" / "mine.pth"]
    for p in leftovers + keep:
        p.write_bytes(b"x" * 100)
    with run.lock():
        run.start({"a": 1})
    assert [p for p in leftovers if p.exists()] == []
    assert all(p.exists() for p in keep)


# ---- safe loading -----------------------------------------------------------------------------------------------


class Planted:
    """What a checkpoint planted in a shared folder can do when unpickled without weights_only."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "ran"))


def test_resume_never_unpickles_code(tmp_path):
    run = PhaseDir(tmp_path / "run")
    marker = tmp_path / "pwned"
    run.checkpoints.mkdir(parents=True)
    torch.save({"step": 1, "x": Planted(marker)}, run.checkpoints / "last.pth")
    with pytest.raises(ValueError, match="older version of hiera-study or by someone else") as err:
        run.resume()
    assert "rm " in str(err.value)
    assert "\n" not in str(err.value)
    assert not marker.exists()
    import numpy as np

    torch.save({"step": 1, "rng": np.random.get_state()}, run.checkpoints / "last.pth")  # the old RNG format
    with pytest.raises(ValueError, match="restart this phase"):
        run.resume()


def test_checkpoint_state_loads_weights_only():
    """Scheduler, GradScaler (enabled) and RNG states as saved by `train` read back under weights_only."""
    import io

    from timm.scheduler import CosineLRScheduler

    from hiera.train.loop import _rng_state, _set_rng_state

    opt = torch.optim.AdamW(torch.nn.Linear(2, 2).parameters())
    sched = CosineLRScheduler(opt, t_initial=10, warmup_t=2, warmup_prefix=True, t_in_epochs=False)
    scaler = torch.amp.GradScaler("cpu", enabled=True)
    buf = io.BytesIO()
    torch.save({"s": sched.state_dict(), "g": scaler.state_dict(), "rng": [_rng_state()]}, buf)
    buf.seek(0)
    back = torch.load(buf, weights_only=True)
    import numpy as np

    _set_rng_state(back["rng"][0])
    a = (torch.rand(3), np.random.rand(3), random.random())
    _set_rng_state(back["rng"][0])
    assert torch.equal(a[0], torch.rand(3))
    assert (a[1] == np.random.rand(3)).all()
    assert a[2] == random.random()


@pytest.mark.slow
def test_resume_after_a_torn_metrics_line_is_bit_identical(tmp_path, monkeypatch):
    cfg = tiny_cfg(
        train_samples=192,
        ckpt_every=1,
        log_every=1,
        recipe_args={"epochs": 2, "mixup": 0.8, "cutmix": 1.0, "drop_path": 0.1},
    )
    ref = train(cfg, tmp_path / "ref", progress=False)
    log = PhaseDir.log

    def dying_log(self, metrics):  # the process dies while appending step 5 (checkpoint: step 4)
        log(self, metrics)
        if metrics["step"] == 5 and "loss" in metrics:
            with (self.path / "metrics.jsonl").open("a") as f:
                f.write('{"epoch": 0, "loss": 2.3')
            raise KeyboardInterrupt

    monkeypatch.setattr(PhaseDir, "log", dying_log)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "cut", progress=False)
    monkeypatch.undo()
    assert torch.load(tmp_path / "cut" / "checkpoints" / "last.pth", weights_only=True)["step"] == 4
    out = train(cfg, tmp_path / "cut", progress=False)
    assert out.replace(wall_s_last_start=0.0) == ref.replace(wall_s_last_start=0.0)
    a, b = (
        torch.load(d / "checkpoints" / "model.pth", weights_only=True)["model_state"]
        for d in (tmp_path / "ref", tmp_path / "cut")
    )
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "ref" / "metrics.jsonl").read_text() == (tmp_path / "cut" / "metrics.jsonl").read_text()


# ---- kill -9 during checkpoint saves ----------------------------------------------------------------------------


@pytest.mark.slow
def test_kill_9_during_checkpoint_saves_never_leaves_an_unreadable_file(tmp_path):
    """≥ 20 kills at random delays of a process that saves checkpoints in a loop; forked, not spawned, so each
    round costs milliseconds instead of seconds of imports."""
    rng = random.Random(0)
    run = PhaseDir(tmp_path / "run")
    big = torch.randn(4 << 20)  # 16 MB: a save takes long enough for kills to land mid-write
    with run.lock():
        run.start({"test": "kill"})
        run.save({"step": 0, "w": torch.full((8,), 0.0), "big": big}, best=True)
    last_step, mid_write = 0, 0
    for _ in range(24):
        pid = os.fork()
        if pid == 0:
            try:
                with run.lock():
                    for step in range(last_step + 1, last_step + 10_000):
                        run.save({"step": step, "w": torch.full((8,), float(step)), "big": big}, best=step % 3 == 0)
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0.01, 0.3))
        os.kill(pid, signal.SIGKILL)
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == -signal.SIGKILL
        temps = [p for p in run.checkpoints.iterdir() if p.name.endswith(".tmp")]
        mid_write += bool(temps)
        with run.lock():  # the dead child's lock is free
            run.start({"test": "kill"})
            assert [p for p in run.checkpoints.iterdir() if p.name.endswith(".tmp")] == []
            state = run.resume()
        assert state["step"] >= last_step
        assert torch.equal(state["w"], torch.full((8,), float(state["step"])))
        assert torch.equal(state["big"], big)
        best = torch.load(run.checkpoints / "best.pth", weights_only=True)
        assert best["step"] % 3 == 0
        assert torch.equal(best["w"], torch.full((8,), float(best["step"])))
        last_step = state["step"]
    assert last_step > 0, (last_step, mid_write)
    assert mid_write >= 3, (last_step, mid_write)  # the kills did land during saves


def test_restart_without_a_checkpoint_drops_the_old_metrics(tmp_path):
    """Deleting last.pth (the fix for an untrusted one) restarts the phase at step 0: its old lines go too."""
    run = PhaseDir(tmp_path)
    for step in (1, 2, 3):
        run.log({"step": step, "loss": 1.0})
    assert run.resume() is None
    assert run.metrics() == []
