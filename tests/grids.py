"""Grid files the launcher tests write: tiny MAE -> finetune runs on the embedded data, seconds each on one CPU.

One template for `test_launch_safety.py`, `test_archive.py` and `test_slurm_launch.py`; each test picks the runs
(id template, variant, ladder step), the size and where the grid's data path comes from.
"""

from __future__ import annotations

from pathlib import Path

from hiera.model.ladder import PROXY_SCALES

# The tests' tiny model is the smoke grid's (ablations/smoke.py): the registered proxy scale `micro_32` ...
TINY = "proxy_micro_32"
# ... and the same model as `model_args` of the full-size name it shrinks, for the tests of overrides (without the
# class count: the phase sets it, 0 for an MAE encoder, as runs before the proxies had names left it)
TINY_ARGS = {k: v for k, v in PROXY_SCALES["micro_32"].changes.items() if k != "num_classes"}

TEMPLATE = '''"""Test grid. Command: hiera-study submit {path} {command}"""
from hiera.launch.grid import GridRun, Resources
from hiera.train.config import TrainConfig
from hiera.train.pipeline import RunSpec


def runs(ctx):
    out = []
    for seed in range(ctx.seeds):
        for run_id, variant, step in {runs!r}:
            common = dict(model=variant, size_key="tiny", dataset="fashion-mnist", train_samples={train_samples},
                          eval_samples={eval_samples}, batch_size=32, ckpt_every={ckpt_every}, log_every={log_every},
                          device="cpu", seed=seed, data_path={data_path}, model_args={model_args})
            pre = TrainConfig(phase="mae", recipe="proxy_mae", decoder_dim=16,
                              recipe_args={{"decoder_depth": 1, "epochs": {mae_epochs}}}, **common)
            fin = TrainConfig(phase="finetune", recipe="proxy_finetune", recipe_args={{"epochs": 1}}, **common)
            out.append(GridRun(RunSpec(grid="{grid}", run=run_id.format(seed=seed), variant=variant, step=step,
                                       size_key="proxy", table="{table}", train=fin, pretrain=pre, seed=seed),
                               Resources(gpus_per_node=0, hours={hours})))
    return out
'''


def write_grid(
    directory: Path,
    grid: str,
    runs: list[tuple[str, str, str]],
    *,
    command: str = "--cluster debug",
    train_samples: int = 64,
    eval_samples: int = 32,
    ckpt_every: int = 1,
    log_every: int = 1,
    mae_epochs: int = 1,
    hours: float = 0.25,
    table: str = "smoke",
    data_path: str = "None",
    model_args: dict | None = None,
) -> Path:
    """`<directory>/<grid>.py`. `runs`: (run id, `{seed}` filled in per seed; variant; ladder step). `data_path`: a
    Python expression in the grid (`"ctx.imagenet"`, or a quoted path). `model_args`: ModelConfig overrides."""
    path = directory / f"{grid}.py"
    path.write_text(
        TEMPLATE.format(
            path=path,
            command=command,
            runs=[tuple(r) for r in runs],
            train_samples=train_samples,
            eval_samples=eval_samples,
            ckpt_every=ckpt_every,
            log_every=log_every,
            mae_epochs=mae_epochs,
            hours=hours,
            table=table,
            grid=grid,
            data_path=data_path,
            model_args=repr(model_args or {}),
        )
    )
    return path


def named(names, seeds: bool = True) -> list[tuple[str, str, str]]:
    """Runs of Hiera-T's proxy (row f) with these ids (`<name>/seed<seed>`, or the bare name)."""
    return [(f"{n}/seed{{seed}}" if seeds else n, TINY, "f") for n in names]


def done_record(run: str, grid: str = "g", **fields) -> dict:
    """A complete finished-run record of schema 1, as runs wrote it (to `result.json`) before `record.json`:
    collect validates what it copies, so a test's hand-made run directory needs every field a real one has."""
    return {
        "schema": "hiera-study/run/1",
        "grid": grid,
        "run": run,
        "status": "done",
        "variant": "hiera_tiny_224",
        "step": "f",
        "size": "proxy",
        "modality": "image",
        "dataset": "fashion-mnist",
        "proxy": True,
        "seed": 0,
        "table": "smoke",
        "metrics": {"top1": 50.0},
        "input_size": [32, 32],
        "params_m": 1.0,
        "gmacs": 0.01,
        "epochs": {"pretrain": 1, "finetune": 1},
        "precision": "fp32",
        "batch_size": 32,
        "wall_s": 1.0,
        "env": {"date": "2026-01-01T00:00:00+00:00", "device": "x86_64"},
        **fields,
    }
