"""Mini-batches by indexing in-memory tensors: no DataLoader, no worker processes, no copies per sample."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from mixpath.errors import MixPathError


def iterate_batches(
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    *,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(xb, yb)`` covering every sample once: shuffled with ``generator``, in order without.

    In order, batches are views of ``x`` and ``y`` (do not modify them in place); shuffled, they are
    fresh tensors. ``drop_last`` skips a final batch smaller than ``batch_size``.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise MixPathError(f"batch_size={batch_size!r} must be an int >= 1")
    if len(x) != len(y):
        raise MixPathError(f"iterate_batches: {len(x)} inputs but {len(y)} labels")
    n = len(x)
    end = n - n % batch_size if drop_last else n
    order = None
    if generator is not None:
        order = torch.randperm(n, generator=generator, device=generator.device).to(x.device)
    for start in range(0, end, batch_size):
        if order is None:
            yield x[start : start + batch_size], y[start : start + batch_size]
        else:
            index = order[start : start + batch_size]
            yield x[index], y[index.to(y.device)]
