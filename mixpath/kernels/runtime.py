"""A faster CPU runtime: tcmalloc or jemalloc, and OpenMP waiting fit to the load, at start and while running.

Two process-wide settings only take effect when a process starts, so the ``mixpath`` command re-executes
itself once with them (``reexec_with_fast_runtime``; the process id stays the same, so torchrun is not
disturbed); a library cannot, so Python programs get them only from their own command line (README):

- ``LD_PRELOAD`` of tcmalloc (Debian ``libtcmalloc-minimal4``) or else jemalloc (``libjemalloc2``), when
  installed. glibc's malloc hands the large activation buffers of every training step back to the
  kernel and faults them in again, zeroed, on the next step; tcmalloc and jemalloc keep them.
- How OpenMP threads wait between parallel regions (``openmp_wait_env``). A training step of a small
  supernet is thousands of short parallel regions. On cores that other jobs use, a spinning thread takes
  the core from the thread the others wait for and a region can stall for a scheduler time slice, so there
  threads must sleep (``OMP_WAIT_POLICY=PASSIVE``). On idle cores sleeping costs a wake-up per region, so
  there ``GOMP_SPINCOUNT=3000``: spin briefly (tens of microseconds), then sleep. (libgomp's default spins
  100x longer.) docs/speed.md has the measurements behind both choices. On Linux the command starts with
  the short spin and leaves the busy case to ``waiting_follows_load`` (below); elsewhere it chooses from
  the load at start (``openmp_wait_at_start``).

While a process trains or searches, ``waiting_follows_load`` keeps OpenMP's waiting right as other jobs
come and go, for the command and for Python programs alike (``train_supernet``, ``train_standalone`` and
``search_supernet`` enter it). GNU OpenMP reads its spin count once, when torch loads it, and has no call to
change it; but every waiting thread spins only ~100 iterations before sleeping while the runtime manages
more threads than the process has cores (libgomp's "throttled" spin). So while other processes keep the
cores busy (``shares_cores``, checked every second from ``/proc/stat``, this process's own CPU time
subtracted), a helper thread holds an idle OpenMP team of its own (``OversubscribedTeam``), and lets it go
when they leave. The thread count is never changed: it changes how float sums are split, and so the
trained weights (all but 2 of fmnist-s1's 146 gradients differ in their last bits between 1 and 2 threads),
which would make a run's result depend on the machine's load and break bit-identical resumption.

Settings the user made win: an ``LD_PRELOAD``, ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` already in the
environment is left alone (and ``OMP_WAIT_POLICY`` or ``OMP_THREAD_LIMIT`` turn the follower off), and
``MIXPATH_FAST_RUNTIME=0`` turns all off. Nothing happens when no setting is needed. This module imports no
torch: the CLI calls it before anything else, and re-executes.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
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


def shares_cores(load: float, cores: int, threads: int) -> bool:
    """Whether ``threads`` threads on ``cores`` cores share them with other jobs that keep ``load`` cores busy,
    i.e. the others do not leave our threads a core each (within half a core): then waiting threads must sleep."""
    return load + threads > cores + 0.5


def openmp_wait_env(load: float, cores: int, threads: int) -> dict[str, str]:
    """The OpenMP waiting for ``threads`` threads on ``cores`` cores while other jobs keep ``load`` cores
    busy: a short spin when they leave our threads a core each (within half a core), else sleeping."""
    if not shares_cores(load, cores, threads):
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
    cores = usable_cores()
    threads = environ.get("OMP_NUM_THREADS", "")
    load = min(os.getloadavg()[0], busy_cores())
    return openmp_wait_env(load, cores, int(threads) if threads.isdigit() else cores)


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), which is what GNU OpenMP counts at start."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


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


def openmp_wait_at_start(environ: Mapping[str, str]) -> dict[str, str]:
    """The command's OpenMP waiting: the short spin where ``waiting_follows_load`` makes threads sleep while
    other jobs share the cores (Linux, where torch brings GNU OpenMP), else the choice for the load at start."""
    if sys.platform.startswith("linux"):
        return {"GOMP_SPINCOUNT": SPIN_COUNT}
    return openmp_wait_here(environ)


def fast_runtime_changes(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables ``reexec_with_fast_runtime`` would set under ``environ`` (none when it would not re-execute)."""
    env = fast_runtime_env(environ, find_allocator(), lambda: openmp_wait_at_start(environ)) or {}
    return {key: value for key, value in env.items() if environ.get(key) != value}


