"""Networks beyond MixPath's own ``mbconv`` supernet: the ``shufflenet`` family of SPOS's space (its supernet
and stand-alone models, built through ``mixpath.supernet.build_supernet`` / ``build_standalone``), and published
models as architectures of mixpath spaces, with their published figures."""

from mixpath.models.published import PUBLISHED, PublishedModel, build_published, get_published
from mixpath.models.shufflenet import ShuffleNetStandalone, ShuffleNetSupernet, shufflenet_macs

__all__ = [
    "PUBLISHED",
    "PublishedModel",
    "ShuffleNetStandalone",
    "ShuffleNetSupernet",
    "build_published",
    "get_published",
    "shufflenet_macs",
]
