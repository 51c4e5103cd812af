"""A fixed, seeded, stratified held-out split of a labelled set."""

from __future__ import annotations

import numpy as np

from mixpath.errors import MixPathError


def split_size(n: int, size: int | float) -> int:
    """How many of ``n`` samples ``size`` means: an int is a count, a float a fraction in [0, 1)."""
    if isinstance(size, bool) or not isinstance(size, (int, float)):
        raise MixPathError(f"split size {size!r} must be a count (int) or a fraction (float in [0, 1))")
    if isinstance(size, float):
        if not 0.0 <= size < 1.0:
            raise MixPathError(f"split fraction {size} is not in [0, 1)")
        return int(round(size * n))
    if not 0 <= size < n:
        raise MixPathError(f"split size {size} is not in 0..{n - 1} (the set has {n} samples)")
    return size


def split_indices(labels: np.ndarray, size: int | float, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(keep, held_out)`` indices into ``labels``; ``held_out`` has ``split_size(n, size)`` samples.

    Stratified: samples are shuffled with ``seed``, numbered within their class, and ordered by that
    number (plus a random fraction, so classes interleave randomly) relative to the class size; every
    prefix of the order then holds each class in proportion, within one sample.
    ``held_out`` is the first part, ``keep`` the rest in the same order (so a prefix of ``keep``, as used
    by ``train_subset``, is class-balanced too). A larger ``size`` with the same seed extends ``held_out``.
    """
    labels = np.asarray(labels)
    n = len(labels)
    count = split_size(n, size)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    shuffled = labels[perm]
    _, class_of, class_sizes = np.unique(shuffled, return_inverse=True, return_counts=True)
    by_class = np.argsort(class_of, kind="stable")
    starts = np.concatenate(([0], np.cumsum(class_sizes)[:-1]))
    rank = np.empty(n, dtype=np.int64)
    rank[by_class] = np.arange(n) - starts[class_of[by_class]]
    position = (rank + rng.random(n)) / class_sizes[class_of]
    order = perm[np.argsort(position, kind="stable")]
    return order[count:], order[:count]
