"""Run directories: atomic checkpoints, refused config changes, corrupted checkpoints, metrics on resume."""

import json
import os

import pytest
import torch

from hiera.records import PhaseResult
from hiera.train.phase_dir import PhaseDir


def test_lifecycle_and_resume_drops_metrics_past_the_checkpoint(tmp_path):
    run = PhaseDir(tmp_path / "r")
    run.start({"lr": 1e-3, "size": [64, 64]})
    for step in range(1, 4):
        run.log({"step": step, "loss": 1.0 / step})
        if step == 2:
            run.save({"step": 2, "w": torch.ones(3)})
    # The process dies after logging step 3; the restart resumes from step 2.
    again = PhaseDir(tmp_path / "r")
    again.start({"lr": 1e-3, "size": [64, 64]})
    state = again.resume()
    assert state["step"] == 2
    assert torch.equal(state["w"], torch.ones(3))
    assert [m["step"] for m in again.metrics()] == [1, 2]
    assert len(json.loads((tmp_path / "r" / "env.json").read_text())) == 2  # one entry per start
    assert not again.done
    result = PhaseResult("supervised", "m", "r", 3, 1, 8, 1e-3, "fp32", 1, 24, 1.5, top1=50.0, top5=90.0, eval_loss=1.0)
    again.finish(result.replace(best_top1=50.0, eval_samples=8))
    assert again.done
    assert again.result() == result.replace(best_top1=50.0, eval_samples=8)
    written = json.loads((tmp_path / "r" / "result.json").read_text())
    assert written["schema"] == "hiera-study/phase/1"
    assert written["top1"] == 50.0
    assert "final_loss" not in written


def test_env_json_tells_slurm_attempts_apart(tmp_path, monkeypatch):
    """Under SLURM each start records its job, array task and restart count: a requeued attempt is a new entry with
    the same array task and a higher count (what the proxy grids' requeue shows); outside SLURM, no such field."""
    for var in [v for v in os.environ if v.startswith("SLURM")]:
        monkeypatch.delenv(var)
    PhaseDir(tmp_path).start({"lr": 1e-3})
    monkeypatch.setenv("SLURM_JOB_ID", "172")
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "171")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    PhaseDir(tmp_path).start({"lr": 1e-3})  # a first attempt: SLURM sets no SLURM_RESTART_COUNT
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    PhaseDir(tmp_path).start({"lr": 1e-3})
    starts = json.loads((tmp_path / "env.json").read_text())
    assert "slurm" not in starts[0]
    assert starts[1]["slurm"] == {"job_id": "172", "array_job_id": "171", "array_task_id": "1", "restart_count": "0"}
    assert starts[2]["slurm"]["restart_count"] == "1"
    assert starts[2]["slurm"]["array_task_id"] == "1"


def test_another_config_is_refused(tmp_path):
    PhaseDir(tmp_path).start({"lr": 1e-3})
    with pytest.raises(ValueError, match="another configuration"):
        PhaseDir(tmp_path).start({"lr": 2e-3})


def test_crash_during_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    run = PhaseDir(tmp_path)
    run.save({"step": 1}, best=True)

    def dying_save(obj, f):  # PhaseDir.save hands torch.save the open temporary file
        f.write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        run.save({"step": 2})
    monkeypatch.undo()
    assert run.resume()["step"] == 1
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["best.pth", "last.pth"]


def test_corrupted_checkpoint_is_a_one_line_error(tmp_path):
    run = PhaseDir(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.pth").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="is corrupted") as err:
        run.resume()
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="needs a 'step'"):
        run.log({"loss": 1.0})
