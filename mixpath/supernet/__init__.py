"""Supernets (every candidate weight, forward(x, arch)), BN policies, and stand-alone models."""

from mixpath.supernet.bn_policies import BN_POLICIES, PathNorm, ShadowBatchNorm, make_path_norm
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

register_family("shufflenet", Family(ShuffleNetSupernet, ShuffleNetStandalone))

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
    "make_path_norm",
    "mbconv_head",
    "mbconv_stem_modules",
    "register_family",
    "shufflenet_macs",
]
