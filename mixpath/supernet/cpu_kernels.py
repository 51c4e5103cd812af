"""CPU kernels for training multi-path layers, compiled on first use.

Where a MixPath supernet's training time goes on the CPU, and what these kernels replace (speeds measured
on S1's layer shapes, 2 threads; ``benchmarks/`` and docs/speed.md):

- ``weight_grad``: the weight gradient of 5x5, 7x7 and 9x9 depthwise convs. oneDNN has a fast depthwise
  weight-gradient kernel for 3x3 only and computes larger ones as a general grouped convolution (half of
  an m=4 training step before this kernel). Here ``grad_w[c, i, j] = sum over n, y, x of grad[n, c, y, x]
  * input[n, c, y*s+i-p, x*s+j-p]`` on channels-last tensors: a kernel row's input taps slide through
  registers, images go in cache-sized chunks, threads split (channel block, kernel row) pairs; 3-7x
  oneDNN's generic path.
- ``input_grad``: the input gradient of stride-1 7x7 and 9x9 depthwise convs (a depthwise conv of the
  output gradient with the flipped kernel), added straight into the sum over a layer's branches: 1.1-1.8x
  oneDNN's input gradient plus the addition, on maps of 7x7 and more (oneDNN keeps 3x3, 5x5, stride 2
  and smaller maps, where it is as fast or faster).
- ``bn_act_forward``: a training-mode BN + ReLU6/ReLU/none, added into the branch sum: batch statistics
  (summed in double) in one pass, normalisation, activation and accumulation in a second. PyTorch takes
  five passes and, for channel counts like 12 or 36, a slow scalar path (1.7-4.7x slower than this kernel).
- ``bn_act_backward``: the backward pass of the same, from the BN's input and batch statistics, in two
  passes where PyTorch needs three operators (recompute the BN output, the activation's backward, the
  BN's backward); 2-10x faster per call.

The depthwise kernels are built twice, for blocks of 8 and of 16 channels (one AVX-512 register; used
when the channel count is a multiple of 16: 1.0-1.5x faster, the same sums in the same order). The BN
kernels run over rows of C channels in runs of a multiple of 16 floats, so any C vectorises. Each
kernel's sums run in a fixed order for a given thread count: results are deterministic.

The C source (~450 lines) is compiled once per machine with the system C compiler (``cc``, a few seconds)
into ``$XDG_CACHE_HOME/mixpath`` (default ``~/.cache/mixpath``) and loaded with ctypes: no torch headers,
no build step at install time. Their threads are PyTorch's own where torch uses GNU OpenMP (the pip wheels
do): the library asks for ``libgomp.so.1``, which the process has already loaded from torch, so no second
OpenMP pool competes for the cores. Without a compiler (or with ``MIXPATH_CPU_KERNELS=0``) every function
returns None and callers keep PyTorch's operators.
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

SWITCH = "MIXPATH_CPU_KERNELS"
KERNEL_SIZES = (5, 7, 9)
"""3x3 is left to oneDNN, whose own 3x3 kernel is faster."""
LANES = 8
BLOCKS = (8, 16)
"""Channel block widths of the depthwise kernels: 16 where the channel count allows, else 8."""

_HEADER = r"""
#include <stdint.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* this thread's number in its team and the team's size (0 and 1 without OpenMP) */
static inline void team(int* t, int* nt) {
#ifdef _OPENMP
  *t = omp_get_thread_num();
  *nt = omp_get_num_threads();
#else
  *t = 0;
  *nt = 1;
#endif
}

"""

_DEPTHWISE = r"""
typedef float v@L@ __attribute__((vector_size(@L@ * sizeof(float))));
static inline v@L@ load@L@(const float* p) { v@L@ v; memcpy(&v, p, sizeof(v)); return v; }

/* acc[j] += sum_x g[x] * pin[x*S + j] for one output row and one kernel row, @L@ channels: pin is the
   input row zero-padded on both sides (column 0 = input column -p), @L@ floats per column. The K input
   taps of output column x stay in registers and slide by S columns per x, so each step loads S + 1
   vectors for K multiply-adds (a plain loop loads K + 1). */
