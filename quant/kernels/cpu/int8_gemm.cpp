// Vector-wise int8 linear layer for x86 CPUs: y = (sx ⊗ sw) · (Xq Wqᵀ) + bias.
//
// Weights arrive already quantized (int8, one scale per output channel) and packed
// in the blocked layout [N/16][K/4][16][4]: for a block of 16 output channels, the
// 4 consecutive input features of each channel sit side by side. That is exactly the
// operand shape of the x86 int8 dot-product instructions, which multiply 4 unsigned
// bytes by 4 signed bytes and add the 4 products into one int32 lane:
//
//   * AVX-512 VNNI  `vpdpbusd`: 16 lanes, no intermediate saturation. Activations are
//     quantized to [-127, 127] and shifted by +128 into unsigned bytes; the shift is
//     undone with the per-channel weight sums: Σ(q+128)w = Σqw + 128·Σw.
//   * AVX2 `vpmaddubsw` + `vpmaddwd`: 8 lanes, but the first step adds pairs of
//     u8×s8 products into int16 and saturates above 32767. With 7-bit activations
//     ([-63, 63], shifted by +64 to [1, 127]) a pair is at most 2·127·127 = 32258, so
//     nothing saturates and the result is exact (fbgemm's "reduce_range" does the same
//     on CPUs without VNNI).
//
// Each path returns the exact integer product, so the result equals a plain int32
// matmul of the same quantized operands. Everything else of LLM.int8 happens here too,
// to keep per-call overhead small: the outlier columns are found, masked out of the row
// quantization and copied aside (X[:, O], M × |O|), and each tile's epilogue adds their
// fp32 product with the int8 weight columns dequantized once per call (a rank-|O| update
// of y done in registers, before y is stored once). The epilogue is vectorized too: the
// accumulators start at -zp·Σw (undoing the shift), then y = float(acc) · (sx·sw) + bias
// is one convert and one fused multiply-add per 8 or 16 lanes.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace {

bool cpu_has_vnni512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vnni");
}

// Per-thread buffers kept across calls: a streaming frame makes ~110 calls, and fresh
// allocations (page faults on the large ones) cost more than the small jobs themselves.
// thread_local keeps two Python threads calling the kernel at once apart.
struct Scratch {
  std::vector<uint8_t> xq;    // (M, Kp) shifted quantized activations
  std::vector<float> sx;      // (M) row scales
  std::vector<float> xo;      // (M, |O|) the outlier columns of x
  std::vector<float> wcols;   // (Np/16, |O|, 16) sw ⊙ Wq[:, O]ᵀ by block of 16 channels, zero past N
  std::vector<float> sw_b;    // (2·Np) weight scales then bias, zero past N
  std::vector<float> colmax;  // (K) largest |x| per column
  std::vector<float> keep;    // (K) 1 for columns quantized to int8, 0 for outliers
  std::vector<int64_t> cols;  // the outlier columns
};

// ---------------------------------------------------------------- outliers
// Columns of x whose largest |value| reaches `threshold` (LLM.int8 outliers); none if threshold <= 0.
void find_outliers(const float* x, int64_t M, int64_t K, double threshold, Scratch& s) {
  s.cols.clear();
  if (threshold <= 0.0) return;
  s.colmax.assign(K, 0.0f);
  float* cm = s.colmax.data();
  const __m256 sign_mask = _mm256_set1_ps(-0.0f);
  for (int64_t m = 0; m < M; ++m) {
    const float* row = x + m * K;
    int64_t k = 0;
    for (; k + 8 <= K; k += 8)
      _mm256_storeu_ps(cm + k, _mm256_max_ps(_mm256_loadu_ps(cm + k),
                                             _mm256_andnot_ps(sign_mask, _mm256_loadu_ps(row + k))));
    for (; k < K; ++k) cm[k] = std::max(cm[k], std::fabs(row[k]));
  }
  for (int64_t k = 0; k < K; ++k)
    if (cm[k] >= static_cast<float>(threshold)) s.cols.push_back(k);
}

