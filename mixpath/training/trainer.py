"""Supernet training: one loop you can read top to bottom.

Every step's randomness (batch order, augmentation, sampled architectures) is derived from
(seed, epoch, step), and the learning rate is a pure function of the global step. A checkpoint
therefore needs only weights, optimizer state and the position (epoch, step): a killed run resumed
from it ends with exactly the weights of an uninterrupted run.

Inactive paths get no gradient (``zero_grad(set_to_none=True)``), and SGD skips parameters whose
gradient is None: weights of paths not trained in a step receive neither momentum nor weight decay.
Decaying or pushing untrained weights would change them by how often they were *not* sampled, which
no paper intends; the reference code's behaviour with set_to_none is the same.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from mixpath.data import Dataset, augment_batch, dataset_names, load_dataset
from mixpath.device import resolve_device
from mixpath.errors import MixPathError
from mixpath.io import read_json, write_json, write_text
from mixpath.spaces import get_space
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
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    config = prepare_run(config, run_dir, resume)
    device = resolve_device(device)
    handler = logging.FileHandler(run_dir / LOG_FILE)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    try:
        return _train(config, run_dir, device, progress, dataset or load_data(config), stop_after_steps)
    finally:
        log.removeHandler(handler)
        handler.close()


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
    sampler = make_sampler(config.strategy, space, config.m)
    torch.manual_seed(derive_seed(config.seed, "init"))
    supernet = build_supernet(space, config.m, config.bn_policy).to(device)
    optimizer = torch.optim.SGD(
        supernet.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    train_x, train_y = dataset.train_x.to(device), dataset.train_y.to(device)
    val_x, val_y = dataset.val_x.to(device), dataset.val_y.to(device)
    steps_per_epoch = len(train_x) // config.batch_size
    if steps_per_epoch == 0:
        raise MixPathError(f"batch size {config.batch_size} exceeds the {len(train_x)} training images")
    total_steps = steps_per_epoch * config.epochs
    eval_rng = step_rng(config.seed, "eval-archs")
    eval_archs = [space.random_architecture(eval_rng, config.m) for _ in range(config.eval_archs)]

    start_epoch, start_step, metrics, partial = 0, 0, [], {"loss": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}
    checkpoint_path = run_dir / CHECKPOINT_FILE
    if checkpoint_path.exists():
        state = load_checkpoint(checkpoint_path, device)
        supernet.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, start_step = state["epoch"], state["step"]
        metrics, partial = state["metrics"], state["partial"]
        log.info("resumed at epoch %d step %d", start_epoch, start_step)

    def checkpoint(epoch: int, step: int) -> None:
        save_checkpoint(
            checkpoint_path,
            {
                "model": supernet.state_dict(),
                "optimizer": optimizer.state_dict(),
                "epoch": epoch,
                "step": step,
                "metrics": metrics,
                "partial": partial,
                "config": config.to_json(),
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
            disable=not progress,
            leave=False,
        )
        tick = time.perf_counter()
        for step in bar:
            global_step = epoch * steps_per_epoch + step
            for group in optimizer.param_groups:
                group["lr"] = cosine_lr(config.lr, global_step, total_steps)
            index = order[step * config.batch_size : (step + 1) * config.batch_size]
            xb = augment_batch(train_x[index], dataset.augment, torch_generator(config.seed, "aug", epoch, step))
            yb = train_y[index]
            optimizer.zero_grad(set_to_none=True)
            for arch in sampler.step_architectures(step_rng(config.seed, "arch", epoch, step)):
                logits = supernet(xb, arch)
                loss = F.cross_entropy(logits, yb, label_smoothing=config.label_smoothing)
                if not torch.isfinite(loss):
                    raise MixPathError(
                        f"loss became {loss.item()} at epoch {epoch + 1} step {step + 1} (lr "
                        f"{optimizer.param_groups[0]['lr']:.4g}); lower --lr or check the data"
                    )
                loss.backward()
                partial["loss"] += loss.item() * len(yb)
                partial["correct"] += (logits.argmax(1) == yb).sum().item()
                partial["seen"] += len(yb)
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(supernet.parameters(), config.grad_clip)
            optimizer.step()
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
                return TrainResult(run_dir, metrics)
        bar.close()
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
        metrics.append(row)
        log.info("epoch %d: %s", epoch + 1, row)
        partial = {"loss": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}
        start_step = 0
        checkpoint(epoch + 1, 0)
        _write_metrics(run_dir / METRICS_FILE, metrics)
        if steps_run == stop_after_steps:
            break
    return TrainResult(run_dir, metrics)
