"""Supernet training: one loop you can read top to bottom (``_train``), around one ``TrainState``.

``start_or_resume`` builds the supernet and its optimizer, or loads them from the run's checkpoint; every
step draws its batch and architectures and calls ``train_step`` (``mixpath.training.step``, shared with
stand-alone training); ``end_epoch`` scores a few sampled subnets and appends the epoch's row of metrics;
``save`` writes the checkpoint.

Every step's randomness (batch order, augmentation, sampled architectures) is derived from
(seed, epoch, step), and the learning rate is a pure function of the global step. A checkpoint
therefore needs only weights, optimizer state and the position (epoch, step): a killed run resumed
from it ends with exactly the weights of an uninterrupted run.

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

import dataclasses
import functools
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from mixpath import distributed
from mixpath.data import Dataset, augment_batch, dataset_names, load_dataset
from mixpath.errors import MixPathError
from mixpath.evaluation.scoring import score
from mixpath.io import read_json, write_csv, write_json
from mixpath.kernels import kernel_change_warning, kernels_in_use
from mixpath.spaces import SearchSpace, get_space
from mixpath.supernet import build_supernet
from mixpath.training.checkpoint import load_checkpoint, save_checkpoint
from mixpath.training.config import TrainConfig
from mixpath.training.samplers import make_sampler
from mixpath.training.schedule import cosine_lr
from mixpath.training.seeding import derive_seed, step_rng, torch_generator
from mixpath.training.step import SCORING_BATCH_SIZE, EpochSums, TrainState, train_step

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
    train_x, train_y = dataset.train_x.to(device), dataset.train_y.to(device)
    steps_per_epoch = len(train_x) // config.batch_size
    if steps_per_epoch == 0:
        raise MixPathError(f"batch size {config.batch_size} exceeds the {len(train_x)} training images")
    total_steps = steps_per_epoch * config.epochs
    warmup_steps = round(config.effective_warmup_epochs * steps_per_epoch)
    amp_dtype = autocast_dtype(config.amp, device)
    sampler = make_sampler(config.strategy, space, config.m)
    state = start_or_resume(config, space, run_dir, device)

    steps_run = 0
    while state.epoch < config.epochs:
        order = torch.randperm(len(train_x), generator=torch_generator(config.seed, "order", state.epoch)).to(device)
        state.model.train()
        bar = tqdm(
            total=steps_per_epoch,
            initial=state.step,
            desc=f"epoch {state.epoch + 1}/{config.epochs}",
            disable=not (progress and distributed.is_main()),
            leave=False,
        )
        tick = time.perf_counter()
        while state.step < steps_per_epoch:
            index = order[state.step * config.batch_size : (state.step + 1) * config.batch_size]
            xb, yb = rank_batch(train_x[index], train_y[index], dataset, config.seed, state)
            archs = sampler.step_architectures(step_rng(config.seed, "arch", state.epoch, state.step))
            lr = cosine_lr(config.lr, state.epoch * steps_per_epoch + state.step, total_steps, warmup_steps)
            train_step(
                state,
                xb,
                yb,
                archs,
                config,
                lr,
                micro_batches=config.micro_batches,
                amp_dtype=amp_dtype,
                across_ranks=True,
            )
            steps_run += 1
            now = time.perf_counter()
            state.sums.seconds += now - tick
            tick = now
            bar.update()
            bar.set_postfix(loss=f"{state.sums.mean_loss:.3f}", img_s=f"{state.sums.seen / state.sums.seconds:.0f}")
            stopping = steps_run == stop_after_steps
            if state.step < steps_per_epoch and (stopping or _checkpoint_due(config, state.step)):
                save(state, config, run_dir)
                if stopping:
                    bar.close()
                    return TrainResult(run_dir, state.metrics, state.model)
        bar.close()
        end_epoch(state, config, dataset, space, device)
        save(state, config, run_dir)
        if distributed.is_main():
            write_csv(run_dir / METRICS_FILE, state.metrics)
        if steps_run == stop_after_steps:
            break
    return TrainResult(run_dir, state.metrics, state.model)


def rank_batch(
    x: torch.Tensor, y: torch.Tensor, dataset: Dataset, seed: int, state: TrainState
) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's rows of the step's global batch ``(x, y)``, augmented. The whole global batch is augmented on
    every rank, so that the augmentation does not depend on the number of processes (it is cheap next to a step)."""
    x = augment_batch(x, dataset.augment, torch_generator(seed, "aug", state.epoch, state.step))
    share = len(x) // distributed.world_size()
    mine = slice(distributed.rank() * share, (distributed.rank() + 1) * share)
    return x[mine], y[mine]


