"""Supernets (every candidate weight, forward(x, arch)), BN policies, and stand-alone models.

The built-in families are registered here: ``mbconv`` (``network``); SPOS's ``shufflenet``, whose models live
in ``mixpath.models.shufflenet``; and the NAS-Bench cells ``nb201`` and ``nb101``, whose builders live with
their benchmark code (``mixpath.benchmarks_nas.families``). Both build on this package, so their modules are
imported when a model of theirs is first built.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from torch import nn

from mixpath.supernet.bn_policies import (
    BN_POLICIES,
    PathNorm,
    ShadowBatchNorm,
    check_bn_policy,
    make_path_norm,
    path_sum_scale,
)
from mixpath.supernet.network import (
    Family,
    MBConvStandalone,
    MBConvSupernet,
    build_standalone,
    build_supernet,
    mbconv_head,
    mbconv_stem_modules,
    register_family,
)


def _imported_builder(module: str, name: str) -> Callable[..., nn.Module]:
    """The builder ``name`` of the module ``module``, imported when first called."""

    def build(*args: Any) -> nn.Module:
        return getattr(importlib.import_module(module), name)(*args)

    return build


_BUILT_ELSEWHERE = {  # family: (module, supernet builder, stand-alone builder)
    "shufflenet": ("mixpath.models.shufflenet", "ShuffleNetSupernet", "ShuffleNetStandalone"),
    "nb201": ("mixpath.benchmarks_nas.families", "nb201_supernet", "nb201_standalone"),
    "nb101": ("mixpath.benchmarks_nas.families", "nb101_supernet", "nb101_standalone"),
}
for _family, (_module, _supernet, _standalone) in _BUILT_ELSEWHERE.items():
    register_family(_family, Family(_imported_builder(_module, _supernet), _imported_builder(_module, _standalone)))

__all__ = [
    "BN_POLICIES",
    "Family",
    "MBConvStandalone",
    "MBConvSupernet",
    "PathNorm",
    "ShadowBatchNorm",
    "build_standalone",
    "build_supernet",
    "check_bn_policy",
    "make_path_norm",
    "mbconv_head",
    "mbconv_stem_modules",
    "path_sum_scale",
    "register_family",
]
