"""Model configuration: one frozen dataclass with one field per simplification of paper Table 1.

Hiera (Ryali et al., ICML 2023, §3 and Table 1) was found by starting from MViTv2 and deleting its
"bells and whistles" one at a time. `ModelConfig` has one field for each deleted feature, so every row of
Table 1 is the previous row with exactly one field changed (the ladder lives in `hiera/model/ladder.py`):

    field            MViTv2 value          Hiera value        paper row
    pos_embed        "rel"                 "abs"              (a) replace rel pos with absolute
    pool_op          "conv"                "max"              (b) replace convs with maxpools
    stride1_pool     True                  False              (c) delete stride=1 maxpools
    pool_kernel      "overlap"             "stride"           (d) set kernel size equal to stride
    attn_residual    True                  False              (e) delete q attention residuals
    kv_mode          "pool"                "mask_unit"        (f) replace kv pooling with mask-unit attention

Three more fields are not Table-1 rows but are needed to express both ends exactly: `separate_and_pad`
(paper Fig. 4d: the trick rows a-c need for sparse MAE), `head_order` (MViTv2 normalises every token then
averages; Hiera averages then normalises) and `dim_expand` (MViTv2-L doubles channels in the MLP of a stage's
last block; Hiera in the attention of the next stage's first block). `attn_impl` changes speed, not numbers.
`cls_token` is not on the ladder either: SlowFast's and torchvision's Kinetics MViTv2 prepend a learned class token
(Hiera and timm's image MViTv2 have none), which `head_order="cls"` reads.

Beyond the paper (ladder steps g and h, `hiera/model/ladder.py` EXTENSIONS), one field per switch:

    field            Hiera value   other values              source
    pos_embed        "abs"         "abs_win"                 Bolya et al., ICLR 2024 (arXiv 2311.05613): a global
                                                             table of `global_pos_size`, bicubically resized to the
                                                             token grid, plus a mask-unit-sized table tiled over it
    global_pos_size  (14, 14)      any (h, w)                the global table of "abs_win" (inert otherwise)
    layer_scale      None (off)    init value, e.g. 1e-5     per-channel scale on both residual branches (timm
                                                             `init_values`, its abswin models and SAM 2's HieraDet)
    expand_skip      "proj"        "max_avg"                 skip path where channels double: Linear(LN(x)) then
                                                             max pool (Hiera), or [max pool(x), avg pool(x)]
                                                             concatenated (timm `use_expand_proj=False`)
    kv_mode          "mask_unit"   "window"                  SAM 2's HieraDet (Ravi et al., arXiv 2408.00714):
                                                             attention in fixed square windows on the 2-D token
                                                             grid, `window_spec[stage]` tokens a side (the grid
                                                             zero-padded to whole windows after the norm; 0 =
                                                             global), the stage lagging one block as mask units
                                                             do, and global attention in `global_blocks`
    window_spec      (8, 4, 14, 7) any, one side per stage     the windows of kv_mode="window" (inert otherwise)
    global_blocks    ()            block indices             blocks with global attention under kv_mode="window"
    global_pos_resize "antialias"  "plain"                   how "abs_win" resizes its global table: bicubic with
                                                             antialiasing (timm's abswin Hiera) or plain bicubic
                                                             (SAM 2's HieraDet); they differ when upsampling
    final_norm       True          False                     SAM 2's trunk has no LayerNorm after its last block

Fixed windows do not follow mask units once pooling shrinks the units below them (stage 3 windows of 14 tokens span
many 2x2-token units), so a masked unit's tokens would be attended by its neighbours: a model with kv_mode="window"
cannot encode sparsely (paper Fig. 6 shows why attention must stay inside units for MAE), which is why SAM 2
pretrains with MAE as Hiera and switches to windows afterwards.

Validation happens in `__post_init__` (as timm's `MultiScaleVitCfg`); every error names the allowed values.
"""

from __future__ import annotations

import ast
import dataclasses
import math
import types
import typing
from dataclasses import dataclass, fields

