"""``mixpath spaces`` and ``mixpath train``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer

from mixpath.cli import Command, app
from mixpath.cli.options import (
    TRAIN,
    data_dir_option,
    data_option,
    device_option,
    given,
    image_size_option,
    json_option,
    lr_option,
    option_with_default,
    run_alias_option,
    run_argument,
    run_folder,
    skip_bad_images_option,
    space_file_option,
    space_option,
    space_to_use,
    train_subset_option,
    with_default,
    workers_option,
)
from mixpath.cli.printing import echo_json, echo_lines, supernet_pairs
from mixpath.errors import MixPathError


@app.command(cls=Command)
def spaces(
    m: list[int] = typer.Option([1, 4], "--m", help="Path limits (paths per layer) to count for."),
    space_file: Path = space_file_option(),
) -> None:
    """List the registered search spaces with their sizes (number of architectures for each m)."""
    from mixpath.spaces import list_spaces, load_space_file

    if space_file is not None:
        load_space_file(space_file)
    if any(k < 1 for k in m):
        raise MixPathError(f"--m {min(m)}: a path limit is a whole number >= 1")

    header = "space".ljust(24) + "layers  " + "".join(f"{'m=' + str(k):>12}" for k in m) + "  description"
    typer.echo(header)
    for space in list_spaces():
        sizes = "".join(f"{space.size(min(k, space.max_m())):>12.3g}" for k in m)
        typer.echo(f"{space.name:<24}{space.n_layers:>6}  {sizes}  {space.description}")


@app.command(cls=Command)
def train(
    run: Path | None = run_argument(with_default("Run folder to write.", "runs/SPACE-STRATEGY-mM-POLICY-sSEED")),
    space: str = space_option(TRAIN["space"]),
    space_file: Path = space_file_option(),
    data: str = data_option(TRAIN["data"]),
    data_dir: str = data_dir_option(),
    strategy: str = option_with_default(
        "Training strategy: mixpath, spos, fairnas, or fbnet (differentiable: learns architecture weights).",
        TRAIN["strategy"],
    ),
    m: int = option_with_default("Most paths per layer.", f"{TRAIN['m']} for mixpath, 1 for spos and fairnas"),
    bn_policy: str = option_with_default(
        "BN after summed paths: shadow, shared, exponential or scaled.", TRAIN["bn_policy"]
    ),
    path_sampling: str = option_with_default(
        "mixpath: a layer's path count uniform in 1..m, or branch-fair (probability 1/k).", TRAIN["path_sampling"]
    ),
    epochs: int = option_with_default("Passes over the training split.", TRAIN["epochs"]),
    batch_size: int = option_with_default("Images per optimizer step, over all processes.", TRAIN["batch_size"]),
    lr: float = lr_option(TRAIN["lr"]),
    warmup_epochs: float = option_with_default(
        "Linear learning-rate warm-up, in epochs (fractions allowed).", TRAIN["warmup_epochs"]
    ),
    weight_decay: float = option_with_default("L2 weight decay of the trained paths, per step.", TRAIN["weight_decay"]),
    grad_clip: float = option_with_default("Clip the gradient's L2 norm to this (0: no clipping).", TRAIN["grad_clip"]),
    label_smoothing: float = option_with_default(
        "Label smoothing of the cross-entropy, 0 to 1.", TRAIN["label_smoothing"]
    ),
    seed: int = option_with_default(
        "Seed of initialisation, data order, augmentation, paths and split.", TRAIN["seed"]
    ),
    train_subset: int = train_subset_option(),
    checkpoint_every: int = option_with_default(
        "Also checkpoint every N steps (0: at epoch ends only).", TRAIN["checkpoint_every"]
    ),
    amp: str = option_with_default("Mixed precision: off, bf16 or fp16 (fp16 needs CUDA).", TRAIN["amp"]),
    micro_batches: int = option_with_default(
        "Split each process's batch into this many BN batches.", TRAIN["micro_batches"]
    ),
    val_size: float = option_with_default(
        "Validation split: a fraction (< 1) or a count of training images.", TRAIN["val_size"]
    ),
    held_out: float = option_with_default(
        "fbnet and --shrink-at: fraction of the training split held out for architecture steps / op scores.",
        TRAIN["held_out"],
    ),
    arch_lr: float = option_with_default("fbnet: Adam's rate for the architecture parameters.", TRAIN["arch_lr"]),
    temperature: float = option_with_default(
        "fbnet: Gumbel-softmax temperature of the first epoch.", TRAIN["temperature"]
    ),
    temperature_decay: float = option_with_default(
        "fbnet: the temperature's factor per epoch.", TRAIN["temperature_decay"]
    ),
    latency_table: str = option_with_default("fbnet: latency table JSON of the space for LAT (else FLOPs).", "FLOPs"),
    cost_alpha: float = option_with_default("fbnet: alpha of CE * alpha * log(LAT) ** beta.", TRAIN["cost_alpha"]),
    cost_beta: float = option_with_default("fbnet: beta of the same loss.", TRAIN["cost_beta"]),
    shrink_at: str = option_with_default(
        "BS-NAS: fractions of the run at which layers drop their worst ops, e.g. 0.25,0.5.", "none"
    ),
    shrink_drop: int = option_with_default(
        "BS-NAS: ops each layer drops at each --shrink-at point.", TRAIN["shrink_drop"]
    ),
    shrink_archs: int = option_with_default(
        "BS-NAS: single-path architectures scored per point.", TRAIN["shrink_archs"]
    ),
    image_size: int = image_size_option(),
    workers: int = workers_option(),
    skip_bad_images: bool = skip_bad_images_option(),
    device: str = device_option(),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in RUN with its saved settings."),
    json_output: bool = json_option(),
    run_alias: Path = run_alias_option(),
) -> None:
    """Train a one-shot supernet; warns when its sampled subnets end near chance accuracy."""
    from mixpath import distributed
    from mixpath.device import resolve_device
    from mixpath.training import TrainConfig, train_supernet
    from mixpath.training.chance import untrained_warning
    from mixpath.training.trainer import saved_config

    run = run_folder(run, run_alias, required=False)
    resolve_device(device)
    options = given(
        space=space_to_use(space, space_file),
        data=data,
        data_dir=data_dir,
        strategy=strategy,
        m=m,
        bn_policy=bn_policy,
        path_sampling=path_sampling,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        warmup_epochs=warmup_epochs,
        weight_decay=weight_decay,
        grad_clip=grad_clip,
        label_smoothing=label_smoothing,
        seed=seed,
        train_subset=train_subset,
        checkpoint_every=checkpoint_every,
        amp=amp,
        micro_batches=micro_batches,
        val_size=int(val_size) if val_size is not None and val_size >= 1 else val_size,
        image_size=image_size,
        workers=workers,
        skip_bad_images=skip_bad_images or None,
        held_out=held_out,
        arch_lr=arch_lr,
        temperature=temperature,
        temperature_decay=temperature_decay,
        latency_table=latency_table,
        cost_alpha=cost_alpha,
        cost_beta=cost_beta,
        shrink_at=_fractions(shrink_at) if shrink_at is not None else None,
        shrink_drop=shrink_drop,
        shrink_archs=shrink_archs,
    )
    if resume:
        if run is None:
            raise MixPathError("--resume needs the run folder to continue: mixpath train RUN --resume")
        # the options given, over the saved settings: train_supernet applies those a run may change, refuses others
        config = dataclasses.replace(saved_config(run), **options) if options else None
    else:
        if m is None and options.get("strategy", "mixpath") != "mixpath":
            options["m"] = 1  # single-path strategies train one path per layer
        config = TrainConfig(**options)
        run = run or Path("runs") / f"{config.space}-{config.strategy}-m{config.m}-{config.bn_policy}-s{config.seed}"
    result = train_supernet(config, run, resume=resume, device=device, space_file=space_file)
    if not distributed.is_main():
        return
    warning = untrained_warning(run)
    if warning is not None:
        typer.echo(f"warning: {warning}", err=True)
    if json_output:
        echo_json({"run": str(run), **result.last})
    else:
        echo_lines([("run", str(run)), *supernet_pairs(result.last)])


def _fractions(text: str) -> tuple[float, ...]:
    """``--shrink-at 0.25,0.5,0.75`` as numbers (TrainConfig checks their range)."""
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise MixPathError(
            f"--shrink-at {text}: expected fractions of the run joined by commas, e.g. 0.25,0.5"
        ) from None
