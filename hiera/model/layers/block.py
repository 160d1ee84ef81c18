"""One transformer block for every ladder step (pre-norm, as MViTv2 and Hiera).

    x = skip(x) + DropPath(Attention(LN1(x)))      skip = pool(proj(LN1(x))) when channels grow in attention,
                                                   pool(x) otherwise (MViTv2: the raw input when no projection)
    x = skip(x) + DropPath(MLP(LN2(x)))            skip = proj(LN2(x)) when channels grow in the MLP (MViTv2-L)

The skip path is max-pooled whenever q is strided: kernel s+1 in MViTv2, kernel = stride in Hiera (row d).
Names follow the official Hiera release (`norm1`, `proj`, `attn`, `norm2`, `mlp.fc1/fc2`).
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


class Block(nn.Module):
    def __init__(self, plan: BlockPlan, cfg: ModelConfig, drop_path: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(plan.dim_in, eps=1e-6)
        self.proj = nn.Linear(plan.dim_in, plan.dim_attn) if plan.dim_in != plan.dim_attn else None
        prefix = int(cfg.cls_token)  # the class token skips the pool (it has no grid position)
        self.pool_skip = (
            TokenPool(plan.skip_pool, "max", plan.dim_attn, plan.unit_in, prefix) if plan.skip_pool else None
        )
        self.attn = Attention(plan, cfg)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(plan.dim_attn, eps=1e-6)
        self.mlp = Mlp(plan.dim_attn, int(plan.dim_attn * cfg.mlp_ratio), plan.dim_out)
        self.mlp_proj = nn.Linear(plan.dim_attn, plan.dim_out) if plan.dim_attn != plan.dim_out else None

    def forward(self, x: torch.Tensor, units: torch.Tensor | None = None) -> torch.Tensor:
        """`[B, N, C_in]` -> `[B, N', C_out]`, unit-major in and out; `units`: kept-unit coordinates if masked."""
        with scope("norm"):
            x_norm = self.norm1(x)
        with scope("skip"):
            skip = self.proj(x_norm) if self.proj is not None else x
            if self.pool_skip is not None:
                skip = self.pool_skip(skip)
        out = self.attn(x_norm, units)
        with scope("skip"):  # the skip path and the residual add
            x = skip + self.drop_path(out)
        with scope("norm"):
            x_norm = self.norm2(x)
        with scope("mlp"):
            out = self.mlp(x_norm)
        with scope("skip"):
            skip = self.mlp_proj(x_norm) if self.mlp_proj is not None else x
            return skip + self.drop_path(out)
