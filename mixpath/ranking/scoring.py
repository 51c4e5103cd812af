"""One-shot scores of ground-truth architectures: a trained supernet's validation accuracy per architecture.

Scores go through ``mixpath.evaluation.SupernetEvaluator`` with its cache in ``RUN/ranking/scores.jsonl``
(keyed by weights, images and calibration settings), so an interrupted ranking resumes without scoring
anything twice. Each calibration mode loads the run afresh: calibrating overwrites BN statistics in the
supernet, and ``none`` must see the statistics from training.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from mixpath.errors import MixPathError
from mixpath.evaluation import CalibrationSettings, SupernetEvaluator
from mixpath.spaces import Architecture
from mixpath.training import load_run

log = logging.getLogger(__name__)

SCORES_FILE = "scores.jsonl"
MEASURES = ("accuracy", "loss")


def scorable(archs: Sequence[str], space, m: int) -> list[tuple[str, Architecture]]:
    """The architectures (string, parsed) a supernet with at most ``m`` paths per layer can score."""
    parsed = [(text, space.parse(text, space.max_m())) for text in archs]
    return [(text, arch) for text, arch in parsed if max(arch.path_counts) <= m]


def supernet_scores(
    run_dir: Path | str,
    archs: Sequence[str],
    *,
    calibration: CalibrationSettings = CalibrationSettings(),
    device: str = "cpu",
    progress: bool = False,
    measure: str = "accuracy",
) -> dict[str, float]:
    """Validation accuracy (percent) of every architecture in ``archs`` that the run's supernet can hold
    (single-path supernets skip multi-path architectures), after BN post-calibration as ``calibration`` says.
    ``measure="loss"``: the negated mean validation cross-entropy instead, so that higher is better as with
    accuracy (accuracy and loss come from one scoring pass and are cached together)."""
    if measure not in MEASURES:
        raise MixPathError(f"unknown measure {measure!r}; choose one of: {', '.join(MEASURES)}")
    run = load_run(run_dir, device)
    evaluator = SupernetEvaluator(
        run.supernet, run.dataset, calibration=calibration, cache_path=Path(run_dir) / "ranking" / SCORES_FILE
    )
    todo = scorable(archs, run.space, run.config.m)
    scores = {}
    for text, arch in tqdm(todo, desc=f"scoring ({calibration.mode})", disable=not progress, leave=False):
        metrics = evaluator.evaluate([arch])[0]
        scores[text] = metrics["accuracy"] if measure == "accuracy" else -metrics["loss"]
    log.info("%s: scored %d architectures with calibration %s", run_dir, len(scores), calibration.mode)
    return scores