#define ROW@L@(K, S)                                                                           \
  static void row##K##_##S##_@L@(const float* restrict g, const float* restrict pin, int64_t W,   \
                           int64_t C, v@L@* restrict acc) {                                   \
    v@L@ a[K], w[K];                                                                          \
    for (int j = 0; j < K; ++j) {                                                           \
      a[j] = acc[j];                                                                        \
      w[j] = load@L@(pin + j * @L@);                                                            \
    }                                                                                       \
    for (int64_t x = 0; x < W; ++x) {                                                       \
      const v@L@ gv = load@L@(g + x * C);                                                       \
      for (int j = 0; j < K; ++j) a[j] += gv * w[j];                                        \
      for (int j = 0; j < K - S; ++j) w[j] = w[j + S];                                      \
      for (int t = 0; t < S; ++t) w[K - S + t] = load@L@(pin + ((x + 1) * S + K - S + t) * @L@); \
    }                                                                                       \
    for (int j = 0; j < K; ++j) acc[j] = a[j];                                              \
  }
ROW@L@(3, 1)
ROW@L@(3, 2)
ROW@L@(5, 1)
ROW@L@(5, 2)
ROW@L@(7, 1)
ROW@L@(7, 2)
ROW@L@(9, 1)
ROW@L@(9, 2)

static void row_@L@(int64_t K, int64_t s, const float* g, const float* pin, int64_t W, int64_t C, v@L@* acc) {
  switch (K * 4 + s) {
    case 13: row3_1_@L@(g, pin, W, C, acc); break;
    case 14: row3_2_@L@(g, pin, W, C, acc); break;
    case 21: row5_1_@L@(g, pin, W, C, acc); break;
    case 22: row5_2_@L@(g, pin, W, C, acc); break;
    case 29: row7_1_@L@(g, pin, W, C, acc); break;
    case 30: row7_2_@L@(g, pin, W, C, acc); break;
    case 37: row9_1_@L@(g, pin, W, C, acc); break;
    default: row9_2_@L@(g, pin, W, C, acc); break;
  }
}

#ifndef CHUNK_BYTES
#define CHUNK_BYTES (4 << 20)
#endif
/* grad (N, H, W, C) and input (N, Hin, Win, C) contiguous, C a multiple of @L@; out (C, K, K).
   Work items are (block of @L@ channels, kernel row) pairs, a contiguous range per thread, so threads stay
   balanced when the blocks do not divide among them. Images go in chunks of about CHUNK_BYTES of grad
   and input, which stay in the cache while a thread walks its channel blocks over them (one pass over
   the whole tensor per block would read it from memory once per block, half of each cache line unused).
   Per image and block the input is copied into a zero-padded buffer (rows of Win + 2p + s columns), so
   no tap needs a bounds check. Every weight's sum runs in the same order whatever the thread count. */
