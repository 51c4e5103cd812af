"""A seeded held-out part of the training split, for what must not be judged on the images weights train on:
FBNet's architecture steps and BS-NAS's op scores (``mixpath.training.fbnet``, ``mixpath.training.shrinking``).

The validation split stays untouched: the search scores architectures on it, so a method that chose its
architecture (or its surviving ops) on it would be graded on its own exam.
"""

from __future__ import annotations

import torch

from mixpath.data import BatchSource, FolderSource, TensorSource
from mixpath.errors import MixPathError
from mixpath.training.seeding import torch_generator


def split_held_out(train: BatchSource, fraction: float, seed: int) -> tuple[BatchSource, BatchSource]:
    """(the rows weights train on, with the split's augmentation; the held-out rows, not augmented), drawn by
    a permutation seeded by ``seed``: ``fraction`` of the training images are held out."""
    n = len(train)
    held = round(fraction * n)
    if held < 1 or held >= n:
        raise MixPathError(f"held_out={fraction} of {n} training images leaves no images on one side; choose 0 < f < 1")
    order = torch.randperm(n, generator=torch_generator(seed, "held-out"))
    kept, held_index = order[held:].sort().values, order[:held].sort().values
    return _augmented(train, kept), train.subset(held_index)


def _augmented(train: BatchSource, index: torch.Tensor) -> BatchSource:
    """The rows at ``index`` of ``train`` as a training source that keeps its augmentation (``subset`` drops it)."""
    part = train.subset(index)
    if isinstance(train, TensorSource) and isinstance(part, TensorSource):
        return TensorSource(part.x, part.y, train.augment)
    if isinstance(train, FolderSource) and isinstance(part, FolderSource):
        return train._like(part.samples, train.augment, train.device)  # the folder's own constructor of a split
    return part
