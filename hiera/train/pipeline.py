"""One ablation run end to end: MAE pretraining -> finetuning -> evaluation, or supervised training (paper Table 1).

    <run_dir>/mae/          the pretraining phase (a `PhaseDir`, `hiera/train/loop.py`)
    <run_dir>/finetune/     finetuning from `mae/checkpoints/model.pth`   (or <run_dir>/supervised/)
    <run_dir>/record.json   the run record (`hiera.records.RunRecord`, results/README.md), written last

`spec.json` (written first) names the run a directory holds: another spec is refused, finished or not
(`spec_diff`, which `hiera-study status` also uses to show a run as stale). `.lock` keeps one live writer.
Each phase resumes on its own, so a run interrupted anywhere (a SLURM requeue, a kill) continues where it
stopped; a finished phase is not redone. The record carries the conditions: dataset (and whether it is an
embedded proxy), hardware and software (`env`), precision, batch, epochs, params and GMACs of the classifier,
and where the per-example test predictions are (`predictions`, `labels`: paths relative to the run directory).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hiera.env import collect_env
from hiera.files import Lock, atomic_write_text, clean_temps
from hiera.model.flops import load_stats, model_stats
from hiera.records.run import PROXY_DATASETS, RunRecord, read_run_record, run_record_path, write_run_record
from hiera.train.config import TrainConfig, model_config, with_size_key
from hiera.train.loop import train
from hiera.train.phase_dir import as_json, check_dir, dict_diff, name_keys


@dataclass(frozen=True)
class RunSpec:
    """A run of a grid: which phases, and what the tables need to place its numbers."""

    grid: str  # the grid (ablations/<grid>.py) or "adhoc"
    run: str  # id inside the grid, e.g. "hiera_large_224.a_abs_pos/seed0"
    variant: str  # the registered variant the run trains
    step: str | None  # Table-1 row (sup, mae, a-f) or None
    size_key: str  # a SIZES key (tiny ... huge), or "proxy" for the embedded-data models
    table: str  # table1 | table2 | table3 | appendix_b | smoke | demo | adhoc
    train: TrainConfig  # finetune or supervised phase
    pretrain: TrainConfig | None = None  # the MAE phase (None for supervised runs)
    seed: int = 0
    ablation: str | None = None  # Table 3: which ablation (e.g. "mask_ratio") ...
    setting: str | None = None  # ... and this run's setting (e.g. "0.6")
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.pretrain is not None and self.pretrain.phase != "mae":
            raise ValueError(f"{self.run}: the pretraining phase must be an MAE phase, got {self.pretrain.phase}")
        if self.train.phase == "mae":
            raise ValueError(f"{self.run}: the second phase must be finetune or supervised")
        if (self.pretrain is None) != (self.train.phase == "supervised"):
            raise ValueError(f"{self.run}: finetuning needs an MAE phase and supervised training has none")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["train"] = self.train.to_dict()
        data["pretrain"] = self.pretrain.to_dict() if self.pretrain else None
        return data

    def identity(self) -> dict[str, Any]:
        """What the run computes, to compare a stored spec with this one: `to_dict` without the variant's name and
        with each phase's `TrainConfig.identity` (its model as the config the name resolves to)."""
        data = self.to_dict()
        del data["variant"]
        data["train"] = self.train.identity()
        data["pretrain"] = self.pretrain.identity() if self.pretrain else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSpec:
        """The spec of a `to_dict` (also one written before `size` was named `size_key`)."""
        data = with_size_key(data)
        data["train"] = TrainConfig.from_dict(data["train"])
        data["pretrain"] = TrainConfig.from_dict(data["pretrain"]) if data.get("pretrain") else None
        return cls(**data)


def spec_record(spec: RunSpec, status: str, modality: str, run_dir: Path, **fields: Any) -> RunRecord:
    """The record of `spec`'s run in `run_dir` with `status`: the spec's fields, and `fields` (numbers, error)."""
    return RunRecord(
        grid=spec.grid,
        run=spec.run,
        status=status,
        variant=spec.variant,
        step=spec.step,
        size_key=spec.size_key,
        modality=modality,
        dataset=spec.train.dataset,
        proxy=spec.train.dataset in PROXY_DATASETS,
        seed=spec.seed,
        table=spec.table,
        ablation=spec.ablation,
        setting=spec.setting,
        run_dir=str(run_dir),
        model_args=as_json(spec.train.model_args) or None,  # as the file reads back: lists, not tuples
        **fields,
    )


