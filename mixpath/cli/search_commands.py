"""``mixpath evaluate``, ``search``, ``export``, ``retrain`` and ``pipeline``."""

from __future__ import annotations

from pathlib import Path

import typer

from mixpath.cli import Command, app
from mixpath.cli.options import (
    DATA_DIR_HELP,
    DATA_HELP,
    DEVICE_HELP,
    JSON_HELP,
    RECIPE,
    RUN_ALIAS_HELP,
    TRAIN,
    calib_batches_option,
    calib_size_option,
    calibrate_option,
    calibration_settings,
    given,
    run_folder,
    with_default,
)
from mixpath.cli.printing import aligned, echo_json, echo_lines, metric_pairs, supernet_pairs
from mixpath.errors import MixPathError
from mixpath.pipeline_scale import FULL, QUICK

OBJECTIVES = ("accuracy", "flops", "params", "latency")


def _objectives(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    bad = [name for name in names if name not in OBJECTIVES]
    if bad or not names:
        raise MixPathError(f"unknown objective {bad[0] if bad else text!r}; choose from: {', '.join(OBJECTIVES)}")
    return names


def _constraints(max_flops: float | None, max_params: float | None, max_latency: float | None) -> dict[str, float]:
    limits = {"flops": max_flops, "params": max_params, "latency": max_latency}
    return {key: value for key, value in limits.items() if value is not None}


@app.command(cls=Command)
def evaluate(
    run: Path = typer.Argument(None, metavar="RUN", help="A trained run folder."),
    arch: str = typer.Option(..., help="Architecture string (or JSON) to score."),
    calibrate: str = calibrate_option(),
    calib_size: int = calib_size_option(),
    calib_batches: int = calib_batches_option(),
    device: str = typer.Option("auto", help=DEVICE_HELP),
    run_alias: Path = typer.Option(None, "--run", help=RUN_ALIAS_HELP),
) -> None:
    """Score one architecture with inherited weights: validation accuracy (%), loss, FLOPs (M multiply-adds),
    params (M)."""
    from mixpath.workflow import evaluate_architecture

    calibration = calibration_settings(calibrate, calib_size, calib_batches)
    echo_lines(metric_pairs(evaluate_architecture(run_folder(run, run_alias), arch, calibration, device)))


@app.command(cls=Command)
def search(
    run: Path | None = typer.Argument(None, metavar="RUN", help="A trained run folder (omit it with --benchmark)."),
    algo: str = typer.Option("nsga2", help="Search algorithm: nsga2, evolution or random."),
    objectives: str = typer.Option("accuracy,flops", help="Comma-separated subset of accuracy,flops,params,latency."),
    budget: int = typer.Option(200, help="Architectures to evaluate (the search's cost)."),
    population: int = typer.Option(20, help="Architectures per generation (nsga2, evolution)."),
    max_flops: float = typer.Option(None, help=with_default("Constraint: at most this many M multiply-adds.", "none")),
    max_params: float = typer.Option(None, help=with_default("Constraint: at most this many M parameters.", "none")),
    max_latency: float = typer.Option(
        None,
        help=with_default("Constraint: at most this many ms per image (measured lookup table).", "none"),
    ),
    seed: int = typer.Option(0, help="Seed of the search's random draws."),
    calibrate: str = calibrate_option(),
    calib_size: int = calib_size_option(),
    calib_batches: int = calib_batches_option(),
    benchmark: str = typer.Option(
        None,
        help=with_default("Search a benchmark table instead of a supernet: nb201 or nb101.", "none"),
    ),
    benchmark_file: Path = typer.Option(None, help=with_default("nb101: path of nasbench_only108.tfrecord.", "none")),
    out: Path = typer.Option(None, help=with_default("Results folder.", "RUN/search-ALGO, or runs/BENCH-ALGO-sSEED")),
    resume: bool = typer.Option(False, "--resume", help="Continue the search saved in the results folder."),
    device: str = typer.Option("auto", help=DEVICE_HELP),
    run_alias: Path = typer.Option(None, "--run", help=RUN_ALIAS_HELP),
) -> None:
    """Search for architectures: every evaluated one, the Pareto front and a plot go to the results folder."""
    from mixpath import distributed
    from mixpath.search import SearchConfig, make_searcher
    from mixpath.workflow import best_of_front, search_supernet

    run = run_folder(run, run_alias, required=False)
    config = SearchConfig(
        objectives=_objectives(objectives),
        constraints=_constraints(max_flops, max_params, max_latency),
        budget=budget,
        population=population,
        seed=seed,
    )
    if benchmark is not None:
        from mixpath.benchmarks_nas import load_benchmark_evaluator

        space, evaluator = load_benchmark_evaluator(benchmark, "val", benchmark_file)
        out = out or Path("runs") / f"{benchmark}-{algo}-s{seed}"
        result = make_searcher(algo).run(
            space, 1, evaluator, config, cost_model=evaluator.costs, state_dir=out, resume=resume, progress=True
        )
        result.save(out)
        result.plot(out / "front.png")
    else:
        if run is None:
            raise MixPathError("give a trained run folder, or --benchmark nb201 to search a benchmark table")
        calibration = calibration_settings(calibrate, calib_size, calib_batches)
        result, out = search_supernet(
            run, algo, config, calibration=calibration, out_dir=out, resume=resume, device=device
        )
    if not distributed.is_main():
        return
    best = best_of_front(result)
    metrics = next(item.metrics for item in result.front if item.arch == best)
    typer.echo(f"evaluated {len(result.evaluated)} architectures, {len(result.front)} on the front")
    typer.echo(f"most accurate on the front: {result.space.format(best)}")
    for line in aligned(metric_pairs({k: v for k, v in metrics.items() if k in OBJECTIVES})):
        typer.echo(f"  {line}")
    typer.echo(f"results: {out}  plot: {out / 'front.png'}")


@app.command(cls=Command)
def export(
    run: Path = typer.Argument(None, metavar="RUN", help="A trained run folder."),
    arch: str = typer.Option(
        None,
        help=with_default(
            "Architecture to export with the supernet's weights.",
            "the pipeline's found architecture retrained from scratch, RUN/retrain/found, when there is one; "
            "else the most accurate of the front in RUN/search-ALGO",
        ),
    ),
    algo: str = typer.Option(
        None,
        help=with_default("Without --arch: whose front, when RUN holds several searches.", "the only one"),
    ),
    out: Path = typer.Option(None, help=with_default("Folder for model.pt and model.json.", "RUN/export")),
    program: bool = typer.Option(
        False, "--program", help="Also write model.pt2 (torch.export; raw pixels in [0, 1], plain PyTorch)."
    ),
    onnx: bool = typer.Option(
        False, "--onnx", help="Also write model.onnx (raw pixels in [0, 1]); needs pip install 'mixpath[onnx]'."
    ),
    calibrate: str = calibrate_option(" Supernet weights only."),
    device: str = typer.Option("auto", help=DEVICE_HELP),
    run_alias: Path = typer.Option(None, "--run", help=RUN_ALIAS_HELP),
) -> None:
    """Write a stand-alone model, its preprocessing and metrics in model.json: the pipeline's retrained model
    when RUN has one and no --arch is given, else an architecture with the supernet's weights (BN calibrated)."""
    from mixpath.pipeline import retrained_found
    from mixpath.retraining import front_entries
    from mixpath.workflow import export_architecture, export_retrained

    run = run_folder(run, run_alias)
    retrained = retrained_found(run) if arch is None and algo is None else None
    if retrained is not None:
        typer.echo(f"exporting the found architecture retrained from scratch in {retrained}")
        paths, metrics = export_retrained(retrained, out or run / "export", export_program=program, export_onnx=onnx)
    else:
        chosen = arch
        if chosen is None:
            _, entries = front_entries(run, algo)
            chosen = max(entries, key=lambda entry: entry.supernet_score).arch
        paths, metrics = export_architecture(
            run,
            chosen,
            out or run / "export",
            calibration=calibration_settings(calibrate),
            export_program=program,
            export_onnx=onnx,
            device=device,
        )
    echo_lines(metric_pairs(metrics))
    typer.echo("wrote " + ", ".join(str(p) for p in paths))


@app.command(cls=Command)
def retrain(
    run: Path | None = typer.Argument(
        None,
        metavar="RUN",
        help="A searched run folder: retrain every architecture of its search front into RUN/retrain/<n>-<digest>/, "
        "one after another, then write RUN/retrain/table.csv and table.json; run it again to resume. Or --arch.",
    ),
    arch: str = typer.Option(
        None, help=with_default("Architecture string to train from scratch, instead of RUN.", "none")
    ),
    algo: str = typer.Option(
        None, help=with_default("With RUN: whose front, when RUN holds several searches.", "the only one")
    ),
    space: str = typer.Option(None, help=with_default("Search space of --arch (RUN: the run's).", "fmnist-s1")),
    data: str = typer.Option(None, help=with_default(DATA_HELP, "fashion-mnist; with RUN the run's")),
    data_dir: str = typer.Option(None, help=DATA_DIR_HELP),
    epochs: int = typer.Option(None, help=with_default("Training epochs.", RECIPE["epochs"])),
    batch_size: int = typer.Option(None, help=with_default("Images per optimizer step.", RECIPE["batch_size"])),
    lr: float = typer.Option(
        None, help=with_default("Peak learning rate of SGD (cosine schedule to 0).", RECIPE["lr"])
    ),
    seed: int = typer.Option(0, help="Seed of initialisation, data order, augmentation and the validation split."),
    train_subset: int = typer.Option(None, help=with_default("Train on only this many training images.", "all")),
    out: Path = typer.Option(None, help=with_default("Results folder.", "runs/retrain; with RUN, RUN/retrain")),
    device: str = typer.Option("auto", help=DEVICE_HELP),
    run_alias: Path = typer.Option(None, "--run", "--from-front", help=RUN_ALIAS_HELP),
) -> None:
    """Train architectures from scratch with a standard recipe; each folder gets result.json, metrics.csv,
    curves.png and model.pt. A killed run continues when the same command is given again."""
    from mixpath.data import load_dataset
    from mixpath.device import resolve_device
    from mixpath.retraining import format_table, retrain_architecture, retrain_front
    from mixpath.spaces import get_space
    from mixpath.training.recipe import Recipe

    run = run_folder(run, run_alias, required=False)
    recipe = Recipe(**given(epochs=epochs, batch_size=batch_size, lr=lr))
    target = resolve_device(device)
    if (arch is None) == (run is None):
        raise MixPathError("give either --arch ARCH or a searched run folder RUN")
    if run is not None:
        if space is not None:
            raise MixPathError("a run's front is retrained in the run's own space; drop --space")
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
        )
        written = [root / "table.csv", root / "table.json"]
    else:
        if algo is not None:
            raise MixPathError("--algo chooses the search of RUN; drop it with --arch")
        the_space = get_space(space or "fmnist-s1")
        the_arch = the_space.parse(arch, the_space.max_m())
        dataset = load_dataset(data or "fashion-mnist", data_dir, split_seed=seed, train_subset=train_subset)
        folder = out or Path("runs/retrain")
        rows = [retrain_architecture(the_space, dataset, the_arch, recipe, folder, seed=seed, device=target)]
        written = [folder / name for name in ("result.json", "metrics.csv", "curves.png", "model.pt")]
    for line in format_table(rows):
        typer.echo(line)
    typer.echo("wrote " + ", ".join(str(path) for path in written))


