"""Cost objectives of an architecture's stand-alone model: multiply-adds and parameters, in millions.

Convention (the papers'): multiply-adds of convolution and linear layers only, for one input image of
``space.input_shape``; BN, activations, pooling, additions and biases are not counted (torch's
FlopCounterMode counts the same operations as FLOPs = 2 x multiply-adds). Parameters are every
parameter of the real stand-alone ``nn.Module``, BN weights and biases included (running statistics
are buffers, not parameters).

``CostModel`` answers from per-layer tables, without building a model (docs/evaluation.md: how fast): the
stand-alone model of an architecture is its fixed parts plus one part per searchable layer, and a layer's
cost depends only on its own choice (the space fixes every layer's channels and resolution), so a cost is a
base plus one table entry per layer. An entry is counted the first time its (layer, choice) is asked for, by
building the module on the ``meta`` device (no memory, no initialisation) and running one forward pass with hooks:

- families with ``LayerParts`` (``mbconv``): the layer's own module at its input resolution;
- any other family (``nb201``, ...): the whole stand-alone model with that layer changed, minus the
  model of a reference architecture. Exact under the same separability, only slower to tabulate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import cast

import torch
from torch import nn

from mixpath.errors import MixPathError
from mixpath.evaluation.latency import LatencyTable
from mixpath.evaluation.layerwise import layer_parts, reference_architecture
from mixpath.evaluation.modules import model_device, restored_modes
from mixpath.spaces import Architecture, LayerChoice, SearchSpace
from mixpath.supernet import build_standalone

CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
Conv = nn.Conv1d | nn.Conv2d | nn.Conv3d


def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-adds of conv and linear layers in one forward pass of one sample of ``input_shape``.

    Runs on the model's device in eval mode without gradients; training flags are kept.
    """
    total = 0

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        per_output = module.in_features if isinstance(module, nn.Linear) else _conv_fan_in(cast(Conv, module))
        total += output[0].numel() * per_output

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (*CONVS, nn.Linear))]
    try:
        with restored_modes(model), torch.no_grad():
            model.eval()
            model(torch.zeros((1, *input_shape), device=model_device(model)))
    finally:
        for handle in handles:
            handle.remove()
    return total


def count_params(model: nn.Module) -> int:
    """Every parameter of ``model`` (BN affine parameters included)."""
    return sum(p.numel() for p in model.parameters())


def _conv_fan_in(conv: Conv) -> int:
    return conv.in_channels // conv.groups * math.prod(conv.kernel_size)


def _count(module: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, int]:
    """(multiply-adds, parameters) of a module built on the meta device: it gets uninitialised CPU memory
    first (counting needs shapes only, and skipping the initialisation makes tables faster to fill)."""
    module = module.to_empty(device="cpu")
    return count_macs(module, input_shape), count_params(module)


class CostModel:
    """``cost_model(arch) -> {"flops": M multiply-adds, "params": M parameters[, "latency": ms]}``.

    ``latency`` is given when a ``LatencyTable`` of the same space is. ``build`` makes the stand-alone
    model of an architecture (default ``build_standalone(space, arch)``); it is used when the space's
    family declares no ``LayerParts``. A ``mixpath.interfaces.CostFunction``: the search's ``cost_model``.
    """

    def __init__(
        self,
        space: SearchSpace,
        latency: LatencyTable | None = None,
        build: Callable[[Architecture], nn.Module] | None = None,
    ) -> None:
        if latency is not None:
            latency.check_space(space)
        self.space = space
        self.latency = latency
        self._build = build if build is not None else (lambda arch: build_standalone(space, arch))
        self._parts = layer_parts(space) if build is None else None
        self._reference = reference_architecture(space)
        self._tables: list[dict[LayerChoice, tuple[int, int]]] = [{} for _ in space.layers]
        if self._parts is not None:
            with torch.device("meta"):
                fixed = self._parts.fixed()
            counts = [_count(part.module, part.input_shape) for part in fixed]
            self._base = (sum(m for m, _ in counts), sum(p for _, p in counts))
        else:
            self._base = self._count_model(self._reference)

    def __call__(self, arch: Architecture) -> dict[str, float]:
        macs, params = self.counts(arch)
        costs = {"flops": macs / 1e6, "params": params / 1e6}
        if self.latency is not None:
            costs["latency"] = self.latency.predict(arch)
        return costs

    def counts(self, arch: Architecture) -> tuple[int, int]:
        """(multiply-adds, parameters) of the stand-alone model of ``arch``, as exact integers."""
        if len(arch.layers) != len(self._tables):
            raise MixPathError(
                f"architecture has {len(arch.layers)} layers, space {self.space.name!r} has {len(self._tables)}"
            )
        macs, params = self._base
        for index, (table, choice) in enumerate(zip(self._tables, arch.layers, strict=True)):
            entry = table.get(choice)
            if entry is None:
                entry = table[choice] = self._count_layer(index, choice, arch)
            macs += entry[0]
            params += entry[1]
        return macs, params

    def _count_layer(self, index: int, choice: LayerChoice, arch: Architecture) -> tuple[int, int]:
        self.space.validate(arch, self.space.max_m())
        if self._parts is not None:
            with torch.device("meta"):
                part = self._parts.layer(index, choice)
            return _count(part.module, part.input_shape)
        layers = list(self._reference.layers)
        layers[index] = choice
        macs, params = self._count_model(Architecture(tuple(layers)))
        return macs - self._base[0], params - self._base[1]

    def _count_model(self, arch: Architecture) -> tuple[int, int]:
        with torch.device("meta"):
            model = self._build(arch)
        return _count(model, self.space.input_shape)
