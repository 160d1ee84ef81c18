"""The MAE model (paper §4): equal to the official release's MAE on the same weights and mask, at every step."""

import json
import subprocess

import pytest
import torch
from oracles import scramble

import hiera
from hiera.model.mae import MaskedAutoencoder, build_mae
from hiera.model.masking import random_mask

# Run by the official package's interpreter: its MAE, our weights (strict), our mask, math attention.
OFFICIAL_MAE = """
import json, sys, torch
import torch.nn.functional as F
del F.scaled_dot_product_attention  # explicit softmax path, as in our math attention
import hiera
name, path = sys.argv[1:3]
data = torch.load(path)
model = getattr(hiera, name)(pretrained=False)
model.load_state_dict(data["state"], strict=True)
with torch.no_grad():
    loss, pred, label, mask = model.eval()(data["x"], mask=data["mask"])
torch.save({"loss": loss, "pred": pred, "label": label}, path + ".out")
print(json.dumps({"loss": loss.item()}))
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "shape", "ratio"),
    [
        ("mae_hiera_tiny_224", (2, 3, 224, 224), 0.6),
        ("mae_hiera_base_16x224", (1, 3, 16, 224, 224), 0.9),
    ],
)
def test_loss_equals_the_official_mae(tmp_path, official_python, name, shape, ratio):
    """Same weights (loaded strictly by the official model: our names are theirs), same mask -> same loss."""
    model = build_mae(name, attn_impl="math").eval()
    scramble(model)
    x = torch.randn(*shape)
    mask = random_mask(model.config, shape[0], ratio, torch.Generator().manual_seed(0))
    torch.save({"state": model.state_dict(), "x": x, "mask": mask}, tmp_path / "in.pth")
    (tmp_path / "official_mae.py").write_text(OFFICIAL_MAE)
    subprocess.run(
        [official_python, str(tmp_path / "official_mae.py"), name, str(tmp_path / "in.pth")],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    ref = torch.load(tmp_path / "in.pth.out")
    with torch.no_grad():
        loss, pred, label, _ = model(x, mask=mask)
    assert torch.equal(label, ref["label"]), "pixel targets (incl. the video time-stride and channel order)"
    assert torch.allclose(pred, ref["pred"], atol=1e-4 * max(1.0, ref["pred"].abs().max().item()))
    assert loss.item() == pytest.approx(ref["loss"].item(), rel=1e-5)


def test_official_mae_checkpoint_loads_and_mismatch_is_listed(tmp_path):
    src = build_mae("mae_hiera_tiny_224")
    scramble(src)
    torch.save({"model_state": src.state_dict()}, tmp_path / "mae.pth")
    model = build_mae("mae_hiera_tiny_224", checkpoint=tmp_path / "mae.pth")
    assert torch.equal(model.decoder_pred.weight, src.decoder_pred.weight)
    with pytest.raises(ValueError, match=r"missing \(48\): decoder_blocks\.8\."):
        build_mae("mae_hiera_tiny_224", checkpoint=tmp_path / "mae.pth", decoder_depth=12)


# Every sparse-capable step, written out: the MAE header, rows a-f ("" is f, Hiera) and step g beyond the paper.
MAE_SLUGS = ["mae_rel_pos", "a_abs_pos", "b_max_pool", "c_no_stride1_pool", "d_kernel_eq_stride", "e_no_attn_residual"]
MAE_SLUGS += ["", "g_abs_win"]


@pytest.mark.parametrize("slug", MAE_SLUGS)
def test_mae_trains_at_every_step(slug):
    model = build_mae("hiera_tiny_224" + (f".{slug}" if slug else ""))
    assert model.config.q_pool == 2
    x = torch.randn(2, 3, 224, 224)
    loss, pred, label, mask = model(x, mask_ratio=0.6, generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss)
    assert mask.sum(1).tolist() == [19, 19]
    assert pred.shape == label.shape == (2 * 30 * 4, 768)  # 30 masked units x 2x2 predicted tokens each
    assert model.blocks[0].attn.qkv.weight.grad is not None


def test_loss_only_on_masked_units():
    """Predictions for kept tokens do not enter the loss: perturbing them changes nothing, while perturbing the
    masked ones does. Which tokens a kept unit covers is worked out here: Hiera-T's 7x7 mask units over the decoder's
    14x14 token grid, 2x2 tokens each, in raster order."""
    model = build_mae("mae_hiera_tiny_224").eval()
    x = torch.randn(1, 3, 224, 224)
    mask = random_mask(model.config, 1, 0.6, torch.Generator().manual_seed(1))
    with torch.no_grad():
        latent = model.forward_encoder(x, mask)
        pred, masked = model.forward_decoder(latent, mask)
    assert masked.sum().item() == 30 * 4
    assert masked.shape == (1, 196)
    assert json.dumps(masked.view(14, 14)[::2, ::2].flatten().tolist()) == json.dumps((~mask[0]).tolist())
    kept_tokens = mask[0].view(7, 7).repeat_interleave(2, 0).repeat_interleave(2, 1).flatten()  # [196]

    def loss_with(rows: torch.Tensor | None) -> float:
        """The MAE loss with 100 added to the decoder's predictions of the tokens `rows` (None: untouched)."""

        def bump(module, inputs, out):
            out = out.clone()
            out[0, rows] += 100.0
            return out

        handle = model.decoder_pred.register_forward_hook(bump) if rows is not None else None
        try:
            with torch.no_grad():
                return model(x, mask=mask)[0].item()
        finally:
            if handle is not None:
                handle.remove()

    base = loss_with(None)
    assert loss_with(kept_tokens) == base  # bit-identical: kept tokens never reach the loss
    assert loss_with(~kept_tokens) > base + 1000  # the control: masked tokens do


def test_last_stage_only_switch_and_sparse_requirement():
    multi = build_mae("mae_hiera_tiny_224")
    last = build_mae("mae_hiera_tiny_224", multi_scale=False)
    assert len(multi.multi_scale_fusion_heads) == 3
    assert len(last.multi_scale_fusion_heads) == 1
    with pytest.raises(ValueError, match="pools inside mask units"):
        MaskedAutoencoder(hiera.get_variant("hiera_tiny_224.sup_mvitv2").config)
    assert abs(sum(p.numel() for p in multi.parameters()) / 1e6 - 55.02) < 0.01  # official MAE-Hiera-T


PROXY = dict(input_size=(64, 64), mask_unit_size=(4, 4), embed_dim=32, num_heads=1, stages=(1, 1, 2, 1))


@pytest.mark.parametrize("slug", MAE_SLUGS)
def test_loss_finite_and_decreasing_at_every_step(slug):
    """A few AdamW steps on one batch and mask (a proxy-size model, as the embedded demo uses) lower the loss."""
    torch.manual_seed(0)
    model = build_mae(
        "hiera_tiny_224" + (f".{slug}" if slug else ""), decoder_dim=64, decoder_depth=2, decoder_heads=4, **PROXY
    )
    x = torch.randn(4, 3, 64, 64)
    mask = random_mask(model.config, 4, 0.5, torch.Generator().manual_seed(0))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(8):
        loss = model(x, mask=mask)[0]
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0], losses
