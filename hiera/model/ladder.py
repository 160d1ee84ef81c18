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
  relative positions.
- No ladder step has a class token (`cls_token=False`), although SlowFast's and torchvision's Kinetics MViTv2 have
  one (timm's image MViTv2 has none). Hiera has none and mask-unit attention cannot take one (the token lies in no
  unit), so a baseline with one would make some step flip a second field. `cls_token=True head_order=cls` on
  `hiera_<size>_16x224.sup_mvitv2` adds it; `mvitv2_small_16x224` (`MVITV2_KINETICS`) has it and equals
  torchvision's `mvit_v2_s` (tests/test_parity_mvitv2_video.py).
- Which video baseline the paper used is not released. Its Table 1 video row (80.5 on K400) is the supervised
  MViTv2-L 16x224 of Wei et al. (MaskFeat, trained in SlowFast), which Table 4 lists at 218M params and
  377 GFLOPs per view; the paper calls it "cut down" (double KV stride in the first 3 stages). Both numbers are
  reproduced only with channels doubling in the MLP (DIM_MUL_IN_ATT False) and KV strides 8, 4, 2, 1 (217.58M,
  377.4 GMACs here; "cut down" most plausibly relative to the image-style 4, 2, 1, 1), which is this ladder's L
  baseline. A class token most likely was there: every SlowFast Kinetics MViTv2 config sets CLS_EMBED_ON, MaskFeat's
  MViTv2-L 16x4 finetuning config included. The counts cannot settle it (the token adds 144 params and
  0.4 GMACs: 377.8 with, 377.4 without, both "377" within rounding), nor is the readout known (that MaskFeat
  config averages the patch tokens, USE_MEAN_POOLING; the supervised config is not public). UNCONFIRMED.

Beyond the paper, `EXTENSIONS` continue the ladder after row f (images only; `extended_ladder`):
- g: absolute-window position embedding (Bolya et al., "Window Attention is Bugged", ICLR 2024, arXiv
  2311.05613): Hiera's learned absolute table is replaced by a 14x14 global table, bicubically resized to the
  token grid, plus an 8x8 (mask-unit) window table tiled over it. The paper's fix for Hiera's resolution
  transfer: no table is tied to the training resolution. Its released models (timm `hiera_small_abswin_256`,
  `hiera_base_abswin_256`) change more than the embedding (layer scale 1e-5; the small one also drops the
  widening projection of the skip path); those are registered under timm's names (`ABSWIN_256`), not as step g.
- h: SAM 2's HieraDet attention (Ravi et al., "SAM 2", arXiv 2408.00714; image encoder trunk): mask-unit attention
  becomes attention in fixed windows on the 2-D grid (8, 4, 14, 7 tokens a side per stage; 8, 4, 16, 8 at depth
  2-6-36-4), padded to whole windows, with global attention in three blocks of stage 3 (`HIERADET`). At 224², for
  T, S, B and B+, the windows are the mask units of stages 1-2 and the whole 14² and 7² grids of stages 3-4, where
  Hiera attends globally anyway: step h computes exactly step g's function there (tested). For L and H the windows of
  16 and 8 exceed those grids, so their zero padding is attended to and step h differs from g already at 224² (43.58
  vs 40.34 GMACs at L). From 448² on every size differs: Hiera's stages 3-4 attend globally, HieraDet's in windows.
  Its released trunks are registered at SAM 2's 1024² under
  SAM 2's names (`sam2_hiera_{tiny,small,base_plus,large}`: SAM 2 and 2.1 share them; no classifier and no final
  norm, `final_norm=False`;
  plain bicubic resize of the background table, `global_pos_resize="plain"`), and timm's `hieradet_small` (256²,
  layer scale 1e-5, windows 8, 4, 16, 8).
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

# SlowFast's Kinetics MViTv2 (configs/Kinetics/MVITv2_S_16x4.yaml: CLS_EMBED_ON, the head reads the class token,
# DROPOUT_RATE 0.5, DROPPATH_RATE 0.2), which are also torchvision `mvit_v2_s`'s constructor defaults.
MVITV2_KINETICS: dict[str, Any] = dict(cls_token=True, head_order="cls", head_dropout=0.5, drop_path_rate=0.2)

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
SLUGS: dict[str, str] = {s.id: s.slug for s in LADDER}


