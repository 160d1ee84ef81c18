"""Independent references for the parity tests: timm's Hiera and MViTv2, and the key maps between them.

The maps are written here from timm's module names (timm 1.0 `models/hiera.py`, `models/mvitv2.py`), not
imported from `hiera/`, so a bug in the project's checkpoint code cannot make a parity test pass.
`check_timm_file_loads` is the one helper that calls the project: its checkpoint loader is what that check tests.
"""

from __future__ import annotations

import dataclasses
import re

import timm
import torch
from timm.models.hiera import Hiera
from timm.models.mvitv2 import MultiScaleVit, model_cfgs

import hiera


def scramble(model: torch.nn.Module, seed: int = 0) -> None:
    """Every parameter to O(1) values (LayerNorm weights 1 +- 0.1, everything else N(0, 0.1))."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            p.copy_(1 + 0.1 * noise if ("norm" in name and name.endswith("weight")) else 0.1 * noise)


def timm_hiera_to_official(sd: dict) -> dict:
    """timm Hiera -> official Hiera names (the official repository's names, reversed)."""
    out = {}
    for k, v in sd.items():
        k = re.sub(r"^head\.norm\.", "norm.", k)
        out[re.sub(r"^head\.fc\.", "head.projection.", k)] = v
    return out


def timm_mvitv2_to_ours(sd: dict, depths: tuple[int, ...]) -> dict:
    """timm MViTv2 -> flat block names (timm's `stages.<i>.blocks.<j>` flattened)."""
    out = {}
    for k, v in sd.items():
        m = re.match(r"stages\.(\d+)\.blocks\.(\d+)\.(.*)", k)
        if m:
            rest = m[3].replace("shortcut_proj_attn", "proj").replace("shortcut_proj_mlp", "mlp_proj")
            k = f"blocks.{sum(depths[: int(m[1])]) + int(m[2])}.{rest}"
        out[k.replace("head.fc.", "head.projection.")] = v
    return out


def timm_mvitv2(name: str, img_size: int = 224, **cfg_changes) -> MultiScaleVit:
    cfg = dataclasses.replace(model_cfgs[name], **cfg_changes)
    return MultiScaleVit(cfg, img_size=img_size).eval()


def timm_hiera_video(**kwargs) -> Hiera:
    """The official `hiera_base_16x224` settings through timm's constructor."""
    video = dict(
        img_size=(16, 224, 224),
        q_stride=(1, 2, 2),
        mask_unit_size=(1, 8, 8),
        patch_kernel=(3, 7, 7),
        patch_stride=(2, 4, 4),
        patch_padding=(1, 3, 3),
        sep_pos_embed=True,
        num_classes=400,
    )
    video.update(kwargs)
    return Hiera(**video).eval()


def assert_close(ours: torch.Tensor, ref: torch.Tensor, rel: float = 1e-4, what: str = "") -> None:
    """Max abs difference within `rel` x the reference's magnitude (>= 1)."""
    assert ours.shape == ref.shape, f"{what}: shape {tuple(ours.shape)} vs {tuple(ref.shape)}"
    scale = max(1.0, ref.abs().max().item())
    diff = (ours - ref).abs().max().item()
    assert diff <= rel * scale, f"{what}: max diff {diff:.3g} > {rel} x {scale:.3g}"


def check_timm_file_loads(tmp_path, timm_name: str, ours: str, px: int) -> None:
    """A scrambled timm model's state dict, saved to a file, loads into our `ours` through `build_model(checkpoint=)`
    (the project's own key map) and gives timm's logits."""
    ref = timm.create_model(timm_name, pretrained=False).eval()
    scramble(ref, seed=3)
    torch.save(ref.state_dict(), tmp_path / f"{timm_name}.pth")
    model = hiera.build_model(ours, checkpoint=tmp_path / f"{timm_name}.pth", attn_impl="math").eval()
    x = torch.randn(1, 3, px, px)
    with torch.no_grad():
        assert_close(model(x), ref(x), what=f"logits via the timm checkpoint of {timm_name}")
