"""Sparse MAE encoding at every ladder step (paper §3.1, Fig. 4d): no leakage, reduction to dense, official
numerics at the Hiera end, masks, and relative positions under masking (beyond the paper)."""

import math
import re

import pytest
import timm
import torch
from oracles import assert_close, scramble, timm_hiera_video

import hiera
from hiera.model.layers.rel_pos import rel_pos_bias, rel_pos_bias_sparse
from hiera.model.masking import num_kept, random_mask

MAE_STEPS = [
    "mae_rel_pos",
    "a_abs_pos",
    "b_max_pool",
    "c_no_stride1_pool",
    "d_kernel_eq_stride",
    "e_no_attn_residual",
    "",
]


def name_of(res: str, slug: str, size: str = "tiny") -> str:
    return f"hiera_{size}_{res}" + (f".{slug}" if slug else "")


def encode(model, x, mask):
    with torch.no_grad():
        return model.encode(x, mask)


# ---- no leakage -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("res", ["224", "16x224"])
@pytest.mark.parametrize("slug", MAE_STEPS)
def test_no_leakage_from_masked_units(res, slug):
    """Changing the pixels of masked units never changes anything the encoder returns for kept units."""
    model = hiera.build_model(name_of(res, slug)).eval()
    scramble(model)
    cfg = model.config
    ratio = 0.6 if res == "224" else 0.9
    mask = random_mask(cfg, 2, ratio, torch.Generator().manual_seed(0))
    x = torch.randn(2, 3, *cfg.input_size)
    pixel_mask = torch.nn.functional.interpolate(mask.view(2, 1, *cfg.mask_unit_grid).float(), size=cfg.input_size)
    x_other = torch.where(pixel_mask.bool(), x, 100 * torch.randn_like(x))  # only masked pixels change
    a, b = encode(model, x, mask), encode(model, x_other, mask)
    assert torch.equal(a.unit_index, b.unit_index)
    assert (a.tokens - b.tokens).abs().max() <= 1e-6
    for s, t in zip(a.stages, b.stages):
        assert (s - t).abs().max() <= 1e-6
    assert a.stages[0].shape[1] == num_kept(math.prod(cfg.mask_unit_grid), ratio)


def test_supervised_baseline_refuses_masks_with_the_fix():
    model = hiera.build_model("hiera_tiny_224.sup_mvitv2")
    mask = random_mask(model.config, 1, 0.6)
    with pytest.raises(ValueError, match="separate_and_pad=True"):
        model.encode(torch.randn(1, 3, 224, 224), mask)


# ---- reduction to dense -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("slug", ["mae_rel_pos", "a_abs_pos", "b_max_pool", "c_no_stride1_pool"])
def test_separate_and_pad_with_one_unit_equals_dense(slug):
    """One mask unit covering the whole input, every unit kept: separate-and-pad = the dense model."""
    whole = dict(mask_unit_size=(56, 56), attn_impl="math")
    sparse = hiera.build_model(name_of("224", slug), **whole).eval()
    dense = hiera.build_model(name_of("224", slug), separate_and_pad=False, **whole).eval()
    scramble(sparse)
    dense.load_state_dict(sparse.state_dict())
    x = torch.randn(2, 3, 224, 224)
    keep_all = torch.ones(2, 1, dtype=torch.bool)
    with torch.no_grad():
        ref = dense(x)
        assert_close(sparse(x, keep_all), ref, what="masked path, all kept")
        assert_close(sparse(x), ref, what="unmasked path")


@pytest.mark.parametrize("res", ["224", pytest.param("16x224", marks=pytest.mark.slow)])
@pytest.mark.parametrize("slug", ["mae_rel_pos", "c_no_stride1_pool", "d_kernel_eq_stride", "e_no_attn_residual", ""])
def test_keeping_every_unit_equals_the_dense_forward(res, slug):
    """Normal mask units, nothing masked: the sparse path (incl. sparse rel-pos) = the dense path."""
    model = hiera.build_model(name_of(res, slug), attn_impl="math").eval()
    scramble(model)
    cfg = model.config
    x = torch.randn(1, 3, *cfg.input_size)
    keep_all = torch.ones(1, math.prod(cfg.mask_unit_grid), dtype=torch.bool)
    with torch.no_grad():
        dense = model.forward_features(x, return_intermediates=True)[1]
        sparse = model.forward_features(x, mask=keep_all, return_intermediates=True)[1]
        assert_close(model(x, keep_all), model(x), what="logits")
    for d, s in zip(dense, sparse):  # sparse stages are per unit: undo the unit grouping to compare
        assert_close(
            s,
            d.reshape(s.shape) if cfg.mask_unit_grid == (1,) * cfg.ndim else _per_unit(d, cfg.mask_unit_grid),
            what="stage",
        )


