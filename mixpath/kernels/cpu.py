"""The compiled CPU kernels, called on tensors: each function returns None where it does not apply.

What they replace in a MixPath supernet's training step on the CPU (docs/speed.md has the measurements):

- ``weight_grad``: the weight gradient of 5x5, 7x7 and 9x9 depthwise convs. oneDNN has a fast depthwise
  weight-gradient kernel for 3x3 only and computes larger ones as a general grouped convolution, which
  was the largest single cost of an m=4 step. Here ``grad_w[c, i, j] = sum over n, y, x of grad[n, c, y,
  x] * input[n, c, y*s+i-p, x*s+j-p]`` on channels-last tensors: a kernel row's input taps slide through
  registers, images go in cache-sized chunks, threads split (channel block, kernel row) pairs.
- ``input_grad``: the input gradient of stride-1 7x7 and 9x9 depthwise convs (a depthwise conv of the
  output gradient with the flipped kernel), added straight into the sum over a layer's branches, on maps
  of 7x7 and more (oneDNN keeps 3x3, 5x5, stride 2 and smaller maps, where it is as fast or faster).
- ``bn_act_forward``: a training-mode BN + ReLU6/ReLU/none, added into the branch sum: batch statistics
  (summed in double) in one pass, normalisation, activation and accumulation in a second, where PyTorch
  takes five passes and, for channel counts like 12 or 36, a scalar path.
- ``bn_act_backward``: the backward pass of the same, from the BN's input and batch statistics, in two
  passes where PyTorch needs three operators (recompute the BN output, the activation's backward, the
  BN's backward).

The depthwise kernels come in builds for blocks of 8 and of 16 channels (the 16-channel one where the
channel count is a multiple of 16; the same sums in the same order). The BN kernels run over rows of C
channels in runs of a multiple of 16 floats, so any C vectorises. Each kernel's sums run in a fixed order
for a given thread count: results are deterministic.

The library comes from ``mixpath.kernels.build`` (compiled once into a verified cache) and is loaded with
ctypes. Its threads are PyTorch's own where torch uses GNU OpenMP (the pip wheels do): the library asks for
``libgomp.so.1``, which the process has already loaded from torch, so no second OpenMP pool competes for
the cores. Without it (no compiler, a read-only cache, or ``MIXPATH_CPU_KERNELS=0``) every function
returns None and callers keep PyTorch's operators. Which of the two ran changes the numbers (float
rounding), so ``kernels_in_use`` names it for a checkpoint and ``kernel_change_warning`` compares.
"""

from __future__ import annotations

import ctypes
import logging
import os
from functools import cache

import torch
import torch.nn.functional as F

from mixpath.kernels.build import BLOCKS, load_library

log = logging.getLogger(__name__)

SWITCH = "MIXPATH_CPU_KERNELS"
"""Set to 0 to run PyTorch's operators instead of the compiled kernels."""
KERNEL_SIZES = (5, 7, 9)
"""3x3 is left to oneDNN, whose own 3x3 kernel is faster."""
LANES = 8
PYTORCH = "pytorch"
"""What ``kernels_in_use`` says when PyTorch's operators run."""


@cache
def _load() -> tuple[ctypes.CDLL | None, str]:
    """The library (None when PyTorch's operators run) and what ``kernels_in_use`` reports; warns once
    per process when the kernels are wanted but cannot be had."""
    if os.environ.get(SWITCH) == "0":
        return None, PYTORCH
    try:
        library, sha256 = load_library()
    except OSError as err:
        log.warning("mixpath's CPU kernels are unavailable (%s); using PyTorch's operators", err)
        return None, PYTORCH
    for lanes in BLOCKS:
        fn = getattr(library, f"dw_weight_grad{lanes}")
        fn.restype = ctypes.c_int
        fn.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_int64] * 9 + [ctypes.c_int]
        fn = getattr(library, f"dw_input_grad{lanes}")
        fn.restype = ctypes.c_int
        fn.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_int64] * 5 + [ctypes.c_int] * 2
    fn = library.bn_act_backward
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_void_p] * 10 + [ctypes.c_int64] * 2 + [ctypes.c_int] * 2
    fn = library.bn_act_forward
    fn.restype = ctypes.c_int
    fn.argtypes = (
        [ctypes.c_void_p] * 8
        + [ctypes.c_double] * 2
        + [ctypes.c_void_p] * 2
        + [ctypes.c_int64] * 2
        + [ctypes.c_int] * 3
    )
    return library, f"mixpath-kernels sha256:{sha256[:16]}"


@cache
def _library() -> ctypes.CDLL | None:
    return _load()[0]


