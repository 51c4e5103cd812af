"""Atomic files: a write either lands whole or not at all, so a killed run never leaves a torn file."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from mixpath.errors import MixPathError


def atomic_write(path: Path | str, write: Callable[[IO[bytes]], object]) -> None:
    """Call ``write(handle)`` on a temp file in ``path``'s folder, fsync, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
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


def read_json(path: Path | str) -> Any:
    """Read JSON; a missing or malformed file is a one-line MixPathError naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise MixPathError(f"{path} does not exist") from None
    except json.JSONDecodeError as err:
        raise MixPathError(f"{path} is not valid JSON: {err}") from None
