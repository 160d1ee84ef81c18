"""The speed profiler on CPU: record schema, peers in the same run, OOM fallback and OOM records at every stage,
GMACs, presets, errors, torn-line repair of the record files.

Speed itself is never asserted (it is measured by the benchmark and recorded); these check the machinery.
"""

import json
import platform

import pytest
import torch

import hiera
from hiera.analysis.frames import Records, load_speed
from hiera.analysis.tables import speed_tables
from hiera.bench import throughput as bench
from hiera.bench.throughput import BenchConfig, protocol_config, run
from hiera.cli import main

FAST = dict(batch_sizes=(1,), warmup=0, iters=1, trials=2, device="cpu", precision="fp32")
SCHEMA = {
    "variant",
    "step",
    "size_label",
    "modality",
    "impl",
    "model",
    "mode",
    "batch_size",
    "requested_batch",
    "oom",
    "precision",
    "attn",
    "compile",
    "samples_per_s",
    "samples_per_s_min",
    "samples_per_s_max",
    "samples_per_s_iqr",
    "step_ms",
    "params_m",
    "gmacs",
    "tflops",
    "mfu",
    "peak_tflops",
    "device",
    "driver",
    "torch",
    "cuda",
    "cudnn",
    "cpu_threads",
    "git_sha",
    "git_dirty",
    "date",
    "separate_and_pad",
    "ratio_vs_peer",
    "sep_pad_overhead",
    "best_batch",
    "protocol",
    "input_size",
    "warmup",
    "iters",
    "trials",
    "compile_fullgraph",
    "graph_breaks",
    "recompiles",
    "compile_s",
    "peak_mem_gib",
    "attn_kernels",
    "attn_backends",
    "python",
    "timm",
    "overrides",
    "status",
    "oom_stage",
    "ratio_vs_official",
    "official_version",
}


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_records_schema_and_peer_ratio_from_the_same_run(tmp_path):
    path = run(["hiera_tiny_224"], BenchConfig(peers=True, **FAST), out_dir=tmp_path, progress=lambda s: None)
    # mode, precision, attention, device (CPU: its architecture) and torch version, as README "Profiling speed"
    assert path.name == f"bench-infer-fp32-math-cpu_{platform.machine()}-pt{torch.__version__.split('+')[0]}.jsonl"
    ours, peer = read(path)
    # every field of the documented schema (results/README.md) and nothing else: none the loader would drop
    assert set(ours) == SCHEMA | {"schema"}
    assert ours["schema"] == "hiera-study/speed/2"
    assert ours["impl"] == "hiera-study"
    assert peer["impl"] == "timm"
    assert peer["model"] == "hiera_tiny_224"
    assert ours["ratio_vs_peer"] == pytest.approx(ours["samples_per_s"] / peer["samples_per_s"])
    assert ours["params_m"] == pytest.approx(27.910216)
    assert peer["params_m"] == pytest.approx(27.910216)
    assert ours["tflops"] == pytest.approx(2 * ours["gmacs"] * ours["samples_per_s"] / 1e3)
    assert ours["device"].startswith("cpu")
    assert ours["cpu_threads"] >= 1
    assert ours["git_sha"]
    # the paper's protocol: no SDPA call in either model (timm's fused attention switched off too)
    assert ours["attn_backends"] == peer["attn_backends"] == ["explicit"]
    assert ours["peak_mem_gib"] is None


def test_rows_a_c_also_time_separate_and_pad_off(tmp_path):
    path = run(["hiera_tiny_224.c_no_stride1_pool"], BenchConfig(**FAST), out_dir=tmp_path, progress=lambda s: None)
    on, off = read(path)
    assert (on["separate_and_pad"], off["separate_and_pad"]) == ("on", "off")
    assert on["sep_pad_overhead"] == pytest.approx(off["samples_per_s"] / on["samples_per_s"])


def test_gmacs_equal_with_sdpa_on_and_off(tmp_path):
    a = read(run(["hiera_tiny_224"], BenchConfig(attn="math", **FAST), out_dir=tmp_path, progress=lambda s: None))
    b = read(run(["hiera_tiny_224"], BenchConfig(attn="sdpa", **FAST), out_dir=tmp_path, progress=lambda s: None))
    assert a[0]["gmacs"] == b[0]["gmacs"] == pytest.approx(4.914, abs=1e-3)


def fake_oom(monkeypatch, limit):
    real = bench.make_step

    def make_step(model, mcfg, cfg, batch):
        if batch > limit:

            def boom():
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

            return boom
        return real(model, mcfg, cfg, batch)

    monkeypatch.setattr(bench, "make_step", make_step)


