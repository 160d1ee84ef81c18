"""The configurable hierarchical ViT: MViTv2 at one end of paper Table 1, Hiera at the other.

One class builds every row of the ladder from a `ModelConfig`; the rows differ only through the per-block
plans (`hiera/model/plan.py`) and the few places that branch on a switch (position embedding here, pooling and
attention in `hiera/model/layers/`). Images are `[B, 3, H, W]`, clips `[B, 3, T, H, W]`. Beyond the paper, step g's
absolute-window embedding (Bolya et al., ICLR 2024) is the third position embedding here (`abs_win_positions`), and
step h's fixed windows (SAM 2's HieraDet) keep the tokens on the 2-D grid (one "unit"; `hiera/model/plan.py`).
With `cls_token` a learned class token leads the patch tokens through every block (as in SlowFast's and
torchvision's Kinetics MViTv2); sparse (masked) encoding refuses it: it belongs to no mask unit.

Departures from the official releases, all deliberate:
- `forward` returns logits in eval mode too (the official Hiera and MViTv2 heads apply softmax in eval).
- Tokens are kept unit-major instead of Hiera's "unrolled" order (`hiera/model/layout.py`); outputs are identical.
- Initialisation follows the official Hiera release for every variant (trunc-normal 0.02, biases 0.02, head
  scaled by 1e-3), except MViTv2's pooling convs, which keep PyTorch's default as in MViTv2.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, overload

import torch
import torch.nn.functional as F
from torch import nn

from hiera.model.config import ModelConfig
from hiera.model.layers.block import Block
from hiera.model.layers.scope import scope
from hiera.model.layout import from_units, to_units, token_coords
from hiera.model.masking import check_mask, kept_units, zero_masked_pixels
from hiera.model.plan import plan_blocks, stage_ends


@dataclass
class Encoding:
    """What the encoder returns (for a multi-scale MAE decoder and for classification).

    tokens: `[B, N, C]` final tokens before the final norm, unit-major: K units x final tokens per unit.
    stages: per stage, `[B, K, *unit_s, C]`: each kept unit's tokens at that stage's resolution.
    unit_index: `[B, K]` raster index of each kept unit in the mask-unit grid (ascending).
    unit_grid: units per axis of the whole input; final_unit: final tokens per unit per axis.
    cls: `[B, 1, C]` the final class token before the final norm, if the model has one (not in `tokens`/`stages`).
    """

    tokens: torch.Tensor
    stages: list[torch.Tensor]
    unit_index: torch.Tensor
    unit_grid: tuple[int, ...]
    final_unit: tuple[int, ...]
    cls: torch.Tensor | None = None

    def positions(self) -> torch.Tensor:
        """Final-stage grid coordinates `[B, N, D]` of every token in `tokens`."""
        origin = torch.stack(torch.unravel_index(self.unit_index, self.unit_grid), dim=-1)  # [B, K, D]
        return token_coords(origin, self.final_unit)


class PatchEmbed(nn.Module):
    """Conv patch embedding (7x7 stride 4 for images, 3x7x7 stride 2x4x4 for video): `[B, C0, *grid]`."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        # picked by cfg.ndim: the sizes are cfg.ndim-tuples (ModelConfig checks them), which torch types per class
        conv: Callable[..., nn.Conv2d | nn.Conv3d] = (nn.Conv2d, nn.Conv3d)[cfg.ndim - 2]
        self.proj = conv(cfg.in_chans, cfg.embed_dim, cfg.patch_kernel, cfg.patch_stride, cfg.patch_padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class Head(nn.Module):
    """Dropout + linear classifier (official names: `head.dropout`, `head.projection`)."""

    def __init__(self, dim: int, num_classes: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.projection = nn.Linear(dim, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(self.dropout(x))


class HierarchicalViT(nn.Module):
    """Every model of the MViTv2 -> Hiera study. Build with `hiera.build_model(name_or_config)`."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.plans = plan_blocks(cfg)
        self.stage_ends = stage_ends(cfg)
        grid = cfg.token_grid
        self.patch_embed = PatchEmbed(cfg)
        self.pos_embed: nn.Parameter | None = None
        self.pos_embed_spatial: nn.Parameter | None = None
        self.pos_embed_temporal: nn.Parameter | None = None
        self.pos_embed_win: nn.Parameter | None = None
        if cfg.pos_embed == "abs_win":
            # Absolute-window embedding (Bolya et al. 2024, beyond the paper): both tables are channels-first, as
            # timm's, so resizing and tiling are plain 2-D ops; their sizes do not depend on the input size.
            self.pos_embed = nn.Parameter(torch.zeros(1, cfg.embed_dim, *cfg.global_pos_size))
            self.pos_embed_win = nn.Parameter(torch.zeros(1, cfg.embed_dim, *cfg.mask_unit_size))
        elif cfg.pos_embed == "abs":
            if cfg.ndim == 2:
                self.pos_embed = nn.Parameter(torch.zeros(1, math.prod(grid), cfg.embed_dim))
            else:  # separable space + time, as the official video Hiera
                self.pos_embed_spatial = nn.Parameter(torch.zeros(1, grid[1] * grid[2], cfg.embed_dim))
                self.pos_embed_temporal = nn.Parameter(torch.zeros(1, grid[0], cfg.embed_dim))
        rates = [cfg.drop_path_rate * i / max(cfg.depth - 1, 1) for i in range(cfg.depth)]  # linear, as torch.linspace
        self.blocks = nn.ModuleList(Block(p, cfg, r) for p, r in zip(self.plans, rates))
        self.num_features = self.plans[-1].dim_out
        # SAM 2's trunk ends at the last block (its FPN neck follows): no final norm there (`final_norm=False`)
        self.norm = nn.LayerNorm(self.num_features, eps=1e-6) if cfg.final_norm else nn.Identity()
        self.head = Head(self.num_features, cfg.num_classes, cfg.head_dropout)
        self.cls_token: nn.Parameter | None = None
        if cfg.cls_token:  # SlowFast's name and init; no position of its own (see `encode`)
            self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.embed_dim))
            nn.init.trunc_normal_(self.cls_token, std=0.02)
        self._init_weights()

    def _init_weights(self) -> None:
        for p in (self.pos_embed, self.pos_embed_win, self.pos_embed_spatial, self.pos_embed_temporal):
            if p is not None:
                nn.init.trunc_normal_(p, std=0.02)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d, nn.Conv3d)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0.02)
            elif isinstance(m, nn.LayerNorm):
                nn.init.constant_(m.weight, 1.0)
                nn.init.constant_(m.bias, 0.02)
        if isinstance(self.head.projection, nn.Linear):
            self.head.projection.weight.data.mul_(1e-3)
            self.head.projection.bias.data.mul_(1e-3)

    def no_weight_decay(self) -> set[str]:
        """Position tables and the class token skip weight decay (official Hiera and MViTv2; SlowFast's default)."""
        return {n for n, _ in self.named_parameters() if "pos_embed" in n or "rel_pos" in n or n == "cls_token"}

    def group_matcher(self, coarse: bool = False) -> dict:
        """Layers for timm's layer-wise lr decay (`timm.optim.create_optimizer_v2(..., layer_decay=)`): the stem
        (patch embedding, positions) is layer 0, block i is layer i + 1, the final norm and the head come last."""
        return dict(
            stem=r"^pos_embed|^patch_embed|^cls_token", blocks=[(r"^blocks\.(\d+)", None), (r"^norm", (99999,))]
        )

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        """`[B, 3, *input]` -> `[B, N, C0]` tokens in raster order with absolute positions added."""
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        if self.pos_embed_win is not None:
            x = x + self.abs_win_positions()
        elif self.pos_embed is not None:
            x = x + self.pos_embed
        elif self.pos_embed_spatial is not None:
            assert self.pos_embed_temporal is not None  # made together (video)
            t, hw = self.pos_embed_temporal.shape[1], self.pos_embed_spatial.shape[1]
            x = x + self.pos_embed_spatial.repeat(1, t, 1) + self.pos_embed_temporal.repeat_interleave(hw, dim=1)
        return x

    def abs_win_positions(self) -> torch.Tensor:
        """pos_embed="abs_win": `[1, N, C0]` in raster order, the global table resized to the token grid plus the
        window table repeated in every mask unit (Bolya et al. 2024, §4).

        The resize is bicubic with antialiasing, as timm's `hiera_*_abswin_*` (for upsampling, PyTorch's antialiased
        bicubic uses the a = -0.5 kernel instead of -0.75, so it is not the same numbers as plain bicubic), or plain
        bicubic with `global_pos_resize="plain"`, as SAM 2's HieraDet. It runs on the whole grid before masked units
        are dropped, so sparse MAE sees every kept token's true position.
        """
        assert self.pos_embed is not None
        assert self.pos_embed_win is not None
        grid = self.config.token_grid
        antialias = self.config.global_pos_resize == "antialias"
        glob = F.interpolate(self.pos_embed, size=grid, mode="bicubic", antialias=antialias, align_corners=False)
        win = self.pos_embed_win.tile(1, 1, *self.config.mask_unit_grid)
        return (glob + win).flatten(2).transpose(1, 2)

    def encode(self, x: torch.Tensor, mask: torch.Tensor | None = None, num_kept: int | None = None) -> Encoding:
        """Run the encoder on all units, or sparsely on the kept ones (paper §3.1, MAE).

        Args:
            x: `[B, 3, H, W]` or `[B, 3, T, H, W]`.
            mask: optional keep-mask `[B, #units]` (True = keep, raster order over the mask-unit grid; see
                `hiera/model/masking.py`). Masked pixels are zeroed before the patch embedding, masked units are then
                dropped: every later op sees only kept units (per-unit pooling = separate-and-pad for overlapping
                kernels; relative positions use each token's true coordinates).
            num_kept: units kept per sample, if known. Read from the mask when omitted; give it under
                `torch.compile`, where every shape after the mask must be known while tracing (`check_mask`).
        """
        cfg = self.config
        b = x.shape[0]
        if tuple(x.shape[2:]) != tuple(cfg.input_size) or x.shape[1] != cfg.in_chans:
            raise ValueError(
                f"input of shape {tuple(x.shape)} does not match this model's "
                f"[B, {cfg.in_chans}, {', '.join(map(str, cfg.input_size))}]; "
                "resize the input or build the model with input_size=..."
            )
        first = self.plans[0]
        if mask is not None and self.cls_token is not None:
            raise ValueError("a model with cls_token=True cannot encode sparsely (the class token is in no mask unit)")
        if mask is not None:
            num_kept = check_mask(mask, cfg, b, num_kept)
            x = zero_masked_pixels(x, mask, cfg)
        with scope("patch_embed"):
            x = self._embed(x)
        with scope("layout"):
            x = to_units(x, first.grid_in, first.unit_in)
            units = None
            if mask is not None:
                assert num_kept is not None  # check_mask returned it
                index, units = kept_units(mask, first.unit_grid, num_kept)
                per_unit = math.prod(first.unit_in)
                x = x.view(b, -1, per_unit, x.shape[-1])
                x = x.gather(1, index[:, :, None, None].expand(-1, -1, per_unit, x.shape[-1])).flatten(1, 2)
            else:
                index = torch.arange(math.prod(first.unit_grid), device=x.device).expand(b, -1)
            # The class token goes first, after the positions: with absolute positions a position of its own (SlowFast's
            # pos_embed_class) would be a second learned constant added to a learned constant, so it is left out.
            if self.cls_token is not None:
                x = torch.cat((self.cls_token.expand(b, -1, -1), x), dim=1)
        p = 0 if self.cls_token is None else 1
        stages = []
        for i, blk in enumerate(self.blocks):
            x = blk(x, units)
            if i in self.stage_ends:
                stages.append(x[:, p:].view(b, index.shape[1], *self.plans[i].unit_q, x.shape[-1]))
        cls = x[:, :p] if p else None
        return Encoding(x[:, p:], stages, index, first.unit_grid, self.plans[-1].unit_q, cls)

    @overload
    def forward_features(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        return_intermediates: Literal[False] = False,
        num_kept: int | None = None,
    ) -> torch.Tensor: ...

    @overload
    def forward_features(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        *,
        return_intermediates: Literal[True],
        num_kept: int | None = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]: ...

    @overload
    def forward_features(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        return_intermediates: bool = False,
        num_kept: int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]: ...

    def forward_features(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        return_intermediates: bool = False,
        num_kept: int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """Tokens `[B, N, C]` before the final norm (unit-major; order-free for pooling), led by the class token
        (`[B, 1 + N, C]`) when the model has one.

        With `return_intermediates`, also each stage's output: in spatial order `[B, *grid, C]` without a mask
        (e.g. `[B, 56, 56, 96]` ... `[B, 7, 7, 768]`; video `[B, 8, 56, 56, 96]`), per kept unit
        `[B, K, *unit, C]` with a mask (as the official release's `return_intermediates`). `num_kept`: as `encode`.
        """
        enc = self.encode(x, mask, num_kept)
        tokens = enc.tokens if enc.cls is None else torch.cat((enc.cls, enc.tokens), dim=1)
        if not return_intermediates:
            return tokens
        if mask is not None:
            return tokens, enc.stages
        return tokens, [from_units(s.flatten(1, -2), enc.unit_grid, tuple(s.shape[2:-1])) for s in enc.stages]

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """`forward_features`' tokens -> logits (or the normed features with `pre_logits`)."""
        with scope("head"):
            order = self.config.head_order
            if order == "cls":  # SlowFast/torchvision Kinetics MViTv2: the normed class token (LayerNorm is per token)
                x = self.norm(x[:, 0])
            else:
                x = x if self.cls_token is None else x[:, 1:]  # means over patch tokens (SlowFast's mean pooling)
                if order == "mean_norm":  # Hiera
                    x = self.norm(x.mean(dim=1))
                else:  # MViTv2: normalise every token, then average
                    x = self.norm(x).mean(dim=1)
            return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, num_kept: int | None = None) -> torch.Tensor:
        """`[B, 3, H, W]` or `[B, 3, T, H, W]` -> logits `[B, num_classes]` (from the kept units if masked;
        `num_kept` as `encode`, needed to compile a masked forward)."""
        return self.forward_head(self.forward_features(x, mask, num_kept=num_kept))
