"""A trained run folder read back: its settings, its supernet with trained weights, and its data."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch

from mixpath.data import Dataset
from mixpath.device import resolve_device
from mixpath.errors import MixPathError
from mixpath.io import read_json
from mixpath.spaces import SearchSpace, get_space
from mixpath.supernet import build_supernet
from mixpath.training.checkpoint import load_checkpoint
from mixpath.training.config import TrainConfig
from mixpath.training.trainer import CHECKPOINT_FILE, CONFIG_FILE, load_data


@dataclass
class Run:
    """What later stages (evaluation, search, ranking, export) need from a training run."""

    run_dir: Path
    config: TrainConfig
    space: SearchSpace
    supernet: torch.nn.Module
    device: torch.device

    @cached_property
    def dataset(self) -> Dataset:
        """The run's data with the run's split (loaded on first use: search on a table never needs it)."""
        return load_data(self.config)


def load_run(run_dir: Path | str, device: str | torch.device = "auto") -> Run:
    """Load a run folder written by ``train_supernet``; a folder without a run is a one-line error."""
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).is_file():
        raise MixPathError(f"{run_dir} is not a mixpath run folder (no {CONFIG_FILE}); train one with `mixpath train`")
    config = TrainConfig.from_json(read_json(run_dir / CONFIG_FILE))
    device = resolve_device(device)
    space = get_space(config.space)
    supernet = build_supernet(space, config.m, config.bn_policy).to(device)
    supernet.load_state_dict(load_checkpoint(run_dir / CHECKPOINT_FILE, device)["model"])
    supernet.eval()
    return Run(run_dir, config, space, supernet, device)
