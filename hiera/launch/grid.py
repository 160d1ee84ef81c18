"""Grids: a paper experiment as a list of runs (variant x recipe x seed) with the resources each run needs.

A grid is one Python file in `ablations/` exposing `runs(ctx: GridContext) -> list[GridRun]` and a docstring that
states the paper table, the expected numbers, the GPU-hours and the exact command (big_vision style). Cluster
specifics (partition, account, data paths) never appear in grid files: they come from the cluster profile or
flags through `GridContext`. Each run's directory is `<root>/<grid>/<run id>`, deterministic, so relaunching a
grid finds its earlier work.
"""

from __future__ import annotations

import importlib.util
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from hiera.model.flops import load_stats, model_stats
from hiera.model.ladder import LADDER, ladder_name
from hiera.model.registry import get_variant
from hiera.recipes import recipe
from hiera.train.config import TrainConfig
from hiera.train.pipeline import RunSpec

IMAGENET_EPOCH = 1_281_167  # ImageNet-1K training images
KINETICS_EPOCH = 240_436  # Kinetics-400 training clips (the usual available copy; the paper does not say)


@dataclass(frozen=True)
class Resources:
    """What one job of a run asks SLURM for (per attempt: long runs requeue on timeout and resume)."""

    nodes: int = 1
    gpus_per_node: int = 8  # 0 = a CPU job (smoke grids)
    hours: float = 48.0  # time limit of one attempt
    cpus_per_task: int | None = None  # default: the cluster profile's cpus_per_gpu (1 for a CPU job)

    def __post_init__(self) -> None:
        if self.nodes < 1 or self.gpus_per_node < 0 or self.hours <= 0:
            raise ValueError(f"invalid resources {self}: nodes >= 1, gpus_per_node >= 0, hours > 0")

    @property
    def tasks_per_node(self) -> int:
        return max(1, self.gpus_per_node)  # one process per GPU (DDP)

    @property
    def timeout_min(self) -> int:
        return max(1, round(self.hours * 60))


@dataclass(frozen=True)
class GridRun:
    spec: RunSpec
    resources: Resources
    gpu_hours: float = 0.0  # estimate for the whole run (all attempts), see `estimate_gpu_hours`


@dataclass(frozen=True)
class GridContext:
    """What a grid may depend on: seeds, and where the data lives on this cluster."""

    seeds: int = 1
    imagenet: str = field(default_factory=lambda: os.environ.get("HIERA_IMAGENET", "/datasets/imagenet"))
    kinetics: str = field(default_factory=lambda: os.environ.get("HIERA_KINETICS", "/datasets/kinetics400"))
    precision: str = "bf16"


def load_grid(path: str | Path) -> tuple[str, ModuleType]:
    """Import a grid file; returns (grid name = file stem, module). One-line errors for a bad file."""
    path = Path(path)
    if not path.is_file() or path.suffix != ".py":
        raise FileNotFoundError(f"grid file {path} does not exist; grids are the .py files in ablations/")
    spec = importlib.util.spec_from_file_location(f"hiera_grid_{path.stem}", path)
    assert spec is not None  # a .py file: always a source loader
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # noqa: BLE001 - report any import failure of a user file in one line
        raise ValueError(f"grid file {path} failed to import: {type(e).__name__}: {e}") from None
    if not callable(getattr(module, "runs", None)):
        raise ValueError(f"grid file {path} defines no runs(ctx) function")
    return path.stem, module


def grid_runs(path: str | Path, ctx: GridContext) -> tuple[str, list[GridRun]]:
    name, module = load_grid(path)
    runs = list(module.runs(ctx) or [])
    if not runs:  # later steps (the plan's column widths, collect) need at least one run, and so does the user
        raise ValueError(
            f"grid {name} ({path}) has no runs: its runs(ctx) returned an empty list for {ctx}; check "
            "the grid file (and --seeds)"
        )
    if not all(isinstance(r, GridRun) for r in runs):
        bad = next(r for r in runs if not isinstance(r, GridRun))
        raise ValueError(f"grid {name} ({path}): runs(ctx) must return GridRun objects, got {type(bad).__name__}")
    ids = [r.spec.run for r in runs]
    if len(set(ids)) != len(ids):
        raise ValueError(f"grid {name} has duplicate run ids")
    return name, runs


