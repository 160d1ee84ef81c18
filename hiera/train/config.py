"""What one training phase needs besides the model and the recipe: data, batch, precision, seed, checkpoints.

A phase is one of (paper §3-§4):
- `mae`: masked-autoencoder pretraining of a ladder variant (sparse encoder, `hiera/model/mae.py`);
- `finetune`: classification starting from an MAE encoder (`init` = the MAE phase's `checkpoints/model.pth`);
- `supervised`: classification from scratch (the MViTv2 baseline row, Appendix B).

`TrainConfig` is frozen and serialises to the run's `config.json`; a restart must resolve to the same JSON.
`model_args` / `recipe_args` hold `key=value` overrides of `ModelConfig` / `Recipe` fields, validated here.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any

from hiera.model.config import ModelConfig, check_keys, coerce, parse_overrides
from hiera.model.masking import mae_q_pool
from hiera.model.registry import get_variant
from hiera.recipes import RECIPES, Recipe, recipe

PHASES = ("mae", "finetune", "supervised")  # in training order: the phase directories of a run
PRECISIONS = ("fp32", "bf16", "fp16")
DATASETS = ("fashion-mnist", "moving-fashion-mnist", "imagenet", "kinetics")
NUM_CLASSES = {"fashion-mnist": 10, "moving-fashion-mnist": 10, "imagenet": 1000, "kinetics": 400}


def with_size_key(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of a config or spec dict under today's names: `size` was renamed `size_key` (run schema 3)."""
    data = dict(data)
    if "size" in data and "size_key" not in data:
        data["size_key"] = data.pop("size")
    return data


