// Fused MM-3DUNet CEC unit for CPUs with AVX-512 (float32), used by breastlesionseg.runtime.native_cec.
//
// One call computes, for each sample of x (N, C, D, H, W) contiguous:
//   expand 1x1x1 (C -> HID) -> InstanceNorm -> LeakyReLU -> depthwise 3x3x3 (stride 1, zero padding)
//   -> InstanceNorm -> LeakyReLU -> project 1x1x1 (HID -> CO) + bias [+ x when RES]
// in two passes over the volume instead of one DRAM pass per op:
//   * the first norm's statistics come analytically from the input's mean and covariance (float64);
//   * pass A computes expand -> norm -> act -> depthwise per (y, x) tile with a ring of three expanded
//     planes in cache, writes the depthwise output ONCE (streaming stores, tile-major layout) into a
//     buffer the caller keeps between calls, and accumulates the second norm's statistics in float64;
//   * pass B reads that buffer back sequentially: norm -> act -> project + bias (+ residual).
// Generalises the store-once prototype (8 -> 96 -> 8 only; described in docs/performance.md) to the
// channel counts instantiated at the bottom of this file. Shapes: H % 8 == 0 and W % 32 == 0 (64-column tiles
// when W % 64 == 0, else 32-column tiles).
// No fast-math: float32 arithmetic in the order of the prototype, float64 accumulators for statistics.
#include <torch/extension.h>
#include <omp.h>
#include <immintrin.h>
#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <tuple>
#include <vector>

