"""Records -> tables and figures (`hiera/analysis`), on the fixture records of `tests/fixtures/analysis/`.

Golden files: the Markdown, LaTeX and CSV of every table made from the fixtures must equal
`tests/fixtures/analysis/golden/` byte for byte. After an intended change of the output (or of the paper CSVs or
`results/variants/model_stats.json`, which the tables read), regenerate and review the diff:

    UPDATE_GOLDEN=1 PYTHONPATH=. python -m pytest -q tests/test_analysis.py
"""

import argparse
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hiera.analysis.frames import (
    load_all,
    load_curves,
    load_paper,
    load_reconstruction,
    load_runs,
    load_speed,
    setting_key,
)
from hiera.analysis.plots import plot_all, write_plots
from hiera.analysis.render import render_markdown, update_readme
from hiera.analysis.speed_figures import ladders_data, speedup_data
from hiera.analysis.tables import build_tables, mae_vs_scratch, write_tables
from hiera.cli.analysis import register

FIX = Path(__file__).parent / "fixtures" / "analysis"
GOLDEN = FIX / "golden"


@pytest.fixture(scope="module")
def recs():
    # no breakdown records: the golden files must not change when results/breakdown/ gets some
    return load_all(FIX / "records", FIX / "speed", breakdown=())


@pytest.fixture(scope="module")
def tables_dir(recs, tmp_path_factory):
    out = tmp_path_factory.mktemp("tables")
    write_tables(recs, out)
    return out


@pytest.fixture(scope="module")
def figures(recs, tmp_path_factory):
    out = tmp_path_factory.mktemp("figures")
    logged = []
    made = plot_all(recs, out, command="hiera-study plots --records tests/fixtures/analysis/records", log=logged.append)
    return out, {f.name: f for f in made}, logged


# ---- tables -----------------------------------------------------------------------------------------------------


def test_tables_equal_golden_files(tables_dir):
    written = sorted(p.name for p in tables_dir.iterdir())
    if os.environ.get("UPDATE_GOLDEN") == "1":
        shutil.rmtree(GOLDEN, ignore_errors=True)
        shutil.copytree(tables_dir, GOLDEN)
    assert written == sorted(p.name for p in GOLDEN.iterdir()), "set UPDATE_GOLDEN=1 to regenerate"
    for name in written:
        assert (tables_dir / name).read_text() == (GOLDEN / name).read_text(), f"{name} differs from golden"


def test_tables_are_deterministic(recs, tables_dir, tmp_path):
    again = load_all(FIX / "records", FIX / "speed", breakdown=())  # a fresh load, not the same objects
    write_tables(again, tmp_path)
    for path in tables_dir.iterdir():
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name


def test_every_table_kind_in_every_format(tables_dir):
    stems = {p.stem for p in tables_dir.iterdir()}
    assert stems == {
        "table1",
        "table1-proxy",
        "table2",
        "table2-proxy",
        "table3-proxy",
        "demo",
        "appendix_b",
        "mae_vs_scratch-proxy",
        "runs-smoke_demo",
        "speed-nvidia_h100_80gb_hbm3-infer-fp16-math-paper-pt2.5.1",
        "speed-cpu_x86_64-infer-fp32-math-custom-pt2.5.1",
        "tables",
    }
    for stem in stems - {"tables"}:
        for suffix in ("md", "tex", "csv"):
            assert (tables_dir / f"{stem}.{suffix}").is_file()
    tex = (tables_dir / "table1-proxy.tex").read_text()
    assert r"\toprule" in tex
    assert r"\midrule" in tex
    assert r"\bottomrule" in tex
    assert r"\cmidrule" in tex


