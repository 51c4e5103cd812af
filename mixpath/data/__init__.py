"""Datasets as in-memory tensors, the seeded validation split, batch augmentation and batching; image
folders (ImageNet layout) streamed from disk."""

from mixpath.data.augment import AugmentConfig, augment_batch
from mixpath.data.batches import iterate_batches
from mixpath.data.datasets import Dataset, class_count, dataset_names, load_dataset
from mixpath.data.idx import read_idx
from mixpath.data.imagefolder import (
    ImageFolder,
    ImageFolderSplits,
    ImageTransform,
    image_loader,
    load_imagefolder,
    set_loader_epoch,
)
from mixpath.data.splits import split_indices

__all__ = [
    "AugmentConfig",
    "Dataset",
    "ImageFolder",
    "ImageFolderSplits",
    "ImageTransform",
    "augment_batch",
    "class_count",
    "dataset_names",
    "image_loader",
    "iterate_batches",
    "load_dataset",
    "load_imagefolder",
    "read_idx",
    "set_loader_epoch",
    "split_indices",
]