def estimate_gpu_hours(
    variant: str, epochs: int, samples: int, mae: bool, peak_tflops: float = 312.0, mfu: float = 0.3
) -> float:
    """GPU-hours of a phase on an A100-class GPU (bf16 dense peak 312 TFLOP/s) at `mfu` model FLOP utilisation.

    FLOPs = 3 (forward + backward) x 2 x GMACs x samples x epochs; MAE encodes the kept 40% (images, 10% video)
    of tokens, plus a light decoder: counted as 0.5x (images) / 0.25x (video) of the dense GMACs. An estimate
    for planning, not a measurement: `hiera-study bench --mode train|mae` measures your hardware.
    """

    v = get_variant(variant)
    _, gmacs = model_stats(v.config, load_stats())
    if mae:
        gmacs *= 0.5 if v.modality == "image" else 0.25
    flops = 3 * 2 * gmacs * 1e9 * samples * epochs
    return flops / (peak_tflops * 1e12 * mfu) / 3600


def paper_run(
    grid: str,
    table: str,
    ctx: GridContext,
    variant: str,
    size: str,
    step: str | None,
    seed: int,
    pretrain: dict[str, Any] | None = None,
    finetune: dict[str, Any] | None = None,
    supervised: bool = False,
    ablation: str | None = None,
    setting: str | None = None,
    gpus: int = 64,
    tag: str = "",
) -> GridRun:
    """A run of the paper's protocol on ImageNet-1K (image variants) or Kinetics-400 (video variants).

    `pretrain` / `finetune`: `TrainConfig` fields and `recipe_args` for the two phases (defaults: the paper's
    recipes at Table 1/3's 400 / 800 pretraining epochs). The global batch is the recipe's (lr unscaled).
    """

    video = get_variant(variant).modality == "video"
    data: dict[str, Any] = dict(
        dataset="kinetics" if video else "imagenet",
        data_path=ctx.kinetics if video else ctx.imagenet,
        size_key=size,
        seed=seed,
        precision=ctx.precision,
        ckpt_every=1000,
        log_every=50,
        workers=8,
    )
    prefix = "k400" if video else "in1k"
    epoch_samples = KINETICS_EPOCH if video else IMAGENET_EPOCH
    hours = 0.0
    pre_cfg = None
    pre_args = dict(pretrain or {})
    pre_epochs = pre_args.pop("pretrain_epochs", 800 if video else 400)
    if not supervised:
        r = recipe(f"{prefix}_mae", size, pre_epochs, **pre_args.get("recipe_args", {}))
        pre_cfg = TrainConfig(
            phase="mae",
            model=variant,
            recipe=f"{prefix}_mae",
            pretrain_epochs=pre_epochs,
            batch_size=r.batch_size,
            **data,
            **{k: v for k, v in pre_args.items()},
        )
        hours += estimate_gpu_hours(variant, r.epochs, epoch_samples, mae=True)
    ft_args = dict(finetune or {})
    name = f"{prefix}_supervised" if supervised else f"{prefix}_finetune"
    r = recipe(name, size, None if supervised else pre_epochs, **ft_args.get("recipe_args", {}))
    ft_cfg = TrainConfig(
        phase="supervised" if supervised else "finetune",
        model=variant,
        recipe=name,
        pretrain_epochs=None if supervised else pre_epochs,
        batch_size=r.batch_size,
        **data,
        **ft_args,
    )
    hours += estimate_gpu_hours(variant, r.epochs, epoch_samples, mae=False)
    spec = RunSpec(
        grid=grid,
        run=f"{variant}{tag}/seed{seed}",
        variant=variant,
        step=step,
        size_key=size,
        table=table,
        train=ft_cfg,
        pretrain=pre_cfg,
        seed=seed,
        ablation=ablation,
        setting=setting,
    )
    per_node = 8
    # One attempt asks for 1.5x the estimated wall time (at least 4 h, at most 48 h); longer runs requeue and resume.
    attempt = min(48.0, max(4.0, math.ceil(1.5 * hours / gpus)))
    return GridRun(
        spec,
        Resources(nodes=max(1, gpus // per_node), gpus_per_node=min(gpus, per_node), hours=attempt),
        round(hours, 1),
    )


def ladder_runs(
    grid: str,
    table: str,
    ctx: GridContext,
    size: str,
    res: str,
    supervised: bool = False,
    baseline: dict[str, Any] | None = None,
    gpus: int = 64,
) -> list[GridRun]:
    """Every Table-1 step of size `size` at `res` ("224" or "16x224"), per seed: the supervised baseline (with
    `baseline` as its finetune settings), then MAE + finetuning per step — or every step supervised
    (Appendix B) when `supervised`."""

    out = []
    for seed in range(ctx.seeds):
        for step in LADDER:
            variant = ladder_name(f"hiera_{size}_{res}", step.slug)
            sup = supervised or step.id == "sup"
            out.append(
                paper_run(
                    grid,
                    table,
                    ctx,
                    variant,
                    size,
                    step.id,
                    seed,
                    supervised=sup,
                    finetune=baseline if step.id == "sup" else None,
                    gpus=gpus,
                )
            )
    return out
