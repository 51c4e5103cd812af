"""Fashion-MNIST (60,000 train / 10,000 test, 1 x 28 x 28, 10 classes) from its four IDX files."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import numpy as np

from mixpath.data.augment import AugmentConfig
from mixpath.data.idx import read_idx
from mixpath.data.raw import RawImages, default_dirs, find_dir, user_dirs
from mixpath.errors import MixPathError

NAME = "fashion-mnist"
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian package dataset-fashion-mnist
CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
# A mirrored shirt or shoe is still a shirt or shoe, so horizontal flips preserve labels; a 2-pixel
# pad lets the 28 x 28 garment shift by up to 2 pixels (~7%, the share 4 pixels are of CIFAR's 32).
# Cutout is off: on 28 x 28 greyscale a square would often hide the one feature that separates
# shirt from T-shirt or pullover.
AUGMENT = AugmentConfig(crop_padding=2, flip=True, cutout=0)


def _file(directory: Path, stem: str) -> Path | None:
    """The gzip file if present, else the uncompressed one, else None."""
    return next((p for p in (directory / f"{stem}.gz", directory / stem) if p.is_file()), None)


def _complete(directory: Path) -> bool:
    return all(_file(directory, stem) is not None for stem in FILES.values())


def load_fashion_mnist(root: str | Path | None = None) -> RawImages:
    """Read the official splits from ``root`` (or the default places), checking shapes and labels."""
    candidates = user_dirs(root, NAME) if root is not None else default_dirs(NAME, [SYSTEM_DIR])
    directory = find_dir(candidates, _complete)
    if directory is None:
        wanted = ", ".join(f"{stem}.gz" for stem in FILES.values())
        raise MixPathError(
            f"Fashion-MNIST not found in {', '.join(map(str, candidates))}: install the Debian package "
            f"dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or pass --data-dir DIR "
            f"holding {wanted}"
        )
    arrays = {key: read_idx(cast(Path, _file(directory, stem))) for key, stem in FILES.items()}  # all found
    for split in ("train", "test"):
        _check(arrays[f"{split}_x"], arrays[f"{split}_y"], directory, split)
    return RawImages(
        train_x=arrays["train_x"][:, None],
        train_y=arrays["train_y"].astype(np.int64),
        test_x=arrays["test_x"][:, None],
        test_y=arrays["test_y"].astype(np.int64),
        class_names=CLASS_NAMES,
        max_value=255.0,
    )


def _check(images: np.ndarray, labels: np.ndarray, directory: Path, split: str) -> None:
    image_file = _file(directory, FILES[f"{split}_x"])
    label_file = _file(directory, FILES[f"{split}_y"])
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise MixPathError(f"{image_file}: expected uint8 images N x 28 x 28, found {images.dtype} {images.shape}")
    if labels.shape != (images.shape[0],) or labels.dtype != np.uint8:
        raise MixPathError(f"{label_file}: expected {images.shape[0]} uint8 labels, found {labels.shape}")
    if labels.size and labels.max() >= len(CLASS_NAMES):
        raise MixPathError(f"{label_file}: label {labels.max()} is out of range 0..{len(CLASS_NAMES) - 1}")
