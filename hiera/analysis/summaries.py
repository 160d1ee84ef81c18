"""The numbers behind the paper's tables and figures, from the run, speed and breakdown frames
(`hiera.analysis.frames`): accuracy over seeds with its 95% CI, paired differences on the same test images, the
speed of each step under one measurement condition, the per-step frames of Tables 1-3, the breakdown groups, and
the captions that name the conditions of every number. No formatting into cells here (`hiera.analysis.tables`),
no drawing (`hiera.analysis.plots`).

Length (~650 lines): the Table-1/2/3 frames, the speed selection and the breakdown groups share the helpers that
pick one measurement condition and summarise seeds; they are the data contract of both renderers.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from hiera.analysis.frames import (
    BREAKDOWN_FAMILIES,
    Records,
    model_counts,
)
from hiera.analysis.stats import mean_ci, paired_difference
from hiera.model.ladder import LADDER, SIZES, STEP_IDS, ladder_name

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


# ---- small helpers ----------------------------------------------------------------------------------------------


def _num(x: Any) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x))


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
            sizes = sorted(set(d["size_key"]) - {"proxy"})  # "proxy": the grid's own small model, said already
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
    return {s.id: ladder_name(f"hiera_{size}_{RES[modality]}", s.slug) for s in LADDER}


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
        size = _speed_size(recs.speed, modality, sorted(set(mine["size_key"]) & set(SIZES)))
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


# ---- Table 2 ----------------------------------------------------------------------------------------------------


def table2_frame(recs: Records, runs: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Per model size and modality: our params/GMACs (model_stats.json), accuracy over seeds and best-batch speed,
    beside the paper's Table 2/4/8/16/17 numbers."""
    paper = recs.paper["table2"].set_index(["modality", "size"])
    keys = [
        (m, s)
        for m in ("image", "video")
        for s in SIZES
        if (m, s) in paper.index or ((runs["modality"] == m) & (runs["size_key"] == s)).any()
    ]
    names = [f"hiera_{s}_{RES[m]}" for m, s in keys]
    counts = model_counts(names)
    captions = []
    speed: dict[tuple[str, str], dict | None] = {}
    devices: dict[str, str | None] = {}
    for modality in ("image", "video"):
        mine = runs[runs["modality"] == modality]
        full = {(m, s): n for (m, s), n in zip(keys, names) if m == modality and (runs.empty or len(mine))}
        trained = {(modality, s): v for s, v in _first_variant(mine, "size_key").items()}
        found, caption, device = speeds_for(recs.speed, mine, trained, full, f"{modality} {SPEED_UNIT[modality]}")
        speed.update(found)
        if caption:
            captions.append(caption)
            devices[modality] = device
    rows = []
    for (modality, size), name in zip(keys, names):
        p = paper.loc[(modality, size)] if (modality, size) in paper.index else None
        acc = summarize(runs[(runs["modality"] == modality) & (runs["size_key"] == size)])
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


# ---- speed tables -----------------------------------------------------------------------------------------------


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "_", str(text).lower()).strip("_")


# ---- breakdown tables -------------------------------------------------------------------------------------------

BREAKDOWN_CONDITION = ("device", "mode", "precision", "attn", "torch")
# Within a condition, rows are comparable only at one ladder, batch and model (overrides: the proxy models).
BREAKDOWN_SPLIT = ("size_label", "modality", "batch_size", "input_size", "overrides")
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
        size = SIZE_KEYS.get(c["size_label"])
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
    model = f"the Hiera-{c['size_label']} {c['modality']} ladder"
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
        if kind != "table2" and part["size_key"].nunique() > 1:
            out += [(f"{suffix}-{size}", d) for size, d in part.groupby("size_key", sort=True)]
        else:
            out.append((suffix, part))
    return out
