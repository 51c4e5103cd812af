"""mixpath: one-shot neural architecture search with multi-path supernets and Shadow BatchNorm."""

from mixpath.errors import MixPathError
from mixpath.spaces import Architecture, LayerChoice, SearchSpace, get_space, list_spaces, register_space

__version__ = "0.1.0"

__all__ = [
    "Architecture",
    "LayerChoice",
    "MixPathError",
    "SearchSpace",
    "get_space",
    "list_spaces",
    "register_space",
]
