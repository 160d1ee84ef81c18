"""Loading and validating the records that tables and figures are made from (paper Tables 1-3, 16, 17; Fig. 1).

Five sources, all files on disk (the layout is documented in `results/README.md`):
- run records: `results/records/<grid>.jsonl`, one JSON object per expected run of a grid (schema
  `hiera-study/run/1`), or finished run directories, whose `result.json` is the same object (written by
  `hiera.train.pipeline`); each finished run's
  directory also holds its curves (`<phase>/metrics.jsonl`), after MAE pretraining `mae/reconstruction.npz`, and
  the per-example test predictions its record names (`predictions`, `labels`: `.npy` files, read by `load_runs`
  for the tables' paired statistics). Run directories are machine-local and git-ignored, so `hiera-study collect`
  copies those small files into `results/archive/<grid>/<run id>/` (same layout) and names that folder in the
  record (`archive`, relative to the records folder's parent); every per-run file is read from the archive when
  the record names one that exists, else from `run_dir`, so committed records regenerate the same tables and
  figures on any clone (`files_dir` in the run frame is the folder chosen);
- speed records: `results/speed/*.jsonl`, one measurement per line, written by `hiera-study bench`;
- breakdown records: `results/breakdown/*.jsonl`, one step-time breakdown per op family and variant per line,
  written by `hiera-study bench --breakdown` (`hiera/breakdown.py`);
- parameter/GMAC counts of the registered variants: `results/variants/model_stats.json` (`hiera.flops`);
- the paper's numbers: `results/paper/*.csv`.

Every loader validates what it reads. A malformed record raises a one-line `ValueError` that names the file,
the line (JSONL) and the field, so a bad line in a thousand-run grid is found without a debugger. Nothing is
silently dropped: unfinished runs stay in the frame with their status, for the tables to show as gaps. The one
exception is a torn last line of a JSONL file (a writer killed mid-append): skipped with a warning, as
`hiera.files.read_jsonl` does, since the next append cuts it off anyway. An unreadable directory is an error
(PermissionError), never an empty frame. A prediction file a record names but that is gone (a run directory not
copied along) is a warning and empty statistics for that run, not an error: its accuracy is still in the record.
"""

from __future__ import annotations

import fnmatch
import json
import math
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hiera.env import at_root, find_root
from hiera.files import read_jsonl
from hiera.ladder import STEP_IDS
from hiera.layers.scope import FAMILIES
from hiera.train.config import PHASES  # the phase directories of a run, whose curves are read in this order

RUN_SCHEMA = "hiera-study/run/1"
STATUSES = ("done", "failed", "running", "pending", "missing", "unknown", "stale")
MODALITIES = ("image", "video")
RUN_RECORD = "result.json"  # a finished run directory's own record (hiera.train.pipeline writes it last)
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


BREAKDOWN_SCHEMA = "hiera-study/breakdown/1"
# The op families of a breakdown record, in display order: the model's scopes, then the time no scope covers
# (as `hiera.breakdown.ALL_FAMILIES`; not imported from there, which would load the whole benchmark stack).
BREAKDOWN_FAMILIES = (*FAMILIES, "other", "backward", "optimizer")
TIME_SOURCES = ("cpu self time", "cuda kernel time")
# A bench record's `status` and, for an out-of-memory, its `oom_stage` (as `hiera.bench.OOM_STAGES`; not imported
# from there, which would load the whole benchmark stack).
SPEED_STATUSES = ("ok", "oom")
OOM_STAGES = ("build", "inputs", "compile", "warmup", "timing", "profile")

