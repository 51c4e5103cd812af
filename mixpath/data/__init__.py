"""Datasets as in-memory tensors, the seeded validation split, batch augmentation and batching."""

from mixpath.data.augment import AugmentConfig, augment_batch
from mixpath.data.batches import iterate_batches
from mixpath.data.datasets import Dataset, dataset_names, load_dataset
from mixpath.data.idx import read_idx
from mixpath.data.splits import split_indices

__all__ = [
    "AugmentConfig",
    "Dataset",
    "augment_batch",
    "dataset_names",
    "iterate_batches",
    "load_dataset",
    "read_idx",
    "split_indices",
]
