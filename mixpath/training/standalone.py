"""Training one stand-alone model from scratch: retraining a found architecture, and ground truth.

The recipe is fixed and written down (``Recipe``) so that accuracies of different architectures are
comparable: the same epochs, schedule, augmentation and split for every one. Randomness is derived
from (seed, epoch, step) as in supernet training; with ``checkpoint_path`` a killed retraining resumes
at the last finished epoch and ends with the same weights.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from mixpath.data import Dataset, augment_batch
from mixpath.errors import MixPathError
from mixpath.training.accuracy import accuracy
from mixpath.training.checkpoint import load_checkpoint, save_checkpoint
from mixpath.training.schedule import cosine_lr
from mixpath.training.seeding import derive_seed, torch_generator


@dataclass(frozen=True)
class Recipe:
    """SGD with momentum and a per-step cosine schedule, MixPath's CIFAR recipe scaled down in epochs.

    Checked when built, so that a bad value is a one-line error before any training rather than a
    division by zero or a model that reports an untrained accuracy as a result.
    """

    epochs: int = 10
    batch_size: int = 96
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    """Clip the gradient norm to this (0: no clipping)."""
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise MixPathError(f"{name}={value!r} must be a whole number >= 1")
        rules = {
            "lr": (lambda v: v > 0, "a finite number > 0"),
            "momentum": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
            "weight_decay": (lambda v: v >= 0, "a finite number >= 0"),
            "grad_clip": (lambda v: v >= 0, "a finite number >= 0 (0: no clipping)"),
            "label_smoothing": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
        }
        for name, (ok, allowed) in rules.items():
            value = getattr(self, name)
            number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            if not number or not ok(value):
                raise MixPathError(f"{name}={value!r} must be {allowed}")


def train_standalone(
    model: torch.nn.Module,
    dataset: Dataset,
    recipe: Recipe = Recipe(),
    *,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = True,
    checkpoint_path: Path | None = None,
    stop_after_epochs: int | None = None,
    validate_epochs: bool = False,
    on_epoch: Callable[[list[dict[str, Any]]], None] | None = None,
) -> dict[str, Any] | None:
    """Train ``model`` on the training split; return validation and test accuracy, the time it took and
    ``history``: one row per epoch (epoch, train_loss and train_acc over the epoch's batches, lr at the
    epoch's end, seconds of training; with ``validate_epochs`` also val_acc after the epoch).

    ``validate_epochs`` is off by default so that ground-truth trainings do not pay for a pass over the
    validation split per epoch; it runs in eval mode without autograd, draws no random numbers and moves
    no BN statistics, so the weights come out the same either way. ``on_epoch(history)`` is called after
    each epoch's checkpoint with every row so far (a resumed run's earlier rows come from the checkpoint).

    ``stop_after_epochs`` ends the call early (returning None) after checkpointing: training in chunks.
    """
    device = torch.device(device)
    model = model.to(device)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay
    )
    train_x, train_y = dataset.train_x.to(device), dataset.train_y.to(device)
    val_x, val_y = dataset.val_x.to(device), dataset.val_y.to(device)
    steps = len(train_x) // recipe.batch_size
    if steps == 0:
        raise MixPathError(f"batch size {recipe.batch_size} exceeds the {len(train_x)} training images")
    start_epoch, seconds, history = 0, 0.0, []
    if checkpoint_path is not None and Path(checkpoint_path).exists():
        state = load_checkpoint(checkpoint_path, device)
        try:
            model.load_state_dict(state["model"])
        except RuntimeError:
            raise MixPathError(f"checkpoint {checkpoint_path} holds the weights of another model") from None
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, seconds, history = state["epoch"], state["seconds"], state.get("history", [])
    for epoch in range(start_epoch, recipe.epochs):
        tick = time.perf_counter()
        model.train()
        order = torch.randperm(len(train_x), generator=torch_generator(seed, "order", epoch)).to(device)
        loss_sum, correct, seen = 0.0, 0, 0
        bar = tqdm(range(steps), desc=f"epoch {epoch + 1}/{recipe.epochs}", disable=not progress, leave=False)
        for step in bar:
            for group in optimizer.param_groups:
                group["lr"] = cosine_lr(recipe.lr, epoch * steps + step, recipe.epochs * steps)
            index = order[step * recipe.batch_size : (step + 1) * recipe.batch_size]
            xb = augment_batch(train_x[index], dataset.augment, torch_generator(seed, "aug", epoch, step))
            yb = train_y[index]
            logits = model(xb)
            loss = F.cross_entropy(logits, yb, label_smoothing=recipe.label_smoothing)
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                raise MixPathError(f"loss became {loss_value} at epoch {epoch + 1} step {step + 1}; lower the lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if recipe.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
            optimizer.step()
            loss_sum += loss_value * len(yb)
            correct += int((logits.argmax(1) == yb).sum())
            seen += len(yb)
            if progress:
                bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{100.0 * correct / seen:.1f}", refresh=False)
        epoch_seconds = time.perf_counter() - tick
        seconds += epoch_seconds
        row = {
            "epoch": epoch + 1,
            "train_loss": round(loss_sum / seen, 5),
            "train_acc": round(100.0 * correct / seen, 3),
        }
        if validate_epochs:
            model.eval()
            row["val_acc"] = round(accuracy(model, val_x, val_y)[0], 3)
        row |= {"lr": round(optimizer.param_groups[0]["lr"], 6), "seconds": round(epoch_seconds, 2)}
        history.append(row)
        if checkpoint_path is not None:
            save_checkpoint(
                checkpoint_path,
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "epoch": epoch + 1,
                    "seconds": seconds,
                    "history": history,
                },
            )
        if on_epoch is not None:
            on_epoch(history)
        if progress:
            tqdm.write(_describe(row, recipe.epochs), file=sys.stderr)
        if stop_after_epochs is not None and epoch + 1 - start_epoch >= stop_after_epochs and epoch + 1 < recipe.epochs:
            return None
    model.eval()
    val_acc, val_loss = accuracy(model, val_x, val_y)
    test_acc, _ = accuracy(model, dataset.test_x.to(device), dataset.test_y.to(device))
    return {
        "val_acc": round(val_acc, 3),
        "val_loss": round(val_loss, 5),
        "test_acc": round(test_acc, 3),
        "seconds": round(seconds, 2),
        "recipe": dataclasses.asdict(recipe),
        "history": history,
    }


def _describe(row: dict[str, Any], epochs: int) -> str:
    """One progress line per epoch: what the bar showed while it ran, kept on screen."""
    val = f", val acc {row['val_acc']:.2f}%" if "val_acc" in row else ""
    return (
        f"epoch {row['epoch']}/{epochs}: train loss {row['train_loss']:.4f}, train acc {row['train_acc']:.2f}%"
        f"{val}, lr {row['lr']:.4g}, {row['seconds']:.1f} s"
    )


def init_seed(seed: int) -> None:
    """Seed the weight initialisation of a model about to be built, from the run's seed."""
    torch.manual_seed(derive_seed(seed, "init"))
