"""Load weights from local files in the formats users have: the official releases and timm.

Nothing is ever downloaded. Recognised layouts (detected from the keys):
- official Hiera (`facebookresearch/hiera`, `dl.fbaipublicfiles.com/hiera/*.pth`): a dict with `model_state`
  holding our key names (`norm`, `head.projection`, `blocks.N.*`); MAE checkpoints of the same release hold
  `encoder_norm` and decoder keys: the encoder is loaded, the decoder ignored, the head left as initialised;
- official MViTv2 (`facebookresearch/mvit`): `model_state` with flat `blocks.N.*`; the block-level `proj` is
  our `mlp_proj` when channels grow in the MLP;
- timm `hiera_*` (`head.norm`, `head.fc`) and timm `mvitv2_*` (`stages.S.blocks.J.*`, `shortcut_proj_*`).
Any key left over or missing, or any shape that differs, raises one error that lists them. Files are read with
`weights_only=True` (a checkpoint cannot run code); a directory, a torn or corrupt file is a one-line ValueError.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from hiera.model.network import HierarchicalViT

# Official MAE checkpoints: decoder-side keys that a classifier ignores.
MAE_ONLY = re.compile(r"^(decoder_|mask_token|multi_scale_fusion_heads|pred_)")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint file, unwrapped from `model_state` / `model` / `state_dict` containers."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(
            f"checkpoint {path} is a directory; pass the path of a .pth file (e.g. "
            f"{path / 'checkpoints' / 'model.pth'})"
        )
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist; pass the path of a local .pth file")
    try:
        obj: Any = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as e:
        # torch reports a torn file as a zip-reader RuntimeError, an empty one as EOFError, garbage (or a
        # pickle holding arbitrary objects, which a weights-only load refuses to run) as UnpicklingError.
        raise ValueError(
            f"checkpoint {path} is corrupt or not a PyTorch checkpoint of tensors ({type(e).__name__}); "
            "pass another file, or re-download or re-create this one"
        ) from None
    for key in ("model_state", "model", "state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"checkpoint {path} holds no state dict (expected tensors, or 'model_state' with tensors)")
    return obj


def to_our_keys(sd: dict[str, torch.Tensor], model: HierarchicalViT) -> dict[str, torch.Tensor]:
    """Rename any recognised layout to this project's key names (which are the official Hiera names)."""
    ours = model.state_dict()
    depths = list(model.config.stages)
    out = {}
    for k, v in sd.items():
        if MAE_ONLY.match(k):
            continue
        k = re.sub(r"^encoder_norm\.", "norm.", k)  # official MAE encoder
        k = re.sub(r"^head\.norm\.", "norm.", k)  # timm Hiera
        k = re.sub(r"^head\.fc\.", "head.projection.", k)  # timm Hiera / MViTv2
        m = re.match(r"stages\.(\d+)\.blocks\.(\d+)\.(.*)", k)  # timm MViTv2
        if m:
            k = f"blocks.{sum(depths[: int(m[1])]) + int(m[2])}.{m[3]}"
        k = k.replace("shortcut_proj_attn.", "proj.").replace("shortcut_proj_mlp.", "mlp_proj.")
        m = re.match(r"(blocks\.\d+\.)proj\.(.*)", k)  # official MViTv2: block `proj` of an MLP-expanding block
        if m and k not in ours and f"{m[1]}mlp_proj.{m[2]}" in ours:
            k = f"{m[1]}mlp_proj.{m[2]}"
        out[k] = v
    return out


def load_checkpoint(model: HierarchicalViT, path: str | Path) -> None:
    """Load `path` into a classifier/encoder `model`, or raise a ValueError that lists every mismatched key."""
    sd = read_state_dict(path)
    is_mae = any(k.startswith("encoder_norm.") for k in sd)
    # MAE checkpoints have no classifier: finetuning starts from a fresh head, as officially.
    load_exact(model, to_our_keys(sd, model), path, optional=("head.",) if is_mae else ())


def load_exact(model: nn.Module, sd: dict[str, torch.Tensor], path: str | Path, optional: tuple[str, ...] = ()) -> None:
    """Load `sd` into `model`; any key missing (unless it starts with one of `optional`), unexpected or
    mis-shaped raises one ValueError that lists them."""
    ours = model.state_dict()
    missing = [k for k in ours if k not in sd and not k.startswith(optional)]
    unexpected = [k for k in sd if k not in ours]
    shapes = [
        f"{k} {tuple(sd[k].shape)} vs {tuple(ours[k].shape)}" for k in sd if k in ours and sd[k].shape != ours[k].shape
    ]
    if missing or unexpected or shapes:
        parts = [
            f"{name} ({len(keys)}): {', '.join(keys[:8])}{' ...' if len(keys) > 8 else ''}"
            for name, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes))
            if keys
        ]
        raise ValueError(f"checkpoint {path} does not fit this model; " + "; ".join(parts))
    model.load_state_dict(sd, strict=False)


def checkpoint_num_classes(path: str | Path) -> int | None:
    """Classes of the checkpoint's classifier (official or timm names), None if it has none."""
    sd = read_state_dict(path)
    for key in ("head.projection.weight", "head.fc.weight"):
        if key in sd:
            return int(sd[key].shape[0])
    return None
