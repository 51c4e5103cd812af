"""Per-channel normalisation: statistics of the training pixels, applied to every split."""

from __future__ import annotations

import numpy as np
import torch


def channel_stats(x: np.ndarray, max_value: float) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 pixels ``x`` (N x C x H x W) on the scale pixel / max_value.

    Exact, from a 256-bin histogram per channel, so no float copy of the images is made. A constant
    channel gets std 1 so that normalising it does not divide by zero.
    """
    values = torch.arange(256, dtype=torch.float64) / max_value
    means, stds = [], []
    for c in range(x.shape[1]):
        counts = torch.bincount(torch.from_numpy(np.ascontiguousarray(x[:, c])).reshape(-1), minlength=256)
        weights = counts.to(torch.float64) / counts.sum()
        mean = float(weights @ values)
        std = float(weights @ (values - mean) ** 2) ** 0.5
        means.append(mean)
        stds.append(std if std > 0 else 1.0)
    return tuple(means), tuple(stds)


def normalize(x: np.ndarray, max_value: float, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """float32 tensor ``(x / max_value - mean) / std`` per channel, computed in place on one new tensor."""
    out = torch.from_numpy(np.ascontiguousarray(x)).to(torch.float32)
    shape = (1, len(mean), 1, 1)
    out.div_(max_value).sub_(torch.tensor(mean, dtype=torch.float32).view(shape))
    return out.div_(torch.tensor(std, dtype=torch.float32).view(shape))
