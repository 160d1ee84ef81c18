"""TensorBoard events beside `metrics.jsonl`: `<phase dir>/tb/`, so `tensorboard --logdir <runs root>` shows a grid.

`metrics.jsonl` stays the source of truth; `tb/` mirrors it (one scalar per numeric field of each line but `step`
and `epoch`, at the line's `step`: `train/loss`, `train/lr`, `eval/top1`, `eval/top5`, `eval/eval_loss`). It is
written by the main rank only, flushed before every checkpoint and closed when the phase ends or fails.

Resume: a restart drops the metric lines logged after the last checkpoint and recomputes them; event files are
append-only, so the new writer is opened with `purge_step` = the resumed step + 1. It starts its file with a
`SessionLog.START` event at that step, and TensorBoard's loader (`EventAccumulator`, which `tensorboard --logdir`
uses) then discards every earlier event at a step >= it: the stale points stay in the older file but are never shown,
and each tag shows exactly the steps of `metrics.jsonl`. A fresh run writes the same marker at step 1 (nothing
before it to discard).
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

from hiera.train.phase_dir import check_dir

# Positions, not measurements: plotting them against the step says nothing.
SKIPPED = ("step", "epoch")


def wait_to_sort_last(path: Path, limit_s: float = 5.0) -> None:
    """Wait until an event file created now sorts after those in `path`.

    TensorBoard reads a directory's event files in name order, and a name starts with the second it was created
    in (then host, pid, a per-process counter): a restart within the same second, or on a node whose clock is a
    little behind, could sort the new file, and so its purge marker, before the events it must purge. Waiting at
    most `limit_s` (a larger clock skew only warns) costs nothing on an ordinary restart."""
    stamps = [
        int(part) for part in (p.name.split(".")[3] for p in path.glob("events.out.tfevents.*")) if part.isdigit()
    ]
    if not stamps:
        return
    deadline = time.time() + limit_s
    while int(time.time()) <= max(stamps):
        if time.time() > deadline:
            warnings.warn(
                f"{path} holds an event file from the future (clock skew?): TensorBoard may show "
                "points of this run's previous start past the resumed step",
                stacklevel=2,
            )
            return
        time.sleep(0.05)


class Board:
    """A SummaryWriter in `path` (None: a no-op, for other ranks and `tensorboard=False`), as a context manager.

    Opening it creates the directory and the event file at once, so a bad or unwritable `tb/` stops the phase
    before its first step; a write that fails later (full disk) raises on the next `log` or `flush`."""

    def __init__(self, path: Path | None, resumed_step: int):
        self.writer = None
        if path is None:
            return
        check_dir(path, "TensorBoard directory")  # a file named tb: one line, not a bare FileExistsError
        # Imported here: `tensorboard=False` and the other ranks never load it. It draws no random numbers (the
        # event file is named from time, host, pid and a counter), so the training RNG streams stay untouched.
        from torch.utils.tensorboard import SummaryWriter

        wait_to_sort_last(path)
        try:
            # flush_secs is a background timer; the explicit flushes at checkpoints are the ones that matter.
            self.writer = SummaryWriter(str(path), purge_step=resumed_step + 1)
        except OSError as e:
            # Same class, own message (no filename: the CLI prints it as is), naming the switch that avoids it.
            raise type(e)(
                f"cannot write TensorBoard events to {path} ({e.strerror or e}); fix the directory or "
                "pass tensorboard=false (metrics.jsonl is written either way)"
            ) from e

    def log(self, group: str, metrics: dict[str, Any]) -> None:
        """One scalar `group/key` per numeric field of a metrics line, at its `step`."""
        if self.writer is None:
            return
        for key, value in metrics.items():
            if key in SKIPPED or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            self.writer.add_scalar(f"{group}/{key}", value, metrics["step"])

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        """Flush and stop the writer's thread (idempotent)."""
        if self.writer is not None:
            writer, self.writer = self.writer, None
            writer.close()

    def __enter__(self) -> Board:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
