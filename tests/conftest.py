"""Shared fixtures: tiny spaces and tiny data so the whole suite runs in minutes on 2 cores."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest
import torch
from short_runs import TRAIN_SUBSET

from mixpath.data import load_dataset
from mixpath.spaces import get_space
from mixpath.supernet import build_supernet

# Tiny models run fastest on one thread, and tests must not fight each other for the 2 cores. Set at
# import, not in a fixture, so module-scoped fixtures that train models get it too.
torch.set_num_threads(1)


@pytest.fixture
def tiny():
    return get_space("tiny")


@pytest.fixture
def rng():
    return random.Random(0)


@pytest.fixture
def tiny_supernet(tiny):
    """A fresh supernet of the tiny space (m=4, Shadow BN) from torch seed 0, free to calibrate or change."""
    torch.manual_seed(0)
    return build_supernet(tiny, 4, "shadow")


@pytest.fixture(scope="session")
def all_digits():
    """The whole digits dataset (default split, no training subset), loaded once: tests only read it."""
    return load_dataset("digits")


@pytest.fixture(scope="session")
def digits_96():
    """The digits of a short run (``short_runs.short_run_config``), loaded once: tests only read them."""
    return load_dataset("digits", train_subset=TRAIN_SUBSET)


@pytest.fixture(scope="session")
def trained_tiny_run(tmp_path_factory) -> Path:
    """A tiny supernet trained one epoch on 64 digits, trained once: tests copy it (``run_dir``)."""
    from mixpath.training import TrainConfig, train_supernet

    folder = tmp_path_factory.mktemp("trained") / "run"
    config = TrainConfig(space="tiny", data="digits", train_subset=64, batch_size=32, epochs=1)
    train_supernet(config, folder, progress=False, device="cpu")
    return folder


@pytest.fixture
def run_dir(trained_tiny_run, tmp_path) -> Path:
    """A copy of ``trained_tiny_run`` in the test's folder, as ``tmp_path / "run"``, free to write into."""
    return Path(shutil.copytree(trained_tiny_run, tmp_path / "run"))


@pytest.fixture(scope="session")
def fuzz_pristine(tmp_path_factory):
    """The fuzz suite's workspace as built (``fuzzing.build_workspace``), shared by its modules."""
    import fuzzing

    return fuzzing.build_workspace(tmp_path_factory.mktemp("fuzz-pristine"))


def pytest_sessionfinish(session):
    """On a pytest-xdist worker, hand this worker's fuzz counts to the controller that prints them."""
    import fuzzing

    if hasattr(session.config, "workeroutput"):
        session.config.workeroutput["fuzz_tally"] = dict(fuzzing.TALLY)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """On the controller of a ``-n`` run, add up the counts its workers handed over."""
    import fuzzing

    fuzzing.TALLY.update(getattr(node, "workeroutput", {}).get("fuzz_tally", {}))


def pytest_terminal_summary(terminalreporter):
    """After a run that fed bad inputs, their counts (the figures the README quotes)."""
    import fuzzing

    if fuzzing.TALLY["inputs"]:
        terminalreporter.write_line(fuzzing.summary())
