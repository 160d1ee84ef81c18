"""`hiera-study bench --breakdown` on CPU: attribution per op family, records, loader, table, figure, command line.

The ladder is Hiera-T's shrunk to the proxy scale (`hiera/proxy.py` at 8 channels, 1-1-2-1 blocks, 64x64 inputs,
4x4-token mask units), so every step runs in a fraction of a second. Times are never asserted, only where they go:
which families must have time (derived here from the configs and block plans, not from hiera/bench/breakdown.py) and
which must not.
"""

import argparse
import contextlib
import json
import re
from pathlib import Path

import pytest
import torch

from hiera.analysis.figure_style import FAMILY_COLORS
from hiera.analysis.frames import BREAKDOWN_FAMILIES, Records, load_all, load_breakdown
from hiera.analysis.render import render_markdown
from hiera.analysis.speed_figures import plot_breakdown
from hiera.analysis.tables import breakdown_tables, write_tables
from hiera.bench.breakdown import attribute, breakdown_variant, oom_record, run_breakdown
from hiera.bench.throughput import BenchConfig
from hiera.cli import main
from hiera.cli.analysis import register
from hiera.env import REPO
from hiera.model.ladder import PROXY_SCALES, STEP_IDS
from hiera.model.layers.scope import FAMILIES, scope, scopes_on
from hiera.model.network import HierarchicalViT
from hiera.model.plan import plan_blocks
from hiera.model.registry import get_variant, list_variants
from hiera.records.speed import BREAKDOWN_FAMILIES as ALL_FAMILIES
from hiera.records.speed import BREAKDOWN_SCHEMA as SCHEMA
from hiera.records.speed import BreakdownRecord

PROXY = PROXY_SCALES["tiny_48"].changes  # the proxy fields, as overrides of a full-size name

OVERRIDES = dict(PROXY, input_size=(64, 64), embed_dim=8, num_classes=10)  # 16 mask units
FAST = dict(batch_sizes=(1,), warmup=0, iters=1, trials=1, device="cpu", precision="fp32", attn="sdpa")
LADDER = [v.name for v in list_variants("hiera_tiny_224*") if v.step in STEP_IDS]  # Table 1: sup-f
ENV_KEYS = {
    "device",
    "driver",
    "torch",
    "cuda",
    "cudnn",
    "cpu_threads",
    "git_sha",
    "git_dirty",
    "date",
    "python",
    "timm",
}


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def proxy_config(name):
    return get_variant(name).config.replace(**OVERRIDES)


@pytest.fixture(scope="module")
def ladder(tmp_path_factory):
    """The whole proxy Table-1 ladder (sup-f), inference, one profiled step each (the records and the progress
    lines)."""
    out = tmp_path_factory.mktemp("breakdown")
    lines = []
    path = run_breakdown(LADDER, BenchConfig(**FAST), out, progress=lines.append, overrides=OVERRIDES, steps=1)
    return path, read(path), lines


# ---- attribution ------------------------------------------------------------------------------------------------


def test_records_schema_conditions_and_sums(ladder):
    path, records, lines = ladder
    assert path.name.startswith("breakdown-infer-fp32-sdpa-cpu_")
    assert path.name.endswith("-pt" + torch.__version__.split("+")[0] + ".jsonl")
    assert [r["variant"] for r in records] == LADDER  # one line per variant, in ladder order
    assert [r["step"] for r in records] == list(STEP_IDS)
    for r in records:
        assert r["schema"] == SCHEMA
        assert set(r) >= ENV_KEYS
        assert (r["mode"], r["precision"], r["attn"], r["compile"], r["batch_size"]) == (
            "infer",
            "fp32",
            "sdpa",
            False,
            1,
        )
        assert (r["size_label"], r["modality"], r["input_size"], r["profiled_steps"]) == ("T", "image", [64, 64], 1)
        assert r["overrides"]["embed_dim"] == 8
        assert r["time_source"] == "cpu self time"
        assert set(r["families"]) == set(ALL_FAMILIES)
        assert sum(r["families"].values()) == pytest.approx(r["total_ms"], abs=1e-3)
        assert sum(r["fractions"].values()) == pytest.approx(1.0, abs=1e-3)
        assert r["total_ms"] > 0
        assert r["wall_step_ms"] > 0
        assert r["profiled_step_ms"] > 0
        assert r["families"]["backward"] == r["families"]["optimizer"] == 0  # inference
    assert sum(line.startswith("breakdown hiera_tiny_224") for line in lines) == len(LADDER)
    assert any("total" in line and "cpu self time" in line for line in lines)  # the compact table per variant


