"""Proxy recipe sweep: learning rate, warm-up and augmentation of the embedded-data recipes (issue 13, item 0).

Paper table: none. It chooses the `proxy_*` recipes of hiera/recipes.py, which the demo and the proxy grids use:
the shipped ones trained a transformer with AdamW at a high learning rate and no warm-up, and the demo's rows
swung between 33% and 71% top-1. One factor at a time around a centre (lr 5e-4 at batch 64, one warm-up
epoch, no mixup / label smoothing), at the demo's scale: the demo's proxy model (Hiera-T ladder at 32 channels,
1-1-2-1 blocks, 64x64 px, 16 mask units), 4,000 training images, 2,000 test images, batch 64, CPU, seed 0.
- supervised from scratch, rows `sup` (MViTv2) and `f` (Hiera): 3 epochs;
- MAE (1 epoch, the shipped MAE recipe) -> finetuning (2 epochs), rows `b` (the demo's worst) and `f`: the
  finetuning recipe is swept.
Settings: `centre`; `lr1e-3`, `lr2.5e-4` (the lr alone); `warmup0` (no warm-up); `aug` (mixup 0.2 + label
smoothing 0.1, as the shipped recipes); `shipped` (the recipes as shipped before this sweep: lr 2e-3, no warm-up,
mixup 0.2, smoothing 0.1). Finetuning also: `ld1` (layer decay off, lr 1e-3), `ld1-lr2e-3`, `ld0.95` (milder
decay, lr 1e-3), `ld1-mae3` (layer decay off after 3 MAE epochs) — added after the first pass (FINETUNE_ONLY).
Every value is written out here, so the grid does not move when the presets change.

Expected numbers: the shipped settings near 30-55% top-1 (as the demo), lower lrs and no mixup well above 60%.
The records are committed (results/records/proxy_recipe_sweep.jsonl) and the choice is in hiera/recipes.py.
Second pass (`10k/...` runs): 10,000 training images, the best first-pass settings (supervised `lr1e-3`,
`warmup0`, for rows sup, b, f; finetuning `ld1`, `ld1-lr2e-3` for rows b, f), then `ld1-ft3` (3 finetuning
epochs) and `ld1-ft3-mae3` (and 3 MAE epochs).
Cost: 32 runs of 1-2 min and 14 runs of 2-5 min on 2 CPU cores (~65 min), 0 GPU-hours.
Command: hiera-study submit ablations/proxy_recipe_sweep.py --cluster slurm --profile local
"""

from hiera.launch.grid import GridContext, GridRun, Resources
from hiera.model.ladder import ladder_name
from hiera.train.config import TrainConfig
from hiera.train.pipeline import RunSpec

# The demo's proxy model when the sweep ran (64 px; registered as `proxy_tiny_64`, hiera/model/ladder.py PROXY_SCALES).
PROXY = "proxy_tiny_64"
CENTRE = dict(lr=5e-4, warmup_epochs=1, mixup=0.0, cutmix=0.0, label_smoothing=0.0)
SETTINGS = {
    "centre": {},
    "lr1e-3": dict(lr=1e-3),
    "lr2.5e-4": dict(lr=2.5e-4),
    "warmup0": dict(warmup_epochs=0),
    "aug": dict(mixup=0.2, label_smoothing=0.1),
    "shipped": dict(lr=2e-3, warmup_epochs=0, mixup=0.2, label_smoothing=0.1),
}
# Finetuning only, after the first pass showed MAE -> finetuning far below training from scratch at this scale
# (1 MAE epoch is ~60 steps: the encoder is barely trained, and layer decay 0.85 then all but freezes its lower
# blocks): layer decay off or milder, a higher lr, a longer MAE.
FINETUNE_ONLY = {
    "ld1": dict(layer_decay=1.0, lr=1e-3),
    "ld1-lr2e-3": dict(layer_decay=1.0, lr=2e-3),
    "ld0.95": dict(layer_decay=0.95, lr=1e-3),
    "ld1-mae3": dict(layer_decay=1.0, lr=1e-3, mae_epochs=3),
}
SLUGS = {"sup": "sup_mvitv2", "b": "b_max_pool", "f": ""}
SHIPPED_MAE = dict(epochs=1, lr=1.5e-3, warmup_epochs=0)