// ---------------------------------------------------------------- activation rows
// Quantize each row of x (M, K) to q = round(x · qmax / absmax) over the kept columns,
// then store q + zp as uint8 in xq (M, Kp); padded and outlier columns get q = 0. The
// outlier columns' float values are copied to xo (M, |O|) on the way.
void quantize_rows(const float* x, int64_t M, int64_t K, int64_t Kp, int qmax, int zp, Scratch& s) {
  const int64_t ncols = static_cast<int64_t>(s.cols.size());
  const float* keep = nullptr;
  if (ncols) {
    s.keep.assign(K, 1.0f);
    for (int64_t k : s.cols) s.keep[k] = 0.0f;
    keep = s.keep.data();
  }
  const int64_t* cols = s.cols.data();
  uint8_t* xq = s.xq.data();
  float* sx = s.sx.data();
  float* xo = s.xo.data();
  // Small jobs stay on one thread: waking a second one costs more than it saves, and on a
  // loaded machine a descheduled worker can stall the whole call for a time slice.
  const int64_t grain = std::max<int64_t>(16, (1 << 16) / std::max<int64_t>(K, 1));
  at::parallel_for(0, M, grain, [&](int64_t m0, int64_t m1) {
    const __m256 sign_mask = _mm256_set1_ps(-0.0f);
    const __m256i zp_v = _mm256_set1_epi32(zp);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int64_t m = m0; m < m1; ++m) {
      const float* row = x + m * K;
      uint8_t* out = xq + m * Kp;
      for (int64_t c = 0; c < ncols; ++c) xo[m * ncols + c] = row[cols[c]];
      __m256 vmax = _mm256_setzero_ps();
      int64_t k = 0;
      for (; k + 8 <= K; k += 8) {
        __m256 v = _mm256_andnot_ps(sign_mask, _mm256_loadu_ps(row + k));
        if (keep) v = _mm256_mul_ps(v, _mm256_loadu_ps(keep + k));
        vmax = _mm256_max_ps(vmax, v);
      }
      float lanes[8];
      _mm256_storeu_ps(lanes, vmax);
      float amax = 0.0f;
      for (int i = 0; i < 8; ++i) amax = std::max(amax, lanes[i]);
      for (; k < K; ++k) amax = std::max(amax, std::fabs(row[k]) * (keep ? keep[k] : 1.0f));
      const float inv = amax > 0.0f ? static_cast<float>(qmax) / amax : 0.0f;
      sx[m] = amax / static_cast<float>(qmax);
      const __m256 inv_v = _mm256_set1_ps(inv);
      k = 0;
      for (; k + 32 <= K; k += 32) {
        __m256i q[4];
        for (int j = 0; j < 4; ++j) {
          __m256 v = _mm256_mul_ps(_mm256_loadu_ps(row + k + 8 * j), inv_v);
          if (keep) v = _mm256_mul_ps(v, _mm256_loadu_ps(keep + k + 8 * j));
          q[j] = _mm256_add_epi32(_mm256_cvtps_epi32(v), zp_v);  // round half to even
        }
        __m256i ab = _mm256_packs_epi32(q[0], q[1]);
        __m256i cd = _mm256_packs_epi32(q[2], q[3]);
        __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(ab, cd), order);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + k), bytes);
      }
      for (; k < K; ++k) {
        float v = row[k] * inv;
        if (keep) v *= keep[k];
        out[k] = static_cast<uint8_t>(static_cast<int>(std::nearbyint(v)) + zp);
      }
      for (; k < Kp; ++k) out[k] = static_cast<uint8_t>(zp);
    }
  });
}

// ---------------------------------------------------------------- epilogue
// y[m, n] = float(acc) · sx[m] · sw[n] + bias[n] + Σ_j xo[m, j] · sw[n] · Wq[n, O_j], where acc
// already holds Σ(q+zp)w - zp·Σw (the accumulators start at -zp·wsum). The last sum is the
// fp32 outlier part of LLM.int8, empty when there are no outliers.
struct Epilogue {
  const int32_t* wsum;  // (Np)
  int zp;
  const float* sw;      // (Np), zero past N
  const float* bias;    // (Np), zero past N (and everywhere without a bias)
  const float* sx;      // (M)
  const float* xo;      // (M, ncols)
  const float* wcols;   // (Np/16, ncols, 16): a tile's outlier weights sit together, not |O| rows apart
  int64_t ncols;
  float* y;             // (M, N)
  int64_t N;
};

// ---------------------------------------------------------------- AVX-512 VNNI
__attribute__((target("avx512f"))) inline void store16(float* dst, __m512 v, int64_t count) {
  if (count >= 16) _mm512_storeu_ps(dst, v);
  else if (count > 0) _mm512_mask_storeu_ps(dst, static_cast<__mmask16>((1u << count) - 1), v);
}