def test_families_follow_the_configs(ladder):
    """rel_pos has time exactly where positions are relative, kv_pool exactly where a block pools K/V (never in
    row f, which attends inside mask units), q_pool wherever q is pooled."""
    _, records, _ = ladder
    expected = {}
    for r in records:
        cfg = proxy_config(r["variant"])
        plans = plan_blocks(cfg)
        expected[r["step"]] = (cfg.pos_embed == "rel", any(p.kv_pool for p in plans), any(p.q_pool for p in plans))
        fam = r["families"]
        assert (fam["rel_pos"] > 0, fam["kv_pool"] > 0) == expected[r["step"]][:2], r["variant"]
        if expected[r["step"]][2]:
            assert fam["q_pool"] > 0, r["variant"]
        for family in ("patch_embed", "linear", "attention", "norm", "mlp", "head"):
            assert fam[family] > 0, (r["variant"], family)
    # the expectations themselves cover both cases, so the checks above can fail either way
    assert expected["sup"][:2] == (True, True)
    assert expected["a"][:2] == (False, True)
    assert expected["f"][:2] == (False, False)
    assert all(q for _, _, q in expected.values())


def test_cuda_attribution_on_made_up_events():
    """The GPU path without a GPU: kernel time goes to the family of the op that launched it; the autograd engine's
    device thread (no range of ours above it) is backward; kernels linked to no op are other; the GPU copies of our
    ranges and the kernel events themselves are not counted again."""
    from types import SimpleNamespace

    from torch.autograd import DeviceType

    def event(name, parent=None, cpu=0.0, gpu=0.0, device=DeviceType.CPU, annotation=False):
        return SimpleNamespace(
            name=name,
            cpu_parent=parent,
            self_cpu_time_total=cpu,
            self_device_time_total=gpu,
            device_type=device,
            is_user_annotation=annotation,
        )

    cuda = DeviceType.CUDA
    linear = event("hiera::linear", cpu=3.0)
    node = event("autograd::engine::evaluate_function: MmBackward0", cpu=1.0)
    events = [
        linear,
        event("aten::addmm", linear, cpu=5.0, gpu=40.0),
        event("cudaLaunchKernel", linear, cpu=2.0),
        node,
        event("aten::mm", node, cpu=4.0, gpu=30.0),
        event("aten::sum", cpu=1.0, gpu=2.0),
        event("gemm_kernel", gpu=40.0, device=cuda),
        event("gemm_kernel", gpu=30.0, device=cuda),
        event("reduce_kernel", gpu=2.0, device=cuda),
        event("orphan_kernel", gpu=7.0, device=cuda),
        event("hiera::linear", gpu=50.0, device=cuda, annotation=True),
    ]
    families, host, ranges = attribute(events, device=True)
    assert (families["linear"], families["backward"], families["other"]) == (40.0, 30.0, 2.0 + 7.0)
    assert sum(families.values()) == 40.0 + 30.0 + 2.0 + 7.0  # every kernel once
    assert (host["linear"], host["backward"], host["other"], ranges) == (7.0, 5.0, 1.0, 3.0)
    families, host, _ = attribute(events, device=False)
    assert families == host
    assert families["linear"] == 7.0


@pytest.mark.parametrize("mode", ["train", "mae"])
def test_training_modes_have_backward_and_optimizer(mode):
    name = "hiera_tiny_224.a_abs_pos"
    r = breakdown_variant(name, BenchConfig(mode=mode, **FAST), OVERRIDES, steps=1).to_json()
    fam = r["families"]
    assert r["mode"] == mode
    assert fam["backward"] > 0
    assert fam["optimizer"] > 0
    assert fam["rel_pos"] == 0
    assert fam["kv_pool"] > 0
    assert fam["linear"] > 0
    assert sum(fam.values()) == pytest.approx(r["total_ms"], abs=1e-3)
    assert (fam["head"] > 0) == (mode == "train")  # the MAE model has no classifier head


