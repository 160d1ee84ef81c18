"""The example scripts of `analysis/` run on the committed test fixtures and print what their docstrings promise."""

import runpy
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures" / "analysis"


def run_script(name: str, *args: str, capsys) -> str:
    old = sys.argv
    sys.argv = [name, *args]
    try:
        runpy.run_path(str(ROOT / "analysis" / name), run_name="__main__")
    finally:
        sys.argv = old
    return capsys.readouterr().out


def test_table1_prints_the_ladder_with_seeds_and_the_papers_column(capsys):
    out = run_script("table1.py", "--records", str(FIX / "records"), "--speed", str(FIX / "speed"), capsys=capsys)
    assert "### Table 1: simplifying MViTv2 into Hiera" in out
    # the fixture's two sup seeds (88.12, 88.40; make_fixtures.py): mean 88.26, std 0.198; the paper's 85.3
    assert "| sup | MViTv2, supervised | 88.26 ± 0.20 (2) |" in out
    assert "| 85.3 |" in out


def test_speed_ladder_prints_speedups_over_sup(capsys):
    out = run_script("speed_ladder.py", "--records", str(FIX / "records"), "--speed", str(FIX / "speed"), capsys=capsys)
    rows = {}
    for line in out.splitlines():  # the pivot prints the modality once, on its first row
        cells = line.split()
        step = cells[1] if cells[:1] in (["image"], ["video"]) else (cells[0] if cells else "")
        rows.setdefault(step, cells)  # the image block comes first
    assert rows["sup"][-2:] == ["1.00", "1.00"]  # the baseline over itself, ours and the paper's
    assert float(rows["f"][-1]) == pytest.approx(531.4 / 219.8, abs=0.01)  # the paper's f over sup (Table 1)


def test_mae_vs_scratch_pairs_the_two_ladders(capsys):
    out = run_script("mae_vs_scratch.py", "--records", str(FIX / "records"), capsys=capsys)
    assert "MAE + finetuning vs from scratch" in out
    assert "| image | a | replace rel pos with absolute |" in out
    with pytest.raises(SystemExit, match="no pair of ladders"):
        run_script("mae_vs_scratch.py", "--records", str(FIX / "records"), "--scratch", "t1_*", capsys=capsys)
