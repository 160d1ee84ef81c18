"""Token pooling inside mask units: MViTv2's conv/max pools and Hiera's kernel = stride max pool (paper §3).

Tokens arrive unit-major (`hiera/layout.py`), so pooling reshapes `[..., N, C]` to `[M, *unit, C]` with one
entry per unit and pools each unit on its own. For a kernel equal to the stride this is exactly the dense op;
for an overlapping kernel each unit is padded on its own, which is the separate-and-pad trick of paper
Fig. 4d (the dense MViTv2 baseline has a single unit, so it pools the whole grid as MViTv2 does).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from hiera.plan import PoolPlan


class TokenPool(nn.Module):
    """Pool every unit of a unit-major token tensor.

    Args:
        plan: kernel, stride and padding per axis.
        op: "max", or "conv" for MViTv2's depthwise conv (one filter per channel, no bias, shared across heads).
        channels: channels per token (head_dim for q/k/v pools).
        unit: tokens per unit per axis before pooling.
    """

    def __init__(self, plan: PoolPlan, op: str, channels: int, unit: tuple[int, ...]):
        super().__init__()
        self.plan, self.op, self.unit = plan, op, tuple(unit)
        self.unit_out = plan.out_size(self.unit)
        self.ndim = len(self.unit)
        if op == "conv":
            self.weight = nn.Parameter(torch.empty(channels, 1, *plan.kernel))
            # MViTv2 leaves its pooling convs at PyTorch's default init (its _init_weights touches Linear only).
            nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        else:
            self.register_parameter("weight", None)

    def extra_repr(self) -> str:
        p = self.plan
        return f"{self.op}, kernel={p.kernel}, stride={p.stride}, padding={p.padding}, unit={self.unit}"

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """`[*lead, N, C]` with N a multiple of prod(unit) -> `[*lead, N', C]`, N' = N / prod(stride)."""
        lead, c = t.shape[:-2], t.shape[-1]
        y = t.reshape(-1, *self.unit, c)  # [M, *unit, C], one row per unit
        if self.op == "max" and self.plan.is_reshape:
            # Kernel == stride: a reshape and a max, no copy to channels-first (the official release's trick).
            split = [v for n, s in zip(self.unit_out, self.plan.stride) for v in (n, s)]
            y = y.view(y.shape[0], *split, c).amax(dim=tuple(range(2, 2 * self.ndim + 1, 2)))
        else:
            y = y.movedim(-1, 1)  # [M, C, *unit]
            if self.op == "max":
                y = (F.max_pool2d, F.max_pool3d)[self.ndim - 2](y, self.plan.kernel, self.plan.stride,
                                                              self.plan.padding)
            else:
                y = (F.conv2d, F.conv3d)[self.ndim - 2](y, self.weight, None, self.plan.stride, self.plan.padding,
                                                      groups=c)
            y = y.movedim(1, -1)
        return y.reshape(*lead, -1, c)