# Columns of the run frame, in order. Nested record fields are flattened (`metrics.top1` -> `top1`).
RUN_COLUMNS = (
    "grid",
    "run",
    "status",
    "table",
    "variant",
    "step",
    "size",
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
SPEED_COLUMNS = (
    "variant",
    "step",
    "size",
    "modality",
    "impl",
    "model",
    "separate_and_pad",
    "mode",
    "precision",
    "attn",
    "compile",
    "protocol",
    "requested_batch",
    "batch_size",
    "oom",
    "best_batch",
    "samples_per_s",
    "samples_per_s_min",
    "samples_per_s_max",
    "step_ms",
    "warmup",
    "iters",
    "trials",
    "params_m",
    "gmacs",
    "tflops",
    "peak_tflops",
    "mfu",
    "ratio_vs_peer",
    "ratio_vs_official",
    "sep_pad_overhead",
    "input_size",
    "overrides",
    "attn_backends",
    "graph_breaks",
    "compile_s",
    "peak_mem_gib",
    "device",
    "driver",
    "torch",
    "cuda",
    "cudnn",
    "cpu_threads",
    "git_sha",
    "git_dirty",
    "date",
    "status",
    "oom_stage",
    "source",
)
BREAKDOWN_COLUMNS = (
    "variant",
    "step",
    "size",
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
    "device",
    "driver",
    "torch",
    "cuda",
    "cudnn",
    "cpu_threads",
    "git_sha",
    "git_dirty",
    "date",
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


# ---- field checks -----------------------------------------------------------------------------------------------
# Each check returns the value or raises with a message that the caller prefixes with "<file>:<line>: field <name>".


class _Bad(Exception):
    """A field failed its check (internal: turned into the one-line ValueError by `_field`)."""


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _get(obj: dict, name: str) -> Any:
    """`obj[name]` for dotted names (`metrics.top1`); missing keys are `_MISSING`."""
    for part in name.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return _MISSING
        obj = obj[part]
    return obj


_MISSING = object()


def _field(
    obj: dict,
    name: str,
    where: str,
    kind: str,
    *,
    optional: bool = False,
    choices: Sequence | None = None,
    low: float | None = None,
    high: float | None = None,
) -> Any:
    """Validate one field of a record; `kind` is str, int, number, bool, list or dict."""
    value = _get(obj, name)
    try:
        if value is _MISSING:
            if optional:
                return None
            raise _Bad("is missing")
        if value is None:
            if optional:
                return None
            raise _Bad("must not be null")
        ok = {
            "str": isinstance(value, str) and value != "",
            "int": isinstance(value, int) and not isinstance(value, bool),
            "number": isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
            "bool": isinstance(value, bool),
            "list": isinstance(value, list),
            "dict": isinstance(value, dict),
            "scalar": isinstance(value, (str, int, float, bool)),
        }[kind]
        if not ok:
            raise _Bad(f"must be {'a non-empty string' if kind == 'str' else 'a ' + kind}, got {_short(value)}")
        if choices is not None and value not in choices:
            raise _Bad(f"must be one of {', '.join(map(str, choices))}; got {_short(value)}")
        if (low is not None and value < low) or (high is not None and value > high):
            raise _Bad(f"must be in [{low}, {high}], got {_short(value)}")
    except _Bad as e:
        raise ValueError(f"{where}: field '{name}' {e}") from None
    return value


def display_path(path: Path) -> str:
    """A path as the messages and tables show it: relative to the project root when inside it."""
    root = find_root()
    try:
        return str(path.resolve().relative_to(root)) if root else str(path)
    except ValueError:
        return str(path)


def _json_lines(path: Path) -> Iterable[tuple[str, dict]]:
    """(`<file>:<line>`, object) for every non-blank line of a JSONL file.

    Records are read with `hiera.files.read_jsonl`: a torn last line (a writer killed mid-append, a full disk) is
    skipped with a warning instead of refusing the whole file, and the file is not modified (results may be
    read-only); the next append cuts it off. A malformed line anywhere else was not torn by a crash: an error naming
    the file and the line.
    """
    try:
        records = read_jsonl(path)
    except ValueError:
        records = None  # a malformed line before the end: found and located below
    lines = [(i, line) for i, line in enumerate(path.read_bytes().split(b"\n"), 1) if line.strip()]
    if records is None:
        for i, line in lines:
            try:
                json.loads(line)
            except ValueError as e:
                msg = f"{e.msg} at column {e.colno}" if isinstance(e, json.JSONDecodeError) else str(e)
                raise ValueError(f"{display_path(path)}:{i}: not valid JSON ({msg})") from None
        records = read_jsonl(path)  # every line parses now (the file changed under us): its own message, if any
    # read_jsonl keeps the non-blank lines in order and drops at most the last one (torn): zip pairs them up
    for (i, _), obj in zip(lines, records):
        where = f"{display_path(path)}:{i}"
        if not isinstance(obj, dict):
            raise ValueError(f"{where}: a record must be a JSON object, got {type(obj).__name__}")
        yield where, obj


def _jsonl_files(directory: Path, grid: str = "*") -> list[Path]:
    """The `*.jsonl` files of a directory whose stem matches `grid`, sorted.

    Listed with `iterdir`, which raises on an unreadable directory (PermissionError), where `Path.glob` would
    silently find nothing and the tables would be rewritten empty over the previous ones.
    """
    return sorted(
        p
        for p in directory.iterdir()
        if p.name.endswith(".jsonl") and fnmatch.fnmatchcase(p.stem, grid) and not p.is_dir()
    )


# ---- run records ------------------------------------------------------------------------------------------------

# Names the grid files use for the paper's ablations and settings, mapped to the names of results/paper/table3.csv.
ABLATION_ALIASES = {
    "pretrain_epochs": "epochs",
    "pretraining_epochs": "epochs",
    "mask": "mask_ratio",
    "dpr": "drop_path",
    "depth": "decoder_depth",
}
SETTING_ALIASES = {
    ("multi_scale", "last_only"): "false",
    ("multi_scale", "last"): "false",
    ("multi_scale", "all"): "true",
}


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


def validate_run(obj: dict, where: str) -> dict[str, Any]:
    """Check one run record and flatten it into a row of the run frame (`RUN_COLUMNS`)."""
    schema = _field(obj, "schema", where, "str")
    if schema != RUN_SCHEMA:
        raise ValueError(f"{where}: field 'schema' must be {RUN_SCHEMA!r}, got {_short(schema)}")
    row: dict[str, Any] = dict.fromkeys(RUN_COLUMNS)
    for name in ("grid", "run", "variant", "size", "dataset", "table"):
        row[name] = _field(obj, name, where, "str")
    row["status"] = _field(obj, "status", where, "str", choices=STATUSES)
    row["step"] = _field(obj, "step", where, "str", optional=True, choices=STEP_IDS)
    if "step" not in obj:  # null is allowed (non-ladder runs), absent is not: a typo in the key would hide rows
        raise ValueError(f"{where}: field 'step' is missing (use null for runs outside the Table-1 ladder)")
    row["modality"] = _field(obj, "modality", where, "str", choices=MODALITIES)
    row["proxy"] = _field(obj, "proxy", where, "bool")
    row["seed"] = _field(obj, "seed", where, "int")
    ablation = _field(obj, "ablation", where, "str", optional=True)
    setting = _field(obj, "setting", where, "scalar", optional=ablation is None)
    if ablation is not None:
        row["ablation"] = ABLATION_ALIASES.get(ablation, ablation)
        key = setting_key(setting)
        row["setting"] = SETTING_ALIASES.get((row["ablation"], key), key)
    if row["table"] == "table3" and row["ablation"] is None:
        raise ValueError(f"{where}: field 'ablation' is missing (Table 3 runs name their ablation and setting)")
    row["run_dir"] = _field(obj, "run_dir", where, "str", optional=row["status"] != "done")
    # relative to the records folder's parent (written by `collect`); resolved by `load_runs`
    row["archive"] = _field(obj, "archive", where, "str", optional=True)
    if row["status"] == "done":
        row["top1"] = _field(obj, "metrics.top1", where, "number", low=0, high=100)
        row["top5"] = _field(obj, "metrics.top5", where, "number", optional=True, low=0, high=100)
        row["mae_loss"] = _field(obj, "metrics.mae_loss", where, "number", optional=True)
        size = _field(obj, "input_size", where, "list")
        if not size or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size):
            raise ValueError(f"{where}: field 'input_size' must be a list of positive ints, got {_short(size)}")
        row["input_size"] = "x".join(map(str, size))
        row["params_m"] = _field(obj, "params_m", where, "number", low=0)
        row["gmacs"] = _field(obj, "gmacs", where, "number", low=0)
        row["pretrain_epochs"] = _field(obj, "epochs.pretrain", where, "int", optional=True)
        if _get(obj, "epochs.pretrain") is _MISSING:
            raise ValueError(f"{where}: field 'epochs.pretrain' is missing (null for runs without pretraining)")
        row["finetune_epochs"] = _field(obj, "epochs.finetune", where, "int")
        row["precision"] = _field(obj, "precision", where, "str")
        # one int, or per phase {"pretrain": int | null, "finetune": int} (hiera.train.pipeline); the table
        # shows the finetuning batch
        if isinstance(obj.get("batch_size"), dict):
            _field(obj, "batch_size.pretrain", where, "int", optional=True)
            row["batch_size"] = _field(obj, "batch_size.finetune", where, "int")
        else:
            row["batch_size"] = _field(obj, "batch_size", where, "int")
        row["wall_s"] = _field(obj, "wall_s", where, "number", low=0)
        row["date"] = _field(obj, "env.date", where, "str")
        row["device"] = _field(obj, "env.device", where, "str")
        row["cpu_threads"] = _field(obj, "env.cpu_threads", where, "int", optional=True)
        row["git_sha"] = _field(obj, "env.git_sha", where, "str", optional=True)
        row["git_dirty"] = _field(obj, "env.git_dirty", where, "bool", optional=True)
        # paths relative to run_dir, read by `load_runs` (records of before they were saved have none)
        row["predictions"] = _field(obj, "predictions", where, "str", optional=True)
        row["labels"] = _field(obj, "labels", where, "str", optional=True)
    elif row["status"] in ("unknown", "stale"):  # why: the queue command that failed / the spec keys that differ
        error = obj.get("error")
        row["error"] = error if isinstance(error, str) else None
    elif row["status"] == "failed":
        error = obj.get("error", _MISSING)
        if not isinstance(error, str):  # may be empty (a job that died without output), but must be there
            raise ValueError(
                f"{where}: field 'error' must be a string (the last lines of the failure), got "
                f"{'nothing' if error is _MISSING else _short(error)}"
            )
        row["error"] = error
    return row


def _record_files(source: Path, grid: str) -> list[Path]:
    """The record files behind one `--records` argument: a directory of `<grid>.jsonl`, one JSONL file, or a run
    directory with its record (`result.json`)."""
    if source.is_file():
        return [source]
    if (source / RUN_RECORD).is_file():
        return [source / RUN_RECORD]
    if source.is_dir():
        return _jsonl_files(source, grid)
    raise ValueError(f"{source}: no such records directory, JSONL file or finished run directory (with {RUN_RECORD})")


def _warn(message: str) -> None:
    """One warning line on stderr, in the format of `hiera.files` (a gap the tables can live with)."""
    print(f"hiera-study: warning: {message}", file=sys.stderr, flush=True)


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
        _warn(
            f"{where}: the record names {'predictions' if names[0] else 'labels'} but not "
            f"{'labels' if names[0] else 'predictions'}; no paired statistics for this run"
        )
        return None, None
    paths = [Path(n) if Path(n).is_absolute() else Path(row["files_dir"]) / n for n in names]
    gone = [p for p in paths if not p.is_file()]
    if gone:
        _warn(f"{where}: {display_path(gone[0])} is missing; no paired statistics for this run")
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
            their record as `result.json` (one JSON object of the same schema; its `run_dir`
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
            if path.suffix == ".json":
                where = display_path(path)
                try:
                    obj = json.loads(path.read_text())
                except json.JSONDecodeError as e:
                    raise ValueError(f"{where}: not valid JSON ({e.msg} at line {e.lineno})") from None
                if not isinstance(obj, dict):
                    raise ValueError(f"{where}: a record must be a JSON object, got {type(obj).__name__}")
                obj.setdefault("run_dir", str(path.parent))
                items = [(where, obj)]
            else:
                items = list(_json_lines(path))
            for where, obj in items:
                row = validate_run(obj, where)
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
    """The training curves of one run: columns phase, step, epoch, loss, lr, top1 (NaN where a line lacks it).

    Reads `<run_dir>/{mae,finetune,supervised}/metrics.jsonl` when present (`run_dir`: a run directory or its
    archive; callers pass the run frame's `files_dir`). Each line needs an int `step`, a numeric `epoch`, and a
    `loss` (training lines) or a `top1` (eval lines).
    """
    rows = []
    for phase in PHASES:
        path = Path(run_dir) / phase / "metrics.jsonl"
        if not path.is_file():
            continue
        for where, obj in _json_lines(path):
            row = {
                "phase": phase,
                "step": _field(obj, "step", where, "int"),
                "epoch": _field(obj, "epoch", where, "number"),
                "loss": _field(obj, "loss", where, "number", optional=True),
                "lr": _field(obj, "lr", where, "number", optional=True),
                "top1": _field(obj, "top1", where, "number", optional=True, low=0, high=100),
            }
            if row["loss"] is None and row["top1"] is None:
                raise ValueError(
                    f"{where}: field 'loss' is missing (a line is a training line with 'loss' or an "
                    "eval line with 'top1')"
                )
            rows.append(row)
    return pd.DataFrame(rows, columns=["phase", "step", "epoch", "loss", "lr", "top1"]).astype(
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


def validate_speed(obj: dict, where: str) -> dict[str, Any]:
    """Check one `hiera-study bench` record (schema in results/README.md) and flatten it (`SPEED_COLUMNS`)."""
    row: dict[str, Any] = dict.fromkeys(SPEED_COLUMNS)
    for name in (
        "variant",
        "size",
        "impl",
        "model",
        "mode",
        "precision",
        "attn",
        "protocol",
        "device",
        "torch",
        "date",
    ):
        row[name] = _field(obj, name, where, "str")
    row["step"] = _field(obj, "step", where, "str", optional=True)
    row["modality"] = _field(obj, "modality", where, "str", choices=MODALITIES)
    row["separate_and_pad"] = _field(obj, "separate_and_pad", where, "str", optional=True, choices=("on", "off"))
    for name in ("compile", "oom", "best_batch"):
        row[name] = _field(obj, name, where, "bool")
    row["requested_batch"] = _field(obj, "requested_batch", where, "int")
    row["batch_size"] = _field(obj, "batch_size", where, "int", optional=True)
    # `status` ("oom": nothing ran) and `oom_stage` (where memory ran out) are absent from records of before they
    # were written; an out-of-memory record is shown as such (a gap with a note), never dropped.
    row["status"] = _field(obj, "status", where, "str", optional=True, choices=SPEED_STATUSES)
    row["oom_stage"] = _field(obj, "oom_stage", where, "str", optional=True, choices=OOM_STAGES)
    if row["status"] == "oom" and row["batch_size"] is not None:
        raise ValueError(
            f"{where}: field 'batch_size' must be null in an out-of-memory record (status 'oom'), got "
            f"{row['batch_size']}"
        )
    ran = row["batch_size"] is not None
    for name in ("samples_per_s", "samples_per_s_min", "samples_per_s_max", "step_ms"):
        row[name] = _field(obj, name, where, "number", optional=not ran, low=0)
    row["gmacs"] = _field(obj, "gmacs", where, "number", low=0)
    for name in ("params_m", "tflops", "peak_tflops", "mfu", "ratio_vs_peer", "ratio_vs_official", "sep_pad_overhead"):
        row[name] = _field(obj, name, where, "number", optional=True, low=0)
    for name in ("warmup", "iters", "trials", "cpu_threads"):
        row[name] = _field(obj, name, where, "int", optional=True)
    for name in ("driver", "cuda", "git_sha"):
        value = _get(obj, name)
        row[name] = None if value is _MISSING or value is None else str(value)
    row["cudnn"] = None if obj.get("cudnn") is None else str(obj["cudnn"])
    row["git_dirty"] = _field(obj, "git_dirty", where, "bool", optional=True)
    size = _field(obj, "input_size", where, "list", optional=True)
    row["input_size"] = "x".join(map(str, size)) if size else None
    overrides = _field(obj, "overrides", where, "dict", optional=True)
    row["overrides"] = json.dumps(overrides or {}, sort_keys=True)
    # the attention kernels that ran (records from before they were read have none: null)
    kernels = _field(obj, "attn_backends", where, "list", optional=True)
    if kernels is not None and not all(isinstance(k, str) and k for k in kernels):
        raise ValueError(f"{where}: field 'attn_backends' must be a list of backend names, got {kernels!r}")
    row["attn_backends"] = "+".join(kernels) if kernels else None
    row["graph_breaks"] = _field(obj, "graph_breaks", where, "int", optional=True)
    for name in ("compile_s", "peak_mem_gib"):
        row[name] = _field(obj, name, where, "number", optional=True, low=0)
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
            files = _jsonl_files(source)
        elif source.is_file():
            files = [source]
        elif _is_default(source, default):
            continue
        else:
            raise ValueError(f"{source}: no such {what}-records directory or JSONL file")
        for path in files:
            for where, obj in _json_lines(path):
                row = validate(obj, where)
                if row is not None:
                    rows.append({**row, "source": where})
    return pd.DataFrame(rows, columns=list(columns))


def load_speed(sources: Path | str | Sequence[Path | str] | None = None) -> pd.DataFrame:
    """Every speed record in the given directories (`*.jsonl`) or files (None: `results/speed`), validated, in
    file and line order."""
    return _load_jsonl(sources, SPEED_DIR, "speed", validate_speed, SPEED_COLUMNS)


# ---- breakdown records ------------------------------------------------------------------------------------------


def validate_breakdown(obj: dict, where: str) -> dict[str, Any] | None:
    """Check one `hiera-study bench --breakdown` record (schema in results/README.md) and flatten it
    (`BREAKDOWN_COLUMNS`: one `<family>_ms` column per op family, 0 where the record has none)."""
    schema = _field(obj, "schema", where, "str")
    if schema != BREAKDOWN_SCHEMA:
        raise ValueError(f"{where}: field 'schema' must be {BREAKDOWN_SCHEMA!r}, got {_short(schema)}")
    if _field(obj, "status", where, "str", optional=True, choices=SPEED_STATUSES) == "oom":
        _field(obj, "variant", where, "str")
        _field(obj, "oom_stage", where, "str", choices=OOM_STAGES)
        return None  # out of memory: no times to break down (the run's log said so); skipped
    row: dict[str, Any] = dict.fromkeys(BREAKDOWN_COLUMNS)
    for name in ("variant", "size", "mode", "precision", "attn", "device", "torch", "date"):
        row[name] = _field(obj, name, where, "str")
    row["step"] = _field(obj, "step", where, "str", optional=True, choices=STEP_IDS)
    row["modality"] = _field(obj, "modality", where, "str", choices=MODALITIES)
    row["separate_and_pad"] = _field(obj, "separate_and_pad", where, "str", optional=True, choices=("on", "off"))
    row["compile"] = _field(obj, "compile", where, "bool")
    row["batch_size"] = _field(obj, "batch_size", where, "int", low=1)
    row["profiled_steps"] = _field(obj, "profiled_steps", where, "int", low=1)
    row["time_source"] = _field(obj, "time_source", where, "str", choices=TIME_SOURCES)
    families = _field(obj, "families", where, "dict")
    for name in families:
        if name not in BREAKDOWN_FAMILIES:
            raise ValueError(
                f"{where}: field 'families.{name}' is not an op family; one of {', '.join(BREAKDOWN_FAMILIES)}"
            )
    for name in BREAKDOWN_FAMILIES:
        row[f"{name}_ms"] = _field(obj, f"families.{name}", where, "number", optional=True, low=0) or 0.0
    row["total_ms"] = _field(obj, "total_ms", where, "number", low=0)
    parts = sum(row[f"{name}_ms"] for name in BREAKDOWN_FAMILIES)
    if not math.isclose(parts, row["total_ms"], rel_tol=1e-6, abs_tol=1e-3):
        raise ValueError(f"{where}: field 'total_ms' is {row['total_ms']} but the families sum to {parts:.4f}")
    for name in ("wall_step_ms", "profiled_step_ms"):
        row[name] = _field(obj, name, where, "number", optional=name != "wall_step_ms", low=0)
    row["range_self_ms"] = _field(obj, "range_self_ms", where, "number", optional=True, low=0)
    row["cpu_threads"] = _field(obj, "cpu_threads", where, "int", optional=True)
    for name in ("driver", "cuda", "cudnn", "git_sha"):
        value = obj.get(name)
        row[name] = None if value is None else str(value)
    row["git_dirty"] = _field(obj, "git_dirty", where, "bool", optional=True)
    size = _field(obj, "input_size", where, "list")
    if not size or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size):
        raise ValueError(f"{where}: field 'input_size' must be a list of positive ints, got {_short(size)}")
    row["input_size"] = "x".join(map(str, size))
    row["overrides"] = json.dumps(_field(obj, "overrides", where, "dict", optional=True) or {}, sort_keys=True)
    return row


def load_breakdown(sources: Path | str | Sequence[Path | str] | None = None) -> pd.DataFrame:
    """Every breakdown record in the given directories (`*.jsonl`) or files, validated, in file and line order;
    an absent default directory (nothing broken down yet) is an empty frame."""
    return _load_jsonl(sources, BREAKDOWN_DIR, "breakdown", validate_breakdown, BREAKDOWN_COLUMNS)


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
    """(params in M, GMACs) of registered variants from `results/variants/model_stats.json`; None when the record
    has no fresh entry. Never counts with fvcore here: tables stay pure functions of the files on disk."""
    from hiera.flops import config_hash, load_stats
    from hiera.registry import get_variant

    cache = load_stats()
    out: dict[str, tuple[float, float] | None] = {}
    for name in names:
        entry = cache.get(config_hash(get_variant(name).config))
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