def _per_unit(spatial: torch.Tensor, grid: tuple[int, ...]) -> torch.Tensor:
    """`[B, *full, C]` -> `[B, #units, *unit, C]` (raster unit order), written independently of hiera.model.layout."""
    b, c, nd = spatial.shape[0], spatial.shape[-1], len(grid)
    unit = [n // g for n, g in zip(spatial.shape[1:-1], grid)]
    x = spatial.reshape(b, *[v for g, u in zip(grid, unit) for v in (g, u)], c)
    x = x.permute(0, *range(1, 2 * nd, 2), *range(2, 2 * nd + 1, 2), 2 * nd + 1)
    return x.reshape(b, math.prod(grid), *unit, c)


# ---- the Hiera end is the official MAE encoder ----------------------------------------------------------------
@pytest.mark.parametrize("video", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_masked_mae_encoder_matches_timm(video, tmp_path):
    """mae_hiera_* (q_pool=2), loaded from an official-format MAE checkpoint, = timm Hiera(q_pool=2) masked."""
    ref = (
        timm_hiera_video(q_pool=2, num_classes=0)
        if video
        else timm.create_model("hiera_tiny_224", q_pool=2, num_classes=0).eval()
    )
    scramble(ref)
    sd = {k.replace("head.norm.", "encoder_norm."): v for k, v in ref.state_dict().items()}
    sd.update(
        {
            "decoder_embed.weight": torch.zeros(512, 768),
            "mask_token": torch.zeros(1, 1, 512),
            "multi_scale_fusion_heads.0.weight": torch.zeros(1),
            "decoder_pred.weight": torch.zeros(1),
        }
    )
    torch.save({"model_state": sd}, tmp_path / "mae.pth")
    name = "mae_hiera_base_16x224" if video else "mae_hiera_tiny_224"
    ours = hiera.build_model(name, checkpoint=tmp_path / "mae.pth", attn_impl="math").eval()
    cfg = ours.config
    x = torch.randn(2, 3, *cfg.input_size)
    mask = random_mask(cfg, 2, 0.9 if video else 0.6, torch.Generator().manual_seed(3))
    with torch.no_grad():
        _, stages = ours.forward_features(x, mask=mask, return_intermediates=True)
        _, ref_stages = ref.forward_features(x, mask=mask, return_intermediates=True)
    assert len(stages) == len(ref_stages) == 4
    for i, (a, b) in enumerate(zip(stages, ref_stages)):
        assert_close(a, b, what=f"masked stage {i + 1}")


# ---- masks ---------------------------------------------------------------------------------------------------
def test_random_masks():
    image = hiera.get_variant("hiera_base_224").config
    video = hiera.get_variant("hiera_base_16x224").config
    for cfg, ratio, kept in ((image, 0.6, 19), (video, 0.9, 39), (image, 0.75, 12)):
        mask = random_mask(cfg, 8, ratio, torch.Generator().manual_seed(0))
        assert mask.dtype == torch.bool
        assert mask.shape == (8, math.prod(cfg.mask_unit_grid))
        assert (mask.sum(1) == kept).all()
        assert kept == math.floor(mask.shape[1] * (1 - ratio) + 1e-9)
        assert len({tuple(m.tolist()) for m in mask}) == 8, "masks differ per sample"
        again = random_mask(cfg, 8, ratio, torch.Generator().manual_seed(0))
        assert torch.equal(mask, again)
        assert not torch.equal(mask, random_mask(cfg, 8, ratio, torch.Generator().manual_seed(1)))


@pytest.mark.parametrize(
    ("mask", "needle"),
    [
        (torch.ones(2, 48, dtype=torch.bool), "bool tensor [B=2, 49]"),
        (torch.ones(2, 49), "bool tensor"),
        (torch.stack([torch.arange(49) < 10, torch.arange(49) < 11]), "same, non-zero number"),
        (torch.zeros(2, 49, dtype=torch.bool), "same, non-zero number"),
    ],
)
def test_invalid_masks_are_one_line_errors(mask, needle):
    model = hiera.build_model("hiera_tiny_224")
    with pytest.raises(ValueError, match=re.escape(needle)) as err:
        model.encode(torch.randn(2, 3, 224, 224), mask)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="mask_ratio"):
        random_mask(model.config, 2, 1.0)


# ---- relative positions under masking (beyond the paper) ----------------------------------------------------------
def test_sparse_rel_pos_bias_is_the_dense_bias_restricted_to_kept_tokens():
    """Gathering by true coordinates (sparse) = slicing the dense broadcast bias at the kept tokens."""
    model = hiera.build_model("hiera_tiny_224.mae_rel_pos")
    attn, plan = model.blocks[0].attn, model.plans[0]  # stage 1: q 8x8 per unit, kv pooled to 2x2 per unit
    units = math.prod(plan.unit_grid)
    nq_u, nk_u = math.prod(plan.unit_q), math.prod(plan.unit_kv)
    tables = [attn.rel_pos_h, attn.rel_pos_w]
    index = [attn.rel_index_h, attn.rel_index_w]
    q = torch.randn(2, attn.heads, units * nq_u, attn.head_dim)
    dense = rel_pos_bias(q, tables, index, plan.unit_grid, plan.unit_q, plan.unit_kv, window=False)
    kept = torch.tensor([[0, 3, 10, 48], [5, 6, 7, 20]])
    grid = torch.stack(torch.unravel_index(kept, plan.unit_grid), dim=-1)
    q_rows = (kept[:, :, None] * nq_u + torch.arange(nq_u)).flatten(1)
    k_rows = (kept[:, :, None] * nk_u + torch.arange(nk_u)).flatten(1)
    q_kept = torch.stack([q[i, :, q_rows[i]] for i in range(2)])
    sparse = rel_pos_bias_sparse(q_kept, tables, index, grid, plan.unit_q, plan.unit_kv)
    expect = torch.stack([dense[i][:, q_rows[i]][:, :, k_rows[i]] for i in range(2)])
    assert torch.allclose(sparse, expect, atol=1e-5)


def test_masked_positions_are_true_grid_coordinates():
    model = hiera.build_model("hiera_tiny_224.mae_rel_pos").eval()
    mask = torch.zeros(1, 49, dtype=torch.bool)
    mask[0, [1, 9]] = True  # units (0, 1) and (1, 2)
    enc = encode(model, torch.randn(1, 3, 224, 224), mask)
    assert enc.unit_index.tolist() == [[1, 9]]
    pos = enc.positions()[0]  # final stage of a q_pool=3 model: one token per unit
    assert pos.tolist() == [[0, 1], [1, 2]]