int dw_weight_grad@L@(const float* grad, const float* input, float* out, int64_t N, int64_t C, int64_t H,
                   int64_t W, int64_t Hin, int64_t Win, int64_t K, int64_t s, int64_t p, int threads) {
  if (C % @L@ || (K != 3 && K != 5 && K != 7 && K != 9) || (s != 1 && s != 2)) return 1;
  if ((W - 1) * s + K > Win + 2 * p) return 1;
  const int64_t blocks = C / @L@, items = blocks * K, Wp = Win + 2 * p + s;
  const int64_t image_bytes = (H * W + Hin * Win) * C * (int64_t)sizeof(float);
  const int64_t chunk = image_bytes >= CHUNK_BYTES ? 1 : CHUNK_BYTES / image_bytes;
  int failed = 0;
#pragma omp parallel num_threads(threads) reduction(| : failed)
  {
    int t, nt;
    team(&t, &nt);
    const int64_t i0 = items * t / nt, i1 = items * (t + 1) / nt;
    float* pin = calloc((size_t)(Hin * Wp * @L@), sizeof(float));
    v@L@* acc = aligned_alloc(64, (size_t)((i1 - i0) * K + 2) * sizeof(v@L@));
    if (!pin || !acc) failed = 1;
    if (!failed && i1 > i0) {
      memset(acc, 0, (size_t)((i1 - i0) * K) * sizeof(v@L@));
      for (int64_t n0 = 0; n0 < N; n0 += chunk) {
        const int64_t n1 = n0 + chunk < N ? n0 + chunk : N;
        for (int64_t b = i0 / K; b * K < i1; ++b) {
          const int64_t c0 = b * @L@;
          const int64_t lo = b * K > i0 ? 0 : i0 - b * K, hi = (b + 1) * K < i1 ? K : i1 - b * K;
          v@L@* block_acc = acc + (b * K + lo - i0) * K - lo * K;
          v@L@ local[81];
          for (int64_t t = lo * K; t < hi * K; ++t) local[t] = block_acc[t];
          for (int64_t n = n0; n < n1; ++n) {
            for (int64_t yi = 0; yi < Hin; ++yi)
              for (int64_t xi = 0; xi < Win; ++xi)
                memcpy(pin + (yi * Wp + p + xi) * @L@, input + ((n * Hin + yi) * Win + xi) * C + c0,
                       @L@ * sizeof(float));
            for (int64_t y = 0; y < H; ++y) {
              const float* g = grad + ((n * H + y) * W) * C + c0;
              for (int64_t i = lo; i < hi; ++i) {
                const int64_t yi = y * s + i - p;
                if (yi < 0 || yi >= Hin) continue;
                row_@L@(K, s, g, pin + yi * Wp * @L@, W, C, local + i * K);
              }
            }
          }
          for (int64_t t = lo * K; t < hi * K; ++t) block_acc[t] = local[t];
        }
      }
      for (int64_t item = i0; item < i1; ++item) {
        const int64_t b = item / K, i = item % K;
        for (int64_t j = 0; j < K; ++j) {
          float lanes[@L@];
          memcpy(lanes, &acc[(item - i0) * K + j], sizeof(lanes));
          for (int l = 0; l < @L@; ++l) out[(b * @L@ + l) * K * K + i * K + j] = lanes[l];
        }
      }
    }
    free(pin);
    free(acc);
  }
  return failed;
}

/* out[x] += sum_j pin[x + j] * w[j] for one output row and one kernel row, @L@ channels: pin is a
   zero-padded input row, out a row of W columns, both @L@ floats per column. The K input taps slide in
   registers (one load per output column); two partial sums halve the multiply-add chain. */
#define FROW@L@(K)                                                                                    \
  static void frow##K##_@L@(const float* restrict pin, const v@L@* restrict wr, float* restrict out,      \
                      int64_t W) {                                                                 \
    v@L@ w[K], win[K];                                                                               \
    for (int j = 0; j < K; ++j) w[j] = wr[j];                                                      \
    for (int j = 0; j < K - 1; ++j) win[j] = load@L@(pin + j * @L@);                                   \
    for (int64_t x = 0; x < W; ++x) {                                                              \
      win[K - 1] = load@L@(pin + (x + K - 1) * @L@);                                                   \
      v@L@ a = load@L@(out + x * @L@), b = (v@L@){0};                                                      \
      for (int j = 0; j + 1 < K; j += 2) {                                                         \
        a += win[j] * w[j];                                                                        \
        b += win[j + 1] * w[j + 1];                                                                \
      }                                                                                            \
      a += win[K - 1] * w[K - 1];                                                                  \
      a += b;                                                                                      \
      memcpy(out + x * @L@, &a, sizeof(a));                                                          \
      for (int j = 0; j < K - 1; ++j) win[j] = win[j + 1];                                         \
    }                                                                                              \
  }
FROW@L@(3)
FROW@L@(5)
FROW@L@(7)
FROW@L@(9)

/* The input gradient of a stride-1 "same" depthwise conv, into out (accumulate: added): out[n, u, v, c] =
   sum_{i,j} grad[n, u + i - p, v + j - p, c] * w[c, K-1-i, K-1-j], i.e. a depthwise conv of the zero-
   padded output gradient with the flipped kernel. grad and out (N, H, W, C) contiguous, C a multiple
   of @L@; weight (C, K, K), flipped into (C/@L@, K, K, @L@) vectors once per call. Work items are (image,
   channel block) pairs; per item the gradient is copied into a zero-padded buffer and each output row
   is summed in a row buffer (in cache) before it is added into out. Deterministic: each output's sum
   has one fixed order. */
