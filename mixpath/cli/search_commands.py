"""``mixpath evaluate``, ``search``, ``export``, ``retrain`` and ``pipeline``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from mixpath.checks import check_processes, check_seed, check_whole_number
from mixpath.cli import Command, app
from mixpath.cli.options import (
    RECIPE,
    TRAIN,
    benchmark_file_option,
    calib_batches_option,
    calib_size_option,
    calibrate_option,
    calibration_settings,
    data_dir_option,
    data_option,
    device_option,
    given,
    image_size_option,
    json_option,
    lr_option,
    option_with_default,
    processes_option,
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
from mixpath.cli.printing import aligned, echo_json, echo_lines, metric_pairs, supernet_pairs
from mixpath.errors import MixPathError
from mixpath.pipeline_scale import FULL, QUICK

CLI_SEARCH: dict[str, Any] = {"objectives": ("accuracy", "flops"), "budget": 200, "population": 20, "seed": 0}
"""The command's search settings where it differs from ``SearchConfig``'s defaults: a search that ends in
minutes on a laptop."""
SEARCH = {key: ",".join(value) if isinstance(value, tuple) else str(value) for key, value in CLI_SEARCH.items()}
"""``CLI_SEARCH`` as the help shows it."""


def _constraints(max_flops: float | None, max_params: float | None, max_latency: float | None) -> dict[str, float]:
    limits = {"flops": max_flops, "params": max_params, "latency": max_latency}
    return {key: value for key, value in limits.items() if value is not None}


@app.command(cls=Command)
def evaluate(
    run: Path = run_argument(),
    arch: str = typer.Option(..., help="Architecture string (or JSON) to score."),
    calibrate: str = calibrate_option(),
    calib_size: int = calib_size_option(),
    calib_batches: int = calib_batches_option(),
    device: str = device_option(),
    run_alias: Path = run_alias_option(),
) -> None:
    """Score one architecture with inherited weights: validation accuracy (%), loss, FLOPs (M multiply-adds),
    params (M)."""
    from mixpath.workflow import evaluate_architecture

    calibration = calibration_settings(calibrate, calib_size, calib_batches)
    echo_lines(metric_pairs(evaluate_architecture(run_folder(run, run_alias), arch, calibration, device)))


@app.command(cls=Command)
def search(
    run: Path | None = run_argument("A trained run folder (omit it with --benchmark)."),
    algo: str = typer.Option(
        "nsga2",
        help="Search algorithm: nsga2, evolution, random, or fbnet (the derived architecture of a run trained with "
        "--strategy fbnet, then samples of its learned distribution).",
    ),
    objectives: str = option_with_default(
        "Comma-separated subset of accuracy,flops,params,latency.", SEARCH["objectives"]
    ),
    budget: int = option_with_default(
        "Architectures to evaluate (the search's cost; may grow on resume).", SEARCH["budget"]
    ),
    population: int = option_with_default("Architectures per generation (nsga2, evolution).", SEARCH["population"]),
    max_flops: float = option_with_default("Constraint: at most this many M multiply-adds.", "none"),
    max_params: float = option_with_default("Constraint: at most this many M parameters.", "none"),
    max_latency: float = option_with_default(
        "Constraint: at most this many ms per image (measured lookup table).", "none"
    ),
    seed: int = option_with_default("Seed of the search's random draws.", SEARCH["seed"]),
    weights: str = option_with_default(
        "nsga2: MoGA's preference weights in the crowding distance, e.g. accuracy=1,latency=0.5,params=0.2 "
        "(objectives not named weigh 1).",
        "none: NSGA-II's equal weights",
    ),
    maximise: str = option_with_default("Comma-separated cost objectives to maximise (MoGA maximises params).", "none"),
    calibrate: str = calibrate_option(),
    calib_size: int = calib_size_option(),
    calib_batches: int = calib_batches_option(),
    benchmark: str = option_with_default("Search a benchmark table instead of a supernet: nb201 or nb101.", "none"),
    benchmark_file: Path = benchmark_file_option(),
    out: Path = option_with_default("Results folder.", "RUN/search-ALGO, or runs/BENCH-ALGO-sSEED"),
    resume: bool = typer.Option(
        False, "--resume", help="Continue the search saved in the results folder (options given must match it)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier search's results in the folder."),
    device: str = device_option(),
    run_alias: Path = run_alias_option(),
) -> None:
    """Search for architectures: every evaluated one, the Pareto front and a plot go to the results folder."""
    import dataclasses

    from mixpath import distributed
    from mixpath.device import resolve_device
    from mixpath.runlock import run_lock
    from mixpath.search import OBJECTIVES, SearchConfig, make_searcher, parse_objectives, parse_weights
    from mixpath.search.session import saved_search_config
    from mixpath.workflow import best_of_front, search_folder, search_supernet

    run = run_folder(run, run_alias, required=False)
    make_searcher(algo)  # an unknown algorithm fails before anything loads
    resolve_device(device)
    if resume and overwrite:
        raise MixPathError("--resume continues the earlier search, --overwrite replaces it: give one of them")
    limits = _constraints(max_flops, max_params, max_latency)
    options = given(
        objectives=parse_objectives(objectives) if objectives is not None else None,
        constraints=limits or None,
        budget=budget,
        population=population,
        seed=seed,
        weights=parse_weights(weights) if weights is not None else None,
        maximise=parse_objectives(maximise) if maximise is not None else None,
    )
    calibration = calibration_settings(calibrate, calib_size, calib_batches)
    if benchmark is not None:
        folder = out or Path("runs") / f"{benchmark}-{algo}-s{seed if seed is not None else SEARCH['seed']}"
    elif run is not None:
        folder = search_folder(run, algo, out)
    else:
        raise MixPathError("give a trained run folder, or --benchmark nb201 to search a benchmark table")
    if resume:  # the options given, over the saved settings; the session refuses any but a larger budget
        config = dataclasses.replace(saved_search_config(folder), **options)
    else:
        config = SearchConfig(**(CLI_SEARCH | options))
    if benchmark is not None:
        from mixpath.benchmarks_nas import load_benchmark_evaluator

        with run_lock(folder):
            space, evaluator = load_benchmark_evaluator(benchmark, "val", benchmark_file)
            result = make_searcher(algo).run(
                space,
                1,
                evaluator,
                config,
                cost_model=evaluator.costs,
                state_dir=folder,
                resume=resume,
                overwrite=overwrite,
                progress=True,
            )
            result.save(folder)
            result.plot(folder / "front.png")
        out = folder
    else:
        assert run is not None
        result, out = search_supernet(
            run,
            algo,
            config,
            calibration=calibration,
            out_dir=folder,
            resume=resume,
            overwrite=overwrite,
            device=device,
        )
    if not distributed.is_main():
        return
    if not result.front:
        raise MixPathError(
            f"none of the {len(result.evaluated)} architectures evaluated met the constraints "
            f"{', '.join(f'{k} <= {v:g}' for k, v in config.constraints.items()) or '(none)'}; results in {out}"
        )
    best = best_of_front(result)
    metrics = next(item.metrics for item in result.front if item.arch == best)
    typer.echo(f"evaluated {len(result.evaluated)} architectures, {len(result.front)} on the front")
    typer.echo(f"most accurate on the front: {result.space.format(best)}")
    for line in aligned(metric_pairs({k: v for k, v in metrics.items() if k in OBJECTIVES})):
        typer.echo(f"  {line}")
    typer.echo(f"results: {out}  plot: {out / 'front.png'}")


@app.command(cls=Command)
def export(
    run: Path = run_argument(),
    arch: str = option_with_default(
        "Architecture to export with the supernet's weights.",
        "the pipeline's found architecture retrained from scratch, RUN/retrain/found, when there is one; "
        "else the most accurate of the front in RUN/search-ALGO",
    ),
    algo: str = option_with_default("Without --arch: whose front, when RUN holds several searches.", "the only one"),
    out: Path = option_with_default("Folder for model.pt and model.json.", "RUN/export"),
    program: bool = typer.Option(
        False, "--program", help="Also write model.pt2 (torch.export; raw pixels in [0, 1], plain PyTorch)."
    ),
    onnx: bool = typer.Option(
        False, "--onnx", help="Also write model.onnx (raw pixels in [0, 1]); needs pip install 'mixpath[onnx]'."
    ),
    calibrate: str = calibrate_option(" Supernet weights only."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier export in the folder."),
    device: str = device_option(),
    run_alias: Path = run_alias_option(),
) -> None:
    """Write a stand-alone model, its preprocessing and metrics in model.json: the pipeline's retrained model
    when RUN has one and no --arch is given, else an architecture with the supernet's weights (BN calibrated).
    RUN is locked while it runs, and so is the output folder: --out may lie outside RUN, where another export
    could be writing the same files."""
    from mixpath.device import resolve_device
    from mixpath.pipeline import retrained_found
    from mixpath.retraining import front_entries
    from mixpath.runlock import run_lock
    from mixpath.workflow import check_export_target, export_architecture, export_retrained

    run = run_folder(run, run_alias)
    resolve_device(device)
    if arch is not None and algo is not None:
        raise MixPathError("--algo chooses whose front gives the architecture; drop it with --arch")
    calibration = calibration_settings(calibrate)
    check_export_target(out or run / "export", overwrite)
    with run_lock(run):  # the export functions lock it too; held on while the front is read
        retrained = retrained_found(run) if arch is None and algo is None else None
        if retrained is not None:
            typer.echo(f"exporting the found architecture retrained from scratch in {retrained}")
            paths, metrics = export_retrained(
                retrained, out or run / "export", export_program=program, export_onnx=onnx, overwrite=overwrite
            )
        else:
            chosen = arch
            if chosen is None:
                _, entries = front_entries(run, algo)
                chosen = max(entries, key=lambda entry: entry.supernet_score).arch
            paths, metrics = export_architecture(
                run,
                chosen,
                out or run / "export",
                calibration=calibration,
                export_program=program,
                export_onnx=onnx,
                overwrite=overwrite,
                device=device,
            )
    echo_lines(metric_pairs(metrics))
    typer.echo("wrote " + ", ".join(str(p) for p in paths))


@app.command(cls=Command)
def retrain(
    run: Path | None = run_argument(
        "A searched run folder: retrain every architecture of its search front into RUN/retrain/<n>-<digest>/, "
        "--processes at a time, then write RUN/retrain/table.csv and table.json; run it again to resume. Or --arch."
    ),
    arch: str = option_with_default("Architecture string to train from scratch, instead of RUN.", "none"),
    algo: str = option_with_default("With RUN: whose front, when RUN holds several searches.", "the only one"),
    space: str = option_with_default("Search space of --arch (RUN: the run's).", "fmnist-s1"),
    space_file: Path = space_file_option(),
    data: str = data_option("fashion-mnist; with RUN the run's"),
    data_dir: str = data_dir_option(),
    epochs: int = option_with_default("Training epochs.", RECIPE["epochs"]),
    batch_size: int = option_with_default("Images per optimizer step.", RECIPE["batch_size"]),
    lr: float = lr_option(RECIPE["lr"]),
    seed: int = typer.Option(0, help="Seed of initialisation, data order, augmentation and the validation split."),
    train_subset: int = train_subset_option(),
    image_size: int = image_size_option("the space's input size; with RUN the run's"),
    workers: int = workers_option(),
    skip_bad_images: bool = skip_bad_images_option(),
    processes: int = processes_option(),
    out: Path = option_with_default("Results folder.", "runs/retrain; with RUN, RUN/retrain"),
    device: str = device_option(),
    run_alias: Path = run_alias_option("--from-front"),
) -> None:
    """Train architectures from scratch with a standard recipe; each folder gets result.json, metrics.csv,
    curves.png and model.pt. A killed run continues when the same command is given again."""
    from mixpath.data import load_data
    from mixpath.device import resolve_device
    from mixpath.retraining import format_table, retrain_architecture, retrain_front
    from mixpath.spaces import get_space
    from mixpath.training.recipe import Recipe

    run = run_folder(run, run_alias, required=False)
    recipe = Recipe(**given(epochs=epochs, batch_size=batch_size, lr=lr))
    target = resolve_device(device)
    check_seed("--seed", seed)
    check_processes("--processes", processes)
    if (arch is None) == (run is None):
        raise MixPathError("give either --arch ARCH or a searched run folder RUN")
    if run is None and processes is not None:
        raise MixPathError("--processes shares out a run's front; with --arch one architecture trains: drop it")
    if run is not None:
        if space is not None or space_file is not None:
            raise MixPathError("a run's front is retrained in the run's own space; drop --space and --space-file")
        if image_size is not None:
            raise MixPathError("a run's front is retrained at the run's image size; drop --image-size")
        root, rows = retrain_front(
            run,
            recipe,
            algo=algo,
            data=data,
            data_dir=data_dir,
            train_subset=train_subset,
            seed=seed,
            out_root=out,
            device=target,
            workers=workers,
            skip_bad_images=skip_bad_images or None,
            processes=processes,
        )
        written = [root / "table.csv", root / "table.json"]
    else:
        if algo is not None:
            raise MixPathError("--algo chooses the search of RUN; drop it with --arch")
        chosen = space_to_use(space, space_file)
        the_space = get_space(chosen if chosen is not None else "fmnist-s1")
        if image_size is not None:
            the_space = the_space.with_input_size(image_size)
        the_arch = the_space.parse(arch, the_space.max_m())
        dataset = load_data(
            data if data is not None else "fashion-mnist",
            data_dir,
            split_seed=seed,
            train_subset=train_subset,
            image_size=the_space.input_shape[1] if data == "imagefolder" else None,
            workers=workers if workers is not None else int(TRAIN["workers"]),
            skip_bad_images=skip_bad_images,
        )
        folder = out or Path("runs/retrain")
        rows = [retrain_architecture(the_space, dataset, the_arch, recipe, folder, seed=seed, device=target)]
        written = [folder / name for name in ("result.json", "metrics.csv", "curves.png", "model.pt")]
    for line in format_table(rows):
        typer.echo(line)
    typer.echo("wrote " + ", ".join(str(path) for path in written))


def _seeds_text(seeds: list[int]) -> str:
    """``seed 0``, or ``seeds 0, 1, 2 (means)`` when every role was retrained with several."""
    return f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {', '.join(map(str, seeds))} (means)"


def _scale_option(text: str, field: str, note: str = "") -> Any:
    """A ``pipeline`` option whose default is the ``Scale``'s ``field``: ``FULL``'s, ``QUICK``'s with --quick (a
    subset of None: all images); ``note`` is added to the default shown."""
    full, quick = getattr(FULL, field), getattr(QUICK, field)
    return option_with_default(text, f"{'all' if full is None else full}; quick: {quick}{note}")


@app.command(cls=Command)
def pipeline(
    run: Path | None = run_argument(with_default("Run folder for every stage.", "runs/demo")),
    space: str = space_option(TRAIN["space"]),
    space_file: Path = space_file_option(),
    data: str = data_option(TRAIN["data"]),
    data_dir: str = data_dir_option(),
    image_size: int = image_size_option(),
    workers: int = workers_option(),
    skip_bad_images: bool = skip_bad_images_option(),
    epochs: int = _scale_option("Supernet epochs.", "epochs", "; 30: the recipe that ranks"),
    m: int = option_with_default("Most paths per layer of the supernet.", TRAIN["m"]),
    train_subset: int = _scale_option("Train the supernet on only this many images.", "train_subset"),
    budget: int = _scale_option("Architectures the search scores.", "budget"),
    population: int = _scale_option("Architectures per search generation.", "population"),
    max_flops: float = option_with_default(
        "FLOPs budget in M multiply-adds for the search and every baseline.",
        "the median FLOPs of architectures sampled from the space, printed at the start",
    ),
    retrain_epochs: int = _scale_option("Epochs of every retraining.", "retrain_epochs"),
    retrain_subset: int = _scale_option("Retrain on only this many images.", "retrain_subset"),
    quick: bool = typer.Option(
        False,
        "--quick",
        help=f"A smoke run: supernet {QUICK.epochs} epoch on {QUICK.train_subset} images, search {QUICK.budget} "
        f"architectures in generations of {QUICK.population} with BN calibration on {QUICK.calib_size} images, "
        f"each retraining {QUICK.retrain_epochs} epoch on {QUICK.retrain_subset} images; its supernet learns "
        "next to nothing, so it goes on with a warning (as with --allow-untrained). Options given win.",
    ),
    allow_untrained: bool = typer.Option(
        False,
        "--allow-untrained",
        help="Search the supernet even when its sampled subnets end within a few points of chance accuracy "
        "(else the pipeline stops there with exit status 2 and says what to change).",
    ),
    seed: int = option_with_default(
        "Seed of every stage (training, split, search, baselines, retraining).", TRAIN["seed"]
    ),
    processes: int = processes_option(),
    retrain_seeds: int = typer.Option(
        1, help="Seeds each of the four is retrained with; the table shows their means (time grows with it)."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue a killed pipeline in RUN."),
    json_output: bool = json_option(),
    device: str = device_option(),
    run_alias: Path = run_alias_option(),
) -> None:
    """The whole job: train a supernet, search it with NSGA-II (accuracy vs FLOPs) under a FLOPs budget, then
    retrain the found architecture and three baselines of equal cost from scratch and compare them on the
    test split; writes the table, report.html and the found architecture's retrained model."""
    import dataclasses

    from mixpath.pipeline import RETRAIN_RECIPE, comparison_lines, run_pipeline
    from mixpath.search import SearchConfig
    from mixpath.training import TrainConfig
    from mixpath.training.trainer import CONFIG_FILE, saved_config

    run = run_folder(run, run_alias, required=False) or Path("runs/demo")
    check_processes("--processes", processes)
    check_whole_number("--retrain-seeds", retrain_seeds)
    scale = QUICK if quick else FULL
    options = given(
        space=space_to_use(space, space_file),
        data=data,
        data_dir=data_dir,
        image_size=image_size,
        workers=workers,
        skip_bad_images=skip_bad_images or None,
        m=m,
        seed=seed,
        epochs=epochs,
        train_subset=train_subset,
    )
    train_config: TrainConfig | None
    if resume and (run / CONFIG_FILE).exists():  # the options given, over the saved settings (compared there)
        saved = saved_config(run)
        train_config = dataclasses.replace(saved, **options) if options else None
        seed_used = (train_config or saved).seed
    else:
        train_config = TrainConfig(**given(epochs=scale.epochs, train_subset=scale.train_subset) | options)
        seed_used = train_config.seed
    search_config = SearchConfig(
        budget=budget if budget is not None else scale.budget,
        population=population if population is not None else scale.population,
        seed=seed_used,
    )
    summary = run_pipeline(
        run,
        train_config,
        search_config,
        dataclasses.replace(
            RETRAIN_RECIPE, epochs=retrain_epochs if retrain_epochs is not None else scale.retrain_epochs
        ),
        max_flops=max_flops,
        retrain_subset=retrain_subset if retrain_subset is not None else scale.retrain_subset,
        calibration=calibration_settings(calib_size=scale.calib_size),
        resume=resume,
        allow_untrained=allow_untrained or quick,
        device=device,
        space_file=space_file,
        processes=processes,
        retrain_seeds=retrain_seeds,
    )
    if json_output:
        echo_json(summary)
        return
    search, retraining, files = summary["search"], summary["retraining"], summary["files"]
    epochs_word = "epoch" if retraining["recipe"]["epochs"] == 1 else "epochs"
    before_table = [
        ("FLOPs budget", f"{summary['budget']['max_flops']:.2f} M multiply-adds ({summary['budget']['rule']})"),
        ("supernet", ", ".join(f"{label} {value}" for label, value in supernet_pairs(summary["training"]))),
        ("search", f"{search['evaluated']} architectures scored, {search['front']} on the front within the budget"),
        (
            "retrained",
            f"from scratch, {retraining['recipe']['epochs']} {epochs_word} on {retraining['train_images']} "
            f"images, {_seeds_text(retraining.get('seeds', [retraining['seed']]))}, tested on "
            f"{retraining['test_images']} images:",
        ),
    ]
    after_table = [
        ("verdict", summary["verdict"]),
        ("table", files["table"]),
        ("report", files["report"]),
        ("model", f"{files['model']} (model.pt2 takes raw pixels; model.json says how)"),
        ("search results", search["results"]),
        ("time", ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in summary["seconds"].items())),
    ]
    lines = aligned(before_table + after_table)
    table = [f"  {line}" for line in comparison_lines(summary["rows"])]
    for line in lines[: len(before_table)] + table + lines[len(before_table) :]:
        typer.echo(line)
