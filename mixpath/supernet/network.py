"""Supernets and stand-alone models of the ``mbconv`` family, and the family registry.

``build_supernet(space, m, bn_policy)`` and ``build_standalone(space, arch, ...)`` dispatch on
``space.family``, so other families (NAS-Bench cells, ShuffleNet blocks) plug in with ``register_family``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from mixpath.errors import MixPathError
from mixpath.spaces import Architecture, SearchSpace
from mixpath.supernet.bn_policies import BN_POLICIES
from mixpath.supernet.mbconv import (
    Head,
    InvertedResidual,
    MultiPathInvertedResidual,
    init_weights,
    stem,
)


class MBConvSupernet(nn.Module):
    """Every candidate weight of an ``mbconv`` space; ``forward(x, arch)`` runs only the active paths."""

    def __init__(self, space: SearchSpace, m: int, bn_policy: str = "shadow"):
        super().__init__()
        if bn_policy not in BN_POLICIES:
            raise MixPathError(f"unknown BN policy {bn_policy!r}; choose one of: {', '.join(BN_POLICIES)}")
        self.space = space
        self.m = space.check_m(m)
        self.bn_policy = bn_policy
        sk = space.skeleton
        self.stem = stem(space.input_shape[0], sk["stem_channels"], sk["stem_stride"])
        self.layers = nn.ModuleList(MultiPathInvertedResidual(spec, m, bn_policy) for spec in space.layers)
        self.head = Head(space.layers[-1].out_channels, sk["head_channels"], space.num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor, arch: Architecture) -> torch.Tensor:
        x = self.stem(x)
        for layer, choice in zip(self.layers, arch.layers, strict=True):
            x = layer(x, choice)
        return self.head(x)

    def extract(self, arch: Architecture) -> MBConvStandalone:
        """A stand-alone model of ``arch`` carrying the supernet's weights (its SBN_k for k paths)."""
        self.space.validate(arch, self.m)
        model = MBConvStandalone(self.space, arch, self.bn_policy)
        model.stem.load_state_dict(self.stem.state_dict())
        for mine, layer, choice in zip(model.layers, self.layers, arch.layers, strict=True):
            mine.load_from(layer, choice)
        model.head.load_state_dict(self.head.state_dict())
        return model.to(next(self.parameters()).device)


class MBConvStandalone(nn.Module):
    """A plain model of one architecture: only its own ops, one BN per layer.

    ``bn_policy="scaled"`` keeps the 1/k factor of the simple-scaling baseline so inherited weights
    compute the same function; for training from scratch the factor is harmless (a BN follows it).
    """

    def __init__(self, space: SearchSpace, arch: Architecture, bn_policy: str = "shadow"):
        super().__init__()
        self.arch = arch
        sk = space.skeleton
        self.stem = stem(space.input_shape[0], sk["stem_channels"], sk["stem_stride"])
        self.layers = nn.Sequential(
            *(
                InvertedResidual(spec, choice, 1.0 / len(choice.paths) if bn_policy == "scaled" else 1.0)
                for spec, choice in zip(space.layers, arch.layers, strict=True)
            )
        )
        self.head = Head(space.layers[-1].out_channels, sk["head_channels"], space.num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layers(self.stem(x)))


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
