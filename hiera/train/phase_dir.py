"""One directory per training phase (a run's `mae/`, `finetune/` or `supervised/`), written so that nothing is ever
half-written and a phase can always be resumed.

    <phase>/config.json            the resolved configuration (a restart must match it)
    <phase>/env.json               one entry per (re)start: versions, device, git SHA (`hiera.env.collect_env`),
                                   under SLURM the job, array task and restart count (`hiera.env.slurm_env`)
    <phase>/metrics.jsonl          one JSON object per logged step/epoch, each with its `step`
    <phase>/tb/                    the same metrics as TensorBoard events (`hiera.train.board`; main rank only)
    <phase>/checkpoints/last.pth   the latest state (model, optimizer, scaler, scheduler, RNG, data position)
    <phase>/checkpoints/best.pth   the state with the best monitored metric
    <phase>/predictions.npy        finetune/supervised: the final evaluation's predicted class per test example,
                                   int16, in dataset order (`labels.npy`: the labels), for paired statistics
    <phase>/result.json            the `PhaseResult` (`hiera.records`), written last: its presence means the phase
                                   is finished
    <phase>/.lock                  held by the one live writer (`lock()`, a `hiera.files.Lock`)

Every file is replaced atomically and durably (`hiera.files.atomic_write`: temporary file, fsync, rename,
directory fsync) and follows the umask; metrics lines are appended whole and fsynced (`append_jsonl`), and a
line torn by a crash is cut off on the next append (a reader skips it). On resume, metric lines logged after
the last checkpoint are dropped, so the resumed run's record is the uninterrupted one (nothing is lost and
a run can always resume; the lost steps are recomputed). Checkpoints are read with `weights_only=True`:
a file planted in a shared results folder cannot run code as the user who resumes from it.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from hiera.env import collect_env, slurm_env
from hiera.files import Lock, append_jsonl, atomic_write, atomic_write_text, clean_temps, read_jsonl
from hiera.records.run import PHASE_RESULT, PhaseResult, read_phase_result, write_phase_result

# Temporary names of the code before `hiera.files` (a kill left them behind; no writer uses them any more).
LEGACY_TEMPS = ("checkpoints/model.tmp", ".reconstruction.tmp.npz")
_MISSING = object()


def check_dir(path: str | Path, what: str = "run directory") -> Path:
    """`path` as a Path, or a one-line ValueError if it, or one of its parents, exists but is not a directory."""
    path = Path(path)
    for p in (path, *path.parents):
        if p.is_dir():
            break
        if p.exists() or p.is_symlink():
            where = "is" if p == path else f"is inside {p}, which is"
            raise ValueError(f"{what} {path} {where} a file, not a directory; pass another path or move the file away")
    return path


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as `{"a.b": value}`; lists and other values are leaves."""
    if isinstance(data, dict) and data:
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: data}


def as_json(data: Any) -> Any:
    """`data` as it reads back from a JSON file (tuples become lists), so live and stored values compare."""
    return json.loads(json.dumps(data, sort_keys=True, default=list))


