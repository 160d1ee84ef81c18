"""Beyond the paper, ladder step h: SAM 2's HieraDet (fixed windows, global blocks, plain-bicubic abs-win embedding).

References are independent of `hiera/`: timm's `hieradet_small` and `sam2_hiera_*` (scrambled O(1) weights,
`pretrained=False`; key names mapped by `timm_hieradet_to_ours` below), and the `sam2` package's own trunk, built from
SAM 2.1's config file and run in its own interpreter (`sam2_python`), loaded here from a SAM 2-format checkpoint file.
"""

import json
import re
import subprocess

import pytest
import timm
import torch
from oracles import assert_close, check_timm_file_loads, scramble

import hiera
from hiera.model.config import ModelConfig
from hiera.model.mae import build_mae
from hiera.model.masking import random_mask
from hiera.model.plan import plan_blocks


def timm_hieradet_to_ours(sd: dict) -> dict:
    """timm HieraDet -> our names: the window table, and the head's norm and classifier."""
    out = {}
    for k, v in sd.items():
        k = {"pos_embed_window": "pos_embed_win"}.get(k, k)
        k = re.sub(r"^head\.norm\.", "norm.", k)
        k = re.sub(r"^head\.fc\.", "head.projection.", k)
        out[k] = v
    return out


def stages(model, x):
    with torch.no_grad():
        return model.forward_features(x, return_intermediates=True)[1]


@pytest.mark.parametrize("px", [256, pytest.param(320, marks=pytest.mark.slow)])
def test_hieradet_small_matches_timm(px):
    """timm's `hieradet_small` = ours, logits and every stage; at 320² stages 3-4 (20, 10 tokens a side) pad to whole
    windows of 16 and 8 tokens, and the padded tokens are attended to as in timm."""
    ref = timm.create_model("hieradet_small", pretrained=False).eval()
    scramble(ref)
    ours = hiera.build_model("hieradet_small", attn_impl="math", input_size=(px, px)).eval()
    ours.load_state_dict(timm_hieradet_to_ours(ref.state_dict()), strict=True)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters())
    x = torch.randn(1, 3, px, px)
    with torch.no_grad():
        assert_close(ours(x), ref(x), what="logits")
        theirs = ref.forward_intermediates(x, intermediates_only=True)  # [B, C, H, W] per stage
    for i, (a, b) in enumerate(zip(stages(ours, x), theirs)):
        assert_close(a, b.permute(0, 2, 3, 1), what=f"stage {i + 1}")


@pytest.mark.slow
def test_timm_hieradet_state_dict_loads_from_file(tmp_path):
    check_timm_file_loads(tmp_path, "hieradet_small", "hieradet_small", 256)


def sam2_windows(stages_, window_spec, global_blocks):
    """SAM 2's rule, written out: the stage index moves at the first block of a stage, after that block has read its
    window, so a stage's first block keeps the previous stage's window; 0 = global."""
    ends = [sum(stages_[: i + 1]) - 1 for i in range(len(stages_))]
    out, cur = [], 0
    for i in range(sum(stages_)):
        out.append(0 if i in global_blocks else window_spec[cur])
        if i - 1 in ends:
            cur += 1
    return out


@pytest.mark.parametrize("size", ["tiny", "small", "base_plus", "large"])
def test_sam2_windows_per_block(size):
    """Every block's window equals timm's `sam2_hiera_<size>` (built on the meta device) and the rule above."""
    ref = timm.create_model(f"sam2_hiera_{size}", pretrained=False, device="meta")
    plans = plan_blocks(hiera.get_variant(f"sam2_hiera_{size}").config)
    cfg = hiera.get_variant(f"sam2_hiera_{size}").config
    ours = [p.fixed_window[0] if p.fixed_window else 0 for p in plans]
    assert ours == [b.window_size[0] for b in ref.blocks]
    assert ours == sam2_windows(cfg.stages, cfg.window_spec, cfg.global_blocks)
    assert [b.attn.q_pool is not None for b in ref.blocks] == [p.q_pool is not None for p in plans]


@pytest.mark.slow
def test_step_h_is_step_g_at_224_and_not_at_448():
    """At 224² HieraDet's windows are Hiera's mask units (stages 1-2) and the whole grid (stages 3-4): the same
    function as step g. At 448² stage 3 (28 tokens a side) attends in windows of 14 where Hiera attends globally."""
    for px, same in ((224, True), (448, False)):
        g = hiera.build_model("hiera_tiny_224.g_abs_win", input_size=(px, px), attn_impl="math").eval()
        h = hiera.build_model("hiera_tiny_224.h_hieradet", input_size=(px, px), attn_impl="math").eval()
        scramble(g)
        h.load_state_dict(g.state_dict(), strict=True)
        x = torch.randn(1, 3, px, px)
        with torch.no_grad():
            a, b = g(x), h(x)
        assert torch.allclose(a, b, atol=1e-5) == same, f"{px}px"


def test_fixed_windows_refuse_sparse_masks():
    model = hiera.build_model("hieradet_small")
    mask = random_mask(model.config, 1, 0.6, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"fixed windows that span several mask units .* Fig\. 6"):
        model(torch.randn(1, 3, 256, 256), mask=mask)
    with pytest.raises(ValueError, match=r"kv_mode='window' attends in fixed windows"):
        build_mae("hiera_tiny_224.h_hieradet")
    assert not hiera.get_variant("hiera_tiny_224.h_hieradet").summary()["masked"]


