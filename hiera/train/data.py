"""Datasets and sampling for a training phase, built so that a resumed run sees exactly the same batches.

Bit-identical resume needs three things from the data side:
- the order of an epoch depends only on (seed, epoch): `DistributedSampler(shuffle, seed)` + `set_epoch`;
- a resumed epoch skips the batches already consumed (`SkipSampler`), so the data position is a batch count;
- random augmentation depends only on (seed, epoch, index), not on the process that happens to run it
  (`SeededAugment`, `hiera/data/wrappers.py`): timm's transforms draw from Python's `random`, NumPy's global RNG
  (RandAugment's op choice) and torch's; each sample runs under its own seeded copy of the three, whatever the
  worker count.

The embedded data (Fashion-MNIST, moving Fashion-MNIST) are the default; ImageNet folders and Kinetics lists
come from `hiera/data/real.py`. Images are augmented with timm's `create_transform` (random resized crop over the
recipe's scale, flip, RandAugment when the recipe asks for it); evaluation uses the deterministic resize of the
whole 28x28 image (Fashion-MNIST) or timm's resize + centre crop (ImageNet).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler, Subset

from hiera.data.fashion_mnist import FashionMNIST
from hiera.data.moving import MovingFashionMNIST
from hiera.data.real import KineticsCSV, image_folder
from hiera.data.wrappers import (
    AugmentedFashionMNIST,
    SeededAugment,
    ViewsAxis,
    dataset_len,
    fashion_mnist_train_transform,
)
from hiera.model.config import ModelConfig
from hiera.recipes import Recipe
from hiera.train.config import TrainConfig


def subset(dataset: Dataset, n: int | None, seed: int, shuffle: bool) -> Dataset:
    """The first `n` samples (after a seeded shuffle when `shuffle`), or the whole dataset."""
    if n is None or n >= dataset_len(dataset):
        return dataset
    order = torch.randperm(dataset_len(dataset), generator=torch.Generator().manual_seed(seed)) if shuffle else None
    return Subset(dataset, (order[:n] if order is not None else torch.arange(n)).tolist())


def build_datasets(cfg: TrainConfig, model_cfg: ModelConfig, rec: Recipe) -> tuple[Dataset, Dataset | None]:
    """(training set, evaluation set) for the phase; evaluation clips carry a views axis `[V, C, T, H, W]`."""
    size = model_cfg.input_size[-1]
    train: Dataset
    if cfg.dataset == "fashion-mnist":
        root = cfg.data_path
        train = AugmentedFashionMNIST("train", size, fashion_mnist_train_transform(size, rec, cfg.phase), root)
        train = SeededAugment(subset(train, cfg.train_samples, cfg.seed, shuffle=True), cfg.seed)
        test = subset(FashionMNIST("test", size, root), cfg.eval_samples, cfg.seed, shuffle=False)
        return train, test
    if cfg.dataset == "moving-fashion-mnist":
        frames = model_cfg.input_size[0]
        # Clips are generated deterministically from (split, index): no augmentation to seed.
        train = MovingFashionMNIST(
            "train", length=cfg.train_samples or 6000, frames=frames, size=size, root=cfg.data_path
        )
        test = MovingFashionMNIST("test", length=cfg.eval_samples or 1000, frames=frames, size=size, root=cfg.data_path)
        return train, ViewsAxis(test)
    assert cfg.data_path is not None  # TrainConfig requires it for ImageNet and Kinetics
    if cfg.dataset == "imagenet":
        train = image_folder(
            cfg.data_path,
            "train",
            size,
            train=True,
            rand_augment=rec.rand_augment if cfg.phase != "mae" else None,
            crop_scale=rec.crop_scale,
        )
        train = SeededAugment(subset(train, cfg.train_samples, cfg.seed, shuffle=True), cfg.seed)
        val = subset(image_folder(cfg.data_path, "val", size, train=False), cfg.eval_samples, cfg.seed, False)
        return train, val

    folder = Path(cfg.data_path)
    train = KineticsCSV(
        folder / "train.csv",
        frames=model_cfg.input_size[0],
        size=size,
        train=True,
        repeat=rec.repeated_sampling,
        crop_scale=rec.crop_scale,
        seed=cfg.seed,
    )
    val = KineticsCSV(
        folder / "val.csv",
        frames=model_cfg.input_size[0],
        size=size,
        train=False,
        temporal_views=cfg.eval_views[0],
        spatial_views=cfg.eval_views[1],
    )
    return train, subset(val, cfg.eval_samples, cfg.seed, False)


class SkipSampler(Sampler[int]):
    """This rank's indices of one epoch, without the first `skip` samples (the batches already consumed)."""

    def __init__(self, dataset: Dataset, rank: int, world: int, seed: int, epoch: int, skip: int = 0):
        self.inner: DistributedSampler[int] = DistributedSampler(
            dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=True
        )
        self.inner.set_epoch(epoch)
        self.skip = skip

    def __iter__(self) -> Iterator[int]:
        return iter(list(self.inner)[self.skip :])

    def __len__(self) -> int:
        return len(self.inner) - self.skip


def set_epoch(dataset: Dataset | None, epoch: int) -> None:
    """Tell a dataset (or the dataset under a Subset) which epoch it serves, when it cares."""
    while dataset is not None:
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        dataset = getattr(dataset, "dataset", None)
