"""Supernets and stand-alone models of the ``mbconv`` family, and the family registry.

``build_supernet(space, m, bn_policy)`` and ``build_standalone(space, arch, ...)`` dispatch on
``space.family``, so other families (NAS-Bench cells, ShuffleNet blocks) plug in with ``register_family``.

Skeleton keys of the ``mbconv`` family: ``stem_channels``, ``stem_stride``, ``head_channels``; optional
``activation`` of the stem, separable block and head (``relu6`` by default) and ``sep_channels``, the
output width of a fixed depthwise-separable block after the stem (MnasNet, FairNAS and MixNet have one).
MobileNetV3-like skeletons (MoGA) also set ``sep_activation`` (the separable block's own activation),
``sep_residual`` (False: no residual even when its widths match) and ``pooled_channels`` (the width of the
linear stage between pooling and classifier, see ``Head``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn

from mixpath.errors import MixPathError
from mixpath.kernels import fused_conv_bn_act
from mixpath.spaces import Architecture, SearchSpace
from mixpath.supernet.bn_policies import check_bn_policy, path_sum_scale
from mixpath.supernet.mbconv import (
    Head,
    InvertedResidual,
    MultiPathInvertedResidual,
    SeparableConv,
    init_weights,
    stem,
)


def mbconv_stem_modules(space: SearchSpace) -> list[nn.Module]:
    """The fixed modules before the searchable layers of an ``mbconv`` space, in order: the stem, then
    the separable block when the skeleton has ``sep_channels``."""
    sk = space.skeleton
    act = sk.get("activation", "relu6")
    modules: list[nn.Module] = [stem(space.input_shape[0], sk["stem_channels"], sk["stem_stride"], act)]
    if "sep_channels" in sk:
        sep_act, residual = sk.get("sep_activation", act), sk.get("sep_residual", True)
        modules.append(SeparableConv(sk["stem_channels"], sk["sep_channels"], sep_act, residual))
    return modules


def mbconv_head(space: SearchSpace) -> Head:
    """The fixed head after the searchable layers of an ``mbconv`` space."""
    sk = space.skeleton
    act = sk.get("activation", "relu6")
    return Head(
        space.layers[-1].out_channels, sk["head_channels"], space.num_classes, act, sk.get("pooled_channels", 0)
    )


class MBConvNetwork(nn.Module):
    """What an ``mbconv`` supernet and stand-alone model share: the stem (and the optional separable block),
    the searchable ``layers`` that ``make_layers`` builds, the head, MixPath's initialisation and the layout.

    Modules are built and registered stem, separable block, layers, head: without a separable block that is
    S1's original order, so its state dicts and seeded initialisation stay as they were. ``memory_format``:
    the layout of the weights and activations. Channels-last (the default) is what oneDNN's depthwise kernels
    want on the CPU; NCHW computes the same up to float rounding.
    """

    stem: nn.Module
    sep: nn.Module | None
    layers: nn.Module

    def __init__(self, space: SearchSpace, make_layers: Callable[[], nn.Module], memory_format: torch.memory_format):
        super().__init__()
        self.memory_format = memory_format
        modules = mbconv_stem_modules(space)
        self.stem = modules[0]
        self.sep = modules[1] if len(modules) > 1 else None
        self.layers = make_layers()
        self.head = mbconv_head(space)
        init_weights(self)
        self.to(memory_format=memory_format)

    def stem_features(self, x: torch.Tensor) -> torch.Tensor:
        """The input to the first searchable layer: ``x`` in the network's layout through the fixed modules."""
        x = fused_conv_bn_act(x.contiguous(memory_format=self.memory_format), self.stem)
        return x if self.sep is None else self.sep(x)


class MBConvSupernet(MBConvNetwork):
    """Every candidate weight of an ``mbconv`` space; ``forward(x, arch)`` runs only the active paths."""

    layers: nn.ModuleList

    def __init__(
        self,
        space: SearchSpace,
        m: int,
        bn_policy: str = "shadow",
        memory_format: torch.memory_format = torch.channels_last,
    ):
        check_bn_policy(bn_policy)
        space.check_m(m)
        super().__init__(
            space,
            lambda: nn.ModuleList(MultiPathInvertedResidual(spec, m, bn_policy) for spec in space.layers),
            memory_format,
        )
        self.space = space
        self.m = m
        self.bn_policy = bn_policy

    def forward(self, x: torch.Tensor, arch: Architecture) -> torch.Tensor:
        x = self.stem_features(x)
        for layer, choice in zip(self.layers, arch.layers, strict=True):
            x = layer(x, choice)
        return self.head(x)

    def extract(self, arch: Architecture) -> MBConvStandalone:
        """A stand-alone model of ``arch`` carrying the supernet's weights (its SBN_k for k paths)."""
        self.space.validate(arch, self.m)
        model = MBConvStandalone(self.space, arch, self.bn_policy, self.memory_format)
        model.stem.load_state_dict(self.stem.state_dict())
        if self.sep is not None and model.sep is not None:
            model.sep.load_state_dict(self.sep.state_dict())
        for mine, layer, choice in zip(model.layers, self.layers, arch.layers, strict=True):
            cast(InvertedResidual, mine).load_from(cast(MultiPathInvertedResidual, layer), choice)
        model.head.load_state_dict(self.head.state_dict())
        return model.to(next(self.parameters()).device)


class MBConvStandalone(MBConvNetwork):
    """A plain model of one architecture: only its own ops, one BN per layer.

    ``bn_policy="scaled"`` keeps the 1/k factor of the simple-scaling baseline so inherited weights
    compute the same function; for training from scratch the factor is harmless (a BN follows it).
    ``memory_format`` as in ``MBConvNetwork``.
    """

    layers: nn.Sequential

    def __init__(
        self,
        space: SearchSpace,
        arch: Architecture,
        bn_policy: str = "shadow",
        memory_format: torch.memory_format = torch.channels_last,
    ):
        super().__init__(
            space,
            lambda: nn.Sequential(
                *(
                    InvertedResidual(spec, choice, path_sum_scale(bn_policy, len(choice.paths)))
                    for spec, choice in zip(space.layers, arch.layers, strict=True)
                )
            ),
            memory_format,
        )
        self.arch = arch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layers(self.stem_features(x)))


@dataclass(frozen=True)
class Family:
    """How to build the supernet and a stand-alone model of one space family."""

    supernet: Callable[[SearchSpace, int, str], nn.Module]
    standalone: Callable[[SearchSpace, Architecture, str], nn.Module]


_FAMILIES: dict[str, Family] = {"mbconv": Family(MBConvSupernet, MBConvStandalone)}


def register_family(name: str, family: Family) -> None:
    _FAMILIES[name] = family


def _family(space: SearchSpace) -> Family:
    if space.family not in _FAMILIES:
        raise MixPathError(f"space {space.name!r} has family {space.family!r}, which has no model builder")
    return _FAMILIES[space.family]


def build_supernet(space: SearchSpace, m: int, bn_policy: str = "shadow") -> nn.Module:
    """The supernet of ``space`` where every layer may activate up to ``m`` paths."""
    return _family(space).supernet(space, m, bn_policy)


def build_standalone(space: SearchSpace, arch: Architecture, bn_policy: str = "shadow") -> nn.Module:
    """A freshly initialised stand-alone model of ``arch``, to train from scratch."""
    space.validate(arch, space.max_m())
    return _family(space).standalone(space, arch, bn_policy)
