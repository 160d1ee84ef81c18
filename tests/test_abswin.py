"""Beyond the paper, ladder step g: absolute-window position embeddings (Bolya et al., ICLR 2024, arXiv 2311.05613),
layer scale and the projection-free skip path of timm's `hiera_*_abswin_256`, and loading a checkpoint at another
input size (absolute, absolute-window and MViTv2's relative tables).

References are independent of `hiera/`: timm's models (scrambled O(1) weights, `pretrained=False`), timm's own
`resample_abs_pos_embed`, and a linear interpolation of the relative tables written out here index by index.
"""

import math
import re

import pytest
import timm
import torch
from oracles import assert_close, check_timm_file_loads, scramble, timm_hiera_to_official, timm_mvitv2
from timm.layers import resample_abs_pos_embed
from timm.models.hiera import Hiera

import hiera
from hiera.model.config import ModelConfig
from hiera.model.mae import build_mae
from hiera.model.masking import random_mask


def stage_outputs(model, x, mask=None):
    with torch.no_grad():
        return model.forward_features(x, mask=mask, return_intermediates=True)[1]


def compare(ours, ref, x):
    with torch.no_grad():
        assert_close(ours(x), ref(x), what="logits")
    for i, (a, b) in enumerate(zip(stage_outputs(ours, x), stage_outputs(ref, x))):
        assert_close(a, b, what=f"stage {i + 1}")


@pytest.mark.parametrize("size", ["small", pytest.param("base", marks=pytest.mark.slow)])
def test_abswin_256_matches_timm(size):
    """Our `hiera_<size>_abswin_256` = timm's (abs-win embedding, layer scale, small: concatenated max/avg skip)."""
    ref = timm.create_model(f"hiera_{size}_abswin_256", pretrained=False).eval()
    scramble(ref)
    ours = hiera.build_model(f"hiera_{size}_abswin_256", attn_impl="math").eval()
    ours.load_state_dict(timm_hiera_to_official(ref.state_dict()), strict=True)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters())
    compare(ours, ref, torch.randn(1, 3, 256, 256))


def test_timm_abswin_state_dict_loads_from_file(tmp_path):
    check_timm_file_loads(tmp_path, "hiera_small_abswin_256", "hiera_small_abswin_256", 256)


def timm_g(size: str, img: int) -> Hiera:
    """timm's constructor with our step g at Hiera-`size`: the abs-win embedding with its default 14x14 table only."""
    s = hiera.SIZES[size]
    return Hiera(
        img_size=(img, img), embed_dim=s.embed_dim, num_heads=s.num_heads, stages=s.stages, abs_win_pos_embed=True
    ).eval()


def test_step_g_matches_timm_and_loads_224_weights_at_256(tmp_path):
    """224-trained abs-win weights: our step g built at 256 equals timm's model built at 256 from the same weights
    (the tables do not depend on the input size; timm resizes the global one at every forward)."""
    src = timm_g("tiny", 224)
    scramble(src, seed=1)
    ours224 = hiera.build_model("hiera_tiny_224.g_abs_win", attn_impl="math").eval()
    ours224.load_state_dict(timm_hiera_to_official(src.state_dict()), strict=True)
    compare(ours224, src, torch.randn(1, 3, 224, 224))

    torch.save(src.state_dict(), tmp_path / "g224.pth")
    ours = hiera.build_model(
        "hiera_tiny_224.g_abs_win", input_size=(256, 256), checkpoint=tmp_path / "g224.pth", attn_impl="math"
    ).eval()
    ref = timm_g("tiny", 256)
    ref.load_state_dict(src.state_dict())
    compare(ours, ref, torch.randn(1, 3, 256, 256))


def test_abs_pos_checkpoint_resized_as_timm(tmp_path):
    """Plain absolute table (row f) from 224 to 256: timm's `resample_abs_pos_embed` is the reference."""
    src = timm.create_model("hiera_tiny_224", pretrained=False).eval()
    scramble(src, seed=4)
    sd = src.state_dict()
    torch.save(sd, tmp_path / "t224.pth")
    ours = hiera.build_model("hiera_tiny_224", input_size=(256, 256), checkpoint=tmp_path / "t224.pth")
    ours = ours.eval()
    ref = timm.create_model("hiera_tiny_224", pretrained=False, img_size=256).eval()
    resized = dict(sd, pos_embed=resample_abs_pos_embed(sd["pos_embed"], (64, 64), (56, 56), num_prefix_tokens=0))
    ref.load_state_dict(resized)
    assert not torch.allclose(resized["pos_embed"][:, :10], sd["pos_embed"][:, :10])  # it was resized
    with torch.no_grad():
        assert_close(ours(torch.ones(1, 3, 256, 256)), ref(torch.ones(1, 3, 256, 256)), what="logits at 256")
    compare(ours, ref, torch.randn(1, 3, 256, 256))


