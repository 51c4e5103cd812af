"""Supernet training: samplers (mixpath, spos, fairnas), the trainer, checkpoints and run folders."""

from mixpath.training.config import TrainConfig
from mixpath.training.recipe import Recipe
from mixpath.training.run import Run, load_run
from mixpath.training.samplers import STRATEGIES, FairNASSampler, MixPathSampler, Sampler, SPOSSampler, make_sampler
from mixpath.training.trainer import TrainResult, train_supernet

__all__ = [
    "STRATEGIES",
    "FairNASSampler",
    "MixPathSampler",
    "Recipe",
    "Run",
    "SPOSSampler",
    "Sampler",
    "TrainConfig",
    "TrainResult",
    "load_run",
    "make_sampler",
    "train_supernet",
]
