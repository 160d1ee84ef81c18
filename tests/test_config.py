"""ModelConfig validation, overrides, the ladder's one-field steps, and that no switch is dead."""

import dataclasses
import re
from unittest import mock

import pytest
import torch
from oracles import scramble

import hiera
from hiera.model.config import CHOICES, TABLE1_SWITCHES, ModelConfig, parse_overrides
from hiera.model.ladder import ABSWIN_256, EXTENSIONS, LADDER, SIZES, extended_ladder, ladder


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        (dict(pos_embed="learned"), "'rel', 'abs'"),
        (dict(pool_op="avg"), "'conv', 'max'"),
        (dict(kv_mode="global"), "'pool', 'mask_unit', 'window'"),
        (dict(attn_impl="flash"), "'math', 'sdpa'"),
        (dict(q_pool=4), "0..3"),
        (dict(input_size=(224,)), "(T, H, W)"),
        (dict(mask_unit_size=(7, 7)), "mask_unit_size"),
        (dict(num_heads=5), "divisible"),
        (dict(input_size=(226, 226)), "multiple of 4"),
        (dict(pool_kernel="overlap", separate_and_pad=False), "kv_mode='mask_unit' needs"),
        (dict(mask_unit_attn=(True,)), "one flag per stage"),
        (dict(cls_token=True), "class token belongs to no mask unit"),
        (dict(head_order="cls", kv_mode="pool"), "set cls_token=True"),
    ],
)
def test_bad_configs_raise_one_line_errors(changes, needle):
    with pytest.raises(ValueError, match=re.escape(needle)) as err:
        ModelConfig(**changes)
    assert "\n" not in str(err.value)


def test_overrides_are_typed_and_validated():
    got = parse_overrides(["input_size=256,256", "pos_embed=rel", "drop_path_rate=0.1", "stride1_pool=true"])
    assert got == dict(input_size=(256, 256), pos_embed="rel", drop_path_rate=0.1, stride1_pool=True)
    with pytest.raises(ValueError, match="unknown ModelConfig field.*allowed: input_size"):
        parse_overrides(["embed=64"])
    with pytest.raises(ValueError, match="not a valid int"):
        parse_overrides(["embed_dim=1.5"])
    with pytest.raises(ValueError, match="unknown ModelConfig field"):
        hiera.build_model("hiera_tiny_224", dropout=0.1)


def test_unknown_variant_names_allowed_values():
    with pytest.raises(ValueError, match="hiera_base_224") as err:
        hiera.build_model("hiera_bse_224")
    msg = str(err.value)
    assert "mvitv2_" in msg
    assert "c_no_stride1_pool" in msg
    assert "\n" not in msg


def test_config_json_round_trip():
    cfg = hiera.get_variant("hiera_large_16x224.c_no_stride1_pool").config
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg


def test_ladder_rows_change_exactly_the_named_field():
    assert [s.id for s in LADDER] == ["sup", "mae", "a", "b", "c", "d", "e", "f"]
    for res in ("224", "16x224"):
        for size in SIZES:
            steps = ladder(size, res)
            for (_, before), (step, after) in zip(steps, steps[1:]):
                changed = {
                    f.name for f in dataclasses.fields(ModelConfig) if getattr(before, f.name) != getattr(after, f.name)
                }
                if step.id in "abcdef":
                    assert changed == {TABLE1_SWITCHES["abcdef".index(step.id)]}, (size, res, step.id, changed)
                else:  # the MAE header: separate-and-pad plus the Hiera code base's head and widths
                    assert changed <= {"separate_and_pad", "head_order", "dim_expand"}


def changed_fields(a: ModelConfig, b: ModelConfig) -> set[str]:
    return {x.name for x in dataclasses.fields(ModelConfig) if getattr(a, x.name) != getattr(b, x.name)}


