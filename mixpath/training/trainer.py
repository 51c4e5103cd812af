"""Supernet training: one loop you can read top to bottom.

Every step's randomness (batch order, augmentation, sampled architectures) is derived from
(seed, epoch, step), and the learning rate is a pure function of the global step. A checkpoint
therefore needs only weights, optimizer state and the position (epoch, step): a killed run resumed
from it ends with exactly the weights of an uninterrupted run.

Inactive paths get no gradient (``zero_grad(set_to_none=True)``), and SGD skips parameters whose
gradient is None: weights of paths not trained in a step receive neither momentum nor weight decay.
Decaying or pushing untrained weights would change them by how often they were *not* sampled, which
no paper intends; the reference code's behaviour with set_to_none is the same.

Under torchrun (``WORLD_SIZE > 1``, see ``mixpath.distributed`` and docs/distributed.md) every rank
draws the same architectures (same derived seeds), augments the same global batch and trains on its own
slice of it. After the backward passes of a step, the gradients of exactly the parameters that got one
are averaged over ranks with one bucketed all-reduce, once per optimizer step (FairNAS's n subnets
included), so every rank takes the same optimizer step and the weights stay identical. DDP is not used:
the trained subnet changes every step, and DDP either fails on the unused paths or
(``find_unused_parameters=True``) walks the autograd graph every step and still all-reduces the whole
supernet, unused paths included; here only the active subnet's gradients travel. BN statistics are
per rank (per micro-batch), as in the papers' multi-GPU training, and rank 0's running statistics are
copied to every rank at each checkpoint. Rank 0 alone writes files, logs and progress bars.
"""

from __future__ import annotations

import csv
import functools
import io
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from mixpath import distributed
from mixpath.data import Dataset, augment_batch, dataset_names, load_dataset
from mixpath.errors import MixPathError
from mixpath.io import read_json, write_json, write_text
from mixpath.spaces import Architecture, get_space
from mixpath.supernet import build_supernet
from mixpath.training.accuracy import accuracy
from mixpath.training.checkpoint import load_checkpoint, save_checkpoint
from mixpath.training.config import TrainConfig
from mixpath.training.samplers import make_sampler
from mixpath.training.schedule import cosine_lr
from mixpath.training.seeding import derive_seed, step_rng, torch_generator

log = logging.getLogger("mixpath.train")

CONFIG_FILE = "config.json"
CHECKPOINT_FILE = "checkpoint.pt"
METRICS_FILE = "metrics.csv"
LOG_FILE = "train.log"


@dataclass
class TrainResult:
    run_dir: Path
    metrics: list[dict[str, Any]] = field(default_factory=list)
    supernet: torch.nn.Module | None = None
    """The trained supernet on this process's device (identical on every rank)."""

    @property
    def last(self) -> dict[str, Any]:
        return self.metrics[-1] if self.metrics else {}


def load_data(config: TrainConfig) -> Dataset:
    return load_dataset(
        config.data, config.data_dir, val_size=config.val_size, split_seed=config.seed, train_subset=config.train_subset
    )


def check_config(config: TrainConfig) -> None:
    """Fail on an unknown space, dataset, or strategy/m mismatch before anything is written."""
    if config.data not in dataset_names():
        raise MixPathError(f"unknown dataset {config.data!r}; choose one of: {', '.join(dataset_names())}")
    make_sampler(config.strategy, get_space(config.space), config.m)


def prepare_run(config: TrainConfig | None, run_dir: Path, resume: bool) -> TrainConfig:
    """Write config.json for a new run; for a resumed run, return the saved settings.

    Resuming with different settings would silently train something else, so any difference between
    ``config`` (when given) and the saved settings is an error naming the differing keys.
    """
    config_path = run_dir / CONFIG_FILE
    if config_path.exists():
        if not resume:
            raise MixPathError(f"{run_dir} already holds a run: pass --resume to continue it, or choose a new folder")
        saved = TrainConfig.from_json(read_json(config_path))
        if config is not None and config != saved:
            changed = [k for k, v in config.to_json().items() if saved.to_json()[k] != v]
            raise MixPathError(f"cannot resume {run_dir} with changed settings {changed}; drop them to resume as saved")
        return saved
    if resume:
        raise MixPathError(f"nothing to resume in {run_dir}: no {CONFIG_FILE} there")
    if config is None:
        raise MixPathError(f"no settings given for the new run in {run_dir}")
    check_config(config)
    write_json(config_path, config.to_json())
    return config


