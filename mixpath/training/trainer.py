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

import contextlib
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
from mixpath.checks import is_number
from mixpath.data import Data, dataset_names, load_data
from mixpath.errors import MixPathError
from mixpath.evaluation.latency import RUN_FILE as LATENCY_RUN_FILE
from mixpath.evaluation.scoring import score
from mixpath.io import read_json, remove_stale_temp_files, write_csv, write_json
from mixpath.kernels import kernel_change_warning, kernels_in_use
from mixpath.kernels.runtime import waiting_follows_load
from mixpath.runlock import run_lock
from mixpath.spaces import SearchSpace, get_space
from mixpath.spaces.space_file import SPACE_FILE, copy_space_file, load_run_spaces, space_from_file
from mixpath.supernet import build_supernet
from mixpath.training.checkpoint import (
    load_checkpoint,
    load_weights,
    restoring,
    save_checkpoint,
)
from mixpath.training.config import TrainConfig
from mixpath.training.fbnet import check_fbnet, train_fbnet
from mixpath.training.samplers import make_sampler
from mixpath.training.schedule import cosine_lr
from mixpath.training.seeding import derive_seed, step_rng, torch_generator
from mixpath.training.shrinking import Shrinker, check_shrinking
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


def run_space(config: TrainConfig) -> SearchSpace:
    """The run's search space, sized for its images (``image_size``, image folders only)."""
    space = get_space(config.space)
    return space.with_input_size(config.image_size) if config.image_size is not None else space


def run_data(config: TrainConfig) -> Data:
    """The run's data, split as its settings say; an image folder at the run's image size."""
    return load_data(
        config.data,
        config.data_dir,
        val_size=config.val_size,
        split_seed=config.seed,
        train_subset=config.train_subset,
        image_size=run_space(config).input_shape[1] if config.data == "imagefolder" else None,
        workers=config.workers,
        skip_bad_images=config.skip_bad_images,
    )


def check_config(config: TrainConfig) -> None:
    """Fail on an unknown space, dataset, or strategy/m mismatch before anything is written."""
    if config.data not in dataset_names():
        raise MixPathError(f"unknown dataset {config.data!r}; choose one of: {', '.join(dataset_names())}")
    if config.data == "imagefolder" and config.data_dir is None:
        raise MixPathError(
            "--data imagefolder needs --data-dir DIR (DIR/train/<class>/ and DIR/val/<class>/, or DIR/<class>/)"
        )
    if config.strategy == "fbnet":
        check_fbnet(config, run_space(config))
    else:
        make_sampler(config.strategy, run_space(config), config.m, config.path_sampling)
    if config.shrink_at:
        check_shrinking(config, run_space(config))