def linear_resize_by_hand(table: torch.Tensor, length: int) -> torch.Tensor:
    """`[L, d]` -> `[length, d]`: linear interpolation along the rows with half-pixel centres (PyTorch's
    align_corners=False, the convention of MViTv2's `get_rel_pos`), written out row by row."""
    old = table.shape[0]
    rows = []
    for i in range(length):
        src = max((i + 0.5) * old / length - 0.5, 0.0)
        lo = min(int(math.floor(src)), old - 1)
        hi = min(lo + 1, old - 1)
        w = src - lo
        rows.append((1 - w) * table[lo] + w * table[hi])
    return torch.stack(rows)


def test_rel_pos_checkpoint_resized_along_each_axis(tmp_path):
    """MViTv2-T trained at 224, built at 256: every relative table grows (111 -> 127 rows in stage 1, ...) by linear
    interpolation; the reference is timm's MViTv2 at 256 given tables resized by hand."""
    src = timm_mvitv2("mvitv2_tiny")
    scramble(src, seed=5)
    torch.save(src.state_dict(), tmp_path / "m224.pth")
    ours = hiera.build_model(
        "mvitv2_tiny_224", input_size=(256, 256), checkpoint=tmp_path / "m224.pth", attn_impl="math"
    ).eval()
    ref = timm_mvitv2("mvitv2_tiny", img_size=256)
    target = ref.state_dict()
    sd = {}
    grown = 0
    for k, v in src.state_dict().items():
        if re.search(r"rel_pos_[hw]$", k) and v.shape != target[k].shape:
            v, grown = linear_resize_by_hand(v, target[k].shape[0]), grown + 1
        sd[k] = v
    assert grown == 2 * 10  # both axes of all 10 blocks
    ref.load_state_dict(sd)
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        assert_close(ours(x), ref(x), what="mvitv2 logits at 256 from 224 weights")


@pytest.mark.parametrize(
    ("name", "size", "needle"),
    [
        (
            "hiera_small_abswin_256",
            240,
            "multiple of 32 px (8 tokens of 4 px: q_stride**q_pool=8, mask unit 8); nearest: 224 or 256",
        ),
        ("hiera_tiny_224.g_abs_win", 300, "nearest: 288 or 320"),
        ("mvitv2_tiny_224", 100, "multiple of 32 px (8 tokens of 4 px: q_stride**q_pool=8); nearest: 96 or 128"),
    ],
)
def test_impossible_input_size_is_one_line(name, size, needle):
    with pytest.raises(ValueError, match=re.escape(needle)) as err:
        hiera.build_model(name, input_size=(size, size))
    assert "\n" not in str(err.value)


def test_mask_unit_grid_makes_size_impossible_even_when_q_pooling_allows_it():
    """q_pool=2 (MAE encoder) needs only multiples of 4 tokens; the 8x8 mask units still need 8."""
    cfg = hiera.get_variant("mae_hiera_tiny_224").config
    with pytest.raises(ValueError, match=re.escape("nearest: 224 or 256")):
        cfg.replace(input_size=(240, 240))
    assert cfg.replace(mask_unit_size=(4, 4), input_size=(240, 240)).token_grid == (60, 60)


def test_layer_scale_switch_matches_timm_init_values():
    ref = timm.create_model("hiera_tiny_224", pretrained=False, init_values=0.5).eval()
    fresh = hiera.build_model("hiera_tiny_224", layer_scale=0.5)
    assert torch.equal(fresh.blocks[1].ls1.gamma, torch.full((192,), 0.5))
    scramble(ref, seed=6)
    ours = hiera.build_model("hiera_tiny_224", layer_scale=0.5, attn_impl="math").eval()
    ours.load_state_dict(timm_hiera_to_official(ref.state_dict()), strict=True)
    compare(ours, ref, torch.randn(1, 3, 224, 224))
    plain = hiera.build_model("hiera_tiny_224")
    assert len(ours.state_dict()) == len(plain.state_dict()) + 2 * 12  # ls1, ls2 per block, nothing else


