// Attention hot loops. Included once per instruction set inside its own namespace: PA_AVX512 selects the AVX-512
// micro-kernels, PA_AVX2 the AVX2/FMA/F16C ones, otherwise portable loops (auto-vectorised for the baseline ISA).
// Only plain loops and intrinsics here: no std templates, so nothing compiled for AVX2 or AVX-512 can leak into shared
// symbols.

static inline float halfToFloatScalar(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exponent = (h >> 10) & 0x1fu;
  uint32_t mantissa = h & 0x3ffu;
  uint32_t bits;
  if (exponent == 0) {
    float magnitude = static_cast<float>(mantissa) * 5.9604644775390625e-8f;  // subnormal: mantissa × 2^-24
    memcpy(&bits, &magnitude, 4);
    bits |= sign;
  } else if (exponent == 31) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else {
    bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
  }
  float out;
  memcpy(&out, &bits, 4);
  return out;
}

static inline float maxf(float a, float b) { return a > b ? a : b; }

// Max that keeps a NaN from either side (maxf keeps only b's): a running max that has seen a NaN stays NaN.
static inline float maxKeepNaN(float a, float b) { return a > b || a != a ? a : b; }

// Cephes expf, shared by the AVX2 and AVX-512 exp: clamp, range reduction by ln2 (a two-part constant) and a
// degree-5 polynomial; ~1 ulp in float.
static constexpr float kExpClamp = 88.3762626647949f;
static constexpr float kLog2e = 1.44269504088896341f;
static constexpr float kLn2Hi = 0.693359375f;
static constexpr float kLn2Lo = -2.12194440e-4f;
static constexpr float kExpPoly[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                                      4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};

#if defined(PA_AVX512)

static inline __m512 exp512(__m512 x) {
  // exp256 on 16 lanes, step for step (the same constants): both tables give the same bits.
  x = _mm512_min_ps(_mm512_set1_ps(kExpClamp), _mm512_max_ps(_mm512_set1_ps(-kExpClamp), x));  // keeps NaN
  __m512 fx = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(kLog2e)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(kLn2Hi), x);
  x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(kLn2Lo), x);
  __m512 y = _mm512_set1_ps(kExpPoly[0]);
  for (int i = 1; i < 6; ++i) y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(kExpPoly[i]));
  y = _mm512_fmadd_ps(y, _mm512_mul_ps(x, x), _mm512_add_ps(x, _mm512_set1_ps(1.0f)));
  __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(fx), _mm512_set1_epi32(127)), 23);
  return _mm512_mul_ps(y, _mm512_castsi512_ps(e));
}

// Lanes [0, n) of a 16-lane block, n < 16: tails are masked loads and stores, which never touch memory past n.
static inline __mmask16 firstLanes(int n) { return static_cast<__mmask16>((1u << n) - 1u); }

// Rows a few tiles ahead go to L2 a few lines per block of work: spread over the compute, the requests keep memory
// busy while the core works. Measured on every decode shape of the bench, fp16 and fp32: beats a burst per tile (which
// fills the core's miss buffers, then leaves memory idle while it computes) and no prefetch at all.
static constexpr bool kInterleavedPrefetch = true;
static inline void prefetchLines(const char* p, int bytes) {
  for (int b = 0; b < bytes; b += 64) _mm_prefetch(p + b, _MM_HINT_T1);
}

// Key and value rows are read as stored: fp32, or fp16 converted inside the load.
static inline __m512 load16(const float* x) { return _mm512_loadu_ps(x); }
static inline __m512 load16(const uint16_t* x) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x)));
}
static inline __m512 load16(const float* x, __mmask16 m) { return _mm512_maskz_loadu_ps(m, x); }
static inline __m512 load16(const uint16_t* x, __mmask16 m) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, x)); }

// Columns [c, c + 16) of a row, or only the lanes of m when Tail.
template <bool Tail, typename T>
static inline __m512 loadColumns(const T* x, __mmask16 m) {
  return Tail ? load16(x, m) : load16(x);
}

// Sixteen horizontal sums in one register: lane 4i + j of the result is the sum of a[i + 4j]. Four rounds of
// shuffle-and-add (30 shuffles) instead of a reduction per accumulator.
static inline __m512 hsum16x512(const __m512* a) {
  __m512 b[8], c[4], e[2];
  for (int i = 0; i < 8; ++i)
    b[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0x44),
                         _mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0xee));
  for (int i = 0; i < 4; ++i)
    c[i] = _mm512_add_ps(_mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], 0x88),
                         _mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], 0xdd));
  for (int i = 0; i < 2; ++i)
    e[i] = _mm512_add_ps(_mm512_shuffle_ps(c[2 * i], c[2 * i + 1], 0x44),
                         _mm512_shuffle_ps(c[2 * i], c[2 * i + 1], 0xee));
  return _mm512_add_ps(_mm512_shuffle_ps(e[0], e[1], 0x88), _mm512_shuffle_ps(e[0], e[1], 0xdd));
}

// Accumulator of query i and key j in a Q × K block: lane i·K + j of hsum16x512's result.
template <int K>
static constexpr int dotSlot(int i, int j) {
  return (i * K + j) / 4 + 4 * ((i * K + j) % 4);
}

// One 16-column chunk of a Q × K block; with `ahead`, the K rows' line of this chunk in the tile kPrefetchTiles on.
template <int Q, int K, bool Tail, typename E>
static inline void dotStep(const float* const* q, const E* k, const char* ahead, int d, int c, __mmask16 m,
                           __m512* acc) {
  const int64_t columnByte = static_cast<int64_t>(c) * sizeof(E);
  if (ahead != nullptr && columnByte % 64 == 0)
    for (int j = 0; j < K; ++j)
      _mm_prefetch(ahead + j * d * static_cast<int64_t>(sizeof(E)) + columnByte, _MM_HINT_T1);
  __m512 qv[Q];
  for (int i = 0; i < Q; ++i) qv[i] = loadColumns<Tail>(q[i] + c, m);
  for (int j = 0; j < K; ++j) {
    const __m512 kv = loadColumns<Tail>(k + static_cast<int64_t>(j) * d + c, m);
    for (int i = 0; i < Q; ++i) acc[dotSlot<K>(i, j)] = _mm512_fmadd_ps(qv[i], kv, acc[dotSlot<K>(i, j)]);
  }
}

