"""The fast paths compute what the plain paths compute: fused branches, channels-last, the CLI runtime."""

from __future__ import annotations

import copy
import random
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from mixpath.evaluation import calibrate_bn
from mixpath.kernels import branch_sum, cpu, fused_branches
from mixpath.kernels.runtime import SPIN_COUNT, SWITCH, fast_runtime_env, find_allocator, openmp_wait_env
from mixpath.spaces import SearchSpace, get_space
from mixpath.supernet import MBConvSupernet, build_supernet
from mixpath.supernet.mbconv import SqueezeExcite, depthwise_branch

RTOL = 1e-5


def _grads(model: nn.Module) -> dict[str, torch.Tensor | None]:
    return {name: p.grad for name, p in model.named_parameters()}


def _assert_close_to_scale(got: dict, want: dict, tol: float = RTOL) -> None:
    """Same parameters got a gradient, and every gradient agrees to RTOL x the largest gradient: gradients
    that are zero in exact arithmetic (a BN bias before a train-mode BN) are pure rounding noise, so an
    element-wise relative test would measure noise."""
    assert {k for k, g in got.items() if g is None} == {k for k, g in want.items() if g is None}
    scale = max(g.abs().max().item() for g in want.values() if g is not None)
    for name, g in want.items():
        if g is not None:
            torch.testing.assert_close(got[name], g, rtol=0, atol=tol * scale, msg=name)


def _train_step(model: nn.Module, x: torch.Tensor, *arch) -> torch.Tensor:
    model.train()
    model.zero_grad(set_to_none=True)
    out = model(x, *arch)
    (out.square().sum() + out.sum()).backward()
    return out.detach()


@pytest.mark.parametrize("act", ["relu6", "relu", "swish"])
@pytest.mark.parametrize("stride", [1, 2])
def test_fused_branches_equal_the_modules(act, stride):
    torch.manual_seed(0)
    branches = nn.ModuleList(depthwise_branch(8, k, stride, act) for k in (3, 5, 9)).double()
    for branch in branches:  # non-trivial BN affine parameters and statistics
        nn.init.uniform_(branch[1].weight, 0.5, 1.5)
        nn.init.uniform_(branch[1].bias, -0.5, 0.5)
    branches[1][1].momentum = None  # cumulative average, counted by num_batches_tracked
    x = torch.randn(4, 8, 9, 9, dtype=torch.float64)
    results = []
    for fused in (True, False):
        copies = copy.deepcopy(branches)
        hidden = x.clone().requires_grad_()
        with fused_branches(fused):
            for _ in range(2):  # twice: the second step starts from updated running statistics
                out = branch_sum(hidden, list(copies))
                out.backward(torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out))
        results.append((out, hidden.grad, [p.grad for p in copies.parameters()], list(copies.buffers())))
    (out, hgrad, pgrads, buffers), (out0, hgrad0, pgrads0, buffers0) = results
    torch.testing.assert_close(out, out0, rtol=RTOL, atol=0)
    torch.testing.assert_close(hgrad, hgrad0, rtol=RTOL, atol=1e-12)
    for got, want in zip(pgrads, pgrads0, strict=True):
        torch.testing.assert_close(got, want, rtol=RTOL, atol=1e-12)
    for got, want in zip(buffers, buffers0, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert int(buffers[2]) == 2  # num_batches_tracked of the first branch's BN


def _swish_se_space() -> SearchSpace:
    """The tiny space with S3's layer settings: swish activations and squeeze-and-excitation."""
    tiny = get_space("tiny")
    layers = tuple(replace(spec, attrs=(("act", "swish"), ("se", 0.25))) for spec in tiny.layers)
    return replace(tiny, name="tiny-swish-se", layers=layers)


@pytest.mark.parametrize("name", ["fmnist-s1", "swish-se"])
def test_fused_supernet_equals_plain_supernet(name):
    """Whole supernets on random architectures, in float64 so that only a real difference would show."""
    space = _swish_se_space() if name == "swish-se" else get_space(name)
    torch.manual_seed(0)
    net = build_supernet(space, 2).double()
    x = torch.randn(4, *space.input_shape, dtype=torch.float64)
    arch = space.random_architecture(random.Random(1), 2)
    assert name != "swish-se" or isinstance(net.layers[0].se[0], SqueezeExcite)
    plain = copy.deepcopy(net)
    with fused_branches(False):
        want = _train_step(plain, x, arch)
    got = _train_step(net, x, arch)
    torch.testing.assert_close(got, want, rtol=RTOL, atol=0)
    _assert_close_to_scale(_grads(net), _grads(plain))
    for (key, buf), buf0 in zip(net.state_dict().items(), plain.state_dict().values(), strict=True):
        torch.testing.assert_close(buf, buf0, rtol=RTOL, atol=1e-12, msg=key)


def test_fused_and_plain_training_stay_equal_over_optimizer_steps():
    """Five SGD steps (momentum, weight decay, clipping) on random architectures in float64: the fused path
    (PyTorch's operators behind it) keeps the plain path's weights and statistics to rounding."""
    space = get_space("fmnist-s1")
    torch.manual_seed(0)
    fused = build_supernet(space, 4).double()
    plain = copy.deepcopy(fused)
    x = torch.randn(8, *space.input_shape, dtype=torch.float64)
    y = torch.randint(0, space.num_classes, (8,))
    rng = random.Random(0)
    optimizers = [torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, weight_decay=3e-4) for m in (fused, plain)]
    for _ in range(5):
        arch = space.random_architecture(rng, 4)
        for model, optimizer, on in ((fused, optimizers[0], True), (plain, optimizers[1], False)):
            with fused_branches(on):
                optimizer.zero_grad(set_to_none=True)
                nn.functional.cross_entropy(model.train()(x, arch), y).backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                optimizer.step()
    for (key, got), want in zip(fused.state_dict().items(), plain.state_dict().values(), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-11, msg=key)


