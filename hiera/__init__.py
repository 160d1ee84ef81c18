"""hiera-study: the MViTv2 -> Hiera ablation of Ryali et al. (ICML 2023, arXiv 2306.00989), reproducible.

    import hiera
    model = hiera.build_model("hiera_base_224")                      # the official Hiera-B
    model = hiera.build_model("hiera_large_224.c_no_stride1_pool")   # Table 1, row (c), at size L
    model = hiera.build_model("hiera_base_224", checkpoint="hiera_base_224.pth", drop_path_rate=0.1)
    hiera.list_variants("hiera_large_224*")                           # the Table-1 ladder at size L (+ steps g, h)
    model = hiera.build_model("hiera_base_224.g_abs_win", input_size=(448, 448))  # beyond the paper: abs-win pos

Note: the official `hiera-transformer` package also imports as `hiera`; do not install both in one environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hiera.model.checkpoint import checkpoint_num_classes, load_checkpoint
from hiera.model.config import ModelConfig
from hiera.model.ladder import LADDER, SIZES
from hiera.model.network import HierarchicalViT
from hiera.model.registry import Variant, get_variant, list_variants

__all__ = [
    "LADDER",
    "SIZES",
    "HierarchicalViT",
    "ModelConfig",
    "Variant",
    "build_model",
    "get_variant",
    "list_variants",
]


def build_model(
    name_or_config: str | ModelConfig, checkpoint: str | Path | None = None, **overrides: Any
) -> HierarchicalViT:
    """Build a registered variant (or a `ModelConfig`), with field overrides and optional local weights.

    Args:
        name_or_config: a registered name (`hiera-study variants`) or a `ModelConfig`.
        checkpoint: a local file in the official Hiera/MViTv2 format (`model_state`) or a timm state dict.
            Its classifier size is adopted unless `num_classes` is overridden. Nothing is downloaded.
            Built at another `input_size` than the variant's, the checkpoint's position tables (absolute,
            absolute-window, MViTv2's relative) are resized to the new token grid while loading.
        **overrides: `ModelConfig` fields, e.g. `drop_path_rate=0.1`, `attn_impl="math"`, `num_classes=10`,
            `input_size=(256, 256)` (a size the mask-unit grid cannot tile is a one-line error naming the nearest).
    """
    cfg = get_variant(name_or_config).config if isinstance(name_or_config, str) else name_or_config
    if checkpoint is not None and "num_classes" not in overrides:
        classes = checkpoint_num_classes(checkpoint)
        if classes is not None:
            overrides["num_classes"] = classes
    model = HierarchicalViT(cfg.replace(**overrides))
    if checkpoint is not None:
        # the checkpoint is taken to be trained at the size the variant (or config) was given at
        load_checkpoint(model, checkpoint, source_grid=cfg.token_grid)
    return model
