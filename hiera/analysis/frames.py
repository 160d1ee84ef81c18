"""The data frames that tables and figures are made from (paper Tables 1-3, 16, 17; Fig. 1), read from files only.

Five sources, all files on disk (the layout is documented in `results/README.md`); each record is read and
validated by its own type in `hiera.records` (`RunRecord`, `SpeedRecord`, the breakdown reader), which this module
only flattens into rows:
- run records: `results/records/<grid>.jsonl`, one JSON object per expected run of a grid, or finished run
  directories, whose `record.json` is the same object (written by `hiera.train.pipeline`); each finished run's
  directory also holds its curves (`<phase>/metrics.jsonl`), after MAE pretraining `mae/reconstruction.npz`, and
  the per-example test predictions its record names (`predictions`, `labels`: `.npy` files, read by `load_runs`
  for the tables' paired statistics). Run directories are machine-local and git-ignored, so `hiera-study collect`
  copies those small files into `results/archive/<grid>/<run id>/` (same layout) and names that folder in the
  record (`archive`, relative to the records folder's parent); every per-run file is read from the archive when
  the record names one that exists, else from `run_dir`, so committed records regenerate the same tables and
  figures on any clone (`files_dir` in the run frame is the folder chosen);
- speed records: `results/speed/*.jsonl`, one measurement per line, written by `hiera-study bench`;
- breakdown records: `results/breakdown/*.jsonl`, one step-time breakdown per op family and variant per line,
  written by `hiera-study bench --breakdown` (`hiera/bench/breakdown.py`);
- parameter/GMAC counts of the registered variants: `results/variants/model_stats.json` (`hiera.model.flops`);
- the paper's numbers: `results/paper/*.csv`.

A malformed record raises a one-line `ValueError` that names the file, the line (JSONL) and the field. Nothing is
silently dropped: unfinished runs stay in the frame with their status, for the tables to show as gaps. The one
exception is a torn last line of a JSONL file (a writer killed mid-append): skipped with a warning, since the next
append cuts it off anyway. An unreadable directory is an error (PermissionError), never an empty frame. A prediction
file a record names but that is gone (a run directory not copied along) is a warning and empty statistics for that
run, not an error: its accuracy is still in the record.

Length (~500 lines): one loader per record source, each turning typed records (`hiera.records`) into the frame
the tables and figures share; the column lists are the contract with `tables.py` and `plots.py`.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hiera.env import at_root, find_root
from hiera.model.flops import load_stats
from hiera.records import check
from hiera.records.check import display_path, json_lines, json_object, jsonl_files, warn
from hiera.records.run import PHASES, RUN_RECORD, RunRecord, run_record_path
from hiera.records.speed import BREAKDOWN_FAMILIES, CONDITIONS, SpeedRecord, breakdown_row

# Default locations, under the project root (`hiera.env.project_root`: the clone the command runs in).
RECORDS_DIR = ("results", "records")
SPEED_DIR = ("results", "speed")
PAPER_DIR = ("results", "paper")
BREAKDOWN_DIR = ("results", "breakdown")


def default_dir(parts: tuple[str, ...]) -> Path:
    """One of the default locations above, in this project (a one-line error outside any project)."""
    return at_root(*parts)


def _is_default(source: Path, parts: tuple[str, ...]) -> bool:
    """`source` is the default location `parts` of the project the command runs in (which may not exist yet)."""
    root = find_root()
    return root is not None and source.resolve() == root.joinpath(*parts)


# Columns of the run frame, in order. Nested record fields are flattened (`metrics.top1` -> `top1`).
RUN_COLUMNS = (
    "grid",
    "run",
    "status",
    "table",
    "variant",
    "step",
    "size_key",
    "modality",
    "dataset",
    "proxy",
    "seed",
    "ablation",
    "setting",
    "top1",
    "top5",
    "mae_loss",
    "input_size",
    "params_m",
    "gmacs",
    "pretrain_epochs",
    "finetune_epochs",
    "precision",
    "batch_size",
    "wall_s",
    "device",
    "cpu_threads",
    "date",
    "git_sha",
    "git_dirty",
    "run_dir",
    "error",
    "source",
    "predictions",
    "labels",
    "archive",
    "files_dir",
)
# `predictions` / `labels`: the run's per-example test predictions and labels (int16 arrays in test-set order, read
# from the files the record names), or None: the paired statistics of the tables (`hiera.analysis.stats`) need them.
# `archive`: the record's archive folder, resolved (None without one); `files_dir`: where the run's own files
# (curves, reconstruction, predictions) are read: the archive when it exists (committed, the same on every clone),
# else `run_dir` (a record of before archives, or a run directory read directly).
# Every field of a speed record, in its order (nested ones as text: `input_size` "224x224", `overrides` and
# `attn_kernels` as JSON, `attn_backends` "a+b"), then the record's location.
SPEED_COLUMNS = (*(f.name for f in dataclasses.fields(SpeedRecord)), "source")
BREAKDOWN_COLUMNS = (
    "variant",
    "step",
    "size_label",
    "modality",
    "separate_and_pad",
    "mode",
    "precision",
    "attn",
    "compile",
    "batch_size",
    "input_size",
    "overrides",
    *(f"{f}_ms" for f in BREAKDOWN_FAMILIES),
    "total_ms",
    "wall_step_ms",
    "profiled_step_ms",
    "range_self_ms",
    "profiled_steps",
    "time_source",
    *CONDITIONS,  # the hardware and software, as every record type carries them
    "source",
)
PAPER_FILES = {
    "table1": ("row", "setting", "separate_and_pad", "image_acc", "image_im_s", "video_acc", "video_clip_s"),
    "table1_claims": ("claim", "modality", "row", "ref_row", "stated", "stated_as", "consistent"),
    "table2": (
        "model",
        "modality",
        "size",
        "channels",
        "blocks",
        "heads",
        "params_m",
        "flops_g",
        "acc",
        "speed",
        "speed_unit",
    ),
    "table3": ("ablation_id", "ablation", "setting", "image_acc", "video_acc", "image_default", "video_default"),
    "speed": ("table", "modality", "size", "model", "speed", "unit", "acc"),
}


# ---- run records ------------------------------------------------------------------------------------------------


def setting_key(value: Any) -> str:
    """The canonical text of an ablation setting, so records (JSON numbers, bools) match the paper CSV's text:
    `True` -> "true", `0.20` -> "0.2", `400` and "400.0" -> "400", "HOG" -> "hog"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).strip().lower()
    try:
        return format(float(text), "g")
    except ValueError:
        return text


