"""Independent trainings side by side on the CPU's cores, in forked processes of a few threads each.

Why: small networks (Fashion-MNIST at 28x28) use two threads poorly, so on 2 cores two 1-thread processes
retrain two architectures in clearly less time than one 2-thread process takes for them one after the other
(docs/speed.md, "Retraining side by side", has the measurement). Forked, not spawned: a child inherits the
dataset, the space and the recipe in memory, so nothing large is pickled and a space declared in a file needs
no registering again; only a task's index goes in and its (small) result comes back. Each child sets its thread
count before it touches torch's thread pool, so the parent's OpenMP team is never used in a child, and asks the
kernel to kill it when the parent dies: a killed command leaves no orphan training on (and holding the run
folder's lock, whose file descriptor it inherited) until its task ends.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from mixpath.checks import check_processes

PR_SET_PDEATHSIG = 1
"""Linux's prctl option: the signal a process gets when its parent thread dies."""
_TASK: Callable[[int], Any] | None = None
"""In a child: the task it runs (set by ``_start`` from the parent's memory, never pickled)."""


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells it, else every core)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def side_by_side_processes(requested: int | None, tasks: int, device: torch.device | str) -> int:
    """How many processes to train ``tasks`` trainings in: ``requested``, or one per usable core, at most one
    per task; 1 (in this process) on a GPU, and off Linux (Windows cannot fork; on macOS forking a process that
    has used system frameworks is unsafe)."""
    check_processes("processes", requested)
    if torch.device(device).type != "cpu" or not sys.platform.startswith("linux"):
        return 1
    return max(1, min(requested if requested is not None else usable_cores(), tasks))


def run_side_by_side(task: Callable[[int], Any], order: Sequence[int], processes: int) -> Iterator[tuple[int, Any]]:
    """Run ``task(i)`` for every ``i`` of ``order``, started in that order (longest first finishes soonest), in
    ``processes`` forked processes; yield ``(i, result)`` as each ends. The threads the parent has are shared out
    among the children (at least one each). An exception in a task is raised here, in the parent; the other tasks
    are stopped."""
    threads = max(1, torch.get_num_threads() // processes)
    context = multiprocessing.get_context("fork")
    with context.Pool(processes, initializer=_start, initargs=(task, threads)) as pool:
        yield from pool.imap_unordered(_run, order)


def _start(task: Callable[[int], Any], threads: int) -> None:
    global _TASK
    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the request: nobody is left to hand results to
        os._exit(1)
    _TASK = task
    torch.set_num_threads(threads)


def _run(index: int) -> tuple[int, Any]:
    assert _TASK is not None, "a side-by-side child runs only after _start"
    return index, _TASK(index)
