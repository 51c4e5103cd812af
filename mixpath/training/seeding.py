"""Seeds derived from (seed, epoch, step, ...), so every step's randomness is reproducible on its own."""

from __future__ import annotations

import hashlib
import random

import torch


def derive_seed(*parts: object) -> int:
    """A 63-bit seed that depends on every part; equal parts give equal seeds on every machine."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def step_rng(*parts: object) -> random.Random:
    return random.Random(derive_seed(*parts))


def torch_generator(*parts: object) -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(*parts))