int dw_input_grad@L@(const float* grad, const float* weight, float* out, int64_t N, int64_t C, int64_t H,
                  int64_t W, int64_t K, int accumulate, int threads) {
  if (C % @L@ || (K != 3 && K != 5 && K != 7 && K != 9)) return 1;
  const int64_t blocks = C / @L@, items = N * blocks, p = K / 2, Wp = W + K - 1;
  float* wf = aligned_alloc(64, (size_t)(((C * K * K * 4 + 63) / 64) * 64));
  if (!wf) return 1;
  for (int64_t c = 0; c < C; ++c)
    for (int64_t t = 0; t < K * K; ++t)
      wf[((c / @L@) * K * K + (K * K - 1 - t)) * @L@ + c % @L@] = weight[c * K * K + t];
  int failed = 0;
#pragma omp parallel num_threads(threads) reduction(| : failed)
  {
    float* pin = calloc((size_t)((H + K - 1) * Wp * @L@), sizeof(float));
    float* row = malloc((size_t)(W * @L@) * sizeof(float));
    if (!pin || !row) failed = 1;
#pragma omp for schedule(static)
    for (int64_t item = 0; item < items; ++item) {
      if (!pin || !row) continue;
      const int64_t n = item / blocks, c0 = (item % blocks) * @L@;
      const v@L@* wb = (const v@L@*)(wf + (item % blocks) * K * K * @L@);
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x)
          memcpy(pin + ((y + p) * Wp + p + x) * @L@, grad + ((n * H + y) * W + x) * C + c0, @L@ * sizeof(float));
      for (int64_t u = 0; u < H; ++u) {
        float* o = out + (n * H + u) * W * C + c0;
        if (accumulate)
          for (int64_t x = 0; x < W; ++x) memcpy(row + x * @L@, o + x * C, @L@ * sizeof(float));
        else
          memset(row, 0, (size_t)(W * @L@) * sizeof(float));
        const int64_t i0 = p > u ? p - u : 0, i1 = H + p - u < K ? H + p - u : K; /* rows not all padding */
        for (int64_t i = i0; i < i1; ++i) {
          const float* r = pin + (u + i) * Wp * @L@;
          if (K == 3) frow3_@L@(r, wb + i * K, row, W);
          else if (K == 5) frow5_@L@(r, wb + i * K, row, W);
          else if (K == 7) frow7_@L@(r, wb + i * K, row, W);
          else frow9_@L@(r, wb + i * K, row, W);
        }
        for (int64_t x = 0; x < W; ++x) memcpy(o + x * C, row + x * @L@, @L@ * sizeof(float));
      }
    }
    free(pin);
    free(row);
  }
  free(wf);
  return failed;
}