def spec_diff(run_dir: Path, spec: RunSpec) -> list[str]:
    """The dotted keys that differ between `<run_dir>/spec.json` and `spec` (sorted; empty if equal or absent).

    Both sides are compared as `RunSpec.identity`: a field added to RunSpec or TrainConfig since the run started
    counts with its default, and a model by the config its name resolves to, so a renamed variant (the proxies
    before run schema 3) is not a difference. A spec.json that cannot be parsed (or names a field or model this
    version no longer has) is `["spec.json unreadable"]`.
    """
    path = Path(run_dir) / "spec.json"
    if not path.is_file():
        return []
    try:
        stored = RunSpec.from_dict(json.loads(path.read_text())).identity()
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return ["spec.json unreadable"]
    return dict_diff(stored, spec.identity())


def _main_process() -> bool:
    """Rank 0, or a single process: the one writer of the run directory under DDP (torchrun or SLURM tasks)."""
    if "RANK" in os.environ:
        return int(os.environ["RANK"]) == 0
    return int(os.environ.get("SLURM_NTASKS", "1")) <= 1 or int(os.environ.get("SLURM_PROCID", "0")) == 0


def run_pipeline(spec: RunSpec, run_dir: str | Path, progress: bool = True, lock_wait_s: float = 0.0) -> RunRecord:
    """Run (or resume) every phase of `spec` in `run_dir` and write its record; returns the record.

    The main process holds `<run_dir>/.lock` throughout (a second live writer is refused with one line, or
    waited for up to `lock_wait_s` seconds). `spec.json` is written at the start and a run directory holding
    another spec is refused, finished or not, so a record always belongs to the spec it names.
    """
    run_dir = check_dir(run_dir)
    main = _main_process()
    with Lock(run_dir / ".lock", f"run directory {run_dir}", lock_wait_s) if main else contextlib.nullcontext():
        diff = spec_diff(run_dir, spec)
        if diff:
            raise ValueError(
                f"{run_dir} holds another run (spec.json differs in {name_keys(diff)}); use another run "
                "directory, or move this one away to rerun it with this spec"
            )
        finished = run_record_path(run_dir)  # also a run finished before records had their own name
        if finished is not None:
            return read_run_record(finished)
        if main:  # under the lock: temporary files left here by a killed write belong to no live writer
            clean_temps(run_dir)
            atomic_write_text(
                run_dir / "spec.json", json.dumps(spec.to_dict(), indent=1, sort_keys=True, default=list) + "\n"
            )
        return _run_phases(spec, run_dir, progress, main, lock_wait_s)


def _run_phases(spec: RunSpec, run_dir: Path, progress: bool, main: bool, lock_wait_s: float) -> RunRecord:
    """The phases of `spec` (each resumes or returns its finished result) and the run record."""

    started = time.perf_counter()
    pre = None
    if spec.pretrain is not None:
        pre = train(spec.pretrain, run_dir / "mae", progress, lock_wait_s)
        model_path = str(run_dir / "mae" / "checkpoints" / "model.pth")
        phase_cfg = spec.train.replace(init=model_path)
        phase_dir = run_dir / "finetune"
    else:
        phase_cfg, phase_dir = spec.train, run_dir / "supervised"
    fin = train(phase_cfg, phase_dir, progress, lock_wait_s)
    mc = model_config(phase_cfg)
    params, gmacs = model_stats(mc, load_stats())
    # Per-example test predictions for the tables' paired statistics, relative to run_dir (so a copied or moved
    # run directory stays whole); absent for a phase finished by a version that did not write them.
    files = {name: phase_dir / f"{name}.npy" for name in ("predictions", "labels")}
    saved = {name: str(path.relative_to(run_dir)) for name, path in files.items() if path.is_file()}
    record = spec_record(
        spec,
        "done",
        mc.modality,
        run_dir,
        top1=fin.top1,
        top5=fin.top5,
        best_top1=fin.best_top1,
        mae_loss=pre.final_loss if pre else None,
        input_size=tuple(mc.input_size),
        params_m=round(params, 4),
        gmacs=round(gmacs, 4),
        pretrain_epochs=pre.epochs if pre else None,
        finetune_epochs=fin.epochs,
        pretrain_samples=pre.train_samples if pre else None,
        finetune_samples=fin.train_samples,
        eval_samples=fin.eval_samples,
        precision=spec.train.precision,
        pretrain_batch=pre.batch_size if pre else None,
        finetune_batch=fin.batch_size,
        world_size=fin.world_size,
        wall_s=round(time.perf_counter() - started, 2),
        env=collect_env(),
        predictions=saved.get("predictions") if len(saved) == 2 else None,
        labels=saved.get("labels") if len(saved) == 2 else None,
        extra=spec.extra or None,
    )
    if main:  # one writer under DDP
        write_run_record(run_dir, record)
    return record
