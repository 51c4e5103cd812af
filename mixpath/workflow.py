"""The stages of one-shot NAS as plain functions over a run folder: what the CLI commands call.

train_supernet(config, "runs/x")                        # stage 1 (mixpath.training)
result = search_supernet("runs/x", "nsga2", SearchConfig(budget=200))
export_architecture("runs/x", result.front[0].arch, "runs/x/export")   # inherited weights
export_retrained("runs/x/retrain/found", "runs/x/export")           # or a model retrained from scratch

``mixpath.pipeline.run_pipeline`` chains them, with retraining against baselines, into the whole job.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from torch import nn

from mixpath import distributed
from mixpath.baselines import check_constraints
from mixpath.errors import MixPathError
from mixpath.evaluation import (
    CalibrationSettings,
    CostModel,
    LatencyTable,
    SupernetEvaluator,
    build_latency_table,
    evaluate_standalone,
)
from mixpath.evaluation.latency import RUN_FILE as LATENCY_FILE
from mixpath.evaluation.sharded import ShardedEvaluator
from mixpath.export import Preprocessing, export_model, load_exported, require_onnx
from mixpath.io import read_json
from mixpath.kernels.runtime import waiting_follows_load
from mixpath.runlock import locking_run_folder, run_lock
from mixpath.search import EvaluatedArch, Evaluator, SearchConfig, SearchResult, make_searcher
from mixpath.search.learned import LearnedSearcher
from mixpath.spaces import Architecture
from mixpath.training import Run, load_run

CACHE_FILE = "eval_cache.jsonl"


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


def supernet_evaluator(
    run: Run, calibration: CalibrationSettings, cost_model: CostModel | None = None
) -> SupernetEvaluator:
    """The run's evaluator, with its cache in the run folder (``eval_cache.jsonl``)."""
    return SupernetEvaluator(
        run.supernet, run.dataset, calibration=calibration, cache_path=run.run_dir / CACHE_FILE, cost_model=cost_model
    )


@locking_run_folder
def evaluate_architecture(
    run_dir: Path | str,
    arch_text: str,
    calibration: CalibrationSettings = CalibrationSettings(),
    device: str = "auto",
) -> dict[str, Any]:
    """Score one architecture of a trained run: accuracy and loss on the validation split, FLOPs, params.

    The run folder is locked while it loads the run and appends to its evaluation cache (``mixpath.runlock``)."""
    run = load_run(run_dir, device)
    arch = run.space.parse(arch_text, run.config.m)
    metrics = supernet_evaluator(run, calibration).evaluate([arch])[0]
    return {"arch": run.space.format(arch), **metrics}


@waiting_follows_load()  # OpenMP threads sleep while other jobs share the cores
def search_supernet(
    run_dir: Path | str,
    algo: str,
    config: SearchConfig,
    *,
    calibration: CalibrationSettings = CalibrationSettings(),
    out_dir: Path | str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    device: str = "auto",
) -> tuple[SearchResult, Path]:
    """Search a trained supernet; results, front and plot go to ``out_dir`` (default RUN/search-ALGO).

    The run folder and the results folder are locked for the search (``mixpath.runlock``). A results folder
    holding an earlier search is continued with ``resume=True`` and replaced only with ``overwrite=True``.
    A FLOPs or params constraint that no architecture of the space meets fails before anything is scored.

    Under torchrun every process runs the same search and scores its share of each generation
    (``ShardedEvaluator``); all reach the same result, and only rank 0 writes the results and plot.
    """
    target = distributed.setup(device)
    out = search_folder(run_dir, algo, out_dir)
    with contextlib.ExitStack() as held:
        for folder in (Path(run_dir), out):
            distributed.run_on_main(functools.partial(lambda f: held.enter_context(run_lock(f)), folder))
        run = load_run(run_dir, target)
        space = run.search_space  # the run's space, shrunk to its surviving ops when it was trained shrinking
        check_constraints(space, config.constraints, CostModel(space))
        wants_latency = "latency" in config.objectives or "latency" in config.constraints
        costs = cost_model_for(run, wants_latency, progress)
        evaluator: Evaluator = supernet_evaluator(run, calibration, costs)
        if distributed.world_size() > 1:
            evaluator = ShardedEvaluator(evaluator)
        searcher = LearnedSearcher.from_run(run_dir) if algo == LearnedSearcher.name else make_searcher(algo)
        result = searcher.run(
            space,
            run.config.m,
            evaluator,
            config,
            cost_model=costs,
            state_dir=out,
            resume=resume,
            overwrite=overwrite,
            progress=progress and distributed.is_main(),
        )
        if distributed.is_main():
            result.save(out)
            result.plot(out / "front.png")
    return result, out


