"""A faster CPU runtime for the ``mixpath`` command: tcmalloc or jemalloc, and OpenMP threads that sleep.

Two process-wide settings that only take effect when a process starts, so the CLI re-executes itself once
with them (``reexec_with_fast_runtime``; the process id stays the same, so torchrun is not disturbed):

- ``LD_PRELOAD`` of tcmalloc (Debian ``libtcmalloc-minimal4``) or else jemalloc (``libjemalloc2``), when
  installed. glibc's malloc hands the large activation buffers of every training step back to the
  kernel and faults them in again, zeroed, on the next step; tcmalloc and jemalloc keep them.
- ``OMP_WAIT_POLICY=PASSIVE``: OpenMP threads sleep at the end of a parallel region instead of spinning.
  On cores shared with other jobs, a spinning thread takes the core from the thread the others wait for,
  and each of the hundreds of parallel regions of a training step can stall for a scheduler time slice
  (measured here: 2 threads on 2 busy cores trained 3-30x slower than with PASSIVE). On an idle machine
  the cost is a thread wake-up (microseconds) per region.

Settings the user made win: an ``LD_PRELOAD`` or ``OMP_WAIT_POLICY`` already in the environment is left
alone, and ``MIXPATH_FAST_RUNTIME=0`` turns both off. Nothing happens when neither setting is needed.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
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


def fast_runtime_env(environ: Mapping[str, str], allocator: Path | None) -> dict[str, str] | None:
    """The environment to re-execute with, or None when nothing would change (or the user said no)."""
    if environ.get(SWITCH) is not None:
        return None
    changes = {}
    if allocator is not None and not environ.get("LD_PRELOAD"):
        changes["LD_PRELOAD"] = str(allocator)
    if not environ.get("OMP_WAIT_POLICY"):
        changes["OMP_WAIT_POLICY"] = "PASSIVE"
    if not changes:
        return None
    return {**environ, **changes, SWITCH: "1"}


def reexec_with_fast_runtime() -> None:
    """Replace this process by itself started with ``fast_runtime_env`` (does not return), if it changes
    anything; call first thing in the CLI, before threads or large allocations exist."""
    env = fast_runtime_env(os.environ, find_allocator())
    if env is None or not sys.orig_argv:
        return
    log.debug("re-executing with LD_PRELOAD=%s OMP_WAIT_POLICY=%s", env.get("LD_PRELOAD"), env["OMP_WAIT_POLICY"])
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, sys.orig_argv, env)
