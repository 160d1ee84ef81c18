"""The Hiera end of the ladder equals the official numerics (timm's port of the official Hiera)."""

import pytest
import timm
import torch
from oracles import assert_close, scramble, timm_hiera_to_official, timm_hiera_video

import hiera


def compare(ours: torch.nn.Module, ref: torch.nn.Module, x: torch.Tensor) -> None:
    with torch.no_grad():
        assert_close(ours(x), ref(x), what="logits")
        _, ours_stages = ours.forward_features(x, return_intermediates=True)
        _, ref_stages = ref.forward_features(x, return_intermediates=True)
    assert len(ours_stages) == len(ref_stages) == 4
    for i, (a, b) in enumerate(zip(ours_stages, ref_stages)):
        assert_close(a, b, what=f"stage {i + 1}")


def hiera_pair(name: str, ref: torch.nn.Module, **overrides):
    scramble(ref)
    ours = hiera.build_model(name, attn_impl="math", **overrides).eval()
    ours.load_state_dict(timm_hiera_to_official(ref.state_dict()), strict=True)
    return ours, ref


@pytest.mark.parametrize("size", ["tiny", pytest.param("base", marks=pytest.mark.slow)])
def test_image_hiera_matches_timm(size):
    ours, ref = hiera_pair(f"hiera_{size}_224", timm.create_model(f"hiera_{size}_224").eval())
    compare(ours, ref, torch.randn(2, 3, 224, 224))


def test_sdpa_and_math_agree():
    ref = timm.create_model("hiera_tiny_224").eval()
    ours, _ = hiera_pair("hiera_tiny_224", ref)
    fused = hiera.build_model("hiera_tiny_224", attn_impl="sdpa").eval()
    fused.load_state_dict(ours.state_dict())
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert_close(fused(x), ours(x), what="sdpa vs math")


@pytest.mark.parametrize("attn", ["math", "sdpa"])
def test_training_gradients_match_timm(attn):
    """Backward too: the training step takes other code paths (max pooling through its argmax, fused attention's
    backward), so every parameter gradient and the input gradient must equal timm's."""
    ref = timm.create_model("hiera_tiny_224").train()
    scramble(ref, seed=2)
    ours = hiera.build_model("hiera_tiny_224", attn_impl=attn).train()
    ours.load_state_dict(timm_hiera_to_official(ref.state_dict()), strict=True)
    x = torch.randn(2, 3, 224, 224)
    inputs = [x.clone().requires_grad_(True) for _ in range(2)]
    for model, xi in zip((ours, ref), inputs):
        (model(xi) ** 2).mean().backward()
    assert_close(inputs[0].grad, inputs[1].grad, what="input gradient")
    ref_grads = timm_hiera_to_official({n: p.grad for n, p in ref.named_parameters()})
    for name, p in ours.named_parameters():
        assert_close(p.grad, ref_grads[name], rel=1e-3, what=f"grad of {name}")


@pytest.mark.slow
def test_video_hiera_base_matches_timm():
    ours, ref = hiera_pair("hiera_base_16x224", timm_hiera_video())
    compare(ours, ref, torch.randn(1, 3, 16, 224, 224))


@pytest.mark.parametrize("fmt", ["official", "timm"])
def test_checkpoint_formats_load(tmp_path, fmt):
    """The authors' format (dict with model_state, official names) and a timm state dict, from local files."""
    ref = timm.create_model("hiera_tiny_224").eval()
    scramble(ref)
    sd = ref.state_dict()
    path = tmp_path / "ckpt.pth"
    torch.save({"model_state": timm_hiera_to_official(sd)} if fmt == "official" else sd, path)
    ours = hiera.build_model("hiera_tiny_224", checkpoint=path, attn_impl="math").eval()
    compare(ours, ref, torch.randn(2, 3, 224, 224))


@pytest.mark.slow
def test_video_checkpoint_official_format(tmp_path):
    ref = timm_hiera_video()
    scramble(ref)
    path = tmp_path / "video.pth"
    torch.save({"model_state": timm_hiera_to_official(ref.state_dict())}, path)
    ours = hiera.build_model("hiera_base_16x224", checkpoint=path, attn_impl="math").eval()
    x = torch.randn(1, 3, 16, 224, 224)
    with torch.no_grad():
        assert_close(ours(x), ref(x), what="video logits via official checkpoint")


def test_bridge_step_e_without_kv_pooling_equals_hiera_without_mask_units():
    """Row (e) with KV stride 1 everywhere (a check between rows) = timm Hiera with mask-unit attention off."""
    ref = timm.create_model("hiera_tiny_224", mask_unit_attn=(False,) * 4).eval()
    ours, ref = hiera_pair("hiera_tiny_224.e_no_attn_residual", ref, kv_stride=(1, 1))
    compare(ours, ref, torch.randn(2, 3, 224, 224))


def test_step_e_keeps_kv_pooling_and_f_replaces_it():
    e = hiera.build_model("hiera_tiny_224.e_no_attn_residual")
    f = hiera.build_model("hiera_tiny_224")
    kv_e = [b.attn.pool_k is not None for b in e.blocks]
    assert kv_e == [p.stage < 2 for p in e.plans], "row (e) pools K/V in stages 1-2 only"
    assert not any(b.attn.pool_k is not None for b in f.blocks)
    # Official one-block lag: the first block of stage 3 still attends inside mask units.
    assert [p.window for p in f.plans] == [True, True, True, True] + [False] * 8