def test_oom_falls_back_and_records_what_ran(tmp_path, monkeypatch):
    fake_oom(monkeypatch, limit=2)
    cfg = BenchConfig(**{**FAST, "batch_sizes": (8,)})
    (row,) = read(run(["hiera_tiny_224"], cfg, out_dir=tmp_path, progress=lambda s: None))
    assert (row["requested_batch"], row["batch_size"], row["oom"]) == (8, 2, True)


def test_sweep_stops_at_first_oom_and_flags_best(tmp_path, monkeypatch):
    fake_oom(monkeypatch, limit=2)
    cfg = BenchConfig(**{**FAST, "sweep": True, "max_batch": 8})
    rows = read(run(["hiera_tiny_224"], cfg, out_dir=tmp_path, progress=lambda s: None))
    assert [r["requested_batch"] for r in rows] == [1, 2, 4]
    assert rows[-1]["batch_size"] is None
    assert rows[-1]["oom"]
    assert sum(r["best_batch"] for r in rows) == 1


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["train", "mae"])
def test_training_modes_run(tmp_path, mode):
    (row,) = read(
        run(
            ["hiera_tiny_224.d_kernel_eq_stride"],
            BenchConfig(mode=mode, **FAST),
            out_dir=tmp_path,
            progress=lambda s: None,
        )
    )
    assert row["mode"] == mode
    assert row["samples_per_s"] > 0
    assert row["tflops"] == pytest.approx(6 * row["gmacs"] * row["samples_per_s"] / 1e3)
    if mode == "mae":  # the count follows the sparse encoder: fewer MACs with more units masked
        mcfg = hiera.get_variant("hiera_tiny_224.d_kernel_eq_stride").config.replace(q_pool=2)
        dense = bench.mae_gmacs(mcfg, BenchConfig(mask_ratio=0.0, **FAST))
        assert 0 < row["gmacs"] < dense


@pytest.mark.slow
def test_isolated_run_in_a_fresh_process(tmp_path):
    (row,) = read(
        run(
            ["hiera_tiny_224"],
            BenchConfig(**FAST),
            {"num_classes": 10},
            out_dir=tmp_path,
            isolate=True,
            progress=lambda s: None,
        )
    )
    assert row["overrides"] == {"num_classes": 10}
    assert row["samples_per_s"] > 0