"""
"""The depthwise kernels, for blocks of @L@ channels: compiled for 8 (any multiple of 8 channels) and for
16 (multiples of 16: one AVX-512 register per block, 1.0-1.5x faster on S1's shapes, the same sums)."""

_BN = r"""
/* The BN kernels see a channels-last tensor as R rows of C channels. Rows go G at a time as one flat
   run of P = G * C floats, P a multiple of 16 (G = 16 / gcd(C, 16)), with every per-channel value tiled
   G times: the inner loop then vectorizes whatever C is (C = 12 or 36, as in fmnist-s1, would otherwise
   run mostly in scalar loop tails). Each thread takes a fixed range of runs (the last one also the
   R mod G rows left, as runs of one row), so results are deterministic for a thread count. */
static int64_t tiled_period(int64_t C) {
  int64_t g = 1;
  while ((g * C) % 16) g *= 2;
  return g * C;
}

static void tile(const float* src, float* dst, int64_t C, int64_t P) {
  for (int64_t e = dst == src ? C : 0; e < P; e += C) memcpy(dst + e, src, (size_t)C * sizeof(float));
}

/* [q0, q1) of the flat tensor for thread t of nt in runs of P, and where the leftover rows start */
static void runs_of(int64_t total, int64_t P, int t, int nt, int64_t* q0, int64_t* q1, int64_t* tail) {
  const int64_t runs = total / P;
  *q0 = runs * t / nt * P;
  *q1 = runs * (t + 1) / nt * P;
  *tail = t == nt - 1 ? runs * P : total;
}

/* Backward of z = act(BN(y)) in training mode. grad: dL/dz; y: the BN input; mean, invstd: the batch
   statistics; act 0 = ReLU6, 1 = ReLU, 2 = none (the gradient passes where 0 < bn(y) < 6, resp.
   0 < bn(y), as PyTorch's hardtanh/threshold backward). Out: dy = dL/dy, and the gradients of gamma
   and beta. scratch: 16 * C * (2 * threads + 6) floats. */
#define BN_ACT_ROWS(NAME, PASS)                                                                      \
  static void NAME##_sums(const float* restrict g, const float* restrict y, const float* restrict mean, \
                          const float* restrict invstd, const float* restrict gamma,                   \
                          const float* restrict beta, float* restrict sum_d, float* restrict sum_dx,   \
                          int64_t q0, int64_t q1, int64_t P) {                                         \
    for (int64_t q = q0; q < q1; q += P)                                                             \
      for (int64_t e = 0; e < P; ++e) {                                                              \
        const float xhat = (y[q + e] - mean[e]) * invstd[e];                                         \
        const float z = xhat * gamma[e] + beta[e];                                                   \
        const float d = (PASS) ? g[q + e] : 0.f;                                                     \
        sum_d[e] += d;                                                                               \
        sum_dx[e] += d * xhat;                                                                       \
      }                                                                                              \
  }                                                                                                  \
  static void NAME##_grad(const float* restrict g, const float* restrict y, float* restrict dy,       \
                          const float* restrict mean, const float* restrict invstd,                    \
                          const float* restrict gamma, const float* restrict beta,                     \
                          const float* restrict mean_d, const float* restrict mean_dx, int64_t q0,     \
                          int64_t q1, int64_t P) {                                                     \
    for (int64_t q = q0; q < q1; q += P)                                                             \
      for (int64_t e = 0; e < P; ++e) {                                                              \
        const float xhat = (y[q + e] - mean[e]) * invstd[e];                                         \
        const float z = xhat * gamma[e] + beta[e];                                                   \
        const float d = (PASS) ? g[q + e] : 0.f;                                                     \
        dy[q + e] = gamma[e] * invstd[e] * (d - mean_d[e] - xhat * mean_dx[e]);                      \
      }                                                                                              \
  }
BN_ACT_ROWS(relu6, z > 0.f && z < 6.f)
BN_ACT_ROWS(relu, z > 0.f)
BN_ACT_ROWS(none, ((void)z, 1))

/* by act: 0 = ReLU6, 1 = ReLU, 2 = none */
typedef void (*bn_sums_fn)(const float*, const float*, const float*, const float*, const float*,
                           const float*, float*, float*, int64_t, int64_t, int64_t);
typedef void (*bn_grad_fn)(const float*, const float*, float*, const float*, const float*, const float*,
                           const float*, const float*, const float*, int64_t, int64_t, int64_t);
static const bn_sums_fn BN_SUMS[] = {relu6_sums, relu_sums, none_sums};
static const bn_grad_fn BN_GRAD[] = {relu6_grad, relu_grad, none_grad};

int bn_act_backward(const float* grad, const float* y, float* dy, const float* mean, const float* invstd,
                    const float* gamma, const float* beta, float* grad_gamma, float* grad_beta,
                    float* scratch, int64_t R, int64_t C, int act, int threads) {
  if (threads < 1) threads = 1;
  const int64_t P = tiled_period(C), total = R * C;
  float *tm = scratch, *ti = tm + P, *tg = ti + P, *tb = tg + P, *tmd = tb + P, *tmx = tmd + P;
  float* partial = tmx + P; /* 2 * P per thread */
  tile(mean, tm, C, P);
  tile(invstd, ti, C, P);
  tile(gamma, tg, C, P);
  tile(beta, tb, C, P);
  memset(partial, 0, sizeof(float) * 2 * P * threads);
#pragma omp parallel num_threads(threads)
  {
    int t, nt;
    team(&t, &nt);
    float* sum_d = partial + 2 * P * t;
    int64_t q0, q1, tail;
    runs_of(total, P, t, nt, &q0, &q1, &tail);
    BN_SUMS[act](grad, y, tm, ti, tg, tb, sum_d, sum_d + P, q0, q1, P);
    BN_SUMS[act](grad, y, tm, ti, tg, tb, sum_d, sum_d + P, tail, total, C);
  }
  for (int64_t c = 0; c < C; ++c) {
    float a = 0.f, b = 0.f;
    for (int t = 0; t < threads; ++t)
      for (int64_t e = c; e < P; e += C) {
        a += partial[2 * P * t + e];
        b += partial[2 * P * t + P + e];
      }
    grad_beta[c] = a;
    grad_gamma[c] = b;
    for (int64_t e = c; e < P; e += C) {
      tmd[e] = a / (float)R; /* the means of d and d * xhat */
      tmx[e] = b / (float)R;
    }
  }
#pragma omp parallel num_threads(threads)
  {
    int t, nt;
    team(&t, &nt);
    int64_t q0, q1, tail;
    runs_of(total, P, t, nt, &q0, &q1, &tail);
    BN_GRAD[act](grad, y, dy, tm, ti, tg, tb, tmd, tmx, q0, q1, P);
    BN_GRAD[act](grad, y, dy, tm, ti, tg, tb, tmd, tmx, tail, total, C);
  }
  return 0;
}

/* Forward of z = act(BN(y)) in training mode: the batch mean and 1/std (sums in double), the running
   averages (running_mean NULL: none; the variance unbiased, as PyTorch's), then out = z, or out += z
   when accumulate (the sum of a layer's branches). act 0 = ReLU6, 1 = ReLU, 2 = none; NaN passes
   through as in PyTorch's clamp. partial: 32 * C * threads doubles; affine: 32 * C floats. */
static void bn_stats_run(const float* restrict y, double* restrict s, double* restrict ss, int64_t q0,
                         int64_t q1, int64_t P) {
  for (int64_t q = q0; q < q1; q += P)
    for (int64_t e = 0; e < P; ++e) {
      const double v = y[q + e];
      s[e] += v;
      ss[e] += v * v;
    }
}

#define BN_ACT_APPLY(NAME, ACT)                                                                        \
  static void NAME##_apply(const float* restrict y, float* restrict out, const float* restrict scale,   \
                           const float* restrict shift, int64_t q0, int64_t q1, int64_t P, int acc) {  \
    if (acc)                                                                                           \
      for (int64_t q = q0; q < q1; q += P)                                                             \
        for (int64_t e = 0; e < P; ++e) {                                                              \
          float z = y[q + e] * scale[e] + shift[e];                                                    \
          ACT;                                                                                         \
          out[q + e] += z;                                                                             \
        }                                                                                              \
    else                                                                                               \
      for (int64_t q = q0; q < q1; q += P)                                                             \
        for (int64_t e = 0; e < P; ++e) {                                                              \
          float z = y[q + e] * scale[e] + shift[e];                                                    \
          ACT;                                                                                         \
          out[q + e] = z;                                                                              \
        }                                                                                              \
  }
BN_ACT_APPLY(relu6, z = z < 0.f ? 0.f : (z > 6.f ? 6.f : z))
BN_ACT_APPLY(relu, z = z < 0.f ? 0.f : z)
BN_ACT_APPLY(none, (void)0)

typedef void (*bn_apply_fn)(const float*, float*, const float*, const float*, int64_t, int64_t, int64_t, int);
static const bn_apply_fn BN_APPLY[] = {relu6_apply, relu_apply, none_apply}; /* by act, as above */

int bn_act_forward(const float* y, float* out, float* mean, float* invstd, const float* gamma,
                   const float* beta, float* running_mean, float* running_var, double momentum, double eps,
                   double* partial, float* affine, int64_t R, int64_t C, int act, int accumulate,
                   int threads) {
  if (threads < 1) threads = 1;
  const int64_t P = tiled_period(C), total = R * C;
  memset(partial, 0, sizeof(double) * 2 * P * threads);
#pragma omp parallel num_threads(threads)
  {
    int t, nt;
    team(&t, &nt);
    double* s = partial + 2 * P * t;
    int64_t q0, q1, tail;
    runs_of(total, P, t, nt, &q0, &q1, &tail);
    bn_stats_run(y, s, s + P, q0, q1, P);
    bn_stats_run(y, s, s + P, tail, total, C);
  }
  float *scale = affine, *shift = affine + P;
  for (int64_t c = 0; c < C; ++c) {
    double sum = 0., sq = 0.;
    for (int t = 0; t < threads; ++t)
      for (int64_t e = c; e < P; e += C) {
        sum += partial[2 * P * t + e];
        sq += partial[2 * P * t + P + e];
      }
    const double m = sum / (double)R;
    double var = sq / (double)R - m * m;
    if (var < 0.) var = 0.;
    const double is = 1. / sqrt(var + eps);
    mean[c] = (float)m;
    invstd[c] = (float)is;
    scale[c] = (float)(gamma[c] * is);
    shift[c] = (float)(beta[c] - m * gamma[c] * is);
    if (running_mean) {
      running_mean[c] = (float)((1. - momentum) * running_mean[c] + momentum * m);
      running_var[c] = (float)((1. - momentum) * running_var[c] + momentum * var * R / (R > 1 ? R - 1 : 1));
    }
  }
  tile(scale, scale, C, P);
  tile(shift, shift, C, P);
#pragma omp parallel num_threads(threads)
  {
    int t, nt;
    team(&t, &nt);
    int64_t q0, q1, tail;
    runs_of(total, P, t, nt, &q0, &q1, &tail);
    BN_APPLY[act](y, out, scale, shift, q0, q1, P, accumulate);
    BN_APPLY[act](y, out, scale, shift, tail, total, C, accumulate);
  }
  return 0;
}
"""

_SOURCE = _HEADER + _DEPTHWISE.replace("@L@", "8") + _DEPTHWISE.replace("@L@", "16") + _BN

_FLAGS = ["-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", "-lm"]


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
        source, built = Path(tmp) / "cpu_kernels.c", Path(tmp) / target.name
        source.write_text(_SOURCE)
        subprocess.run([compiler, *_FLAGS, str(source), "-o", str(built)], check=True, capture_output=True)
        os.replace(built, target)  # atomic: processes compiling at once each install a complete library


@cache
def _library() -> ctypes.CDLL | None:
    if os.environ.get(SWITCH) == "0":
        return None
    target = _cache_dir() / f"cpu_kernels-{_machine_key()}.so"
    try:
        if not target.is_file():
            log.info("compiling mixpath's CPU kernels into %s (once per machine)", target)
            _compile(target)
        library = ctypes.CDLL(str(target))
    except (OSError, subprocess.CalledProcessError) as err:
        log.warning("mixpath's CPU kernels are unavailable (%s); using PyTorch's operators", err)
        return None
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
    return library


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
"""Where ``input_grad`` beats oneDNN's input gradient plus the addition into the branch sum, measured on
S1's shapes: 7x7 and 9x9 kernels 1.1-1.8x on maps of 7x7 and more; 3x3, 5x5 and 4x4 maps 0.5-1.3x."""


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
    vector width, a slow scalar path (2.5-35x slower than a memory copy, measured on S1's shapes)."""
    if not (
        activation in BN_ACTIVATIONS
        and y.device.type == "cpu"
        and y.dim() == 4
        and y.dtype == torch.float32
        and _channels_last(y)
        and _float_vectors(gamma, beta)
        and (out is None or (out.shape == y.shape and out.dtype == y.dtype and out.stride() == y.stride()))
        and (running_mean is None or _float_vectors(running_mean, running_var))
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
    tracked = running_mean is not None and running_var is not None
    status = library.bn_act_forward(
        y.data_ptr(),
        out.data_ptr(),
        mean.data_ptr(),
        invstd.data_ptr(),
        gamma.data_ptr(),
        beta.data_ptr(),
        running_mean.data_ptr() if tracked else None,
        running_var.data_ptr() if tracked else None,
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
