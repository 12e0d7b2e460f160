// edgeq's int8 convolution for x86-64 with AVX-512 VNNI (and VBMI): a direct conv on vpdpbusd (u8 x s8, 4 MACs per
// lane) with pixels in the lanes, so that it reads and writes NCHW-ordered data and needs no transposes; the stems
// as 1x1 convs over their patches (edgeq_conv2d_u8s8_patch_requant); the batch-1 linear layer after the pool
// (edgeq_linear_u8s8); and Winograd F(4x4, 3x3) for 3x3 stride-1 convs with up to 128 channels
// (edgeq_winograd_conv_requant, at the end).
//
// Output pixels are computed on a grid as wide as the (phase-split) padded input, wq columns: output (oh, ow) is
// grid position q = oh * wq + ow, and tap (i, j) reads the input at q plus a constant offset. Sixteen consecutive
// grid positions are one contiguous 64-byte load, whatever the row breaks; the columns ow >= out_w are computed
// and dropped (vpcompressd packs the valid lanes, in NCHW order). A stride s splits the input into s x s
// phase planes (the pass does this when packing), in which every tap is again a stride-1 read.
//
// Linked into IREE executables (edgeq/dialect_passes/conv_kernel.py); freestanding: no libc, no globals.
// Layouts (all dense, static per layer):
//   x    [c4][ph][pw][plane][4]  u8   activations + 128, padded, 4 channels per 32-bit lane (edgeq_pack_u8 below)
//   w    [oc8][kh][kw][c4][8][4]  s8   weights, 8 output channels x 4 input channels per 32 bytes (the rows kernel's:
//                                       16 per 64 bytes, below)
//   bias [oc8 * 8]  i32   where the sums start: -128 * sum(w) per output channel undoes the +128
//   y    [oc][out_h][out_w]  i32, or i8 requantized (edgeq_conv2d_u8s8_requant)
// Workgroup (gx, gy) computes the gx-th `group` of 8-channel blocks of output channels for the gy-th of `parts`
// equal parts of the grid vectors, in tiles of up to 3 vectors of nearly equal sizes; a workgroup's blocks reuse
// each tile's input from L1. Each C function here splits its work into as many parts as the pass says: equal
// (one part larger than the others holds them all up), an even count where it can (conv_kernel.py's _split), few
// enough that IREE's workers take them one at a time (MAX_WORKGROUPS), and large enough that IREE's 0.1 us per
// workgroup does not count.
// Sums wrap in i32 like the reference's (vpdpbusd does not saturate), so the result is exact.
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#define TILE_CHANNELS 8  // 8 output channels x 3 vectors of 16 pixels: 24 accumulators, 3 inputs, 1 broadcast
#define TILE_VECTORS 3

typedef struct {
  int32_t c4, oc, kh, kw, sh, sw, dh, dw, pw, wq, out_w, grid;
  size_t plane, cstride;
} shape_t;

// Which lanes of the 16 grid positions from q are output pixels, and where the first of them goes in the row-major
// output plane.
static inline uint16_t valid_lanes(const shape_t* s, int q, size_t* first) {
  if (s->wq == s->out_w) {  // no columns to drop (1x1 convs without padding): the grid is the output
    *first = (size_t)q;
    return s->grid - q >= 16 ? 0xFFFF : (uint16_t)((1u << (s->grid - q)) - 1);
  }
  int col = q % s->wq;
  *first = (size_t)(q / s->wq) * s->out_w + (col < s->out_w ? col : s->out_w);
  uint16_t mask = 0;
  for (int l = 0; l < 16; ++l) {
    if (q + l < s->grid && col < s->out_w) mask |= (uint16_t)(1u << l);
    if (++col == s->wq) col = 0;
  }
  return mask;
}

// The requantization edgeq's integer models apply to a conv's i32 sums, in i64 like the reference:
//   y = i8(clamp((acc * m[oc] + 2^(shift - 1)) >> shift, lo, hi) + zp)
typedef struct {
  const int32_t* m;
  int32_t shift, lo, hi, zp;
} requant_t;

// 16 sums requantized, as i32 whose saturation to i8 is the result; m holds the even lanes' multipliers in its
// i64 lanes, m_odd the odd lanes' (the same for 16 sums of one output channel). vpmuldq multiplies the even i32
// lanes, sign-extended, into i64; the odd ones are shifted down first. Shifts of 33 and more (edgeq's usual) need
// only the products' high halves:
// (p + 2^(s-1)) >> s = (hi(p) + 2^(s-33)) >> (s - 32), as the low half cannot carry into the rounding bit's sum.
// Clamping to the i8 range after the zero point is the saturation (vpmovsdb, or vpackssdw + vpacksswb).
// `usual` (a constant where the caller has a copy for it): see usual_requant.
static inline __attribute__((always_inline)) __m512i requantize32(__m512i acc, const requant_t* rq, __m512i m,
                                                                  __m512i m_odd, const int usual) {
  const __m512i even = _mm512_mul_epi32(acc, m), odd = _mm512_mul_epi32(_mm512_srli_epi64(acc, 32), m_odd);
  __m512i y;
  if (usual) {
    const __m512i hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
    const int32_t add = (1 << (rq->shift - 33)) + rq->zp * (1 << (rq->shift - 32));
    return _mm512_sra_epi32(_mm512_add_epi32(hi, _mm512_set1_epi32(add)), _mm_cvtsi32_si128(rq->shift - 32));
  }
  if (rq->shift >= 33) {
    const __m512i hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
    y = _mm512_sra_epi32(_mm512_add_epi32(hi, _mm512_set1_epi32(1 << (rq->shift - 33))),
                         _mm_cvtsi32_si128(rq->shift - 32));
  } else {
    const __m512i round = _mm512_set1_epi64(1ll << (rq->shift - 1));
    const __m128i shift = _mm_cvtsi32_si128(rq->shift);
    const __m512i lo = _mm512_sra_epi64(_mm512_add_epi64(even, round), shift);
    const __m512i hi = _mm512_sra_epi64(_mm512_add_epi64(odd, round), shift);
    // clamped in i64 first: the shifted values need not fit i32
    const __m512i lo64 = _mm512_set1_epi64(rq->lo), hi64 = _mm512_set1_epi64(rq->hi);
    y = _mm512_mask_blend_epi32(0xAAAA, _mm512_min_epi64(_mm512_max_epi64(lo, lo64), hi64),
                                _mm512_slli_epi64(_mm512_min_epi64(_mm512_max_epi64(hi, lo64), hi64), 32));
  }
  if (rq->lo + rq->zp != -128 || rq->hi + rq->zp != 127)
    y = _mm512_min_epi32(_mm512_max_epi32(y, _mm512_set1_epi32(rq->lo)), _mm512_set1_epi32(rq->hi));
  return _mm512_add_epi32(y, _mm512_set1_epi32(rq->zp));
}

// edgeq's usual requantization: a shift of 33 to 50, and no clamp but the i8 saturation (lo + zp = -128, hi + zp =
// 127). Its rounding and zero point are then one added constant, 2^(s-33) + zp 2^(s-32): adding zp 2^(s-32) before
// the shift by s - 32 adds zp after it, and the i32 sum cannot wrap (|hi(p)| < 2^30, the constant < 2^27). In the
// grid kernel's epilogue, with one copy for it, MobileNetV2's expand convs take 9% less time.
static inline int usual_requant(const requant_t* rq) {
  return rq->shift >= 33 && rq->shift <= 50 && rq->lo + rq->zp == -128 && rq->hi + rq->zp == 127;
}

// A residual add of edgeq's integer models after the requantization, fused into the epilogue:
//   y = i8(clamp(((c mc + r mr + k) >> shift) + zp, lo, hi))   in wrap-around i32 and truncated, like the reference
// where c is the conv's requantized i8 and r the add's other i8 input at the same place; k holds the rounding and
// both inputs' zero points (the reference's (c - zc) mc + (r - zr) mr + 2^(shift-1), the same modulo 2^32).
typedef struct {
  const int8_t* r;
  int32_t mc, mr, k, shift, zp, lo, hi;
} residual_t;

// y: 16 requantized sums (requantize32); r: the residual's 16 bytes at the same places
static inline __m128i add_residual(__m512i y, const residual_t* a, __m128i r) {
  const __m512i c = _mm512_max_epi32(_mm512_min_epi32(y, _mm512_set1_epi32(127)), _mm512_set1_epi32(-128));
  const __m512i rv = _mm512_cvtepi8_epi32(r);
  const __m512i t = _mm512_add_epi32(_mm512_add_epi32(_mm512_mullo_epi32(c, _mm512_set1_epi32(a->mc)),
                                                      _mm512_mullo_epi32(rv, _mm512_set1_epi32(a->mr))),
                                     _mm512_set1_epi32(a->k));
  const __m512i v = _mm512_add_epi32(_mm512_sra_epi32(t, _mm_cvtsi32_si128(a->shift)), _mm512_set1_epi32(a->zp));
  if (a->lo == -128 && a->hi == 127) return _mm512_cvtsepi32_epi8(v);
  return _mm512_cvtepi32_epi8(_mm512_min_epi32(_mm512_max_epi32(v, _mm512_set1_epi32(a->lo)),
                                               _mm512_set1_epi32(a->hi)));
}

// v's four 128-bit lanes, in order, in q[0..3]
static inline __attribute__((always_inline)) void quarters(__m512i v, __m128i* q) {
  q[0] = _mm512_castsi512_si128(v), q[1] = _mm512_extracti32x4_epi32(v, 1);
  q[2] = _mm512_extracti32x4_epi32(v, 2), q[3] = _mm512_extracti32x4_epi32(v, 3);
}

// A second copy of a conv's i8 output, packed as the input of the conv that reads it, in the layout edgeq_pack_u8
// writes for that conv (its padding included), so that conv needs no pack dispatch: [C/4][ph][pw][rows][wq][4] u8
// (+ 128), the padded input's row a + sh i and column b + sw j at phase plane (a, b), row i, column j. The grid
// kernel writes it only for 1x1 readers at stride 1 without padding (one plane, [C/4][plane][4]); the rows kernel
// for any reader.
typedef struct {
  uint8_t* yk;
  size_t plane;  // rows x wq
  int wq, rows, top, left, sh, sw, ph, pw;
  int32_t pad;  // the reader's padding value + 128, in all 4 bytes
} packed_t;

// Where the padded input's (r, col) lies in group g's planes, in bytes; -1 where the reader stores no such pixel
// (odd rows or columns of a 1x1 conv at stride 2, or beyond its grid). Strides are 1 or 2: shifts, not the
// divisions that made a first version of the rows kernel's packed copy cost more than the pack it replaced.
static inline ptrdiff_t packed_at(const packed_t* pk, int g, int r, int col) {
  const int a = r & (pk->sh - 1), b = col & (pk->sw - 1), i = r >> (pk->sh - 1), j = col >> (pk->sw - 1);
  if (a >= pk->ph || b >= pk->pw || i >= pk->rows || j >= pk->wq) return -1;
  return (ptrdiff_t)((((size_t)g * pk->ph + a) * pk->pw + b) * pk->plane + (size_t)i * pk->wq + j) * 4;
}

// The padding of groups [g0, g1) of the packed copy, in the padded rows [r0, r1): every stored pixel there that
// lies outside the output (out_h x out_w, at top, left).
static void fill_padding(const packed_t* pk, int g0, int g1, int r0, int r1, int out_h, int out_w) {
  for (int g = g0; g < g1; ++g)
    for (int a = 0; a < pk->ph; ++a)
      for (int b = 0; b < pk->pw; ++b) {
        int32_t* plane = (int32_t*)pk->yk + (((size_t)g * pk->ph + a) * pk->pw + b) * pk->plane;
        // the columns left and right of the output: j < jl and j >= jr
        const int jl = (pk->left - b + pk->sw - 1) >> (pk->sw - 1);
        const int jr = (pk->left + out_w - b + pk->sw - 1) >> (pk->sw - 1);
        for (int i = 0; i < pk->rows; ++i) {
          const int r = a + pk->sh * i;
          if (r < r0 || r >= r1) continue;
          int32_t* row = plane + (size_t)i * pk->wq;
          const int inside = r >= pk->top && r < pk->top + out_h;
          for (int j = 0; j < pk->wq; ++j) {
            if (inside && j == jl) j = jr;
            if (j < pk->wq) row[j] = pk->pad;
          }
        }
      }
}

// The n output pixels from p of 4 channels from c (16 bytes each, lanes 0..n-1), interleaved and + 128, to yk.
static inline void store_packed(const packed_t* pk, int c, size_t p, const __m128i* four, int n) {
  __m512i z = _mm512_inserti32x4(_mm512_castsi128_si512(four[0]), four[1], 1);
  z = _mm512_inserti32x4(_mm512_inserti32x4(z, four[2], 2), four[3], 3);
  // byte 4 l + k of the result is channel k's lane l: byte 16 k + l of z
  const __m512i index = _mm512_set_epi8(63, 47, 31, 15, 62, 46, 30, 14, 61, 45, 29, 13, 60, 44, 28, 12, 59, 43, 27,
                                        11, 58, 42, 26, 10, 57, 41, 25, 9, 56, 40, 24, 8, 55, 39, 23, 7, 54, 38, 22,
                                        6, 53, 37, 21, 5, 52, 36, 20, 4, 51, 35, 19, 3, 50, 34, 18, 2, 49, 33, 17, 1,
                                        48, 32, 16, 0);
  const __m512i u = _mm512_xor_si512(_mm512_permutexvar_epi8(index, z), _mm512_set1_epi8((char)0x80));
  const __mmask64 bytes = n == 16 ? ~(__mmask64)0 : (((__mmask64)1 << (4 * n)) - 1);
  _mm512_mask_storeu_epi8(pk->yk + ((size_t)(c / 4) * pk->plane + p) * 4, bytes, u);
}

