"""Fused attention everywhere it applies, with unchanged numbers, and the kernel that ran read from the profiler.

Mask-unit attention folds the units into the batch (4-D), so `scaled_dot_product_attention` can dispatch a fused
kernel; the 5-D layout of the official release and timm falls back to the math path. The expectations here are
written from PyTorch's documented dispatch rules, not from `hiera/bench/kernels.py`'s tables.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from oracles import assert_close, scramble

from hiera import build_model
from hiera.bench.kernels import attention_kernels, backends
from hiera.model.registry import get_variant, list_variants

SMALL = dict(
    input_size=(64, 64),
    mask_unit_size=(4, 4),
    q_pool=2,
    num_heads=1,
    stages=(1, 1, 2, 1),
    embed_dim=16,
    kv_stride=(2, 2),
)
SMALL_VIDEO = dict(
    input_size=(4, 32, 32),
    mask_unit_size=(1, 4, 4),
    q_pool=2,
    num_heads=1,
    stages=(1, 1, 1, 1),
    embed_dim=16,
    kv_stride=(1, 2, 2),
    q_stride=(1, 2, 2),
    patch_kernel=(3, 7, 7),
    patch_stride=(2, 4, 4),
    patch_padding=(1, 3, 3),
)
IMAGE_LADDER = [v.name for v in list_variants("hiera_tiny_224*")]
VIDEO_LADDER = [v.name for v in list_variants("hiera_base_16x224*")]
# Step h at SMALL: windows per stage that fit its 16-token grid and 4-token mask units (the stage-1 window is the
# abs-win window table), stage 3's window of 3 pads its 4x4 grid to 6x6, block 3 attends globally.
SMALL_WINDOWS = dict(window_spec=(4, 2, 3, 2), global_blocks=(3,))


def _spy_sdpa(monkeypatch) -> list[tuple]:
    """Record (q shape, k shape, mask shape or None, dtypes) of every SDPA call the model makes."""
    calls, real = [], F.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, **kw):
        calls.append(
            (
                tuple(q.shape),
                tuple(k.shape),
                None if attn_mask is None else tuple(attn_mask.shape),
                {q.dtype, k.dtype, v.dtype} | ({attn_mask.dtype} if attn_mask is not None else set()),
            )
        )
        return real(q, k, v, attn_mask=attn_mask, **kw)

    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    return calls


@pytest.mark.parametrize(
    ("name", "small"), [(n, SMALL) for n in IMAGE_LADDER] + [(n, SMALL_VIDEO) for n in VIDEO_LADDER]
)
def test_sdpa_gets_4d_inputs_and_equals_math(monkeypatch, name, small):
    cfg = get_variant(name).config
    cfg = cfg.replace(**small, **(SMALL_WINDOWS if cfg.kv_mode == "window" else {}))
    math_model = build_model(cfg.replace(attn_impl="math")).eval()
    scramble(math_model)
    fused = build_model(cfg.replace(attn_impl="sdpa")).eval()
    fused.load_state_dict(math_model.state_dict())
    x = torch.randn(2, 3, *cfg.input_size)
    calls = _spy_sdpa(monkeypatch)
    with torch.inference_mode():
        ref, out = math_model.forward_features(x), fused.forward_features(x)
    assert len(calls) == cfg.depth, "one SDPA call per block"
    assert all(len(q) == 4 and len(k) == 4 for q, k, _, _ in calls), f"non-4-D SDPA inputs: {calls}"
    assert all(len(dtypes) == 1 for *_, dtypes in calls), "q, k, v and the mask must share one dtype"
    if cfg.pos_embed == "rel":
        assert all(m is not None and m == q[:3] + k[2:3] for q, k, m, _ in calls), "the rel-pos bias is the mask"
    assert_close(out, ref, 1e-5, name)


def test_mask_unit_attention_with_rel_pos_is_unchanged(monkeypatch):
    """A combination no paper row has (rel pos + mask-unit attention): the bias follows the units into the batch."""
    cfg = get_variant("hiera_tiny_224").config.replace(pos_embed="rel", **SMALL)
    math_model = build_model(cfg.replace(attn_impl="math")).eval()
    scramble(math_model, seed=1)
    fused = build_model(cfg.replace(attn_impl="sdpa")).eval()
    fused.load_state_dict(math_model.state_dict())
    x = torch.randn(2, 3, 64, 64)
    calls = _spy_sdpa(monkeypatch)
    with torch.inference_mode():
        assert_close(fused.forward_features(x), math_model.forward_features(x), 1e-5, "rel pos + mask units")
    windowed = [c for c in calls if c[0][0] > 2]  # units folded into the batch: B*U rows
    assert windowed
    assert all(m is not None and m[0] == q[0] for q, _, m, _ in windowed)


def test_bf16_autocast_casts_the_bias_to_the_kernel_dtype(monkeypatch):
    """Under autocast the conv pools' LayerNorm returns fp32 and the rel-pos tables are fp32; the fused kernel gets
    one dtype (the mask's dtype must match the query's)."""
    cfg = get_variant("hiera_tiny_224.mae_rel_pos").config.replace(**SMALL)
    model = build_model(cfg.replace(attn_impl="sdpa")).eval()
    calls = _spy_sdpa(monkeypatch)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.randn(2, 3, 64, 64))
    assert torch.isfinite(out).all()
    assert calls
    assert all(len(dtypes) == 1 for *_, dtypes in calls), calls


def _forward(model, x):
    def step():
        with torch.inference_mode():
            model(x)

    return step


def test_kernels_read_from_the_profiler():
    """Ours: 4-D calls, dispatched to the CPU flash kernel (PyTorch's CPU fused kernel takes 4-D q/k/v with or
    without a float mask). timm's Hiera passes 5-D tensors in mask-unit attention: those run the math fallback."""
    from timm.layers import set_fused_attn
    from timm.models.hiera import Hiera

    set_fused_attn(True)  # read when timm builds a module; other tests switch it off (the paper's protocol)
    cfg = get_variant("hiera_tiny_224").config.replace(**SMALL)
    ours = attention_kernels(_forward(build_model(cfg).eval(), torch.randn(1, 3, 64, 64)), "cpu")
    assert backends(ours) == ["cpu_flash"]
    assert sum(k["calls"] for k in ours) == cfg.depth
    assert all(len(k["q"]) == 4 for k in ours)
    # [B*U, heads, N_u, d]: the 16 mask units of a 64x64 input, 4x4 tokens per unit in stage 1
    assert any(k["q"] == [16, 1, 16, 16] for k in ours), ours

    timm = Hiera(
        img_size=(64, 64),
        embed_dim=16,
        num_heads=1,
        stages=(1, 1, 2, 1),
        q_pool=2,
        mask_unit_size=(4, 4),
        num_classes=10,
    ).eval()
    theirs = attention_kernels(_forward(timm, torch.randn(1, 3, 64, 64)), "cpu")
    five_d = [k for k in theirs if len(k["q"]) == 5]
    assert five_d, theirs
    assert {k["backend"] for k in five_d} == {"math"}, theirs

    mvit = get_variant("hiera_tiny_224.sup_mvitv2").config.replace(**SMALL)
    with_bias = attention_kernels(_forward(build_model(mvit).eval(), torch.randn(1, 3, 64, 64)), "cpu")
    assert all(k["mask"] is not None for k in with_bias)
    assert backends(with_bias) == ["cpu_flash"]


def test_math_protocol_dispatches_no_sdpa():
    cfg = get_variant("hiera_tiny_224").config.replace(attn_impl="math", **SMALL)
    found = attention_kernels(_forward(build_model(cfg).eval(), torch.randn(1, 3, 64, 64)), "cpu")
    assert found == []
    assert backends(found) == ["explicit"]
