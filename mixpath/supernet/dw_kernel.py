"""A CPU kernel for the weight gradient of large depthwise convolutions, compiled on first use.

Where a MixPath supernet's training time goes on the CPU: the weight gradient of the 5x5, 7x7 and 9x9
depthwise convs. oneDNN has a fast depthwise weight-gradient kernel for 3x3 only and computes larger ones
as a general grouped convolution, which took about half of a training step at m=4 (fmnist-s1, cifar-s1).
This kernel computes ``grad_w[c, i, j] = sum over n, y, x of grad[n, c, y, x] * input[n, c, y*s+i-p,
x*s+j-p]`` on channels-last tensors, 8 channels per vector, the kernel row's accumulators in registers,
threads over channel blocks: 1.3-5.7x faster than oneDNN's generic path on S1's layer shapes (most for
large kernels on small images, the fmnist-s1 case), summing in the same order, so results agree to float
rounding (identical bits at stride 1 on the shapes measured).

It is ~80 lines of C compiled once per machine with the system C compiler (``cc``, about a second) into
``$XDG_CACHE_HOME/mixpath`` (default ``~/.cache/mixpath``) and loaded with ctypes: no torch headers,
no build step at install time. Without a compiler (or ``MIXPATH_DW_KERNEL=0``) ``weight_grad`` returns
None and callers keep oneDNN's kernel.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

SWITCH = "MIXPATH_DW_KERNEL"
KERNEL_SIZES = (5, 7, 9)
"""3x3 is left to oneDNN, whose own 3x3 kernel is faster."""
LANES = 8

_SOURCE = r"""
#include <stdint.h>
#include <string.h>

typedef float v8 __attribute__((vector_size(32)));
static inline v8 load8(const float* p) { v8 v; memcpy(&v, p, sizeof(v)); return v; }

/* acc[j] += sum_x g[x] * in[x*s + j - p] for one output row and one kernel row, 8 channels */
#define ROW(K)                                                                              \
  static void row##K(const float* g, const float* in, int64_t W, int64_t Win, int64_t C,    \
                     int64_t s, int64_t p, v8* acc) {                                       \
    v8 a[K];                                                                                \
    for (int j = 0; j < K; ++j) a[j] = (v8){0};                                             \
    for (int64_t x = 0; x < W; ++x) {                                                       \
      const v8 gv = load8(g + x * C);                                                       \
      const int64_t base = x * s - p;                                                       \
      if (base >= 0 && base + K <= Win) {                                                   \
        const float* xv = in + base * C;                                                    \
        for (int j = 0; j < K; ++j) a[j] += gv * load8(xv + j * C);                         \
      } else {                                                                              \
        for (int j = 0; j < K; ++j) {                                                       \
          const int64_t xj = base + j;                                                      \
          if (xj >= 0 && xj < Win) a[j] += gv * load8(in + xj * C);                         \
        }                                                                                   \
      }                                                                                     \
    }                                                                                       \
    for (int j = 0; j < K; ++j) acc[j] += a[j];                                             \
  }
ROW(5)
ROW(7)
ROW(9)

/* grad (N, H, W, C) and input (N, Hin, Win, C) contiguous, C a multiple of 8; out (C, K, K) */
int dw_weight_grad(const float* grad, const float* input, float* out, int64_t N, int64_t C, int64_t H,
                   int64_t W, int64_t Hin, int64_t Win, int64_t K, int64_t s, int64_t p, int threads) {
  if (C % 8 || (K != 5 && K != 7 && K != 9)) return 1;
  const int64_t blocks = C / 8;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t c0 = b * 8;
    v8 acc[81];
    for (int t = 0; t < K * K; ++t) acc[t] = (v8){0};
    for (int64_t n = 0; n < N; ++n)
      for (int64_t y = 0; y < H; ++y) {
        const float* g = grad + ((n * H + y) * W) * C + c0;
        for (int64_t i = 0; i < K; ++i) {
          const int64_t yi = y * s + i - p;
          if (yi < 0 || yi >= Hin) continue;
          const float* in = input + ((n * Hin + yi) * Win) * C + c0;
          if (K == 5) row5(g, in, W, Win, C, s, p, acc + i * K);
          else if (K == 7) row7(g, in, W, Win, C, s, p, acc + i * K);
          else row9(g, in, W, Win, C, s, p, acc + i * K);
        }
      }
    for (int64_t t = 0; t < K * K; ++t) {
      float lanes[8];
      memcpy(lanes, &acc[t], sizeof(lanes));
      for (int l = 0; l < 8; ++l) out[(c0 + l) * K * K + t] = lanes[l];
    }
  }
  return 0;
}
"""

_FLAGS = ["-O3", "-march=native", "-fopenmp", "-shared", "-fPIC"]


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mixpath"


def _machine_key() -> str:
    """Source, flags and CPU features: a library built with -march=native only runs where it was built."""
    flags = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        flags = next((line for line in cpuinfo.read_text().splitlines() if line.startswith(("flags", "Features"))), "")
    text = "\n".join([_SOURCE, " ".join(_FLAGS), platform.machine(), flags])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _compile(target: Path) -> None:
    compiler = shutil.which(os.environ.get("CC", "cc"))
    if compiler is None:
        raise OSError("no C compiler (cc) on PATH")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        source, built = Path(tmp) / "dw_kernel.c", Path(tmp) / target.name
        source.write_text(_SOURCE)
        subprocess.run([compiler, *_FLAGS, str(source), "-o", str(built)], check=True, capture_output=True)
        os.replace(built, target)  # atomic: processes compiling at once each install a complete library


@cache
def _library() -> ctypes.CDLL | None:
    if os.environ.get(SWITCH) == "0":
        return None
    target = _cache_dir() / f"dw_kernel-{_machine_key()}.so"
    try:
        if not target.is_file():
            log.info("compiling the depthwise weight-gradient kernel into %s (once per machine)", target)
            _compile(target)
        library = ctypes.CDLL(str(target))
    except (OSError, subprocess.CalledProcessError) as err:
        log.warning("depthwise kernel unavailable (%s); using oneDNN's", err)
        return None
    fn = library.dw_weight_grad
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_int64] * 9 + [ctypes.c_int]
    return library


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
    # (N, H, W, C) views; free for channels-last tensors, a copy otherwise
    g, x = grad.permute(0, 2, 3, 1), input.permute(0, 2, 3, 1)
    extra = -channels % LANES
    if extra:
        g, x = F.pad(g, (0, extra)), F.pad(x, (0, extra))
    g, x = g.contiguous(), x.contiguous()
    n, h_in, w_in, c = x.shape
    out = x.new_empty(c, k, k)
    status = library.dw_weight_grad(
        g.data_ptr(),
        x.data_ptr(),
        out.data_ptr(),
        n,
        c,
        g.shape[1],
        g.shape[2],
        h_in,
        w_in,
        k,
        s,
        p,
        torch.get_num_threads(),
    )
    if status:
        return None
    return out[:channels].unsqueeze(1)
