"""The ``shufflenet`` family: SPOS's ShuffleNetV2 supernet with channel search, and its stand-alone models.

Blocks (SPOS code). A stride-1 block splits its input into even and odd channels: the even half passes
through, the odd half runs the main branch; a stride-2 block runs a projection branch (depthwise k x k
stride 2 + BN, 1x1 conv + BN + ReLU) and the main branch on the whole input. The outputs are
concatenated, so the main branch makes ``out - in_main`` channels. Main branches:

- ``shuffle<k>``: 1x1 conv to ``mid`` + BN + ReLU, depthwise k x k (stride) + BN, 1x1 conv + BN + ReLU;
- ``xception``: depthwise 3x3 (stride) + BN, then three times 1x1 conv + BN + ReLU / depthwise 3x3 + BN
  pairs through ``mid`` channels, ending in a 1x1 conv + BN + ReLU to the output.

Channel search (SPOS): the supernet allocates every conv of a choice block at the largest ``mid`` and
a candidate with scale ``c`` uses the first ``int(c x out / 2)`` channels of each (weight slicing).
BN has no affine parameters in the supernet, as in SPOS, so a sliced BN is a slice of running statistics;
stand-alone models, built for training from scratch, use affine BN (initialised to the identity, which
is what ``extract`` keeps so that an extracted subnet computes exactly the supernet's function).
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from mixpath.errors import MixPathError
from mixpath.spaces import Architecture, LayerChoice, LayerSpec, SearchSpace
from mixpath.supernet.bn_policies import check_bn_policy


def block_kernel(op: str) -> int:
    """The depthwise kernel size of a block (``shuffle<k>``; ``xception`` uses 3)."""
    return 3 if op == "xception" else int(op.removeprefix("shuffle"))


def mid_channels(spec: LayerSpec, scale: float) -> int:
    """Mid channels of a block with channel scale ``scale``: ``int(scale x out / 2)`` as in SPOS."""
    return int(spec.out_channels // 2 * scale)


def main_channels(spec: LayerSpec) -> tuple[int, int]:
    """(input, output) channels of the main branch: stride-1 blocks see half their input."""
    c_in = spec.in_channels if spec.stride == 2 else spec.in_channels // 2
    return c_in, spec.out_channels - c_in


class SlicedBatchNorm2d(nn.BatchNorm2d):
    """A BN that also normalises inputs with fewer channels, with the first ones of its own.

    Only the running statistics of those channels change (nn.BatchNorm2d's rules otherwise, momentum None
    included). Being an nn.BatchNorm2d called like one, it is found and calibrated like any other BN.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if c == self.num_features:
            return super().forward(x)
        factor = 0.0 if self.momentum is None else self.momentum
        tracked = self.num_batches_tracked
        if self.training and self.track_running_stats and tracked is not None:
            tracked.add_(1)
            if self.momentum is None:
                factor = 1.0 / float(tracked)
        return F.batch_norm(
            x,
            self.running_mean[:c] if self.running_mean is not None else None,
            self.running_var[:c] if self.running_var is not None else None,
            self.weight[:c] if self.weight is not None else None,
            self.bias[:c] if self.bias is not None else None,
            self.training or self.running_mean is None,
            factor,
            self.eps,
        )


