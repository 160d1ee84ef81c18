"""ImageNet-style folders and Kinetics-style video lists, on files the tests write themselves."""

import av
import numpy as np
import pytest
import torch
from PIL import Image

from hiera.data.real import KineticsCSV, image_folder, read_entries


def write_video(path, frames=40, height=48, width=64):
    """A bright square moving right by 1 px per frame, H.264 (frame t's square starts at column t)."""
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for t in range(frames):
            img = np.zeros((height, width, 3), dtype=np.uint8)
            img[16:32, t : t + 16] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


@pytest.fixture
def videos(tmp_path):
    write_video(tmp_path / "a.mp4")
    write_video(tmp_path / "b.mp4", frames=10)  # shorter than a clip: the last frame repeats
    (tmp_path / "list.csv").write_text("path,label\na.mp4,3\nb.mp4,7\n")
    return tmp_path / "list.csv"


def test_training_clips(videos):
    ds = KineticsCSV(videos, frames=8, stride=2, size=32, train=True, repeat=2)
    clips, label = ds[0]
    assert clips.shape == (2, 3, 8, 32, 32)
    assert label == 3
    again, _ = KineticsCSV(videos, frames=8, stride=2, size=32, train=True, repeat=2)[0]
    assert torch.equal(clips, again)  # reproducible from (seed, epoch, index)
    ds.set_epoch(1)
    assert not torch.equal(ds[0][0], clips)
    short, label = KineticsCSV(videos, frames=8, stride=2, size=32)[1]
    assert short.shape == (3, 8, 32, 32)
    assert label == 7


def test_evaluation_views_follow_the_motion(videos):
    views, _ = KineticsCSV(videos, frames=4, stride=4, size=48, train=False, temporal_views=2, spatial_views=3)[0]
    assert views.shape == (6, 3, 4, 48, 48)
    # The square moves right: in the first view, the brightest column advances with time.
    first = views[0, 0].mean(dim=1)  # [T, W] average over rows
    peaks = first.argmax(dim=-1)
    assert (peaks[1:] > peaks[:-1]).all()


def test_bad_lists_are_one_line_errors(tmp_path, videos):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_entries(tmp_path / "none.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("a.mp4,3\nb.mp4,cat\n")
    with pytest.raises(ValueError, match=r"bad.csv:2: expected 'path,label'"):
        read_entries(bad)
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    (tmp_path / "broken.csv").write_text("broken.mp4,1\n")
    with pytest.raises(ValueError, match="cannot decode"):
        KineticsCSV(tmp_path / "broken.csv")[0]


def test_image_folder(tmp_path):
    for cls in ("cat", "dog"):
        (tmp_path / "val" / cls).mkdir(parents=True)
        for k in range(2):
            Image.fromarray(np.full((40, 50, 3), 60 * k, dtype=np.uint8)).save(tmp_path / "val" / cls / f"{k}.png")
    ds = image_folder(tmp_path, "val", size=32, train=False)
    x, y = ds[3]
    assert x.shape == (3, 32, 32)
    assert y == 1
    assert ds.classes == ["cat", "dog"]
    train = image_folder(tmp_path, "val", size=32, train=True, rand_augment="rand-m9-mstd0.5-inc1")
    assert train[0][0].shape == (3, 32, 32)
    with pytest.raises(FileNotFoundError, match="ImageNet-style"):
        image_folder(tmp_path, "train")
