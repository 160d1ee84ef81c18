"""One training phase: MAE pretraining, finetuning or supervised training, resumable bit for bit (paper §3-§4).

`train(cfg, run_dir)` builds the model from the registry, the optimizer with timm (AdamW, layer-wise lr decay,
no weight decay on 1-D and position parameters), timm's cosine schedule with linear warm-up stepped per
optimizer step, timm's Mixup/CutMix with label smoothing (`SoftTargetCrossEntropy`), drop path, dropout,
gradient clipping and AMP (bf16 autocast, or fp16 with a `GradScaler`), then trains and evaluates.

Records (`hiera/train/phase_dir.py`): `config.json`, `env.json`, `metrics.jsonl` (train lines: step, epoch, loss,
lr; eval lines: top1, top5, eval_loss), `checkpoints/last.pth` every `ckpt_every` steps and at every epoch end
(`best.pth` at the best top-1), TensorBoard events of the same metrics in `tb/` (`hiera.train.board`),
`checkpoints/model.pth` (weights only, the official `model_state` format, so a finetune
or `hiera.build_model(..., checkpoint=)` can start from it), MAE reconstructions (`reconstruction.npz`),
the final evaluation's per-example predictions (`predictions.npy`, `labels.npy`; classification phases)
and `result.json` (a `PhaseResult`, `hiera.records`) last. Every file is written atomically and durably (`hiera.files`);
the main process holds the run directory's lock for the whole phase, so two live writers never interleave.

Resume restores model, optimizer, scaler, scheduler, the torch/NumPy/Python/CUDA RNGs, the data position
(epoch, batch) and the running loss of the current logging window, so an interrupted run ends with the same
weights and metrics as an uninterrupted one (on CPU; GPU kernels may be non-deterministic), also after a
metrics line torn by the crash. The checkpoint holds only tensors and plain containers, so it is loaded with
`weights_only=True`. A non-finite loss stops the run with an error before anything is saved: the last good
checkpoint stays.

Length (~650 lines): one training phase, read top to bottom as `_train` calls it (setup, resume, one epoch, one
step, evaluate, checkpoint, finish); the pieces share the `_Loop` state, and the bit-identical resume depends on
their order, which is easiest to check in one file (the nanoGPT anchor).
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from hiera import build_model
from hiera.data.wrappers import dataset_len, denormalise
from hiera.files import atomic_write
from hiera.model.config import ModelConfig
from hiera.model.mae import build_mae
from hiera.model.masking import random_mask
from hiera.recipes import Recipe, scaled_lr
from hiera.records.run import PhaseResult
from hiera.train.board import Board
from hiera.train.config import TrainConfig, model_config
from hiera.train.data import SkipSampler, build_datasets, set_epoch
from hiera.train.distributed import DistInfo, all_reduce_sum, barrier, init_distributed
from hiera.train.phase_dir import PhaseDir, check_dir, name_keys


class NonFiniteLoss(RuntimeError):
    pass


def build(cfg: TrainConfig, mc: ModelConfig) -> torch.nn.Module:
    """The phase's model: the MAE (`hiera.model.mae.build_mae`) around `mc`, or the classifier; `cfg.init` loaded."""

    rec = cfg.resolved_recipe()
    if cfg.phase == "mae":
        if not mc.uses_mask_units:
            raise ValueError(
                f"{cfg.model} pools across mask units, so it cannot be MAE-pretrained; use its "
                "`mae_rel_pos` step (separate-and-pad) or any later step"
            )
        # q_pool as `model_config` resolved it (the MAE rule, or the user's model_args)
        return build_mae(
            mc,
            checkpoint=cfg.init,
            decoder_dim=cfg.decoder_dim,
            decoder_depth=rec.decoder_depth,
            decoder_heads=rec.decoder_heads,
            multi_scale=cfg.multi_scale,
            target=cfg.target,
            q_pool=mc.q_pool,
        )
    return build_model(mc, checkpoint=cfg.init, num_classes=mc.num_classes) if cfg.init else build_model(mc)


