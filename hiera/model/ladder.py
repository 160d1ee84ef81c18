"""Paper Table 1 as data: the MViTv2 -> Hiera ladder, for every size of Table 2, for images and video.

Each step is the previous step with the fields in `changes` replaced. Rows (a)-(f) each change exactly one
field, the one the paper names. The step `mae` stands for the paper's group header "Hiera-L MAE" between the
supervised baseline and row (a): the model moves to the MAE setting, which needs separate-and-pad (paper
Fig. 4d) and, in the Hiera code base, averages before the final norm and widens channels in attention. The
paper reports no numbers for it (it calls rel-pos under MAE "too complex"); we keep it as its own step.

Choices the paper leaves open, recorded here:
- The supervised baseline at size L is the *released* MViTv2-L: channels double in the MLP of a stage's last
  block (DIM_MUL_IN_ATT False), 217.99M params / 43.87 GMACs, the 218M of the paper's Table 1/8 and timm's
  `mvitv2_large`. From step `mae` on, channels double in attention as in Hiera-L (213.74M at row f).
  Smaller MViTv2 sizes already expand in attention, so for them the field does not change.
- Every size's baseline uses that Hiera size's hierarchy (widths, heads, depths), so the ladder isolates the
  six simplifications. For S, B and L this is exactly MViTv2-S/B/L; MViTv2-T (depths 1-2-5-2) and the
  MViTv2 paper models are registered separately as `mvitv2_*_224`.
- Video baselines use MViTv2's Kinetics settings: 3x3x3 pooling kernels, adaptive KV stride (1, 8, 8)
  (8, 4, 2, 1 over the stages, so rows c-e keep KV pooling in stages 1-3), decomposed spatial + temporal
  relative positions. No cls token anywhere (SlowFast's K400 MViTv2 has one; timm's image MViTv2 has none).

Beyond the paper, `EXTENSIONS` continue the ladder after row f (images only; `extended_ladder`):
- g: absolute-window position embedding (Bolya et al., "Window Attention is Bugged", ICLR 2024, arXiv
  2311.05613): Hiera's learned absolute table is replaced by a 14x14 global table, bicubically resized to the
  token grid, plus an 8x8 (mask-unit) window table tiled over it. The paper's fix for Hiera's resolution
  transfer: no table is tied to the training resolution. Its released models (timm `hiera_small_abswin_256`,
  `hiera_base_abswin_256`) change more than the embedding (layer scale 1e-5; the small one also drops the
  widening projection of the skip path); those are registered under timm's names (`ABSWIN_256`), not as step g.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hiera.model.config import ModelConfig


@dataclass(frozen=True)
class Size:
    label: str  # the paper's name: T, S, B, B+, L, H
    embed_dim: int
    num_heads: int
    stages: tuple[int, ...]


# Paper Table 2 (channels 1x-8x embed_dim, heads 1x-8x num_heads).
SIZES: dict[str, Size] = {
    "tiny": Size("T", 96, 1, (1, 2, 7, 2)),
    "small": Size("S", 96, 1, (1, 2, 11, 2)),
    "base": Size("B", 96, 1, (2, 3, 16, 3)),
    "base_plus": Size("B+", 112, 2, (2, 3, 16, 3)),
    "large": Size("L", 144, 2, (2, 6, 36, 4)),
    "huge": Size("H", 256, 4, (2, 6, 36, 4)),
}

# The MViTv2 paper's image models (facebookresearch/mvit configs; timm `mvitv2_*`, no cls token).
MVITV2_SIZES: dict[str, Size] = {
    "tiny": Size("T", 96, 1, (1, 2, 5, 2)),
    "small": Size("S", 96, 1, (1, 2, 11, 2)),
    "base": Size("B", 96, 1, (2, 3, 16, 3)),
    "large": Size("L", 144, 2, (2, 6, 36, 4)),
}

# Input settings per modality: the official Hiera factories `*_224` and `*_16x224`.
RESOLUTIONS: dict[str, dict[str, Any]] = {
    "224": {},  # ModelConfig defaults are the image settings
    "16x224": dict(
        input_size=(16, 224, 224),
        q_stride=(1, 2, 2),
        mask_unit_size=(1, 8, 8),
        patch_kernel=(3, 7, 7),
        patch_stride=(2, 4, 4),
        patch_padding=(1, 3, 3),
        num_classes=400,
        kv_stride=(1, 8, 8),
    ),
}

# MViTv2 with all its bells and whistles (the supervised baseline's switches).
MVITV2: dict[str, Any] = dict(
    pos_embed="rel",
    pool_op="conv",
    stride1_pool=True,
    pool_kernel="overlap",
    attn_residual=True,
    kv_mode="pool",
    separate_and_pad=False,
    head_order="norm_mean",
)


@dataclass(frozen=True)
class Step:
    id: str  # the paper's row id (sup, a-f) or `mae` for the header step
    slug: str  # variant-name suffix
    title: str  # Table 1 wording
    changes: dict[str, Any] = field(default_factory=dict)


LADDER: tuple[Step, ...] = (
    Step("sup", "sup_mvitv2", "MViTv2, supervised"),
    Step(
        "mae",
        "mae_rel_pos",
        "+ MAE, rel pos kept (header; not a paper row)",
        dict(separate_and_pad=True, head_order="mean_norm", dim_expand="attn"),
    ),
    Step("a", "a_abs_pos", "replace rel pos with absolute", dict(pos_embed="abs")),
    Step("b", "b_max_pool", "replace convs with maxpools", dict(pool_op="max")),
    Step("c", "c_no_stride1_pool", "delete stride=1 maxpools", dict(stride1_pool=False)),
    Step("d", "d_kernel_eq_stride", "set kernel size equal to stride", dict(pool_kernel="stride")),
    Step("e", "e_no_attn_residual", "delete q attention residuals", dict(attn_residual=False)),
    Step("f", "", "replace kv pooling with MU attn (= Hiera)", dict(kv_mode="mask_unit")),
)
STEP_IDS: tuple[str, ...] = tuple(s.id for s in LADDER)


def baseline(size: str, res: str) -> ModelConfig:
    """The supervised MViTv2 baseline with Hiera-`size`'s hierarchy at resolution `res`."""
    s = SIZES[size]
    return ModelConfig(
        embed_dim=s.embed_dim,
        num_heads=s.num_heads,
        stages=s.stages,
        **RESOLUTIONS[res],
        **MVITV2,
        dim_expand="mlp" if size == "large" else "attn",
    )


