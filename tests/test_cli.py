"""The `hiera-study` command line: variants table/JSON, glob, overrides, errors, demo."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hiera.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_variants_json_schema_and_glob(capsys):
    code, out, _ = run(capsys, "variants", "hiera_large_224*", "--json")
    rows = json.loads(out)
    assert code == 0
    assert len(rows) == 10
    assert all(set(r) == {"name", "step", "size", "modality", "masked", "params_m", "gmacs"} for r in rows)
    assert [r["step"] for r in rows] == ["sup", "mae", "a", "b", "c", "d", "e", "f", "g", "h"]  # g, h: beyond the paper
    assert {r["size"] for r in rows} == {"L"}
    assert {r["modality"] for r in rows} == {"image"}
    # Every MAE step encodes sparsely; the supervised baseline pools across mask units by design, and HieraDet's fixed
    # windows (h) span masked units.
    assert [r["masked"] for r in rows] == [False] + [True] * 8 + [False]
    by_step = {r["step"]: r for r in rows}
    assert by_step["sup"]["params_m"] == 217.99
    assert by_step["f"]["params_m"] == 213.74
    assert abs(by_step["f"]["gmacs"] - 40.27) / 40.27 < 0.005


def test_variants_table_and_overrides(capsys):
    code, out, _ = run(capsys, "variants", "hiera_tiny_224", "num_classes=10")
    assert code == 0
    assert "hiera_tiny_224" in out
    assert "params (M)" in out
    code, out, _ = run(capsys, "variants", "hiera_tiny_224", "num_classes=10", "--json")
    assert json.loads(out)[0]["params_m"] == round(27.91 - (1000 - 10) * 769 / 1e6, 2)


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["variants", "nothing_*"], "no variant matches"),
        (["variants", "hiera_tiny_224", "embed=3"], "unknown ModelConfig field"),
        (["variants", "hiera_tiny_224", "pos_embed=learned"], "'rel', 'abs'"),
    ],
)
def test_bad_input_is_one_line_error(capsys, argv, needle):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert needle in err
    assert err.count("\n") == 1
    assert not out


def test_unknown_flag_is_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["variants", "--bogus"])
    assert exc.value.code == 2


@pytest.mark.slow
def test_demo_end_to_end_at_a_tiny_scale(capsys, tmp_path):
    """The main job's whole flow (train every ladder step, profile, tables, figures), shrunk to run in minutes.
    A speed file of the user's under the output directory survives it (the demo used to delete them)."""
    foreign = tmp_path / "speed" / "x.jsonl"
    foreign.parent.mkdir()
    foreign.write_text('{"mine": true}\n')
    code, out, err = run(
        capsys,
        "demo",
        "--out",
        str(tmp_path),
        "--train-samples",
        "128",
        "--eval-samples",
        "64",
        "--width",
        "16",
        "--epochs-scale",
        "0.34",
    )  # MAE 1 + finetuning 1, supervised 2 epochs
    assert code == 0, err
    records = [json.loads(x) for x in (tmp_path / "records" / "demo.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == ["sup", "mae", "a", "b", "c", "d", "e", "f"]
    assert all(r["status"] == "done" and r["proxy"] and r["dataset"] == "fashion-mnist" for r in records)
    assert records[0]["metrics"]["mae_loss"] is None
    assert all(r["metrics"]["mae_loss"] > 0 for r in records[1:])
    # per-example predictions for the paired statistics: named in every record, found under its run directory
    assert records[0]["predictions"] == "supervised/predictions.npy"
    assert all(r["predictions"] == "finetune/predictions.npy" for r in records[1:])
    assert all((Path(r["run_dir"]) / r["labels"]).is_file() for r in records)
    assert foreign.read_text() == '{"mine": true}\n'
    profile = tmp_path / json.loads((tmp_path / "demo-manifest.json").read_text())["speed"]
    speed = [json.loads(x) for x in profile.read_text().splitlines()]
    assert sorted(r["step"] for r in speed) == sorted(r["step"] for r in records)
    table = (tmp_path / "tables" / "demo.md").read_text()
    assert "Fashion-MNIST" in table
    assert "85.6" in table  # ours labelled as the proxy, the paper's row beside it
    assert "] vs sup (1) |" in table.replace("‡", "")  # row mae's paired difference to sup, one seed
    assert table in out
    assert (tmp_path / "figures" / "index.md").is_file()
    assert "demo finished in" in out


@pytest.mark.slow
def test_console_script():
    """`pip install -e .` puts `hiera-study` beside the interpreter running the tests."""
    script = Path(sys.executable).parent / "hiera-study"
    assert script.exists(), f"{script} missing: install the package (bash quickstart.sh test does)"
    out = subprocess.run([str(script), "variants", "mvitv2_*", "--json"], capture_output=True, text=True, check=True)
    assert [r["name"] for r in json.loads(out.stdout)][0] == "mvitv2_tiny_224"