// rows[i][j] = q_i · k_j for a block of Q queries × K keys (Q·K ≤ 16): up to 16 accumulators hide the FMA latency,
// each key chunk is converted once for the Q queries, one hsum16x512 finishes all the dots.
template <int Q, int K, typename E>
static inline void dotBlock(const float* const* q, const E* k, const char* ahead, int d, float* const* rows) {
  static_assert(Q * K <= 16, "one hsum16x512 per block");  // unused accumulators stay zero
  __m512 acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_setzero_ps();
  int c = 0;
  for (; c + 16 <= d; c += 16) dotStep<Q, K, false>(q, k, ahead, d, c, 0, acc);
  if (c < d) dotStep<Q, K, true>(q, k, ahead, d, c, firstLanes(d - c), acc);
  alignas(64) float sums[16];
  _mm512_store_ps(sums, hsum16x512(acc));
  for (int i = 0; i < Q; ++i)
    for (int j = 0; j < K; ++j) rows[i][j] = sums[i * K + j];
}

template <typename E>
static inline float dot1x1(const float* q, const E* k, int d) {
  __m512 a = _mm512_setzero_ps();
  int c = 0;
  for (; c + 16 <= d; c += 16) a = _mm512_fmadd_ps(load16(q + c), load16(k + c), a);
  if (c < d) a = _mm512_fmadd_ps(load16(q + c, firstLanes(d - c)), load16(k + c, firstLanes(d - c)), a);
  return _mm512_reduce_add_ps(a);
}

// Q ≤ 8 queries (listed by `active`) against the nt keys of a tile: Q × K blocks of at most 16 dots, single dots for
// the last keys. With `ahead`, the blocks also ask for their rows of the tile kPrefetchTiles on, a line per chunk.
template <int Q, typename E>
static inline void dotRows(const float* const* queries, const int* active, const E* keys, const char* ahead, int nt,
                           int d, float* scores) {
  constexpr int K = Q > 4 ? 2 : Q == 3 ? 4 : 16 / Q;
  const int rowBytes = d * static_cast<int>(sizeof(E));
  const float* q[Q];
  float* rows[Q];
  for (int i = 0; i < Q; ++i) {
    q[i] = queries[active[i]];
    rows[i] = scores + active[i] * kTile;
  }
  int j = 0;
  for (; j + K <= nt; j += K) {
    float* at[Q];
    for (int i = 0; i < Q; ++i) at[i] = rows[i] + j;
    dotBlock<Q, K>(q, keys + static_cast<int64_t>(j) * d, ahead != nullptr ? ahead + j * rowBytes : nullptr, d, at);
  }
  for (; j < nt; ++j) {
    if (ahead != nullptr) prefetchLines(ahead + j * rowBytes, rowBytes);
    for (int i = 0; i < Q; ++i) rows[i][j] = dot1x1(q[i], keys + static_cast<int64_t>(j) * d, d);
  }
}

// scores[r * kTile + j] = q_r · k_j for the queries in `active` and j < nt, up to 8 queries per pass over the key
// tile (each key chunk converted once per pass: a GQA group of 5–8 takes one pass). The first pass prefetches.
template <typename E>
static inline void tileDots(const float* const* queries, const int* active, int activeCount, const E* keys,
                            const char* ahead, int nt, int d, float* scores) {
  for (int a = 0; a < activeCount; a += 8, ahead = nullptr) {
    const int* set = active + a;
    switch (activeCount - a < 8 ? activeCount - a : 8) {
      case 8: dotRows<8>(queries, set, keys, ahead, nt, d, scores); break;
      case 7: dotRows<7>(queries, set, keys, ahead, nt, d, scores); break;
      case 6: dotRows<6>(queries, set, keys, ahead, nt, d, scores); break;
      case 5: dotRows<5>(queries, set, keys, ahead, nt, d, scores); break;
      case 4: dotRows<4>(queries, set, keys, ahead, nt, d, scores); break;
      case 3: dotRows<3>(queries, set, keys, ahead, nt, d, scores); break;
      case 2: dotRows<2>(queries, set, keys, ahead, nt, d, scores); break;
      default: dotRows<1>(queries, set, keys, ahead, nt, d, scores); break;
    }
  }
}

// acc_i[c .. c + 16C) += Σ_j p_i[j] · v[j][c .. c + 16C) for Q queries: each value chunk is converted once and feeds
// Q·C accumulators. With `ahead`, each row first asks for the same columns of the row kPrefetchTiles tiles on.
template <int Q, int C, bool Tail, typename V>
static inline void accumulateColumns(float* const* acc, const float* const* p, const V* v, const char* ahead, int n,
                                     int d, int c, __mmask16 m) {
  __m512 a[Q][C];
  for (int i = 0; i < Q; ++i)
    for (int u = 0; u < C; ++u)
      a[i][u] = Tail ? _mm512_maskz_loadu_ps(m, acc[i] + c) : _mm512_loadu_ps(acc[i] + c + 16 * u);
  const V* row = v + c;
  const int rowBytes = d * static_cast<int>(sizeof(V));
  const int columnBytes = 16 * C * static_cast<int>(sizeof(V));
  if (ahead != nullptr) ahead += c * static_cast<int>(sizeof(V));
  for (int j = 0; j < n; ++j, row += d) {
    if (ahead != nullptr) prefetchLines(ahead + j * rowBytes, columnBytes);
    __m512 x[C];
    for (int u = 0; u < C; ++u) x[u] = loadColumns<Tail>(row + 16 * u, m);
    for (int i = 0; i < Q; ++i) {
      const __m512 w = _mm512_set1_ps(p[i][j]);
      for (int u = 0; u < C; ++u) a[i][u] = _mm512_fmadd_ps(w, x[u], a[i][u]);
    }
  }
  for (int i = 0; i < Q; ++i)
    for (int u = 0; u < C; ++u) {
      if (Tail)
        _mm512_mask_storeu_ps(acc[i] + c, m, a[i][u]);
      else
        _mm512_storeu_ps(acc[i] + c + 16 * u, a[i][u]);
    }
}

template <int Q, typename V>
static inline void accumulateRowsQ(float* const* acc, const float* const* p, const V* v, const char* ahead, int n,
                                   int d) {
  // Q·C ≤ 16 accumulators, the widest block that fits the row first.
  int c = 0;
  if (Q <= 2)
    for (; c + 128 <= d; c += 128) accumulateColumns<Q, 8, false>(acc, p, v, ahead, n, d, c, 0);
  if (Q <= 4)
    for (; c + 64 <= d; c += 64) accumulateColumns<Q, 4, false>(acc, p, v, ahead, n, d, c, 0);
  for (; c + 32 <= d; c += 32) accumulateColumns<Q, 2, false>(acc, p, v, ahead, n, d, c, 0);
  for (; c + 16 <= d; c += 16) accumulateColumns<Q, 1, false>(acc, p, v, ahead, n, d, c, 0);
  if (c < d) accumulateColumns<Q, 1, true>(acc, p, v, ahead, n, d, c, firstLanes(d - c));
}

