"""The record types (`hiera.records`): one writer and one reader each, previous versions still read, and every
error names file, line and field. The expected JSON is written out here by hand, not built by the module."""

import json

import grids
import pytest

from hiera.records import PhaseResult, RunRecord, SpeedRecord, read_phase_result, read_run_record, write_run_record
from hiera.records.check import json_lines

# A finished run's record of schema 1 (the shared hand-written template of tests/grids.py, with this test's numbers)
V1_DONE = grids.done_record(
    "image/f/seed0",
    table="table1",
    run_dir="runs/g/image/f/seed0",
    metrics={"top1": 82.5, "top5": 99.0, "mae_loss": 0.6},
    input_size=[48, 48],
    epochs={"pretrain": 2, "finetune": 2},
    batch_size=64,
)


def test_a_schema_1_record_reads_and_is_written_back_as_schema_3():
    record = RunRecord.from_json(V1_DONE, "f.jsonl:1")
    assert (record.top1, record.mae_loss, record.finetune_batch, record.pretrain_batch) == (82.5, 0.6, 64, None)
    assert record.input_size == (48, 48)
    # `size` is `size_key` since schema 3; the name stays as written (collect renames from the grid, not the reader)
    assert (record.variant, record.size_key) == ("hiera_tiny_224", "proxy")
    out = record.to_json()
    assert out["schema"] == "hiera-study/run/3"
    assert (out["variant"], out["size_key"], "size" in out) == ("hiera_tiny_224", "proxy", False)
    assert out["batch_size"] == {"pretrain": None, "finetune": 64}  # since schema 2: always per phase
    assert out["metrics"] == {"top1": 82.5, "top5": 99.0, "best_top1": None, "mae_loss": 0.6}
    assert out["epochs"] == {"pretrain": 2, "finetune": 2}
    assert out["input_size"] == [48, 48]
    assert RunRecord.from_json(out, "again") == record  # schema 3 round trip


def test_schema_1_ablation_names_are_translated_but_schema_2_takes_them_as_written():
    v1 = {**V1_DONE, "table": "table3", "ablation": "multi_scale", "setting": "last_only"}
    assert (RunRecord.from_json(v1, "x").ablation, RunRecord.from_json(v1, "x").setting) == ("multi_scale", "false")
    v1 = {**V1_DONE, "table": "table3", "ablation": "pretrain_epochs", "setting": 800}
    assert (RunRecord.from_json(v1, "x").ablation, RunRecord.from_json(v1, "x").setting) == ("epochs", 800)
    v2 = {**v1, "schema": "hiera-study/run/2", "batch_size": {"pretrain": 64, "finetune": 64}}
    assert RunRecord.from_json(v2, "x").ablation == "pretrain_epochs"  # no alias table for new records


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema": "hiera-study/run/4"}, "f.jsonl:7: field 'schema' must be one of"),
        ({"status": "finished"}, "f.jsonl:7: field 'status' must be one of done"),
        ({"metrics": {"top1": 120.0}}, "f.jsonl:7: field 'metrics.top1' must be in [0, 100]"),
        ({"epochs": {"finetune": 2}}, "f.jsonl:7: field 'epochs.pretrain' is missing"),
        ({"input_size": [48, 0]}, "f.jsonl:7: field 'input_size' must be a list of positive ints"),
        ({"env": {"device": "x86_64"}}, "f.jsonl:7: field 'env.date' is missing"),
        ({"schema": "hiera-study/run/2"}, "f.jsonl:7: field 'batch_size.finetune' is missing"),  # 2: per phase
    ],
)
def test_a_bad_run_record_names_file_line_and_field(change, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        RunRecord.from_json({**V1_DONE, **change}, "f.jsonl:7")


def test_a_status_line_carries_no_numbers_and_a_failed_one_needs_its_error():
    line = RunRecord(grid="g", run="r", status="missing", variant="v", step=None, size_key="proxy", modality="image",
                     dataset="fashion-mnist", proxy=True, seed=1, table="smoke").to_json()  # fmt: skip
    assert line == {
        "schema": "hiera-study/run/3",
        "grid": "g",
        "run": "r",
        "status": "missing",
        "variant": "v",
        "step": None,
        "size_key": "proxy",
        "modality": "image",
        "dataset": "fashion-mnist",
        "proxy": True,
        "seed": 1,
        "table": "smoke",
        "ablation": None,
        "setting": None,
    }
    with pytest.raises(ValueError, match="x: field 'error' must be a string"):
        RunRecord.from_json({**line, "status": "failed"}, "x")


def test_run_directory_record_file_and_the_schema_1_name(tmp_path):
    record = RunRecord.from_json(V1_DONE, "x")
    write_run_record(tmp_path / "new", record)
    assert json.loads((tmp_path / "new" / "record.json").read_text())["schema"] == "hiera-study/run/3"
    assert read_run_record(tmp_path / "new") == record
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "result.json").write_text(json.dumps({k: v for k, v in V1_DONE.items() if k != "run_dir"}))
    assert read_run_record(tmp_path / "old").run_dir == str(tmp_path / "old")  # defaults to its directory
    with pytest.raises(ValueError, match="no run record"):
        read_run_record(tmp_path)


