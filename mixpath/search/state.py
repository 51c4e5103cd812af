"""The JSON form of Python random-generator states, so a resumed search draws what an uninterrupted one would."""

from __future__ import annotations

import random
from typing import Any


def python_rng_state(rng: random.Random) -> list[Any]:
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def restore_python_rng(state: list[Any]) -> random.Random:
    rng = random.Random()
    rng.setstate((state[0], tuple(state[1]), state[2]))
    return rng
