"""Augmentation fixes shared by every dataset (paper Tables 11/14 train with RandAugment through timm).

Lives in the data layer so that both the dataset builders (`hiera/data/real.py`) and the training data pipeline
(`hiera/data/wrappers.py`, `hiera/train/data.py`) use it without importing each other.
"""

from __future__ import annotations

from PIL import Image


def posterize_zero_bits() -> None:
    """timm's `PosterizeIncreasing` maps RandAugment magnitude 10 to 0 bits (m9 + mstd0.5 draws it ~2% of the
    time); Pillow >= 10 rejects `posterize(img, 0)` where older Pillow returned a black image. Restore that old
    result so the paper's RandAugment strings train on a current Pillow instead of crashing mid-epoch."""
    from timm.data import auto_augment as aa  # the module whose function is replaced, by its name in timm

    if getattr(aa.posterize, "_hiera_zero_bits", False):
        return

    def posterize(img, bits_to_keep, **kwargs):
        if bits_to_keep <= 0:
            return Image.new(img.mode, img.size)  # what Pillow < 10 produced: every bit masked out
        return original(img, bits_to_keep, **kwargs)

    original = aa.posterize
    posterize.__dict__["_hiera_zero_bits"] = True  # a marker (mypy knows no attributes on functions)
    aa.posterize = posterize
    for name, op in list(aa.NAME_TO_OP.items()):
        if op is original:
            aa.NAME_TO_OP[name] = posterize
