"""Real datasets from local files: ImageNet-style folders and Kinetics-style video lists (paper §4, Tabs. 11, 14).

- `image_folder(root, split, size, train)`: `root/<split>/<class>/<image>` through torchvision's `ImageFolder`
  with timm's transforms (train: random resized crop, flip, RandAugment / mixup are the recipe's; eval:
  resize to size / 0.875 then centre crop, bicubic, as the official Hiera's evaluation).
- `KineticsCSV(csv, ...)`: a CSV of `path,label` lines (paths relative to the CSV's folder or absolute), decoded
  with PyAV. Clips are `frames` frames taken every `stride` frames (16 x 4 as the paper), from a random start
  in training — `repeat` clips per video for repeated sampling (Tab. 11) — and, in evaluation,
  `temporal_views` evenly spaced starts x `spatial_views` crops (left/centre/right, 3 x 5 views as the paper).
Nothing is downloaded; a missing file or a malformed line is a one-line error naming it.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from hiera.data.augment import posterize_zero_bits

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def image_folder(
    root: str | Path,
    split: str = "train",
    size: int = 224,
    train: bool = True,
    rand_augment: str | None = None,
    crop_scale: tuple[float, float] = (0.08, 1.0),
):
    """`torchvision.datasets.ImageFolder` of `root/split` with timm's train or eval transform."""
    from timm.data import create_transform
    from torchvision.datasets import ImageFolder

    posterize_zero_bits()
    path = Path(root) / split
    if not path.is_dir():
        raise FileNotFoundError(f"{path} does not exist; expected ImageNet-style folders root/{split}/<class>/*.JPEG")
    transform = create_transform(
        size,
        is_training=train,
        auto_augment=rand_augment if train else None,
        scale=crop_scale,
        interpolation="bicubic",
        crop_pct=0.875,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
    )
    return ImageFolder(str(path), transform=transform)


def read_entries(path: str | Path) -> list[tuple[Path, int]]:
    """`(video path, label)` per line of a Kinetics-style CSV (`path,label`; a header line is allowed)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video list {path} does not exist; write one 'path,label' line per video")
    entries = []
    with path.open(newline="") as f:
        for n, row in enumerate(csv.reader(f), start=1):
            if not row or (n == 1 and row[-1].strip().lower() == "label"):
                continue
            if len(row) != 2 or not row[1].strip().lstrip("-").isdigit():
                raise ValueError(f"{path}:{n}: expected 'path,label' with an integer label, got {','.join(row)!r}")
            video = Path(row[0].strip())
            entries.append((video if video.is_absolute() else path.parent / video, int(row[1])))
    if not entries:
        raise ValueError(f"{path} lists no videos")
    return entries


def decode(path: Path) -> np.ndarray:
    """All frames of a video as uint8 `[N, H, W, 3]` (PyAV)."""
    import av

    if not path.is_file():
        raise FileNotFoundError(f"video {path} does not exist")
    try:
        with av.open(str(path)) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    except av.error.FFmpegError as e:
        raise ValueError(f"cannot decode {path}: {e}") from None
    if not frames:
        raise ValueError(f"{path} has no video frames")
    return np.stack(frames)


def clip_indices(num: int, frames: int, stride: int, start: int) -> np.ndarray:
    """Frame indices of a clip; a video shorter than the clip repeats its last frame."""
    return np.minimum(start + stride * np.arange(frames), num - 1)


class KineticsCSV(Dataset):
    """Clips `[3, frames, size, size]` (or `[repeat, 3, frames, size, size]`, or `[views, 3, ...]` in evaluation)."""

    def __init__(
        self,
        csv_path: str | Path,
        frames: int = 16,
        stride: int = 4,
        size: int = 224,
        train: bool = True,
        repeat: int = 1,
        temporal_views: int = 5,
        spatial_views: int = 3,
        crop_scale: tuple[float, float] = (0.5, 1.0),
        seed: int = 0,
    ):
        self.entries = read_entries(csv_path)
        self.frames, self.stride, self.size, self.train = frames, stride, size, train
        self.repeat, self.temporal_views, self.spatial_views = repeat, temporal_views, spatial_views
        self.crop_scale, self.seed, self.epoch = crop_scale, seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Training clips depend on (seed, epoch, index): reproducible, and different every epoch."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.entries)

    def _normalise(self, clip: np.ndarray) -> torch.Tensor:  # [T, H, W, 3] uint8 -> [3, T, H, W] float
        x = torch.from_numpy(clip).float().div_(255).permute(3, 0, 1, 2)
        mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1, 1)
        return (x - mean) / std

    def _resize(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        return F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path, label = self.entries[i]
        video = decode(path)
        n, h, w = video.shape[:3]
        span = (self.frames - 1) * self.stride + 1
        if self.train:
            rng = np.random.default_rng([self.seed, self.epoch, i])
            clips = []
            for _ in range(self.repeat):
                start = int(rng.integers(0, max(n - span, 0) + 1))
                x = self._normalise(video[clip_indices(n, self.frames, self.stride, start)])
                area = h * w * rng.uniform(*self.crop_scale)  # random crop with the area scale of Tab. 11
                side = int(min(h, w, round(area**0.5)))
                top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
                x = self._resize(x[:, :, top : top + side, left : left + side], self.size, self.size)
                clips.append(x.flip(-1) if rng.random() < 0.5 else x)
            return (clips[0] if self.repeat == 1 else torch.stack(clips)), label
        starts = np.linspace(0, max(n - span, 0), self.temporal_views).round().astype(int)
        scale = self.size / min(h, w)  # short side to `size`, then crops along the long side
        views = []
        for start in starts:
            x = self._normalise(video[clip_indices(n, self.frames, self.stride, int(start))])
            x = self._resize(x, max(self.size, round(h * scale)), max(self.size, round(w * scale)))
            long_h = x.shape[-2] > x.shape[-1]
            extent = x.shape[-2] if long_h else x.shape[-1]
            for off in np.linspace(0, extent - self.size, self.spatial_views).round().astype(int):
                views.append(x[:, :, off : off + self.size] if long_h else x[..., off : off + self.size])
        return torch.stack([v[..., : self.size, : self.size] for v in views]), label