def saved_config(run_dir: Path | str) -> TrainConfig:
    """The settings saved in a run folder's config.json; a folder without one is a one-line error."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise MixPathError(f"nothing to resume in {run_dir}: no {CONFIG_FILE} there")
    return TrainConfig.from_json(read_json(path), path)


RESUMABLE_SETTINGS = ("checkpoint_every", "data_dir", "workers", "skip_bad_images")
"""Settings a resumed run may change: where its data files are read from, by how many processes, how often it
checkpoints, and whether unreadable images are skipped (a run stopped by one resumes skipping it) decide nothing
it trains otherwise, so a new value is applied and recorded in config.json (and train.log). Any other
difference is refused: a run resumed with another learning rate, batch or number of epochs (whose cosine
schedule would change length mid-run) would train neither the saved run nor the asked one."""


def prepare_run(config: TrainConfig | None, run_dir: Path, resume: bool) -> tuple[TrainConfig, bool]:
    """Write config.json for a new run, or return the saved settings of the run to resume; the flag says
    whether a new run was started (so that a failure before its first checkpoint can take its start back).

    A run exists once it has written a checkpoint; a folder whose config.json has none (its start was killed)
    takes the settings of a new start. Resuming with ``config`` given compares it with the saved settings:
    ``RESUMABLE_SETTINGS`` are applied and recorded, any other difference is an error naming the setting, its
    saved and its given value.
    """
    config_path = run_dir / CONFIG_FILE
    started = (run_dir / CHECKPOINT_FILE).exists()
    if resume:
        saved = saved_config(run_dir)
        if config is None or config == saved:
            return saved, False
        changed = [(k, v, config.to_json()[k]) for k, v in saved.to_json().items() if config.to_json()[k] != v]
        refused = [change for change in changed if change[0] not in RESUMABLE_SETTINGS]
        if refused and started:
            why = {"epochs": " (the cosine learning-rate schedule would change length mid-run)"}
            differences = "; ".join(f"{k}={new!r} given, {old!r} saved{why.get(k, '')}" for k, old, new in refused)
            them = "these" if len(refused) > 1 else "it"
            raise MixPathError(
                f"cannot resume {run_dir} with other settings: {differences}. Drop {them} to resume as saved, "
                "or start a new run in another folder"
            )
        check_config(config)
        write_json(config_path, config.to_json())
        log.info("resuming %s with %s", run_dir, ", ".join(f"{k}={new!r} (was {old!r})" for k, old, new in changed))
        return config, False
    if started:
        raise MixPathError(f"{run_dir} already holds a run: pass --resume to continue it, or choose a new folder")
    if config is None:
        raise MixPathError(f"no settings given for the new run in {run_dir}")
    check_config(config)
    write_json(config_path, config.to_json())
    return config, True


def _prepare_on_main(config: TrainConfig | None, run_dir: Path, resume: bool, world: int) -> tuple[TrainConfig, bool]:
    """``prepare_run`` plus the batch split check, before anything is written for a new run."""
    if config is not None:
        check_batch_split(config, world)
    saved, started = prepare_run(config, run_dir, resume)
    check_batch_split(saved, world)
    return saved, started


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


@waiting_follows_load()  # OpenMP threads sleep while other jobs share the cores
def train_supernet(
    config: TrainConfig | None,
    run_dir: Path | str,
    *,
    resume: bool = False,
    device: str | torch.device = "auto",
    progress: bool = True,
    dataset: Data | None = None,
    stop_after_steps: int | None = None,
    space_file: Path | str | None = None,
) -> TrainResult:
    """Train a supernet into ``run_dir`` (config.json, checkpoint.pt, metrics.csv, train.log).

    With ``resume=True`` and ``config=None`` the run continues with the settings saved in ``run_dir``.

    ``space_file`` is a Python file declaring ``config.space`` (``mixpath.spaces.space_file``): it is run,
    and copied into the run folder (space.py), where every later command on the run finds the space.

    ``stop_after_steps`` ends the call after that many optimizer steps (checkpointing first): a way to
    run long trainings in chunks, and how the tests kill a run at a known point.

    ``dataset``: data already loaded, trained on as given instead of loading ``config``'s (so its split and
    training subset win over ``config.val_size`` and ``config.train_subset``, which then only label the run);
    for callers that train several runs on one dataset.

    Under torchrun every process calls this with the same arguments; it joins the process group itself
    (``device`` ``auto`` or ``cuda`` then means ``cuda:LOCAL_RANK``) and only rank 0 touches ``run_dir``.
    """
    run_dir = Path(run_dir)
    device = distributed.setup(device)
    load_run_spaces(run_dir)  # a resumed run of a space from a file
    if space_file is not None:
        space_from_file(space_file, config.space if config is not None else None)
    with contextlib.ExitStack() as held:
        distributed.run_on_main(lambda: held.enter_context(run_lock(run_dir)))  # rank 0 alone touches the folder
        # opened at the first line logged, so that a refused command leaves train.log as it was
        handler = (
            logging.FileHandler(run_dir / LOG_FILE, delay=True) if distributed.is_main() else logging.NullHandler()
        )
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        log.addHandler(handler)
        started = False
        try:
            config, started = distributed.run_on_main(
                functools.partial(_prepare_on_main, config, run_dir, resume, distributed.world_size())
            )
            if distributed.is_main():
                (run_dir / LOG_FILE).touch()  # the run's log exists from its start, lines logged or not
            if space_file is not None and distributed.is_main():
                copy_space_file(space_file, run_dir)
            result = _train(config, run_dir, device, progress, dataset or run_data(config), stop_after_steps)
        except BaseException:
            if started and distributed.is_main():
                _forget_failed_start(run_dir)
            raise
        finally:
            log.removeHandler(handler)
            handler.close()
        distributed.barrier()
    return result


def _forget_failed_start(run_dir: Path) -> None:
    """After a new run failed before its first checkpoint (its data did not load, its batch does not fit),
    remove what its start wrote, so that the corrected command starts afresh instead of finding a run."""
    if not (run_dir / CHECKPOINT_FILE).exists():
        for name in (CONFIG_FILE, LOG_FILE, SPACE_FILE, LATENCY_RUN_FILE):
            (run_dir / name).unlink(missing_ok=True)


def _train(
    config: TrainConfig,
    run_dir: Path,
    device: torch.device,
    progress: bool,
    dataset: Data,
    stop_after_steps: int | None,
) -> TrainResult:
    space = run_space(config)
    space.check_data(dataset.input_shape, dataset.num_classes, config.data)
    if config.strategy == "fbnet":
        return train_fbnet(config, run_dir, device, progress, dataset, space, stop_after_steps)
    train = dataset.train.to(device)
    shrinker = Shrinker(config, space, train) if config.shrink_at else None  # BS-NAS: holds out its images
    if shrinker is not None:
        train = shrinker.train
    steps_per_epoch = train.steps_per_epoch(config.batch_size)
    if steps_per_epoch == 0:
        raise MixPathError(f"batch size {config.batch_size} exceeds the {len(train)} training images")
    total_steps = steps_per_epoch * config.epochs
    warmup_steps = round(config.effective_warmup_epochs * steps_per_epoch)
    amp_dtype = autocast_dtype(config.amp, device)
    sampler = make_sampler(config.strategy, space, config.m, config.path_sampling)
    state = start_or_resume(config, space, run_dir, device)
    if shrinker is not None:
        sampler = shrinker.resume(run_dir / CHECKPOINT_FILE, total_steps)
    if state.step >= steps_per_epoch or state.epoch > config.epochs or (state.epoch == config.epochs and state.step):
        raise MixPathError(
            f"checkpoint {run_dir / CHECKPOINT_FILE} is at epoch {state.epoch} step {state.step}, outside this run "
            f"of {config.epochs} epochs of {steps_per_epoch} steps"
        )

    steps_run = 0
    seeds = functools.partial(torch_generator, config.seed)
    while state.epoch < config.epochs:
        batches = train.training_batches(
            config.batch_size,
            state.epoch,
            seeds,
            start_step=state.step,
            rank=distributed.rank(),
            world=distributed.world_size(),
        )
        state.model.train()
        bar = tqdm(
            total=steps_per_epoch,
            initial=state.step,
            desc=f"epoch {state.epoch + 1}/{config.epochs}",
            disable=not (progress and distributed.is_main()),
            leave=False,
        )
        tick = time.perf_counter()
        try:  # the bar goes, whatever ends the epoch, so that an error is a line of its own
            for xb, yb in batches:
                if shrinker is not None and shrinker.due(state.epoch * steps_per_epoch + state.step):
                    sampler = shrinker.shrink(state.model, state.epoch * steps_per_epoch + state.step, run_dir)
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
                    save(state, config, run_dir, shrinker.checkpoint() if shrinker is not None else None)
                    if stopping:
                        return TrainResult(run_dir, state.metrics, state.model)
        finally:
            bar.close()
        end_epoch(state, config, dataset, space if shrinker is None else shrinker.space, device)
        save(state, config, run_dir, shrinker.checkpoint() if shrinker is not None else None)
        if distributed.is_main():
            write_csv(run_dir / METRICS_FILE, state.metrics)
        if steps_run == stop_after_steps:
            break
    return TrainResult(run_dir, state.metrics, state.model)


def start_or_resume(config: TrainConfig, space: SearchSpace, run_dir: Path, device: torch.device) -> TrainState:
    """A freshly initialised supernet with its optimizer, or the run's checkpoint loaded into them; every rank
    ends with rank 0's weights."""
    torch.manual_seed(derive_seed(config.seed, "init"))
    supernet = build_supernet(space, config.m, config.bn_policy).to(device)
    state = TrainState.start(supernet, config, torch.amp.GradScaler(device.type, enabled=config.amp == "fp16"))
    path = run_dir / CHECKPOINT_FILE
    if distributed.is_main():
        remove_stale_temp_files(path)
    saved = distributed.run_on_main(lambda: _checked_checkpoint(path) if path.exists() else None)
    if saved is not None:
        load_weights(supernet, saved["model"], path)
        with restoring(path):
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