class ConvBN(nn.Module):
    """A conv (1x1, or depthwise k x k) + BN (+ ReLU). In the supernet (``supernet=True``: BN without
    affine parameters, as in SPOS) it can run on a prefix of its channels."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, relu: bool, supernet: bool):
        super().__init__()
        depthwise = kernel > 1
        if depthwise and c_in != c_out:
            raise ValueError("a depthwise conv keeps its channels")
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=c_in if depthwise else 1, bias=False)
        self.bn = SlicedBatchNorm2d(c_out, affine=False) if supernet else nn.BatchNorm2d(c_out)
        self.act = nn.ReLU(inplace=True) if relu else nn.Identity()

    def forward(self, x: torch.Tensor, c_out: int | None = None) -> torch.Tensor:
        """Run on ``x``'s channels (a prefix of the conv's inputs) producing ``c_out`` (default: all)."""
        conv = self.conv
        c_in = x.shape[1]
        c_out = c_in if conv.groups > 1 else (c_out or conv.out_channels)
        if c_in == conv.in_channels and c_out == conv.out_channels:
            return self.act(self.bn(conv(x)))
        weight = conv.weight[:c_out] if conv.groups > 1 else conv.weight[:c_out, :c_in]
        groups = c_in if conv.groups > 1 else 1
        y = F.conv2d(x, weight, None, conv.stride, conv.padding, conv.dilation, groups)
        return self.act(self.bn(y))


class ChoiceBlock(nn.Module):
    """One SPOS block ``op`` of a layer, allocated with ``mid`` mid channels (in the supernet: the most)."""

    def __init__(self, spec: LayerSpec, op: str, mid: int, supernet: bool):
        super().__init__()
        self.stride = spec.stride
        k, s = block_kernel(op), spec.stride
        c_in, c_out = main_channels(spec)
        # (step, whether its output width is the mid width a channel scale slices)
        if op == "xception":
            steps = [
                (ConvBN(c_in, c_in, 3, s, False, supernet), False),
                (ConvBN(c_in, mid, 1, 1, True, supernet), True),
                (ConvBN(mid, mid, 3, 1, False, supernet), False),
                (ConvBN(mid, mid, 1, 1, True, supernet), True),
                (ConvBN(mid, mid, 3, 1, False, supernet), False),
                (ConvBN(mid, c_out, 1, 1, True, supernet), False),
            ]
        else:
            steps = [
                (ConvBN(c_in, mid, 1, 1, True, supernet), True),
                (ConvBN(mid, mid, k, s, False, supernet), False),
                (ConvBN(mid, c_out, 1, 1, True, supernet), False),
            ]
        self.main = nn.ModuleList(step for step, _ in steps)
        self.to_mid = [to_mid for _, to_mid in steps]
        self.proj: nn.Sequential | None = None
        if spec.stride == 2:
            self.proj = nn.Sequential(
                ConvBN(spec.in_channels, spec.in_channels, k, s, False, supernet),
                ConvBN(spec.in_channels, spec.in_channels, 1, 1, True, supernet),
            )

    def forward(self, x: torch.Tensor, mid: int | None = None) -> torch.Tensor:
        """The block on ``x``; ``mid`` (supernet only) uses the first ``mid`` mid channels."""
        if self.proj is None:
            passed, out = x[:, 0::2], x[:, 1::2]
        else:
            passed, out = self.proj(x), x
        for step, to_mid in zip(self.main, self.to_mid, strict=True):
            out = step(out, mid if to_mid else None)
        return torch.cat((passed, out), 1)


def _stem_conv(c_out: int, supernet: bool) -> nn.Sequential:
    """3x3 stride-2 conv + BN + ReLU (a full conv: ConvBN only builds 1x1 or depthwise convs)."""
    conv = nn.Conv2d(3, c_out, 3, 2, 1, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(c_out, affine=not supernet), nn.ReLU())


class Head(nn.Module):
    """1x1 conv to the head width + BN + ReLU, global average pool, linear classifier without bias."""

    def __init__(self, c_in: int, c_head: int, num_classes: int, supernet: bool):
        super().__init__()
        self.conv = ConvBN(c_in, c_head, 1, 1, True, supernet)
        self.classifier = nn.Linear(c_head, num_classes, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.conv(x).mean((2, 3)))


def init_spos(model: nn.Module) -> None:
    """SPOS's initialisation: convs N(0, 1/fan-in per group) (the stem N(0, 0.01)), BN weight 1 and
    bias 1e-4 where affine, linear N(0, 0.01)."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            std = 0.01 if name.startswith("stem") else 1.0 / module.weight.shape[1]
            nn.init.normal_(module.weight, 0.0, std)
        elif isinstance(module, nn.BatchNorm2d) and module.affine:
            nn.init.ones_(module.weight)
            nn.init.constant_(module.bias, 1e-4)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, 0.01)


def _check_choice(space: SearchSpace, arch: Architecture) -> None:
    for i, choice in enumerate(arch.layers):
        if len(choice.paths) != 1:
            raise MixPathError(f"layer {i}: space {space.name!r} is single-path, got {len(choice.paths)} paths")