def run_row(record: RunRecord) -> dict[str, Any]:
    """One row of the run frame (`RUN_COLUMNS`): the record flattened (`metrics.top1` -> `top1`, the finetuning
    batch as `batch_size`, the conditions of `env`), its setting in canonical text (`setting_key`)."""
    row: dict[str, Any] = dict.fromkeys(RUN_COLUMNS)
    for name in RUN_COLUMNS:
        if hasattr(record, name):
            row[name] = getattr(record, name)
    row["setting"] = setting_key(record.setting) if record.ablation is not None else None
    row["input_size"] = "x".join(map(str, record.input_size)) if record.input_size else None
    row["batch_size"] = record.finetune_batch
    env = record.env or {}
    for name in ("date", "device", "cpu_threads", "git_sha", "git_dirty"):
        row[name] = env.get(name)
    return row


def _record_files(source: Path, grid: str) -> list[Path]:
    """The record files behind one `--records` argument: a directory of `<grid>.jsonl`, one JSONL file, or a run
    directory with its record (`record.json`, or `result.json` of schema 1)."""
    if source.is_file():
        return [source]
    record = run_record_path(source) if source.is_dir() else None
    if record is not None:
        return [record]
    if source.is_dir():
        return jsonl_files(source, grid)
    raise ValueError(f"{source}: no such records directory, JSONL file or finished run directory (with {RUN_RECORD})")


