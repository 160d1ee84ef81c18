"""`collect` archives the small per-run files, so committed records regenerate the same tables and figures anywhere.

Run directories are git-ignored and machine-local; the records plus `results/archive/<grid>/<run id>/` are what a
fresh clone has. These tests run a tiny two-step demo ladder on the debug cluster, collect it, and check that the
archive holds exactly the files the tables and figures read, that collecting again rewrites nothing, and that the
tables (with the paired Δ column) and figures (curves, reconstructions) are byte-identical once the run
directories are gone. Records without `archive` (collected before archives) still read their run directories.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import grids
import numpy as np
import pytest

from hiera.cli import main
from hiera.env import REPO
from hiera.launch.grid import GridContext, grid_runs

RUNS = ("proxy_micro_32.e_no_attn_residual/seed0", "proxy_micro_32/seed0")
# What a finished MAE -> finetune run leaves in its archive (the record names finetune/{predictions,labels}.npy)
EXPECTED = {
    "spec.json",
    "record.json",
    "mae/config.json",
    "mae/metrics.jsonl",
    "finetune/config.json",
    "finetune/metrics.jsonl",
    "finetune/predictions.npy",
    "finetune/labels.npy",
}


def write_grid(directory: Path, grid: str) -> Path:
    """Two Table-1 steps (e, f) in the demo's layout, so the tables have a paired Δ column; seconds to run."""
    runs = [
        ("proxy_micro_32.e_no_attn_residual/seed{seed}", "proxy_micro_32.e_no_attn_residual", "e"),
        ("proxy_micro_32/seed{seed}", "proxy_micro_32", "f"),
    ]
    return grids.write_grid(directory, grid, runs, table="demo")


