"""Masked autoencoder for every ladder step: sparse encoder, multi-scale fusion, decoder, pixel loss (paper §4).

Follows the official release's `MaskedAutoencoderHiera` (its parameter names, so its MAE checkpoints load):
- the encoder is any sparse-capable variant (`ModelConfig.uses_mask_units`) with q_pool = 2 and no classifier;
- multi-scale fusion (paper Table 3a): the outputs of the first `q_pool` stages are brought to the final
  mask-unit size by convolutions with kernel = stride, summed with the last stage, then `encoder_norm`;
  `multi_scale=False` keeps the last stage only;
- decoder: linear to `decoder_dim`, a mask token in every masked unit, a learned position embedding over the
  final token grid, `decoder_depth` global-attention blocks, LayerNorm, a linear to pred_stride² x 3 pixels;
- loss: MSE on masked units only, each target patch normalised by its own mean and (unbiased) variance;
  `target="hog"` predicts MaskFeat-style HOG instead (`hiera/model/targets.py`, paper Table 3c).
  Video targets keep the first frame of every 2-frame token and are flattened channels-last, as the release
  does ("a mistake during training" in its own words, kept so its decoders stay compatible).

Under `torch.compile` (a departure from the release's boolean indexing `x[mask]`, whose output size depends on
the mask's values): kept and masked tokens are moved with `scatter`/`gather` over index tensors of a size known
while tracing (`hiera.model.masking.true_positions`), so a step traces as one graph when the mask comes from outside
with its `num_kept`. Same values, same order as the boolean indexing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hiera.model.checkpoint import load_exact, read_state_dict
from hiera.model.config import ModelConfig
from hiera.model.layers.block import Block
from hiera.model.layout import from_units
from hiera.model.masking import fixed_window_mask_error, mae_q_pool, random_mask, true_positions
from hiera.model.masking import num_kept as kept_at_ratio
from hiera.model.network import HierarchicalViT
from hiera.model.plan import BlockPlan
from hiera.model.registry import get_variant
from hiera.model.targets import BINS as HOG_BINS
from hiera.model.targets import CELL as HOG_CELL
from hiera.model.targets import hog_targets


class MaskedAutoencoder(HierarchicalViT):
    """MAE around a sparse-capable encoder config. `forward(x, mask_ratio)` -> (loss, pred, label, mask)."""

    def __init__(
        self,
        cfg: ModelConfig,
        decoder_dim: int = 512,
        decoder_depth: int = 8,
        decoder_heads: int = 16,
        multi_scale: bool = True,
        norm_pix_loss: bool = True,
        target: str = "pixel",
    ):
        if target not in ("pixel", "hog"):
            raise ValueError(f"target={target!r} is not one of 'pixel', 'hog'")
        if cfg.kv_mode == "window":
            raise ValueError(fixed_window_mask_error())
        if not cfg.uses_mask_units:
            raise ValueError(
                "MAE needs an encoder that pools inside mask units; use an MAE step of the ladder "
                "(separate_and_pad=True or pool_kernel='stride')"
            )
        if cfg.cls_token:
            raise ValueError("MAE encodes only the kept mask units, and a class token is in none; set cls_token=False")
        super().__init__(cfg.replace(num_classes=0))
        del self.norm, self.head  # the MAE encoder ends in `encoder_norm` after fusion
        cfg = self.config
        self.multi_scale, self.norm_pix_loss, self.target = multi_scale, norm_pix_loss, target
        ends = self.stage_ends
        self.final_unit = self.plans[-1].unit_q  # e.g. (2, 2): final tokens per mask unit
        self.final_grid = self.plans[-1].grid_q  # e.g. (14, 14)
        dim = self.plans[-1].dim_out
        conv: Callable[..., nn.Conv2d | nn.Conv3d] = (nn.Conv2d, nn.Conv3d)[cfg.ndim - 2]  # as PatchEmbed's
        self.fused_stages = (
            [i for i in range(len(ends)) if i < cfg.q_pool] + [len(ends) - 1] if multi_scale else [len(ends) - 1]
        )
        heads = []
        for i in self.fused_stages[:-1]:
            unit, width = self.plans[ends[i]].unit_q, self.plans[ends[i]].dim_out
            kernel = tuple(u // f for u, f in zip(unit, self.final_unit))
            heads.append(conv(width, dim, kernel_size=kernel, stride=kernel))
        self.multi_scale_fusion_heads = nn.ModuleList([*heads, nn.Identity()])
        self.encoder_norm = nn.LayerNorm(dim, eps=1e-6)

        self.decoder_embed = nn.Linear(dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, math.prod(self.final_grid), decoder_dim))
        # The official decoder blocks: plain pre-norm blocks, whatever extensions the encoder uses (no layer scale).
        dec_cfg = cfg.replace(
            pos_embed="abs",
            attn_residual=False,
            kv_mode="mask_unit",
            pool_kernel="stride",
            mlp_ratio=4.0,
            layer_scale=None,
            expand_skip="proj",
        )
        ones = (1,) * cfg.ndim
        plan = BlockPlan(
            index=0,
            stage=0,
            dim_in=decoder_dim,
            dim_attn=decoder_dim,
            dim_out=decoder_dim,
            heads=decoder_heads,
            q_pool=None,
            kv_pool=None,
            skip_pool=None,
            window=False,
            fixed_window=None,
            unit_grid=ones,
            unit_in=self.final_grid,
            unit_q=self.final_grid,
            unit_kv=self.final_grid,
        )
        self.decoder_blocks = nn.ModuleList(Block(plan, dec_cfg) for _ in range(decoder_depth))
        self.decoder_norm = nn.LayerNorm(decoder_dim, eps=1e-6)
        self.pred_stride = cfg.patch_stride[-1] * cfg.q_stride[-1] ** cfg.q_pool  # 16 px per predicted token
        out = self.pred_stride**2 if target == "pixel" else (self.pred_stride // HOG_CELL) ** 2 * HOG_BINS
        self.decoder_pred = nn.Linear(decoder_dim, out * cfg.in_chans)
        self._mae_init()

    def _mae_init(self) -> None:
        """Official MAE init: xavier-uniform Linears (bias 0), LayerNorm 1/0, patch embed as a Linear."""
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        nn.init.trunc_normal_(self.decoder_pos_embed, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        w = self.patch_embed.proj.weight
        nn.init.xavier_uniform_(w.data.view(w.shape[0], -1))

    def forward_encoder(self, x: torch.Tensor, mask: torch.Tensor, num_kept: int | None = None) -> torch.Tensor:
        """Kept units only: `[B, K, *final_unit, C]` after multi-scale fusion and `encoder_norm`."""
        enc = self.encode(x, mask, num_kept)
        fused: torch.Tensor | int = 0
        for head, i in zip(self.multi_scale_fusion_heads, self.fused_stages):
            s = enc.stages[i]  # [B, K, *unit, C]
            if not isinstance(head, nn.Identity):
                b, k = s.shape[:2]
                s = head(s.flatten(0, 1).movedim(-1, 1)).movedim(1, -1).reshape(b, k, *self.final_unit, -1)
            fused = fused + s
        return self.encoder_norm(fused)

    def forward_decoder(self, latent: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Predictions `[B, N_final, pred_stride² * 3]` in raster order, and the masked tokens `[B, N_final]`."""
        b, units = mask.shape
        x = self.decoder_embed(latent)  # [B, K, *final_unit, Cd]
        ones = [1] * len(self.final_unit)
        full = self.mask_token.view(1, 1, *ones, -1).expand(b, units, *self.final_unit, x.shape[-1])
        # The release's `full[mask] = x`, as a scatter of the K kept units (in ascending order, as `encode`
        # returns them) to their raster index: the same tensor, with shapes that do not depend on the mask's values.
        index = true_positions(mask, x.shape[1]).view(b, -1, *ones, 1).expand(-1, -1, *x.shape[2:])
        full = full.scatter(1, index, x.to(full.dtype))
        x = from_units(full.flatten(1, -2), self.config.mask_unit_grid, self.final_unit).flatten(1, -2)
        x = x + self.decoder_pos_embed
        for blk in self.decoder_blocks:
            x = blk(x)
        pred = self.decoder_pred(self.decoder_norm(x))
        token_mask = mask.view(b, units, *([1] * len(self.final_unit))).expand(b, units, *self.final_unit)
        token_mask = from_units(token_mask.reshape(b, -1, 1), self.config.mask_unit_grid, self.final_unit)
        return pred, ~token_mask.flatten(1)

    def targets(self, x: torch.Tensor) -> torch.Tensor:
        """Per predicted token `[B, N_final, D]`: pixels, or HOG (`hiera/model/targets.py`; video: first frame of each
        token, as the pixel target)."""
        if self.target == "pixel":
            return self.pixel_targets(x)
        if self.config.ndim == 3:
            x = x[:, :, :: self.config.patch_stride[0]]  # [B, C, t, H, W]
            b, c, t = x.shape[:3]
            hog = hog_targets(x.transpose(1, 2).flatten(0, 1), self.pred_stride)  # [B*t, h*w, D]
            return hog.reshape(b, -1, hog.shape[-1])
        return hog_targets(x, self.pred_stride)

    def pixel_targets(self, x: torch.Tensor) -> torch.Tensor:
        """Targets `[B, N_final, pred_stride² * 3]`: (c, y, x) patches for images; for video the first frame of
        each token, flattened (y, x, c) as the release."""
        p = self.pred_stride
        if self.config.ndim == 2:
            label = x.permute(0, 2, 3, 1).unfold(1, p, p).unfold(2, p, p)  # [B, h, w, C, p, p]
            return label.flatten(1, 2).flatten(2)
        x = x[:, :, :: self.config.patch_stride[0]]
        label = x.unfold(3, p, p).unfold(4, p, p).permute(0, 2, 3, 4, 5, 6, 1)  # [B, t, h, w, p, p, C]
        return label.flatten(1, 3).flatten(2)

    # The official MaskedAutoencoderHiera subclasses Hiera the same way: its forward is the MAE's own, by design.
    def forward(  # type: ignore[override]
        self,
        x: torch.Tensor,
        mask_ratio: float = 0.6,
        mask: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        num_kept: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns (loss, pred of masked tokens, normalised label, keep-mask `[B, #units]`).

        Without `mask`, a random one at `mask_ratio` (drawn from `generator`). With `mask`, `num_kept` (units kept
        per sample) lets `torch.compile` trace the step as one graph; eager mode reads it from the mask.
        """
        if mask is None:
            units = math.prod(self.config.mask_unit_grid)
            keep = kept_at_ratio(units, mask_ratio)
            if num_kept is not None and num_kept != keep:
                raise ValueError(
                    f"num_kept={num_kept} does not match mask_ratio={mask_ratio} ({keep} of {units} "
                    "units); give a mask with num_kept, or mask_ratio alone"
                )
            mask, num_kept = _random_mask_untraced(self.config, x.shape[0], mask_ratio, generator, x.device), keep
        latent = self.forward_encoder(x, mask, num_kept)
        pred, masked = self.forward_decoder(latent, mask)
        # The release's `label[masked]`, `pred[masked]` as gathers of the (#units - K) x tokens-per-unit masked
        # tokens per sample, in raster order: same rows, same order, a size known while tracing.
        index = true_positions(masked, (mask.shape[1] - latent.shape[1]) * math.prod(self.final_unit))
        label = _gather_rows(self.targets(x), index)
        if self.norm_pix_loss and self.target == "pixel":
            mean, var = label.mean(dim=-1, keepdim=True), label.var(dim=-1, keepdim=True)
            label = (label - mean) / (var + 1.0e-6) ** 0.5
        pred = _gather_rows(pred, index)
        return ((pred - label) ** 2).mean(), pred, label, mask


def _gather_rows(t: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """`t[b, index[b]]` for every sample, flattened to `[B * M, D]` (as `t[bool_mask]` with M True per row)."""
    return t.gather(1, index[..., None].expand(-1, -1, t.shape[-1])).flatten(0, 1)


# Drawing a mask is kept out of compiled graphs: a traced `torch.rand` would draw from the compiler's RNG (other
# masks than in eager mode) and a `torch.Generator` argument breaks the graph anyway. Compiled steps that must be
# one graph draw the mask outside and pass `mask=` with `num_kept=` (as `hiera.bench.throughput` does).
_random_mask_untraced = torch.compiler.disable(
    random_mask,
    reason="the MAE draws its random mask eagerly; for one graph pass mask=random_mask(...) and "
    "num_kept=hiera.model.masking.num_kept(#units, mask_ratio)",
)


def build_mae(
    name_or_config: str | ModelConfig,
    checkpoint: str | Path | None = None,
    decoder_dim: int = 512,
    decoder_depth: int = 8,
    decoder_heads: int = 16,
    multi_scale: bool = True,
    target: str = "pixel",
    **overrides: Any,
) -> MaskedAutoencoder:
    """An MAE around a registered variant (any step but the supervised baseline), pretraining with q_pool = 2
    as the paper; `checkpoint`: a local official MAE checkpoint (`model_state`, official names)."""

    cfg = get_variant(name_or_config).config if isinstance(name_or_config, str) else name_or_config
    overrides.setdefault("q_pool", mae_q_pool(cfg.q_pool))
    model = MaskedAutoencoder(
        cfg.replace(**overrides), decoder_dim, decoder_depth, decoder_heads, multi_scale, target=target
    )
    if checkpoint is not None:
        load_exact(model, read_state_dict(checkpoint), checkpoint)
    return model
