"""FLOPs in the convention of the NASLib benchmark tables (the torchstat / tensorwatch counter).

The FLOPs columns of ``nb201_zc_491.csv`` and ``nb101_cifar10_500.csv`` count more than convolutions.
Per layer type, for one image:

- ``Conv2d``: k_h * k_w * C_in / groups * C_out per output position (+ C_out per position with a bias)
- ``BatchNorm2d``: 2 per element (1 without affine parameters)
- ``ReLU``: 1 per element
- ``AvgPool2d`` / ``MaxPool2d``: k_h * k_w per output element
- ``AdaptiveAvgPool2d``: C * (H + 1) * (W + 1) for a global pool (the counter's window bounds are inclusive)
- ``Linear``: in * out (the bias is not counted)

Functional operations (additions, concatenation, ``torch.mean``) count nothing. Both benchmark
builders are made of these modules, so a forward pass with hooks reproduces the tables exactly
(shown for every row in the tests). The pass runs on the model's device; a model built on the
``meta`` device is counted without allocating memory (slower per call on CPU for small networks).
"""

from __future__ import annotations

import torch
from torch import nn


def _elements(t: torch.Tensor) -> int:
    return t[0].numel()


def _module_flops(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    if isinstance(module, nn.Conv2d):
        k_h, k_w = module.kernel_size
        positions = y.shape[2] * y.shape[3]
        per_position = k_h * k_w * module.in_channels // module.groups * module.out_channels
        bias = module.out_channels if module.bias is not None else 0
        return positions * (per_position + bias)
    if isinstance(module, nn.BatchNorm2d):
        return _elements(x) * (2 if module.affine else 1)
    if isinstance(module, nn.ReLU):
        return _elements(x)
    if isinstance(module, (nn.AvgPool2d, nn.MaxPool2d)):
        k = module.kernel_size
        k_h, k_w = (k, k) if isinstance(k, int) else k
        return _elements(y) * k_h * k_w
    if isinstance(module, nn.AdaptiveAvgPool2d):
        if tuple(y.shape[2:]) != (1, 1):
            raise ValueError("only global adaptive pooling is counted")
        return x.shape[1] * (x.shape[2] + 1) * (x.shape[3] + 1)
    if isinstance(module, nn.Linear):
        return module.in_features * module.out_features
    return 0


def count_flops(model: nn.Module, input_shape: tuple[int, int, int], **forward_kwargs) -> int:
    """FLOPs of one forward pass of one image of ``input_shape`` (C, H, W), in the tables' convention.

    ``forward_kwargs`` go to ``model.forward`` (a supernet's ``arch``, for instance).
    """
    total = 0

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        total += _module_flops(module, inputs[0], output)

    leaves = [m for m in model.modules() if not any(True for _ in m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros((1, *input_shape), device=device), **forward_kwargs)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return total


def count_params(model: nn.Module) -> int:
    """Trainable parameters (BN running statistics are buffers and not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
