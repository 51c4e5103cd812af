"""Batch sources: every stage reads the images of a split through one interface, in memory or streamed.

A ``BatchSource`` is one split (training, validation or test images with their labels) as mini-batches:

- ``training_batches(batch_size, epoch, seeds, start_step=, rank=, world=)``: one epoch of training. The order is
  a permutation drawn from ``seeds("order", epoch)``, step s's augmentation is drawn from ``seeds("aug", epoch,
  s)``, ``batch_size`` is the global batch of one step over all processes, and rank r of W gets rows
  ``[r B/W, (r+1) B/W)`` of every global batch from ``start_step`` on. So (seed, epoch) fixes the batches, a
  resumed epoch continues at its step, and no image depends on W (a last partial batch is dropped).
- ``batches(batch_size)``: every image once, in stored order, not augmented (scoring, BN calibration).
- ``subset(index)``: the images at ``index`` (in that order, not augmented) as a source of their own.
- ``to(device)``: the same split with its batches delivered on ``device``.

``TensorSource`` holds a split as tensors in memory: a step indexes the permuted rows and augments the
whole global batch at once (``augment_batch``), then keeps its rows; no DataLoader, no copy per sample.
``mixpath.data.imagefolder.FolderSource`` streams image files: DataLoader worker processes decode and
augment each image with its own seed, drawn per step from the same generator, so the images of a step do
not depend on the number of workers or processes either.

``Data`` is what every stage asks of a dataset: its three splits as sources and what its images are.
``mixpath.data.Dataset`` (tensors) and ``mixpath.data.imagefolder.FolderDataset`` (files) both are one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Protocol

import torch

from mixpath.checks import check_whole_number
from mixpath.data.augment import AugmentConfig, augment_batch
from mixpath.errors import MixPathError

Seeds = Callable[..., torch.Generator]
"""``seeds(*keys)``: a torch.Generator seeded by the keys and the run's seed, e.g.
``functools.partial(mixpath.training.seeding.torch_generator, seed)``."""


def iterate_batches(
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    *,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(xb, yb)`` covering every sample once: shuffled with ``generator``, in order without.

    In order, batches are views of ``x`` and ``y`` (do not modify them in place); shuffled, they are
    fresh tensors. ``drop_last`` skips a final batch smaller than ``batch_size``.
    """
    check_whole_number("batch_size", batch_size)
    if len(x) != len(y):
        raise MixPathError(f"iterate_batches: {len(x)} inputs but {len(y)} labels")
    n = len(x)
    end = n - n % batch_size if drop_last else n
    order = None
    if generator is not None:
        order = torch.randperm(n, generator=generator, device=generator.device).to(x.device)
    for start in range(0, end, batch_size):
        if order is None:
            yield x[start : start + batch_size], y[start : start + batch_size]
        else:
            index = order[start : start + batch_size]
            yield x[index], y[index.to(y.device)]


class BatchSource(ABC):
    """One split of a dataset as mini-batches, read the same way by every stage (see the module docstring)."""

    @abstractmethod
    def __len__(self) -> int:
        """Images in the split."""

    @abstractmethod
    def to(self, device: torch.device | str) -> BatchSource:
        """This split with its batches delivered on ``device``."""

    @abstractmethod
    def training_batches(
        self, batch_size: int, epoch: int, seeds: Seeds, *, start_step: int = 0, rank: int = 0, world: int = 1
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This process's rows of every global batch of ``epoch`` from ``start_step`` on, augmented."""

    @abstractmethod
    def batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Every image once, in stored order, not augmented; the last batch may be smaller."""

    @abstractmethod
    def subset(self, index: torch.Tensor) -> BatchSource:
        """The images at ``index``, in that order, not augmented."""

    @abstractmethod
    def fingerprint_parts(self, images: str, labels: str | None = None) -> list[tuple[str, torch.Tensor]]:
        """Named tensors that change whenever the split's images (and, with ``labels``, its labels) do: what a
        cache key of scores made on this split hashes (``mixpath.evaluation.cache.fingerprint``)."""

    def steps_per_epoch(self, batch_size: int) -> int:
        """Optimizer steps in one epoch of global batches of ``batch_size`` (a last partial batch is dropped)."""
        return len(self) // batch_size


class TensorSource(BatchSource):
    """A split held in memory: ``x`` N x C x H x W (normalised), ``y`` N labels, and the training augmentation."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, augment: AugmentConfig = AugmentConfig()) -> None:
        if len(x) != len(y):
            raise MixPathError(f"a split needs one label per image: {len(x)} images, {len(y)} labels")
        self.x, self.y, self.augment = x, y, augment

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device: torch.device | str) -> TensorSource:
        return TensorSource(self.x.to(device), self.y.to(device), self.augment)

    def training_batches(
        self, batch_size: int, epoch: int, seeds: Seeds, *, start_step: int = 0, rank: int = 0, world: int = 1
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The whole global batch is augmented on every rank, so the augmentation does not depend on the number
        of processes (it is cheap next to a step); each rank then keeps its rows."""
        order = torch.randperm(len(self.y), generator=seeds("order", epoch)).to(self.x.device)
        share = batch_size // world
        mine = slice(rank * share, (rank + 1) * share)
        for step in range(start_step, self.steps_per_epoch(batch_size)):
            index = order[step * batch_size : (step + 1) * batch_size]
            x = augment_batch(self.x[index], self.augment, seeds("aug", epoch, step))
            yield x[mine], self.y[index][mine]

    def batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return iterate_batches(self.x, self.y, batch_size)

    def subset(self, index: torch.Tensor) -> TensorSource:
        return TensorSource(self.x[index.to(self.x.device)], self.y[index.to(self.y.device)])

    def fingerprint_parts(self, images: str, labels: str | None = None) -> list[tuple[str, torch.Tensor]]:
        return [(images, self.x)] + ([(labels, self.y)] if labels is not None else [])


class Data(Protocol):
    """A dataset as every stage reads it: three splits and what their images are. ``mean`` and ``std`` are the
    per-channel statistics the images were normalised with, on the [0, 1] pixel scale."""

    @property
    def name(self) -> str: ...
    @property
    def train(self) -> BatchSource: ...
    @property
    def val(self) -> BatchSource: ...
    @property
    def test(self) -> BatchSource: ...
    @property
    def num_classes(self) -> int: ...
    @property
    def input_shape(self) -> tuple[int, int, int]: ...
    @property
    def class_names(self) -> tuple[str, ...]: ...
    @property
    def mean(self) -> tuple[float, ...] | None: ...
    @property
    def std(self) -> tuple[float, ...] | None: ...

    def sizes(self) -> dict[str, int]: ...