# SAM 2's trunk settings per depth (sam2 1.1.0's configs), written out: (windows per stage, global-attention blocks)
SAM2_WINDOWS = {
    (1, 2, 7, 2): ((8, 4, 14, 7), (5, 7, 9)),
    (1, 2, 11, 2): ((8, 4, 14, 7), (7, 10, 13)),
    (2, 3, 16, 3): ((8, 4, 14, 7), (12, 16, 20)),
    (2, 6, 36, 4): ((8, 4, 16, 8), (23, 33, 43)),
}


def test_extensions_follow_row_f_and_change_only_their_fields():
    """Beyond the paper: step g changes the position embedding of row f and nothing else (its 14x14 global table is
    the field's default), for images only; step h flips kv_mode to SAM 2's windows, with the windows and global
    blocks of SAM 2's trunk of the same depths; timm's abswin models add their release's settings on top of g."""
    assert [s.id for s in EXTENSIONS] == ["g", "h"]
    for size in SIZES:
        steps = extended_ladder(size, "224")
        (_, f), (step, g), (step_h, h) = steps[-3:]
        assert [s.id for s, _ in steps] == [s.id for s in LADDER] + ["g", "h"]
        assert changed_fields(f, g) == {"pos_embed"}, size
        windows, global_blocks = SAM2_WINDOWS[g.stages]
        assert changed_fields(g, h) == {"kv_mode"} | (
            {"global_blocks"} | ({"window_spec"} if windows != g.window_spec else set())
        )
        assert (h.kv_mode, h.window_spec, h.global_blocks) == ("window", windows, global_blocks)
        assert "beyond the paper" in step.title
        assert "beyond the paper" in step_h.title
        assert hiera.get_variant(f"hiera_{size}_224.g_abs_win").config == g
        assert hiera.get_variant(f"hiera_{size}_224.h_hieradet").config == h
    assert [s.id for s, _ in extended_ladder("base", "16x224")] == [s.id for s in LADDER]
    for size, changes in ABSWIN_256.items():
        cfg = hiera.get_variant(f"hiera_{size}_abswin_256").config
        g = hiera.get_variant(f"hiera_{size}_224.g_abs_win").config
        assert cfg == g.replace(input_size=(256, 256), **changes)


def test_hiera_end_is_the_official_config():
    assert hiera.get_variant("hiera_base_224").config == ModelConfig()
    assert hiera.get_variant("mae_hiera_base_224").config == ModelConfig(q_pool=2, num_classes=0)
    # Table 1 x 6 sizes x 2 resolutions, 6 x 2 MAE encoders, 4 MViTv2 paper models, the video MViTv2-S, 4 proxy
    # scales' ladders; beyond the paper: steps g and h (6 image sizes each), timm's 2 abswin models, SAM 2's 4 trunks
    # and timm's hieradet_small
    assert len(hiera.list_variants()) == 6 * 8 * 2 + 6 * 2 + 4 + 1 + 4 * 8 + 6 * 2 + 2 + 4 + 1
    assert len(hiera.list_variants("proxy_tiny_48*")) == 8
    assert [v.step for v in hiera.list_variants("hiera_large_224*")] == [s.id for s in LADDER] + ["g", "h"]


def test_every_variant_builds_and_ladder_runs_at_size_t():
    from hiera.model.plan import plan_blocks

    for v in hiera.list_variants():
        plan_blocks(v.config)
    x = torch.randn(1, 3, 224, 224)
    clip = torch.randn(1, 3, 4, 64, 64)
    for v in hiera.list_variants("hiera_tiny_*"):
        if v.modality == "image":
            out = hiera.build_model(v.name).eval()(x)
        else:  # a short small clip keeps this fast; geometry rules are the same
            out = hiera.build_model(v.name, input_size=(4, 64, 64)).eval()(clip)
        assert out.shape == (1, v.config.num_classes), v.name
        assert torch.isfinite(out).all(), v.name