def kernels_in_use() -> str:
    """What computes in this process: ``"pytorch"`` (PyTorch's operators) or ``"mixpath-kernels
    sha256:<16 hex digits>"`` (the compiled kernels, named by their library's hash: another compiler or
    CPU builds another library, which may round differently). For a checkpoint to record; the kernels
    apply to float32 CPU training, so on other devices this names what would have run on the CPU."""
    return _load()[1]


def kernel_change_warning(recorded: str | None) -> str | None:
    """What to tell a user resuming a run whose checkpoint recorded ``recorded`` (``kernels_in_use()``
    when it was written) when this process computes differently, so the resumed run cannot be
    bit-identical to one that was never interrupted; None when nothing changed or nothing was recorded."""
    now = kernels_in_use()
    if recorded is None or recorded == now:
        return None
    hint = f" ({SWITCH}=0 runs PyTorch's operators as before)" if recorded == PYTORCH else ""
    return (
        f"the checkpoint was written with {recorded}, this process runs {now}{hint}: training continues, "
        "but its numbers will differ from an uninterrupted run's"
    )


def _depthwise(library: ctypes.CDLL, name: str, channels: int):
    """The 16-channel-block build of a depthwise kernel where ``channels`` allows, else the 8-channel one."""
    return getattr(library, f"{name}{16 if channels % 16 == 0 else 8}")


def _channels_last(t: torch.Tensor) -> bool:
    return t.is_contiguous(memory_format=torch.channels_last)


def _float_vectors(*tensors: torch.Tensor) -> bool:
    """Per-channel float32 vectors the kernels can read in place (no copy, no dispatch)."""
    return all(t.dtype == torch.float32 and t.device.type == "cpu" and t.is_contiguous() for t in tensors)


def available() -> bool:
    """Whether the kernel is compiled and loaded (compiling it now if needed)."""
    return _library() is not None


def weight_grad(grad: torch.Tensor, input: torch.Tensor, conv: torch.nn.Conv2d) -> torch.Tensor | None:
    """The weight gradient of depthwise ``conv`` (C x 1 x K x K) given its input and output gradient, or
    None when this kernel does not cover the case (then use ``torch.ops.aten.convolution_backward``)."""
    k, s, p = conv.kernel_size[0], conv.stride[0], conv.padding[0]
    channels = input.shape[1]
    if not (
        input.device.type == "cpu"
        and input.dtype == grad.dtype == torch.float32
        and k in KERNEL_SIZES
        and conv.kernel_size == (k, k)
        and conv.stride == (s, s)
        and conv.padding == (p, p)
        and conv.dilation == (1, 1)
        and conv.groups == channels == conv.out_channels
        and input.dim() == 4
    ):
        return None
    library = _library()
    if library is None:
        return None
    n, _, h_in, w_in = input.shape
    h, w = grad.shape[2:]
    extra = -channels % LANES
    if extra or not (_channels_last(grad) and _channels_last(input)):
        # (N, H, W, C) copies, channels padded to a multiple of 8
        g, x = grad.permute(0, 2, 3, 1), input.permute(0, 2, 3, 1)
        if extra:
            g, x = F.pad(g, (0, extra)), F.pad(x, (0, extra))
        g, x = g.contiguous(), x.contiguous()
    else:  # channels-last memory is already (N, H, W, C)
        g, x = grad, input
    out = input.new_empty(channels + extra, 1, k, k)
    args = (g.data_ptr(), x.data_ptr(), out.data_ptr(), n, channels + extra, h, w, h_in, w_in, k, s, p)
    if _depthwise(library, "dw_weight_grad", channels + extra)(*args, torch.get_num_threads()):
        return None
    return out[:channels] if extra else out


INPUT_GRAD_KERNEL_SIZES = (7, 9)
INPUT_GRAD_MIN_SIZE = 7
"""Where ``input_grad`` beat oneDNN's input gradient plus the addition into the branch sum on S1's shapes
(7x7 and 9x9 kernels on maps of 7x7 and more; docs/speed.md); elsewhere oneDNN is as fast or faster."""


