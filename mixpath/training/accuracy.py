"""Accuracy of any forward function on in-memory tensors, in large batches without autograd."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


@torch.inference_mode()
def accuracy(
    forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024
) -> tuple[float, float]:
    """(accuracy in %, mean cross-entropy); the caller puts the model in eval mode first."""
    correct, loss = 0, 0.0
    for start in range(0, len(x), batch_size):
        logits = forward(x[start : start + batch_size])
        target = y[start : start + batch_size]
        correct += (logits.argmax(1) == target).sum().item()
        loss += F.cross_entropy(logits, target, reduction="sum").item()
    n = max(1, len(x))
    return 100.0 * correct / n, loss / n