# ---- no dead switch ------------------------------------------------------------------------------------------
SMALL = dict(input_size=(64, 64), embed_dim=16, num_heads=1, stages=(1, 1, 2, 1), num_classes=10)
MVIT = dict(
    pos_embed="rel",
    pool_op="conv",
    stride1_pool=True,
    pool_kernel="overlap",
    attn_residual=True,
    kv_mode="pool",
    separate_and_pad=False,
    head_order="norm_mean",
)
# field -> (base config changes, new value): a base where the field matters.
FLIPS = {
    "input_size": ({}, (96, 96)),
    "in_chans": ({}, 1),
    "num_classes": ({}, 5),
    "embed_dim": ({}, 32),
    "num_heads": ({}, 2),
    "stages": ({}, (1, 2, 2, 1)),
    "q_pool": ({}, 2),
    "q_stride": ({}, (1, 1)),
    "mask_unit_size": ({}, (16, 16)),
    "dim_mul": ({}, 1.0),
    "head_mul": ({}, 1.0),
    "patch_kernel": ({}, (9, 9)),
    "patch_stride": ({}, (2, 2)),
    "patch_padding": ({}, (2, 2)),
    "mlp_ratio": ({}, 2.0),
    "drop_path_rate": ({}, 0.5),
    "head_dropout": ({}, 0.5),
    "pos_embed": ({}, "rel"),
    "pool_op": ({}, "conv"),
    "stride1_pool": (MVIT, False),
    "pool_kernel": (dict(MVIT, separate_and_pad=True), "stride"),
    "attn_residual": ({}, True),
    "kv_mode": ({}, "pool"),
    "kv_stride": (MVIT, (2, 2)),
    "mask_unit_attn": ({}, (False,) * 4),
    "separate_and_pad": (MVIT, True),
    "dim_expand": ({}, "mlp"),
    "head_order": ({}, "norm_mean"),
    "cls_token": (dict(kv_mode="pool"), True),
    "attn_impl": ({}, "math"),
    # beyond the paper
    "global_pos_size": (dict(pos_embed="abs_win"), (7, 7)),
    "layer_scale": ({}, 0.5),
    "expand_skip": ({}, "max_avg"),
    "global_pos_resize": (dict(pos_embed="abs_win"), "plain"),
    "final_norm": ({}, False),
    # SAM 2's HieraDet (kv_mode="window"): at 64² stage 1 (16 tokens a side) has two windows of 8 a side
    "window_spec": (dict(kv_mode="window"), (8, 2, 2, 1)),
    "global_blocks": (dict(kv_mode="window"), (0,)),
}


def test_flips_cover_every_field():
    assert set(FLIPS) == {f.name for f in dataclasses.fields(ModelConfig)}
    assert set(CHOICES) <= set(FLIPS)


def outputs(model, cfg, train):
    torch.manual_seed(1)
    model.train(train)
    x = torch.randn(2, cfg.in_chans, *cfg.input_size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        return model(x)


@pytest.mark.parametrize("name", sorted(FLIPS))
def test_no_dead_switch(name):
    base_changes, value = FLIPS[name]
    base_cfg = ModelConfig(**{**SMALL, **base_changes})
    new_cfg = base_cfg.replace(**{name: value})
    assert new_cfg != base_cfg
    base, new = hiera.HierarchicalViT(base_cfg), hiera.HierarchicalViT(new_cfg)
    scramble(base)
    shapes = lambda m: {k: v.shape for k, v in m.state_dict().items()}  # noqa: E731
    if shapes(base) != shapes(new):
        return  # the switch changes the parameters themselves
    new.load_state_dict(base.state_dict())
    if name == "attn_impl":  # same numbers by design; the switch must change the kernel that runs
        with mock.patch(
            "torch.nn.functional.scaled_dot_product_attention", wraps=torch.nn.functional.scaled_dot_product_attention
        ) as sdpa:
            outputs(base, base_cfg, False)
            fused_calls = sdpa.call_count
            outputs(new, new_cfg, False)
        assert fused_calls == len(base.blocks)
        assert sdpa.call_count == fused_calls
        return
    train = name in ("drop_path_rate", "head_dropout")
    a, b = outputs(base, base_cfg, train), outputs(new, new_cfg, train)
    assert a.shape != b.shape or not torch.allclose(a, b, atol=1e-6), f"{name} changed nothing"