def test_cut_off_run_keeps_what_it_measured(tmp_path, monkeypatch):
    """Each variant's line is written and flushed when it finishes: a run that dies later keeps it."""
    import hiera.bench.breakdown as bd

    real, calls = bd.breakdown_variant, []

    def dies_second(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == 2:
            raise RuntimeError("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(bd, "breakdown_variant", dies_second)
    with pytest.raises(RuntimeError, match="killed"):
        run_breakdown(
            ["hiera_tiny_224.d_kernel_eq_stride", "hiera_tiny_224"],
            BenchConfig(**FAST),
            tmp_path,
            progress=lambda s: None,
            overrides=OVERRIDES,
            steps=1,
        )
    (path,) = tmp_path.glob("breakdown-*.jsonl")
    assert [r["variant"] for r in read(path)] == ["hiera_tiny_224.d_kernel_eq_stride"]


def test_scopes_are_off_by_default_and_restored():
    model = HierarchicalViT(proxy_config("hiera_tiny_224.sup_mvitv2")).eval()
    x = torch.randn(1, 3, 64, 64)

    def hiera_events():
        with torch.no_grad(), torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            model(x)
        return {e.name for e in prof.events() if e.name.startswith("hiera::")}

    assert hiera_events() == set()
    assert isinstance(scope("linear"), contextlib.nullcontext)
    with scopes_on():
        names = hiera_events()
        with scopes_on():  # nested: still on after the inner one ends
            pass
        assert not isinstance(scope("linear"), contextlib.nullcontext)
    assert {n.removeprefix("hiera::") for n in names} <= set(FAMILIES)
    assert "hiera::rel_pos" in names
    assert isinstance(scope("linear"), contextlib.nullcontext)
    with pytest.raises(ZeroDivisionError), scopes_on():
        raise ZeroDivisionError
    assert hiera_events() == set()  # restored after an exception too
    with scopes_on(), pytest.raises(ValueError, match="unknown op family"):
        scope("softmax")


# ---- records, table, figure -------------------------------------------------------------------------------------


def record(variant, families, **extra):
    """A hand-made breakdown record (what `hiera-study bench --breakdown` writes), families in ms."""
    v = get_variant(variant)
    fam = {f: float(families.get(f, 0.0)) for f in ALL_FAMILIES}
    total = sum(fam.values())
    return {
        "schema": SCHEMA,
        "variant": variant,
        "step": v.step,
        "size_label": v.size_label,
        "modality": v.modality,
        "impl": "hiera-study",
        "separate_and_pad": None,
        "mode": "infer",
        "precision": "fp32",
        "attn": "sdpa",
        "compile": False,
        "batch_size": 8,
        "input_size": [224, 224],
        "overrides": {},
        "families": fam,
        "total_ms": total,
        "fractions": {f: ms / total for f, ms in fam.items()},
        "wall_step_ms": total * 0.9,
        "profiled_step_ms": total * 1.1,
        "range_self_ms": 1.0,
        "profiled_steps": 3,
        "time_source": "cpu self time",
        "warmup": 3,
        "iters": 5,
        "trials": 3,
        "gmacs": 1.0,
        "device": "cpu (x86_64)",
        "driver": None,
        "torch": "2.14.1+cpu",
        "cuda": None,
        "cudnn": None,
        "cpu_threads": 2,
        "git_sha": "0123456789abcdef",
        "git_dirty": False,
        "date": "2025-01-02T03:04:05+00:00",
        "python": "3.11.9",
        "timm": "1.0.15",
        **extra,
    }


FIXTURE = [  # written out of ladder order on purpose; row d and the others are not measured
    record("hiera_base_224", {"linear": 9.0, "attention": 6.0, "q_pool": 0.5, "mlp": 20.0}),  # f: no KV pooling
    record(
        "hiera_base_224.sup_mvitv2",
        {"linear": 10.0, "attention": 8.0, "q_pool": 3.0, "kv_pool": 4.0, "rel_pos": 5.0, "mlp": 20.0},
    ),
    record("hiera_base_224.a_abs_pos", {"linear": 10.0, "attention": 7.5, "q_pool": 3.0, "kv_pool": 4.0, "mlp": 20.0}),
    record(
        "hiera_base_224.e_no_attn_residual",
        {"linear": 10.0, "attention": 7.0, "q_pool": 0.5, "kv_pool": 2.0, "mlp": 21.0},
    ),
    record("mvitv2_base_224", {"linear": 12.0, "mlp": 20.0}),  # not a ladder step: named in a note
    record("hiera_base_224", {"linear": 9.0, "mlp": 1.0}, mode="train", precision="bf16"),  # another condition
]


def write_fixture(directory, records=FIXTURE):
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "breakdown-infer-fp32-sdpa-cpu_x86_64-pt2.14.1.jsonl"
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
    return path


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda r: r.update(schema="hiera-study/breakdown/0"), "schema"),
        (lambda r: r["families"].update(linear=-1.0), "families.linear"),
        (lambda r: r["families"].update(softmax=1.0), "families.softmax"),
        (lambda r: r.update(total_ms=r["total_ms"] + 1.0), "total_ms"),
        (lambda r: r.pop("wall_step_ms"), "wall_step_ms"),
        (lambda r: r.update(step="z"), "step"),  # no ladder step (g is one, beyond the paper)
        (lambda r: r.update(time_source="gpu time"), "time_source"),
        (lambda r: r.update(batch_size=0), "batch_size"),
        (lambda r: r.update(input_size=[224, "224"]), "input_size"),
    ],
)
def test_loader_rejects_malformed_records_with_file_and_line(tmp_path, change, field):
    bad = record("hiera_base_224", {"linear": 1.0})
    change(bad)
    path = write_fixture(tmp_path, [record("hiera_base_224", {"linear": 1.0}), bad])
    with pytest.raises(ValueError, match=re.escape(f"{path.name}:2:")) as err:
        load_breakdown(tmp_path)
    message = str(err.value)
    assert "\n" not in message
    assert f"field '{field}'" in message