namespace {

// tiles: TY rows x TX columns (TX = 64, or 32 for narrow levels); RB output rows per register block
constexpr int TY = 8, RB = 4;

inline __m512 lrelu16(__m512 v, __m512 slope) { return _mm512_max_ps(v, _mm512_mul_ps(v, slope)); }

// 16 floats to p (64-byte aligned when stream)
inline void store16(float* p, __m512 v, bool stream) {
  if (stream) _mm512_stream_ps(p, v);
  else _mm512_storeu_ps(p, v);
}

// Per-channel mean and population covariance of x (C, n) in float64 (float partial sums per 256-voxel row).
template <int C>
void x_stats(const float* const* xc, long n, double* mu, double* cov) {
  constexpr int NP = C * (C + 1) / 2;
  int pc[NP], pd[NP];
  {
    int k = 0;
    for (int c = 0; c < C; c++)
      for (int d = 0; d <= c; d++) { pc[k] = c; pd[k] = d; k++; }
  }
  constexpr long ROW = 256;
  std::vector<double> s(C, 0.0), m(NP, 0.0);
#pragma omp parallel
  {
    std::vector<double> ls(C, 0.0), lm(NP, 0.0);
#pragma omp for schedule(static)
    for (long r = 0; r < n / ROW; r++) {
      const long o = r * ROW;
      for (int c = 0; c < C; c++) {
        __m512 a = _mm512_setzero_ps();
        for (long i = 0; i < ROW; i += 16) a = _mm512_add_ps(a, _mm512_loadu_ps(xc[c] + o + i));
        ls[c] += (double)_mm512_reduce_add_ps(a);
      }
      if (C % 4 == 0) {  // 4 x 4 channel blocks: 8 loads per 16 FMAs (instead of 2 loads per FMA)
        for (int cb = 0; cb < C; cb += 4)
          for (int db = 0; db <= cb; db += 4) {
            __m512 am[4][4];
            for (int a = 0; a < 4; a++)
              for (int b = 0; b < 4; b++) am[a][b] = _mm512_setzero_ps();
            for (long i = 0; i < ROW; i += 16) {
              __m512 u[4], w[4];
              for (int a = 0; a < 4; a++) u[a] = _mm512_loadu_ps(xc[cb + a] + o + i);
              for (int b = 0; b < 4; b++) w[b] = _mm512_loadu_ps(xc[db + b] + o + i);
              for (int a = 0; a < 4; a++)
                for (int b = 0; b < 4; b++) am[a][b] = _mm512_fmadd_ps(u[a], w[b], am[a][b]);
            }
            for (int a = 0; a < 4; a++)
              for (int b = 0; b < 4; b++) {
                const int c = cb + a, d = db + b;
                if (d <= c) lm[c * (c + 1) / 2 + d] += (double)_mm512_reduce_add_ps(am[a][b]);
              }
          }
        continue;
      }
      for (int g = 0; g < NP; g += 16) {
        const int gn = std::min(16, NP - g);
        __m512 am[16];
        for (int q = 0; q < 16; q++) am[q] = _mm512_setzero_ps();
        for (long i = 0; i < ROW; i += 16)
          for (int q = 0; q < gn; q++)
            am[q] = _mm512_fmadd_ps(_mm512_loadu_ps(xc[pc[g + q]] + o + i), _mm512_loadu_ps(xc[pd[g + q]] + o + i), am[q]);
        for (int q = 0; q < gn; q++) lm[g + q] += (double)_mm512_reduce_add_ps(am[q]);
      }
    }
#pragma omp critical
    {
      for (int c = 0; c < C; c++) s[c] += ls[c];
      for (int q = 0; q < NP; q++) m[q] += lm[q];
    }
  }
  for (int c = 0; c < C; c++) mu[c] = s[c] / n;
  for (int q = 0; q < NP; q++) {
    const int c = pc[q], d = pd[q];
    cov[c * C + d] = cov[d * C + c] = m[q] / n - mu[c] * mu[d];
  }
}

// expand (norm 1 folded) + LeakyReLU of HB hidden channels for the first NV vectors of 16 columns of a row:
// an HB x NV register block (16 independent accumulators), x streamed from the L1-resident row per input
// channel, so any C fits in registers (holding all C inputs spilled from C = 32 on)
template <int C, int HB, int NV, int XS>
inline void expand_block(const float (*xs)[XS], const float* __restrict w1, const float* __restrict b1,
                         float* __restrict R, __m512 slope) {
  __m512 acc[HB][NV];
  for (int h = 0; h < HB; h++) {
    const __m512 b = _mm512_set1_ps(b1[h]);
    for (int j = 0; j < NV; j++) acc[h][j] = b;
  }
#pragma GCC unroll 4
  for (int c = 0; c < C; c++) {
    __m512 xv[NV];
    for (int j = 0; j < NV; j++) xv[j] = _mm512_load_ps(&xs[c][16 * j]);
    for (int h = 0; h < HB; h++) {
      const __m512 w = _mm512_set1_ps(w1[h * C + c]);
      for (int j = 0; j < NV; j++) acc[h][j] = _mm512_fmadd_ps(w, xv[j], acc[h][j]);
    }
  }
  for (int h = 0; h < HB; h++)
    for (int j = 0; j < NV; j++) _mm512_store_ps(R + h * XS + 16 * j, lrelu16(acc[h][j], slope));
}

// expand + LeakyReLU of all HID channels for the first NV vectors of a row (blocks of 16 / NV channels)
template <int C, int HID, int NV, int XS>
inline void expand_row(const float (*xs)[XS], const float* __restrict w1, const float* __restrict b1,
                       float* __restrict R, __m512 slope) {
  constexpr int HB = 16 / NV;
  int h = 0;
  for (; h + HB <= HID; h += HB) expand_block<C, HB, NV, XS>(xs, w1 + h * C, b1 + h, R + h * XS, slope);
  for (; h < HID; h++) expand_block<C, 1, NV, XS>(xs, w1 + h * C, b1 + h, R + h * XS, slope);
}

// expand (norm 1 folded) + LeakyReLU for the last 8 columns of a row (XS - 16 .. XS - 9), all HID channels, in
// 256-bit vectors: the depthwise reads only the first two columns of a row's last 16-column vector, so half a
// vector suffices, at half the cost on CPUs that split 512-bit operations (lanes 8-15 stay unwritten and unread)
template <int C, int HID, int XS>
inline void expand_tail(const float (*xs)[XS], const float* __restrict w1, const float* __restrict b1,
                        float* __restrict R, float slope) {
  constexpr int V = XS - 16;
  __m256 xv[C];
  for (int c = 0; c < C; c++) xv[c] = _mm256_load_ps(&xs[c][V]);
  const __m256 sl = _mm256_set1_ps(slope);
  for (int h = 0; h < HID; h++) {
    __m256 acc = _mm256_set1_ps(b1[h]);
#pragma GCC unroll 8
    for (int c = 0; c < C; c++) acc = _mm256_fmadd_ps(_mm256_set1_ps(w1[h * C + c]), xv[c], acc);
    _mm256_store_ps(R + h * XS + V, _mm256_max_ps(acc, _mm256_mul_ps(acc, sl)));
  }
}

// Pass A for one sample: depthwise output of every tile into buf (tile-major), second-norm sums into S, SS.
template <int C, int HID, int TX>
void pass_a(float* __restrict buf, const float* const* xc, int D, int Hh, int W, const float* __restrict w1,
            const float* __restrict b1, const float* __restrict wd, float slope1, double* S, double* SS) {
  constexpr int NXV = TX / 16, XS = TX + 16;  // output vectors, row stride (one vector of right halo)
  constexpr int PS = (TY + 2) * HID * XS;
  const int ny = Hh / TY, nx = W / TX;
  const long plane = (long)Hh * W;
  const __m512 sl1 = _mm512_set1_ps(slope1);
#pragma omp parallel
  {
    float* ring = (float*)std::aligned_alloc(64, sizeof(float) * 3 * PS);
    alignas(64) float xs[C][XS];
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
          if (x0 > 0 && x0 + TX < W) {  // interior tile: columns x0 - 1 .. x0 + TX are in the row
            // 66 useful columns; the rest of the 80 (lanes 2-15 of the last vector) never reach an output
            // (the depthwise only shifts by 1 and 2 lanes), so they are zeroed, not read past the row
            const __mmask16 tail = (__mmask16)0x3;
            for (int c = 0; c < C; c++) {
              const float* src = xc[c] + z * plane + (long)gy * W + x0 - 1;
              for (int v = 0; v < NXV; v++) _mm512_store_ps(&xs[c][16 * v], _mm512_loadu_ps(src + 16 * v));
              _mm512_store_ps(&xs[c][TX], _mm512_maskz_loadu_ps(tail, src + TX));
            }
          } else {
            for (int c = 0; c < C; c++) {
              const float* src = xc[c] + z * plane + (long)gy * W;
              for (int xx = 0; xx < XS; xx++) {
                const int gx = x0 + xx - 1;
                xs[c][xx] = (gx >= 0 && gx < W && xx < TX + 2) ? src[gx] : 0.f;
              }
            }
          }
          expand_row<C, HID, NXV, XS>(xs, w1, b1, R, sl1);
          expand_tail<C, HID, XS>(xs, w1, b1, R, slope1);
          // zero padding of the depthwise input: the columns left of x = 0 and right of x = W - 1
          if (x0 == 0) for (int h = 0; h < HID; h++) R[h * XS] = 0.f;
          if (x0 + TX == W) for (int h = 0; h < HID; h++) R[h * XS + TX + 1] = 0.f;
        }
      };
      expand(-1, ring);
      expand(0, ring + PS);
      for (int z = 0; z < D; z++) {
        const float* Pz[3] = {ring + (z % 3) * PS, ring + ((z + 1) % 3) * PS, ring + ((z + 2) % 3) * PS};
        expand(z + 1, ring + ((z + 2) % 3) * PS);
        for (int y = 0; y < TY; y += RB) {
          float* chunk = buf + (((long)t * D + z) * (TY / RB) + y / RB) * (long)(HID * RB * TX);
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
                  nx0 = _mm512_load_ps(p + 16 * (j + 1));
                  const __m512 i1 = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(nx0), _mm512_castps_si512(i0), 1));
                  const __m512 i2 = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(nx0), _mm512_castps_si512(i0), 2));
