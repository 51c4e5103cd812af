"""The data every stage reads, through one batch-source interface (``mixpath.data.batches``): datasets held
in memory as tensors (with the seeded validation split and batch augmentation), and image folders (your own
images, ImageNet) streamed from disk through a DataLoader. ``load_data`` opens either by name."""

from mixpath.data.augment import AugmentConfig, augment_batch
from mixpath.data.batches import BatchSource, Data, TensorSource, iterate_batches
from mixpath.data.datasets import Dataset, class_count, dataset_names, load_data, load_dataset
from mixpath.data.idx import read_idx
from mixpath.data.imagefolder import FolderDataset, FolderSource, ImageTransform, load_folder_dataset
from mixpath.data.splits import split_indices

__all__ = [
    "AugmentConfig",
    "BatchSource",
    "Data",
    "Dataset",
    "FolderDataset",
    "FolderSource",
    "ImageTransform",
    "TensorSource",
    "augment_batch",
    "class_count",
    "dataset_names",
    "iterate_batches",
    "load_data",
    "load_dataset",
    "load_folder_dataset",
    "read_idx",
    "split_indices",
]
