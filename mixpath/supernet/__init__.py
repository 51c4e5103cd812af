"""Supernets (every candidate weight, forward(x, arch)), BN policies, and stand-alone models.

The built-in families are registered here: ``mbconv`` (``network``), ``shufflenet``, and the NAS-Bench cells
``nb201`` and ``nb101``, whose builders live with their benchmark code (``mixpath.benchmarks_nas.families``,
which builds on this package) and are imported when a model of theirs is first built.
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
from mixpath.supernet.shufflenet import ShuffleNetStandalone, ShuffleNetSupernet, shufflenet_macs


def _imported_builder(name: str) -> Callable[..., nn.Module]:
    """The builder ``name`` of ``mixpath.benchmarks_nas.families``, imported when first called."""

    def build(*args: Any) -> nn.Module:
        return getattr(importlib.import_module("mixpath.benchmarks_nas.families"), name)(*args)

    return build


register_family("shufflenet", Family(ShuffleNetSupernet, ShuffleNetStandalone))
for _name in ("nb201", "nb101"):
    register_family(_name, Family(_imported_builder(f"{_name}_supernet"), _imported_builder(f"{_name}_standalone")))

__all__ = [
    "BN_POLICIES",
    "Family",
    "MBConvStandalone",
    "MBConvSupernet",
    "PathNorm",
    "ShadowBatchNorm",
    "ShuffleNetStandalone",
    "ShuffleNetSupernet",
    "build_standalone",
    "build_supernet",
    "check_bn_policy",
    "make_path_norm",
    "mbconv_head",
    "mbconv_stem_modules",
    "path_sum_scale",
    "register_family",
    "shufflenet_macs",
]