#pragma GCC unroll 4
                  for (int k = 0; k < RB; k++) {
                    const int dy = r - k;
                    if (dy >= 0 && dy <= 2)
                      a[k][j] = _mm512_fmadd_ps(w[dy * 3 + 2], i2, _mm512_fmadd_ps(w[dy * 3 + 1], i1, _mm512_fmadd_ps(w[dy * 3], i0, a[k][j])));
                  }
                }
              }
            }
            // layout per chunk: [k][j pair][h][32]
            for (int k = 0; k < RB; k++)
              for (int j = 0; j < NXV; j++)
                _mm512_stream_ps(chunk + ((long)(k * (NXV / 2) + j / 2) * HID + h) * 32 + (j & 1) * 16, a[k][j]);
            __m512 s = _mm512_setzero_ps(), ss = _mm512_setzero_ps();
            for (int k = 0; k < RB; k++)
              for (int j = 0; j < NXV; j++) { s = _mm512_add_ps(s, a[k][j]); ss = _mm512_fmadd_ps(a[k][j], a[k][j], ss); }
            lS[h] += (double)_mm512_reduce_add_ps(s);
            lSS[h] += (double)_mm512_reduce_add_ps(ss);
          }
        }
      }
    }
    std::free(ring);
#pragma omp critical
    for (int h = 0; h < HID; h++) { S[h] += lS[h]; SS[h] += lSS[h]; }
  }
  _mm_sfence();
}

// A 1x1x1 convolution (n <= MAX_HEAD outputs over the unit's C_out <= 8 channels) folded into pass B: the unit
// then writes w[n][C_out] . out + b instead of out (the network's head, applied to its last unit's output).
struct Head {
  const float* w = nullptr;  // [n][C_out]
  const float* b = nullptr;  // [n]
  int n = 0;                 // 0: no head
};
constexpr int MAX_HEAD = 8;

