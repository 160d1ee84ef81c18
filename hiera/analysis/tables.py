"""The paper's tables from our records, beside the paper's numbers: Table 1 (the MViTv2 -> Hiera ladder), Table 2
(model sizes), Table 3 (MAE ablations), and speed tables per device and protocol (paper Tables 16/17 protocol).

Every table is a pure function of the records (`hiera.analysis.frames`) and is written as Markdown, LaTeX
(booktabs) and CSV with byte-for-byte identical output for identical records: rows in a fixed order, fixed float
formats, and no clock reads (the only dates shown come from the records).

Conventions shared by all tables:
- accuracies over seeds are `mean ± std (n)`, sample std; `(k/n)` when only k of the n expected seeds finished;
- the ladder tables (Table 1, the demo, Appendix B) add per step the 95% Student-t interval of that mean and the
  paired difference to the previous row on the same test images, with its paired-bootstrap interval
  (`hiera.analysis.stats`; fixed bootstrap seed, so still byte-identical);
- a table pools the grids of its kind (Table 1's image and video grids are one table) and is split only where
  numbers must not be averaged together (proxy vs full datasets, model sizes); see `build_tables`;
- a cell with no number is "—"; every run that is not `done` is listed under its table ("Missing"), so a
  partial grid can never pass for a complete one;
- accuracies measured on proxy datasets carry the dataset, resolution and hardware in the caption and are never
  presented as ImageNet-1K / Kinetics-400 numbers;
- speeds are the best batch per model (as the paper reports), from one measurement condition (device, precision,
  attention kernel, compile, protocol, torch) per table and modality, named in the caption; the models the runs
  trained when those were benchmarked, else the paper's full-size models (`speeds_for`);
- breakdown tables (`hiera-study bench --breakdown`) show where a step's time goes per op family, one per
  measurement condition and ladder; CPU breakdowns say so in the caption (CPU self time is not GPU time).
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hiera.analysis.frames import (
    BREAKDOWN_FAMILIES,
    Records,
    load_all,
    model_counts,
)
from hiera.analysis.stats import mean_ci, paired_difference
from hiera.env import at_root
from hiera.files import atomic_write_text
from hiera.model.ladder import LADDER, SIZES, STEP_IDS

TABLES_DIR = ("results", "tables")  # under the project root
BEGIN, END = "<!-- tables:begin -->", "<!-- tables:end -->"
DASH = "—"
RES = {"image": "224", "video": "16x224"}  # registry resolution suffix per modality
SPEED_UNIT = {"image": "im/s", "video": "clip/s"}
SPEED_COL = {"image": "im_s", "video": "clip_s"}  # as in results/paper/table1.csv
SIZE_LABELS = {k: s.label for k, s in SIZES.items()}
LABEL_ORDER = [s.label for s in SIZES.values()]
DATASET_LABELS = {
    "fashion-mnist": "Fashion-MNIST",
    "moving-fashion-mnist": "Moving Fashion-MNIST",
    "imagenet-1k": "ImageNet-1K",
    "imagenet": "ImageNet-1K",
    "kinetics-400": "Kinetics-400",
    "kinetics": "Kinetics-400",
}
PAPER_DATA = {"image": "ImageNet-1K", "video": "Kinetics-400"}
PAPER_SPEED = "A100 40GB, fp16, PyTorch 1.12.1, no fused attention, best batch"
# Table 1 speed-ups are over the supervised MViTv2 baseline, the row the paper's "2.4x faster" refers to.
REF_ROW = "sup"
IMPL_ORDER = {"hiera-study": 0, "timm": 1, "official": 2}
# Statistics of the ladder tables (`hiera.analysis.stats`): interval coverage, bootstrap replicates and its seed
# (fixed: the same records give the same bytes), and the mark of a paired difference whose interval excludes 0
# (not `*`, which marks separate-and-pad rows in the step column).
LEVEL, N_BOOT, BOOT_SEED, SIGNIFICANT = 0.95, 10000, 0, "‡"
CONDITION = ("device", "mode", "precision", "attn", "compile", "protocol", "torch")


@dataclass
class Table:
    """One table, ready to render: formatted cells for Markdown/LaTeX, numbers for CSV."""

    name: str  # file stem, e.g. "table1-t1_demo"
    title: str
    caption: list[str]  # sentences: conditions of every number in the table
    groups: list[tuple[str, int]]  # spanning header above `columns` ("" for none), spans sum to len(columns)
    columns: list[str]
    align: str  # one of l/r per column
    rows: list[list[str]]
    data: pd.DataFrame  # the CSV: numbers, not formatted strings
    formats: dict[str, str] = field(default_factory=dict)  # CSV float formats per column (default ".4f")
    notes: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


# ---- small helpers ----------------------------------------------------------------------------------------------


def _num(x: Any) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x))


def _f(x: Any, fmt: str) -> str:
    return format(x, fmt) if _num(x) else DASH


def _acc_cell(mean: float, std: float, n: int, expected: int) -> str:
    if not n:
        return DASH
    text = f"{mean:.2f}" + (f" ± {std:.2f}" if n > 1 else "")
    return text + (f" ({n})" if n == expected else f" ({n}/{expected})")


def summarize(runs: pd.DataFrame) -> dict[str, Any]:
    """Mean, sample std, number done and number expected of `top1` over a group of runs (seeds), and the
    Student-t 95% interval of the mean (`lo`, `hi`; NaN with fewer than two seeds)."""
    done = runs.loc[runs["status"] == "done", "top1"].astype(float)
    n = len(done)
    _, _, lo, hi = mean_ci(done.to_numpy(), LEVEL)
    return {
        "mean": done.mean() if n else np.nan,
        "std": done.std(ddof=1) if n > 1 else np.nan,
        "n": n,
        "expected": len(runs),
        "lo": lo,
        "hi": hi,
    }


def _ci_cell(lo: float, hi: float) -> str:
    return f"[{lo:.2f}, {hi:.2f}]" if _num(lo) else DASH


def _by_seed(runs: pd.DataFrame) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """seed -> (predictions, labels) of the finished runs that saved per-example predictions; where a pooled
    table holds two runs of one seed, the first in (grid, run) order."""
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for r in runs[runs["status"] == "done"].sort_values(["grid", "run"], kind="stable").itertuples():
        if isinstance(r.predictions, np.ndarray) and int(r.seed) not in out:
            out[int(r.seed)] = (r.predictions, r.labels)
    return out


def paired_steps(runs: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per Table-1 step, the paired top-1 difference to the previous step with finished runs (ladder order):
    `vs` (that step), `seeds` (paired: finished with predictions in both, matched by seed number), and when there
    are any, `hiera.analysis.stats.paired_difference` over the same test images, seeds pooled. Test sets that
    differ between the runs (other images or order: the labels differ) give no difference."""
    out: dict[str, dict[str, Any]] = {}
    prev: tuple[str, pd.DataFrame] | None = None
    for step in STEP_IDS:
        part = runs[(runs["step"] == step) & (runs["status"] == "done")]
        if part.empty:
            continue
        if prev is not None:
            out[step] = {"vs": prev[0], **paired_runs(prev[1], part)}
        prev = (step, part)
    return out


def paired_runs(runs_a: pd.DataFrame, runs_b: pd.DataFrame) -> dict[str, Any]:
    """Top-1 of `runs_b` minus `runs_a` on the same test images: `seeds` (finished with predictions in both,
    matched by seed number) and, when there are any, `hiera.analysis.stats.paired_difference` with seeds pooled.
    Test sets that differ (other images or order: the labels differ) give `seeds` 0 and no difference."""
    a, b = _by_seed(runs_a), _by_seed(runs_b)
    seeds = sorted(a.keys() & b.keys())
    same = True
    if seeds:
        labels = a[seeds[0]][1]
        same = all(np.array_equal(x[s][1], labels) for x in (a, b) for s in seeds)
    out: dict[str, Any] = {"seeds": len(seeds) if same else 0}
    if seeds and same:
        correct_a = np.stack([a[s][0] == a[s][1] for s in seeds])
        correct_b = np.stack([b[s][0] == b[s][1] for s in seeds])
        out.update(paired_difference(correct_a, correct_b, N_BOOT, LEVEL, BOOT_SEED))
    return out


def _diff_cell(d: dict[str, Any] | None) -> str:
    """`+0.93 [+0.41, +1.45]‡ vs sup (2)`: difference, its interval, the mark, the step compared, seeds."""
    if not d or "diff" not in d:
        return DASH
    mark = SIGNIFICANT if d["significant"] else ""
    return f"{d['diff']:+.2f} [{d['lo']:+.2f}, {d['hi']:+.2f}]{mark} vs {d['vs']} ({int(d['seeds'])})"


