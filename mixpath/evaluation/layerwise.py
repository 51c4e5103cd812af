"""A family's stand-alone model cut into parts: the fixed parts plus one module per searchable layer.

Per-layer cost and latency tables (``CostModel``, ``LatencyTable``) need, for each layer choice, a
module that runs exactly what the stand-alone model runs for that layer, and the shape of its input.
A family declares that with a ``LayerParts`` factory (``register_layer_parts``). Families without one
still get exact costs from ``CostModel`` by whole-model differences, only slower to tabulate.

``SequentialParts`` covers families whose stand-alone model runs its top-level modules one after the
other with ``layers[i]`` as searchable layer i (``mbconv``: stem, separable block, layers, head;
``shufflenet``: stem, layers, head): the fixed parts are the other top-level modules, every input shape
is recorded once from a reference model, and the family only says how to build one layer alone.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn

from mixpath.models.shufflenet import ChoiceBlock, mid_channels
from mixpath.spaces import Architecture, LayerChoice, LayerSpec, SearchSpace
from mixpath.supernet import build_standalone
from mixpath.supernet.mbconv import InvertedResidual


@dataclass(frozen=True)
class Part:
    """A module, the shape of one input sample (C x H x W, no batch dimension) and the memory layout the
    model runs it in (weights and input; channels-last for ``mbconv``), which matters for its latency."""

    module: nn.Module
    input_shape: tuple[int, ...]
    memory_format: torch.memory_format = torch.contiguous_format


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


def reference_architecture(space: SearchSpace) -> Architecture:
    return Architecture(tuple(reference_choice(space, i) for i in range(space.n_layers)))


class SequentialParts(LayerParts):
    """Parts of a stand-alone model that runs its top-level modules in order, ``layers[i]`` being layer i.

    ``make_layer(spec, choice)`` builds searchable layer i alone. Layer shapes are fixed by the space,
    so one forward pass of a reference model (uninitialised, on the CPU) records every input shape and
    memory layout.
    """

    def __init__(self, space: SearchSpace, make_layer: Callable[[LayerSpec, LayerChoice], nn.Module]):
        self.space = space
        self.make_layer = make_layer
        with torch.device("meta"):
            model = build_standalone(space, reference_architecture(space))
        model = model.to_empty(device="cpu").eval()
        shapes: dict[nn.Module, tuple[tuple[int, ...], torch.memory_format]] = {}

        def remember(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            shapes[module] = (tuple(inputs[0].shape[1:]), _layout(inputs[0]))

        layers = cast(nn.Sequential, model.layers)
        handles = [m.register_forward_pre_hook(remember) for m in (*model.children(), *layers)]
        try:
            with torch.no_grad():
                model(torch.zeros(1, *space.input_shape))
        finally:
            for handle in handles:
                handle.remove()
        self.fixed_shapes = {name: shapes[m] for name, m in model.named_children() if name != "layers" and m in shapes}
        self.layer_shapes = [shapes[layer] for layer in layers]

    def fixed(self) -> list[Part]:
        model = build_standalone(self.space, reference_architecture(self.space))
        modules = dict(model.named_children())
        return [Part(modules[name], *shape) for name, shape in self.fixed_shapes.items()]

    def layer(self, index: int, choice: LayerChoice) -> Part:
        return Part(self.make_layer(self.space.layers[index], choice), *self.layer_shapes[index])


def _layout(x: torch.Tensor) -> torch.memory_format:
    """Channels-last when ``x`` is laid out so and not also plainly contiguous (e.g. one channel)."""
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def _shufflenet_block(spec: LayerSpec, choice: LayerChoice) -> nn.Module:
    return ChoiceBlock(spec, choice.paths[0], mid_channels(spec, choice.option("c")), supernet=False)


_FACTORIES: dict[str, Callable[[SearchSpace], LayerParts]] = {
    "mbconv": lambda space: SequentialParts(space, InvertedResidual),
    "shufflenet": lambda space: SequentialParts(space, _shufflenet_block),
}


def register_layer_parts(family: str, factory: Callable[[SearchSpace], LayerParts]) -> None:
    """Declare how stand-alone models of ``family`` split into parts."""
    _FACTORIES[family] = factory


def layer_parts(space: SearchSpace) -> LayerParts | None:
    """The parts of ``space``'s family, or None when the family declares none."""
    factory = _FACTORIES.get(space.family)
    return factory(space) if factory is not None else None