// One register tile: TILE_CHANNELS output channels from oc0 x nv vectors of grid positions from q. Stores i32 sums
// to y, or with rq, requantized i8, and with add, that plus the residual; with pk, the i8 packed too.
static inline __attribute__((always_inline)) void tile(const uint8_t* x, const size_t* taps, const int8_t* w,
                                                       const int32_t* bias, void* y, const requant_t* rq,
                                                       const residual_t* add, const packed_t* pk, const shape_t* s,
                                                       int oc0, int q, int nv, const int usual) {
  __m512i acc[TILE_CHANNELS][TILE_VECTORS];
  for (int o = 0; o < TILE_CHANNELS; ++o) {
    const __m512i b = _mm512_set1_epi32(bias[o]);
    for (int v = 0; v < nv; ++v) acc[o][v] = b;
  }
  for (int t = 0; t < s->kh * s->kw; ++t) {
    const uint8_t* xt = x + taps[t];
    const int8_t* wt = w + (size_t)t * s->c4 * TILE_CHANNELS * 4;
    for (int c = 0; c < s->c4; ++c) {
      __m512i xv[TILE_VECTORS];
      for (int v = 0; v < nv; ++v) xv[v] = _mm512_loadu_si512(xt + c * s->cstride + 64 * v);
      for (int o = 0; o < TILE_CHANNELS; ++o) {
        int32_t four;
        __builtin_memcpy(&four, wt + (c * TILE_CHANNELS + o) * 4, 4);
        const __m512i wb = _mm512_set1_epi32(four);
        for (int v = 0; v < nv; ++v) acc[o][v] = _mm512_dpbusd_epi32(acc[o][v], xv[v], wb);
      }
    }
  }
  size_t first[TILE_VECTORS];
  uint16_t mask[TILE_VECTORS];
  for (int v = 0; v < nv; ++v) mask[v] = valid_lanes(s, q + 16 * v, &first[v]);
  const size_t out_plane = (size_t)(s->grid / s->wq) * s->out_w;
  __m128i out[TILE_CHANNELS][TILE_VECTORS];  // the i8 results, for pk
#pragma clang loop unroll(full)  // acc indexed by constants: it stays in registers
  for (int o = 0; o < TILE_CHANNELS; ++o) {
    if (oc0 + o >= s->oc) break;
    const size_t at = (size_t)(oc0 + o) * out_plane;
    for (int v = 0; v < nv; ++v) {
      // compress in registers, then store: vpcompressd to memory is microcoded and slow on Zen 4
      const __mmask16 n = (__mmask16)((1u << __builtin_popcount(mask[v])) - 1);
      const __m512i lanes = mask[v] == 0xFFFF ? acc[o][v] : _mm512_maskz_compress_epi32(mask[v], acc[o][v]);
      if (!rq) {
        _mm512_mask_storeu_epi32((int32_t*)y + at + first[v], n, lanes);
        continue;
      }
      const __m512i m = _mm512_set1_epi64(rq->m[oc0 + o]);
      const __m512i r = requantize32(lanes, rq, m, m, usual);
      out[o][v] = add ? add_residual(r, add, _mm_maskz_loadu_epi8(n, add->r + at + first[v]))
                      : _mm512_cvtsepi32_epi8(r);
      _mm_mask_storeu_epi8((int8_t*)y + at + first[v], n, out[o][v]);
    }
  }
  if (!pk) return;
  for (int g = 0; g < TILE_CHANNELS; g += 4) {
    if (oc0 + g + 4 > s->oc) break;  // the pass packs only whole groups of 4 channels (oc % 8 == 0)
    for (int v = 0; v < nv; ++v) {
      const __m128i four[4] = {out[g][v], out[g + 1][v], out[g + 2][v], out[g + 3][v]};
      store_packed(pk, oc0 + g, first[v], four, __builtin_popcount(mask[v]));
    }
  }
}

// Where each tap (i, j) reads in the packed input, in bytes from a grid position's: its phase plane and its offset
// in it.
static inline void tap_offsets(const shape_t* s, size_t* taps) {
  for (int i = 0; i < s->kh; ++i) {
    for (int j = 0; j < s->kw; ++j) {
      const int rh = i * s->dh, rw = j * s->dw;
      taps[i * s->kw + j] = (((size_t)(rh % s->sh) * s->pw + rw % s->sw) * s->plane + (size_t)(rh / s->sh) * s->wq +
                             rw / s->sw) * 4;
    }
  }
}

static inline __attribute__((always_inline)) void conv(const uint8_t* x, const int8_t* w, const int32_t* bias,
                                                       void* y, const requant_t* rq, const residual_t* add,
                                                       const packed_t* pk, int32_t c4, int32_t oc,
                                                       int32_t oc8, int32_t kh, int32_t kw, int32_t sh, int32_t sw,
                                                       int32_t dh, int32_t dw, int32_t ph, int32_t pw, int32_t wq,
                                                       int32_t plane, int32_t out_h, int32_t out_w, int32_t parts,
                                                       int32_t group, size_t gx, size_t gy, const int usual) {
  const shape_t s = {c4, oc, kh, kw, sh, sw, dh, dw, pw, wq, out_w, out_h * wq, (size_t)plane,
                     (size_t)ph * pw * plane * 4};
  size_t taps[kh * kw];
  tap_offsets(&s, taps);
  const size_t filter = (size_t)kh * kw * c4 * TILE_CHANNELS * 4;
  const int last = (int)gx * group + group < oc8 ? (int)gx * group + group : oc8;
  const int vectors = (s.grid + 15) / 16, first = (int)gy * vectors / parts, end = ((int)gy + 1) * vectors / parts;
  const int tiles = (end - first + TILE_VECTORS - 1) / TILE_VECTORS;
  for (int t = 0, v0 = first; t < tiles; ++t) {
    const int nv = (end - first) / tiles + (t < (end - first) % tiles);  // 4 = 2 + 2, not 3 + 1
    const uint8_t* xq = x + (size_t)v0 * 64;
    for (int b = (int)gx * group; b < last; ++b) {  // the blocks reuse the tile's input from L1
      const int8_t* wb = w + (size_t)b * filter;
      const int32_t* bb = bias + b * TILE_CHANNELS;
      // each vector count as its own unrolled copy, so the accumulators stay in registers
      switch (nv) {
        case 3: tile(xq, taps, wb, bb, y, rq, add, pk, &s, b * TILE_CHANNELS, v0 * 16, 3, usual); break;
        case 2: tile(xq, taps, wb, bb, y, rq, add, pk, &s, b * TILE_CHANNELS, v0 * 16, 2, usual); break;
        default: tile(xq, taps, wb, bb, y, rq, add, pk, &s, b * TILE_CHANNELS, v0 * 16, 1, usual); break;
      }
    }
    v0 += nv;
  }
}

void edgeq_conv2d_u8s8(const uint8_t* x, const int8_t* w, const int32_t* bias, int32_t* y, int32_t c4, int32_t oc,
                       int32_t oc8, int32_t kh, int32_t kw, int32_t sh, int32_t sw, int32_t dh, int32_t dw,
                       int32_t ph, int32_t pw, int32_t wq, int32_t plane, int32_t out_h, int32_t out_w,
                       int32_t parts, int32_t group, size_t gx, size_t gy) {
  conv(x, w, bias, y, 0, 0, 0, c4, oc, oc8, kh, kw, sh, sw, dh, dw, ph, pw, wq, plane, out_h, out_w, parts, group, gx,
       gy, 0);
}

// The conv with its requantization, in the usual requantization's copy where it applies (usual_requant).
static inline __attribute__((always_inline)) void requant_conv(
    const uint8_t* x, const int8_t* w, const int32_t* bias, int8_t* y, const requant_t* rq, const residual_t* add,
    const packed_t* pk, int32_t c4, int32_t oc, int32_t oc8, int32_t kh, int32_t kw, int32_t sh, int32_t sw,
    int32_t dh, int32_t dw, int32_t ph, int32_t pw, int32_t wq, int32_t plane, int32_t out_h, int32_t out_w,
    int32_t parts, int32_t group, size_t gx, size_t gy) {
  if (usual_requant(rq))
    conv(x, w, bias, y, rq, add, pk, c4, oc, oc8, kh, kw, sh, sw, dh, dw, ph, pw, wq, plane, out_h, out_w, parts,
         group, gx, gy, 1);
  else
    conv(x, w, bias, y, rq, add, pk, c4, oc, oc8, kh, kw, sh, sw, dh, dw, ph, pw, wq, plane, out_h, out_w, parts,
         group, gx, gy, 0);
}

// Output channels in the lanes (the rows kernel). On a 7-wide map the grid above computes 9 columns per row (the
// padded width) and rounds 49 pixels up to 64 lanes: a quarter of its MACs are thrown away; on 14 x 14, 16 columns
// for 14. Here a lane is an output channel and each output pixel of a row segment has its own accumulators: a
// register tile is 2 vectors of 16 output channels x up to 8 pixels of one output row (rows wider than 8 in
// segments of nearly equal widths), each step loading 2 weight vectors and broadcasting each pixel's 4 input
// channels. Same packed input and scalars as edgeq_conv2d_u8s8_requant; its weights in blocks of 16 output channels,
// [oc16][kh][kw][c4][16][4], so that a weight vector is one 64-byte load (two 32-byte loads of 8-channel blocks
// and a vinserti64x4 made ResNet-18's rows convs take 1-6% longer on Zen 5, C harness, two threads; the pass's
// _weight_block). Workgroup (gx, gy): the gx-th `group` of 8-channel blocks (a multiple of 4), the gy-th of
// `parts` equal parts of the output rows. Requantized, i8 NCHW out, with the copies below adding a residual add
// (residual_t) and the packed second output (packed_t) as the grid kernel's do. The pass gives it the convs where
// it beats the grid (ConvShape.rows_kernel).
#define ROW_VECTORS 2
// Bytes ahead of a weight stream read from memory that the rows and Winograd kernels prefetch into the L1: a call's
// weights (ResNet-18's 16 MB with Winograd's) do not stay in the part of the L3 this VM gets, so each conv's first
// pass over its weights waits on DRAM, which the hardware prefetchers do not reach far enough ahead to hide at
// 128 bytes per 7 cycles (rows) or 256 per 12 (Winograd). Only that first pass prefetches; ResNet-18's rows convs
// took 6%, its Winograd convs 5% less time with it (docs/profiling.md, stop 37).
#define COLD_AHEAD 4096

// Byte indices for vpermb/vpermt2b, loaded where clang cannot see them: with them known at compile time, clang 22
// (ziglang 0.17) does not terminate at -O1 or -O2.
static inline __m512i opaque_indices(const uint8_t* idx) {
  __m512i v = _mm512_loadu_si512((const void*)idx);
  __asm__("" : "+v"(v));
  return v;
}

// vpermt2b indices between a tile's i8 results as [pixel][16 output channels], pixels 0-3 in one register and
// 4-7 in the other, and [output channel][8 pixels], channels 0-7 in one register and 8-15 in the other: to_rows
// gives channels 8 half .. 8 half + 7, to_pixels pixels 4 half .. 4 half + 3.
static inline __m512i transpose_indices(int to_rows, int half) {
  uint8_t idx[64];
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 8; ++j) {
      if (to_rows) {  // byte 8 l + p: channel l = 8 half + i, pixel p = j
        idx[8 * i + j] = (uint8_t)((j >= 4 ? 64 : 0) + 16 * (j & 3) + 8 * half + i);
      } else {  // byte 16 p + l: pixel p = 4 half + i / 2, channel l = 8 (i % 2) + j
        const int p = 4 * half + i / 2, l = 8 * (i % 2) + j;
        idx[8 * i + j] = (uint8_t)((l >= 8 ? 64 : 0) + 8 * (l & 7) + p);
      }
    }
  return opaque_indices(idx);
}

// vpermt2b indices from the same [pixel][16 output channels] to the packed copy's layout: groups 2 half and
// 2 half + 1 of 4 channels, each as 8 pixels of 4 bytes (32 bytes), in order at stride 1, at stride 2 the even
// pixels first.
static inline __m512i packed_indices(int half, int sw) {
  uint8_t idx[64];
  for (int i = 0; i < 64; ++i) {
    const int g = 2 * half + i / 32, n = i % 32 / 4, p = sw == 1 ? n : n < 4 ? 2 * n : 2 * n - 7;
    idx[i] = (uint8_t)((p >= 4 ? 64 : 0) + 16 * (p & 3) + 4 * g + i % 4);
  }
  return opaque_indices(idx);
}

// The transposes' index vectors: to_rows for channels 0-7 and 8-15, to_pixels for pixels 0-3 and 4-7, packed for
// groups 0-1 and 2-3.
typedef struct {
  __m512i rows[2], pixels[2], packed[2];
} transpose_t;

