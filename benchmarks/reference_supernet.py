"""The baseline every speed figure is a ratio to: a MixPath supernet written the way the reference code is.

One module per branch, a Python loop over the active branches, NCHW tensors, eager mode, the default
allocator; Shadow BN (one BN per path count) after the projection. Built from DESIGN.md section 4 and the
layer list of a ``mixpath`` search space (channels, strides, kernels, expansions), without any of
mixpath's supernet code, so it measures what a straightforward implementation costs on this machine.

``spos_evaluate`` is the matching candidate evaluation: SPOS's BN re-estimation (reset every BN's running
statistics, forward 200 training batches in train mode with the BNs' momentum) and validation accuracy.
"""

from __future__ import annotations

import torch
from torch import nn

from mixpath.spaces import Architecture, SearchSpace


def conv_bn_relu6(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU6(inplace=True),
    )


class MixedBlock(nn.Module):
    """Per expansion ratio: 1x1 expand, one depthwise branch per kernel, 1x1 project, m shadow BNs."""

    def __init__(self, c_in: int, c_out: int, stride: int, kernels: list[int], expansions: list[int], m: int):
        super().__init__()
        self.kernels = kernels
        self.expansions = expansions
        self.use_residual = stride == 1 and c_in == c_out
        self.expand = nn.ModuleList()
        self.depthwise = nn.ModuleList()
        self.project = nn.ModuleList()
        self.shadow_bn = nn.ModuleList()
        for e in expansions:
            hidden = c_in * e
            self.expand.append(conv_bn_relu6(c_in, hidden, 1))
            self.depthwise.append(nn.ModuleList(conv_bn_relu6(hidden, hidden, k, stride, hidden) for k in kernels))
            self.project.append(nn.Conv2d(hidden, c_out, 1, bias=False))
            self.shadow_bn.append(nn.ModuleList(nn.BatchNorm2d(c_out) for _ in range(m)))

    def forward(self, x: torch.Tensor, e: int, kernels: list[int]) -> torch.Tensor:
        ei = self.expansions.index(e)
        hidden = self.expand[ei](x)
        out = 0
        for k in kernels:
            out = out + self.depthwise[ei][self.kernels.index(k)](hidden)
        out = self.shadow_bn[ei][len(kernels) - 1](self.project[ei](out))
        if self.use_residual:
            out = out + x
        return out


class ReferenceSupernet(nn.Module):
    """S1-style supernet of an ``mbconv`` space: stem, one ``MixedBlock`` per searchable layer, head."""

    def __init__(self, space: SearchSpace, m: int):
        super().__init__()
        sk = space.skeleton
        self.stem = conv_bn_relu6(space.input_shape[0], sk["stem_channels"], 3, sk["stem_stride"])
        self.blocks = nn.ModuleList(
            MixedBlock(
                spec.in_channels,
                spec.out_channels,
                spec.stride,
                [int(op[1:]) for op in spec.ops],
                [int(e) for e in spec.option_values("e")],
                m,
            )
            for spec in space.layers
        )
        self.head = conv_bn_relu6(space.layers[-1].out_channels, sk["head_channels"], 1)
        self.classifier = nn.Linear(sk["head_channels"], space.num_classes)

    def forward(self, x: torch.Tensor, arch: Architecture) -> torch.Tensor:
        x = self.stem(x)
        for block, choice in zip(self.blocks, arch.layers, strict=True):
            x = block(x, int(choice.option("e")), [int(op[1:]) for op in choice.paths])
        x = self.head(x).mean((2, 3))
        return self.classifier(x)


def spos_evaluate(
    model: ReferenceSupernet,
    arch: Architecture,
    calib_x: torch.Tensor,
    val_x: torch.Tensor,
    val_y: torch.Tensor,
    batches: int = 200,
    batch_size: int = 100,
    val_batch_size: int = 512,
) -> float:
    """SPOS-style score of ``arch``: reset all BN statistics, re-estimate them on ``batches`` batches of
    ``calib_x`` in train mode, then validation accuracy (percent) in eval mode."""
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
    model.train()
    with torch.no_grad():
        for b in range(batches):
            start = (b * batch_size) % len(calib_x)
            model(calib_x[start : start + batch_size], arch)
        model.eval()
        correct = 0
        for start in range(0, len(val_x), val_batch_size):
            logits = model(val_x[start : start + val_batch_size], arch)
            correct += int((logits.argmax(1) == val_y[start : start + val_batch_size]).sum())
    return 100.0 * correct / len(val_x)
