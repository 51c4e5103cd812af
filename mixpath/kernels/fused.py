"""The summed depthwise branches of a multi-path layer, fused for training: less memory, same result.

Each active branch is depthwise conv -> BN (training statistics) -> activation, and the layer sums the
branches. Autograd would keep, per branch, the conv output (for the BN backward) and the BN output (for
the activation's backward): two hidden-sized tensors per path. ``branch_sum`` runs the branches as one
autograd function that keeps the shared branch input, each branch's conv output and each BN's batch mean
and 1/std: one tensor per path. Recomputing the convs in the backward pass instead would keep multi-path
memory at single-path memory for one extra depthwise forward per path and step; the previous version
did, this one spends memory on time (docs/speed.md has both measured).

The forward pass of BN + activation, added into the branch sum, and its backward come from
``mixpath.kernels.cpu`` (``bn_act_forward``, ``bn_act_backward``: two passes over memory each), as do
the weight gradients of 5x5 to 9x9 depthwise convs (``weight_grad``) and the input gradients of
stride-1 7x7 and 9x9 ones, added straight into the gradient of the branches' shared input
(``input_grad``), when the kernels are available; PyTorch's operators otherwise.
``fused_conv_bn_act`` runs a single conv-BN-activation block (stem, expansion, head) the same way, and
``batch_norm`` a layer's path norm (the BN after the projection).

The values equal what the modules compute (same ops; float rounding aside), the BNs' running statistics
and ``num_batches_tracked`` move exactly as ``nn.BatchNorm2d`` moves them, and gradients reach exactly
the active branches' weights. The fused path serves training with gradients in full precision; with
gradients off (evaluation, BN calibration, whose hooks must see every BN called), in eval mode, or
under autocast, the branches run as plain modules; ``fused_branches(False)`` forces the plain path
(to compare the two, or to measure what fusing saves).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from mixpath.kernels import cpu

# the activations the fused path knows, by module type: forward (in place) and backward given the output z
# of the BN, i.e. the activation's input
_ACTIVATIONS = {
    nn.ReLU6: (lambda z: z.clamp_(0.0, 6.0), lambda g, z: torch.ops.aten.hardtanh_backward(g, z, 0.0, 6.0)),
    nn.ReLU: (lambda z: z.relu_(), lambda g, z: torch.ops.aten.threshold_backward(g, z, 0.0)),
    nn.SiLU: (lambda z: F.silu(z, inplace=True), lambda g, z: torch.ops.aten.silu_backward(g, z)),
}

_KERNEL_ACTIVATIONS = {nn.ReLU6: "relu6", nn.ReLU: "relu"}

_FUSED: ContextVar[bool] = ContextVar("mixpath_fused_branches", default=True)


@contextmanager
def fused_branches(enabled: bool) -> Iterator[None]:
    """Within the block, fuse the branches in training (True, the default) or run them as plain modules."""
    token = _FUSED.set(enabled)
    try:
        yield
    finally:
        _FUSED.reset(token)


def branch_sum(hidden: torch.Tensor, branches: Sequence[nn.Module]) -> torch.Tensor:
    """The sum of ``branch(hidden)`` over ``branches`` (each a Sequential of Conv2d, BatchNorm2d and an
    activation, as ``depthwise_branch`` builds), fused when training with gradients (see the module doc)."""
    if not _fusable(hidden, branches):
        summed = branches[0](hidden)
        for branch in branches[1:]:
            summed = summed + branch(hidden)
        return summed
    layers = [cast(nn.Sequential, branch) for branch in branches]
    convs = [layer[0] for layer in layers]
    bns = [cast(nn.BatchNorm2d, layer[1]) for layer in layers]
    momenta = [_momentum(bn) for bn in bns]
    tensors = [t for conv, bn in zip(convs, bns, strict=True) for t in (conv.weight, bn.weight, bn.bias)]
    return _BranchSum.apply(hidden, branches, momenta, *tensors)


def fused_conv_bn_act(x: torch.Tensor, block: nn.Module) -> torch.Tensor:
    """``block(x)`` for a Sequential of Conv2d, BatchNorm2d and an activation: a sum of one branch, so in
    training it runs fused like the branches (its BN and activation backward from the compiled kernel)."""
    return branch_sum(x, [block])


def batch_norm(x: torch.Tensor, bn: nn.BatchNorm2d) -> torch.Tensor:
    """``bn(x)``; in training with gradients, forward and backward from the compiled kernels (see the
    module doc: PyTorch's BN is several times slower than memory on channel counts like 12 or 36)."""
    if not _fusable_mode(x) or not _fusable_bn(bn):
        return bn(x)
    return _BatchNorm.apply(x, bn, _momentum(bn), bn.weight, bn.bias)


def _fusable_mode(x: torch.Tensor) -> bool:
    return _FUSED.get() and torch.is_grad_enabled() and not _autocast(x.device.type)


def _fusable_bn(bn: nn.Module) -> bool:
    return type(bn) is nn.BatchNorm2d and bn.training and bn.affine


def _fusable(hidden: torch.Tensor, branches: Sequence[nn.Module]) -> bool:
    if not _fusable_mode(hidden):
        return False
    for branch in branches:
        layer = cast(nn.Sequential, branch)
        if len(layer) != 3 or type(layer[2]) not in _ACTIVATIONS:
            return False
        conv, bn = layer[0], layer[1]
        if conv.bias is not None or conv.padding_mode != "zeros" or not _fusable_bn(bn):
            return False
    return True


def _autocast(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4 has no device argument
        return torch.is_autocast_cpu_enabled() if device_type == "cpu" else torch.is_autocast_enabled()


def _momentum(bn: nn.BatchNorm2d) -> float:
    """The running-average factor ``nn.BatchNorm2d.forward`` would use now, counting this batch as it does."""
    if not bn.track_running_stats:
        return 0.0
    batches = cast(torch.Tensor, bn.num_batches_tracked)  # present whenever running stats are tracked
    batches.add_(1)
    return 1.0 / float(batches) if bn.momentum is None else bn.momentum


def _conv(x: torch.Tensor, conv: nn.Conv2d, weight: torch.Tensor) -> torch.Tensor:
    return F.conv2d(x, weight, None, conv.stride, conv.padding, conv.dilation, conv.groups)


class _BranchSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, branches, momenta, *tensors):
        total = None
        convs, stats = [], []
        for i, branch in enumerate(branches):
            conv, bn, act = branch
            weight, gamma, beta = tensors[3 * i : 3 * i + 3]
            y = _conv(hidden, conv, weight)
            total, mean, invstd = _bn_act_forward(y, bn, gamma, beta, momenta[i], act, total)
            convs.append(y)
            stats += [mean, invstd]
        ctx.branches = branches
        ctx.save_for_backward(hidden, *tensors, *convs, *stats)
        return total

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        hidden, *rest = ctx.saved_tensors
        n = len(ctx.branches)
        tensors, convs, stats = rest[: 3 * n], rest[3 * n : 4 * n], rest[4 * n :]
        grad = grad.contiguous(memory_format=_memory_format(hidden))
        grad_hidden = None
        grads = []
        for i, (conv, bn, act) in enumerate(ctx.branches):
            weight, gamma, beta = tensors[3 * i : 3 * i + 3]
            mean, invstd = stats[2 * i : 2 * i + 2]
            grad_y, grad_gamma, grad_beta = _bn_act_backward(grad, convs[i], mean, invstd, gamma, beta, bn.eps, act)
            grad_weight = cpu.weight_grad(grad_y, hidden, conv) if weight.requires_grad else None
            summed = None
            if ctx.needs_input_grad[0]:
                summed = cpu.input_grad(grad_y, weight, conv, grad_hidden)
            need_input = ctx.needs_input_grad[0] and summed is None
            grad_in, aten_grad_weight = None, None
            if need_input or (weight.requires_grad and grad_weight is None):
                grad_in, aten_grad_weight, _ = torch.ops.aten.convolution_backward(
                    grad_y,
                    hidden,
                    weight,
                    None,
                    conv.stride,
                    conv.padding,
                    conv.dilation,
                    False,
                    [0, 0],
                    conv.groups,
                    [need_input, weight.requires_grad and grad_weight is None, False],
                )
            if grad_weight is None:
                grad_weight = aten_grad_weight
            if summed is not None:
                grad_hidden = summed
            elif grad_in is not None:
                grad_hidden = grad_in if grad_hidden is None else grad_hidden.add_(grad_in)
            grads += [grad_weight, grad_gamma, grad_beta]
        return grad_hidden, None, None, *grads


class _BatchNorm(torch.autograd.Function):
    """A training-mode BN alone (a layer's path norm), forward and backward from the compiled kernels."""

    @staticmethod
    def forward(ctx, x, bn, momentum, gamma, beta):
        out, mean, invstd = _bn_act_forward(x, bn, gamma, beta, momentum, None, None)
        ctx.eps = bn.eps
        ctx.save_for_backward(x, gamma, beta, mean, invstd)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, gamma, beta, mean, invstd = ctx.saved_tensors
        grad = grad.contiguous(memory_format=_memory_format(x))
        grad_x, grad_gamma, grad_beta = _bn_act_backward(grad, x, mean, invstd, gamma, beta, ctx.eps, None)
        return grad_x, None, None, grad_gamma, grad_beta


def _kernel_activation(act: nn.Module | None) -> str:
    return "none" if act is None else _KERNEL_ACTIVATIONS.get(type(act), "")


def _bn_act_forward(
    y: torch.Tensor,
    bn: nn.BatchNorm2d,
    gamma: torch.Tensor,
    beta: torch.Tensor,
    momentum: float,
    act: nn.Module | None,
    total: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``act(bn(y))`` in training mode (``act`` None: the BN alone) added into ``total`` (None: a new
    tensor), with the batch mean and 1/std; ``bn``'s running statistics move as its forward moves them.
    The compiled kernel where it applies (two passes over memory), else PyTorch's operators."""
    mean, var = bn.running_mean, bn.running_var
    fused = cpu.bn_act_forward(y, gamma, beta, mean, var, momentum, bn.eps, _kernel_activation(act), total)
    if fused is not None:
        return fused
    z, batch_mean, invstd = torch.native_batch_norm(y, gamma, beta, mean, var, True, momentum, bn.eps)
    if act is not None:
        z = _ACTIVATIONS[type(act)][0](z)
    return (z if total is None else total.add_(z)), batch_mean, invstd


def _bn_act_backward(
    grad: torch.Tensor,
    y: torch.Tensor,
    mean: torch.Tensor,
    invstd: torch.Tensor,
    gamma: torch.Tensor,
    beta: torch.Tensor,
    eps: float,
    act: nn.Module | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients (BN input, gamma, beta) of ``act(BN(y))`` (``act`` None: the BN alone): the compiled
    kernel where it applies, else PyTorch's operators on the BN output recomputed from ``y`` and the
    batch statistics."""
    fused = cpu.bn_act_backward(grad, y, mean, invstd, gamma, beta, _kernel_activation(act))
    if fused is not None:
        return fused
    if act is None:
        grad_z = grad
    else:
        scale = gamma * invstd
        shape = (1, -1, 1, 1)
        z = torch.addcmul((beta - mean * scale).view(shape), y, scale.view(shape))
        grad_z = _ACTIVATIONS[type(act)][1](grad, z)
        del z
    grad_y, grad_gamma, grad_beta = torch.ops.aten.native_batch_norm_backward(
        grad_z, y, gamma, None, None, mean, invstd, True, eps, [True, gamma.requires_grad, beta.requires_grad]
    )
    return grad_y, grad_gamma, grad_beta


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    return torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