def test_partial_grid_shows_gaps_and_lists_missing_runs(tables_dir):
    """Table 1 pools the image and the video grid; unfinished runs are gaps and are listed by name."""
    md = (tables_dir / "table1-proxy.md").read_text()
    assert "(grids `t1_images_demo`, `t1_video_demo`; size demo)" in md
    rows = {line.split(" | ")[0].strip("| *"): line.split(" | ") for line in md.splitlines() if line.startswith("| ")}
    assert rows["b"][2] == "—"  # both seeds of row b failed or missing: a gap, not a dropped row
    assert rows["c"][2] == "88.90 (1/2)"  # one of two seeds finished
    assert rows["a"][2] == "89.18 ± 0.18 (2)"
    assert rows["d"][2] == "—"
    assert rows["d"][6] == "905.5"  # not in the grid, but measured
    missing = md.split("Missing (4):")[1]
    for run, status in (
        ("t1_images_demo/hiera_tiny_224.b_max_pool/seed0", "failed (RuntimeError: CUDA out of memory | batch 64)"),
        ("t1_images_demo/hiera_tiny_224.b_max_pool/seed1", "missing"),
        ("t1_images_demo/hiera_tiny_224.c_no_stride1_pool/seed1", "pending"),
        ("t1_video_demo/hiera_tiny_16x224/seed1", "running"),
    ):
        assert f"`{run}`: {status}" in missing
    csv = pd.read_csv(tables_dir / "table1-proxy.csv").set_index("row")
    assert csv.loc["b", "image_acc_n"] == 0
    assert csv.loc["b", "image_acc_expected"] == 2
    assert np.isnan(csv.loc["b", "image_acc_mean"])


def test_speedups_and_best_batch(tables_dir):
    csv = pd.read_csv(tables_dir / "table1.csv").set_index("row")
    # hiera_large_224 at batch 128 was measured twice (1290.4, 1302.0): averaged; batch 256 was slower, 512 OOM
    assert csv.loc["f", "image_im_s"] == pytest.approx((1290.4 + 1302.0) / 2)
    assert csv.loc["f", "image_im_s_batch"] == 128
    assert csv.loc["sup", "image_im_s"] == pytest.approx(551.2)  # best of its batch sweep
    assert csv.loc["a", "image_im_s"] == pytest.approx(640.7)  # separate-and-pad on, as the paper's speeds
    assert csv.loc["f", "image_speedup"] == pytest.approx(1296.2 / 551.2, abs=1e-4)
    assert csv.loc["f", "image_speedup_paper"] == pytest.approx(531.4 / 219.8, abs=1e-4)
    speed_md = (tables_dir / "speed-nvidia_h100_80gb_hbm3-infer-fp16-math-paper-pt2.5.1.md").read_text()
    assert "Out of memory: `hiera_large_224` (hiera-study) at batch 512" in speed_md


def test_proxy_numbers_are_labelled(tables_dir):
    for name in ("table1-proxy.md", "table2-proxy.md", "table3-proxy.md"):
        md = (tables_dir / name).read_text()
        assert "Fashion-MNIST 64px proxy, CPU (x86_64, 2 threads)" in md
        assert "not ImageNet-1K accuracies" in md
    assert "Moving Fashion-MNIST 16×64px proxy" in (tables_dir / "table1-proxy.md").read_text()
    assert "No Table-1 runs were found" in (tables_dir / "table1.md").read_text()  # the full-data table: speeds only


def test_table3_defaults_aliases_and_extra_settings(tables_dir):
    csv = pd.read_csv(tables_dir / "table3-proxy.csv", dtype={"setting": str})
    default = csv[(csv["ablation"] == "mask_ratio") & (csv["setting"] == "0.6")].iloc[0]
    assert default["image_acc_n"] == 2
    assert default["image_acc_mean"] == pytest.approx(89.48)
    hog = csv[(csv["ablation"] == "target") & (csv["setting"] == "hog")].iloc[0]
    assert hog["image_acc_mean"] == pytest.approx(89.70)
    assert hog["image_acc_paper"] == pytest.approx(85.7)
    extra = csv[(csv["ablation"] == "decoder_depth") & (csv["setting"] == "2")]
    assert len(extra) == 1
    assert np.isnan(extra["image_acc_paper"].iloc[0])
    # the grid files' names: multi_scale=last_only is the paper's "false", pretrain_epochs its "epochs"
    last_only = csv[(csv["ablation"] == "multi_scale") & (csv["setting"] == "false")].iloc[0]
    assert last_only["image_acc_mean"] == pytest.approx(88.70)
    assert last_only["image_acc_paper"] == pytest.approx(85.0)
    epochs = csv[(csv["ablation"] == "epochs") & (csv["setting"] == "800")].iloc[0]
    assert epochs["image_acc_mean"] == pytest.approx(89.90)
    assert epochs["image_acc_paper"] == pytest.approx(85.8)


