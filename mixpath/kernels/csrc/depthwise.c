/* Depthwise-conv gradient kernels for blocks of @L@ channels: build.py substitutes @L@ with 8 (any multiple of
   8 channels) and with 16 (multiples of 16: one AVX-512 register per block, the same sums in the same order)
   and compiles both after prelude.c. */

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
