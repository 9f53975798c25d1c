// LUT-GEMM on x86 (AVX2, or AVX-512BW when present): y = Σ_g Σ_b alpha[g,b,n] · (Σ_c T_c[code_{b,c}(n)]) + offset[g,n]·Σ_{k∈g} x_k + bias.
//
// In the spirit of T-MAC (Wei et al., 2024): for each row of X and each run c of 4
// activations, the 16 signed sums T_c[code] = Σ_j ±x_j are built once, quantized to
// 7-bit integers ([-63, 63]) with one scale per (row, group), and kept as a 16-byte
// table, shifted by +64 into unsigned bytes ([1, 127]). `vpshufb` then looks up 32
// channels' codes in one instruction (the same table broadcast into both 128-bit lanes).
// The lookups of two runs add up in uint8 (at most 254), are widened to int16 with one
// AND (even bytes) or one logical shift (odd bytes), and summed over the group from a start
// of -64·runs that undoes the shift (every partial sum stays within ±16384 for groups up to
// 1024). Unsigned bytes widen in one op instead of a shift pair (on Zen 3 the shifts compete
// with `vpshufb` for the same two ports). Each bit-plane's sums are multiplied by alpha's
// 8-bit code with `vpmaddwd` and added up in int32 over the planes (exact, and on ports the
// lookups leave idle); the table scale is applied in fp32 once per group.
// Two rows of X are processed together so they share the unpacking of the codes. On CPUs with
// AVX-512BW the same loop runs on 512-bit registers (64 channels per shuffle), picked at
// run time.
//
// Weight layout (see quant/lut.py): planes (Np/64, K/4, bits, 32) uint8; the per-group
// scales double-quantized: alpha_code (G, bits, Np) uint8 with alpha_scale (Np,) bfloat16,
// offset_code (G, Np) int8 with offset_scale (Np,) bfloat16. The loops read the 8-bit
// codes directly: the per-channel scales factor out of every sum, so the group loop
// accumulates Σ_g Σ_b alpha_code·(table sums) and the epilogue multiplies by alpha_scale
// and adds offset_scale · Σ_g offset_code·Σ_{k∈g} x_k. No float copy of the scales is
// made, not even a per-call scratch. The byte order puts channel i in the low
// nibble of byte 2i: after the shuffle, the even bytes of a 16-bit word are channels
// 0..15 and the odd bytes channels 16..31, so the two shifts land on contiguous channels.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace {

// Tables for one row: T (C, 16) int8, scale (G,) and group sums (G,).
void build_tables(const float* x, int64_t K, int64_t group, uint8_t* tables, float* scale, float* sums) {
  // Sign patterns for codes 0..7: s_j(c) = +1 if bit j of c is set. Codes 8..15 need no FMAs:
  // s_j(15 - c) = -s_j(c), so T[8 + i] = -T[7 - i] (and the same for the rounded entries).
  alignas(32) float sgn[4][8];
  for (int j = 0; j < 4; ++j)
    for (int c = 0; c < 8; ++c) sgn[j][c] = ((c >> j) & 1) ? 1.0f : -1.0f;
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  const __m256i reverse = _mm256_setr_epi32(7, 6, 5, 4, 3, 2, 1, 0);
  const __m256i shift = _mm256_set1_epi16(64);  // [-63, 63] -> [1, 127]
  const __m256 sign_mask = _mm256_set1_ps(-0.0f);
  const int64_t G = K / group;
  for (int64_t g = 0; g < G; ++g) {
    const float* xg = x + g * group;
    // The largest entry of a run's table is Σ|x_j|: two runs per vector, summed by two hadds.
    __m256 vmax = _mm256_setzero_ps(), vsum = _mm256_setzero_ps();
    for (int64_t i = 0; i < group; i += 8) {
      const __m256 v = _mm256_loadu_ps(xg + i);
      vsum = _mm256_add_ps(vsum, v);
      const __m256 a = _mm256_andnot_ps(sign_mask, v);
      const __m256 pairs = _mm256_hadd_ps(a, a);
      vmax = _mm256_max_ps(vmax, _mm256_hadd_ps(pairs, pairs));
    }
    alignas(32) float lane_max[8], lane_sum[8];
    _mm256_store_ps(lane_max, vmax);
    _mm256_store_ps(lane_sum, vsum);
    float amax = 0.0f, total = 0.0f;
    for (int l = 0; l < 8; ++l) amax = std::max(amax, lane_max[l]), total += lane_sum[l];
    scale[g] = amax / 63.0f;
    sums[g] = total;
    const __m256 inv = _mm256_set1_ps(amax > 0.0f ? 63.0f / amax : 0.0f);
    for (int64_t i = 0; i < group; i += 4) {
      __m256 lo = _mm256_setzero_ps();
      for (int j = 0; j < 4; ++j) lo = _mm256_fmadd_ps(_mm256_set1_ps(xg[i + j]), _mm256_load_ps(sgn[j]), lo);
      const __m256i qlo = _mm256_cvtps_epi32(_mm256_mul_ps(lo, inv));  // rounds half to even: symmetric
      const __m256i qhi = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_permutevar8x32_epi32(qlo, reverse));
      const __m256i w16 = _mm256_add_epi16(_mm256_packs_epi32(qlo, qhi), shift);  // lo0-3 hi0-3 | lo4-7 hi4-7
      const __m256i b8 = _mm256_packus_epi16(w16, w16);
      const __m256i ordered = _mm256_permutevar8x32_epi32(b8, order);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(tables + ((g * group + i) / 4) * 16),
                       _mm256_castsi256_si128(ordered));
    }
  }
}

