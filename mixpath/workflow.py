"""The stages of one-shot NAS as plain functions over a run folder: what the CLI commands call.

train_supernet(config, "runs/x")                        # stage 1 (mixpath.training)
result = search_supernet("runs/x", "nsga2", SearchConfig(budget=200))
export_architecture("runs/x", result.front[0].arch, "runs/x/export")
run_pipeline("runs/demo")                               # all three with the defaults
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mixpath import distributed
from mixpath.evaluation import CostModel, LatencyTable, SupernetEvaluator, build_latency_table, evaluate_standalone
from mixpath.evaluation.sharded import ShardedEvaluator
from mixpath.export import Preprocessing, export_model, require_onnx
from mixpath.io import write_json
from mixpath.search import Evaluator, SearchConfig, SearchResult, make_searcher
from mixpath.spaces import Architecture
from mixpath.training import Run, TrainConfig, load_run, train_supernet

LATENCY_FILE = "latency_table.json"


@dataclass(frozen=True)
class EvalSettings:
    """How candidates are scored: BN post-calibration mode and sizes (see mixpath.evaluation)."""

    calibration: str = "exact"
    calib_size: int = 2048
    calib_batches: int = 200


def cost_model_for(run: Run, with_latency: bool, progress: bool = False) -> CostModel:
    """FLOPs/params tables for the run's space; with latency, a lookup table measured once per run folder."""
    table = None
    if with_latency:
        path = run.run_dir / LATENCY_FILE
        if path.exists():
            table = LatencyTable.load(path)
        else:
            table = build_latency_table(run.space, run.config.m, device=run.device, progress=progress)
            table.save(path)
    return CostModel(run.space, latency=table)


def supernet_evaluator(run: Run, settings: EvalSettings, cost_model: CostModel | None = None) -> SupernetEvaluator:
    return SupernetEvaluator(
        run.supernet,
        run.dataset,
        calibration=settings.calibration,
        calib_size=settings.calib_size,
        calib_batches=settings.calib_batches,
        cache_path=run.run_dir / "eval_cache.jsonl",
        cost_model=cost_model,
    )


def evaluate_architecture(
    run_dir: Path | str, arch_text: str, settings: EvalSettings = EvalSettings(), device: str = "auto"
) -> dict[str, Any]:
    """Score one architecture of a trained run: accuracy and loss on the validation split, FLOPs, params."""
    run = load_run(run_dir, device)
    arch = run.space.parse(arch_text, run.config.m)
    metrics = supernet_evaluator(run, settings).evaluate([arch])[0]
    return {"arch": run.space.format(arch), **metrics}


def search_supernet(
    run_dir: Path | str,
    algo: str,
    config: SearchConfig,
    *,
    settings: EvalSettings = EvalSettings(),
    out_dir: Path | str | None = None,
    resume: bool = False,
    progress: bool = True,
    device: str = "auto",
) -> tuple[SearchResult, Path]:
    """Search a trained supernet; results, front and plot go to ``out_dir`` (default RUN/search-ALGO).

    Under torchrun every process runs the same search and scores its share of each generation
    (``ShardedEvaluator``); all reach the same result, and only rank 0 writes the results and plot.
    """
    run = load_run(run_dir, distributed.setup(device))
    out = Path(out_dir) if out_dir is not None else run.run_dir / f"search-{algo}"
    wants_latency = "latency" in config.objectives or "latency" in config.constraints
    costs = cost_model_for(run, wants_latency, progress)
    evaluator: Evaluator = supernet_evaluator(run, settings, costs)
    if distributed.world_size() > 1:
        evaluator = ShardedEvaluator(evaluator)
    result = make_searcher(algo).run(
        run.space,
        run.config.m,
        evaluator,
        config,
        cost_model=costs,
        state_dir=out,
        resume=resume,
        progress=progress and distributed.is_main(),
    )
    if distributed.is_main():
        result.save(out)
        result.plot(out / "front.png")
    return result, out


def best_of_front(result: SearchResult) -> Architecture:
    """The most accurate architecture on the front (the front trades it against cost)."""
    return max(result.front, key=lambda item: item.metrics["accuracy"]).arch


def export_architecture(
    run_dir: Path | str,
    arch: Architecture | str,
    out_dir: Path | str,
    *,
    settings: EvalSettings = EvalSettings(),
    export_program: bool = False,
    export_onnx: bool = False,
    device: str = "auto",
) -> tuple[list[Path], dict[str, Any]]:
    """Extract ``arch`` from the run's supernet, calibrate its BNs, score it and write it as a stand-alone model
    with the run's preprocessing (model.pt2 and model.onnx take raw pixels; see mixpath.export)."""
    if export_onnx:
        require_onnx()
    run = load_run(run_dir, device)
    if isinstance(arch, str):
        arch = run.space.parse(arch, run.config.m)
    model = run.supernet.extract(arch)
    metrics = evaluate_standalone(
        model,
        run.dataset,
        calibration=settings.calibration,
        calib_size=settings.calib_size,
        calib_batches=settings.calib_batches,
    )
    metrics |= CostModel(run.space)(arch)
    paths = export_model(
        model,
        run.space,
        arch,
        out_dir,
        preprocessing=Preprocessing.of(run.dataset),
        bn_policy=run.config.bn_policy,
        metrics=metrics,
        export_program=export_program,
        export_onnx=export_onnx,
    )
    return paths, metrics


def run_pipeline(
    run_dir: Path | str,
    train_config: TrainConfig = TrainConfig(),
    search_config: SearchConfig = SearchConfig(budget=80, population=16),
    *,
    algo: str = "nsga2",
    settings: EvalSettings = EvalSettings(),
    resume: bool = False,
    progress: bool = True,
    device: str = "auto",
) -> dict[str, Any]:
    """Train -> search -> export with one call; every stage resumes where a killed pipeline stopped."""
    run_dir = Path(run_dir)
    started = time.perf_counter()
    resume_training = resume and (run_dir / "config.json").exists()
    trained = train_supernet(
        None if resume_training else train_config, run_dir, resume=resume_training, device=device, progress=progress
    )
    trained_at = time.perf_counter()
    result, search_dir = search_supernet(
        run_dir, algo, search_config, settings=settings, resume=resume, progress=progress, device=device
    )
    searched_at = time.perf_counter()
    best = best_of_front(result)
    paths, metrics = export_architecture(run_dir, best, run_dir / "export", settings=settings, device=device)
    summary = {
        "run": str(run_dir),
        "training": trained.last,
        "search": {"algorithm": algo, "evaluated": len(result.evaluated), "front": len(result.front)},
        "best": {"arch": result.space.format(best), **metrics},
        "results": str(search_dir),
        "plot": str(search_dir / "front.png"),
        "export": [str(p) for p in paths],
        "seconds": {
            "training": round(trained_at - started, 1),
            "search": round(searched_at - trained_at, 1),
            "export": round(time.perf_counter() - searched_at, 1),
        },
    }
    write_json(run_dir / "pipeline.json", summary)
    return summary
