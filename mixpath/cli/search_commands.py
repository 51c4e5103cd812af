"""``mixpath evaluate``, ``search``, ``export``, ``retrain`` and ``pipeline``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from mixpath import distributed
from mixpath.cli import app
from mixpath.errors import MixPathError
from mixpath.pipeline import FULL, QUICK, comparison_lines, retrained_found, run_pipeline
from mixpath.search import SearchConfig, make_searcher
from mixpath.workflow import (
    EvalSettings,
    best_of_front,
    evaluate_architecture,
    export_architecture,
    export_retrained,
    search_supernet,
)

CALIBRATE_HELP = "BN post-calibration: exact (cumulative stats), ema (SPOS-style re-estimation) or none."
OBJECTIVES = ("accuracy", "flops", "params", "latency")


def _settings(calibrate: str, calib_size: int, calib_batches: int) -> EvalSettings:
    return EvalSettings(calibration=calibrate, calib_size=calib_size, calib_batches=calib_batches)


def _objectives(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    bad = [name for name in names if name not in OBJECTIVES]
    if bad or not names:
        raise MixPathError(f"unknown objective {bad[0] if bad else text!r}; choose from: {', '.join(OBJECTIVES)}")
    return names


def _constraints(max_flops: float | None, max_params: float | None, max_latency: float | None) -> dict[str, float]:
    limits = {"flops": max_flops, "params": max_params, "latency": max_latency}
    return {key: value for key, value in limits.items() if value is not None}


def _print_metrics(metrics: dict) -> None:
    for key, value in metrics.items():
        typer.echo(f"{key:>10}: {value:.4g}" if isinstance(value, float) else f"{key:>10}: {value}")


@app.command()
def evaluate(
    run: Path = typer.Argument(..., help="A trained run folder."),
    arch: str = typer.Option(..., help="Architecture string (or JSON) to score."),
    calibrate: str = typer.Option("exact", help=CALIBRATE_HELP),
    calib_size: int = typer.Option(2048, help="Training images used for exact calibration."),
    calib_batches: int = typer.Option(200, help="Batches for ema re-estimation."),
    device: str = typer.Option("auto"),
) -> None:
    """Score one architecture with inherited weights: validation accuracy, loss, FLOPs (M), params (M)."""
    _print_metrics(evaluate_architecture(run, arch, _settings(calibrate, calib_size, calib_batches), device))


@app.command()
def search(
    run: Path = typer.Argument(None, help="A trained run folder (omit with --benchmark)."),
    algo: str = typer.Option("nsga2", help="nsga2, evolution or random."),
    objectives: str = typer.Option("accuracy,flops", help="Comma-separated subset of accuracy,flops,params,latency."),
    budget: int = typer.Option(200, help="Architectures to evaluate."),
    population: int = typer.Option(20),
    max_flops: float = typer.Option(None, help="Constraint: at most this many M multiply-adds."),
    max_params: float = typer.Option(None, help="Constraint: at most this many M parameters."),
    max_latency: float = typer.Option(None, help="Constraint: at most this many ms (measured lookup table)."),
    seed: int = typer.Option(0),
    calibrate: str = typer.Option("exact", help=CALIBRATE_HELP),
    calib_size: int = typer.Option(2048),
    calib_batches: int = typer.Option(200),
    benchmark: str = typer.Option(None, help="Search a benchmark table instead of a supernet: nb201 (or nb101)."),
    benchmark_file: Path = typer.Option(None, help="nb101: path of nasbench_only108.tfrecord."),
    out: Path = typer.Option(None, help="Results folder (default RUN/search-ALGO or runs/BENCH-ALGO-sSEED)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the search saved in the results folder."),
    device: str = typer.Option("auto"),
) -> None:
    """Search for architectures: every evaluated one, the Pareto front and a plot go to the results folder."""
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
        settings = _settings(calibrate, calib_size, calib_batches)
        result, out = search_supernet(run, algo, config, settings=settings, out_dir=out, resume=resume, device=device)
    if not distributed.is_main():
        return
    best = best_of_front(result)
    typer.echo(f"evaluated {len(result.evaluated)} architectures, {len(result.front)} on the front")
    typer.echo(f"most accurate on the front: {result.space.format(best)}")
    typer.echo(f"results: {out}  plot: {out / 'front.png'}")


@app.command()
def export(
    run: Path = typer.Argument(..., help="A trained run folder."),
    arch: str = typer.Option(
        None,
        help="Architecture to export with the supernet's weights (default: the pipeline's found architecture "
        "retrained from scratch, RUN/retrain/found, when there is one; else the most accurate of RUN/search-nsga2).",
    ),
    out: Path = typer.Option(None, help="Folder for model.pt and model.json (default RUN/export)."),
    program: bool = typer.Option(
        False, "--program", help="Also write model.pt2 (torch.export; raw pixels in [0, 1], plain PyTorch)."
    ),
    onnx: bool = typer.Option(
        False, "--onnx", help="Also write model.onnx (raw pixels in [0, 1]); needs pip install 'mixpath[onnx]'."
    ),
    calibrate: str = typer.Option("exact", help=CALIBRATE_HELP + " Supernet weights only."),
    device: str = typer.Option("auto"),
) -> None:
    """Write a stand-alone model, its preprocessing and metrics in model.json: the pipeline's retrained model
    when RUN has one and no --arch is given, else an architecture with the supernet's weights (BN calibrated)."""
    retrained = retrained_found(run) if arch is None else None
    if retrained is not None:
        typer.echo(f"exporting the found architecture retrained from scratch in {retrained}")
        paths, metrics = export_retrained(retrained, out or run / "export", export_program=program, export_onnx=onnx)
    else:
        if arch is None:
            front = run / "search-nsga2" / "front.json"
            if not front.exists():
                raise MixPathError(f"no --arch given and no search front at {front}: run `mixpath search {run}` first")
            entries = json.loads(front.read_text())
            arch = max(entries, key=lambda e: e["metrics"]["accuracy"])["arch"]
        paths, metrics = export_architecture(
            run,
            arch,
            out or run / "export",
            settings=EvalSettings(calibration=calibrate),
            export_program=program,
            export_onnx=onnx,
            device=device,
        )
    _print_metrics(metrics)
    typer.echo("wrote " + ", ".join(str(p) for p in paths))


