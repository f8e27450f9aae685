// PROTOTYPES kept as a benchmark (benchmarks/bench_fused_cec_unit.py), not used by the pipeline.
// One MM-3DUNet CEC unit (C = 8 -> 96 -> 8, float32, batch 1, AVX-512, H % 8 == 0, W % 64 == 0) fused:
// expand 1x1x1 -> InstanceNorm -> LeakyReLU -> depthwise 3x3x3 -> InstanceNorm -> LeakyReLU -> project 1x1x1
// + bias + residual. The first norm's statistics come analytically from the input's mean and covariance;
// pass A computes expand -> norm -> act -> depthwise per (y, x) tile in cache and accumulates the second
// norm's statistics in double precision. Two ways to finish (measured in docs/performance.md):
//   cec_recompute: pass B recomputes expand and depthwise and writes only the 8-channel output, so the
//                  96-channel tensors never reach DRAM (twice the expand/depthwise work);
//   cec_store:     pass A also writes the depthwise output ONCE (tile-major layout, optionally streaming
//                  stores) to a buffer the caller allocates once; pass B reads it back sequentially.
#include <torch/extension.h>
#include <omp.h>
#include <cmath>
#include <cstring>
#include <cstdlib>
#include <vector>
#include <immintrin.h>
#include <sys/mman.h>

constexpr int C = 8, HID = 96;
static inline float lrelu(float v) { return v > 0.f ? v : 0.01f * v; }

// Statistics of x: per 256-voxel row, float partial sums (16-lane vectors, 16 terms per lane),
// everything above that level accumulated in double precision. No fast-math.
static void x_stats(const float* x, long N, double* mu, double* cov) {
  double s[C] = {0}, m[C][C] = {{0}};
  const long ROW = 256;
  int pc[36], pd[36], np = 0;
  for (int c = 0; c < C; c++) for (int d = 0; d <= c; d++) { pc[np] = c; pd[np] = d; np++; }
#pragma omp parallel
  {
    double ls[C] = {0}, lm[36] = {0};
#pragma omp for schedule(static)
    for (long r = 0; r < N / ROW; r++) {
      const float* p = x + r * ROW;
      __m512 as[C];
      for (int c = 0; c < C; c++) as[c] = _mm512_setzero_ps();
      for (int g = 0; g < 2; g++) {
        __m512 am[18];
        for (int q = 0; q < 18; q++) am[q] = _mm512_setzero_ps();
        for (long i = 0; i < ROW; i += 16) {
          __m512 v[C];
          for (int c = 0; c < C; c++) v[c] = _mm512_loadu_ps(p + c * N + i);
          if (g == 0) for (int c = 0; c < C; c++) as[c] = _mm512_add_ps(as[c], v[c]);
#pragma GCC unroll 18
          for (int q = 0; q < 18; q++) am[q] = _mm512_fmadd_ps(v[pc[g * 18 + q]], v[pd[g * 18 + q]], am[q]);
        }
        for (int q = 0; q < 18; q++) lm[g * 18 + q] += (double)_mm512_reduce_add_ps(am[q]);
      }
      for (int c = 0; c < C; c++) ls[c] += (double)_mm512_reduce_add_ps(as[c]);
    }
#pragma omp critical
    {
      for (int c = 0; c < C; c++) s[c] += ls[c];
      for (int q = 0; q < 36; q++) m[pc[q]][pd[q]] += lm[q];
    }
  }
  for (int c = 0; c < C; c++) mu[c] = s[c] / N;
  for (int c = 0; c < C; c++)
    for (int d = 0; d <= c; d++) { cov[c * C + d] = cov[d * C + c] = m[c][d] / N - mu[c] * mu[d]; }
}

static inline __m512 lrelu16(__m512 v) { return _mm512_max_ps(v, _mm512_mul_ps(v, _mm512_set1_ps(0.01f))); }

