"""Parameter and multiply-accumulate counts (paper Table 2 convention: "FLOPs" are MACs, fvcore-style).

fvcore counts one multiply-add as one "flop", so its totals are GMACs, the unit of the paper's Table 2 and
of timm's tables. fvcore does not see `scaled_dot_product_attention`, so counting always builds the model
with `attn_impl="math"`: attention matmuls are included whatever kernel the model runs with.
Element-wise ops (softmax, GELU, max pooling, adds) are not counted, as in the paper.
"""

from __future__ import annotations

import hashlib
import json
import logging
import typing
from pathlib import Path

import torch

from hiera.env import REPO, at_root, collect_env, find_root
from hiera.files import atomic_write_text
from hiera.model.config import ModelConfig
from hiera.model.network import HierarchicalViT


def count_params(cfg: ModelConfig) -> int:
    """Number of parameters, built on the meta device (instant, no memory)."""

    with torch.device("meta"):
        model = HierarchicalViT(cfg)
    return sum(p.numel() for p in model.parameters())


def flop_count_analysis():
    """fvcore's `FlopCountAnalysis`, imported without its torch.jit deprecation warning (its focal loss calls
    `torch.jit.script` at import time)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        from fvcore.nn import FlopCountAnalysis
    return FlopCountAnalysis


def count_gmacs(cfg: ModelConfig) -> float:
    """GMACs of one forward pass at the config's input size (batch 1), attention matmuls included."""
    FlopCountAnalysis = flop_count_analysis()  # noqa: N806 - the class, under its own name

    model = HierarchicalViT(cfg.replace(attn_impl="math")).eval()
    x = torch.zeros(1, cfg.in_chans, *cfg.input_size)
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    with torch.no_grad():
        analysis = FlopCountAnalysis(model, x)
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        return analysis.total() / 1e9


# ---- cached counts for the registered variants ----------------------------------------------------------------
# fvcore traces a real forward pass (about 15 s for a video L model on 2 CPU cores), so the counts of every
# registered variant are kept in a committed record, keyed by a hash of the fields that change them. A test
# fails when an entry is missing or stale; `hiera-study variants --write-stats` regenerates the file.
STATS_FILE = ("results", "variants", "model_stats.json")  # under the project root
STATS_PATH = REPO.joinpath(*STATS_FILE)  # the code's own copy (a cache of counts)


def stats_path() -> Path:
    """The record of the project the command runs in, else the code's own copy (the counts are only a cache: a
    config missing from it is counted on the spot)."""

    root = find_root()
    return root.joinpath(*STATS_FILE) if root is not None else STATS_PATH


# Fields that change neither parameters nor MACs.
_NOT_COUNTED = ("attn_impl", "drop_path_rate", "head_dropout")
# Fields added to ModelConfig after the record was first written, with their defaults: a field is hashed only when it
# differs from its default, so every config that existed before keeps its hash (and its committed counts).
_ADDED_LATER: dict[str, typing.Any] = {
    "cls_token": False,
    "global_pos_size": (14, 14),
    "layer_scale": None,
    "expand_skip": "proj",
    "final_norm": True,
    "global_pos_resize": "antialias",
    "window_spec": (8, 4, 14, 7),
    "global_blocks": (),
}


def config_hash(cfg: ModelConfig) -> str:
    data = {
        k: v
        for k, v in cfg.to_dict().items()
        if k not in _NOT_COUNTED and not (k in _ADDED_LATER and v == _ADDED_LATER[k])
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def load_stats(path: Path | None = None) -> dict[str, dict]:
    """`{config_hash: {"params": int, "gmacs": float}}` from the committed record (`stats_path`; empty if absent)."""
    path = stats_path() if path is None else path
    if not path.is_file():
        return {}
    return {e["config_hash"]: e for e in json.loads(path.read_text())["variants"]}


def model_stats(cfg: ModelConfig, cache: dict[str, dict] | None = None) -> tuple[float, float]:
    """(params in millions, GMACs) from the record when it has this config, else counted now."""
    entry = (cache if cache is not None else load_stats()).get(config_hash(cfg))
    if entry is not None:
        return entry["params"] / 1e6, entry["gmacs"]
    return count_params(cfg) / 1e6, count_gmacs(cfg)


def write_stats(variants: list, path: Path | None = None, progress: bool = True, missing_only: bool = False) -> int:
    """Count every variant with fvcore and write the record atomically (default: into the project), with its
    conditions; returns how many were counted.

    `missing_only` keeps the entries of the existing record whose config hash a variant still has and counts only
    the others (a full recount takes well over 10 minutes on 2 CPU cores, mostly the video L/H models); the record
    then lists under `kept_env` the conditions of every earlier record entries may come from, oldest first (`env` is
    this count's).
    """
    from tqdm import tqdm

    path = at_root(*STATS_FILE) if path is None else path
    previous = json.loads(path.read_text()) if missing_only and path.is_file() else {}
    old = {e["config_hash"]: e for e in previous.get("variants", [])}

    env = collect_env()  # conditions at the start: the code the counts come from
    rows = []
    counted = 0
    for v in tqdm(variants, desc="fvcore", disable=not progress):
        key = config_hash(v.config)
        if key in old:
            rows.append({"name": v.name, "config_hash": key, "params": old[key]["params"], "gmacs": old[key]["gmacs"]})
            continue
        counted += 1
        rows.append(
            {
                "name": v.name,
                "config_hash": key,
                "params": count_params(v.config),
                "gmacs": round(count_gmacs(v.config), 6),
            }
        )
    record = {
        "what": "parameters and GMACs (fvcore, batch 1, math attention) of every registered variant",
        "command": "hiera-study variants --write-stats" + (" --missing-only" if missing_only else ""),
        "env": env,
        "variants": rows,
    }
    if previous:
        earlier = previous.get("kept_env", [])
        record["kept_env"] = [*(earlier if isinstance(earlier, list) else [earlier]), previous["env"]]
    atomic_write_text(path, json.dumps(record, indent=1) + "\n")
    return counted