@pytest.mark.parametrize("name, tol", [("tiny", 1e-5), ("fmnist-s1", 2e-5)])
def test_channels_last_supernet_equals_nchw_supernet(name, tol):
    """Float32, so the fast path runs the compiled kernels (the float64 tests above run PyTorch's ops),
    against the plain NCHW supernet in float64: the truth both float32 paths are measured against. The
    plain float32 path is no such truth: on fmnist-s1 its gradients are off by up to 5e-3 of the largest
    on some architectures (PyTorch's float32 BN statistics on 4x4 maps), where the kernels (statistics
    summed in double) stay near 5e-6."""
    space = get_space(name)
    torch.manual_seed(0)
    fast = MBConvSupernet(space, 4)
    torch.manual_seed(0)
    truth = MBConvSupernet(space, 4, memory_format=torch.contiguous_format).double()
    conv = fast.layers[0].branches[0][1][0]
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) and conv.kernel_size == (5, 5)
    x = torch.randn(6, *space.input_shape)
    rng = random.Random(2)
    for _ in range(3):
        arch = space.random_architecture(rng, 4)
        with fused_branches(False):
            want = _train_step(truth, x.double(), arch)
        got = _train_step(fast, x, arch)
        torch.testing.assert_close(got.double(), want, rtol=tol, atol=tol * want.abs().max().item())
        grads = {k: None if g is None else g.double() for k, g in _grads(fast).items()}
        _assert_close_to_scale(grads, _grads(truth), tol)


def test_channels_last_is_kept_by_extract_and_matches_exactly(tiny):
    net = build_supernet(tiny, 4).eval()
    arch = tiny.random_architecture(random.Random(0), 4)
    sub = net.extract(arch).eval()
    assert sub.memory_format == torch.channels_last
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(sub(x), net(x, arch))


def _saved_bytes(model: nn.Module, x: torch.Tensor, arch) -> int:
    storages = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x, arch).sum()
    return sum(storages.values())