def start_or_resume(config: TrainConfig, space: SearchSpace, run_dir: Path, device: torch.device) -> TrainState:
    """A freshly initialised supernet with its optimizer, or the run's checkpoint loaded into them; every rank
    ends with rank 0's weights."""
    torch.manual_seed(derive_seed(config.seed, "init"))
    supernet = build_supernet(space, config.m, config.bn_policy).to(device)
    state = TrainState.start(supernet, config, torch.amp.GradScaler(device.type, enabled=config.amp == "fp16"))
    path = run_dir / CHECKPOINT_FILE
    saved = distributed.run_on_main(lambda: load_checkpoint(path) if path.exists() else None)
    if saved is not None:
        supernet.load_state_dict(saved["model"])
        state.optimizer.load_state_dict(saved["optimizer"])
        if state.scaler.is_enabled():
            state.scaler.load_state_dict(saved["scaler"])
        state.epoch, state.step = saved["epoch"], saved["step"]
        state.metrics, state.sums = saved["metrics"], EpochSums(**saved["partial"])
        if distributed.is_main():
            log.info("resumed at epoch %d step %d", state.epoch, state.step)
            changed = kernel_change_warning(saved.get("kernels"))
            if changed:
                log.warning("resumed: %s", changed)
            before, world = saved.get("world_size", 1), distributed.world_size()
            if before != world:
                micro, old_micro = (config.batch_size // w // config.micro_batches for w in (world, before))
                log.warning(
                    "resumed on %d process(es), not %d: BN batches are %d, not %d", world, before, micro, old_micro
                )
    distributed.broadcast_tensors(supernet.state_dict().values())
    return state


def end_epoch(
    state: TrainState, config: TrainConfig, dataset: Dataset, space: SearchSpace, device: torch.device
) -> None:
    """Close the epoch in progress: rank 0 scores ``config.eval_archs`` fixed random subnets on the validation
    split (trained BN statistics) and makes the epoch's row; every rank appends it and starts the next epoch."""
    row: dict[str, Any] = {}  # made on rank 0, which every rank receives
    if distributed.is_main():
        eval_rng = step_rng(config.seed, "eval-archs")
        archs = [space.random_architecture(eval_rng, config.m) for _ in range(config.eval_archs)]
        val_x, val_y = dataset.val_x.to(device), dataset.val_y.to(device)
        state.model.eval()
        val = [score(state.model, a, val_x, val_y, SCORING_BATCH_SIZE)["accuracy"] for a in archs] if len(val_y) else []
        sums = state.sums
        row = {
            "epoch": state.epoch + 1,
            "train_loss": round(sums.mean_loss, 5),
            "train_acc": round(sums.accuracy, 3),
            "val_acc_sampled": round(sum(val) / max(1, len(val)), 3),
            "lr": round(state.optimizer.param_groups[0]["lr"], 6),
            "seconds": round(sums.seconds, 2),
            "images_per_s": round(sums.seen / max(sums.seconds, 1e-9), 1),
        }
        log.info("epoch %d: %s", state.epoch + 1, row)
    state.metrics.append(distributed.broadcast_object(row))
    state.epoch, state.step, state.sums = state.epoch + 1, 0, EpochSums()


def save(state: TrainState, config: TrainConfig, run_dir: Path) -> None:
    """Write the checkpoint (rank 0), after giving every rank rank 0's BN statistics."""
    distributed.broadcast_tensors(state.model.buffers())
    if distributed.is_main():
        save_checkpoint(
            run_dir / CHECKPOINT_FILE,
            {
                "model": state.model.state_dict(),
                "optimizer": state.optimizer.state_dict(),
                "scaler": state.scaler.state_dict(),
                "epoch": state.epoch,
                "step": state.step,
                "metrics": state.metrics,
                "partial": dataclasses.asdict(state.sums),
                "config": config.to_json(),
                "world_size": distributed.world_size(),
                "kernels": kernels_in_use(),
            },
        )


def _checkpoint_due(config: TrainConfig, steps_done: int) -> bool:
    return bool(config.checkpoint_every) and steps_done % config.checkpoint_every == 0