def test_demo_in_table1_layout_with_its_own_models_speeds(tables_dir):
    """The demo (table `demo`, records as hiera.train.pipeline writes them) shows the speeds of the proxy models it
    trained, measured with their overrides, and none for the modality it did not run."""
    csv = pd.read_csv(tables_dir / "demo.csv").set_index("row")
    assert csv.loc["a", "image_im_s"] == pytest.approx(1020.3)
    assert csv.loc["f", "image_speedup"] == pytest.approx(1480.8 / 910.5, abs=1e-4)
    assert csv["video_clip_s"].isna().all()
    assert csv["video_acc_n"].sum() == 0
    md = (tables_dir / "demo.md").read_text()
    assert "image im/s of the trained models (32px): cpu (x86_64)" in md
    assert "`demo/hiera_tiny_224.b_max_pool/seed0`: failed (no error text)" in md


def test_confidence_interval_column(tables_dir):
    """95% CI of the mean over seeds: with two seeds t_{0.975,1} = tan(0.475 pi) (Cauchy), half-width t s / sqrt(2);
    one seed has no interval."""
    csv = pd.read_csv(tables_dir / "table1-proxy.csv").set_index("row")
    values = np.array([89.05, 89.31])  # row a's two seeds (fixture records)
    half = np.tan(0.475 * np.pi) * values.std(ddof=1) / np.sqrt(2)
    assert csv.loc["a", "image_acc_ci_lo"] == pytest.approx(values.mean() - half, abs=1e-4)
    assert csv.loc["a", "image_acc_ci_hi"] == pytest.approx(values.mean() + half, abs=1e-4)
    assert np.isnan(csv.loc["c", "image_acc_ci_lo"])  # one of two seeds finished
    md = (tables_dir / "table1-proxy.md").read_text()
    assert f"| 89.18 ± 0.18 (2) | [{values.mean() - half:.2f}, {values.mean() + half:.2f}] |" in md


def _fixture_correct(step: str, seeds: list[int]) -> np.ndarray:
    """[seeds, 300] correctness of an appb_demo step, read from its .npy files directly (not through hiera)."""
    variant = {"sup": "hiera_tiny_224.sup_mvitv2", "a": "hiera_tiny_224.a_abs_pos", "b": "hiera_tiny_224.b_max_pool"}
    out = []
    for seed in seeds:
        d = FIX / "runs" / "appb_demo" / variant[step] / f"seed{seed}" / "supervised"
        out.append(np.load(d / "predictions.npy") == np.load(d / "labels.npy"))
    return np.stack(out)


def test_paired_difference_column_against_an_independent_computation(tables_dir):
    """Appendix B's ladder (every step from scratch) in Table 1's layout, with the paired difference of each step
    to the previous one recomputed here: the difference from the saved predictions, McNemar's p counted with exact
    integers, and the bootstrap interval by resampling image indices with numpy's own generator."""
    import math

    csv = pd.read_csv(tables_dir / "appendix_b.csv").set_index("row")
    md = (tables_dir / "appendix_b.md").read_text()
    rows = {line.split(" | ")[0].strip("| *"): line.split(" | ") for line in md.splitlines() if line.startswith("| ")}
    assert csv["image_acc_paper"].isna().all()  # the paper has no App. B table
    assert rows["a"][5] == "—"
    assert csv.loc["sup", "image_im_s_paper"] == pytest.approx(219.8)  # ... but the speeds are the same models'
    for step, prev, seeds in (("a", "sup", [0, 1, 2]), ("b", "a", [0])):  # b's seed 1 saved no predictions
        a, b = _fixture_correct(prev, seeds), _fixture_correct(step, seeds)
        diff = 100 * (b.mean() - a.mean())
        only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
        n, k = only_a + only_b, min(only_a, only_b)
        p = min(1.0, 2 * sum(math.comb(n, j) for j in range(k + 1)) / 2**n)
        per_image = (b.astype(int) - a.astype(int)).sum(0)
        idx = np.random.default_rng(123).integers(0, a.shape[1], size=(4000, a.shape[1]))
        lo, hi = np.percentile(100 * per_image[idx].mean(1) / len(seeds), [2.5, 97.5])
        r = csv.loc[step]
        assert r["image_diff_vs"] == prev
        assert r["image_diff_seeds"] == len(seeds)
        assert r["image_diff"] == pytest.approx(diff, abs=1e-4)
        assert r["image_diff_p"] == pytest.approx(p, rel=1e-2)  # the CSV keeps 3 significant digits
        assert r["image_diff_lo"] == pytest.approx(lo, abs=0.5)
        assert r["image_diff_hi"] == pytest.approx(hi, abs=0.5)
        significant = r["image_diff_lo"] > 0 or r["image_diff_hi"] < 0
        assert bool(r["image_diff_significant"]) == significant
        cell = rows[step][4]
        assert cell.startswith(f"{diff:+.2f} [")
        assert cell.endswith(f" vs {prev} ({len(seeds)})")
        assert ("‡" in cell) == significant
    assert bool(csv.loc["a", "image_diff_significant"])
    assert not bool(csv.loc["b", "image_diff_significant"])
    assert rows["sup"][4] == "—"
    assert np.isnan(csv.loc["sup", "image_diff"])  # nothing before the first row
    assert "‡: the interval excludes 0" in md
    assert "95% CI: Student-t interval" in md


