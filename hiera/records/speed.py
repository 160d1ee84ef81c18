"""Speed and breakdown records: what `hiera-study bench` measures (paper Table 1's im/s and clip/s, Fig. 1).

    results/speed/bench-<conditions>.jsonl          `SpeedRecord`, one line per model, implementation and batch
    results/breakdown/breakdown-<conditions>.jsonl  one step-time breakdown per variant (`--breakdown`)

A `SpeedRecord` is written by `to_json` (schema `hiera-study/speed/2`) and read back by `from_json`, which
validates it and also reads schema 1 and the lines written before speed records had a schema (the same fields;
those added since are null; `upgrade_speed`: `size` is now `size_label`, and a proxy measured as a full-size
variant with overrides now has its registered proxy name). A `BreakdownRecord` likewise (schema
`hiera-study/breakdown/2`, reading 1), with `row` for the frames.
Every field the benchmark measures is a field of the record, so nothing it writes is dropped on
the way to a table. `CONDITIONS` are the hardware and software fields both record types carry.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any

from hiera.model.ladder import EXTENDED_STEP_IDS, PROXY_SCALES
from hiera.model.layers.scope import FAMILIES, STEP_FAMILIES
from hiera.records.check import field, schema, short, sizes, text_or_none
from hiera.records.run import MODALITIES

SPEED_SCHEMA = "hiera-study/speed/2"
SPEED_SCHEMAS = ("hiera-study/speed/1", SPEED_SCHEMA)  # every version `SpeedRecord.from_json` reads
BREAKDOWN_SCHEMA = "hiera-study/breakdown/2"
BREAKDOWN_SCHEMAS = ("hiera-study/breakdown/1", BREAKDOWN_SCHEMA)
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


def upgrade_speed(obj: dict[str, Any]) -> dict[str, Any]:
    """A speed or breakdown line of schema 1 (or none) in schema 2's terms: `size` is `size_label`, and a proxy model
    measured as a full-size variant with overrides (`hiera_tiny_224.b_max_pool` + the 48 px fields) is named by its
    registered proxy (`proxy_tiny_48.b_max_pool`) with the overrides the proxy does not already have."""
    obj = dict(obj)
    if "size" in obj and "size_label" not in obj:
        obj["size_label"] = obj.pop("size")
    overrides = obj.get("overrides")
    variant = obj.get("variant")
    if not isinstance(overrides, dict) or not isinstance(variant, str) or not overrides:
        return obj
    base, dot, slug = variant.partition(".")
    for scale, proxy in PROXY_SCALES.items():
        own = {k: list(v) if isinstance(v, tuple) else v for k, v in proxy.changes.items()}
        if base == f"hiera_{proxy.size}_{proxy.res}" and all(overrides.get(k) == v for k, v in own.items()):
            obj["variant"] = f"proxy_{scale}{dot}{slug}"
            if obj.get("model") == variant:
                obj["model"] = obj["variant"]
            obj["overrides"] = {k: v for k, v in overrides.items() if k not in own}
            break
    return obj


@dataclass(frozen=True, kw_only=True)
class MachineConditions:
    """The machine and code a speed or breakdown record was measured on (`hiera.env` fills them): the conditions
    both record types carry, declared once. Keyword-only, so each record keeps its own required fields first."""

    driver: str | None = None
    cuda: str | None = None
    cudnn: str | None = None
    cpu_threads: int | None = None
    git_sha: str | None = None
    git_dirty: bool | None = None
    python: str | None = None
    timm: str | None = None

    def _fields_json(self) -> dict[str, Any]:
        """`dataclasses.asdict` with the conditions last, where the lines written before this base class have them."""
        values = dataclasses.asdict(self)
        conditions = [f.name for f in dataclasses.fields(MachineConditions)]
        return {**{k: v for k, v in values.items() if k not in conditions}, **{k: values[k] for k in conditions}}


@dataclass(frozen=True)
class SpeedRecord(MachineConditions):
    """One timed model at one batch size (or the batch that ran out of memory), with its conditions."""

    variant: str
    step: str | None  # Table-1 ladder row of the variant
    size_label: str  # the variant's size label (T, S, B, B+, L, H)
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
    attn_kernels: list[dict[str, Any]] | None = None  # the attention ops that ran (`hiera.bench.kernels`)
    attn_backends: tuple[str, ...] | None = None  # their backends, e.g. ("cpu_flash",) or ("explicit",)

    def to_json(self) -> dict[str, Any]:
        out = {"schema": SPEED_SCHEMA, **self._fields_json()}
        for name in ("input_size", "attn_backends"):
            out[name] = None if out[name] is None else list(out[name])
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any], where: str) -> SpeedRecord:
        """Validate a record of schema `hiera-study/speed/2`, or of an earlier one (`upgrade_speed`)."""
        if obj.get("schema") != SPEED_SCHEMA:
            if "schema" in obj:
                schema(obj, where, SPEED_SCHEMAS)
            obj = upgrade_speed(obj)
        v: dict[str, Any] = {}
        for name in (
            "variant",
            "size_label",
            "impl",
            "model",
            "mode",
            "precision",
            "attn",
            "protocol",
            "device",
            "torch",
        ):
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


# Fields an out-of-memory breakdown record has (besides its schema and `CONDITIONS`): what was asked, no times.
_BREAKDOWN_OOM = (
    "status",
    "oom_stage",
    "variant",
    "step",
    "size_label",
    "modality",
    "impl",
    "mode",
    "precision",
    "attn",
)


@dataclass(frozen=True)
class BreakdownRecord(MachineConditions):
    """One variant's step time split by op family (`hiera-study bench --breakdown`), or, with `status` "oom", the
    batch at which it ran out of memory (then every time field is None).

    Times are milliseconds per step averaged over `profiled_steps`; `families` sum to `total_ms`. `fractions` is
    not a field: `to_json` derives it from `families`, so it cannot disagree with them."""

    variant: str
    step: str | None  # ladder row (Table 1, or g beyond the paper)
    size_label: str  # the variant's size label
    modality: str
    mode: str  # infer | train | mae
    precision: str
    attn: str
    batch_size: int
    device: str
    torch: str
    date: str
    impl: str = "hiera-study"
    compile: bool = False  # always eager: compiled graphs have no op-family ranges
    status: str = "ok"  # ok | oom
    oom_stage: str | None = None
    separate_and_pad: str | None = None
    input_size: tuple[int, ...] | None = None
    overrides: dict[str, Any] | None = None
    families: dict[str, float] | None = None
    total_ms: float | None = None
    wall_step_ms: float | None = None  # the plain step, no profiler
    profiled_step_ms: float | None = None
    range_self_ms: float | None = None
    profiled_steps: int | None = None
    time_source: str | None = None
    warmup: int | None = None
    iters: int | None = None
    trials: int | None = None
    gmacs: float | None = None
    host_families: dict[str, float] | None = None  # CUDA only: the host side of the step, per family

    def to_json(self) -> dict[str, Any]:
        """The line `hiera-study bench --breakdown` appends (schema 2: schema 1's keys, `size` named `size_label`)."""
        values = self._fields_json()
        if self.status == "oom":
            out = {name: values[name] for name in _BREAKDOWN_OOM}
            out.update(compile=False, batch_size=self.batch_size)
        else:
            out = {k: v for k, v in values.items() if k not in ("status", "oom_stage", "host_families")}
            out["input_size"] = None if self.input_size is None else list(self.input_size)
            total, families = self.total_ms or 0.0, self.families or {}
            out["fractions"] = {k: round(v / total, 4) if total else 0.0 for k, v in families.items()}
            if self.host_families is not None:
                out["host_families"] = self.host_families
        out.update({k: values[k] for k in CONDITIONS})
        return {"schema": BREAKDOWN_SCHEMA, **out}

    @classmethod
    def from_json(cls, obj: dict[str, Any], where: str) -> BreakdownRecord:
        """Validate one line of schema `hiera-study/breakdown/2` or 1 (`upgrade_speed`); errors name `where`
        (file:line) and the field."""
        if schema(obj, where, BREAKDOWN_SCHEMAS) != BREAKDOWN_SCHEMA:
            obj = upgrade_speed(obj)
        status = field(obj, "status", where, "str", optional=True, choices=SPEED_STATUSES) or "ok"
        v: dict[str, Any] = {"status": status}
        v["variant"] = field(obj, "variant", where, "str")
        text = ("size_label", "mode", "precision", "attn", "device", "torch", "date")
        if status == "oom":  # what was asked; an early writer left out all but the variant and the stage
            v["oom_stage"] = field(obj, "oom_stage", where, "str", choices=OOM_STAGES)
            for name in text:
                v[name] = field(obj, name, where, "str", optional=True) or ""
            v["step"] = field(obj, "step", where, "str", optional=True)
            v["modality"] = field(obj, "modality", where, "str", optional=True) or ""
            v["batch_size"] = field(obj, "batch_size", where, "int", optional=True) or 0
            return cls(**v, **_conditions(obj, where))
        for name in text:
            v[name] = field(obj, name, where, "str")
        v["step"] = field(obj, "step", where, "str", optional=True, choices=EXTENDED_STEP_IDS)
        v["modality"] = field(obj, "modality", where, "str", choices=MODALITIES)
        v["separate_and_pad"] = field(obj, "separate_and_pad", where, "str", optional=True, choices=("on", "off"))
        v["impl"] = field(obj, "impl", where, "str", optional=True) or "hiera-study"
        v["compile"] = field(obj, "compile", where, "bool")
        v["batch_size"] = field(obj, "batch_size", where, "int", low=1)
        v["profiled_steps"] = field(obj, "profiled_steps", where, "int", low=1)
        v["time_source"] = field(obj, "time_source", where, "str", choices=tuple(TIME_SOURCES.values()))
        v["families"] = _families(obj, "families", where)
        v["total_ms"] = field(obj, "total_ms", where, "number", low=0)
        parts = sum(v["families"].values())
        if not math.isclose(parts, v["total_ms"], rel_tol=1e-6, abs_tol=1e-3):
            raise ValueError(f"{where}: field 'total_ms' is {v['total_ms']} but the families sum to {parts:.4f}")
        if "host_families" in obj:
            v["host_families"] = _families(obj, "host_families", where)
        v["wall_step_ms"] = field(obj, "wall_step_ms", where, "number", low=0)
        for name in ("profiled_step_ms", "range_self_ms", "gmacs"):
            v[name] = field(obj, name, where, "number", optional=True, low=0)
        for name in ("warmup", "iters", "trials"):
            v[name] = field(obj, name, where, "int", optional=True)
        v["input_size"] = sizes(obj, "input_size", where)
        v["overrides"] = field(obj, "overrides", where, "dict", optional=True)
        return cls(**v, **_conditions(obj, where))

    def row(self) -> dict[str, Any] | None:
        """The frame row (`hiera.analysis.frames`): one `<family>_ms` per op family (0 where the record has none),
        input size as `HxW`, overrides as sorted JSON; None for an out-of-memory record (no times to break down)."""
        if self.status == "oom":
            return None
        row = {
            name: getattr(self, name)
            for name in (
                "variant", "size_label", "mode", "precision", "attn", "device", "torch", "date", "step", "modality",
                "separate_and_pad", "compile", "batch_size", "profiled_steps", "time_source",
            )
        }  # fmt: skip
        families = self.families or {}
        row.update({f"{name}_ms": families.get(name, 0.0) for name in BREAKDOWN_FAMILIES})
        for name in ("total_ms", "wall_step_ms", "profiled_step_ms", "range_self_ms", "cpu_threads"):
            row[name] = getattr(self, name)
        for name in ("driver", "cuda", "cudnn", "git_sha", "python", "timm", "git_dirty"):
            row[name] = getattr(self, name)
        row["input_size"] = "x".join(map(str, self.input_size or ()))
        row["overrides"] = json.dumps(self.overrides or {}, sort_keys=True)
        return row


def _families(obj: dict[str, Any], name: str, where: str) -> dict[str, float]:
    """`obj[name]`: milliseconds per op family, each a known family and >= 0."""
    for family in field(obj, name, where, "dict"):
        if family not in BREAKDOWN_FAMILIES:
            raise ValueError(
                f"{where}: field '{name}.{family}' is not an op family; one of {', '.join(BREAKDOWN_FAMILIES)}"
            )
    return {f: field(obj, f"{name}.{f}", where, "number", low=0) for f in obj[name]}


def _conditions(obj: dict[str, Any], where: str) -> dict[str, Any]:
    """The `CONDITIONS` a breakdown line carries beyond device, torch and date (read with the record's fields)."""
    out: dict[str, Any] = {
        name: text_or_none(obj, name) for name in ("driver", "cuda", "cudnn", "git_sha", "python", "timm")
    }
    out["cpu_threads"] = field(obj, "cpu_threads", where, "int", optional=True)
    out["git_dirty"] = field(obj, "git_dirty", where, "bool", optional=True)
    return out


def breakdown_row(obj: dict[str, Any], where: str) -> dict[str, Any] | None:
    """Check one breakdown line (`BreakdownRecord.from_json`) and flatten it (`BreakdownRecord.row`)."""
    return BreakdownRecord.from_json(obj, where).row()