def resolve_device(name: str, local_rank: int) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device=cuda but no CUDA device is visible; use device=cpu")
    if name == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local_rank)


def _rng_state() -> dict[str, Any]:
    # Only what `torch.load(weights_only=True)` reads back: NumPy's state tuple holds an ndarray, stored as a
    # tensor (int64, which holds every uint32 key exactly; uint32 tensors are a young, partly supported dtype).
    # the global RandomState is MT19937, whose legacy state is this tuple (NumPy's stubs say "or a dict")
    state = cast(tuple[str, np.ndarray, int, int, float], np.random.get_state(legacy=True))
    name, keys, pos, has_gauss, gauss = state
    return {
        "torch": torch.get_rng_state(),
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)],
        "python": random.getstate(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    random.setstate(state["python"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _seed_all(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


class Progress:
    """tqdm on an interactive terminal, otherwise a plain line every `every` steps (log files stay readable)."""

    def __init__(self, total: int, start: int, desc: str, every: int, enabled: bool):
        self.bar, self.every, self.desc, self.total, self.enabled = None, every, desc, total, enabled
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=start, desc=desc, dynamic_ncols=True, leave=False)

    def update(self, step: int, **shown: float) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in shown.items()}, refresh=False)
        elif step % self.every == 0 or step == self.total:
            items = " ".join(f"{k} {v:.4g}" for k, v in shown.items())
            print(f"{self.desc}: step {step}/{self.total} {items}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def _loader(dataset, batch: int, workers: int, sampler=None, seed: int = 0) -> DataLoader:
    # Its own generator: a DataLoader iterator otherwise draws its worker base seed from the global torch RNG
    # when it is created, which happens at a different point of the RNG stream in a resumed epoch.
    return DataLoader(
        dataset,
        batch_size=batch,
        sampler=sampler,
        num_workers=workers,
        drop_last=sampler is not None,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=False,
        generator=torch.Generator().manual_seed(seed),
    )


def _gather_in_order(local: np.ndarray, total: int, info: DistInfo) -> np.ndarray | None:
    """The per-example arrays of every rank's strided share (`rank::world`) as one array in dataset order, on the
    main rank (None elsewhere); one process: `local` itself, no process group needed."""
    if info.world == 1:
        return local
    parts: list[Any] = [None] * info.world
    torch.distributed.all_gather_object(parts, local)  # every rank takes part; only the main one keeps the result
    if not info.main:
        return None
    out = np.empty(total, dtype=local.dtype)
    for rank, part in enumerate(parts):
        out[rank :: info.world] = part
    return out


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    dataset,
    cfg: TrainConfig,
    device: torch.device,
    info: DistInfo,
    keep: dict[str, np.ndarray | None] | None = None,
) -> dict[str, float]:
    """Top-1 / top-5 (%) and cross-entropy; video samples `[V, C, T, H, W]` average their views' softmax.

    With `keep` (a dict), also the per-example predicted class (the top-1 of the averaged views) and label of the
    whole dataset in dataset order, int16, as `keep["predictions"]` / `keep["labels"]` on the main rank (None on
    the others): what the tables' paired statistics need (`hiera.analysis.stats`). Draws no random numbers.
    """
    model.eval()
    indices = list(range(info.rank, len(dataset), info.world))  # each rank its share, no padding duplicates
    loader = _loader(torch.utils.data.Subset(dataset, indices), cfg.batch_size // info.world or 1, cfg.workers)
    correct1 = correct5 = loss_sum = count = 0.0
    preds: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        views = x.shape[1] if x.ndim == 6 else 1
        with _autocast(device, cfg.precision):
            logits = model(x.flatten(0, 1) if x.ndim == 6 else x).float()
        probs = logits.softmax(-1).view(len(y), views, -1).mean(1)
        loss_sum += float(F.nll_loss(probs.clamp_min(1e-12).log(), y, reduction="sum"))
        top = probs.topk(min(5, probs.shape[-1]), dim=-1).indices
        correct1 += float((top[:, 0] == y).sum())
        correct5 += float((top == y[:, None]).any(-1).sum())
        count += len(y)
        if keep is not None:  # the same top-1 the accuracy counts, so top1 == 100 * mean(predictions == labels)
            preds.append(top[:, 0].cpu().numpy().astype(np.int16))
            labels.append(y.cpu().numpy().astype(np.int16))
    correct1, correct5, loss_sum, count = all_reduce_sum([correct1, correct5, loss_sum, count], device)
    if keep is not None:
        for name, parts in (("predictions", preds), ("labels", labels)):
            local = np.concatenate(parts) if parts else np.empty(0, np.int16)
            keep[name] = _gather_in_order(local, len(dataset), info)
    model.train()
    return {"top1": 100 * correct1 / count, "top5": 100 * correct5 / count, "eval_loss": loss_sum / count}


def _criterion(rec, mixup_active: bool):
    from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy

    if mixup_active:
        return SoftTargetCrossEntropy()  # mixup/cutmix produce soft targets with the smoothing folded in
    if rec.label_smoothing > 0:
        return LabelSmoothingCrossEntropy(rec.label_smoothing)
    return torch.nn.CrossEntropyLoss()


def _mix(mixup, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """timm's Mixup/CutMix; clips are mixed as `[B, C*T, H, W]` so a CutMix box spans every frame."""
    if x.ndim == 5:
        b, c, t, h, w = x.shape
        x, y = mixup(x.reshape(b, c * t, h, w), y)
        return x.view(b, c, t, h, w), y
    return mixup(x, y)


def save_reconstructions(model, dataset, cfg: TrainConfig, run: PhaseDir, device: torch.device, n: int = 8) -> None:
    """`reconstruction.npz`: input, visible-pixel mask and reconstruction of `n` samples (video: middle frame),
    per-patch normalisation and the data normalisation undone; visible patches are shown as input."""

    model.eval()
    x = torch.stack([dataset[i][0] for i in range(min(n, len(dataset)))]).to(device)
    if x.ndim == 6:  # [n, views, C, T, H, W] evaluation clips: the first view
        x = x[:, 0]
    mc = model.config
    with torch.no_grad():
        ratio = cfg.resolved_recipe().mask_ratio
        assert ratio is not None  # an MAE recipe's
        mask = random_mask(mc, len(x), ratio, torch.Generator().manual_seed(cfg.seed))
        mask = mask.to(device)
        pred, masked = model.forward_decoder(model.forward_encoder(x, mask), mask)
        if model.target != "pixel":
            model.train()
            return  # HOG predictions are not pixels: nothing to show
        label = model.pixel_targets(x)
        mean, var = label.mean(-1, keepdim=True), label.var(-1, keepdim=True)
        pixels = pred * (var + 1e-6) ** 0.5 + mean  # undo the per-patch normalisation of the target
        pixels = torch.where(masked[..., None], pixels, label).float()
    p = model.pred_stride
    if mc.ndim == 2:
        h, w = mc.input_size[0] // p, mc.input_size[1] // p
        img = pixels.view(len(x), h, w, 3, p, p).permute(0, 3, 1, 4, 2, 5).reshape(len(x), 3, h * p, w * p)
        frame = x
        vis = masked.view(len(x), h, w)
    else:
        t, h, w = mc.input_size[0] // mc.patch_stride[0], mc.input_size[1] // p, mc.input_size[2] // p
        mid = t // 2
        img = pixels.view(len(x), t, h, w, p, p, 3)[:, mid].permute(0, 5, 1, 3, 2, 4).reshape(len(x), 3, h * p, w * p)
        frame = x[:, :, mid * mc.patch_stride[0]]
        vis = masked.view(len(x), t, h, w)[:, mid]
    visible = ~vis.repeat_interleave(p, 1).repeat_interleave(p, 2)
    to_np = lambda a: denormalise(a.cpu(), cfg.dataset).permute(0, 2, 3, 1).numpy().astype(np.float32)  # noqa: E731
    arrays = {"input": to_np(frame), "mask": visible.cpu().numpy(), "reconstruction": to_np(img)}
    atomic_write(run.path / "reconstruction.npz", lambda f: np.savez_compressed(f, **arrays))
    model.train()


def _identity(config: dict[str, Any]) -> dict[str, Any]:
    """What a config.json computes (`TrainConfig.identity`): fields added since it was written take their defaults,
    and its model is compared as the config it resolves to, not by name."""
    return TrainConfig.from_dict(config).identity()


def _finished(run: PhaseDir, cfg: TrainConfig) -> PhaseResult:
    """The result of the finished phase in `run`, if it was trained with `cfg` (else a one-line error)."""
    diff = run.config_diff(cfg.to_dict(), _identity)
    if diff:
        raise ValueError(
            f"{run.path} holds a finished run with another configuration (config.json differs in "
            f"{name_keys(diff)}); use another run directory (or move this one away) to train with "
            "these settings"
        )
    return run.result()


def train(cfg: TrainConfig, run_dir: str | Path, progress: bool = True, lock_wait_s: float = 0.0) -> PhaseResult:
    """Run (or resume, or return the result of) one phase in `run_dir` (its phase directory); returns its result.

    The main process holds `<run_dir>/.lock` while it writes (another live writer is refused with one line, or
    waited for up to `lock_wait_s` seconds); a finished phase is returned only if it ran with the same `cfg`.
    """
    with contextlib.ExitStack() as held:  # whatever `_train` locks is released when it returns or raises
        return _train(cfg, PhaseDir(check_dir(run_dir)), progress, lock_wait_s, held)


@dataclass
class _Loop:
    """What one phase's loop works with, made once by `_setup`: the model (`net`: wrapped for DDP), its data,
    optimizer, schedule and loss, and where it writes."""

    cfg: TrainConfig
    rec: Recipe
    info: DistInfo
    device: torch.device
    run: PhaseDir
    model: torch.nn.Module
    net: torch.nn.Module
    train_set: Any
    eval_set: Any
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    mixup: Any
    criterion: Any
    lr: float
    local_batch: int
    steps_per_epoch: int
    board: Board | None = None


@dataclass
class _Position:
    """Where the loop stands; every checkpoint saves it and a resume restores it. `loss_window`: the running loss
    sum and count since the last metrics line (the checkpoint key stays `window`, so older checkpoints resume)."""

    step: int = 0  # optimizer steps done
    epoch: int = 0
    batch: int = 0  # batches done in `epoch`
    best: float = -math.inf  # best evaluation top-1 so far
    loss_window: list = field(default_factory=lambda: [0.0, 0])


def _train(
    cfg: TrainConfig, run: PhaseDir, progress: bool, lock_wait_s: float, held: contextlib.ExitStack
) -> PhaseResult:
    if run.done:
        return _finished(run, cfg)
    loop = _setup(cfg, run, lock_wait_s, held)
    if not isinstance(loop, _Loop):  # finished by the writer this process waited for
        return loop
    pos = _resume(loop)
    # TensorBoard mirror of metrics.jsonl, main rank only: purges its own events past the resumed step (see
    # hiera.train.board) and is closed by `held` when this phase returns or raises, so no writer thread outlives it.
    loop.board = held.enter_context(Board(run.path / "tb" if loop.info.main and cfg.tensorboard else None, pos.step))
    start_time = time.perf_counter()
    bar = Progress(
        loop.rec.epochs * loop.steps_per_epoch,
        pos.step,
        f"{cfg.phase} {cfg.model}",
        cfg.log_every,
        progress and loop.info.main,
    )
    loop.net.train()
    eval_metrics: dict[str, float] = {}
    final: dict[str, np.ndarray | None] = {}  # per-example predictions of the last epoch's evaluation
    while pos.epoch < loop.rec.epochs:
        _train_epoch(loop, pos, bar)
        pos.epoch, pos.batch = pos.epoch + 1, 0
        is_best = False
        if cfg.phase != "mae":
            eval_metrics = _evaluate_epoch(loop, pos, final)
            is_best = eval_metrics["top1"] > pos.best
            pos.best = max(pos.best, eval_metrics["top1"])
        _checkpoint(loop, pos, is_best)
    bar.close()
    return _finish(loop, pos, eval_metrics, final, time.perf_counter() - start_time)


def _setup(cfg: TrainConfig, run: PhaseDir, lock_wait_s: float, held: contextlib.ExitStack) -> _Loop | PhaseResult:
    """Model, data, optimizer, schedule and loss of the phase; the run directory locked and started (main rank).
    Returns the finished result instead when the writer this process waited for completed the phase."""
    from timm.data import Mixup
    from timm.optim import create_optimizer_v2
    from timm.scheduler import CosineLRScheduler

    rec = cfg.resolved_recipe()
    mc = model_config(cfg)
    info = init_distributed(resolve_device(cfg.device, int(os.environ.get("LOCAL_RANK", "0"))))
    device = resolve_device(cfg.device, info.local_rank)
    if cfg.batch_size % info.world:
        raise ValueError(f"batch_size={cfg.batch_size} must be divisible by the number of ranks ({info.world})")
    local_batch = cfg.batch_size // info.world
    _seed_all(cfg.seed)  # same initial weights on every rank (DDP also broadcasts them)
    model = build(cfg, mc).to(device)
    train_set, eval_set = build_datasets(cfg, mc, rec)  # MAE: eval_set only feeds the reconstructions
    if info.main:  # only once the inputs are known good: a bad input leaves no half-made run directory
        held.enter_context(run.lock(lock_wait_s))
        if run.done:
            return _finished(run, cfg)
        run.start(cfg.to_dict(), _identity)  # under the lock: also removes temporary files of killed writes
    barrier()
    steps_per_epoch = dataset_len(train_set) // cfg.batch_size
    if steps_per_epoch == 0:
        raise ValueError(
            f"the training set has {dataset_len(train_set)} samples, fewer than one batch of {cfg.batch_size}; "
            "lower batch_size or raise train_samples"
        )
    lr = scaled_lr(rec, cfg.batch_size)  # linear scaling from the recipe's batch
    optimizer = create_optimizer_v2(
        model,
        "adamw",
        lr=lr,
        weight_decay=rec.weight_decay,
        betas=rec.betas,
        layer_decay=rec.layer_decay if cfg.phase == "finetune" else None,
    )
    scheduler = CosineLRScheduler(
        optimizer,
        t_initial=rec.epochs * steps_per_epoch,
        lr_min=0.0,
        warmup_t=rec.warmup_epochs * steps_per_epoch,
        warmup_lr_init=0.0,
        warmup_prefix=True,
        t_in_epochs=False,
    )
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.precision == "fp16")
    mixup = None
    if cfg.phase != "mae" and (rec.mixup > 0 or rec.cutmix > 0):
        if local_batch % 2:
            raise ValueError(f"mixup/cutmix need an even per-rank batch; got {local_batch}")
        mixup = Mixup(
            mixup_alpha=rec.mixup,
            cutmix_alpha=rec.cutmix,
            label_smoothing=rec.label_smoothing,
            num_classes=mc.num_classes,
        )
    net = model
    if info.world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    return _Loop(
        cfg,
        rec,
        info,
        device,
        run,
        model,
        net,
        train_set,
        eval_set,
        optimizer,
        scheduler,
        scaler,
        mixup,
        _criterion(rec, mixup is not None),
        lr,
        local_batch,
        steps_per_epoch,
    )


def _resume(loop: _Loop) -> _Position:
    """The position of the last checkpoint, with model, optimizer, scaler, schedule and RNGs restored (a fresh
    position when there is none)."""
    state = loop.run.resume()
    if state is None:
        return _Position()
    loop.model.load_state_dict(state["model"])
    loop.optimizer.load_state_dict(state["optimizer"])
    loop.scaler.load_state_dict(state["scaler"])
    loop.scheduler.load_state_dict(state["scheduler"])
    rank = loop.info.rank
    _set_rng_state(state["rng"][rank] if rank < len(state["rng"]) else state["rng"][0])
    return _Position(state["step"], state["epoch"], state["batch"], state["best"], list(state["window"]))


def _checkpoint(loop: _Loop, pos: _Position, is_best: bool = False) -> None:
    """Every rank's RNG state gathered, everything written by the main rank (`checkpoints/last.pth`)."""
    rngs: list[dict[str, Any] | None] = [None] * loop.info.world
    if loop.info.world > 1:
        torch.distributed.all_gather_object(rngs, _rng_state())
    else:
        rngs = [_rng_state()]
    if loop.info.main:
        assert loop.board is not None  # `_train` opens it before the first step
        loop.board.flush()  # first: a kill between the two leaves extra events (purged on resume), never missing ones
        loop.run.save(
            {
                "step": pos.step,
                "epoch": pos.epoch,
                "batch": pos.batch,
                "best": pos.best,
                "window": pos.loss_window,
                "model": loop.model.state_dict(),
                "optimizer": loop.optimizer.state_dict(),
                "scaler": loop.scaler.state_dict(),
                "scheduler": loop.scheduler.state_dict(),
                "rng": rngs,
            },
            best=is_best,
        )
    barrier()


def _train_epoch(loop: _Loop, pos: _Position, bar: Progress) -> None:
    """The rest of epoch `pos.epoch` from batch `pos.batch`: optimizer steps, metrics lines, step checkpoints."""
    cfg, info, device = loop.cfg, loop.info, loop.device
    set_epoch(loop.train_set, pos.epoch)
    sampler = SkipSampler(loop.train_set, info.rank, info.world, cfg.seed, pos.epoch, skip=pos.batch * loop.local_batch)
    for x, y in _loader(loop.train_set, loop.local_batch, cfg.workers, sampler, seed=cfg.seed * 100003 + pos.epoch):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if x.ndim == 6:  # repeated sampling: [B, R, C, T, H, W] -> [B*R, ...]
            y = y.repeat_interleave(x.shape[1])
            x = x.flatten(0, 1)
        value = _step(loop, pos, x, y)
        pos.step += 1
        pos.batch += 1
        pos.loss_window[0] += value
        pos.loss_window[1] += 1
        bar.update(pos.step, loss=value, lr=loop.optimizer.param_groups[-1]["lr"])
        if pos.step % cfg.log_every == 0 or pos.batch == loop.steps_per_epoch:
            loss_sum, count = all_reduce_sum(pos.loss_window, device)
            if info.main:
                line = {
                    "step": pos.step,
                    "epoch": pos.epoch,
                    "loss": loss_sum / count,
                    "lr": max(g["lr"] for g in loop.optimizer.param_groups),
                }
                loop.run.log(line)
                assert loop.board is not None  # `_train` opens it before the first step
                loop.board.log("train", line)
            pos.loss_window = [0.0, 0]
        if pos.batch == loop.steps_per_epoch:
            break
        if cfg.ckpt_every and pos.step % cfg.ckpt_every == 0:
            _checkpoint(loop, pos)


def _step(loop: _Loop, pos: _Position, x: torch.Tensor, y: torch.Tensor) -> float:
    """One optimizer step on a batch; returns its loss (a non-finite loss raises before anything changes)."""
    cfg, rec = loop.cfg, loop.rec
    loop.scheduler.step_update(pos.step)
    with _autocast(loop.device, cfg.precision):
        if cfg.phase == "mae":
            loss = loop.net(x, mask_ratio=rec.mask_ratio)[0]
        else:
            if loop.mixup is not None:
                x, y = _mix(loop.mixup, x, y)
            loss = loop.criterion(loop.net(x), y)
    value = float(loss.detach())
    if not math.isfinite(value):
        raise NonFiniteLoss(
            f"{cfg.phase} loss is {value} at step {pos.step + 1} (epoch {pos.epoch}); nothing was saved after the "
            f"last good checkpoint ({loop.run.checkpoints / 'last.pth'}); lower the lr or use precision=fp32"
        )
    loop.scaler.scale(loss).backward()
    if rec.grad_clip is not None:
        loop.scaler.unscale_(loop.optimizer)
        torch.nn.utils.clip_grad_norm_(loop.model.parameters(), rec.grad_clip)
    loop.scaler.step(loop.optimizer)
    loop.scaler.update()
    loop.optimizer.zero_grad(set_to_none=True)
    return value


def _evaluate_epoch(loop: _Loop, pos: _Position, final: dict[str, np.ndarray | None]) -> dict[str, float]:
    """Top-1/top-5 after the epoch just finished (`pos.epoch` counts it), logged; the last epoch's evaluation keeps
    its per-example predictions in `final` (the final weights')."""
    keep = final if pos.epoch == loop.rec.epochs else None
    metrics = evaluate(loop.model, loop.eval_set, loop.cfg, loop.device, loop.info, keep)
    if loop.info.main:
        loop.run.log({"step": pos.step, "epoch": pos.epoch - 1, **metrics})
        assert loop.board is not None  # `_train` opens it before the first step
        loop.board.log("eval", {"step": pos.step, **metrics})
    return metrics


def _finish(
    loop: _Loop, pos: _Position, eval_metrics: dict[str, float], final: dict[str, np.ndarray | None], wall_s: float
) -> PhaseResult:
    """The phase's result; the main rank writes the weights, reconstructions, predictions and `result.json` (last:
    its presence means the phase is finished)."""
    cfg, rec, info, run = loop.cfg, loop.rec, loop.info, loop.run
    common: dict[str, Any] = dict(
        phase=cfg.phase,
        model=cfg.model,
        recipe=rec.name,
        opt_steps=pos.step,
        epochs=rec.epochs,
        batch_size=cfg.batch_size,
        lr=loop.lr,
        precision=cfg.precision,
        world_size=info.world,
        train_samples=len(loop.train_set),
        wall_s_last_start=wall_s,
    )
    if cfg.phase == "mae":
        losses = [m["loss"] for m in run.metrics() if "loss" in m]
        result = PhaseResult(
            **common, final_loss=losses[-1] if losses else None, first_loss=losses[0] if losses else None
        )
    else:
        if not eval_metrics:  # a resumed, already finished loop: evaluate the final weights again
            eval_metrics = evaluate(loop.model, loop.eval_set, cfg, loop.device, info, final)
        result = PhaseResult(
            **common,
            top1=eval_metrics["top1"],
            top5=eval_metrics["top5"],
            eval_loss=eval_metrics["eval_loss"],
            best_top1=pos.best,
            eval_samples=len(loop.eval_set),
        )
    if info.main:
        atomic_write(run.checkpoints / "model.pth", lambda f: torch.save({"model_state": loop.model.state_dict()}, f))
        if cfg.phase == "mae":
            save_reconstructions(loop.model, loop.eval_set, cfg, run, loop.device)
        for name, array in final.items():  # predictions.npy, labels.npy: int16, test set order
            assert array is not None  # gathered on the main rank
            atomic_write(run.path / f"{name}.npy", functools.partial(np.save, arr=array, allow_pickle=False))
        run.finish(result)
    barrier()
    return result
