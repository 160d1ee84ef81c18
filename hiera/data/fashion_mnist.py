"""Fashion-MNIST (Xiao et al. 2017) read from local IDX files: the embedded image proxy for ImageNet-1K.

Nothing is downloaded. The files come from Debian's `dataset-fashion-mnist` package
(`/usr/share/datasets/fashion-mnist/`), or from any folder holding the four `*-ubyte.gz` files:
`$HIERA_DATA_DIR/fashion-mnist`, then `data/fashion-mnist` in the repository, then the Debian path.
60,000 train / 10,000 test images, 28x28 grey, 10 balanced classes; pixel mean/std 0.2860 / 0.3530 (train).
Samples are resized to the model's input and repeated to 3 channels, so every Hiera/MViTv2 variant runs on them
at a proxy resolution (`hiera/proxy.py`: 48x48 px with 4x4-token mask units gives 9 units per image).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from hiera.env import REPO
from hiera.env import find_root as find_project_root

CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
MEAN, STD = 0.2860, 0.3530
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
DEBIAN = Path("/usr/share/datasets/fashion-mnist")


def search_paths() -> list[Path]:
    paths = []
    if os.environ.get("HIERA_DATA_DIR"):
        paths.append(Path(os.environ["HIERA_DATA_DIR"]) / "fashion-mnist")
    root = find_project_root()  # quickstart.sh's copy in the project (or in the code's clone), then Debian's package
    local = [d / "data" / "fashion-mnist" for d in dict.fromkeys(([root] if root else []) + [REPO])]
    return paths + local + [DEBIAN]


def find_root(root: str | Path | None = None) -> Path:
    """The first folder holding all four files, or a one-line error saying how to get them."""
    candidates = [Path(root)] if root is not None else search_paths()
    for path in candidates:
        if all((path / name).is_file() for pair in FILES.values() for name in pair):
            return path
    raise FileNotFoundError(
        f"Fashion-MNIST not found in {', '.join(map(str, candidates))}; install it with "
        "`sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu) or put the four *-ubyte.gz files "
        "of Fashion-MNIST in data/fashion-mnist/"
    )


def _read_idx(path: Path, magic: int, ndim: int) -> np.ndarray:
    try:
        with gzip.open(path) as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise ValueError(f"{path} is not a readable gzip file ({e}); reinstall dataset-fashion-mnist") from None
    head = np.frombuffer(raw[: 4 * (1 + ndim)], dtype=">u4") if len(raw) >= 4 * (1 + ndim) else np.zeros(0)
    if len(head) != 1 + ndim or head[0] != magic:
        raise ValueError(f"{path} is not an IDX file with magic {magic}; reinstall dataset-fashion-mnist")
    shape = tuple(int(n) for n in head[1:])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 * (1 + ndim))
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path} holds {data.size} bytes of data, its header says {shape}; the file is truncated")
    return data.reshape(shape)


def load_split(split: str, root: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`(images [N, 28, 28] uint8, labels [N] int64)` of `split` ("train" or "test")."""
    if split not in FILES:
        raise ValueError(f"split={split!r} is not one of 'train', 'test'")
    base = find_root(root)
    images = _read_idx(base / FILES[split][0], 2051, 3)
    labels = _read_idx(base / FILES[split][1], 2049, 1).astype(np.int64)
    if len(images) != len(labels):
        raise ValueError(f"{base}: {len(images)} images but {len(labels)} labels in the {split} split")
    return images, labels


def to_input(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 `[..., 28, 28]` -> normalised float `[..., 3, size, size]` (bilinear resize, grey repeated)."""
    lead = images.shape[:-2]
    x = images.reshape(-1, 1, *images.shape[-2:]).float().div_(255)
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    x = (x - MEAN) / STD
    return x.expand(-1, 3, size, size).reshape(*lead, 3, size, size)


class FashionMNIST(Dataset):
    """Images `[3, size, size]` (normalised) and labels 0-9 (`CLASSES`)."""

    def __init__(self, split: str = "train", size: int = 64, root: str | Path | None = None):
        images, labels = load_split(split, root)
        self.images, self.labels, self.size = torch.from_numpy(images.copy()), torch.from_numpy(labels), size

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return to_input(self.images[i], self.size), int(self.labels[i])
