"""Trainings side by side: forked processes that run each task once, hand back results and errors, share out
the threads, and retrain to exactly what one process retrains one architecture after another."""

import ctypes
import os
import signal
import time

import pytest
import torch

from mixpath.checks import check_processes
from mixpath.data import load_dataset
from mixpath.errors import MixPathError
from mixpath.retraining import RetrainEntry, retrain_architectures
from mixpath.training import Recipe
from mixpath.training.side_by_side import run_side_by_side, side_by_side_processes, usable_cores

ARCHS = ("e6:k3+k5-e3:k3-e6:k5", "e3:k3-e3:k5-e6:k3", "e3:k5+k7-e6:k7-e3:k3+k5")


def _who(index):
    started = time.monotonic()
    time.sleep(0.2)  # long enough that both processes get tasks
    return os.getpid(), torch.get_num_threads(), index * index, started


def test_every_task_runs_once_in_a_child_and_its_result_comes_back():
    order = [5, 4, 3, 2, 1, 0]
    results = dict(run_side_by_side(_who, order, 2))
    assert sorted(results) == list(range(6))
    assert [results[index][2] for index in range(6)] == [index * index for index in range(6)]
    pids = {pid for pid, _, _, _ in results.values()}
    assert os.getpid() not in pids and len(pids) == 2
    assert {threads for _, threads, _, _ in results.values()} == {max(1, torch.get_num_threads() // 2)}
    starts = [results[index][3] for index in order]  # two at a time, in the order given
    assert all(starts[k] < starts[k + 2] for k in range(len(order) - 2))


def _death_signal(index):
    value = ctypes.c_int()
    ctypes.CDLL(None).prctl(2, ctypes.byref(value))  # PR_GET_PDEATHSIG
    return value.value


def test_a_child_dies_with_its_parent():
    assert dict(run_side_by_side(_death_signal, [0, 1], 2)) == {0: signal.SIGKILL, 1: signal.SIGKILL}


def _fails_on_two(index):
    if index == 2:
        raise MixPathError("task 2 cannot run")
    return index


def test_an_error_in_a_task_is_raised_in_the_parent():
    with pytest.raises(MixPathError, match="task 2 cannot run"):
        list(run_side_by_side(_fails_on_two, range(4), 2))


@pytest.mark.parametrize(
    ("requested", "tasks", "device", "expected"),
    [(2, 4, "cpu", 2), (8, 3, "cpu", 3), (2, 4, "cuda", 1), (1, 4, "cpu", 1), (None, 1, "cpu", 1)],
)
def test_processes_are_at_most_one_per_task_and_one_on_a_gpu(requested, tasks, device, expected):
    assert side_by_side_processes(requested, tasks, torch.device(device)) == expected


def test_the_default_is_one_process_per_usable_core():
    assert side_by_side_processes(None, 1000, "cpu") == min(usable_cores(), 1000)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_a_bad_process_count_is_a_one_line_error(bad):
    with pytest.raises(MixPathError, match=rf"^--processes={bad!r} must be a whole number >= 1"):
        check_processes("--processes", bad)


def test_side_by_side_retraining_equals_one_after_another(tmp_path, tiny):
    digits = load_dataset("digits", train_subset=192)
    recipe = Recipe(epochs=1, batch_size=32, lr=0.1)
    entries = [RetrainEntry(f"a{index}", tiny.parse(arch, 4), role=f"r{index}") for index, arch in enumerate(ARCHS)]
    alone = retrain_architectures(tiny, digits, entries, recipe, tmp_path / "alone", progress=False, processes=1)
    paired = retrain_architectures(tiny, digits, entries, recipe, tmp_path / "paired", progress=False, processes=2)
    untimed = [{key: value for key, value in row.items() if key != "train_seconds"} for row in alone]
    assert [{key: value for key, value in row.items() if key != "train_seconds"} for row in paired] == untimed
    for entry in entries:
        ours = torch.load(tmp_path / "paired" / entry.name / "model.pt", weights_only=True)["state_dict"]
        theirs = torch.load(tmp_path / "alone" / entry.name / "model.pt", weights_only=True)["state_dict"]
        assert all(torch.equal(value, theirs[key]) for key, value in ours.items())