// expand (folded norm1) + leaky relu for NV vectors of 16 positions, all 96 channels
template <int NV>
static inline void expand_chunk(const float (*xs)[80], int v0, const float* __restrict W1f, const float* __restrict b1f,
                                float* __restrict R, int XS) {
  __m512 xv[C][NV];
  for (int c = 0; c < C; c++)
    for (int j = 0; j < NV; j++) xv[c][j] = _mm512_load_ps(&xs[c][16 * (v0 + j)]);
  for (int h = 0; h < HID; h++) {
    __m512 acc[NV];
    const __m512 b = _mm512_set1_ps(b1f[h]);
    for (int j = 0; j < NV; j++) acc[j] = b;
#pragma GCC unroll 8
    for (int c = 0; c < C; c++) {
      const __m512 w = _mm512_set1_ps(W1f[h * C + c]);
      for (int j = 0; j < NV; j++) acc[j] = _mm512_fmadd_ps(w, xv[c][j], acc[j]);
    }
    for (int j = 0; j < NV; j++) _mm512_store_ps(R + h * XS + 16 * (v0 + j), lrelu16(acc[j]));
  }
}

template <int TY, int TX, int RB, bool ALIGNR, bool NTA>
static void run_pass(bool passB, float* __restrict buf, const float* __restrict x, int D, int Hh, int W,
                     const float* __restrict W1f, const float* __restrict b1f, const float* __restrict wd,
                     const float* __restrict a2, const float* __restrict c2, const float* __restrict W2T /*[HID][C]*/,
                     const float* __restrict bias2, float* __restrict out, double* S, double* SS) {
  static_assert(TX == 64 && TY % RB == 0, "TX must be 64");
  constexpr int NXV = TX / 16;                 // 4 vectors per output row
  constexpr int XS = TX + 16;                  // 80: positions x0-1 .. x0+TX (+ junk), 16-aligned rows
  constexpr int PS = (TY + 2) * HID * XS;
  const int ny = Hh / TY, nx = W / TX;
  const long plane = (long)Hh * W, vol = (long)D * plane;
#pragma omp parallel
  {
    float* ring = (float*)std::aligned_alloc(64, sizeof(float) * 3 * PS + 64);
    alignas(64) float xs[C][80];
    float* vbuf = (float*)std::aligned_alloc(64, sizeof(float) * RB * HID * TX);  // [RB rows][HID][TX]
    std::vector<double> lS(HID, 0.0), lSS(HID, 0.0);
#pragma omp for schedule(static)
    for (int t = 0; t < ny * nx; t++) {
      const int y0 = (t / nx) * TY, x0 = (t % nx) * TX;
      auto expand = [&](int z, float* P) {
        if (z < 0 || z >= D) { std::memset(P, 0, sizeof(float) * PS); return; }
        for (int yy = 0; yy < TY + 2; yy++) {
          const int gy = y0 + yy - 1;
          float* R = P + yy * HID * XS;
          if (gy < 0 || gy >= Hh) { std::memset(R, 0, sizeof(float) * HID * XS); continue; }
          for (int c = 0; c < C; c++) {
            const float* src = x + c * vol + z * plane + (long)gy * W;
            for (int xx = 0; xx < 80; xx++) {
              const int gx = x0 + xx - 1;
              xs[c][xx] = (gx >= 0 && gx < W && xx < TX + 2) ? src[gx] : 0.f;
            }
          }
          expand_chunk<2>(xs, 0, W1f, b1f, R, XS);
          expand_chunk<2>(xs, 2, W1f, b1f, R, XS);
          expand_chunk<1>(xs, 4, W1f, b1f, R, XS);
          if (x0 == 0) for (int h = 0; h < HID; h++) R[h * XS] = 0.f;
          if (x0 + TX == W) for (int h = 0; h < HID; h++) R[h * XS + TX + 1] = 0.f;
        }
      };
      expand(-1, ring + 0 * PS);
      expand(0, ring + 1 * PS);
      for (int z = 0; z < D; z++) {
        const float* Pz[3] = {ring + (z % 3) * PS, ring + ((z + 1) % 3) * PS, ring + ((z + 2) % 3) * PS};
        expand(z + 1, ring + ((z + 2) % 3) * PS);
        for (int y = 0; y < TY; y += RB) {
          for (int h = 0; h < HID; h++) {
            __m512 a[RB][NXV];
            for (int k = 0; k < RB; k++)
              for (int j = 0; j < NXV; j++) a[k][j] = _mm512_setzero_ps();
            const float* wh = wd + h * 27;
#pragma GCC unroll 3
            for (int dz = 0; dz < 3; dz++) {
              __m512 w[9];
              for (int q = 0; q < 9; q++) w[q] = _mm512_set1_ps(wh[dz * 9 + q]);
#pragma GCC unroll 6
              for (int r = 0; r < RB + 2; r++) {
                const float* p = Pz[dz] + ((y + r) * HID + h) * XS;
                __m512 nx0 = _mm512_load_ps(p);
#pragma GCC unroll 4
                for (int j = 0; j < NXV; j++) {
                  const __m512 i0 = nx0;
                  __m512 i1, i2;
                  if (ALIGNR) {
                    nx0 = _mm512_load_ps(p + 16 * (j + 1));
                    i1 = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(nx0), _mm512_castps_si512(i0), 1));
                    i2 = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(nx0), _mm512_castps_si512(i0), 2));
                  } else {
                    nx0 = _mm512_load_ps(p + 16 * (j + 1));
                    i1 = _mm512_loadu_ps(p + 16 * j + 1); i2 = _mm512_loadu_ps(p + 16 * j + 2);
                  }
#pragma GCC unroll 4
                  for (int k = 0; k < RB; k++) {
                    const int dy = r - k;
                    if (dy >= 0 && dy <= 2)
                      a[k][j] = _mm512_fmadd_ps(w[dy * 3 + 2], i2, _mm512_fmadd_ps(w[dy * 3 + 1], i1, _mm512_fmadd_ps(w[dy * 3], i0, a[k][j])));
                  }
                }
              }
            }
            if (!passB) {
              if (buf != nullptr) {  // store-once: chunk = (tile, z, y-block), layout [k][jpair][h][32]
              float* chunk = buf + (((long)t * D + z) * (TY / RB) + y / RB) * (long)(HID * RB * TX);
              for (int k = 0; k < RB; k++)
                for (int j = 0; j < NXV; j++) {
                  float* q = chunk + ((long)(k * (NXV / 2) + j / 2) * HID + h) * 32 + (j & 1) * 16;
                  if (NTA) _mm512_stream_ps(q, a[k][j]); else _mm512_store_ps(q, a[k][j]);
                }
              }
              __m512 s = _mm512_setzero_ps(), ss = _mm512_setzero_ps();
              for (int k = 0; k < RB; k++)
                for (int j = 0; j < NXV; j++) { s = _mm512_add_ps(s, a[k][j]); ss = _mm512_fmadd_ps(a[k][j], a[k][j], ss); }
              // float partials over RB*TX values, then double accumulators
              lS[h] += (double)_mm512_reduce_add_ps(s);
              lSS[h] += (double)_mm512_reduce_add_ps(ss);
            } else {
              const __m512 aa = _mm512_set1_ps(a2[h]), cc = _mm512_set1_ps(c2[h]);
              for (int k = 0; k < RB; k++)
                for (int j = 0; j < NXV; j++)
                  _mm512_store_ps(vbuf + (k * HID + h) * TX + 16 * j, lrelu16(_mm512_fmadd_ps(aa, a[k][j], cc)));
            }
          }
          if (passB) {
            for (int rr = 0; rr < RB; rr++) {
              const long base = z * plane + (long)(y0 + y + rr) * W + x0;
              const float* vb = vbuf + rr * HID * TX;
              for (int j0 = 0; j0 < NXV; j0 += 2) {
                __m512 o[C][2];
                for (int c = 0; c < C; c++)
                  for (int j = 0; j < 2; j++)
                    o[c][j] = _mm512_add_ps(_mm512_set1_ps(bias2[c]), _mm512_loadu_ps(x + c * vol + base + 16 * (j0 + j)));
                for (int h = 0; h < HID; h++) {
                  const __m512 v0 = _mm512_load_ps(vb + h * TX + 16 * j0), v1 = _mm512_load_ps(vb + h * TX + 16 * (j0 + 1));
#pragma GCC unroll 8
                  for (int c = 0; c < C; c++) {
                    const __m512 w = _mm512_set1_ps(W2T[h * C + c]);
                    o[c][0] = _mm512_fmadd_ps(w, v0, o[c][0]);
                    o[c][1] = _mm512_fmadd_ps(w, v1, o[c][1]);
                  }
                }
                for (int c = 0; c < C; c++)
                  for (int j = 0; j < 2; j++) _mm512_storeu_ps(out + c * vol + base + 16 * (j0 + j), o[c][j]);
              }
            }
          }
        }
      }
    }
    std::free(ring); std::free(vbuf);
    if (!passB) {
#pragma omp critical
      for (int h = 0; h < HID; h++) { S[h] += lS[h]; SS[h] += lSS[h]; }
    }
  }
}