// 8 int8 codes, or 8 bfloat16 values, as 8 floats.
inline __m256 i8_to_float(const int8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}
inline __m256 bf16_to_float(const uint16_t* p) {  // bfloat16 is the top half of a float32
  const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}

// For each row r: iacc[r] += alpha_code[0..63] · sums[r] in int32, sums as 4 int16 vectors of
// 16 channels. `vpmaddwd` against the codes with every other 16-bit lane zeroed multiplies
// the even and the odd channels apart, so iacc[r][2v] holds channels 16v + 0, 2, .., 14 and
// iacc[r][2v + 1] channels 16v + 1, 3, .., 15 (finish_row puts them back in order). Exact: a
// plane's sum is at most 63·runs ≤ 16128, a code 255, and 4 planes stay below 2^24, so the
// conversion to float once per group is exact too. The rows share the widening of the codes,
// and the multiplies use ports the lookups leave idle.
template <int MR>
inline void add_plane(__m256i (*iacc)[8], const __m256i (*sums16)[4], const uint8_t* alpha_code) {
  const __m256i even = _mm256_set1_epi32(0x0000FFFF);
  for (int v = 0; v < 4; ++v) {
    const __m256i a = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(alpha_code + 16 * v)));
    const __m256i a_even = _mm256_and_si256(a, even), a_odd = _mm256_andnot_si256(even, a);
    for (int r = 0; r < MR; ++r) {
      iacc[r][2 * v] = _mm256_add_epi32(iacc[r][2 * v], _mm256_madd_epi16(sums16[r][v], a_even));
      iacc[r][2 * v + 1] = _mm256_add_epi32(iacc[r][2 * v + 1], _mm256_madd_epi16(sums16[r][v], a_odd));
    }
  }
}

// End of group g: acc[r] += table scale · iacc[r], and iacc starts over.
template <int MR>
inline void add_group(__m256 (*acc)[8], __m256i (*iacc)[8], const float* tscale, int64_t G, int64_t g) {
  for (int r = 0; r < MR; ++r) {
    const __m256 s = _mm256_set1_ps(tscale[r * G + g]);
    for (int v = 0; v < 8; ++v) {
      acc[r][v] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(iacc[r][v]), s, acc[r][v]);
      iacc[r][v] = _mm256_setzero_si256();
    }
  }
}

struct Problem {
  const uint8_t* planes;
  const uint8_t* tables;  // (M, C, 16), entries shifted by +64
  const float* tscale;
  const float* gsums;
  const uint8_t* alpha_code;
  const uint16_t* alpha_scale;  // bfloat16 bits
  const int8_t* offset_code;
  const uint16_t* offset_scale;  // bfloat16 bits
  const float* bias;
  float* y;
  int64_t M, N, C, bits, G, runs, Np;
};

