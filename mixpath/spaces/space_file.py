"""Search spaces declared in a Python file (``--space-file my_space.py``), and a run folder's copy of it.

A space file is a Python file that registers one or more spaces (``register_space(...)``; the README's
"Declaring a search space" snippet is one) and does nothing else. ``load_space_file`` runs it. A run trained
on a space from a file keeps a copy of the file (``RUN/space.py``, ``copy_space_file``), so that every later
command on the run, in another process, finds the space without being told (``load_run_spaces``), wherever
the original has gone since. The copy, not a path, because a run folder is moved and shared whole.
"""

from __future__ import annotations

import runpy
import traceback
from pathlib import Path

from mixpath.errors import MixPathError
from mixpath.io import write_text
from mixpath.spaces.registry import registrations

SPACE_FILE = "space.py"
"""A run folder's copy of the file that declares its space."""


def load_space_file(path: Path | str) -> list[str]:
    """Run the space file at ``path``; the names of the spaces it registers, in order. A missing file, one
    that fails, and one that registers no space are one-line errors (the failing line named)."""
    path = Path(path)
    if not path.is_file():
        raise MixPathError(f"space file {path} does not exist")
    with registrations() as names:
        try:
            runpy.run_path(str(path), run_name="mixpath_space_file")
        except MixPathError as err:
            raise MixPathError(f"space file {path}: {err}") from None
        except Exception as err:
            lines = [frame.lineno for frame in traceback.extract_tb(err.__traceback__) if frame.filename == str(path)]
            where = f", line {lines[-1]}" if lines else ""
            raise MixPathError(f"space file {path}{where}: {type(err).__name__}: {err}") from None
    if not names:
        raise MixPathError(f"space file {path} registers no search space (call mixpath.spaces.register_space)")
    return list(dict.fromkeys(names))


def space_from_file(path: Path | str, name: str | None) -> str:
    """Load the space file at ``path`` and return the space to use: ``name``, which the file must declare,
    or, without one, the file's only space."""
    names = load_space_file(path)
    if name is None:
        if len(names) > 1:
            raise MixPathError(f"space file {path} declares {', '.join(names)}; choose one with --space")
        return names[0]
    if name not in names:
        raise MixPathError(f"space file {path} does not declare {name!r} (it declares {', '.join(names)})")
    return name


def copy_space_file(path: Path | str, run_dir: Path | str) -> Path:
    """Copy the space file at ``path`` into the run folder (``RUN/space.py``) and return the copy's path."""
    copy = Path(run_dir) / SPACE_FILE
    if Path(path).resolve() != copy.resolve():
        write_text(copy, Path(path).read_text())
    return copy


def load_run_spaces(run_dir: Path | str) -> list[str]:
    """Register the spaces of the run folder's space file, if it has one (none: the run's space is built in)."""
    copy = Path(run_dir) / SPACE_FILE
    return load_space_file(copy) if copy.is_file() else []
