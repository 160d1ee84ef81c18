"""The proxy scale: the Table-1 ladder (and its App. B supervised twin) on the embedded Fashion-MNIST data.

One owner for what the demo (`hiera/demo.py`) and the proxy grids (`ablations/proxy_*.py`) share: the proxy models
(Hiera-T's ladder shrunk to 32 channels and 1-1-2-1 blocks) and the runs of one ladder step. The recipes are the
`proxy_*` presets of `hiera/recipes.py` (chosen by `ablations/proxy_recipe_sweep.py`); a ladder here sets only the
training size and the epochs.

Why 48x48 px: Fashion-MNIST is 28x28, so 48 px loses nothing, and with 4x4-px patches it gives 12x12 tokens: nine
4x4-token mask units per image (at mask ratio 0.6 the MAE keeps ⌊9 × 0.4⌋ = 3, as the official code rounds),
two query poolings (12 -> 6 -> 3 tokens a side, so the last stage still pools inside a mask unit), and it trains
1.6x faster than the 64 px the demo used before (measured with the same recipe and data: row b at 10,000 images,
MAE 3 + finetuning 3 epochs, 74.7% top-1 at 48 px in 159 s vs 74.75% at 64 px in 248 s, one CPU core each).
"""

from __future__ import annotations

from typing import Any

from hiera.model.ladder import LADDER, PROXY_SCALES, ladder_name
from hiera.train.config import TrainConfig
from hiera.train.pipeline import RunSpec

# The proxy models are registered (`proxy_tiny_48[.<slug>]`, `proxy_tiny_8x64[.<slug>]`; their fields:
# `PROXY_SCALES` of `hiera/model/ladder.py`), so a record names the model that ran, not the full-size Hiera-T.
IMAGE_SCALE, VIDEO_SCALE = "tiny_48", "tiny_8x64"
WIDTH = PROXY_SCALES[IMAGE_SCALE].changes["embed_dim"]  # 32 channels at stage 1, both scales
DECODER_DIM = 64  # the MAE decoder's width at this scale (depth and heads: `proxy_mae`)


def ladder_specs(
    grid: str,
    table: str,
    seed: int,
    *,
    mae_epochs: int,
    finetune_epochs: int,
    supervised_epochs: int,
    train_samples: int | None,
    eval_samples: int | None,
    supervised: bool = False,
    video: bool = False,
    width: int = WIDTH,
    device: str = "auto",
    log_every: int = 50,
    prefix: str = "",
    steps: tuple[str, ...] | None = None,
) -> list[RunSpec]:
    """One run per ladder step (sup, the MAE header, a-f, or those in `steps`) and seed, at the proxy scale.

    Rows after `sup` are MAE-pretrained `mae_epochs` and finetuned `finetune_epochs` (Table 1), or, with
    `supervised`, every row trains from scratch `supervised_epochs` (App. B). The baseline trains from scratch either
    way. `train_samples` / `eval_samples`: None is the whole split (60,000 / 10,000 images). Run ids are
    `<prefix><modality>/<step>/seed<seed>`. A `width` other than the scale's is a `model_args` override (the run
    record carries it beside the variant's name).
    """
    modality = "video" if video else "image"
    scale = VIDEO_SCALE if video else IMAGE_SCALE
    common: dict[str, Any] = dict(
        size_key="tiny",
        dataset="moving-fashion-mnist" if video else "fashion-mnist",
        device=device,
        seed=seed,
        train_samples=train_samples,
        eval_samples=eval_samples,
        model_args={} if width == WIDTH else {"embed_dim": width},
        log_every=log_every,
    )
    specs = []
    for step in LADDER:
        if steps is not None and step.id not in steps:
            continue
        variant = ladder_name(f"proxy_{scale}", step.slug)
        if supervised or step.id == "sup":
            pre = None
            fin = TrainConfig(
                phase="supervised",
                model=variant,
                recipe="proxy_supervised",
                recipe_args={"epochs": supervised_epochs},
                **common,
            )
        else:
            pre = TrainConfig(
                phase="mae",
                model=variant,
                recipe="proxy_mae",
                decoder_dim=DECODER_DIM,
                recipe_args={"epochs": mae_epochs},
                **common,
            )
            fin = TrainConfig(
                phase="finetune",
                model=variant,
                recipe="proxy_finetune",
                recipe_args={"epochs": finetune_epochs},
                **common,
            )
        specs.append(
            RunSpec(
                grid=grid,
                run=f"{prefix}{modality}/{step.id}/seed{seed}",
                variant=variant,
                step=step.id,
                size_key="proxy",
                table=table,
                train=fin,
                pretrain=pre,
                seed=seed,
            )
        )
    return specs
