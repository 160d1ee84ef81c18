"""Run records and phase results: the two files a training run leaves (paper Table 1's cells come from them).

    <run dir>/record.json          `RunRecord`: the run as the tables see it (schema `hiera-study/run/3`), written
                                   last by `hiera.train.pipeline`; `hiera-study collect` gathers them, one JSON line
                                   per run of a grid, into `results/records/<grid>.jsonl`
    <run dir>/<phase>/result.json  `PhaseResult`: one phase (mae, finetune or supervised), written last by
                                   `hiera.train.loop` (schema `hiera-study/phase/1`)

Each type has one writer (`to_json`, and `write_*` for the files) and one reader (`from_json`, `read_*`) that
validates and names `<file>[:<line>]: field '<name>'` on error. The readers also take the previous versions, so
files written before survive: run schema 1 (its batch size could be one int; the record was the run directory's
`result.json`), run schema 2 (`size` for `size_key`) and phase results without a schema (their optimizer-step
count was `steps`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hiera.files import atomic_write_text
from hiera.model.ladder import EXTENDED_STEP_IDS
from hiera.records.check import MISSING, display_path, field, get, json_object, present, schema, short, sizes
from hiera.train.config import PHASES  # a run's phase directories, in the order they run

RUN_SCHEMA = "hiera-study/run/3"
RUN_SCHEMAS = ("hiera-study/run/1", "hiera-study/run/2", RUN_SCHEMA)  # every version `RunRecord.from_json` reads
RUN_RECORD = "record.json"
RUN_RECORD_V1 = "result.json"  # where schema 1 kept a run's record (the name of a phase result since schema 2)
PHASE_SCHEMA = "hiera-study/phase/1"
PHASE_RESULT = "result.json"
STATUSES = ("done", "failed", "running", "pending", "missing", "unknown", "stale")
MODALITIES = ("image", "video")
PROXY_DATASETS = ("fashion-mnist", "moving-fashion-mnist")  # the embedded data: a record says it is a proxy


def _dump(obj: dict[str, Any]) -> str:
    return json.dumps(obj, indent=1, sort_keys=True) + "\n"


# ---- phase results ----------------------------------------------------------------------------------------------

MAE_FIELDS = ("final_loss", "first_loss")  # what only an MAE phase writes ...
CLASSIFICATION_FIELDS = ("top1", "top5", "eval_loss", "best_top1", "eval_samples")  # ... and only the others


@dataclass(frozen=True)
class PhaseResult:
    """How one phase ended. MAE phases carry the loss; classification phases the final evaluation."""

    phase: str  # mae | finetune | supervised
    model: str  # the registered variant trained
    recipe: str
    opt_steps: int  # optimizer steps taken
    epochs: int
    batch_size: int  # global
    lr: float  # peak learning rate, scaled to the batch (`hiera.recipes.scaled_lr`)
    precision: str
    world_size: int
    train_samples: int
    wall_s_last_start: float  # seconds of the last start only (a resumed phase counts from its restart)
    final_loss: float | None = None  # mae
    first_loss: float | None = None  # mae
    top1: float | None = None  # classification: the last epoch's evaluation, %
    top5: float | None = None
    eval_loss: float | None = None
    best_top1: float | None = None  # the best epoch's top-1 (reported, never used to pick a result)
    eval_samples: int | None = None

    def __post_init__(self) -> None:
        if self.phase not in PHASES:
            raise ValueError(f"phase must be one of {', '.join(PHASES)}, got {self.phase!r}")

    def replace(self, **changes: Any) -> PhaseResult:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        drop = CLASSIFICATION_FIELDS if self.phase == "mae" else MAE_FIELDS
        return {"schema": PHASE_SCHEMA, **{k: v for k, v in dataclasses.asdict(self).items() if k not in drop}}

    @classmethod
    def from_json(cls, obj: dict[str, Any], where: str) -> PhaseResult:
        legacy = "schema" not in obj  # written before phase results had a schema: `steps` for `opt_steps`
        if not legacy:
            schema(obj, where, (PHASE_SCHEMA,))
        phase = field(obj, "phase", where, "str", choices=PHASES)
        values: dict[str, Any] = {
            "phase": phase,
            "opt_steps": field(obj, "steps" if legacy else "opt_steps", where, "int"),
        }
        for name in ("model", "recipe", "precision"):
            values[name] = field(obj, name, where, "str")
        for name in ("epochs", "batch_size", "world_size", "train_samples"):
            values[name] = field(obj, name, where, "int", low=0)
        values["lr"] = field(obj, "lr", where, "number", low=0)
        values["wall_s_last_start"] = field(obj, "wall_s_last_start", where, "number", low=0)
        if phase == "mae":
            for name in ("final_loss", "first_loss"):
                values[name] = field(obj, name, where, "number", optional=True)
        else:
            for name in ("top1", "top5", "best_top1"):
                values[name] = field(obj, name, where, "number", low=0, high=100)
            values["eval_loss"] = field(obj, "eval_loss", where, "number", low=0)
            values["eval_samples"] = field(obj, "eval_samples", where, "int", low=1)
        return cls(**values)


def write_phase_result(phase_dir: Path, result: PhaseResult) -> None:
    """`<phase dir>/result.json`, atomically: its presence means the phase is finished."""
    atomic_write_text(Path(phase_dir) / PHASE_RESULT, _dump(result.to_json()))


def read_phase_result(phase_dir: Path) -> PhaseResult:
    path = Path(phase_dir) / PHASE_RESULT
    return PhaseResult.from_json(json_object(path), str(path))


# ---- run records ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunRecord:
    """One run of a grid: where it stands and, once done, its numbers with their conditions.

    Lines of runs that are not done (`collect` writes one per run of the grid, so a table can show the gap) carry
    the first block only, and `error` for failed, unknown and stale runs.
    """

    grid: str  # ablations/<grid>.py, "demo" or "adhoc"
    run: str  # id inside the grid, e.g. "image/b/seed1"
    status: str  # one of STATUSES
    variant: str  # the registered variant the run trains
    step: str | None  # ladder row (sup, mae, a-f; g beyond the paper); None outside the ladder
    size_key: str  # a SIZES key (tiny ... huge), or "proxy" for the embedded-data models
    modality: str
    dataset: str
    proxy: bool  # the embedded data, not ImageNet/Kinetics
    seed: int
    table: str  # which paper table the run belongs to (table1, table3, appendix_b, demo, ...)
    ablation: str | None = None  # Table 3: the ablation (as results/paper/table3.csv names it) ...
    setting: str | int | float | bool | None = None  # ... and this run's setting
    run_dir: str | None = None
    archive: str | None = None  # `collect`'s copy of the run's small files, relative to the records folder's parent
    error: str | None = None  # failed: the last lines of the failure; unknown/stale: why
    # done runs only
    top1: float | None = None
    top5: float | None = None
    best_top1: float | None = None
    mae_loss: float | None = None  # the MAE phase's last training loss
    input_size: tuple[int, ...] | None = None
    params_m: float | None = None  # of the classifier
    gmacs: float | None = None
    pretrain_epochs: int | None = None
    finetune_epochs: int | None = None
    pretrain_samples: int | None = None
    finetune_samples: int | None = None
    eval_samples: int | None = None
    precision: str | None = None
    pretrain_batch: int | None = None
    finetune_batch: int | None = None
    world_size: int | None = None
    wall_s: float | None = None  # all phases, this start
    env: dict[str, Any] | None = None  # hardware and software (`hiera.env.collect_env`)
    predictions: str | None = None  # per-example test predictions (.npy), relative to the run's files
    labels: str | None = None
    extra: dict[str, Any] | None = None  # the grid's own fields for this run
    model_args: dict[str, Any] | None = None  # ModelConfig fields the run changed from its variant (e.g. a width)

    def replace(self, **changes: Any) -> RunRecord:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The record as written (schema `hiera-study/run/3`): the first block always, the rest when set."""
        out: dict[str, Any] = {"schema": RUN_SCHEMA}
        for name in ("grid", "run", "status", "variant", "step", "size_key", "modality", "dataset", "proxy", "seed"):
            out[name] = getattr(self, name)
        out.update(table=self.table, ablation=self.ablation, setting=self.setting)
        for name in ("run_dir", "archive", "error", "predictions", "labels", "extra", "model_args"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.status != "done":
            return out
        out["metrics"] = {"top1": self.top1, "top5": self.top5, "best_top1": self.best_top1, "mae_loss": self.mae_loss}
        out["input_size"] = list(self.input_size or ())
        out.update(params_m=self.params_m, gmacs=self.gmacs, precision=self.precision, wall_s=self.wall_s)
        out["epochs"] = {"pretrain": self.pretrain_epochs, "finetune": self.finetune_epochs}
        out["train_samples"] = {"pretrain": self.pretrain_samples, "finetune": self.finetune_samples}
        out["batch_size"] = {"pretrain": self.pretrain_batch, "finetune": self.finetune_batch}
        out.update(eval_samples=self.eval_samples, world_size=self.world_size, env=self.env)
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any], where: str) -> RunRecord:
        """Validate a record of any schema in `RUN_SCHEMAS`."""
        version = schema(obj, where, RUN_SCHEMAS)
        if version == RUN_SCHEMAS[0]:
            obj = _upgrade_v1(obj)
        if version != RUN_SCHEMA:
            obj = _upgrade_v2(obj)
        v: dict[str, Any] = {}
        for name in ("grid", "run", "variant", "size_key", "dataset", "table"):
            v[name] = field(obj, name, where, "str")
        v["status"] = field(obj, "status", where, "str", choices=STATUSES)
        present(obj, "step", where, "use null for runs outside the Table-1 ladder")
        v["step"] = field(obj, "step", where, "str", optional=True, choices=EXTENDED_STEP_IDS)
        v["modality"] = field(obj, "modality", where, "str", choices=MODALITIES)
        v["proxy"] = field(obj, "proxy", where, "bool")
        v["seed"] = field(obj, "seed", where, "int")
        v["ablation"] = field(obj, "ablation", where, "str", optional=True)
        v["setting"] = field(obj, "setting", where, "scalar", optional=v["ablation"] is None)
        if v["table"] == "table3" and v["ablation"] is None:
            raise ValueError(f"{where}: field 'ablation' is missing (Table 3 runs name their ablation and setting)")
        v["run_dir"] = field(obj, "run_dir", where, "str", optional=v["status"] != "done")
        v["archive"] = field(obj, "archive", where, "str", optional=True)
        v["extra"] = field(obj, "extra", where, "dict", optional=True)
        v["model_args"] = field(obj, "model_args", where, "dict", optional=True)
        if v["status"] == "failed":  # may be empty (a job that died without output), but must be there
            error = obj.get("error", MISSING)
            if not isinstance(error, str):
                raise ValueError(
                    f"{where}: field 'error' must be a string (the last lines of the failure), got "
                    f"{'nothing' if error is MISSING else short(error)}"
                )
            v["error"] = error
        elif v["status"] in ("unknown", "stale"):  # why: the queue command that failed / the spec keys that differ
            v["error"] = obj["error"] if isinstance(obj.get("error"), str) else None
        if v["status"] == "done":
            v.update(_done_fields(obj, where, version))
        return cls(**v)


