"""The settings of one supernet training run, saved as config.json in the run folder."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from mixpath.errors import MixPathError
from mixpath.supernet import BN_POLICIES
from mixpath.training.samplers import STRATEGIES


@dataclass(frozen=True)
class TrainConfig:
    """Defaults follow MixPath's CIFAR-10 code: SGD lr 0.025, momentum 0.9, wd 3e-4, cosine, batch 96, clip 5."""

    space: str = "fmnist-s1"
    data: str = "fashion-mnist"
    data_dir: str | None = None
    strategy: str = "mixpath"
    m: int = 4
    bn_policy: str = "shadow"
    epochs: int = 1
    batch_size: int = 96
    lr: float = 0.025
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    label_smoothing: float = 0.0
    seed: int = 0
    val_size: float = 0.1
    train_subset: int | None = None
    checkpoint_every: int = 0
    """Also checkpoint every N steps inside an epoch (0: only at epoch ends); for long epochs on slow machines."""
    eval_archs: int = 3
    """Random architectures whose validation accuracy (trained BN statistics) is logged after each epoch."""

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise MixPathError(f"unknown strategy {self.strategy!r}; choose one of: {', '.join(STRATEGIES)}")
        if self.bn_policy not in BN_POLICIES:
            raise MixPathError(f"unknown BN policy {self.bn_policy!r}; choose one of: {', '.join(BN_POLICIES)}")
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "m": self.m}
        for name, value in positive.items():
            if not isinstance(value, int) or value < 1:
                raise MixPathError(f"{name}={value!r} must be a whole number >= 1")
        for name in ("lr", "momentum", "weight_decay", "grad_clip", "label_smoothing"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise MixPathError(f"{name}={value!r} must be a finite number >= 0")

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise MixPathError(f"unknown training settings {unknown}; known: {', '.join(sorted(known))}")
        return cls(**data)
