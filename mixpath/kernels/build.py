"""The CPU kernels' library: compiled once per user and machine into a cache, loaded only when it verifies.

The C source ships as package data (``csrc/``): ``prelude.c``, then ``depthwise.c`` twice, with ``@L@``
read as 8 and then as 16 (channel blocks of 8 floats, and of 16 where the channel count allows: one
AVX-512 register), then ``batch_norm.c``, as one translation unit. The system C compiler (``$CC``, else
``cc``) builds it with ``FLAGS`` in a few seconds at first use: no torch headers, no build step at install.

Cache layout: ``$XDG_CACHE_HOME/mixpath/kernels/<key>/`` (default ``~/.cache/mixpath/kernels/<key>/``),
where ``<key>`` is the start of ``built_from_sha256``, the sha256 of the source, the flags and the CPU (a
library built with ``-march=native`` runs only where it was built). The folder holds

- ``mixpath_kernels.so``: the library;
- ``build.json``: ``library_sha256`` (of the .so), ``built_from_sha256``, the compiler and the flags;
- ``lock``: the file ``flock``-ed while a process checks and builds.

Why each step: a library is loaded only when the .so's sha256 and ``built_from_sha256`` match the record.
Loading runs the library's code (its constructors), and a truncated library gets mapped past its end,
which kills the process with SIGBUS and no message; so a truncated, damaged or planted library is rebuilt,
never loaded, and only a folder and files owned by this user (or root) and writable by nobody else are
trusted. Processes that start together take the lock in turn: the first builds, the others find the
library verified. The library and its record are written under temporary names and renamed into place,
so a reader sees a complete file or none. A read-only cache that holds a verified library is used as it is.
"""

from __future__ import annotations

import ctypes
import fcntl
import hashlib
import json
import logging
import os
import platform
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

SOURCE_DIR = Path(__file__).parent / "csrc"
BLOCKS = (8, 16)
"""The channel-block widths ``depthwise.c`` is built for."""
FLAGS = ("-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", "-lm")
"""Part of the numbers: the same source built with other flags may round differently."""
LIBRARY = "mixpath_kernels.so"
RECORD = "build.json"
LOCK = "lock"


def source() -> str:
    """The translation unit: the files of ``csrc/`` in the order the module docstring gives."""
    depthwise = (SOURCE_DIR / "depthwise.c").read_text()
    return "".join(
        [
            (SOURCE_DIR / "prelude.c").read_text(),
            *(depthwise.replace("@L@", str(lanes)) for lanes in BLOCKS),
            (SOURCE_DIR / "batch_norm.c").read_text(),
        ]
    )


def built_from_sha256(text: str) -> str:
    """The sha256 of what a library built from ``text`` depends on: the source, the flags and the CPU."""
    cpu = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        cpu = next((line for line in cpuinfo.read_text().splitlines() if line.startswith(("flags", "Features"))), "")
    return hashlib.sha256("\n".join([text, " ".join(FLAGS), platform.machine(), cpu]).encode()).hexdigest()


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mixpath" / "kernels"


def load_library() -> tuple[ctypes.CDLL, str]:
    """The kernels' library and its sha256, built first when the cache holds no verified one. Raises
    OSError when there is none to be had (no compiler, a failed build, a read-only or untrusted cache)."""
    text = source()
    digest = built_from_sha256(text)
    folder = cache_root() / digest[:16]
    library = _verified(folder, digest)
    if library is None:
        with _locked(folder):
            library = _verified(folder, digest)
            if library is None:
                _build(folder, text, digest)
                library = _verified(folder, digest)
        if library is None:
            raise OSError(f"the library built in {folder} does not match its record")
    return ctypes.CDLL(str(folder / LIBRARY)), library


def _trusted(path: Path) -> bool:
    """Owned by this user or root, and writable by nobody else: nobody else could have put code there."""
    status = path.stat()
    return status.st_uid in (os.getuid(), 0) and not status.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _verified(folder: Path, digest: str) -> str | None:
    """The sha256 of ``folder``'s library when its record vouches for it and for ``digest``, else None."""
    if not folder.is_dir():
        return None
    if not _trusted(folder):
        raise OSError(f"{folder} is writable by other users or owned by another; not loading code from it")
    try:
        record = json.loads((folder / RECORD).read_text())
        library = folder / LIBRARY
        if record.get("built_from_sha256") != digest or not _trusted(library):
            return None
        actual = _sha256(library)
    except (OSError, ValueError, AttributeError):  # missing, unreadable, not JSON, not an object
        return None
    return actual if record.get("library_sha256") == actual else None


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (created, private); closing the file releases it, also when
    the process dies."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(folder / LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _build(folder: Path, text: str, digest: str) -> None:
    """Compile ``text`` into ``folder``'s library and write its record, each renamed into place."""
    compiler = shutil.which(os.environ.get("CC", "cc"))
    if compiler is None:
        raise OSError("no C compiler (cc) on PATH")
    log.info("compiling mixpath's CPU kernels into %s (once per machine)", folder)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        c_file, built, record = Path(tmp) / "mixpath_kernels.c", Path(tmp) / LIBRARY, Path(tmp) / RECORD
        c_file.write_text(text)
        result = subprocess.run([compiler, *FLAGS, str(c_file), "-o", str(built)], capture_output=True, text=True)
        if result.returncode:
            raise OSError(f"{compiler} failed: {(result.stderr.strip().splitlines() or ['no message'])[-1]}")
        built.chmod(0o755)
        version = subprocess.run([compiler, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
        fields = {"library_sha256": _sha256(built), "built_from_sha256": digest, "compiler": version}
        record.write_text(json.dumps({**fields, "flags": list(FLAGS)}, indent=2) + "\n")
        os.replace(built, folder / LIBRARY)
        os.replace(record, folder / RECORD)
