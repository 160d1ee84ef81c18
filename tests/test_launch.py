"""Grid files and the launcher without SLURM: dry runs of every grid, the debug cluster end to end, bad inputs."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from hiera.cli import main
from hiera.env import REPO
from hiera.launch.grid import GridContext, grid_runs

GRIDS = sorted((REPO / "ablations").glob("*.py"))


def docstring_commands(path: Path) -> list[list[str]]:
    """Every `hiera-study ...` command in a grid file's docstring, as argv without the program name."""
    import ast

    doc = ast.get_docstring(ast.parse(path.read_text()))
    return [shlex.split(m)[1:] for m in re.findall(r"^\s*(?:Command: )?(hiera-study .+)$", doc, re.M)]


def one_error_line(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, err
    assert err.startswith("hiera-study: error:"), err
    return err


def test_every_grid_has_a_docstring_with_table_cost_and_command():
    assert {p.stem for p in GRIDS} >= {
        "smoke",
        "t01_ladder_images",
        "t01_ladder_video",
        "t02_sizes",
        "t03_mae_ablations",
        "appb_supervised_ladder",
    }
    for path in GRIDS:
        text = path.read_text()
        for word in ("Expected", "Cost", "Command: hiera-study submit"):
            assert word in text, f"{path.name} docstring lacks {word!r}"


@pytest.mark.parametrize("path", GRIDS, ids=lambda p: p.stem)
def test_docstring_commands_dry_run(path, tmp_path, capsys):
    """Each docstring command, as a dry run (nothing submitted) into a scratch root."""
    for argv in docstring_commands(path):
        assert argv[0] == "submit"
        argv = [a for a in argv if a != "--dry-run"] + ["--dry-run", "--root", str(tmp_path)]
        if "--profile" in argv:  # the docstrings name the user's profile; the test uses the shipped example
            argv[argv.index("--profile") + 1] = "example"
        assert main(argv) == 0, capsys.readouterr().err
        out = capsys.readouterr().out
        assert "nothing submitted" in out
        assert str(tmp_path) in out
        assert re.search(r"(\d+) to submit of (\d+) runs", out)
    assert not any(tmp_path.iterdir())  # a dry run writes nothing


def test_table1_grid_is_the_ladder():
    _, runs = grid_runs(REPO / "ablations" / "t01_ladder_images.py", GridContext(imagenet="/data/in1k"))
    assert [r.spec.step for r in runs] == ["sup", "mae", "a", "b", "c", "d", "e", "f"]
    assert runs[0].spec.pretrain is None
    assert runs[0].spec.train.recipe == "in1k_supervised"
    for r in runs[1:]:
        assert r.spec.pretrain.recipe == "in1k_mae"
        assert r.spec.pretrain.pretrain_epochs == 400
        assert r.spec.train.resolved_recipe().epochs == 50
        assert r.spec.train.data_path == "/data/in1k"
        assert r.resources.nodes * r.resources.gpus_per_node == 64
    _, runs = grid_runs(REPO / "ablations" / "t03_mae_ablations.py", GridContext())
    settings = {(r.spec.variant, r.spec.ablation, r.spec.setting) for r in runs}
    assert ("hiera_large_224", "mask_ratio", "0.5") in settings
    assert ("hiera_large_16x224", "target", "hog") in settings
    hog = next(r for r in runs if r.spec.setting == "hog")
    assert hog.spec.pretrain.target == "hog"


@pytest.mark.slow
def test_debug_cluster_runs_the_smoke_grid_and_relaunch_submits_nothing(tmp_path, capsys):
    argv = docstring_commands(REPO / "ablations" / "smoke.py")[0] + ["--root", str(tmp_path), "--allow-dirty"]
    assert main(argv) == 0, capsys.readouterr().err
    assert "submitted 2 run(s)" in capsys.readouterr().out
    for run in ("proxy_micro_32.e_no_attn_residual/seed0", "proxy_micro_32/seed0"):
        record = json.loads((tmp_path / "smoke" / run / "record.json").read_text())
        assert record["status"] == "done"
        assert record["run"] == run
        assert record["proxy"] is True
        assert 0 <= record["metrics"]["top1"] <= 100
        assert record["metrics"]["mae_loss"] > 0
        assert record["env"]["git_sha"]
        assert record["dataset"] == "fashion-mnist"
    assert main(argv) == 0
    assert "submitted 0 run(s)" in capsys.readouterr().out
    assert main(["status", "ablations/smoke.py", "--root", str(tmp_path)]) == 0
    assert "smoke: 2 done, 0 running, 0 pending, 0 failed, 0 missing of 2" in capsys.readouterr().out
    assert main(["collect", "ablations/smoke.py", "--root", str(tmp_path), "--out", str(tmp_path / "rec")]) == 0
    lines = [json.loads(x) for x in (tmp_path / "rec" / "smoke.jsonl").read_text().splitlines()]
    assert [x["status"] for x in lines] == ["done", "done"]
    launches = list((tmp_path / "smoke" / "launches").glob("*.json"))
    assert len(launches) == 2
    assert all(json.loads(p.read_text())["git_sha"] for p in launches)


FAILING = '''"""A grid where one run raises. Command: hiera-study submit {path} --cluster debug"""
import importlib.util
from pathlib import Path

spec = importlib.util.spec_from_file_location("smoke", "{smoke}")
smoke = importlib.util.module_from_spec(spec)
spec.loader.exec_module(smoke)


def runs(ctx):
    out = smoke.runs(ctx)
    bad = out[0].spec
    broken = bad.train.replace(data_path="{missing}")
    out[0] = type(out[0])(type(bad)(**{{**bad.__dict__, "train": broken, "pretrain": bad.pretrain.replace(
        data_path="{missing}")}}), out[0].resources)
    return out
'''


@pytest.mark.slow
def test_a_failing_run_is_reported_with_its_error(tmp_path, capsys):
    grid = tmp_path / "failing.py"
    grid.write_text(FAILING.format(path=grid, smoke=REPO / "ablations" / "smoke.py", missing=tmp_path / "none"))
    root = tmp_path / "root"
    assert main(["submit", str(grid), "--cluster", "debug", "--root", str(root), "--allow-dirty"]) == 0
    capsys.readouterr()
    assert main(["status", str(grid), "--root", str(root)]) == 0
    out = capsys.readouterr().out.splitlines()
    failed = [line for line in out if " failed " in line]
    assert len(failed) == 1
    assert failed[0].startswith("proxy_micro_32.e_no_attn_residual/seed0")
    assert "FileNotFoundError: Fashion-MNIST not found" in failed[0]
    assert "log:" in failed[0]
    assert out[-1] == "failing: 1 done, 0 running, 0 pending, 1 failed, 0 missing of 2"


def test_bad_inputs_fail_in_one_line_before_submitting(tmp_path, capsys):
    err = one_error_line(capsys, ["submit", "ablations/nope.py", "--dry-run"])
    assert "grid file ablations/nope.py does not exist" in err
    err = one_error_line(capsys, ["submit", "ablations/smoke.py", "--only", "resnet*", "--dry-run"])
    assert "matches no run of grid smoke" in err
    blocker = tmp_path / "file"
    blocker.write_text("")
    err = one_error_line(capsys, ["submit", "ablations/smoke.py", "--cluster", "debug", "--root", str(blocker / "x")])
    assert "is not writable" in err
    err = one_error_line(capsys, ["submit", "ablations/smoke.py", "--cluster", "slurm", "--root", str(tmp_path)])
    assert "needs a partition" in err or "needs SLURM's sbatch" in err
    err = one_error_line(capsys, ["submit", "ablations/smoke.py", "--profile", "nope", "--dry-run"])
    assert "cluster profile 'nope' not found" in err
    assert not (tmp_path / "smoke").exists()


def test_cluster_profile_expands_user_and_variables_and_refuses_unset_ones(tmp_path, monkeypatch):
    """`slurm/clusters/example.json` writes its root as /checkpoint/$USER/...: read as a shell would, never as a
    folder literally named `$USER`; a variable that is not set is a one-line error naming the field."""
    from hiera.launch.profile import ClusterProfile

    monkeypatch.setenv("USER", "alice")
    monkeypatch.setenv("HOME", str(tmp_path))
    example = ClusterProfile.load(str(REPO / "slurm" / "clusters" / "example.json"))
    assert example.root == "/checkpoint/alice/hiera-study/runs"
    profile = tmp_path / "p.json"
    profile.write_text(json.dumps({"root": "~/runs", "imagenet": "${DATA}/imagenet"}))
    monkeypatch.setenv("DATA", "/data")
    loaded = ClusterProfile.load(str(profile))
    assert (loaded.root, loaded.imagenet) == (str(tmp_path / "runs"), "/data/imagenet")
    monkeypatch.delenv("DATA")
    with pytest.raises(ValueError, match=r"imagenet='\$\{DATA\}/imagenet'.*not set"):
        ClusterProfile.load(str(profile))