def test_loader_defaults_and_missing_directories(tmp_path):
    assert load_breakdown(()).empty
    assert load_all(breakdown=()).breakdown.empty
    with pytest.raises(ValueError, match="no such breakdown-records directory"):
        load_breakdown(tmp_path / "nothing")
    frame = load_breakdown(write_fixture(tmp_path / "b"))
    assert len(frame) == len(FIXTURE)
    assert frame.loc[1, "rel_pos_ms"] == 5.0
    assert frame.loc[0, "rel_pos_ms"] == 0.0


@pytest.fixture(scope="module")
def fixture_records(tmp_path_factory):
    directory = tmp_path_factory.mktemp("fixture") / "breakdown"
    write_fixture(directory)
    empty = load_all(breakdown=())
    return Records(empty.runs, empty.speed, empty.paper, load_breakdown(directory))


def test_breakdown_table_rows_columns_and_came_from(fixture_records):
    tables = {t.name: t for t in breakdown_tables(fixture_records)}
    name = "breakdown-cpu_x86_64-infer-fp32-sdpa-pt2.14.1-base-image-bs8"
    assert set(tables) == {name, "breakdown-cpu_x86_64-train-bf16-sdpa-pt2.14.1-base-image-bs8"}
    t = tables[name]
    # only families with time somewhere; ladder order whatever the file order; unmeasured steps left out
    assert t.columns == [
        "step",
        "linear",
        "attention",
        "q_pool",
        "kv_pool",
        "rel_pos",
        "mlp",
        "total",
        "wall",
        "speed-up came from",
    ]
    assert [r[0] for r in t.rows] == ["sup", "a", "e", "f"]
    assert [r[-1] for r in t.rows] == ["—", "rel_pos (-5.00 ms)", "q_pool (-2.50 ms)", "kv_pool (-2.00 ms)"]
    assert t.rows[0][1:8] == ["10.00", "8.00", "3.00", "4.00", "5.00", "20.00", "50.00"]
    assert list(t.data["came_from"].fillna("")) == ["", "rel_pos", "q_pool", "kv_pool"]
    md = render_markdown(t)
    assert "CPU numbers: CPU self time on cpu (x86_64) with 2 threads" in md
    assert "not GPU kernel time" in md
    assert "breakdown-infer-fp32-sdpa-cpu_x86_64-pt2.14.1.jsonl" in md
    assert "batch 8" in md
    assert "`mvitv2_base_224`" in md  # measured under the same condition, outside the ladder