// Queries per pass over a value tile, and the pass: acc_i += Σ_{j<n} p_i[j] · v_j for count ≤ kValueQueries.
static constexpr int kValueQueries = 8;
template <typename V>
static inline void accumulateRowsSet(float* const* acc, const float* const* p, int count, const V* v,
                                     const char* ahead, int n, int d) {
  switch (count) {
    case 8: accumulateRowsQ<8>(acc, p, v, ahead, n, d); break;
    case 7: accumulateRowsQ<7>(acc, p, v, ahead, n, d); break;
    case 6: accumulateRowsQ<6>(acc, p, v, ahead, n, d); break;
    case 5: accumulateRowsQ<5>(acc, p, v, ahead, n, d); break;
    case 4: accumulateRowsQ<4>(acc, p, v, ahead, n, d); break;
    case 3: accumulateRowsQ<3>(acc, p, v, ahead, n, d); break;
    case 2: accumulateRowsQ<2>(acc, p, v, ahead, n, d); break;
    default: accumulateRowsQ<1>(acc, p, v, ahead, n, d); break;
  }
}

static void convertHalfRows(const uint16_t* src, int64_t count, float* dst) {
  int64_t i = 0;
  for (; i + 16 <= count; i += 16) _mm512_storeu_ps(dst + i, load16(src + i));
  if (i < count) {
    const __mmask16 m = firstLanes(static_cast<int>(count - i));
    _mm512_mask_storeu_ps(dst + i, m, load16(src + i, m));
  }
}

// x[j] = exp(x[j] − shift) for j < n; returns the sum.
static inline float expShiftSum(float* x, int n, float shift) {
  const __m512 sv = _mm512_set1_ps(shift);
  __m512 total = _mm512_setzero_ps();
  int j = 0;
  for (; j + 16 <= n; j += 16) {
    const __m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(x + j), sv));
    _mm512_storeu_ps(x + j, e);
    total = _mm512_add_ps(total, e);
  }
  if (j < n) {
    const __mmask16 m = firstLanes(n - j);
    const __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + j), sv));
    _mm512_mask_storeu_ps(x + j, m, e);
    total = _mm512_mask_add_ps(total, m, total, e);
  }
  return _mm512_reduce_add_ps(total);
}

static inline float maxOf(const float* x, int n) {
  __m512 m = _mm512_set1_ps(-INFINITY);
  int j = 0;
  for (; j + 16 <= n; j += 16) m = _mm512_max_ps(m, _mm512_loadu_ps(x + j));
  if (j < n) m = _mm512_mask_max_ps(m, firstLanes(n - j), m, _mm512_maskz_loadu_ps(firstLanes(n - j), x + j));
  return _mm512_reduce_max_ps(m);
}

static inline void scaleBiasRow(float* s, const float* bias, int n, float scale) {
  const __m512 sc = _mm512_set1_ps(scale);
  int j = 0;
  for (; j + 16 <= n; j += 16)
    _mm512_storeu_ps(s + j, _mm512_fmadd_ps(_mm512_loadu_ps(s + j), sc, _mm512_loadu_ps(bias + j)));
  if (j < n) {
    const __mmask16 m = firstLanes(n - j);
    _mm512_mask_storeu_ps(s + j, m,
                          _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, s + j), sc, _mm512_maskz_loadu_ps(m, bias + j)));
  }
}

static inline void scaleRow(float* acc, float alpha, int d) {
  const __m512 a = _mm512_set1_ps(alpha);
  int i = 0;
  for (; i + 16 <= d; i += 16) _mm512_storeu_ps(acc + i, _mm512_mul_ps(_mm512_loadu_ps(acc + i), a));
  if (i < d) {
    const __mmask16 m = firstLanes(d - i);
    _mm512_mask_storeu_ps(acc + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, acc + i), a));
  }
}

static double sumArrayImpl(const float* x, int64_t n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    a0 = _mm512_add_ps(a0, _mm512_loadu_ps(x + i));
    a1 = _mm512_add_ps(a1, _mm512_loadu_ps(x + i + 16));
    a2 = _mm512_add_ps(a2, _mm512_loadu_ps(x + i + 32));
    a3 = _mm512_add_ps(a3, _mm512_loadu_ps(x + i + 48));
  }
  double s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
  for (; i < n; ++i) s += x[i];
  return s;
}

#elif defined(PA_AVX2)

static inline __m256 exp256(__m256 x) {
  x = _mm256_min_ps(_mm256_set1_ps(kExpClamp), _mm256_max_ps(_mm256_set1_ps(-kExpClamp), x));  // keeps NaN
  __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(kLn2Hi), x);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(kLn2Lo), x);
  __m256 y = _mm256_set1_ps(kExpPoly[0]);
  for (int i = 1; i < 6; ++i) y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(kExpPoly[i]));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
  __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

static inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

// Four horizontal sums at once: lanes of the result are sum(a), sum(b), sum(c), sum(e).
static inline __m128 hsum4x256(__m256 a, __m256 b, __m256 c, __m256 e) {
  __m256 ab = _mm256_hadd_ps(a, b);
  __m256 ce = _mm256_hadd_ps(c, e);
  __m256 abce = _mm256_hadd_ps(ab, ce);
  return _mm_add_ps(_mm256_castps256_ps128(abce), _mm256_extractf128_ps(abce, 1));
}

static void convertHalfRows(const uint16_t* src, int64_t count, float* dst) {
  int64_t i = 0;
  for (; i + 8 <= count; i += 8) {
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
  }
  for (; i < count; ++i) dst[i] = _cvtsh_ss(src[i]);
}

// Key and value rows are read as stored: fp32, or fp16 converted by F16C inside the load (no conversion tile).
static inline __m256 load8(const float* x) { return _mm256_loadu_ps(x); }
static inline __m256 load8(const uint16_t* x) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x)));
}
static inline float load1(const float* x) { return *x; }
static inline float load1(const uint16_t* x) { return _cvtsh_ss(*x); }

