"""Scoring architectures: BN post-calibration, validation accuracy with a cache, and cost objectives.

Score architectures of a trained supernet (what ``mixpath evaluate RUN --arch ARCH`` does)::

    from mixpath.evaluation import CalibrationSettings, CostModel, SupernetEvaluator, build_latency_table
    from mixpath.training import load_run

    run = load_run("runs/x")
    evaluator = SupernetEvaluator(run.supernet, run.dataset, calibration=CalibrationSettings("exact", size=2048),
                                  cache_path=run.run_dir / "eval_cache.jsonl")   # modes: exact, ema, none
    arch = run.space.parse("e6:k3+k5-e3:k7-...", run.supernet.m)
    metrics = evaluator.evaluate([arch])[0]   # accuracy (%, validation split), loss, flops (M), params (M)

Costs alone, and a latency lookup table measured on this device (saved in the run folder)::

    table = build_latency_table(run.space, run.supernet.m, device="cpu", progress=True)
    table.save(run.run_dir / "latency_table.json")       # LatencyTable.load(path) reads it back
    costs = CostModel(run.space, latency=table)           # costs(arch) -> flops, params, latency (ms)
    evaluator = SupernetEvaluator(run.supernet, run.dataset, cost_model=costs)  # also a search cost_model

A stand-alone (exported or retrained) model, calibrated and scored the same way::

    from mixpath.evaluation import evaluate_standalone
    evaluate_standalone(run.supernet.extract(arch), run.dataset)                  # == the supernet's score
    evaluate_standalone(model, dataset, calibration=CalibrationSettings("none"), split="test")  # final report only
"""

from mixpath.evaluation.cache import EvalCache
from mixpath.evaluation.calibration import (
    CALIBRATION_MODES,
    CalibrationSettings,
    calibrate_bn,
    calibration_images,
)
from mixpath.evaluation.costs import CostModel, count_macs, count_params
from mixpath.evaluation.evaluator import SupernetEvaluator, evaluate_standalone
from mixpath.evaluation.latency import LatencyTable, build_latency_table, layer_choices, measure_latency
from mixpath.evaluation.layerwise import LayerParts, Part, layer_parts, register_layer_parts
from mixpath.evaluation.scoring import score

__all__ = [
    "CALIBRATION_MODES",
    "CalibrationSettings",
    "CostModel",
    "EvalCache",
    "LatencyTable",
    "LayerParts",
    "Part",
    "SupernetEvaluator",
    "build_latency_table",
    "calibrate_bn",
    "calibration_images",
    "count_macs",
    "count_params",
    "evaluate_standalone",
    "layer_choices",
    "layer_parts",
    "measure_latency",
    "register_layer_parts",
    "score",
]