// Pass B for one sample: out = project(lrelu(a2 * buf + c2)) + bias (+ x), or head(that) when head.n > 0.
template <int C, int HID, int CO, bool RES, int TX>
void pass_b(const float* __restrict buf, const float* const* xc, int D, int Hh, int W, const float* __restrict a2,
            const float* __restrict c2, float slope2, const float* __restrict w2t /*[HID][CO]*/,
            const float* __restrict bias2, float* __restrict out, bool stream, Head head) {
  constexpr int NXV = TX / 16, CH = HID * RB * TX, CG = CO < 8 ? CO : 8;
  static_assert(CO % CG == 0, "output channels must be < 8 or a multiple of 8");
  const int ny = Hh / TY, nx = W / TX;
  const long plane = (long)Hh * W, vol = (long)D * plane;
  const __m512 sl2 = _mm512_set1_ps(slope2);
#pragma omp parallel
  {
    float* v = (float*)std::aligned_alloc(64, sizeof(float) * HID * 32);  // activated hidden values, [h][32]
#pragma omp for schedule(static)
    for (int t = 0; t < ny * nx; t++) {
      const int y0 = (t / nx) * TY, x0 = (t % nx) * TX;
      for (int z = 0; z < D; z++)
        for (int yb = 0; yb < TY / RB; yb++) {
          const float* chunk = buf + (((long)t * D + z) * (TY / RB) + yb) * (long)CH;
          for (int k = 0; k < RB; k++)
            for (int jp = 0; jp < NXV / 2; jp++) {
              const long base = z * plane + (long)(y0 + yb * RB + k) * W + x0 + 32 * jp;
              const float* q = chunk + (long)(k * (NXV / 2) + jp) * HID * 32;
              if (CO <= 8) {  // one group of outputs: activations stay in registers (no round trip through v)
                __m512 o[CG][2];
                for (int c = 0; c < CG; c++)
                  for (int j = 0; j < 2; j++) {
                    o[c][j] = _mm512_set1_ps(bias2[c]);
                    if (RES) o[c][j] = _mm512_add_ps(o[c][j], _mm512_loadu_ps(xc[c] + base + 16 * j));
                  }
#pragma GCC unroll 2
                for (int h = 0; h < HID; h++) {
                  _mm_prefetch((const char*)(q + h * 32 + 512), _MM_HINT_T0);
                  _mm_prefetch((const char*)(q + h * 32 + 528), _MM_HINT_T0);
                  const __m512 aa = _mm512_set1_ps(a2[h]), cc = _mm512_set1_ps(c2[h]);
                  const __m512 v0 = lrelu16(_mm512_fmadd_ps(aa, _mm512_load_ps(q + h * 32), cc), sl2);
                  const __m512 v1 = lrelu16(_mm512_fmadd_ps(aa, _mm512_load_ps(q + h * 32 + 16), cc), sl2);
#pragma GCC unroll 8
                  for (int c = 0; c < CG; c++) {
                    const __m512 w = _mm512_set1_ps(w2t[h * CO + c]);
                    o[c][0] = _mm512_fmadd_ps(w, v0, o[c][0]);
                    o[c][1] = _mm512_fmadd_ps(w, v1, o[c][1]);
                  }
                }
                if (head.n > 0) {  // the head in registers: its input never goes to memory
                  for (int p = 0; p < head.n; p++)
                    for (int j = 0; j < 2; j++) {
                      __m512 acc = _mm512_set1_ps(head.b[p]);
                      for (int c = 0; c < CG; c++) acc = _mm512_fmadd_ps(_mm512_set1_ps(head.w[p * CO + c]), o[c][j], acc);
                      store16(out + p * vol + base + 16 * j, acc, stream);
                    }
                  continue;
                }
                for (int c = 0; c < CG; c++)
                  for (int j = 0; j < 2; j++) store16(out + c * vol + base + 16 * j, o[c][j], stream);
                continue;
              }
              for (int h = 0; h < HID; h++) {
                _mm_prefetch((const char*)(q + h * 32 + 512), _MM_HINT_T0);
                _mm_prefetch((const char*)(q + h * 32 + 528), _MM_HINT_T0);
                const __m512 aa = _mm512_set1_ps(a2[h]), cc = _mm512_set1_ps(c2[h]);
                _mm512_store_ps(v + h * 32, lrelu16(_mm512_fmadd_ps(aa, _mm512_load_ps(q + h * 32), cc), sl2));
                _mm512_store_ps(v + h * 32 + 16, lrelu16(_mm512_fmadd_ps(aa, _mm512_load_ps(q + h * 32 + 16), cc), sl2));
              }
              for (int c0 = 0; c0 < CO; c0 += CG) {
                __m512 o[CG][2];
                for (int c = 0; c < CG; c++)
                  for (int j = 0; j < 2; j++) {
                    o[c][j] = _mm512_set1_ps(bias2[c0 + c]);
                    if (RES) o[c][j] = _mm512_add_ps(o[c][j], _mm512_loadu_ps(xc[c0 + c] + base + 16 * j));
                  }
#pragma GCC unroll 2
                for (int h = 0; h < HID; h++) {
                  const __m512 v0 = _mm512_load_ps(v + h * 32), v1 = _mm512_load_ps(v + h * 32 + 16);
#pragma GCC unroll 8
                  for (int c = 0; c < CG; c++) {
                    const __m512 w = _mm512_set1_ps(w2t[h * CO + c0 + c]);
                    o[c][0] = _mm512_fmadd_ps(w, v0, o[c][0]);
                    o[c][1] = _mm512_fmadd_ps(w, v1, o[c][1]);
                  }
                }
                for (int c = 0; c < CG; c++)
                  for (int j = 0; j < 2; j++) store16(out + (c0 + c) * vol + base + 16 * j, o[c][j], stream);
              }
            }
        }
    }
    std::free(v);
  }
  if (stream) _mm_sfence();
}