template <int TY, int TX, int RB, bool NTB, int PF>
static void pass_b(const float* __restrict buf, const float* __restrict x, int D, int Hh, int W,
                   const float* __restrict a2, const float* __restrict c2, const float* __restrict W2T,
                   const float* __restrict bias2, float* __restrict out) {
  constexpr int NXV = TX / 16, CH = HID * RB * TX;
  const int ny = Hh / TY, nx = W / TX;
  const long plane = (long)Hh * W, vol = (long)D * plane;
#pragma omp parallel for schedule(static)
  for (int t = 0; t < ny * nx; t++) {
    const int y0 = (t / nx) * TY, x0 = (t % nx) * TX;
    for (int z = 0; z < D; z++)
      for (int yb = 0; yb < TY / RB; yb++) {
        const float* chunk = buf + (((long)t * D + z) * (TY / RB) + yb) * (long)CH;
        for (int k = 0; k < RB; k++)
          for (int jp = 0; jp < NXV / 2; jp++) {
            const long base = z * plane + (long)(y0 + yb * RB + k) * W + x0 + 32 * jp;
            const float* q = chunk + (long)(k * (NXV / 2) + jp) * HID * 32;
            __m512 o[C][2];
            for (int c = 0; c < C; c++)
              for (int j = 0; j < 2; j++)
                o[c][j] = _mm512_add_ps(_mm512_set1_ps(bias2[c]), _mm512_loadu_ps(x + c * vol + base + 16 * j));
#pragma GCC unroll 2
            for (int h = 0; h < HID; h++) {
              if (PF) { _mm_prefetch((const char*)(q + h * 32 + PF), _MM_HINT_T0); _mm_prefetch((const char*)(q + h * 32 + PF + 16), _MM_HINT_T0); }
              const __m512 aa = _mm512_set1_ps(a2[h]), cc = _mm512_set1_ps(c2[h]);
              const __m512 v0 = lrelu16(_mm512_fmadd_ps(aa, _mm512_load_ps(q + h * 32), cc));
              const __m512 v1 = lrelu16(_mm512_fmadd_ps(aa, _mm512_load_ps(q + h * 32 + 16), cc));
#pragma GCC unroll 8
              for (int c = 0; c < C; c++) {
                const __m512 w = _mm512_set1_ps(W2T[h * C + c]);
                o[c][0] = _mm512_fmadd_ps(w, v0, o[c][0]);
                o[c][1] = _mm512_fmadd_ps(w, v1, o[c][1]);
              }
            }
            for (int c = 0; c < C; c++)
              for (int j = 0; j < 2; j++) {
                float* p = out + c * vol + base + 16 * j;
                if (NTB) _mm512_stream_ps(p, o[c][j]); else _mm512_storeu_ps(p, o[c][j]);
              }
          }
      }
  }
}