def test_prediction_files_absent_missing_or_malformed(tmp_path, capsys):
    """A record without predictions: empty statistics, silently (an older record). A record naming a file that is
    gone: one warning line and empty statistics, never an error. A file that is not a class vector: one line."""
    lines = [json.loads(x) for x in (FIX / "records" / "appb_demo.jsonl").read_text().splitlines()]
    runs_root = tmp_path / "runs"
    shutil.copytree(FIX / "runs" / "appb_demo", runs_root)
    for r in lines:
        r["run_dir"] = str(runs_root / r["run"])
    (runs_root / lines[3]["run"] / "supervised" / "labels.npy").unlink()  # a's seed 0
    (tmp_path / "records").mkdir()
    (tmp_path / "records" / "appb_demo.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    runs = load_runs(tmp_path / "records")
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "appb_demo.jsonl:4:" in err
    assert "labels.npy is missing" in err
    have = runs.set_index("run")["predictions"].map(lambda x: isinstance(x, np.ndarray))
    assert not have[lines[3]["run"]]
    assert not have[lines[7]["run"]]
    assert have.sum() == 6
    table = next(
        t for t in build_tables(load_all(tmp_path / "records", FIX / "speed", breakdown=())) if t.name == "appendix_b"
    )
    assert table.data.set_index("row").loc["a", "image_diff_seeds"] == 2  # seeds 1 and 2 still pair
    np.save(runs_root / lines[0]["run"] / "supervised" / "labels.npy", np.zeros((2, 300), np.int16))
    with pytest.raises(ValueError, match=r"labels.npy: must be a 1-D integer array") as e:
        load_runs(tmp_path / "records")
    assert "\n" not in str(e.value)


def test_without_runs_tables_still_show_paper_and_speed(tmp_path):
    (tmp_path / "records").mkdir()
    recs = load_all(tmp_path / "records", FIX / "speed")
    names = [t.name for t in build_tables(recs)]
    assert names[:2] == ["table1", "table2"]
    assert "table3" not in names
    md = render_markdown(build_tables(recs)[0])
    assert "No Table-1 runs were found" in md
    assert "| f | replace kv pooling" in md


def test_grid_filter(recs):
    only = load_all(FIX / "records", FIX / "speed", grid="t3*")
    assert set(only.runs["grid"]) == {"t3_demo"}
    assert set(recs.runs["grid"]) == {
        "t1_images_demo",
        "t1_video_demo",
        "t2_demo",
        "t3_demo",
        "demo",
        "smoke_demo",
        "appb_demo",
    }


def test_update_readme(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- tables:begin -->\nold\n<!-- tables:end -->\noutro\n")
    update_readme(readme, "| a |\n")
    assert readme.read_text() == "intro\n<!-- tables:begin -->\n| a |\n<!-- tables:end -->\noutro\n"
    plain = tmp_path / "PLAIN.md"
    plain.write_text("no markers\n")
    with pytest.raises(ValueError, match="tables:begin") as err:
        update_readme(plain, "| a |\n")
    assert "\n" not in str(err.value)
    assert plain.read_text() == "no markers\n"


# ---- validation: one-line errors naming the file, the line and the field ----------------------------------------


def _first_record() -> dict:
    return json.loads((FIX / "records" / "t1_images_demo.jsonl").read_text().splitlines()[0])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda r: r.update(status="finished"), "status"),
        (lambda r: r["metrics"].update(top1="91"), "metrics.top1"),
        (lambda r: r["metrics"].update(top1=191.0), "metrics.top1"),
        (lambda r: r.pop("seed"), "seed"),
        (lambda r: r.update(step="z"), "step"),
        (lambda r: r.pop("step"), "step"),
        (lambda r: r.update(schema="hiera-study/run/0"), "schema"),
        (lambda r: r.update(grid="other"), "grid"),
        (lambda r: r.update(proxy="yes"), "proxy"),
        (lambda r: r["epochs"].pop("pretrain"), "epochs.pretrain"),
        (lambda r: r.update(input_size=[64, "64"]), "input_size"),
        (lambda r: r["env"].pop("date"), "env.date"),
        (lambda r: r.update(table="table3"), "ablation"),
        (lambda r: r.update(status="failed", error=None), "error"),
        (lambda r: r.update(batch_size={"pretrain": 64}), "batch_size.finetune"),
    ],
)
def test_malformed_run_record(tmp_path, change, field):
    good, bad = _first_record(), _first_record()
    change(bad)
    path = tmp_path / "t1_images_demo.jsonl"
    path.write_text(json.dumps({**good, "run": "other/seed0"}) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(ValueError, match=re.escape("t1_images_demo.jsonl:2:")) as err:
        load_runs(tmp_path)
    message = str(err.value)
    assert "\n" not in message
    assert f"field '{field}'" in message


def test_invalid_json_and_duplicate_runs(tmp_path):
    path = tmp_path / "t1_images_demo.jsonl"
    path.write_text(json.dumps(_first_record()) + "\n{not json\n")
    with pytest.raises(ValueError, match=r"t1_images_demo.jsonl:2: not valid JSON"):
        load_runs(tmp_path)
    path.write_text(json.dumps(_first_record()) + "\n" + json.dumps(_first_record()) + "\n")
    with pytest.raises(ValueError, match=r"t1_images_demo.jsonl:2: field 'run' .* repeats .*demo.jsonl:1"):
        load_runs(tmp_path)


def test_malformed_speed_curve_reconstruction_and_paper(tmp_path):
    line = json.loads((FIX / "speed" / "bench-infer-fp32-math-cpu_x86_64-pt2.5.1.jsonl").read_text().splitlines()[0])
    (tmp_path / "bench.jsonl").write_text(json.dumps({**line, "samples_per_s": -1.0}) + "\n")
    with pytest.raises(ValueError, match=r"bench.jsonl:1: field 'samples_per_s' must be in"):
        load_speed(tmp_path)
    (tmp_path / "bench.jsonl").write_text(json.dumps({**line, "separate_and_pad": "maybe"}) + "\n")
    with pytest.raises(ValueError, match=r"bench.jsonl:1: field 'separate_and_pad'"):
        load_speed(tmp_path)

    (tmp_path / "mae").mkdir()
    (tmp_path / "mae" / "metrics.jsonl").write_text('{"step": 1, "epoch": 0, "loss": 1.0}\n{"epoch": 0, "loss": 1}\n')
    with pytest.raises(ValueError, match=r"mae/metrics.jsonl:2: field 'step' is missing"):
        load_curves(tmp_path)

    npz = tmp_path / "reconstruction.npz"
    x = np.zeros((1, 8, 8, 3), np.float32)
    np.savez(npz, input=x, mask=np.ones((1, 8, 8), np.uint8), reconstruction=x)
    with pytest.raises(ValueError, match=r"reconstruction.npz: field 'mask' must be bool"):
        load_reconstruction(npz)
    np.savez(npz, input=x, mask=np.ones((1, 8, 8), bool), reconstruction=x[:, :4])
    with pytest.raises(ValueError, match=r"field 'reconstruction' must have shape \[1, 8, 8, 3\]"):
        load_reconstruction(npz)

    paper = tmp_path / "paper"
    shutil.copytree(FIX.parents[2] / "results" / "paper", paper)
    text = (paper / "table3.csv").read_text().splitlines()
    text[3] = text[3].rsplit(",", 1)[0] + ","
    (paper / "table3.csv").write_text("\n".join(text) + "\n")
    with pytest.raises(ValueError, match=r"table3.csv:4: field 'source' is empty"):
        load_paper(paper)


def test_run_directories_with_their_result_json(tmp_path):
    """A finished run directory is a record source on its own: its result.json (hiera.train.pipeline)."""
    record = {k: v for k, v in _first_record().items() if k != "run_dir"}
    dirs = [tmp_path / "run0", tmp_path / "run1"]
    for i, run_dir in enumerate(dirs):
        run_dir.mkdir()
        (run_dir / "result.json").write_text(json.dumps({**record, "run": f"r{i}/seed0"}, indent=1))
    runs = load_runs(dirs)
    assert list(runs["run_dir"]) == [str(d) for d in dirs]
    assert (runs["status"] == "done").all()
    with pytest.raises(ValueError, match="no such records directory, JSONL file or finished run directory"):
        load_runs([tmp_path / "nothing"])


def test_mae_vs_scratch_pairs_the_same_model_trained_both_ways(recs):
    """Row a of the Table-1 fixture grid (MAE, seeds 0-1) against row a of the App.-B grid (from scratch, seeds
    0-2), with per-example predictions planted: the difference pools the two seeds in both, image by image."""
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 10, 50).astype(np.int16)
    runs = recs.runs.copy()

    def pick(table: str) -> pd.DataFrame:
        return runs[
            (runs["table"] == table)
            & (runs["modality"] == "image")
            & (runs["step"] == "a")
            & (runs["status"] == "done")
        ].copy()

    mae, scratch = pick("table1"), pick("appendix_b")
    assert sorted(mae["seed"]) == [0, 1]
    assert sorted(scratch["seed"]) == [0, 1, 2]
    correct = {}
    for name, frame, p_right in (("mae", mae, 0.8), ("scratch", scratch, 0.6)):
        preds = []
        for seed in frame["seed"]:
            right = rng.random(50) < p_right
            correct[(name, int(seed))] = right
            preds.append(np.where(right, labels, (labels + 1) % 10).astype(np.int16))
        frame["predictions"], frame["labels"] = preds, [labels] * len(frame)
    expected = 100 * np.mean([correct[("mae", s)].mean() - correct[("scratch", s)].mean() for s in (0, 1)])
    table = mae_vs_scratch("mae_vs_scratch-test", mae, scratch)
    row = table.data.set_index("step").loc["a"]
    assert row["seeds"] == 2
    assert row["diff"] == pytest.approx(expected)
    assert row["diff_lo"] <= row["diff"] <= row["diff_hi"]
    assert (row["mae_n"], row["scratch_n"]) == (2, 3)
    assert table.rows[0][:3] == ["image", "a", "replace rel pos with absolute"]
    assert table.rows[0][5].startswith(f"{expected:+.2f} [")
    assert table.rows[0][5].endswith("(2)")