def test_breakdown_tables_written_deterministically(tmp_path):
    directory = tmp_path / "breakdown"
    write_fixture(directory)
    (tmp_path / "records").mkdir()
    kw = dict(records_dir=tmp_path / "records", speed_dir=(), breakdown_dir=directory)
    write_tables(out_dir=tmp_path / "a", **kw)
    write_tables(out_dir=tmp_path / "b", **kw)
    name = "breakdown-cpu_x86_64-infer-fp32-sdpa-pt2.14.1-base-image-bs8"
    for suffix in ("md", "tex", "csv"):
        assert (tmp_path / "a" / f"{name}.{suffix}").read_bytes() == (tmp_path / "b" / f"{name}.{suffix}").read_bytes()
    assert "### Where the time goes: Hiera-B image ladder" in (tmp_path / "a" / "tables.md").read_text()


def test_breakdown_figure(fixture_records, tmp_path):
    made = plot_breakdown(fixture_records, tmp_path / "a")
    again = plot_breakdown(fixture_records, tmp_path / "b")
    info = {f.name: f for f in made}["breakdown-cpu_x86_64-infer-fp32-sdpa-pt2.14.1-base-image-bs8"]
    assert list(dict.fromkeys(info.data["step"])) == ["sup", "a", "e", "f"]
    assert list(dict.fromkeys(info.data["family"])) == ["linear", "attention", "q_pool", "kv_pool", "rel_pos", "mlp"]
    assert "CPU numbers" in info.caption
    assert (tmp_path / "a" / f"{info.name}.txt").read_text().strip() == info.caption
    for f in made:
        assert (tmp_path / "a" / f"{f.name}.png").read_bytes() == (tmp_path / "b" / f"{f.name}.png").read_bytes()
    assert len(again) == len(made) == 2
    assert len(set(FAMILY_COLORS.values())) == len(FAMILY_COLORS) == len(BREAKDOWN_FAMILIES)
    empty = load_all(breakdown=())
    assert plot_breakdown(Records(empty.runs, empty.speed, empty.paper), tmp_path)[0].startswith("breakdown:")


# ---- command line -----------------------------------------------------------------------------------------------

PROXY_ARGS = [
    "embed_dim=8",
    "input_size=64,64",
    "mask_unit_size=4,4",
    "q_pool=2",
    "stages=1,1,2,1",
    "kv_stride=2,2",
    "num_classes=10",
]