static inline __attribute__((always_inline)) void row_tile(const uint8_t* x, const size_t* taps, const int8_t* w,
                                                           const int32_t* bias, int8_t* y, const requant_t* rq,
                                                           const residual_t* add, const packed_t* pk,
                                                           const transpose_t* tr, const shape_t* s, int oc0,
                                                           int oh, int ow0, const int np, const int usual,
                                                           const size_t ahead) {
  const size_t filter = (size_t)s->kh * s->kw * s->c4 * 64;  // one 16-channel block's weights
  __m512i acc[ROW_VECTORS][8];
  __mmask16 live[ROW_VECTORS];  // the lanes that are output channels
  for (int v = 0; v < ROW_VECTORS; ++v) {
    const int n = s->oc - oc0 - 16 * v;
    live[v] = n >= 16 ? 0xFFFF : n > 0 ? (__mmask16)((1u << n) - 1) : 0;
    const __m512i b = _mm512_maskz_loadu_epi32(live[v], bias + oc0 + 16 * v);
    for (int p = 0; p < np; ++p) acc[v][p] = b;
  }
  // each weight vector's block; past the last block, the last one again: those lanes are no output channels
  // (live), and a load that is always valid keeps branches out of the loop. On AMD Zen 5, where a full-width
  // vpdpbusd issues twice per cycle, a branch around each load (zeros past the last block) took a sixth of the
  // loop's time (C harness); with the loop below by ones too, ResNet-18 took 1.09x as long on two threads (2.00 ->
  // 2.18 ms, alternating calls; docs/profiling.md, stop 32).
  const int oc16 = (s->oc + 15) / 16;
  const int8_t* wb[ROW_VECTORS];
  for (int v = 0; v < ROW_VECTORS; ++v) {
    const int b = oc0 / 16 + v;
    wb[v] = w + (size_t)(b < oc16 ? b : oc16 - 1) * filter;
  }
  for (int t = 0; t < s->kh * s->kw; ++t) {
    const uint8_t* xc = x + taps[t] + ((size_t)oh * s->wq + ow0) * 4;
#pragma clang loop unroll_count(2)  // ResNet-18 0.98x (Zen 5, alternating calls)
    for (int c = 0; c < s->c4; ++c, xc += s->cstride) {
      const size_t at = ((size_t)t * s->c4 + c) * 64;
      __m512i wv[ROW_VECTORS];
      for (int v = 0; v < ROW_VECTORS; ++v) wv[v] = _mm512_loadu_si512((const void*)(wb[v] + at));
      if (ahead)
        for (int v = 0; v < ROW_VECTORS; ++v) _mm_prefetch((const char*)(wb[v] + at + ahead), _MM_HINT_T0);
      for (int p = 0; p < np; ++p) {
        int32_t four;
        __builtin_memcpy(&four, xc + 4 * p, 4);
        const __m512i xb = _mm512_set1_epi32(four);
        for (int v = 0; v < ROW_VECTORS; ++v) acc[v][p] = _mm512_dpbusd_epi32(acc[v][p], xb, wv[v]);
      }
    }
  }
  const size_t out_plane = (size_t)(s->grid / s->wq) * s->out_w;
  for (int v = 0; v < ROW_VECTORS; ++v) {
    if (!live[v]) break;
    const __m512i m = _mm512_maskz_loadu_epi32(live[v], rq->m + oc0 + 16 * v);
    const __m512i m_odd = _mm512_srli_epi64(m, 32);
    // the first channel's row segment
    const size_t row = (size_t)(oc0 + 16 * v) * out_plane + (size_t)oh * s->out_w + ow0;
    const __mmask16 pixels = (__mmask16)((1u << np) - 1);
    __m128i rb[8];  // the residual, [pixel][output channel]
    if (add) {  // its rows, transposed
      __m128i pair[8];
      for (int l = 0; l < 16; l += 2) {
        const __m128i a = _mm_maskz_loadu_epi8(live[v] >> l & 1 ? pixels : 0, add->r + row + l * out_plane);
        const __m128i b = _mm_maskz_loadu_epi8(live[v] >> (l + 1) & 1 ? pixels : 0, add->r + row + (l + 1) * out_plane);
        pair[l / 2] = _mm_unpacklo_epi64(a, b);
      }
      __m512i q[2];
      for (int h = 0; h < 2; ++h)
        q[h] = _mm512_inserti32x4(_mm512_inserti32x4(_mm512_inserti32x4(_mm512_castsi128_si512(pair[4 * h]),
                                                                        pair[4 * h + 1], 1), pair[4 * h + 2], 2),
                                  pair[4 * h + 3], 3);
      const __m512i r03 = _mm512_permutex2var_epi8(q[0], tr->pixels[0], q[1]);
      const __m512i r47 = _mm512_permutex2var_epi8(q[0], tr->pixels[1], q[1]);
      quarters(r03, rb);
      quarters(r47, rb + 4);
    }
    __m128i b[8];  // the results, [pixel][output channel]
    for (int p = 0; p < 8; ++p) {
      if (p >= np) {
        b[p] = _mm_setzero_si128();
        continue;
      }
      const __m512i r = requantize32(acc[v][p], rq, m, m_odd, usual);
      b[p] = add ? add_residual(r, add, rb[p]) : _mm512_cvtsepi32_epi8(r);
    }
    __m512i z[2];  // pixels 0-3 and 4-7
    for (int h = 0; h < 2; ++h)
      z[h] = _mm512_inserti32x4(_mm512_inserti32x4(_mm512_inserti32x4(_mm512_castsi128_si512(b[4 * h]), b[4 * h + 1],
                                                                      1), b[4 * h + 2], 2), b[4 * h + 3], 3);
    for (int h = 0; h < 2; ++h) {  // each channel's row of pixels: 8 bytes of t
      const __m512i t = _mm512_permutex2var_epi8(z[0], tr->rows[h], z[1]);
      __m128i pair[4];
      quarters(t, pair);
      for (int l = 0; l < 8 && (live[v] >> (8 * h + l) & 1); ++l)
        _mm_mask_storeu_epi8(y + row + (size_t)(8 * h + l) * out_plane, pixels,
                             l & 1 ? _mm_srli_si128(pair[l / 2], 8) : pair[l / 2]);
    }
    if (!pk) continue;
    // the packed copy, + 128 (the pass packs only whole groups of 4 channels): per group, two 16-byte stores of
    // 4 pixels each, pixels 0-3 and 4-7 at stride 1, the even and odd ones (two phase planes) at stride 2
    const int r = oh + pk->top, col = ow0 + pk->left;
    const ptrdiff_t lo = packed_at(pk, (oc0 + 16 * v) / 4, r, col);
    const ptrdiff_t hi = pk->sw == 1 ? (lo < 0 ? -1 : lo + 16) : packed_at(pk, (oc0 + 16 * v) / 4, r, col + 1);
    const __mmask8 mlo = pk->sw == 1 ? pixels & 15 : (1 << (np + 1) / 2) - 1;
    const __mmask8 mhi = pk->sw == 1 ? pixels >> 4 : (1 << np / 2) - 1;
    const size_t group = (size_t)pk->ph * pk->pw * pk->plane * 4;
    for (int half = 0; half < 2 && (live[v] >> (8 * half) & 1); ++half) {
      const __m512i t = _mm512_xor_si512(_mm512_permutex2var_epi8(z[0], tr->packed[half], z[1]),
                                         _mm512_set1_epi8((char)0x80));
      __m128i q[4];
      quarters(t, q);
      for (int k = 0; k < 2 && (live[v] >> (8 * half + 4 * k) & 1); ++k) {
        const size_t g = (size_t)(2 * half + k) * group;
        if (lo >= 0) _mm_mask_storeu_epi32(pk->yk + lo + g, mlo, q[2 * k]);
        if (hi >= 0) _mm_mask_storeu_epi32(pk->yk + hi + g, mhi, q[2 * k + 1]);
      }
    }
  }
}

static inline __attribute__((always_inline)) void rows_conv(
    const uint8_t* x, const int8_t* w, const int32_t* bias, int8_t* y, const requant_t* rq, const residual_t* add,
    const packed_t* pk, int32_t c4, int32_t oc, int32_t oc8, int32_t kh, int32_t kw, int32_t sh, int32_t sw,
    int32_t dh, int32_t dw, int32_t ph, int32_t pw, int32_t wq, int32_t plane, int32_t out_h, int32_t out_w,
    int32_t parts, int32_t group, size_t gx, size_t gy) {
  const shape_t s = {c4, oc, kh, kw, sh, sw, dh, dw, pw, wq, out_w, out_h * wq, (size_t)plane,
                     (size_t)ph * pw * plane * 4};
  const int usual = usual_requant(rq);
  size_t taps[kh * kw];
  tap_offsets(&s, taps);
  const transpose_t tr = {{transpose_indices(1, 0), transpose_indices(1, 1)},
                          {transpose_indices(0, 0), transpose_indices(0, 1)},
                          {packed_indices(0, pk ? pk->sw : 1), packed_indices(1, pk ? pk->sw : 1)}};
  const int tile = TILE_CHANNELS * group, last = (int)gx * tile + tile < oc ? (int)gx * tile + tile : oc;
  const int segments = (out_w + 7) / 8;  // of a row, of nearly equal widths
  const int oh0 = (int)gy * out_h / parts, oh1 = ((int)gy + 1) * out_h / parts;
  if (pk)  // the padding of this workgroup's rows, those above the first and below the last included
    fill_padding(pk, (int)gx * tile / 4, last / 4, gy == 0 ? 0 : oh0 + pk->top,
                 (int)gy == parts - 1 ? INT32_MAX : oh1 + pk->top, out_h, out_w);
  for (int oh = oh0; oh < oh1; ++oh) {
    const size_t ahead = oh == oh0 ? COLD_AHEAD : 0;  // the first row reads the weights from memory
    for (int oc0 = (int)gx * tile; oc0 < last; oc0 += 16 * ROW_VECTORS) {
      for (int seg = 0; seg < segments; ++seg) {
        const int ow0 = seg * out_w / segments;
#define ROW_TILE(NP) \
  usual ? row_tile(x, taps, w, bias, y, rq, add, pk, &tr, &s, oc0, oh, ow0, NP, 1, ahead) \
        : row_tile(x, taps, w, bias, y, rq, add, pk, &tr, &s, oc0, oh, ow0, NP, 0, ahead)
        switch ((seg + 1) * out_w / segments - ow0) {  // each width its own unrolled copy: accumulators in registers
          case 8: ROW_TILE(8); break;
          case 7: ROW_TILE(7); break;
          case 6: ROW_TILE(6); break;
          case 5: ROW_TILE(5); break;
          case 4: ROW_TILE(4); break;
          case 3: ROW_TILE(3); break;
          case 2: ROW_TILE(2); break;
          default: ROW_TILE(1); break;
        }
#undef ROW_TILE
      }
    }
  }
}

// The requantized convs' entries, for the grid kernel (requant_conv) and the rows kernel (rows_conv), in the
// pass's order of arguments: NAME requantizes, i8 out, where the i32 sums never reach memory; NAME_add adds the
// residual r (residual_t, NCHW like y) after the requantization; NAME_packs and NAME_add_packs write their output a
// second time to yk, packed for the conv that reads it (packed_t, from PACKED_PARAMS).
#define SHAPE_PARAMS                                                                                                \
  int32_t c4, int32_t oc, int32_t oc8, int32_t kh, int32_t kw, int32_t sh, int32_t sw, int32_t dh, int32_t dw,     \
      int32_t ph, int32_t pw, int32_t wq, int32_t plane, int32_t out_h, int32_t out_w, int32_t parts, int32_t group
#define SHAPE_ARGS c4, oc, oc8, kh, kw, sh, sw, dh, dw, ph, pw, wq, plane, out_h, out_w, parts, group
#define REQUANT_PARAMS int32_t shift, int32_t lo, int32_t hi, int32_t zp
#define ADD_PARAMS                                                                                                  \
  int32_t mc, int32_t mr, int32_t k, int32_t add_shift, int32_t add_zp, int32_t add_lo, int32_t add_hi
// the reader's packed input (packed_t): its plane, grid width and rows, padding, strides and phase planes
#define PACKED_PARAMS                                                                                               \
  int32_t plane_k, int32_t wq_k, int32_t rows_k, int32_t top_k, int32_t left_k, int32_t sh_k, int32_t sw_k,        \
      int32_t ph_k, int32_t pw_k, int32_t value_k
#define PACKED_INIT                                                                                                 \
  {yk, (size_t)plane_k, wq_k, rows_k, top_k, left_k, sh_k, sw_k, ph_k, pw_k,                                       \
   (int32_t)(0x01010101u * (uint8_t)(value_k ^ 0x80))}
#define REQUANT_ENTRIES(NAME, RUN)                                                                                  \
  void NAME(const uint8_t* x, const int8_t* w, const int32_t* bias, const int32_t* m, int8_t* y, SHAPE_PARAMS,     \
            REQUANT_PARAMS, size_t gx, size_t gy) {                                                                 \
    const requant_t rq = {m, shift, lo, hi, zp};                                                                   \
    RUN(x, w, bias, y, &rq, 0, 0, SHAPE_ARGS, gx, gy);                                                              \
  }                                                                                                                 \
  void NAME##_add(const uint8_t* x, const int8_t* w, const int32_t* bias, const int32_t* m, const int8_t* r,       \
                  int8_t* y, SHAPE_PARAMS, REQUANT_PARAMS, ADD_PARAMS, size_t gx, size_t gy) {                      \
    const requant_t rq = {m, shift, lo, hi, zp};                                                                   \
    const residual_t add = {r, mc, mr, k, add_shift, add_zp, add_lo, add_hi};                                      \
    RUN(x, w, bias, y, &rq, &add, 0, SHAPE_ARGS, gx, gy);                                                           \
  }                                                                                                                 \
  void NAME##_packs(const uint8_t* x, const int8_t* w, const int32_t* bias, const int32_t* m, int8_t* y,           \
                    uint8_t* yk, SHAPE_PARAMS, REQUANT_PARAMS, PACKED_PARAMS, size_t gx, size_t gy) {              \
    const requant_t rq = {m, shift, lo, hi, zp};                                                                   \
    const packed_t pk = PACKED_INIT;                                                                               \
    RUN(x, w, bias, y, &rq, 0, &pk, SHAPE_ARGS, gx, gy);                                                            \
  }                                                                                                                 \
  void NAME##_add_packs(const uint8_t* x, const int8_t* w, const int32_t* bias, const int32_t* m, const int8_t* r, \
                        int8_t* y, uint8_t* yk, SHAPE_PARAMS, REQUANT_PARAMS, ADD_PARAMS, PACKED_PARAMS,           \
                        size_t gx, size_t gy) {                                                                     \
    const requant_t rq = {m, shift, lo, hi, zp};                                                                   \
    const residual_t add = {r, mc, mr, k, add_shift, add_zp, add_lo, add_hi};                                      \
    const packed_t pk = PACKED_INIT;                                                                               \
    RUN(x, w, bias, y, &rq, &add, &pk, SHAPE_ARGS, gx, gy);                                                         \
  }