def test_phase_results_of_before_the_schema_read_steps_as_opt_steps(tmp_path):
    legacy = {
        "phase": "mae",
        "model": "m",
        "recipe": "proxy_mae",
        "steps": 1874,
        "epochs": 2,
        "batch_size": 64,
        "lr": 0.0015,
        "precision": "fp32",
        "world_size": 1,
        "train_samples": 60000,
        "wall_s_last_start": 1117.0,
        "final_loss": 0.605,
        "first_loss": 0.878,
    }
    (tmp_path / "result.json").write_text(json.dumps(legacy))
    result = read_phase_result(tmp_path)
    assert (result.opt_steps, result.final_loss, result.top1) == (1874, 0.605, None)
    out = result.to_json()
    assert out["schema"] == "hiera-study/phase/1"
    assert out["opt_steps"] == 1874
    assert "steps" not in out
    assert "top1" not in out
    assert "eval_samples" not in out  # an MAE phase has no evaluation
    assert PhaseResult.from_json(out, "x") == result
    with pytest.raises(ValueError, match="x: field 'top1' is missing"):
        PhaseResult.from_json({**out, "phase": "finetune"}, "x")


SPEED = {
    "variant": "hiera_tiny_224",
    "step": "f",
    "size": "T",
    "modality": "image",
    "impl": "hiera-study",
    "model": "hiera_tiny_224",
    "separate_and_pad": None,
    "mode": "infer",
    "precision": "fp32",
    "attn": "math",
    "compile": False,
    "protocol": "custom",
    "requested_batch": 8,
    "batch_size": 8,
    "oom": False,
    "best_batch": True,
    "gmacs": 4.9,
    "samples_per_s": 20.0,
    "samples_per_s_min": 19.0,
    "samples_per_s_max": 21.0,
    "step_ms": 400.0,
    "device": "cpu (x86_64)",
    "torch": "2.11.0",
    "date": "2026-11-30T00:00:00+00:00",
    "attn_backends": ["explicit"],
}


def test_speed_records_of_before_the_schema_read_and_every_field_survives(tmp_path):
    old = SpeedRecord.from_json(SPEED, "s.jsonl:1")  # no `schema`: written before speed records had one
    assert old.attn_backends == ("explicit",)
    assert old.samples_per_s_iqr is None
    assert old.size_label == "T"  # schema 1's `size`
    new = old.to_json()
    assert new["schema"] == "hiera-study/speed/2"
    assert (new["size_label"], "size" in new) == ("T", False)
    assert new["attn_backends"] == ["explicit"]
    assert SpeedRecord.from_json(new, "s") == old
    with pytest.raises(ValueError, match="s.jsonl:1: field 'batch_size' must be null in an out-of-memory"):
        SpeedRecord.from_json({**SPEED, "status": "oom"}, "s.jsonl:1")
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps(SPEED) + "\n" + json.dumps({**SPEED, "modality": "audio"}) + "\n")
    (first, obj), (second, bad) = json_lines(path)
    assert SpeedRecord.from_json(obj, first).variant == "hiera_tiny_224"
    with pytest.raises(ValueError, match=r"s.jsonl:2: field 'modality' must be one of image, video"):
        SpeedRecord.from_json(bad, second)


def test_a_schema_1_speed_record_of_a_proxy_reads_under_the_proxy_name():
    # how the demo profiled its proxies before they had names: the full-size name plus the proxy's fields
    fields = {"embed_dim": 32, "input_size": [48, 48], "kv_stride": [2, 2], "mask_unit_size": [4, 4]}
    fields |= {"num_classes": 10, "num_heads": 1, "q_pool": 2, "stages": [1, 1, 2, 1]}
    old = {**SPEED, "schema": "hiera-study/speed/1", "variant": "hiera_tiny_224.b_max_pool"}
    old |= {"model": "hiera_tiny_224.b_max_pool", "input_size": [48, 48]}
    record = SpeedRecord.from_json({**old, "overrides": fields}, "s")
    assert (record.variant, record.model, record.overrides) == ("proxy_tiny_48.b_max_pool",) * 2 + ({},)
    wider = SpeedRecord.from_json({**old, "overrides": {**fields, "drop_path_rate": 0.1}}, "s")
    assert (wider.variant, wider.overrides) == ("proxy_tiny_48.b_max_pool", {"drop_path_rate": 0.1})
    other = SpeedRecord.from_json({**old, "overrides": {**fields, "embed_dim": 64}}, "s")  # not the proxy's model
    assert (other.variant, other.overrides["embed_dim"]) == ("hiera_tiny_224.b_max_pool", 64)