def ladder_name(base: str, slug: str) -> str:
    """The registered name of a ladder step: `<base>` for row (f) (Hiera), `<base>.<slug>` for the others, e.g.
    `ladder_name("hiera_large_224", "c_no_stride1_pool")`; `base` is `hiera_<size>_<res>` or `proxy_<scale>`."""
    return f"{base}.{slug}" if slug else base


def _mvitv2_config(s: Size, size: str, res: str) -> ModelConfig:
    """MViTv2 with the hierarchy `s` at resolution `res`; channels double in the MLP at size L only, as released."""
    return ModelConfig(
        embed_dim=s.embed_dim,
        num_heads=s.num_heads,
        stages=s.stages,
        **RESOLUTIONS[res],
        **MVITV2,
        dim_expand="mlp" if size == "large" else "attn",
    )


def baseline(size: str, res: str) -> ModelConfig:
    """The supervised MViTv2 baseline with Hiera-`size`'s hierarchy at resolution `res`."""
    return _mvitv2_config(SIZES[size], size, res)


def ladder(size: str, res: str) -> list[tuple[Step, ModelConfig]]:
    """Every step of the ladder with its cumulative config, baseline first, Hiera last."""
    cfg = baseline(size, res)
    out = []
    for step in LADDER:
        cfg = cfg.replace(**step.changes)
        out.append((step, cfg))
    return out


# ---- the proxy scales: Hiera-T's ladder shrunk for the embedded Fashion-MNIST data (`hiera/proxy.py`) ----------------
# A proxy model is a ladder step of a full-size variant with these fields changed. It is registered under a name of
# its own (`proxy_<scale>[.<slug>]`, `hiera/model/registry.py`), so a record of a proxy run never claims the
# full-size model it shrinks.


@dataclass(frozen=True)
class ProxyScale:
    size: str  # the SIZES key of the full-size ladder it shrinks
    res: str  # that ladder's RESOLUTIONS key
    changes: dict[str, Any]  # ModelConfig fields changed from every step of it


# What the image and video proxies share: Hiera-T's ladder at 32 channels, one head, 1-1-2-1 blocks, two query
# poolings (so the last stage still pools inside a 4x4-token mask unit), and Fashion-MNIST's 10 classes.
_TINY_PROXY: dict[str, Any] = dict(q_pool=2, num_heads=1, stages=(1, 1, 2, 1), embed_dim=32, num_classes=10)
_TINY_IMAGE: dict[str, Any] = dict(_TINY_PROXY, mask_unit_size=(4, 4), kv_stride=(2, 2))

PROXY_SCALES: dict[str, ProxyScale] = {
    # The proxy grids and the demo: 48x48 px (Fashion-MNIST is 28x28), 4x4-px patches -> 12x12 tokens, nine 4x4-token
    # mask units, two query poolings (12 -> 6 -> 3 a side). Why 48: `hiera/proxy.py`.
    "tiny_48": ProxyScale("tiny", "224", dict(_TINY_IMAGE, input_size=(48, 48))),
    # The same at 64x64 px (16x16 tokens, sixteen mask units, 16 -> 8 -> 4): the demo's scale before 48 px, at which
    # `ablations/proxy_recipe_sweep.py` chose the proxy recipes.
    "tiny_64": ProxyScale("tiny", "224", dict(_TINY_IMAGE, input_size=(64, 64))),
    # The demo's video ladder on moving Fashion-MNIST: 8 frames of 64x64 px, tubelets 2x4x4, mask units 1x4x4.
    "tiny_8x64": ProxyScale(
        "tiny", "16x224", dict(_TINY_PROXY, input_size=(8, 64, 64), mask_unit_size=(1, 4, 4), kv_stride=(1, 2, 2))
    ),
    # The smoke grid and the tests: runs in seconds (32x32 px, 2x2-px patches, 16 channels, one block per stage).
    "micro_32": ProxyScale(
        "tiny",
        "224",
        dict(
            _TINY_IMAGE,
            input_size=(32, 32),
            embed_dim=16,
            stages=(1, 1, 1, 1),
            patch_stride=(2, 2),
            patch_kernel=(3, 3),
            patch_padding=(1, 1),
        ),
    ),
}


def proxy_ladder(scale: str) -> list[tuple[Step, ModelConfig]]:
    """Every ladder step at a proxy scale of `PROXY_SCALES`: the full-size step with the scale's changes."""
    p = PROXY_SCALES[scale]
    return [(step, cfg.replace(**p.changes)) for step, cfg in ladder(p.size, p.res)]