template <typename K>
static inline void dot4x1(const float* q0, const float* q1, const float* q2, const float* q3, const K* k, int d,
                          float* out) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
  int i = 0;
  for (; i + 8 <= d; i += 8) {
    __m256 kv = load8(k + i);
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q0 + i), kv, a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q1 + i), kv, a1);
    a2 = _mm256_fmadd_ps(_mm256_loadu_ps(q2 + i), kv, a2);
    a3 = _mm256_fmadd_ps(_mm256_loadu_ps(q3 + i), kv, a3);
  }
  float r[4];
  _mm_storeu_ps(r, hsum4x256(a0, a1, a2, a3));
  for (; i < d; ++i) {
    r[0] += q0[i] * load1(k + i);
    r[1] += q1[i] * load1(k + i);
    r[2] += q2[i] * load1(k + i);
    r[3] += q3[i] * load1(k + i);
  }
  out[0] = r[0];
  out[1] = r[1];
  out[2] = r[2];
  out[3] = r[3];
}

template <typename K>
static inline void dot1x4(const float* q, const K* k, int d, float* out) {
  const K* k1 = k + d;
  const K* k2 = k1 + d;
  const K* k3 = k2 + d;
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
  int i = 0;
  for (; i + 8 <= d; i += 8) {
    __m256 qv = _mm256_loadu_ps(q + i);
    a0 = _mm256_fmadd_ps(qv, load8(k + i), a0);
    a1 = _mm256_fmadd_ps(qv, load8(k1 + i), a1);
    a2 = _mm256_fmadd_ps(qv, load8(k2 + i), a2);
    a3 = _mm256_fmadd_ps(qv, load8(k3 + i), a3);
  }
  float r[4];
  _mm_storeu_ps(r, hsum4x256(a0, a1, a2, a3));
  for (; i < d; ++i) {
    r[0] += q[i] * load1(k + i);
    r[1] += q[i] * load1(k1 + i);
    r[2] += q[i] * load1(k2 + i);
    r[3] += q[i] * load1(k3 + i);
  }
  out[0] = r[0];
  out[1] = r[1];
  out[2] = r[2];
  out[3] = r[3];
}

template <typename K>
static inline float dot1x1(const float* q, const K* k, int d) {
  __m256 a = _mm256_setzero_ps();
  int i = 0;
  for (; i + 8 <= d; i += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), load8(k + i), a);
  float r = hsum256(a);
  for (; i < d; ++i) r += q[i] * load1(k + i);
  return r;
}

// x[j] = exp(x[j] − shift) for j < n; returns the sum.
static inline float expShiftSum(float* x, int n, float shift) {
  const __m256 sv = _mm256_set1_ps(shift);
  __m256 total = _mm256_setzero_ps();
  int j = 0;
  for (; j + 8 <= n; j += 8) {
    __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + j), sv));
    _mm256_storeu_ps(x + j, e);
    total = _mm256_add_ps(total, e);
  }
  float sum = hsum256(total);
  for (; j < n; ++j) {
    float e = expf(x[j] - shift);
    x[j] = e;
    sum += e;
  }
  return sum;
}

static inline float maxOf(const float* x, int n) {
  __m256 m = _mm256_set1_ps(-INFINITY);
  int j = 0;
  for (; j + 8 <= n; j += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + j));
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
  float r = _mm_cvtss_f32(h);
  for (; j < n; ++j) r = maxf(r, x[j]);
  return r;
}

static inline void scaleBiasRow(float* s, const float* bias, int n, float scale) {
  const __m256 sc = _mm256_set1_ps(scale);
  int j = 0;
  for (; j + 8 <= n; j += 8) _mm256_storeu_ps(s + j, _mm256_fmadd_ps(_mm256_loadu_ps(s + j), sc, _mm256_loadu_ps(bias + j)));
  for (; j < n; ++j) s[j] = s[j] * scale + bias[j];
}

static inline void scaleRow(float* acc, float alpha, int d) {
  const __m256 a = _mm256_set1_ps(alpha);
  int i = 0;
  for (; i + 8 <= d; i += 8) _mm256_storeu_ps(acc + i, _mm256_mul_ps(_mm256_loadu_ps(acc + i), a));
  for (; i < d; ++i) acc[i] *= alpha;
}

// acc[c0..d) += Σ_j p[j] · v[j*d + c0 .. j*d + d): 8 accumulators (64 lanes) per pass over the tile.
template <typename V>
static inline void accumulateRowsFrom(float* acc, const float* p, const V* v, int n, int d, int c) {
  for (; c + 64 <= d; c += 64) {
    __m256 a[8];
    for (int u = 0; u < 8; ++u) a[u] = _mm256_loadu_ps(acc + c + 8 * u);
    const V* row = v + c;
    for (int j = 0; j < n; ++j, row += d) {
      const __m256 w = _mm256_broadcast_ss(p + j);
      for (int u = 0; u < 8; ++u) a[u] = _mm256_fmadd_ps(w, load8(row + 8 * u), a[u]);
    }
    for (int u = 0; u < 8; ++u) _mm256_storeu_ps(acc + c + 8 * u, a[u]);
  }
  for (; c + 32 <= d; c += 32) {
    __m256 a0 = _mm256_loadu_ps(acc + c), a1 = _mm256_loadu_ps(acc + c + 8);
    __m256 a2 = _mm256_loadu_ps(acc + c + 16), a3 = _mm256_loadu_ps(acc + c + 24);
    const V* row = v + c;
    for (int j = 0; j < n; ++j, row += d) {
      const __m256 w = _mm256_broadcast_ss(p + j);
      a0 = _mm256_fmadd_ps(w, load8(row), a0);
      a1 = _mm256_fmadd_ps(w, load8(row + 8), a1);
      a2 = _mm256_fmadd_ps(w, load8(row + 16), a2);
      a3 = _mm256_fmadd_ps(w, load8(row + 24), a3);
    }
    _mm256_storeu_ps(acc + c, a0);
    _mm256_storeu_ps(acc + c + 8, a1);
    _mm256_storeu_ps(acc + c + 16, a2);
    _mm256_storeu_ps(acc + c + 24, a3);
  }
  for (; c + 8 <= d; c += 8) {
    __m256 a0 = _mm256_loadu_ps(acc + c);
    const V* row = v + c;
    for (int j = 0; j < n; ++j, row += d) a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(p + j), load8(row), a0);
    _mm256_storeu_ps(acc + c, a0);
  }
  for (; c < d; ++c) {
    float a = acc[c];
    for (int j = 0; j < n; ++j) a += p[j] * load1(v + static_cast<int64_t>(j) * d + c);
    acc[c] = a;
  }
}

template <typename V>
static inline void accumulateRows(float* acc, const float* p, const V* v, int n, int d) {
  accumulateRowsFrom(acc, p, v, n, d, 0);
}