def _missing(runs: pd.DataFrame) -> list[str]:
    """One line per run that is not done: grid/run, status, and the last line of why (failed, unknown, stale)."""
    out = []
    for r in runs[runs["status"] != "done"].sort_values(["grid", "run"]).itertuples():
        line = f"`{r.grid}/{r.run}`: {r.status}"
        if r.status in ("failed", "unknown", "stale") and isinstance(r.error, str):
            lines = [s.strip() for s in r.error.splitlines() if s.strip()] or ["no error text"]
            line += f" ({lines[-1][:117] + '...' if len(lines[-1]) > 120 else lines[-1]})"
        out.append(line)
    return out


def _text(v: Any) -> str:
    """A record value for a caption: integral floats (ints that went through a pandas column) without '.0'."""
    return str(int(v)) if isinstance(v, (float, np.floating)) and float(v).is_integer() else str(v)


def _range(values: Sequence[Any]) -> str:
    vals = sorted({v for v in values if _num(v)})
    if not vals:
        return "?"
    return _text(vals[0]) if len(vals) == 1 else f"{_text(vals[0])}–{_text(vals[-1])}"


GPU_WORDS = ("nvidia", "tesla", "geforce", "quadro", "radeon", "instinct", "cuda", "h100", "h200", "a100", "v100")


def hardware(devices: Sequence[str], threads: Sequence[Any]) -> str:
    """'NVIDIA H100 80GB HBM3' or 'CPU (x86_64, 2 threads)': run records name the GPU, or the CPU's processor."""
    names = sorted(set(devices))
    if any(w in n.lower() for n in names for w in GPU_WORDS):
        return ", ".join(names)
    return f"CPU ({', '.join(names)}, {_range(threads)} threads)"


def resolution_label(input_size: str) -> str:
    """'64x64' -> '64px', '16x64x64' -> '16×64px' (square frames), else the sizes joined by '×'."""
    dims = input_size.split("x")
    if len(dims) >= 2 and dims[-1] == dims[-2]:
        return "×".join(dims[:-2] + [dims[-1] + "px"])
    return "×".join(dims)


def describe_runs(runs: pd.DataFrame) -> list[str]:
    """Caption sentences for the accuracies: per modality the dataset (proxy or not), input, size, hardware,
    epochs and dates, so a proxy number can never be read as an ImageNet one."""
    done = runs[runs["status"] == "done"]
    out = []
    for modality in ("image", "video"):
        part = done[done["modality"] == modality]
        if part.empty:
            continue
        for (dataset, proxy), d in part.groupby(["dataset", "proxy"], sort=True):
            name = DATASET_LABELS.get(dataset, dataset)
            res = ", ".join(resolution_label(s) for s in sorted(set(d["input_size"])))
            epochs = (
                f"MAE {_range(d['pretrain_epochs'])} + finetune {_range(d['finetune_epochs'])} epochs"
                if d["pretrain_epochs"].notna().any()
                else f"{_range(d['finetune_epochs'])} epochs"
            )
            dates = _range([s[:10] for s in d["date"]])
            kind = "proxy" if proxy else "full dataset"
            sizes = sorted(set(d["size"]) - {"proxy"})  # "proxy": the grid's own small model, said already
            sentence = (
                f"Ours, {modality}: {name} {res} {kind}, {hardware(d['device'], d['cpu_threads'])}"
                + (f", size {', '.join(sizes)}" if sizes else "")
                + f"; {epochs}; {', '.join(sorted(set(d['precision'])))}; runs of {dates}."
            )
            if proxy:
                sentence += (
                    f" Proxy numbers: not {PAPER_DATA[modality]} accuracies; compare rows with each other, "
                    "not with the paper's column."
                )
            out.append(sentence)
    return out


# ---- speed selection --------------------------------------------------------------------------------------------


def _ours_infer(speed: pd.DataFrame) -> pd.DataFrame:
    """Our inference measurements that ran (the pool for the speeds of Tables 1 and 2)."""
    keep = (speed["impl"] == "hiera-study") & (speed["mode"] == "infer") & speed["samples_per_s"].notna()
    return speed[keep]


def pick_condition(pool: pd.DataFrame, variants: Iterable[str], keys: Sequence[str] = CONDITION) -> tuple | None:
    """The measurement condition for a table: the paper's protocol first, then fp16, then the one covering most
    of `variants`; ties by sorted key, so the choice is deterministic."""
    rows = pool[pool["variant"].isin(list(variants))]
    if rows.empty:
        return None
    ranked = []
    for key, d in rows.groupby(list(keys), sort=True):
        c = dict(zip(keys, key))
        rank = (c["protocol"] != "paper", c["precision"] != "fp16", -d["variant"].nunique(), tuple(map(str, key)))
        ranked.append((rank, key))
    return min(ranked, key=lambda x: x[0])[1]


def _in_condition(pool: pd.DataFrame, cond: tuple, keys: Sequence[str] = CONDITION) -> pd.DataFrame:
    mask = np.ones(len(pool), dtype=bool)
    for name, value in zip(keys, cond):
        mask &= (pool[name] == value).to_numpy()
    return pool[mask]


def best_speed(rows: pd.DataFrame) -> dict[str, Any] | None:
    """The best batch among one model's measurements: samples/s averaged over repeated runs per batch size,
    then the highest (ties: the smaller batch). Separate-and-pad `on` is preferred where measured, as the paper's
    speeds for rows a-c include it."""
    rows = rows[rows["samples_per_s"].notna()]
    if rows.empty:
        return None
    if (rows["separate_and_pad"] == "on").any():
        rows = rows[rows["separate_and_pad"] == "on"]
    per_batch = rows.groupby("batch_size", sort=True)
    means = per_batch["samples_per_s"].mean()
    batch = int(means.index[int(np.argmax(means.to_numpy()))])
    best = rows[rows["batch_size"] == batch]
    return {
        "samples_per_s": float(means[batch]),
        "batch": batch,
        "n": len(best),
        "min": float(best["samples_per_s_min"].min()),
        "max": float(best["samples_per_s_max"].max()),
        "rows": best,
    }


def describe_condition(rows: pd.DataFrame, cond: tuple, what: str) -> str:
    """Caption sentence for speeds taken under one condition."""
    c = dict(zip(CONDITION, cond))
    dates = _range(sorted(s[:10] for s in rows["date"]))
    drivers = ", ".join(sorted({d for d in rows["driver"] if isinstance(d, str)})) or "none"
    shas = (
        ", ".join(
            sorted(
                {
                    s[:7] + ("+dirty" if dirty else "")
                    for s, dirty in zip(rows["git_sha"], rows["git_dirty"])
                    if isinstance(s, str)
                }
            )
        )
        or "unknown"
    )
    return (
        f"Ours, {what}: {c['device']} (driver {drivers}), torch {c['torch']}, {c['precision']}, {c['attn']} "
        f"attention, {'compiled' if c['compile'] else 'no compile'}, protocol {c['protocol']}, mode {c['mode']}; "
        f"best batch per model; measured {dates}, git {shas}."
    )


def speeds_for(
    speed: pd.DataFrame,
    runs: pd.DataFrame,
    trained: dict[Any, str],
    full: dict[Any, str],
    what: str,
    full_what: str = "",
) -> tuple[dict[Any, dict | None], str | None, str | None]:
    """Best-batch speeds for the rows of a table (keys of `trained` / `full`), from one measurement condition.

    Prefers measurements of the models the runs trained: the same variant at the runs' input size, with whatever
    overrides it was benchmarked (the proxy models of the demo are profiled so). Otherwise the registered
    full-size variants of `full`, without overrides (the paper's models; `full_what` completes the caption).
    Returns (speeds per key, caption sentence, device) or ({}, None, None) when nothing was measured.
    """
    pool = _ours_infer(speed)
    inputs = set(runs.loc[runs["status"] == "done", "input_size"].dropna())
    mine = pool[pool["variant"].isin(list(trained.values())) & pool["input_size"].isin(inputs)]
    keys = (*CONDITION, "overrides")
    if len(mine) and trained:
        names, pool = trained, mine
        what += f" of the trained models ({', '.join(resolution_label(s) for s in sorted(inputs))})"
    else:
        names, pool = full, pool[pool["overrides"] == "{}"]
        what += full_what
    cond = pick_condition(pool, names.values(), keys) if names else None
    if cond is None:
        return {}, None, None
    chosen = _in_condition(pool, cond, keys)
    found = {k: best_speed(chosen[chosen["variant"] == v]) for k, v in names.items()}
    used = pd.concat([b["rows"] for b in found.values() if b])
    return found, describe_condition(used, cond[: len(CONDITION)], what), cond[0]


