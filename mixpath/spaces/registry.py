"""A name -> search space registry, so the CLI and configs can refer to spaces by name.

The built-in spaces are registered by ``mixpath.spaces`` itself, except the NAS-Bench cells, which are declared
beside their model code (it imports torch). Those are listed in ``DECLARED_ELSEWHERE`` and imported on their
first lookup, so ``get_space("nb201")`` works whatever was imported before, and ``import mixpath.spaces``
stays light.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator

from mixpath.errors import MixPathError
from mixpath.spaces.space import SearchSpace

DECLARED_ELSEWHERE = {
    "nb201": ("mixpath.benchmarks_nas.nb201", "NB201"),
    "nb101": ("mixpath.benchmarks_nas.nb101", "NB101"),
}
"""Built-in spaces declared outside this package: name -> (module, attribute holding the space)."""

_SPACES: dict[str, SearchSpace] = {}


_REGISTERING: list[list[str]] = []
"""The name lists of ``registrations`` in progress (a space file being run), innermost last."""


def register_space(space: SearchSpace, *, replace: bool = False) -> SearchSpace:
    """Add ``space`` under its name. Registering an equal declaration again does nothing (a space file run
    twice, or once by a command and once from a run folder's copy); a different space of a registered name
    is an error unless ``replace``."""
    known = _SPACES.get(space.name)
    if known is not None and not replace and (known != space or known.skeleton != space.skeleton):
        raise MixPathError(f"a different search space named {space.name!r} is already registered")
    _SPACES[space.name] = space
    for names in _REGISTERING:
        names.append(space.name)
    return space


@contextlib.contextmanager
def registrations() -> Iterator[list[str]]:
    """The names of the spaces registered while inside, in order (again-registered equal ones included)."""
    names: list[str] = []
    _REGISTERING.append(names)
    try:
        yield names
    finally:
        _REGISTERING.remove(names)


def get_space(name: str) -> SearchSpace:
    """Look a space up by name, with the list of known names in the error."""
    if name not in _SPACES and name in DECLARED_ELSEWHERE:
        module, attribute = DECLARED_ELSEWHERE[name]
        register_space(getattr(importlib.import_module(module), attribute))
    if name not in _SPACES:
        known = sorted({*_SPACES, *DECLARED_ELSEWHERE})
        raise MixPathError(f"unknown search space {name!r}; known spaces: {', '.join(known)}")
    return _SPACES[name]


def list_spaces() -> list[SearchSpace]:
    """Every registered space, the built-in ones declared elsewhere included, by name."""
    return [get_space(name) for name in sorted({*_SPACES, *DECLARED_ELSEWHERE})]