def _prepare_on_main(config: TrainConfig | None, run_dir: Path, resume: bool, world: int) -> TrainConfig:
    """``prepare_run`` plus the batch split check, before anything is written for a new run."""
    if config is not None:
        check_batch_split(config, world)
    run_dir.mkdir(parents=True, exist_ok=True)
    saved = prepare_run(config, run_dir, resume)
    check_batch_split(saved, world)
    return saved


def check_batch_split(config: TrainConfig, world: int) -> None:
    """The global batch must split evenly over ``world`` processes x ``config.micro_batches``."""
    parts = world * config.micro_batches
    if config.batch_size % parts:
        raise MixPathError(
            f"batch_size={config.batch_size} is the global batch and must split evenly over {world} process(es) "
            f"x {config.micro_batches} micro-batch(es); use a multiple of {parts}"
        )


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of an amp mode on ``device`` (None: full precision); unsupported pairs are errors."""
    if amp == "off":
        return None
    if amp == "fp16" and device.type != "cuda":
        raise MixPathError(f"amp='fp16' needs a CUDA device, this run is on {device}; use amp='bf16' or 'off'")
    if amp == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise MixPathError(f"amp='bf16' is not supported by {torch.cuda.get_device_name(device)}; use amp='fp16'")
    return torch.float16 if amp == "fp16" else torch.bfloat16


def _write_metrics(path: Path, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


def train_supernet(
    config: TrainConfig | None,
    run_dir: Path | str,
    *,
    resume: bool = False,
    device: str | torch.device = "auto",
    progress: bool = True,
    dataset: Dataset | None = None,
    stop_after_steps: int | None = None,
) -> TrainResult:
    """Train a supernet into ``run_dir`` (config.json, checkpoint.pt, metrics.csv, train.log).

    With ``resume=True`` and ``config=None`` the run continues with the settings saved in ``run_dir``.

    ``stop_after_steps`` ends the call after that many optimizer steps (checkpointing first): a way to
    run long trainings in chunks, and how the tests kill a run at a known point.

    Under torchrun every process calls this with the same arguments; it joins the process group itself
    (``device`` ``auto`` or ``cuda`` then means ``cuda:LOCAL_RANK``) and only rank 0 touches ``run_dir``.
    """
    run_dir = Path(run_dir)
    device = distributed.setup(device)
    config = distributed.run_on_main(
        functools.partial(_prepare_on_main, config, run_dir, resume, distributed.world_size())
    )
    handler = logging.FileHandler(run_dir / LOG_FILE) if distributed.is_main() else logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    try:
        result = _train(config, run_dir, device, progress, dataset or load_data(config), stop_after_steps)
    finally:
        log.removeHandler(handler)
        handler.close()
    distributed.barrier()
    return result


def _train(
    config: TrainConfig,
    run_dir: Path,
    device: torch.device,
    progress: bool,
    dataset: Dataset,
    stop_after_steps: int | None,
) -> TrainResult:
    space = get_space(config.space)
    if dataset.input_shape[0] != space.input_shape[0]:
        raise MixPathError(
            f"space {space.name!r} takes {space.input_shape[0]}-channel input, data {config.data!r} has "
            f"{dataset.input_shape[0]} channels"
        )
    main, world, rank = distributed.is_main(), distributed.world_size(), distributed.rank()
    amp_dtype = autocast_dtype(config.amp, device)
    sampler = make_sampler(config.strategy, space, config.m)
    torch.manual_seed(derive_seed(config.seed, "init"))
    supernet = build_supernet(space, config.m, config.bn_policy).to(device)
    # listed once: walking a supernet's thousands of modules for its parameters costs ~1.5 ms per step
    # (fmnist-s1), twice per step; foreach: one multi-tensor update instead of one per parameter
    params = list(supernet.parameters())
    optimizer = torch.optim.SGD(
        params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay, foreach=True
    )
    scaler = torch.amp.GradScaler(device.type, enabled=config.amp == "fp16")
    train_x, train_y = dataset.train_x.to(device), dataset.train_y.to(device)
    val_x, val_y = dataset.val_x.to(device), dataset.val_y.to(device)
    steps_per_epoch = len(train_x) // config.batch_size
    if steps_per_epoch == 0:
        raise MixPathError(f"batch size {config.batch_size} exceeds the {len(train_x)} training images")
    total_steps = steps_per_epoch * config.epochs
    warmup_steps = round(config.effective_warmup_epochs * steps_per_epoch)
    share = config.batch_size // world  # this rank's rows of each global batch
    micro = share // config.micro_batches
    eval_rng = step_rng(config.seed, "eval-archs")
    eval_archs = [space.random_architecture(eval_rng, config.m) for _ in range(config.eval_archs)]

    start_epoch, start_step, metrics, partial = 0, 0, [], {"loss": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}
    checkpoint_path = run_dir / CHECKPOINT_FILE
    state = distributed.run_on_main(lambda: load_checkpoint(checkpoint_path) if checkpoint_path.exists() else None)
    if state is not None:
        supernet.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if config.amp == "fp16":
            scaler.load_state_dict(state["scaler"])
        start_epoch, start_step = state["epoch"], state["step"]
        metrics, partial = state["metrics"], state["partial"]
        if main:
            log.info("resumed at epoch %d step %d", start_epoch, start_step)
            before = state.get("world_size", 1)
            if before != world:
                old_micro = config.batch_size // before // config.micro_batches
                log.warning(
                    "resumed on %d process(es), not %d: BN batches are %d, not %d", world, before, micro, old_micro
                )
    distributed.broadcast_tensors(supernet.state_dict().values())

    def checkpoint(epoch: int, step: int) -> None:
        distributed.broadcast_tensors(supernet.buffers())
        if main:
            save_checkpoint(
                checkpoint_path,
                {
                    "model": supernet.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scaler": scaler.state_dict(),
                    "epoch": epoch,
                    "step": step,
                    "metrics": metrics,
                    "partial": partial,
                    "config": config.to_json(),
                    "world_size": world,
                },
            )

    steps_run = 0
    for epoch in range(start_epoch, config.epochs):
        order = torch.randperm(len(train_x), generator=torch_generator(config.seed, "order", epoch)).to(device)
        supernet.train()
        bar = tqdm(
            range(start_step, steps_per_epoch),
            initial=start_step,
            total=steps_per_epoch,
            desc=f"epoch {epoch + 1}/{config.epochs}",
            disable=not (progress and main),
            leave=False,
        )
        tick = time.perf_counter()
        for step in bar:
            global_step = epoch * steps_per_epoch + step
            for group in optimizer.param_groups:
                group["lr"] = cosine_lr(config.lr, global_step, total_steps, warmup_steps)
            # The whole global batch is augmented on every rank (a few ms), so augmentation does not
            # depend on the number of processes; each rank keeps its own slice of it.
            index = order[step * config.batch_size : (step + 1) * config.batch_size]
            xb = augment_batch(train_x[index], dataset.augment, torch_generator(config.seed, "aug", epoch, step))
            mine = slice(rank * share, (rank + 1) * share)
            xb, yb = xb[mine], train_y[index[mine]]
            archs = sampler.step_architectures(step_rng(config.seed, "arch", epoch, step))
            optimizer.zero_grad(set_to_none=True)
            stats = _backward(supernet, archs, xb, yb, micro, config, amp_dtype, scaler)
            total_loss, total_correct, total_seen = _sum_over_ranks(stats, archs, global_step)
            if not math.isfinite(total_loss):
                raise MixPathError(
                    f"loss became {total_loss / total_seen} at epoch {epoch + 1} step {step + 1} (lr "
                    f"{optimizer.param_groups[0]['lr']:.4g}); lower --lr or check the data"
                )
            distributed.average_gradients(params)
            scaler.unscale_(optimizer)
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            partial["loss"] += total_loss
            partial["correct"] += int(total_correct)
            partial["seen"] += int(total_seen)
            steps_run += 1
            now = time.perf_counter()
            partial["seconds"] += now - tick
            tick = now
            bar.set_postfix(
                loss=f"{partial['loss'] / partial['seen']:.3f}", img_s=f"{partial['seen'] / partial['seconds']:.0f}"
            )
            done = step + 1 == steps_per_epoch
            if not done and (
                (config.checkpoint_every and (step + 1) % config.checkpoint_every == 0) or steps_run == stop_after_steps
            ):
                checkpoint(epoch, step + 1)
            if steps_run == stop_after_steps and not done:
                return TrainResult(run_dir, metrics, supernet)
        bar.close()
        row = None
        if main:
            supernet.eval()
            val = [accuracy(lambda xb, a=arch: supernet(xb, a), val_x, val_y)[0] for arch in eval_archs]
            row = {
                "epoch": epoch + 1,
                "train_loss": round(partial["loss"] / max(1, partial["seen"]), 5),
                "train_acc": round(100.0 * partial["correct"] / max(1, partial["seen"]), 3),
                "val_acc_sampled": round(sum(val) / max(1, len(val)), 3),
                "lr": round(optimizer.param_groups[0]["lr"], 6),
                "seconds": round(partial["seconds"], 2),
                "images_per_s": round(partial["seen"] / max(partial["seconds"], 1e-9), 1),
            }
            log.info("epoch %d: %s", epoch + 1, row)
        metrics.append(distributed.broadcast_object(row))
        partial = {"loss": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}
        start_step = 0
        checkpoint(epoch + 1, 0)
        if main:
            _write_metrics(run_dir / METRICS_FILE, metrics)
        if steps_run == stop_after_steps:
            break
    return TrainResult(run_dir, metrics, supernet)


def _backward(
    supernet: torch.nn.Module,
    archs: list[Architecture],
    xb: torch.Tensor,
    yb: torch.Tensor,
    micro: int,
    config: TrainConfig,
    amp_dtype: torch.dtype | None,
    scaler: torch.amp.GradScaler,
) -> torch.Tensor:
    """Accumulate the gradients of every architecture on every micro-batch of this rank's rows.

    Gradients sum over architectures (FairNAS trains n models per step) and average over micro-batches.
    Returns float64 [summed loss, correct predictions, images] over all forward passes.
    """
    stats = torch.zeros(3, dtype=torch.float64, device=xb.device)
    for arch in archs:
        for start in range(0, len(xb), micro):
            xm, ym = xb[start : start + micro], yb[start : start + micro]
            with torch.autocast(xb.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                logits = supernet(xm, arch)
                loss = F.cross_entropy(logits, ym, label_smoothing=config.label_smoothing)
            scaler.scale(loss / config.micro_batches).backward()
            stats[0] += loss.detach().double() * len(ym)
            stats[1] += (logits.argmax(1) == ym).sum()
            stats[2] += len(ym)
    return stats


def _sum_over_ranks(stats: torch.Tensor, archs: list[Architecture], global_step: int) -> tuple[float, float, float]:
    """``stats`` summed over ranks (one small all-reduce), checking that every rank trained ``archs``.

    The architectures ride along as a tag below 2**40, so float64 sums of it are exact: the sum equals
    world x tag on every rank only when all tags agree.
    """
    tag = derive_seed(*map(str, archs)) % (1 << 40)
    total = distributed.all_reduce_sum(torch.cat([stats, stats.new_tensor([tag])])).tolist()
    if total[3] != distributed.world_size() * tag:
        raise RuntimeError(
            f"rank {distributed.rank()} trained other architectures than its peers at step {global_step}"
        )
    return total[0], total[1], total[2]