def test_setting_key():
    assert [setting_key(v) for v in (True, 0.20, "400.0", 400, "HOG", "0.0")] == [
        "true",
        "0.2",
        "400",
        "400",
        "hog",
        "0",
    ]


# ---- figures ----------------------------------------------------------------------------------------------------


def test_speedup_figure_plots_table1_ratios(recs, figures):
    data, _ = speedup_data(recs)
    values = data.set_index(["modality", "step", "source"])["speedup"]
    assert values[("image", "f", "ours")] == pytest.approx(1296.2 / 551.2)
    assert values[("image", "b", "paper")] == pytest.approx(99.9 / 219.8)
    assert values[("video", "a", "ours")] == pytest.approx(55.1 / 52.4)
    assert ("video", "b", "ours") not in values.index  # not measured: a gap, never a zero
    assert ("image", "mae", "paper") not in values.index
    info = figures[1]["speedup"]
    pd.testing.assert_frame_equal(info.data, data)


def test_ladders_figure_places_each_ladder_at_its_own_models_speed(recs, figures):
    """Both ladders on one plot: mean top-1 with a t-interval over seeds, at the speed of the very model each step
    trained (the 32 px App.-B proxies here). The Table-1 proxies (64 px) have no speed record of their own: they
    are left unplaced, never put at a full-size model's speed as a stand-in."""
    t975 = {1: 12.706204736174698, 2: 4.302652729911275}  # Student-t 0.975 quantiles (tables), df = seeds - 1
    data, _ = ladders_data(recs)
    appb = data[(data["kind"] == "appendix_b") & (data["modality"] == "image")].set_index("step")
    raw = [json.loads(x) for x in (FIX / "records" / "appb_demo.jsonl").read_text().splitlines()]
    speeds = [
        json.loads(x)
        for x in (FIX / "speed" / "bench-infer-fp32-math-cpu_x86_64-pt2.5.1.jsonl").read_text().splitlines()
    ]
    for step in ("sup", "a", "b"):
        top1 = np.array([r["metrics"]["top1"] for r in raw if r["step"] == step and r["status"] == "done"])
        half = t975[len(top1) - 1] * top1.std(ddof=1) / np.sqrt(len(top1))
        row = appb.loc[step]
        assert (row["acc"], row["lo"], row["hi"], row["n"]) == pytest.approx(
            (top1.mean(), top1.mean() - half, top1.mean() + half, len(top1))
        )
        variant = next(r["variant"] for r in raw if r["step"] == step)
        assert row["speed"] == next(
            r["samples_per_s"] for r in speeds if r["variant"] == variant and r["input_size"] == [32, 32]
        )
    table1 = data[(data["kind"] == "table1") & (data["modality"] == "image")]
    assert set(table1["step"]) == {"sup", "a", "c", "f"}
    assert table1["speed"].isna().all()
    info = figures[1]["ladders-proxy"]
    assert "Not placed (no speed record of the model): sup (table1)" in info.caption
    assert "from scratch (App. B)" in info.caption
    assert "95% Student-t" in info.caption