def mvitv2(size: str, res: str = "224") -> ModelConfig:
    """An MViTv2 paper model (its own depths), no cls token (`MVITV2_KINETICS` adds SlowFast's)."""
    return _mvitv2_config(MVITV2_SIZES[size], size, res)


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
    # plus the size's HIERADET windows and global blocks, inert until kv_mode flips (`extended_ladder`)
    Step("h", "h_hieradet", "+ fixed-window attention, SAM 2's HieraDet (beyond the paper)", dict(kv_mode="window")),
)
EXTENDED_STEP_IDS: tuple[str, ...] = STEP_IDS + tuple(s.id for s in EXTENSIONS)
BEYOND_PAPER: tuple[str, ...] = tuple(s.id for s in EXTENSIONS)

# timm's absolute-window Hiera models at 256 px (timm 1.0 `hiera_small_abswin_256`, `hiera_base_abswin_256`):
# Hiera-S/B with the step-g embedding plus the settings of their release. Registered under timm's names.
ABSWIN_256: dict[str, dict[str, Any]] = {
    "small": dict(global_pos_size=(16, 16), layer_scale=1e-5, expand_skip="max_avg"),
    "base": dict(global_pos_size=(14, 14), layer_scale=1e-5),
}


# SAM 2's HieraDet trunks (sam2 1.1.0 `configs/sam2{,.1}/sam2*_hiera_{t,s,b+,l}.yaml`, `hieradet.py` defaults; timm
# `hieradet_sam2.py`): windows per stage and the global-attention blocks, for each Hiera size by its depths (B and H
# share B+'s and L's depths, so they take those trunks' settings).
_HIERADET_DEFAULT: dict[str, Any] = dict(window_spec=(8, 4, 14, 7), global_blocks=(12, 16, 20))
_HIERADET_LARGE: dict[str, Any] = dict(window_spec=(8, 4, 16, 8), global_blocks=(23, 33, 43))
HIERADET: dict[str, dict[str, Any]] = {
    "tiny": dict(window_spec=(8, 4, 14, 7), global_blocks=(5, 7, 9)),
    "small": dict(window_spec=(8, 4, 14, 7), global_blocks=(7, 10, 13)),
    "base": _HIERADET_DEFAULT,
    "base_plus": _HIERADET_DEFAULT,
    "large": _HIERADET_LARGE,
    "huge": _HIERADET_LARGE,
}
# The released trunks beyond the windows: 1024² input, no classifier, the background table's size, plain bicubic.
SAM2_SIZES: dict[str, tuple[int, int]] = {"tiny": (7, 7), "small": (7, 7), "base_plus": (14, 14), "large": (7, 7)}


def extended_ladder(size: str, res: str) -> list[tuple[Step, ModelConfig]]:
    """`ladder` followed by the `EXTENSIONS` (images only: the absolute-window embedding is defined in 2-D)."""
    out = ladder(size, res)
    if out[-1][1].modality != "image":
        return out
    cfg = out[-1][1]
    for step in EXTENSIONS:
        changes = dict(step.changes, **HIERADET[size]) if step.id == "h" else step.changes
        cfg = cfg.replace(**changes)
        out.append((step, cfg))
    return out


def extension(size: str, step_id: str) -> ModelConfig:
    """The image config of extension step `step_id` (g, h) at Hiera-`size`, 224²."""
    return dict((s.id, cfg) for s, cfg in extended_ladder(size, "224"))[step_id]


def sam2_trunk(size: str) -> ModelConfig:
    """SAM 2 / 2.1's image encoder trunk `sam2_hiera_<size>`: step h at 1024², as released (module docstring)."""
    return extension(size, "h").replace(
        input_size=(1024, 1024),
        num_classes=0,
        final_norm=False,
        global_pos_size=SAM2_SIZES[size],
        global_pos_resize="plain",
    )


def hieradet_small() -> ModelConfig:
    """timm's `hieradet_small`: Hiera-S's step h at 256² with L's windows, layer scale 1e-5 and SAM 2's embedding."""
    return extension("small", "h").replace(
        input_size=(256, 256),
        window_spec=(8, 4, 16, 8),
        layer_scale=1e-5,
        global_pos_size=(7, 7),
        global_pos_resize="plain",
    )


def abswin_256(size: str) -> ModelConfig:
    """timm's `hiera_<size>_abswin_256`: step g at 256x256 with its release's layer scale and skip path."""
    return extension(size, "g").replace(input_size=(256, 256), **ABSWIN_256[size])
