"""Published ImageNet models that live in mixpath's spaces, as architecture strings with their figures.

Each entry names its space, the architecture in that space's notation, and the published multiply-adds,
parameters and top-1 accuracy with their source. ``build_published(name)`` gives a freshly initialised
stand-alone model (``build_standalone``) to train from scratch or to count.

``exact`` says whether mixpath's model is the published network:

- FairNAS-A/B/C (``imagenet-s2``): single-path inverted bottlenecks on the macro S2 takes from FairNAS,
  layer for layer (kernel, expansion) as in the public model definitions: exact.
- MixNet-M (``imagenet-s3``): S3 is MixNet-M's macro, and each layer takes MixNet-M's expansion and
  kernel set, but MixPath sums full-width depthwise paths where MixConv splits the channels into one
  group per kernel, and MixNet's 1x1 convs with 2 groups are plain 1x1 convs here: more multiply-adds
  and parameters than the published network (not exact).
- SPOS (``spos-shufflenet``): the searched model of SPOS's released code (block search, channel scale 1):
  exact. ``spos-block-channel`` is the block-and-channel architecture given as an example in the
  reference code, without published figures.
- MoGA-A/B/C (``imagenet-moga``): layer for layer (kernel, expansion, SE) as in MoGA's public model
  definitions, on the macro taken from them: exact (the reference code's dropout aside). Their multiply-adds
  are the paper's; MoGA-C's public definition has 5.49M parameters where the paper says 5.6M.

MixPath-A/B are left out: their architectures are published only as a figure.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from mixpath.errors import MixPathError
from mixpath.spaces import Architecture, get_space
from mixpath.supernet import build_standalone


@dataclass(frozen=True)
class PublishedModel:
    """A published network as an architecture of a mixpath space; figures in millions and percent."""

    name: str
    space: str
    arch: str
    flops_m: float | None  # published multiply-adds, millions (224 x 224)
    params_m: float | None  # published parameters, millions
    top1: float | None  # published ImageNet top-1 accuracy, %
    exact: bool
    source: str

    def architecture(self) -> Architecture:
        space = get_space(self.space)
        return space.parse(self.arch, space.max_m())


def _mbconv(layers: list[tuple[int, str]]) -> str:
    """Architecture string of (expansion, kernels as digits joined by '.') pairs, e.g. (6, "3.5.7")."""
    return "-".join(f"e{e}:" + "+".join(f"k{k}" for k in kernels.split(".")) for e, kernels in layers)


def _moga(layers: list[tuple[int, int, int]]) -> str:
    """Architecture string of MoGA (expansion, kernel, SE 0/1) triples, e.g. (6, 5, 1) -> ``e6,se1:k5``."""
    return "-".join(f"e{e},se{se}:k{k}" for e, k, se in layers)


def _shufflenet(blocks: list[int], scales: list[float]) -> str:
    """Architecture string of SPOS block indices (0..3 = shuffle3, shuffle5, shuffle7, xception) and scales."""
    ops = ("shuffle3", "shuffle5", "shuffle7", "xception")
    return "-".join(f"c{scale:g}:{ops[block]}" for block, scale in zip(blocks, scales, strict=True))


_MOGA_SOURCE = "Chu, Zhang, Xu, MoGA (arXiv:1908.01314, ICASSP 2020) Table 1; layers from the public MoGA models"
_FAIRNAS_SOURCE = "Chu et al., FairNAS (arXiv:1907.01845) Table 2; layers from the public FairNAS model code"
_SPOS_OFFICIAL = [2, 1, 0, 1, 2, 0, 2, 0, 2, 0, 2, 3, 0, 0, 0, 0, 3, 2, 3, 3]
_SPOS_EXAMPLE_BLOCKS = [0, 0, 3, 1, 1, 1, 0, 0, 2, 0, 2, 1, 1, 0, 2, 0, 2, 1, 3, 2]
_SPOS_EXAMPLE_SCALES = [6, 5, 3, 5, 2, 6, 3, 4, 2, 5, 7, 5, 4, 6, 7, 4, 4, 5, 4, 3]  # indices into 0.2 .. 1.6

PUBLISHED: dict[str, PublishedModel] = {
    model.name: model
    for model in (
        PublishedModel(
            "fairnas-a",
            "imagenet-s2",
            _mbconv(
                [(3, "7"), (3, "3"), (3, "7"), (6, "3"), (6, "7"), (3, "3"), (3, "3"), (6, "7"), (6, "7"), (3, "5")]
                + [(6, "3"), (3, "5"), (3, "5"), (6, "3"), (6, "3"), (6, "7"), (6, "3"), (6, "7"), (6, "5")]
            ),
            388,
            4.6,
            75.34,
            True,
            _FAIRNAS_SOURCE,
        ),
        PublishedModel(
            "fairnas-b",
            "imagenet-s2",
            _mbconv(
                [(3, "5"), (3, "3"), (3, "5"), (3, "3"), (6, "3"), (3, "5"), (3, "7"), (3, "3"), (6, "3"), (3, "5")]
                + [(3, "3"), (6, "3"), (3, "7"), (3, "3"), (6, "7"), (6, "5"), (6, "7"), (6, "3"), (6, "5")]
            ),
            345,
            4.5,
            75.10,
            True,
            _FAIRNAS_SOURCE,
        ),
        PublishedModel(
            "fairnas-c",
            "imagenet-s2",
            _mbconv(
                [(3, "5"), (3, "3"), (3, "7"), (3, "3"), (3, "3"), (3, "3"), (3, "3"), (3, "3"), (3, "3"), (6, "3")]
                + [(3, "3"), (3, "3"), (3, "3"), (3, "3"), (6, "7"), (6, "7"), (6, "3"), (6, "3"), (6, "5")]
            ),
            321,
            4.4,
            74.69,
            True,
            _FAIRNAS_SOURCE,
        ),
        PublishedModel(
            "mixnet-m",
            "imagenet-s3",
            _mbconv(
                [(6, "3.5.7"), (3, "3")]
                + [(6, "3.5.7.9")]
                + [(6, "3.5")] * 3
                + [(6, "3.5.7")]
                + [(6, "3.5.7.9")] * 3
                + [(6, "3")]
                + [(3, "3.5.7.9")] * 3
                + [(6, "3.5.7.9")] * 4
            ),
            360,
            5.0,
            77.0,
            False,
            "Tan and Le, MixConv (arXiv:1907.09595) Table 2; layers from the MixNet-M definition (TPU / timm code)",
        ),
        PublishedModel(
            "moga-a",
            "imagenet-moga",
            _moga(
                [(6, 5, 0), (6, 7, 0), (6, 3, 0), (6, 3, 1), (3, 3, 1), (6, 3, 1), (6, 3, 0), (6, 7, 0), (3, 7, 1)]
                + [(6, 7, 0), (6, 3, 0), (6, 3, 0), (6, 5, 1), (6, 5, 1)]
            ),
            304,
            5.1,
            75.9,
            True,
            _MOGA_SOURCE,
        ),
        PublishedModel(
            "moga-b",
            "imagenet-moga",
            _moga(
                [(3, 3, 0), (3, 3, 0), (6, 7, 0), (3, 3, 0), (6, 5, 0), (6, 3, 1), (6, 5, 1), (3, 3, 0), (6, 7, 1)]
                + [(6, 7, 0), (3, 5, 0), (6, 7, 1), (6, 7, 1), (6, 3, 1)]
            ),
            248,
            5.5,
            75.5,
            True,
            _MOGA_SOURCE,
        ),
        PublishedModel(
            "moga-c",
            "imagenet-moga",
            _moga(
                [(3, 5, 0), (3, 3, 0), (3, 5, 0), (3, 3, 0), (3, 5, 0), (3, 5, 0), (6, 5, 1), (3, 5, 0), (3, 5, 0)]
                + [(6, 3, 0), (6, 3, 1), (6, 3, 1), (6, 3, 1), (6, 3, 1)]
            ),
            221,
            5.6,
            75.3,
            True,
            _MOGA_SOURCE,
        ),
        PublishedModel(
            "spos",
            "spos-shufflenet",
            _shufflenet(_SPOS_OFFICIAL, [1.0] * 20),
            323,
            3.5,
            74.4,
            True,
            "megvii-model/SinglePathOneShot README (searched model, FLOPs 323M, params 3.5M, top-1 error 25.6%)",
        ),
        PublishedModel(
            "spos-block-channel",
            "spos-shufflenet",
            _shufflenet(_SPOS_EXAMPLE_BLOCKS, [0.2 * (i + 1) for i in _SPOS_EXAMPLE_SCALES]),
            None,
            None,
            None,
            True,
            "example architecture and channel scales in the SPOS reference code (no published figures)",
        ),
    )
}


def get_published(name: str) -> PublishedModel:
    if name not in PUBLISHED:
        raise MixPathError(f"unknown published model {name!r}; known: {', '.join(sorted(PUBLISHED))}")
    return PUBLISHED[name]


def build_published(name: str) -> nn.Module:
    """A freshly initialised stand-alone model of the published architecture ``name``."""
    model = get_published(name)
    return build_standalone(get_space(model.space), model.architecture())