def search_folder(run_dir: Path | str, algo: str, out_dir: Path | str | None = None) -> Path:
    """Where a search of ``run_dir`` with ``algo`` keeps its results: ``out_dir``, by default RUN/search-ALGO."""
    return Path(out_dir) if out_dir is not None else Path(run_dir) / f"search-{algo}"


def best_of_front(result: SearchResult) -> Architecture:
    """The most accurate architecture on the front (the front trades it against cost)."""
    return max(result.front, key=lambda item: item.metrics["accuracy"]).arch


def choose_under_budget(front: Sequence[EvaluatedArch], max_flops: float) -> EvaluatedArch:
    """The most accurate front entry with at most ``max_flops`` M multiply-adds (on a front accuracy grows
    with cost, so without a budget "most accurate" mostly means "largest")."""
    fitting = [item for item in front if item.metrics["flops"] <= max_flops]
    if not fitting:
        smallest = f"its smallest has {min(item.metrics['flops'] for item in front):.3f} M" if front else "it is empty"
        raise MixPathError(
            f"no architecture on the search front fits the FLOPs budget of {max_flops:g} M multiply-adds ({smallest})"
        )
    return max(fitting, key=lambda item: item.metrics["accuracy"])


def export_architecture(
    run_dir: Path | str,
    arch: Architecture | str,
    out_dir: Path | str,
    *,
    calibration: CalibrationSettings = CalibrationSettings(),
    export_program: bool = False,
    export_onnx: bool = False,
    overwrite: bool = False,
    device: str = "auto",
) -> tuple[list[Path], dict[str, Any]]:
    """Extract ``arch`` from the run's supernet, calibrate its BNs, score it and write it as a stand-alone model
    with the run's preprocessing (model.pt2 and model.onnx take raw pixels; see mixpath.export). An earlier
    export in ``out_dir`` is replaced only with ``overwrite=True``.

    The run folder and ``out_dir`` are both locked while it runs (``mixpath.runlock``): ``out_dir`` may lie
    outside the run, where another export could be writing the same files."""
    with run_lock(run_dir), run_lock(out_dir):
        check_export_target(out_dir, overwrite)
        if export_onnx:
            require_onnx()
        run = load_run(run_dir, device)
        if isinstance(arch, str):
            arch = run.space.parse(arch, run.config.m)
        model: nn.Module = cast(Any, run.supernet).extract(arch)  # every family's supernet can extract
        metrics = evaluate_standalone(model, run.dataset, calibration=calibration)
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


def export_retrained(
    folder: Path | str,
    out_dir: Path | str,
    *,
    export_program: bool = False,
    export_onnx: bool = False,
    overwrite: bool = False,
) -> tuple[list[Path], dict[str, Any]]:
    """Write the model retrained from scratch in ``folder`` (a ``mixpath.retraining`` folder) as an export into
    ``out_dir``: its own trained weights and BN statistics, its data's preprocessing, and metrics holding its
    validation and test accuracy, FLOPs and params. This, not the supernet's inherited weights, is the model
    to deploy once an architecture has been retrained. An earlier export in ``out_dir`` is replaced only with
    ``overwrite=True``. ``folder`` and ``out_dir`` are locked as in ``export_architecture`` (a retraining
    holds the lock of ``folder`` while it writes there)."""
    folder = Path(folder)
    with run_lock(folder), run_lock(out_dir):
        check_export_target(out_dir, overwrite)
        if export_onnx:
            require_onnx()
        model, space, arch = load_exported(folder / "model.pt")
        meta = read_json(folder / "model.json")
        try:
            preprocessing = Preprocessing(tuple(meta["mean"]), tuple(meta["std"]), tuple(meta["class_names"]))
            metrics = {**meta["metrics"], **CostModel(space)(arch)}
            bn_policy = meta["bn_policy"]
        except (KeyError, TypeError) as err:
            raise MixPathError(f"{folder / 'model.json'} is not an export's metadata (missing {err})") from None
        paths = export_model(
            model,
            space,
            arch,
            out_dir,
            preprocessing=preprocessing,
            bn_policy=bn_policy,
            metrics=metrics,
            export_program=export_program,
            export_onnx=export_onnx,
        )
    return paths, metrics


def check_export_target(out_dir: Path | str, overwrite: bool) -> None:
    """Refuse to write an export over an earlier one (its model.pt) unless ``overwrite``."""
    earlier = Path(out_dir) / "model.pt"
    if not overwrite and (earlier.exists() or earlier.is_symlink()):
        raise MixPathError(
            f"{out_dir} already holds an export ({earlier}): --overwrite replaces it, or --out elsewhere"
        )
