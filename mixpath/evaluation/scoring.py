"""Accuracy and loss of a model on a held-out split: how every stage of mixpath scores a model.

The supernet trainer (its sampled subnets after each epoch), stand-alone training (validation and test
accuracy), the supernet evaluator and the stand-alone evaluator all score with ``score``, on a batch source
(``mixpath.data.batches``): tensors in memory or an image folder streamed from disk.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mixpath.checks import check_whole_number
from mixpath.data import BatchSource
from mixpath.errors import MixPathError
from mixpath.evaluation.modules import model_device, restored_modes
from mixpath.spaces import Architecture


def score(model: nn.Module, arch: Architecture | None, split: BatchSource, batch_size: int = 512) -> dict[str, float]:
    """``accuracy`` (percent) and mean cross-entropy ``loss`` of ``model`` on every image of ``split``.

    Runs ``model(x, arch)`` (or ``model(x)`` when ``arch`` is None) in eval and inference mode, in
    batches of ``batch_size`` moved to the model's device; the training flags are restored afterwards.
    """
    check_whole_number("batch_size", batch_size)
    if len(split) == 0:
        raise MixPathError("nothing to score: the split holds no images")
    device = model_device(model)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    loss = torch.zeros((), dtype=torch.float64, device=device)
    with restored_modes(model), torch.inference_mode():
        model.eval()
        for xb, yb in split.batches(batch_size):
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
            logits = model(xb) if arch is None else model(xb, arch)
            correct += (logits.argmax(1) == yb).sum()
            loss += F.cross_entropy(logits, yb, reduction="sum").double()
    return {"accuracy": 100.0 * correct.item() / len(split), "loss": loss.item() / len(split)}
