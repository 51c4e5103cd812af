"""Checks of values a user gives, shared by the settings types of every stage (training, search, retraining)."""

from __future__ import annotations

from mixpath.errors import MixPathError

MAX_SEED = 2**63 - 1
"""Seeds are 63-bit (``mixpath.training.seeding`` derives every stream from them); numpy refuses negative ones."""


def is_number(value: object) -> bool:
    """An int or a float, not a bool (which Python counts as an int)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_seed(name: str, value: object) -> None:
    """A MixPathError naming the setting unless ``value`` is a seed: a whole number in [0, 2^63)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise MixPathError(f"{name}={value!r} must be a whole number from 0 to {MAX_SEED}")


def check_whole_number(name: str, value: object, smallest: int = 1, meaning: str = "") -> int:
    """``value`` if it is an int >= ``smallest`` (not a bool), else a MixPathError naming the setting; ``meaning``
    (e.g. "0: read images in this process") is added to the message in brackets."""
    if isinstance(value, bool) or not isinstance(value, int) or value < smallest:
        note = f" ({meaning})" if meaning else ""
        raise MixPathError(f"{name}={value!r} must be a whole number >= {smallest}{note}")
    return value


def check_processes(name: str, value: object) -> None:
    """A MixPathError naming the setting unless ``value`` is None (one process per core) or a whole number of at
    least 1: how many trainings run side by side (``mixpath.training.side_by_side``)."""
    if value is not None:
        check_whole_number(name, value, meaning="default: one per core")
