"""Named variants: every ladder step x size x modality, plus the MViTv2 paper models (timm-style registry).

Names: the Hiera end keeps the official factory names (`hiera_tiny_224` ... `hiera_huge_16x224`); every other
step of a size's ladder is that name plus a suffix, e.g. `hiera_large_224.sup_mvitv2`, `hiera_large_224.c_no_
stride1_pool`, so `hiera_large_224*` selects the whole Table-1 ladder at size L. `mvitv2_{tiny,small,base,large}_224`
are the MViTv2 paper models with their own depths. The official release has no video T/S; they are built
here from the same recipe.
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass

from hiera.config import ModelConfig
from hiera.ladder import LADDER, MVITV2_SIZES, RESOLUTIONS, SIZES, ladder, mvitv2


@dataclass(frozen=True)
class Variant:
    name: str
    config: ModelConfig
    step: str  # sup, mae, a-f
    size: str  # T, S, B, B+, L, H
    modality: str  # image | video
    title: str

    def summary(self) -> dict[str, str]:
        return {"name": self.name, "step": self.step, "size": self.size, "modality": self.modality}


_REGISTRY: dict[str, Variant] = {}


def register(variant: Variant) -> None:
    if variant.name in _REGISTRY:
        raise ValueError(f"variant {variant.name!r} is registered twice")
    _REGISTRY[variant.name] = variant


def _register_all() -> None:
    for res in RESOLUTIONS:
        for size, spec in SIZES.items():
            base = f"hiera_{size}_{res}"
            for step, cfg in ladder(size, res):
                name = f"{base}.{step.slug}" if step.slug else base
                register(Variant(name, cfg, step.id, spec.label, cfg.modality, step.title))
    for size, spec in MVITV2_SIZES.items():
        cfg = mvitv2(size)
        register(Variant(f"mvitv2_{size}_224", cfg, "sup", spec.label, "image", f"MViTv2-{spec.label} (MViTv2 paper)"))


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
        f"[.{{{','.join(s.slug for s in LADDER if s.slug)}}}], mvitv2_{{{','.join(MVITV2_SIZES)}}}_224 "
        "(`hiera-study variants` lists all)"
    )


_register_all()
