"""Smoke grid: two tiny ladder rows on the embedded Fashion-MNIST, MAE -> finetune -> eval, on CPU in seconds.

Paper table: none (a plumbing check of the launcher: arrays, requeue, resume, status, collect).
Expected numbers: top-1 well above chance (10%) is not expected at this size; the runs must simply finish and
write their records. Cost: ~20 s of CPU per run, 0 GPU-hours.
Command: hiera-study submit ablations/smoke.py --cluster debug
On the local SLURM (`slurm/local-cluster.sh start`):
    hiera-study submit ablations/smoke.py --cluster slurm --partition debug
"""

from hiera.launch.grid import GridContext, GridRun, Resources
from hiera.model.ladder import ladder_name
from hiera.train.config import TrainConfig
from hiera.train.pipeline import RunSpec

# A Hiera-T ladder shrunk to run in seconds: 32x32 inputs, 16 channels, one block per stage (hiera/model/ladder.py
# PROXY_SCALES["micro_32"]).
PROXY = "proxy_micro_32"


def runs(ctx: GridContext) -> list[GridRun]:
    out = []
    for seed in range(ctx.seeds):
        for step, slug in (("e", "e_no_attn_residual"), ("f", "")):
            variant = ladder_name(PROXY, slug)
            common = dict(
                model=variant,
                size_key="tiny",
                dataset="fashion-mnist",
                train_samples=256,
                eval_samples=128,
                batch_size=32,
                seed=seed,
                ckpt_every=2,
                log_every=2,
                device="cpu",
            )
            pre = TrainConfig(
                phase="mae", recipe="proxy_mae", decoder_dim=16, recipe_args={"decoder_depth": 1}, **common
            )
            fin = TrainConfig(phase="finetune", recipe="proxy_finetune", recipe_args={"epochs": 1}, **common)
            spec = RunSpec(
                grid="smoke",
                run=f"{variant}/seed{seed}",
                variant=variant,
                step=step,
                size_key="proxy",
                table="smoke",
                train=fin,
                pretrain=pre,
                seed=seed,
            )
            out.append(GridRun(spec, Resources(nodes=1, gpus_per_node=0, hours=0.25), gpu_hours=0.0))
    return out
