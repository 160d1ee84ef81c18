"""The training figures (`hiera-study plots`): how runs trained and what the MAE sees.

- `curves-<grid>`: MAE pretraining and finetuning curves per variant (mean ± std over seeds);
- `reconstructions-<grid>`: MAE input, visible mask units and reconstruction (paper Fig. 2 style).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns

from hiera.analysis.figure_style import (
    DOUBLE,
    HIDDEN_RGB,
    SINGLE,
    SIZE_COLORS,
    STEP_COLORS,
    STEP_LABELS,
    FigureInfo,
    new_figure,
    record_sources,
    save,
)
from hiera.analysis.frames import (
    Records,
    display_path,
    load_curves,
    load_reconstruction,
)
from hiera.analysis.summaries import (
    SIZE_LABELS,
    describe_runs,
)
from hiera.model.ladder import SIZES, STEP_IDS

# ---- training curves --------------------------------------------------------------------------------------------


def _hue(runs: pd.DataFrame) -> tuple[str, dict, dict]:
    """What distinguishes a grid's runs (step, size, setting or variant), its colours and legend labels."""
    if runs["step"].nunique() > 1:
        steps = [s for s in STEP_IDS if s in set(runs["step"])]
        return "step", {s: STEP_COLORS[s] for s in steps}, {s: STEP_LABELS[s] for s in steps}
    if runs["size_key"].nunique() > 1 and set(runs["size_key"]) <= set(SIZES):
        sizes = [s for s in SIZES if s in set(runs["size_key"])]
        return "size_key", {s: SIZE_COLORS[s] for s in sizes}, {s: f"Hiera-{SIZE_LABELS[s]}" for s in sizes}
    key = "setting" if runs["setting"].notna().any() else "variant"
    values = sorted(set(runs[key].fillna("").astype(str)))
    return key, dict(zip(values, sns.color_palette("colorblind", len(values)))), {v: v for v in values}


def epochs_elapsed(curves: pd.DataFrame) -> pd.Series:
    """Epochs elapsed at each metrics line, `step / steps per epoch`, per phase.

    Training lines carry the 0-based epoch they are in (the same integer for every line of an epoch) and evaluation
    lines the epoch just finished, at its last step (`hiera/train/loop.py`), so plotting `epoch` would stack a
    whole epoch on one x. Steps per epoch are read off the lines: the last step logged in the first epoch.
    """
    out = pd.Series(np.nan, index=curves.index)
    for _, d in curves.groupby("phase", sort=True):
        first = d.loc[d["loss"].notna(), "epoch"]
        per_epoch = d.loc[d["epoch"] == first.min(), "opt_step"].max() if len(first) else np.nan
        if per_epoch and per_epoch > 0:
            out[d.index] = d["opt_step"] / per_epoch
        else:  # evaluation lines only: one point per finished epoch
            out[d.index] = d["epoch"] + 1
    return out


def curves_data(runs: pd.DataFrame) -> pd.DataFrame:
    """All curves of a grid's finished runs, with each run's identifying fields and `epochs` elapsed."""
    frames = []
    # files_dir: the run's archive when collected (committed), else its run directory (records.load_runs)
    for r in runs[(runs["status"] == "done") & runs["files_dir"].notna()].itertuples():
        c = load_curves(r.files_dir)
        if len(c):
            frames.append(
                c.assign(
                    epochs=epochs_elapsed(c),
                    run=r.run,
                    seed=r.seed,
                    step=r.step,  # the ladder row (`opt_step` is the optimizer step)
                    size_key=r.size_key,
                    modality=r.modality,
                    variant=r.variant,
                    setting=r.setting,
                )
            )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def plot_curves(recs: Records, out_dir: Path) -> list[FigureInfo | str]:
    out: list[FigureInfo | str] = []
    for grid, runs in recs.runs.groupby("grid", sort=True):
        data = curves_data(runs)
        if data.empty:
            out.append(f"curves-{grid}: no finished run with metrics.jsonl curves")
            continue
        key, colors, labels = _hue(runs[runs["status"] == "done"])
        data["hue"] = data[key].fillna("").astype(str)
        # the supervised baseline's single phase shares the finetuning panels (same loss, same evaluation)
        panels = [
            ("mae", "loss", "MAE pretraining loss"),
            ("finetune", "loss", "finetuning loss"),
            ("finetune", "top1", "eval top-1 (%)"),
        ]
        data["panel"] = data["phase"].replace({"supervised": "finetune"})
        # a band is a spread over seeds: only where each colour is one setting (its runs differ by seed alone)
        data["group"] = data["run"].str.replace(r"/?seed\d+$", "", regex=True)
        banded = bool((data.groupby("hue")["group"].nunique() <= 1).all())
        panels = [p for p in panels if data[(data["panel"] == p[0])][p[1]].notna().any()]
        modalities = [m for m in ("image", "video") if (data["modality"] == m).any()]
        fig, axes = new_figure(DOUBLE, 1.75 * len(modalities) + 0.45, len(modalities), len(panels))
        for row, modality in enumerate(modalities):
            for col, (phase, metric, title) in enumerate(panels):
                ax = axes[row][col]
                part = data[(data["modality"] == modality) & (data["panel"] == phase) & data[metric].notna()]
                order = [h for h in colors if h in set(part["hue"])]
                if order:
                    common = dict(x="epochs", y=metric, hue="hue", hue_order=order, palette=colors, ax=ax, legend=False)
                    if banded:  # mean over seeds with a ±1 std band (no bootstrap: deterministic)
                        marker = "o" if metric == "top1" else None
                        style = dict(errorbar="sd", estimator="mean", marker=marker, markersize=3, linewidth=1.0)
                    else:  # several settings share a colour: one thin line each, never a band across settings
                        style = dict(units="group", estimator=None, linewidth=0.6, alpha=0.8)
                    sns.lineplot(part, **common, **style)
                else:
                    ax.text(0.5, 0.5, "no curves", ha="center", va="center", transform=ax.transAxes, color="0.5")
                ax.set_title(f"{modality.capitalize()}: {title}")
                ax.set_xlabel("epoch")
                ax.set_ylabel("top-1 (%)" if metric == "top1" else "loss")
        handles = [mpl.lines.Line2D([], [], color=colors[h], label=labels[h]) for h in colors]
        fig.legend(handles=handles, loc="outside lower center", ncol=min(4, len(handles)), frameon=False)
        spread = (
            "lines are the mean over seeds, bands ±1 std"
            if banded
            else f"one line per run setting ({data['group'].nunique()} settings; the grid varies settings within a "
            "colour, so no band is drawn across them)"
        )
        caption = (
            f"Training curves of grid {grid}: MAE pretraining loss (normalised-pixel MSE on masked units), "
            f"finetuning (supervised baseline: supervised training) loss and top-1 per epoch; {spread}; "
            "colour = " + ("Table-1 step. " if key == "step" else f"{key}. ") + " ".join(describe_runs(runs))
        )
        name = f"curves-{grid}"
        files = save(fig, out_dir, name, caption)
        n = runs[(runs["status"] == "done") & runs["files_dir"].notna()].shape[0]
        out.append(
            FigureInfo(
                name,
                caption,
                [*record_sources(runs), f"<archive or run_dir>/{{mae,finetune,supervised}}/metrics.jsonl of {n} runs"],
                data.drop(columns=["panel", "group"]),
                files,
            )
        )
    return out


