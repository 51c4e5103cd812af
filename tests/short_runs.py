"""Short training runs of a two-layer space on 8x8 digits, for the tests of training strategies that run the
whole loop (FBNet, BS-NAS shrinking). The digits themselves: the ``digits_96`` fixture of ``conftest.py``."""

from __future__ import annotations

from mixpath.spaces import SearchSpace, mbconv_space, register_space
from mixpath.training import TrainConfig

TRAIN_SUBSET = 96
"""Training images of a short run: 64 trained on (two steps of 32 an epoch) and 32 held out."""


def two_layer_space(name: str, description: str, ops: tuple[str, ...], expansions: tuple[int, ...]) -> SearchSpace:
    """Register and return a space of two layers (4 -> 4 -> 8 channels, strides 1 and 2, a 16-channel head)."""
    return register_space(
        mbconv_space(name, description, (1, 8, 8), 10, [4, 4, 8], [1, 2], 16, ops=ops, expansions=expansions)
    )


def short_run_config(space: str, strategy: str, **changes) -> TrainConfig:
    """Two epochs of one path (m=1) on ``TRAIN_SUBSET`` digits, a third held out, one architecture scored."""
    base = dict(
        space=space,
        data="digits",
        strategy=strategy,
        m=1,
        epochs=2,
        batch_size=32,
        train_subset=TRAIN_SUBSET,
        eval_archs=1,
        held_out=1 / 3,
    )
    return TrainConfig(**{**base, **changes})
