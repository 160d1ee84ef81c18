"""Paper Table 1, video: MViTv2-L -> Hiera-L on Kinetics-400 (16x224), one bell or whistle removed per row.

Runs: the supervised MViTv2-L baseline (200 epochs from scratch), the "+ MAE, rel pos" header (not a paper row)
and rows (a)-(f), each MAE-pretrained 800 effective epochs (Tab. 11, mask 0.9) and finetuned 100 epochs.
The baseline's lr is not given by the paper (`k400_supervised` has none): this grid borrows Table 11's
finetuning lr (8e-4 at batch 256) — a documented choice, not the paper's.
Expected top-1 (paper, 3x5 views): sup 80.5, a 85.3, b 84.1, c 84.3, d 85.5, e 85.5, f 85.5; clips/s 20.5, 20.7,
10.4, 26.2, 29.4, 29.8, 40.8 (2.0x). Cost: ~3,600 A100 GPU-hours for the 8 runs
(estimate from GMACs at 30% MFU; `--dry-run` prints it per run), 8x8 GPUs per run.
Command: hiera-study submit ablations/t01_ladder_video.py --cluster slurm --profile mycluster
"""

from hiera.launch.grid import GridContext, GridRun, ladder_runs


def runs(ctx: GridContext) -> list[GridRun]:
    return ladder_runs("t01_ladder_video", "table1", ctx, "large", "16x224", baseline={"recipe_args": {"lr": 8e-4}})
