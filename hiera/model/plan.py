"""Per-block geometry: how a `ModelConfig` turns into the pooling, attention and widths of every block.

This is where the Table-1 switches take effect (paper §3, "Simplifying MViTv2"), and nowhere else decides
geometry. Tokens are always grouped by mask unit (`hiera/model/layout.py`): `unit_grid` counts units per axis and
`unit_in`/`unit_q`/`unit_kv` count tokens per unit per axis before and after pooling. The dense MViTv2
baseline uses a single "unit" covering the whole grid, so its pools see the whole image, as in MViTv2.

MViTv2 rules (facebookresearch/mvit defaults, timm `MultiScaleVitCfg`):
- q is pooled with stride `q_stride` in the first block of each of the first `q_pool` stage transitions and
  with stride 1 in every other block (the "stride-1 pools" that row (c) deletes);
- K/V are pooled with an adaptive stride that starts at `kv_stride` and is divided by every q stride;
  where it reaches 1 the pool is a stride-1 pool;
- overlapping kernels are 3 per axis with padding 1; the skip path is max-pooled with kernel s+1.
Hiera (official release): kernel = stride everywhere, no KV pooling, attention inside mask units in the
stages flagged by `mask_unit_attn`, with the flag lagging one block.
HieraDet (SAM 2, kv_mode="window", beyond the paper): tokens stay on the 2-D grid (one "unit"), each block attends
inside fixed windows of `window_spec[stage]` tokens a side with the same one-block lag (so a stage's first block
pools q inside the previous stage's windows), or globally where that side is 0 or the block is in `global_blocks`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hiera.model.config import OVERLAP_KERNEL, ModelConfig


@dataclass(frozen=True)
class PoolPlan:
    """One pooling op applied to every unit: kernel, stride and padding per axis."""

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]

    def out_size(self, size: tuple[int, ...]) -> tuple[int, ...]:
        return tuple((n + 2 * p - k) // s + 1 for n, k, s, p in zip(size, self.kernel, self.stride, self.padding))

    @property
    def is_reshape(self) -> bool:
        """Kernel == stride and no padding: a max pool is then a reshape + max, as in the official release."""
        return self.kernel == self.stride and not any(self.padding)


@dataclass(frozen=True)
class BlockPlan:
    index: int
    stage: int
    dim_in: int  # channels entering the block
    dim_attn: int  # channels of the attention output (= dim_out when expanding in attention)
    dim_out: int  # channels leaving the block (differs from dim_attn when expanding in the MLP)
    heads: int
    q_pool: PoolPlan | None
    kv_pool: PoolPlan | None
    skip_pool: PoolPlan | None  # max pool on the residual path when q is strided
    window: bool  # attention restricted to each mask unit (Hiera's mask-unit attention)
    # HieraDet: attention inside fixed windows of this many tokens per axis on the (padded) 2-D grid; None elsewhere
    fixed_window: tuple[int, ...] | None
    unit_grid: tuple[int, ...]  # units per axis (all ones for the dense whole-grid layout)
    unit_in: tuple[int, ...]  # tokens per unit per axis entering the block
    unit_q: tuple[int, ...]  # ... after q pooling (= tokens per unit leaving the block)
    unit_kv: tuple[int, ...]  # ... of K/V after KV pooling

    @property
    def grid_in(self) -> tuple[int, ...]:
        return tuple(u * n for u, n in zip(self.unit_grid, self.unit_in))

    @property
    def grid_q(self) -> tuple[int, ...]:
        return tuple(u * n for u, n in zip(self.unit_grid, self.unit_q))

    @property
    def grid_kv(self) -> tuple[int, ...]:
        return tuple(u * n for u, n in zip(self.unit_grid, self.unit_kv))

    @property
    def rel_pos_lengths(self) -> tuple[int, ...]:
        """Length of each decomposed relative-position table: 2 * max(q_size, kv_size) - 1 (MViTv2)."""
        return tuple(2 * max(q, k) - 1 for q, k in zip(self.grid_q, self.grid_kv))


def _pool(kernel: tuple[int, ...], stride: tuple[int, ...]) -> PoolPlan:
    return PoolPlan(kernel, stride, tuple(k // 2 if k > s else 0 for k, s in zip(kernel, stride)))


def _attn_pool(cfg: ModelConfig, stride: tuple[int, ...]) -> PoolPlan | None:
    """q or kv pool of one block, or None where the paper's rows have none."""
    if math.prod(stride) == 1 and not (cfg.stride1_pool and cfg.pool_kernel == "overlap"):
        return None  # no stride-1 pools (row c), or kernel = stride = 1, which is the identity
    if cfg.pool_kernel == "overlap":
        return PoolPlan((OVERLAP_KERNEL,) * len(stride), stride, (OVERLAP_KERNEL // 2,) * len(stride))
    return _pool(stride, stride)


def _skip_pool(cfg: ModelConfig, stride: tuple[int, ...]) -> PoolPlan | None:
    if math.prod(stride) == 1:
        return None
    if cfg.pool_kernel == "overlap":  # MViTv2: kernel s + 1 where s > 1, padding kernel // 2
        kernel = tuple(s + 1 if s > 1 else s for s in stride)
        return PoolPlan(kernel, stride, tuple(k // 2 for k in kernel))
    return _pool(stride, stride)


def plan_blocks(cfg: ModelConfig) -> list[BlockPlan]:
    """Geometry of every block of `cfg`, in order. Pure; used by the model and by the tests."""
    dims, heads = cfg.stage_dims, cfg.stage_heads
    nd = cfg.ndim
    unit_grid = cfg.mask_unit_grid if cfg.uses_mask_units else (1,) * nd
    unit = cfg.mask_unit_size if cfg.uses_mask_units else cfg.token_grid
    kv_stride = tuple(cfg.kv_stride)
    plans: list[BlockPlan] = []
    index = 0
    for stage, depth in enumerate(cfg.stages):
        for j in range(depth):
            first, last = j == 0, j == depth - 1
            pools_q = first and 1 <= stage <= cfg.q_pool
            q_stride = tuple(cfg.q_stride) if pools_q else (1,) * nd
            if pools_q:  # MViTv2's adaptive KV stride shrinks with every q pooling
                kv_stride = tuple(max(k // q, 1) for k, q in zip(kv_stride, q_stride))
            if cfg.dim_expand == "attn":
                dim_in = dims[stage - 1] if first and stage > 0 else dims[stage]
                dim_attn = dim_out = dims[stage]
            else:  # channels double in the MLP of a stage's last block (released MViTv2-L)
                dim_in = dim_attn = dims[stage]
                dim_out = dims[stage + 1] if last and stage + 1 < len(dims) else dims[stage]
            q_pool = _attn_pool(cfg, q_stride)
            # Official release (and SAM 2): the stage's setting is read before the stage counter moves, so the
            # first (pooling) block of a stage still attends as the previous stage did.
            lag_stage = stage - 1 if first and stage > 0 else stage
            fixed_window = None
            if cfg.kv_mode == "pool":
                kv_pool, window = _attn_pool(cfg, kv_stride), False
            elif cfg.kv_mode == "window":
                kv_pool, window = None, False
                side = cfg.window_spec[lag_stage]
                if side and index not in cfg.global_blocks:
                    fixed_window = (side,) * nd
            else:
                kv_pool, window = None, cfg.mask_unit_attn[lag_stage]
            unit_q = q_pool.out_size(unit) if q_pool else unit
            unit_kv = kv_pool.out_size(unit) if kv_pool else unit
            for name, size, pool in (("q", unit_q, q_pool), ("kv", unit_kv, kv_pool)):
                if pool and any(n * s != u for n, s, u in zip(size, pool.stride, unit)):
                    raise ValueError(
                        f"block {index}: {name} stride {pool.stride} does not divide the "
                        f"{'unit' if cfg.uses_mask_units else 'token grid'} {unit}; "
                        "change mask_unit_size, kv_stride or input_size"
                    )
            plans.append(
                BlockPlan(
                    index=index,
                    stage=stage,
                    dim_in=dim_in,
                    dim_attn=dim_attn,
                    dim_out=dim_out,
                    heads=heads[stage],
                    q_pool=q_pool,
                    kv_pool=kv_pool,
                    skip_pool=_skip_pool(cfg, q_stride),
                    window=window,
                    fixed_window=fixed_window,
                    unit_grid=unit_grid,
                    unit_in=unit,
                    unit_q=unit_q,
                    unit_kv=unit_kv,
                )
            )
            unit = unit_q
            index += 1
    return plans


def stage_ends(cfg: ModelConfig) -> list[int]:
    """Index of the last block of every stage."""
    return [sum(cfg.stages[: i + 1]) - 1 for i in range(len(cfg.stages))]
