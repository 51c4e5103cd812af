"""Durable files: a write lands whole or not at all, so a killed run never leaves a torn file behind.

Whole files (results, state, checkpoints) are replaced atomically (``atomic_write``). Files that grow one
record at a time (the evaluation cache, the ground-truth CSV) are appended one line at a time
(``append_line``), and one rule holds for them: a last line without its newline is a torn write, from a
process killed mid-append, and is dropped (``read_lines`` leaves it out; the next append cuts it off).
"""

from __future__ import annotations

import contextlib
import csv
import glob
import io
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from mixpath.errors import MixPathError

log = logging.getLogger(__name__)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: Path | str, write: Callable[[IO[bytes]], object]) -> None:
    """Call ``write(handle)`` on a temp file in ``path``'s folder, fsync, then rename it over ``path``.

    The temp file gets the permissions a plain ``open`` would give (0666 less the umask): mkstemp makes it
    0600, which would leave every result file readable by its owner alone."""
    path = Path(path)
    with write_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            os.fchmod(fd, 0o666 & ~_umask())
            with os.fdopen(fd, "wb") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


@contextlib.contextmanager
def write_errors(path: Path | str) -> Iterator[None]:
    """Turn an OSError of writing ``path`` (a full disk, a read-only folder, a folder where the file belongs)
    into a one-line MixPathError naming the path and the cause."""
    try:
        yield
    except OSError as err:
        raise MixPathError(f"cannot write {path}: {err.strerror or err}") from None


def describe_os_error(err: OSError) -> str:
    """An OSError in one line: the file it names, then the cause."""
    cause = err.strerror or str(err) or type(err).__name__
    return f"{err.filename}: {cause}" if err.filename else cause


def remove_stale_temp_files(path: Path | str) -> None:
    """Delete the temp files of ``path`` that writers killed mid-write left behind (``.NAME.*.tmp``, see
    ``atomic_write``). Call it only while holding the folder's lock (``mixpath.runlock``): then no writer of
    ``path`` is alive."""
    path = Path(path)
    for stale in glob.glob(os.path.join(glob.escape(str(path.parent)), f".{glob.escape(path.name)}.*.tmp")):
        with contextlib.suppress(OSError):
            os.unlink(stale)
            log.info("removed %s, left behind by a write that was killed", stale)


def append_line(path: Path | str, line: str, header: str | None = None) -> None:
    """Append ``line`` and its newline to ``path``, flushed and fsynced: once this returns, the line survives a
    crash. A torn last line (no newline) is cut off first, so it never glues onto this one; ``header`` is
    written first when the file is new or empty."""
    if "\n" in line or (header is not None and "\n" in header):
        raise ValueError("append_line appends one line: no newline inside it")
    path = Path(path)
    with write_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a+b") as handle:  # writes go to the end, whatever the position
            size = handle.seek(0, os.SEEK_END)
            if size:
                handle.seek(size - 1)
                if handle.read(1) != b"\n":
                    handle.seek(0)
                    size = handle.read().rfind(b"\n") + 1
                    log.warning("%s: cutting off a torn last line (a writer killed mid-line)", path)
                    handle.truncate(size)
            text = line + "\n" if size or header is None else header + "\n" + line + "\n"
            handle.write(text.encode())
            handle.flush()
            os.fsync(handle.fileno())


def read_lines(path: Path | str) -> list[str]:
    """The complete lines of a file written by ``append_line``, without their newlines; a torn last line is
    left out (the file is not changed) and a missing file has none."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return text.split("\n")[:-1]


def write_text(path: Path | str, text: str) -> None:
    atomic_write(path, lambda handle: handle.write(text.encode()))


def write_json(path: Path | str, data: Any, indent: int | None = 2) -> None:
    """Write JSON atomically; indented for people to read unless ``indent=None`` (large state files)."""
    write_text(path, json.dumps(data, indent=indent) + "\n")


def write_csv(path: Path | str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write rows as CSV atomically, the union of their keys as columns in first-seen order."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


def read_json(path: Path | str) -> Any:
    """Read JSON; a missing or malformed file is a one-line MixPathError naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise MixPathError(f"{path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise MixPathError(f"{path} is not valid JSON: {str(err).splitlines()[0] or type(err).__name__}") from None
    except OSError as err:
        raise MixPathError(f"cannot read {path}: {err.strerror or err}") from None
