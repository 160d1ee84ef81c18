"""TensorBoard events in `<phase dir>/tb/` (issue 13, item 5): they mirror `metrics.jsonl` exactly, a resumed phase
shows no duplicated or stale points, a bad `tb/` stops the phase, and the writer neither leaks nor touches the RNGs.

Events are read back the way `tensorboard --logdir` reads them (`EventAccumulator`, which applies the purge of a
resumed writer); `raw_steps` reads the files as written, to show that the stale points are really there to purge.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from test_train import TINY_ARGS, cli_args, kill_after, run_cli

from hiera.cli import main
from hiera.train import loop
from hiera.train.board import Board, wait_to_sort_last
from hiera.train.config import TrainConfig
from hiera.train.loop import train

TRAIN_TAGS = {"train/loss", "train/lr"}
EVAL_TAGS = {"eval/top1", "eval/top5", "eval/eval_loss"}


def tiny(phase: str = "supervised", **changes) -> TrainConfig:
    base = dict(
        model="hiera_tiny_224",
        train_samples=64,
        eval_samples=32,
        batch_size=32,
        log_every=1,
        model_args=TINY_ARGS,
        recipe_args={"epochs": 2},
    )
    if phase == "mae":
        base.update(recipe="proxy_mae", decoder_dim=16, recipe_args={"epochs": 2, "decoder_depth": 1})
    else:
        base.update(recipe="proxy_supervised")
    return TrainConfig(phase=phase, **{**base, **changes})


def shown(tb: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag as TensorBoard shows it: (step, value) in order, after purges; nothing sampled away."""
    acc = EventAccumulator(str(tb), size_guidance={SCALARS: 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def expected(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """What `metrics.jsonl` says TensorBoard must show: scalars are stored as float32."""
    out: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        m = json.loads(line)
        group = "eval" if "top1" in m else "train"
        for key, value in m.items():
            if key not in ("step", "epoch"):
                out[f"{group}/{key}"].append((m["step"], float(np.float32(value))))
    return dict(out)


def raw_steps(tb: Path, tag: str) -> list[int]:
    """The steps of `tag` in the event files as written (stale events included), files in TensorBoard's order."""
    return [
        event.step
        for path in sorted(tb.glob("events.out.tfevents.*"))
        for event in EventFileLoader(str(path)).Load()
        for v in event.summary.value
        if v.tag == tag
    ]


def writer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if type(t).__name__ == "_AsyncWriterThread"]


@pytest.mark.parametrize("phase", ["supervised", "mae"])
def test_events_mirror_metrics_exactly(tmp_path, phase):
    run = tmp_path / "run"
    train(tiny(phase), run, progress=False)
    events = shown(run / "tb")
    assert set(events) == (TRAIN_TAGS | EVAL_TAGS if phase == "supervised" else TRAIN_TAGS)
    assert events == expected(run)  # same steps, same values (as float32), same order
    assert [s for s, _ in events["train/loss"]] == [1, 2, 3, 4]  # 2 epochs of 2 steps, one line per step
    assert json.loads((run / "config.json").read_text())["tensorboard"] is True
    assert not writer_threads()
    # A finished phase returns its result without opening a writer: no new event file.
    files = sorted(p.name for p in (run / "tb").iterdir())
    train(tiny(phase), run, progress=False)
    assert sorted(p.name for p in (run / "tb").iterdir()) == files


def test_switched_off_and_numerics_unchanged(tmp_path):
    """`tensorboard=False` writes no tb/ and records the switch; the metrics are the same with or without it."""
    on, off = tmp_path / "on", tmp_path / "off"
    train(tiny(), on, progress=False)
    train(tiny(tensorboard=False), off, progress=False)
    assert not (off / "tb").exists()
    assert json.loads((off / "config.json").read_text())["tensorboard"] is False
    assert (on / "metrics.jsonl").read_text() == (off / "metrics.jsonl").read_text()
    a, b = (torch.load(d / "checkpoints" / "model.pth", weights_only=True)["model_state"] for d in (on, off))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_after_a_crash_shows_no_stale_or_duplicate_points(tmp_path, monkeypatch):
    """A phase that fails after a checkpoint (step 2) and a logged step 3 closes its writer (step 3 flushed to
    the file), and the resumed phase re-logs step 3: TensorBoard shows each step once, as metrics.jsonl does."""
    run = tmp_path / "run"
    cfg = tiny(train_samples=192, ckpt_every=2, recipe_args={"epochs": 1})  # 6 steps, checkpoints at 2 and 4
    update = loop.Progress.update

    def crash_at_4(self, step, **shown_values):
        if step == 4:  # before step 4 is logged or checkpointed
            raise RuntimeError("simulated crash")
        update(self, step, **shown_values)

    monkeypatch.setattr(loop.Progress, "update", crash_at_4)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(cfg, run, progress=False)
    assert not writer_threads()  # closed on the exception, not left running
    assert [s for s, _ in shown(run / "tb")["train/loss"]] == [1, 2, 3]
    monkeypatch.setattr(loop.Progress, "update", update)

    train(cfg, run, progress=False)
    assert raw_steps(run / "tb", "train/loss") == [1, 2, 3, 3, 4, 5, 6]  # step 3 is in the files twice ...
    events = shown(run / "tb")
    assert [s for s, _ in events["train/loss"]] == [1, 2, 3, 4, 5, 6]  # ... but shown once
    assert events == expected(run)
    assert len(list((run / "tb").glob("events.out.tfevents.*"))) == 2  # one file per start


@pytest.mark.slow
def test_killed_and_resumed_phase_matches_metrics(tmp_path):
    """SIGKILL after a checkpoint (unflushed events are lost, flushed ones past it go stale), then a resume."""
    run = tmp_path / "run"
    args = cli_args(
        "supervised",
        "hiera_tiny_224",
        "proxy_supervised",
        run,
        train_samples=192,
        eval_samples=32,
        batch_size=32,
        ckpt_every=1,
        log_every=1,
        **{"recipe.epochs": 1},
    )
    kill_after(args, run, step=3)
    assert not (run / "result.json").exists()
    resumed = run_cli(args)
    assert resumed.returncode == 0, resumed.stderr
    events = shown(run / "tb")
    assert set(events) == TRAIN_TAGS | EVAL_TAGS
    assert events == expected(run)
    for tag, points in events.items():
        steps = [s for s, _ in points]
        assert steps == sorted(set(steps)), tag  # no duplicates


def test_a_file_named_tb_stops_the_phase(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "tb").write_text("not a directory")
    assert (
        main(
            cli_args(
                "supervised",
                "hiera_tiny_224",
                "proxy_supervised",
                run,
                train_samples=64,
                eval_samples=32,
                batch_size=32,
                **{"recipe.epochs": 1},
            )
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, err
    assert "TensorBoard directory" in err, err
    assert "is a file" in err, err
    assert not (run / "result.json").exists()
    assert not (run / "metrics.jsonl").exists()  # stopped before step 1


def test_an_unwritable_tb_dir_names_the_switch(tmp_path, monkeypatch):
    """Permissions cannot be tested as root: the writer's own OSError is simulated."""
    import torch.utils.tensorboard

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "tb"))

    monkeypatch.setattr(torch.utils.tensorboard, "SummaryWriter", refuse)
    with pytest.raises(PermissionError, match="cannot write TensorBoard events.*tensorboard=false"):
        Board(tmp_path / "tb", 0)


def test_writer_draws_no_random_numbers(tmp_path):
    before = torch.get_rng_state(), np.random.get_state(), random.getstate()
    with Board(tmp_path / "tb", 5) as board:
        board.log("train", {"step": 6, "epoch": 0, "loss": 1.5, "lr": 1e-3, "note": "skipped"})
        board.flush()
    after = torch.get_rng_state(), np.random.get_state(), random.getstate()
    assert torch.equal(before[0], after[0])
    assert before[2] == after[2]
    assert all(np.array_equal(x, y) for x, y in zip(before[1], after[1]))
    assert shown(tmp_path / "tb") == {"train/loss": [(6, 1.5)], "train/lr": [(6, float(np.float32(1e-3)))]}
    with Board(None, 0) as off:  # other ranks and tensorboard=False: nothing at all
        off.log("train", {"step": 1, "loss": 1.0})
        off.flush()
    assert not writer_threads()


def test_a_restart_in_the_same_second_still_sorts_last(tmp_path):
    """TensorBoard reads event files in name order (creation second first): the new file must come after the old
    one, or its purge marker would be read before the stale events it discards."""
    tb = tmp_path / "tb"
    tb.mkdir()
    old = tb / f"events.out.tfevents.{int(time.time()) + 1:010d}.zz.1.99"  # same second or a clock a bit ahead
    old.write_bytes(b"")
    with Board(tb, 0):
        pass
    assert sorted(tb.iterdir())[-1] != old
    far = tb / f"events.out.tfevents.{int(time.time()) + 3600:010d}.zz.1.99"  # a badly skewed clock: warn, go on
    far.write_bytes(b"")
    with pytest.warns(UserWarning, match="clock skew"):
        wait_to_sort_last(tb, limit_s=0.1)
