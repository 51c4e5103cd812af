"""The settings of one supernet training run, saved as config.json in the run folder."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from mixpath.checks import check_seed, check_whole_number, is_number
from mixpath.errors import MixPathError
from mixpath.supernet import check_bn_policy
from mixpath.training.recipe import Recipe
from mixpath.training.samplers import STRATEGIES, check_path_sampling, check_single_path

AMP_MODES = ("off", "bf16", "fp16")


@dataclass(frozen=True)
class TrainConfig(Recipe):
    """The supernet's recipe and what it trains. ``batch_size`` is the number of images per optimizer step over
    all processes: each of W torchrun processes takes batch_size / W. config.json holds every field, flat.

    The defaults are the recipe the fmnist-s1 ranking study chose by its protocol's rule on all 48 of its
    ground-truth architectures (README.md, *Ranking quality*; the protocol in experiments/protocols/): SGD
    momentum 0.9, wd 3e-4, batch 96, clip 5 as MixPath's CIFAR-10 code, but lr 0.1 after one linear warm-up
    epoch, cosine to 0, for 3 epochs. The rule takes, of the runs that train within 30 minutes on 2 idle cores,
    the one whose supernet orders architectures most like training them from scratch (judged on validation
    accuracy), a shorter one within 0.05 of the best winning: 3 and 10 epochs tied within that margin, 30
    epochs (either schedule) ranked no better. None of the remedies tried on top of it (label smoothing, lr
    0.2, branch-fair path counts, more calibration images) gained the protocol's margin. Measured on
    fmnist-s1 only: on other data, keep lr proportional to the batch size, keep one warm-up epoch, and
    measure rather than assume that more epochs rank better."""

    epochs: int = 3
    lr: float = 0.1
    space: str = "fmnist-s1"
    data: str = "fashion-mnist"
    data_dir: str | None = None
    strategy: str = "mixpath"
    m: int = 4
    bn_policy: str = "shadow"
    path_sampling: str = "uniform"
    """Strategy mixpath: how a layer's path count is drawn, ``uniform`` or ``branch-fair`` (``PATH_SAMPLINGS``)."""
    warmup_epochs: float = 1.0
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
    image_size: int | None = None
    """``data="imagefolder"`` only: train on square images of this many pixels a side (None: the space's input
    size); a space that takes any size is then sized for it (its FLOPs follow)."""
    workers: int = 0
    """``data="imagefolder"`` only: DataLoader processes decoding images (0: in the training process). 0 by
    default because on a CPU the training step is the bottleneck and worker processes only take its cores
    (README, bench_loader); a GPU's step outruns one core's decoding, so there give each process workers."""
    skip_bad_images: bool = False
    """``data="imagefolder"`` only: replace an unreadable image by the next readable one (logged, counted)
    instead of stopping with an error naming it."""
    held_out: float = 0.2
    """Strategy fbnet and shrinking only: the fraction of the training split (seeded) held out from the weights,
    on which fbnet's architecture steps run and shrinking scores ops (the validation split stays the search's)."""
    arch_lr: float = 0.01
    """Strategy fbnet: Adam's learning rate of the architecture parameters (FBNet's)."""
    temperature: float = 5.0
    """Strategy fbnet: the Gumbel-softmax temperature of the first epoch (FBNet's)."""
    temperature_decay: float = 0.956
    """Strategy fbnet: the temperature's factor per epoch (FBNet's)."""
    latency_table: str | None = None
    """Strategy fbnet: a latency table of the space (``LatencyTable.save``) whose milliseconds are FBNet's LAT;
    None: FLOPs (multiply-adds) instead."""
    cost_alpha: float = 0.2
    """Strategy fbnet: alpha of FBNet's loss CE * alpha * log(LAT) ** beta (FBNet's)."""
    cost_beta: float = 0.6
    """Strategy fbnet: beta of FBNet's loss (FBNet's)."""
    shrink_at: tuple[float, ...] = ()
    """BS-NAS shrinking: fractions of the run's steps (0 < f < 1) at which every layer drops its worst ops."""
    shrink_drop: int = 1
    """BS-NAS shrinking: ops each layer drops at each point."""
    shrink_archs: int = 32
    """BS-NAS shrinking: single-path architectures scored on the held-out images at each point (rounded up to
    whole rounds in which every surviving op of every layer is used once)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.image_size is not None:
            check_whole_number("image_size", self.image_size)
            if self.data != "imagefolder":
                raise MixPathError(f"image_size={self.image_size} is for data='imagefolder'; {self.data} has one size")
        check_whole_number("workers", self.workers, smallest=0)
        if not isinstance(self.skip_bad_images, bool):
            raise MixPathError(f"skip_bad_images={self.skip_bad_images!r} must be true or false")
        for name in ("space", "data", "strategy", "bn_policy", "path_sampling", "amp"):
            if not isinstance(getattr(self, name), str):
                raise MixPathError(f"{name}={getattr(self, name)!r} must be text")
        if self.data_dir is not None and not isinstance(self.data_dir, str):
            raise MixPathError(f"data_dir={self.data_dir!r} must be a folder name (text) or None")
        check_seed("seed", self.seed)
        if self.train_subset is not None:
            check_whole_number("train_subset", self.train_subset)
        for name in ("checkpoint_every", "eval_archs"):
            check_whole_number(name, getattr(self, name), smallest=0)
        if isinstance(self.val_size, bool) or not isinstance(self.val_size, (int, float)):
            raise MixPathError(f"val_size={self.val_size!r} must be a count (int) or a fraction (float in [0, 1))")
        if isinstance(self.val_size, float) and not 0 <= self.val_size < 1:
            raise MixPathError(f"val_size={self.val_size!r} must be a fraction in [0, 1) (or a count of images)")
        if isinstance(self.val_size, int) and self.val_size < 0:
            raise MixPathError(f"val_size={self.val_size!r} must be a count >= 0 (or a fraction in [0, 1))")
        if self.strategy not in STRATEGIES:
            raise MixPathError(f"unknown strategy {self.strategy!r}; choose one of: {', '.join(STRATEGIES)}")
        check_bn_policy(self.bn_policy)
        if self.amp not in AMP_MODES:
            raise MixPathError(f"unknown amp mode {self.amp!r}; choose one of: {', '.join(AMP_MODES)}")
        for name in ("m", "micro_batches"):
            check_whole_number(name, getattr(self, name))
        check_single_path(self.strategy, self.m)
        check_path_sampling(self.strategy, self.path_sampling)
        warmup = self.warmup_epochs
        if isinstance(warmup, bool) or not isinstance(warmup, (int, float)) or not math.isfinite(warmup) or warmup < 0:
            raise MixPathError(f"warmup_epochs={self.warmup_epochs!r} must be a finite number >= 0")
        if self.batch_size % self.micro_batches:
            raise MixPathError(
                f"batch_size={self.batch_size} does not split into micro_batches={self.micro_batches} equal parts"
            )
        self._check_fbnet_and_shrinking()

    def _check_fbnet_and_shrinking(self) -> None:
        """The settings of strategy fbnet and of BS-NAS shrinking (``shrink_at`` from JSON becomes a tuple)."""
        rules = {
            "held_out": lambda v: 0 < v < 1,
            "arch_lr": lambda v: v > 0,
            "temperature": lambda v: v > 0,
            "temperature_decay": lambda v: 0 < v <= 1,
            "cost_alpha": lambda v: v >= 0,
            "cost_beta": lambda v: v >= 0,
        }
        for name, ok in rules.items():
            value = getattr(self, name)
            if not is_number(value) or not math.isfinite(value) or not ok(value):
                raise MixPathError(f"{name}={value!r} is out of range")
        if self.latency_table is not None and not isinstance(self.latency_table, str):
            raise MixPathError(f"latency_table={self.latency_table!r} must be a file name (text) or None")
        if isinstance(self.shrink_at, str) or not isinstance(self.shrink_at, (list, tuple)):
            raise MixPathError(f"shrink_at={self.shrink_at!r} must be a list of fractions of the run, e.g. 0.25,0.5")
        if not all(is_number(f) and 0 < f < 1 for f in self.shrink_at) or list(self.shrink_at) != sorted(
            set(self.shrink_at)
        ):
            raise MixPathError(f"shrink_at={list(self.shrink_at)} must be increasing fractions of the run in (0, 1)")
        object.__setattr__(self, "shrink_at", tuple(float(f) for f in self.shrink_at))
        for name in ("shrink_drop", "shrink_archs"):
            check_whole_number(name, getattr(self, name))
        if self.shrink_at and self.strategy == "fbnet":
            raise MixPathError("shrink_at is for sampled supernets (mixpath, spos, fairnas), not strategy fbnet")

    @property
    def effective_warmup_epochs(self) -> float:
        """The warm-up this run gets: ``warmup_epochs``, capped at half of ``epochs``."""
        return min(self.warmup_epochs, self.epochs / 2)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Any, source: object = "the training settings") -> TrainConfig:
        """The settings of a config.json's content; ``source`` (its path) names it in the one-line errors."""
        if not isinstance(data, dict):
            raise MixPathError(f"{source} holds {type(data).__name__}, not the training settings (a JSON object)")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise MixPathError(f"{source}: unknown training settings {unknown}; known: {', '.join(sorted(known))}")
        try:
            return cls(**data)
        except MixPathError as err:
            raise MixPathError(f"{source}: {err}") from None
