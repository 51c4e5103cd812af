"""The MixPath inverted bottleneck, as a supernet layer and as a stand-alone layer.

Per expansion ratio e (code, MixPath S1): a 1x1 expansion conv + BN + ReLU6; one depthwise conv + BN +
ReLU6 branch per kernel; the active branches are summed, projected by a 1x1 conv, and normalised by
the BN policy's norm; a residual is added when stride is 1 and channels match. The supernet layer
holds every ratio and kernel; the stand-alone layer holds only one ratio and its active kernels.
Both run the same function, so a subnet with inherited weights computes exactly what the supernet does.
In training, the active branches run fused (``mixpath.kernels``): same values, less memory.

Fixed per-layer settings (``LayerSpec.attrs``) serve the ImageNet and audio spaces:

- ``act``: ``relu6`` by default, ``relu``, ``swish`` or ``hswish`` (MobileNetV3's hard swish), for the
  expansion and depthwise stages;
- ``se``: a ratio (0 = none), MixNet's squeeze-and-excitation on the summed depthwise output, reduced to
  ``ratio x`` the layer's input channels as in MixNet/EfficientNet, or ``ratio x`` its expanded channels
  with ``se_of="hidden"`` (MobileNetV3, MoGA); ``se_gate`` is ``sigmoid`` (default) or ``hard_sigmoid``
  (MobileNetV3, MoGA). The SE of one expansion ratio is shared by every path set. A layer that also has
  an ``se`` *option* (MoGA: 0 or 1) searches whether to run it; otherwise it always runs;
- ``kernel_shape``: ``kxk`` (default), ``1xk`` or ``kx1``: the depthwise kernels of op ``k<size>`` are
  size x size, 1 x size (along the width: time, in a spectrogram) or size x 1 (along the height:
  frequency). The compiled CPU kernels cover square kernels only; the others run PyTorch's operators.
"""

from __future__ import annotations

import math
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from mixpath.errors import MixPathError
from mixpath.kernels import batch_norm, branch_sum, fused_conv_bn_act
from mixpath.spaces import LayerChoice, LayerSpec
from mixpath.supernet.bn_policies import PathNorm, make_path_norm

ACTIVATIONS = ("relu6", "relu", "swish", "hswish")
KERNEL_SHAPES = ("kxk", "1xk", "kx1")
SE_GATES = ("sigmoid", "hard_sigmoid")

Kernel = int | tuple[int, int]


def kernel_size(op: str) -> int:
    """Kernel size of a depthwise op named ``k<size>``."""
    return int(op[1:])


def depthwise_kernel(spec: LayerSpec, op: str) -> Kernel:
    """The (height, width) kernel of op ``k<size>`` in a layer of ``spec``: square unless the layer's
    ``kernel_shape`` is ``1xk`` or ``kx1``."""
    size, shape = kernel_size(op), spec.attr("kernel_shape", "kxk")
    if shape == "kxk":
        return size
    if shape == "1xk":
        return (1, size)
    if shape == "kx1":
        return (size, 1)
    raise MixPathError(f"unknown kernel_shape {shape!r}; choose one of: {', '.join(KERNEL_SHAPES)}")


def activation(name: str) -> nn.Module:
    """The activation called ``name``: relu6 (MobileNetV2, MixPath S1), relu, or swish (x * sigmoid(x))."""
    if name == "relu6":
        return nn.ReLU6(inplace=True)
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "swish":
        return nn.SiLU(inplace=True)
    if name == "hswish":
        return nn.Hardswish(inplace=True)
    raise MixPathError(f"unknown activation {name!r}; choose one of: {', '.join(ACTIVATIONS)}")


def conv_bn_act(
    c_in: int, c_out: int, kernel: Kernel, stride: int = 1, groups: int = 1, act: str = "relu6"
) -> nn.Sequential:
    """Conv (``kernel`` square, or (height, width), padded to keep the size at stride 1) + BN + activation."""
    padding = kernel // 2 if isinstance(kernel, int) else (kernel[0] // 2, kernel[1] // 2)
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride, padding, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
        activation(act),
    )


def expansion_conv(c_in: int, hidden: int, act: str = "relu6") -> nn.Sequential:
    return conv_bn_act(c_in, hidden, 1, act=act)


def depthwise_branch(hidden: int, kernel: Kernel, stride: int, act: str = "relu6") -> nn.Sequential:
    return conv_bn_act(hidden, hidden, kernel, stride, groups=hidden, act=act)