@app.command()
def retrain(
    arch: str = typer.Option(None, help="Architecture string to train from scratch (or --from-front)."),
    from_front: Path = typer.Option(
        None,
        "--from-front",
        help="A searched run folder: retrain every architecture of its search front into RUN/retrain/<n>-<digest>/, "
        "one after another, then write RUN/retrain/table.csv and table.json. Run it again to resume.",
    ),
    algo: str = typer.Option(None, help="With --from-front: whose front, when RUN holds several searches."),
    space: str = typer.Option(None, help="Search space of --arch (default fmnist-s1); --from-front uses the run's."),
    data: str = typer.Option(None, help="Dataset (default fashion-mnist; with --from-front the run's)."),
    data_dir: str = typer.Option(None),
    epochs: int = typer.Option(10),
    batch_size: int = typer.Option(96),
    lr: float = typer.Option(0.05),
    seed: int = typer.Option(0),
    train_subset: int = typer.Option(None, help="Train on only this many images (default: the whole split)."),
    out: Path = typer.Option(None, help="Results folder (default runs/retrain; RUN/retrain with --from-front)."),
    device: str = typer.Option("auto"),
) -> None:
    """Train architectures from scratch with a standard recipe; each folder gets result.json, metrics.csv,
    curves.png and model.pt. A killed run continues when the same command is given again."""
    from mixpath.data import load_dataset
    from mixpath.device import resolve_device
    from mixpath.retraining import format_table, retrain_architecture, retrain_front
    from mixpath.spaces import get_space
    from mixpath.training.standalone import Recipe

    recipe = Recipe(epochs=epochs, batch_size=batch_size, lr=lr)
    target = resolve_device(device)
    if (arch is None) == (from_front is None):
        raise MixPathError("give either --arch ARCH or --from-front RUN")
    if from_front is not None:
        if space is not None:
            raise MixPathError("--from-front retrains in the run's own space; drop --space")
        root, rows = retrain_front(
            from_front,
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
            raise MixPathError("--algo chooses the search of --from-front; drop it with --arch")
        the_space = get_space(space or "fmnist-s1")
        the_arch = the_space.parse(arch, the_space.max_m())
        dataset = load_dataset(data or "fashion-mnist", data_dir, split_seed=seed, train_subset=train_subset)
        folder = out or Path("runs/retrain")
        rows = [retrain_architecture(the_space, dataset, the_arch, recipe, folder, seed=seed, device=target)]
        written = [folder / name for name in ("result.json", "metrics.csv", "curves.png", "model.pt")]
    for line in format_table(rows):
        typer.echo(line)
    typer.echo("wrote " + ", ".join(str(path) for path in written))


@app.command()
def pipeline(
    run: Path = typer.Option(Path("runs/demo"), "--run", help="Run folder for every stage."),
    space: str = typer.Option("fmnist-s1"),
    data: str = typer.Option("fashion-mnist"),
    data_dir: str = typer.Option(None),
    epochs: int = typer.Option(None, help=f"Supernet epochs (default: the training default; quick: {QUICK.epochs})."),
    m: int = typer.Option(4),
    train_subset: int = typer.Option(
        None, help=f"Train the supernet on only this many images (quick: {QUICK.train_subset})."
    ),
    budget: int = typer.Option(None, help=f"Architectures the search scores ({FULL.budget}; quick: {QUICK.budget})."),
    population: int = typer.Option(
        None, help=f"Architectures per search generation ({FULL.population}; quick: {QUICK.population})."
    ),
    max_flops: float = typer.Option(
        None,
        help="FLOPs budget in M multiply-adds for the search and every baseline (default: the median FLOPs of "
        "architectures sampled from the space, printed at the start).",
    ),
    retrain_epochs: int = typer.Option(
        None, help=f"Epochs of every retraining ({FULL.retrain_epochs}; quick: {QUICK.retrain_epochs})."
    ),
    retrain_subset: int = typer.Option(
        None, help=f"Retrain on only this many images (default all; quick: {QUICK.retrain_subset})."
    ),
    quick: bool = typer.Option(
        False,
        "--quick",
        help=f"A smoke run: supernet {QUICK.epochs} epoch on {QUICK.train_subset} images, search {QUICK.budget} "
        f"architectures in generations of {QUICK.population} with BN calibration on {QUICK.calib_size} images, "
        f"each retraining {QUICK.retrain_epochs} epoch on {QUICK.retrain_subset} images. Options given win.",
    ),
    seed: int = typer.Option(0),
    resume: bool = typer.Option(False, "--resume", help="Continue a killed pipeline in --run."),
    device: str = typer.Option("auto"),
) -> None:
    """The whole job: train a supernet, search it with NSGA-II (accuracy vs FLOPs) under a FLOPs budget, then
    retrain the found architecture and three baselines of equal cost from scratch and compare them on the
    test split; writes the table, report.html and the found architecture's retrained model."""
    from mixpath.training import TrainConfig
    from mixpath.training.standalone import Recipe

    scale = QUICK if quick else FULL
    epochs = epochs if epochs is not None else scale.epochs
    train_config = TrainConfig(
        space=space,
        data=data,
        data_dir=data_dir,
        m=m,
        seed=seed,
        train_subset=train_subset if train_subset is not None else scale.train_subset,
        **({"epochs": epochs} if epochs is not None else {}),
    )
    search_config = SearchConfig(
        budget=budget if budget is not None else scale.budget,
        population=population if population is not None else scale.population,
        seed=seed,
    )
    summary = run_pipeline(
        run,
        train_config,
        search_config,
        Recipe(epochs=retrain_epochs if retrain_epochs is not None else scale.retrain_epochs),
        max_flops=max_flops,
        retrain_subset=retrain_subset if retrain_subset is not None else scale.retrain_subset,
        settings=EvalSettings(calib_size=scale.calib_size),
        resume=resume,
        device=device,
    )
    search, retraining, files = summary["search"], summary["retraining"], summary["files"]
    typer.echo(f"FLOPs budget: {summary['budget']['max_flops']:.2f} M multiply-adds ({summary['budget']['rule']})")
    typer.echo(f"supernet: {summary['training']}")
    typer.echo(f"search: {search['evaluated']} architectures scored, {search['front']} on the front within the budget")
    typer.echo(
        f"retrained from scratch, {retraining['recipe']['epochs']} epoch(s) on {retraining['train_images']} images, "
        f"seed {retraining['seed']}, tested on {retraining['test_images']} images:"
    )
    for line in comparison_lines(summary["rows"]):
        typer.echo(f"  {line}")
    typer.echo(f"verdict: {summary['verdict']}")
    typer.echo(f"table: {files['table']}  report: {files['report']}")
    typer.echo(f"model: {files['model']} (model.pt2 takes raw pixels; model.json says how)")
    typer.echo(f"search results: {search['results']}  seconds: {summary['seconds']}")
