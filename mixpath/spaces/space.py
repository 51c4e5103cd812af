"""Search spaces declared as data: a list of searchable layers plus the fixed skeleton around them.

A space says *what* may be chosen; the supernet family named by ``family`` says how to build it.
``m`` (the most paths a layer may activate at once) is not part of the space: the same space is
searched single-path (m=1) or multi-path (m=2..n), so ``size``, ``validate`` and sampling take it.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mixpath.errors import MixPathError
from mixpath.spaces.architecture import Architecture, LayerChoice, OptionValue


@dataclass(frozen=True)
class LayerSpec:
    """One searchable layer: candidate ops (paths), extra per-layer choices, and its fixed shape."""

    ops: tuple[str, ...]
    options: tuple[tuple[str, tuple[OptionValue, ...]], ...] = ()
    in_channels: int = 0
    out_channels: int = 0
    stride: int = 1
    # fixed per-layer settings the family reads, not searched (e.g. ("act", "swish"), ("se", 0.25))
    attrs: tuple[tuple[str, Any], ...] = ()

    @property
    def n_ops(self) -> int:
        return len(self.ops)

    def attr(self, key: str, default: Any = None) -> Any:
        """A fixed setting of this layer, or ``default`` when the space does not set it."""
        return dict(self.attrs).get(key, default)

    def option_values(self, key: str) -> tuple[OptionValue, ...]:
        for name, values in self.options:
            if name == key:
                return values
        raise KeyError(key)

    def n_choices(self, m: int) -> int:
        """How many distinct choices this layer has when up to ``m`` paths may be active."""
        subsets = sum(math.comb(self.n_ops, k) for k in range(1, min(m, self.n_ops) + 1))
        return subsets * math.prod(len(values) for _, values in self.options)


@dataclass(frozen=True)
class SearchSpace:
    """A named search space. ``skeleton`` holds the family's fixed parts (stem, head, ...)."""

    name: str
    description: str
    family: str
    input_shape: tuple[int, int, int]
    num_classes: int
    layers: tuple[LayerSpec, ...]
    skeleton: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    default_m: int = 4

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    def max_m(self) -> int:
        """The largest m: every op of a layer, unless the skeleton caps it (``max_m``, e.g. 1 for SPOS)."""
        return min(max(layer.n_ops for layer in self.layers), self.skeleton.get("max_m", math.inf))

    def size(self, m: int) -> int:
        """Number of architectures when every layer may activate 1..m paths."""
        return math.prod(layer.n_choices(m) for layer in self.layers)

    @property
    def takes_any_input_size(self) -> bool:
        """Whether the networks of this space take images of any height and width: true of every family whose
        head pools globally (all built-in ones); a space sets ``fixed_input_size`` in its skeleton if not."""
        return not self.skeleton.get("fixed_input_size", False)

    def with_input_size(self, size: int) -> SearchSpace:
        """This space for ``size`` x ``size`` images (FLOPs, latency and exports follow the input size); the space
        itself when that is its size, an error for a space that takes one size only."""
        if (size, size) == self.input_shape[1:]:
            return self
        if not self.takes_any_input_size:
            height, width = self.input_shape[1:]
            raise MixPathError(
                f"space {self.name!r} takes {height}x{width} images only (its head does not pool globally), not "
                f"{size}x{size}: use --image-size {height}"
            )
        return dataclasses.replace(self, input_shape=(self.input_shape[0], size, size))

    def check_data(self, input_shape: tuple[int, ...], num_classes: int, data: str) -> None:
        """A one-line error saying how to fit them unless images of ``input_shape`` (C x H x W) in ``num_classes``
        classes of dataset ``data`` fit this space: channels and classes must be the space's, and the height and
        width too for a space that does not take any size."""
        channels, classes = self.input_shape[0], self.num_classes
        declare = "declare one in a space file (--space-file) with"
        if input_shape[0] != channels:
            raise MixPathError(
                f"space {self.name!r} takes {channels}-channel images, data {data!r} has {input_shape[0]} channels: "
                f"choose a space for {input_shape[0]}-channel input or {declare} input_shape=({input_shape[0]}, ...)"
            )
        if num_classes != classes:
            raise MixPathError(
                f"space {self.name!r} classifies {classes} classes, data {data!r} has {num_classes}: "
                f"choose a space with {num_classes} classes or {declare} num_classes={num_classes}"
            )
        if tuple(input_shape[1:]) != self.input_shape[1:] and not self.takes_any_input_size:
            height, width = self.input_shape[1:]
            raise MixPathError(
                f"space {self.name!r} takes {height}x{width} images only (its head does not pool globally), data "
                f"{data!r} has {input_shape[1]}x{input_shape[2]}: use --image-size {height} with --data imagefolder"
            )

    def check_m(self, m: int) -> int:
        if not isinstance(m, int) or m < 1 or m > self.max_m():
            raise MixPathError(f"m={m!r} is not allowed for space {self.name!r}: choose 1..{self.max_m()}")
        return m

    def validate(self, arch: Architecture, m: int) -> Architecture:
        """Return ``arch`` if it belongs to this space with up to ``m`` paths, else raise MixPathError."""
        if len(arch.layers) != len(self.layers):
            raise MixPathError(
                f"architecture has {len(arch.layers)} layers, space {self.name!r} has {len(self.layers)}"
            )
        for i, (choice, spec) in enumerate(zip(arch.layers, self.layers, strict=True)):
            unknown = [p for p in choice.paths if p not in spec.ops]
            if unknown:
                raise MixPathError(f"layer {i}: unknown op {unknown[0]!r}; allowed: {', '.join(spec.ops)}")
            if len(choice.paths) > m:
                raise MixPathError(f"layer {i}: {len(choice.paths)} active paths, but m={m} allows at most {m}")
            given = dict(choice.options)
            expected = {key for key, _ in spec.options}
            if set(given) != expected:
                want = ", ".join(sorted(expected)) or "none"
                raise MixPathError(f"layer {i}: options {sorted(given)} given, space wants: {want}")
            for key, values in spec.options:
                if given[key] not in values:
                    allowed = ", ".join(str(v) for v in values)
                    raise MixPathError(f"layer {i}: {key}={given[key]} is not allowed; allowed: {allowed}")
        return arch

    def parse(self, text: str, m: int) -> Architecture:
        """Parse an architecture string (or JSON) and check it against this space."""
        text = text.strip()
        arch = Architecture.from_json(text) if text.startswith("{") else Architecture.parse(text)
        return self.validate(arch, m)

    def format(self, arch: Architecture) -> str:
        """The canonical string of ``arch`` in this space (families with their own notation override it)."""
        return str(arch)

    def random_architecture(
        self, rng: random.Random, m: int, path_weights: Sequence[float] | None = None
    ) -> Architecture:
        """MixPath's sampling rule per layer: path count uniform in 1..m, a uniform subset, options uniform.
        ``path_weights``: relative probabilities of 1, 2, ..., m paths instead (a layer with fewer ops than m
        uses the first ones); None keeps MixPath's uniform count and its random stream."""
        layers = []
        for spec in self.layers:
            top = min(m, spec.n_ops)
            if path_weights is None:
                k = rng.randint(1, top)
            else:
                k = rng.choices(range(1, top + 1), weights=path_weights[:top])[0]
            paths = rng.sample(spec.ops, k)
            options = {key: rng.choice(values) for key, values in spec.options}
            layers.append(LayerChoice.of(paths, **options))
        return Architecture(tuple(layers))

    def largest_architecture(self, m: int) -> Architecture:
        """Every layer with its last m ops and largest options: the costliest architecture when ops are
        declared cheapest first, as the built-in spaces do (except spos-shufflenet's four stride-2 layers,
        where shuffle7 costs more than the last op, xception: 626M here, 669M at most)."""
        return Architecture(
            tuple(
                LayerChoice.of(spec.ops[-min(m, spec.n_ops) :], **{k: max(v) for k, v in spec.options})
                for spec in self.layers
            )
        )