def input_grad(
    grad: torch.Tensor, weight: torch.Tensor, conv: torch.nn.Conv2d, out: torch.Tensor | None = None
) -> torch.Tensor | None:
    """The input gradient of stride-1 depthwise ``conv`` with ``weight`` given its output gradient, added
    into ``out`` when given (the sum over a layer's branches, without a separate addition pass); None
    when this kernel does not cover the case (then use ``torch.ops.aten.convolution_backward``)."""
    k, channels = conv.kernel_size[0], grad.shape[1]
    if not (
        grad.device.type == "cpu"
        and grad.dtype == weight.dtype == torch.float32
        and k in INPUT_GRAD_KERNEL_SIZES
        and min(grad.shape[2:]) >= INPUT_GRAD_MIN_SIZE
        and conv.kernel_size == (k, k)
        and conv.stride == (1, 1)
        and conv.padding == (k // 2, k // 2)
        and conv.dilation == (1, 1)
        and conv.groups == channels == conv.out_channels
        and channels % LANES == 0
        and grad.dim() == 4
        and _channels_last(grad)
        and weight.is_contiguous()
        and (out is None or (out.shape == grad.shape and out.dtype == grad.dtype and out.stride() == grad.stride()))
    ):
        return None
    library = _library()
    if library is None:
        return None
    accumulate = out is not None
    out = torch.empty_like(grad) if out is None else out
    n, _, h, w = grad.shape
    args = (grad.data_ptr(), weight.data_ptr(), out.data_ptr(), n, channels, h, w, k)
    status = _depthwise(library, "dw_input_grad", channels)(*args, int(accumulate), torch.get_num_threads())
    return None if status else out


BN_ACTIVATIONS = {"relu6": 0, "relu": 1, "none": 2}


def bn_act_backward(
    grad: torch.Tensor,
    y: torch.Tensor,
    mean: torch.Tensor,
    invstd: torch.Tensor,
    gamma: torch.Tensor,
    beta: torch.Tensor,
    activation: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """Gradients (input, gamma, beta) of ``activation(batch_norm(y))`` in training mode, given the output
    gradient ``grad``, the BN input ``y`` and its batch ``mean`` and ``invstd``; None when this kernel does
    not cover the case (then use PyTorch's operators). Both tensors must be channels-last float32."""
    if not (
        activation in BN_ACTIVATIONS
        and y.device.type == "cpu"
        and y.dim() == 4
        and y.dtype == grad.dtype == torch.float32
        and y.shape == grad.shape
        and _channels_last(y)
        and _channels_last(grad)
        and _float_vectors(mean, invstd, gamma, beta)
    ):
        return None
    library = _library()
    if library is None:
        return None
    channels, threads = y.shape[1], torch.get_num_threads()
    grad_y = torch.empty_like(y)
    grad_gamma, grad_beta = y.new_empty(channels), y.new_empty(channels)
    scratch = y.new_empty(16 * channels * (2 * threads + 6))
    status = library.bn_act_backward(
        grad.data_ptr(),
        y.data_ptr(),
        grad_y.data_ptr(),
        mean.data_ptr(),
        invstd.data_ptr(),
        gamma.data_ptr(),
        beta.data_ptr(),
        grad_gamma.data_ptr(),
        grad_beta.data_ptr(),
        scratch.data_ptr(),
        y.numel() // channels,
        channels,
        BN_ACTIVATIONS[activation],
        threads,
    )
    return None if status else (grad_y, grad_gamma, grad_beta)


def bn_act_forward(
    y: torch.Tensor,
    gamma: torch.Tensor,
    beta: torch.Tensor,
    running_mean: torch.Tensor | None,
    running_var: torch.Tensor | None,
    momentum: float,
    eps: float,
    activation: str,
    out: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """``activation(batch_norm(y))`` in training mode, added into ``out`` when given (else a new tensor):
    returns (output, batch mean, batch 1/std) and moves the running statistics as ``nn.BatchNorm2d``
    does, or None when this kernel does not cover the case (then use PyTorch's operators). One pass for
    the statistics and one that normalises, activates and accumulates, where PyTorch takes five (BN
    statistics, normalisation, activation, sum) and, for channel counts that are not a multiple of the
    vector width, a slow scalar path."""
    if not (
        activation in BN_ACTIVATIONS
        and y.device.type == "cpu"
        and y.dim() == 4
        and y.dtype == torch.float32
        and _channels_last(y)
        and _float_vectors(gamma, beta)
        and (out is None or (out.shape == y.shape and out.dtype == y.dtype and out.stride() == y.stride()))
        and (running_mean is None or (running_var is not None and _float_vectors(running_mean, running_var)))
    ):
        return None
    library = _library()
    if library is None:
        return None
    channels, threads = y.shape[1], torch.get_num_threads()
    accumulate = out is not None
    out = torch.empty_like(y) if out is None else out
    mean, invstd = y.new_empty(2, channels).unbind()
    # per-thread sums (doubles), then 32 x C floats for the tiled scale and shift
    partial = torch.empty(32 * channels * threads + 16 * channels, dtype=torch.float64)
    status = library.bn_act_forward(
        y.data_ptr(),
        out.data_ptr(),
        mean.data_ptr(),
        invstd.data_ptr(),
        gamma.data_ptr(),
        beta.data_ptr(),
        running_mean.data_ptr() if running_mean is not None else None,
        running_var.data_ptr() if running_var is not None else None,
        momentum,
        eps,
        partial.data_ptr(),
        partial.data_ptr() + 8 * 32 * channels * threads,
        y.numel() // channels,
        channels,
        BN_ACTIVATIONS[activation],
        int(accumulate),
        threads,
    )
    return None if status else (out, mean, invstd)
