"""Every expected failure of the command line is one line and exit 2; records survive crashes and odd directories.

Issue 12 ("nothing lost, nothing run twice"), the parts of the CLI, the bench, the analysis and the demo:
- one error surface: `hiera-study: error: <what and how to fix>` for bad values (overflow, NaN), OS errors naming the
  path, subprocess timeouts naming the command, out-of-memory naming the step; `--debug` / HIERA_DEBUG=1 show the
  traceback; a real bug keeps its traceback;
- the loaders skip a torn last line (a writer killed mid-append) with a warning instead of refusing the file;
- `tables` / `plots` refuse unreadable or empty sources with one line instead of writing empty tables over the old;
- figures are written atomically; the demo never deletes files it did not create;
- a bench append killed with SIGKILL at random points never leaves a file the next command cannot read.
"""

import errno
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

import hiera.cli as cli
from hiera.analysis.frames import load_all, load_curves, load_runs, load_speed
from hiera.analysis.plots import plot_all
from hiera.analysis.tables import write_tables
from hiera.cli import main
from hiera.files import LockHeld, append_jsonl, read_jsonl
from hiera.records import RunRecord

FIX = Path(__file__).parent / "fixtures" / "analysis"
SPEED_LINE = (FIX / "speed" / "bench-infer-fp32-math-cpu_x86_64-pt2.5.1.jsonl").read_text().splitlines()[0]
RUN_LINE = (FIX / "records" / "t1_images_demo.jsonl").read_text().splitlines()[0]


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def one_line_error(code, out, err, needle):
    assert code == 2, err
    assert err.startswith("hiera-study: error: "), err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err, err
    assert needle in err, err


# ---- bad values: overflow and NaN/inf where a number is expected --------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["variants", "hiera_tiny_224", "embed_dim=1e999"], "embed_dim=1e999 is not a finite number"),
        (["variants", "hiera_tiny_224", "mlp_ratio=nan"], "mlp_ratio=nan is not a finite number"),
        (["variants", "hiera_tiny_224", "input_size=(1e999,224)"], "input_size=(1e999,224) is not a finite number"),
        (["variants", "hiera_tiny_224", "embed_dim=" + "9" * 400], "is out of range"),
        (["bench", "hiera_tiny_224", "embed_dim=1e999", "--device", "cpu"], "embed_dim=1e999 is not a finite number"),
        (
            ["train", "--phase", "mae", "--model", "hiera_tiny_224", "--recipe", "in1k_mae", "model.embed_dim=1e999"],
            "embed_dim=1e999 is not a finite number",
        ),
        (
            ["train", "--phase", "mae", "--model", "hiera_tiny_224", "--recipe", "in1k_mae", "recipe.drop_path=nan"],
            "drop_path=nan is not a finite number",
        ),
        (
            ["train", "--phase", "mae", "--model", "hiera_tiny_224", "--recipe", "in1k_mae", "recipe.lr=inf"],
            "lr=inf is not a finite number",
        ),
    ],
)
def test_overflow_and_nan_are_one_line_errors(capsys, tmp_path, argv, needle):
    """Before: `embed_dim=1e999` ended in an OverflowError traceback; NaN rates were accepted."""
    if argv[0] == "train":
        argv = [*argv, "--run-dir", str(tmp_path / "run")]
    one_line_error(*run(capsys, *argv), needle)
    assert not (tmp_path / "run").exists()  # refused before anything was written


# ---- one error surface ----------------------------------------------------------------------------------------------


def _timeout():
    return subprocess.TimeoutExpired(["squeue", "--me", "-h"], 30)


def _oom():
    err = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (GPU 0; 79.1 GiB total)\nmore")
    err.bench_stage = "build"
    return err