def tree(directory: Path) -> dict[str, bytes]:
    """Every file under `directory` by relative POSIX path, with its bytes."""
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def stamps(directory: Path) -> dict[str, tuple[int, int]]:
    """(inode, mtime in ns) of every file: an atomic rewrite changes the inode even within one mtime tick."""
    return {
        p.relative_to(directory).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def collected(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(grid file, run root, records dir) of the two-run grid, run on the debug cluster and collected once."""
    base = tmp_path_factory.mktemp("archive")
    grid, root, rec = write_grid(base, "arch"), base / "root", base / "results" / "records"
    assert main(["submit", str(grid), "--cluster", "debug", "--root", str(root), "--allow-dirty"]) == 0
    assert main(["collect", str(grid), "--root", str(root), "--out", str(rec)]) == 0
    return grid, root, rec


def test_collect_archives_exactly_the_small_files_and_rewrites_nothing_again(collected, capsys):
    grid, root, rec = collected
    archive = rec.parent / "archive" / "arch"
    lines = [json.loads(x) for x in (rec / "arch.jsonl").read_text().splitlines()]
    assert [x["run"] for x in lines] == list(RUNS)
    assert all(x["status"] == "done" for x in lines)
    for line in lines:
        # relative to results/ (the records folder's parent), POSIX: the same string resolves on any clone
        assert line["archive"] == f"archive/arch/{line['run']}"
        assert set(tree(archive / line["run"])) == EXPECTED | {"mae/reconstruction.npz"}  # seed 0: one per variant
        for name, data in tree(archive / line["run"]).items():
            assert data == (root / "arch" / line["run"] / name).read_bytes(), name
    # the run directories hold checkpoints, tb/ events, env.json, locks: none of it is archived
    assert any((root / "arch" / RUNS[0]).rglob("*.pth"))
    assert any((root / "arch" / RUNS[0]).rglob("events.*"))
    before = stamps(archive)
    assert main(["collect", str(grid), "--root", str(root), "--out", str(rec)]) == 0
    assert stamps(archive) == before  # identical files are not rewritten (git and rsync see no change)
    assert [json.loads(x) for x in (rec / "arch.jsonl").read_text().splitlines()] == lines


def _outputs(rec: Path, out: Path) -> dict[str, bytes]:
    """Tables and figures from the records in `rec` (with the fixtures' few speed records, for speed)."""
    common = ["--records", str(rec), "--speed", str(REPO / "tests" / "fixtures" / "analysis" / "speed")]
    assert main(["tables", *common, "--out", str(out / "tables")]) == 0
    assert main(["plots", *common, "--out", str(out / "figures")]) == 0
    return tree(out)


@pytest.mark.slow
def test_tables_and_figures_are_byte_identical_without_the_run_directories(collected, tmp_path, capsys):
    grid, root, rec = collected
    out = tmp_path / "out"  # one folder for every pass: the indexes name the command, --out included
    from_archive = _outputs(rec, out)
    assert {"figures/curves-arch.png", "figures/reconstructions-arch.png", "tables/demo.md"} <= set(from_archive)
    # the paired difference of step f to step e, over the archived predictions
    assert "vs e (1)" in from_archive["tables/demo.md"].decode()

    # A record of before archives (no `archive` field) reads its run directory, and gives the same numbers and
    # pictures: the archive holds everything the outputs need. Only the indexes differ (they name the command and
    # the files read).
    old = tmp_path / "old" / "records"
    old.mkdir(parents=True)
    (old / "arch.jsonl").write_text(
        "".join(
            json.dumps({k: v for k, v in json.loads(x).items() if k != "archive"}) + "\n"
            for x in (rec / "arch.jsonl").read_text().splitlines()
        )
    )
    from_run_dirs = _outputs(old, out)
    assert "results/archive" not in from_run_dirs["figures/index.md"].decode()
    for name, data in from_archive.items():
        if name not in ("figures/index.md", "tables/tables.md"):
            assert from_run_dirs[name] == data, name

    # A fresh clone: no run directories at all. Everything, index.md included, is the same bytes.
    moved = root.with_name("root-moved")
    root.rename(moved)
    try:
        capsys.readouterr()
        gone = _outputs(rec, out)
        assert "warning" not in capsys.readouterr().err  # nothing read from the (gone) run directories
        assert gone == from_archive
    finally:
        moved.rename(root)


def _finished(run_dir: Path, spec) -> None:
    """A finished run directory by hand: the record, every small file, and the big ones that must stay behind."""
    for name in (
        *EXPECTED,
        "mae/reconstruction.npz",
        "mae/checkpoints/last.pth",
        "finetune/tb/events.out.x",
        "finetune/env.json",
    ):
        (run_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (run_dir / name).write_bytes(name.encode())
    (run_dir / "spec.json").write_text(json.dumps(spec.to_dict(), sort_keys=True, default=list))  # else: stale
    np.save(run_dir / "finetune" / "predictions.npy", np.array([1, 2], dtype=np.int16))
    np.save(run_dir / "finetune" / "labels.npy", np.array([1, 3], dtype=np.int16))
    (run_dir / "record.json").write_text(  # over the placeholder bytes above
        json.dumps(
            grids.done_record(
                spec.run,
                seed=spec.seed,
                predictions="finetune/predictions.npy",
                labels="finetune/labels.npy",
            )
        )
    )


def test_reconstructions_of_the_lowest_seed_only_and_the_archive_is_never_deleted(tmp_path, capsys):
    grid, root, rec = write_grid(tmp_path, "h"), tmp_path / "root", tmp_path / "res" / "records"
    for r in grid_runs(grid, GridContext(seeds=2))[1]:
        _finished(root / "h" / r.spec.run, r.spec)
    assert main(["collect", str(grid), "--seeds", "2", "--root", str(root), "--out", str(rec)]) == 0
    archive = rec.parent / "archive" / "h"
    for run in ("proxy_micro_32.e_no_attn_residual", "proxy_micro_32"):
        assert set(tree(archive / run / "seed0")) == EXPECTED | {"mae/reconstruction.npz"}
        assert set(tree(archive / run / "seed1")) == EXPECTED  # ~100s of KB each: seed 0 only
    # A run directory lost: the run is still done, read from its archive (record and spec there), with the same
    # line; nothing is deleted, not even by --prune.
    line_before = (rec / "h.jsonl").read_text().splitlines()[3]
    shutil.rmtree(root / "h" / "proxy_micro_32" / "seed1")
    for prune in ([], ["--prune"]):
        assert main(["collect", str(grid), "--seeds", "2", "--root", str(root), "--out", str(rec), *prune]) == 0
        lines = {x["run"]: x for x in map(json.loads, (rec / "h.jsonl").read_text().splitlines())}
        assert lines["proxy_micro_32/seed1"]["status"] == "done"
        assert lines["proxy_micro_32/seed1"]["archive"] == "archive/h/proxy_micro_32/seed1"
        assert (rec / "h.jsonl").read_text().splitlines()[3] == line_before
        assert set(tree(archive / "proxy_micro_32" / "seed1")) == EXPECTED
    # Its archive gone too (removed by hand, in git): then --prune replaces the line by `missing`.
    shutil.rmtree(archive / "proxy_micro_32" / "seed1")
    assert main(["collect", str(grid), "--seeds", "2", "--root", str(root), "--out", str(rec), "--prune"]) == 0
    lines = {x["run"]: x for x in map(json.loads, (rec / "h.jsonl").read_text().splitlines())}
    assert lines["proxy_micro_32/seed1"]["status"] == "missing"
    assert "archive" not in lines["proxy_micro_32/seed1"]
    # a changed file is replaced (atomically), an unchanged one keeps its inode and mtime
    before = stamps(archive)
    (root / "h" / "proxy_micro_32" / "seed0" / "finetune" / "metrics.jsonl").write_bytes(b"changed")
    assert main(["collect", str(grid), "--seeds", "2", "--root", str(root), "--out", str(rec)]) == 0
    after = stamps(archive)
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {"proxy_micro_32/seed0/finetune/metrics.jsonl"}
    assert (archive / "proxy_micro_32" / "seed0" / "finetune" / "metrics.jsonl").read_bytes() == b"changed"
    assert not any(p.name.endswith(".tmp") for p in archive.rglob("*"))


def test_a_fresh_clone_runs_nothing_its_archive_holds(collected, tmp_path, monkeypatch, capsys):
    """Run directories are machine-local; the committed archive is not. On a new machine (an empty results root,
    the project's records and archive as committed) submit finds the archived runs done and submits nothing,
    status says so, and collect leaves the records as they were."""
    grid, _, rec = collected
    clone = tmp_path / "clone"
    (clone / "ablations").mkdir(parents=True)
    shutil.copytree(rec.parent, clone / "results")
    monkeypatch.setenv("HIERA_ROOT", str(clone))
    fresh = tmp_path / "fresh-root"
    capsys.readouterr()
    assert main(["submit", str(grid), "--cluster", "debug", "--root", str(fresh), "--allow-dirty"]) == 0
    out = capsys.readouterr().out
    assert "submitted 0 run(s)" in out
    assert "2 done" in out
    assert not any((fresh / "arch").glob("*/seed0"))  # no run directory made: nothing ran
    assert main(["status", str(grid), "--root", str(fresh)]) == 0
    out = capsys.readouterr().out
    assert all(re.search(rf"^{re.escape(run)} +done +archived$", out, re.M) for run in RUNS), out
    before = (clone / "results" / "records" / "arch.jsonl").read_bytes()
    assert main(["collect", str(grid), "--root", str(fresh)]) == 0
    assert (clone / "results" / "records" / "arch.jsonl").read_bytes() == before

    # One run's archived copy without its spec.json (archived before specs were kept): it cannot show it ran this
    # spec, so that run is to submit; and a root holding none of the grid's runs is refused again, since a run
    # not archived must come from the run directories (the wrong-root guard).
    archive = clone / "results" / "archive" / "arch"
    spec_e = archive / RUNS[0] / "spec.json"
    saved = spec_e.read_bytes()
    spec_e.unlink()
    capsys.readouterr()
    assert main(["submit", str(grid), "--cluster", "debug", "--root", str(fresh), "--allow-dirty", "--dry-run"]) == 0
    assert "1 to submit of 2 runs" in capsys.readouterr().out
    assert main(["collect", str(grid), "--root", str(fresh)]) == 2
    assert f"results root {fresh} holds none of the 2 run directories of grid arch" in capsys.readouterr().err
    assert (clone / "results" / "records" / "arch.jsonl").read_bytes() == before
    spec_e.write_bytes(saved)

    # The archived spec no longer the grid's (the grid file changed since): that copy is not the run, which
    # would be submitted afresh.
    for run in RUNS:
        spec = clone / "results" / "archive" / "arch" / run / "spec.json"
        spec.write_text(spec.read_text().replace('"seed": 0', '"seed": 7'))
    capsys.readouterr()
    assert main(["submit", str(grid), "--cluster", "debug", "--root", str(fresh), "--allow-dirty", "--dry-run"]) == 0
    assert "2 to submit of 2 runs" in capsys.readouterr().out


def test_runs_named_before_their_model_had_a_name_are_done_and_collected_under_it(tmp_path, capsys):
    """A grid that ran a proxy as the full-size name plus its fields (as before proxies were registered), then the
    grid file naming the registered proxy: the runs are the same runs (done, nothing to submit), and collect lists
    them under the new name, in the current schema; the run directory's own record stays as the run wrote it."""
    root, rec = tmp_path / "root", tmp_path / "results" / "records"
    old = grids.write_grid(tmp_path, "ren", [("x/seed{seed}", "hiera_tiny_224", "f")], model_args=grids.TINY_ARGS)
    assert main(["submit", str(old), "--cluster", "debug", "--root", str(root), "--allow-dirty"]) == 0
    (tmp_path / "now").mkdir()
    new = grids.write_grid(tmp_path / "now", "ren", [("x/seed{seed}", grids.TINY, "f")])
    capsys.readouterr()
    assert main(["submit", str(new), "--cluster", "debug", "--root", str(root), "--allow-dirty", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "0 to submit of 1 runs" in out
    assert re.search(r"^ *x/seed0 +skip \(done\)", out, re.M), out
    assert main(["collect", str(new), "--root", str(root), "--out", str(rec)]) == 0
    (line,) = [json.loads(x) for x in (rec / "ren.jsonl").read_text().splitlines()]
    assert (line["schema"], line["variant"], line["size_key"], line["status"]) == (
        "hiera-study/run/3",
        "proxy_micro_32",
        "proxy",
        "done",
    )
    assert "model_args" not in line  # the registered proxy is the model: nothing changed from it
    assert json.loads((root / "ren" / "x" / "seed0" / "record.json").read_text())["variant"] == "hiera_tiny_224"
    # a grid naming another model is another run: stale, not done
    (tmp_path / "other").mkdir()
    other = grids.write_grid(tmp_path / "other", "ren", [("x/seed{seed}", grids.TINY + ".e_no_attn_residual", "e")])
    assert main(["submit", str(other), "--cluster", "debug", "--root", str(root), "--allow-dirty", "--dry-run"]) == 0
    assert re.search(r"^ *x/seed0 +skip \(stale", capsys.readouterr().out, re.M)