// Register-blocked dot products: 8 independent accumulators hide the FMA latency; each loaded key or query chunk
// feeds several FMAs. Results: out[i * stride + j] = q_i · k_j.
template <typename K>
static inline void dot4x2(const float* const* q, const K* k, int d, float* out0, float* out1, float* out2,
                          float* out3) {
  const K* k1 = k + d;
  __m256 a00 = _mm256_setzero_ps(), a01 = _mm256_setzero_ps(), a10 = _mm256_setzero_ps(), a11 = _mm256_setzero_ps();
  __m256 a20 = _mm256_setzero_ps(), a21 = _mm256_setzero_ps(), a30 = _mm256_setzero_ps(), a31 = _mm256_setzero_ps();
  int i = 0;
  for (; i + 8 <= d; i += 8) {
    const __m256 x0 = load8(k + i), x1 = load8(k1 + i);
    __m256 qv = _mm256_loadu_ps(q[0] + i);
    a00 = _mm256_fmadd_ps(qv, x0, a00);
    a01 = _mm256_fmadd_ps(qv, x1, a01);
    qv = _mm256_loadu_ps(q[1] + i);
    a10 = _mm256_fmadd_ps(qv, x0, a10);
    a11 = _mm256_fmadd_ps(qv, x1, a11);
    qv = _mm256_loadu_ps(q[2] + i);
    a20 = _mm256_fmadd_ps(qv, x0, a20);
    a21 = _mm256_fmadd_ps(qv, x1, a21);
    qv = _mm256_loadu_ps(q[3] + i);
    a30 = _mm256_fmadd_ps(qv, x0, a30);
    a31 = _mm256_fmadd_ps(qv, x1, a31);
  }
  float r[8];
  _mm_storeu_ps(r, hsum4x256(a00, a10, a20, a30));
  _mm_storeu_ps(r + 4, hsum4x256(a01, a11, a21, a31));
  for (; i < d; ++i) {
    for (int c = 0; c < 4; ++c) {
      r[c] += q[c][i] * load1(k + i);
      r[4 + c] += q[c][i] * load1(k1 + i);
    }
  }
  out0[0] = r[0];
  out1[0] = r[1];
  out2[0] = r[2];
  out3[0] = r[3];
  out0[1] = r[4];
  out1[1] = r[5];
  out2[1] = r[6];
  out3[1] = r[7];
}

template <typename K>
static inline void dot2x4(const float* q0, const float* q1, const K* k, int d, float* out0, float* out1) {
  const K* k1 = k + d;
  const K* k2 = k1 + d;
  const K* k3 = k2 + d;
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
  __m256 b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps(), b2 = _mm256_setzero_ps(), b3 = _mm256_setzero_ps();
  int i = 0;
  for (; i + 8 <= d; i += 8) {
    const __m256 x0 = load8(k + i), x1 = load8(k1 + i);
    const __m256 x2 = load8(k2 + i), x3 = load8(k3 + i);
    const __m256 u = _mm256_loadu_ps(q0 + i), w = _mm256_loadu_ps(q1 + i);
    a0 = _mm256_fmadd_ps(u, x0, a0);
    a1 = _mm256_fmadd_ps(u, x1, a1);
    a2 = _mm256_fmadd_ps(u, x2, a2);
    a3 = _mm256_fmadd_ps(u, x3, a3);
    b0 = _mm256_fmadd_ps(w, x0, b0);
    b1 = _mm256_fmadd_ps(w, x1, b1);
    b2 = _mm256_fmadd_ps(w, x2, b2);
    b3 = _mm256_fmadd_ps(w, x3, b3);
  }
  _mm_storeu_ps(out0, hsum4x256(a0, a1, a2, a3));
  _mm_storeu_ps(out1, hsum4x256(b0, b1, b2, b3));
  for (; i < d; ++i) {
    out0[0] += q0[i] * load1(k + i);
    out0[1] += q0[i] * load1(k1 + i);
    out0[2] += q0[i] * load1(k2 + i);
    out0[3] += q0[i] * load1(k3 + i);
    out1[0] += q1[i] * load1(k + i);
    out1[1] += q1[i] * load1(k1 + i);
    out1[2] += q1[i] * load1(k2 + i);
    out1[3] += q1[i] * load1(k3 + i);
  }
}

template <typename K>
static inline void dot1x8(const float* q, const K* k, int d, float* out) {
  __m256 a[8];
  for (int c = 0; c < 8; ++c) a[c] = _mm256_setzero_ps();
  int i = 0;
  for (; i + 8 <= d; i += 8) {
    const __m256 qv = _mm256_loadu_ps(q + i);
    for (int c = 0; c < 8; ++c) a[c] = _mm256_fmadd_ps(qv, load8(k + static_cast<int64_t>(c) * d + i), a[c]);
  }
  _mm_storeu_ps(out, hsum4x256(a[0], a[1], a[2], a[3]));
  _mm_storeu_ps(out + 4, hsum4x256(a[4], a[5], a[6], a[7]));
  for (; i < d; ++i)
    for (int c = 0; c < 8; ++c) out[c] += q[i] * load1(k + static_cast<int64_t>(c) * d + i);
}

// acc0 += Σ_j p0[j] v_j and acc1 += Σ_j p1[j] v_j for j < n: two queries share every loaded value chunk.
template <typename V>
static inline void accumulateRows2(float* acc0, float* acc1, const float* p0, const float* p1, const V* v, int n,
                                   int d) {
  int c = 0;
  for (; c + 32 <= d; c += 32) {
    __m256 a0 = _mm256_loadu_ps(acc0 + c), a1 = _mm256_loadu_ps(acc0 + c + 8);
    __m256 a2 = _mm256_loadu_ps(acc0 + c + 16), a3 = _mm256_loadu_ps(acc0 + c + 24);
    __m256 b0 = _mm256_loadu_ps(acc1 + c), b1 = _mm256_loadu_ps(acc1 + c + 8);
    __m256 b2 = _mm256_loadu_ps(acc1 + c + 16), b3 = _mm256_loadu_ps(acc1 + c + 24);
    const V* row = v + c;
    for (int j = 0; j < n; ++j, row += d) {
      const __m256 x0 = load8(row), x1 = load8(row + 8);
      const __m256 x2 = load8(row + 16), x3 = load8(row + 24);
      const __m256 u = _mm256_broadcast_ss(p0 + j), w = _mm256_broadcast_ss(p1 + j);
      a0 = _mm256_fmadd_ps(u, x0, a0);
      a1 = _mm256_fmadd_ps(u, x1, a1);
      a2 = _mm256_fmadd_ps(u, x2, a2);
      a3 = _mm256_fmadd_ps(u, x3, a3);
      b0 = _mm256_fmadd_ps(w, x0, b0);
      b1 = _mm256_fmadd_ps(w, x1, b1);
      b2 = _mm256_fmadd_ps(w, x2, b2);
      b3 = _mm256_fmadd_ps(w, x3, b3);
    }
    _mm256_storeu_ps(acc0 + c, a0);
    _mm256_storeu_ps(acc0 + c + 8, a1);
    _mm256_storeu_ps(acc0 + c + 16, a2);
    _mm256_storeu_ps(acc0 + c + 24, a3);
    _mm256_storeu_ps(acc1 + c, b0);
    _mm256_storeu_ps(acc1 + c + 8, b1);
    _mm256_storeu_ps(acc1 + c + 16, b2);
    _mm256_storeu_ps(acc1 + c + 24, b3);
  }
  if (c < d) {
    accumulateRowsFrom(acc0, p0, v, n, d, c);
    accumulateRowsFrom(acc1, p1, v, n, d, c);
  }
}

