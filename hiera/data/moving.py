"""Moving Fashion-MNIST: deterministic clips of a garment bouncing on a canvas, the embedded video proxy.

The Moving-MNIST recipe (Srivastava et al. 2015) with Fashion-MNIST objects, so images and video share one
source and its train/test split (train clips use train images). Clip `i` of a split is generated on demand
from an RNG seeded with (split, i): the dataset is reproducible and never stored.

- canvas `canvas`x`canvas` (default 64), one 28x28 object, `frames` frames (default 16, as Hiera's 16x224);
- start position uniform in [0, canvas - 28]^2, direction theta uniform on [0, 2pi), speed `speed` px/frame
  (default 3.6, i.e. 0.1 of the free range on 64 px); position and velocity reflect at the walls;
- labels: `label="class"` -> the object's Fashion-MNIST class (0-9, appearance);
  `label="direction"` -> the initial direction binned into 8 sectors of 45 degrees, bin k covering
  [k*45 - 22.5, k*45 + 22.5) degrees with 0 = moving right (+x) and 2 = moving down (+y, image rows grow
  downwards): it needs temporal modelling, a better test of the video-specific parts.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from hiera.data.fashion_mnist import load_split, to_input

SPLIT_SEED = {"train": 0, "test": 1}


def clip_path(seed: int, frames: int, canvas: int, speed: float, size: int = 28) -> tuple[np.ndarray, float]:
    """Top-left positions `[frames, 2]` (y, x) of the object and its initial direction (radians)."""
    rng = np.random.default_rng(seed)
    free = canvas - size
    pos = rng.uniform(0, free, size=2)  # (y, x)
    theta = rng.uniform(0, 2 * math.pi)
    vel = speed * np.array([math.sin(theta), math.cos(theta)])
    path = np.empty((frames, 2))
    for t in range(frames):
        path[t] = pos
        pos = pos + vel
        for a in range(2):  # reflect at the walls
            if pos[a] < 0:
                pos[a], vel[a] = -pos[a], -vel[a]
            elif pos[a] > free:
                pos[a], vel[a] = 2 * free - pos[a], -vel[a]
    return path, theta


def direction_bin(theta: float, bins: int = 8) -> int:
    width = 2 * math.pi / bins
    return int(((theta + width / 2) % (2 * math.pi)) // width)


class MovingFashionMNIST(Dataset):
    """Clips `[3, frames, size, size]` (normalised) and their label; `len` clips per split."""

    def __init__(
        self,
        split: str = "train",
        length: int = 2000,
        frames: int = 16,
        canvas: int = 64,
        size: int | None = None,
        speed: float = 3.6,
        label: str = "class",
        root: str | Path | None = None,
    ):
        if label not in ("class", "direction"):
            raise ValueError(f"label={label!r} is not one of 'class', 'direction'")
        if canvas < 28:
            raise ValueError(f"canvas={canvas} must be at least the object size 28")
        images, labels = load_split(split, root)
        self.images, self.labels = images, labels
        self.split, self.length, self.frames, self.canvas = split, length, frames, canvas
        self.size, self.speed, self.label = size or canvas, speed, label

    def __len__(self) -> int:
        return self.length

    def raw_clip(self, i: int) -> tuple[np.ndarray, int, float]:
        """uint8 frames `[frames, canvas, canvas]`, the object's class and the initial direction."""
        if not 0 <= i < self.length:
            raise IndexError(f"clip {i} out of range 0..{self.length - 1}")
        seed = (SPLIT_SEED[self.split] << 32) + i
        obj = int(np.random.default_rng(seed + (1 << 40)).integers(len(self.labels)))
        path, theta = clip_path(seed, self.frames, self.canvas, self.speed)
        video = np.zeros((self.frames, self.canvas, self.canvas), dtype=np.uint8)
        for t, (y, x) in enumerate(np.rint(path).astype(int)):
            np.maximum(video[t, y : y + 28, x : x + 28], self.images[obj], out=video[t, y : y + 28, x : x + 28])
        return video, int(self.labels[obj]), theta

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        video, cls, theta = self.raw_clip(i)
        x = to_input(torch.from_numpy(video), self.size)  # [frames, 3, size, size]
        return x.transpose(0, 1).contiguous(), cls if self.label == "class" else direction_bin(theta)
