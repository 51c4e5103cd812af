"""BN folding: an inference copy of a stand-alone model whose convolutions absorb the BNs after them.

In eval mode a BN is a per-channel affine map, ``y = (x - mean) / sqrt(var + eps) * gamma + beta``, so
``BN(conv(x))`` equals a conv with scaled weights and a bias. Folding removes a BN pass over every
feature map (about half of the operator calls of an MBConv network), which is what candidate validation
spends its time on once the BNs are calibrated. The result computes the same function up to float
rounding; it is for inference only (its convs have no BN to train).

Folded: a ``Conv2d`` followed by a ``BatchNorm2d`` with running statistics inside any ``nn.Sequential``
(every family's conv-BN-activation blocks), and an MBConv layer's projection conv with its path BN and
the simple-scaling factor. Everything else is left as it is.
"""

from __future__ import annotations

import copy
from typing import cast

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from mixpath.supernet.mbconv import InvertedResidual


def foldable(conv: nn.Module, bn: nn.Module) -> bool:
    """Whether ``bn`` normalises with running statistics right after the plain convolution ``conv``."""
    return (
        type(conv) is nn.Conv2d
        and type(bn) is nn.BatchNorm2d
        and bn.track_running_stats
        and bn.running_mean is not None
        and conv.out_channels == bn.num_features
    )


def fold_sequential(block: nn.Sequential) -> None:
    """Fold each (conv, BN) pair of ``block`` into the conv, in place; the BN becomes an ``nn.Identity``
    so that module indices (and state-dict names of the rest) stay as they were."""
    for i in range(len(block) - 1):
        conv, bn = block[i], block[i + 1]
        if foldable(conv, bn):
            block[i] = fuse_conv_bn_eval(cast(nn.Conv2d, conv), cast(nn.BatchNorm2d, bn))
            block[i + 1] = nn.Identity()


def fold_inverted_residual(layer: InvertedResidual) -> None:
    """Fold ``norm(project(x) * scale)`` into one conv with a bias, in place (``layer`` belongs to the copy
    ``fold_batchnorms`` made, so its weights may change)."""
    if not foldable(layer.project, layer.norm):
        return
    layer.project.weight.data.mul_(layer.scale)
    layer.project = fuse_conv_bn_eval(layer.project, layer.norm)
    layer.register_module("norm", nn.Identity())
    layer.scale = 1.0


def fold_batchnorms(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` with its BNs folded into the convolutions before them (see the
    module docstring); ``model`` itself is not changed."""
    folded = copy.deepcopy(model).eval()
    for module in list(folded.modules()):
        if isinstance(module, nn.Sequential):
            fold_sequential(module)
        elif isinstance(module, InvertedResidual):
            fold_inverted_residual(module)
    return folded
