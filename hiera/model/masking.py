"""MAE masks over mask units, and the sparse encoder's view of them (paper §3.1, §4 "MAE masking").

Convention, as the official release: a mask is a bool tensor `[B, #units]` with **True = keep** (the reverse
of the original MAE), units numbered in raster order over the mask-unit grid (`ModelConfig.mask_unit_grid`,
e.g. 7x7 = 49 for images, 8x7x7 = 392 for video). Every sample keeps the same number of units, so kept
tokens stay a dense `[B, N_kept, C]` tensor. The MAE loss uses the complement (True = masked).

Under `torch.compile` (departure from the official release, which uses `nonzero` and boolean indexing): the
number of kept units K sets the shapes of everything after the mask, so it must be a Python int while tracing,
not a value read from the mask. `check_mask` takes it as `num_kept` (the MAE knows it when it makes a mask; in
eager mode it is read from the mask and every check runs), and `true_positions` replaces `nonzero` by a stable
sort of fixed size K. The data-dependent checks (equal, non-zero counts) run in eager mode only.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from hiera.model.config import ModelConfig

MAE_Q_POOL = 2  # MAE pretraining pools q at most twice (paper §4), so pooling stays inside the mask units


def mae_q_pool(q_pool: int) -> int:
    """The q_pool of a variant's MAE encoder: its own, at most `MAE_Q_POOL` (Hiera's 3 becomes 2)."""
    return min(q_pool, MAE_Q_POOL)


def default_mask_ratio(cfg: ModelConfig) -> float:
    """The paper's MAE mask ratio for the config's modality: 0.6 for images (Table 14), 0.9 for video (Table 11)."""
    return 0.6 if cfg.modality == "image" else 0.9


def num_kept(num_units: int, mask_ratio: float) -> int:
    """Units kept at `mask_ratio`: floor(#units * (1 - ratio)), as the official `int(...)`."""
    if not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f"mask_ratio={mask_ratio} must be in [0, 1)")
    return max(1, int(num_units * (1 - mask_ratio)))


def random_mask(
    cfg: ModelConfig,
    batch: int,
    mask_ratio: float,
    generator: torch.Generator | None = None,
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


def fixed_window_mask_error() -> str:
    """Why HieraDet's fixed windows (kv_mode="window") cannot take a sparse MAE mask: the one line every caller says."""
    return (
        "kv_mode='window' attends in fixed windows that span several mask units once pooling shrinks the units, so "
        "kept tokens would attend across masked ones (paper Fig. 6); encode sparsely with kv_mode='mask_unit' (as SAM "
        "2 pretrains Hiera with MAE) and switch to windows after"
    )


def check_mask(mask: torch.Tensor, cfg: ModelConfig, batch: int, num_kept: int | None = None) -> int:
    """Validate a keep-mask for `cfg` and a batch of `batch`; return the number K of kept units per sample.

    `num_kept`: K if the caller knows it (e.g. from the mask ratio). In eager mode the mask is checked against it;
    while `torch.compile` traces, the mask's values are not read (that would break the graph) and K is returned as
    given. Without it, tracing falls back to reading K from the mask eagerly: a graph break, an error under
    `fullgraph=True` that says to pass `num_kept`.
    """
    units = math.prod(cfg.mask_unit_grid)
    if cfg.kv_mode == "window":
        raise ValueError(fixed_window_mask_error())
    if not cfg.uses_mask_units:
        raise ValueError(
            "this variant pools across mask units (pool_kernel='overlap', separate_and_pad=False), "
            "so it cannot encode sparsely; use its MAE step (separate_and_pad=True)"
        )
    if mask.dtype != torch.bool or tuple(mask.shape) != (batch, units):
        raise ValueError(
            f"mask must be a bool tensor [B={batch}, {units}] (True = keep, units in raster order "
            f"over the {cfg.mask_unit_grid} grid); got {mask.dtype} {tuple(mask.shape)}"
        )
    if num_kept is not None and not 1 <= num_kept <= units:
        raise ValueError(f"num_kept={num_kept} must be in 1..{units} (units kept per sample)")
    if not torch.compiler.is_compiling():
        return _count_kept(mask, num_kept)
    return _count_kept_untraced(mask, num_kept) if num_kept is None else num_kept


def _count_kept(mask: torch.Tensor, num_kept: int | None) -> int:
    """The data-dependent half of `check_mask` (reads the mask on the host)."""
    counts = mask.sum(dim=1)
    if int(counts.min()) != int(counts.max()) or int(counts.min()) == 0:
        raise ValueError(f"every sample must keep the same, non-zero number of units; got {counts.tolist()}")
    if num_kept is not None and int(counts[0]) != num_kept:
        raise ValueError(f"the mask keeps {int(counts[0])} units per sample, but num_kept={num_kept}")
    return int(counts[0])


_count_kept_untraced = torch.compiler.disable(
    _count_kept,
    reason="the number of kept units is read from the mask's values; pass num_kept=K (e.g. "
    "hiera.model.masking.num_kept(#units, mask_ratio)) to trace the sparse path as one graph",
)


def zero_masked_pixels(x: torch.Tensor, mask: torch.Tensor, cfg: ModelConfig) -> torch.Tensor:
    """Zero the pixels of masked units before the (overlapping) patch embedding, as the official release."""
    m = mask.view(mask.shape[0], 1, *cfg.mask_unit_grid).to(x.dtype)
    return x * F.interpolate(m, size=tuple(x.shape[2:]), mode="nearest")


def true_positions(flags: torch.Tensor, count: int) -> torch.Tensor:
    """Positions `[B, count]` (ascending) of the True entries of `flags` `[B, N]`, each row holding `count` of them.

    `flags.nonzero()[:, 1].view(B, -1)` with a static shape (`nonzero`'s output size depends on the data, which
    breaks a traced graph): a stable sort puts the True entries first, in their original order.
    """
    return torch.argsort((~flags).to(torch.uint8), dim=1, stable=True)[:, :count]


def kept_units(mask: torch.Tensor, grid: tuple[int, ...], num_kept: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices `[B, K]` (ascending) and grid coordinates `[B, K, D]` of the `num_kept` = K kept units."""
    index = true_positions(mask, num_kept)
    coords = torch.stack(torch.unravel_index(index, grid), dim=-1)
    return index, coords