template <int C, int HID, int CO, bool RES>
void cec_unit(const std::vector<torch::Tensor>& xs_in, const torch::Tensor& w1, const torch::Tensor& g1, const torch::Tensor& be1,
              double eps1, double slope1, const torch::Tensor& wd, const torch::Tensor& g2, const torch::Tensor& be2,
              double eps2, double slope2, const torch::Tensor& w2, const torch::Tensor& bias2, torch::Tensor& buf,
              torch::Tensor& out, int64_t stream_min_bytes, Head head) {
  const torch::Tensor& x = xs_in[0];
  const int CW = head.n > 0 ? head.n : CO;  // channels written
  const int N = x.size(0), D = x.size(2), Hh = x.size(3), W = x.size(4);
  const long n = (long)D * Hh * W;
  auto w1c = w1.reshape({HID, C}).to(torch::kFloat64).contiguous();
  auto wdc = wd.reshape({HID, 27}).contiguous();
  auto w2t = w2.reshape({CO, HID}).t().contiguous();  // [HID][CO]
  const double* pw1 = w1c.data_ptr<double>();
  const float *pg1 = g1.data_ptr<float>(), *pb1 = be1.data_ptr<float>();
  const float *pg2 = g2.data_ptr<float>(), *pb2 = be2.data_ptr<float>();
  for (int s = 0; s < N; s++) {
    // channel c of the (virtual) concatenation of the inputs, sample s
    const float* xc[C];
    {
      int c = 0;
      for (const auto& t : xs_in)
        for (long k = 0; k < t.size(1); k++) xc[c++] = t.data_ptr<float>() + ((long)s * t.size(1) + k) * n;
    }
    float* os = out.data_ptr<float>() + (long)s * CW * n;
    std::vector<double> mu(C), cov(C * C);
    x_stats<C>(xc, n, mu.data(), cov.data());
    alignas(64) float w1f[HID * C];
    alignas(64) float b1f[HID];
    for (int h = 0; h < HID; h++) {
      double m = 0, v = 0;
      for (int c = 0; c < C; c++) {
        m += pw1[h * C + c] * mu[c];
        for (int d = 0; d < C; d++) v += pw1[h * C + c] * cov[c * C + d] * pw1[h * C + d];
      }
      const double a = pg1[h] / std::sqrt(std::max(v, 0.0) + eps1);
      for (int c = 0; c < C; c++) w1f[h * C + c] = (float)(a * pw1[h * C + c]);
      b1f[h] = (float)(pb1[h] - a * m);
    }
    std::vector<double> S(HID, 0.0), SS(HID, 0.0);
    if (W % 64 == 0)
      pass_a<C, HID, 64>(buf.data_ptr<float>(), xc, D, Hh, W, w1f, b1f, wdc.data_ptr<float>(), (float)slope1, S.data(), SS.data());
    else
      pass_a<C, HID, 32>(buf.data_ptr<float>(), xc, D, Hh, W, w1f, b1f, wdc.data_ptr<float>(), (float)slope1, S.data(), SS.data());
    const bool stream = (long)CW * n * 4 >= stream_min_bytes && ((uintptr_t)os & 63) == 0;
    std::vector<float> a2(HID), c2(HID);
    for (int h = 0; h < HID; h++) {
      const double m = S[h] / n, v = std::max(SS[h] / n - m * m, 0.0);
      const double a = pg2[h] / std::sqrt(v + eps2);
      a2[h] = (float)a;
      c2[h] = (float)(pb2[h] - a * m);
    }
    if (W % 64 == 0)
      pass_b<C, HID, CO, RES, 64>(buf.data_ptr<float>(), xc, D, Hh, W, a2.data(), c2.data(), (float)slope2,
                                  w2t.data_ptr<float>(), bias2.data_ptr<float>(), os, stream, head);
    else
      pass_b<C, HID, CO, RES, 32>(buf.data_ptr<float>(), xc, D, Hh, W, a2.data(), c2.data(), (float)slope2,
                                  w2t.data_ptr<float>(), bias2.data_ptr<float>(), os, stream, head);
  }
}

using Kernel = std::function<void(const std::vector<torch::Tensor>&, const torch::Tensor&, const torch::Tensor&, const torch::Tensor&,
                                  double, double, const torch::Tensor&, const torch::Tensor&, const torch::Tensor&,
                                  double, double, const torch::Tensor&, const torch::Tensor&, torch::Tensor&, torch::Tensor&,
                                  int64_t, Head)>;

#define BLS_CEC(C, HID, CO, RES) {std::make_tuple(C, HID, CO, RES), cec_unit<C, HID, CO, RES>}

// (C_in, hidden, C_out, residual) of MM-3DUNet t = 12 or 6 (encoder) / t_d = 1 (decoder), base widths 4 and 8,
// 1 or 3 input channels, for the levels whose in-plane size can meet H % 8 == 0 and W % 32 == 0.
const std::map<std::tuple<int, int, int, bool>, Kernel>& kernels() {
  static const std::map<std::tuple<int, int, int, bool>, Kernel> table = {
      // base width 8: encoder levels 0-2
      BLS_CEC(1, 12, 8, false), BLS_CEC(3, 36, 8, false), BLS_CEC(8, 96, 8, true),
      BLS_CEC(8, 96, 16, false), BLS_CEC(16, 192, 16, true),
      BLS_CEC(16, 192, 32, false), BLS_CEC(32, 384, 32, true),
      // base width 8: bottleneck (4 x 32 x 32 at the paper's input: 32-column tiles)
      BLS_CEC(32, 384, 64, false), BLS_CEC(64, 768, 64, true),
      // base width 8: decoder levels 0-2 (t_d = 1: hidden = C_in)
      BLS_CEC(16, 16, 8, false), BLS_CEC(8, 8, 8, true),
      BLS_CEC(32, 32, 16, false), BLS_CEC(16, 16, 16, true),
      BLS_CEC(64, 64, 32, false), BLS_CEC(32, 32, 32, true),
      // t = 6, base width 8: encoder levels 0-2
      BLS_CEC(1, 6, 8, false), BLS_CEC(3, 18, 8, false), BLS_CEC(8, 48, 8, true),
      BLS_CEC(8, 48, 16, false), BLS_CEC(16, 96, 16, true),
      BLS_CEC(16, 96, 32, false), BLS_CEC(32, 192, 32, true),
      BLS_CEC(32, 192, 64, false), BLS_CEC(64, 384, 64, true),
      // base width 4 (the demo model): encoder levels 0-1, decoder levels 0-1
      BLS_CEC(1, 12, 4, false), BLS_CEC(3, 36, 4, false), BLS_CEC(4, 48, 4, true),
      BLS_CEC(4, 48, 8, false), BLS_CEC(8, 96, 8, true),
      BLS_CEC(8, 8, 4, false), BLS_CEC(4, 4, 4, true),
  };
  return table;
}

}  // namespace