@dataclass(frozen=True)
class TrainConfig:
    phase: str  # mae | finetune | supervised
    model: str  # a registered variant (`hiera-study variants`)
    recipe: str  # a preset of `hiera.recipes.RECIPES`
    size_key: str = "tiny"  # the recipe's size column: a SIZES key (tiny ... huge) of `hiera/model/ladder.py`
    pretrain_epochs: int | None = None  # selects the recipe's "a / b" column
    dataset: str = "fashion-mnist"
    data_path: str | None = None  # ImageNet root (train/, val/) or a folder with Kinetics train.csv / val.csv
    batch_size: int = 64  # global batch (split over DDP ranks); the recipe's lr is scaled to it
    precision: str = "fp32"  # autocast dtype on the training step; fp16 uses a gradient scaler
    device: str = "auto"  # auto (cuda when present) | cpu | cuda
    seed: int = 0
    workers: int = 0  # DataLoader worker processes per rank
    train_samples: int | None = None  # a fixed, seeded subset of the training split (proxy runs)
    eval_samples: int | None = None
    ckpt_every: int = 0  # optimizer steps between checkpoints; 0 = at the end of every epoch only
    log_every: int = 20  # steps between metrics lines
    tensorboard: bool = True  # also write the metrics as TensorBoard events in <run_dir>/tb/ (hiera.train.board)
    init: str | None = None  # weights to start from: an MAE checkpoint (finetune) or any local checkpoint
    decoder_dim: int = 512  # MAE decoder width (depth and heads come from the recipe)
    target: str = "pixel"  # MAE target: pixel | hog
    multi_scale: bool = True  # MAE decoder fuses every stage (official) or the last only (Table 3a)
    frames: int = 16  # video: frames per clip (and the moving-Fashion-MNIST length)
    eval_views: tuple[int, int] = (5, 3)  # video evaluation: temporal x spatial views (Kinetics)
    model_args: dict[str, Any] = field(default_factory=dict)  # ModelConfig overrides
    recipe_args: dict[str, Any] = field(default_factory=dict)  # Recipe overrides

    def __post_init__(self) -> None:
        for name, allowed in (
            ("phase", PHASES),
            ("precision", PRECISIONS),
            ("dataset", DATASETS),
            ("target", ("pixel", "hog")),
            ("device", ("auto", "cpu", "cuda")),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}={getattr(self, name)!r} is not one of {', '.join(allowed)}")
        if self.recipe not in RECIPES:
            raise ValueError(f"unknown recipe {self.recipe!r}; choose one of {', '.join(RECIPES)}")
        for name in ("batch_size", "log_every", "decoder_dim", "frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        if self.ckpt_every < 0:
            raise ValueError(f"ckpt_every={self.ckpt_every} must be >= 0")
        for name in ("train_samples", "eval_samples"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1 (or None for the whole split)")
        if self.dataset in ("imagenet", "kinetics") and not self.data_path:
            raise ValueError(f"dataset={self.dataset} needs data_path=... (see README 'Training on ImageNet/Kinetics')")
        check_keys(self.model_args, ModelConfig)
        hints = typing.get_type_hints(ModelConfig)
        object.__setattr__(self, "model_args", {k: coerce(k, v, hints[k]) for k, v in self.model_args.items()})
        check_keys(self.recipe_args, Recipe)
        kind = self.resolved_recipe().kind
        expected = {"mae": "mae", "finetune": "finetune", "supervised": "supervised"}[self.phase]
        if kind != expected:
            raise ValueError(f"recipe {self.recipe} is a {kind} recipe; phase {self.phase} needs a {expected} recipe")

    def resolved_recipe(self) -> Recipe:
        """The preset at this size with `recipe_args` applied (values validated by `Recipe`)."""
        hints = typing.get_type_hints(Recipe)
        args = {k: coerce(k, v, hints[k]) for k, v in self.recipe_args.items()}
        return recipe(self.recipe, self.size_key, self.pretrain_epochs, **args)

    @property
    def video(self) -> bool:
        return self.dataset in ("moving-fashion-mnist", "kinetics")

    def replace(self, **changes: Any) -> TrainConfig:
        check_keys(changes, type(self))
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def identity(self) -> dict[str, Any]:
        """What the phase computes, to compare a stored config with this one: `to_dict` with the variant's name and
        `model_args` replaced by the model they resolve to (`model_config`). So a model renamed since is the same
        phase: before run schema 3 a proxy was named by the full-size ladder it shrinks plus `model_args`
        (`hiera_tiny_224.b_max_pool` and the 48 px fields), now by its own name (`proxy_tiny_48.b_max_pool`)."""
        data = self.to_dict()
        del data["model"], data["model_args"]
        data["model_config"] = model_config(self).to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """The config of a `to_dict` (also one written before `size` was named `size_key`)."""
        data = with_size_key(data)
        check_keys(data, cls)
        if "eval_views" in data:
            data["eval_views"] = tuple(data["eval_views"])
        return cls(**data)


def model_config(cfg: TrainConfig) -> ModelConfig:
    """The variant's config with the phase's settings and the user's `model_args` (which win)."""
    base = get_variant(cfg.model).config
    rec = cfg.resolved_recipe()
    changes: dict[str, Any] = {"drop_path_rate": rec.drop_path}
    if cfg.phase == "mae":
        changes.update(num_classes=0, q_pool=mae_q_pool(base.q_pool))  # `model_args` may still set q_pool
    else:
        changes.update(num_classes=NUM_CLASSES[cfg.dataset], head_dropout=rec.dropout)
    changes.update(cfg.model_args)
    mc = base.replace(**changes)
    if (mc.modality == "video") != cfg.video:
        raise ValueError(
            f"model {cfg.model} takes {mc.modality} input but dataset {cfg.dataset} is "
            f"{'video' if cfg.video else 'images'}; pick a *_16x224 variant for video"
        )
    return mc


def parse_train_overrides(items: typing.Sequence[str]) -> dict[str, Any]:
    """`key=value` for TrainConfig, `model.key=value` for ModelConfig, `recipe.key=value` for Recipe."""
    plain: list[str] = []
    model: list[str] = []
    rec: list[str] = []
    for item in items:
        key = item.partition("=")[0]
        (model if key.startswith("model.") else rec if key.startswith("recipe.") else plain).append(
            item.removeprefix("model.").removeprefix("recipe.")
        )
    out = parse_overrides(plain, TrainConfig) if plain else {}
    if model:
        out["model_args"] = parse_overrides(model, ModelConfig)
    if rec:
        out["recipe_args"] = parse_overrides(rec, Recipe)
    return out
