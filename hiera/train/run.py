"""One directory per run, written so that nothing is ever half-written and a run can always be resumed.

    <run_dir>/config.json          the resolved configuration (a restart must match it)
    <run_dir>/env.json             one entry per (re)start: versions, device, git SHA (`hiera.env.collect_env`)
    <run_dir>/metrics.jsonl        one JSON object per logged step/epoch, each with its `step`
    <run_dir>/checkpoints/last.pth the latest state (model, optimizer, scaler, scheduler, RNG, data position)
    <run_dir>/checkpoints/best.pth the state with the best monitored metric
    <run_dir>/result.json          final metrics, written last: its presence means the run is finished

Every file is replaced atomically (temporary file + rename); metrics lines are appended whole and flushed.
On resume, metric lines logged after the last checkpoint are dropped, so the resumed run's record is the
uninterrupted one (DEVELOPERS: loses nothing, can always be resumed; the lost steps are recomputed).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from hiera.env import collect_env
from hiera.files import atomic_write_text


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.checkpoints = self.path / "checkpoints"

    @property
    def done(self) -> bool:
        return (self.path / "result.json").is_file()

    def start(self, config: dict[str, Any]) -> None:
        """Create or reopen the run: a restart with another configuration is refused."""
        self.path.mkdir(parents=True, exist_ok=True)
        text = json.dumps(config, indent=1, sort_keys=True, default=list) + "\n"
        cfg_path = self.path / "config.json"
        if cfg_path.is_file() and cfg_path.read_text() != text:
            raise ValueError(f"{self.path} holds a run with another configuration (config.json); resume it with "
                             "the same settings or choose a new run directory")
        atomic_write_text(cfg_path, text)
        env_path = self.path / "env.json"
        starts = json.loads(env_path.read_text()) if env_path.is_file() else []
        atomic_write_text(env_path, json.dumps(starts + [collect_env()], indent=1) + "\n")

    def log(self, metrics: dict[str, Any]) -> None:
        """Append one metrics line (must carry `step`), flushed to disk."""
        if "step" not in metrics:
            raise ValueError("every metrics line needs a 'step'")
        with (self.path / "metrics.jsonl").open("a") as f:
            f.write(json.dumps(metrics, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def metrics(self) -> list[dict[str, Any]]:
        path = self.path / "metrics.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []

    def save(self, state: dict[str, Any], best: bool = False) -> None:
        """Write `last.pth` (and `best.pth`) atomically: a crash mid-write leaves the previous file intact."""
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        for name in ("last.pth", "best.pth") if best else ("last.pth",):
            fd, tmp = tempfile.mkstemp(dir=self.checkpoints, prefix=f".{name}.", suffix=".tmp")
            os.close(fd)
            try:
                torch.save(state, tmp)
                os.replace(tmp, self.checkpoints / name)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise

    def resume(self) -> dict[str, Any] | None:
        """The last checkpoint's state (None for a fresh run); drops metric lines newer than it."""
        path = self.checkpoints / "last.pth"
        if not path.is_file():
            return None
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as e:  # noqa: BLE001 - any unpickling failure means the file is unusable
            raise ValueError(f"checkpoint {path} is corrupted ({type(e).__name__}); restore best.pth or delete "
                             "the checkpoint to restart the run") from None
        if not isinstance(state, dict) or "step" not in state:
            raise ValueError(f"checkpoint {path} has no 'step'; it was not written by this project")
        kept = [m for m in self.metrics() if m["step"] <= state["step"]]
        atomic_write_text(self.path / "metrics.jsonl", "".join(json.dumps(m, sort_keys=True) + "\n" for m in kept))
        return state

    def result(self) -> dict[str, Any]:
        """The finished run's `result.json`."""
        return json.loads((self.path / "result.json").read_text())

    def finish(self, result: dict[str, Any]) -> None:
        atomic_write_text(self.path / "result.json", json.dumps(result, indent=1, sort_keys=True) + "\n")