static double sumArrayImpl(const float* x, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i));
    a1 = _mm256_add_ps(a1, _mm256_loadu_ps(x + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_loadu_ps(x + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_loadu_ps(x + i + 24));
  }
  double s = hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  for (; i < n; ++i) s += x[i];
  return s;
}

#else  // portable loops

static void convertHalfRows(const uint16_t* src, int64_t count, float* dst) {
  for (int64_t i = 0; i < count; ++i) dst[i] = halfToFloatScalar(src[i]);
}

static inline float dot1x1(const float* q, const float* k, int d) {
  float r = 0.0f;
#pragma omp simd reduction(+ : r)
  for (int i = 0; i < d; ++i) r += q[i] * k[i];
  return r;
}

static inline void dot4x1(const float* q0, const float* q1, const float* q2, const float* q3, const float* k, int d,
                          float* out) {
  out[0] = dot1x1(q0, k, d);
  out[1] = dot1x1(q1, k, d);
  out[2] = dot1x1(q2, k, d);
  out[3] = dot1x1(q3, k, d);
}

static inline void dot1x4(const float* q, const float* k, int d, float* out) {
  for (int r = 0; r < 4; ++r) out[r] = dot1x1(q, k + static_cast<int64_t>(r) * d, d);
}

static inline float expShiftSum(float* x, int n, float shift) {
  float sum = 0.0f;
  for (int j = 0; j < n; ++j) {
    float e = expf(x[j] - shift);
    x[j] = e;
    sum += e;
  }
  return sum;
}

static inline float maxOf(const float* x, int n) {
  float r = -INFINITY;
  for (int j = 0; j < n; ++j) r = maxf(r, x[j]);
  return r;
}

static inline void scaleBiasRow(float* s, const float* bias, int n, float scale) {
  for (int j = 0; j < n; ++j) s[j] = s[j] * scale + bias[j];
}

static inline void scaleRow(float* acc, float alpha, int d) {
  for (int i = 0; i < d; ++i) acc[i] *= alpha;
}

static inline void accumulateRows(float* acc, const float* p, const float* v, int n, int d) {
  for (int j = 0; j < n; ++j) {
    const float w = p[j];
    const float* row = v + static_cast<int64_t>(j) * d;
#pragma omp simd
    for (int i = 0; i < d; ++i) acc[i] += w * row[i];
  }
}

static inline void dot4x2(const float* const* q, const float* k, int d, float* out0, float* out1, float* out2,
                          float* out3) {
  float* outs[4] = {out0, out1, out2, out3};
  for (int c = 0; c < 4; ++c) {
    outs[c][0] = dot1x1(q[c], k, d);
    outs[c][1] = dot1x1(q[c], k + d, d);
  }
}

static inline void dot2x4(const float* q0, const float* q1, const float* k, int d, float* out0, float* out1) {
  dot1x4(q0, k, d, out0);
  dot1x4(q1, k, d, out1);
}

static inline void dot1x8(const float* q, const float* k, int d, float* out) {
  dot1x4(q, k, d, out);
  dot1x4(q, k + static_cast<int64_t>(4) * d, d, out + 4);
}

static inline void accumulateRows2(float* acc0, float* acc1, const float* p0, const float* p1, const float* v, int n,
                                   int d) {
  accumulateRows(acc0, p0, v, n, d);
  accumulateRows(acc1, p1, v, n, d);
}

static double sumArrayImpl(const float* x, int64_t n) {
  float s = 0.0f;
  double total = 0.0;
  for (int64_t i = 0; i < n;) {
    int64_t end = i + 4096 < n ? i + 4096 : n;
#pragma omp simd reduction(+ : s)
    for (int64_t j = i; j < end; ++j) s += x[j];
    total += s;
    s = 0.0f;
    i = end;
  }
  return total;
}

#endif

// ---- shared tile logic -------------------------------------------------------------------------------------

// Rows [j0, j0 + nt) of a head's keys or values as fp32: the stored rows themselves, or fp16 converted into scratch.
static inline const float* tileRows(const void* base, DType dtype, int64_t j0, int nt, int d, float* scratch) {
  const int64_t offset = j0 * d;
  if (dtype == DType::F32) return static_cast<const float*>(base) + offset;
  convertHalfRows(static_cast<const uint16_t*>(base) + offset, static_cast<int64_t>(nt) * d, scratch);
  return scratch;
}

#ifndef PA_AVX512  // the AVX-512 table has its own blocking and prefetch, above

// These kernels leave prefetching to processTiles (a burst per fp32 tile): no `ahead` rows to request.
static constexpr bool kInterleavedPrefetch = false;

