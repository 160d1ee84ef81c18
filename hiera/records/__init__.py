"""The record files this project writes and reads, one owner per format (layout in results/README.md).

- `hiera.records.run`: `RunRecord` (a run of a grid, `record.json` / `results/records/<grid>.jsonl`) and
  `PhaseResult` (one training phase, `<phase>/result.json`);
- `hiera.records.speed`: `SpeedRecord` (`hiera-study bench`, `results/speed/*.jsonl`) and the breakdown records;
- `hiera.records.check`: the field checks and JSON(L) reading they share (errors name file:line: field).

Producers build the typed record and write it with its `to_json`; consumers read with its `from_json`, which also
reads the previous schema version. The analysis frames (`hiera.analysis.frames`) are built from these only.
"""

from hiera.records.run import (
    PHASE_RESULT,
    PROXY_DATASETS,
    RUN_RECORD,
    RUN_SCHEMA,
    PhaseResult,
    RunRecord,
    read_phase_result,
    read_run_record,
    run_record_path,
    run_records_text,
    write_phase_result,
    write_run_record,
)
from hiera.records.speed import (
    BREAKDOWN_SCHEMA,
    CONDITIONS,
    SPEED_SCHEMA,
    BreakdownRecord,
    SpeedRecord,
    breakdown_row,
)

__all__ = [
    "BREAKDOWN_SCHEMA",
    "CONDITIONS",
    "PHASE_RESULT",
    "PROXY_DATASETS",
    "RUN_RECORD",
    "RUN_SCHEMA",
    "SPEED_SCHEMA",
    "PhaseResult",
    "RunRecord",
    "SpeedRecord",
    "BreakdownRecord",
    "breakdown_row",
    "read_phase_result",
    "read_run_record",
    "run_record_path",
    "run_records_text",
    "write_phase_result",
    "write_run_record",
]
