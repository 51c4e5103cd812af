"""A family's stand-alone model cut into parts: the fixed parts plus one module per searchable layer.

Per-layer cost and latency tables (``CostModel``, ``LatencyTable``) need, for each layer choice, a
module that runs exactly what the stand-alone model runs for that layer, and the shape of its input.
A family declares that with a ``LayerParts`` factory (``register_layer_parts``). Families without one
still get exact costs from ``CostModel`` by whole-model differences, only slower to tabulate.

For ``mbconv``: the stem (and separable block) and the head are fixed; layer i is an
``InvertedResidual`` of its choice at the input resolution layer i sees (fixed by the space's strides,
whatever the choices).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from mixpath.spaces import LayerChoice, SearchSpace
from mixpath.supernet import mbconv_head, mbconv_stem_modules
from mixpath.supernet.mbconv import InvertedResidual


@dataclass(frozen=True)
class Part:
    """A module and the shape of one input sample (C x H x W, no batch dimension)."""

    module: nn.Module
    input_shape: tuple[int, ...]


class LayerParts(ABC):
    """Builds the parts of stand-alone models of one space, on the current default device.

    The stand-alone model of an architecture runs ``fixed()`` and ``layer(i, choice_i)`` for every i,
    so its costs are the sum of theirs.
    """

    @abstractmethod
    def fixed(self) -> list[Part]:
        """Parts every architecture has (stem, head, ...)."""

    @abstractmethod
    def layer(self, index: int, choice: LayerChoice) -> Part:
        """Searchable layer ``index`` running ``choice``."""


def reference_choice(space: SearchSpace, index: int) -> LayerChoice:
    """A fixed valid choice of layer ``index``: its first op with the first value of every option."""
    spec = space.layers[index]
    return LayerChoice.of(spec.ops[:1], **{key: values[0] for key, values in spec.options})


class MBConvParts(LayerParts):
    def __init__(self, space: SearchSpace):
        self.space = space
        self.stem_shapes: list[tuple[int, ...]] = []
        self.layer_shapes: list[tuple[int, ...]] = []
        with torch.device("meta"):
            stem = mbconv_stem_modules(space)
            layers = [InvertedResidual(spec, reference_choice(space, i)) for i, spec in enumerate(space.layers)]
        x = torch.zeros(1, *space.input_shape)
        with torch.no_grad():
            for module in stem:
                self.stem_shapes.append(tuple(x.shape[1:]))
                x = _shapes_only(module)(x)
            for layer in layers:
                self.layer_shapes.append(tuple(x.shape[1:]))
                x = _shapes_only(layer)(x)
        self.head_shape = tuple(x.shape[1:])

    def fixed(self) -> list[Part]:
        stem = [Part(m, shape) for m, shape in zip(mbconv_stem_modules(self.space), self.stem_shapes, strict=True)]
        return [*stem, Part(mbconv_head(self.space), self.head_shape)]

    def layer(self, index: int, choice: LayerChoice) -> Part:
        return Part(InvertedResidual(self.space.layers[index], choice), self.layer_shapes[index])


def _shapes_only(module: nn.Module) -> nn.Module:
    """A meta-device ``module`` on the CPU with uninitialised weights, in eval mode: enough to learn the
    shape it outputs, without paying for initialisation."""
    return module.to_empty(device="cpu").eval()


_FACTORIES: dict[str, Callable[[SearchSpace], LayerParts]] = {"mbconv": MBConvParts}


def register_layer_parts(family: str, factory: Callable[[SearchSpace], LayerParts]) -> None:
    """Declare how stand-alone models of ``family`` split into parts."""
    _FACTORIES[family] = factory


def layer_parts(space: SearchSpace) -> LayerParts | None:
    """The parts of ``space``'s family, or None when the family declares none."""
    factory = _FACTORIES.get(space.family)
    return factory(space) if factory is not None else None
