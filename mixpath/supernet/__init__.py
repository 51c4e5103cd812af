"""Supernets (every candidate weight, forward(x, arch)), BN policies, and stand-alone models."""

from mixpath.supernet.bn_policies import BN_POLICIES, PathNorm, ShadowBatchNorm, make_path_norm
from mixpath.supernet.network import (
    Family,
    MBConvStandalone,
    MBConvSupernet,
    build_standalone,
    build_supernet,
    register_family,
)

__all__ = [
    "BN_POLICIES",
    "Family",
    "MBConvStandalone",
    "MBConvSupernet",
    "PathNorm",
    "ShadowBatchNorm",
    "build_standalone",
    "build_supernet",
    "make_path_norm",
    "register_family",
]