def reexec_with_fast_runtime() -> None:
    """Replace this process by itself started with ``fast_runtime_env`` (does not return), if it changes
    anything; call first thing in the CLI, before threads or large allocations exist."""
    env = fast_runtime_env(os.environ, find_allocator(), lambda: openmp_wait_at_start(os.environ))
    if env is None or not sys.orig_argv:
        return
    log.debug("re-executing with %s", {k: v for k, v in env.items() if k not in os.environ})
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, sys.orig_argv, env)


@dataclass(frozen=True)
class CpuTimes:
    """Seconds of CPU time the whole machine (all cores) and this process (all threads) had used at ``wall``
    (``time.monotonic()``)."""

    wall: float
    machine: float
    process: float


def cpu_times() -> CpuTimes | None:
    """``CpuTimes`` now, from ``/proc/stat`` and ``os.times``; None where there is no ``/proc/stat``."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:9]]  # user nice system idle iowait irq softirq steal
    except (OSError, ValueError):
        return None
    own = os.times()
    busy = sum(ticks) - ticks[3] - ticks[4]
    return CpuTimes(time.monotonic(), busy / os.sysconf("SC_CLK_TCK"), own.user + own.system)


def others_load(before: CpuTimes, after: CpuTimes) -> float:
    """How many cores other processes kept busy between two ``CpuTimes``: the machine's busy time less ours."""
    seconds = after.wall - before.wall
    if seconds <= 0:
        return 0.0
    return max(0.0, (after.machine - before.machine - (after.process - before.process)) / seconds)


