"""Checkpoint files: official MAE layout, timm MViTv2 layout, class count adoption, and clear errors."""

import pickle

import pytest
import torch
from oracles import assert_close, scramble, timm_mvitv2

import hiera


def test_timm_mvitv2_state_dict_loads(tmp_path):
    ref = timm_mvitv2("mvitv2_tiny")
    scramble(ref)
    torch.save(ref.state_dict(), tmp_path / "m.pth")
    ours = hiera.build_model("mvitv2_tiny_224", checkpoint=tmp_path / "m.pth", attn_impl="math").eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert_close(ours(x), ref(x), what="timm mvitv2 checkpoint")


def test_mae_checkpoint_loads_encoder_and_ignores_decoder(tmp_path):
    src = hiera.build_model("hiera_tiny_224", num_classes=0)
    scramble(src)
    sd = {k.replace("norm.", "encoder_norm.") if k.startswith("norm.") else k: v for k, v in src.state_dict().items()}
    sd.update({"decoder_embed.weight": torch.zeros(512, 768), "mask_token": torch.zeros(1, 1, 512)})
    torch.save({"model_state": sd}, tmp_path / "mae.pth")
    ours = hiera.build_model("hiera_tiny_224", checkpoint=tmp_path / "mae.pth", num_classes=10)
    assert torch.equal(ours.norm.weight, src.norm.weight)
    assert torch.equal(ours.blocks[3].attn.qkv.weight, src.blocks[3].attn.qkv.weight)


def test_checkpoint_class_count_is_adopted(tmp_path):
    src = hiera.build_model("hiera_tiny_224", num_classes=7)
    torch.save({"model_state": src.state_dict()}, tmp_path / "c.pth")
    assert hiera.build_model("hiera_tiny_224", checkpoint=tmp_path / "c.pth").config.num_classes == 7


def test_mismatched_checkpoint_lists_keys(tmp_path):
    torch.save({"model_state": hiera.build_model("hiera_tiny_224").state_dict()}, tmp_path / "t.pth")
    with pytest.raises(ValueError, match=r"missing \(") as err:
        hiera.build_model("hiera_small_224", checkpoint=tmp_path / "t.pth")
    msg = str(err.value)
    assert "shape mismatch (" in msg
    assert "blocks.1.norm1.weight (96,) vs (" not in msg
    torch.save({"model_state": hiera.build_model("hiera_tiny_224.sup_mvitv2").state_dict()}, tmp_path / "m.pth")
    with pytest.raises(ValueError, match=r"unexpected \(\d+\): .*rel_pos"):
        hiera.build_model("hiera_tiny_224", checkpoint=tmp_path / "m.pth")


def test_missing_or_empty_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        hiera.build_model("hiera_tiny_224", checkpoint=tmp_path / "nope.pth")
    torch.save({"epoch": 3}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="holds no state dict"):
        hiera.build_model("hiera_tiny_224", checkpoint=tmp_path / "bad.pth")


def test_input_shape_error_names_the_fix():
    with pytest.raises(ValueError, match="input_size"):
        hiera.build_model("hiera_tiny_224")(torch.randn(1, 3, 256, 256))


def test_directory_or_corrupt_checkpoint_is_one_line(tmp_path):
    with pytest.raises(ValueError, match="is a directory; pass the path of a .pth file") as err:
        hiera.build_model("hiera_tiny_224", checkpoint=tmp_path)
    assert "does not exist" not in str(err.value)
    torch.save({"model_state": hiera.build_model("hiera_tiny_224").state_dict()}, tmp_path / "ok.pth")
    data = (tmp_path / "ok.pth").read_bytes()
    cases = {
        "torn.pth": data[: len(data) // 2],
        "empty.pth": b"",
        "garbage.pth": b"not a checkpoint at all",
        "pickle.pth": pickle.dumps({"model_state": {"w": 1}}, protocol=2)[:-1],
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match="is corrupt or not a PyTorch checkpoint") as err:
            hiera.build_model("hiera_tiny_224", checkpoint=tmp_path / name)
        assert str(tmp_path / name) in str(err.value), name
        assert "\n" not in str(err.value), name