// Row m, block nb: y = alpha_scale · acc + offset_scale · Σ_g gsum_g · offset_code[g] + bias.
inline void finish_row(const Problem& p, int64_t nb, int64_t m, const __m256* split) {
  const int64_t n0 = nb * 64, valid = std::min<int64_t>(64, p.N - n0);
  const float* gsums = p.gsums + m * p.G;
  __m256 acc[8];  // split holds the even and the odd channels of each 16 apart (add_plane): interleave them
  for (int v = 0; v < 4; ++v) {
    const __m256 lo = _mm256_unpacklo_ps(split[2 * v], split[2 * v + 1]);  // channels 0-3 | 8-11
    const __m256 hi = _mm256_unpackhi_ps(split[2 * v], split[2 * v + 1]);  // channels 4-7 | 12-15
    acc[2 * v] = _mm256_permute2f128_ps(lo, hi, 0x20);
    acc[2 * v + 1] = _mm256_permute2f128_ps(lo, hi, 0x31);
  }
  alignas(32) float out[64];
  for (int v = 0; v < 8; ++v) {
    const int64_t n = n0 + 8 * v;
    __m256 off = _mm256_setzero_ps();
    for (int64_t g = 0; g < p.G; ++g)
      off = _mm256_fmadd_ps(_mm256_set1_ps(gsums[g]), i8_to_float(p.offset_code + g * p.Np + n), off);
    const __m256 y = _mm256_fmadd_ps(acc[v], bf16_to_float(p.alpha_scale + n),
                                     _mm256_mul_ps(off, bf16_to_float(p.offset_scale + n)));
    if (valid == 64) {  // a whole block: straight to y (bias has N entries, so only here can it be loaded whole)
      float* yv = p.y + m * p.N + n;
      _mm256_storeu_ps(yv, p.bias ? _mm256_add_ps(y, _mm256_loadu_ps(p.bias + n)) : y);
    } else {
      _mm256_store_ps(out + 8 * v, y);
    }
  }
  if (valid == 64) return;
  float* yrow = p.y + m * p.N + n0;
  for (int64_t j = 0; j < valid; ++j) yrow[j] = p.bias ? out[j] + p.bias[n0 + j] : out[j];
}

// Rows m..m+MR-1 against the 64 channels of block nb.
template <int MR>
void block_rows(const Problem& p, int64_t nb, int64_t m) {
  const __m256i nibble = _mm256_set1_epi8(0x0F), low_byte = _mm256_set1_epi16(0x00FF);
  const __m256i unshift = _mm256_set1_epi16(static_cast<int16_t>(-64 * p.runs));  // 2 · 64 per pair of runs
  const uint8_t* block = p.planes + nb * p.C * p.bits * 32;
  __m256 acc[MR][8];
  __m256i iacc[MR][8];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < 8; ++v) acc[r][v] = _mm256_setzero_ps(), iacc[r][v] = _mm256_setzero_si256();
  for (int64_t g = 0; g < p.G; ++g) {
    for (int64_t b = 0; b < p.bits; ++b) {
      __m256i sums[MR][4];
      for (int r = 0; r < MR; ++r)
        for (int v = 0; v < 4; ++v) sums[r][v] = unshift;
      // Two runs at a time: with 7-bit tables, two lookups add up in uint8 without overflow,
      // which halves the widening work.
      for (int64_t c = g * p.runs; c < (g + 1) * p.runs; c += 2) {
        const __m256i ca = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + (c * p.bits + b) * 32));
        const __m256i cb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + ((c + 1) * p.bits + b) * 32));
        const __m256i la = _mm256_and_si256(ca, nibble), ha = _mm256_and_si256(_mm256_srli_epi16(ca, 4), nibble);
        const __m256i lb = _mm256_and_si256(cb, nibble), hb = _mm256_and_si256(_mm256_srli_epi16(cb, 4), nibble);
        for (int r = 0; r < MR; ++r) {
          const uint8_t* t = p.tables + ((m + r) * p.C + c) * 16;
          const __m256i ta = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t)));
          const __m256i tb = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t + 16)));
          const __m256i r0 = _mm256_add_epi8(_mm256_shuffle_epi8(ta, la), _mm256_shuffle_epi8(tb, lb));
          const __m256i r1 = _mm256_add_epi8(_mm256_shuffle_epi8(ta, ha), _mm256_shuffle_epi8(tb, hb));
          sums[r][0] = _mm256_add_epi16(sums[r][0], _mm256_and_si256(r0, low_byte));  // channels 0..15
          sums[r][1] = _mm256_add_epi16(sums[r][1], _mm256_srli_epi16(r0, 8));       // 16..31
          sums[r][2] = _mm256_add_epi16(sums[r][2], _mm256_and_si256(r1, low_byte));  // 32..47
          sums[r][3] = _mm256_add_epi16(sums[r][3], _mm256_srli_epi16(r1, 8));       // 48..63
        }
      }
      add_plane<MR>(iacc, sums, p.alpha_code + (g * p.bits + b) * p.Np + nb * 64);
    }
    add_group<MR>(acc, iacc, p.tscale + m * p.G, p.G, g);
  }
  for (int r = 0; r < MR; ++r) finish_row(p, nb, m + r, acc[r]);
}

