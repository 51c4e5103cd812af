"""The settings of one supernet training run, saved as config.json in the run folder."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from mixpath.errors import MixPathError
from mixpath.supernet import check_bn_policy
from mixpath.training.recipe import Recipe, check_whole_number
from mixpath.training.samplers import STRATEGIES

AMP_MODES = ("off", "bf16", "fp16")


@dataclass(frozen=True)
class TrainConfig(Recipe):
    """The supernet's recipe and what it trains. Defaults follow MixPath's CIFAR-10 code: SGD lr 0.025, momentum
    0.9, wd 3e-4, cosine, batch 96, clip 5. ``batch_size`` is the number of images per optimizer step over all
    processes: each of W torchrun processes takes batch_size / W. config.json holds every field, flat."""

    epochs: int = 1
    lr: float = 0.025
    space: str = "fmnist-s1"
    data: str = "fashion-mnist"
    data_dir: str | None = None
    strategy: str = "mixpath"
    m: int = 4
    bn_policy: str = "shadow"
    warmup_epochs: float = 0.0
    """Linear warm-up of the learning rate over this many epochs (fractions allowed), then cosine to 0; at
    most half the run warms up, so a short run keeps a decay (``effective_warmup_epochs``)."""
    seed: int = 0
    val_size: float = 0.1
    train_subset: int | None = None
    checkpoint_every: int = 0
    """Also checkpoint every N steps inside an epoch (0: only at epoch ends); for long epochs on slow machines."""
    eval_archs: int = 3
    """Random architectures whose validation accuracy (trained BN statistics) is logged after each epoch."""
    micro_batches: int = 1
    """Split each process's share of a step's batch into this many micro-batches, forward and backward one
    at a time with gradients accumulated: the same step in less memory. BN statistics are per micro-batch,
    so W processes x M micro-batches train exactly what one process with W x M micro-batches trains."""
    amp: str = "off"
    """Mixed precision: off, bf16 (autocast) or fp16 (autocast and a GradScaler; CUDA only)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.strategy not in STRATEGIES:
            raise MixPathError(f"unknown strategy {self.strategy!r}; choose one of: {', '.join(STRATEGIES)}")
        check_bn_policy(self.bn_policy)
        if self.amp not in AMP_MODES:
            raise MixPathError(f"unknown amp mode {self.amp!r}; choose one of: {', '.join(AMP_MODES)}")
        for name in ("m", "micro_batches"):
            check_whole_number(name, getattr(self, name))
        if not math.isfinite(self.warmup_epochs) or self.warmup_epochs < 0:
            raise MixPathError(f"warmup_epochs={self.warmup_epochs!r} must be a finite number >= 0")
        if self.batch_size % self.micro_batches:
            raise MixPathError(
                f"batch_size={self.batch_size} does not split into micro_batches={self.micro_batches} equal parts"
            )

    @property
    def effective_warmup_epochs(self) -> float:
        """The warm-up this run gets: ``warmup_epochs``, capped at half of ``epochs``."""
        return min(self.warmup_epochs, self.epochs / 2)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise MixPathError(f"unknown training settings {unknown}; known: {', '.join(sorted(known))}")
        return cls(**data)