def _ladder_names(size: str, modality: str) -> dict[str, str]:
    """step id -> registered variant name of the ladder at `size` for `modality`."""
    base = f"hiera_{size}_{RES[modality]}"
    return {s.id: base + (f".{s.slug}" if s.slug else "") for s in LADDER}


def _speed_size(speed: pd.DataFrame, modality: str, prefer: Sequence[str]) -> str | None:
    """The full-size ladder whose speeds Table 1 shows: the runs' size if measured, else L (the paper's), else the
    largest measured."""
    pool = _ours_infer(speed)
    pool = pool[pool["overrides"] == "{}"]
    for size in (*prefer, "large", *reversed(SIZES)):
        if size in SIZES and pool["variant"].isin(list(_ladder_names(size, modality).values())).any():
            return size
    return None


def _first_variant(runs: pd.DataFrame, column: str) -> dict[Any, str]:
    """`column` value -> the variant its runs trained (the first by name when several)."""
    return {k: sorted(d["variant"])[0] for k, d in runs.groupby(column, sort=True)}


# ---- Table 1 ----------------------------------------------------------------------------------------------------


def table1_frame(recs: Records, runs: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Numbers of Table 1: per step (ladder order) and modality, our accuracy over seeds, our best-batch speed and
    speed-up over row `sup`, and the paper's. Returns the frame and the caption sentences on speeds."""
    paper = recs.paper["table1"].set_index("row")
    titles = {s.id: s.title for s in LADDER}
    data = pd.DataFrame({"row": list(STEP_IDS), "setting": [titles[s] for s in STEP_IDS]})
    captions = []
    for modality in ("image", "video"):
        col = SPEED_COL[modality]
        mine = runs[runs["modality"] == modality]
        stats = [summarize(mine[mine["step"] == s]) for s in STEP_IDS]
        data[f"{modality}_acc_mean"] = [s["mean"] for s in stats]
        data[f"{modality}_acc_std"] = [s["std"] for s in stats]
        data[f"{modality}_acc_n"] = [s["n"] for s in stats]
        data[f"{modality}_acc_expected"] = [s["expected"] for s in stats]
        data[f"{modality}_acc_ci_lo"] = [s["lo"] for s in stats]
        data[f"{modality}_acc_ci_hi"] = [s["hi"] for s in stats]
        paired = paired_steps(mine)
        for name, default in (
            ("vs", None),
            ("seeds", np.nan),
            ("diff", np.nan),
            ("lo", np.nan),
            ("hi", np.nan),
            ("p", np.nan),
            ("significant", None),
        ):
            data[f"{modality}_diff{'' if name == 'diff' else '_' + name}"] = [
                paired.get(s, {}).get(name, default) for s in STEP_IDS
            ]
        data[f"{modality}_acc_paper"] = [paper[f"{modality}_acc"].get(s, np.nan) for s in STEP_IDS]
        size = _speed_size(recs.speed, modality, sorted(set(mine["size"]) & set(SIZES)))
        # a table with runs shows speeds only for the modalities it ran: `table1` has the full-size ladder's
        full = _ladder_names(size, modality) if size and (runs.empty or len(mine)) else {}
        found, caption, _ = speeds_for(
            recs.speed,
            mine,
            _first_variant(mine, "step"),
            full,
            f"{modality} {SPEED_UNIT[modality]}",
            f" of the Hiera-{SIZE_LABELS[size]} ladder" if size else "",
        )
        if caption:
            captions.append(caption)
        data[f"{modality}_{col}"] = [b["samples_per_s"] if (b := found.get(s)) else np.nan for s in STEP_IDS]
        data[f"{modality}_{col}_batch"] = [b["batch"] if (b := found.get(s)) else np.nan for s in STEP_IDS]
        data[f"{modality}_{col}_paper"] = [paper[f"{modality}_{col}"].get(s, np.nan) for s in STEP_IDS]
        for who, source in (("", f"{modality}_{col}"), ("_paper", f"{modality}_{col}_paper")):
            ref = data.loc[data["row"] == REF_ROW, source].iloc[0]
            data[f"{modality}_speedup{who}"] = data[source] / ref
    return data, captions


def _scope(runs: pd.DataFrame, sizes: bool = True) -> str:
    """' (grids `a`, `b`; size large)' for a title: where a pooled table's runs come from."""
    if runs.empty:
        return ""
    grids = ", ".join(f"`{g}`" for g in sorted(set(runs["grid"])))
    label = f"grid{'s' if runs['grid'].nunique() > 1 else ''} {grids}"
    if sizes:
        label += f"; size {', '.join(sorted(set(runs['size'])))}"
    return f" ({label})"


def table1(recs: Records, name: str, runs: pd.DataFrame, what: str = "Table 1", paper_acc: bool = True) -> Table:
    """Table 1's layout: per ladder step and modality our accuracy (mean ± std (n), its 95% CI, the paired
    difference to the previous step) and speeds beside the paper's. `paper_acc=False` leaves the paper's accuracy
    columns empty (the supervised-from-scratch ladder of Appendix B, which the paper gives only as a figure)."""
    data, speed_captions = table1_frame(recs, runs)
    if not paper_acc:
        for modality in ("image", "video"):
            data[f"{modality}_acc_paper"] = np.nan
    paper = recs.paper["table1"].set_index("row")
    rows = []
    for r in data.itertuples(index=False):
        d = r._asdict()
        mark = "*" if d["row"] in ("mae", "a", "b", "c") else ""
        cells = [d["row"] + mark, d["setting"]]
        for modality in ("image", "video"):
            col = SPEED_COL[modality]
            dagger = " †" if d["row"] == "b" and _num(d[f"{modality}_{col}_paper"]) else ""
            diff = {
                k: d[f"{modality}_diff" + ("" if k == "diff" else f"_{k}")]
                for k in ("vs", "seeds", "diff", "lo", "hi", "significant")
            }
            cells += [
                _acc_cell(
                    d[f"{modality}_acc_mean"],
                    d[f"{modality}_acc_std"],
                    d[f"{modality}_acc_n"],
                    d[f"{modality}_acc_expected"],
                ),
                _ci_cell(d[f"{modality}_acc_ci_lo"], d[f"{modality}_acc_ci_hi"]),
                _diff_cell(diff if _num(diff["diff"]) else None),
                _f(d[f"{modality}_acc_paper"], ".1f"),
                _f(d[f"{modality}_{col}"], ".1f"),
                _f(d[f"{modality}_{col}_paper"], ".1f") + dagger,
                _f(d[f"{modality}_speedup"], ".2f"),
                _f(d[f"{modality}_speedup_paper"], ".2f"),
            ]
        rows.append(cells)
    caption = [
        f"Paper (Table 1): Hiera-L, {PAPER_DATA['image']} / {PAPER_DATA['video']} top-1 (%), {PAPER_SPEED}."
        if paper_acc
        else f"Paper (Table 1): Hiera-L speeds, {PAPER_SPEED}.",
        *describe_runs(runs),
        *speed_captions,
        "Accuracy: mean ± std over seeds (n); (k/n): only k of n seeds finished.",
    ]
    if runs.empty:
        caption.append("No Table-1 runs were found: accuracy columns of ours are empty.")
    notes = [
        f"×{REF_ROW}: speed over row {REF_ROW} (supervised MViTv2) in the same column.",
        "*: separate-and-pad (paper Fig. 4d) in training and inference; the speeds include it, as in the paper.",
        "mae: the header step 'Hiera-L MAE' (MViTv2 + MAE, rel pos kept), built as its own model here; the paper "
        "gives no numbers for it.",
        f"†: paper: “{_quote(paper.loc['b', 'note'])}”.",
        "95% CI: Student-t interval of the mean top-1 over seeds (n − 1 degrees of freedom; none with one seed): "
        "how far the mean may move with other seeds.",
        f"Δ prev: top-1 of the row minus that of the previous row with finished runs (named after `vs`), in points, on "
        f"the same test images, seeds paired by seed number and pooled ((k): seeds in both rows that saved "
        f"per-example predictions); [lo, hi]: 95% percentile paired bootstrap over test images ({N_BOOT:,} "
        f"resamples, all seeds of a drawn image kept); {SIGNIFICANT}: the interval excludes 0. The interval covers "
        f"the test-set sampling only, not training noise across seeds: with one seed a {SIGNIFICANT} does not say "
        "that a rerun would order the rows the same way. The CSV adds the exact McNemar p-value on the pooled "
        "discordant pairs (`<m>_diff_p`). Method: `hiera/analysis/stats.py`.",
        f"{DASH}: no number (see the missing runs, or the paper has none; Δ prev: no previous row, or no "
        "per-example predictions of the same test images in both rows).",
    ]
    if not paper_acc:
        notes.insert(
            4,
            "acc paper: none; the paper's Table-1 accuracies are after MAE pretraining, and its ladder "
            "trained from scratch (Appendix B) is given only as a figure (Fig. 8). Speeds do not "
            "depend on the training: the paper's are shown.",
        )
    title = f"{what}: simplifying MViTv2 into Hiera, ours vs paper{_scope(runs)}"
    sub = ["acc ours", "95% CI", "Δ prev", "acc paper", "{} ours", "{} paper", f"×{REF_ROW} ours", f"×{REF_ROW} paper"]
    columns = ["step", "setting"] + [c.format("im/s") for c in sub] + [c.format("clip/s") for c in sub]
    return Table(
        name=name,
        title=title,
        caption=caption,
        groups=[("", 2), ("Image", len(sub)), ("Video", len(sub))],
        columns=columns,
        align="ll" + "r" * 2 * len(sub),
        rows=rows,
        data=data,
        formats={
            **{c: ".0f" for c in data.columns if c.endswith(("_n", "_expected", "_batch", "_seeds"))},
            **{c: ".1f" for c in data.columns if c.endswith("_paper") and "speedup" not in c},
            **{c: ".2f" for c in data.columns if c.endswith(("_im_s", "_clip_s"))},
            **{c: ".3g" for c in data.columns if c.endswith("_diff_p")},
        },
        notes=notes,
        missing=_missing(runs),
    )


def mae_vs_scratch(name: str, mae: pd.DataFrame, scratch: pd.DataFrame) -> Table:
    """Per modality and Table-1 step trained both ways, MAE + finetuning (Table 1 runs) against the same model
    trained from scratch (Appendix B runs): both accuracies over seeds and their paired difference on the same test
    images (`paired_runs`). The paper's App. B contrast, as numbers: MAE should help most where the ladder has
    removed the most."""
    titles = {s.id: s.title for s in LADDER}
    rows, data = [], []
    for modality in ("image", "video"):
        for step in STEP_IDS:
            a = scratch[(scratch["modality"] == modality) & (scratch["step"] == step)]
            b = mae[(mae["modality"] == modality) & (mae["step"] == step)]
            if not ((a["status"] == "done").any() and (b["status"] == "done").any()):
                continue
            sa, sb, d = summarize(a), summarize(b), paired_runs(a, b)
            cell = DASH
            if "diff" in d:
                cell = (
                    f"{d['diff']:+.2f} [{d['lo']:+.2f}, {d['hi']:+.2f}]{SIGNIFICANT if d['significant'] else ''}"
                    f" ({int(d['seeds'])})"
                )
            rows.append(
                [
                    modality,
                    step,
                    titles[step],
                    _acc_cell(sb["mean"], sb["std"], sb["n"], sb["expected"]),
                    _acc_cell(sa["mean"], sa["std"], sa["n"], sa["expected"]),
                    cell,
                ]
            )
            data.append(
                {
                    "modality": modality,
                    "step": step,
                    "mae_mean": sb["mean"],
                    "mae_std": sb["std"],
                    "mae_n": sb["n"],
                    "scratch_mean": sa["mean"],
                    "scratch_std": sa["std"],
                    "scratch_n": sa["n"],
                    "seeds": d["seeds"],
                    "diff": d.get("diff", np.nan),
                    "diff_lo": d.get("lo", np.nan),
                    "diff_hi": d.get("hi", np.nan),
                    "diff_p": d.get("p", np.nan),
                    "significant": d.get("significant"),
                }
            )
    both = pd.concat([mae, scratch])
    steps = "the supervised baseline (`sup`) trains from scratch in both grids: its row compares two runs of one recipe"
    return Table(
        name=name,
        title=f"MAE + finetuning vs from scratch, per Table-1 step (paper App. B){_scope(both)}",
        caption=[*describe_runs(both)],
        groups=[("", len(rows[0]) if rows else 6)],
        columns=["modality", "step", "setting", "MAE + finetune", "from scratch", "Δ MAE − scratch"],
        align="lllrrr",
        rows=rows,
        data=pd.DataFrame(
            data,
            columns=[
                "modality",
                "step",
                "mae_mean",
                "mae_std",
                "mae_n",
                "scratch_mean",
                "scratch_std",
                "scratch_n",
                "seeds",
                "diff",
                "diff_lo",
                "diff_hi",
                "diff_p",
                "significant",
            ],
        ),
        formats={"mae_n": ".0f", "scratch_n": ".0f", "seeds": ".0f", "diff_p": ".3g"},
        notes=[
            f"MAE + finetune: the Table-1 grid's runs; from scratch: the Appendix-B grid's runs of the same model "
            f"and as many passes over the data; {steps} (Δ 0 when the training is deterministic).",
            f"Δ MAE − scratch: top-1 after MAE minus from scratch, in points, on the same test images, seeds paired "
            f"by seed number and pooled ((k): seeds in both); [lo, hi]: 95% percentile paired bootstrap over test "
            f"images ({N_BOOT:,} resamples); {SIGNIFICANT}: the interval excludes 0. It covers test-set sampling "
            f"only, not training noise across seeds. The CSV adds the exact McNemar p (`diff_p`).",
        ],
        missing=_missing(both),
    )


def _quote(note: Any) -> str:
    """The paper's wording inside a note (the text between single quotes), for footnotes."""
    match = re.search(r"'(.+)'", str(note))
    return match.group(1) if match else str(note)


# ---- Table 2 ----------------------------------------------------------------------------------------------------


def table2_frame(recs: Records, runs: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Per model size and modality: our params/GMACs (model_stats.json), accuracy over seeds and best-batch speed,
    beside the paper's Table 2/4/8/16/17 numbers."""
    paper = recs.paper["table2"].set_index(["modality", "size"])
    keys = [
        (m, s)
        for m in ("image", "video")
        for s in SIZES
        if (m, s) in paper.index or ((runs["modality"] == m) & (runs["size"] == s)).any()
    ]
    names = [f"hiera_{s}_{RES[m]}" for m, s in keys]
    counts = model_counts(names)
    captions = []
    speed: dict[tuple[str, str], dict | None] = {}
    devices: dict[str, str | None] = {}
    for modality in ("image", "video"):
        mine = runs[runs["modality"] == modality]
        full = {(m, s): n for (m, s), n in zip(keys, names) if m == modality and (runs.empty or len(mine))}
        trained = {(modality, s): v for s, v in _first_variant(mine, "size").items()}
        found, caption, device = speeds_for(recs.speed, mine, trained, full, f"{modality} {SPEED_UNIT[modality]}")
        speed.update(found)
        if caption:
            captions.append(caption)
            devices[modality] = device
    rows = []
    for (modality, size), name in zip(keys, names):
        p = paper.loc[(modality, size)] if (modality, size) in paper.index else None
        acc = summarize(runs[(runs["modality"] == modality) & (runs["size"] == size)])
        count, best = counts[name], speed.get((modality, size))
        rows.append(
            {
                "model": f"Hiera-{SIZE_LABELS[size]}",
                "modality": modality,
                "size": size,
                "variant": name,
                "params_m": count[0] if count else np.nan,
                "params_m_paper": p["params_m"] if p is not None else np.nan,
                "gmacs": count[1] if count else np.nan,
                "flops_g_paper": p["flops_g"] if p is not None else np.nan,
                "acc_mean": acc["mean"],
                "acc_std": acc["std"],
                "acc_n": acc["n"],
                "acc_expected": acc["expected"],
                "acc_paper": p["acc"] if p is not None else np.nan,
                "speed": best["samples_per_s"] if best else np.nan,
                "speed_batch": best["batch"] if best else np.nan,
                "speed_paper": p["speed"] if p is not None else np.nan,
                "speed_unit": SPEED_UNIT[modality],
                "speed_device": devices.get(modality) if best else None,
            }
        )
    return pd.DataFrame(rows), captions


def table2(recs: Records, name: str, runs: pd.DataFrame) -> Table:
    data, speed_captions = table2_frame(recs, runs)
    rows = []
    for d in data.to_dict("records"):
        rows.append(
            [
                d["model"],
                "16×224²" if d["modality"] == "video" else "224²",
                _f(d["params_m"], ".2f"),
                _f(d["params_m_paper"], ".0f"),
                _f(d["gmacs"], ".2f"),
                _f(d["flops_g_paper"], ".0f"),
                _acc_cell(d["acc_mean"], d["acc_std"], d["acc_n"], d["acc_expected"]),
                _f(d["acc_paper"], ".1f"),
                _f(d["speed"], ".1f"),
                _f(d["speed_paper"], ".0f" if d["modality"] == "image" else ".1f"),
                d["speed_unit"],
            ]
        )
    caption = [
        f"Paper: params and FLOPs (multiply-accumulates) from Table 2 (images) and Table 4 (video, per view), rounded "
        f"by the paper; top-1 from Table 8 ({PAPER_DATA['image']}) and Table 4 ({PAPER_DATA['video']}, 3×5 views); "
        f"speed from Tables 16/17 ({PAPER_SPEED}).",
        "Ours: params and fvcore GMACs at the full input (results/variants/model_stats.json).",
        *describe_runs(runs),
        *speed_captions,
    ]
    if runs.empty:
        caption.append("No Table-2 runs were found: accuracy columns of ours are empty.")
    title = f"Table 2: model sizes, ours vs paper{_scope(runs, sizes=False)}"
    return Table(
        name=name,
        title=title,
        caption=caption,
        groups=[("", 2), ("Params (M)", 2), ("GMACs", 2), ("Top-1 (%)", 2), ("Speed", 3)],
        columns=["model", "input", "ours", "paper", "ours", "paper", "ours", "paper", "ours", "paper", "unit"],
        align="llrrrrrrrrl",
        rows=rows,
        data=data,
        formats={
            "params_m": ".4f",
            "gmacs": ".4f",
            "params_m_paper": ".0f",
            "flops_g_paper": ".0f",
            "acc_n": ".0f",
            "acc_expected": ".0f",
            "acc_paper": ".1f",
            "speed": ".2f",
            "speed_batch": ".0f",
            "speed_paper": ".1f",
        },
        notes=[f"{DASH}: no number (no fresh count, run, or measurement; or the paper has none)."],
        missing=_missing(runs),
    )


# ---- Table 3 ----------------------------------------------------------------------------------------------------


def table3_frame(recs: Records, runs: pd.DataFrame) -> pd.DataFrame:
    """Per ablation setting: our accuracy over seeds for images and video beside the paper's. Runs whose ablation
    is `default` (the shared default model) fill every default row of their modality."""
    paper = recs.paper["table3"]
    ids = dict(zip(paper["ablation"], paper["ablation_id"]))
    texts = dict(zip(zip(paper["ablation"], paper["setting"]), paper["setting_text"]))
    ours = {(a, s) for a, s in zip(runs["ablation"], runs["setting"]) if isinstance(a, str) and a != "default"}
    keys = []  # paper rows in the paper's order, each ablation followed by the settings only we ran
    for ablation in [*dict.fromkeys(paper["ablation"]), *sorted({a for a, _ in ours} - set(ids))]:
        extra = sorted((s for a, s in ours if a == ablation and (a, s) not in texts), key=_setting_order)
        keys += [(ids.get(ablation, ""), ablation, s) for s in paper.loc[paper["ablation"] == ablation, "setting"]]
        keys += [(ids.get(ablation, ""), ablation, s) for s in extra]
    defaults = {
        m: set(zip(paper.loc[paper[f"{m}_default"], "ablation"], paper.loc[paper[f"{m}_default"], "setting"]))
        for m in ("image", "video")
    }
    rows = []
    for ablation_id, ablation, setting in keys:
        p = paper[(paper["ablation"] == ablation) & (paper["setting"] == setting)]
        row = {"ablation_id": ablation_id, "ablation": ablation, "setting": texts.get((ablation, setting), setting)}
        for modality in ("image", "video"):
            is_default = (ablation, setting) in defaults[modality]
            picked = (runs["modality"] == modality) & (
                ((runs["ablation"] == ablation) & (runs["setting"] == setting))
                | ((runs["ablation"] == "default") & is_default)
            )
            acc = summarize(runs[picked])
            row.update(
                {
                    f"{modality}_default": is_default,
                    f"{modality}_acc_mean": acc["mean"],
                    f"{modality}_acc_std": acc["std"],
                    f"{modality}_acc_n": acc["n"],
                    f"{modality}_acc_expected": acc["expected"],
                    f"{modality}_acc_paper": p[f"{modality}_acc"].iloc[0] if len(p) else np.nan,
                }
            )
        rows.append(row)
    return pd.DataFrame(rows)


def _setting_order(setting: str) -> tuple:
    try:
        return (0, float(setting), "")
    except ValueError:
        return (1, 0.0, setting)


def table3(recs: Records, name: str, runs: pd.DataFrame) -> Table:
    data = table3_frame(recs, runs)
    rows = []
    for d in data.to_dict("records"):
        default = {(True, True): "both", (True, False): "image", (False, True): "video"}.get(
            (d["image_default"], d["video_default"]), ""
        )
        label = f"({d['ablation_id']}) {d['ablation']}" if d["ablation_id"] else d["ablation"]
        rows.append(
            [
                label,
                d["setting"],
                default,
                *(
                    c
                    for m in ("image", "video")
                    for c in (
                        _acc_cell(d[f"{m}_acc_mean"], d[f"{m}_acc_std"], d[f"{m}_acc_n"], d[f"{m}_acc_expected"]),
                        _f(d[f"{m}_acc_paper"], ".1f"),
                    )
                ),
            ]
        )
    caption = [
        f"Paper (Table 3): MAE ablations with Hiera-L, 400 ({PAPER_DATA['image']}) / 800 ({PAPER_DATA['video']}) "
        "pretraining epochs + 50 finetuning, top-1 (%); defaults (gray in the paper) as inferred in "
        "results/paper/README.md.",
        *describe_runs(runs),
        "Accuracy: mean ± std over seeds (n); (k/n): only k of n seeds finished.",
    ]
    title = f"Table 3: MAE ablations, ours vs paper{_scope(runs)}"
    return Table(
        name=name,
        title=title,
        caption=caption,
        groups=[("", 3), ("Image", 2), ("Video", 2)],
        columns=["ablation", "setting", "default", "ours", "paper", "ours", "paper"],
        align="lllrrrr",
        rows=rows,
        data=data,
        formats={c: ".0f" for c in data.columns if c.endswith(("_n", "_expected"))},
        notes=[
            "default: the paper's default for that modality (runs with ablation `default` fill these rows).",
            f"{DASH}: no number (see the missing runs, or the paper has none).",
        ],
        missing=_missing(runs),
    )


# ---- other grids (smoke tests, demos, Appendix B) ---------------------------------------------------------------


def runs_table(recs: Records, grid: str, runs: pd.DataFrame) -> Table:
    """Accuracy per distinct configuration of a grid that has no paper table to sit beside."""
    keys = ["modality", "variant", "step", "size", "dataset", "ablation", "setting"]
    frame = runs.assign(**{k: runs[k].fillna("") for k in keys})
    order = {s: i for i, s in enumerate(STEP_IDS)}
    groups = sorted(
        frame.groupby(keys, sort=False), key=lambda kv: (kv[0][0], order.get(kv[0][2], len(order)), *map(str, kv[0]))
    )
    rows, data = [], []
    for key, d in groups:
        acc = summarize(d)
        info = dict(zip(keys, key))
        data.append(
            {**info, "acc_mean": acc["mean"], "acc_std": acc["std"], "acc_n": acc["n"], "acc_expected": acc["expected"]}
        )
        setting = f"{info['ablation']}={info['setting']}" if info["ablation"] else ""
        rows.append(
            [
                info["modality"],
                info["variant"],
                info["step"] or DASH,
                info["size"],
                DATASET_LABELS.get(info["dataset"], info["dataset"]),
                setting or DASH,
                _acc_cell(acc["mean"], acc["std"], acc["n"], acc["expected"]),
            ]
        )
    tables = sorted(set(runs["table"]))
    return Table(
        name=f"runs-{grid}",
        title=f"Runs of grid `{grid}` (table {', '.join(tables)})",
        caption=[*describe_runs(runs), "Accuracy: mean ± std over seeds (n); (k/n): only k of n seeds finished."],
        groups=[("", 7)],
        columns=["modality", "variant", "step", "size", "dataset", "setting", "top-1 ours"],
        align="llllllr",
        rows=rows,
        data=pd.DataFrame(data),
        formats={"acc_n": ".0f", "acc_expected": ".0f"},
        missing=_missing(runs),
    )


# ---- speed tables -----------------------------------------------------------------------------------------------


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "_", str(text).lower()).strip("_")


def _speed_sort_key(r: dict) -> tuple:
    size = LABEL_ORDER.index(r["size"]) if r["size"] in LABEL_ORDER else len(LABEL_ORDER)
    step = STEP_IDS.index(r["step"]) if r["step"] in STEP_IDS else len(STEP_IDS)
    sep = {"on": 0, None: 1, "off": 2}.get(r["separate_and_pad"], 3)
    return (r["modality"] != "image", size, step, r["variant"], IMPL_ORDER.get(r["impl"], 9), r["model"], sep)


def _oom_note(d: dict, oom_stage: str | None) -> str:
    """The note under a speed table for a model that ran out of memory (records before `oom_stage`: no stage)."""
    name = f"`{d['variant']}` ({d['impl']})"
    if oom_stage == "build":
        return f"Out of memory: {name} while building the model on the device; not measured."
    stage = f" ({oom_stage})" if oom_stage else ""
    return f"Out of memory: {name} at batch {int(d['oom_at'])}{stage}, where its sweep stopped."


def speed_tables(recs: Records) -> list[Table]:
    """One table per measurement condition (device, mode, precision, attention, compile, protocol, torch): every
    model measured, at its best batch."""
    speed = recs.speed
    out = []
    for cond, group in speed.groupby(list(CONDITION), sort=True):
        c = dict(zip(CONDITION, cond))
        models, stages = [], {}
        for key, d in group.groupby(
            ["variant", "impl", "model", "separate_and_pad", "overrides"], dropna=False, sort=True
        ):
            variant, impl, model, sep, overrides = key
            sep = None if not isinstance(sep, str) else sep
            first = d.iloc[0]
            # separate-and-pad on and off are separate rows here, so best_speed must not prefer one of them
            best = best_speed(d.assign(separate_and_pad=None))
            failed = d[d["oom"] & d["batch_size"].isna()]  # out-of-memory records: nothing ran
            oom = failed["requested_batch"]
            oom_stage = failed.loc[oom.idxmin(), "oom_stage"] if len(oom) else None
            row = {
                "variant": variant,
                "step": first["step"],
                "size": first["size"],
                "modality": first["modality"],
                "impl": impl,
                "model": model,
                "separate_and_pad": sep,
                "overrides": overrides,
                "best_batch": best["batch"] if best else np.nan,
                "samples_per_s": best["samples_per_s"] if best else np.nan,
                "runs": best["n"] if best else 0,
                "samples_per_s_min": best["min"] if best else np.nan,
                "samples_per_s_max": best["max"] if best else np.nan,
                "batches": " ".join(str(int(b)) for b in sorted(set(d["batch_size"].dropna()))),
                "kernel": (
                    best["rows"]["attn_backends"].dropna().iloc[0]
                    if best and best["rows"]["attn_backends"].notna().any()
                    else None
                ),
                "oom_at": int(oom.min()) if len(oom) else np.nan,
            }
            for name in (
                "ratio_vs_peer",
                "ratio_vs_official",
                "sep_pad_overhead",
                "tflops",
                "mfu",
                "gmacs",
                "params_m",
            ):
                values = best["rows"][name].dropna() if best else pd.Series(dtype=float)
                row[name] = float(values.mean()) if len(values) else np.nan
            models.append(row)
            if len(oom):  # not a column of the table's data (its CSV): said in a note
                stages[(variant, impl, model, sep, overrides)] = oom_stage if isinstance(oom_stage, str) else None
        models.sort(key=_speed_sort_key)
        data = pd.DataFrame(models)
        rows = []
        for d in models:
            impl = "ours" if d["impl"] == "hiera-study" else f"{d['impl']} `{d['model']}`"
            name = d["variant"] + ("" if d["overrides"] == "{}" else f" {d['overrides']}")
            rows.append(
                [
                    name,
                    impl,
                    d["separate_and_pad"] or DASH,
                    _f(d["best_batch"], ".0f"),
                    _f(d["samples_per_s"], ".1f"),
                    f"{d['samples_per_s_min']:.1f}–{d['samples_per_s_max']:.1f}" if d["runs"] else DASH,
                    _f(d["ratio_vs_peer"], ".2f"),
                    _f(d["ratio_vs_official"], ".2f"),
                    _f(d["sep_pad_overhead"], ".2f"),
                    _f(d["tflops"], ".1f"),
                    _f(d["mfu"], ".3f"),
                    d["kernel"] or DASH,
                ]
            )
        notes = [
            "samples/s: median over trials, averaged over repeated runs at the best batch; min–max: the "
            "spread over trials.",
            "×timm, ×official: ours over the peer at the same batch in the same run; "
            "sep-pad cost: dense / separate-and-pad speed (rows a–c).",
            "MFU: achieved / datasheet peak TFLOP/s (2 × GMACs × samples/s; ×3 for training modes).",
            "kernel: the attention kernels "
            "that ran, read from the profiler (`explicit`: matmul + softmax, no SDPA call; `math`: SDPA's "
            "unfused fallback; `flash`, `efficient`, `cudnn`, `cpu_flash`: fused; — : not recorded).",
        ]
        ooms = [
            _oom_note(d, stages.get(tuple(d[k] for k in ("variant", "impl", "model", "separate_and_pad", "overrides"))))
            for d in models
            if _num(d["oom_at"])
        ]
        name = (
            "speed-"
            + "-".join(slug(x) for x in (c["device"], c["mode"], c["precision"], c["attn"]))
            + ("-compile" if c["compile"] else "")
            + f"-{slug(c['protocol'])}-pt{slug(str(c['torch']).split('+')[0])}"
        )
        out.append(
            Table(
                name=name,
                title=f"Speed: {c['device']}, {c['mode']}, {c['precision']}, {c['attn']} attention"
                f"{', compiled' if c['compile'] else ''} (protocol {c['protocol']})",
                caption=[
                    describe_condition(group, cond, "every model measured"),
                    f"Sources: {', '.join(sorted({s.rsplit(':', 1)[0] for s in group['source']}))}.",
                ],
                groups=[("", 12)],
                columns=[
                    "variant",
                    "impl",
                    "sep-pad",
                    "batch",
                    "samples/s",
                    "min–max",
                    "×timm",
                    "×official",
                    "sep-pad cost",
                    "TFLOP/s",
                    "MFU",
                    "kernel",
                ],
                align="lllrrrrrrrrl",
                rows=rows,
                data=data,
                formats={
                    "best_batch": ".0f",
                    "samples_per_s": ".2f",
                    "samples_per_s_min": ".2f",
                    "samples_per_s_max": ".2f",
                    "oom_at": ".0f",
                    "runs": ".0f",
                },
                notes=notes + ooms,
            )
        )
    return out


# ---- breakdown tables -------------------------------------------------------------------------------------------

BREAKDOWN_CONDITION = ("device", "mode", "precision", "attn", "torch")
# Within a condition, rows are comparable only at one ladder, batch and model (overrides: the proxy models).
BREAKDOWN_SPLIT = ("size", "modality", "batch_size", "input_size", "overrides")
SIZE_KEYS = {label: key for key, label in SIZE_LABELS.items()}


@dataclass
class BreakdownGroup:
    """The breakdown records of one ladder under one condition, reduced to one row per measured step."""

    name: str  # file stem shared by the table and the figure
    cond: dict[str, Any]  # BREAKDOWN_CONDITION + BREAKDOWN_SPLIT values
    rows: pd.DataFrame  # per step, ladder order: step, variant, n, <family>_ms, total_ms, wall_step_ms, came_from(_ms)
    records: pd.DataFrame  # the records behind the rows
    outside: list[str]  # variants measured under the same condition that are not steps of a ladder


def came_from(rows: pd.DataFrame) -> list[tuple[str | None, float]]:
    """Per row, the family whose time fell most from the previous row and by how much (ms); (None, nan) for the
    first row and where no family got faster by more than 0.1% of the previous row's total (rounding noise, e.g.
    a few microseconds of `other`). Ties go to the first family in display order."""
    out: list[tuple[str | None, float]] = [(None, np.nan)]
    columns = [f"{f}_ms" for f in BREAKDOWN_FAMILIES]
    for i in range(1, len(rows)):
        before = rows.iloc[i - 1][columns].to_numpy(float)
        drops = before - rows.iloc[i][columns].to_numpy(float)
        best = int(np.argmax(drops))
        found = drops[best] > 1e-3 * before.sum()
        out.append((BREAKDOWN_FAMILIES[best], float(drops[best])) if found else (None, np.nan))
    return out


def breakdown_groups(breakdown: pd.DataFrame) -> list[BreakdownGroup]:
    """The breakdown records split by condition and ladder, in a fixed order (condition, then size and modality)."""
    if breakdown.empty:
        return []
    keys = [*BREAKDOWN_CONDITION, *BREAKDOWN_SPLIT]
    ladders = {v for size in SIZES for modality in RES for v in _ladder_names(size, modality).values()}
    # per condition, the variants that are no ladder step (mvitv2_*, mae_hiera_*): named under its tables
    outside = {
        cond: sorted(set(d["variant"]) - ladders) for cond, d in breakdown.groupby(list(BREAKDOWN_CONDITION), sort=True)
    }
    out = []
    for key, group in breakdown.groupby(keys, sort=True):
        c = dict(zip(keys, key))
        size = SIZE_KEYS.get(c["size"])
        ladder = _ladder_names(size, c["modality"]) if size else {}
        in_ladder = group["variant"].isin(list(ladder.values()))
        if not in_ladder.any():
            continue
        rows = []
        for step, variant in ladder.items():
            d = group[group["variant"] == variant]
            if d.empty:
                continue
            row = {"step": step, "variant": variant, "n": len(d)}
            for name in (*(f"{f}_ms" for f in BREAKDOWN_FAMILIES), "total_ms", "wall_step_ms", "profiled_step_ms"):
                row[name] = float(d[name].astype(float).mean())
            rows.append(row)
        rows = pd.DataFrame(rows)
        found = came_from(rows)
        rows["came_from"] = [f for f, _ in found]
        rows["came_from_ms"] = [ms for _, ms in found]
        name = (
            "breakdown-"
            + "-".join(slug(c[k]) for k in ("device", "mode", "precision", "attn"))
            + f"-pt{slug(str(c['torch']).split('+')[0])}-{size}-{c['modality']}-bs{int(c['batch_size'])}"
        )
        if c["overrides"] != "{}":  # a proxy model: its own table, named by a stable digest of the overrides
            name += "-o" + hashlib.sha1(c["overrides"].encode()).hexdigest()[:8]
        out.append(BreakdownGroup(name, c, rows, group[in_ladder], outside[key[: len(BREAKDOWN_CONDITION)]]))
    return out


def describe_breakdown(g: BreakdownGroup) -> list[str]:
    """Caption sentences of a breakdown table or figure: conditions, what the times are, dates, sources."""
    c, recs = g.cond, g.records
    dates = _range(sorted(s[:10] for s in recs["date"]))
    drivers = ", ".join(sorted({d for d in recs["driver"] if isinstance(d, str)})) or "none"
    shas = (
        ", ".join(
            sorted(
                {
                    s[:7] + ("+dirty" if dirty is True else "")
                    for s, dirty in zip(recs["git_sha"], recs["git_dirty"])
                    if isinstance(s, str)
                }
            )
        )
        or "unknown"
    )
    model = f"the Hiera-{c['size']} {c['modality']} ladder"
    if c["overrides"] != "{}":
        model += f" shrunk to a proxy ({c['overrides']})"
    steps = _range(recs["profiled_steps"])
    out = [
        f"Ours: {model} at {resolution_label(c['input_size'])}, batch {int(c['batch_size'])}; {c['device']} "
        f"(driver {drivers}), torch {c['torch']}, mode {c['mode']}, {c['precision']}, {c['attn']} attention, no "
        f"compile; measured {dates}, git {shas}."
    ]
    sources = set(recs["time_source"])
    if sources == {"cpu self time"}:
        out.append(
            f"CPU numbers: CPU self time on {c['device']} with {_range(recs['cpu_threads'])} threads, where "
            "a CPU step's time goes; not GPU kernel time, and no prediction of the paper's A100 speeds."
        )
    else:
        out.append(
            "GPU numbers: CUDA kernel time, each kernel charged to the op that launched it; host-side launch "
            "overhead is not in the families (wall is the synchronised step time)."
        )
    out.append(
        f"Columns: milliseconds per step, averaged over {steps} profiled steps (and over repeated records of "
        f"a step); sources: {', '.join(sorted({s.rsplit(':', 1)[0] for s in recs['source']}))}."
    )
    return out


def breakdown_tables(recs: Records) -> list[Table]:
    """One table per breakdown condition and ladder: rows the measured ladder steps, columns ms per op family
    (those with time somewhere), the total, the unprofiled wall time, and where the speed-up came from."""
    out = []
    for g in breakdown_groups(recs.breakdown):
        c, d = g.cond, g.rows
        shown = [f for f in BREAKDOWN_FAMILIES if (d[f"{f}_ms"] > 0).any()]
        rows = []
        for r in d.to_dict("records"):
            origin = f"{r['came_from']} (-{r['came_from_ms']:.2f} ms)" if isinstance(r["came_from"], str) else DASH
            rows.append(
                [
                    r["step"],
                    *(_f(r[f"{f}_ms"], ".2f") for f in shown),
                    _f(r["total_ms"], ".2f"),
                    _f(r["wall_step_ms"], ".2f"),
                    origin,
                ]
            )
        notes = [
            "Each op's self time goes to the innermost op-family range around it (`hiera/model/layers/scope.py`): a "
            "conv pool's LayerNorm counts as q_pool / kv_pool, not norm. other: ops under no range (the loss, "
            "...); backward: the autograd backward; optimizer: AdamW step, gradient scaling and zeroing.",
            "total: sum of the families, under the profiler; wall: the step timed without the profiler (scopes "
            "off), so the profiler's overhead shows as total vs wall.",
            "speed-up came from: the family whose time fell most from the previous measured row (ms saved).",
        ]
        if g.outside:
            notes.append(
                f"Measured under the same condition but not a ladder step (not shown): "
                f"{', '.join(f'`{v}`' for v in g.outside)}."
            )
        data = d[
            [
                "step",
                "variant",
                "n",
                *(f"{f}_ms" for f in BREAKDOWN_FAMILIES),
                "total_ms",
                "wall_step_ms",
                "profiled_step_ms",
                "came_from",
                "came_from_ms",
            ]
        ]
        out.append(
            Table(
                name=g.name,
                title=f"Where the time goes: Hiera-{c['size']} {c['modality']} ladder"
                f"{' (proxy)' if c['overrides'] != '{}' else ''}, {c['device']}, {c['mode']}, {c['precision']}, "
                f"{c['attn']} attention, batch {int(c['batch_size'])}",
                caption=describe_breakdown(g),
                groups=[("", len(shown) + 4)],
                columns=["step", *shown, "total", "wall", "speed-up came from"],
                align="l" + "r" * (len(shown) + 2) + "l",
                rows=rows,
                data=data,
                formats={"n": ".0f", **{f"{f}_ms": ".4f" for f in BREAKDOWN_FAMILIES}},
                notes=notes,
            )
        )
    return out


# ---- all tables -------------------------------------------------------------------------------------------------

# Kinds of run tables (a record's `table`): the paper's three, the Quickstart demo, which runs the Table-1 ladder
# on the embedded proxies, and Appendix B's ladder trained from scratch; the last two are shown in Table 1's layout
# (with its statistics per step). Grids of any other kind (smoke, ...) get a plain `runs-<grid>` table.
PAPER_KINDS = ("table1", "table2", "table3")
LADDER_KINDS = ("table1", "demo", "appendix_b")


def context_name(suffix: str, part: pd.DataFrame) -> str:
    """One name for a `split_contexts` part whatever the table kind: "proxy[-size]" or "full[-size]" (table1's
    suffixes carry "-proxy", appendix_b's do not), so the two ladders of one context can be paired."""
    return ("proxy" if part["proxy"].any() else "full") + suffix.removeprefix("-proxy")


def split_contexts(runs: pd.DataFrame, kind: str) -> list[tuple[str, pd.DataFrame]]:
    """The runs of one table kind, pooled over grids (Table 1's images and video are separate grids) and split
    where numbers must not be averaged together: proxy vs full datasets (suffix `-proxy` on a paper table) and,
    except in Table 2 whose rows are sizes, model sizes (suffix `-<size>` when a kind has several)."""
    out = []
    for proxy in (False, True):
        part = runs[runs["proxy"] == proxy]
        if part.empty:
            continue
        suffix = "-proxy" if proxy and kind in PAPER_KINDS else ""
        if kind != "table2" and part["size"].nunique() > 1:
            out += [(f"{suffix}-{size}", d) for size, d in part.groupby("size", sort=True)]
        else:
            out.append((suffix, part))
    return out


def build_tables(recs: Records) -> list[Table]:
    """Every table the records support, in a fixed order: Tables 1-3 (pooled over grids, split by context; Tables
    1 and 2 also without runs, from the paper and our speeds and counts), the demo, other grids, one speed table per
    measurement condition, then one breakdown table per breakdown condition and ladder."""
    runs = recs.runs
    empty = runs.iloc[0:0]
    out: list[Table] = []
    for kind, build in (("table1", table1), ("table2", table2), ("table3", table3)):
        parts = split_contexts(runs[runs["table"] == kind], kind)
        if kind != "table3" and not any(not suffix.startswith("-proxy") for suffix, _ in parts):
            parts.insert(0, ("", empty))  # the full-data table always exists: our speeds and counts vs the paper
        out += [build(recs, kind + suffix, part) for suffix, part in parts]
    out += [
        table1(recs, "demo" + suffix, part, what="Demo (Table 1 layout)")
        for suffix, part in split_contexts(runs[runs["table"] == "demo"], "demo")
    ]
    scratch = split_contexts(runs[runs["table"] == "appendix_b"], "appendix_b")
    out += [
        table1(
            recs,
            "appendix_b" + suffix,
            part,
            what="Appendix B (the ladder trained from scratch, Table 1 layout)",
            paper_acc=False,
        )
        for suffix, part in scratch
    ]
    # the two ladders side by side where both ran in one context
    mae = {context_name(s, part): part for s, part in split_contexts(runs[runs["table"] == "table1"], "table1")}
    for suffix, part in scratch:
        context = context_name(suffix, part)
        if context in mae:
            label = "-" + context if context.startswith("proxy") else context.removeprefix("full")
            table = mae_vs_scratch("mae_vs_scratch" + label, mae[context], part)
            if table.rows:
                out.append(table)
    other = runs[~runs["table"].isin(PAPER_KINDS + LADDER_KINDS)]
    out += [runs_table(recs, grid, d) for grid, d in other.groupby("grid", sort=True)]
    return out + speed_tables(recs) + breakdown_tables(recs)


# ---- rendering ----------------------------------------------------------------------------------------------------


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def render_markdown(t: Table) -> str:
    """GitHub Markdown: a heading, the caption, the table, notes and the missing-runs list."""
    labels, i = [], 0
    for group, span in t.groups:
        for c in t.columns[i : i + span]:
            labels.append(f"{group} {c}" if group else c)
        i += span
    lines = [
        f"### {t.title}",
        "",
        " ".join(t.caption),
        "",
        "| " + " | ".join(map(_md_cell, labels)) + " |",
        "|" + "|".join("---:" if a == "r" else ":---" for a in t.align) + "|",
    ]
    lines += ["| " + " | ".join(map(_md_cell, r)) + " |" for r in t.rows]
    if t.notes:
        lines += ["", *(f"- {n}" for n in t.notes)]
    if t.missing:
        lines += ["", f"Missing ({len(t.missing)}):", "", *(f"- {m}" for m in t.missing)]
    return "\n".join(lines) + "\n"


_TEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
    "×": r"$\times$",
    "—": "---",
    "–": "--",
    "²": r"$^2$",
    "†": r"$^\dagger$",
    "*": r"$^*$",
    "`": "",
    "|": r"\textbar{}",
    "“": "``",
    "”": "''",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "Δ": r"$\Delta$",
    "‡": r"$^\ddagger$",
    "−": r"$-$",
}


