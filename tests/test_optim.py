"""Finetuning with layer-wise lr decay through timm builds the expected parameter groups."""

import pytest
from timm.optim import create_optimizer_v2

import hiera


def scales(optimizer):
    """parameter -> (lr_scale, weight_decay)."""
    return {id(p): (g.get("lr_scale", 1.0), g["weight_decay"]) for g in optimizer.param_groups for p in g["params"]}


@pytest.mark.parametrize("name", ["hiera_tiny_224", "hiera_tiny_16x224", "hiera_tiny_224.sup_mvitv2"])
def test_layer_decay_groups(name):
    model = hiera.build_model(name)
    decay = 0.65
    opt = create_optimizer_v2(model, "adamw", lr=2e-3, weight_decay=0.05, layer_decay=decay)
    got = scales(opt)
    params = dict(model.named_parameters())
    depth = len(model.blocks)  # layers: stem 0, blocks 1..depth, final norm depth + 1 (= top)
    assert got[id(params["patch_embed.proj.weight"])] == (pytest.approx(decay ** (depth + 1)), 0.05)
    assert got[id(params["blocks.0.attn.qkv.weight"])] == (pytest.approx(decay**depth), 0.05)
    assert got[id(params[f"blocks.{depth - 1}.mlp.fc2.weight"])] == (pytest.approx(decay), 0.05)
    assert got[id(params["head.projection.weight"])] == (1.0, 0.05)
    assert got[id(params["blocks.3.norm1.weight"])][1] == 0.0  # 1-D parameters: no weight decay
    for n, p in params.items():  # position tables are never decayed (official Hiera and MViTv2)
        if "pos_embed" in n or "rel_pos" in n:
            assert got[id(p)][1] == 0.0, n
    assert len(got) == len(params)
