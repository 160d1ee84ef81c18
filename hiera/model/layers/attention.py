"""One attention module for every ladder step: MViTv2 pooling attention and Hiera mask-unit attention.

Paper §3 / Table 1. From one `BlockPlan` it builds
- q pooling (stride 1 or q_stride; conv + LayerNorm or max; overlapping or kernel = stride),
- K/V pooling with MViTv2's adaptive stride (kv_mode="pool"), or none with attention restricted to each mask
  unit (kv_mode="mask_unit", rows f / Hiera),
- MViTv2's decomposed relative position bias (pos_embed="rel") and residual pooling connection
  (attn_residual=True),
- an optional class token leading the tokens (cls_token=True): it attends and is attended to, but is not pooled,
  gets no relative position and no residual pooling connection (SlowFast and torchvision's MViTv2),
- beyond the paper, SAM 2's HieraDet fixed windows (kv_mode="window", `BlockPlan.fixed_window`): the 2-D grid is
  zero-padded to whole windows (after the block's norm, so padded tokens project to the qkv bias and are attended
  to, unmasked, as in SAM 2 and timm), q is pooled inside each window, and the padding is cropped after.
Parameter names follow the official releases: `qkv`, `proj` (Hiera), `pool_q/k/v`, `norm_q/k/v`,
`rel_pos_h/w/t` (MViTv2), so checkpoints of both ends map by name.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from hiera.model.config import ModelConfig
from hiera.model.layers.pool import TokenPool
from hiera.model.layers.rel_pos import axis_index, rel_pos_bias, rel_pos_bias_sparse
from hiera.model.layers.scope import scope
from hiera.model.plan import BlockPlan

AXIS_NAMES = {2: ("h", "w"), 3: ("t", "h", "w")}


class Attention(nn.Module):
    """Multi-head attention with optional q/K/V pooling over unit-major tokens `[B, N, C]`."""

    def __init__(self, plan: BlockPlan, cfg: ModelConfig):
        super().__init__()
        dim, dim_out, heads = plan.dim_in, plan.dim_attn, plan.heads
        self.heads, self.head_dim, self.dim_out = heads, dim_out // heads, dim_out
        self.scale = self.head_dim**-0.5
        self.window = plan.window
        self.fixed_window = plan.fixed_window
        self.grid_in = plan.grid_in
        self.q_stride = plan.q_pool.stride if plan.q_pool else (1,) * cfg.ndim
        self.unit_tokens = math.prod(plan.unit_in)  # tokens per unit entering the block
        self.residual = cfg.attn_residual
        self.attn_impl = cfg.attn_impl
        self.prefix = int(cfg.cls_token)  # tokens before the grid's (ModelConfig rules out a window with one)
        self.qkv = nn.Linear(dim, 3 * dim_out)
        self.proj = nn.Linear(dim_out, dim_out)
        pool_unit = plan.fixed_window or plan.unit_in  # HieraDet pools q inside each window, folded into the batch
        for name, pool in (("q", plan.q_pool), ("k", plan.kv_pool), ("v", plan.kv_pool)):
            tp = TokenPool(pool, cfg.pool_op, self.head_dim, pool_unit, self.prefix) if pool else None
            setattr(self, f"pool_{name}", tp)
            # MViTv2 normalises each conv-pooled tensor (a max pool has no norm).
            norm = nn.LayerNorm(self.head_dim, eps=1e-6) if pool and cfg.pool_op == "conv" else None
            setattr(self, f"norm_{name}", norm)

        self.rel_axes: tuple[str, ...] = ()
        if cfg.pos_embed == "rel":
            self.rel_axes = AXIS_NAMES[cfg.ndim]
            for name, length in zip(self.rel_axes, plan.rel_pos_lengths):
                table = nn.Parameter(torch.zeros(length, self.head_dim))
                nn.init.trunc_normal_(table, std=0.02)
                setattr(self, f"rel_pos_{name}", table)
            self.rel_units, self.rel_q_unit, self.rel_k_unit = plan.unit_grid, plan.unit_q, plan.unit_kv
            for a, name in enumerate(self.rel_axes):
                q_len, k_len = (plan.unit_q[a], plan.unit_kv[a]) if self.window else (plan.grid_q[a], plan.grid_kv[a])
                # Table rows depend only on (query, key) coordinates along the axis; inside a mask unit they are
                # the same for every unit, so mask-unit attention stores one unit's worth.
                idx = axis_index(torch.arange(q_len), torch.arange(k_len), plan.grid_q[a], plan.grid_kv[a])
                self.register_buffer(f"rel_index_{name}", idx, persistent=False)

    def _pool(self, t: torch.Tensor, name: str) -> torch.Tensor:
        pool, norm = getattr(self, f"pool_{name}"), getattr(self, f"norm_{name}")
        with scope("q_pool" if name == "q" else "kv_pool"):
            if pool is not None:
                t = pool(t)
            return norm(t) if norm is not None else t

    def _partition(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
        """HieraDet: raster `[B, N, C]` over `grid_in` -> `[B * W, w_h * w_w, C]`, the grid zero-padded to whole
        windows; also the window counts per axis."""
        assert self.fixed_window is not None
        b, _, c = x.shape
        pad = [-g % w for g, w in zip(self.grid_in, self.fixed_window)]
        x = x.view(b, *self.grid_in, c)
        if any(pad):  # F.pad lists the last axis first: (C: none, W, H)
            x = F.pad(x, (0, 0, 0, pad[1], 0, pad[0]))
        counts = tuple((g + p) // w for g, p, w in zip(self.grid_in, pad, self.fixed_window))
        x = x.view(b, counts[0], self.fixed_window[0], counts[1], self.fixed_window[1], c)
        return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, math.prod(self.fixed_window), c), counts

    def _unpartition(self, out: torch.Tensor, b: int, counts: tuple[int, ...]) -> torch.Tensor:
        """HieraDet: `[B * W, n_q, C]` (windows after q pooling) -> raster `[B, N', C]` with the padding cropped."""
        win = [w // s for w, s in zip(self.fixed_window or (), self.q_stride)]
        grid = [g // s for g, s in zip(self.grid_in, self.q_stride)]
        out = out.view(b, counts[0], counts[1], win[0], win[1], -1).permute(0, 1, 3, 2, 4, 5)
        out = out.reshape(b, counts[0] * win[0], counts[1] * win[1], -1)[:, : grid[0], : grid[1]]
        return out.reshape(b, grid[0] * grid[1], -1)

    def forward(self, x: torch.Tensor, units: torch.Tensor | None = None) -> torch.Tensor:
        """`[B, N, C_in]` unit-major -> `[B, N', C_out]` (N' = N / prod(q stride)).

        `units`: grid coordinates `[B, K, D]` of the units present when some were masked out (sparse MAE);
        None when all units are present. Only relative positions need them: every other op is per unit.
        """
        b, n, _ = x.shape
        counts: tuple[int, ...] = ()
        if self.fixed_window is not None:
            with scope("layout"):
                x, counts = self._partition(x)  # windows fold into the batch: [B*W, N_w, C]
        with scope("linear"):
            qkv = self.qkv(x)
        with scope("layout"):
            if self.window:
                # Mask-unit attention folds the units into the batch: [B, U, N_u, 3, heads, d] ->
                # 3 x [B*U, heads, N_u, d], a view. The official release and timm hand 5-D [B, heads, U, N_u, d]
                # to SDPA, which the fused kernels do not take (they fall back to the math path); 4-D reaches
                # flash / memory-efficient / cuDNN attention. Same numbers either way.
                u = n // self.unit_tokens
                qkv = qkv.view(b, u, self.unit_tokens, 3, self.heads, self.head_dim).permute(3, 0, 1, 4, 2, 5)
                qkv = qkv.reshape(3, b * u, self.heads, self.unit_tokens, self.head_dim)
            else:  # [B, N, 3, heads, d] -> 3 x [B, heads, N, d] (B*W, N_w for fixed windows)
                qkv = qkv.view(*x.shape[:2], 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
            q, k, v = qkv.unbind(0)
        q, k, v = self._pool(q, "q"), self._pool(k, "k"), self._pool(v, "v")

        bias = None
        with scope("rel_pos"):
            if self.rel_axes:
                tables = [getattr(self, f"rel_pos_{a}") for a in self.rel_axes]
                index = [getattr(self, f"rel_index_{a}") for a in self.rel_axes]
                if units is not None and not self.window:  # keys no longer form a full grid
                    bias = rel_pos_bias_sparse(q, tables, index, units, self.rel_q_unit, self.rel_k_unit)
                elif self.window:  # inside a mask unit the bias is the same for every unit, masked or not
                    q5 = q.view(b, -1, *q.shape[1:]).transpose(1, 2)  # [B, heads, U, N_u, d] (a view)
                    bias = rel_pos_bias(q5, tables, index, self.rel_units, self.rel_q_unit, self.rel_k_unit, True)
                    bias = bias.transpose(1, 2).flatten(0, 1)  # [B*U, heads, N_u, N_u']
                else:
                    p = self.prefix
                    bias = rel_pos_bias(
                        q[:, :, p:], tables, index, self.rel_units, self.rel_q_unit, self.rel_k_unit, False
                    )
                    if p:  # the class token's row and column carry no relative position (zero bias)
                        bias = F.pad(bias, (p, 0, p, 0))
        with scope("attention"):
            if self.attn_impl == "sdpa":
                # The fused kernels need one dtype for q, k, v and the additive mask: under autocast a conv pool's
                # LayerNorm returns fp32 while the projections are fp16/bf16, and the bias comes from fp32 tables.
                k, v = k.to(q.dtype), v.to(q.dtype)
                out = F.scaled_dot_product_attention(q, k, v, attn_mask=None if bias is None else bias.to(q.dtype))
            else:  # the paper's timings used this path (no fused attention, PyTorch 1.12)
                attn = (q * self.scale) @ k.transpose(-2, -1)
                if bias is not None:
                    attn = attn + bias
                out = attn.softmax(dim=-1) @ v
            if self.residual:  # MViTv2 residual pooling connection (removed in row e)
                # SlowFast and torchvision leave the class token out (zeros added, not an in-place add: SDPA's
                # backward needs its output unchanged).
                out = out + (F.pad(q[..., self.prefix :, :], (0, 0, self.prefix, 0)) if self.prefix else q)
        with scope("layout"):
            if self.window:  # [B*U, heads, N_u, d] -> [B, U, N_u, heads, d]
                out = out.view(b, -1, *out.shape[1:]).transpose(2, 3)
            else:  # [B, heads, N, d] -> [B, N, heads, d]
                out = out.transpose(1, 2)
            if self.fixed_window is not None:
                out = self._unpartition(out.reshape(*out.shape[:2], self.dim_out), b, counts)
            out = out.reshape(b, -1, self.dim_out)
        with scope("linear"):
            return self.proj(out)
