"""Where tensors live: chosen at run time, so the same code runs on the CPU and on CUDA."""

from __future__ import annotations

import torch

from mixpath.errors import MixPathError


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; an unavailable device is a one-line error."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        device = None
    if device is None or device.type not in ("cpu", "cuda"):  # meta, mps, xla...: mixpath computes on neither
        raise MixPathError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise MixPathError(f"device {name!r} asked for, but CUDA is not available here; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise MixPathError(f"device {name!r} asked for, but this machine has {count} CUDA device(s)")
    return device