# Allowed values of the string-valued switches; the first value is MViTv2's, the second Hiera's (head_order's third,
# "cls", is the Kinetics MViTv2's class-token readout).
CHOICES: dict[str, tuple[str, ...]] = {
    "pos_embed": ("rel", "abs", "abs_win"),
    "pool_op": ("conv", "max"),
    "pool_kernel": ("overlap", "stride"),
    "kv_mode": ("pool", "mask_unit", "window"),
    "dim_expand": ("mlp", "attn"),
    "head_order": ("norm_mean", "mean_norm", "cls"),
    "attn_impl": ("math", "sdpa"),
    # Beyond the paper (the first value is both ends' own): see the module docstring.
    "expand_skip": ("proj", "max_avg"),
    "global_pos_resize": ("antialias", "plain"),
}

# MViTv2's overlapping pooling kernel (POOL_KVQ_KERNEL): 3 along every axis, padding 1.
OVERLAP_KERNEL = 3


@dataclass(frozen=True)
class ModelConfig:
    """Everything that defines one model of the MViTv2 -> Hiera study. Defaults are Hiera-B at 224².

    Tuples that describe the token grid have one entry per axis: (H, W) for images, (T, H, W) for video.
    """

    # ---- input -------------------------------------------------------------------------------------------
    input_size: tuple[int, ...] = (224, 224)  # pixels (H, W) or frames x pixels (T, H, W)
    in_chans: int = 3
    num_classes: int = 1000  # 0 = no classifier (forward returns pooled features)

    # ---- hierarchy (paper Table 2) ---------------------------------------------------------------------
    embed_dim: int = 96  # channels of stage 1; multiplied by dim_mul at each stage transition
    num_heads: int = 1  # heads of stage 1; multiplied by head_mul at each stage transition
    stages: tuple[int, ...] = (2, 3, 16, 3)  # blocks per stage
    q_pool: int = 3  # number of stage transitions that pool queries (3 classification, 2 MAE)
    q_stride: tuple[int, ...] = (2, 2)  # query stride at a pooling stage transition
    mask_unit_size: tuple[int, ...] = (8, 8)  # tokens per mask unit at stage 1 (32x32 px)
    dim_mul: float = 2.0
    head_mul: float = 2.0
    patch_kernel: tuple[int, ...] = (7, 7)
    patch_stride: tuple[int, ...] = (4, 4)
    patch_padding: tuple[int, ...] = (3, 3)
    mlp_ratio: float = 4.0
    drop_path_rate: float = 0.0  # stochastic depth, linear from 0 over all blocks
    head_dropout: float = 0.0  # dropout before the classifier (video finetuning uses 0.3-0.5)

    # ---- the Table-1 switches (MViTv2 -> Hiera) --------------------------------------------------------
    # "rel": decomposed relative (h, w [, t]) in every block; "abs": learned absolute; "abs_win": absolute-window
    # (global table resized to the grid + mask-unit table tiled; images only; beyond the paper, step g)
    pos_embed: str = "abs"
    pool_op: str = "max"  # "conv": depthwise conv + LayerNorm per q/k/v (MViTv2); "max": max pooling
    stride1_pool: bool = False  # keep the 3x3 stride-1 pools (q in every non-transition block, kv where stride 1)
    pool_kernel: str = "stride"  # "overlap": 3x3 (3x3x3) kernels; "stride": kernel equal to stride
    attn_residual: bool = False  # MViTv2's residual pooling connection: attention output + pooled q
    # "pool": pooled K/V, global attention; "mask_unit": attention inside mask units; "window": HieraDet's fixed
    # windows (`window_spec`, `global_blocks`; beyond the paper, step h)
    kv_mode: str = "mask_unit"

    # ---- supporting fields ------------------------------------------------------------------------------
    # MViTv2's adaptive KV stride at stage 1, divided by q_stride at every pooling transition
    # (POOL_KV_STRIDE_ADAPTIVE: (4, 4) images, (1, 8, 8) Kinetics). Used only when kv_mode == "pool".
    kv_stride: tuple[int, ...] = (4, 4)
    # Which stages use mask-unit attention when kv_mode == "mask_unit" (official Hiera default). As in the
    # official release the flag lags one block: the first (pooling) block of a stage uses the previous flag.
    mask_unit_attn: tuple[bool, ...] = (True, True, False, False)
    # Paper Fig. 4d: every mask unit is pooled as its own padded image, so an overlapping kernel never sees a
    # neighbouring unit. Needed for sparse MAE with overlapping kernels (rows a-c, in training and inference);
    # inert once kernel == stride (rows d-f pool inside units either way), so Hiera keeps the value it inherits.
    separate_and_pad: bool = True
    dim_expand: str = "attn"  # "attn": Hiera / MViTv2 DIM_MUL_IN_ATT; "mlp": the released MViTv2-L
    head_order: str = "mean_norm"  # "mean_norm": Hiera; "norm_mean": MViTv2; "cls": the class token, normed
    # A learned class token before the patch tokens (SlowFast/torchvision Kinetics MViTv2): it joins global attention,
    # is never pooled and gets no relative position; the means of `head_order` average the patch tokens only.
    cls_token: bool = False
    attn_impl: str = "sdpa"  # "math": explicit softmax(QK^T)V as in the paper's timings; "sdpa": fused kernel

    # ---- beyond the paper (ladder extensions; module docstring) ------------------------------------------------
    # Size (h, w) of the global table of pos_embed="abs_win"; resized (bicubic) to the token grid at every input
    # size, so the parameters do not depend on the resolution. timm: (14, 14), hiera_small_abswin_256 (16, 16).
    global_pos_size: tuple[int, ...] = (14, 14)
    layer_scale: float | None = None  # init value of a learned per-channel scale on both residual branches; None = off
    expand_skip: str = "proj"  # "proj": Hiera's Linear(LN(x)) + max pool; "max_avg": [max(x), avg(x)], no weights
    final_norm: bool = True  # False: no LayerNorm after the last block (SAM 2's trunk, which its FPN neck follows)
    global_pos_resize: str = "antialias"  # "abs_win" global table: bicubic "antialias" (timm) or "plain" (SAM 2)
    # kv_mode="window" only (SAM 2's defaults): window side per stage in tokens (0 = global attention in that stage),
    # read with the one-block lag of mask_unit_attn; and the blocks that attend globally whatever their stage's window.
    window_spec: tuple[int, ...] = (8, 4, 14, 7)
    global_blocks: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        self._check_choices_and_axes()
        self._check_counts()
        self._check_geometry()

    def _check_choices_and_axes(self) -> None:
        """String switches hold allowed values; input_size has 2 or 3 axes, each per-axis tuple one integer per axis."""
        for name, allowed in CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"{name}={value!r} is not allowed; choose one of {', '.join(map(repr, allowed))}")
        nd = len(self.input_size)
        if nd not in (2, 3):
            raise ValueError(f"input_size={self.input_size} must be (H, W) for images or (T, H, W) for video")
        for name in ("q_stride", "mask_unit_size", "patch_kernel", "patch_stride", "patch_padding", "kv_stride"):
            value = getattr(self, name)
            if len(value) != nd or any(int(v) != v or v < (0 if name == "patch_padding" else 1) for v in value):
                raise ValueError(f"{name}={value} must have {nd} positive integers, one per axis of input_size")
        if self.head_order == "cls" and not self.cls_token:
            raise ValueError("head_order='cls' reads the class token; set cls_token=True or pick another head_order")

    def _check_counts(self) -> None:
        """Stages, pooling transitions, channel and class counts, dropout rates."""
        if len(self.stages) < 1 or any(d < 1 for d in self.stages):
            raise ValueError(f"stages={self.stages} must list at least one stage, each with >= 1 block")
        if not 0 <= self.q_pool < len(self.stages):
            raise ValueError(f"q_pool={self.q_pool} must be in 0..{len(self.stages) - 1} (stage transitions)")
        if len(self.mask_unit_attn) != len(self.stages):
            raise ValueError(f"mask_unit_attn={self.mask_unit_attn} needs one flag per stage ({len(self.stages)})")
        for name in ("in_chans", "embed_dim", "num_heads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        if self.num_classes < 0:
            raise ValueError(f"num_classes={self.num_classes} must be >= 0 (0 = no classifier)")
        for name in ("drop_path_rate", "head_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name}={getattr(self, name)} must be in [0, 1)")
        # One spelling for "off": a scale of 0 would be a branch that starts dead, not a switched-off layer scale.
        if self.layer_scale is not None and not (math.isfinite(self.layer_scale) and self.layer_scale > 0):
            raise ValueError(f"layer_scale={self.layer_scale} must be a positive init value (e.g. 1e-5) or None (off)")
        if len(self.global_pos_size) != 2 or any(int(v) != v or v < 1 for v in self.global_pos_size):
            raise ValueError(f"global_pos_size={self.global_pos_size} must be two positive integers (h, w)")

    def _check_geometry(self) -> None:
        """The fields together: head widths, the patch embedding, and pooling inside the token grid and units."""
        for dim, heads in zip(self.stage_dims, self.stage_heads):
            if heads < 1 or dim % heads:
                raise ValueError(
                    f"stage width {dim} is not divisible by its {heads} heads; "
                    "change embed_dim/num_heads/dim_mul/head_mul"
                )
        for a, (size, k, s, p) in enumerate(
            zip(self.input_size, self.patch_kernel, self.patch_stride, self.patch_padding)
        ):
            if size % s or (size + 2 * p - k) // s + 1 != size // s:
                raise ValueError(
                    f"input_size={self.input_size} axis {a}: the patch embedding (kernel {k}, stride {s},"
                    f" padding {p}) must map {size} to {size}//{s}; use a multiple of {s}"
                )
        if self.pos_embed == "abs_win" and self.ndim != 2:
            raise ValueError("pos_embed='abs_win' is defined for images (H, W) only; use 'abs' or 'rel' for video")
        # Each axis of the token grid must survive q_pool poolings and, where tokens are grouped by mask unit (or
        # "abs_win" tiles its window table), hold whole units: one check, so a new input size gets one message
        # with the sizes that work (what `build_model(name, input_size=...)` users need).
        tiled = self.uses_mask_units or self.pos_embed == "abs_win"
        for a, (size, s, g, q, m) in enumerate(
            zip(self.input_size, self.patch_stride, self.token_grid, self.q_stride, self.mask_unit_size)
        ):
            step = math.lcm(q**self.q_pool, m if tiled else 1)
            if g % step:
                px = step * s
                near = " or ".join(str(n) for n in (size // px * px, (size // px + 1) * px) if n > 0)
                why = f"q_stride**q_pool={q**self.q_pool}" + (f", mask unit {m}" if tiled else "")
                raise ValueError(
                    f"input_size={self.input_size} is impossible for this model: axis {a} must be a multiple of "
                    f"{px} px ({step} tokens of {s} px: {why}); nearest: {near}"
                )
        if self.uses_mask_units:
            mu = self.mask_unit_size
            if any(m % (q**self.q_pool) for m, q in zip(mu, self.q_stride)):
                raise ValueError(
                    f"mask_unit_size={mu} must be divisible by q_stride**q_pool="
                    f"{tuple(q**self.q_pool for q in self.q_stride)} so pooling stays inside units"
                )
        elif self.kv_mode == "mask_unit":
            raise ValueError(
                "kv_mode='mask_unit' needs mask-unit-local pooling: set pool_kernel='stride' or separate_and_pad=True"
            )
        if self.kv_mode == "window":
            self._check_windows()
        if self.cls_token and self.kv_mode == "mask_unit":  # the token lies in no unit, so it could attend to none
            raise ValueError(
                "cls_token=True needs global attention: a class token belongs to no mask unit; set kv_mode='pool'"
            )
        # expand_skip="max_avg": the two pooled copies of the input make the doubled width, and timm defines them
        # for kernel = stride only.
        if self.expand_skip == "max_avg" and (
            self.dim_mul != 2.0 or self.dim_expand != "attn" or self.pool_kernel != "stride"
        ):
            raise ValueError(
                "expand_skip='max_avg' needs dim_mul=2.0, dim_expand='attn' and pool_kernel='stride' "
                f"(got {self.dim_mul}, {self.dim_expand!r}, {self.pool_kernel!r}); or use expand_skip='proj'"
            )

    def _check_windows(self) -> None:
        """kv_mode="window" (HieraDet): images, Hiera's pooling, one window per stage, windows that pool whole."""
        if self.ndim != 2 or self.cls_token or self.pos_embed == "rel" or self.pool_kernel != "stride":
            raise ValueError(
                "kv_mode='window' (SAM 2's HieraDet) is defined for images with pool_kernel='stride', no cls_token "
                "and pos_embed 'abs' or 'abs_win'"
            )
        if self.attn_residual:
            raise ValueError("kv_mode='window' needs attn_residual=False (HieraDet's blocks have no residual pooling)")
        if len(self.window_spec) != len(self.stages) or any(w < 0 for w in self.window_spec):
            raise ValueError(
                f"window_spec={self.window_spec} needs one window side >= 0 per stage ({len(self.stages)}; 0 = global)"
            )
        if any(not 0 <= i < self.depth for i in self.global_blocks):
            raise ValueError(f"global_blocks={self.global_blocks} must be block indices in 0..{self.depth - 1}")
        if self.pos_embed == "abs_win" and tuple(self.mask_unit_size) != (self.window_spec[0],) * 2:
            # SAM 2 tiles its window table (window_spec[0] a side) over the grid; here that table is mask_unit_size
            raise ValueError(
                f"kv_mode='window' with pos_embed='abs_win' tiles a window table of mask_unit_size="
                f"{self.mask_unit_size}; set it to the stage-1 window ({self.window_spec[0]}, {self.window_spec[0]})"
            )
        for stage in range(1, self.q_pool + 1):  # a pooling block pools q inside its (lagged) window
            w, q = self.window_spec[stage - 1], self.q_stride
            if w and any(w % s for s in q):
                raise ValueError(
                    f"window_spec={self.window_spec}: the window {w} that stage {stage + 1}'s first block pools "
                    f"in must be divisible by q_stride={q}"
                )

    # ---- derived quantities --------------------------------------------------------------------------------
    @property
    def ndim(self) -> int:
        return len(self.input_size)

    @property
    def modality(self) -> str:
        return "image" if self.ndim == 2 else "video"

    @property
    def token_grid(self) -> tuple[int, ...]:
        """Tokens per axis after the patch embedding, e.g. (56, 56) or (8, 56, 56)."""
        return tuple(i // s for i, s in zip(self.input_size, self.patch_stride))

    @property
    def mask_unit_grid(self) -> tuple[int, ...]:
        """Mask units per axis, e.g. (7, 7) or (8, 7, 7)."""
        return tuple(g // m for g, m in zip(self.token_grid, self.mask_unit_size))

    @property
    def uses_mask_units(self) -> bool:
        """Whether tokens are kept grouped by mask unit (see `hiera/model/layout.py`).

        Only a model whose overlapping pools must see across mask units (the dense MViTv2 baseline) works on
        the whole grid; every other model pools inside mask units, which is what makes it sparse-capable. HieraDet's
        fixed windows (kv_mode="window") work on the 2-D grid too: they are not mask units.
        """
        return self.kv_mode != "window" and (self.pool_kernel == "stride" or self.separate_and_pad)

    @property
    def stage_dims(self) -> tuple[int, ...]:
        return tuple(int(self.embed_dim * self.dim_mul**i) for i in range(len(self.stages)))

    @property
    def stage_heads(self) -> tuple[int, ...]:
        return tuple(int(self.num_heads * self.head_mul**i) for i in range(len(self.stages)))

    @property
    def depth(self) -> int:
        return sum(self.stages)

    def replace(self, **changes: typing.Any) -> ModelConfig:
        """`dataclasses.replace` that names the allowed fields when a key is unknown."""
        check_keys(changes, type(self))
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, typing.Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, typing.Any]) -> ModelConfig:
        check_keys(data, cls)
        hints = typing.get_type_hints(cls)
        return cls(**{k: coerce(k, v, hints[k]) for k, v in data.items()})


def check_keys(data: dict[str, typing.Any], cls: type) -> None:
    """Raise a one-line ValueError for keys that are not fields of dataclass `cls`."""
    names = [f.name for f in fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        raise ValueError(f"unknown {cls.__name__} field(s) {', '.join(unknown)}; allowed: {', '.join(names)}")


def coerce(name: str, value: typing.Any, hint: typing.Any, shown: str | None = None) -> typing.Any:
    """Convert a parsed value (JSON, literal) to the field's declared type, or raise a one-line ValueError.

    Numbers must be finite: `1e999` parses as inf, and inf or NaN is never a meaningful width, rate or epoch count
    (an int field would raise OverflowError deep in a model; a NaN rate passes every `<`/`>` check silently).
    `shown` is the value as the user typed it (`embed_dim=1e999`), for the message; default `repr(value)`.
    """
    shown = repr(value) if shown is None else shown
    shown = shown if len(shown) <= 60 else shown[:57] + "..."  # one readable line, even for a 400-digit number
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):  # Optional fields: None, or a value of the other type
        if value is None or (isinstance(value, str) and value.lower() == "none"):
            return None
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return coerce(name, value, inner, shown)
    kind = getattr(hint, "__name__", hint)
    try:
        return _convert(name, value, hint, shown, kind)
    except OverflowError:
        raise ValueError(f"{name}={shown} is out of range; give a {kind} of a usable size") from None
    except ValueError as e:
        if str(e).startswith(f"{name}="):  # ours, with the reason: keep it
            raise
    except TypeError:
        pass
    raise ValueError(f"{name}={shown} is not a valid {kind}")


def _convert(name: str, value: typing.Any, hint: typing.Any, shown: str, kind: typing.Any) -> typing.Any:
    """`coerce` for a non-Optional hint: the converted value, or TypeError (wrong type), ValueError or
    OverflowError, which `coerce` turns into its one-line message. Other hints pass the value through."""
    if typing.get_origin(hint) is tuple:
        if isinstance(value, (int, float, bool)):
            value = (value,)
        item = typing.get_args(hint)[0]
        return tuple(coerce(name, v, item, shown) for v in value)
    if hint in (int, float) and not isinstance(value, (bool, str)):
        number = float(value)  # OverflowError for an int beyond float range: not a usable size either
        if not math.isfinite(number):
            raise ValueError(f"{name}={shown} is not a finite number; give a finite {kind}")
    if hint is bool:
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise TypeError
        return value
    if hint is int:
        if isinstance(value, bool) or int(value) != value:
            raise TypeError
        return int(value)
    if hint is float:
        if isinstance(value, bool):
            raise TypeError
        number = float(value)
        if not math.isfinite(number):  # also the strings "nan", "inf", which float() accepts
            raise ValueError(f"{name}={shown} is not a finite number; give a finite {kind}")
        return number
    if hint is str:
        if not isinstance(value, str):
            raise TypeError
        return value
    return value


def parse_overrides(items: typing.Sequence[str], cls: type = ModelConfig) -> dict[str, typing.Any]:
    """Parse trailing `key=value` command-line overrides against the fields of `cls`.

    Values are Python literals (`224,224`, `(8, 8)`, `0.1`, `True`) or bare words for string fields
    (`pos_embed=rel`). Unknown keys and ill-typed or non-finite values (`1e999`, `nan`) raise a one-line
    ValueError naming the key and the value as typed.
    """
    hints = typing.get_type_hints(cls)
    out: dict[str, typing.Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"override {item!r} must look like key=value")
        check_keys({key: None}, cls)
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError, MemoryError, RecursionError):  # deeply nested or huge literals too
            value = raw
        out[key] = coerce(key, value, hints[key], shown=raw)
    return out


# The six fields that paper Table 1 flips, in the paper's order (rows a-f).
TABLE1_SWITCHES: tuple[str, ...] = ("pos_embed", "pool_op", "stride1_pool", "pool_kernel", "attn_residual", "kv_mode")
