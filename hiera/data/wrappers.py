"""Dataset wrappers between the datasets and the training loop: seeded augmentation, Fashion-MNIST through timm's
training transform, the views axis of video evaluation, and undoing the input normalisation (paper §4's
reconstructions).

The data layer: `hiera/train/` imports these, never the reverse. `SeededAugment` makes random augmentation a function
of (seed, epoch, index) only, which bit-identical resume needs (`hiera/train/data.py` says why).
"""

from __future__ import annotations

import random
from collections.abc import Sized
from pathlib import Path
from typing import cast

import numpy as np
import torch
from PIL import Image
from timm.data import create_transform
from torch.utils.data import Dataset

from hiera.data.augment import posterize_zero_bits
from hiera.data.fashion_mnist import MEAN, STD, FashionMNIST
from hiera.data.real import IMAGENET_MEAN, IMAGENET_STD
from hiera.recipes import Recipe


def dataset_len(dataset: Dataset) -> int:
    """`len(dataset)`: torch's `Dataset` type declares no `__len__`, but every (map-style) dataset here has one."""
    return len(cast(Sized, dataset))


class SeededAugment(Dataset):
    """Wrap a dataset whose `__getitem__` draws random numbers: sample i of epoch e always gets the same draws."""

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset, self.seed, self.epoch = dataset, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return dataset_len(self.dataset)

    def __getitem__(self, i: int):
        seed = int(np.random.SeedSequence([self.seed, self.epoch, i]).generate_state(1)[0])
        py, npy = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            random.seed(seed)
            np.random.seed(seed)
            try:
                return self.dataset[i]
            finally:
                random.setstate(py)
                np.random.set_state(npy)


class AugmentedFashionMNIST(FashionMNIST):
    """Fashion-MNIST through a timm training transform (PIL, grey repeated to RGB)."""

    def __init__(self, split: str, size: int, transform, root: str | Path | None = None):
        super().__init__(split, size, root)
        self.transform = transform

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        img = Image.fromarray(self.images[i].numpy(), mode="L").convert("RGB")
        return self.transform(img), int(self.labels[i])


def fashion_mnist_train_transform(size: int, rec: Recipe, phase: str):
    """timm's training transform for Fashion-MNIST: random resized crop over the recipe's scale, flip, and
    RandAugment when the recipe asks for it (not for MAE)."""
    posterize_zero_bits()
    return create_transform(
        size,
        is_training=True,
        scale=rec.crop_scale,
        hflip=0.5,
        interpolation="bilinear",
        auto_augment=rec.rand_augment if phase != "mae" else None,
        mean=(MEAN,) * 3,
        std=(STD,) * 3,
    )


class ViewsAxis(Dataset):
    """Give single-view clips the `[views=1, C, T, H, W]` layout of multi-view evaluation."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return dataset_len(self.dataset)

    def __getitem__(self, i: int):
        x, y = self.dataset[i]
        return x.unsqueeze(0), y


def denormalise(x: torch.Tensor, dataset: str) -> torch.Tensor:
    """Model input `[..., 3, H, W]` back to [0, 1] pixels (for reconstructions)."""
    if dataset in ("fashion-mnist", "moving-fashion-mnist"):
        return (x * STD + MEAN).clamp(0, 1)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (x * std + mean).clamp(0, 1)