REQUANT_ENTRIES(edgeq_conv2d_u8s8_requant, requant_conv)
REQUANT_ENTRIES(edgeq_conv2d_u8s8_rows_requant, rows_conv)

// Which bytes of a 64-byte load from column col of a w-byte row lie within the row.
static inline __mmask64 window(int col, int w) {
  const int lo = col < 0 ? -col : 0, hi = w - col < 64 ? w - col : 64;
  return hi > lo ? (~0ull << lo) & (~0ull >> (64 - hi)) : 0;
}

// 64 bytes of a row from column col0 at stride sw (1 or 2), the columns outside [0, w) read as pad.
static inline __attribute__((always_inline)) __m512i row64(const int8_t* row, int col0, const int sw, int w,
                                                           __m512i pad, __m512i evens) {
  const __m512i lo = _mm512_mask_loadu_epi8(pad, window(col0, w), row + col0);  // masked bytes do not fault
  if (sw == 1) return lo;
  const __m512i hi = _mm512_mask_loadu_epi8(pad, window(col0 + 64, w), row + col0 + 64);
  return _mm512_permutex2var_epi8(lo, evens, hi);
}

// One phase plane of one group of 4 channels, 64 grid positions of a row at a time: each channel's 64 bytes in one
// or two masked loads, interleaved by two rounds of unpacks and a transpose of 128-bit lanes. In steps of 16
// positions, each with 4 masked 16-byte loads and 4 widenings, ResNet-18's stride-2 pack of layer1's output took
// 30.5 us instead of 19.9 on one worker (rows of 16 positions or fewer take the same time either way).
static inline __attribute__((always_inline)) void pack(const int8_t* x, uint8_t* out, int c, int h, int w, int top,
                                                       int left, int value, int sh, const int sw, int pw, int rows,
                                                       int wq, int c4, int plane, __m512i evens) {
  const int a = plane / pw, b = plane % pw;
  const __m512i pad = _mm512_set1_epi8((char)value), sign = _mm512_set1_epi8((char)0x80);
  for (int i = 0; i < rows; ++i) {
    const int r = a + sh * i - top;
    const int8_t* src[4];  // the 4 channels' rows, or none where the row is padding
    for (int k = 0; k < 4; ++k) src[k] = 4 * c4 + k < c && r >= 0 && r < h ? x + ((size_t)(4 * c4 + k) * h + r) * w : 0;
    for (int j = 0; j < wq; j += 64) {
      __m512i ch[4];
      for (int k = 0; k < 4; ++k)
        ch[k] = _mm512_xor_si512(sign, src[k] ? row64(src[k], b + sw * j - left, sw, w, pad, evens) : pad);
      // 128-bit lane L of q[e]: positions 16 L + 4 e .. + 3, their 4 channels each
      const __m512i p0 = _mm512_unpacklo_epi8(ch[0], ch[1]), p1 = _mm512_unpackhi_epi8(ch[0], ch[1]);
      const __m512i p2 = _mm512_unpacklo_epi8(ch[2], ch[3]), p3 = _mm512_unpackhi_epi8(ch[2], ch[3]);
      const __m512i q0 = _mm512_unpacklo_epi16(p0, p2), q1 = _mm512_unpackhi_epi16(p0, p2);
      const __m512i q2 = _mm512_unpacklo_epi16(p1, p3), q3 = _mm512_unpackhi_epi16(p1, p3);
      // the 4 x 4 transpose of 128-bit lanes: vector L holds positions 16 L .. 16 L + 15
      const __m512i t0 = _mm512_shuffle_i32x4(q0, q1, 0x44), t1 = _mm512_shuffle_i32x4(q0, q1, 0xEE);
      const __m512i t2 = _mm512_shuffle_i32x4(q2, q3, 0x44), t3 = _mm512_shuffle_i32x4(q2, q3, 0xEE);
      const __m512i v[4] = {_mm512_shuffle_i32x4(t0, t2, 0x88), _mm512_shuffle_i32x4(t0, t2, 0xDD),
                            _mm512_shuffle_i32x4(t1, t3, 0x88), _mm512_shuffle_i32x4(t1, t3, 0xDD)};
      for (int l = 0; l < 4 && j + 16 * l < wq; ++l) {
        const int n = wq - j - 16 * l < 16 ? wq - j - 16 * l : 16;
        _mm512_mask_storeu_epi32(out + ((size_t)i * wq + j + 16 * l) * 4, (__mmask16)((1u << n) - 1), v[l]);
      }
    }
  }
}

// The unfolded pack (unfold >= 2, kw = 1, so pw = 1): a group's 4 channels are taps of at most two input channels
// (q0 and the next), so each row of 16 lanes is one vpermt2b of two 64-byte loads of those channels' rows.
static inline __attribute__((always_inline)) void pack_unfolded(const int8_t* x, uint8_t* out, int c, int h, int w,
                                                                int top, int left, int value, int sh, const int sw,
                                                                int rows, int wq, int unfold, int c4, int a) {
  const int q0 = 4 * c4 / unfold, channels = c / unfold;
  uint8_t idx[64];
  for (int l = 0; l < 16; ++l)
    for (int k = 0; k < 4; ++k) {
      const int v = 4 * c4 + k < c ? 4 * c4 + k : 4 * c4;   // channels past c: any bytes (their weights are 0)
      idx[4 * l + k] = (uint8_t)((v / unfold - q0) * 64 + sw * l + v % unfold);
    }
  const __m512i gather = _mm512_loadu_si512((const void*)idx), sign = _mm512_set1_epi8((char)0x80);
  const __m512i pad = _mm512_set1_epi8((char)value);
  for (int i = 0; i < rows; ++i) {
    const int r = a + sh * i - top;
    const int valid = r >= 0 && r < h;
    const int8_t* row0 = x + ((size_t)q0 * h + (valid ? r : 0)) * w;   // a padding row loads nothing from it
    const int second = valid && q0 + 1 < channels;
    for (int j = 0; j < wq; j += 16) {
      const int col = sw * j - left;
      const __mmask64 inside = window(col, w);
      const __m512i x0 = _mm512_mask_loadu_epi8(pad, valid ? inside : 0, (const void*)((intptr_t)row0 + col));
      const __m512i x1 = _mm512_mask_loadu_epi8(pad, second ? inside : 0,
                                                (const void*)((intptr_t)row0 + (second ? (size_t)h * w : 0) + col));
      const int n = wq - j < 16 ? wq - j : 16;
      _mm512_mask_storeu_epi32(out + ((size_t)i * wq + j) * 4, (__mmask16)((1u << n) - 1),
                               _mm512_xor_si512(sign, _mm512_permutex2var_epi8(x0, gather, x1)));
    }
  }
}

// The conv's input in the kernel's layout, one dispatch before it:
//   out[c4][a][b][i][j][k] = x[4 c4 + k][a + sh i - top][b + sw j - left] + 128
// for phase plane (a, b), with `value` (the conv's padding) wherever that lies outside x, channels >= c included.
// x is the unpadded NCHW input [c / unfold][h][w] i8; sw is 1 or 2. With unfold > 1, channel unfold q + t is x's
// channel q shifted left by t columns: a conv with few channels (the stem's 3) runs as one with its horizontal
// taps (unfold of them) as channels, kw = 1, sw = 1, and its input read at its own stride sw here.
// Workgroup (gx, gy) packs the gx-th of `parts` equal parts of the channel groups, phase plane gy.
void edgeq_pack_u8(const int8_t* x, uint8_t* out, int32_t c, int32_t h, int32_t w, int32_t top, int32_t left,
                   int32_t value, int32_t sh, int32_t sw, int32_t ph, int32_t pw, int32_t rows, int32_t wq,
                   int32_t parts, int32_t unfold, size_t gx, size_t gy) {
  const int c4 = (c + 3) / 4;
  uint8_t idx[64];  // vpermt2b indices of a row's even bytes, for pack at stride 2
  for (int k = 0; k < 64; ++k) idx[k] = (uint8_t)(2 * k);
  const __m512i evens = opaque_indices(idx);
  for (int g = (int)gx * c4 / parts; g < ((int)gx + 1) * c4 / parts; ++g) {
    uint8_t* o = out + ((size_t)g * ph * pw + gy) * rows * wq * 4;
    if (unfold > 1 && sw == 1)  // each stride as its own copy, where the divisions by it are shifts
      pack_unfolded(x, o, c, h, w, top, left, value, sh, 1, rows, wq, unfold, g, (int)gy);
    else if (unfold > 1)
      pack_unfolded(x, o, c, h, w, top, left, value, sh, 2, rows, wq, unfold, g, (int)gy);
    else if (sw == 1)
      pack(x, o, c, h, w, top, left, value, sh, 1, pw, rows, wq, g, (int)gy, evens);
    else
      pack(x, o, c, h, w, top, left, value, sh, 2, pw, rows, wq, g, (int)gy, evens);
  }
}

// A conv with few input channels (the stems) as a 1x1 conv over its whole patch (im2col), patch channel f being
// input channel f / (kh kw) at tap ((f / kw) % kh, f % kw): ResNet-18's sums of 3 x 7 x 7 = 147 are 37 groups of 4,
// where the unfolded pack's rows of 7 taps x 3 channels (24 lanes for 21) made 42. Each tile's patch is unfolded
// into a buffer on the stack, straight from the unpadded NCHW input, and the workgroup's output channels compute
// on it at once: no pack dispatch, and the patch never leaves L1. For outputs whose rows are whole vectors
// (out_w % 16 == 0), so that a vector's 16 pixels share an output row.
typedef struct {  // the input and how the conv reads it (its channels and taps: patch_conv's c, kh, kw)
  const int8_t* x;
  int h, w, top, left, sh, sw;
  __m512i pad;  // the padding value, in every byte
} patch_t;

// vpermt2b indices of patch group g: lane l's 4 channels from the rows of the (channel, tap row) pair unit0 =
// 4 g / kw (bytes 0-63) and the next (64-127), at column sw l + tap column. Channels past the patch take any byte
// (their weights are 0).
static inline __m512i patch_indices(const patch_t* p, int g, int c, int kh, int kw) {
  const int size = c * kh * kw, unit0 = 4 * g / kw;
  uint8_t idx[64];
  for (int l = 0; l < 16; ++l)
    for (int k = 0; k < 4; ++k) {
      const int f = 4 * g + k < size ? 4 * g + k : 4 * g;
      idx[4 * l + k] = (uint8_t)((f / kw - unit0) * 64 + p->sw * l + f % kw);
    }
  return opaque_indices(idx);
}

// Row u of the patch for the vector at output row oy, from column col (inside: the bytes within the input's row):
// input channel u / kh, tap row u % kh, xored with the sign bit; the padding value outside the input. `within`:
// all the vector's tap rows lie inside the input (a constant in unfold_patch's copies).
static inline __attribute__((always_inline)) __m512i patch_row(const patch_t* p, int u, const int kh, int oy, int col,
                                                             __mmask64 inside, const int within) {
  const int r = p->sh * oy + u % kh - p->top, valid = within || (r >= 0 && r < p->h);
  const int8_t* row = p->x + ((size_t)(u / kh) * p->h + (valid ? r : 0)) * p->w;
  return _mm512_xor_si512(_mm512_set1_epi8((char)0x80),
                          _mm512_mask_loadu_epi8(p->pad, valid ? inside : 0, (const void*)((intptr_t)row + col)));
}

// One vector's patch, 16 bytes per group at buf[g * TILE_VECTORS]: one vpermt2b per group from the input rows of
// its first (channel, tap row) pair and the next, each row one masked load as the groups reach it. c, kh and kw
// are constants in patch_conv's copies for the usual stems: the loop unrolls, and the two rows in use stay in
// registers (a loop over the groups took 50 us of ResNet-18's stem on one core, twice the pack's time).
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wpass-failed"  // the general copy's loop, whose bounds are not constants
static inline __attribute__((always_inline)) void unfold_vector(const patch_t* p, __m512i* buf, const __m512i* idx,
                                                                const int c, const int kh, const int kw, int oy,
                                                                int col, __mmask64 inside, const int within) {
  const int last = c * kh - 1;
  int u = 0;
  __m512i a = patch_row(p, 0, kh, oy, col, inside, within), b = patch_row(p, last > 0, kh, oy, col, inside, within);
#pragma clang loop unroll(full)
  for (int g = 0; g < (c * kh * kw + 3) / 4; ++g) {
    for (; u < 4 * g / kw; ++u) a = b, b = patch_row(p, u + 2 < last ? u + 2 : last, kh, oy, col, inside, within);
    buf[g * TILE_VECTORS] = _mm512_permutex2var_epi8(a, idx[g], b);
  }
}
#pragma clang diagnostic pop