def dict_diff(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The sorted dotted keys whose values differ between two (JSON-like) nested dicts."""
    fa, fb = _flat(as_json(a)), _flat(as_json(b))
    return sorted(k for k in fa.keys() | fb.keys() if fa.get(k, _MISSING) != fb.get(k, _MISSING))


def name_keys(keys: list[str], limit: int = 8) -> str:
    """`a, b, c` with at most `limit` names and a count of the rest (error messages stay one readable line)."""
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


class PhaseDir:
    """The files of one phase (above); `path` is the phase's directory."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.checkpoints = self.path / "checkpoints"

    @property
    def done(self) -> bool:
        return (self.path / PHASE_RESULT).is_file()

    def lock(self, wait_s: float = 0.0) -> Lock:
        """The run directory's writer lock (`with run.lock(): ...`); `wait_s` > 0 waits for a live holder."""
        check_dir(self.path)
        return Lock(self.path / ".lock", f"run directory {self.path}", wait_s)

    def config_diff(
        self, config: dict[str, Any], key: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    ) -> list[str]:
        """Dotted keys where `config.json` differs from `config` (empty without one). `key` maps a config dict,
        stored or given, to what it computes (fields added since it was written take their defaults, names resolve
        to what they name); if it fails on the stored one, the raw one counts. An unreadable config.json is
        `["config.json unreadable"]`."""
        path = self.path / "config.json"
        if not path.is_file():
            return []
        try:
            stored = json.loads(path.read_text())
        except (OSError, ValueError):
            return ["config.json unreadable"]
        if key is not None:
            config = key(config)
            try:
                stored = key(stored)
            except (ValueError, TypeError, KeyError):
                pass
        return dict_diff(stored, config) if isinstance(stored, dict) else ["config.json unreadable"]

    def start(self, config: dict[str, Any], key: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> None:
        """Create or reopen the run (call it holding `lock()`): a restart with another configuration (compared
        through `key`, see `config_diff`) is refused; temporary files of writes killed in an earlier start are
        removed. `config.json` is (re)written with `config` as given."""
        check_dir(self.path)
        diff = self.config_diff(config, key)
        if diff:
            raise ValueError(
                f"{self.path} holds a run with another configuration (config.json differs in "
                f"{name_keys(diff)}); resume it with the same settings, or use another run directory "
                "(or move this one away)"
            )
        self.path.mkdir(parents=True, exist_ok=True)
        # Only our own temporary names; the lock guarantees that no live writer owns them.
        for directory in (self.path, self.checkpoints):
            clean_temps(directory)
        for name in LEGACY_TEMPS:
            (self.path / name).unlink(missing_ok=True)
        atomic_write_text(self.path / "config.json", json.dumps(config, indent=1, sort_keys=True, default=list) + "\n")
        env_path = self.path / "env.json"
        starts = json.loads(env_path.read_text()) if env_path.is_file() else []
        start = collect_env()
        if slurm_env():  # which SLURM job and attempt: a requeue shows as a new entry with a higher restart_count
            start["slurm"] = slurm_env()
        atomic_write_text(env_path, json.dumps(starts + [start], indent=1) + "\n")

    def log(self, metrics: dict[str, Any]) -> None:
        """Append one metrics line (must carry `step`), fsynced; a torn last line is cut off first."""
        if "step" not in metrics:
            raise ValueError("every metrics line needs a 'step'")
        append_jsonl(self.path / "metrics.jsonl", [metrics])

    def metrics(self) -> list[dict[str, Any]]:
        """Every metrics line; a torn last line is skipped (with a warning)."""
        path = self.path / "metrics.jsonl"
        return read_jsonl(path) if path.is_file() else []

    def save(self, state: dict[str, Any], best: bool = False) -> None:
        """Write `last.pth` (and `best.pth`) atomically and durably: a crash mid-write leaves the previous file.

        `state` must hold only what `torch.load(weights_only=True)` reads back (tensors, numbers, strings, lists,
        tuples, dicts, None): `resume()` refuses anything else."""
        for name in ("last.pth", "best.pth") if best else ("last.pth",):
            atomic_write(self.checkpoints / name, lambda f: torch.save(state, f))

    def resume(self) -> dict[str, Any] | None:
        """The last checkpoint's state (None for a fresh run); drops metric lines newer than it."""
        path = self.checkpoints / "last.pth"
        state = load_checkpoint(path) if path.is_file() else None
        if state is not None and (not isinstance(state, dict) or "step" not in state):
            raise ValueError(
                f"checkpoint {path} has no 'step'; it was not written by this project; delete it to restart this phase"
            )
        step = state["step"] if state is not None else 0  # no checkpoint: the run restarts at step 0
        metrics_path = self.path / "metrics.jsonl"
        if metrics_path.is_file():
            kept = [m for m in self.metrics() if m["step"] <= step]
            atomic_write_text(metrics_path, "".join(json.dumps(m, sort_keys=True) + "\n" for m in kept))
        return state

    def result(self) -> PhaseResult:
        """The finished phase's result."""
        return read_phase_result(self.path)

    def finish(self, result: PhaseResult) -> None:
        """Write the result, last: from now on the phase is finished."""
        write_phase_result(self.path, result)


def load_checkpoint(path: Path) -> Any:
    """`torch.load(path, weights_only=True)`, with one-line errors for a corrupt file and for one that holds
    arbitrary Python objects (the old format of this project, or a file planted by someone else)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure to read means the file is unusable
        # A safe load refuses whole, well-formed archives that hold objects beyond tensors and containers; a
        # torn or garbage file is not a zip archive at all (or not a complete one).
        if isinstance(e, pickle.UnpicklingError) and zipfile.is_zipfile(path):
            raise ValueError(
                f"checkpoint {path} holds Python objects that a safe load (weights_only) refuses: it "
                "was written by an older version of hiera-study or by someone else, so it is not "
                f"trusted; delete it (rm {path}) to restart this phase from its beginning"
            ) from None
        raise ValueError(
            f"checkpoint {path} is corrupted ({type(e).__name__}); restore best.pth or delete "
            "the checkpoint to restart the run"
        ) from None