def _read_labels_array(path: Path) -> np.ndarray:
    """A 1-D integer array from an `.npy` file, without unpickling (a planted file cannot run code)."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        why = (str(e).splitlines() or [type(e).__name__])[0]
        raise ValueError(f"{display_path(path)}: not a readable .npy array ({why})") from None
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            f"{display_path(path)}: must be a 1-D integer array (one class per test example), got "
            f"{array.dtype} {list(array.shape)}"
        )
    return array.astype(np.int16, copy=False)


def _predictions(row: dict[str, Any], where: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The per-example (predictions, labels) of a done run, from the files its record names relative to its
    `files_dir` (archive, else run_dir); (None, None) when the record names none (an older record: its stats cells
    stay empty) or, with a one-line warning, when a named file is gone (a run directory not copied along). A file
    that is there but is no integer vector of the other's length is a one-line error naming it."""
    names = (row["predictions"], row["labels"])
    if row["status"] != "done" or names == (None, None):
        return None, None
    if None in names:
        warn(
            f"{where}: the record names {'predictions' if names[0] else 'labels'} but not "
            f"{'labels' if names[0] else 'predictions'}; no paired statistics for this run"
        )
        return None, None
    paths = [Path(n) if Path(n).is_absolute() else Path(row["files_dir"]) / n for n in names]
    gone = [p for p in paths if not p.is_file()]
    if gone:
        warn(f"{where}: {display_path(gone[0])} is missing; no paired statistics for this run")
        return None, None
    pred, labels = (_read_labels_array(p) for p in paths)
    if pred.shape != labels.shape:
        raise ValueError(
            f"{display_path(paths[0])}: {len(pred)} predictions but {display_path(paths[1])} has {len(labels)} labels"
        )
    return pred, labels


def load_runs(
    sources: Path | str | Sequence[Path | str] | None = None, grid: str = "*", root: Path | None = None
) -> pd.DataFrame:
    """Every run record found in `sources`, validated and flattened (`RUN_COLUMNS`), sorted by (grid, run).

    Args:
        sources: directories of `<grid>.jsonl` files, single JSONL files and/or run directories holding
            their record as `record.json` (one JSON object of the same schema; its `run_dir`
            defaults to that directory).
        grid: glob over grid names (`--grid`); applied to file stems and to each record's `grid`.
        sources: None is `results/records` of the project.
        root: base of relative `run_dir` paths (default: the project root, so committed records stay portable).
    Returns:
        One row per run; `run_dir` is resolved to an absolute path (None where the record has none), `archive`
        against the record file's folder's parent (`results/` for `results/records/<grid>.jsonl`), and
        `files_dir` is the archive when that folder exists, else `run_dir`; `source` is `<file>:<line>` for
        messages and provenance.
    """
    root = (find_root() or Path.cwd()) if root is None else root
    if sources is None:
        sources = [default_dir(RECORDS_DIR)]
    if isinstance(sources, (str, Path)):
        sources = [sources]
    rows: list[dict[str, Any]] = []
    seen: dict[tuple[str, str], str] = {}
    for source in map(Path, sources):
        if not source.exists() and _is_default(source, RECORDS_DIR):
            continue  # no grid has been collected yet: an empty frame, the tables say so
        for path in _record_files(source, grid):
            if path.suffix == ".json":  # a run directory's own record: its run_dir is that directory
                obj = json_object(path)
                obj.setdefault("run_dir", str(path.parent))
                items = [(display_path(path), obj)]
            else:
                items = list(json_lines(path))
            for where, obj in items:
                row = run_row(RunRecord.from_json(obj, where))
                if path.suffix == ".jsonl" and row["grid"] != path.stem:
                    raise ValueError(
                        f"{where}: field 'grid' is {row['grid']!r} but the file is {path.name} "
                        "(records/<grid>.jsonl holds one grid)"
                    )
                if not fnmatch.fnmatchcase(row["grid"], grid):
                    continue
                key = (row["grid"], row["run"])
                if key in seen:
                    raise ValueError(f"{where}: field 'run' {row['run']!r} of grid {row['grid']!r} repeats {seen[key]}")
                seen[key] = where
                if row["run_dir"] is not None:
                    run_dir = Path(row["run_dir"])
                    row["run_dir"] = str(run_dir if run_dir.is_absolute() else root / run_dir)
                if row["archive"] is not None:  # a clone anywhere: relative to where the records file lies
                    row["archive"] = str(path.parent.parent.absolute() / row["archive"])
                # The archive first: it is committed, so every clone reads the same bytes; the run directory may
                # hold more (a newer reconstruction, other seeds' files), which would make outputs machine-dependent.
                use_archive = row["archive"] is not None and Path(row["archive"]).is_dir()
                row["files_dir"] = row["archive"] if use_archive else row["run_dir"]
                row["source"] = where
                row["predictions"], row["labels"] = _predictions(row, where)
                rows.append(row)
    frame = pd.DataFrame(rows, columns=list(RUN_COLUMNS))
    return frame.sort_values(["grid", "run"], kind="stable").reset_index(drop=True)


