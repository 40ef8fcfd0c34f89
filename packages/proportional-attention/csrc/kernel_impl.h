// Attention hot loops. Included once per instruction set inside its own namespace: PA_AVX2 selects the
// AVX2/FMA/F16C micro-kernels, otherwise portable loops (auto-vectorised for the baseline ISA).
// Only plain loops and intrinsics here: no std templates, so nothing compiled for AVX2 can leak into shared symbols.

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

#ifdef PA_AVX2

static inline __m256 exp256(__m256 x) {
  // Cephes expf: range reduction by ln2 (two-part constant) and a degree-5 polynomial; ~1 ulp in float.
  const __m256 hi = _mm256_set1_ps(88.3762626647949f);
  const __m256 lo = _mm256_set1_ps(-88.3762626647949f);
  x = _mm256_min_ps(hi, _mm256_max_ps(lo, x));  // operand order keeps NaN flowing through
  __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                              _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
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

// scores[r * kTile + j] = q_r · k_j for the queries in `active` (indices into queries) and j < nt: blocks of
// 4 queries × 2 keys, then 2 × 4, then 1 × 8, so every block keeps 8 accumulators busy.
template <typename K>
static inline void tileDots(const float* const* queries, const int* active, int activeCount, const K* keys, int nt,
                            int d, float* scores) {
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

// Asks for the fp32 keys and values of the tile at j0 while earlier ones are computed: the hardware prefetchers
// alone leave a core waiting on DRAM latency between tiles. Measured on the GQA shape: 2 tiles ahead beats 1 and
// none for fp32; for fp16 it was slower on both machines measured, so fp16 rows are left to the hardware.
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
#ifdef PA_AVX2
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
    if (p.dtype == DType::F32 && j0 + kPrefetchTiles * kTile < keyEnd)
      prefetchTile(h, j0 + kPrefetchTiles * kTile, keyEnd, d);
    const Element* keys = Rows::tile(h.keys, j0, nt, d, s.keyTile);
    tileDots(qs.queries, active, activeCount, keys, nt, d, s.scores);
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
    // acc += P·V, two queries per pass over the value tile.
    int a = 0;
    for (; a + 2 <= activeCount; a += 2) {
      int r0 = active[a], r1 = active[a + 1];
      int n0 = visibleInTile(qs.keyLimit[r0], j0, nt), n1 = visibleInTile(qs.keyLimit[r1], j0, nt);
      if (n0 > n1) {
        const int tr = r0;
        r0 = r1;
        r1 = tr;
        const int tn = n0;
        n0 = n1;
        n1 = tn;
      }
      float* acc0 = qs.acc + static_cast<int64_t>(r0) * d;
      float* acc1 = qs.acc + static_cast<int64_t>(r1) * d;
      const float* p0 = s.scores + r0 * kTile;
      const float* p1 = s.scores + r1 * kTile;
      accumulateRows2(acc0, acc1, p0, p1, values, n0, d);
      if (n1 > n0) accumulateRows(acc1, p1 + n0, values + static_cast<int64_t>(n0) * d, n1 - n0, d);
    }
    if (a < activeCount) {
      const int r = active[a];
      accumulateRows(qs.acc + static_cast<int64_t>(r) * d, s.scores + r * kTile, values,
                     visibleInTile(qs.keyLimit[r], j0, nt), d);
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
    tileDots(queries, active, activeCount, keys, nt, d, s.scores);
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
