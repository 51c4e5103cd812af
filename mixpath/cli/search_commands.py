"""``mixpath evaluate``, ``search``, ``export``, ``retrain`` and ``pipeline``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from mixpath import distributed
from mixpath.cli import app
from mixpath.errors import MixPathError
from mixpath.search import SearchConfig, make_searcher
from mixpath.workflow import (
    EvalSettings,
    best_of_front,
    evaluate_architecture,
    export_architecture,
    run_pipeline,
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
    arch: str = typer.Option(None, help="Architecture to export (default: most accurate of RUN/search-nsga2)."),
    out: Path = typer.Option(None, help="Folder for model.pt (default RUN/export)."),
    program: bool = typer.Option(False, "--program", help="Also write model.pt2 (torch.export, plain PyTorch)."),
    calibrate: str = typer.Option("exact", help=CALIBRATE_HELP),
    device: str = typer.Option("auto"),
) -> None:
    """Write a stand-alone model of an architecture with the supernet's weights (BN calibrated)."""
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
        device=device,
    )
    _print_metrics(metrics)
    typer.echo("wrote " + ", ".join(str(p) for p in paths))


@app.command()
def retrain(
    arch: str = typer.Option(..., help="Architecture string to train from scratch."),
    space: str = typer.Option("fmnist-s1"),
    data: str = typer.Option("fashion-mnist"),
    data_dir: str = typer.Option(None),
    epochs: int = typer.Option(10),
    batch_size: int = typer.Option(96),
    lr: float = typer.Option(0.05),
    seed: int = typer.Option(0),
    train_subset: int = typer.Option(None),
    out: Path = typer.Option(Path("runs/retrain"), help="Folder for the checkpoint, result JSON and model.pt."),
    device: str = typer.Option("auto"),
) -> None:
    """Train an architecture from scratch with a standard recipe and report its test accuracy."""
    from mixpath.data import load_dataset
    from mixpath.device import resolve_device
    from mixpath.export import export_model
    from mixpath.io import write_json
    from mixpath.spaces import get_space
    from mixpath.supernet import build_standalone
    from mixpath.training.standalone import Recipe, init_seed, train_standalone

    the_space = get_space(space)
    the_arch = the_space.parse(arch, the_space.max_m())
    dataset = load_dataset(data, data_dir, split_seed=seed, train_subset=train_subset)
    init_seed(seed)
    model = build_standalone(the_space, the_arch)
    recipe = Recipe(epochs=epochs, batch_size=batch_size, lr=lr)
    result = train_standalone(
        model, dataset, recipe, seed=seed, device=resolve_device(device), checkpoint_path=out / "retrain.pt"
    )
    result = {"arch": the_space.format(the_arch), "space": space, "data": data, "seed": seed, **result}
    write_json(out / "retrain.json", result)
    export_model(model, the_space, the_arch, out, metrics={k: result[k] for k in ("val_acc", "test_acc")})
    typer.echo(f"val accuracy {result['val_acc']}%, test accuracy {result['test_acc']}% after {epochs} epochs")
    typer.echo(f"wrote {out / 'retrain.json'} and {out / 'model.pt'}")


@app.command()
def pipeline(
    run: Path = typer.Option(Path("runs/demo"), "--run", help="Run folder for every stage."),
    space: str = typer.Option("fmnist-s1"),
    data: str = typer.Option("fashion-mnist"),
    data_dir: str = typer.Option(None),
    epochs: int = typer.Option(1),
    m: int = typer.Option(4),
    train_subset: int = typer.Option(None, help="Train the supernet on only this many images."),
    budget: int = typer.Option(80, help="Architectures the search evaluates."),
    population: int = typer.Option(16),
    seed: int = typer.Option(0),
    resume: bool = typer.Option(False, "--resume", help="Continue a killed pipeline in --run."),
    device: str = typer.Option("auto"),
) -> None:
    """The whole job: train a supernet, search it with NSGA-II (accuracy vs FLOPs), export the best."""
    from mixpath.training import TrainConfig

    train_config = TrainConfig(
        space=space, data=data, data_dir=data_dir, epochs=epochs, m=m, seed=seed, train_subset=train_subset
    )
    search_config = SearchConfig(budget=budget, population=population, seed=seed)
    summary = run_pipeline(run, train_config, search_config, resume=resume, device=device)
    best = summary["best"]
    typer.echo(f"supernet: {summary['training']}")
    typer.echo(f"search: {summary['search']['evaluated']} evaluated, {summary['search']['front']} on the front")
    typer.echo(f"best: {best['arch']}")
    typer.echo(
        f"      val acc {best['accuracy']:.2f}%, {best['flops']:.2f} M multiply-adds, {best['params']:.3f} M params"
    )
    typer.echo(f"results: {summary['results']}  plot: {summary['plot']}  model: {summary['export'][0]}")
    typer.echo(f"seconds: {summary['seconds']}")