bool cpu_has_avx512bw() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
}

// The same as block_rows with 512-bit shuffles: one `vpshufb` looks up all 64 channels
// (low nibbles in the lower half, high nibbles in the upper half), halving the work.
template <int MR>
__attribute__((target("avx512f,avx512bw"))) void block_rows_512(const Problem& p, int64_t nb, int64_t m) {
  const __m512i nibble = _mm512_set1_epi8(0x0F), low_byte = _mm512_set1_epi16(0x00FF);
  const __m512i unshift = _mm512_set1_epi16(static_cast<int16_t>(-64 * p.runs));
  const uint8_t* block = p.planes + nb * p.C * p.bits * 32;
  __m256 acc[MR][8];
  __m256i iacc[MR][8];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < 8; ++v) acc[r][v] = _mm256_setzero_ps(), iacc[r][v] = _mm256_setzero_si256();
  for (int64_t g = 0; g < p.G; ++g) {
    for (int64_t b = 0; b < p.bits; ++b) {
      __m512i even[MR], odd[MR];
      for (int r = 0; r < MR; ++r) even[r] = odd[r] = unshift;
      for (int64_t c = g * p.runs; c < (g + 1) * p.runs; c += 2) {
        const __m256i ca = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + (c * p.bits + b) * 32));
        const __m256i cb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + ((c + 1) * p.bits + b) * 32));
        // [low nibbles | high nibbles]: channels (0..31 in the word-interleaved order) then 32..63.
        const __m512i ia = _mm512_and_si512(
            _mm512_inserti64x4(_mm512_castsi256_si512(ca), _mm256_srli_epi16(ca, 4), 1), nibble);
        const __m512i ib = _mm512_and_si512(
            _mm512_inserti64x4(_mm512_castsi256_si512(cb), _mm256_srli_epi16(cb, 4), 1), nibble);
        for (int r = 0; r < MR; ++r) {
          const uint8_t* t = p.tables + ((m + r) * p.C + c) * 16;
          const __m512i ta = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t)));
          const __m512i tb = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t + 16)));
          const __m512i looked = _mm512_add_epi8(_mm512_shuffle_epi8(ta, ia), _mm512_shuffle_epi8(tb, ib));
          even[r] = _mm512_add_epi16(even[r], _mm512_and_si512(looked, low_byte));  // ch 0..15 | 32..47
          odd[r] = _mm512_add_epi16(odd[r], _mm512_srli_epi16(looked, 8));        // ch 16..31 | 48..63
        }
      }
      __m256i sums[MR][4];
      for (int r = 0; r < MR; ++r) {
        sums[r][0] = _mm512_castsi512_si256(even[r]), sums[r][1] = _mm512_castsi512_si256(odd[r]);
        sums[r][2] = _mm512_extracti64x4_epi64(even[r], 1), sums[r][3] = _mm512_extracti64x4_epi64(odd[r], 1);
      }
      add_plane<MR>(iacc, sums, p.alpha_code + (g * p.bits + b) * p.Np + nb * 64);
    }
    add_group<MR>(acc, iacc, p.tscale + m * p.G, p.G, g);
  }
  for (int r = 0; r < MR; ++r) finish_row(p, nb, m + r, acc[r]);
}

}  // namespace

std::string isa() { return cpu_has_avx512bw() ? "avx512bw" : "avx2"; }