def tex(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in str(text))


def render_latex(t: Table) -> str:
    """A booktabs `table` float: spanning group headers with cmidrules, caption and label, notes below."""
    lines = [
        f"% generated by `hiera-study tables` from records; do not edit ({t.name})",
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        rf"\caption{{{tex(t.title)}. {tex(' '.join(t.caption))}}}",
        rf"\label{{tab:{t.name}}}",
        rf"\begin{{tabular}}{{{t.align}}}",
        r"\toprule",
    ]
    if any(g for g, _ in t.groups):
        cells, rules, start = [], [], 1
        for group, span in t.groups:
            cells.append(rf"\multicolumn{{{span}}}{{c}}{{{tex(group)}}}" if group and span > 1 else tex(group))
            if group:
                rules.append(rf"\cmidrule(lr){{{start}-{start + span - 1}}}")
            start += span
        lines += [" & ".join(cells) + r" \\", "".join(rules)]
    lines += [" & ".join(tex(c) for c in t.columns) + r" \\", r"\midrule"]
    lines += [" & ".join(tex(c) for c in r) + r" \\" for r in t.rows]
    lines += [r"\bottomrule", r"\end{tabular}"]
    extra = t.notes + ([f"Missing ({len(t.missing)}): " + "; ".join(t.missing)] if t.missing else [])
    if extra:
        lines += [r"\par\smallskip\footnotesize", *(tex(n) + r"\par" for n in extra)]
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def render_csv(t: Table) -> str:
    """The numbers of the table, one row per table row, fixed float formats, empty for no number."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(t.data.columns)
    for row in t.data.itertuples(index=False):
        out = []
        for name, value in zip(t.data.columns, row):
            if value is None or (isinstance(value, float) and math.isnan(value)):
                out.append("")
            elif isinstance(value, (bool, np.bool_)):
                out.append("true" if value else "false")
            elif isinstance(value, (int, np.integer)) and name not in t.formats:
                out.append(str(int(value)))
            elif isinstance(value, (int, float, np.integer, np.floating)):
                out.append(format(float(value), t.formats.get(name, ".4f")))
            else:
                out.append(str(value))
        writer.writerow(out)
    return buf.getvalue()


def combined_markdown(tables: Sequence[Table], command: str) -> str:
    """All tables as one Markdown document (what `update_readme` inserts), with the command that made it."""
    head = (
        f"<!-- generated by `{command}` (into a README between these markers: add `--readme <file>`); do not "
        "edit by hand -->\n"
    )
    return head + "\n".join("\n" + render_markdown(t) for t in tables)


def write_tables(
    recs: Records | None = None,
    out_dir: Path | str | None = None,
    command: str = "hiera-study tables",
    *,
    records_dir: Path | str | Sequence[Path | str] | None = None,
    speed_dir: Path | str | Sequence[Path | str] | None = None,
    paper_dir: Path | str | None = None,
    grid: str = "*",
    breakdown_dir: Path | str | Sequence[Path | str] | None = None,
) -> list[Path]:
    """Write every table as `<name>.md`, `<name>.tex`, `<name>.csv` plus `tables.md` (all Markdown) into `out_dir`.

    Args:
        recs: loaded records; when None they are loaded from `records_dir`, `speed_dir`, `paper_dir` (`grid`) and
            `breakdown_dir` (`()` for none); None: the project's default locations (`out_dir`: results/tables).
        command: the command line named in `tables.md` as the way to regenerate it.
    Returns:
        The files written. Files of tables that no longer exist are left alone.
    """
    out_dir = at_root(*TABLES_DIR) if out_dir is None else Path(out_dir)
    recs = recs if recs is not None else load_all(records_dir, speed_dir, paper_dir, grid, breakdown_dir)
    tables = build_tables(recs)
    written = []
    for t in tables:
        for suffix, text in (("md", render_markdown(t)), ("tex", render_latex(t)), ("csv", render_csv(t))):
            path = out_dir / f"{t.name}.{suffix}"
            atomic_write_text(path, text)
            written.append(path)
    index = out_dir / "tables.md"
    atomic_write_text(index, combined_markdown(tables, command))
    return [*written, index]


def update_readme(readme_path: Path | str, markdown: str) -> None:
    """Replace the text between `<!-- tables:begin -->` and `<!-- tables:end -->` in a README with `markdown`.
    Without both markers (in that order) nothing is written and a one-line ValueError says what to add."""
    path = Path(readme_path)
    text = path.read_text()
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < 0 or end < start:
        raise ValueError(f"{path}: no '{BEGIN}' ... '{END}' markers (in that order); add them where the tables go")
    new = text[: start + len(BEGIN)] + "\n" + markdown.rstrip("\n") + "\n" + text[end:]
    if new != text:
        atomic_write_text(path, new)