def test_sparse_encoding_matches_timm_masked_forward():
    """Sparse MAE with abs-win: positions are added on the whole grid before masked units are dropped, as timm's
    masked `forward_features`; every stage of the kept units agrees."""
    ref = timm.create_model("hiera_small_abswin_256", pretrained=False).eval()
    scramble(ref, seed=7)
    ours = hiera.build_model("hiera_small_abswin_256", attn_impl="math").eval()
    ours.load_state_dict(timm_hiera_to_official(ref.state_dict()))
    x = torch.randn(2, 3, 256, 256)
    mask = random_mask(ours.config, 2, 0.6, torch.Generator().manual_seed(0))  # [2, 64], True = keep
    for i, (a, b) in enumerate(zip(stage_outputs(ours, x, mask), stage_outputs(ref, x, mask))):
        assert_close(a, b, what=f"masked stage {i + 1}")


def test_mae_with_abs_win_runs_and_learns_the_tables():
    model = build_mae("hiera_tiny_224.g_abs_win")
    assert model.config.pos_embed == "abs_win"
    assert model.config.q_pool == 2
    loss, pred, label, mask = model(torch.randn(1, 3, 224, 224), mask_ratio=0.6, generator=torch.Generator())
    loss.backward()
    assert torch.isfinite(loss)
    assert pred.shape == label.shape == (30 * 4, 768)
    assert model.pos_embed.grad.abs().sum() > 0
    assert model.pos_embed_win.grad.abs().sum() > 0
    assert not any(n.startswith("decoder_blocks") and ".ls" in n for n, _ in model.named_parameters())


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        (dict(layer_scale=0.0), "layer_scale=0.0 must be a positive init value (e.g. 1e-5) or None (off)"),
        (dict(global_pos_size=(14,)), "global_pos_size=(14,) must be two positive integers"),
        (dict(expand_skip="max_avg", dim_expand="mlp"), "expand_skip='max_avg' needs dim_mul=2.0"),
        (dict(expand_skip="cat"), "'proj', 'max_avg'"),
    ],
)
def test_bad_extension_configs_are_one_line(changes, needle):
    with pytest.raises(ValueError, match=re.escape(needle)) as err:
        ModelConfig(**changes)
    assert "\n" not in str(err.value)


def test_abs_win_is_2d_only():
    video = hiera.get_variant("hiera_base_16x224").config
    with pytest.raises(ValueError, match=re.escape("pos_embed='abs_win' is defined for images (H, W) only")):
        video.replace(pos_embed="abs_win")
    assert [v.name for v in hiera.list_variants("*g_abs_win")] == [f"hiera_{s}_224.g_abs_win" for s in hiera.SIZES]


def test_abs_win_positions_are_the_resized_global_table_plus_the_tiled_window():
    """The embedding itself, against its definition: token (i, j) gets G(i, j) + W(i mod 8, j mod 8)."""
    model = hiera.build_model("hiera_tiny_224.g_abs_win")
    scramble(model, seed=8)
    pos = model.abs_win_positions().view(56, 56, -1)
    glob = torch.nn.functional.interpolate(model.pos_embed, (56, 56), mode="bicubic", antialias=True)[0]
    win = model.pos_embed_win[0]
    for i, j in [(0, 0), (7, 8), (13, 55), (55, 21)]:
        assert torch.allclose(pos[i, j], glob[:, i, j] + win[:, i % 8, j % 8], atol=1e-6)
    plain_bicubic = torch.nn.functional.interpolate(model.pos_embed, (56, 56), mode="bicubic")[0]
    assert not torch.allclose(plain_bicubic, glob, atol=1e-4)  # antialias matters for upsampling too (timm's choice)


def test_step_g_is_listed_beyond_the_paper_and_kept_out_of_table1_tools():
    """Where the extended ladder shows up: bench peers (timm's abswin models), the speed-table note; and where it
    must not: the GPU pass's Table-1 ladder."""
    from hiera.analysis.tables import _beyond_paper_notes
    from hiera.bench.gpu_pass import _ladder
    from hiera.bench.throughput import timm_peer

    assert timm_peer(hiera.get_variant("hiera_small_abswin_256")) == "hiera_small_abswin_256"
    assert timm_peer(hiera.get_variant("hiera_tiny_224.g_abs_win")) is None  # timm has no abs-win Hiera-T
    assert _ladder("large", "224")[-1] == "hiera_large_224"
    assert len(_ladder("large", "224")) == 8
    rows = [{"step": "f", "variant": "hiera_tiny_224"}, {"step": "g", "variant": "hiera_tiny_224.g_abs_win"}]
    (note,) = _beyond_paper_notes(rows)
    assert note.startswith("Step g (hiera_tiny_224.g_abs_win): beyond the paper, absolute-window position")
    assert _beyond_paper_notes(rows[:1]) == []
