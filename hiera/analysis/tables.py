"""The paper's tables from our records, beside the paper's numbers: Table 1 (the MViTv2 -> Hiera ladder), Table 2
(model sizes), Table 3 (MAE ablations), and speed tables per device and protocol (paper Tables 16/17 protocol).

Three layers: `hiera.analysis.summaries` computes the numbers (frames per table, seeds, CIs, paired differences,
speed selection, captions), this module lays them out as `Table`s (cells, columns, notes, which tables exist), and
`hiera.analysis.render` writes a `Table` as Markdown, LaTeX or CSV.

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

Length (~760 lines): one builder per paper table (1, 2, 3, App. B against Table 1, speed, breakdown, other grids)
and `build_tables`, which decides which tables the records support; each builder is a screen of cell layout.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hiera.analysis.frames import (
    BREAKDOWN_FAMILIES,
    Records,
    load_all,
)
from hiera.analysis.render import Table, combined_markdown, render_csv, render_latex, render_markdown
from hiera.analysis.summaries import (
    CONDITION,
    DASH,
    DATASET_LABELS,
    IMPL_ORDER,
    LABEL_ORDER,
    LADDER_KINDS,
    N_BOOT,
    PAPER_DATA,
    PAPER_KINDS,
    PAPER_SPEED,
    REF_ROW,
    SIGNIFICANT,
    SPEED_COL,
    _num,
    best_speed,
    breakdown_groups,
    context_name,
    describe_breakdown,
    describe_condition,
    describe_runs,
    paired_runs,
    slug,
    split_contexts,
    summarize,
    table1_frame,
    table2_frame,
    table3_frame,
)
from hiera.env import at_root
from hiera.files import atomic_write_text
from hiera.model.ladder import BEYOND_PAPER, EXTENDED_STEP_IDS, EXTENSIONS, LADDER, STEP_IDS

TABLES_DIR = ("results", "tables")  # under the project root


def _f(x: Any, fmt: str) -> str:
    return format(x, fmt) if _num(x) else DASH


def _acc_cell(mean: float, std: float, n: int, expected: int) -> str:
    if not n:
        return DASH
    text = f"{mean:.2f}" + (f" ± {std:.2f}" if n > 1 else "")
    return text + (f" ({n})" if n == expected else f" ({n}/{expected})")


def _ci_cell(lo: float, hi: float) -> str:
    return f"[{lo:.2f}, {hi:.2f}]" if _num(lo) else DASH


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


def _scope(runs: pd.DataFrame, sizes: bool = True) -> str:
    """' (grids `a`, `b`; size large)' for a title: where a pooled table's runs come from."""
    if runs.empty:
        return ""
    grids = ", ".join(f"`{g}`" for g in sorted(set(runs["grid"])))
    label = f"grid{'s' if runs['grid'].nunique() > 1 else ''} {grids}"
    if sizes:
        label += f"; size {', '.join(sorted(set(runs['size_key'])))}"
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
    keys = ["modality", "variant", "step", "size_key", "dataset", "ablation", "setting"]
    frame = runs.assign(**{k: runs[k].fillna("") for k in keys})
    order = {s: i for i, s in enumerate(EXTENDED_STEP_IDS)}
    groups = sorted(
        frame.groupby(keys, sort=False), key=lambda kv: (kv[0][0], order.get(kv[0][2], len(order)), *map(str, kv[0]))
    )
    rows, data = [], []
    for key, d in groups:
        acc = summarize(d)
        info = dict(zip(keys, key))
        shown = {("size" if k == "size_key" else k): v for k, v in info.items()}  # the table's column is "size"
        stats = {"acc_mean": acc["mean"], "acc_std": acc["std"], "acc_n": acc["n"], "acc_expected": acc["expected"]}
        data.append({**shown, **stats})
        setting = f"{info['ablation']}={info['setting']}" if info["ablation"] else ""
        rows.append(
            [
                info["modality"],
                info["variant"],
                info["step"] or DASH,
                info["size_key"],
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


def _speed_sort_key(r: dict) -> tuple:
    size = LABEL_ORDER.index(r["size"]) if r["size"] in LABEL_ORDER else len(LABEL_ORDER)
    step = EXTENDED_STEP_IDS.index(r["step"]) if r["step"] in EXTENDED_STEP_IDS else len(EXTENDED_STEP_IDS)
    sep = {"on": 0, None: 1, "off": 2}.get(r["separate_and_pad"], 3)
    return (r["modality"] != "image", size, step, r["variant"], IMPL_ORDER.get(r["impl"], 9), r["model"], sep)


def _beyond_paper_notes(rows: list[dict]) -> list[str]:
    """One note per ladder step beyond the paper that the rows hold (none for Table-1 rows: their tables keep their
    bytes), saying it is not a row of the paper's Table 1."""
    shown = {r["step"] for r in rows}
    return [
        f"Step {s.id} ({', '.join(sorted(r['variant'] for r in rows if r['step'] == s.id))}): beyond the paper, "
        f"{s.title.removeprefix('+ ').removesuffix(' (beyond the paper)')}; not a row of the paper's Table 1."
        for s in EXTENSIONS
        if s.id in shown and s.id in BEYOND_PAPER
    ]


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
                "size": first["size_label"],  # the table's column: the size label
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
        notes += _beyond_paper_notes(models)
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
                title=f"Where the time goes: Hiera-{c['size_label']} {c['modality']} ladder"
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
