"""The embedded datasets: Fashion-MNIST from local IDX files and deterministic moving Fashion-MNIST clips."""

import gzip
import math

import numpy as np
import pytest
import torch

from hiera.data import fashion_mnist
from hiera.data.fashion_mnist import FILES, FashionMNIST, find_root, load_split
from hiera.data.moving import MovingFashionMNIST, clip_path, direction_bin


def write_idx(path, array, magic):
    header = np.array([magic, *array.shape], dtype=">u4").tobytes()
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def fake_root(tmp_path):
    """Twelve 28x28 images per split, made here (tests make their own data)."""
    rng = np.random.default_rng(0)
    for images, labels in FILES.values():
        write_idx(tmp_path / images, rng.integers(0, 256, (12, 28, 28)), 2051)
        write_idx(tmp_path / labels, np.arange(12) % 10, 2049)
    return tmp_path


def test_reads_idx_files(fake_root):
    images, labels = load_split("train", fake_root)
    assert images.shape == (12, 28, 28)
    assert images.dtype == np.uint8
    assert labels.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    ds = FashionMNIST("test", size=32, root=fake_root)
    x, y = ds[3]
    assert x.shape == (3, 32, 32)
    assert y == 3
    assert torch.equal(x[0], x[2])


def test_missing_and_corrupted_files_are_one_line_errors(fake_root, tmp_path_factory, monkeypatch):
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist") as err:
        find_root(empty)
    assert "\n" not in str(err.value)
    (fake_root / FILES["train"][0]).write_bytes(b"not gzip")
    with pytest.raises(ValueError, match="not a readable gzip file"):
        load_split("train", fake_root)
    write_idx(fake_root / FILES["train"][0], np.zeros((12, 28, 28)), 2049)
    with pytest.raises(ValueError, match="magic 2051"):
        load_split("train", fake_root)
    with pytest.raises(ValueError, match="split='val'"):
        load_split("val", fake_root)
    monkeypatch.setenv("HIERA_DATA_DIR", str(empty))
    assert fashion_mnist.search_paths()[0] == empty / "fashion-mnist"


@pytest.mark.skipif(
    not fashion_mnist.DEBIAN.is_dir(),
    reason="Debian dataset-fashion-mnist not installed "
    "(bash quickstart.sh installs it where apt-get and root are available)",
)
def test_debian_package_matches_the_published_dataset():
    train_x, train_y = load_split("train", fashion_mnist.DEBIAN)
    test_x, test_y = load_split("test", fashion_mnist.DEBIAN)
    assert train_x.shape == (60000, 28, 28)
    assert test_x.shape == (10000, 28, 28)
    assert train_y[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert test_y[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    assert np.bincount(train_y).tolist() == [6000] * 10
    pixels = train_x / 255.0
    assert abs(pixels.mean() - 0.2860) < 5e-4
    assert abs(pixels.std() - 0.3530) < 5e-4


def test_moving_clips_are_deterministic_and_bounce(fake_root):
    ds = MovingFashionMNIST("train", length=50, frames=16, canvas=64, root=fake_root)
    a, b = ds.raw_clip(7), MovingFashionMNIST("train", length=50, root=fake_root).raw_clip(7)
    assert np.array_equal(a[0], b[0])
    assert a[1:] == b[1:]
    assert not np.array_equal(a[0], ds.raw_clip(8)[0])
    assert not np.array_equal(a[0], MovingFashionMNIST("test", length=50, root=fake_root).raw_clip(7)[0])
    x, y = ds[7]
    assert x.shape == (3, 16, 64, 64)
    assert y == a[1]
    free, bounced = 64 - 28, 0
    for seed in range(200):  # the object stays on the canvas and moves `speed` px per frame between bounces
        path, theta = clip_path(seed, 16, 64, 3.6)
        assert path.min() >= 0
        assert path.max() <= free
        # frame 1 from frame 0: a straight step along theta (y = sin, x = cos), mirrored at a wall it crossed
        ahead = path[0] + 3.6 * np.array([math.sin(theta), math.cos(theta)])
        assert np.allclose(path[1], np.where(ahead < 0, -ahead, np.where(ahead > free, 2 * free - ahead, ahead)))
        steps = np.linalg.norm(np.diff(path, axis=0), axis=1)
        assert (steps <= 3.6 + 1e-9).all()  # a bounce only folds the step back
        inside = ((path[:-1] >= 3.6) & (path[:-1] <= free - 3.6)).all(axis=1)  # no wall within reach
        assert np.allclose(steps[inside], 3.6)
        bounced += int((~inside).any())
    assert bounced > 20  # the walls were hit: the reflection above was exercised


def test_direction_labels():
    assert direction_bin(0.0) == 0
    assert direction_bin(math.pi / 2) == 2
    assert direction_bin(math.pi) == 4
    assert direction_bin(2 * math.pi - 0.1) == 0
    assert direction_bin(math.radians(22.4)) == 0
    assert direction_bin(math.radians(22.6)) == 1
    path, theta = clip_path(3, 2, 640, 3.6)  # a canvas too large to bounce: displacement follows theta
    dy, dx = path[1] - path[0]
    assert direction_bin(math.atan2(dy, dx) % (2 * math.pi)) == direction_bin(theta)