def _run(seed: int, samples: int, kind: str, step: str, name: str, change: dict, first_pass: bool) -> GridRun:
    """One sweep run: supervised (3 epochs) or MAE -> finetuning with `change` over CENTRE."""
    change = dict(change)
    mae = {**SHIPPED_MAE, "epochs": change.pop("mae_epochs", 1)}
    ft_epochs = change.pop("ft_epochs", 2)
    recipe = {**CENTRE, **change}
    variant = ladder_name(PROXY, SLUGS[step])
    common = dict(
        size_key="tiny",
        dataset="fashion-mnist",
        device="cpu",
        seed=seed,
        train_samples=samples,
        eval_samples=2000,
        log_every=20,
    )
    if kind == "supervised":
        pre = None
        fin = TrainConfig(
            phase="supervised",
            model=variant,
            recipe="proxy_supervised",
            recipe_args={**recipe, "epochs": 3, "grad_clip": 5.0},
            **common,
        )
    else:
        pre = TrainConfig(phase="mae", model=variant, recipe="proxy_mae", decoder_dim=64, recipe_args=mae, **common)
        # the first pass spelled out the shipped layer decay; the second pass takes the recipe's unless changed
        decay = {"layer_decay": recipe.get("layer_decay", 0.85)} if first_pass else {}
        fin = TrainConfig(
            phase="finetune",
            model=variant,
            recipe="proxy_finetune",
            recipe_args={**recipe, "epochs": ft_epochs, **decay, "grad_clip": 5.0},
            **common,
        )
    prefix, ablation = ("", kind) if first_pass else ("10k/", f"{kind}_10k")
    spec = RunSpec(
        grid="proxy_recipe_sweep",
        run=f"{prefix}{kind}/{step}/{name}/seed{seed}",
        variant=variant,
        step=step,
        size_key="proxy",
        table="sweep",
        train=fin,
        pretrain=pre,
        seed=seed,
        ablation=ablation,
        setting=name,
    )
    return GridRun(spec, Resources(nodes=1, gpus_per_node=0, hours=0.5), gpu_hours=0.0)


# Second pass, at the training size the demo's 15-minute budget allows (10,000 images, 2.5x the first pass): the
# best first-pass settings, and supervised row b (is the max-pool row low after MAE only, or from scratch too?).
SECOND_SUPERVISED = {"lr1e-3": dict(lr=1e-3), "warmup0": dict(warmup_epochs=0)}
SECOND_FINETUNE = {
    "ld1": FINETUNE_ONLY["ld1"],
    "ld1-lr2e-3": FINETUNE_ONLY["ld1-lr2e-3"],
    # after the runs above: MAE -> finetuning 10 points under scratch; longer finetuning, longer MAE
    "ld1-ft3": dict(layer_decay=1.0, lr=1e-3, ft_epochs=3),
    "ld1-ft3-mae3": dict(layer_decay=1.0, lr=1e-3, ft_epochs=3, mae_epochs=3),
}


def runs(ctx: GridContext) -> list[GridRun]:
    out = []
    for seed in range(ctx.seeds):
        for kind, steps, settings in (
            ("supervised", ("sup", "f"), SETTINGS),
            ("mae_finetune", ("b", "f"), {**SETTINGS, **FINETUNE_ONLY}),
        ):
            out += [
                _run(seed, 4000, kind, step, name, change, True) for step in steps for name, change in settings.items()
            ]
        for kind, steps, settings in (
            ("supervised", ("sup", "b", "f"), SECOND_SUPERVISED),
            ("mae_finetune", ("b", "f"), SECOND_FINETUNE),
        ):
            out += [
                _run(seed, 10000, kind, step, name, change, False)
                for step in steps
                for name, change in settings.items()
            ]
    return out
