"""Scoring architectures with inherited weights: calibrate the BNs, then validate, with a cache.

``SupernetEvaluator`` is the search's evaluator (``mixpath.interfaces.Evaluator``) for a trained
supernet: per architecture, BN post-calibration (``mixpath.evaluation.calibration``) and then accuracy
and loss on the held-out *validation* split (never the test split), plus the cost model's metrics.

Side effect: calibrating writes the running statistics of the BNs the architecture uses, in the
supernet itself. Every score recalibrates its own BNs from the same fixed images first, so scores do
not depend on the order of evaluation; but after an evaluator ran, the supernet's BN statistics are no
longer the trained ones (reload the checkpoint before evaluating with ``calibration="none"``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from mixpath.checks import check_whole_number
from mixpath.data import Data
from mixpath.device import resolve_device
from mixpath.errors import MixPathError
from mixpath.evaluation.cache import EvalCache, fingerprint
from mixpath.evaluation.calibration import CalibrationSettings
from mixpath.evaluation.costs import CostModel
from mixpath.evaluation.folding import fold_batchnorms
from mixpath.evaluation.modules import model_device, synchronize
from mixpath.evaluation.scoring import score
from mixpath.spaces import Architecture, SearchSpace

log = logging.getLogger(__name__)

SPLITS = ("val", "test")


def evaluate_standalone(
    model: nn.Module,
    dataset: Data,
    *,
    calibration: CalibrationSettings = CalibrationSettings(),
    batch_size: int = 512,
    split: str = "val",
    device: str | torch.device | None = None,
) -> dict[str, float]:
    """Accuracy (percent) and loss of a stand-alone model on ``split``, after BN calibration.

    ``calibration`` and ``batch_size`` mean what they mean for ``SupernetEvaluator``, so a subnet extracted from
    a supernet scores exactly what the supernet scores for its architecture. ``split="test"`` is for final
    reports of retrained models only, never for choosing architectures. Calibration changes ``model``'s BNs.
    """
    if split not in SPLITS:
        raise MixPathError(f"unknown split {split!r}; choose one of: {', '.join(SPLITS)}")
    if device is not None:
        model.to(resolve_device(device))
    calibration.apply(model, None, calibration.images(dataset))
    return score(fold_batchnorms(model), None, dataset.val if split == "val" else dataset.test, batch_size)


class SupernetEvaluator:
    """Scores architectures of a supernet built by ``mixpath.supernet.build_supernet``.

    ``evaluate(archs)`` returns per architecture ``accuracy`` (percent, validation split), ``loss``
    (mean cross-entropy) and the ``cost_model``'s metrics (default ``CostModel(supernet.space)``:
    ``flops`` and ``params`` in millions, plus ``latency`` in ms when it holds a latency table), after BN
    post-calibration as ``calibration`` says (mode, images, batches; ``CalibrationSettings``). Calibration and
    validation images in memory are moved to ``device`` once (default: the supernet's device; a given device
    moves the supernet there); an image folder's are read from disk for every architecture. With
    ``cache_path`` (e.g. ``RUN/eval_cache.jsonl``), accuracy and loss are looked up before scoring and
    appended after, keyed by the architecture string plus a fingerprint of the weights, images and settings,
    so a resumed or repeated search does not score anything twice. ``seconds`` accumulates calibration and
    validation time.

    ``fold_bn``: validate the architecture as an extracted stand-alone model with its calibrated BNs
    folded into its convolutions (``mixpath.evaluation.folding``; same scores up to float rounding, faster),
    for supernets that can ``extract`` one; else the supernet itself runs the validation pass.

    ``on_scored``: None, or a function called with each architecture as soon as its metrics are known
    (``mixpath.interfaces``): a search sets it to move its progress bar per architecture.
    """

    def __init__(
        self,
        supernet: nn.Module,
        dataset: Data,
        *,
        calibration: CalibrationSettings = CalibrationSettings(),
        batch_size: int = 512,
        cache_path: Path | str | None = None,
        cost_model: CostModel | None = None,
        device: str | torch.device | None = None,
        fold_bn: bool = True,
    ) -> None:
        if not hasattr(supernet, "space") or not hasattr(supernet, "m"):
            raise MixPathError(f"{type(supernet).__name__} is not a mixpath supernet (it needs .space and .m)")
        check_whole_number("batch_size", batch_size)
        if len(dataset.val) == 0:
            raise MixPathError(f"dataset {dataset.name!r} has no validation split; load it with val_size > 0")
        self.supernet = supernet
        self.space = cast(SearchSpace, supernet.space)
        self.m = cast(int, supernet.m)
        self.calibration = calibration
        self.batch_size = batch_size
        self._extract: Callable[[Architecture], nn.Module] | None = (
            getattr(supernet, "extract", None) if fold_bn else None
        )
        self.fold_bn = self._extract is not None
        self.cost_model = cost_model if cost_model is not None else CostModel(self.space)
        self.device = resolve_device(device) if device is not None else model_device(supernet)
        supernet.to(self.device)
        self.calib_images = calibration.images(dataset).to(self.device)
        self.val = dataset.val.to(self.device)
        self.seconds = {"calibration": 0.0, "validation": 0.0}
        self.scored = 0
        self.cache = EvalCache(cache_path, self.cache_key()) if cache_path is not None else None
        self.on_scored: Callable[[Architecture], None] | None = None

    def cache_key(self) -> str:
        """A fingerprint of what a score depends on: weights (and, without calibration, the trained BN
        statistics), BN policy, calibration and validation images, calibration settings."""
        state = self.supernet.state_dict(keep_vars=True)
        params = {name for name, _ in self.supernet.named_parameters()}
        tensors = [(k, v) for k, v in state.items() if k in params or self.calibration.mode == "none"]
        tensors += self.calib_images.fingerprint_parts("calibration") + self.val.fingerprint_parts("val_x", "val_y")
        meta: dict[str, Any] = {
            "model": type(self.supernet).__name__,
            "bn_policy": getattr(self.supernet, "bn_policy", None),
            **self.calibration.to_json(),
            "fold_bn": self.fold_bn,
        }
        return fingerprint(tensors, meta)

    def evaluate(self, archs: Sequence[Architecture]) -> list[dict[str, float]]:
        """Metrics of each architecture, in order (see the class docstring)."""
        results = []
        for arch in archs:
            self.space.validate(arch, self.m)
            text = self.space.format(arch)
            metrics = self.cache.get(text) if self.cache is not None else None
            if metrics is None:
                metrics = self._score(arch)
                if self.cache is not None:
                    self.cache.put(text, metrics)
            results.append({**metrics, **self.cost_model(arch)})
            if self.on_scored is not None:
                self.on_scored(arch)
        return results

    def _score(self, arch: Architecture) -> dict[str, float]:
        started = time.perf_counter()
        self.calibration.apply(self.supernet, arch, self.calib_images)
        synchronize(self.device)
        calibrated = time.perf_counter()
        if self._extract is not None:
            metrics = score(fold_batchnorms(self._extract(arch)), None, self.val, self.batch_size)
        else:
            metrics = score(self.supernet, arch, self.val, self.batch_size)
        validated = time.perf_counter()
        self.seconds["calibration"] += calibrated - started
        self.seconds["validation"] += validated - calibrated
        self.scored += 1
        log.debug(
            "%s: %.2f%% (calibration %.2f s, validation %.2f s)",
            self.space.format(arch),
            metrics["accuracy"],
            calibrated - started,
            validated - calibrated,
        )
        return metrics