def loaded_libgomp() -> ctypes.CDLL | None:
    """GNU OpenMP as this process has loaded it (torch's own copy, ``torch/lib/libgomp*.so.1``, before any
    other), or None when none is loaded (no torch yet, or an OpenMP of another make)."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "/libgomp" in line}
    except OSError:
        return None
    for path in sorted(paths, key=lambda path: ("torch" not in path, path)):
        try:
            gomp = ctypes.CDLL(path, mode=os.RTLD_NOLOAD | os.RTLD_LAZY)  # the copy in memory, never a new one
            parallel = gomp.GOMP_parallel
        except (OSError, AttributeError):
            continue
        parallel.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
        parallel.restype = None
        return gomp
    return None


def team_size(cores: int, threads: int) -> int:
    """Threads an idle team needs so that GNU OpenMP manages more threads than ``cores`` beside a main team of
    ``threads``; 0 when there is nothing to do: one thread never waits, and more threads than cores are
    already more."""
    if threads <= 1 or threads > cores:
        return 0
    return cores - threads + 2


class OversubscribedTeam:
    """An idle OpenMP team of ``size`` threads, held by a helper thread until ``release``, so that GNU OpenMP
    manages more threads than the process has cores and every waiting thread of the process spins only
    briefly before it sleeps.

    libgomp lets a waiting thread spin ``GOMP_SPINCOUNT`` times (300,000 by default, milliseconds) before it
    sleeps, except while the threads it manages outnumber the cores it found at start: then at most 100 times
    (its "throttled" spin count). The team's extra threads sleep at once and cost nothing but their stacks.
    Its threads run ``free(NULL)``, a C function that does nothing, so that none of them needs Python.
    Releasing ends the helper thread, and libgomp frees its team and counts the threads out again.
    """

    def __init__(self, gomp: ctypes.CDLL, size: int) -> None:
        self.size = size
        self._gomp = gomp
        self._released = threading.Event()
        self._thread = threading.Thread(target=self._hold, name="mixpath-openmp-team", daemon=True)
        self._thread.start()

    def _hold(self) -> None:
        noop = ctypes.cast(ctypes.CDLL(None).free, ctypes.c_void_p)
        self._gomp.GOMP_parallel(noop, None, self.size, 0)
        self._released.wait()

    def release(self) -> None:
        self._released.set()
        self._thread.join()


FIRST_CHECK = 0.1
"""Seconds after start of the first look at the load, so that a busy machine is seen before the first steps."""


class LoadFollower:
    """Every ``period`` seconds, from the cores other processes kept busy meanwhile (``others_load``), holds an
    idle team (``hold(size)``, an ``OversubscribedTeam``) while they share the cores with this process's
    ``threads`` OpenMP threads (``shares_cores``), and lets it go when they leave. ``times`` is a seam for tests."""

    def __init__(
        self,
        threads: int,
        hold: Callable[[int], OversubscribedTeam],
        cores: int | None = None,
        period: float = 1.0,
        times: Callable[[], CpuTimes | None] | None = None,
    ) -> None:
        self.threads = threads
        self.cores = cores if cores is not None else usable_cores()
        self.period = period
        self.team: OversubscribedTeam | None = None
        self.load: float | None = None
        """The cores other processes kept busy over the last period (None before the first look)."""
        self._hold = hold
        self._times = times or cpu_times
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mixpath-openmp-load", daemon=True)

    def start(self) -> LoadFollower:
        self._thread.start()
        return self

    def _run(self) -> None:
        before, wait = self._times(), FIRST_CHECK
        while before is not None and not self._stopped.wait(wait):
            after = self._times()
            if after is None:
                return
            self.follow(others_load(before, after))
            before, wait = after, self.period

    def follow(self, load: float) -> None:
        """Hold the idle team, or let it go, for other processes keeping ``load`` cores busy."""
        self.load = load
        size = team_size(self.cores, self.threads) if shares_cores(load, self.cores, self.threads) else 0
        if self.team is not None and self.team.size != size:
            self.team.release()
            self.team = None
            log.debug("OpenMP threads spin again: other processes keep %.1f cores busy", load)
        if size and self.team is None:
            self.team = self._hold(size)
            log.debug("OpenMP threads sleep at once: other processes keep %.1f cores busy", load)

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join()
        if self.team is not None:
            self.team.release()
            self.team = None


_followers_lock = threading.Lock()
_follower: LoadFollower | None = None
_entered = 0


@contextlib.contextmanager
def waiting_follows_load(environ: Mapping[str, str] = os.environ) -> Iterator[LoadFollower | None]:
    """While inside, this process's OpenMP threads sleep at once whenever other processes share its cores and
    spin briefly when they do not (``LoadFollower``); nested uses share one follower, and leaving the last
    stops it and restores OpenMP's own waiting. Call it from the thread that computes, with torch imported
    (it reads that thread's ``torch.get_num_threads()``).

    Nothing happens where the user chose: ``OMP_WAIT_POLICY`` (waiting chosen), ``OMP_THREAD_LIMIT`` (the
    idle team would count against it and could take threads from the computing team), or
    ``MIXPATH_FAST_RUNTIME=0``; nor where no GNU OpenMP is loaded (macOS, Windows, other builds of torch).
    """
    global _follower, _entered
    with _followers_lock:
        if _entered == 0 and follows_load(environ):
            import torch

            threads = torch.get_num_threads()
            gomp = loaded_libgomp() if team_size(usable_cores(), threads) else None
            if gomp is not None:
                _follower = LoadFollower(threads, functools.partial(OversubscribedTeam, gomp)).start()
        _entered += 1
    try:
        yield _follower
    finally:
        with _followers_lock:
            _entered -= 1
            if _entered == 0 and _follower is not None:
                _follower.stop()
                _follower = None


def follows_load(environ: Mapping[str, str]) -> bool:
    """Whether ``waiting_follows_load`` may act under ``environ`` (see there)."""
    return environ.get(SWITCH) != "0" and not environ.get("OMP_WAIT_POLICY") and not environ.get("OMP_THREAD_LIMIT")


if __name__ == "__main__":
    # env $(python3 -m mixpath.kernels.runtime) python3 my_script.py: a Python program with the command's runtime
    print(" ".join(f"{key}={value}" for key, value in fast_runtime_changes(os.environ).items()))