# ---- per-run curves and reconstructions -------------------------------------------------------------------------


def load_curves(run_dir: Path | str) -> pd.DataFrame:
    """The training curves of one run: columns phase, opt_step (the optimizer step of a metrics line's `step`),
    epoch, loss, lr, top1 (NaN where a line lacks it).

    Reads `<run_dir>/{mae,finetune,supervised}/metrics.jsonl` when present (`run_dir`: a run directory or its
    archive; callers pass the run frame's `files_dir`). Each line needs an int `step`, a numeric `epoch`, and a
    `loss` (training lines) or a `top1` (eval lines).
    """
    rows = []
    for phase in PHASES:
        path = Path(run_dir) / phase / "metrics.jsonl"
        if not path.is_file():
            continue
        for where, obj in json_lines(path):
            row = {
                "phase": phase,
                "opt_step": check.field(obj, "step", where, "int"),
                "epoch": check.field(obj, "epoch", where, "number"),
                "loss": check.field(obj, "loss", where, "number", optional=True),
                "lr": check.field(obj, "lr", where, "number", optional=True),
                "top1": check.field(obj, "top1", where, "number", optional=True, low=0, high=100),
            }
            if row["loss"] is None and row["top1"] is None:
                raise ValueError(
                    f"{where}: field 'loss' is missing (a line is a training line with 'loss' or an "
                    "eval line with 'top1')"
                )
            rows.append(row)
    return pd.DataFrame(rows, columns=["phase", "opt_step", "epoch", "loss", "lr", "top1"]).astype(
        {"loss": float, "lr": float, "top1": float}
    )


def load_reconstruction(path: Path | str) -> dict[str, np.ndarray]:
    """`input` [n, H, W, 3] in [0, 1], `mask` [n, H, W] bool (True = visible), `reconstruction` [n, H, W, 3] in
    [0, 1], from an MAE run's `mae/reconstruction.npz` (video: the middle frame)."""
    path = Path(path)
    where = display_path(path)
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    for name in ("input", "mask", "reconstruction"):
        if name not in arrays:
            raise ValueError(f"{where}: field '{name}' is missing (arrays: {', '.join(sorted(arrays)) or 'none'})")
    image = arrays["input"]
    if image.ndim != 4 or image.shape[-1] != 3:
        raise ValueError(f"{where}: field 'input' must have shape [n, H, W, 3], got {list(image.shape)}")
    expected = {"mask": image.shape[:3], "reconstruction": image.shape}
    for name, shape in expected.items():
        if arrays[name].shape != shape:
            raise ValueError(
                f"{where}: field '{name}' must have shape {list(shape)} like 'input', got {list(arrays[name].shape)}"
            )
    if arrays["mask"].dtype != bool:
        raise ValueError(f"{where}: field 'mask' must be bool (True = visible), got {arrays['mask'].dtype}")
    for name in ("input", "reconstruction"):
        a = arrays[name]
        if not np.issubdtype(a.dtype, np.floating) or not np.all((a >= 0) & (a <= 1)):
            raise ValueError(f"{where}: field '{name}' must be floats in [0, 1] (normalisation undone)")
    return {k: arrays[k] for k in ("input", "mask", "reconstruction")}


# ---- speed records ----------------------------------------------------------------------------------------------


def speed_row(record: SpeedRecord) -> dict[str, Any]:
    """One row of the speed frame (`SPEED_COLUMNS`): every field of the record, nested ones as text."""
    row = dataclasses.asdict(record)
    row["input_size"] = "x".join(map(str, record.input_size)) if record.input_size else None
    row["overrides"] = json.dumps(record.overrides or {}, sort_keys=True)
    row["attn_kernels"] = None if record.attn_kernels is None else json.dumps(record.attn_kernels, sort_keys=True)
    row["attn_backends"] = "+".join(record.attn_backends) if record.attn_backends else None
    return row


