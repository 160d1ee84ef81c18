"""Recipe presets against the paper's Tables 14 (ImageNet-1K) and 11 (Kinetics)."""

import re

import pytest

from hiera.model.config import parse_overrides
from hiera.recipes import Recipe, recipe, scaled_lr


@pytest.mark.parametrize(
    ("size", "lr", "epochs", "drop_path", "layer_decay"),
    [
        ("tiny", 2e-3, 300, 0.1, 0.65),
        ("small", 2e-3, 200, 0.1, 0.65),
        ("base", 2e-3, 100, 0.1, 0.7),
        ("base_plus", 1e-3, 100, 0.1, 0.7),
        ("large", 1e-3, 50, 0.2, 0.9),
        ("huge", 1e-3, 50, 0.3, 0.85),
    ],
)
def test_in1k_finetune_table14(size, lr, epochs, drop_path, layer_decay):
    r = recipe("in1k_finetune", size)  # after 400 pretraining epochs (Table 1 / Table 3)
    assert (r.lr, r.epochs, r.drop_path, r.layer_decay) == (lr, epochs, drop_path, layer_decay)
    assert (r.batch_size, r.warmup_epochs, r.mixup, r.cutmix, r.label_smoothing) == (1024, 5, 0.8, 1.0, 0.1)
    assert r.rand_augment == "rand-m9-mstd0.5-inc1"
    assert r.betas == (0.9, 0.999)


def test_schedule_dependent_columns():
    assert (recipe("in1k_finetune", "large", 1600).drop_path, recipe("in1k_finetune", "large", 1600).layer_decay) == (
        0.1,
        0.85,
    )
    mae = recipe("in1k_mae", "huge", 1600)
    assert (mae.lr, mae.batch_size, mae.betas, mae.mask_ratio, mae.drop_path, mae.crop_scale) == (
        8e-4,
        4096,
        (0.9, 0.95),
        0.6,
        0.3,
        (0.2, 1.0),
    )
    assert recipe("in1k_mae", "tiny").drop_path == 0.0
    k = recipe("k400_mae", "huge", 3200)
    assert (k.lr, k.drop_path, k.decoder_heads, k.mask_ratio, k.repeated_sampling, k.warmup_epochs) == (
        3.2e-4,
        0.4,
        8,
        0.9,
        4,
        120,
    )
    ft = recipe("k400_finetune", "large", 3200)
    assert (ft.layer_decay, ft.dropout, ft.grad_clip, ft.epochs, ft.batch_size) == (0.875, 0.5, 5.0, 100, 256)


def test_blank_paper_entries_must_be_given():
    with pytest.raises(ValueError, match=r"no layer_decay for k400_finetune at size B .*layer_decay=\.\.\."):
        recipe("k400_finetune", "base")
    assert recipe("k400_finetune", "base", layer_decay=0.85).layer_decay == 0.85
    with pytest.raises(ValueError, match="no lr, drop_path for k400_mae at size H"):
        recipe("k400_mae", "huge", 800)


def test_bad_recipes_are_one_line_errors():
    for call, needle in [
        (lambda: recipe("in1k_pretrain", "base"), "choose one of in1k_mae"),
        (lambda: recipe("in1k_mae", "giant"), "unknown size"),
        (lambda: recipe("in1k_mae", "base", 800), "pretrain_epochs=800 is not one of the paper's 400, 1600"),
        (lambda: recipe("in1k_mae", "base", mask_ratio=1.2), "must be in (0, 1)"),
        (lambda: recipe("in1k_mae", "base", lr_base=1e-3), "unknown Recipe field"),
        (lambda: parse_overrides(["warmup=3"], Recipe), "unknown Recipe field"),
    ]:
        with pytest.raises(ValueError, match=re.escape(needle)) as err:
            call()
        assert "\n" not in str(err.value)


def test_lr_scales_linearly_with_global_batch():
    r = recipe("in1k_mae", "large")
    assert scaled_lr(r, 512) == pytest.approx(1e-4)
    assert parse_overrides(["lr=2e-3", "betas=0.9,0.95"], Recipe) == {"lr": 2e-3, "betas": (0.9, 0.95)}
    assert parse_overrides(["layer_decay=0.8", "grad_clip=None"], Recipe) == {"layer_decay": 0.8, "grad_clip": None}
