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


def pytest_collection_modifyitems(config, items):
    """The full fuzz set (marker ``fuzz``) runs only when ``-m`` names it (``python3 -m pytest -m fuzz``); every
    other run, the default one included, takes the fast share of the cases that the fuzz tests also hold."""
    if "fuzz" in (config.getoption("-m") or ""):
        return
    kept = [item for item in items if item.get_closest_marker("fuzz") is None]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[item for item in items if item.get_closest_marker("fuzz") is not None])
        items[:] = kept


@pytest.fixture(scope="session")
def fuzz_pristine(tmp_path_factory):
    """The fuzz suite's workspace as built (``fuzzing.build_workspace``), shared by its modules."""
    import fuzzing

    return fuzzing.build_workspace(tmp_path_factory.mktemp("fuzz-pristine"))


def pytest_terminal_summary(terminalreporter):
    """After a run that fed bad inputs, their counts (the figures the README quotes)."""
    import fuzzing

    if fuzzing.TALLY["inputs"]:
        terminalreporter.write_line(fuzzing.summary())