bool supports(int64_t cin, int64_t hidden, int64_t cout, bool residual) {
  return kernels().count(std::make_tuple((int)cin, (int)hidden, (int)cout, residual)) > 0;
}

// Runs one CEC unit on the channel concatenation of xs (each contiguous float32 (N, C_k, D, H, W) on one grid;
// one tensor when there is nothing to concatenate), without materialising the concatenation.
// buf must hold at least hidden * D * H * W float32 (64-byte aligned); out is (N, C_out, D, H, W).
// Outputs of at least stream_min_bytes per sample (and 64-byte aligned) are written with streaming stores:
// a large output does not stay in cache anyway, and streaming saves the read for ownership; smaller ones
// use plain stores, so the next layer finds them in cache. With head_weight (n, C_out) and head_bias (n),
// C_out <= 8, out is (N, n, D, H, W): the 1x1x1 convolution head applied to the unit's output, which is
// never stored.
void cec_forward(std::vector<torch::Tensor> xs, torch::Tensor w1, torch::Tensor g1, torch::Tensor be1, double eps1,
                 double slope1, torch::Tensor wd, torch::Tensor g2, torch::Tensor be2, double eps2, double slope2,
                 torch::Tensor w2, torch::Tensor bias2, torch::Tensor buf, torch::Tensor out, bool residual,
                 int64_t stream_min_bytes, c10::optional<torch::Tensor> head_weight,
                 c10::optional<torch::Tensor> head_bias) {
  TORCH_CHECK(!xs.empty(), "no input");
  const torch::Tensor& x = xs[0];
  int cin = 0;
  for (const auto& t : xs) {
    TORCH_CHECK(t.dim() == 5 && t.is_contiguous() && t.scalar_type() == torch::kFloat32, "inputs must be contiguous float32 (N, C, D, H, W)");
    TORCH_CHECK(t.size(0) == x.size(0) && t.size(2) == x.size(2) && t.size(3) == x.size(3) && t.size(4) == x.size(4),
                "inputs to concatenate must share N, D, H, W");
    cin += t.size(1);
  }
  TORCH_CHECK(!residual || xs.size() == 1, "a residual unit takes one input");
  TORCH_CHECK(x.size(3) % TY == 0 && x.size(4) % 32 == 0, "fused CEC unit needs H % 8 == 0 and W % 32 == 0");
  const int hidden = wd.size(0), cout = w2.size(0);
  auto it = kernels().find(std::make_tuple(cin, hidden, cout, residual));
  TORCH_CHECK(it != kernels().end(), "no fused CEC kernel for ", cin, " -> ", hidden, " -> ", cout);
  TORCH_CHECK(buf.numel() >= (long)hidden * x.size(2) * x.size(3) * x.size(4) && ((uintptr_t)buf.data_ptr<float>() & 63) == 0,
              "buffer too small or not 64-byte aligned");
  Head head;
  torch::Tensor hw, hb;
  if (head_weight.has_value() && head_weight->defined()) {
    hw = head_weight->reshape({head_weight->size(0), -1}).to(torch::kFloat32).contiguous();
    TORCH_CHECK(cout <= 8 && hw.size(1) == cout && hw.size(0) >= 1 && hw.size(0) <= MAX_HEAD,
                "a folded head needs C_out <= 8 and a (n <= 8, C_out) weight; got C_out ", cout, ", weight ", hw.sizes());
    hb = (head_bias.has_value() && head_bias->defined()) ? head_bias->to(torch::kFloat32).contiguous()
                                                        : torch::zeros({hw.size(0)}, hw.options());
    TORCH_CHECK(hb.numel() == hw.size(0), "head bias must have ", hw.size(0), " values");
    head = Head{hw.data_ptr<float>(), hb.data_ptr<float>(), (int)hw.size(0)};
  }
  TORCH_CHECK(out.is_contiguous() && out.size(0) == x.size(0) && out.size(1) == (head.n > 0 ? head.n : cout) &&
              out.size(2) == x.size(2) && out.size(3) == x.size(3) && out.size(4) == x.size(4), "bad output tensor");
  it->second(xs, w1, g1, be1, eps1, slope1, wd, g2, be2, eps2, slope2, w2, bias2, buf, out, stream_min_bytes, head);
}

