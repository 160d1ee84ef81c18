"""Paper Appendix B / Fig. 8 at the proxy scale: the same ladder as proxy_t01_images, every step from scratch.

The paper's contrast: with MAE the bells and whistles can go (Table 1), trained supervised from scratch they are
needed (accuracy falls along the ladder). Same models, data and lengths as `ablations/proxy_t01_images.py`: every
step (sup, a-f) trains 4 epochs from scratch (`proxy_supervised`) on all 60,000 training images, evaluated on all
10,000 test images, 3 seeds. The MAE header step (`mae`) is left out: its changes (separate-and-pad, head order)
exist for MAE and it is not a paper row. Row `sup` is the same run as the MAE grid's (a check: equal to the last
digit); row `f` here against row `f` there is "the same model from MAE vs from scratch" at equal passes over the
data (results/tables/mae_vs_scratch-proxy.md).
Expected (paper, read off Fig. 8, UNCONFIRMED at full scale): a fall of ~1.5 points from MViTv2 to Hiera; whether a
proxy this small shows it is what the grid measures. Measured (after `collect`, `tables`): results/tables/
appendix_b.md and mae_vs_scratch-proxy.md.
Measured (committed records), seed 0 / 1 (2026-12-04) / 2 (2026-12-07, AMD EPYC, AVX-512): sup 89.20 / 89.36 / 88.65,
a 87.35 / 87.65 / 86.91, b 85.78 / 86.54 / 84.91, c 85.98 / 85.97 / 85.21, d 85.61 / 86.42 / 84.62, e 85.37 / 85.99 /
85.61, f 86.39 / 86.24 / 85.52%; mean over seeds: sup 89.07, f 86.05 (a fall of 3.0 points, larger than the paper's
~1.5), the steps a (-1.77) and b (-1.56) cost, c-e change nothing beyond the test-set noise, f gains +0.39. From
scratch is above every MAE row at this length (results/tables/mae_vs_scratch-proxy.md).
Cost: 21 runs of 13-43 min on one CPU core each (measured, `wall_s` of the records; row a, with conv pooling, the
slowest): ~1.5 h of wall time per seed on 2 cores (seed 2: 1 h 11 min, 21:24 to 22:35, `sacct`), 0 GPU-hours.
Command: hiera-study submit ablations/proxy_appb_supervised.py --seeds 3 --cluster slurm --profile local
"""

from hiera.launch.grid import GridContext, GridRun, Resources
from hiera.proxy import ladder_specs

EPOCHS = dict(mae_epochs=2, finetune_epochs=2, supervised_epochs=4)  # as proxy_t01_images (MAE unused here)


def runs(ctx: GridContext) -> list[GridRun]:
    res = Resources(nodes=1, gpus_per_node=0, hours=1.0, cpus_per_task=1)
    return [
        GridRun(spec, res)
        for seed in range(ctx.seeds)
        for spec in ladder_specs(
            "proxy_appb_supervised",
            "appendix_b",
            seed,
            train_samples=None,
            eval_samples=None,
            supervised=True,
            device="cpu",
            steps=("sup", "a", "b", "c", "d", "e", "f"),
            **EPOCHS,
        )
    ]