def _checked_checkpoint(path: Path) -> dict[str, Any]:
    """The supernet checkpoint at ``path`` with its position and records checked, so that a wrong value is one
    line here rather than an error in the middle of training."""
    saved = load_checkpoint(path)
    for key in ("epoch", "step"):
        value = saved.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise MixPathError(f"checkpoint {path} is not a supernet checkpoint: {key}={value!r}")
    metrics, partial = saved.get("metrics"), saved.get("partial")
    if not isinstance(metrics, list) or not all(isinstance(row, dict) for row in metrics):
        raise MixPathError(f"checkpoint {path} is not a supernet checkpoint: its metrics are not a list of rows")
    sums = {f.name for f in dataclasses.fields(EpochSums)}
    if not isinstance(partial, dict) or set(partial) != sums or not all(is_number(v) for v in partial.values()):
        raise MixPathError(f"checkpoint {path} is not a supernet checkpoint: its partial epoch is not {sorted(sums)}")
    if not isinstance(saved.get("optimizer"), dict):
        raise MixPathError(f"checkpoint {path} is not a supernet checkpoint: it holds no optimizer state")
    return saved


def end_epoch(state: TrainState, config: TrainConfig, dataset: Data, space: SearchSpace, device: torch.device) -> None:
    """Close the epoch in progress: rank 0 scores ``config.eval_archs`` fixed random subnets on the validation
    split (trained BN statistics) and makes the epoch's row; every rank appends it and starts the next epoch."""
    row: dict[str, Any] = {}  # made on rank 0, which every rank receives
    if distributed.is_main():
        eval_rng = step_rng(config.seed, "eval-archs")
        archs = [space.random_architecture(eval_rng, config.m) for _ in range(config.eval_archs)]
        split = dataset.val.to(device)
        state.model.eval()
        val = [score(state.model, a, split, SCORING_BATCH_SIZE)["accuracy"] for a in archs] if len(split) else []
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


def save(state: TrainState, config: TrainConfig, run_dir: Path, extra: dict[str, Any] | None = None) -> None:
    """Write the checkpoint (rank 0), after giving every rank rank 0's BN statistics; ``extra``: entries of a
    strategy's own (fbnet's architecture parameters, shrinking's survivors)."""
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
                **(extra or {}),
            },
        )


def _checkpoint_due(config: TrainConfig, steps_done: int) -> bool:
    return bool(config.checkpoint_every) and steps_done % config.checkpoint_every == 0