def test_cli_bench_breakdown(capsys, tmp_path):
    code = main(
        [
            "bench",
            "hiera_tiny_224.sup_mvitv2",
            "hiera_tiny_224",
            *PROXY_ARGS,
            "--breakdown",
            "--device",
            "cpu",
            "--precision",
            "fp32",
            "--batch-size",
            "1",
            "4",
            "--warmup",
            "0",
            "--iters",
            "1",
            "--trials",
            "1",
            "--out",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    (path,) = tmp_path.glob("breakdown-infer-fp32-math-cpu_*.jsonl")
    records = read(path)
    assert [r["variant"] for r in records] == ["hiera_tiny_224.sup_mvitv2", "hiera_tiny_224"]
    assert all(r["batch_size"] == 1 and r["attn"] == "math" and r["input_size"] == [64, 64] for r in records)
    assert (records[0]["warmup"], records[0]["iters"], records[0]["trials"]) == (0, 1, 1)
    assert "rel_pos" in out
    assert "wall" in out
    assert f"breakdown records appended to {path}" in out
    # the analysis commands read them with --breakdown
    parser = argparse.ArgumentParser(prog="hiera-study")
    register(parser.add_subparsers(dest="command", required=True))
    fixtures = Path(__file__).parent / "fixtures" / "analysis"  # named sources must hold records (empty: an error)
    args = parser.parse_args(
        [
            "tables",
            "--records",
            str(fixtures / "records"),
            "--speed",
            str(fixtures / "speed"),
            "--breakdown",
            str(tmp_path),
            "--out",
            str(tmp_path / "tables"),
        ]
    )
    assert args.func(args) == 0
    (table,) = (tmp_path / "tables").glob("breakdown-*-tiny-image-bs1-o*.md")
    assert "| sup |" in table.read_text()
    assert "| f |" in table.read_text()


@pytest.mark.parametrize("flag", [["--sweep"], ["--compile"], ["--protocol", "paper"], ["--peers"]])
def test_cli_breakdown_rejects_flags_that_do_not_apply(capsys, tmp_path, flag):
    assert main(["bench", "hiera_tiny_224", "--breakdown", "--device", "cpu", *flag, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--breakdown profiles our eager model" in err
    assert flag[0] in err
    assert err.count("\n") == 1


def test_oom_is_recorded_and_the_next_variant_broken_down(tmp_path, monkeypatch):
    """Before: an out-of-memory of one variant aborted the whole breakdown. Now it is a record (`status: "oom"`,
    its stage) that the loader skips, and the next variant is measured; records are appended whole."""
    import hiera.bench.breakdown as bd

    real, calls = bd.build_on, []

    def build_on(model_fn, device):
        calls.append(device)
        if len(calls) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return real(model_fn, device)

    monkeypatch.setattr(bd, "build_on", build_on)
    lines = []
    path = run_breakdown(
        ["hiera_tiny_224.d_kernel_eq_stride", "hiera_tiny_224"],
        BenchConfig(**FAST),
        tmp_path,
        progress=lines.append,
        overrides=OVERRIDES,
        steps=1,
    )
    first, second = read(path)
    assert (first["status"], first["oom_stage"]) == ("oom", "build")
    assert first["variant"] == "hiera_tiny_224.d_kernel_eq_stride"
    assert second["variant"] == "hiera_tiny_224"
    assert second["total_ms"] > 0
    assert any("out of memory (build)" in line for line in lines)
    frame = load_breakdown(tmp_path)
    assert list(frame["variant"]) == ["hiera_tiny_224"]  # nothing to show for the OOM: skipped, not an error


def test_typed_record_writes_back_the_committed_lines_unchanged():
    """`BreakdownRecord.from_json(line).to_json()` is the line: the committed records (written by the dict writer
    before the record was typed) round-trip key for key and value for value, `fractions` included; a line of
    schema 1 comes back as schema 2, whose only change is the name `size_label` for `size`."""
    paths = sorted((REPO / "results" / "breakdown").glob("breakdown-*.jsonl"))
    assert paths
    for path in paths:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            obj = json.loads(line)
            if obj["schema"] == "hiera-study/breakdown/1":
                obj = {**obj, "schema": "hiera-study/breakdown/2", "size_label": obj["size"]}
                del obj["size"]
            assert BreakdownRecord.from_json(obj, f"{path.name}:{n}").to_json() == obj


def test_out_of_memory_record_as_written_and_read():
    """The out-of-memory line: what was asked and the conditions, no times; it reads back and has no frame row."""
    env = {k: None for k in ("device", "driver", "torch", "cuda", "cudnn", "cpu_threads", "git_sha", "git_dirty")}
    env.update(device="cuda (H200)", torch="2.11.0", date="2026-12-04T00:00:00+00:00", python="3.12.1", timm="1.0")
    rec = oom_record("hiera_huge_224", BenchConfig(**FAST), env, "build")
    expected = {
        "schema": "hiera-study/breakdown/2",
        "status": "oom",
        "oom_stage": "build",
        "variant": "hiera_huge_224",
        "step": "f",
        "size_label": "H",
        "modality": "image",
        "impl": "hiera-study",
        "mode": "infer",  # BenchConfig's default
        "precision": "fp32",
        "attn": "sdpa",
        "compile": False,
        "batch_size": 1,
        **env,
    }
    assert rec.to_json() == expected
    back = BreakdownRecord.from_json(json.loads(json.dumps(expected)), "x:1")
    assert back.row() is None
    assert back.to_json() == expected
