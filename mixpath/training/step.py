"""One optimizer step, the same for a supernet and a stand-alone model, and the state it advances.

A step zeroes the gradients, runs forward and backward for every architecture trained in it (FairNAS trains
n per step; a stand-alone model is the one "architecture" ``None``) on every micro-batch, checks that the
loss is finite, clips the gradient norm and takes the SGD step at the learning rate it is given.

Inactive paths get no gradient (``zero_grad(set_to_none=True)``), and SGD skips parameters whose gradient is
None: weights of paths not trained in a step receive neither momentum nor weight decay. Decaying or pushing
untrained weights would change them by how often they were *not* sampled, which no paper intends; the
reference code's behaviour with set_to_none is the same.

With ``across_ranks`` (supernet training under torchrun, ``mixpath.distributed``) the step's loss sums
travel over all ranks in one small all-reduce, which also checks that every rank trained the same
architectures, and the gradients of exactly the parameters that got one are averaged over ranks before
the clip, so every rank takes the same step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from mixpath import distributed
from mixpath.errors import MixPathError
from mixpath.spaces import Architecture
from mixpath.training.recipe import Recipe
from mixpath.training.seeding import derive_seed

SCORING_BATCH_SIZE = 1024
"""Images per forward pass when a training scores its model on a held-out split (no autograd: large is cheap)."""


@dataclass
class EpochSums:
    """What the steps of the epoch in progress add up to: the epoch's row of metrics is made of them."""

    loss: float = 0.0
    """Cross-entropy summed over every image of every forward pass."""
    correct: int = 0
    seen: int = 0
    """Images of every forward pass (an image trained by n architectures counts n times)."""
    seconds: float = 0.0

    @property
    def mean_loss(self) -> float:
        return self.loss / max(1, self.seen)

    @property
    def accuracy(self) -> float:
        """Percent of the forward passes' images classified right."""
        return 100.0 * self.correct / max(1, self.seen)


@dataclass
class TrainState:
    """A training between two steps: the model, its optimizer and where it stands. A checkpoint holds this."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    params: list[torch.nn.Parameter]
    """The model's parameters, listed once: walking a supernet's thousands of modules for them twice per step
    is a measurable share of a small step (docs/speed.md, "What makes mixpath fast")."""
    epoch: int = 0
    """Epochs finished."""
    step: int = 0
    """Steps finished in the epoch in progress."""
    metrics: list[dict[str, Any]] = field(default_factory=list)
    """One row per finished epoch."""
    sums: EpochSums = field(default_factory=EpochSums)

    @classmethod
    def start(cls, model: torch.nn.Module, recipe: Recipe, scaler: torch.amp.GradScaler) -> TrainState:
        """Epoch 0, step 0 of training ``model`` (already on its device) with ``recipe``."""
        params = list(model.parameters())
        return cls(model, recipe.optimizer(params), scaler, params)


def train_step(
    state: TrainState,
    xb: torch.Tensor,
    yb: torch.Tensor,
    archs: Sequence[Architecture | None],
    recipe: Recipe,
    lr: float,
    *,
    micro_batches: int = 1,
    amp_dtype: torch.dtype | None = None,
    across_ranks: bool = False,
) -> None:
    """Train ``state.model`` one step on ``(xb, yb)``: gradients summed over ``archs`` (``model(x, arch)``, or
    ``model(x)`` for ``None``) and averaged over ``micro_batches`` equal parts of the batch, under autocast to
    ``amp_dtype`` when given; then the step's sums go into ``state.sums`` and ``state.step`` moves on.

    A loss that is not finite stops the training with a MixPathError saying where and at which rate."""
    optimizer, scaler = state.optimizer, state.scaler
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    micro = len(xb) // micro_batches
    stats = torch.zeros(3, dtype=torch.float64, device=xb.device)  # summed loss, correct predictions, images
    for arch in archs:
        for start in range(0, len(xb), micro):
            xm, ym = xb[start : start + micro], yb[start : start + micro]
            with torch.autocast(xb.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                logits = state.model(xm) if arch is None else state.model(xm, arch)
                loss = F.cross_entropy(logits, ym, label_smoothing=recipe.label_smoothing)
            scaler.scale(loss / micro_batches).backward()
            stats[0] += loss.detach().double() * len(ym)
            stats[1] += (logits.argmax(1) == ym).sum()
            stats[2] += len(ym)
    loss_sum, correct, seen = _sum_over_ranks(stats, archs, state) if across_ranks else stats.tolist()
    if not math.isfinite(loss_sum):
        raise MixPathError(
            f"loss became {loss_sum / seen} at epoch {state.epoch + 1} step {state.step + 1} (lr {lr:.4g}); "
            "lower --lr or check the data"
        )
    if across_ranks:
        distributed.average_gradients(state.params)
    scaler.unscale_(optimizer)
    if recipe.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(state.params, recipe.grad_clip)
    scaler.step(optimizer)
    scaler.update()
    state.sums.loss += loss_sum
    state.sums.correct += int(correct)
    state.sums.seen += int(seen)
    state.step += 1


def _sum_over_ranks(
    stats: torch.Tensor, archs: Sequence[Architecture | None], state: TrainState
) -> tuple[float, float, float]:
    """``stats`` summed over ranks (one small all-reduce), checking that every rank trained ``archs``.

    The architectures ride along as a tag below 2**40, so float64 sums of it are exact: the sum equals
    world x tag on every rank only when all tags agree.
    """
    tag = derive_seed(*map(str, archs)) % (1 << 40)
    total = distributed.all_reduce_sum(torch.cat([stats, stats.new_tensor([tag])])).tolist()
    if total[3] != distributed.world_size() * tag:
        raise RuntimeError(
            f"rank {distributed.rank()} trained other architectures than its peers at epoch {state.epoch + 1} "
            f"step {state.step + 1}"
        )
    return total[0], total[1], total[2]
