"""Token layout: tokens grouped by mask unit, so every Table-1 step shares one representation.

Paper §3.1 / Fig. 4: sparse MAE needs every op to stay inside mask units. The official release reaches this
with "Unroll" (stride offsets moved to the front of the token axis). We keep a simpler order that serves
*every* ladder step: **unit-major** — `[B, N, C]` with N = (units along each axis) x (tokens of a unit in raster
order). Consequences:
- mask-unit attention is a reshape to `[B, U, N_u, C]` (contiguous);
- global attention is permutation-equivariant, so it runs on the same order; relative positions use each
  token's true grid coordinates, not its index;
- any pooling — conv or max, overlapping or not — runs on `[B*U, C, *unit]`: for kernel == stride this is
  exactly the dense op, and for overlapping kernels it *is* separate-and-pad (paper Fig. 4d);
- the dense MViTv2 baseline uses one unit covering the whole grid, i.e. plain raster order.
Means over tokens are order-free, so heads and losses do not care.
"""

from __future__ import annotations

import math

import torch


def to_units(x: torch.Tensor, grid: tuple[int, ...], unit: tuple[int, ...]) -> torch.Tensor:
    """Raster `[B, prod(grid), C]` -> unit-major `[B, N, C]` for units of `unit` tokens per axis."""
    counts = tuple(g // u for g, u in zip(grid, unit))
    if math.prod(counts) == 1:
        return x
    nd = len(grid)
    b, _, c = x.shape
    x = x.view(b, *[v for n, u in zip(counts, unit) for v in (n, u)], c)
    # [B, n1, u1, n2, u2, ..., C] -> [B, n1, n2, ..., u1, u2, ..., C]
    x = x.permute(0, *range(1, 2 * nd, 2), *range(2, 2 * nd + 1, 2), 2 * nd + 1)
    return x.reshape(b, -1, c)


def from_units(x: torch.Tensor, counts: tuple[int, ...], unit: tuple[int, ...]) -> torch.Tensor:
    """Unit-major `[B, N, C]` (with `counts` units of `unit` tokens per axis) -> spatial `[B, *grid, C]`."""
    nd = len(unit)
    b, _, c = x.shape
    x = x.view(b, *counts, *unit, c)
    # [B, n1, n2, ..., u1, u2, ..., C] -> [B, n1, u1, n2, u2, ..., C]
    x = x.permute(0, *[v for a in range(nd) for v in (1 + a, 1 + nd + a)], 2 * nd + 1)
    return x.reshape(b, *[n * u for n, u in zip(counts, unit)], c)


def token_coords(units: torch.Tensor, unit: tuple[int, ...]) -> torch.Tensor:
    """Grid coordinates `[B, K * prod(unit), D]` of the tokens of units at grid positions `units` `[B, K, D]`,
    in unit-major order, at a resolution of `unit` tokens per unit per axis."""
    local = torch.cartesian_prod(*[torch.arange(n, device=units.device) for n in unit]).view(1, 1, -1, len(unit))
    scale = torch.tensor(unit, device=units.device)
    return (units[:, :, None, :] * scale + local).flatten(1, 2)