def test_every_figure_written_with_caption_and_index(figures):
    out, made, logged = figures
    assert set(made) == {
        "acc_vs_speed",
        "ladders-proxy",
        "speedup",
        "curves-t1_images_demo",
        "curves-t1_video_demo",
        "curves-demo",
        "reconstructions-t1_images_demo",
        "reconstructions-t1_video_demo",
        "reconstructions-demo",
        "batch-nvidia_h100_80gb_hbm3-infer-fp16-math-paper",
        "model_size",
    }
    index = (out / "index.md").read_text()
    for name, info in made.items():
        for suffix in ("png", "pdf", "txt"):
            assert (out / f"{name}.{suffix}").stat().st_size > 0
        assert (out / f"{name}.txt").read_text().strip() == info.caption
        assert f"## {name}" in index
        assert info.records
    assert "hiera-study plots --records tests/fixtures/analysis/records" in index
    assert any("curves-t2_demo" in m for m in logged)  # no curves there: skipped with a message
    curves = made["curves-t1_images_demo"].data
    assert set(curves["phase"]) == {"mae", "finetune", "supervised"}
    mae = curves[(curves["step"] == "a") & (curves["phase"] == "mae")]
    assert (mae.groupby("epochs")["seed"].nunique() == 2).all()  # both seeds of row a go into its mean and band
    assert sorted(set(mae["epochs"])) == [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]  # step / steps per epoch
    evals = curves[(curves["phase"] == "finetune") & curves["top1"].notna()]
    assert sorted(set(evals["epochs"])) == [1.0, 2.0]  # after each finished epoch
    assert made["acc_vs_speed"].data.query("source == 'ours'")["size"].tolist() == ["tiny", "small"]