class SqueezeExcite(nn.Module):
    """MixNet's SE: global pool, 1x1 reduce (with bias) + activation, 1x1 expand (with bias), sigmoid gate;
    ``gate="hard_sigmoid"``: MobileNetV3's relu6(x + 3) / 6 instead of the sigmoid."""

    def __init__(self, channels: int, reduced: int, act: str, gate: str = "sigmoid"):
        super().__init__()
        if gate not in SE_GATES:
            raise MixPathError(f"unknown se_gate {gate!r}; choose one of: {', '.join(SE_GATES)}")
        self.reduce = nn.Conv2d(channels, reduced, 1)
        self.act = activation(act)
        self.expand = nn.Conv2d(reduced, channels, 1)
        self.gate = torch.sigmoid if gate == "sigmoid" else F.hardsigmoid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.expand(self.act(self.reduce(x.mean((2, 3), keepdim=True)))))


def squeeze_excite(spec: LayerSpec, hidden: int) -> SqueezeExcite | None:
    """The SE of a layer with ``hidden`` expanded channels, or None when ``spec`` sets no ``se`` ratio."""
    ratio = spec.attr("se", 0)
    if not ratio:
        return None
    base = hidden if spec.attr("se_of", "input") == "hidden" else spec.in_channels
    return SqueezeExcite(hidden, max(1, int(base * ratio)), spec.attr("act", "relu6"), spec.attr("se_gate", "sigmoid"))


def uses_se(spec: LayerSpec, choice: LayerChoice) -> bool:
    """Whether ``choice`` runs its layer's SE: always when the layer has one, unless the layer also has an
    ``se`` option (MoGA searches SE on or off), which then decides."""
    if not spec.attr("se", 0):
        return False
    return "se" not in dict(spec.options) or bool(choice.option("se"))