@pytest.mark.parametrize(
    ("error", "needle"),
    [
        (
            lambda: PermissionError(errno.EACCES, "Permission denied", "/data/results/records"),
            "permission denied: /data/results/records; check its owner and mode",
        ),
        (
            lambda: IsADirectoryError(errno.EISDIR, "Is a directory", "/x/init.pth"),
            "/x/init.pth is a directory where a file",
        ),
        (lambda: NotADirectoryError(errno.ENOTDIR, "Not a directory", "/x/file/run"), "a file where a directory"),
        (lambda: FileExistsError(errno.EEXIST, "File exists", "/x/run"), "/x/run already exists"),
        (
            lambda: OSError(errno.ENOSPC, "No space left on device", "/x/metrics.jsonl"),
            "no space left on the device writing /x/metrics.jsonl",
        ),
        (lambda: FileNotFoundError("grid file ablations/nope.py not found"), "grid file ablations/nope.py not found"),
        (_timeout, "`squeue --me -h` did not answer within 30 s"),
        (_oom, "out of memory during `hiera-study variants` (build): CUDA out of memory. Tried to allocate 20.00 GiB"),
        (lambda: OverflowError("cannot convert float infinity to integer"), "a number is out of range"),
        (lambda: LockHeld("run directory x is in use by pid 7 on n1"), "run directory x is in use by pid 7"),
        (lambda: RuntimeError("first line\nsecond line"), "first line [more with --debug]"),
    ],
)
def test_expected_failures_are_one_line_exit_2(capsys, monkeypatch, error, needle):
    """Before: only ValueError, FileNotFoundError and RuntimeError were caught (and a multi-line RuntimeError printed
    several lines); every OSError, a subprocess timeout, an OverflowError ended in a traceback."""

    def fails(args):
        raise error()

    monkeypatch.setattr(cli.models, "cmd_variants", fails)
    one_line_error(*run(capsys, "variants"), needle)


def test_debug_flag_and_env_show_the_traceback(capsys, monkeypatch):
    def fails(args):
        raise OSError(errno.ENOSPC, "No space left on device", "/x/y")

    monkeypatch.setattr(cli.models, "cmd_variants", fails)
    for argv in (["--debug", "variants"], ["variants", "--debug"]):
        code, _, err = run(capsys, *argv)
        assert code == 2
        assert "Traceback" in err
        assert "no space left" in err
    monkeypatch.setenv("HIERA_DEBUG", "1")
    code, _, err = run(capsys, "variants")
    assert code == 2
    assert "Traceback" in err


def test_a_bug_keeps_its_traceback(monkeypatch):
    def bug(args):
        return {}["missing"]

    monkeypatch.setattr(cli.models, "cmd_variants", bug)
    with pytest.raises(KeyError):
        main(["variants"])


# ---- loaders: a torn last line is skipped, with a warning ----------------------------------------------------------


def test_torn_last_lines_are_skipped_by_every_loader(tmp_path, capsys):
    """Before: a half-written last line (a node crash, a full disk) made the loaders refuse the whole file."""
    speed = tmp_path / "speed"
    speed.mkdir()
    (speed / "bench.jsonl").write_text(SPEED_LINE + "\n" + SPEED_LINE[:80])
    assert len(load_speed(speed)) == 1
    records = tmp_path / "records"
    records.mkdir()
    (records / "t1_images_demo.jsonl").write_text(RUN_LINE + "\n" + RUN_LINE[:100])
    assert len(load_runs(records)) == 1
    metrics = tmp_path / "run" / "mae" / "metrics.jsonl"
    metrics.parent.mkdir(parents=True)
    metrics.write_text('{"step": 1, "epoch": 0.5, "loss": 1.0}\n{"step": 2, "epoch": 1.0, "lo')
    assert list(load_curves(tmp_path / "run")["opt_step"]) == [1]
    err = capsys.readouterr().err
    assert err.count("skipped the torn last line") == 3
    # the reader never modifies the file (results may be read-only); a bad line that is not the last is an error
    assert (speed / "bench.jsonl").read_text().endswith(SPEED_LINE[:80])
    (speed / "bench.jsonl").write_text(SPEED_LINE[:80] + "\n" + SPEED_LINE + "\n")
    with pytest.raises(ValueError, match=r"bench.jsonl:1: not valid JSON"):
        load_speed(speed)


# ---- tables / plots: unreadable, missing or empty sources fail before writing ----------------------------------------


@pytest.fixture
def old_tables(tmp_path):
    """An output directory holding the tables of the fixture records, as a previous `tables` run left them."""
    out = tmp_path / "tables"
    write_tables(load_all(FIX / "records", FIX / "speed", breakdown=()), out)
    return out, {p.name: p.read_bytes() for p in out.iterdir()}


def _tables(capsys, out, *argv):
    return run(capsys, "tables", "--speed", str(FIX / "speed"), "--out", str(out), *argv)


def test_unreadable_records_directory_is_one_line_and_keeps_the_old_tables(capsys, monkeypatch, tmp_path, old_tables):
    """Before: `Path.glob` found nothing in an unreadable directory: exit 0, "0 run records", an empty Table 1
    written over the old one. Tests run as root, which ignores permissions: the directory listing is made to fail
    as it does for a normal user (the chmod test below runs for real when not root)."""
    out, before = old_tables
    records = tmp_path / "records"
    records.mkdir()
    (records / "t1_images_demo.jsonl").write_text(RUN_LINE + "\n")
    real = Path.iterdir

    def iterdir(self):
        if self == records:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    one_line_error(*_tables(capsys, out, "--records", str(records)), f"permission denied: {records}")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a mode-000 directory; simulated in the test above")
