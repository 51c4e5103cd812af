"""scikit-learn's digits (1797 images, 1 x 8 x 8, values 0..16): tiny, for tests and smoke runs."""

from __future__ import annotations

import numpy as np

from mixpath.data.augment import AugmentConfig
from mixpath.data.raw import RawImages
from mixpath.data.splits import split_indices
from mixpath.errors import MixPathError

NAME = "digits"
NUM_CLASSES = 10
TEST_FRACTION = 0.2
TEST_SEED = 0  # fixed, not the run's split_seed: the test set is the same for every run
# Off: 8 x 8 digits have no pixels to spare for crops, and a mirrored 2 or 5 is another symbol.
AUGMENT = AugmentConfig()


def load_digits_images() -> RawImages:
    """All 1797 digits with a fixed stratified 20% test split (digits has no official one)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise MixPathError("the digits dataset needs scikit-learn: pip install 'mixpath[digits]'") from exc
    bunch = load_digits()
    images = bunch.images.astype(np.uint8)[:, None]
    labels = bunch.target.astype(np.int64)
    train, test = split_indices(labels, TEST_FRACTION, seed=TEST_SEED)
    return RawImages(
        train_x=images[train],
        train_y=labels[train],
        test_x=images[test],
        test_y=labels[test],
        class_names=tuple(str(d) for d in range(NUM_CLASSES)),
        max_value=16.0,
    )
