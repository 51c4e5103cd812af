"""Architectures, search space declarations and the space registry."""

from mixpath.spaces.architecture import Architecture, LayerChoice
from mixpath.spaces.audio_spaces import ASC_S1
from mixpath.spaces.imagenet_spaces import IMAGENET_MOGA, IMAGENET_S2, IMAGENET_S3
from mixpath.spaces.mbconv_spaces import CIFAR_S1, FMNIST_S1, TINY, mbconv_space
from mixpath.spaces.registry import get_space, list_spaces, register_space
from mixpath.spaces.shufflenet_space import SPOS_SHUFFLENET, SPOS_SHUFFLENET_BLOCKS, flops_binned_sampler
from mixpath.spaces.space import LayerSpec, SearchSpace
from mixpath.spaces.space_file import load_space_file

for _space in (
    CIFAR_S1,
    FMNIST_S1,
    TINY,
    IMAGENET_S2,
    IMAGENET_S3,
    IMAGENET_MOGA,
    ASC_S1,
    SPOS_SHUFFLENET,
    SPOS_SHUFFLENET_BLOCKS,
):
    register_space(_space)

__all__ = [
    "Architecture",
    "LayerChoice",
    "LayerSpec",
    "SearchSpace",
    "flops_binned_sampler",
    "get_space",
    "list_spaces",
    "load_space_file",
    "mbconv_space",
    "register_space",
]
