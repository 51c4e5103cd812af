"""Speed machinery, behind one seam: the supernet's blocks call these and otherwise read as plain PyTorch.

- ``branch_sum(hidden, branches)``: the sum of a multi-path layer's active conv-BN-activation branches;
- ``fused_conv_bn_act(x, block)``: one conv-BN-activation block (stem, expansion, head);
- ``batch_norm(x, bn)``: a BN alone (a layer's path norm).

Each computes what the modules compute; in training they run as fused autograd functions on compiled CPU
kernels where those apply (``fused``), and ``fused_branches(False)`` turns fusing off. Behind them:
``cpu`` (the kernels, called on tensors), ``build`` (compiling them into a verified per-user cache) and
their C source in ``csrc/``. ``kernels_in_use()`` names what computes (the kernels round differently from
PyTorch's operators), for a checkpoint to record; ``kernel_change_warning(recorded)`` says when a resume
computes differently. ``runtime`` is the allocator and OpenMP waiting: the ``mixpath`` command's at start,
and every process's while it trains or searches (``waiting_follows_load``).

The names are imported on first use (PEP 562), so that importing ``mixpath.kernels.runtime``, which the
command does before it re-executes itself, does not load torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mixpath.kernels.cpu import kernel_change_warning, kernels_in_use
    from mixpath.kernels.fused import batch_norm, branch_sum, fused_branches, fused_conv_bn_act

_HOMES = {
    "batch_norm": "fused",
    "branch_sum": "fused",
    "fused_branches": "fused",
    "fused_conv_bn_act": "fused",
    "kernel_change_warning": "cpu",
    "kernels_in_use": "cpu",
}

__all__ = [
    "batch_norm",
    "branch_sum",
    "fused_branches",
    "fused_conv_bn_act",
    "kernel_change_warning",
    "kernels_in_use",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
