"""Atomic files: a write either lands whole or not at all, so a killed run never leaves a torn file."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from mixpath.errors import MixPathError


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: Path | str, write: Callable[[IO[bytes]], object]) -> None:
    """Call ``write(handle)`` on a temp file in ``path``'s folder, fsync, then rename it over ``path``.

    The temp file gets the permissions a plain ``open`` would give (0666 less the umask): mkstemp makes it
    0600, which would leave every result file readable by its owner alone."""
    path = Path(path)
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
    except json.JSONDecodeError as err:
        raise MixPathError(f"{path} is not valid JSON: {err}") from None
