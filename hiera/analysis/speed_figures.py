"""The speed figures (`hiera-study plots`): where Hiera's simplifications pay, ours beside the paper's.

- `speedup`: each Table-1 step's speed over the supervised MViTv2 baseline, images and video, ours vs paper;
- `acc_vs_speed`: top-1 against throughput per model size (paper Fig. 1 / Fig. 3 style; Tables 2, 4, 8, 16, 17);
- `ladders-<context>`: top-1 (95% CI over seeds) against throughput per Table-1 step, the ladder with MAE and from
  scratch on one plot (paper App. B's contrast);
- `model_size`: parameters and GMACs per size, ours vs the paper's Table 2 / Table 4;
- `batch-<condition>`: throughput against batch size (the paper reports the best batch; this shows the sweep);
- `breakdown-<condition>-<size>-<modality>-bs<batch>`: where a step's time goes, one stacked bar per Table-1 step,
  stacked by op family (`hiera-study bench --breakdown`).

Each figure is a pair: `*_data` (the numbers, what tests check) and `plot_*` (drawing, caption, `save`).
Length (~660 lines): six figure pairs that share how a speed is looked up for a run (`_speed_sources*`,
`speeds_for`) and must agree on it; the look is `figure_style.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd

from hiera.analysis.figure_style import (
    DOUBLE,
    FAMILY_COLORS,
    IMPL_DASHES,
    PAPER_HATCH,
    SINGLE,
    SIZE_COLORS,
    STEP_COLORS,
    STEP_LABELS,
    FigureInfo,
    mark_gap,
    new_figure,
    paper_legend,
    plain_log_ticks,
    record_sources,
    save,
)
from hiera.analysis.frames import (
    BREAKDOWN_FAMILIES,
    Records,
    model_counts,
)
from hiera.analysis.summaries import (
    CONDITION,
    DATASET_LABELS,
    LABEL_ORDER,
    PAPER_DATA,
    PAPER_SPEED,
    REF_ROW,
    RES,
    SIZE_LABELS,
    SPEED_COL,
    SPEED_UNIT,
    _first_variant,
    breakdown_groups,
    context_name,
    describe_breakdown,
    describe_runs,
    resolution_label,
    slug,
    speeds_for,
    split_contexts,
    summarize,
    table1_frame,
    table2_frame,
)
from hiera.model.ladder import SIZES, STEP_IDS

# ---- Table 1: per-step speed-up ---------------------------------------------------------------------------------


def speedup_data(recs: Records) -> tuple[pd.DataFrame, list[str]]:
    """Long frame (modality, step, source, speedup) of Table 1's speed-ups over row `sup`, and speed captions.

    Speeds of the models a Table-1 grid trained (else the demo's proxy ladder), else the full-size ladder."""
    runs = recs.runs.iloc[0:0]
    for table in ("table1", "demo"):
        parts = split_contexts(recs.runs[recs.runs["table"] == table], table)
        if parts:
            runs = parts[0][1]
            break
    frame, captions = table1_frame(recs, runs)
    rows = []
    for modality in ("image", "video"):
        for r in frame.itertuples(index=False):
            d = r._asdict()
            for source, col in (("ours", f"{modality}_speedup"), ("paper", f"{modality}_speedup_paper")):
                if not np.isnan(d[col]):
                    rows.append(
                        {
                            "modality": modality,
                            "step": d["row"],
                            "source": source,
                            "speedup": d[col],
                            "speed": d[f"{modality}_{SPEED_COL[modality]}" + ("_paper" if source == "paper" else "")],
                        }
                    )
    return pd.DataFrame(rows, columns=["modality", "step", "source", "speedup", "speed"]), captions


def plot_speedup(recs: Records, out_dir: Path) -> FigureInfo | str:
    data, captions = speedup_data(recs)
    ours = data[data["source"] == "ours"]
    if ours.empty or not (ours["step"] != REF_ROW).any():
        return "speedup: no speed records of a Table-1 ladder (with its `sup` row) to compare"
    modalities = [m for m in ("image", "video") if (ours["modality"] == m).any()]
    fig, axes = new_figure(DOUBLE if len(modalities) > 1 else SINGLE, 2.3, 1, len(modalities))
    width = 0.38
    for ax, modality in zip(axes[0], modalities):
        part = data[data["modality"] == modality]
        for i, step in enumerate(STEP_IDS):
            for source, dx in (("ours", -width / 2), ("paper", width / 2)):
                v = part[(part["step"] == step) & (part["source"] == source)]["speedup"]
                if len(v):
                    ax.bar(
                        i + dx,
                        float(v.iloc[0]),
                        width,
                        color=STEP_COLORS[step] if source == "ours" else "white",
                        edgecolor=STEP_COLORS[step] if source == "paper" else "0.2",
                        hatch=PAPER_HATCH if source == "paper" else None,
                        linewidth=0.6,
                    )
                else:
                    mark_gap(ax, i + dx, "not measured" if source == "ours" else "no paper row")
        ax.axhline(1.0, color="0.3", linewidth=0.6, zorder=0)
        ax.set_xticks(range(len(STEP_IDS)), STEP_IDS)
        ax.set_xlabel("Table 1 step")
        ax.set_ylabel(f"speed-up over {REF_ROW} (×, {SPEED_UNIT[modality]})")
        ax.set_title(f"{modality.capitalize()} speed-up over MViTv2 ({REF_ROW})")
        ax.set_xlim(-0.6, len(STEP_IDS) - 0.4)
        ax.grid(axis="x", visible=False)
    paper_legend(axes[0][0], "ours", "paper (A100 fp16)", loc="upper left")
    caption = (
        f"Speed of every Table-1 step over the supervised MViTv2 baseline (row {REF_ROW}), ours (solid) vs "
        f"the paper (hatched; Table 1, {PAPER_SPEED}); colour = step. "
        + " ".join(captions)
        + " Step mae has no paper number; rows mae and a-c include separate-and-pad, as the paper's speeds; "
        "'not measured': no speed record of ours for that step."
    )
    files = save(fig, out_dir, "speedup", caption)
    used = recs.speed[recs.speed["variant"].str.contains(r"_(?:224|16x224)(?:\.|$)", regex=True)]
    return FigureInfo("speedup", caption, [*record_sources(used), "results/paper/table1.csv"], data, files)


# ---- accuracy vs throughput (Fig. 1 style) ----------------------------------------------------------------------


def acc_speed_data(recs: Records) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Per size: (modality, size, source, acc, speed). Ours from Table-2 runs (full datasets when there are any,
    else the proxies; never both averaged) + speed records, paper from Table 2."""
    parts = split_contexts(recs.runs[recs.runs["table"] == "table2"], "table2")
    runs = parts[0][1] if parts else recs.runs.iloc[0:0]
    frame, captions = table2_frame(recs, runs)
    rows = []
    for d in frame.to_dict("records"):
        for source, acc, speed in (("ours", d["acc_mean"], d["speed"]), ("paper", d["acc_paper"], d["speed_paper"])):
            if not (np.isnan(acc) or np.isnan(speed)):
                rows.append(
                    {
                        "modality": d["modality"],
                        "size": d["size"],
                        "source": source,
                        "acc": acc,
                        "speed": speed,
                        "device": d["speed_device"] if source == "ours" else "A100 40GB",
                    }
                )
    columns = ["modality", "size", "source", "acc", "speed", "device"]
    return pd.DataFrame(rows, columns=columns), runs, captions


def plot_acc_vs_speed(recs: Records, out_dir: Path) -> FigureInfo | str:
    data, runs, captions = acc_speed_data(recs)
    ours = data[data["source"] == "ours"]
    if ours.empty:
        return "acc_vs_speed: no model size has both a finished Table-2 run and a speed record"
    proxy = bool(runs.loc[runs["status"] == "done", "proxy"].any())
    modalities = [m for m in ("image", "video") if (data["modality"] == m).any()]
    panels = [(m, "paper") for m in modalities] + (
        [(m, "ours") for m in modalities if (ours["modality"] == m).any()] if proxy else []
    )
    ncols = len(modalities)
    nrows = 2 if proxy else 1
    fig, axes = new_figure(DOUBLE, 2.3 * nrows, nrows, ncols)
    if proxy:  # an ours panel without points says why, rather than leaving a hole
        for modality in modalities:
            if (modality, "ours") not in panels:
                ax = axes[1][modalities.index(modality)]
                ax.axis("off")
                ax.text(
                    0.5,
                    0.5,
                    f"Ours, {modality}: no size with both a finished\nTable-2 run and a speed record",
                    ha="center",
                    va="center",
                    transform=ax.transAxes,
                    color="0.4",
                )
    for modality, which in panels:
        ax = axes[0 if which == "paper" else 1][modalities.index(modality)]
        sources = ["paper"] if which == "paper" else ["ours"]
        if not proxy and which == "paper":
            sources = ["paper", "ours"]  # same dataset: one panel, ours beside the paper
        for source in sources:
            part = data[(data["modality"] == modality) & (data["source"] == source)]
            part = part.assign(order=[list(SIZES).index(s) for s in part["size"]]).sort_values("order")
            dashes = "--" if source == "paper" else "-"
            ax.plot(part["speed"], part["acc"], dashes, color="0.45", linewidth=0.8, zorder=1)
            for r in part.itertuples():
                ax.scatter(
                    r.speed,
                    r.acc,
                    s=22,
                    zorder=2,
                    color=SIZE_COLORS[r.size] if source == "ours" else "white",
                    edgecolors=SIZE_COLORS[r.size],
                    linewidths=1.0,
                )
                ax.annotate(
                    SIZE_LABELS[r.size], (r.speed, r.acc), xytext=(3, 2), textcoords="offset points", fontsize=6
                )
        ax.set_xscale("log")
        plain_log_ticks(ax.xaxis)
        ax.set_xlabel(f"throughput ({SPEED_UNIT[modality]}, log scale)")
        ax.set_ylabel("top-1 (%)")
        if which == "paper":
            ax.set_title(f"Paper: Hiera, {PAPER_DATA[modality]}, A100 fp16")
        else:
            done = runs[(runs["modality"] == modality) & (runs["status"] == "done")]
            res = ", ".join(resolution_label(s) for s in sorted(set(done["input_size"])))
            dataset = DATASET_LABELS.get(done["dataset"].iloc[0], done["dataset"].iloc[0])
            devices = ", ".join(sorted(set(ours.loc[ours["modality"] == modality, "device"])))
            ax.set_title(f"Ours: top-1 on {dataset} {res} proxy\nspeed: {devices}")
        ax.margins(x=0.15, y=0.15)
    caption = (
        "Top-1 against throughput per Hiera size (paper Fig. 1 style). Paper (open markers, dashed): Table 8 "
        f"/ Table 4 accuracy and Tables 16/17 speed ({PAPER_SPEED}). Filled markers, solid: ours. "
        + " ".join(describe_runs(runs) + captions)
        + " Colour = model size."
    )
    files = save(fig, out_dir, "acc_vs_speed", caption)
    return FigureInfo(
        "acc_vs_speed",
        caption,
        [*record_sources(runs), *_speed_sources(recs, set(ours["device"])), "results/paper/table2.csv"],
        data,
        files,
    )


# ---- both ladders: accuracy vs speed per step (Table 1 with MAE, App. B from scratch) ------------------------

LADDER_KINDS_SHOWN = (
    ("table1", "MAE + finetune (Table 1)", "-", "o"),
    ("appendix_b", "from scratch (App. B)", "--", "s"),
)


def ladders_data(recs: Records) -> tuple[pd.DataFrame, dict[tuple[str, str], list[str]]]:
    """Per ladder kind, context (`split_contexts`: proxy vs full data, size), modality and step: our mean top-1 with
    its 95% CI over seeds (`summarize`, the tables' numbers) and the throughput of the model that step trained
    (never a stand-in: a full-size model's speed is not placed beside a proxy's accuracy). Also the caption
    sentences on the speeds per (context, modality)."""
    rows: list[dict[str, Any]] = []
    captions: dict[tuple[str, str], list[str]] = {}
    for kind, label, _, _ in LADDER_KINDS_SHOWN:
        for suffix, part in split_contexts(recs.runs[recs.runs["table"] == kind], kind):
            context = context_name(suffix, part)
            for modality in ("image", "video"):
                mine = part[part["modality"] == modality]
                if not (mine["status"] == "done").any():
                    continue
                found, caption, _ = speeds_for(
                    recs.speed, mine, _first_variant(mine, "step"), {}, f"{label}: {modality} {SPEED_UNIT[modality]}"
                )
                if caption:
                    captions.setdefault((context, modality), []).append(caption)
                for step in STEP_IDS:
                    stats = summarize(mine[mine["step"] == step])
                    if stats["n"]:
                        rows.append(
                            {
                                "context": context,
                                "kind": kind,
                                "ladder": label,
                                "modality": modality,
                                "step": step,
                                "acc": stats["mean"],
                                "lo": stats["lo"],
                                "hi": stats["hi"],
                                "n": stats["n"],
                                "speed": b["samples_per_s"] if (b := found.get(step)) else np.nan,
                            }
                        )
    columns = ["context", "kind", "ladder", "modality", "step", "acc", "lo", "hi", "n", "speed"]
    return pd.DataFrame(rows, columns=columns), captions


def plot_ladders(recs: Records, out_dir: Path) -> list[FigureInfo | str]:
    """One figure per context and modality with a ladder trained both ways (or one way): top-1 (95% CI bars over
    seeds) against throughput, a marker per step, the ladders joined in step order (paper App. B's contrast)."""
    data, speed_captions = ladders_data(recs)
    out: list[FigureInfo | str] = []
    if data.empty:
        return ["ladders: no finished Table-1 or Appendix-B ladder runs"]
    for (context, modality), d in data.groupby(["context", "modality"], sort=True):
        name = f"ladders-{context}" + ("" if modality == "image" else f"-{modality}")
        placed = d[d["speed"].notna()]
        if placed.empty:
            out.append(f"{name}: no speed record of the ladder's models (hiera-study bench, see README)")
            continue
        fig, axes = new_figure(SINGLE * 1.45, 2.6)
        ax = axes[0][0]
        for kind, label, dashes, marker in LADDER_KINDS_SHOWN:
            part = placed[placed["kind"] == kind].assign(o=lambda f: [STEP_IDS.index(s) for s in f["step"]])
            part = part.sort_values("o")
            if part.empty:
                continue
            ax.plot(part["speed"], part["acc"], dashes, color="0.45", linewidth=0.8, zorder=1, label=label)
            for r in part.itertuples():
                color = STEP_COLORS.get(r.step, "0.5")
                if pd.notna(r.lo):
                    ax.errorbar(
                        r.speed,
                        r.acc,
                        yerr=[[r.acc - r.lo], [r.hi - r.acc]],
                        fmt="none",
                        ecolor=color,
                        elinewidth=0.8,
                        capsize=2,
                        zorder=2,
                    )
                ax.scatter(
                    r.speed,
                    r.acc,
                    s=20,
                    marker=marker,
                    color=color if kind == "table1" else "white",
                    edgecolors=color,
                    linewidths=1.0,
                    zorder=3,
                )
                ax.annotate(r.step, (r.speed, r.acc), xytext=(3, 2), textcoords="offset points", fontsize=6)
        ax.set_xscale("log")
        plain_log_ticks(ax.xaxis)
        ax.set_xlabel(f"throughput ({SPEED_UNIT[modality]}, log scale)")
        ax.set_ylabel("top-1 (%)")
        ax.legend(loc="best", frameon=False)
        ax.margins(x=0.12, y=0.12)
        runs = recs.runs[
            recs.runs["table"].isin(set(d["kind"]))
            & (recs.runs["modality"] == modality)
            & (recs.runs["proxy"] == context.startswith("proxy"))
        ]
        missing = [f"{s} ({k})" for k, s in d.loc[d["speed"].isna(), ["kind", "step"]].itertuples(index=False)]
        caption = (
            "Top-1 against inference throughput of the trained models for every Table-1 step, the ladder "
            "MAE-pretrained and finetuned (filled markers, solid line) and trained from scratch (open markers, "
            "dashed; paper App. B / Fig. 8); bars: 95% Student-t intervals over seeds (none with one seed); "
            "colour = step. "
            + " ".join(describe_runs(runs) + speed_captions.get((context, modality), []))
            + (f" Not placed (no speed record of the model): {', '.join(missing)}." if missing else "")
        )
        files = save(fig, out_dir, name, caption)
        out.append(
            FigureInfo(
                name,
                caption,
                [*record_sources(runs), *_speed_sources_ladder(recs, runs)],
                d.reset_index(drop=True),
                files,
            )
        )
    return out


def _speed_sources_ladder(recs: Records, runs: pd.DataFrame) -> list[str]:
    """Speed-record files that measured one of `runs`' variants at their input size."""
    pool = recs.speed
    if pool.empty:
        return []
    return record_sources(
        pool[pool["variant"].isin(set(runs["variant"])) & pool["input_size"].isin(set(runs["input_size"]))]
    )


def _speed_sources(recs: Records, devices: set[str]) -> list[str]:
    """Speed-record files that measured a Hiera size (the Table 2 / Fig. 1 models) on the devices shown."""
    names = [f"hiera_{s}_{r}" for s in SIZES for r in RES.values()]
    return record_sources(recs.speed[recs.speed["variant"].isin(names) & recs.speed["device"].isin(devices)])


# ---- params / GMACs per size ------------------------------------------------------------------------------------


def model_size_data(recs: Records) -> pd.DataFrame:
    paper = recs.paper["table2"]
    rows = []
    for modality in ("image", "video"):
        counts = model_counts([f"hiera_{s}_{RES[modality]}" for s in SIZES])
        for size in SIZES:
            c = counts[f"hiera_{size}_{RES[modality]}"]
            p = paper[(paper["modality"] == modality) & (paper["size"] == size)]
            for source, params, gmacs in (
                ("ours", *(c or (np.nan, np.nan))),
                ("paper", *((p["params_m"].iloc[0], p["flops_g"].iloc[0]) if len(p) else (np.nan, np.nan))),
            ):
                rows.append({"modality": modality, "size": size, "source": source, "params_m": params, "gmacs": gmacs})
    return pd.DataFrame(rows)


def plot_model_size(recs: Records, out_dir: Path) -> FigureInfo | str:
    data = model_size_data(recs)
    if data[data["source"] == "ours"][["params_m", "gmacs"]].isna().all().all():
        return "model_size: results/variants/model_stats.json has no counts (hiera-study variants --write-stats)"
    fig, axes = new_figure(DOUBLE, 3.6, 2, 2)
    width = 0.38
    for row, modality in enumerate(("image", "video")):
        for col, (metric, label) in enumerate((("params_m", "parameters (M)"), ("gmacs", "GMACs (paper: FLOPs)"))):
            ax = axes[row][col]
            part = data[data["modality"] == modality]
            for i, size in enumerate(SIZES):
                for source, dx in (("ours", -width / 2), ("paper", width / 2)):
                    v = part[(part["size"] == size) & (part["source"] == source)][metric]
                    if len(v) and not np.isnan(v.iloc[0]):
                        value = float(v.iloc[0])
                        ax.bar(
                            i + dx,
                            value,
                            width,
                            color=SIZE_COLORS[size] if source == "ours" else "white",
                            edgecolor=SIZE_COLORS[size] if source == "paper" else "0.2",
                            hatch=PAPER_HATCH if source == "paper" else None,
                            linewidth=0.6,
                        )
                        if source == "ours":  # exact value: the bars alone cannot show a 0.3% difference
                            ax.annotate(
                                f"{value:.1f}",
                                (i + dx, value),
                                xytext=(0, 2),
                                textcoords="offset points",
                                ha="center",
                                va="bottom",
                                fontsize=5.5,
                            )
                    else:
                        mark_gap(ax, i + dx, "no paper number" if source == "paper" else "no count")
            ax.margins(y=0.12)
            ax.set_xticks(range(len(SIZES)), [SIZE_LABELS[s] for s in SIZES])
            ax.set_ylabel(label)
            ax.set_title(f"{modality.capitalize()} ({'16×224²' if modality == 'video' else '224²'}): {label}")
            ax.grid(axis="x", visible=False)
    paper_legend(axes[0][0], "ours (exact count)", "paper (rounded)", loc="upper left")
    caption = (
        "Parameters and multiply-accumulates per Hiera size, ours (solid; fvcore counts from "
        "results/variants/model_stats.json) vs the paper (hatched; Table 2 images, Table 4 video per view, "
        "rounded to 1M / 1G); the paper has no video T or S. Colour = model size; numbers: our exact values."
    )
    files = save(fig, out_dir, "model_size", caption)
    return FigureInfo(
        "model_size", caption, ["results/variants/model_stats.json", "results/paper/table2.csv"], data, files
    )


# ---- throughput vs batch size -----------------------------------------------------------------------------------


def plot_speed_vs_batch(recs: Records, out_dir: Path) -> list[FigureInfo | str]:
    out: list[FigureInfo | str] = []
    for cond, everything in recs.speed.groupby(list(CONDITION), sort=True):
        group = everything[everything["samples_per_s"].notna()]
        # where a sweep stopped at out-of-memory: shown as a cross, so the curve's end is explained
        ooms = everything[everything["oom"] & everything["batch_size"].isna()].assign(
            separate_and_pad=lambda f: f["separate_and_pad"].fillna("-")
        )
        c = dict(zip(CONDITION, cond))
        keys = ["variant", "impl", "model", "separate_and_pad", "overrides"]  # one line per model as measured
        g = group.assign(separate_and_pad=group["separate_and_pad"].fillna("-"))
        sweeps = [k for k, d in g.groupby(keys, sort=True) if d["batch_size"].nunique() > 1]
        name = (
            "batch-"
            + "-".join(slug(x) for x in (c["device"], c["mode"], c["precision"], c["attn"]))
            + ("-compile" if c["compile"] else "")
            + f"-{slug(c['protocol'])}"
        )
        if not sweeps:
            out.append(f"{name}: no model measured at more than one batch size")
            continue
        rows = []
        for key in sweeps:
            d = g[(g[keys] == pd.Series(key, index=keys)).all(axis=1)]
            for batch, b in d.groupby("batch_size", sort=True):
                rows.append(
                    {
                        **dict(zip(keys, key)),
                        "step": d["step"].iloc[0],
                        "size_label": d["size_label"].iloc[0],
                        "modality": d["modality"].iloc[0],
                        "batch_size": int(batch),
                        "samples_per_s": float(b["samples_per_s"].mean()),
                        "oom": False,
                    }
                )
            stop = ooms[(ooms[keys] == pd.Series(key, index=keys)).all(axis=1)]["requested_batch"]
            if len(stop):
                rows.append(
                    {
                        **dict(zip(keys, key)),
                        "step": d["step"].iloc[0],
                        "size_label": d["size_label"].iloc[0],
                        "modality": d["modality"].iloc[0],
                        "batch_size": int(stop.min()),
                        "samples_per_s": np.nan,
                        "oom": True,
                    }
                )
        data = pd.DataFrame(rows)
        modalities = [m for m in ("image", "video") if (data["modality"] == m).any()]
        fig, axes = new_figure(DOUBLE if len(modalities) > 1 else SINGLE, 2.4, 1, len(modalities))
        for ax, modality in zip(axes[0], modalities):
            part = data[data["modality"] == modality]
            by_step = part["step"].nunique() > 1
            order = {s: i for i, s in enumerate(STEP_IDS)}
            lines = sorted(
                part.groupby(keys, sort=True),
                key=lambda kv: (
                    order.get(kv[1]["step"].iloc[0], len(order)),
                    LABEL_ORDER.index(kv[1]["size_label"].iloc[0])
                    if kv[1]["size_label"].iloc[0] in LABEL_ORDER
                    else len(LABEL_ORDER),
                    *map(str, kv[0]),
                ),
            )
            for key, d in lines:  # legend in ladder order, then size order
                variant, impl, model, sep, overrides = key
                size_key = next((k for k, lab in SIZE_LABELS.items() if lab == d["size_label"].iloc[0]), None)
                color = STEP_COLORS.get(d["step"].iloc[0]) if by_step or size_key is None else SIZE_COLORS[size_key]
                label = STEP_LABELS.get(d["step"].iloc[0], variant) if by_step else variant
                label += "" if impl == "hiera-study" else f" ({impl})"
                label += f", sep-pad {sep}" if sep != "-" else ""
                label += "" if overrides == "{}" else " (proxy model)"
                ran = d[~d["oom"]]
                ax.plot(
                    ran["batch_size"],
                    ran["samples_per_s"],
                    IMPL_DASHES.get(impl, "-"),
                    marker="o",
                    color=color,
                    label=label,
                    markersize=3,
                )
                for batch in d.loc[d["oom"], "batch_size"]:
                    last = float(ran["samples_per_s"].iloc[-1])
                    ax.plot([batch], [last], marker="x", color=color, markersize=5, linestyle="none")
                    ax.annotate(
                        "OOM",
                        (batch, last),
                        xytext=(0, 4),
                        textcoords="offset points",
                        ha="center",
                        fontsize=5.5,
                        color=color,
                    )
            ax.margins(y=0.12)  # room for the OOM labels
            ax.set_xscale("log", base=2)
            ax.xaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.set_xlabel("batch size")
            ax.set_ylabel(SPEED_UNIT[modality])
            ax.set_title(f"{modality.capitalize()}: {c['device']}")
            ax.legend(frameon=False, loc="best")
        caption = (
            f"Throughput against batch size ({c['device']}, {c['precision']}, {c['attn']} attention, "
            f"{'compiled' if c['compile'] else 'no compile'}, protocol {c['protocol']}, mode {c['mode']}, "
            f"torch {c['torch']}); samples/s is the median over trials, averaged over repeated runs. Solid: "
            "ours, dashed: timm; a cross: the batch that ran out of memory, where the sweep stopped. Tables "
            "report the best batch of each line."
        )
        files = save(fig, out_dir, name, caption)
        out.append(FigureInfo(name, caption, record_sources(group), data, files))
    return out


# ---- where the time goes (breakdown) ----------------------------------------------------------------------------


def plot_breakdown(recs: Records, out_dir: Path) -> list[FigureInfo | str]:
    """One figure per breakdown condition and ladder: a bar per measured Table-1 step, stacked by op family, with
    the unprofiled wall-clock step time as a black tick."""
    groups = breakdown_groups(recs.breakdown)
    if not groups:
        return ["breakdown: no breakdown records of a Table-1 ladder (hiera-study bench --breakdown)"]
    out: list[FigureInfo | str] = []
    for g in groups:
        d = g.rows
        shown = [f for f in BREAKDOWN_FAMILIES if (d[f"{f}_ms"] > 0).any()]
        fig, axes = new_figure(SINGLE * 1.45, 2.6)
        ax = axes[0][0]
        x = np.arange(len(d))
        bottom = np.zeros(len(d))
        for family in shown:  # stacked in display order, the model's families at the bottom
            values = d[f"{family}_ms"].to_numpy(float)
            ax.bar(
                x,
                values,
                0.7,
                bottom=bottom,
                color=FAMILY_COLORS[family],
                label=family,
                edgecolor="white",
                linewidth=0.3,
            )
            bottom += values
        ax.scatter(
            x, d["wall_step_ms"], marker="_", s=120, color="black", linewidths=1.2, zorder=3, label="wall (no profiler)"
        )
        ax.set_xticks(x, d["step"])
        ax.set_xlabel("Table 1 step")
        unit = "CPU self time" if set(g.records["time_source"]) == {"cpu self time"} else "CUDA kernel time"
        ax.set_ylabel(f"ms per step ({unit})")
        c = g.cond
        ax.set_title(
            f"Hiera-{c['size_label']} {c['modality']}{' (proxy)' if c['overrides'] != '{}' else ''}: "
            f"{c['mode']}, {c['precision']}, {c['attn']}, batch {int(c['batch_size'])}\n{c['device']}"
        )
        ax.grid(axis="x", visible=False)
        handles = dict(zip(*reversed(ax.get_legend_handles_labels())))
        names = [*reversed(shown), "wall (no profiler)"]  # top to bottom as the stack reads, the wall tick last
        ax.legend(
            [handles[n] for n in names],
            names,
            frameon=False,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize=5.5,
        )
        caption = (
            "Where one step's time goes, per Table-1 step: each bar stacks the op families' time (colour = "
            "family, the same in every breakdown figure; each op's self time counted in the innermost family "
            "range around it); the black tick is the step's wall-clock time without the profiler. "
            + " ".join(describe_breakdown(g))
            + " Table `"
            + g.name
            + "` lists the numbers and the family each "
            "step's speed-up came from."
        )
        files = save(fig, out_dir, g.name, caption)
        data = d.melt(
            id_vars=["step", "variant"], value_vars=[f"{f}_ms" for f in shown], var_name="family", value_name="ms"
        )
        data["family"] = data["family"].str.removesuffix("_ms")
        out.append(FigureInfo(g.name, caption, record_sources(g.records), data, files))
    return out


# ---- all figures ------------------------------------------------------------------------------------------------