def ladder(size: str, res: str) -> list[tuple[Step, ModelConfig]]:
    """Every step of the ladder with its cumulative config, baseline first, Hiera last."""
    cfg = baseline(size, res)
    out = []
    for step in LADDER:
        cfg = cfg.replace(**step.changes)
        out.append((step, cfg))
    return out


def mvitv2(size: str, res: str = "224") -> ModelConfig:
    """An MViTv2 paper model (its own depths), no cls token."""
    s = MVITV2_SIZES[size]
    return ModelConfig(
        embed_dim=s.embed_dim,
        num_heads=s.num_heads,
        stages=s.stages,
        **RESOLUTIONS[res],
        **MVITV2,
        dim_expand="mlp" if size == "large" else "attn",
    )


# ---- beyond the paper ------------------------------------------------------------------------------------------
# Steps after row f, each changing only what its source changes; the variant names reuse the Table-1 scheme
# (`hiera_<size>_224.<slug>`). Table-1 tables, figures and training grids use LADDER / STEP_IDS only.
EXTENSIONS: tuple[Step, ...] = (
    Step(
        "g",
        "g_abs_win",
        "+ absolute-window position embedding (beyond the paper)",
        dict(pos_embed="abs_win", global_pos_size=(14, 14)),
    ),
)
EXTENDED_STEP_IDS: tuple[str, ...] = STEP_IDS + tuple(s.id for s in EXTENSIONS)
BEYOND_PAPER: tuple[str, ...] = tuple(s.id for s in EXTENSIONS)

# timm's absolute-window Hiera models at 256 px (timm 1.0 `hiera_small_abswin_256`, `hiera_base_abswin_256`):
# Hiera-S/B with the step-g embedding plus the settings of their release. Registered under timm's names.
ABSWIN_256: dict[str, dict[str, Any]] = {
    "small": dict(global_pos_size=(16, 16), layer_scale=1e-5, expand_skip="max_avg"),
    "base": dict(global_pos_size=(14, 14), layer_scale=1e-5),
}


def extended_ladder(size: str, res: str) -> list[tuple[Step, ModelConfig]]:
    """`ladder` followed by the `EXTENSIONS` (images only: the absolute-window embedding is defined in 2-D)."""
    out = ladder(size, res)
    if out[-1][1].modality != "image":
        return out
    cfg = out[-1][1]
    for step in EXTENSIONS:
        cfg = cfg.replace(**step.changes)
        out.append((step, cfg))
    return out


def abswin_256(size: str) -> ModelConfig:
    """timm's `hiera_<size>_abswin_256`: step g at 256x256 with its release's layer scale and skip path."""
    g = extended_ladder(size, "224")[-1][1]
    return g.replace(input_size=(256, 256), **ABSWIN_256[size])
