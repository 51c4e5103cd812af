"""Shared fixtures: tiny spaces and tiny data so the whole suite runs in minutes on 2 cores."""

from __future__ import annotations

import random

import pytest
import torch

from mixpath.spaces import get_space


@pytest.fixture(autouse=True)
def _few_threads():
    """Tiny models run fastest on one thread, and tests must not fight each other for the 2 cores."""
    torch.set_num_threads(1)


@pytest.fixture
def tiny():
    return get_space("tiny")


@pytest.fixture
def rng():
    return random.Random(0)