// MR rows of X times NV blocks of 16 channels, over the whole K, then the epilogue in registers.
template <int MR, int NV>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void tile_vnni(
    const uint8_t* xq, int64_t ldx, const int8_t* wp, int64_t block_stride, int64_t K4,
    int64_t m, const Epilogue& e, int64_t n0, int64_t valid) {
  __m512i acc[MR][NV];
  const __m512i neg_zp = _mm512_set1_epi32(-e.zp);
  for (int v = 0; v < NV; ++v) {
    const __m512i start = _mm512_mullo_epi32(_mm512_loadu_si512(e.wsum + n0 + 16 * v), neg_zp);
    for (int r = 0; r < MR; ++r) acc[r][v] = start;
  }
  for (int64_t k4 = 0; k4 < K4; ++k4) {
    __m512i w[NV];
    for (int v = 0; v < NV; ++v)
      w[v] = _mm512_loadu_si512(reinterpret_cast<const void*>(wp + v * block_stride + k4 * 64));
    for (int r = 0; r < MR; ++r) {
      int32_t four;
      std::memcpy(&four, xq + r * ldx + k4 * 4, 4);
      const __m512i xb = _mm512_set1_epi32(four);
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_dpbusd_epi32(acc[r][v], xb, w[v]);
    }
  }
  // Dequantize in place, then add the outlier columns: each weight vector is loaded once for all MR rows.
  __m512 f[MR][NV];
  for (int v = 0; v < NV; ++v) {
    const __m512 sw = _mm512_loadu_ps(e.sw + n0 + 16 * v), bias = _mm512_loadu_ps(e.bias + n0 + 16 * v);
    for (int r = 0; r < MR; ++r)
      f[r][v] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[r][v]), _mm512_mul_ps(_mm512_set1_ps(e.sx[m + r]), sw), bias);
  }
  for (int64_t c = 0; c < e.ncols; ++c) {
    const float* wc = e.wcols + ((n0 / 16) * e.ncols + c) * 16;  // block v is ncols·16 floats further
    __m512 wv[NV];
    for (int v = 0; v < NV; ++v) wv[v] = _mm512_loadu_ps(wc + v * e.ncols * 16);
    for (int r = 0; r < MR; ++r) {
      const __m512 xv = _mm512_set1_ps(e.xo[(m + r) * e.ncols + c]);
      for (int v = 0; v < NV; ++v) f[r][v] = _mm512_fmadd_ps(xv, wv[v], f[r][v]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) store16(e.y + (m + r) * e.N + n0 + 16 * v, f[r][v], valid - 16 * v);
}

// ---------------------------------------------------------------- AVX2
inline void store8(float* dst, __m256 v, int64_t count) {
  if (count >= 8) {
    _mm256_storeu_ps(dst, v);
  } else if (count > 0) {
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count)),
                                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    _mm256_maskstore_ps(dst, mask, v);
  }
}

