"""HOG targets against hand-computed values, and the MAE with a HOG target (paper Table 3c)."""

import math

import pytest
import torch

from hiera.model.mae import build_mae
from hiera.model.targets import hog_cells, hog_targets


def test_vertical_edge_splits_between_the_bins_around_zero_degrees():
    img = torch.zeros(1, 1, 16, 16)
    img[..., 8:] = 1.0  # a step along x at column 8: gradient (gx, gy) = (1, 0) at columns 7 and 8
    cells = hog_cells(img)[0, 0]  # [2, 2, 9]
    # 0 degrees lies halfway between bin 8 (170 deg) and bin 0 (10 deg): equal votes, then L2 norm -> 1/sqrt(2).
    expect = torch.zeros(9)
    expect[0] = expect[8] = 1 / math.sqrt(2)
    for row in range(2):
        for col in range(2):  # both cell columns touch the edge (column 7 is in the left cell, 8 in the right)
            assert torch.allclose(cells[row, col], expect, atol=1e-6)


def test_horizontal_edge_goes_to_the_90_degree_bin_and_flat_cells_are_zero():
    img = torch.zeros(1, 1, 24, 16)
    img[..., 8:, :] = 2.0  # a step along y at row 8: gradient (0, 2) at rows 7 and 8; rows 16-23 flat
    cells = hog_cells(img)[0, 0]  # [3, 2, 9]
    expect = torch.zeros(9)
    expect[4] = 1.0  # 90 degrees is the centre of bin 4 (80-100 degrees)
    for row in (0, 1):
        for col in (0, 1):
            assert torch.allclose(cells[row, col], expect, atol=1e-6)
    assert torch.count_nonzero(cells[2]) == 0  # no gradient in the third cell row (replicated border too)


def test_diagonal_and_token_layout():
    ramp = torch.arange(32.0)
    img = (ramp[:, None] + ramp[None, :]).expand(1, 3, 32, 32)  # gradient (1, 1): 45 degrees, in bin 2
    targets = hog_targets(img, stride=16)  # 2x2 tokens of 16 px: 3 channels x 2x2 cells x 9 bins
    assert targets.shape == (1, 4, 108)
    one = targets[0, 3].view(3, 2, 2, 9)  # bottom-right token, first cell: interior pixels only
    expect = torch.zeros(9)
    # 45 deg lies 3/4 of the way from bin 1's centre (30 deg) to bin 2's (50 deg): votes 1/4 and 3/4, L2-normalised.
    expect[1], expect[2] = 0.25 / math.sqrt(0.25**2 + 0.75**2), 0.75 / math.sqrt(0.25**2 + 0.75**2)
    for ch in range(3):
        assert torch.allclose(one[ch, 0, 0], expect, atol=1e-5)
    with pytest.raises(ValueError, match="multiple of the HOG cell"):
        hog_targets(img, stride=12)


@pytest.mark.parametrize(
    ("name", "shape"), [("hiera_tiny_224.b_max_pool", (2, 3, 224, 224)), ("mae_hiera_tiny_16x224", (1, 3, 4, 64, 64))]
)
def test_mae_with_hog_target_trains(name, shape):
    overrides = {} if len(shape) == 4 else {"input_size": shape[2:]}
    model = build_mae(name, target="hog", **overrides)
    loss, pred, label, _ = model(torch.randn(*shape), mask_ratio=0.5, generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert pred.shape[-1] == label.shape[-1] == 108
    assert torch.isfinite(loss)
    with pytest.raises(ValueError, match="'pixel', 'hog'"):
        build_mae(name, target="sift", **overrides)


def test_pixel_targets_by_hand():
    """Image targets are each 8x8-px token's (c, y, x) pixels; video takes each tubelet's first frame as (y, x, c);
    the loss normalises every target patch by its own mean and variance (norm_pix_loss)."""
    tiny = dict(
        input_size=(32, 32),
        mask_unit_size=(4, 4),
        embed_dim=16,
        num_heads=1,
        stages=(1, 1, 1, 1),
        patch_stride=(2, 2),
        patch_kernel=(3, 3),
        patch_padding=(1, 1),
        num_classes=0,
    )
    mae = build_mae("hiera_tiny_224", decoder_dim=16, decoder_depth=1, decoder_heads=1, **tiny)
    assert mae.pred_stride == 8  # patch stride 2 x q_stride 2 ** q_pool 2
    x = torch.arange(3 * 32 * 32, dtype=torch.float32).view(1, 3, 32, 32)
    t = mae.pixel_targets(x)
    assert t.shape == (1, 16, 3 * 64)
    token = 1 * 4 + 2  # row 1, column 2 of the 4x4 token grid
    hand = [x[0, c, 8 + i, 16 + j].item() for c in range(3) for i in range(8) for j in range(8)]
    assert t[0, token].tolist() == hand
    patch = torch.tensor(hand)
    normalised = (patch - patch.mean()) / (patch.var() + 1e-6) ** 0.5
    mask = torch.ones(1, 16, dtype=torch.bool)  # 16 mask units of 8x8 px, one predicted token each
    mask[0, token] = False
    _, _, label, _ = mae(x, mask=mask)
    assert label.shape == (1, 192)
    assert torch.allclose(label[0], normalised, atol=1e-5)

    video = dict(
        tiny,
        input_size=(4, 32, 32),
        mask_unit_size=(1, 4, 4),
        q_stride=(1, 2, 2),
        patch_stride=(2, 2, 2),
        patch_kernel=(3, 3, 3),
        patch_padding=(1, 1, 1),
        kv_stride=(1, 2, 2),
    )
    vmae = build_mae("hiera_tiny_16x224", decoder_dim=16, decoder_depth=1, decoder_heads=1, **video)
    clip = torch.arange(3 * 4 * 32 * 32, dtype=torch.float32).view(1, 3, 4, 32, 32)
    vt = vmae.pixel_targets(clip)
    assert vt.shape == (1, 2 * 16, 64 * 3)
    token = 1 * 16 + 0 * 4 + 3  # second tubelet (frames 2-3), token row 0, column 3
    hand = [clip[0, c, 2, i, 24 + j].item() for i in range(8) for j in range(8) for c in range(3)]
    assert vt[0, token].tolist() == hand