def test_protocol_presets():
    paper = protocol_config("paper", device="cpu", precision="fp32")
    assert (paper.attn, paper.compile, paper.sweep, paper.protocol) == ("math", False, True, "paper")
    modern = protocol_config("modern", device="cpu")
    assert (modern.precision, modern.attn, modern.compile) == ("bf16", "sdpa", True)


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["bench", "hiera_nope_224", "--device", "cpu"], "unknown variant"),
        (["bench", "hiera_tiny_224", "--device", "cpu", "--batch-size", "0"], "batch sizes must be >= 1"),
        (
            ["bench", "hiera_tiny_224", "--device", "cpu", "--precision", "fp16"],
            "fp16 autocast is not supported on CPU",
        ),
        (["bench", "hiera_tiny_224", "--device", "cpu", "--precision", "fp8"], "not one of fp32, fp16, bf16"),
        (["bench", "hiera_tiny_224", "--device", "cpu", "--mode", "eval"], "not one of infer, train, mae"),
        (["bench", "hiera_tiny_224", "--protocol", "fast"], "not one of paper, modern"),
        (["bench", "hiera_tiny_224.sup_mvitv2", "--device", "cpu", "--mode", "mae"], "cannot encode sparsely"),
    ],
)
def test_bad_arguments_are_one_line_errors(capsys, tmp_path, argv, needle):
    assert main([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert err.count("\n") == 1


@pytest.mark.slow
def test_official_package_timed_in_its_own_environment(tmp_path, official_python):
    cfg = BenchConfig(official_python=official_python, **FAST)
    ours, official = read(run(["hiera_tiny_224"], cfg, out_dir=tmp_path, progress=lambda s: None))
    assert official["impl"] == "official"
    assert official["model"] == "hiera_tiny_224"
    assert official["params_m"] == pytest.approx(27.910216)  # the same model, counted in the other process
    assert ours["ratio_vs_official"] == pytest.approx(ours["samples_per_s"] / official["samples_per_s"])


# ---- out of memory at any stage: recorded, and the bench moves on -------------------------------------------------
TWO = ["hiera_tiny_224.d_kernel_eq_stride", "hiera_tiny_224"]


def oom_in(monkeypatch, where):
    """Make the first model's `where` stage run out of memory as CUDA would; the second model runs normally."""
    first = {"model": None}

    def oom():
        return torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    if where == "build":  # moving the model to the device: `build_on` builds on the host, then `.to(device)`
        real_to = torch.nn.Module.to

        def to(self, *args, **kwargs):
            if first["model"] is None:
                first["model"] = self
                raise oom()
            return real_to(self, *args, **kwargs)

        monkeypatch.setattr(torch.nn.Module, "to", to)
        return
    if where == "profile":
        real_kernels = bench.attention_kernels
        calls = []

        def kernels(step, device):
            calls.append(step)
            if len(calls) == 1:
                raise oom()
            return real_kernels(step, device)

        monkeypatch.setattr(bench, "attention_kernels", kernels)
        return
    real_step = bench.make_step

    def make_step(model, mcfg, cfg, batch):
        if first["model"] is None:
            first["model"] = model
        if model is first["model"] or getattr(model, "_orig_mod", None) is first["model"]:
            if where == "inputs":
                raise oom()

            def boom():  # warm-up, timing or the compiling first call, whichever calls the step first
                raise oom()

            return boom
        return real_step(model, mcfg, cfg, batch)

    monkeypatch.setattr(bench, "make_step", make_step)


@pytest.mark.parametrize(
    ("where", "cfg"),
    [
        ("build", {}),
        ("inputs", {}),
        ("warmup", {"warmup": 1}),
        ("timing", {}),
        ("profile", {}),
        ("compile", {"compile": True, "compile_backend": "eager"}),
    ],
)
def test_oom_at_any_stage_is_recorded_and_the_next_variant_measured(tmp_path, monkeypatch, where, cfg):
    """Before: an OOM while moving a model to the device aborted the whole bench (later variants never measured),
    and no record said at which stage memory ran out."""
    oom_in(monkeypatch, where)
    lines = []
    path = run(TWO, BenchConfig(**{**FAST, **cfg}), out_dir=tmp_path, progress=lines.append)
    first, second = read(path)
    assert (first["variant"], first["status"], first["oom_stage"]) == (TWO[0], "oom", where)
    assert first["oom"]
    assert first["batch_size"] is None
    assert first["requested_batch"] == 1
    assert (second["variant"], second["status"], second["oom_stage"]) == (TWO[1], "ok", None)
    assert second["samples_per_s"] > 0
    assert any("out of memory at batch 1" in line and where in line for line in lines)
    # the analysis reads the record and shows it as a gap with a note, beside the measured model
    speed = load_speed(tmp_path)
    assert list(speed["status"]) == ["oom", "ok"]
    assert list(speed["oom_stage"].fillna("-")) == [where, "-"]
    (table,) = speed_tables(Records(speed.iloc[:0], speed, {}))
    note = " ".join(table.notes)
    assert f"`{TWO[0]}`" in note
    assert "while building" in note if where == "build" else f"({where})" in note


def test_oom_halving_records_where_the_larger_batch_failed(tmp_path, monkeypatch):
    fake_oom(monkeypatch, limit=2)
    cfg = BenchConfig(**{**FAST, "batch_sizes": (8,)})
    (row,) = read(run(["hiera_tiny_224"], cfg, out_dir=tmp_path, progress=lambda s: None))
    assert (row["batch_size"], row["status"], row["oom_stage"]) == (2, "ok", "timing")


def test_cli_bench_goes_on_after_an_oom(capsys, tmp_path, monkeypatch):
    oom_in(monkeypatch, "build")
    assert (
        main(
            [
                "bench",
                *TWO,
                "--device",
                "cpu",
                "--batch-size",
                "1",
                "--warmup",
                "0",
                "--iters",
                "1",
                "--trials",
                "1",
                "--no-sep-pad-overhead",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    (path,) = tmp_path.glob("*.jsonl")
    assert [r["status"] for r in read(path)] == ["oom", "ok"]


def test_bench_appends_repair_a_torn_last_line(tmp_path, capsys):
    """A bench killed mid-append leaves half a line; the next bench cuts it off (warning) instead of appending after
    it, so the file stays readable (before: the loader refused the whole file)."""
    path = run(["hiera_tiny_224"], BenchConfig(**FAST), out_dir=tmp_path, progress=lambda s: None)
    whole = path.read_text()
    path.write_text(whole + whole[:57])  # the torn copy of a record
    assert len(load_speed(tmp_path)) == 1  # the reader skips it (with a warning), without touching the file
    assert "torn last line" in capsys.readouterr().err
    assert path.read_text().endswith(whole[:57])
    run(["hiera_tiny_224"], BenchConfig(**FAST), out_dir=tmp_path, progress=lambda s: None)
    assert "cut the torn last line" in capsys.readouterr().err
    assert [r["variant"] for r in read(path)] == ["hiera_tiny_224"] * 2
