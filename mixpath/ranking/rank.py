"""``rank``: how well a trained supernet ranks ground-truth architectures, beside trivial predictors.

A supernet ranking is worth something only where it beats what costs nothing: the same metrics are
always computed for parameter count and FLOPs on the same architectures (bigger = predicted better).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mixpath.errors import MixPathError
from mixpath.evaluation import CalibrationSettings
from mixpath.io import write_json
from mixpath.ranking.groundtruth import TARGETS, GroundTruthRow, load_ground_truth
from mixpath.ranking.metrics import DEFAULT_KS, Estimate, predictor_metrics
from mixpath.ranking.scoring import supernet_scores
from mixpath.runlock import locking_run_folder

RANKING_DIR = "ranking"


def rank_scores(
    scores: dict[str, float],
    ground_truth: dict[str, GroundTruthRow],
    *,
    target: str = "test",
    ks: tuple[int | float, ...] = DEFAULT_KS,
    resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Metrics of ``scores`` (arch -> one-shot accuracy) and of FLOPs and params against the ground
    truth's ``target`` accuracy, on the architectures both hold; JSON-able, with per-arch rows."""
    if target not in TARGETS:
        raise MixPathError(f"unknown ground-truth target {target!r}; choose one of: {', '.join(TARGETS)}")
    archs = sorted(set(scores) & set(ground_truth))
    if len(archs) < 3:
        raise MixPathError(f"only {len(archs)} ground-truth architectures can be scored by this supernet; need >= 3")
    truth = {a: ground_truth[a].accuracy(target) for a in archs}
    predictors = {
        "supernet": {a: scores[a] for a in archs},
        "params": {a: ground_truth[a].params for a in archs},
        "flops": {a: ground_truth[a].flops for a in archs},
    }
    metrics = predictor_metrics(predictors, truth, ks=ks, resamples=resamples, seed=seed)
    return {
        "target": f"stand-alone {target} accuracy",
        "n_archs": len(archs),
        "bootstrap": {"resamples": resamples, "seed": seed, "level": 0.95},
        "metrics": {name: {key: est.to_json() for key, est in m.items()} for name, m in metrics.items()},
        "archs": [
            {
                "arch": a,
                "supernet_acc": round(scores[a], 3),
                "standalone_acc": truth[a],
                "flops": ground_truth[a].flops,
                "params": ground_truth[a].params,
            }
            for a in archs
        ],
    }


def estimate_of(result: dict[str, Any], predictor: str, metric: str) -> Estimate:
    """An ``Estimate`` back from a ``rank_scores`` result (None in JSON = undefined)."""
    entry = result["metrics"][predictor].get(metric)
    if entry is None:
        return Estimate(float("nan"), float("nan"), float("nan"))
    return Estimate(*(float("nan") if entry[key] is None else entry[key] for key in ("value", "low", "high")))


@locking_run_folder
def rank_run(
    run_dir: Path | str,
    ground_truth: Path | str,
    *,
    calibration: CalibrationSettings = CalibrationSettings(),
    target: str = "test",
    resamples: int = 2000,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = False,
) -> dict[str, Any]:
    """Score every ground-truth architecture with the run's supernet (cached, so resumable), compute the
    metrics and write them to ``RUN/ranking/ranking_<calibration mode>.json``; return the result. The run
    folder is locked meanwhile (``mixpath.runlock``): its scores cache and results are written there."""
    rows = load_ground_truth(ground_truth)
    if len(rows) < 3:  # the same check as rank_scores', before anything is scored
        raise MixPathError(f"{ground_truth} holds {len(rows)} architectures; ranking needs >= 3")
    scores = supernet_scores(run_dir, list(rows), calibration=calibration, device=device, progress=progress)
    result = rank_scores(scores, rows, target=target, resamples=resamples, seed=seed)
    result = {"run": str(run_dir), "ground_truth": str(ground_truth), "calibration": calibration.mode, **result}
    write_json(Path(run_dir) / RANKING_DIR / f"ranking_{calibration.mode}.json", result)
    return result