// The patch of the nv vectors from grid position q as [c4][TILE_VECTORS * 16][4] u8 (+ 128) in buf. Rows that lie
// inside the input, all but the first and last few, skip the checks.
static inline __attribute__((always_inline)) void unfold_patch(const patch_t* p, __m512i* buf, const __m512i* idx,
                                                               const int c, const int kh, const int kw, int out_w,
                                                               int q, int nv) {
  for (int v = 0; v < nv; ++v) {
    const int oy = (q + 16 * v) / out_w, col = p->sw * ((q + 16 * v) % out_w) - p->left;
    const __mmask64 inside = window(col, p->w);
    const int r0 = p->sh * oy - p->top;
    if (r0 >= 0 && r0 + kh <= p->h)
      unfold_vector(p, buf + v, idx, c, kh, kw, oy, col, inside, 1);
    else
      unfold_vector(p, buf + v, idx, c, kh, kw, oy, col, inside, 0);
  }
}

static inline __attribute__((always_inline)) void patch_conv(const patch_t* p, const int8_t* w, const int32_t* bias,
                                                             int8_t* y, const requant_t* rq, const int c,
                                                             const int kh, const int kw, int32_t oc, int32_t oc8,
                                                             int32_t out_h, int32_t out_w, int32_t parts,
                                                             int32_t group, size_t gx, size_t gy, const int usual) {
  const int c4 = (c * kh * kw + 3) / 4;
  const shape_t s = {c4, oc, 1, 1, 1, 1, 1, 1, 1, out_w, out_w, out_h * out_w, 0, TILE_VECTORS * 64};
  const size_t taps[1] = {0}, filter = (size_t)c4 * TILE_CHANNELS * 4;
  __m512i idx[c4], buf[c4 * TILE_VECTORS];
  for (int g = 0; g < c4; ++g) idx[g] = patch_indices(p, g, c, kh, kw);
  const int last = (int)gx * group + group < oc8 ? (int)gx * group + group : oc8;
  const int vectors = s.grid / 16, first = (int)gy * vectors / parts, end = ((int)gy + 1) * vectors / parts;
  const int tiles = (end - first + TILE_VECTORS - 1) / TILE_VECTORS;
  for (int t = 0, v0 = first; t < tiles; ++t) {
    const int nv = (end - first) / tiles + (t < (end - first) % tiles);
    unfold_patch(p, buf, idx, c, kh, kw, out_w, v0 * 16, nv);
    for (int b = (int)gx * group; b < last; ++b) {
      const int8_t* wb = w + (size_t)b * filter;
      const int32_t* bb = bias + b * TILE_CHANNELS;
      const uint8_t* xq = (const uint8_t*)buf;
      switch (nv) {
        case 3: tile(xq, taps, wb, bb, y, rq, 0, 0, &s, b * TILE_CHANNELS, v0 * 16, 3, usual); break;
        case 2: tile(xq, taps, wb, bb, y, rq, 0, 0, &s, b * TILE_CHANNELS, v0 * 16, 2, usual); break;
        default: tile(xq, taps, wb, bb, y, rq, 0, 0, &s, b * TILE_CHANNELS, v0 * 16, 1, usual); break;
      }
    }
    v0 += nv;
  }
}

// The conv over its patch, requantized: x the unpadded NCHW input [c][h][w] i8, padded by `value`; w the weights
// [oc8][c4][8][4] of the patch's channels (the conv's OIHW weights, flattened); bias and y as for the grid kernel.
// The usual stems (3 channels, 7 x 7 or 3 x 3 taps) and the usual requantization each have their own copy.
void edgeq_conv2d_u8s8_patch_requant(const int8_t* x, const int8_t* w, const int32_t* bias, const int32_t* m,
                                     int8_t* y, int32_t c, int32_t h, int32_t wd, int32_t top, int32_t left,
                                     int32_t value, int32_t kh, int32_t kw, int32_t sh, int32_t sw, int32_t oc,
                                     int32_t oc8, int32_t out_h, int32_t out_w, int32_t parts, int32_t group,
                                     REQUANT_PARAMS, size_t gx, size_t gy) {
  const requant_t rq = {m, shift, lo, hi, zp};
  const patch_t p = {x, h, wd, top, left, sh, sw, _mm512_set1_epi8((char)value)};
#define PATCH_CONV(C, KH, KW, USUAL) \
  patch_conv(&p, w, bias, y, &rq, C, KH, KW, oc, oc8, out_h, out_w, parts, group, gx, gy, USUAL)
  const int usual = usual_requant(&rq);
  if (c == 3 && kh == 7 && kw == 7 && usual)
    PATCH_CONV(3, 7, 7, 1);
  else if (c == 3 && kh == 3 && kw == 3 && usual)
    PATCH_CONV(3, 3, 3, 1);
  else
    PATCH_CONV(c, kh, kw, 0);
#undef PATCH_CONV
}

// A 3x3 depthwise conv with its requantization, straight from the unpadded NCHW input x [c][h][w] i8 (the padding
// `value` where a tap falls outside it) to i8 NCHW y [c][out_h][out_w]. Pixels in the lanes again; each lane's 4
// bytes are one row of taps of its pixel (3, and a fourth whose weight is 0), so one vpdpbusd adds a row of taps,
// three add all 9:
//   w    [c][3][4]  s8   each channel's taps by row: (i,0) (i,1) (i,2) 0
//   bias [c]  i32   bias - 128 * sum(w)
// For 16 output pixels, an input row is one 64-byte load (masked: the padding columns take `value`), and one vpermb
// (AVX-512 VBMI) spreads it into the lanes' taps, for stride 1 and 2 alike: only the byte indices differ. A row
// spread once serves every output row that reads it: 3 at stride 1, where grouping the 9 taps across rows took 3
// byte gathers per output row (MobileNetV2's depthwise convs then took 27% more time). The strides are the same
// in both dimensions (sh = sw, 1 or 2). Workgroup gx computes the gx-th of `parts` equal parts of the groups of 4
// channels.

// 4 channels' requantized i32 as the bytes of 16 u8 lanes (+ 128), saturated: the handoff's channel interleave.
// The packs leave each 128-bit lane holding 4 pixels of y0, then of y1, y2, y3; vpshufb transposes those 4 x 4.
static inline __m512i four_channels(__m512i y0, __m512i y1, __m512i y2, __m512i y3) {
  const __m512i bytes = _mm512_packs_epi16(_mm512_packs_epi32(y0, y1), _mm512_packs_epi32(y2, y3));
  const __m512i transpose = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15));
  return _mm512_xor_si512(_mm512_shuffle_epi8(bytes, transpose), _mm512_set1_epi8((char)0x80));
}

// vpermb indices that give lane l the bytes sw l, sw l + 1, sw l + 2 of a row, from `second` on (the register's
// second half: 32) for lanes `half` and up, and lane l's first byte again as its fourth (its weight is 0)
static inline __m512i spread_indices(int sw, int half, int second) {
  uint8_t idx[64];
  for (int l = 0; l < 16; ++l) {
    const int at = (l >= half ? second : 0) + sw * (l >= half ? l - half : l);
    for (int k = 0; k < 4; ++k) idx[4 * l + k] = (uint8_t)(at + (k < 3 ? k : 0));
  }
  return opaque_indices(idx);
}

// Row r of a channel's input at columns [col, col + 64), + 128 (the padding `value` outside the input): a padding
// row loads nothing (its mask is 0) from row 0, a valid address.
static inline __attribute__((always_inline)) __m512i input_row(const int8_t* at, int r, int h, int wd, int col,
                                                               __mmask64 inside, __m512i pad) {
  const int valid = r >= 0 && r < h;
  const __m512i bytes = _mm512_mask_loadu_epi8(pad, valid ? inside : 0, at + (valid ? (size_t)r * wd : 0) + col);
  return _mm512_xor_si512(bytes, _mm512_set1_epi8((char)0x80));
}

// Output rows of at most 8 pixels (MobileNetV2's 7 x 7 maps), two to a vector: lanes 0-7 are output row oh,
// lanes 8-15 row oh + 1, where one row per vector would leave 9 of its 16 lanes empty. Each input row is one
// 32-byte load, and a register holds two rows, [row a | row b], one per 256-bit half: one vpermb spreads a row of
// taps for both output rows. Same arguments as dwconv3x3.
static inline __attribute__((always_inline)) __m512i two_rows(__m256i a, __m256i b) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
}

static inline __attribute__((always_inline)) __m256i input_row32(const int8_t* at, int r, int h, int wd, int col,
                                                                  __mmask32 inside, __m256i pad) {
  const int valid = r >= 0 && r < h;
  const __m256i bytes = _mm256_mask_loadu_epi8(pad, valid ? inside : 0, at + (valid ? (size_t)r * wd : 0) + col);
  return _mm256_xor_si256(bytes, _mm256_set1_epi8((char)0x80));
}

static inline __attribute__((always_inline)) void dwconv3x3_two_rows(const int8_t* const* at, const int* ch,
                                                                     const int8_t* w, const int32_t* bias,
                                                                     int8_t* y, const requant_t* rq, int c, int k0,
                                                                     int h, int wd, int top, int left, int value,
                                                                     const int sh, const int sw, int out_h,
                                                                     int out_w, const int plane, const int usual) {
  const __m256i pad = _mm256_set1_epi8((char)value);
  const __m512i spread = spread_indices(sw, 8, 32);   // lanes 0-7 from the first row, 8-15 from the second
  const __mmask32 inside = (__mmask32)window(-left, wd);
  const __mmask16 n = (__mmask16)((1u << out_w) - 1);
  for (int oh = 0; oh < out_h; oh += 2) {
    const int r = oh * sh - top, second = oh + 1 < out_h;
    __m512i out[4];
#pragma clang loop unroll(full)
    for (int k = 0; k < 4; ++k) {
      // input rows r .. r + 2 for output row oh, r + sh .. r + sh + 2 for oh + 1
      const __m256i r0 = input_row32(at[k], r, h, wd, -left, inside, pad);
      const __m256i r1 = input_row32(at[k], r + 1, h, wd, -left, inside, pad);
      const __m256i r2 = input_row32(at[k], r + 2, h, wd, -left, inside, pad);
      const __m256i r3 = input_row32(at[k], r + 3, h, wd, -left, inside, pad);
      const __m256i r4 = sh == 2 ? input_row32(at[k], r + 4, h, wd, -left, inside, pad) : r3;
      const __m256i u0 = sh == 1 ? r1 : r2, u1 = sh == 1 ? r2 : r3, u2 = sh == 1 ? r3 : r4;
      const int32_t* wk = (const int32_t*)(w + 12 * ch[k]);
      __m512i acc = _mm512_dpbusd_epi32(_mm512_set1_epi32(bias[ch[k]]),
                                        _mm512_permutexvar_epi8(spread, two_rows(r0, u0)), _mm512_set1_epi32(wk[0]));
      acc = _mm512_dpbusd_epi32(acc, _mm512_permutexvar_epi8(spread, two_rows(r1, u1)), _mm512_set1_epi32(wk[1]));
      acc = _mm512_dpbusd_epi32(acc, _mm512_permutexvar_epi8(spread, two_rows(r2, u2)), _mm512_set1_epi32(wk[2]));
      const __m512i m = _mm512_set1_epi64(rq->m[ch[k]]);
      out[k] = requantize32(acc, rq, m, m, usual);
    }
    if (plane) {
      int8_t* at_row = y + ((size_t)(k0 / 4) * plane + (size_t)oh * out_w) * 4;
      const __m512i v = four_channels(out[0], out[1], out[2], out[3]);
      _mm512_mask_storeu_epi32(at_row, n, v);
      if (second) _mm512_mask_storeu_epi32(at_row + out_w * 4, n, _mm512_shuffle_i64x2(v, v, 0xEE));
    } else {
      for (int k = 0; k < 4 && k0 + k < c; ++k) {
        int8_t* at_row = y + ((size_t)(k0 + k) * out_h + oh) * out_w;
        const __m128i b = _mm512_cvtsepi32_epi8(out[k]);
        _mm_mask_storeu_epi8(at_row, n, b);
        if (second) _mm_mask_storeu_epi8(at_row + out_w, n, _mm_srli_si128(b, 8));
      }
    }
  }
}

