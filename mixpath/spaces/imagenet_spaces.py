"""ImageNet spaces (3 x 224 x 224 input, 1000 classes): MixPath's S2, MnasNet-like, and S3, MixNet-like,
and MoGA's MobileNetV3-like space.

Both are ``mbconv`` spaces: every searchable layer is a MixPath inverted bottleneck that chooses an
expansion ratio in {3, 6} and 1..m depthwise kernels from {3, 5, 7, 9}, summed and normalised by the
BN policy (Shadow BN by default). They differ in the fixed macro skeleton around the layers:

- ``imagenet-s2``: the MnasNet-like macro of FairNAS (by MixPath's authors): stem 3x3/2 to 32, a
  separable 3x3 block to 16, 19 layers in stages of 2, 4, 4, 4, 4, 1 with widths 32, 40, 80, 96, 192,
  320 (stride 2 at the first layer of the 32, 40, 80 and 192 stages), 1x1 conv to 1280, ReLU6, no SE.
- ``imagenet-s3``: MixNet-M's macro: stem 3x3/2 to 24, a separable 3x3 block 24 -> 24, 18 layers in
  stages of 2, 4, 4, 4, 4 with widths 32, 40, 80, 120, 200 (stride 2 at the first layer of the 32, 40,
  80 and 200 stages), 1x1 conv to 1536; ReLU in the stem, separable block, head and the first stage,
  swish and squeeze-and-excitation (ratio 0.5, 0.25 in the 80 stage) after it, as MixNet-M has them.

The MixPath paper does not list these skeletons layer by layer; docs/imagenet.md records every choice
made here where it is silent.

- ``imagenet-moga``: MoGA's (Chu, Zhang, Xu, ICASSP 2020) MobileNetV3-like space, taken from its public
  MoGA-A/B/C definitions: stem 3x3/2 to 16 with h-swish, a separable 3x3 block 16 -> 16 (ReLU, no
  residual), 14 layers in stages of 2, 3, 4, 2, 3 with widths 24, 40, 80, 112, 160 (stride 2 at the first
  layer of the 24, 40, 80 and 160 stages), ReLU in the first five layers and h-swish after; every layer
  chooses a kernel in {3, 5, 7}, an expansion in {3, 6} and SE on or off (``se1`` / ``se0``: squeeze to a
  quarter of the expanded channels, hard-sigmoid gate); then a 1x1 conv to 960 + BN + h-swish, global
  pool, a linear 960 -> 1280 + h-swish and the classifier. MoGA trains it single-path (FairNAS), so its
  default m is 1; m = 2..3 makes a MixPath space of it. The reference code's dropout before the
  classifier is left out (mixpath's models have none; it changes no count).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mixpath.spaces.space import LayerSpec, SearchSpace

KERNEL_OPS = ("k3", "k5", "k7", "k9")
EXPANSIONS = (3, 6)
IMAGENET_SHAPE = (3, 224, 224)
IMAGENET_CLASSES = 1000


@dataclass(frozen=True)
class Stage:
    """``repeats`` layers of width ``channels``; the first has ``stride``; fixed activation and SE ratio."""

    repeats: int
    channels: int
    stride: int
    act: str = "relu6"
    se: float = 0.0


def staged_space(
    name: str,
    description: str,
    stem_channels: int,
    sep_channels: int,
    stages: list[Stage],
    head_channels: int,
    activation: str,
    default_m: int,
    ops: tuple[str, ...] = KERNEL_OPS,
    options: tuple[tuple[str, tuple[int, ...]], ...] = (("e", EXPANSIONS),),
    layer_attrs: dict[str, Any] | None = None,
    skeleton: dict[str, Any] | None = None,
) -> SearchSpace:
    """An ImageNet ``mbconv`` space from its stages (stem stride 2, separable block after the stem).

    ``layer_attrs`` are fixed settings every layer gets besides its stage's; ``skeleton`` adds keys to the
    skeleton (see ``mixpath.supernet.network``)."""
    layers = []
    c_in = sep_channels
    for stage in stages:
        attrs = tuple(
            sorted({"act": stage.act, **({"se": stage.se} if stage.se else {}), **(layer_attrs or {})}.items())
        )
        for i in range(stage.repeats):
            layers.append(
                LayerSpec(
                    ops=ops,
                    options=options,
                    in_channels=c_in,
                    out_channels=stage.channels,
                    stride=stage.stride if i == 0 else 1,
                    attrs=attrs,
                )
            )
            c_in = stage.channels
    fixed = {
        "stem_channels": stem_channels,
        "stem_stride": 2,
        "sep_channels": sep_channels,
        "head_channels": head_channels,
        "activation": activation,
        **(skeleton or {}),
    }
    return SearchSpace(name, description, "mbconv", IMAGENET_SHAPE, IMAGENET_CLASSES, tuple(layers), fixed, default_m)


IMAGENET_S2 = staged_space(
    "imagenet-s2",
    "MixPath S2, MnasNet-like (FairNAS macro), 3x224x224: 19 layers, kernels {3,5,7,9}, e {3,6}, ReLU6, 1280 head",
    stem_channels=32,
    sep_channels=16,
    stages=[Stage(2, 32, 2), Stage(4, 40, 2), Stage(4, 80, 2), Stage(4, 96, 1), Stage(4, 192, 2), Stage(1, 320, 1)],
    head_channels=1280,
    activation="relu6",
    default_m=2,
)

IMAGENET_S3 = staged_space(
    "imagenet-s3",
    "MixPath S3, MixNet-like (MixNet-M macro), 3x224x224: 18 layers, kernels {3,5,7,9}, e {3,6}, swish + SE, 1536 head",
    stem_channels=24,
    sep_channels=24,
    stages=[
        Stage(2, 32, 2, "relu"),
        Stage(4, 40, 2, "swish", 0.5),
        Stage(4, 80, 2, "swish", 0.25),
        Stage(4, 120, 1, "swish", 0.5),
        Stage(4, 200, 2, "swish", 0.5),
    ],
    head_channels=1536,
    activation="relu",
    default_m=4,
)

IMAGENET_MOGA = staged_space(
    "imagenet-moga",
    "MoGA's MobileNetV3-like space, 3x224x224: 14 layers, kernels {3,5,7}, e {3,6}, SE on/off, ReLU then h-swish",
    stem_channels=16,
    sep_channels=16,
    stages=[
        Stage(2, 24, 2, "relu", 0.25),
        Stage(3, 40, 2, "relu", 0.25),
        Stage(4, 80, 2, "hswish", 0.25),
        Stage(2, 112, 1, "hswish", 0.25),
        Stage(3, 160, 2, "hswish", 0.25),
    ],
    head_channels=960,
    activation="hswish",
    default_m=1,
    ops=("k3", "k5", "k7"),
    options=(("e", EXPANSIONS), ("se", (0, 1))),
    layer_attrs={"se_of": "hidden", "se_gate": "hard_sigmoid"},
    skeleton={"sep_activation": "relu", "sep_residual": False, "pooled_channels": 1280},
)