// A 2 MB-aligned float32 buffer with transparent huge pages requested (fewer first-touch page faults).
torch::Tensor aligned_buffer(int64_t numel) {
  const size_t bytes = (((size_t)numel * sizeof(float)) + (1u << 21) - 1) & ~(size_t)((1u << 21) - 1);
  void* p = std::aligned_alloc(1u << 21, bytes);
  TORCH_CHECK(p != nullptr, "could not allocate the fused CEC buffer (", bytes, " bytes)");
  madvise(p, bytes, MADV_HUGEPAGE);
  return torch::from_blob(p, {numel}, [](void* q) { std::free(q); }, torch::TensorOptions().dtype(torch::kFloat32));
}

// An output of `shape`: `out` when given (checked: contiguous float32 of that shape; e.g. a kept buffer,
// so no page faults), else a new tensor.
torch::Tensor output_of(const c10::optional<torch::Tensor>& out, at::IntArrayRef shape, const torch::Tensor& like) {
  if (!out.has_value() || !out->defined()) return torch::empty(shape, like.options());
  TORCH_CHECK(out->is_contiguous() && out->scalar_type() == torch::kFloat32 && out->sizes() == shape,
              "out must be a contiguous float32 tensor of shape ", shape, ", got ", out->sizes());
  return *out;
}

// 2 x 2 x 2 max pooling, stride 2, of a contiguous float32 (N, C, D, H, W) with even D, H, W (nn.MaxPool3d(2)).
torch::Tensor maxpool2(torch::Tensor x, c10::optional<torch::Tensor> out_opt) {
  TORCH_CHECK(x.dim() == 5 && x.is_contiguous() && x.scalar_type() == torch::kFloat32, "x must be contiguous float32 (N, C, D, H, W)");
  const long D = x.size(2), H = x.size(3), W = x.size(4);
  TORCH_CHECK(D % 2 == 0 && H % 2 == 0 && W % 2 == 0, "maxpool2 needs even D, H, W");
  auto out = output_of(out_opt, {x.size(0), x.size(1), D / 2, H / 2, W / 2}, x);
  const long rows = x.size(0) * x.size(1) * (D / 2) * (H / 2), W2 = W / 2;
  const float* px = x.data_ptr<float>();
  float* po = out.data_ptr<float>();
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
#pragma omp parallel for schedule(static)
  for (long r = 0; r < rows; r++) {
    const long nc = r / ((D / 2) * (H / 2)), zy = r % ((D / 2) * (H / 2)), z2 = zy / (H / 2), y2 = zy % (H / 2);
    const float* a = px + ((nc * D + 2 * z2) * H + 2 * y2) * W;  // rows (z, y), (z, y+1), (z+1, y), (z+1, y+1)
    const float* b = a + W;
    const float* c = a + H * W;
    const float* d = c + W;
    float* o = po + r * W2;
    long i = 0;
    for (; i + 16 <= W2; i += 16) {
      __m512 lo = _mm512_max_ps(_mm512_max_ps(_mm512_loadu_ps(a + 2 * i), _mm512_loadu_ps(b + 2 * i)),
                                _mm512_max_ps(_mm512_loadu_ps(c + 2 * i), _mm512_loadu_ps(d + 2 * i)));
      __m512 hi = _mm512_max_ps(_mm512_max_ps(_mm512_loadu_ps(a + 2 * i + 16), _mm512_loadu_ps(b + 2 * i + 16)),
                                _mm512_max_ps(_mm512_loadu_ps(c + 2 * i + 16), _mm512_loadu_ps(d + 2 * i + 16)));
      _mm512_storeu_ps(o + i, _mm512_max_ps(_mm512_permutex2var_ps(lo, even, hi), _mm512_permutex2var_ps(lo, odd, hi)));
    }
    for (; i < W2; i++) {
      float m = a[2 * i];
      for (const float* p : {a, b, c, d}) m = std::max(m, std::max(p[2 * i], p[2 * i + 1]));
      o[i] = m;
    }
  }
  return out;
}

