"""Checkpoints written atomically and read back with a one-line error when torn or foreign."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mixpath.errors import MixPathError
from mixpath.io import atomic_write


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """torch.save ``state`` to ``path`` through a temp file in the same folder and a rename."""
    atomic_write(path, lambda handle: torch.save(state, handle))


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by ``save_checkpoint``; a missing or corrupt file is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise MixPathError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # torch raises many types for a torn or foreign file
        raise MixPathError(f"checkpoint {path} is corrupt or not a mixpath checkpoint ({type(err).__name__})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise MixPathError(f"checkpoint {path} is not a mixpath checkpoint (no model weights in it)")
    return state