// Channels [k0, k0 + 4), written NCHW (plane = 0), or interleaved as the packed input of the 1x1 conv that reads
// them ([C/4][out_h][out_w][4] u8, + 128; plane = out_h x out_w), which then needs no pack of its own. Channels
// past c (the last group's) compute channel c - 1 again. Down each 16-pixel column of the output, the 4 channels'
// 3 input rows stay in registers, spread: an output row loads and spreads only its new input rows, one at stride
// 1 (MobileNetV2's depthwise convs took 28% less time than with 3 loads per row). The loops over the 4 channels
// are unrolled so that their rows are registers, not stack arrays.
static inline __attribute__((always_inline)) void dwconv3x3(const int8_t* x, const int8_t* w, const int32_t* bias,
                                                            int8_t* y, const requant_t* rq, int c, int k0, int h,
                                                            int wd, int top, int left, int value, const int sh,
                                                            const int sw, int out_h, int out_w, const int plane,
                                                            const int usual) {
  const int8_t* at[4];
  int ch[4];
  for (int k = 0; k < 4; ++k) {
    ch[k] = k0 + k < c ? k0 + k : c - 1;
    at[k] = x + (size_t)ch[k] * h * wd;
  }
  if (out_w <= 8) {
    dwconv3x3_two_rows(at, ch, w, bias, y, rq, c, k0, h, wd, top, left, value, sh, sw, out_h, out_w, plane, usual);
    return;
  }
  const __m512i pad = _mm512_set1_epi8((char)value), spread = spread_indices(sw, 16, 0);
  for (int ow = 0; ow < out_w; ow += 16) {
    const int col = sw * ow - left;  // the input column of the windows' first byte
    const __mmask64 inside = window(col, wd);
    const __mmask16 n = (__mmask16)((1u << (out_w - ow < 16 ? out_w - ow : 16)) - 1);
    __m512i r0[4], r1[4], r2[4];   // output row oh's input rows oh sh - top + 0, 1, 2, spread
#pragma clang loop unroll(full)
    for (int k = 0; k < 4; ++k) {   // those of row -1 that row 0 reuses
      r1[k] = _mm512_permutexvar_epi8(spread, input_row(at[k], -top, h, wd, col, inside, pad));
      r2[k] = _mm512_permutexvar_epi8(spread, input_row(at[k], 1 - top, h, wd, col, inside, pad));
    }
    for (int oh = 0; oh < out_h; ++oh) {
      const int last = oh * sh - top + 2;
      __m512i out[4];
#pragma clang loop unroll(full)
      for (int k = 0; k < 4; ++k) {
        if (sh == 1 || oh == 0) {
          r0[k] = r1[k];
          r1[k] = r2[k];
        } else {   // stride 2: two new rows
          r0[k] = r2[k];
          r1[k] = _mm512_permutexvar_epi8(spread, input_row(at[k], last - 1, h, wd, col, inside, pad));
        }
        r2[k] = _mm512_permutexvar_epi8(spread, input_row(at[k], last, h, wd, col, inside, pad));
        const int32_t* wk = (const int32_t*)(w + 12 * ch[k]);
        __m512i acc = _mm512_dpbusd_epi32(_mm512_set1_epi32(bias[ch[k]]), r0[k], _mm512_set1_epi32(wk[0]));
        acc = _mm512_dpbusd_epi32(acc, r1[k], _mm512_set1_epi32(wk[1]));
        acc = _mm512_dpbusd_epi32(acc, r2[k], _mm512_set1_epi32(wk[2]));
        const __m512i m = _mm512_set1_epi64(rq->m[ch[k]]);
        out[k] = requantize32(acc, rq, m, m, usual);
      }
      if (plane)
        _mm512_mask_storeu_epi32(y + ((size_t)(k0 / 4) * plane + (size_t)oh * out_w + ow) * 4, n,
                                 four_channels(out[0], out[1], out[2], out[3]));
      else
        for (int k = 0; k < 4 && k0 + k < c; ++k)
          _mm_mask_storeu_epi8(y + ((size_t)(k0 + k) * out_h + oh) * out_w + ow, n, _mm512_cvtsepi32_epi8(out[k]));
    }
  }
}

// plane = 0: NCHW i8 out; plane > 0: the packed input of the next 1x1 conv (see dwconv3x3).
void edgeq_dwconv3x3_u8s8_requant(const int8_t* x, const int8_t* w, const int32_t* bias, const int32_t* m,
                                  int8_t* y, int32_t c, int32_t h, int32_t wd, int32_t top, int32_t left,
                                  int32_t value, int32_t sh, int32_t sw, int32_t out_h, int32_t out_w,
                                  int32_t plane, int32_t parts, int32_t shift, int32_t lo, int32_t hi, int32_t zp,
                                  size_t gx, size_t gy) {
  (void)gy;
  const requant_t rq = {m, shift, lo, hi, zp};
  const int groups = (c + 3) / 4, usual = usual_requant(&rq);
  for (int g = (int)gx * groups / parts; g < ((int)gx + 1) * groups / parts; ++g) {
    // each case as its own copy, with constant loops and shifts; the packed output's with a copy for the usual
    // requantization (6-8% faster; the NCHW output's was 17% slower with one)
    if (plane && sw == 1 && usual)
      dwconv3x3(x, w, bias, y, &rq, c, 4 * g, h, wd, top, left, value, 1, 1, out_h, out_w, plane, 1);
    else if (plane && sw == 1)
      dwconv3x3(x, w, bias, y, &rq, c, 4 * g, h, wd, top, left, value, 1, 1, out_h, out_w, plane, 0);
    else if (plane && usual)
      dwconv3x3(x, w, bias, y, &rq, c, 4 * g, h, wd, top, left, value, 2, 2, out_h, out_w, plane, 1);
    else if (plane)
      dwconv3x3(x, w, bias, y, &rq, c, 4 * g, h, wd, top, left, value, 2, 2, out_h, out_w, plane, 0);
    else if (sw == 1)
      dwconv3x3(x, w, bias, y, &rq, c, 4 * g, h, wd, top, left, value, 1, 1, out_h, out_w, 0, 0);
    else
      dwconv3x3(x, w, bias, y, &rq, c, 4 * g, h, wd, top, left, value, 2, 2, out_h, out_w, 0, 0);
  }
}

// A batch-1 linear layer (a matrix-vector product: the classifier after the global pool) on vpdpbusd, 16 outputs
// per vector, each step one broadcast of 4 input bytes (+ 128) against the 16 outputs' 4 weights:
//   x    [k]  s8   the input row
//   w    [n16][k4][16][4]  s8   16 outputs x 4 inputs per 64 bytes, zero past k and n
//   bias [16 n16]  i32   where the sums start: bias - 128 * sum(w)
//   y    [n]  i32
// Workgroup gx computes the gx-th `group` of 16-output blocks, LINEAR_TILE at a time: as many independent sums
// as hide vpdpbusd's latency, and the tile's weights are LINEAR_TILE streams of 64 bytes per step.
#define LINEAR_TILE 8

// x's 4 bytes from 4 q, + 128; past k (the weights there are 0) they count as 0.
static inline uint32_t four_inputs(const int8_t* x, int q, int k) {
  uint32_t v = 0;
  for (int j = 0; j < 4 && 4 * q + j < k; ++j) v |= (uint32_t)(uint8_t)x[4 * q + j] << (8 * j);
  return v ^ 0x80808080u;
}

static inline __attribute__((always_inline)) void linear_tile(const int8_t* x, const int8_t* w,
                                                              const int32_t* bias, int32_t* y, int k, int n, int b,
                                                              const int t) {
  const int k4 = (k + 3) / 4, whole = k / 4;
  __m512i acc[LINEAR_TILE];
  for (int i = 0; i < t; ++i) acc[i] = _mm512_loadu_si512(bias + 16 * (b + i));
  const int8_t* wb = w + (size_t)b * k4 * 64;
  for (int q = 0; q < k4; ++q) {
    uint32_t four;
    if (q < whole) {
      __builtin_memcpy(&four, x + 4 * q, 4);
      four ^= 0x80808080u;
    } else {
      four = four_inputs(x, q, k);
    }
    const __m512i xv = _mm512_set1_epi32((int)four);
    for (int i = 0; i < t; ++i)
      acc[i] = _mm512_dpbusd_epi32(acc[i], xv, _mm512_loadu_si512(wb + ((size_t)i * k4 + q) * 64));
  }
  for (int i = 0; i < t; ++i) {
    const int left = n - 16 * (b + i);
    _mm512_mask_storeu_epi32(y + 16 * (b + i), left >= 16 ? 0xFFFF : (__mmask16)((1u << left) - 1), acc[i]);
  }
}

void edgeq_linear_u8s8(const int8_t* x, const int8_t* w, const int32_t* bias, int32_t* y, int32_t k, int32_t n,
                       int32_t group, size_t gx, size_t gy) {
  (void)gy;
  const int n16 = (n + 15) / 16, b1 = ((int)gx + 1) * group < n16 ? ((int)gx + 1) * group : n16;
  for (int b = (int)gx * group; b < b1; b += LINEAR_TILE) {
    switch (b1 - b < LINEAR_TILE ? b1 - b : LINEAR_TILE) {   // a copy per tile size: the sums stay in registers
      case 1: linear_tile(x, w, bias, y, k, n, b, 1); break;
      case 2: linear_tile(x, w, bias, y, k, n, b, 2); break;
      case 3: linear_tile(x, w, bias, y, k, n, b, 3); break;
      case 4: linear_tile(x, w, bias, y, k, n, b, 4); break;
      case 5: linear_tile(x, w, bias, y, k, n, b, 5); break;
      case 6: linear_tile(x, w, bias, y, k, n, b, 6); break;
      case 7: linear_tile(x, w, bias, y, k, n, b, 7); break;
      default: linear_tile(x, w, bias, y, k, n, b, 8); break;
    }
  }
}

// Winograd F(4x4, 3x3) for 3x3 stride-1 convs padded by 1 on each side, with up to 128 input channels (ResNet's
// layer1 and layer2). A 6x6 input window d of each 4x4 output tile becomes V = B^T d B and each filter g becomes
// U = G' g G'^T (at compile time, by the pass); the conv is then 36 independent sums over the input channels,
// M = sum_c U V, and the tile's outputs are Y = A'^T M A' / 576. That is 36 products per 16 outputs instead of
// 144, on vpdpwssd (i16 x i16, 2 per lane: half vpdpbusd's MACs per instruction): half the instructions.
// It is exact in integers:
//   - B^T has small integer entries: |V| <= 100 * 128 = 12800 fits i16 (for i8 inputs);
//   - G' is G with each row scaled to integers (by 4, 6, 6, 24, 24, 1): |U| <= 49 * 128 fits i16;
//   - A' = diag(6, 4, 4, 1, 1, 24) A undoes that scaling on both sides up to a factor 24 * 24 = 576;
//   - the sums wrap in i32 (vpdpwssd does not saturate), so A'^T M A' is 576 Y modulo 2^32, and
//     Y = ((576 Y mod 2^32) >> 6) * 9^-1 modulo 2^26, sign-extended from 26 bits, as long as |Y| < 2^25: with C
//     <= 128 channels, |Y| <= 128 * 9 * 128 * 128 < 2^25 for any i8 input and weights.
// The tiles cover the output rounded up to multiples of 4 (tile t = i ceil(W/4) + j: output rows 4i.., columns
// 4j..): windows read the padding value past the input's edges, and the stores skip what lies past the output's.
// A dispatch's workgroup gy takes the gy-th of `parts` equal ranges of the tiles for all output channels (one
// dispatch for the conv: a separate transform's dispatch left a worker idle at both ends), in pieces of WINO_PIECE
// tiles (or a tile row, if longer: one step of the input transform per row); with the _claimed entries, the two
// workgroups claim the pieces from both ends instead (winograd_conv). For each piece:
//   1. it transforms the piece's input windows into V [36][C/2][piece][2] i16 in its slot of the scratch buffer
//      ws. A piece's V, 64.5 KB for ResNet's layer1 and 129 KB for layer2, is rewritten piece after piece by the
//      same worker: V for the whole range (451 KB for layer1) was written to lines that the other core had written
//      last, when IREE gave it the other range at the conv before. On two threads taking turns at the ranges,
//      layer1's ranges took 209 us instead of 200, layer2's 191 instead of 175 (C harness, pieces of a row);
//   2. for each 64 output channels and each 6 of those tiles, the 36 positions' sums M (channels in the lanes) into ws,
//      with the weights U [OC/64][36][C/2][64][2] i16;
//   3. tile by tile, their output transform and the grid kernel's requantization; with the residual add, stored to
//      NCHW a run of up to 4 tiles of a tile row at a time (winograd_store).
#define WINO_TILES 6
#define WINO_MERGED 9  // a piece's last 1 to 3 tiles join the block before them, in passes of 2 vectors
#define WINO_PIECE 14  // tiles of a range transformed and computed at a time (a whole tile row, if longer)
#define WINO_VECTORS 4
#define WINO_OC (16 * WINO_VECTORS)
#define WINO_CHUNK 15  // tiles per input-transform step: their windows span 62 columns, one 64-byte load per row

#define WINO_BYTES 64
#include "winograd_transforms.h"

typedef struct {
  const int8_t* x;
  const int16_t* u;
  const int32_t* bias;
  int8_t* y;
  int16_t* v;  // the workgroup's V and M in ws
  __m512i* m;
  const requant_t* rq;
  const residual_t* add;
  int pairs, tw, h, w, value, span, first;  // tw: tiles per row; span: V's tiles; first: V's first tile
  size_t ahead;  // how far ahead of U's vectors to prefetch: COLD_AHEAD for the workgroup's first piece, else 0
  __m512i columns[6];  // vpermt2b indices: column 4 j + u - 1 of tile j's window, [tile j][channel of the pair]
  __m512i to_channels[4];  // vpermt2b indices: [pixel][16 channels] x 4 -> [4 channels][16 pixels]
} winograd_t;