@app.command(cls=Command)
def pipeline(
    run: Path | None = typer.Argument(
        None, metavar="RUN", help=with_default("Run folder for every stage.", "runs/demo")
    ),
    space: str = typer.Option(None, help=with_default("Search space (see `mixpath spaces`).", TRAIN["space"])),
    data: str = typer.Option(None, help=with_default(DATA_HELP, TRAIN["data"])),
    data_dir: str = typer.Option(None, help=DATA_DIR_HELP),
    epochs: int = typer.Option(
        None, help=with_default("Supernet epochs.", f"{TRAIN['epochs']}; quick: {QUICK.epochs}")
    ),
    m: int = typer.Option(None, help=with_default("Most paths per layer of the supernet.", TRAIN["m"])),
    train_subset: int = typer.Option(
        None, help=with_default("Train the supernet on only this many images.", f"all; quick: {QUICK.train_subset}")
    ),
    budget: int = typer.Option(
        None,
        help=with_default("Architectures the search scores.", f"{FULL.budget}; quick: {QUICK.budget}"),
    ),
    population: int = typer.Option(
        None,
        help=with_default("Architectures per search generation.", f"{FULL.population}; quick: {QUICK.population}"),
    ),
    max_flops: float = typer.Option(
        None,
        help=with_default(
            "FLOPs budget in M multiply-adds for the search and every baseline.",
            "the median FLOPs of architectures sampled from the space, printed at the start",
        ),
    ),
    retrain_epochs: int = typer.Option(
        None,
        help=with_default("Epochs of every retraining.", f"{FULL.retrain_epochs}; quick: {QUICK.retrain_epochs}"),
    ),
    retrain_subset: int = typer.Option(
        None,
        help=with_default("Retrain on only this many images.", f"all; quick: {QUICK.retrain_subset}"),
    ),
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
    seed: int = typer.Option(
        None, help=with_default("Seed of every stage (training, split, search, baselines, retraining).", TRAIN["seed"])
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue a killed pipeline in RUN."),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
    device: str = typer.Option("auto", help=DEVICE_HELP),
    run_alias: Path = typer.Option(None, "--run", help=RUN_ALIAS_HELP),
) -> None:
    """The whole job: train a supernet, search it with NSGA-II (accuracy vs FLOPs) under a FLOPs budget, then
    retrain the found architecture and three baselines of equal cost from scratch and compare them on the
    test split; writes the table, report.html and the found architecture's retrained model."""
    from mixpath.pipeline import comparison_lines, run_pipeline
    from mixpath.search import SearchConfig
    from mixpath.training import TrainConfig
    from mixpath.training.recipe import Recipe

    run = run_folder(run, run_alias, required=False) or Path("runs/demo")
    scale = QUICK if quick else FULL
    train_config = TrainConfig(
        **given(
            space=space,
            data=data,
            data_dir=data_dir,
            m=m,
            seed=seed,
            epochs=epochs if epochs is not None else scale.epochs,
            train_subset=train_subset if train_subset is not None else scale.train_subset,
        )
    )
    search_config = SearchConfig(
        budget=budget if budget is not None else scale.budget,
        population=population if population is not None else scale.population,
        seed=train_config.seed,
    )
    summary = run_pipeline(
        run,
        train_config,
        search_config,
        Recipe(epochs=retrain_epochs if retrain_epochs is not None else scale.retrain_epochs),
        max_flops=max_flops,
        retrain_subset=retrain_subset if retrain_subset is not None else scale.retrain_subset,
        calibration=calibration_settings(calib_size=scale.calib_size),
        resume=resume,
        allow_untrained=allow_untrained or quick,
        device=device,
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
            f"images, seed {retraining['seed']}, tested on {retraining['test_images']} images:",
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
