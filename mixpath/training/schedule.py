"""The learning-rate schedule: a pure function of the global step, so resuming needs no scheduler state."""

from __future__ import annotations

import math


def cosine_lr(base_lr: float, step: int, total_steps: int, warmup_steps: int = 0) -> float:
    """Linear warm-up from ``base_lr / warmup_steps`` to ``base_lr`` over the first ``warmup_steps`` steps,
    then cosine decay to 0 at ``total_steps``, evaluated per step.

    The warm-up lets a supernet start at a rate that would diverge on its first steps (random weights,
    BN statistics not yet settled); without one (``warmup_steps=0``) this is MixPath's plain cosine.
    """
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    return 0.5 * base_lr * (1.0 + math.cos(math.pi * min(step - warmup_steps, span) / span))