def test_fusing_keeps_one_tensor_per_extra_path(tiny):
    net = build_supernet(tiny, 4)
    x = torch.randn(32, 1, 8, 8)
    single = tiny.parse("e6:k9-e6:k9-e6:k9", 4)
    four = tiny.parse("e6:k3+k5+k7+k9-e6:k3+k5+k7+k9-e6:k3+k5+k7+k9", 4)
    fused_single, fused_four = _saved_bytes(net, x, single), _saved_bytes(net, x, four)
    with fused_branches(False):
        plain_single, plain_four = _saved_bytes(net, x, single), _saved_bytes(net, x, four)
    assert plain_four > 1.6 * plain_single  # two hidden-sized tensors per extra path (conv and BN outputs)
    # fused: one per extra path (its conv output; + per-channel statistics)
    assert fused_four - fused_single < 0.55 * (plain_four - plain_single)
    assert fused_single < plain_single


def test_calibration_and_evaluation_still_see_every_branch_bn(tiny):
    """No-gradient passes run the plain modules, so BN hooks (calibration) and eval-mode BNs work."""
    net = build_supernet(tiny, 4)
    arch = tiny.parse("e3:k3+k5-e6:k7-e3:k3+k5+k9", 4)
    calibrated = calibrate_bn(net, arch, torch.randn(20, 1, 8, 8), batch_size=10)
    branch_bns = set()
    for layer, choice in zip(net.layers, arch.layers, strict=True):
        e, paths = layer.indices(choice)
        branch_bns |= {layer.branches[e][p][1] for p in paths}
    assert len(branch_bns) == 6 and branch_bns <= set(calibrated)