# Schema 1 let grid files name Table 3's ablations and settings their own way, and the tables translated; since
# schema 2 a record uses the names of results/paper/table3.csv, and only records of schema 1 are translated.
V1_ABLATIONS = {"pretrain_epochs": "epochs", "pretraining_epochs": "epochs", "mask": "mask_ratio", "dpr": "drop_path"}
V1_ABLATIONS |= {"depth": "decoder_depth"}
V1_SETTINGS = {("multi_scale", "last_only"): "false", ("multi_scale", "last"): "false", ("multi_scale", "all"): "true"}


def _upgrade_v1(obj: dict[str, Any]) -> dict[str, Any]:
    """A schema-1 record with its ablation and setting under the paper's names."""
    ablation = obj.get("ablation")
    if not isinstance(ablation, str):
        return obj
    ablation = V1_ABLATIONS.get(ablation, ablation)
    setting = obj.get("setting")
    if isinstance(setting, str):
        setting = V1_SETTINGS.get((ablation, setting.strip().lower()), setting)
    return {**obj, "ablation": ablation, "setting": setting}


def _upgrade_v2(obj: dict[str, Any]) -> dict[str, Any]:
    """A record of schema 1 or 2 in schema 3's terms: `size` is `size_key`. Its `variant` is kept as written: a
    proxy run of then named the full-size ladder it shrinks, and the record alone cannot say which proxy (its input
    size does not fix the model); `hiera-study collect` renames it from the grid, whose spec it matched."""
    obj = dict(obj)
    if "size" in obj and "size_key" not in obj:
        obj["size_key"] = obj.pop("size")
    return obj


