"""Datasets held fully in memory as normalised tensors, with a fixed seeded validation split.

``load_dataset`` reads a dataset's official train/test splits, carves a stratified validation set out
of the official training set (search scores architectures on it; the test set is for the final
report only), optionally keeps a class-balanced prefix of the training split, and normalises all
splits with per-channel statistics of the training split.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mixpath.checks import check_whole_number
from mixpath.data import cifar, digits, fashion_mnist, imagefolder, wavfolder
from mixpath.data.augment import AugmentConfig
from mixpath.data.batches import Data, TensorSource
from mixpath.data.normalize import channel_stats, normalize
from mixpath.data.raw import RawImages
from mixpath.data.splits import split_indices
from mixpath.errors import MixPathError

log = logging.getLogger(__name__)


@dataclass
class Dataset:
    """All splits of one dataset as tensors: x float32 N x C x H x W (normalised), y int64.

    ``mean`` and ``std`` are the per-channel statistics used to normalise, on the [0, 1] pixel scale.
    ``train_index`` and ``val_index`` say which images of the official training set went where.
    """

    name: str
    train_x: torch.Tensor = field(repr=False)
    train_y: torch.Tensor = field(repr=False)
    val_x: torch.Tensor = field(repr=False)
    val_y: torch.Tensor = field(repr=False)
    test_x: torch.Tensor = field(repr=False)
    test_y: torch.Tensor = field(repr=False)
    num_classes: int
    input_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    augment: AugmentConfig
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    train_index: torch.Tensor | None = field(default=None, repr=False)
    val_index: torch.Tensor | None = field(default=None, repr=False)

    def sizes(self) -> dict[str, int]:
        """Number of samples per split, for logs and run records."""
        return {"train": len(self.train_y), "val": len(self.val_y), "test": len(self.test_y)}

    @property
    def train(self) -> TensorSource:
        """The training split as a batch source (``mixpath.data.batches``), with the dataset's augmentation."""
        return TensorSource(self.train_x, self.train_y, self.augment)

    @property
    def val(self) -> TensorSource:
        return TensorSource(self.val_x, self.val_y)

    @property
    def test(self) -> TensorSource:
        return TensorSource(self.test_x, self.test_y)


@dataclass(frozen=True)
class _Source:
    read: Callable[[str | Path | None], RawImages]
    augment: AugmentConfig
    num_classes: int | None  # None: the folder's labels decide (wavfolder)


_SOURCES: dict[str, _Source] = {
    fashion_mnist.NAME: _Source(
        fashion_mnist.load_fashion_mnist, fashion_mnist.AUGMENT, len(fashion_mnist.CLASS_NAMES)
    ),
    digits.NAME: _Source(lambda root: digits.load_digits_images(), digits.AUGMENT, digits.NUM_CLASSES),
    cifar.NAME: _Source(cifar.load_cifar10, cifar.AUGMENT, cifar.NUM_CLASSES),
    wavfolder.NAME: _Source(wavfolder.load_wavfolder, wavfolder.AUGMENT, None),
}


def dataset_names() -> list[str]:
    """The in-memory datasets, then ``imagefolder`` (your own images, streamed: ``mixpath.data.imagefolder``)."""
    return [*_SOURCES, imagefolder.NAME]


def class_count(name: str, root: str | Path | None = None) -> int:
    """How many classes dataset ``name`` has, without reading its images (chance accuracy is 100 / this); an
    image folder's are its class folders under ``root``."""
    if name == imagefolder.NAME:
        return len(imagefolder.class_folders(_folder_root(root)))
    if name not in _SOURCES:
        raise MixPathError(f"unknown dataset {name!r}; known datasets: {', '.join(dataset_names())}")
    count = _SOURCES[name].num_classes
    return count if count is not None else len(wavfolder.class_names(root))


def load_data(
    name: str,
    root: str | Path | None = None,
    *,
    val_size: int | float = 0.1,
    split_seed: int = 0,
    train_subset: int | None = None,
    image_size: int | None = None,
    workers: int = 0,
    skip_bad_images: bool = False,
) -> Data:
    """Dataset ``name`` for every stage: an in-memory ``Dataset`` (``load_dataset``), or with ``imagefolder`` the
    folder ``root`` streamed at ``image_size`` by ``workers`` processes (``load_folder_dataset``); the split
    settings mean the same for both. ``image_size``, ``workers`` and ``skip_bad_images`` apply to image folders."""
    if name != imagefolder.NAME:
        if image_size is not None:
            raise MixPathError(f"an image size is for --data {imagefolder.NAME}; {name} has images of one size")
        return load_dataset(name, root, val_size=val_size, split_seed=split_seed, train_subset=train_subset)
    return imagefolder.load_folder_dataset(
        _folder_root(root),
        image_size=image_size if image_size is not None else imagefolder.ImageTransform(True).image_size,
        val_size=val_size,
        split_seed=split_seed,
        train_subset=train_subset,
        workers=workers,
        skip_bad_images=skip_bad_images,
    )


def _folder_root(root: str | Path | None) -> str | Path:
    if root is None:
        raise MixPathError(
            f"--data {imagefolder.NAME} needs the folder: --data-dir DIR, with DIR/train/<class>/<image> and "
            "DIR/val/<class>/<image>, or DIR/<class>/<image>"
        )
    return root


def load_dataset(
    name: str,
    root: str | Path | None = None,
    *,
    val_size: int | float = 0.1,
    split_seed: int = 0,
    train_subset: int | None = None,
) -> Dataset:
    """Load ``name`` from ``root`` (default places when None; digits ships with scikit-learn and ignores it).

    ``val_size`` is a count (int) or a fraction (float) of the official training set, split off
    stratified and seeded by ``split_seed``. ``train_subset`` keeps only the first N training images
    of that seeded order (class-balanced). Normalisation statistics come from the whole training split,
    before ``train_subset``, so a subset run sees inputs on the same scale as a full run.
    """
    if name not in _SOURCES:
        raise MixPathError(f"unknown dataset {name!r}; known datasets: {', '.join(dataset_names())}")
    started = time.perf_counter()
    source = _SOURCES[name]
    raw = source.read(root)
    train_idx, val_idx = split_indices(raw.train_y, val_size, seed=split_seed)
    mean, std = channel_stats(raw.train_x[train_idx], raw.max_value)
    if train_subset is not None:
        check_whole_number("train_subset", train_subset)
        if train_subset > len(train_idx):
            raise MixPathError(f"train_subset={train_subset} exceeds the {len(train_idx)} training images of {name}")
        train_idx = train_idx[:train_subset]
    dataset = Dataset(
        name=name,
        train_x=normalize(raw.train_x[train_idx], raw.max_value, mean, std),
        train_y=torch.from_numpy(raw.train_y[train_idx]),
        val_x=normalize(raw.train_x[val_idx], raw.max_value, mean, std),
        val_y=torch.from_numpy(raw.train_y[val_idx]),
        test_x=normalize(raw.test_x, raw.max_value, mean, std),
        test_y=torch.from_numpy(np.ascontiguousarray(raw.test_y)),
        num_classes=len(raw.class_names),
        input_shape=tuple(raw.train_x.shape[1:]),
        class_names=raw.class_names,
        augment=source.augment,
        mean=mean,
        std=std,
        train_index=torch.from_numpy(train_idx),
        val_index=torch.from_numpy(val_idx),
    )
    log.info("loaded %s: %s in %.2f s", name, dataset.sizes(), time.perf_counter() - started)
    return dataset