// The same as tile_vnni on 8-lane registers. NV counts 8-channel halves of 16-channel
// blocks: half v lives in block v/2 at byte 32·(v%2).
template <int MR, int NV>
void tile_avx2(const uint8_t* xq, int64_t ldx, const int8_t* wp, int64_t block_stride, int64_t K4,
               int64_t m, const Epilogue& e, int64_t n0, int64_t valid) {
  __m256i acc[MR][NV];
  const __m256i neg_zp = _mm256_set1_epi32(-e.zp);
  for (int v = 0; v < NV; ++v) {
    const __m256i start = _mm256_mullo_epi32(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(e.wsum + n0 + 8 * v)), neg_zp);
    for (int r = 0; r < MR; ++r) acc[r][v] = start;
  }
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t k4 = 0; k4 < K4; ++k4) {
    __m256i w[NV];
    for (int v = 0; v < NV; ++v)
      w[v] = _mm256_loadu_si256(
          reinterpret_cast<const __m256i*>(wp + (v / 2) * block_stride + k4 * 64 + 32 * (v % 2)));
    for (int r = 0; r < MR; ++r) {
      int32_t four;
      std::memcpy(&four, xq + r * ldx + k4 * 4, 4);
      const __m256i xb = _mm256_set1_epi32(four);
      for (int v = 0; v < NV; ++v) {
        const __m256i pairs = _mm256_maddubs_epi16(xb, w[v]);  // exact for 7-bit activations
        acc[r][v] = _mm256_add_epi32(acc[r][v], _mm256_madd_epi16(pairs, ones));
      }
    }
  }
  __m256 f[MR][NV];
  for (int v = 0; v < NV; ++v) {
    const __m256 sw = _mm256_loadu_ps(e.sw + n0 + 8 * v), bias = _mm256_loadu_ps(e.bias + n0 + 8 * v);
    for (int r = 0; r < MR; ++r)
      f[r][v] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[r][v]), _mm256_mul_ps(_mm256_set1_ps(e.sx[m + r]), sw), bias);
  }
  for (int64_t c = 0; c < e.ncols; ++c) {
    const float* wc = e.wcols + ((n0 / 16) * e.ncols + c) * 16;
    __m256 wv[NV];
    for (int v = 0; v < NV; ++v) wv[v] = _mm256_loadu_ps(wc + (v / 2) * e.ncols * 16 + 8 * (v % 2));
    for (int r = 0; r < MR; ++r) {
      const __m256 xv = _mm256_set1_ps(e.xo[(m + r) * e.ncols + c]);
      for (int v = 0; v < NV; ++v) f[r][v] = _mm256_fmadd_ps(xv, wv[v], f[r][v]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) store8(e.y + (m + r) * e.N + n0 + 8 * v, f[r][v], valid - 8 * v);
}

using TileFn = void (*)(const uint8_t*, int64_t, const int8_t*, int64_t, int64_t, int64_t,
                        const Epilogue&, int64_t, int64_t);

// Tables of instantiations: [rows 1..MR][vectors 1..NV].
template <int NV>
TileFn vnni_fn(int rows) {
  switch (rows) {
    case 1: return tile_vnni<1, NV>;
    case 2: return tile_vnni<2, NV>;
    case 3: return tile_vnni<3, NV>;
    case 4: return tile_vnni<4, NV>;
    case 5: return tile_vnni<5, NV>;
    default: return tile_vnni<6, NV>;
  }
}
TileFn pick_vnni(int rows, int nv) {
  switch (nv) {
    case 1: return vnni_fn<1>(rows);
    case 2: return vnni_fn<2>(rows);
    case 3: return vnni_fn<3>(rows);
    default: return vnni_fn<4>(rows);
  }
}
template <int NV>
TileFn avx2_fn(int rows) {
  switch (rows) {
    case 1: return tile_avx2<1, NV>;
    case 2: return tile_avx2<2, NV>;
    case 3: return tile_avx2<3, NV>;
    default: return tile_avx2<4, NV>;
  }
}
TileFn pick_avx2(int rows, int nv) { return nv == 1 ? avx2_fn<1>(rows) : avx2_fn<2>(rows); }

}  // namespace

std::string isa() { return cpu_has_vnni512() ? "avx512vnni" : "avx2"; }

