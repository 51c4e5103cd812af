"""BN post-calibration: re-estimate the running statistics of the BNs one architecture uses.

A supernet's BNs saw the statistics of many architectures during training, so before an architecture
is scored its BNs are re-estimated on training images (SPOS, Once-for-All). Modes:

- ``exact`` (Once-for-All): reset the statistics and accumulate a cumulative average over a fixed subset
  of training images: the running mean is the exact mean over the subset; the running variance is the
  average within-batch (unbiased) variance, i.e. what the BN normalised with in training, which makes
  ``batch_size`` a setting. Each batch is weighted by its number of images (``momentum`` set to
  n_batch / n_seen before each batch, which is ``momentum=None``'s cumulative average made exact for a
  smaller last batch). Deterministic for a fixed subset.
- ``ema`` (SPOS): reset the statistics and run the images in batches with the BN's own momentum.
- ``none``: keep the statistics from training (the ablation baseline).

Which BNs an architecture uses is found while calibrating, for any supernet family: a forward pre-hook
on every BN resets it the first time it runs in the calibration pass, so no extra forward pass is
needed and a BN the architecture does not use is never touched (bit-identical before and after).
The pass runs in train mode for the BNs only (everything else in eval mode), without gradients and
without augmentation. The images come as a tensor or as a batch source (``mixpath.data.batches``: an image
folder's calibration images are read from disk for every architecture, in the same order every time).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from mixpath.checks import check_whole_number
from mixpath.data import BatchSource, Data
from mixpath.errors import MixPathError
from mixpath.evaluation.modules import model_device, restored_modes
from mixpath.spaces import Architecture

log = logging.getLogger(__name__)

CALIBRATION_MODES = ("exact", "ema", "none")
BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def check_mode(mode: str) -> str:
    if mode not in CALIBRATION_MODES:
        raise MixPathError(f"unknown calibration {mode!r}; choose one of: {', '.join(CALIBRATION_MODES)}")
    return mode


def calibration_images(dataset: Data, size: int = 2048, seed: int = 0) -> BatchSource:
    """A fixed, seeded random subset of the training split, not augmented (in memory: ``.x`` is N x C x H x W).

    When the training split holds fewer than ``size`` images, all of them are used (in seeded order).
    """
    check_whole_number("calibration size", size)
    n = len(dataset.train)
    if n == 0:
        raise MixPathError(f"dataset {dataset.name!r} has no training images to calibrate BNs with")
    if size > n:
        log.info("calibration size %d exceeds the %d training images of %s: using all", size, n, dataset.name)
    generator = torch.Generator().manual_seed(seed)
    index = torch.randperm(n, generator=generator)[: min(size, n)]
    return dataset.train.subset(index)


def calibrate_bn(
    model: nn.Module,
    arch: Architecture | None,
    images: torch.Tensor | BatchSource,
    batch_size: int = 100,
    mode: str = "exact",
) -> list[nn.Module]:
    """Re-estimate the running statistics of the BNs ``model`` runs for ``arch``; return those BNs.

    ``model`` is a supernet (called ``model(x, arch)``) or, with ``arch=None``, a stand-alone model
    (``model(x)``). ``images`` are normalised training images (a tensor or a batch source), run once in order
    in batches of ``batch_size``: ``exact`` weighs every image the same, ``ema`` uses the BNs' momentum (SPOS runs 200
    batches). ``none`` changes nothing.
    Training flags and BN momenta are restored afterwards.
    """
    check_mode(mode)
    check_whole_number("calibration batch_size", batch_size)
    if mode == "none":
        return []
    if len(images) == 0:
        raise MixPathError("calibration needs at least one image, got none")
    if isinstance(images, torch.Tensor):
        batches: Iterable[torch.Tensor] = torch.split(images, batch_size)
    else:
        batches = (x for x, _ in images.batches(batch_size))
    device = model_device(model)
    calibrated: dict[_BatchNorm, float | None] = {}  # BN -> its momentum before calibration
    seen: dict[_BatchNorm, int] = {}  # BN -> images it has normalised so far (exact mode)

    def reset_then_weigh(bn: _BatchNorm, inputs: tuple[torch.Tensor, ...]) -> None:
        if not bn.track_running_stats:
            return
        if bn not in calibrated:
            calibrated[bn] = bn.momentum
            bn.reset_running_stats()
            seen[bn] = 0
        if mode == "exact":
            seen[bn] += len(inputs[0])
            bn.momentum = len(inputs[0]) / seen[bn]

    bns: list[_BatchNorm] = [module for module in model.modules() if isinstance(module, BATCH_NORMS)]
    handles = [bn.register_forward_pre_hook(reset_then_weigh) for bn in bns]
    try:
        with restored_modes(model), torch.no_grad():
            model.eval()
            for bn in bns:
                bn.train()
            for batch in batches:
                x = batch.to(device, non_blocking=True)
                if arch is None:
                    model(x)
                else:
                    model(x, arch)
    finally:
        for handle in handles:
            handle.remove()
        for bn, momentum in calibrated.items():
            bn.momentum = momentum
    return list(calibrated)


@dataclass(frozen=True)
class CalibrationSettings:
    """How to calibrate before scoring: ``exact`` on ``size`` images, ``ema`` on ``batches`` batches
    (``batches x batch_size`` images), or ``none``; images drawn from the training split with ``seed``."""

    mode: str = "exact"
    size: int = 2048
    batches: int = 200
    batch_size: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        check_mode(self.mode)
        check_whole_number("calibration size", self.size)
        check_whole_number("calibration batches", self.batches)
        check_whole_number("calibration batch_size", self.batch_size)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise MixPathError(f"calibration seed={self.seed!r} must be an int")

    def images(self, dataset: Data) -> BatchSource:
        """The calibration images of this mode (none for ``none``), fixed by ``seed``."""
        if self.mode == "none":
            return dataset.train.subset(torch.arange(0))
        size = self.size if self.mode == "exact" else self.batches * self.batch_size
        return calibration_images(dataset, size, self.seed)

    def apply(self, model: nn.Module, arch: Architecture | None, images: BatchSource) -> list[nn.Module]:
        return calibrate_bn(model, arch, images, self.batch_size, self.mode)

    def to_json(self) -> dict[str, object]:
        return asdict(self)