template <bool STORE, bool NTA, bool NTB, int PF>
std::vector<torch::Tensor> cec_t(torch::Tensor x, torch::Tensor W1, torch::Tensor g1, torch::Tensor b1, torch::Tensor Wd,
                            torch::Tensor g2, torch::Tensor b2, torch::Tensor W2, torch::Tensor bias2, double eps,
                            torch::Tensor buf_in, bool huge) {
  constexpr int TY = 8, TX = 64, RB = 4;
  TORCH_CHECK(x.dim() == 5 && x.size(0) == 1 && x.size(1) == C && x.is_contiguous());
  const int D = x.size(2), Hh = x.size(3), W = x.size(4);
  TORCH_CHECK(Hh % TY == 0 && W % TX == 0);
  const long N = (long)D * Hh * W;
  auto W1c = W1.reshape({HID, C}).contiguous(); auto Wdc = Wd.reshape({HID, 27}).contiguous();
  auto W2c = W2.reshape({C, HID}).t().contiguous();  // [HID][C]
  const float *pw1 = W1c.data_ptr<float>(), *pg1 = g1.data_ptr<float>(), *pb1 = b1.data_ptr<float>();
  const float *pg2 = g2.data_ptr<float>(), *pb2 = b2.data_ptr<float>();
  double t0 = omp_get_wtime();
  double mu[C], cov[C * C];
  x_stats(x.data_ptr<float>(), N, mu, cov);
  std::vector<float> W1f(HID * C), b1f(HID);
  for (int h = 0; h < HID; h++) {
    double m = 0, v = 0;
    for (int c = 0; c < C; c++) { m += pw1[h * C + c] * mu[c]; for (int d = 0; d < C; d++) v += pw1[h * C + c] * cov[c * C + d] * pw1[h * C + d]; }
    const double a = pg1[h] / std::sqrt(v + eps);
    for (int c = 0; c < C; c++) W1f[h * C + c] = (float)(a * pw1[h * C + c]);
    b1f[h] = (float)(pb1[h] - a * m);
  }
  double t1 = omp_get_wtime();
  torch::Tensor buf = buf_in;
  if (STORE && (!buf.defined() || buf.numel() < (long)HID * N)) {
    if (huge) {  // 2 MB-aligned + MADV_HUGEPAGE: far fewer first-touch page faults (THP is in madvise mode here)
      const size_t bytes = (((size_t)HID * N * sizeof(float)) + (1u << 21) - 1) & ~(size_t)((1u << 21) - 1);
      void* p = std::aligned_alloc(1u << 21, bytes);
      madvise(p, bytes, MADV_HUGEPAGE);
      buf = torch::from_blob(p, {(long)HID * N}, [](void* q) { std::free(q); }, x.options());
    } else buf = torch::empty({(long)HID * N}, x.options());
  }
  float* pbuf = STORE ? buf.data_ptr<float>() : nullptr;
  TORCH_CHECK(((uintptr_t)pbuf & 63) == 0, "buffer must be 64-byte aligned");
  double t1b = omp_get_wtime();
  std::vector<double> S(HID, 0.0), SS(HID, 0.0);
  std::vector<float> a2(HID), c2(HID);
  auto out = torch::empty_like(x);
  run_pass<TY, TX, RB, true, NTA>(false, pbuf, x.data_ptr<float>(), D, Hh, W, W1f.data(), b1f.data(), Wdc.data_ptr<float>(), a2.data(),
                   c2.data(), W2c.data_ptr<float>(), bias2.data_ptr<float>(), nullptr, S.data(), SS.data());
  if (NTA) _mm_sfence();
  double t2 = omp_get_wtime();
  for (int h = 0; h < HID; h++) {
    const double m = S[h] / N, v = std::max(SS[h] / N - m * m, 0.0);
    const double a = pg2[h] / std::sqrt(v + eps);
    a2[h] = (float)a; c2[h] = (float)(pb2[h] - a * m);
  }
  if (STORE)
    pass_b<TY, TX, RB, NTB, PF>(pbuf, x.data_ptr<float>(), D, Hh, W, a2.data(), c2.data(), W2c.data_ptr<float>(),
                            bias2.data_ptr<float>(), out.data_ptr<float>());
  else  // recompute expand -> depthwise, then norm -> act -> project + bias + residual
    run_pass<TY, TX, RB, true, false>(true, nullptr, x.data_ptr<float>(), D, Hh, W, W1f.data(), b1f.data(), Wdc.data_ptr<float>(),
                                      a2.data(), c2.data(), W2c.data_ptr<float>(), bias2.data_ptr<float>(), out.data_ptr<float>(),
                                      S.data(), SS.data());
  if (NTB) _mm_sfence();
  double t3 = omp_get_wtime();
  std::vector<double> tm = {t1 - t0, t1b - t1, t2 - t1b, t3 - t2};
  return {out, torch::tensor(tm, torch::kFloat64)};
}

