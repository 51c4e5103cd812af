"""One process at a time per run folder: an OS file lock held while a command writes into the folder.

``run_lock(folder)`` takes an exclusive ``flock`` on ``folder/.lock`` for the life of the ``with`` block; a
second process asking for the same folder gets a one-line MixPathError at once (it does not wait). The lock
belongs to the open file, so the operating system drops it when its process ends, however it ends: the
lock of a killed run is taken over by the next command without any staleness guess. The file holds the
holder's process id, for the error message only.

The lock is re-entrant within a process (the pipeline holds its run folder while the training and search
it calls lock the same folder), and the file is removed on release, with the folder when the lock created
it and nothing else was written there: a command that fails before writing leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

from mixpath.errors import MixPathError

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")

LOCK_FILE = ".lock"

_held: dict[Path, int] = {}
"""Lock files this process holds -> how many ``run_lock`` blocks hold them (re-entrancy)."""


@contextlib.contextmanager
def run_lock(folder: Path | str, name: str = LOCK_FILE) -> Iterator[Path]:
    """Hold the lock of ``folder`` (created when missing) for the ``with`` block; yields the folder.

    ``name`` is the lock file's name: a file that several commands append to in a shared folder (a
    ground-truth CSV) takes a lock of its own, ``.NAME.lock``, so that writers of other files there go on."""
    folder = Path(folder)
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise MixPathError(f"cannot create the folder {folder}: {err.strerror or err}") from None
    path = folder.resolve() / name
    if path in _held:
        _held[path] += 1
        try:
            yield folder
        finally:
            _held[path] -= 1
        return
    fd = _acquire(folder, path)
    _held[path] = 1
    try:
        yield folder
    finally:
        del _held[path]
        with contextlib.suppress(OSError):
            path.unlink()  # before the unlock: a process that opened this file and locks it next sees it is gone
        os.close(fd)
        if created:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty: the command wrote nothing


def _acquire(folder: Path, path: Path) -> int:
    """An open descriptor of ``path`` holding its lock. A lock file that was unlinked between our open and our
    lock (its holder released it) is not the lock any more, so the open is retried on the current file."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise MixPathError(f"cannot lock the folder {folder}: {path}: {err.strerror or err}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise MixPathError(
                f"{folder} is in use by another mixpath process{f' (pid {holder})' if holder else ''}; "
                "wait for it to end, or use another folder"
            ) from None
        except OSError as err:
            os.close(fd)
            raise MixPathError(f"cannot lock the folder {folder}: {err.strerror or err}") from None
        try:
            current = os.stat(path)
        except FileNotFoundError:
            current = None
        mine = os.fstat(fd)
        if current is not None and (current.st_ino, current.st_dev) == (mine.st_ino, mine.st_dev):
            break
        os.close(fd)
    previous = _holder(fd)
    if previous and previous != str(os.getpid()):
        log.info("%s: taking over the lock of process %s, which has ended", folder, previous)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _holder(fd: int) -> str:
    """The process id written in an open lock file ('' when none)."""
    try:
        return os.pread(fd, 32, 0).decode(errors="replace").strip()
    except OSError:
        return ""


def file_lock(path: Path | str) -> contextlib.AbstractContextManager[Path]:
    """The lock of one file that commands append to (``.NAME.lock`` beside it), for a folder that other
    commands write other files into at the same time; yields the file's folder."""
    path = Path(path)
    return run_lock(path.parent, f".{path.name}.lock")


def locking_run_folder(function: Callable[Concatenate[Path | str, P], T]) -> Callable[Concatenate[Path | str, P], T]:
    """Decorate a function whose first argument is a run folder so that it holds the folder's lock while it runs."""

    @functools.wraps(function)
    def locked(run_dir: Path | str, *args: P.args, **kwargs: P.kwargs) -> T:
        with run_lock(run_dir):
            return function(run_dir, *args, **kwargs)

    return locked
