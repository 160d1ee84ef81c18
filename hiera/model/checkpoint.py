"""Load weights from local files in the formats users have: the official releases and timm.

Nothing is ever downloaded. Recognised layouts (detected from the keys):
- official Hiera (`facebookresearch/hiera`, `dl.fbaipublicfiles.com/hiera/*.pth`): a dict with `model_state`
  holding our key names (`norm`, `head.projection`, `blocks.N.*`); MAE checkpoints of the same release hold
  `encoder_norm` and decoder keys: the encoder is loaded, the decoder ignored, the head left as initialised;
- official MViTv2 (`facebookresearch/mvit`): `model_state` with flat `blocks.N.*`; the block-level `proj` is
  our `mlp_proj` when channels grow in the MLP;
- timm `hiera_*` (`head.norm`, `head.fc`), including the absolute-window `hiera_*_abswin_*` (`pos_embed` and
  `pos_embed_win` channels-first, `ls1/ls2.gamma`; the official abs-win release's `pos_embed_abs` is `pos_embed`),
  and timm `mvitv2_*` (`stages.S.blocks.J.*`, `shortcut_proj_*`);
- SAM 2 / 2.1 checkpoint files (`sam2*_hiera_*.pt`: `model` holding the whole segmenter): the image encoder's
  trunk `image_encoder.trunk.*` is loaded (`pos_embed_window`, `mlp.layers.0/1`), every other key (neck, memory,
  mask decoder ...) is ignored and counted in one warning; timm `hieradet_*` / `sam2_hiera_*` state dicts
  (`pos_embed_window`, `head.norm`, `head.fc`). A trunk has no final norm and no classifier: a model that has
  them keeps them as initialised.
A checkpoint trained at another input size loads into a model built at this one (`build_model(name,
input_size=..., checkpoint=...)`): position tables whose shape depends on the token grid are resized first
(`fit_position_tables`). Any other key left over or missing, or any shape that differs, raises one error that lists
them. Files are read with `weights_only=True` (a checkpoint cannot run code); a directory, a torn or corrupt file is
a one-line ValueError.
"""

from __future__ import annotations

import math
import pickle
import re
import warnings
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from hiera.model.network import HierarchicalViT

# Official MAE checkpoints: decoder-side keys that a classifier ignores.
MAE_ONLY = re.compile(r"^(decoder_|mask_token|multi_scale_fusion_heads|pred_)")
# SAM 2 checkpoints: the image encoder's trunk (Hiera) inside the whole segmentation model.
SAM2_TRUNK = "image_encoder.trunk."


def is_sam2(sd: dict[str, torch.Tensor]) -> bool:
    """Whether `sd` is a SAM 2 checkpoint: the whole segmenter, with the image encoder's trunk under `SAM2_TRUNK`."""
    return any(k.startswith(SAM2_TRUNK) for k in sd)


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
    if is_sam2(sd):  # the trunk alone, under its own names (`sam2_ignored` counts the rest)
        sd = {k.removeprefix(SAM2_TRUNK): v for k, v in sd.items() if k.startswith(SAM2_TRUNK)}
    for k, v in sd.items():
        if MAE_ONLY.match(k):
            continue
        k = re.sub(r"^encoder_norm\.", "norm.", k)  # official MAE encoder
        k = re.sub(r"^head\.norm\.", "norm.", k)  # timm Hiera
        k = re.sub(r"^head\.fc\.", "head.projection.", k)  # timm Hiera / MViTv2
        k = re.sub(r"^pos_embed_abs$", "pos_embed", k)  # official abs-win release (timm's filter renames it too)
        k = re.sub(r"^pos_embed_window$", "pos_embed_win", k)  # SAM 2 and timm HieraDet
        k = re.sub(r"\.mlp\.layers\.([01])\.", lambda m: f".mlp.fc{int(m[1]) + 1}.", k)  # SAM 2's MLP
        m = re.match(r"stages\.(\d+)\.blocks\.(\d+)\.(.*)", k)  # timm MViTv2
        if m:
            k = f"blocks.{sum(depths[: int(m[1])]) + int(m[2])}.{m[3]}"
        k = k.replace("shortcut_proj_attn.", "proj.").replace("shortcut_proj_mlp.", "mlp_proj.")
        m = re.match(r"(blocks\.\d+\.)proj\.(.*)", k)  # official MViTv2: block `proj` of an MLP-expanding block
        if m and k not in ours and f"{m[1]}mlp_proj.{m[2]}" in ours:
            k = f"{m[1]}mlp_proj.{m[2]}"
        out[k] = v
    return out