// use_avx512: -1 = auto, 0 = force AVX2, 1 = force AVX-512BW.
torch::Tensor lut_linear(torch::Tensor x, torch::Tensor planes, torch::Tensor alpha_code, torch::Tensor alpha_scale,
                         torch::Tensor offset_code, torch::Tensor offset_scale, torch::Tensor bias, int64_t N,
                         int64_t group, int64_t use_avx512) {
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == torch::kFloat32 && x.is_contiguous(), "x must be contiguous float32 (M, K)");
  TORCH_CHECK(planes.dim() == 4 && planes.scalar_type() == torch::kUInt8 && planes.is_contiguous(), "planes must be uint8 (Np/64, K/4, bits, 32)");
  TORCH_CHECK(alpha_code.scalar_type() == torch::kUInt8 && offset_code.scalar_type() == torch::kInt8 &&
                  alpha_scale.scalar_type() == torch::kBFloat16 && offset_scale.scalar_type() == torch::kBFloat16 &&
                  alpha_code.is_contiguous() && offset_code.is_contiguous() && alpha_scale.is_contiguous() &&
                  offset_scale.is_contiguous(),
              "alpha_code/offset_code must be contiguous uint8/int8, alpha_scale/offset_scale bfloat16");
  const int64_t M = x.size(0), K = x.size(1);
  const int64_t NB = planes.size(0), C = planes.size(1), bits = planes.size(2), Np = 64 * NB;
  TORCH_CHECK(C * 4 == K && K % group == 0 && group % 8 == 0 && group <= 1024, "K, group and planes do not match");
  TORCH_CHECK(bits >= 1 && bits <= 4, "at most 4 bit-planes (the int32 plane sums stay exact in float below 2^24)");
  const int64_t G = K / group, runs = group / 4;
  TORCH_CHECK(N <= Np && alpha_code.dim() == 3 && alpha_code.size(0) == G && alpha_code.size(1) == bits &&
                  alpha_code.size(2) == Np && offset_code.dim() == 2 && offset_code.size(0) == G &&
                  offset_code.size(1) == Np && alpha_scale.numel() == Np && offset_scale.numel() == Np,
              "N, K or bits do not match the packed weight and its scales");


  // Per-thread buffers kept across calls (a frame makes ~110 calls; three tensors per call cost
  // a few µs, several % of a 64-token call): tables (M, C, 16), table scales and group sums (M, G).
  thread_local std::vector<uint8_t> table_buf;
  thread_local std::vector<float> tscale_buf, gsum_buf;
  table_buf.resize(M * C * 16);
  tscale_buf.resize(M * G);
  gsum_buf.resize(M * G);
  const float* xp = x.data_ptr<float>();
  uint8_t* tp = table_buf.data();
  float* sp = tscale_buf.data();
  float* gp = gsum_buf.data();
  // Small jobs stay on one thread (waking a second costs more than it saves).
  at::parallel_for(0, M, std::max<int64_t>(4, (1 << 15) / K), [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m) build_tables(xp + m * K, K, group, tp + m * C * 16, sp + m * G, gp + m * G);
  });

  auto y = torch::empty({M, N}, torch::kFloat32);
  float* yp = y.data_ptr<float>();
  const uint8_t* pp = planes.data_ptr<uint8_t>();
  const uint8_t* ap = alpha_code.data_ptr<uint8_t>();
  const int8_t* op = offset_code.data_ptr<int8_t>();
  const uint16_t* asp = reinterpret_cast<const uint16_t*>(alpha_scale.data_ptr<at::BFloat16>());
  const uint16_t* osp = reinterpret_cast<const uint16_t*>(offset_scale.data_ptr<at::BFloat16>());
  const float* bp = bias.numel() ? bias.data_ptr<float>() : nullptr;

  // A task is one 64-channel block for up to 2 rows (the rows share the code unpacking), handed
  // out dynamically: on a busy machine a descheduled thread holds back one task, not half the work.
  const int64_t row_pairs = (M + 1) / 2;
  const int64_t tasks = NB * row_pairs;
  const int64_t lookups = tasks * 2 * C * bits * 64;
  const int64_t threads =
      lookups < (int64_t{1} << 21) ? 1 : std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), tasks));
  const Problem p{pp, tp, sp, gp, ap, asp, op, osp, bp, yp, M, N, C, bits, G, runs, Np};
  const bool wide = use_avx512 < 0 ? cpu_has_avx512bw() : use_avx512 == 1;
  TORCH_CHECK(!wide || cpu_has_avx512bw(), "this CPU has no AVX-512BW");
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (threads > 1)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t nb = t % NB, m = 2 * (t / NB);
    if (wide) {
      if (m + 1 < M) block_rows_512<2>(p, nb, m);
      else block_rows_512<1>(p, nb, m);
    } else {
      if (m + 1 < M) block_rows<2>(p, nb, m);
      else block_rows<1>(p, nb, m);
    }
  }
  return y;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("isa", &isa, "which byte-shuffle width this CPU runs: avx512bw or avx2");
  m.def("lut_linear", &lut_linear, "LUT-GEMM with 7-bit activation tables and byte-shuffle lookups");
}
