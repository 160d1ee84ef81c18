"""Paper Table 1, images: MViTv2-L -> Hiera-L on ImageNet-1K, one bell or whistle removed per row.

Runs: the supervised MViTv2-L baseline (300 epochs from scratch, MViTv2's recipe), the "+ MAE, rel pos" header
(not a paper row) and rows (a)-(f), each MAE-pretrained 400 epochs (Tab. 14, mask 0.6) and finetuned 50 epochs.
Expected top-1 (paper): sup 85.3, a 85.6, b 84.4, c 85.4, d 85.7, e 85.6, f 85.6 (Hiera-L); images/s (A100,
fp16, paper protocol) 219.8, 253.3, 99.9, 309.2, 369.8, 374.3, 531.4 (2.4x over the baseline).
Cost: ~2,000 A100 GPU-hours for the 8 runs
(estimate from GMACs at 30% MFU; `--dry-run` prints it per run), 8 nodes x 8 GPUs per run.
Command: hiera-study submit ablations/t01_ladder_images.py --cluster slurm --profile mycluster
"""

from hiera.launch.grid import GridContext, GridRun, ladder_runs


def runs(ctx: GridContext) -> list[GridRun]:
    return ladder_runs("t01_ladder_images", "table1", ctx, "large", "224")
