"""Paper Table 3: MAE ablations of Hiera-L, images (ImageNet-1K) and video (Kinetics-400).

Protocol: 400 (images) / 800 (video) epochs of sparse MAE, then finetuning (Tab. 14 / Tab. 11); one setting
changed per run from the defaults (multi-scale decoder, mask 0.6 / 0.9, pixel target, drop path 0.2, decoder
depth 8). (f) varies the pretraining length; 800 and 3200 image epochs take the finetuning column of 400 and
1600 (the paper's recipe tables have only those two).
Expected top-1 (paper, image / video): default 85.6 / 85.5; (a) last stage only 85.0 / 83.8; (b) mask 0.5 85.5,
0.7 85.3 / 0.75 84.9, 0.95 84.4; (c) HOG 85.7 / 86.1; (d) drop path 0.0 85.2 / 84.5, 0.1 85.6 / 85.4,
0.3 85.5 / 85.2; (e) depth 4 85.5 / 84.8, 12 85.5 / 85.4; (f) 800 85.8 / -, 1600 86.1 / 86.4, 3200 86.1 / 87.3.
Cost: ~12,800 A100 GPU-hours for all 25 runs
(estimate from GMACs at 30% MFU; `--dry-run` prints it per run); 8x8 GPUs per run.
Command: hiera-study submit ablations/t03_mae_ablations.py --cluster slurm --profile mycluster --only '*mask_ratio*'
"""

from hiera.launch.grid import GridContext, GridRun, paper_run


def _recipe(**fields) -> dict:
    return {"recipe_args": fields}


# Settings both modalities ablate (a, c, d, e), then each modality's mask ratios (b) and schedules (f).
SHARED = [
    ("default", "-", {}),
    ("multi_scale", "false", {"multi_scale": False}),  # the name and text of results/paper/table3.csv
    ("target", "hog", {"target": "hog"}),
    *[("drop_path", str(p), _recipe(drop_path=p)) for p in (0.0, 0.1, 0.3)],
    *[("decoder_depth", str(d), _recipe(decoder_depth=d)) for d in (4, 12)],
]
IMAGE = [
    *SHARED,
    *[("mask_ratio", str(r), _recipe(mask_ratio=r)) for r in (0.5, 0.7)],
    ("epochs", "800", {"pretrain_epochs": 400, **_recipe(epochs=800)}),
    ("epochs", "1600", {"pretrain_epochs": 1600}),
    ("epochs", "3200", {"pretrain_epochs": 1600, **_recipe(epochs=3200)}),
]
VIDEO = [
    *SHARED,
    *[("mask_ratio", str(r), _recipe(mask_ratio=r)) for r in (0.75, 0.95)],
    *[("epochs", str(e), {"pretrain_epochs": e}) for e in (1600, 3200)],
]


def runs(ctx: GridContext) -> list[GridRun]:
    out = []
    for seed in range(ctx.seeds):
        for variant, settings in (("hiera_large_224", IMAGE), ("hiera_large_16x224", VIDEO)):
            for ablation, setting, pretrain in settings:
                out.append(
                    paper_run(
                        "t03_mae_ablations",
                        "table3",
                        ctx,
                        variant,
                        "large",
                        "f",
                        seed,
                        pretrain=pretrain,
                        ablation=ablation,
                        setting=setting,
                        tag=f".{ablation}={setting}" if ablation != "default" else ".default",
                    )
                )
    return out