def test_autocast_falls_back_to_the_plain_path(tiny):
    net = build_supernet(tiny, 4).train()
    arch = tiny.parse("e3:k3+k5-e6:k7-e3:k3+k5+k9", 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(torch.randn(4, 1, 8, 8), arch)
    out.float().sum().backward()
    assert net.layers[0].branches[0][1][0].weight.grad is not None


def test_fast_runtime_env_respects_the_user(tmp_path):
    lib = tmp_path / "libtcmalloc_minimal.so.4"
    lib.write_bytes(b"")
    assert find_allocator((str(tmp_path / "none"), str(tmp_path))) == lib
    assert find_allocator((str(tmp_path / "none"),)) is None

    def passive() -> dict[str, str]:
        return {"OMP_WAIT_POLICY": "PASSIVE"}

    env = fast_runtime_env({"PATH": "/bin"}, lib, passive)
    assert env == {"PATH": "/bin", "LD_PRELOAD": str(lib), "OMP_WAIT_POLICY": "PASSIVE", SWITCH: "1"}
    assert fast_runtime_env({"LD_PRELOAD": "mine.so"}, lib, passive)["LD_PRELOAD"] == "mine.so"
    assert fast_runtime_env({"OMP_WAIT_POLICY": "ACTIVE"}, None, passive) is None
    assert fast_runtime_env({"GOMP_SPINCOUNT": "10"}, None, passive) is None
    assert fast_runtime_env({SWITCH: "0"}, lib, passive) is None
    assert fast_runtime_env(env, lib, passive) is None  # the re-executed process does not loop


def test_openmp_spins_only_on_idle_cores():
    spin, sleep = {"GOMP_SPINCOUNT": SPIN_COUNT}, {"OMP_WAIT_POLICY": "PASSIVE"}
    assert openmp_wait_env(load=0.2, cores=2, threads=2) == spin
    assert openmp_wait_env(load=0.9, cores=2, threads=2) == sleep  # another job holds most of a core
    assert openmp_wait_env(load=0.9, cores=2, threads=1) == spin
    assert openmp_wait_env(load=6.0, cores=8, threads=2) == spin
    assert openmp_wait_env(load=3.0, cores=2, threads=1) == sleep


def test_reexec_sets_the_runtime_once():
    code = (
        "from mixpath.kernels.runtime import reexec_with_fast_runtime; reexec_with_fast_runtime(); "
        "import os; print(os.environ.get('OMP_WAIT_POLICY') or os.environ['GOMP_SPINCOUNT'], "
        "os.environ.get('LD_PRELOAD', ''))"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    wait, preload = out.split(" ", 1)
    assert wait in ("PASSIVE", SPIN_COUNT)
    assert preload.strip() == str(find_allocator() or "")


@pytest.mark.parametrize(
    "kernel, stride, channels, size",
    # 9 x 1 x 8 on 2 x 200 x 200 images: more than the kernel's 4 MB chunk of images, so several chunks
    [
        (5, 1, 16, (3, 11, 10)),
        (7, 2, 24, (3, 11, 10)),
        (9, 1, 36, (3, 11, 10)),
        (9, 2, 8, (3, 11, 10)),
        (9, 1, 8, (2, 200, 200)),
        (5, 2, 40, (5, 7, 9)),
    ],
)
def test_depthwise_kernel_equals_onednn(kernel, stride, channels, size):
    if not cpu.available():
        pytest.skip("no C compiler: the kernel falls back to oneDNN")
    torch.manual_seed(0)
    conv = nn.Conv2d(channels, channels, kernel, stride, kernel // 2, groups=channels, bias=False)
    n, h, w = size
    x = torch.randn(n, channels, h, w).contiguous(memory_format=torch.channels_last)
    grad = torch.randn_like(conv(x))
    want = torch.ops.aten.convolution_backward(
        grad,
        x,
        conv.weight,
        None,
        conv.stride,
        conv.padding,
        conv.dilation,
        False,
        [0, 0],
        channels,
        [False, True, False],
    )[1]
    got = cpu.weight_grad(grad, x, conv)
    torch.testing.assert_close(got, want, rtol=RTOL, atol=RTOL * want.abs().max().item())
    assert cpu.weight_grad(grad.double(), x.double(), conv) is None  # float32 only: oneDNN does the rest
    assert cpu.weight_grad(grad, x, nn.Conv2d(channels, channels, 3, padding=1, groups=channels)) is None


@pytest.mark.parametrize("kernel, channels, size", [(7, 16, (3, 9, 8)), (9, 24, (2, 7, 11)), (9, 8, (2, 30, 30))])
def test_depthwise_input_gradient_kernel_equals_onednn(kernel, channels, size):
    """Alone and added into a running sum (a layer's branches); the cases it leaves to oneDNN."""
    if not cpu.available():
        pytest.skip("no C compiler: the kernel falls back to oneDNN")
    torch.manual_seed(0)
    conv = nn.Conv2d(channels, channels, kernel, 1, kernel // 2, groups=channels, bias=False)
    n, h, w = size
    x = torch.randn(n, channels, h, w).contiguous(memory_format=torch.channels_last)
    grad = torch.randn_like(conv(x))
    args = (x, conv.weight, None, conv.stride, conv.padding, conv.dilation, False, [0, 0], channels)
    want = torch.ops.aten.convolution_backward(grad, *args, [True, False, False])[0]
    got = cpu.input_grad(grad, conv.weight, conv)
    torch.testing.assert_close(got, want, rtol=RTOL, atol=RTOL * want.abs().max().item())
    total = torch.randn_like(want)
    start = total.clone()
    assert cpu.input_grad(grad, conv.weight, conv, total) is total
    torch.testing.assert_close(total - start, want, rtol=RTOL, atol=RTOL * want.abs().max().item())
    assert cpu.input_grad(grad.double(), conv.weight.double(), conv) is None
    assert cpu.input_grad(grad.contiguous(), conv.weight, conv) is None  # NCHW
    strided = nn.Conv2d(channels, channels, kernel, 2, kernel // 2, groups=channels, bias=False)
    assert cpu.input_grad(grad, strided.weight, strided) is None
    small = torch.randn(n, channels, 4, 4).contiguous(memory_format=torch.channels_last)
    assert cpu.input_grad(small, conv.weight, conv) is None  # oneDNN is faster on 4x4 maps


def _activation(name: str) -> nn.Module:
    return {"relu6": nn.ReLU6(), "relu": nn.ReLU(), "none": nn.Identity()}[name]


@pytest.mark.parametrize("activation", ["relu6", "relu", "none"])
@pytest.mark.parametrize("shape", [(4, 16, 6, 5), (3, 13, 7, 7), (2, 40, 3, 3)])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_bn_activation_forward_kernel_equals_pytorch(activation, shape, momentum):
    """Output (alone and added into a sum), batch statistics and running statistics, twice in a row."""
    if not cpu.available():
        pytest.skip("no C compiler: PyTorch's operators are used")
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(shape[1], momentum=momentum).train()
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-1, 1)
    mine = copy.deepcopy(bn)
    for step in range(2):
        y = (torch.randn(shape) * 3 + 2).contiguous(memory_format=torch.channels_last)
        want = _activation(activation)(bn(y))
        _, mean, invstd = torch.native_batch_norm(y, None, None, None, None, True, 0.0, bn.eps)
        mine.num_batches_tracked.add_(1)
        factor = 1.0 / float(mine.num_batches_tracked) if momentum is None else momentum
        total = torch.randn_like(y) if step else None
        start = None if total is None else total.clone()
        got = cpu.bn_act_forward(
            y, mine.weight, mine.bias, mine.running_mean, mine.running_var, factor, mine.eps, activation, total
        )
        assert got is not None and got[0].is_contiguous(memory_format=torch.channels_last)
        out = got[0] if start is None else got[0] - start
        torch.testing.assert_close(out, want, rtol=RTOL, atol=RTOL * want.abs().max().item())
        torch.testing.assert_close(got[1], mean, rtol=RTOL, atol=1e-6)
        torch.testing.assert_close(got[2], invstd, rtol=RTOL, atol=0)
        for buf, buf0 in zip(mine.buffers(), bn.buffers(), strict=True):
            torch.testing.assert_close(buf, buf0, rtol=RTOL, atol=1e-6)
    untracked = cpu.bn_act_forward(y, bn.weight, bn.bias, None, None, 0.1, bn.eps, activation)
    torch.testing.assert_close(untracked[0], out, rtol=RTOL, atol=1e-5)
    assert cpu.bn_act_forward(y, bn.weight, bn.bias, None, None, 0.1, bn.eps, "swish") is None
    assert cpu.bn_act_forward(y.contiguous(), bn.weight, bn.bias, None, None, 0.1, bn.eps, activation) is None


@pytest.mark.parametrize("activation", ["relu6", "relu", "none"])
@pytest.mark.parametrize("shape", [(4, 16, 6, 5), (3, 13, 7, 7), (2, 40, 3, 3)])
def test_bn_activation_backward_kernel_equals_pytorch(activation, shape):
    if not cpu.available():
        pytest.skip("no C compiler: PyTorch's operators are used")
    torch.manual_seed(0)
    y = (torch.randn(shape) * 2 + 1).contiguous(memory_format=torch.channels_last).requires_grad_()
    bn = nn.BatchNorm2d(shape[1]).train()
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-1, 1)
    act = _activation(activation)
    grad = torch.randn(shape).contiguous(memory_format=torch.channels_last)
    act(bn(y)).backward(grad)
    _, mean, invstd = torch.native_batch_norm(y.detach(), bn.weight, bn.bias, None, None, True, 0.1, bn.eps)
    got = cpu.bn_act_backward(grad, y.detach(), mean, invstd, bn.weight, bn.bias, activation)
    for mine, want in zip(got, (y.grad, bn.weight.grad, bn.bias.grad), strict=True):
        torch.testing.assert_close(mine, want, rtol=RTOL, atol=RTOL * want.abs().max().item())
    assert cpu.bn_act_backward(grad, y.detach(), mean, invstd, bn.weight, bn.bias, "swish") is None
    nchw = y.detach().contiguous()
    assert cpu.bn_act_backward(grad.contiguous(), nchw, mean, invstd, bn.weight, bn.bias, activation) is None
