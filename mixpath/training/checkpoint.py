"""Checkpoints written atomically and read back with a one-line error when torn, foreign or wrong inside."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from mixpath.errors import MixPathError
from mixpath.io import atomic_write


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """torch.save ``state`` to ``path`` through a temp file in the same folder and a rename. torch reports a
    failed write (a full disk) as a RuntimeError; it becomes the one-line error naming the file."""
    try:
        atomic_write(path, lambda handle: torch.save(state, handle))
    except RuntimeError as err:
        raise MixPathError(f"cannot write {path}: {str(err).splitlines()[0]}") from None


def load_weights(module: torch.nn.Module, weights: object, path: Path) -> None:
    """Load a checkpoint's state dict into ``module``, or fail in one line saying how it does not fit (instead of
    torch's list of every missing and unexpected key)."""
    if not isinstance(weights, Mapping) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise MixPathError(f"checkpoint {path} is not a mixpath checkpoint (its model weights are not tensors)")
    expected = module.state_dict()
    missing = sorted(expected.keys() - weights.keys())
    unexpected = sorted(weights.keys() - expected.keys())
    reshaped = sorted(k for k in expected.keys() & weights.keys() if expected[k].shape != weights[k].shape)
    if missing or unexpected or reshaped:
        example = (missing or unexpected or reshaped)[0]
        raise MixPathError(
            f"checkpoint {path} holds the weights of another model ({len(missing)} missing, {len(unexpected)} "
            f"unexpected, {len(reshaped)} of another shape, e.g. {str(example)[:80]!r})"
        )
    module.load_state_dict(weights)


@contextlib.contextmanager
def restoring(path: Path) -> Iterator[None]:
    """Turn whatever copying a checkpoint's contents into live objects raises (an optimizer state of another
    model, a missing entry, a value of the wrong type) into one line naming the checkpoint."""
    try:
        yield
    except (RuntimeError, ValueError, KeyError, TypeError, AttributeError, IndexError) as err:
        detail = str(err).splitlines()[0][:160] if str(err) else ""
        raise MixPathError(
            f"checkpoint {path} does not fit this run ({type(err).__name__}{': ' + detail if detail else ''})"
        ) from None


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