def _done_fields(obj: dict[str, Any], where: str, version: str) -> dict[str, Any]:
    """The numbers and conditions of a done run."""
    v: dict[str, Any] = {"top1": field(obj, "metrics.top1", where, "number", low=0, high=100)}
    for name in ("top5", "best_top1"):
        v[name] = field(obj, f"metrics.{name}", where, "number", optional=True, low=0, high=100)
    v["mae_loss"] = field(obj, "metrics.mae_loss", where, "number", optional=True)
    v["input_size"] = sizes(obj, "input_size", where)
    v["params_m"] = field(obj, "params_m", where, "number", low=0)
    v["gmacs"] = field(obj, "gmacs", where, "number", low=0)
    present(obj, "epochs.pretrain", where, "null for runs without pretraining")
    v["pretrain_epochs"] = field(obj, "epochs.pretrain", where, "int", optional=True)
    v["finetune_epochs"] = field(obj, "epochs.finetune", where, "int")
    v["pretrain_samples"] = field(obj, "train_samples.pretrain", where, "int", optional=True)
    v["finetune_samples"] = field(obj, "train_samples.finetune", where, "int", optional=True)
    v["eval_samples"] = field(obj, "eval_samples", where, "int", optional=True)
    v["precision"] = field(obj, "precision", where, "str")
    if version != RUN_SCHEMAS[0] or isinstance(get(obj, "batch_size"), dict):  # per phase (always since schema 2)
        v["pretrain_batch"] = field(obj, "batch_size.pretrain", where, "int", optional=True)
        v["finetune_batch"] = field(obj, "batch_size.finetune", where, "int")
    else:  # schema 1 also allowed one int: the batch of the last phase
        v["finetune_batch"] = field(obj, "batch_size", where, "int")
    v["world_size"] = field(obj, "world_size", where, "int", optional=True, low=1)
    v["wall_s"] = field(obj, "wall_s", where, "number", low=0)
    v["env"] = field(obj, "env", where, "dict")
    field(obj, "env.date", where, "str")
    field(obj, "env.device", where, "str")
    field(obj, "env.cpu_threads", where, "int", optional=True)
    field(obj, "env.git_sha", where, "str", optional=True)
    field(obj, "env.git_dirty", where, "bool", optional=True)
    # paths relative to the run's files (records of before they were saved have none)
    v["predictions"] = field(obj, "predictions", where, "str", optional=True)
    v["labels"] = field(obj, "labels", where, "str", optional=True)
    return v