// scores[r * kTile + j] = q_r · k_j for the queries in `active` (indices into queries) and j < nt: blocks of
// 4 queries × 2 keys, then 2 × 4, then 1 × 8, so every block keeps 8 accumulators busy.
template <typename K>
static inline void tileDots(const float* const* queries, const int* active, int activeCount, const K* keys,
                            const char*, int nt, int d, float* scores) {
  int a = 0;
  for (; a + 4 <= activeCount; a += 4) {
    const float* q4[4] = {queries[active[a]], queries[active[a + 1]], queries[active[a + 2]], queries[active[a + 3]]};
    float* rows[4] = {scores + active[a] * kTile, scores + active[a + 1] * kTile, scores + active[a + 2] * kTile,
                      scores + active[a + 3] * kTile};
    int j = 0;
    for (; j + 2 <= nt; j += 2)
      dot4x2(q4, keys + static_cast<int64_t>(j) * d, d, rows[0] + j, rows[1] + j, rows[2] + j, rows[3] + j);
    if (j < nt) {
      float dots[4];
      dot4x1(q4[0], q4[1], q4[2], q4[3], keys + static_cast<int64_t>(j) * d, d, dots);
      for (int c = 0; c < 4; ++c) rows[c][j] = dots[c];
    }
  }
  for (; a + 2 <= activeCount; a += 2) {
    const float* q0 = queries[active[a]];
    const float* q1 = queries[active[a + 1]];
    float* row0 = scores + active[a] * kTile;
    float* row1 = scores + active[a + 1] * kTile;
    int j = 0;
    for (; j + 4 <= nt; j += 4) dot2x4(q0, q1, keys + static_cast<int64_t>(j) * d, d, row0 + j, row1 + j);
    for (; j < nt; ++j) {
      row0[j] = dot1x1(q0, keys + static_cast<int64_t>(j) * d, d);
      row1[j] = dot1x1(q1, keys + static_cast<int64_t>(j) * d, d);
    }
  }
  for (; a < activeCount; ++a) {
    const float* q = queries[active[a]];
    float* row = scores + active[a] * kTile;
    int j = 0;
    for (; j + 8 <= nt; j += 8) dot1x8(q, keys + static_cast<int64_t>(j) * d, d, row + j);
    for (; j + 4 <= nt; j += 4) dot1x4(q, keys + static_cast<int64_t>(j) * d, d, row + j);
    for (; j < nt; ++j) row[j] = dot1x1(q, keys + static_cast<int64_t>(j) * d, d);
  }
}

// Queries per pass over a value tile, and the pass: acc_i += Σ_{j<n} p_i[j] · v_j for count ≤ kValueQueries.
static constexpr int kValueQueries = 2;
template <typename V>
static inline void accumulateRowsSet(float* const* acc, const float* const* p, int count, const V* v, const char*,
                                     int n, int d) {
  if (count == 2)
    accumulateRows2(acc[0], acc[1], p[0], p[1], v, n, d);
  else
    accumulateRows(acc[0], p[0], v, n, d);
}

#endif

// AVX2 and portable kernels: asks for the fp32 keys and values of the tile at j0 while earlier ones are computed: the
// hardware prefetchers alone leave a core waiting on DRAM latency between tiles. Measured on the GQA shape: 2 tiles
// ahead beats 1 and none for fp32; for fp16 it was slower on both machines measured, so fp16 rows are left to the
// hardware. The AVX-512 kernels spread their requests instead (prefetchLines).
static constexpr int kPrefetchTiles = 2;
static inline void prefetchTile(const HeadView& h, int64_t j0, int64_t keyEnd, int d) {
#if defined(__GNUC__) || defined(__clang__)
  const int64_t rows = keyEnd - j0 < kTile ? keyEnd - j0 : kTile;
  const int64_t bytes = rows * d * static_cast<int64_t>(sizeof(float));
  const char* k = static_cast<const char*>(h.keys) + j0 * d * static_cast<int64_t>(sizeof(float));
  const char* v = static_cast<const char*>(h.values) + j0 * d * static_cast<int64_t>(sizeof(float));
  for (int64_t b = 0; b < bytes; b += 64) {
    __builtin_prefetch(k + b, 0, 3);
    __builtin_prefetch(v + b, 0, 3);
  }
#else
  (void)h, (void)j0, (void)keyEnd, (void)d;
#endif
}

static inline int visibleInTile(int64_t limit, int64_t j0, int nt) {
  int64_t v = limit - j0;
  return v <= 0 ? 0 : (v >= nt ? nt : static_cast<int>(v));
}

// Rows [j0, j0 + nt) of a head's keys or values in the form the micro-kernels read: fp32 rows in place; fp16 rows
// in place with the AVX2 kernels (F16C in the loads), converted into scratch with the portable ones.
struct F32Rows {
  using Element = float;
  static const float* tile(const void* base, int64_t j0, int, int d, float*) {
    return static_cast<const float*>(base) + j0 * d;
  }
};
struct F16Rows {
#if defined(PA_AVX2) || defined(PA_AVX512)
  using Element = uint16_t;
  static const uint16_t* tile(const void* base, int64_t j0, int, int d, float*) {
    return static_cast<const uint16_t*>(base) + j0 * d;
  }
#else
  using Element = float;
  static const float* tile(const void* base, int64_t j0, int nt, int d, float* scratch) {
    convertHalfRows(static_cast<const uint16_t*>(base) + j0 * d, static_cast<int64_t>(nt) * d, scratch);
    return scratch;
  }
#endif
};