# ---- MAE reconstructions ----------------------------------------------------------------------------------------


def plot_reconstructions(recs: Records, out_dir: Path, samples: int = 2, max_rows: int = 8) -> list[FigureInfo | str]:
    out: list[FigureInfo | str] = []
    for grid, runs in recs.runs.groupby("grid", sort=True):
        # files_dir: the archive (which holds the reconstruction of each variant's lowest seed only) when the run
        # was collected, else its run directory, so a clone draws the same runs as the machine that ran them
        done = runs[(runs["status"] == "done") & runs["files_dir"].notna()].copy()
        done["npz"] = [Path(d) / "mae" / "reconstruction.npz" for d in done["files_dir"]]
        done = done[[p.is_file() for p in done["npz"]]]
        if done.empty:
            out.append(f"reconstructions-{grid}: no finished run with mae/reconstruction.npz")
            continue
        order = {s: i for i, s in enumerate(STEP_IDS)}
        done = done.assign(
            o=[
                (m != "image", order.get(s, 99), v, seed)
                for m, s, v, seed in zip(done["modality"], done["step"], done["variant"], done["seed"])
            ]
        )
        done = done.sort_values("o").drop_duplicates("variant").head(max_rows)
        arrays = [load_reconstruction(p) for p in done["npz"]]
        n = min(samples, min(len(a["input"]) for a in arrays))
        cols = ["input", "visible", "reconstruction"]
        fig, axes = new_figure(DOUBLE if n > 1 else SINGLE * 1.3, 0.2 + 1.05 * len(done), len(done), 3 * n)
        for i, (r, a) in enumerate(zip(done.itertuples(), arrays)):
            for k in range(n):
                # hidden units in a pale blue: distinct from grey-scale data (Fashion-MNIST) and from most photos
                visible = np.where(a["mask"][k][..., None], a["input"][k], HIDDEN_RGB)
                for j, (title, img) in enumerate(zip(cols, (a["input"][k], visible, a["reconstruction"][k]))):
                    ax = axes[i][3 * k + j]
                    ax.imshow(img, interpolation="nearest", vmin=0, vmax=1)
                    ax.set_xticks([])
                    ax.set_yticks([])
                    ax.grid(False)
                    if i == 0:
                        ax.set_title(f"{title}" + (f" #{k + 1}" if n > 1 else ""), fontsize=6.5)
            label = STEP_LABELS.get(r.step, r.variant) if isinstance(r.step, str) else r.variant
            axes[i][0].set_ylabel(f"{label}\n({r.modality})", fontsize=6, rotation=0, ha="right", va="center")
            for spine in axes[i][0].spines.values():
                spine.set_edgecolor(STEP_COLORS.get(r.step, "0.5") if isinstance(r.step, str) else "0.5")
                spine.set_linewidth(1.5)
        caption = (
            f"MAE reconstructions of grid {grid}, one run per variant (lowest seed): the input, the visible "
            "mask units (hidden ones pale blue), and the decoder's reconstruction with the normalisation undone "
            "(video: the middle frame). " + " ".join(describe_runs(done))
        )
        name = f"reconstructions-{grid}"
        files = save(fig, out_dir, name, caption)
        data = done[["run", "variant", "step", "modality"]].assign(npz=[display_path(p) for p in done["npz"]])
        out.append(FigureInfo(name, caption, [*record_sources(done), *data["npz"]], data.reset_index(drop=True), files))
    return out
