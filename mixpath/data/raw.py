"""What a dataset reader hands over before splitting and normalisation, and where readers look.

Readers return integer pixels (uint8, N x C x H x W) and official train/test splits; everything a
run may change (val split, subset, normalisation) happens once, in :mod:`mixpath.data.datasets`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA_ENV = "MIXPATH_DATA"


@dataclass(frozen=True)
class RawImages:
    """Official splits: uint8 pixels (N x C x H x W), int64 labels; ``max_value`` is the top pixel value."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    class_names: tuple[str, ...]
    max_value: float


def default_dirs(dataset: str, system: Iterable[Path] = ()) -> list[Path]:
    """Where to look when the user names no directory: $MIXPATH_DATA/<dataset>, system dirs, user cache."""
    dirs = []
    env = os.environ.get(DATA_ENV)
    if env:
        dirs.append(Path(env).expanduser() / dataset)
    dirs.extend(system)
    dirs.append(Path.home() / ".cache" / "mixpath" / dataset)
    return dirs


def user_dirs(root: str | Path, subdir: str) -> list[Path]:
    """A directory the user names may hold the files itself or a ``subdir`` that does."""
    root = Path(root).expanduser()
    return [root, root / subdir]


def find_dir(candidates: Iterable[Path], complete: Callable[[Path], bool]) -> Path | None:
    """The first candidate directory for which ``complete`` holds, or None."""
    return next((d for d in candidates if d.is_dir() and complete(d)), None)
