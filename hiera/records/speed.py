"""Speed and breakdown records: what `hiera-study bench` measures (paper Table 1's im/s and clip/s, Fig. 1).

    results/speed/bench-<conditions>.jsonl          `SpeedRecord`, one line per model, implementation and batch
    results/breakdown/breakdown-<conditions>.jsonl  one step-time breakdown per variant (`--breakdown`)

A `SpeedRecord` is written by `to_json` (schema `hiera-study/speed/1`) and read back by `from_json`, which
validates it and also reads the lines written before speed records had a schema (the same fields; those added
since are null). Every field the benchmark measures is a field of the record, so nothing it writes is dropped on
the way to a table. `CONDITIONS` are the hardware and software fields both record types carry.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any

from hiera.model.ladder import STEP_IDS
from hiera.model.layers.scope import FAMILIES, STEP_FAMILIES
from hiera.records.check import field, schema, short, sizes, text_or_none
from hiera.records.run import MODALITIES

SPEED_SCHEMA = "hiera-study/speed/1"
BREAKDOWN_SCHEMA = "hiera-study/breakdown/1"
# The hardware and software a measurement ran on (from `hiera.env.collect_env` and `hiera.bench.bench_env`).
CONDITIONS = (
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
)
SPEED_STATUSES = ("ok", "oom")  # oom: nothing ran at this batch
OOM_STAGES = ("build", "inputs", "compile", "warmup", "timing", "profile")  # where memory ran out
# The op families of a breakdown record, in display order: the model's scopes, then the time no scope covers.
BREAKDOWN_FAMILIES = (*FAMILIES, "other", *STEP_FAMILIES)
TIME_SOURCES = {"cpu": "cpu self time", "cuda": "cuda kernel time"}


@dataclass(frozen=True)
class SpeedRecord:
    """One timed model at one batch size (or the batch that ran out of memory), with its conditions."""

    variant: str
    step: str | None  # Table-1 ladder row of the variant
    size: str  # the variant's size label (T, S, B, B+, L, H)
    modality: str
    impl: str  # hiera-study | timm | official
    model: str  # what ran: our variant, or the peer's model name
    separate_and_pad: str | None  # on | off for overlapping pooling (rows a-c), else None
    mode: str  # infer | train | mae
    precision: str
    attn: str  # math | sdpa (what was asked for; `attn_backends` is what ran)
    compile: bool
    protocol: str  # the preset (paper, ...) or custom
    requested_batch: int
    batch_size: int | None  # the batch that ran (halved after an out-of-memory); None: none ran
    oom: bool  # the requested batch did not fit
    best_batch: bool  # the fastest batch of this model in this run
    gmacs: float  # per sample
    device: str
    torch: str
    date: str
    status: str | None = None  # ok | oom (null in records of before it was written)
    oom_stage: str | None = None
    samples_per_s: float | None = None  # median over trials
    samples_per_s_min: float | None = None
    samples_per_s_max: float | None = None
    samples_per_s_iqr: float | None = None
    step_ms: float | None = None
    params_m: float | None = None
    tflops: float | None = None
    peak_tflops: float | None = None
    mfu: float | None = None
    ratio_vs_peer: float | None = None  # over timm's model in the same run and batch
    ratio_vs_official: float | None = None  # over the official package's
    sep_pad_overhead: float | None = None  # separate-and-pad off over on
    official_version: str | None = None
    input_size: tuple[int, ...] | None = None
    overrides: dict[str, Any] | None = None  # model-config fields changed from the registered variant
    warmup: int | None = None
    iters: int | None = None
    trials: int | None = None
    compile_fullgraph: bool | None = None
    graph_breaks: int | None = None
    recompiles: int | None = None
    compile_s: float | None = None
    peak_mem_gib: float | None = None
    attn_kernels: list[dict[str, Any]] | None = None  # the attention ops that ran (`hiera.kernels`)
    attn_backends: tuple[str, ...] | None = None  # their backends, e.g. ("cpu_flash",) or ("explicit",)
    driver: str | None = None
    cuda: str | None = None
    cudnn: str | None = None
    cpu_threads: int | None = None
    git_sha: str | None = None
    git_dirty: bool | None = None
    python: str | None = None
    timm: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = {"schema": SPEED_SCHEMA, **dataclasses.asdict(self)}
        for name in ("input_size", "attn_backends"):
            out[name] = None if out[name] is None else list(out[name])
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any], where: str) -> SpeedRecord:
        """Validate a record of schema `hiera-study/speed/1`, or one without a schema (written before it had one)."""
        if "schema" in obj:
            schema(obj, where, (SPEED_SCHEMA,))
        v: dict[str, Any] = {}
        for name in ("variant", "size", "impl", "model", "mode", "precision", "attn", "protocol", "device", "torch"):
            v[name] = field(obj, name, where, "str")
        v["date"] = field(obj, "date", where, "str")
        v["step"] = field(obj, "step", where, "str", optional=True)
        v["modality"] = field(obj, "modality", where, "str", choices=MODALITIES)
        v["separate_and_pad"] = field(obj, "separate_and_pad", where, "str", optional=True, choices=("on", "off"))
        for name in ("compile", "oom", "best_batch"):
            v[name] = field(obj, name, where, "bool")
        v["requested_batch"] = field(obj, "requested_batch", where, "int")
        v["batch_size"] = field(obj, "batch_size", where, "int", optional=True)
        v["status"] = field(obj, "status", where, "str", optional=True, choices=SPEED_STATUSES)
        v["oom_stage"] = field(obj, "oom_stage", where, "str", optional=True, choices=OOM_STAGES)
        if v["status"] == "oom" and v["batch_size"] is not None:
            raise ValueError(
                f"{where}: field 'batch_size' must be null in an out-of-memory record (status 'oom'), got "
                f"{v['batch_size']}"
            )
        ran = v["batch_size"] is not None
        for name in ("samples_per_s", "samples_per_s_min", "samples_per_s_max", "step_ms"):
            v[name] = field(obj, name, where, "number", optional=not ran, low=0)
        v["gmacs"] = field(obj, "gmacs", where, "number", low=0)
        for name in ("params_m", "tflops", "peak_tflops", "mfu", "ratio_vs_peer", "ratio_vs_official"):
            v[name] = field(obj, name, where, "number", optional=True, low=0)
        for name in ("sep_pad_overhead", "samples_per_s_iqr", "compile_s", "peak_mem_gib"):
            v[name] = field(obj, name, where, "number", optional=True, low=0)
        for name in ("warmup", "iters", "trials", "cpu_threads", "graph_breaks", "recompiles"):
            v[name] = field(obj, name, where, "int", optional=True)
        for name in ("git_dirty", "compile_fullgraph"):
            v[name] = field(obj, name, where, "bool", optional=True)
        for name in ("driver", "cuda", "cudnn", "git_sha", "python", "timm", "official_version"):
            v[name] = text_or_none(obj, name)
        v["input_size"] = sizes(obj, "input_size", where, optional=True)
        v["overrides"] = field(obj, "overrides", where, "dict", optional=True)
        v["attn_kernels"] = field(obj, "attn_kernels", where, "list", optional=True)
        kernels = field(obj, "attn_backends", where, "list", optional=True)
        if kernels is not None and not all(isinstance(k, str) and k for k in kernels):
            raise ValueError(f"{where}: field 'attn_backends' must be a list of backend names, got {short(kernels)}")
        v["attn_backends"] = tuple(kernels) if kernels is not None else None
        return cls(**v)


def speed_jsonl(records: list[SpeedRecord]) -> list[dict[str, Any]]:
    """The objects `hiera.files.append_jsonl` writes, one per record."""
    return [r.to_json() for r in records]


def breakdown_row(obj: dict[str, Any], where: str) -> dict[str, Any] | None:
    """Check one breakdown record (schema `hiera-study/breakdown/1`) and flatten it: one `<family>_ms` per op family
    (0 where the record has none); None for a valid out-of-memory record (no times to break down)."""
    schema(obj, where, (BREAKDOWN_SCHEMA,))
    if field(obj, "status", where, "str", optional=True, choices=SPEED_STATUSES) == "oom":
        field(obj, "variant", where, "str")
        field(obj, "oom_stage", where, "str", choices=OOM_STAGES)
        return None
    row: dict[str, Any] = {}
    for name in ("variant", "size", "mode", "precision", "attn", "device", "torch", "date"):
        row[name] = field(obj, name, where, "str")
    row["step"] = field(obj, "step", where, "str", optional=True, choices=STEP_IDS)
    row["modality"] = field(obj, "modality", where, "str", choices=MODALITIES)
    row["separate_and_pad"] = field(obj, "separate_and_pad", where, "str", optional=True, choices=("on", "off"))
    row["compile"] = field(obj, "compile", where, "bool")
    row["batch_size"] = field(obj, "batch_size", where, "int", low=1)
    row["profiled_steps"] = field(obj, "profiled_steps", where, "int", low=1)
    row["time_source"] = field(obj, "time_source", where, "str", choices=tuple(TIME_SOURCES.values()))
    for name in field(obj, "families", where, "dict"):
        if name not in BREAKDOWN_FAMILIES:
            raise ValueError(
                f"{where}: field 'families.{name}' is not an op family; one of {', '.join(BREAKDOWN_FAMILIES)}"
            )
    for name in BREAKDOWN_FAMILIES:
        row[f"{name}_ms"] = field(obj, f"families.{name}", where, "number", optional=True, low=0) or 0.0
    row["total_ms"] = field(obj, "total_ms", where, "number", low=0)
    parts = sum(row[f"{name}_ms"] for name in BREAKDOWN_FAMILIES)
    if not math.isclose(parts, row["total_ms"], rel_tol=1e-6, abs_tol=1e-3):
        raise ValueError(f"{where}: field 'total_ms' is {row['total_ms']} but the families sum to {parts:.4f}")
    for name in ("wall_step_ms", "profiled_step_ms"):
        row[name] = field(obj, name, where, "number", optional=name != "wall_step_ms", low=0)
    row["range_self_ms"] = field(obj, "range_self_ms", where, "number", optional=True, low=0)
    row["cpu_threads"] = field(obj, "cpu_threads", where, "int", optional=True)
    for name in ("driver", "cuda", "cudnn", "git_sha", "python", "timm"):
        row[name] = text_or_none(obj, name)
    row["git_dirty"] = field(obj, "git_dirty", where, "bool", optional=True)
    row["input_size"] = "x".join(map(str, sizes(obj, "input_size", where) or ()))
    row["overrides"] = json.dumps(field(obj, "overrides", where, "dict", optional=True) or {}, sort_keys=True)
    return row
