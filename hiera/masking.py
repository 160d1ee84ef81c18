"""MAE masks over mask units, and the sparse encoder's view of them (paper §3.1, §4 "MAE masking").

Convention, as the official release: a mask is a bool tensor `[B, #units]` with **True = keep** (the reverse
of the original MAE), units numbered in raster order over the mask-unit grid (`ModelConfig.mask_unit_grid`,
e.g. 7x7 = 49 for images, 8x7x7 = 392 for video). Every sample keeps the same number of units, so kept
tokens stay a dense `[B, N_kept, C]` tensor. The MAE loss uses the complement (True = masked).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from hiera.config import ModelConfig


def num_kept(num_units: int, mask_ratio: float) -> int:
    """Units kept at `mask_ratio`: floor(#units * (1 - ratio)), as the official `int(...)`."""
    if not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f"mask_ratio={mask_ratio} must be in [0, 1)")
    return max(1, int(num_units * (1 - mask_ratio)))


def random_mask(
    cfg: ModelConfig, batch: int, mask_ratio: float, generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """A fresh random mask per sample, `[B, #units]` bool with True = keep; reproducible with `generator`."""
    units = math.prod(cfg.mask_unit_grid)
    keep = num_kept(units, mask_ratio)
    noise = torch.rand(batch, units, generator=generator, device="cpu" if generator is None else generator.device)
    kept = noise.argsort(dim=1)[:, :keep]
    mask = torch.zeros(batch, units, dtype=torch.bool, device=noise.device)
    mask.scatter_(1, kept, True)
    return mask.to(device)


def check_mask(mask: torch.Tensor, cfg: ModelConfig, batch: int) -> int:
    """Validate a keep-mask for `cfg` and a batch of `batch`; return the number of kept units per sample."""
    units = math.prod(cfg.mask_unit_grid)
    if not cfg.uses_mask_units:
        raise ValueError("this variant pools across mask units (pool_kernel='overlap', separate_and_pad=False), "
                         "so it cannot encode sparsely; use its MAE step (separate_and_pad=True)")
    if mask.dtype != torch.bool or tuple(mask.shape) != (batch, units):
        raise ValueError(f"mask must be a bool tensor [B={batch}, {units}] (True = keep, units in raster order "
                         f"over the {cfg.mask_unit_grid} grid); got {mask.dtype} {tuple(mask.shape)}")
    counts = mask.sum(dim=1)
    if int(counts.min()) != int(counts.max()) or int(counts.min()) == 0:
        raise ValueError(f"every sample must keep the same, non-zero number of units; got {counts.tolist()}")
    return int(counts[0])


def zero_masked_pixels(x: torch.Tensor, mask: torch.Tensor, cfg: ModelConfig) -> torch.Tensor:
    """Zero the pixels of masked units before the (overlapping) patch embedding, as the official release."""
    m = mask.view(mask.shape[0], 1, *cfg.mask_unit_grid).to(x.dtype)
    return x * F.interpolate(m, size=tuple(x.shape[2:]), mode="nearest")


def kept_units(mask: torch.Tensor, grid: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices `[B, K]` (ascending) and grid coordinates `[B, K, D]` of the kept units."""
    batch = mask.shape[0]
    index = mask.nonzero()[:, 1].view(batch, -1)
    coords = torch.stack(torch.unravel_index(index, grid), dim=-1)
    return index, coords
