"""The look every figure shares (`hiera.analysis.plots`): palette, paper style, the atomic `save`, small helpers.

One style for all: seaborn "whitegrid" at paper font sizes, widths of a single (3.3 in) or double (6.9 in) column.
Colour always means the same thing: a Table-1 step has one colour in every figure (`STEP_COLORS`), a model size
another (`SIZE_COLORS`), an op family a third (`FAMILY_COLORS`); ours is drawn solid and the paper hatched or
dashed. Output is deterministic where matplotlib allows: no pyplot state, fixed dpi, no software/date metadata,
and every file is written atomically, so an interrupted run leaves the previous version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from hiera.analysis.frames import (
    BREAKDOWN_FAMILIES,
)
from hiera.files import atomic_write, atomic_write_text
from hiera.model.ladder import SIZES, STEP_IDS

SINGLE, DOUBLE = 3.3, 6.9  # column widths of a two-column paper (inches)
DPI = 200
_CB = sns.color_palette("colorblind")
# Step colours: the baseline grey, the final Hiera the strongest colour; the same in every figure.
STEP_COLORS = dict(zip(STEP_IDS, [_CB[7], _CB[9], _CB[0], _CB[1], _CB[2], _CB[4], _CB[5], _CB[3]]))
STEP_LABELS = {
    "sup": "sup: MViTv2 (supervised)",
    "mae": "mae: + MAE, rel pos",
    "a": "a: abs pos",
    "b": "b: max pools",
    "c": "c: no stride-1 pools",
    "d": "d: kernel = stride",
    "e": "e: no attn residual",
    "f": "f: Hiera (MU attn)",
}
SIZE_COLORS = dict(zip(SIZES, sns.color_palette("viridis", len(SIZES) + 1)[: len(SIZES)]))
IMPL_DASHES = {"hiera-study": "-", "timm": "--", "official": ":"}
# Op families (hiera/model/layers/scope.py), in the tables' order: tab20's dark colours but its grey, then two
# light ones, for the model's scopes; greys for the time outside them (other light, backward mid, optimizer dark).
_TAB = sns.color_palette("tab20")
FAMILY_COLORS = dict(
    zip(
        BREAKDOWN_FAMILIES,
        [
            *(_TAB[i] for i in (0, 2, 4, 6, 8, 10, 12, 16, 18, 1, 5)),
            (0.8, 0.8, 0.8),
            (0.55, 0.55, 0.55),
            (0.3, 0.3, 0.3),
        ],
    )
)
PAPER_HATCH = "////"
HIDDEN_RGB = np.array([0.74, 0.82, 0.94])  # masked-out units in the reconstruction figures
STYLE = {
    **sns.axes_style("whitegrid"),
    **sns.plotting_context("paper"),
    "font.size": 7,
    "axes.titlesize": 7.5,
    "axes.labelsize": 7,
    "xtick.labelsize": 6.5,
    "ytick.labelsize": 6.5,
    "legend.fontsize": 6.5,
    "legend.title_fontsize": 6.5,
    "lines.linewidth": 1.2,
    "lines.markersize": 4,
    "axes.linewidth": 0.6,
    "grid.linewidth": 0.4,
    "hatch.linewidth": 0.6,
    "patch.linewidth": 0.5,
    "savefig.dpi": DPI,
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    "svg.hashsalt": "hiera-study",
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
}


@dataclass
class FigureInfo:
    """A written figure: its name, caption, the records it came from, and the values it plots."""

    name: str
    caption: str
    records: list[str]
    data: pd.DataFrame
    files: list[Path] = field(default_factory=list)


def new_figure(width: float, height: float, nrows: int = 1, ncols: int = 1, **kw) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def save(fig: Figure, out_dir: Path, name: str, caption: str) -> list[Path]:
    """PNG (caption in its Description) + PDF + `<name>.txt`, without dates or software versions."""
    out_dir.mkdir(parents=True, exist_ok=True)
    png, pdf, txt = (out_dir / f"{name}.{s}" for s in ("png", "pdf", "txt"))
    # Each file goes to a temporary file and is renamed into place (hiera/files.py): a figure cut off mid-write
    # (kill, full disk) leaves the previous figure, never a truncated PNG/PDF that a paper build would pick up.
    atomic_write(
        png,
        lambda f: fig.savefig(
            f, format="png", dpi=DPI, metadata={"Software": None, "Title": name, "Description": caption}
        ),
    )
    atomic_write(
        pdf,
        lambda f: fig.savefig(
            f,
            format="pdf",
            metadata={"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None, "Title": name},
        ),
    )
    atomic_write_text(txt, caption + "\n")
    return [png, pdf, txt]


def record_sources(frame: pd.DataFrame) -> list[str]:
    """Distinct record files behind the rows of a frame (`source` is `<file>:<line>`)."""
    return sorted({s.rsplit(":", 1)[0] for s in frame["source"]}) if "source" in frame and len(frame) else []


def mark_gap(ax, x: float, text: str) -> None:
    """Mark a bar that has no number (not measured / no paper row), so a gap never reads as zero."""
    ax.text(
        x,
        0.02,
        text,
        transform=ax.get_xaxis_transform(),
        rotation=90,
        ha="center",
        va="bottom",
        fontsize=5,
        color="0.45",
    )


def plain_log_ticks(axis) -> None:
    """Log-axis ticks as plain numbers (200, 500, 1000) instead of overlapping 2x10^2 labels."""
    axis.set_major_locator(mpl.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(mpl.ticker.NullFormatter())


def paper_legend(ax, ours_label: str, paper_label: str, **kw) -> None:
    handles = [
        Patch(facecolor="0.55", edgecolor="0.2", label=ours_label),
        Patch(facecolor="white", edgecolor="0.3", hatch=PAPER_HATCH, label=paper_label),
    ]
    ax.legend(handles=handles, frameon=False, **kw)
