"""Architectures: for every searchable layer, the set of active paths plus its other choices.

The canonical string is short and readable, one token per layer joined by ``-``::

    e6:k3+k5-e3:k7-e6:k3+k5+k7+k9

A layer token is ``[options ":"] paths``: options are ``<letters><number>`` pairs joined by ``,``
(``e6`` = expansion ratio 6, ``c0.5`` = channel scale 0.5) and paths are op names joined by ``+``.
``Architecture.parse(str(a)) == a`` for every architecture, and the JSON form round-trips the same way.
Whether an architecture fits a search space is the space's question (``SearchSpace.validate``).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from mixpath.errors import MixPathError

OptionValue = int | float

_OP_NAME = re.compile(r"^[A-Za-z0-9_.]+$")
_OPTION = re.compile(r"^([A-Za-z]+)(-?[0-9]+(?:\.[0-9]+)?)$")


def _natural_key(name: str) -> tuple:
    """Sort ``k3`` before ``k11``: digits compare as numbers."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def _format_value(value: OptionValue) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _parse_value(text: str) -> OptionValue:
    try:
        return float(text) if "." in text else int(text)
    except ValueError:  # more digits than Python converts
        raise MixPathError(f"option value {text[:20]}... has too many digits") from None


@dataclass(frozen=True)
class LayerChoice:
    """What one searchable layer runs: ``paths`` (op names, canonical order) and ``options`` (sorted pairs)."""

    paths: tuple[str, ...]
    options: tuple[tuple[str, OptionValue], ...] = ()

    @classmethod
    def of(cls, paths: Any, **options: OptionValue) -> LayerChoice:
        """Build a choice from any iterable of op names and keyword options, in canonical order."""
        paths = list(paths)
        for name in paths:
            if not isinstance(name, str) or not _OP_NAME.match(name):
                raise MixPathError(f"op name {name!r} must be text of letters, digits, '_' and '.'")
        names = tuple(sorted(set(paths), key=_natural_key))
        if not names:
            raise MixPathError("a layer needs at least one active path, got an empty set")
        for key, value in options.items():
            if not key.isalpha():
                raise MixPathError(f"option name {key!r} may only hold letters")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise MixPathError(f"option {key}={value!r} must be a finite number")
        return cls(names, tuple(sorted(options.items())))

    def option(self, key: str) -> OptionValue:
        for name, value in self.options:
            if name == key:
                return value
        raise KeyError(key)

    def __str__(self) -> str:
        paths = "+".join(self.paths)
        if not self.options:
            return paths
        opts = ",".join(f"{key}{_format_value(value)}" for key, value in self.options)
        return f"{opts}:{paths}"

    @classmethod
    def parse(cls, token: str) -> LayerChoice:
        token = token.strip()
        opts_text, _, paths_text = token.rpartition(":")
        options: dict[str, OptionValue] = {}
        if opts_text:
            for opt in opts_text.split(","):
                match = _OPTION.match(opt)
                if not match:
                    raise MixPathError(
                        f"malformed option {opt!r} in layer {token!r}: expected letters then a number, e.g. e6"
                    )
                options[match.group(1)] = _parse_value(match.group(2))
        paths = [p for p in paths_text.split("+")]
        if any(p == "" for p in paths):
            raise MixPathError(f"malformed layer {token!r}: expected op names joined by '+', e.g. k3+k5")
        if len(set(paths)) != len(paths):
            raise MixPathError(f"layer {token!r} names a path twice")
        return cls.of(paths, **options)


@dataclass(frozen=True)
class Architecture:
    """An immutable, hashable choice for every searchable layer of a space."""

    layers: tuple[LayerChoice, ...]

    def __str__(self) -> str:
        return "-".join(str(layer) for layer in self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    @property
    def path_counts(self) -> tuple[int, ...]:
        return tuple(len(layer.paths) for layer in self.layers)

    @classmethod
    def parse(cls, text: str) -> Architecture:
        """Parse the canonical string; raises MixPathError naming the bad part."""
        if not isinstance(text, str) or not text.strip():
            raise MixPathError(f"malformed architecture {text!r}: expected e.g. 'e6:k3+k5-e3:k7'")
        return cls(tuple(LayerChoice.parse(token) for token in text.strip().split("-")))

    def to_json(self) -> dict[str, Any]:
        return {
            "arch": str(self),
            "layers": [{"paths": list(layer.paths), **dict(layer.options)} for layer in self.layers],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | str) -> Architecture:
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except (json.JSONDecodeError, RecursionError) as err:
                raise MixPathError(f"architecture JSON does not parse: {str(err).splitlines()[0]}") from None
        if not isinstance(data, dict) or not isinstance(data.get("layers"), list):
            raise MixPathError("architecture JSON needs a 'layers' list of {'paths': [...], options...}")
        layers = []
        for i, layer in enumerate(data["layers"]):
            if not isinstance(layer, dict) or not isinstance(layer.get("paths"), list):
                raise MixPathError(f"architecture JSON layer {i} needs a 'paths' list")
            options = {k: v for k, v in layer.items() if k != "paths"}
            layers.append(LayerChoice.of(layer["paths"], **options))
        return cls(tuple(layers))