// A window row of a step with two tile rows, for one channel's plane: the 32 bytes of tile row i's window row
// (image row `row`) from column col0 in the lower half, those of tile row i + 1 (image row row + 4) from column -1
// in the upper half; rows and columns outside the image read as pad.
static inline __attribute__((always_inline)) __m512i two_tile_rows(const int8_t* plane, int row, int col0, int h,
                                                                   int w, __m512i pad) {
  const __m256i p = _mm512_castsi512_si256(pad);
  const __m256i lo = row >= 0 && row < h
                         ? _mm256_mask_loadu_epi8(p, (__mmask32)window(col0, w), plane + (ptrdiff_t)row * w + col0)
                         : p;
  const __m256i hi = row + 4 >= 0 && row + 4 < h
                         ? _mm256_mask_loadu_epi8(p, (__mmask32)window(-1, w), plane + (ptrdiff_t)(row + 4) * w - 1)
                         : p;
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

// V of tiles [t0, t1): each step transforms up to WINO_CHUNK tiles of one tile row for two channels, interleaved in
// the lanes as V stores them: tile j's pair in i16 lanes 2 j and 2 j + 1. Where a tile row's windows span at most 32
// bytes (7 tiles: ResNet's layer2), a step takes the rest of one tile row and the next tile row, whose tiles follow
// in V, each in one half of the 64-byte loads: 14 of its 16 tiles' lanes filled, not 7 (layer2's convs 3-6% shorter
// on one core, and 5% in the model's profile against the other dispatches; docs/profiling.md, stop 39).
// Not inlined: inside the conv's body it took 72 us instead of 45 for ResNet's layer1 (C harness, one core).
static __attribute__((noinline)) void winograd_input(const winograd_t* k, int t0, int t1) {
  // k's members in locals: the stores to V may alias k as far as clang knows, and it would reload them after each
  const __m512i pad = _mm512_set1_epi8((char)k->value);
  const __m512i columns[6] = {k->columns[0], k->columns[1], k->columns[2], k->columns[3], k->columns[4],
                              k->columns[5]};
  const int pairs = k->pairs, tw = k->tw, h = k->h, w = k->w, first = k->first, paired = 4 * tw + 2 <= 32;
  const size_t span = (size_t)k->span;
  int16_t* v = k->v;
  for (int cp = 0; cp < pairs; ++cp) {
    const int8_t* x0 = k->x + (size_t)(2 * cp) * h * w;
    const int8_t* x1 = x0 + (size_t)h * w;
    for (int i = t0 / tw, nb; i * tw < t1; i += nb ? 2 : 1) {
      const int j1 = t1 - i * tw < tw ? t1 - i * tw : tw;
      nb = paired && j1 == tw && (i + 1) * tw < t1 ? (t1 - (i + 1) * tw < tw ? t1 - (i + 1) * tw : tw) : 0;
      for (int j0 = t0 > i * tw ? t0 - i * tw : 0; j0 < j1; j0 += WINO_CHUNK) {
        const int na = j1 - j0 < WINO_CHUNK ? j1 - j0 : WINO_CHUNK, col0 = 4 * j0 - 1;
        const __mmask64 inside = window(col0, w);  // the columns of the 64 bytes from col0 that are in the row
        __m512i idx[6];  // with two tile rows, lanes na up read the upper half: bytes 32 + 4 (j - na) + u
        const __m512i upper = _mm512_set1_epi8((char)(32 - 4 * na));
        for (int u = 0; u < 6; ++u)
          idx[u] = nb ? _mm512_mask_add_epi8(columns[u], ~0ull << (2 * na), columns[u], upper) : columns[u];
        __m512i t[6][6];  // [window row][transformed column]
        for (int r = 0; r < 6; ++r) {
          const int row = 4 * i - 1 + r;
          __m512i a = pad, b = pad;
          if (nb) {
            a = two_tile_rows(x0, row, col0, h, w, pad);
            b = two_tile_rows(x1, row, col0, h, w, pad);
          } else if (row >= 0 && row < h) {
            a = _mm512_mask_loadu_epi8(pad, inside, x0 + (ptrdiff_t)row * w + col0);
            b = _mm512_mask_loadu_epi8(pad, inside, x1 + (ptrdiff_t)row * w + col0);
          }
          __m512i d[6];
          for (int u = 0; u < 6; ++u)
            d[u] = _mm512_cvtepi8_epi16(_mm512_castsi512_si256(_mm512_permutex2var_epi8(a, idx[u], b)));
          winograd_bt((const wino_u16*)d, (wino_u16*)t[r]);
        }
        const __mmask16 lanes = (__mmask16)((1u << (na + nb)) - 1);
        const size_t at = (size_t)i * tw + j0 - first;
        for (int q = 0; q < 6; ++q) {
          const __m512i col[6] = {t[0][q], t[1][q], t[2][q], t[3][q], t[4][q], t[5][q]};
          __m512i out[6];
          winograd_bt((const wino_u16*)col, (wino_u16*)out);
          for (int p = 0; p < 6; ++p)
            _mm512_mask_storeu_epi32(v + (((size_t)(6 * p + q) * pairs + cp) * span + at) * 2, lanes, out[p]);
        }
      }
    }
  }
}

// The 36 positions' sums of nt tiles from t0 x nv vectors of 16 output channels from vector o0 of block ob, to M
// [nt][nv][36].
static inline __attribute__((always_inline)) void winograd_products(const winograd_t* k, int ob, int t0,
                                                                    const int nt, int o0, const int nv) {
  for (int p = 0; p < 36; ++p) {
    __m512i acc[WINO_MERGED][WINO_VECTORS];  // [nt][nv] of them
    for (int t = 0; t < nt; ++t)
      for (int o = 0; o < nv; ++o) acc[t][o] = _mm512_setzero_si512();
    const int16_t* up = k->u + ((size_t)ob * 36 + p) * k->pairs * WINO_OC * 2 + 32 * o0;
    const int32_t* vp = (const int32_t*)k->v + (size_t)p * k->pairs * k->span + (t0 - k->first);
    for (int cp = 0; cp < k->pairs; ++cp) {
      __m512i wv[WINO_VECTORS];
      for (int o = 0; o < nv; ++o) wv[o] = _mm512_loadu_si512(up + (size_t)cp * WINO_OC * 2 + 32 * o);
      if (k->ahead)
        for (int o = 0; o < nv; ++o)
          _mm_prefetch((const char*)(up + (size_t)cp * WINO_OC * 2 + 32 * o) + k->ahead, _MM_HINT_T0);
      for (int t = 0; t < nt; ++t) {
        const __m512i b = _mm512_set1_epi32(vp[(size_t)cp * k->span + t]);
        for (int o = 0; o < nv; ++o) acc[t][o] = _mm512_dpwssd_epi32(acc[t][o], b, wv[o]);
      }
    }
    for (int t = 0; t < nt; ++t)
      for (int o = 0; o < nv; ++o) _mm512_storeu_si512(k->m + (t * nv + o) * 36 + p, acc[t][o]);
  }
}

// A tile's 4 rows of 4 bytes in one channel plane (row stride w), as the dwords of a vector, and back; at the map's
// bottom and right edges, only its first `rows` rows and `cols` columns (the rest read as 0).
static inline __m128i tile_rows(const int8_t* at, int w, int rows, int cols) {
  int32_t d[4] = {0, 0, 0, 0};
  if (rows == 4 && cols == 4) {
    for (int a = 0; a < 4; ++a) __builtin_memcpy(&d[a], at + (size_t)a * w, 4);
  } else {
    for (int a = 0; a < rows; ++a)
      for (int b = 0; b < cols; ++b) d[a] |= (int32_t)((uint32_t)(uint8_t)at[(size_t)a * w + b] << (8 * b));
  }
  return _mm_set_epi32(d[3], d[2], d[1], d[0]);
}

static inline void store_tile_rows(int8_t* at, int w, __m128i four, int rows, int cols) {
  const int32_t d[4] = {_mm_cvtsi128_si32(four), _mm_extract_epi32(four, 1), _mm_extract_epi32(four, 2),
                        _mm_extract_epi32(four, 3)};
  if (rows == 4 && cols == 4) {
    for (int a = 0; a < 4; ++a) __builtin_memcpy(at + (size_t)a * w, &d[a], 4);
  } else {
    for (int a = 0; a < rows; ++a)
      for (int b = 0; b < cols; ++b) at[(size_t)a * w + b] = (int8_t)(d[a] >> (8 * b));
  }
}

// One tile's 16 outputs for 16 channels from oc0 (its sums at M's slot): the output transform, the division by
// 576, bias and requantization, to out[g]: channels oc0 + 4 g .. oc0 + 4 g + 3, [channel][tile row][col] (a dword
// per row). Two copies, each called (winograd_outputs_usual, _any): inlined at each call site of the conv's body it
// made layer1's conv 5% slower (C harness, one core, Zen 4); with the requantization's form a constant in each copy
// (usual_requant), layer1's conv took 0.96x as long (Zen 5).
static inline __attribute__((always_inline)) void winograd_outputs(const winograd_t* k, int tile, int slot, int oc0,
                                                                   const int usual, __m512i* out) {
  const __m512i* ms = k->m + slot * 36;
  __m512i t[4][6];  // the first stage's 4 x 6
  winograd_at_columns((const wino_u32_unaligned*)ms, (wino_u32(*)[6])t);
  const __m512i inv9 = _mm512_set1_epi32((int32_t)((uint32_t)WINO_INV9 << 6));
  const __m512i bias = _mm512_loadu_si512(k->bias + oc0), mult = _mm512_loadu_si512(k->rq->m + oc0);
  const __m512i m_odd = _mm512_srli_epi64(mult, 32);
  __m512i z[4];  // tile row a: [col][16 channels]
#pragma clang loop unroll(full)
  for (int a = 0; a < 4; ++a) {
    __m512i y[4];
    winograd_at((const wino_u32*)t[a], (wino_u32*)y);
    __m128i b[4];  // the row's i8 results, [col][16 channels]
#pragma clang loop unroll(full)
    for (int col = 0; col < 4; ++col) {
      // 576 Y modulo 2^32 -> (Y modulo 2^26) << 6, whose arithmetic shift back is Y
      const __m512i sum = _mm512_srai_epi32(_mm512_mullo_epi32(_mm512_srai_epi32(y[col], 6), inv9), 6);
      b[col] = _mm512_cvtsepi32_epi8(requantize32(_mm512_add_epi32(sum, bias), k->rq, mult, m_odd, usual));
    }
    z[a] = _mm512_inserti32x4(_mm512_inserti32x4(_mm512_inserti32x4(_mm512_castsi128_si512(b[0]), b[1], 1), b[2], 2),
                              b[3], 3);
  }
  for (int g = 0; g < 4; ++g) {  // channels oc0 + 4 g ..: [channel][tile row a][col], a dword per row
    const __m512i lo = _mm512_permutex2var_epi8(z[0], k->to_channels[g], z[1]);
    const __m512i hi = _mm512_permutex2var_epi8(z[2], k->to_channels[g], z[3]);
    out[g] = _mm512_mask_blend_epi8(0xFF00FF00FF00FF00ull, lo, hi);
  }
}

static __attribute__((noinline)) void winograd_outputs_usual(const winograd_t* k, int tile, int slot, int oc0,
                                                            __m512i* out) {
  winograd_outputs(k, tile, slot, oc0, 1, out);
}
static __attribute__((noinline)) void winograd_outputs_any(const winograd_t* k, int tile, int slot, int oc0,
                                                          __m512i* out) {
  winograd_outputs(k, tile, slot, oc0, 0, out);
}

// The results of n <= 4 tiles from `tile` in one tile row (winograd_outputs' out for the r-th in c[r]), stored to
// NCHW y. Whole tiles: a 4 x 4 transpose of dwords per channel (tile r's row a -> row a's tile r) makes each
// channel's row across the n tiles 4 n contiguous bytes, one store. Tile by tile, a row was 4 bytes, and the 16
// stores per 4 channels took 9% of layer1's conv whatever their form (dwords extracted, masked or scattered); in
// runs, layer1's conv took 0.956x as long, layer2's 0.988x (C harness, one core, Zen 5). The residual add goes
// here, where a channel's row of the run is one 16-byte load of the residual: in winograd_outputs, a vpgatherdd per
// tile and 4 channels cost layer1's conv 26 us of 158 instead of 16 (layer2's 15 of 151 instead of 9; C harness,
// one core, Zen 5). The map's last tile row and column, when partial, go tile by tile.
static void winograd_store(const winograd_t* k, int tile, int n, int oc0, __m512i (*c)[4]) {
  const int i = tile / k->tw, j = tile % k->tw, last = 4 * (j + n - 1);  // the run's last tile's first column
  const int rows = k->h - 4 * i < 4 ? k->h - 4 * i : 4, cols = k->w - last < 4 ? k->w - last : 4;
  const size_t plane = (size_t)k->h * k->w;
  for (int g = 0; g < 4; ++g) {
    int8_t* at = k->y + (size_t)(oc0 + 4 * g) * plane + (size_t)(4 * i) * k->w + 4 * j;
    if (rows < 4 || cols < 4) {
      for (int r = 0; r < n; ++r) {
        const int width = r == n - 1 ? cols : 4;
        __m128i lanes[4];
        quarters(c[r][g], lanes);
        for (int l = 0; l < 4; ++l) {
          int8_t* to = at + 4 * r + (size_t)l * plane;
          __m128i four = lanes[l];
          if (k->add)
            four = add_residual(_mm512_cvtepi8_epi32(four), k->add,
                                tile_rows(k->add->r + (to - k->y), k->w, rows, width));
          store_tile_rows(to, k->w, four, rows, width);
        }
      }
      continue;
    }
    const __m512i zero = _mm512_setzero_si512();  // the tiles past n
    const __m512i t0 = c[0][g], t1 = n > 1 ? c[1][g] : zero, t2 = n > 2 ? c[2][g] : zero, t3 = n > 3 ? c[3][g] : zero;
    const __m512i lo01 = _mm512_unpacklo_epi32(t0, t1), hi01 = _mm512_unpackhi_epi32(t0, t1);
    const __m512i lo23 = _mm512_unpacklo_epi32(t2, t3), hi23 = _mm512_unpackhi_epi32(t2, t3);
    const __m512i row[4] = {_mm512_unpacklo_epi64(lo01, lo23), _mm512_unpackhi_epi64(lo01, lo23),
                            _mm512_unpacklo_epi64(hi01, hi23), _mm512_unpackhi_epi64(hi01, hi23)};
    const __mmask8 tiles = (__mmask8)((1u << n) - 1);
    for (int a = 0; a < 4; ++a) {  // row a of the 4 channels: 128-bit lane l of row[a] is channel l's
      int8_t* r = at + (size_t)a * k->w;
      __m128i lanes[4];
      quarters(row[a], lanes);
      for (int l = 0; l < 4; ++l) {
        __m128i four = lanes[l];
        if (k->add)
          four = add_residual(_mm512_cvtepi8_epi32(four), k->add,
                              _mm_maskz_loadu_epi32(tiles, k->add->r + (r - k->y) + (size_t)l * plane));
        _mm_mask_storeu_epi32(r + (size_t)l * plane, tiles, four);
      }
    }
  }
}

// The workgroup's share of a conv (the section's header): the gy-th range of the tiles, or the pieces it claims, all
// output channels.
static inline __attribute__((always_inline)) void winograd_conv(const int8_t* x, const int16_t* u,
                                                                const int32_t* bias, int64_t* claims, int8_t* y,
                                                                void* ws, const requant_t* rq, const residual_t* add,
                                                                int32_t c, int32_t oc, int32_t h, int32_t w,
                                                                int32_t value, int32_t parts, size_t gy) {
  const int tw = (w + 3) / 4, tiles = ((h + 3) / 4) * tw, pairs = c / 2;
  const int usual = usual_requant(rq);  // which copy of winograd_outputs
  const int longest = (tiles + parts - 1) / parts, piece = tw > WINO_PIECE ? tw : WINO_PIECE;
  const int span = piece < longest ? piece : longest;  // V's tiles
  const size_t v_bytes = ((size_t)36 * pairs * span * 4 + 63) / 64 * 64;
  int8_t* slot = (int8_t*)ws + (size_t)gy * (v_bytes + (size_t)36 * WINO_TILES * WINO_OC * 4);
  winograd_t k;  // member by member: an initializer would zero the index vectors with memset, which IREE lacks
  k.x = x, k.u = u, k.bias = bias, k.y = y, k.v = (int16_t*)slot, k.m = (__m512i*)(slot + v_bytes), k.rq = rq;
  k.add = add, k.pairs = pairs, k.tw = tw, k.h = h, k.w = w, k.value = value, k.span = span;
  for (int q = 0; q < 6; ++q) {
    uint8_t idx[64];  // bytes 30 up: unused
    for (int j = 0; j < 16; ++j) idx[2 * j] = (uint8_t)(4 * j + q), idx[2 * j + 1] = (uint8_t)(64 + 4 * j + q);
    for (int j = 32; j < 64; ++j) idx[j] = 0;
    k.columns[q] = opaque_indices(idx);
  }
  for (int g = 0; g < 4; ++g) {
    uint8_t idx[64];
    for (int l = 0; l < 4; ++l)
      for (int a = 0; a < 4; ++a)
        for (int col = 0; col < 4; ++col) idx[16 * l + 4 * a + col] = (uint8_t)((a & 1) * 64 + 16 * col + 4 * g + l);
    k.to_channels[g] = opaque_indices(idx);
  }
  // The tiles, in pieces of `span`. Given claims (the pass gives them to two workgroups whose ranges are whole
  // pieces: winograd_claims), workgroup 0 claims the pieces from the first one up and workgroup 1 from the last one
  // down, so that the worker on the faster vCPU takes more of them (docs/profiling.md, "Stop 35"); with even
  // workers each ends with its static range. claims[0] counts the pieces claimed from the front (low half) and from
  // the back (high half); claims[1] counts the workgroups that are done, and the last leaves both at 0 for the next
  // call (IREE runs the dispatches that use them in order).
  const int pieces = tiles / span, claimed = claims != 0;
  const int first = (int)gy * tiles / parts, last = ((int)gy + 1) * tiles / parts;
  for (int q = 0, r0, r1;; ++q) {
    if (claimed) {
      const uint64_t seen = __atomic_fetch_add((uint64_t*)&claims[0], gy ? 1ull << 32 : 1, __ATOMIC_RELAXED);
      const int front = (int)(uint32_t)seen, back = (int)(seen >> 32);
      if (front + back >= pieces) break;
      const int p = gy ? pieces - 1 - back : front;
      r0 = p * span, r1 = r0 + span;
    } else {
      r0 = first + q * span;
      if (r0 >= last) break;
      r1 = r0 + span < last ? r0 + span : last;
    }
    k.first = r0, k.ahead = q == 0 ? COLD_AHEAD : 0;  // the first piece reads U from memory
    winograd_input(&k, r0, r1);
    // the piece's blocks for each 64 output channels in turn, so that the blocks read the same part of U (590 KB
    // for layer2) from the L2 one after the other: with the channels inside the blocks, each of layer2's blocks
    // read all of its 1.18 MB of U, more than the 1 MB L2 holds (its convs took 4% less in the model's profile
    // against the other dispatches; docs/profiling.md, stop 39)
    for (int ob = 0; ob < oc / WINO_OC; ++ob) {
      for (int t0 = r0; t0 < r1;) {
        // blocks of 6 tiles; the piece's last 1 to 3 tiles join the block before them, which then takes two
        // passes of 32 channels: each pass reads half of the block's weights, where a block of their own would
        // read them all again (ResNet's layer2, 49 tiles in ranges of 24 and 25: the one of 25 took 12% longer)
        const int nt = r1 - t0 <= WINO_MERGED ? r1 - t0 : WINO_TILES;
        const int nv = nt > WINO_TILES ? 2 : WINO_VECTORS;  // vectors of 16 channels per pass
        for (int o0 = 0; o0 < WINO_VECTORS; o0 += nv) {
          switch (nt) {  // each count as its own unrolled copy, so the accumulators stay in registers
            case 9: winograd_products(&k, ob, t0, 9, o0, 2); break;
            case 8: winograd_products(&k, ob, t0, 8, o0, 2); break;
            case 7: winograd_products(&k, ob, t0, 7, o0, 2); break;
            case 6: winograd_products(&k, ob, t0, 6, o0, WINO_VECTORS); break;
            case 5: winograd_products(&k, ob, t0, 5, o0, WINO_VECTORS); break;
            case 4: winograd_products(&k, ob, t0, 4, o0, WINO_VECTORS); break;
            case 3: winograd_products(&k, ob, t0, 3, o0, WINO_VECTORS); break;
            case 2: winograd_products(&k, ob, t0, 2, o0, WINO_VECTORS); break;
            default: winograd_products(&k, ob, t0, 1, o0, WINO_VECTORS); break;
          }
          for (int o = 0; o < nv; ++o)
            for (int t = 0, n; t < nt; t += n) {  // runs of up to 4 tiles in one tile row (winograd_store)
              const int left = tw - (t0 + t) % tw;
              n = nt - t < 4 ? nt - t : 4;
              n = n < left ? n : left;
              const int oc0 = ob * WINO_OC + 16 * (o0 + o);
              __m512i c[4][4];
              for (int r = 0; r < n; ++r)
                (usual ? winograd_outputs_usual : winograd_outputs_any)(&k, t0 + t + r, nv * (t + r) + o, oc0, c[r]);
              winograd_store(&k, t0 + t, n, oc0, c);
            }
        }
        t0 += nt;
      }
    }
  }
  if (claimed && __atomic_add_fetch(&claims[1], 1, __ATOMIC_ACQ_REL) == parts) {
    __atomic_store_n(&claims[0], 0, __ATOMIC_RELAXED);
    __atomic_store_n(&claims[1], 0, __ATOMIC_RELEASE);
  }
}

#define WINOGRAD_PARAMS \
  int32_t c, int32_t oc, int32_t h, int32_t w, int32_t value, int32_t parts, int32_t oc_parts
// The Winograd conv's entries, in the pass's order of arguments: x [C][H][W] i8, the conv's input before its
// padding of 1 with `value`; requantized i8 NCHW out, and with _add the residual add after it; ws is the scratch
// buffer (a second result, unused after); with _claimed, claims (2 x i64, 0 between calls) count the pieces that
// the workgroups claimed. oc_parts (the AVX2 kernel's split of the output channels) is 1 here.
void edgeq_winograd_conv_requant_claimed(const int8_t* x, const int16_t* u, const int32_t* bias, const int32_t* m,
                                         int64_t* claims, int8_t* y, void* ws, WINOGRAD_PARAMS, REQUANT_PARAMS,
                                         size_t gx, size_t gy) {
  (void)gx, (void)oc_parts;
  const requant_t rq = {m, shift, lo, hi, zp};
  winograd_conv(x, u, bias, claims, y, ws, &rq, 0, c, oc, h, w, value, parts, gy);
}

void edgeq_winograd_conv_requant_add_claimed(const int8_t* x, const int16_t* u, const int32_t* bias,
                                             const int32_t* m, const int8_t* r, int64_t* claims, int8_t* y, void* ws,
                                             WINOGRAD_PARAMS, REQUANT_PARAMS, ADD_PARAMS, size_t gx, size_t gy) {
  (void)gx, (void)oc_parts;
  const requant_t rq = {m, shift, lo, hi, zp};
  const residual_t add = {r, mc, mr, k, add_shift, add_zp, add_lo, add_hi};
  winograd_conv(x, u, bias, claims, y, ws, &rq, &add, c, oc, h, w, value, parts, gy);
}

// Each workgroup its own range: the entries above without claims.
void edgeq_winograd_conv_requant(const int8_t* x, const int16_t* u, const int32_t* bias, const int32_t* m,
                                 int8_t* y, void* ws, WINOGRAD_PARAMS, REQUANT_PARAMS, size_t gx, size_t gy) {
  edgeq_winograd_conv_requant_claimed(x, u, bias, m, 0, y, ws, c, oc, h, w, value, parts, oc_parts, shift, lo, hi,
                                      zp, gx, gy);
}

void edgeq_winograd_conv_requant_add(const int8_t* x, const int16_t* u, const int32_t* bias, const int32_t* m,
                                     const int8_t* r, int8_t* y, void* ws, WINOGRAD_PARAMS, REQUANT_PARAMS,
                                     ADD_PARAMS, size_t gx, size_t gy) {
  edgeq_winograd_conv_requant_add_claimed(x, u, bias, m, r, 0, y, ws, c, oc, h, w, value, parts, oc_parts, shift, lo,
                                          hi, zp, mc, mr, k, add_shift, add_zp, add_lo, add_hi, gx, gy);
}

// 3x3 max pooling at stride 2 (ResNet's after the stem), i8 NCHW: y = max(init, the window's values), the input
// padded by top rows and left columns of `value` (and as many as the windows need at the other edges). IREE ran it
// on the padded copy of its input: 84 us and a 23 us copy on two threads for ResNet-18's 64 x 112 x 112. Each
// step takes 32 outputs of a row: the horizontal maxima of the 65 input bytes they read, from two loads and three
// vpermt2b (the even, odd and next even columns), for each of its 3 input rows; a row's maxima serve the output
// rows above and below it. Workgroup gx: the gx-th of `parts` equal parts of the channels.
// in0, in1: the bytes of the two loads from col0 that lie in the row (window)
static inline __attribute__((always_inline)) __m256i pool_row(const int8_t* row, int col0, __mmask64 in0,
                                                              __mmask64 in1, __m512i pad, const __m512i* taps) {
  const __m512i a = _mm512_mask_loadu_epi8(pad, in0, row + col0), b = _mm512_mask_loadu_epi8(pad, in1, row + col0 + 64);
  const __m512i m = _mm512_max_epi8(_mm512_max_epi8(_mm512_permutex2var_epi8(a, taps[0], b),
                                                    _mm512_permutex2var_epi8(a, taps[1], b)),
                                    _mm512_permutex2var_epi8(a, taps[2], b));
  return _mm512_castsi512_si256(m);
}

void edgeq_maxpool3x3s2_i8(const int8_t* x, int8_t* y, int32_t c, int32_t h, int32_t w, int32_t top, int32_t left,
                           int32_t value, int32_t init, int32_t oh, int32_t ow, int32_t parts, size_t gx, size_t gy) {
  (void)gy;
  __m512i taps[3];  // output column j of the step reads bytes 2 j + i of its loads
  for (int i = 0; i < 3; ++i) {
    uint8_t idx[64];
    for (int j = 0; j < 64; ++j) idx[j] = (uint8_t)(j < 32 ? 2 * j + i : 0);
    taps[i] = opaque_indices(idx);
  }
  const __m512i pad = _mm512_set1_epi8((char)value);
  const __m256i floor = _mm256_set1_epi8((char)init);
  for (int ch = (int)gx * c / parts; ch < ((int)gx + 1) * c / parts; ++ch) {
    const int8_t* xc = x + (size_t)ch * h * w;
    int8_t* yc = y + (size_t)ch * oh * ow;
    for (int j0 = 0; j0 < ow; j0 += 32) {
      const int col0 = 2 * j0 - left;
      const __mmask64 in0 = window(col0, w), in1 = window(col0 + 64, w);
      const __mmask32 lanes = ow - j0 >= 32 ? 0xFFFFFFFFu : (__mmask32)((1u << (ow - j0)) - 1);
      __m256i below = _mm256_setzero_si256();  // the last output row's bottom input row, its maxima
      int below_row = -1000;
      for (int r = 0; r < oh; ++r) {
        __m256i m = floor;
        for (int i = 0; i < 3; ++i) {
          const int row = 2 * r - top + i;
          __m256i hm;
          if (row == below_row) {
            hm = below;
          } else if (row < 0 || row >= h) {
            hm = _mm512_castsi512_si256(pad);
          } else {
            hm = pool_row(xc + (size_t)row * w, col0, in0, in1, pad, taps);
          }
          if (i == 2) below = hm, below_row = row;
          m = _mm256_max_epi8(m, hm);
        }
        _mm256_mask_storeu_epi8(yc + (size_t)r * ow + j0, lanes, m);
      }
    }
  }
}
