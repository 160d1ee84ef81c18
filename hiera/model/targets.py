"""MAE reconstruction targets besides pixels: HOG, MaskFeat-style (paper Table 3c).

The paper reports HOG targets (85.7 image / 86.1 video at 400/800 epochs) but gives neither the HOG parameters
nor code; MaskFeat (Wei et al. 2022) is the evident source. The choices made here, all as in MaskFeat's
description of HOG as a target:
- gradients by the centred [-1, 0, 1] filter along x and y, on each RGB channel separately, with the image edge
  replicated (no artificial gradient at the border);
- **9 unsigned orientation bins** over [0, 180) degrees, bin k centred at (k + 0.5) x 20 degrees, each pixel
  voting its gradient magnitude into the two nearest bins by linear interpolation;
- **8x8-pixel cells**; each cell's histogram is **L2-normalised on its own** (eps 1e-6), no block normalisation;
- per 16x16 predicted token (the MAE's prediction stride): 2x2 cells x 9 bins x 3 channels = 108 values,
  flattened as (channel, cell row, cell column, bin).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

CELL, BINS = 8, 9


def hog_cells(images: torch.Tensor, cell: int = CELL, bins: int = BINS) -> torch.Tensor:
    """`[B, C, H, W]` -> per-cell normalised histograms `[B, C, H/cell, W/cell, bins]`."""
    b, c, h, w = images.shape
    x = images.reshape(b * c, 1, h, w).float()
    kernel = torch.tensor([-1.0, 0.0, 1.0], device=x.device)
    gx = F.conv2d(F.pad(x, (1, 1, 0, 0), mode="replicate"), kernel.view(1, 1, 1, 3))
    gy = F.conv2d(F.pad(x, (0, 0, 1, 1), mode="replicate"), kernel.view(1, 1, 3, 1))
    magnitude = torch.sqrt(gx**2 + gy**2)
    angle = torch.remainder(torch.atan2(gy, gx), math.pi)  # unsigned orientation in [0, pi)
    pos = angle / (math.pi / bins) - 0.5  # bin centres at (k + 0.5) * pi / bins
    low = torch.floor(pos)
    w_high = pos - low
    low = torch.remainder(low, bins).long()
    high = torch.remainder(low + 1, bins)
    hist = torch.zeros(b * c, bins, h, w, device=x.device)
    hist.scatter_add_(1, low, magnitude * (1 - w_high))
    hist.scatter_add_(1, high, magnitude * w_high)
    cells = F.avg_pool2d(hist, cell) * cell * cell  # sum of votes per cell
    cells = cells / (cells.norm(dim=1, keepdim=True) + 1e-6)
    return cells.view(b, c, bins, h // cell, w // cell).permute(0, 1, 3, 4, 2)


def hog_targets(images: torch.Tensor, stride: int, cell: int = CELL, bins: int = BINS) -> torch.Tensor:
    """`[B, C, H, W]` -> `[B, (H/stride) * (W/stride), C * (stride/cell)^2 * bins]`, tokens in raster order."""
    if stride % cell:
        raise ValueError(f"the prediction stride {stride} must be a multiple of the HOG cell {cell}")
    hist = hog_cells(images, cell, bins)  # [B, C, Hc, Wc, bins]
    b, c, hc, wc, _ = hist.shape
    k = stride // cell
    hist = hist.view(b, c, hc // k, k, wc // k, k, bins).permute(0, 2, 4, 1, 3, 5, 6)  # [B, h, w, C, k, k, bins]
    return hist.reshape(b, (hc // k) * (wc // k), -1)
