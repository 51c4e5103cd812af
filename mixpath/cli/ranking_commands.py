"""``mixpath groundtruth``, ``rank`` and ``report``: ranking quality of a supernet and its feature analysis."""

from __future__ import annotations

import math
from pathlib import Path

import typer

from mixpath.checks import check_processes, check_seed
from mixpath.cli import Command, app
from mixpath.cli.options import (
    DATA_HELP,
    LR_HELP,
    TRAIN,
    benchmark_file_option,
    calib_batches_option,
    calib_size_option,
    calibrate_option,
    calibration_settings,
    data_dir_option,
    device_option,
    image_size_option,
    option_with_default,
    processes_option,
    run_alias_option,
    run_argument,
    run_folder,
    skip_bad_images_option,
    space_file_option,
    space_option,
    space_to_use,
    workers_option,
)
from mixpath.errors import MixPathError


@app.command(cls=Command)
def groundtruth(
    out: Path = typer.Option(..., help="CSV to append one line per finished architecture to (resumable)."),
    space: str = space_option("fmnist-s1"),
    space_file: Path = space_file_option(),
    data: str = typer.Option("fashion-mnist", help=DATA_HELP),
    data_dir: str = data_dir_option(),
    archs: int = typer.Option(30, help="Architectures, stratified over mean path count and FLOPs."),
    m: int = option_with_default("Most paths per layer of the sampled architectures.", "the space's"),
    epochs: int = typer.Option(3, help="Training epochs per architecture (fixed recipe: SGD + cosine)."),
    batch_size: int = typer.Option(96, help="Images per optimizer step."),
    lr: float = typer.Option(0.05, help=LR_HELP),
    seed: int = typer.Option(0, help="Training seed (initialisation, batch order, augmentation)."),
    sample_seed: int = typer.Option(0, help="Seed of the architecture sample."),
    split_seed: int = typer.Option(0, help="Seed of the train/validation split: use the supernet run's seed."),
    val_size: float = typer.Option(0.1, help="Validation split: a fraction (< 1) or a count of images."),
    train_subset: int = option_with_default("Train on only this many training images, as the supernet did.", "all"),
    image_size: int = image_size_option(),
    workers: int = workers_option(),
    skip_bad_images: bool = skip_bad_images_option(),
    benchmark: str = option_with_default(
        "Look the accuracies up in a benchmark table instead: nb201 or nb101.", "none"
    ),
    benchmark_file: Path = benchmark_file_option(),
    processes: int = processes_option(),
    device: str = device_option(),
) -> None:
    """Stand-alone ground truth: train N stratified architectures from scratch (or look them up in a table)."""
    from mixpath.data import load_data
    from mixpath.device import resolve_device
    from mixpath.ranking import benchmark_ground_truth, build_ground_truth, stratified_sample
    from mixpath.spaces import get_space
    from mixpath.training.recipe import Recipe

    target = resolve_device(device)
    for name, value in (("--seed", seed), ("--sample-seed", sample_seed), ("--split-seed", split_seed)):
        check_seed(name, value)
    check_processes("--processes", processes)
    if not math.isfinite(val_size) or val_size < 0 or (val_size >= 1 and not float(val_size).is_integer()):
        raise MixPathError(f"--val-size {val_size}: give a fraction in [0, 1) or a whole number of images")
    recipe = Recipe(epochs=epochs, batch_size=batch_size, lr=lr)
    if benchmark is not None:
        rows = benchmark_ground_truth(benchmark, archs, out, seed=sample_seed, path=benchmark_file)
        typer.echo(f"{len(rows)} architectures of {benchmark} in {out}")
        return
    chosen = space_to_use(space, space_file)
    search_space = get_space(chosen if chosen is not None else "fmnist-s1")
    if image_size is not None:
        search_space = search_space.with_input_size(image_size)
    sample = stratified_sample(search_space, archs, m if m is not None else search_space.max_m(), sample_seed)
    dataset = load_data(
        data,
        data_dir,
        val_size=int(val_size) if val_size >= 1 else val_size,
        split_seed=split_seed,
        train_subset=train_subset,
        image_size=search_space.input_shape[1] if data == "imagefolder" else None,
        workers=workers if workers is not None else int(TRAIN["workers"]),
        skip_bad_images=skip_bad_images,
    )
    rows = build_ground_truth(
        search_space, dataset, sample, recipe, out, seed=seed, device=target, progress=True, processes=processes
    )
    typer.echo(f"{len(rows)} of {archs} architectures trained, in {out}")


