"""How big each stage of ``mixpath pipeline`` is, by default and with ``--quick``.

Apart from ``mixpath.pipeline`` because the command's help quotes these numbers: this module imports
nothing heavy, so ``mixpath pipeline --help`` does not wait seconds for torch.
"""

from __future__ import annotations

from dataclasses import dataclass

SUPERNET_EPOCHS = 1
"""Epochs of the pipeline's supernet: one, not ``TrainConfig``'s default 3, which leaves time for the search and
the retraining within 12 minutes on 2 idle cores; a complete one-epoch run of the same schedule (lr 0.1, the
warm-up capped at half the run) ranked the ranking study's 48 architectures about as well as the 3-epoch default
(README, *Ranking quality*). ``mixpath pipeline --epochs 3`` trains the default recipe."""

RETRAIN_EPOCHS = 2
"""Epochs of the pipeline's retraining recipe. The default pipeline (supernet, search, and four models
retrained on the whole training split) must stay within 12 minutes on 2 idle cores; raise it only with
a measurement of the whole pipeline that shows it still does."""

RETRAIN_LR = 0.1
RETRAIN_LABEL_SMOOTHING = 0.1
"""The retraining recipe's rate and label smoothing (otherwise ``Recipe``'s: SGD momentum 0.9, batch 96, cosine,
no warm-up). Chosen for 2 epochs by a protocol fixed before its runs (experiments/protocols/
retrain-recipe-2026-12-03.toml: six recipes, two architectures, by validation accuracy within the time of
the old recipe); results in experiments/results/retrain-recipe-2026-12-03/. ``mixpath retrain`` keeps
``Recipe``'s lr 0.05 without smoothing, the ranking study's ground-truth recipe for 8-10 epochs."""


@dataclass(frozen=True)
class Scale:
    """How big each stage is: what ``--quick`` changes. A subset of None is the whole training split."""

    epochs: int = SUPERNET_EPOCHS
    """Supernet epochs."""
    train_subset: int | None = None
    """Images the supernet trains on."""
    budget: int = 80
    """Architectures the search scores."""
    population: int = 16
    """Architectures per search generation."""
    calib_size: int | None = None
    """Training images each score calibrates the BNs with (None: ``CalibrationSettings``' default)."""
    retrain_epochs: int = RETRAIN_EPOCHS
    """Epochs of every retraining."""
    retrain_subset: int | None = None
    """Images every retraining trains on."""


FULL = Scale()
QUICK = Scale(
    epochs=1, train_subset=1000, budget=12, population=6, calib_size=256, retrain_epochs=1, retrain_subset=1000
)
"""A smoke run and the tests' setting: seconds on ``tiny``/digits, about a minute on fmnist-s1/Fashion-MNIST.
Its accuracies mean nothing; it shows every stage runs and writes its files."""