def _resize_2d(table: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """Bicubic resize of a channels-first `[1, C, h, w]` table, antialiased, in fp32 (timm's
    `resample_abs_pos_embed`; SAM 2 resizes its background table bicubically too)."""
    out = F.interpolate(table.float(), size=tuple(size), mode="bicubic", antialias=True, align_corners=False)
    return out.to(table.dtype)


def _table_grid(tokens: int, hint: tuple[int, ...] | None, what: str) -> tuple[int, int]:
    """The (h, w) grid of a raster position table of `tokens` rows: `hint` (the grid the variant is registered at)
    when it fits, else a square."""
    if hint is not None and math.prod(hint) == tokens:
        return int(hint[0]), int(hint[1])
    side = math.isqrt(tokens)
    if side * side != tokens:
        raise ValueError(
            f"checkpoint {what} has {tokens} positions, neither the variant's grid {hint} nor a square; "
            "build the model at the checkpoint's input size"
        )
    return side, side


def fit_position_tables(
    sd: dict[str, torch.Tensor], model: HierarchicalViT, source_grid: tuple[int, ...] | None = None
) -> dict[str, torch.Tensor]:
    """Resize the position tables of a checkpoint (our key names) trained at another input size to `model`'s.

    - `pos_embed` `[1, N, C]` (absolute, images): reshaped to the checkpoint's grid (`source_grid`, the grid the
      variant is registered at, when it has N tokens; else square) and resized bicubically (antialiased), as timm.
    - `pos_embed` / `pos_embed_win` `[1, C, h, w]` (absolute-window): these do not depend on the input size, so
      they only change with `global_pos_size` / `mask_unit_size`; then resized bicubically the same way.
    - video `pos_embed_spatial` (bicubic over (h, w)) and `pos_embed_temporal` (linear over t).
    - MViTv2's relative tables `blocks.N.attn.rel_pos_{t,h,w}` `[2 max(q, k) - 1, d]`: linear interpolation along
      the table, as MViTv2's `get_rel_pos` and timm's `mvitv2` do for a resolution change.
    Keys whose shapes already agree, and anything else, are returned unchanged (`load_exact` judges them).
    """
    ours = model.state_dict()
    grid = model.config.token_grid
    out = dict(sd)
    for k, v in sd.items():
        mine = ours.get(k)
        if mine is None or mine.shape == v.shape or mine.ndim != v.ndim:
            continue
        target = tuple(mine.shape)
        # channels (the embedding width) must agree: a table of another model is left for load_exact to report
        if k in ("pos_embed", "pos_embed_win") and v.ndim == 4:
            if v.shape[:2] == target[:2]:
                out[k] = _resize_2d(v, target[2:])
        elif v.shape[-1] != target[-1]:
            continue
        elif k == "pos_embed" and v.ndim == 3:
            h, w = _table_grid(v.shape[1], source_grid, k)
            table = v.reshape(1, h, w, -1).permute(0, 3, 1, 2)
            out[k] = _resize_2d(table, grid).permute(0, 2, 3, 1).reshape(1, -1, v.shape[-1])
        elif k == "pos_embed_spatial":
            h, w = _table_grid(v.shape[1], None if source_grid is None else source_grid[1:], k)
            table = v.reshape(1, h, w, -1).permute(0, 3, 1, 2)
            out[k] = _resize_2d(table, grid[1:]).permute(0, 2, 3, 1).reshape(1, -1, v.shape[-1])
        elif k == "pos_embed_temporal":
            table = F.interpolate(v.float().transpose(1, 2), size=grid[0], mode="linear", align_corners=False)
            out[k] = table.transpose(1, 2).to(v.dtype)
        elif re.fullmatch(r"blocks\.\d+\.attn\.rel_pos_[thw]", k):
            table = F.interpolate(v.float().t()[None], size=target[0], mode="linear", align_corners=False)
            out[k] = table[0].t().to(v.dtype)
    return out


def sam2_ignored(sd: dict[str, torch.Tensor]) -> dict[str, int]:
    """Keys of a SAM 2 checkpoint outside the image encoder's trunk, counted per top-level module (empty for any
    other checkpoint)."""
    if not is_sam2(sd):
        return {}
    counts: dict[str, int] = {}
    for k in sd:
        if not k.startswith(SAM2_TRUNK):
            module = ".".join(k.split(".")[:2]) if k.startswith("image_encoder.") else k.split(".")[0]
            counts[module] = counts.get(module, 0) + 1
    return counts


def load_checkpoint(model: HierarchicalViT, path: str | Path, source_grid: tuple[int, ...] | None = None) -> None:
    """Load `path` into a classifier/encoder `model`, or raise a ValueError that lists every mismatched key.

    `source_grid`: the token grid the checkpoint was trained at, if known (`fit_position_tables`). A SAM 2
    checkpoint's keys outside the trunk are ignored and counted in one `UserWarning`."""
    sd = read_state_dict(path)
    is_mae = any(k.startswith("encoder_norm.") for k in sd)
    ignored = sam2_ignored(sd)
    sd = fit_position_tables(to_our_keys(sd, model), model, source_grid)
    # MAE checkpoints have no classifier: finetuning starts from a fresh head, as officially; SAM 2's trunk has
    # neither a classifier nor a final norm.
    optional = ("head.",) if is_mae else ("head.", "norm.") if ignored else ()
    load_exact(model, sd, path, optional=optional)
    if ignored:
        parts = ", ".join(f"{m} ({n})" for m, n in ignored.items())
        warnings.warn(
            f"checkpoint {path}: loaded SAM 2's image encoder trunk; ignored {sum(ignored.values())} keys of the "
            f"other modules: {parts}",
            stacklevel=3,
        )


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
