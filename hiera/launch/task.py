"""The one callable where the launcher and the trainer meet: run (or resume) one grid run in its directory.

`RunTask` is a submitit `Checkpointable`: on preemption or timeout submitit calls `checkpoint()`, which
requeues the *same* task; the requeued task resumes every phase from its own `checkpoints/last.pth` (the MAE
repo's launcher requeues but never resumes — it looks for a file it never writes). A failure writes
`error.json` (type, message, traceback tail) into the run directory before re-raising, so `hiera-study status`
can show it without reading SLURM logs. A requeued job may start while its predecessor is still exiting (and
holding the run directory's lock), so the task waits up to `lock_wait_s` for the lock instead of failing.
Multi-GPU and multi-node jobs export submitit's job environment as the torchrun variables, which
`hiera/train/distributed.py` reads.
"""

from __future__ import annotations

import json
import os
import traceback
from pathlib import Path

import submitit

from hiera.files import atomic_write_text
from hiera.records.run import RunRecord
from hiera.train.pipeline import RunSpec, run_pipeline

LOCK_WAIT_S = 120.0  # longer than a SLURM job takes to exit after SIGTERM (KillWait is 30 s by default)


class RunTask(submitit.helpers.Checkpointable):
    def __init__(self, spec: dict, run_dir: str, lock_wait_s: float = LOCK_WAIT_S):
        self.spec, self.run_dir = spec, run_dir  # plain data: the pickle stays valid across code edits
        self.lock_wait_s = lock_wait_s

    def __call__(self) -> RunRecord:
        run_dir = Path(self.run_dir)
        try:
            env = submitit.JobEnvironment()
            if env.num_tasks > 1:
                submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
        except RuntimeError:  # not inside a submitit job (the debug cluster runs in-process)
            pass
        cpus = os.environ.get("SLURM_CPUS_PER_TASK")
        if cpus:  # without cgroup binding torch would start one thread per core of the node in every task
            import torch

            torch.set_num_threads(int(cpus))
        rank = int(os.environ.get("RANK", "0"))
        try:
            if rank == 0:
                (run_dir / "error.json").unlink(missing_ok=True)
            # getattr: a task pickled by an older version (a requeue across an upgrade) has no lock_wait_s
            return run_pipeline(
                RunSpec.from_dict(self.spec),
                run_dir,
                progress=False,
                lock_wait_s=getattr(self, "lock_wait_s", LOCK_WAIT_S),
            )
        except Exception as e:
            if rank == 0:
                tail = traceback.format_exc().splitlines()[-12:]
                try:
                    atomic_write_text(
                        run_dir / "error.json",
                        json.dumps({"type": type(e).__name__, "message": str(e), "traceback": tail}, indent=1) + "\n",
                    )
                except OSError:  # e.g. the run directory is a file: the original error is the one to report
                    pass
            raise
