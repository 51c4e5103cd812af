"""Shared fixtures: tiny spaces and tiny data so the whole suite runs in minutes on 2 cores."""

from __future__ import annotations

import random

import pytest
import torch

from mixpath.spaces import get_space

# Tiny models run fastest on one thread, and tests must not fight each other for the 2 cores. Set at
# import, not in a fixture, so module-scoped fixtures that train models get it too.
torch.set_num_threads(1)


@pytest.fixture
def tiny():
    return get_space("tiny")


@pytest.fixture
def rng():
    return random.Random(0)