@pytest.mark.slow
def test_figures_are_deterministic(recs, figures, tmp_path):
    out, _, _ = figures
    plot_all(recs, tmp_path, command="hiera-study plots --records tests/fixtures/analysis/records", log=lambda _: None)
    for name in ("speedup.png", "speedup.pdf", "model_size.png", "index.md"):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name


def test_figures_skip_when_records_are_absent(tmp_path):
    (tmp_path / "records").mkdir()
    (tmp_path / "speed").mkdir()
    logged = []
    files = write_plots(tmp_path / "records", tmp_path / "speed", tmp_path / "out", log=logged.append, breakdown_dir=())
    assert [f.name for f in files] == ["model_size.png", "model_size.pdf", "model_size.txt", "index.md"]
    assert any(m.startswith("skipped speedup") for m in logged)
    assert any(m.startswith("skipped acc_vs_speed") for m in logged)


# ---- command line -----------------------------------------------------------------------------------------------


def test_register_adds_tables_command(tmp_path):
    parser = argparse.ArgumentParser(prog="hiera-study")
    register(parser.add_subparsers(dest="command", required=True))
    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- tables:begin -->\n<!-- tables:end -->\n")
    args = parser.parse_args(
        [
            "tables",
            "--records",
            str(FIX / "records"),
            "--speed",
            str(FIX / "speed"),
            "--out",
            str(tmp_path / "tables"),
            "--readme",
            str(readme),
            "--grid",
            "t1_*",
        ]
    )
    assert args.func(args) == 0
    assert (tmp_path / "tables" / "table1-proxy.md").is_file()
    assert not (tmp_path / "tables" / "table3-proxy.md").exists()
    text = readme.read_text()
    assert "### Table 1: simplifying MViTv2" in text
    assert "--grid 't1_*'" in text
    # --readme copies the tables and changes none of them: tables.md is the same file without it
    with_readme = (tmp_path / "tables" / "tables.md").read_bytes()
    args = parser.parse_args(
        [
            "tables",
            "--records",
            str(FIX / "records"),
            "--speed",
            str(FIX / "speed"),
            "--out",
            str(tmp_path / "tables"),
            "--grid",
            "t1_*",
        ]
    )
    assert args.func(args) == 0
    assert (tmp_path / "tables" / "tables.md").read_bytes() == with_readme
    args = parser.parse_args(["plots", "--records", str(FIX / "records")])
    assert args.func is not None
    assert args.out is None  # unset: the project's paper_figures/ (hiera.env.at_root)


