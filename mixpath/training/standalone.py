"""Training one stand-alone model from scratch: retraining a found architecture, and ground truth.

The recipe is fixed and written down (``Recipe``) so that accuracies of different architectures are
comparable: the same epochs, schedule, augmentation and split for every one. Randomness is derived
from (seed, epoch, step) as in supernet training; with ``checkpoint_path`` a killed retraining resumes
at the last finished epoch and ends with the same weights.
"""

from __future__ import annotations

import dataclasses
import time
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
    """SGD with momentum and a per-step cosine schedule, MixPath's CIFAR recipe scaled down in epochs."""

    epochs: int = 10
    batch_size: int = 96
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    label_smoothing: float = 0.0


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
) -> dict[str, Any] | None:
    """Train ``model`` on the training split; return validation and test accuracy and the time it took.

    ``stop_after_epochs`` ends the call early (returning None) after checkpointing: training in chunks.
    """
    device = torch.device(device)
    model = model.to(device)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay
    )
    train_x, train_y = dataset.train_x.to(device), dataset.train_y.to(device)
    steps = len(train_x) // recipe.batch_size
    if steps == 0:
        raise MixPathError(f"batch size {recipe.batch_size} exceeds the {len(train_x)} training images")
    start_epoch, seconds = 0, 0.0
    if checkpoint_path is not None and Path(checkpoint_path).exists():
        state = load_checkpoint(checkpoint_path, device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, seconds = state["epoch"], state["seconds"]
    for epoch in range(start_epoch, recipe.epochs):
        tick = time.perf_counter()
        model.train()
        order = torch.randperm(len(train_x), generator=torch_generator(seed, "order", epoch)).to(device)
        for step in tqdm(range(steps), desc=f"epoch {epoch + 1}/{recipe.epochs}", disable=not progress, leave=False):
            for group in optimizer.param_groups:
                group["lr"] = cosine_lr(recipe.lr, epoch * steps + step, recipe.epochs * steps)
            index = order[step * recipe.batch_size : (step + 1) * recipe.batch_size]
            xb = augment_batch(train_x[index], dataset.augment, torch_generator(seed, "aug", epoch, step))
            loss = F.cross_entropy(model(xb), train_y[index], label_smoothing=recipe.label_smoothing)
            if not torch.isfinite(loss):
                raise MixPathError(f"loss became {loss.item()} at epoch {epoch + 1} step {step + 1}; lower the lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if recipe.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
            optimizer.step()
        seconds += time.perf_counter() - tick
        if checkpoint_path is not None:
            save_checkpoint(
                checkpoint_path,
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "epoch": epoch + 1,
                    "seconds": seconds,
                },
            )
        if stop_after_epochs is not None and epoch + 1 - start_epoch >= stop_after_epochs and epoch + 1 < recipe.epochs:
            return None
    model.eval()
    val_acc, val_loss = accuracy(model, dataset.val_x.to(device), dataset.val_y.to(device))
    test_acc, _ = accuracy(model, dataset.test_x.to(device), dataset.test_y.to(device))
    return {
        "val_acc": round(val_acc, 3),
        "val_loss": round(val_loss, 5),
        "test_acc": round(test_acc, 3),
        "seconds": round(seconds, 2),
        "recipe": dataclasses.asdict(recipe),
    }


def init_seed(seed: int) -> None:
    """Seed the weight initialisation of a model about to be built, from the run's seed."""
    torch.manual_seed(derive_seed(seed, "init"))
