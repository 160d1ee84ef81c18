"""Named variants: every ladder step x size x modality, the MAE encoders and the MViTv2 paper models.

Names (timm-style registry):
- `hiera_<size>_<res>`: the official Hiera factory names (`hiera_tiny_224` ... `hiera_huge_16x224`), row (f);
- `hiera_<size>_<res>.<step>`: the other ladder steps of that size, e.g. `hiera_large_224.c_no_stride1_pool`,
  so `hiera_large_224*` selects the whole Table-1 ladder at size L;
- `mae_hiera_<size>_<res>`: the official MAE encoders (q_pool = 2, no classifier), which load the authors'
  MAE checkpoints;
- `mvitv2_{tiny,small,base,large}_224`: the MViTv2 paper models with their own depths;
- `mvitv2_small_16x224`: the Kinetics MViTv2-S 16x224 (SlowFast `MVITv2_S_16x4`, torchvision `mvit_v2_s`) with its
  class token, its cls readout and torchvision's constructor defaults (head dropout 0.5, drop path 0.2).
- `proxy_<scale>[.<step>]`: a ladder shrunk for the embedded data (`PROXY_SCALES` of `hiera/model/ladder.py`),
  e.g. `proxy_tiny_48.b_max_pool` (the proxy grids and the demo), so a proxy record never claims a full-size name.
- beyond the paper: `hiera_<size>_224.g_abs_win` (ladder step g, absolute-window position embedding, images),
  `hiera_<size>_224.h_hieradet` (step h, SAM 2's fixed-window attention), timm's `hiera_{small,base}_abswin_256`
  (step g with their release's settings), SAM 2 / 2.1's trunks `sam2_hiera_{tiny,small,base_plus,large}` (1024²)
  and timm's `hieradet_small` (`hiera/model/ladder.py`).
The official release has no video T/S; they are built here from the same recipe.
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass

from hiera.model.config import ModelConfig
from hiera.model.ladder import (
    ABSWIN_256,
    EXTENSIONS,
    LADDER,
    MVITV2_KINETICS,
    MVITV2_SIZES,
    PROXY_SCALES,
    RESOLUTIONS,
    SAM2_SIZES,
    SIZES,
    abswin_256,
    extended_ladder,
    hieradet_small,
    ladder,
    ladder_name,
    mvitv2,
    proxy_ladder,
    sam2_trunk,
)
from hiera.model.masking import mae_q_pool


@dataclass(frozen=True)
class Variant:
    name: str
    config: ModelConfig
    step: str  # sup, mae, a-f (a Table-1 ladder step, not an optimizer step); g beyond the paper
    size_label: str  # the paper's size name: T, S, B, B+, L, H (a proxy: the size of the ladder it shrinks)
    modality: str  # image | video
    title: str

    def summary(self) -> dict[str, str | bool]:
        """Name, step, size, modality, and whether it can encode sparsely (MAE masking)."""
        return {
            "name": self.name,
            "step": self.step,
            "size": self.size_label,
            "modality": self.modality,
            "masked": self.config.uses_mask_units,
        }


_REGISTRY: dict[str, Variant] = {}


def register(variant: Variant) -> None:
    if variant.name in _REGISTRY:
        raise ValueError(f"variant {variant.name!r} is registered twice")
    _REGISTRY[variant.name] = variant


def _register_all() -> None:
    for res in RESOLUTIONS:
        for size, spec in SIZES.items():
            for step, cfg in ladder(size, res):
                name = ladder_name(f"hiera_{size}_{res}", step.slug)
                register(Variant(name, cfg, step.id, spec.label, cfg.modality, step.title))
    for res in RESOLUTIONS:  # the official MAE encoders: Hiera with q_pool = 2, no classifier
        for size, spec in SIZES.items():
            final = ladder(size, res)[-1][1]
            cfg = final.replace(q_pool=mae_q_pool(final.q_pool), num_classes=0)
            register(
                Variant(
                    f"mae_hiera_{size}_{res}",
                    cfg,
                    "f",
                    spec.label,
                    cfg.modality,
                    "MAE encoder of Hiera (q_pool=2, no classifier)",
                )
            )
    for size, spec in MVITV2_SIZES.items():
        cfg = mvitv2(size)
        register(Variant(f"mvitv2_{size}_224", cfg, "sup", spec.label, "image", f"MViTv2-{spec.label} (MViTv2 paper)"))
    cfg = mvitv2("small", "16x224").replace(**MVITV2_KINETICS)
    register(
        Variant("mvitv2_small_16x224", cfg, "sup", "S", "video", "MViTv2-S 16x224, Kinetics (torchvision mvit_v2_s)")
    )
    for scale, proxy in PROXY_SCALES.items():
        label = SIZES[proxy.size].label
        for step, cfg in proxy_ladder(scale):
            title = f"{step.title} (proxy scale {scale})"
            register(Variant(ladder_name(f"proxy_{scale}", step.slug), cfg, step.id, label, cfg.modality, title))
    # Beyond the paper, after everything of the paper so that listings keep the paper's order first.
    for res in RESOLUTIONS:
        for size, spec in SIZES.items():
            for step, cfg in extended_ladder(size, res)[len(LADDER) :]:
                name = ladder_name(f"hiera_{size}_{res}", step.slug)
                register(Variant(name, cfg, step.id, spec.label, cfg.modality, step.title))
    for size, changes in ABSWIN_256.items():
        cfg = abswin_256(size)
        extra = ", no widening projection on the skip path" if changes.get("expand_skip") == "max_avg" else ""
        title = f"timm's hiera_{size}_abswin_256: step g at 256², layer scale {changes['layer_scale']:g}{extra}"
        register(Variant(f"hiera_{size}_abswin_256", cfg, "g", SIZES[size].label, "image", title))
    for size in SAM2_SIZES:
        label = SIZES[size].label
        title = f"SAM 2 / 2.1 image encoder trunk, Hiera-{label} (HieraDet) at 1024², no classifier"
        register(Variant(f"sam2_hiera_{size}", sam2_trunk(size), "h", label, "image", title))
    title = "timm's hieradet_small: step h at 256², windows 8-4-16-8, layer scale 1e-5"
    register(Variant("hieradet_small", hieradet_small(), "h", "S", "image", title))


def list_variants(pattern: str = "*") -> list[Variant]:
    """Registered variants whose name matches the glob `pattern`, in registration (paper) order."""
    return [v for n, v in _REGISTRY.items() if fnmatch.fnmatchcase(n, pattern)]


def get_variant(name: str) -> Variant:
    if name in _REGISTRY:
        return _REGISTRY[name]
    close = difflib.get_close_matches(name, _REGISTRY, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise ValueError(
        f"unknown variant {name!r}; {hint}allowed: hiera_{{{','.join(SIZES)}}}_{{{','.join(RESOLUTIONS)}}}"
        f"[.{{{','.join(s.slug for s in LADDER + EXTENSIONS if s.slug)}}}], mae_hiera_<size>_<res>, "
        f"mvitv2_{{{','.join(MVITV2_SIZES)}}}_224, mvitv2_small_16x224, hiera_{{{','.join(ABSWIN_256)}}}_abswin_256, "
        f"sam2_hiera_{{{','.join(SAM2_SIZES)}}}, hieradet_small, "
        f"proxy_{{{','.join(PROXY_SCALES)}}}[.<step>] "
        "(`hiera-study variants` lists all)"
    )


_register_all()
