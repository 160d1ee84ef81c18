"""One transformer block for every ladder step (pre-norm, as MViTv2 and Hiera).

    x = skip(x) + DropPath(Attention(LN1(x)))      skip = pool(proj(LN1(x))) when channels grow in attention,
                                                   pool(x) otherwise (MViTv2: the raw input when no projection)
    x = skip(x) + DropPath(MLP(LN2(x)))            skip = proj(LN2(x)) when channels grow in the MLP (MViTv2-L)

The skip path is max-pooled whenever q is strided: kernel s+1 in MViTv2, kernel = stride in Hiera (row d).
Names follow the official Hiera release (`norm1`, `proj`, `attn`, `norm2`, `mlp.fc1/fc2`).

Beyond the paper (ladder extensions): `layer_scale` multiplies each branch by a learned per-channel vector
(`ls1.gamma`, `ls2.gamma`, timm's names) before the residual add; `expand_skip="max_avg"` replaces the widening
projection of the skip path by the max- and average-pooled input concatenated (timm `use_expand_proj=False`).
"""

from __future__ import annotations

import torch
from timm.layers import DropPath, Mlp
from torch import nn

from hiera.model.config import ModelConfig
from hiera.model.layers.attention import Attention
from hiera.model.layers.pool import TokenPool
from hiera.model.layers.scope import scope
from hiera.model.plan import BlockPlan


class LayerScale(nn.Module):
    """`x * gamma`, gamma a learned per-channel vector starting at `init` (CaiT; timm's `ls1/ls2.gamma`)."""

    def __init__(self, dim: int, init: float):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Block(nn.Module):
    def __init__(self, plan: BlockPlan, cfg: ModelConfig, drop_path: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(plan.dim_in, eps=1e-6)
        widens = plan.dim_in != plan.dim_attn
        # expand_skip="max_avg": no weights on the skip path; its width doubles by concatenating two poolings of
        # the raw input (ModelConfig checks dim_mul == 2), a stage transition without q pooling concatenates x twice.
        self.concat_skip = widens and cfg.expand_skip == "max_avg"
        self.proj = nn.Linear(plan.dim_in, plan.dim_attn) if widens and not self.concat_skip else None
        skip_dim = plan.dim_in if self.concat_skip else plan.dim_attn
        prefix = int(cfg.cls_token)  # the class token skips the pools (it has no grid position)
        self.pool_skip = TokenPool(plan.skip_pool, "max", skip_dim, plan.unit_in, prefix) if plan.skip_pool else None
        self.pool_skip_avg = (
            TokenPool(plan.skip_pool, "avg", skip_dim, plan.unit_in, prefix)
            if plan.skip_pool and self.concat_skip
            else None
        )
        self.attn = Attention(plan, cfg)
        self.ls1 = LayerScale(plan.dim_attn, cfg.layer_scale) if cfg.layer_scale is not None else nn.Identity()
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(plan.dim_attn, eps=1e-6)
        self.mlp = Mlp(plan.dim_attn, int(plan.dim_attn * cfg.mlp_ratio), plan.dim_out)
        self.ls2 = LayerScale(plan.dim_out, cfg.layer_scale) if cfg.layer_scale is not None else nn.Identity()
        self.mlp_proj = nn.Linear(plan.dim_attn, plan.dim_out) if plan.dim_attn != plan.dim_out else None

    def forward(self, x: torch.Tensor, units: torch.Tensor | None = None) -> torch.Tensor:
        """`[B, N, C_in]` -> `[B, N', C_out]`, unit-major in and out; `units`: kept-unit coordinates if masked."""
        with scope("norm"):
            x_norm = self.norm1(x)
        with scope("skip"):
            if self.concat_skip:
                pooled = [x if p is None else p(x) for p in (self.pool_skip, self.pool_skip_avg)]
                skip = torch.cat(pooled, dim=-1)
            else:
                skip = self.proj(x_norm) if self.proj is not None else x
                if self.pool_skip is not None:
                    skip = self.pool_skip(skip)
        out = self.attn(x_norm, units)
        with scope("skip"):  # the skip path and the residual add
            x = skip + self.drop_path(self.ls1(out))
        with scope("norm"):
            x_norm = self.norm2(x)
        with scope("mlp"):
            out = self.mlp(x_norm)
        with scope("skip"):
            skip = self.mlp_proj(x_norm) if self.mlp_proj is not None else x
            return skip + self.drop_path(self.ls2(out))