template <typename Rows>
static void processTiles(const Problem& p, int kvHead, int64_t keyBegin, int64_t keyEnd, const QuerySet& qs,
                         const Scratch& s) {
  using Element = typename Rows::Element;
  const HeadView& h = p.heads[kvHead];
  const int d = p.headDim;
  int active[kMaxQuerySet];
  for (int64_t j0 = keyBegin; j0 < keyEnd; j0 += kTile) {
    const int nt = static_cast<int>(keyEnd - j0 < kTile ? keyEnd - j0 : kTile);
    int activeCount = 0;
    for (int r = 0; r < qs.count; ++r)
      if (qs.keyLimit[r] > j0) active[activeCount++] = r;
    if (activeCount == 0) break;  // no query sees this tile, hence none sees a later one
    // Rows kPrefetchTiles tiles on, for kernels that request them as they go: none once that tile starts past the
    // range's end; the rest of a partial tile may be requested too (a prefetch never faults).
    const bool ahead = kInterleavedPrefetch && j0 + kPrefetchTiles * kTile < keyEnd;
    const int64_t rowBytes = d * static_cast<int64_t>(p.dtype == DType::F32 ? sizeof(float) : sizeof(uint16_t));
    const int64_t aheadOffset = (j0 + kPrefetchTiles * kTile) * rowBytes;
    const char* keysAhead = ahead ? static_cast<const char*>(h.keys) + aheadOffset : nullptr;
    const char* valuesAhead = ahead ? static_cast<const char*>(h.values) + aheadOffset : nullptr;
    if (!kInterleavedPrefetch && p.dtype == DType::F32 && j0 + kPrefetchTiles * kTile < keyEnd)
      prefetchTile(h, j0 + kPrefetchTiles * kTile, keyEnd, d);
    const Element* keys = Rows::tile(h.keys, j0, nt, d, s.keyTile);
    tileDots(qs.queries, active, activeCount, keys, keysAhead, nt, d, s.scores);
    const Element* values = Rows::tile(h.values, j0, nt, d, s.valueTile);
    const float* bias = h.logSizes + j0;
    // Online softmax: scores → probabilities against the running max, rescaling earlier sums when it moves.
    // IEEE all the way, like the reference: while every logit so far is −∞ (masked) the weights are exp(−∞) = 0 and
    // the value rows still go through P·V (0 × NaN is NaN); a NaN logit (which maxOf may drop) or ∞ − ∞ makes the
    // tile's sum NaN, and then the running max is set to NaN for good, so the row ends NaN and never counts as
    // fully masked (runMax still −∞ at the end). No per-element test: a select or two per query and tile.
    for (int a = 0; a < activeCount; ++a) {
      const int r = active[a];
      const int nv = visibleInTile(qs.keyLimit[r], j0, nt);
      float* sc = s.scores + r * kTile;
      scaleBiasRow(sc, bias, nv, p.scale);
      if (qs.logits != nullptr) memcpy(qs.logits + r * qs.logitStride + j0, sc, sizeof(float) * nv);
      const float tileMax = maxOf(sc, nv);
      const float oldMax = qs.runMax[r];
      const float newMax = maxKeepNaN(oldMax, tileMax);
      const float tileSum = expShiftSum(sc, nv, newMax == -INFINITY ? 0.0f : newMax);
      if (oldMax != newMax) {
        const float alpha = oldMax == -INFINITY ? 0.0f : expf(oldMax - newMax);
        qs.runSum[r] *= alpha;
        scaleRow(qs.acc + static_cast<int64_t>(r) * d, alpha, d);
      }
      qs.runSum[r] += tileSum;
      qs.runMax[r] = tileSum == tileSum ? newMax : NAN;
    }
    // acc += P·V, kValueQueries queries per pass over the value tile (the first pass prefetches). Sorted by visible
    // keys (they differ in causal prefill): keys [n_{i−1}, n_i) go to the queries i.. of the group, so no query reads
    // a key it may not see.
    for (int a = 0; a < activeCount; a += kValueQueries, valuesAhead = nullptr) {
      const int count = activeCount - a < kValueQueries ? activeCount - a : kValueQueries;
      int rows[kValueQueries], visible[kValueQueries];
      for (int i = 0; i < count; ++i) {
        int k = i;
        const int r = active[a + i], n = visibleInTile(qs.keyLimit[r], j0, nt);
        for (; k > 0 && visible[k - 1] > n; --k) {
          rows[k] = rows[k - 1];
          visible[k] = visible[k - 1];
        }
        rows[k] = r;
        visible[k] = n;
      }
      float* acc[kValueQueries];
      const float* probs[kValueQueries];
      for (int i = 0; i < count; ++i) {
        acc[i] = qs.acc + static_cast<int64_t>(rows[i]) * d;
        probs[i] = s.scores + rows[i] * kTile;
      }
      for (int i = 0, done = 0; i < count; done = visible[i++]) {
        if (visible[i] == done) continue;
        for (int k = i; k < count; ++k) probs[k] = s.scores + rows[k] * kTile + done;
        const char* rowsAhead = valuesAhead != nullptr ? valuesAhead + done * rowBytes : nullptr;
        accumulateRowsSet(acc + i, probs + i, count - i, values + static_cast<int64_t>(done) * d, rowsAhead,
                          visible[i] - done, d);
      }
    }
  }
}

static void processQuerySetImpl(const Problem& p, int kvHead, int64_t keyBegin, int64_t keyEnd, const QuerySet& qs,
                                const Scratch& s) {
  if (p.dtype == DType::F32)
    processTiles<F32Rows>(p, kvHead, keyBegin, keyEnd, qs, s);
  else
    processTiles<F16Rows>(p, kvHead, keyBegin, keyEnd, qs, s);
}

static void accumulateMassImpl(const Problem& p, int kvHead, int64_t keyBegin, int64_t keyEnd,
                               const float* const* queries, const int64_t* keyLimit, const float* finalMax,
                               const float* finalSum, int count, float* mass, const Scratch& s) {
  const HeadView& h = p.heads[kvHead];
  const int d = p.headDim;
  int active[kMaxQuerySet];
  for (int64_t j0 = keyBegin; j0 < keyEnd; j0 += kTile) {
    const int nt = static_cast<int>(keyEnd - j0 < kTile ? keyEnd - j0 : kTile);
    int activeCount = 0;
    for (int r = 0; r < count; ++r)
      if (keyLimit[r] > j0 && finalMax[r] != -INFINITY) active[activeCount++] = r;  // NaN rows give NaN masses
    if (activeCount == 0) continue;
    const float* keys = tileRows(h.keys, p.dtype, j0, nt, d, s.keyTile);
    tileDots(queries, active, activeCount, keys, nullptr, nt, d, s.scores);
    const float* bias = h.logSizes + j0;
    for (int a = 0; a < activeCount; ++a) {
      const int r = active[a];
      const int nv = visibleInTile(keyLimit[r], j0, nt);
      float* sc = s.scores + r * kTile;
      scaleBiasRow(sc, bias, nv, p.scale);
      expShiftSum(sc, nv, finalMax[r]);
      const float inv = 1.0f / finalSum[r];
      float* m = mass + j0;
      for (int j = 0; j < nv; ++j) m[j] += sc[j] * inv;
    }
  }
}

static void massFromLogitsImpl(const float* logits, int64_t stride, int count, const float* finalMax,
                               const float* finalSum, int64_t keyBegin, int64_t keyEnd, float* mass) {
  float buffer[kTile];
  for (int64_t j0 = keyBegin; j0 < keyEnd; j0 += kTile) {
    const int nt = static_cast<int>(keyEnd - j0 < kTile ? keyEnd - j0 : kTile);
    float* m = mass + j0;
    for (int j = 0; j < nt; ++j) m[j] = 0.0f;
    for (int r = 0; r < count; ++r) {
      if (finalMax[r] == -INFINITY) continue;  // fully masked: no mass; a NaN row gives NaN masses
      memcpy(buffer, logits + r * stride + j0, sizeof(float) * nt);
      expShiftSum(buffer, nt, finalMax[r]);
      const float inv = 1.0f / finalSum[r];
      for (int j = 0; j < nt; ++j) m[j] += buffer[j] * inv;
    }
  }
}