// The whole LLM.int8 forward for x (M, K) float32: outlier detection, row quantization,
// int8 GEMM with dequantizing epilogue, fp32 outlier columns.
// w_packed (Np/16, Kp/4, 16, 4) int8; w_scale (N) float32; w_sum (Np) int32; bias (N) or empty.
// use_vnni: -1 = auto, 0 = force AVX2, 1 = force VNNI.
torch::Tensor int8_linear(torch::Tensor x, torch::Tensor w_packed, torch::Tensor w_scale,
                          torch::Tensor w_sum, torch::Tensor bias, int64_t N, double threshold,
                          int64_t use_vnni) {
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == torch::kFloat32 && x.is_contiguous(),
              "x must be a contiguous float32 matrix");
  TORCH_CHECK(w_packed.dim() == 4 && w_packed.scalar_type() == torch::kInt8 && w_packed.is_contiguous(),
              "w_packed must be contiguous int8 (Np/16, Kp/4, 16, 4)");
  const int64_t M = x.size(0), K = x.size(1);
  const int64_t NB = w_packed.size(0), K4 = w_packed.size(1), Kp = 4 * K4, Np = 16 * NB;
  TORCH_CHECK(Kp >= K && Kp - K < 4, "packed K does not match x");
  TORCH_CHECK(N <= Np && N > Np - 16, "N does not match the packed weight");
  TORCH_CHECK(w_sum.numel() == Np && w_scale.numel() == N && (bias.numel() == 0 || bias.numel() == N),
              "w_sum, w_scale or bias has the wrong size");
  const bool vnni = use_vnni < 0 ? cpu_has_vnni512() : use_vnni == 1;
  TORCH_CHECK(!vnni || cpu_has_vnni512(), "this CPU has no AVX-512 VNNI");
  const int qmax = vnni ? 127 : 63;
  const int zp = vnni ? 128 : 64;
  const float* xp_f = x.data_ptr<float>();

  thread_local Scratch s;
  find_outliers(xp_f, M, K, threshold, s);
  const int64_t ncols = static_cast<int64_t>(s.cols.size());
  s.xq.resize(M * Kp);
  s.sx.resize(M);
  s.xo.resize(M * ncols);
  quantize_rows(xp_f, M, K, Kp, qmax, zp, s);

  // Scales and bias padded to Np, so the epilogue loads whole vectors at the right edge too.
  const float* sw = w_scale.data_ptr<float>();
  s.sw_b.assign(2 * Np, 0.0f);
  std::memcpy(s.sw_b.data(), sw, N * sizeof(float));
  if (bias.numel()) std::memcpy(s.sw_b.data() + Np, bias.data_ptr<float>(), N * sizeof(float));
  // The outlier columns' weights, dequantized once, block by block (each block's column j is
  // one 64-byte line of the packed weight): wcols[b, j, i] = sw[n] · Wq[n, cols[j]], n = 16b + i.
  const int8_t* w = w_packed.data_ptr<int8_t>();
  const int64_t block_stride = K4 * 64;  // bytes per 16-channel block
  s.wcols.resize(NB * ncols * 16);
  for (int64_t b = 0; b < NB; ++b)
    for (int64_t j = 0; j < ncols; ++j) {
      const int64_t k = s.cols[j];
      const int8_t* line = w + b * block_stride + (k / 4) * 64 + k % 4;  // channel 16b + i at line[4i]
      float* out = s.wcols.data() + (b * ncols + j) * 16;
      for (int64_t i = 0; i < 16; ++i) out[i] = static_cast<float>(line[4 * i]) * s.sw_b[16 * b + i];
    }

  auto y = torch::empty({M, N}, torch::kFloat32);
  const Epilogue e{w_sum.data_ptr<int32_t>(), zp, s.sw_b.data(), s.sw_b.data() + Np, s.sx.data(),
                   s.xo.data(), s.wcols.data(), ncols, y.data_ptr<float>(), N};
  const uint8_t* xqp = s.xq.data();
  const int blocks_per_panel = vnni ? 4 : 1;
  const int MR = vnni ? 6 : 4;
  const int64_t panels = (NB + blocks_per_panel - 1) / blocks_per_panel;
  // Tasks: (a panel of channels) × (a chunk of rows), handed out dynamically so that a thread
  // descheduled on a busy machine holds back one small task, not half the matrix. A chunk's
  // activations (~256 KB) stay in L2 while every panel of weights passes over them: for large K,
  // chunks of 32 rows streamed the weights twice as often and ran ~15% slower (4096², AVX2).
  const int64_t chunk_rows = MR * std::clamp<int64_t>((int64_t{1} << 18) / (Kp * MR), 8, 64);
  const int64_t chunks = (M + chunk_rows - 1) / chunk_rows;
  const int64_t tasks = panels * chunks;
  // About 2M multiply-adds (tens of microseconds) in total before a second thread is worth waking.
  const int64_t threads =
      (M * Kp * N < (int64_t{1} << 21)) ? 1 : std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), tasks));
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (threads > 1)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t p = t % panels, chunk = t / panels;
    const int64_t b0 = p * blocks_per_panel;
    const int nb = static_cast<int>(std::min<int64_t>(blocks_per_panel, NB - b0));
    const int64_t n0 = 16 * b0;
    const int64_t valid = std::min<int64_t>(16 * nb, N - n0);
    const int64_t m_end = std::min<int64_t>(M, (chunk + 1) * chunk_rows);
    for (int64_t m = chunk * chunk_rows; m < m_end; m += MR) {
      const int rows = static_cast<int>(std::min<int64_t>(MR, m_end - m));
      TileFn fn = vnni ? pick_vnni(rows, nb) : pick_avx2(rows, 2 * nb);
      fn(xqp + m * Kp, Kp, w + b0 * block_stride, block_stride, K4, m, e, n0, valid);
    }
  }
  return y;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("isa", &isa, "which int8 dot-product path this CPU runs: avx512vnni or avx2");
  m.def("int8_linear", &int8_linear, "LLM.int8 forward: outliers in fp32, the rest through int8");
}
