"""SPOS's ShuffleNetV2 space (Guo et al., "Single Path One-Shot NAS with Uniform Sampling"), and
FLOPs-binned sampling.

Skeleton (SPOS code, 3 x 224 x 224 input): stem 3x3/2 conv to 16 + BN + ReLU; 20 choice layers in four
stages of 4, 4, 8, 4 with widths 64, 160, 320, 640 (each stage's first layer has stride 2); 1x1 conv
to 1024 + BN + ReLU, global average pool, linear to 1000 classes without bias.

Each layer chooses one block (single path, m = 1): ``shuffle3``, ``shuffle5``, ``shuffle7`` (ShuffleNetV2
units with a 3/5/7 depthwise kernel) or ``xception`` (three depthwise 3x3 + pointwise pairs), and, for
SPOS's channel search, a scale ``c`` of the block's mid channels (the default is half the layer's
output width; the block uses ``int(c x default)``). The scales are SPOS code's 0.2 .. 1.6 in steps of
0.2. ``spos-shufflenet-blocks`` fixes ``c`` to 1.0: the block-only search of SPOS's released code.

A layer token reads ``c1.2:shuffle5``; the layer order is SPOS's, so its published block indices
0, 1, 2, 3 map to ``shuffle3``, ``shuffle5``, ``shuffle7``, ``xception``.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence

from mixpath.errors import MixPathError
from mixpath.spaces.architecture import Architecture
from mixpath.spaces.space import LayerSpec, SearchSpace

BLOCK_OPS = ("shuffle3", "shuffle5", "shuffle7", "xception")
CHANNEL_SCALES = (0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4, 1.6)
STAGE_REPEATS = (4, 4, 8, 4)
STAGE_CHANNELS = (64, 160, 320, 640)
STEM_CHANNELS = 16
HEAD_CHANNELS = 1024


def spos_shufflenet_space(name: str, description: str, channel_scales: tuple[float, ...]) -> SearchSpace:
    """The SPOS supernet's space with the given mid-channel scales per layer."""
    layers = []
    c_in = STEM_CHANNELS
    for repeats, channels in zip(STAGE_REPEATS, STAGE_CHANNELS, strict=True):
        for i in range(repeats):
            layers.append(
                LayerSpec(
                    ops=BLOCK_OPS,
                    options=(("c", channel_scales),),
                    in_channels=c_in,
                    out_channels=channels,
                    stride=2 if i == 0 else 1,
                )
            )
            c_in = channels
    skeleton = {"stem_channels": STEM_CHANNELS, "head_channels": HEAD_CHANNELS, "max_m": 1}
    return SearchSpace(name, description, "shufflenet", (3, 224, 224), 1000, tuple(layers), skeleton, default_m=1)


SPOS_SHUFFLENET = spos_shufflenet_space(
    "spos-shufflenet",
    "SPOS ShuffleNetV2 supernet (3x224x224): 20 layers, blocks shuffle3/5/7 + xception, mid-channel scale "
    "0.2..1.6, single path",
    CHANNEL_SCALES,
)

SPOS_SHUFFLENET_BLOCKS = spos_shufflenet_space(
    "spos-shufflenet-blocks",
    "SPOS ShuffleNetV2 supernet, block search only (channel scale fixed at 1.0), single path",
    (1.0,),
)


def flops_binned_sampler(
    space: SearchSpace,
    flops_fn: Callable[[Architecture], float],
    bins: Sequence[float],
    rng: random.Random,
    m: int = 1,
    max_draws: int = 10_000,
) -> Architecture:
    """One architecture whose FLOPs fall in a bin chosen uniformly at random.

    ``bins`` are increasing edges ``b0 < b1 < ... < bn`` (in the unit of ``flops_fn``); bin i holds
    ``b_i <= flops < b_{i+1}``. A bin is drawn uniformly, then architectures are drawn with
    ``space.random_architecture`` until one lands in it (rejection sampling). Uniform sampling alone
    concentrates on mid-sized networks (FLOPs are a sum of 20 independent layer costs); binning
    trains small and large networks as often. SPOS's single-interval rejection (e.g. 290M..360M) is
    the case of one bin. Raises MixPathError when ``max_draws`` draws miss the chosen bin.
    """
    edges = [float(b) for b in bins]
    if len(edges) < 2 or any(hi <= lo for lo, hi in itertools.pairwise(edges)):
        raise MixPathError(f"FLOPs bins {list(bins)} must be at least two strictly increasing edges")
    i = rng.randrange(len(edges) - 1)
    low, high = edges[i], edges[i + 1]
    for _ in range(max_draws):
        arch = space.random_architecture(rng, m)
        if low <= flops_fn(arch) < high:
            return arch
    raise MixPathError(
        f"no architecture of {space.name!r} with FLOPs in [{low:g}, {high:g}) after {max_draws} draws; "
        f"choose bins inside the space's FLOPs range"
    )
