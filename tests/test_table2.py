"""Parameter and GMAC counts against the paper's Table 2 and timm (independent references)."""

import hashlib
import json

import pytest
import timm
import torch

import hiera
from hiera.model.flops import STATS_PATH, config_hash, count_gmacs, count_params, load_stats, write_stats

# Paper Table 2 as printed: params (M), GMACs at 224x224.
PAPER_TABLE2 = {
    "tiny": (27.91, 4.90),
    "small": (35.01, 6.41),
    "base": (51.52, 9.38),
    "base_plus": (69.90, 12.64),
    "large": (213.74, 40.27),
    "huge": (672.78, 124.73),
}
PAPER_VIDEO_PARAMS = {"base": 51.09, "base_plus": 69.39, "large": 213.09}


@pytest.mark.parametrize(
    "size", [pytest.param(s, marks=pytest.mark.slow) if s in ("large", "huge") else s for s in PAPER_TABLE2]
)
def test_hiera_image_params_and_gmacs_match_paper(size):
    params, gmacs = PAPER_TABLE2[size]
    cfg = hiera.get_variant(f"hiera_{size}_224").config
    assert abs(count_params(cfg) / 1e6 - params) < 0.01
    assert abs(count_gmacs(cfg) - gmacs) / gmacs < 0.005


@pytest.mark.parametrize("size", list(PAPER_VIDEO_PARAMS))
def test_hiera_video_params_match_paper(size):
    cfg = hiera.get_variant(f"hiera_{size}_16x224").config
    assert abs(count_params(cfg) / 1e6 - PAPER_VIDEO_PARAMS[size]) < 0.01


@pytest.mark.parametrize("size", ["tiny", "small", "base", "large"])
def test_mvitv2_params_match_timm(size):
    ref = timm.create_model(f"mvitv2_{size}", device="meta")
    assert count_params(hiera.get_variant(f"mvitv2_{size}_224").config) == sum(p.numel() for p in ref.parameters())


@pytest.mark.slow
def test_mvitv2_large_gmacs_match_timm():
    """Same fvcore convention as timm's tables: 43.87 GMACs for the released MViTv2-L (expand in MLP)."""
    assert abs(count_gmacs(hiera.get_variant("mvitv2_large_224").config) - 43.87) < 0.01


def test_gmacs_count_attention_even_with_sdpa():
    """fvcore cannot see inside a fused SDPA call: counted as is, the SDPA model loses its attention matmuls. The
    project's count of the (default) SDPA config equals fvcore's count of the explicit-math model, done here."""
    from fvcore.nn import FlopCountAnalysis

    from hiera.model.network import HierarchicalViT

    def raw(attn_impl: str) -> float:
        model = HierarchicalViT(cfg.replace(attn_impl=attn_impl)).eval()
        analysis = FlopCountAnalysis(model, torch.zeros(1, 3, 224, 224))
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        with torch.no_grad():
            return analysis.total() / 1e9

    cfg = hiera.get_variant("hiera_tiny_224").config
    assert cfg.attn_impl == "sdpa"
    math_count, sdpa_count = raw("math"), raw("sdpa")
    assert sdpa_count < math_count - 0.1  # what a naive count would report: attention missing
    assert count_gmacs(cfg) == pytest.approx(math_count, rel=1e-9)


def test_stats_record_covers_every_variant_and_is_fresh():
    """The committed record behind `hiera-study variants` must match the current configs and counts."""
    record = json.loads(STATS_PATH.read_text())
    assert {"torch", "fvcore", "git_sha", "date"} <= set(record["env"])
    cache = load_stats()
    variants = hiera.list_variants()
    stale = [v.name for v in variants if config_hash(v.config) not in cache]
    assert not stale, f"run `hiera-study variants --write-stats --missing-only`; stale: {stale[:5]}"
    for name in ("hiera_tiny_224", "hiera_tiny_224.sup_mvitv2", "hiera_tiny_224.mae_rel_pos"):
        cfg = hiera.get_variant(name).config
        entry = cache[config_hash(cfg)]
        assert entry["params"] == count_params(cfg)
        assert abs(entry["gmacs"] - count_gmacs(cfg)) < 1e-4


def test_write_stats_missing_only_keeps_entries_and_counts_new_configs(tmp_path):
    """`--missing-only` reuses the record's entries (a planted count survives) and counts only configs it lacks."""
    from hiera.model.config import ModelConfig
    from hiera.model.registry import Variant

    small = ModelConfig(input_size=(64, 64), embed_dim=16, stages=(1, 1, 2, 1), num_classes=10)
    old, new = (Variant(n, c, "f", "T", "image", n) for n, c in (("old", small), ("new", small.replace(embed_dim=32))))
    path = tmp_path / "model_stats.json"
    write_stats([old], path, progress=False)
    record = json.loads(path.read_text())
    record["variants"][0]["params"] = -1  # planted: a recount would overwrite it
    path.write_text(json.dumps(record))
    assert write_stats([old, new], path, progress=False, missing_only=True) == 1
    written = json.loads(path.read_text())
    assert [e["params"] for e in written["variants"]] == [-1, count_params(new.config)]
    assert written["kept_env"] == [record["env"]]
    assert written["command"].endswith("--missing-only")
    again = Variant("again", small.replace(embed_dim=8), "f", "T", "image", "again")
    assert write_stats([old, new, again], path, progress=False, missing_only=True) == 1
    assert json.loads(path.read_text())["kept_env"] == [record["env"], written["env"]]  # every earlier count's


def test_fields_added_later_keep_old_hashes_at_their_default():
    cfg = hiera.get_variant("hiera_tiny_16x224.sup_mvitv2").config
    data = {k: v for k, v in cfg.to_dict().items() if k not in ("attn_impl", "drop_path_rate", "head_dropout")}
    added = ("cls_token", "global_pos_size", "layer_scale", "expand_skip")  # added since the file was written
    added += ("final_norm", "global_pos_resize", "window_spec", "global_blocks")  # SAM 2's HieraDet (step h)
    for name in added:
        del data[name]  # the hash of a config from before the fields existed
    assert config_hash(cfg) == hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
    assert config_hash(cfg.replace(cls_token=True)) != config_hash(cfg)
    assert config_hash(cfg.replace(final_norm=False)) != config_hash(cfg)


def test_meta_build_has_no_real_memory():
    with torch.device("meta"):
        model = hiera.HierarchicalViT(hiera.get_variant("hiera_huge_16x224").config)
    assert next(model.parameters()).is_meta