def test_chmod_000_records_directory(capsys, tmp_path, old_tables):
    out, before = old_tables
    records = tmp_path / "records"
    records.mkdir()
    (records / "t1_images_demo.jsonl").write_text(RUN_LINE + "\n")
    records.chmod(0)
    try:
        one_line_error(*_tables(capsys, out, "--records", str(records)), "permission denied")
    finally:
        records.chmod(0o755)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.parametrize(
    ("case", "needle"),
    [
        ("empty_records", "holds no run records"),
        ("empty_speed", "holds no speed records"),
        ("grid_matches_nothing", "holds no run records of grid 'zzz*'"),
        ("records_under_a_file", "no such records directory"),
        ("out_is_a_file", "already exists (a file where a directory is expected?)"),
        ("out_under_a_file", "part of this path is a file where a directory is expected"),
    ],
)
def test_empty_or_wrong_sources_fail_before_writing(capsys, tmp_path, old_tables, case, needle):
    """Before: an explicitly named records directory holding nothing (a typo, an unmounted disk) or a grid that
    matches nothing gave exit 0 and empty tables over the old ones; `--out` naming a file gave a traceback."""
    out, before = old_tables
    empty = tmp_path / "empty"
    empty.mkdir()
    a_file = tmp_path / "a_file"
    a_file.write_text("not a directory\n")
    argv = {
        "empty_records": ["--records", str(empty)],
        "empty_speed": ["--records", str(FIX / "records"), "--speed", str(empty)],
        "grid_matches_nothing": ["--records", str(FIX / "records"), "--grid", "zzz*"],
        "records_under_a_file": ["--records", str(a_file / "records")],
        "out_is_a_file": ["--records", str(FIX / "records"), "--out", str(a_file)],
        "out_under_a_file": ["--records", str(FIX / "records"), "--out", str(a_file / "tables")],
    }[case]
    one_line_error(*_tables(capsys, out, *argv), needle)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert a_file.read_text() == "not a directory\n"


