"""A trained run folder read back: its settings, its supernet with trained weights, and its data."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch

from mixpath.data import Data
from mixpath.device import resolve_device
from mixpath.errors import MixPathError
from mixpath.io import read_json
from mixpath.spaces import SearchSpace
from mixpath.spaces.space_file import load_run_spaces
from mixpath.supernet import build_supernet
from mixpath.training.checkpoint import load_checkpoint, load_weights
from mixpath.training.config import TrainConfig
from mixpath.training.shrinking import run_search_space
from mixpath.training.trainer import CHECKPOINT_FILE, CONFIG_FILE, run_data, run_space


@dataclass
class Run:
    """What later stages (evaluation, search, ranking, export) need from a training run."""

    run_dir: Path
    config: TrainConfig
    space: SearchSpace
    supernet: torch.nn.Module
    device: torch.device

    @cached_property
    def search_space(self) -> SearchSpace:
        """The space a search of this run searches: ``space``, shrunk to the ops that survived when the run was
        trained with BS-NAS shrinking (``mixpath.training.shrinking``)."""
        return run_search_space(self.run_dir, self.space)

    @cached_property
    def dataset(self) -> Data:
        """The run's data with the run's split (loaded on first use: search on a table never needs it)."""
        return run_data(self.config)


def load_run(run_dir: Path | str, device: str | torch.device = "auto") -> Run:
    """Load a run folder written by ``train_supernet``; a folder without a run is a one-line error."""
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).is_file():
        raise MixPathError(f"{run_dir} is not a mixpath run folder (no {CONFIG_FILE}); train one with `mixpath train`")
    config = TrainConfig.from_json(read_json(run_dir / CONFIG_FILE), run_dir / CONFIG_FILE)
    device = resolve_device(device)
    load_run_spaces(run_dir)  # a space declared in a file: the run's copy
    space = run_space(config)
    supernet = build_supernet(space, config.m, config.bn_policy).to(device)
    load_weights(supernet, load_checkpoint(run_dir / CHECKPOINT_FILE, device)["model"], run_dir / CHECKPOINT_FILE)
    supernet.eval()
    return Run(run_dir, config, space, supernet, device)
