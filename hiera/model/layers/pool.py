"""Token pooling inside mask units: MViTv2's conv/max pools and Hiera's kernel = stride max pool (paper §3).

Tokens arrive unit-major (`hiera/model/layout.py`), so pooling reshapes `[..., N, C]` to `[M, *unit, C]` with one
entry per unit and pools each unit on its own. For a kernel equal to the stride this is exactly the dense op;
for an overlapping kernel each unit is padded on its own, which is the separate-and-pad trick of paper
Fig. 4d (the dense MViTv2 baseline has a single unit, so it pools the whole grid as MViTv2 does).
A class token (`ModelConfig.cls_token`) leads the token axis and passes through every pool unchanged, as in
SlowFast and torchvision's MViTv2: it has no grid position to pool over.
"""

from __future__ import annotations

import functools
import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn

from hiera.model.plan import PoolPlan


class TokenPool(nn.Module):
    """Pool every unit of a unit-major token tensor.

    Args:
        plan: kernel, stride and padding per axis.
        op: "max", "avg" (kernel = stride only: the skip path of expand_skip="max_avg"), or "conv" for MViTv2's
            depthwise conv (one filter per channel, no bias, shared across heads).
        channels: channels per token (head_dim for q/k/v pools).
        unit: tokens per unit per axis before pooling.
        prefix: leading tokens outside the grid (the class token), kept as they are before the pooled ones.
    """

    def __init__(self, plan: PoolPlan, op: str, channels: int, unit: tuple[int, ...], prefix: int = 0):
        super().__init__()
        self.plan, self.op, self.unit, self.prefix = plan, op, tuple(unit), prefix
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

    @staticmethod
    def _slice(n_lead: int, offset: tuple[int, ...]) -> tuple:
        """Index of one stride offset in `[*lead, U, n1, s1, n2, s2, ..., C]`."""
        return (slice(None),) * (n_lead + 1) + sum(((slice(None), o) for o in offset), ()) + (slice(None),)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """`[*lead, P + N, C]` with N a multiple of prod(unit) -> `[*lead, P + N', C]`, N' = N / prod(stride), P the
        prefix tokens, which are not pooled."""
        if self.prefix:
            return torch.cat((t[..., : self.prefix, :], self._pool(t[..., self.prefix :, :])), dim=-2)
        return self._pool(t)

    def _pool(self, t: torch.Tensor) -> torch.Tensor:
        lead, c = t.shape[:-2], t.shape[-1]
        if self.op == "max" and self.plan.is_reshape and not (torch.is_grad_enabled() and t.requires_grad):
            # Kernel == stride, no gradient: split the token axis into (units, out, stride, ...) and take a max: a
            # view of the input (no copy, whatever its strides), like the official release's unroll trick.
            # The max is taken as an elementwise maximum of the prod(stride) strided slices: a reduction over
            # non-innermost axes (`amax`) was 10x slower on CPU (it was the whole gap to timm's Hiera-T).
            # With a gradient the pooling op below is used instead: its backward scatters through the argmax,
            # while this chain's backward writes a masked full-size gradient per slice (Hiera-T stage-1 q pool
            # on CPU: forward + backward 32 ms here vs 8 ms there; the whole training step was 0.92x timm's).
            split = [v for n, s in zip(self.unit_out, self.plan.stride) for v in (n, s)]
            y = t.view(*lead, -1, *split, c)
            y = functools.reduce(
                torch.maximum,
                (y[self._slice(len(lead), offset)] for offset in itertools.product(*map(range, self.plan.stride))),
            )
        else:
            y = t.reshape(-1, *self.unit, c).movedim(-1, 1)  # [M, C, *unit], one row per unit
            if self.op == "max":
                y = (F.max_pool2d, F.max_pool3d)[self.ndim - 2](
                    y, self.plan.kernel, self.plan.stride, self.plan.padding
                )
            elif self.op == "avg":
                y = (F.avg_pool2d, F.avg_pool3d)[self.ndim - 2](y, self.plan.kernel, self.plan.stride)
            else:
                y = (F.conv2d, F.conv3d)[self.ndim - 2](
                    y, self.weight, None, self.plan.stride, self.plan.padding, groups=c
                )
            y = y.movedim(1, -1)
        return y.reshape(*lead, -1, c)
