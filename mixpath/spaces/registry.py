"""A name -> search space registry, so the CLI and configs can refer to spaces by name."""

from __future__ import annotations

from mixpath.errors import MixPathError
from mixpath.spaces.space import SearchSpace

_SPACES: dict[str, SearchSpace] = {}


def register_space(space: SearchSpace, *, replace: bool = False) -> SearchSpace:
    """Add ``space`` under its name; a second space of the same name is an error unless ``replace``."""
    if space.name in _SPACES and not replace:
        raise MixPathError(f"a search space named {space.name!r} is already registered")
    _SPACES[space.name] = space
    return space


def get_space(name: str) -> SearchSpace:
    """Look a space up by name, with the list of known names in the error."""
    if name not in _SPACES:
        raise MixPathError(f"unknown search space {name!r}; known spaces: {', '.join(sorted(_SPACES))}")
    return _SPACES[name]


def list_spaces() -> list[SearchSpace]:
    return [_SPACES[name] for name in sorted(_SPACES)]