H = dict(input_size=(64, 64), embed_dim=16, stages=(1, 1, 2, 1), kv_mode="window", pos_embed="abs_win")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (dict(window_spec=(8, 4, 2)), r"window_spec=\(8, 4, 2\) needs one window side >= 0 per stage \(4"),
        (dict(window_spec=(8, -1, 2, 1)), r"needs one window side >= 0"),
        (dict(global_blocks=(5,)), r"global_blocks=\(5,\) must be block indices in 0\.\.4"),
        (dict(window_spec=(4, 4, 2, 1)), r"tiles a window table of mask_unit_size=\(8, 8\); set it to .*\(4, 4\)"),
        (dict(window_spec=(8, 3, 2, 1)), r"the window 3 that stage 3's first block pools in must be divisible"),
        (dict(pos_embed="rel"), r"kv_mode='window' \(SAM 2's HieraDet\) is defined for images"),
        (dict(attn_residual=True), r"needs attn_residual=False"),
        (dict(global_pos_resize="nearest"), r"global_pos_resize='nearest' is not allowed; choose one of"),
    ],
)
def test_bad_window_configs_are_one_line(changes, message):
    with pytest.raises(ValueError, match=message) as e:
        ModelConfig(**{**H, **changes})
    assert "\n" not in str(e.value)


def test_video_windows_are_one_line():
    with pytest.raises(ValueError, match=r"defined for images") as e:
        hiera.get_variant("hiera_tiny_16x224").config.replace(kv_mode="window", mask_unit_size=(1, 8, 8))
    assert "\n" not in str(e.value)


# Run by the sam2 package's interpreter: SAM 2.1's trunk from SAM 2.1's own config file (hydra/OmegaConf), O(1)
# weights, in float32 as released; the trunk is saved inside a SAM 2-format checkpoint ({"model": ...}) with two keys
# of other modules, as the released files hold.
SAM2_TRUNK = """
import json, sys
from pathlib import Path
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
import sam2
size, out = sys.argv[1:3]
cfg = OmegaConf.load(Path(sam2.__file__).parent / "configs" / "sam2.1" / f"sam2.1_hiera_{size}.yaml")
trunk = instantiate(cfg.model.image_encoder.trunk).eval()
if out == "count":
    print(json.dumps({"params": sum(p.numel() for p in trunk.parameters())}))
    sys.exit(0)
g = torch.Generator().manual_seed(0)
with torch.no_grad():
    for name, p in trunk.named_parameters():
        noise = torch.randn(p.shape, generator=g)
        p.copy_(1 + 0.1 * noise if ("norm" in name and name.endswith("weight")) else 0.1 * noise)
x = torch.randn(1, 3, 1024, 1024, generator=g)
with torch.no_grad():
    feats = trunk(x)
model = {"image_encoder.trunk." + k: v for k, v in trunk.state_dict().items()}
model["image_encoder.neck.convs.0.conv.weight"] = torch.zeros(4, 4)
model["sam_mask_decoder.iou_token.weight"] = torch.zeros(1, 4)
torch.save({"model": model}, out + ".pt")
torch.save({"x": x, "feats": feats}, out + ".io")
print(json.dumps({"params": sum(p.numel() for p in trunk.parameters()), "dims": [f.shape[1] for f in feats]}))
"""


def sam2_oracle(tmp_path, sam2_python, config, out):
    (tmp_path / "trunk.py").write_text(SAM2_TRUNK)
    done = subprocess.run(
        [sam2_python, str(tmp_path / "trunk.py"), config, out], check=True, capture_output=True, text=True, cwd=tmp_path
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize(("size", "config"), [("tiny", "t"), ("small", "s"), ("base_plus", "b+"), ("large", "l")])
def test_sam2_trunk_parameters_equal_the_sam2_package(tmp_path, sam2_python, size, config):
    """Every SAM 2.1 trunk, as its config file builds it, has the parameters of `sam2_hiera_<size>`."""
    info = sam2_oracle(tmp_path, sam2_python, config, "count")
    assert sum(p.numel() for p in hiera.build_model(f"sam2_hiera_{size}").parameters()) == info["params"]


@pytest.mark.slow
@pytest.mark.parametrize(("size", "config"), [("tiny", "t"), ("small", "s")])
def test_sam2_trunk_matches_the_sam2_package(tmp_path, sam2_python, size, config):
    """SAM 2.1's trunk at 1024² (stage 3 pads 64 tokens to windows of 14: 70) equals `sam2_hiera_<size>` loaded from
    the checkpoint file, stage by stage."""
    info = sam2_oracle(tmp_path, sam2_python, config, str(tmp_path / "sam2"))
    with pytest.warns(UserWarning, match=r"ignored 2 keys of the other modules: image_encoder\.neck \(1\)"):
        ours = hiera.build_model(f"sam2_hiera_{size}", checkpoint=tmp_path / "sam2.pt", attn_impl="math")
    assert sum(p.numel() for p in ours.parameters()) == info["params"]
    ref = torch.load(tmp_path / "sam2.io")
    ours = ours.eval()
    # SAM 2 returns [B, C, H, W] per stage, the finest first
    for i, (a, b) in enumerate(zip(stages(ours, ref["x"]), ref["feats"])):
        assert_close(a, b.permute(0, 2, 3, 1), what=f"stage {i + 1}")
