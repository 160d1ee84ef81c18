"""Paper Appendix B / Fig. 8: the same ladder MViTv2-B -> Hiera-B trained supervised from scratch (no MAE).

The paper's point: without MAE the bells and whistles are needed — accuracy falls along the ladder. Every step
(sup, the rel-pos header, a-f) trains 300 epochs with MViTv2's supervised recipe (`in1k_supervised`).
Expected (paper, read off Fig. 8, UNCONFIRMED): ~84.4 for MViTv2-B falling to ~83 for Hiera-B.
Cost: ~550 A100 GPU-hours for the 8 runs
(estimate from GMACs at 30% MFU; `--dry-run` prints it per run); 4x8 GPUs per run.
Command: hiera-study submit ablations/appb_supervised_ladder.py --cluster slurm --profile mycluster
"""

from hiera.launch.grid import GridContext, GridRun, ladder_runs


def runs(ctx: GridContext) -> list[GridRun]:
    return ladder_runs("appb_supervised_ladder", "appendix_b", ctx, "base", "224", supervised=True, gpus=32)
