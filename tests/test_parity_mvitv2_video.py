"""The video MViTv2 end equals torchvision's Kinetics MViTv2-S (`torchvision.models.video.mvit_v2_s`).

An oracle independent of the 2-D reduction in `test_parity_mvitv2.py`: torchvision's own video MViTv2 (3x7x7
patch embedding, decomposed t/h/w relative positions, residual pooling, adaptive KV stride (1, 8, 8), channels
growing in attention, a class token pooled around and read by the head). Its weights are scrambled to O(1), mapped
to our names by the key map below (written here from torchvision's module names, not imported from `hiera/`) and
loaded strictly; logits and the final tokens must agree within 1e-4 of their magnitude. Below, the class token on
the rest of the ladder: with tokens grouped in several mask units, in every head readout, refused by sparse encoding.
"""

import re
from unittest import mock

import pytest
import torch
import torchvision.models.video.mvit as tv_mvit
from oracles import assert_close, scramble
from torchvision.models.video import mvit_v2_s

import hiera
from hiera.model.flops import count_params
from hiera.model.mae import MaskedAutoencoder

TORCHVISION_PARAMS = 34_537_744  # MViT_V2_S_Weights.KINETICS400_V1.meta["num_params"]

# torchvision name -> ours (regex, replacement), applied in order.
KEY_MAP = (
    (r"^conv_proj\.", "patch_embed.proj."),
    (r"^head\.1\.", "head.projection."),
    (r"\.attn\.project\.0\.", ".attn.proj."),
    (r"\.attn\.pool_(q|k|v)\.pool\.weight$", r".attn.pool_\1.weight"),
    (r"\.attn\.pool_(q|k|v)\.norm_act\.0\.", r".attn.norm_\1."),
    (r"\.mlp\.0\.", ".mlp.fc1."),
    (r"\.mlp\.3\.", ".mlp.fc2."),
    (r"^(blocks\.\d+)\.project\.", r"\1.proj."),  # the skip projection when channels grow
)


def torchvision_to_ours(sd: dict) -> dict:
    out = {}
    for k, v in sd.items():
        if k == "pos_encoding.class_token":  # [C] -> [1, 1, C]
            out["cls_token"] = v.view(1, 1, -1)
            continue
        for pattern, repl in KEY_MAP:
            k = re.sub(pattern, repl, k)
        out[k] = v
    return out


def pair(input_size: tuple[int, int, int], attn_impl: str = "math"):
    """torchvision's mvit_v2_s at `input_size` (T, H, W), scrambled, and ours with its weights."""
    t, h, w = input_size
    real = tv_mvit._mvit

    def resized(**kwargs):  # mvit_v2_s fixes 16x224 in its call to _mvit; only the sizes change
        return real(**{**kwargs, "temporal_size": t, "spatial_size": (h, w)})

    with mock.patch.object(tv_mvit, "_mvit", resized):
        ref = mvit_v2_s(weights=None).eval()
    scramble(ref)
    ours = hiera.build_model("mvitv2_small_16x224", input_size=input_size, attn_impl=attn_impl).eval()
    ours.load_state_dict(torchvision_to_ours(ref.state_dict()), strict=True)
    return ours, ref


def compare(ours, ref, x: torch.Tensor) -> dict[str, float]:
    """Logits and the last block's tokens (class token first, then raster order, which is ours for one unit)."""
    seen = {}
    hook = ref.blocks[-1].register_forward_hook(lambda m, i, o: seen.update(tokens=o[0]))
    try:
        with torch.no_grad():
            ref_logits, logits = ref(x), ours(x)
            tokens = ours.forward_features(x)
    finally:
        hook.remove()
    errors = {}
    for what, a, b in (("logits", logits, ref_logits), ("final tokens", tokens, seen["tokens"])):
        errors[what] = (a - b).abs().max().item() / max(1.0, b.abs().max().item())
        assert_close(a, b, what=what)
    return errors


def test_param_count_equals_torchvision():
    with torch.device("meta"):
        ref = mvit_v2_s(weights=None)
    assert sum(p.numel() for p in ref.parameters()) == TORCHVISION_PARAMS
    assert count_params(hiera.get_variant("mvitv2_small_16x224").config) == TORCHVISION_PARAMS


def test_mvitv2_small_16x224_matches_torchvision():
    """The registered config itself, 16 frames of 224² (8 x 56 x 56 tokens), batch 1."""
    torch.manual_seed(0)
    ours, ref = pair((16, 224, 224))
    errors = compare(ours, ref, torch.randn(1, 3, 16, 224, 224))
    print(f"mvitv2_small_16x224 vs torchvision mvit_v2_s, max relative error: {errors}")


@pytest.mark.parametrize("attn_impl", ["math", "sdpa"])
def test_small_clip_matches_torchvision_with_either_kernel(attn_impl):
    """A short small clip (tokens 2 x 16 x 16, KV pooled to 2 x 2 x 2 in every stage) with both attention kernels:
    the class token's zero rel-pos row and column reach SDPA as part of its additive mask."""
    ours, ref = pair((4, 64, 64), attn_impl)
    compare(ours, ref, torch.randn(2, 3, 4, 64, 64))


# ---- the class token away from the torchvision config ------------------------------------------------------------
CLS_ROW_D = dict(input_size=(64, 64), pos_embed="rel", cls_token=True, head_order="cls")  # + rel pos, cls readout


def test_cls_token_with_tokens_grouped_in_mask_units_equals_one_unit():
    """Row (d) (kernel = stride, KV pooling) keeps tokens unit-major; the class token leads them, skips every per-unit
    pool and rel-pos table, so 4 units of 8x8 tokens must give what one 16x16 unit gives."""
    units = hiera.build_model("hiera_tiny_224.d_kernel_eq_stride", **CLS_ROW_D).eval()
    one = hiera.build_model("hiera_tiny_224.d_kernel_eq_stride", **CLS_ROW_D, mask_unit_size=(16, 16)).eval()
    scramble(units)
    one.load_state_dict(units.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert_close(units(x), one(x), what="4 units vs 1")


def test_head_order_reads_the_cls_token_or_averages_the_patch_tokens():
    model = hiera.build_model("hiera_tiny_224.d_kernel_eq_stride", **CLS_ROW_D).eval()
    scramble(model)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        tokens = model.forward_features(x)
        assert tokens.shape == (2, 1 + 4, 768)  # the class token, then one final token per mask unit
        norm = model.norm
        expected = {
            "cls": norm(tokens[:, 0]),
            "mean_norm": norm(tokens[:, 1:].mean(1)),
            "norm_mean": norm(tokens[:, 1:]).mean(1),
        }
        for order, want in expected.items():
            model.config = model.config.replace(head_order=order)  # the head reads the order at call time
            assert_close(model.forward_head(tokens, pre_logits=True), want, what=order)
    assert not torch.allclose(expected["cls"], expected["mean_norm"])


def test_sparse_encoding_refuses_a_cls_token():
    model = hiera.build_model("hiera_tiny_224.d_kernel_eq_stride", **CLS_ROW_D)
    with pytest.raises(ValueError, match="cannot encode sparsely"):
        model(torch.randn(1, 3, 64, 64), mask=torch.ones(1, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="class token is in none"):
        MaskedAutoencoder(hiera.get_variant("hiera_tiny_224.d_kernel_eq_stride").config.replace(**CLS_ROW_D))
