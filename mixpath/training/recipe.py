"""The optimizer recipe every training in mixpath follows: SGD with momentum, a per-step cosine schedule, clipping.

One type for both trainings: ``Recipe`` is what a stand-alone model (retraining, ground truth) is trained
with, and ``TrainConfig`` (the supernet's settings) is a ``Recipe`` plus what it trains, with the same field
names, so that both are checked by the same rules and both build their optimizer the same way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from mixpath.checks import check_whole_number
from mixpath.errors import MixPathError

MAX_LR = 3.0e38
"""The largest peak learning rate accepted, about float32's largest number: SGD multiplies float32 tensors by it,
and a larger one (a typo such as 1e308) cannot be converted. Rates that large but representable blow the loss up,
which training reports as a NaN loss in one line."""


@dataclass(frozen=True)
class Recipe:
    """SGD with momentum and a per-step cosine schedule (the form of MixPath's CIFAR recipe). The defaults here
    are the stand-alone retraining recipe; ``TrainConfig`` sets the supernet's own (lr 0.1 after a warm-up).

    Checked when built, so that a bad value is a one-line error before any training rather than a
    division by zero or a model that reports an untrained accuracy as a result.
    """

    epochs: int = 10
    batch_size: int = 96
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    """Clip the gradient norm to this (0: no clipping)."""
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            check_whole_number(name, getattr(self, name))
        rules = {
            "lr": (lambda v: 0 < v <= MAX_LR, f"a finite number > 0 (at most {MAX_LR:g})"),
            "momentum": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
            "weight_decay": (lambda v: v >= 0, "a finite number >= 0"),
            "grad_clip": (lambda v: v >= 0, "a finite number >= 0 (0: no clipping)"),
            "label_smoothing": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
        }
        for name, (ok, allowed) in rules.items():
            value = getattr(self, name)
            number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            if not number or not ok(value):
                raise MixPathError(f"{name}={value!r} must be {allowed}")

    def optimizer(self, params: Iterable[torch.nn.Parameter]) -> torch.optim.SGD:
        """SGD over ``params`` with this recipe's momentum and weight decay (the rate is set every step), as one
        multi-tensor update per step (``foreach``): the same arithmetic as one update per parameter, faster."""
        return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay, foreach=True)