def _load_jsonl(
    sources: Path | str | Sequence[Path | str] | None,
    default: tuple[str, ...],
    what: str,
    validate: Callable[[dict, str], dict[str, Any] | None],
    columns: Sequence[str],
) -> pd.DataFrame:
    """Records of every `*.jsonl` in the given directories (or the given files), validated, in file and line
    order; the `default` directory may be absent (nothing measured yet: an empty frame). `validate` returns None
    for a record that is valid but has nothing to show (a breakdown that ran out of memory). `sources` None: the
    default directory."""
    if sources is None:
        sources = [default_dir(default)]
    if isinstance(sources, (str, Path)):
        sources = [sources]
    rows = []
    for source in map(Path, sources):
        if source.is_dir():
            files = jsonl_files(source)
        elif source.is_file():
            files = [source]
        elif _is_default(source, default):
            continue
        else:
            raise ValueError(f"{source}: no such {what}-records directory or JSONL file")
        for path in files:
            for where, obj in json_lines(path):
                row = validate(obj, where)
                if row is not None:
                    rows.append({**row, "source": where})
    return pd.DataFrame(rows, columns=list(columns))


def load_speed(sources: Path | str | Sequence[Path | str] | None = None) -> pd.DataFrame:
    """Every speed record in the given directories (`*.jsonl`) or files (None: `results/speed`), validated, in
    file and line order."""
    return _load_jsonl(sources, SPEED_DIR, "speed", lambda o, w: speed_row(SpeedRecord.from_json(o, w)), SPEED_COLUMNS)


# ---- breakdown records ------------------------------------------------------------------------------------------


def load_breakdown(sources: Path | str | Sequence[Path | str] | None = None) -> pd.DataFrame:
    """Every breakdown record in the given directories (`*.jsonl`) or files, validated, in file and line order;
    an absent default directory (nothing broken down yet) is an empty frame."""
    return _load_jsonl(sources, BREAKDOWN_DIR, "breakdown", breakdown_row, BREAKDOWN_COLUMNS)


# ---- paper reference numbers and model counts -------------------------------------------------------------------


def load_paper(directory: Path | str | None = None) -> dict[str, pd.DataFrame]:
    """The paper's numbers (`results/paper/*.csv` of the project, see its README), one frame per file, empty cells
    as NaN."""
    directory = default_dir(PAPER_DIR) if directory is None else directory
    out = {}
    for name, required in PAPER_FILES.items():
        path = Path(directory) / f"{name}.csv"
        if not path.is_file():
            raise ValueError(f"{display_path(path)}: missing (the paper's numbers; see results/paper/README.md)")
        df = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={"setting": str})
        for column in (*required, "source"):
            if column not in df.columns:
                raise ValueError(f"{display_path(path)}: field '{column}' is missing from the header")
        blank = df["source"].isna()
        if blank.any():
            raise ValueError(f"{display_path(path)}:{int(np.argmax(blank.to_numpy())) + 2}: field 'source' is empty")
        if name == "table3":  # matched on the canonical key, shown as the paper writes it
            df["setting_text"] = df["setting"]
            df["setting"] = df["setting"].map(setting_key)
        out[name] = df
    return out


def model_counts(names: Iterable[str]) -> dict[str, tuple[float, float] | None]:
    """(params in M, GMACs) of registered variants from `results/variants/model_stats.json`, by name; None when the
    file has no entry. Never counts with fvcore and never asks the registry: tables stay pure functions of the files
    on disk (`tests/test_table2.py` keeps the file fresh against the registry)."""
    by_name = {entry["name"]: entry for entry in load_stats().values()}
    out: dict[str, tuple[float, float] | None] = {}
    for name in names:
        entry = by_name.get(name)
        out[name] = (entry["params"] / 1e6, entry["gmacs"]) if entry else None
    return out


@dataclass
class Records:
    """Everything the tables and figures read, loaded once."""

    runs: pd.DataFrame
    speed: pd.DataFrame
    paper: dict[str, pd.DataFrame]
    breakdown: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(BREAKDOWN_COLUMNS)))


def load_all(
    records: Path | str | Sequence[Path | str] | None = None,
    speed: Path | str | Sequence[Path | str] | None = None,
    paper: Path | str | None = None,
    grid: str = "*",
    breakdown: Path | str | Sequence[Path | str] | None = None,
) -> Records:
    """Runs, speed records, paper numbers and breakdown records, validated (the first malformed record stops with
    its location). None: the project's default location of each; `breakdown=()` loads none."""
    return Records(load_runs(records, grid), load_speed(speed), load_paper(paper), load_breakdown(breakdown))