def test_plots_refuse_an_empty_records_directory(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    code, out, err = run(capsys, "plots", "--records", str(tmp_path / "empty"), "--out", str(tmp_path / "figs"))
    one_line_error(code, out, err, "holds no run records")
    assert not (tmp_path / "figs").exists()


def test_default_sources_still_work(capsys, tmp_path):
    """The defaults may hold nothing yet (a fresh clone has no results/records/): not an error; the tables show the
    paper's numbers and the committed speed and breakdown records."""
    code, out, err = run(capsys, "tables", "--out", str(tmp_path / "tables"))
    assert code == 0, err
    assert "run records" in out
    assert (tmp_path / "tables" / "table1.md").is_file()


# ---- figures are written atomically -------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_figure_cut_off_mid_write_leaves_the_previous_one(tmp_path, monkeypatch):
    """Before: `fig.savefig(path)` wrote in place: a kill or a full disk mid-write left a truncated PNG/PDF."""
    from matplotlib.figure import Figure

    recs = load_all(FIX / "records", FIX / "speed", breakdown=())
    out = tmp_path / "figs"
    plot_all(recs, out, log=lambda _: None)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real = Figure.savefig
    calls = []

    def savefig(self, fname, **kwargs):
        calls.append(fname)
        if len(calls) == 3:  # the second figure's PNG: half of it, then the disk is full
            data = b"\x89PNG half a figure"
            if isinstance(fname, (str, os.PathLike)):
                Path(fname).write_bytes(data)
            else:
                fname.write(data)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, fname, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    with pytest.raises(OSError, match="No space left on device"):
        plot_all(recs, out, log=lambda _: None)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no torn file, no temporary left behind


# ---- the demo never deletes files it did not create ------------------------------------------------------------------


def test_demo_keeps_foreign_speed_records_and_shows_its_latest_profile(capsys, tmp_path, monkeypatch):
    """Before: `demo --out results` deleted every `results/speed/*.jsonl`, the user's own records included.

    Training and timing are replaced by canned records (the real flow is `test_cli.py::test_demo_end_to_end...`);
    the file handling around them is the demo's own."""
    import hiera.demo

    template = json.loads((FIX / "records" / "demo.jsonl").read_text().splitlines()[0])
    speed = json.loads(SPEED_LINE)

    def pipeline(spec, run_dir):
        canned = {**template, "run": spec.run, "step": spec.step, "variant": spec.variant, "run_dir": str(run_dir)}
        return RunRecord.from_json(canned, "canned")

    rate = {"now": 111.0}
    created = []

    def bench(names, cfg, overrides, out_dir=None, progress=print, path=None):
        assert path is not None
        assert not path.exists()  # a file of this run's own, never an existing one
        created.append(path)
        append_jsonl(
            path,
            [
                {
                    **speed,
                    "variant": n,
                    "model": n,
                    "step": None,
                    "input_size": [32, 32],
                    "overrides": {"embed_dim": 16},
                    "samples_per_s": rate["now"],
                    "samples_per_s_min": rate["now"],
                    "samples_per_s_max": rate["now"],
                    "best_batch": True,
                }
                for n in names
            ],
        )
        return path

    monkeypatch.setattr(hiera.demo, "run_pipeline", pipeline)
    monkeypatch.setattr(hiera.demo, "run", bench)  # the demo times through hiera.bench.run
    foreign = tmp_path / "speed" / "x.jsonl"
    foreign.parent.mkdir()
    mine = json.dumps({**speed, "samples_per_s": 999.0}) + "\n"
    foreign.write_text(mine)
    argv = ["demo", "--out", str(tmp_path), "--no-figures", "--width", "16", "--jobs", "1"]  # in-process: patched
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    rate["now"] = 222.0
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert foreign.read_text() == mine  # the user's file is untouched
    assert all(p.is_file() for p in created)
    assert len(set(created)) == 2  # nothing deleted, a new file each run
    table = (tmp_path / "tables" / "demo.md").read_text()
    assert "222.0" in table
    assert "111.0" not in table
    assert "166.5" not in table  # the latest profile only
    code, out, err = run(capsys, *argv, "--no-bench")  # no new profile: the latest one, named by the manifest
    assert code == 0, err
    assert "222.0" in (tmp_path / "tables" / "demo.md").read_text()
    assert len(created) == 2
    assert foreign.read_text() == mine


def data_has_no_torn_line_but_the_last(path: Path) -> bool:
    """Every newline-terminated line parses (only an unterminated tail may be torn): each torn line was cut off by
    the next append, not appended after."""
    terminated = path.read_bytes().split(b"\n")[:-1]
    return all(isinstance(json.loads(line), dict) for line in terminated if line.strip())


# ---- kill -9 of a bench append ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_kill_9_during_bench_appends_loses_at_most_the_record_in_flight(tmp_path):
    """A child appends bench-like records (large, so a SIGKILL can land inside a write and tear it) until it is
    killed at a random moment; after every kill the file is readable, each child's records are all there in order
    except at most its last (in flight), and the next child's first append cuts a torn line off (before: appends
    continued after a torn line, and the loader refused the whole file).
    """
    path = tmp_path / "speed" / "bench.jsonl"
    base = json.loads(SPEED_LINE)
    rng = random.Random(12)
    kept: dict[int, int] = {}
    for gen in range(24):
        pid = os.fork()
        if pid == 0:  # the child: append until killed
            try:
                for i in range(10**6):
                    append_jsonl(path, [{**base, "gen": gen, "i": i, "pad": "x" * rng.randrange(1, 1 << 15)}])
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0.01, 0.3))
        os.kill(pid, signal.SIGKILL)
        assert os.waitpid(pid, 0)[1] & 0x7F == signal.SIGKILL
        if gen % 3 == 2 and path.exists():  # the last kill too: the loader below must skip its torn line
            # A kill inside one large write(2) can leave a short write (the kernel stops between pages on a fatal
            # signal); it is rare on a small machine, so every third kill leaves one for certain.
            line = json.dumps({**base, "gen": gen, "i": 10**6, "pad": "y" * 5000}).encode()
            with path.open("ab") as f:
                f.write(line[: rng.randrange(1, len(line) - 1)])
        records = read_jsonl(path) if path.exists() else []
        for g in range(gen + 1):
            mine = [r["i"] for r in records if r["gen"] == g]
            assert mine == list(range(len(mine))), f"generation {g} lost or reordered a record that was not last"
            if g < gen:
                assert len(mine) == kept[g], f"generation {g}'s records changed after it was killed"
        kept[gen] = len([r for r in records if r["gen"] == gen])
    assert len(load_speed(path.parent)) == len(records)  # the tables' loader reads what the kills left
    assert data_has_no_torn_line_but_the_last(path)
    append_jsonl(path, [{**base, "gen": -1, "i": 0}])  # the next writer repairs whatever the last kill left
    data = path.read_bytes()
    assert data.endswith(b"\n")
    assert all(json.loads(line) for line in data.splitlines())
    assert sum(kept.values()) > 24
