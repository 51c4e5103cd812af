"""CIFAR-10 (50,000 train / 10,000 test, 3 x 32 x 32, 10 classes) in its python-pickle format.

The folder ``cifar-10-batches-py`` holds data_batch_1..5, test_batch and batches.meta: pickled dicts
with ``data`` (uint8, N x 3072: 1024 red, 1024 green, 1024 blue values, each 32 x 32 row-major),
``labels`` (N ints) and ``label_names``. Pickles can run code, so only the few numpy globals these
files need are allowed while reading them.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from mixpath.data.augment import AugmentConfig
from mixpath.data.raw import RawImages, default_dirs, find_dir, user_dirs
from mixpath.errors import MixPathError

NAME = "cifar10"
FOLDER = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
META_FILE = "batches.meta"
SHAPE = (3, 32, 32)
NUM_CLASSES = 10
# The MixPath reference setting (DESIGN.md section 4): pad-4 random crop, horizontal flip, cutout 16.
AUGMENT = AugmentConfig(crop_padding=4, flip=True, cutout=16)

_ALLOWED_GLOBALS = {
    ("_codecs", "encode"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    *((f"numpy.{core}.multiarray", name) for core in ("core", "_core") for name in ("_reconstruct", "scalar")),
    *((f"numpy.{core}.numeric", "_frombuffer") for core in ("core", "_core")),
}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR-10 batch")
        return super().find_class(module, name)


def _complete(directory: Path) -> bool:
    return all((directory / f).is_file() for f in (*TRAIN_FILES, TEST_FILE, META_FILE))


def load_cifar10(root: str | Path | None = None) -> RawImages:
    """Read the official splits from ``root`` (the batches folder or the folder holding it)."""
    if root is not None:
        candidates = user_dirs(root, FOLDER)
    else:
        candidates = [d for base in default_dirs(NAME) for d in (base, base / FOLDER)]
    directory = find_dir(candidates, _complete)
    if directory is None:
        raise MixPathError(
            f"CIFAR-10 not found in {', '.join(map(str, candidates))}: download cifar-10-python.tar.gz "
            f"from https://www.cs.toronto.edu/~kriz/cifar.html, unpack it and pass --data-dir DIR holding "
            f"{FOLDER} ({', '.join((*TRAIN_FILES, TEST_FILE, META_FILE))})"
        )
    train = [_read_batch(directory / f) for f in TRAIN_FILES]
    test_x, test_y = _read_batch(directory / TEST_FILE)
    return RawImages(
        train_x=np.concatenate([x for x, _ in train]),
        train_y=np.concatenate([y for _, y in train]),
        test_x=test_x,
        test_y=test_y,
        class_names=_read_class_names(directory / META_FILE),
        max_value=255.0,
    )


def _unpickle(path: Path) -> dict[str, Any]:
    """The file's dict with str keys (the original files are Python 2 pickles: latin-1 decodes their str)."""
    try:
        with path.open("rb") as f:
            content = _BatchUnpickler(f, encoding="latin1").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError) as exc:
        raise MixPathError(f"cannot read CIFAR-10 file {path}: {exc}") from exc
    if not isinstance(content, dict):
        raise MixPathError(f"{path}: expected a pickled dict, found {type(content).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in content.items()}


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle(path)
    data, labels = batch.get("data"), batch.get("labels")
    row = int(np.prod(SHAPE))
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != row:
        found = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise MixPathError(f"{path}: 'data' must be a uint8 array N x {row}, found {found}")
    try:
        labels = np.asarray(labels if labels is not None else [], dtype=np.int64)
    except (TypeError, ValueError) as exc:
        raise MixPathError(f"{path}: 'labels' must be a list of ints ({exc})") from exc
    if labels.shape != (len(data),):
        raise MixPathError(f"{path}: {len(data)} images but {labels.size} labels")
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise MixPathError(f"{path}: labels must be in 0..{NUM_CLASSES - 1}")
    return data.reshape(len(data), *SHAPE), labels


def _read_class_names(path: Path) -> tuple[str, ...]:
    names = _unpickle(path).get("label_names")
    if not isinstance(names, (list, tuple)) or len(names) != NUM_CLASSES:
        raise MixPathError(f"{path}: 'label_names' must list {NUM_CLASSES} class names")
    return tuple(n.decode("latin1") if isinstance(n, bytes) else str(n) for n in names)
