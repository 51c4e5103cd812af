"""How a multi-path layer normalises the sum of its active paths: the BN policies MixPath compares.

Summing k paths makes the feature mean ~k times and the variance ~k^2 times that of one path, so a BN
that sees every k at once normalises with the wrong statistics. The policies:

- ``shadow``: m BNs, the k-th normalises when k paths are active (MixPath's linear Shadow BN; default).
- ``shared``: one BN for every k (the vanilla baseline).
- ``exponential``: one BN per reachable subset of paths (2^n - 1 when m = n).
- ``scaled``: divide the sum by k, then one BN (simple scaling baseline).

``check_bn_policy`` is the one check of a policy name and ``path_sum_scale`` the one statement of the 1/k
rule, which a stand-alone model of a ``scaled`` supernet keeps so that inherited weights compute the same
function.
"""

from __future__ import annotations

import itertools
from typing import cast

from torch import nn

from mixpath.errors import MixPathError

BN_POLICIES = ("shadow", "shared", "exponential", "scaled")


def check_bn_policy(policy: str) -> str:
    """``policy`` if it names a BN policy, else a MixPathError listing them."""
    if policy not in BN_POLICIES:
        raise MixPathError(f"unknown BN policy {policy!r}; choose one of: {', '.join(BN_POLICIES)}")
    return policy


def path_sum_scale(policy: str, n_paths: int) -> float:
    """The factor the sum of ``n_paths`` active paths is multiplied by before its BN: 1/k under ``scaled``
    (simple scaling), 1 under every other policy."""
    return 1.0 / n_paths if check_bn_policy(policy) == "scaled" else 1.0


class PathNorm(nn.Module):
    """Normalises a sum of active paths; ``select`` says which BN, and which factor before it, a path set
    uses (the layer applies them: it fuses the factor and the BN with the layer's own computation)."""

    def select(self, paths: tuple[int, ...]) -> tuple[nn.BatchNorm2d, float]:
        raise NotImplementedError


class ShadowBatchNorm(PathNorm):
    """m BNs; SBN_k (``bns[k-1]``) is used when k paths are active."""

    def __init__(self, channels: int, m: int):
        super().__init__()
        self.bns = nn.ModuleList(nn.BatchNorm2d(channels) for _ in range(m))

    def select(self, paths: tuple[int, ...]) -> tuple[nn.BatchNorm2d, float]:
        return cast(nn.BatchNorm2d, self.bns[len(paths) - 1]), 1.0


class SharedBatchNorm(PathNorm):
    """One BN whatever the number of active paths."""

    def __init__(self, channels: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels)

    def select(self, paths: tuple[int, ...]) -> tuple[nn.BatchNorm2d, float]:
        return self.bn, 1.0


class ScaledBatchNorm(SharedBatchNorm):
    """One BN after dividing the sum of k paths by k."""

    def select(self, paths: tuple[int, ...]) -> tuple[nn.BatchNorm2d, float]:
        return self.bn, path_sum_scale("scaled", len(paths))


class ExponentialBatchNorm(PathNorm):
    """One BN per subset of paths that can be active (every subset of at most m of the n ops)."""

    def __init__(self, channels: int, n_ops: int, m: int):
        super().__init__()
        self.bns = nn.ModuleDict(
            {
                self.key(subset): nn.BatchNorm2d(channels)
                for k in range(1, m + 1)
                for subset in itertools.combinations(range(n_ops), k)
            }
        )

    @staticmethod
    def key(paths: tuple[int, ...]) -> str:
        return "_".join(str(p) for p in sorted(paths))

    def select(self, paths: tuple[int, ...]) -> tuple[nn.BatchNorm2d, float]:
        return cast(nn.BatchNorm2d, self.bns[self.key(paths)]), 1.0


def make_path_norm(policy: str, channels: int, n_ops: int, m: int) -> PathNorm:
    """Build the norm of one multi-path layer under ``policy``."""
    if check_bn_policy(policy) == "shadow":
        return ShadowBatchNorm(channels, m)
    if policy == "shared":
        return SharedBatchNorm(channels)
    if policy == "scaled":
        return ScaledBatchNorm(channels)
    return ExponentialBatchNorm(channels, n_ops, m)