def projection_conv(hidden: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(hidden, c_out, 1, bias=False)


def inverted_residual(
    x: torch.Tensor,
    expand: nn.Module,
    branches: list[nn.Module],
    project: nn.Module,
    norm: nn.BatchNorm2d,
    scale: float,
    residual: bool,
    se: nn.Module | None = None,
) -> torch.Tensor:
    """Sum the active depthwise branches of one expansion, apply SE, project, scale, normalise, add the residual."""
    summed = branch_sum(fused_conv_bn_act(x, expand), branches)
    if se is not None:
        summed = se(summed)
    out = project(summed)
    out = batch_norm(out * scale if scale != 1.0 else out, norm)
    return out + x if residual else out


class MultiPathInvertedResidual(nn.Module):
    """A searchable layer with every expansion ratio and every kernel of ``spec``."""

    def __init__(self, spec: LayerSpec, m: int, bn_policy: str):
        super().__init__()
        self.spec = spec
        self.expansions = spec.option_values("e")
        self.residual = spec.stride == 1 and spec.in_channels == spec.out_channels
        self.expand = nn.ModuleList()
        self.branches = nn.ModuleList()
        self.project = nn.ModuleList()
        self.norms = nn.ModuleList()
        act = spec.attr("act", "relu6")
        for e in self.expansions:
            hidden = spec.in_channels * int(e)
            self.expand.append(expansion_conv(spec.in_channels, hidden, act))
            self.branches.append(
                nn.ModuleList(depthwise_branch(hidden, depthwise_kernel(spec, op), spec.stride, act) for op in spec.ops)
            )
            self.project.append(projection_conv(hidden, spec.out_channels))
            self.norms.append(make_path_norm(bn_policy, spec.out_channels, spec.n_ops, m))
        # one SE per expansion ratio, only in layers that set an ``se`` ratio (S1's layers have none)
        self.se: nn.ModuleList | None = None
        if spec.attr("se", 0):
            self.se = nn.ModuleList(
                cast(nn.Module, squeeze_excite(spec, spec.in_channels * int(e))) for e in self.expansions
            )

    def indices(self, choice: LayerChoice) -> tuple[int, tuple[int, ...]]:
        """(expansion index, active op indices) of a layer choice."""
        return self.expansions.index(choice.option("e")), tuple(self.spec.ops.index(p) for p in choice.paths)

    def forward(self, x: torch.Tensor, choice: LayerChoice) -> torch.Tensor:
        e, paths = self.indices(choice)
        norm = cast(PathNorm, self.norms[e])
        bn, scale = norm.select(paths)
        branches = [cast(nn.ModuleList, self.branches[e])[p] for p in paths]
        se = self.se[e] if self.se is not None and uses_se(self.spec, choice) else None
        return inverted_residual(x, self.expand[e], branches, self.project[e], bn, scale, self.residual, se)


class InvertedResidual(nn.Module):
    """A stand-alone layer: one expansion ratio, its active kernels, one BN."""

    def __init__(self, spec: LayerSpec, choice: LayerChoice, scale: float = 1.0):
        super().__init__()
        hidden = spec.in_channels * int(choice.option("e"))
        self.residual = spec.stride == 1 and spec.in_channels == spec.out_channels
        self.scale = scale
        act = spec.attr("act", "relu6")
        self.expand = expansion_conv(spec.in_channels, hidden, act)
        self.branches = nn.ModuleList(
            depthwise_branch(hidden, depthwise_kernel(spec, op), spec.stride, act) for op in choice.paths
        )
        self.project = projection_conv(hidden, spec.out_channels)
        self.norm = nn.BatchNorm2d(spec.out_channels)
        self.se = squeeze_excite(spec, hidden) if uses_se(spec, choice) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return inverted_residual(
            x, self.expand, list(self.branches), self.project, self.norm, self.scale, self.residual, self.se
        )

    def load_from(self, layer: MultiPathInvertedResidual, choice: LayerChoice) -> None:
        """Copy the weights this choice uses out of a supernet layer."""
        e, paths = layer.indices(choice)
        self.expand.load_state_dict(layer.expand[e].state_dict())
        for mine, p in zip(self.branches, paths, strict=True):
            mine.load_state_dict(cast(nn.ModuleList, layer.branches[e])[p].state_dict())
        self.project.load_state_dict(layer.project[e].state_dict())
        bn, _ = cast(PathNorm, layer.norms[e]).select(paths)
        self.norm.load_state_dict(bn.state_dict())
        if self.se is not None:
            self.se.load_state_dict(cast(nn.ModuleList, layer.se)[e].state_dict())


def stem(c_in: int, c_out: int, stride: int, act: str = "relu6") -> nn.Sequential:
    return conv_bn_act(c_in, c_out, 3, stride, act=act)


class SeparableConv(nn.Module):
    """The fixed first block of MnasNet-style networks: depthwise 3x3 + BN + activation, 1x1 conv + BN,
    plus a residual when channels match (MixNet's ``ds`` block; FairNAS's 32 -> 16 has none), unless
    ``residual=False`` (MoGA's 16 -> 16 has none)."""

    def __init__(self, c_in: int, c_out: int, act: str, residual: bool = True):
        super().__init__()
        self.depthwise = conv_bn_act(c_in, c_in, 3, groups=c_in, act=act)
        self.pointwise = nn.Sequential(nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out))
        self.residual = residual and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.pointwise(self.depthwise(x))
        return out + x if self.residual else out


class Head(nn.Module):
    """1x1 conv to the head width + BN + activation (ReLU6 by default), global average pool, linear classifier.

    ``pooled_channels``: MobileNetV3's last stage between pool and classifier, a linear map (a 1x1 conv on
    the pooled features, without bias or BN) to that width + the activation (MoGA: 960 -> 1280, h-swish).
    """

    def __init__(self, c_in: int, c_head: int, num_classes: int, act: str = "relu6", pooled_channels: int = 0):
        super().__init__()
        self.conv = conv_bn_act(c_in, c_head, 1, act=act)
        self.pooled: nn.Sequential | None = None
        if pooled_channels:
            self.pooled = nn.Sequential(nn.Linear(c_head, pooled_channels, bias=False), activation(act))
        self.classifier = nn.Linear(pooled_channels or c_head, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = fused_conv_bn_act(x, self.conv).mean((2, 3))
        return self.classifier(features if self.pooled is None else self.pooled(features))


def init_weights(model: nn.Module) -> None:
    """The MixPath/MobileNet initialisation: He-normal (fan-out) convs, unit BNs, uniform linear."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels // module.groups
            nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_out))
            if module.bias is not None:  # only the SE convs have one
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            bound = 1.0 / math.sqrt(module.weight.size(0))
            nn.init.uniform_(module.weight, -bound, bound)
            if module.bias is not None:  # MobileNetV3's pooled stage has none
                nn.init.zeros_(module.bias)
