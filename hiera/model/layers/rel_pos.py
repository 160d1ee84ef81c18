"""MViTv2's decomposed relative position embedding (Li et al. 2022, §3.1) on unit-major tokens.

For a query at grid position p and a key at p', MViTv2 adds to the attention logit
    q . R_h[d_h(p, p')] + q . R_w[d_w(p, p')] (+ q . R_t[d_t(p, p')] for video)
with the unscaled, pooled (and normed) q, one table per axis of length 2*max(q_size, kv_size) - 1, and
distances rescaled when the q and kv grids differ: d = p*max(k/q, 1) - p'*max(q/k, 1) + (k-1)*max(q/k, 1).
As in MViTv2 the tables are gathered per (query row, key row) and contracted with q by einsum, so FLOP counts
match timm/SlowFast. Tokens here are unit-major (`hiera/model/layout.py`): a coordinate along an axis is the pair
(unit index, offset in unit), which the einsum keeps as two axes instead of one.
"""

from __future__ import annotations

import torch

from hiera.model.layout import token_coords

LETTERS_UNIT, LETTERS_OFFSET = "xyz", "ijl"


def axis_index(q_coord: torch.Tensor, k_coord: torch.Tensor, q_size: int, k_size: int) -> torch.Tensor:
    """Table row `[len(q_coord), len(k_coord)]` for every (query, key) coordinate pair along one axis."""
    q_ratio = max(k_size / q_size, 1.0)
    k_ratio = max(q_size / k_size, 1.0)
    dist = q_coord[:, None] * q_ratio - k_coord[None, :] * k_ratio + (k_size - 1) * k_ratio
    return dist.long()


def rel_pos_bias(
    q: torch.Tensor,
    tables: list[torch.Tensor],
    index: list[torch.Tensor],
    units: tuple[int, ...],
    q_unit: tuple[int, ...],
    k_unit: tuple[int, ...],
    window: bool,
) -> torch.Tensor:
    """Additive attention bias for queries and keys on full grids in unit-major order.

    Args:
        q: `[B, heads, N_q, d]` (global attention) or `[B, heads, U, N_q/U, d]` (mask-unit attention).
        tables: per axis `[L_a, d]`.
        index: per axis, table rows `[U_a * q_unit[a], U_a * k_unit[a]]` (global) or
            `[q_unit[a], k_unit[a]]` (mask-unit attention, identical for every unit).
        units: units per axis; q_unit / k_unit: query / key tokens per unit per axis.
        window: mask-unit attention (keys are the query's own unit).
    Returns:
        bias shaped like the attention logits: `[B, heads, N_q, N_k]` or `[B, heads, U, N_q/U, N_k/U]`.
    """
    nd = len(tables)
    b, h = q.shape[:2]
    off_q = LETTERS_OFFSET[:nd]
    if window:  # group axis g holds the units; only offsets inside the unit matter
        q = q.reshape(b, h, -1, *q_unit, q.shape[-1])
        lead, key_shape = "bhg", (1,) * nd + tuple(k_unit)
    else:
        q = q.reshape(b, h, *units, *q_unit, q.shape[-1])
        lead, key_shape = "bh" + LETTERS_UNIT[:nd], tuple(units) + tuple(k_unit)
    bias = None
    for a, (table, idx) in enumerate(zip(tables, index)):
        r = table[idx]  # [Q_a, K_a, d]
        if window:
            tab = off_q[a]
        else:
            r = r.view(units[a], q_unit[a], *r.shape[1:])
            tab = LETTERS_UNIT[a] + off_q[a]
        rel = torch.einsum(f"{lead}{off_q}d,{tab}kd->{lead}{off_q}k", q, r)  # [..., K_a]
        shape = [1] * (2 * nd)
        shape[a], shape[nd + a] = key_shape[a], key_shape[nd + a]
        rel = rel.reshape(b, h, rel.shape[2], -1, *shape) if window else rel.reshape(b, h, -1, *shape)
        bias = rel if bias is None else bias + rel
    assert bias is not None  # one table per axis: at least one
    return bias.flatten(-2 * nd)


def rel_pos_bias_sparse(
    q: torch.Tensor,
    tables: list[torch.Tensor],
    index: list[torch.Tensor],
    units: torch.Tensor,
    q_unit: tuple[int, ...],
    k_unit: tuple[int, ...],
) -> torch.Tensor:
    """Bias for global attention over the kept units only (sparse MAE; beyond the paper).

    Each kept token's true grid coordinates index the tables, so a token sees the same relative positions as
    in the dense model; the keys of deleted units simply do not exist.

    Args:
        q: `[B, heads, K * prod(q_unit), d]` queries of the K kept units, unit-major.
        index: per axis, table rows `[Q_a, K_a]` over the whole q and kv grids (as for the dense bias).
        units: grid coordinates `[B, K, D]` of the kept units.
    Returns:
        `[B, heads, N_q, N_k]`.
    """
    b, h, nq, _ = q.shape

    q_xyz, k_xyz = token_coords(units, q_unit), token_coords(units, k_unit)
    nk = k_xyz.shape[1]
    bias = None
    for a, (table, idx) in enumerate(zip(tables, index)):
        # One GEMM against every table row, then pick each (query, key) pair's row: cheaper than gathering a
        # table slice per query when the kept keys are scattered.
        rows = idx[q_xyz[:, :, None, a], k_xyz[:, None, :, a]]  # [B, Nq, Nk]
        rel = (q @ table.t()).gather(-1, rows[:, None].expand(b, h, nq, nk))
        bias = rel if bias is None else bias + rel
    assert bias is not None  # one table per axis: at least one
    return bias