// mode bits: 8 = when no buffer is passed, allocate it 2MB-aligned with MADV_HUGEPAGE; 1 = NT stores for the 805 MB buffer write (pass A), 2 = NT stores for the output (pass B), 4 = sw prefetch in pass B
std::vector<torch::Tensor> cec_store(torch::Tensor x, torch::Tensor W1, torch::Tensor g1, torch::Tensor b1,
                                     torch::Tensor Wd, torch::Tensor g2, torch::Tensor b2, torch::Tensor W2,
                                     torch::Tensor bias2, double eps, c10::optional<torch::Tensor> buf, int mode) {
  torch::Tensor bb = buf.has_value() ? *buf : torch::Tensor();
  switch (mode & 7) {
    case 0: return cec_t<true, false, false, 0>(x, W1, g1, b1, Wd, g2, b2, W2, bias2, eps, bb, (mode & 8) != 0);
    case 1: return cec_t<true, true, false, 0>(x, W1, g1, b1, Wd, g2, b2, W2, bias2, eps, bb, (mode & 8) != 0);
    case 2: return cec_t<true, false, true, 0>(x, W1, g1, b1, Wd, g2, b2, W2, bias2, eps, bb, (mode & 8) != 0);
    case 3: return cec_t<true, true, true, 0>(x, W1, g1, b1, Wd, g2, b2, W2, bias2, eps, bb, (mode & 8) != 0);
    case 5: return cec_t<true, true, false, 512>(x, W1, g1, b1, Wd, g2, b2, W2, bias2, eps, bb, (mode & 8) != 0);
    case 7: return cec_t<true, true, true, 512>(x, W1, g1, b1, Wd, g2, b2, W2, bias2, eps, bb, (mode & 8) != 0);
    case 4: return cec_t<true, false, false, 512>(x, W1, g1, b1, Wd, g2, b2, W2, bias2, eps, bb, (mode & 8) != 0);
    default: return cec_t<true, false, true, 512>(x, W1, g1, b1, Wd, g2, b2, W2, bias2, eps, bb, (mode & 8) != 0);
  }
}

// timings returned by both: (input statistics, buffer allocation, pass A, pass B) seconds
std::vector<torch::Tensor> cec_recompute(torch::Tensor x, torch::Tensor W1, torch::Tensor g1, torch::Tensor b1,
                                         torch::Tensor Wd, torch::Tensor g2, torch::Tensor b2, torch::Tensor W2,
                                         torch::Tensor bias2, double eps) {
  return cec_t<false, false, false, 0>(x, W1, g1, b1, Wd, g2, b2, W2, bias2, eps, torch::Tensor(), false);
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("cec_recompute", &cec_recompute);
  m.def("cec_store", &cec_store);
}
