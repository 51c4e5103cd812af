/* Training-mode batch norm + activation kernels, forward and backward; compiled after prelude.c. */

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