@app.command(cls=Command)
def rank(
    run: Path = run_argument(),
    ground_truth: Path = typer.Option(..., help="Ground-truth CSV from `mixpath groundtruth`."),
    calibrate: str = calibrate_option(),
    calib_size: int = calib_size_option(),
    calib_batches: int = calib_batches_option(),
    target: str = typer.Option("test", help="Ground-truth accuracy ranked against: test or val."),
    resamples: int = typer.Option(2000, help="Bootstrap resamples for the 95% intervals."),
    seed: int = typer.Option(0, help="Bootstrap seed."),
    device: str = device_option(),
    run_alias: Path = run_alias_option(),
) -> None:
    """Kendall tau, Spearman rho and top-k precision of the supernet's ranking, beside FLOPs and params."""
    from mixpath.device import resolve_device
    from mixpath.ranking.groundtruth import TARGETS
    from mixpath.ranking.rank import RANKING_DIR, estimate_of, rank_run
    from mixpath.reporting import ranking_scatter
    from mixpath.runlock import run_lock

    run = run_folder(run, run_alias)
    resolve_device(device)
    check_seed("--seed", seed)
    if target not in TARGETS:
        raise MixPathError(f"--target {target!r}: choose one of {', '.join(TARGETS)}")
    if resamples < 1:
        raise MixPathError(f"--resamples {resamples}: give a whole number >= 1")
    calibration = calibration_settings(calibrate, calib_size, calib_batches)
    mode = calibration.mode
    with run_lock(run):  # rank_run locks it too; held on for the plot
        result = rank_run(
            run,
            ground_truth,
            calibration=calibration,
            target=target,
            resamples=resamples,
            seed=seed,
            device=device,
            progress=True,
        )
        plot = ranking_scatter(result, run / RANKING_DIR / f"ranking_{mode}.png", f"{run.name} ({mode})")
    metrics = list(result["metrics"]["supernet"])
    typer.echo(f"{result['n_archs']} architectures, against {result['target']}; 95% bootstrap intervals")
    typer.echo("predictor  " + "".join(f"{name:>26}" for name in metrics))
    for predictor in result["metrics"]:
        typer.echo(f"{predictor:<11}" + "".join(f"{str(estimate_of(result, predictor, n)):>26}" for n in metrics))
    typer.echo(f"written {run / RANKING_DIR / f'ranking_{mode}.json'} and {plot}")


@app.command(cls=Command)
def report(
    run: Path = run_argument("A run folder (the feature analysis needs a multi-path mbconv supernet)."),
    html: bool = typer.Option(
        False,
        "--html",
        help="Only write RUN/report.html, one self-contained page of everything the run holds, in seconds "
        "(it shows a feature analysis run before, but does not run it).",
    ),
    out: Path = option_with_default("Output folder of the feature analysis.", "RUN/report"),
    images: int = typer.Option(256, help="Validation images for the path similarity matrices."),
    archs: int = typer.Option(50, help="Random architectures per path limit m for the one-shot histograms."),
    calibrate: str = calibrate_option(),
    calib_size: int = calib_size_option(),
    seed: int = typer.Option(0, help="Seed of the images and architectures drawn."),
    device: str = device_option(),
    run_alias: Path = run_alias_option(),
) -> None:
    """Feature analysis: path similarity, Shadow BN statistics, one-shot accuracy per m (JSON + PNG);
    with --html, the run's page instead. RUN is locked while it runs, and so is the output folder: --out may
    lie outside RUN, where another report could be writing the same files."""
    from mixpath.reporting import run_report, write_html_report

    run = run_folder(run, run_alias)
    if html:
        typer.echo(f"written {write_html_report(run)}")
        return
    if images < 1 or archs < 1:
        raise MixPathError(f"--images {images} and --archs {archs} must be >= 1")
    from mixpath.device import resolve_device

    resolve_device(device)
    check_seed("--seed", seed)
    calibration = calibration_settings(calibrate, calib_size)
    result = run_report(run, out, images=images, n_archs=archs, calibration=calibration, seed=seed, device=device)
    summary = result["sbn"].get("summary", {}).get("1/2")
    if summary:
        typer.echo(
            f"SBN_1/SBN_2: mean ratio {summary['mu_ratio_abs_sum']:.3f} (paper ~0.5), "
            f"variance ratio {summary['var_ratio_abs_sum']:.3f} (paper ~0.25), "
            f"gamma cosine {summary['gamma_cosine']:.3f}"
        )
    for m, stats in result["oneshot"]["by_m"].items():
        typer.echo(f"m={m}: one-shot accuracy {stats['mean']:.2f} +- {stats['std']:.2f} %")
    typer.echo(f"written {out or run / 'report'}")
