"""Small helpers every scoring pass shares: where a model lives, and leaving its train/eval flags as found."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (the CPU for a model without parameters)."""
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def synchronize(device: torch.device) -> None:
    """Wait for queued CUDA work, so wall-clock timings cover it (a no-op elsewhere)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextmanager
def restored_modes(model: nn.Module) -> Iterator[nn.Module]:
    """Let the body switch modules between train and eval; every module's flag is restored on exit."""
    flags = {module: module.training for module in model.modules()}
    try:
        yield model
    finally:
        for module, training in flags.items():
            module.training = training