class ShuffleNetSupernet(nn.Module):
    """Every block and the widest channels of every layer of a ``shufflenet`` space (BN without affine)."""

    def __init__(self, space: SearchSpace, m: int = 1, bn_policy: str = "shadow"):
        super().__init__()
        check_bn_policy(bn_policy)
        self.space = space
        self.m = space.check_m(m)
        sk = space.skeleton
        self.stem = _stem_conv(sk["stem_channels"], supernet=True)
        self.layers = nn.ModuleList(
            nn.ModuleList(
                ChoiceBlock(spec, op, mid_channels(spec, max(spec.option_values("c"))), supernet=True)
                for op in spec.ops
            )
            for spec in space.layers
        )
        self.head = Head(space.layers[-1].out_channels, sk["head_channels"], space.num_classes, supernet=True)
        init_spos(self)

    def _block(self, i: int, choice: LayerChoice) -> tuple[ChoiceBlock, int]:
        spec = self.space.layers[i]
        blocks = cast(nn.ModuleList, self.layers[i])
        return cast(ChoiceBlock, blocks[spec.ops.index(choice.paths[0])]), mid_channels(spec, choice.option("c"))

    def forward(self, x: torch.Tensor, arch: Architecture) -> torch.Tensor:
        x = self.stem(x)
        for i, choice in enumerate(arch.layers):
            block, mid = self._block(i, choice)
            x = block(x, mid)
        return self.head(x)

    def extract(self, arch: Architecture) -> ShuffleNetStandalone:
        """A stand-alone model of ``arch`` with the supernet's (sliced) weights and running statistics."""
        self.space.validate(arch, self.m)
        model = ShuffleNetStandalone(self.space, arch)
        sources = [self.stem, *(self._block(i, c)[0] for i, c in enumerate(arch.layers)), self.head]
        targets = [model.stem, *model.layers, model.head]
        with torch.no_grad():
            for source, target in zip(sources, targets, strict=True):
                for mine, theirs in zip(target.modules(), source.modules(), strict=True):
                    _copy_prefix(theirs, mine)
        return model.to(next(self.parameters()).device)


def _copy_prefix(source: nn.Module, target: nn.Module) -> None:
    """Copy the leading slice of each of ``source``'s own tensors into ``target``'s tensor of that name.

    A BN whose source has no affine parameters (the supernet's) gets the identity: weight 1, bias 0.
    """
    own = dict(source.named_parameters(recurse=False)) | dict(source.named_buffers(recurse=False))
    tensors = dict(target.named_parameters(recurse=False)) | dict(target.named_buffers(recurse=False))
    for name, tensor in tensors.items():
        if name in own:
            tensor.copy_(own[name][tuple(slice(0, n) for n in tensor.shape)])
        elif name == "weight":
            tensor.fill_(1.0)
        else:
            tensor.zero_()


class ShuffleNetStandalone(nn.Module):
    """A plain model of one architecture, with affine BN, to train from scratch (SPOS's retraining)."""

    def __init__(self, space: SearchSpace, arch: Architecture, bn_policy: str = "shadow"):
        super().__init__()
        _check_choice(space, arch)
        self.arch = arch
        sk = space.skeleton
        self.stem = _stem_conv(sk["stem_channels"], supernet=False)
        self.layers = nn.Sequential(
            *(
                ChoiceBlock(spec, choice.paths[0], mid_channels(spec, choice.option("c")), supernet=False)
                for spec, choice in zip(space.layers, arch.layers, strict=True)
            )
        )
        self.head = Head(space.layers[-1].out_channels, sk["head_channels"], space.num_classes, supernet=False)
        init_spos(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layers(self.stem(x)))


def _conv_out(size: int, stride: int) -> int:
    """Output side of a k x k conv with padding k // 2 (odd k) and ``stride``."""
    return (size - 1) // stride + 1


def shufflenet_macs(space: SearchSpace, arch: Architecture, image_size: int | None = None) -> int:
    """Multiply-adds of one image through the stand-alone model of ``arch`` (convs and the classifier;
    what ``torch.utils.flop_counter`` reports, halved), computed from the shapes without running it.

    Cheap enough for rejection sampling by FLOPs (``mixpath.spaces.flops_binned_sampler``).
    """
    size = _conv_out(image_size or space.input_shape[1], 2)
    sk = space.skeleton
    total = size * size * 9 * space.input_shape[0] * sk["stem_channels"]
    for spec, choice in zip(space.layers, arch.layers, strict=True):
        op, mid = choice.paths[0], mid_channels(spec, choice.option("c"))
        k, out_size = block_kernel(op), _conv_out(size, spec.stride)
        c_in, c_out = main_channels(spec)
        area_in, area_out = size * size, out_size * out_size
        if op == "xception":
            total += area_out * (9 * c_in + c_in * mid + 9 * mid + mid * mid + 9 * mid + mid * c_out)
        else:
            total += area_in * c_in * mid + area_out * (k * k * mid + mid * c_out)
        if spec.stride == 2:
            total += area_out * (k * k * spec.in_channels + spec.in_channels * spec.in_channels)
        size = out_size
    total += size * size * space.layers[-1].out_channels * sk["head_channels"]
    return total + sk["head_channels"] * space.num_classes