def run_record_path(run_dir: Path) -> Path | None:
    """The record file of a finished run directory (`record.json`, or schema 1's `result.json`), else None."""
    for name in (RUN_RECORD, RUN_RECORD_V1):
        if (Path(run_dir) / name).is_file():
            return Path(run_dir) / name
    return None


def write_run_record(run_dir: Path, record: RunRecord) -> None:
    """`<run dir>/record.json`, atomically: its presence means the run is finished."""
    atomic_write_text(Path(run_dir) / RUN_RECORD, _dump(record.to_json()))


def read_run_record(path: Path) -> RunRecord:
    """A run directory's record (`path`: the directory or its record file); `run_dir` defaults to its folder."""
    return read_run_record_json(path)[0]


def read_run_record_json(path: Path) -> tuple[RunRecord, dict[str, Any]]:
    """A run directory's record, validated, and the JSON object as written (`collect` copies that one, so a record
    keeps its schema version and every field it has)."""
    path = Path(path)
    if path.is_dir():
        found = run_record_path(path)
        if found is None:
            raise ValueError(f"{path}: no run record ({RUN_RECORD}); the run has not finished")
        path = found
    obj = json_object(path)
    return RunRecord.from_json({"run_dir": str(path.parent), **obj}, display_path(path)), obj


def run_records_text(lines: Iterable[RunRecord | dict[str, Any]]) -> str:
    """A `<grid>.jsonl` file's text: one record per line (a dict: a line kept verbatim from an older file)."""
    return "".join(json.dumps(r.to_json() if isinstance(r, RunRecord) else r, sort_keys=True) + "\n" for r in lines)