// ConvTranspose3d(C_in, C_out, kernel 3, stride 2, padding 1, output_padding 1) of a contiguous float32
// (N, C_in, D, H, W) with W % 16 == 0 -> (N, C_out, 2D, 2H, 2W). Per axis, even output 2m takes input m with
// tap 1, odd output 2m + 1 takes input m with tap 2 and input m + 1 with tap 0 (zero past the end).
// Vectorised over 16 input columns: 32 output columns, even and odd interleaved with one permute each.
torch::Tensor conv_transpose3x3_s2(torch::Tensor x, torch::Tensor weight, c10::optional<torch::Tensor> bias,
                                   c10::optional<torch::Tensor> out_opt) {
  TORCH_CHECK(x.dim() == 5 && x.is_contiguous() && x.scalar_type() == torch::kFloat32, "x must be contiguous float32 (N, C, D, H, W)");
  TORCH_CHECK(x.size(4) % 16 == 0, "conv_transpose3x3_s2 needs W % 16 == 0");
  const long N = x.size(0), Ci = x.size(1), D = x.size(2), H = x.size(3), W = x.size(4);
  TORCH_CHECK(weight.dim() == 5 && weight.size(0) == Ci && weight.size(2) == 3 && weight.size(3) == 3 && weight.size(4) == 3,
              "weight must be (C_in, C_out, 3, 3, 3)");
  const long Co = weight.size(1);
  auto wc = weight.contiguous();
  const float* pw = wc.data_ptr<float>();  // [ci][co][kz][ky][kx]
  auto out = output_of(out_opt, {N, Co, 2 * D, 2 * H, 2 * W}, x);
  const float* px = x.data_ptr<float>();
  float* po = out.data_ptr<float>();
  std::vector<float> b(Co, 0.f);
  if (bias.has_value() && bias->defined()) {
    auto bc = bias->contiguous();
    for (long co = 0; co < Co; co++) b[co] = bc.data_ptr<float>()[co];
  }
  const __m512i lo_idx = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i hi_idx = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const long D2 = 2 * D, H2 = 2 * H, W2 = 2 * W, planeo = H2 * W2, volo = D2 * planeo, plane = H * W, vol = D * plane;
  constexpr int COB = 8;  // output channels per register block
#pragma omp parallel for collapse(2) schedule(static)
  for (long nz = 0; nz < N * D2; nz++)
    for (long yo = 0; yo < H2; yo++) {
      const long n = nz / D2, zo = nz % D2;
      // contributing (input row, kz, ky) pairs: even -> (m, 1); odd -> (m, 2) and (m + 1, 0)
      long zi[2], yi[2];
      int kz[2], ky[2], nzs = 0, nys = 0;
      if (zo % 2 == 0) { zi[0] = zo / 2; kz[0] = 1; nzs = 1; }
      else { zi[0] = zo / 2; kz[0] = 2; nzs = 1; if (zo / 2 + 1 < D) { zi[1] = zo / 2 + 1; kz[1] = 0; nzs = 2; } }
      if (yo % 2 == 0) { yi[0] = yo / 2; ky[0] = 1; nys = 1; }
      else { yi[0] = yo / 2; ky[0] = 2; nys = 1; if (yo / 2 + 1 < H) { yi[1] = yo / 2 + 1; ky[1] = 0; nys = 2; } }
      for (long co0 = 0; co0 < Co; co0 += COB) {
        const int cob = (int)std::min<long>(COB, Co - co0);
        for (long xv = 0; xv < W; xv += 16) {
          const bool last = xv + 16 == W;
          __m512 ev[COB], od[COB];
          for (int c = 0; c < cob; c++) { ev[c] = _mm512_set1_ps(b[co0 + c]); od[c] = ev[c]; }
          for (int a = 0; a < nzs; a++)
            for (int bb = 0; bb < nys; bb++)
              for (long ci = 0; ci < Ci; ci++) {
                const float* row = px + ((n * Ci + ci) * D + zi[a]) * plane + yi[bb] * W + xv;
                const __m512 v = _mm512_loadu_ps(row);
                const __m512 vn = last ? _mm512_maskz_loadu_ps((__mmask16)0x7FFF, row + 1) : _mm512_loadu_ps(row + 1);
                const float* wk = pw + ((ci * Co + co0) * 3 + kz[a]) * 9 + ky[bb] * 3;  // [kx] for co0
                for (int c = 0; c < cob; c++) {
                  const float* w3 = wk + (long)c * 27;
                  ev[c] = _mm512_fmadd_ps(_mm512_set1_ps(w3[1]), v, ev[c]);
                  od[c] = _mm512_fmadd_ps(_mm512_set1_ps(w3[2]), v, _mm512_fmadd_ps(_mm512_set1_ps(w3[0]), vn, od[c]));
                }
              }
          for (int c = 0; c < cob; c++) {
            float* o = po + (n * Co + co0 + c) * volo + zo * planeo + yo * W2 + 2 * xv;
            _mm512_storeu_ps(o, _mm512_permutex2var_ps(ev[c], lo_idx, od[c]));
            _mm512_storeu_ps(o + 16, _mm512_permutex2var_ps(ev[c], hi_idx, od[c]));
          }
        }
      }
    }
  return out;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("conv_transpose3x3_s2", &conv_transpose3x3_s2, py::arg("x"), py::arg("weight"), py::arg("bias"),
        py::arg("out") = py::none());
  m.def("maxpool2", &maxpool2, py::arg("x"), py::arg("out") = py::none());
  m.def("supports", &supports);
  m.def("cec_forward", &cec_forward, py::arg("xs"), py::arg("w1"), py::arg("g1"), py::arg("be1"), py::arg("eps1"),
        py::arg("slope1"), py::arg("wd"), py::arg("g2"), py::arg("be2"), py::arg("eps2"), py::arg("slope2"),
        py::arg("w2"), py::arg("bias2"), py::arg("buf"), py::arg("out"), py::arg("residual"),
        py::arg("stream_min_bytes"), py::arg("head_weight") = py::none(), py::arg("head_bias") = py::none());
  m.def("aligned_buffer", &aligned_buffer);
}