def test_write_tables_from_directories(tmp_path):
    """The keyword form the demo uses: records, speed and output directories."""
    written = write_tables(records_dir=FIX / "records", speed_dir=FIX / "speed", out_dir=tmp_path)
    assert tmp_path / "demo.md" in written
    assert (tmp_path / "tables.md").is_file()


def test_speed_table_names_the_kernel_that_ran(tmp_path):
    """`attn_backends` (read from the profiler by bench) shows as the speed table's kernel column; records from
    before it was recorded show a gap, and a malformed value is one located error."""
    lines = (FIX / "speed" / "bench-infer-fp32-math-cpu_x86_64-pt2.5.1.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    speed = tmp_path / "speed"
    speed.mkdir()
    (speed / "bench.jsonl").write_text(
        json.dumps({**first, "attn_backends": ["cpu_flash", "math"]}) + "\n" + "\n".join(lines[1:]) + "\n"
    )
    (tmp_path / "records").mkdir()
    tables = [t for t in build_tables(load_all(tmp_path / "records", speed)) if t.name.startswith("speed-")]
    data = pd.concat([t.data for t in tables])
    row = data[
        (data["variant"] == first["variant"])
        & (data["impl"] == first["impl"])
        & (data["model"] == first["model"])
        & (data["overrides"] == "{}")
    ].iloc[0]
    assert row["kernel"] == "cpu_flash+math"
    assert data["kernel"].isna().sum() == len(data) - 1
    assert "| cpu_flash+math |" in "".join(render_markdown(t) for t in tables)
    (speed / "bench.jsonl").write_text(json.dumps({**first, "attn_backends": ["", 3]}) + "\n")
    with pytest.raises(ValueError, match=r"bench.jsonl:1: field 'attn_backends' must be a list of backend names"):
        load_speed(speed)


def test_unknown_and_stale_runs_are_gaps_with_their_reason(tmp_path):
    """`collect` writes `unknown` (the queue could not be read) and `stale` (the run directory holds another spec)
    lines; the tables list them with their reason instead of refusing the file."""
    lines = [json.loads(x) for x in (FIX / "records" / "demo.jsonl").read_text().splitlines()]
    done = [r for r in lines if r["status"] == "done"]
    a, b = (dict(done[0]), dict(done[1]))
    for r in (a, b):
        for key in (
            "metrics",
            "params_m",
            "gmacs",
            "epochs",
            "train_samples",
            "eval_samples",
            "precision",
            "batch_size",
            "world_size",
            "wall_s",
            "env",
            "input_size",
        ):
            r.pop(key, None)
    a.update(status="unknown", error="squeue failed (exit 1: slurm_load_jobs error)")
    b.update(status="stale", error="spec.json differs in seed, train.lr")
    (tmp_path / "records").mkdir()
    (tmp_path / "records" / "demo.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [a, b] + done[2:]))
    md = render_markdown(
        next(t for t in build_tables(load_all(tmp_path / "records", FIX / "speed", breakdown=())) if t.name == "demo")
    )
    assert f"`demo/{a['run']}`: unknown (squeue failed (exit 1: slurm_load_jobs error))" in md
    assert f"`demo/{b['run']}`: stale (spec.json differs in seed, train.lr)" in md
