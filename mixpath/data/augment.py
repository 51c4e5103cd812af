"""Batch augmentation on normalised tensors: random crop with padding, horizontal flip, cutout.

Everything is drawn from the caller's generator in a fixed order (crop offsets, flip coins, cutout
centres), so a generator state fixes the result. The work is vectorised over the batch and runs on
the batch's device; the random numbers are drawn on the generator's device and moved.

Fill value: the tensors are already normalised, so padding and cutout write 0, which is the
dataset's per-channel mean (not black, as when cropping raw pixels). This keeps the filled regions
neutral for the first layer and needs no knowledge of mean/std here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from mixpath.checks import check_whole_number
from mixpath.errors import MixPathError


@dataclass(frozen=True)
class AugmentConfig:
    """Which augmentations to apply; sizes in pixels. All off by default."""

    crop_padding: int = 0  # random crop back to H x W from the image zero-padded by this many pixels per side
    flip: bool = False  # random horizontal flip with probability 1/2
    cutout: int = 0  # side of a square set to 0, centred anywhere in the image and clipped at its border

    def __post_init__(self) -> None:
        for key in ("crop_padding", "cutout"):
            check_whole_number(f"augmentation {key}", getattr(self, key), smallest=0, meaning="pixels, 0 = off")
        if not isinstance(self.flip, bool):
            raise MixPathError(f"augmentation flip={self.flip!r} must be true or false")

    @property
    def enabled(self) -> bool:
        return bool(self.crop_padding or self.flip or self.cutout)


def augment_batch(x: torch.Tensor, config: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Return an augmented copy of the batch ``x`` (N x C x H x W); ``x`` itself is never modified."""
    if x.dim() != 4:
        raise MixPathError(f"augment_batch needs a batch N x C x H x W, got shape {tuple(x.shape)}")
    out = x
    if config.crop_padding:
        out = _random_crop(out, config.crop_padding, generator)
    if config.flip:
        flip = _draw(generator, x.device, torch.rand, (len(x),)) < 0.5
        out = torch.where(flip[:, None, None, None], out.flip(3), out)
    if config.cutout:
        out = _cutout(out, config.cutout, generator)
    return out.clone() if out is x else out


def _draw(
    generator: torch.Generator, device: torch.device, fn: Callable[..., torch.Tensor], *args: Any
) -> torch.Tensor:
    """Call ``fn(*args)`` (torch.rand, torch.randint) on the generator's device, then move to ``device``."""
    return fn(*args, generator=generator, device=generator.device).to(device)


def _random_crop(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Crop H x W at a random offset out of the zero-padded batch, as one flat ``take``."""
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))  # contiguous N x C x (H + 2 pad) x (W + 2 pad)
    hp, wp = h + 2 * pad, w + 2 * pad
    top = _draw(generator, x.device, torch.randint, 0, 2 * pad + 1, (n,))
    left = _draw(generator, x.device, torch.randint, 0, 2 * pad + 1, (n,))
    corner = torch.arange(n, device=x.device) * (c * hp * wp) + top * wp + left  # flat index per crop
    channels = torch.arange(c, device=x.device)[:, None, None] * (hp * wp)
    within = channels + torch.arange(h, device=x.device)[:, None] * wp + torch.arange(w, device=x.device)
    return padded.take(corner[:, None, None, None] + within)


def _cutout(x: torch.Tensor, side: int, generator: torch.Generator) -> torch.Tensor:
    n, _, h, w = x.shape
    top = _draw(generator, x.device, torch.randint, 0, h, (n,)) - side // 2
    left = _draw(generator, x.device, torch.randint, 0, w, (n,)) - side // 2
    ys = torch.arange(h, device=x.device)
    xs = torch.arange(w, device=x.device)
    in_rows = (ys >= top[:, None]) & (ys < top[:, None] + side)  # N x H
    in_cols = (xs >= left[:, None]) & (xs < left[:, None] + side)  # N x W
    mask = in_rows[:, :, None] & in_cols[:, None, :]
    return x.masked_fill(mask[:, None], 0.0)
