"""A faster CPU runtime for the ``mixpath`` command: tcmalloc or jemalloc, and OpenMP waiting fit to the load.

Two process-wide settings that only take effect when a process starts, so the CLI re-executes itself once
with them (``reexec_with_fast_runtime``; the process id stays the same, so torchrun is not disturbed):

- ``LD_PRELOAD`` of tcmalloc (Debian ``libtcmalloc-minimal4``) or else jemalloc (``libjemalloc2``), when
  installed. glibc's malloc hands the large activation buffers of every training step back to the
  kernel and faults them in again, zeroed, on the next step; tcmalloc and jemalloc keep them.
- How OpenMP threads wait between parallel regions, chosen from the load average at start
  (``openmp_wait_env``). A training step of a small supernet is thousands of short parallel regions.
  On cores that other jobs use, a spinning thread takes the core from the thread the others wait for and
  a region can stall for a scheduler time slice, so there ``OMP_WAIT_POLICY=PASSIVE`` (threads sleep).
  On idle cores sleeping costs a wake-up per region, so there ``GOMP_SPINCOUNT=3000``: spin briefly (tens
  of microseconds), then sleep, which also bounds the harm if other jobs start later. (libgomp's default
  spins 100x longer.) docs/speed.md has the measurements behind both choices.

Settings the user made win: an ``LD_PRELOAD``, ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` already in the
environment is left alone, and ``MIXPATH_FAST_RUNTIME=0`` turns all off. Nothing happens when no setting is
needed. This module imports no torch: the CLI calls it before anything else, and re-executes.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

log = logging.getLogger(__name__)

SWITCH = "MIXPATH_FAST_RUNTIME"
"""Set to 0 to keep the system allocator and OpenMP's default waiting; the re-executed process has 1."""

LIBRARY_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib")
ALLOCATORS = {
    "tcmalloc": ("libtcmalloc_minimal.so.4", "libtcmalloc.so.4"),
    "jemalloc": ("libjemalloc.so.2",),
}


def find_allocator(dirs: tuple[str, ...] = LIBRARY_DIRS) -> Path | None:
    """The first installed tcmalloc, else jemalloc, in ``dirs``; None when neither is there."""
    for names in ALLOCATORS.values():
        for directory in dirs:
            for name in names:
                path = Path(directory) / name
                if path.is_file():
                    return path
    return None


SPIN_COUNT = "3000"
"""``GOMP_SPINCOUNT`` on idle cores: long enough to bridge the gap between two parallel regions of a training
step, short enough to give the core back soon (the values tried are in docs/speed.md)."""


def openmp_wait_env(load: float, cores: int, threads: int) -> dict[str, str]:
    """The OpenMP waiting for ``threads`` threads on ``cores`` cores while other jobs keep ``load`` cores
    busy: a short spin when they leave our threads a core each (within half a core), else sleeping."""
    if load + threads <= cores + 0.5:
        return {"GOMP_SPINCOUNT": SPIN_COUNT}
    return {"OMP_WAIT_POLICY": "PASSIVE"}


def busy_cores(seconds: float = 0.1) -> float:
    """How many cores of this machine are busy, from ``/proc/stat`` over the next ``seconds``; the 1-minute
    load average where there is no ``/proc/stat``."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:]]
        return sum(ticks), ticks[3] + ticks[4]  # total, idle + iowait

    try:
        total, idle = sample()
        time.sleep(seconds)
        total2, idle2 = sample()
    except OSError:
        return os.getloadavg()[0]
    if total2 == total:
        return 0.0
    return (os.cpu_count() or 1) * (1.0 - (idle2 - idle) / (total2 - total))


def openmp_wait_here(environ: Mapping[str, str]) -> dict[str, str]:
    """``openmp_wait_env`` for this machine now; the thread count is ``OMP_NUM_THREADS`` or all usable cores.
    The load of other jobs is the lower of the 1-minute load average (which lags: it still counts jobs that
    ended seconds ago) and the cores busy over the next 0.1 s (which misses a job between two bursts)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    threads = environ.get("OMP_NUM_THREADS", "")
    load = min(os.getloadavg()[0], busy_cores())
    return openmp_wait_env(load, cores, int(threads) if threads.isdigit() else cores)


def fast_runtime_env(
    environ: Mapping[str, str], allocator: Path | None, openmp_wait: Callable[[], Mapping[str, str]]
) -> dict[str, str] | None:
    """The environment to re-execute with, or None when nothing would change (or the user said no).
    ``openmp_wait()`` gives the waiting to set (``openmp_wait_env``); it is asked only when the user chose
    none, because measuring the load takes 0.1 s of start-up."""
    if environ.get(SWITCH) is not None:
        return None
    changes = {}
    if allocator is not None and not environ.get("LD_PRELOAD"):
        changes["LD_PRELOAD"] = str(allocator)
    if not environ.get("OMP_WAIT_POLICY") and not environ.get("GOMP_SPINCOUNT"):
        changes.update(openmp_wait())
    if not changes:
        return None
    return {**environ, **changes, SWITCH: "1"}


def reexec_with_fast_runtime() -> None:
    """Replace this process by itself started with ``fast_runtime_env`` (does not return), if it changes
    anything; call first thing in the CLI, before threads or large allocations exist."""
    env = fast_runtime_env(os.environ, find_allocator(), lambda: openmp_wait_here(os.environ))
    if env is None or not sys.orig_argv:
        return
    log.debug("re-executing with %s", {k: v for k, v in env.items() if k not in os.environ})
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, sys.orig_argv, env)
