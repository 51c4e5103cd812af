"""Training one stand-alone model from scratch: retraining a found architecture, and ground truth.

The recipe is fixed and written down (``mixpath.training.recipe.Recipe``) so that accuracies of different
architectures are comparable: the same epochs, schedule, augmentation and split for every one. Randomness is derived
from (seed, epoch, step) as in supernet training; with ``checkpoint_path`` a killed retraining resumes
at the last finished epoch and ends with the same weights.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from mixpath.data import Data
from mixpath.errors import MixPathError
from mixpath.evaluation.scoring import score
from mixpath.io import remove_stale_temp_files
from mixpath.kernels.runtime import waiting_follows_load
from mixpath.training.checkpoint import load_checkpoint, load_weights, restoring, save_checkpoint
from mixpath.training.recipe import Recipe
from mixpath.training.schedule import cosine_lr
from mixpath.training.seeding import derive_seed, torch_generator
from mixpath.training.step import SCORING_BATCH_SIZE, EpochSums, TrainState, train_step


@waiting_follows_load()  # OpenMP threads sleep while other jobs share the cores
def train_standalone(
    model: torch.nn.Module,
    dataset: Data,
    recipe: Recipe = Recipe(),
    *,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = True,
    checkpoint_path: Path | None = None,
    stop_after_epochs: int | None = None,
    validate_epochs: bool = False,
    on_epoch: Callable[[list[dict[str, Any]]], None] | None = None,
    label: str | None = None,
) -> dict[str, Any] | None:
    """Train ``model`` on the training split; return validation and test accuracy, the time it took and
    ``history``: one row per epoch (epoch, train_loss and train_acc over the epoch's batches, lr at the
    epoch's end, seconds of training; with ``validate_epochs`` also val_acc after the epoch).

    ``validate_epochs`` is off by default so that ground-truth trainings do not pay for a pass over the
    validation split per epoch; it runs in eval mode without autograd, draws no random numbers and moves
    no BN statistics, so the weights come out the same either way. ``on_epoch(history)`` is called after
    each epoch's checkpoint with every row so far (a resumed run's earlier rows come from the checkpoint).

    ``stop_after_epochs`` ends the call early (returning None) after checkpointing: training in chunks.
    ``label``: progress without the per-step bar, each epoch's line starting with ``label``: for trainings
    side by side, whose bars would overwrite each other on one terminal.
    """
    device = torch.device(device)
    state = TrainState.start(model.to(device), recipe, torch.amp.GradScaler(device.type, enabled=False))
    train, val = dataset.train.to(device), dataset.val.to(device)
    steps = train.steps_per_epoch(recipe.batch_size)
    if steps == 0:
        raise MixPathError(f"batch size {recipe.batch_size} exceeds the {len(train)} training images")
    seconds = 0.0
    if checkpoint_path is not None and Path(checkpoint_path).exists():
        remove_stale_temp_files(Path(checkpoint_path))
        saved = load_checkpoint(checkpoint_path, device)
        load_weights(model, saved["model"], checkpoint_path)
        with restoring(checkpoint_path):
            state.optimizer.load_state_dict(saved["optimizer"])
            state.epoch, seconds, state.metrics = saved["epoch"], float(saved["seconds"]), saved.get("history", [])
        history = state.metrics
        if isinstance(state.epoch, bool) or not isinstance(state.epoch, int) or state.epoch < 0:
            raise MixPathError(f"checkpoint {checkpoint_path} is not a retraining checkpoint: epoch={state.epoch!r}")
        if not isinstance(history, list) or not all(isinstance(row, dict) for row in history):
            raise MixPathError(f"checkpoint {checkpoint_path} is not a retraining checkpoint: its history is not rows")
    start_epoch = state.epoch
    while state.epoch < recipe.epochs:
        epoch = state.epoch
        tick = time.perf_counter()
        model.train()
        batches = train.training_batches(recipe.batch_size, epoch, functools.partial(torch_generator, seed))
        bar = tqdm(
            batches,
            total=steps,
            desc=f"epoch {epoch + 1}/{recipe.epochs}",
            disable=not progress or label is not None,
            leave=False,
        )
        for step, (xb, yb) in enumerate(bar):
            lr = cosine_lr(recipe.lr, epoch * steps + step, recipe.epochs * steps)
            train_step(state, xb, yb, [None], recipe, lr)
            if progress:
                sums = state.sums
                bar.set_postfix(loss=f"{sums.mean_loss:.3f}", acc=f"{sums.accuracy:.1f}", refresh=False)
        epoch_seconds = time.perf_counter() - tick
        seconds += epoch_seconds
        row = {
            "epoch": epoch + 1,
            "train_loss": round(state.sums.mean_loss, 5),
            "train_acc": round(state.sums.accuracy, 3),
        }
        if validate_epochs:
            row["val_acc"] = round(score(model, None, val, SCORING_BATCH_SIZE)["accuracy"], 3)
        row |= {"lr": round(state.optimizer.param_groups[0]["lr"], 6), "seconds": round(epoch_seconds, 2)}
        state.metrics.append(row)
        state.epoch, state.step, state.sums = epoch + 1, 0, EpochSums()
        if checkpoint_path is not None:
            save_checkpoint(
                checkpoint_path,
                {
                    "model": model.state_dict(),
                    "optimizer": state.optimizer.state_dict(),
                    "epoch": state.epoch,
                    "seconds": seconds,
                    "history": state.metrics,
                },
            )
        if on_epoch is not None:
            on_epoch(state.metrics)
        if progress:
            line = _describe(row, recipe.epochs)
            tqdm.write(line if label is None else f"{label}: {line}", file=sys.stderr)
        stopping = stop_after_epochs is not None and state.epoch - start_epoch >= stop_after_epochs
        if stopping and state.epoch < recipe.epochs:
            return None
    model.eval()
    validated = score(model, None, val, SCORING_BATCH_SIZE)
    test = score(model, None, dataset.test.to(device), SCORING_BATCH_SIZE)
    return {
        "val_acc": round(validated["accuracy"], 3),
        "val_loss": round(validated["loss"], 5),
        "test_acc": round(test["accuracy"], 3),
        "seconds": round(seconds, 2),
        "recipe": dataclasses.asdict(recipe),
        "history": state.metrics,
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
