// edgeq's int8 convolution for x86-64 with AVX2 (x86-64-v3: Haswell and later, Zen 1 and later), for CPUs without
// AVX-512 VNNI (the pass edgeq-conv-kernel-avx2, dialect_passes/conv_kernel.py): the rows kernel and its pack, with
// conv2d_u8s8_avx512vnni.c's entries, weights and scalars; the 3x3 depthwise kernel, with the VNNI one's entry; a
// 1x1 stride-1 kernel that reads its NCHW input, whose strips and tiles also run the stems as 1x1 convs over their
// patches (the VNNI patch kernel's entry); the VNNI file's Winograd conv and its batch-1 linear layer (at the end).
//
// AVX2 has no u8 x s8 dot product that cannot saturate (vpmaddubsw saturates its pairs' i16 sums), so the products
// are vpmaddwd's: the packed input's 4 channels of a pixel, x + 128 in [0, 255] as 4 u16, broadcast, times the
// 8 x 4 weights of an 8-channel block sign-extended to i16 (two vectors of 4 channels x 4), summed in pairs into
// i32. A lane's pair sum is at most 2 x 255 x 128, and the sums wrap in i32 like the reference's: exact. 16 MACs
// per vpmaddwd and its vpaddd, against vpdpbusd's 64 in one instruction.
//
// The rows kernel's layouts:
//   x    [c4][ph][pw][plane][4]  u16  activations + 128, padded, phase planes per stride (edgeq_pack_u8 below);
//                                     u16, not the VNNI kernels' u8: a pixel's broadcast needs no widening
//   w    [oc8][kh][kw][c4][8][4]  s8   weights, 8 output channels x 4 input channels per 32 bytes
//   bias [oc8 * 8]  i32   where the sums start: -128 * sum(w) per output channel undoes the +128
//   y    [oc][out_h][out_w]  i8 requantized, NCHW
// Linked into IREE executables; freestanding: no libc, no globals.
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#define BLOCK 8        // output channels per register tile: one block of the weights
#define TILE_PIXELS 6  // output pixels per register tile: 12 accumulators, 2 weight vectors, 1 input
#define COLD_AHEAD 4096  // bytes ahead of the weights' first pass to prefetch (conv2d_u8s8_avx512vnni.c's)

typedef struct {
  int32_t c4, oc, kh, kw, sh, sw, dh, dw, pw, wq, out_h, out_w;
  size_t plane, cstride;
} shape_t;

// Where each tap (i, j) reads in the packed input, in bytes from an output pixel's position: its phase plane and
// its offset in it.
static inline void tap_offsets(const shape_t* s, size_t* taps) {
  for (int i = 0; i < s->kh; ++i) {
    for (int j = 0; j < s->kw; ++j) {
      const int rh = i * s->dh, rw = j * s->dw;
      taps[i * s->kw + j] = (((size_t)(rh % s->sh) * s->pw + rw % s->sw) * s->plane + (size_t)(rh / s->sh) * s->wq +
                             rw / s->sw) * 4;
    }
  }
}

// The requantization edgeq's integer models apply to a conv's i32 sums, in i64 like the reference:
//   y = i8(clamp((acc * m[oc] + 2^(shift - 1)) >> shift, lo, hi) + zp)
typedef struct {
  const int32_t* m;
  int32_t shift, lo, hi, zp;
} requant_t;

// A residual add after the requantization (conv2d_u8s8_avx512vnni.c's residual_t):
//   y = i8(clamp(((c mc + r mr + k) >> shift) + zp, lo, hi))   in wrap-around i32
typedef struct {
  const int8_t* r;
  int32_t mc, mr, k, shift, zp, lo, hi;
} residual_t;

// edgeq's usual requantization: a shift of 33 to 50 and no clamp but the i8 saturation; its rounding and zero point
// are then one added constant (conv2d_u8s8_avx512vnni.c's usual_requant).
static inline int usual_requant(const requant_t* rq) {
  return rq->shift >= 33 && rq->shift <= 50 && rq->lo + rq->zp == -128 && rq->hi + rq->zp == 127;
}

// 8 sums (one per output channel) requantized, as i32 whose saturation to i8 is the result. vpmuldq multiplies the
// even lanes into i64, the odd ones after a shift down; shifts of 33 and more need only the products' high halves
// (conv2d_u8s8_avx512vnni.c's requantize32). AVX2 has no 64-bit arithmetic shift: shorter shifts, which edgeq's
// models do not make, take the scalar path.
static inline __attribute__((always_inline)) __m256i requantize8(__m256i acc, const requant_t* rq, __m256i m,
                                                                 __m256i m_odd, const int usual) {
  const __m256i even = _mm256_mul_epi32(acc, m), odd = _mm256_mul_epi32(_mm256_srli_epi64(acc, 32), m_odd);
  __m256i y;
  if (usual || rq->shift >= 33) {
    const __m256i hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
    const int32_t add = (1 << (rq->shift - 33)) + (usual ? rq->zp * (1 << (rq->shift - 32)) : 0);
    y = _mm256_sra_epi32(_mm256_add_epi32(hi, _mm256_set1_epi32(add)), _mm_cvtsi32_si128(rq->shift - 32));
    if (usual) return y;
  } else {
    int64_t p[8];
    int32_t out[8];
    _mm256_storeu_si256((__m256i*)p, even);
    _mm256_storeu_si256((__m256i*)p + 1, odd);
    for (int l = 0; l < 8; ++l) {  // p holds lanes 0, 2, 4, 6 then 1, 3, 5, 7
      const int64_t v = (p[l % 2 * 4 + l / 2] + (1ll << (rq->shift - 1))) >> rq->shift;
      out[l] = (int32_t)(v < rq->lo ? rq->lo : v > rq->hi ? rq->hi : v);
    }
    y = _mm256_loadu_si256((const __m256i*)out);
  }
  if (rq->lo + rq->zp != -128 || rq->hi + rq->zp != 127)
    y = _mm256_min_epi32(_mm256_max_epi32(y, _mm256_set1_epi32(rq->lo)), _mm256_set1_epi32(rq->hi));
  return _mm256_add_epi32(y, _mm256_set1_epi32(rq->zp));
}

// 8 i32 saturated to i8, in the low 8 bytes.
static inline __m128i saturate8(__m256i y) {
  const __m128i h = _mm_packs_epi32(_mm256_castsi256_si128(y), _mm256_extracti128_si256(y, 1));
  return _mm_packs_epi16(h, h);
}

// y: 8 requantized sums; r: the residual's 8 bytes at the same places (low half)
static inline __m128i add_residual(__m256i y, const residual_t* a, __m128i r) {
  const __m256i c = _mm256_max_epi32(_mm256_min_epi32(y, _mm256_set1_epi32(127)), _mm256_set1_epi32(-128));
  const __m256i t = _mm256_add_epi32(_mm256_add_epi32(_mm256_mullo_epi32(c, _mm256_set1_epi32(a->mc)),
                                                      _mm256_mullo_epi32(_mm256_cvtepi8_epi32(r),
                                                                         _mm256_set1_epi32(a->mr))),
                                     _mm256_set1_epi32(a->k));
  __m256i v = _mm256_add_epi32(_mm256_sra_epi32(t, _mm_cvtsi32_si128(a->shift)), _mm256_set1_epi32(a->zp));
  if (a->lo != -128 || a->hi != 127)
    v = _mm256_min_epi32(_mm256_max_epi32(v, _mm256_set1_epi32(a->lo)), _mm256_set1_epi32(a->hi));
  return saturate8(v);
}

// The 8 x 8 bytes in the low halves of q[0..7] transposed: byte j of q[i] becomes byte i of q[j].
static inline void transpose8x8(__m128i* q) {
  const __m128i a = _mm_unpacklo_epi8(q[0], q[1]), b = _mm_unpacklo_epi8(q[2], q[3]);
  const __m128i c = _mm_unpacklo_epi8(q[4], q[5]), d = _mm_unpacklo_epi8(q[6], q[7]);
  const __m128i e = _mm_unpacklo_epi16(a, b), f = _mm_unpackhi_epi16(a, b);
  const __m128i g = _mm_unpacklo_epi16(c, d), h = _mm_unpackhi_epi16(c, d);
  const __m128i c01 = _mm_unpacklo_epi32(e, g), c23 = _mm_unpackhi_epi32(e, g);
  const __m128i c45 = _mm_unpacklo_epi32(f, h), c67 = _mm_unpackhi_epi32(f, h);
  q[0] = c01, q[1] = _mm_unpackhi_epi64(c01, c01), q[2] = c23, q[3] = _mm_unpackhi_epi64(c23, c23);
  q[4] = c45, q[5] = _mm_unpackhi_epi64(c45, c45), q[6] = c67, q[7] = _mm_unpackhi_epi64(c67, c67);
}

// n <= 8 bytes from p (the low n bytes of the result), reading no byte past them.
static inline __m128i load_bytes(const int8_t* p, int n) {
  uint64_t v = 0;
  int k = 0;
  if (n & 4) {
    uint32_t u;
    __builtin_memcpy(&u, p, 4);
    v = u, k = 4;
  }
  if (n & 2) {
    uint16_t u;
    __builtin_memcpy(&u, p + k, 2);
    v |= (uint64_t)u << (8 * k), k += 2;
  }
  if (n & 1) v |= (uint64_t)(uint8_t)p[k] << (8 * k);
  if (n == 8) __builtin_memcpy(&v, p, 8);
  return _mm_cvtsi64_si128((long long)v);
}

// The low n <= 8 bytes of q to p.
static inline void store_bytes(int8_t* p, __m128i q, int n) {
  uint64_t v = (uint64_t)_mm_cvtsi128_si64(q);
  if (n == 8) {
    __builtin_memcpy(p, &v, 8);
    return;
  }
  int k = 0;
  if (n & 4) {
    const uint32_t u = (uint32_t)v;
    __builtin_memcpy(p, &u, 4);
    v >>= 32, k = 4;
  }
  if (n & 2) {
    const uint16_t u = (uint16_t)v;
    __builtin_memcpy(p + k, &u, 2);
    v >>= 16, k += 2;
  }
  if (n & 1) p[k] = (int8_t)v;
}

// n bytes from src to dst: 16 at a time and the last 16 overlapping, or by 8, 4, 2 and 1 (no byte loop: the
// patch kernel's and the Winograd kernel's padded rows).
static inline void copy_bytes(int8_t* dst, const int8_t* src, int n) {
  if (n < 16) {
    int j = 0;
    if (n & 8) __builtin_memcpy(dst, src, 8), j = 8;
    if (n & 4) __builtin_memcpy(dst + j, src + j, 4), j += 4;
    if (n & 2) __builtin_memcpy(dst + j, src + j, 2), j += 2;
    if (n & 1) dst[j] = src[j];
    return;
  }
  for (int j = 0; j + 16 <= n; j += 16)
    _mm_storeu_si128((__m128i*)(dst + j), _mm_loadu_si128((const __m128i*)(src + j)));
  _mm_storeu_si128((__m128i*)(dst + n - 16), _mm_loadu_si128((const __m128i*)(src + n - 16)));
}

// Block b's 8 multipliers (a partial last block's in lanes of their own: m has oc entries).
static inline __m256i block_multipliers(const requant_t* rq, int oc, int b) {
  const int n_oc = oc - b * BLOCK < BLOCK ? oc - b * BLOCK : BLOCK;
  if (n_oc == BLOCK) return _mm256_loadu_si256((const __m256i*)(rq->m + b * BLOCK));
  int32_t mb[BLOCK] = {0};
  for (int l = 0; l < n_oc; ++l) mb[l] = rq->m[b * BLOCK + l];
  return _mm256_loadu_si256((const __m256i*)mb);
}

// The 8 sums of outputs 0-3 (a) and 4-7 (b), each held as two partial sums in neighbouring lanes, in order: added
// in pairs in the order 0 1 4 5 | 2 3 6 7, which the qword permutation puts in order.
static inline __m256i pair_sums(__m256i a, __m256i b) {
  return _mm256_permute4x64_epi64(_mm256_hadd_epi32(a, b), 0xD8);
}

// One register tile: the 8 output channels of block b x np output pixels from q0 in row-major order (across row
// ends: NCHW keeps them contiguous, and a 7 x 7 map makes 9 tiles of 5 or 6 pixels, not 14 of 3 or 4), requantized,
// with add the residual added, to y; at: each pixel's position in a tap's plane of the packed input. acc[p][h]
// holds channels 4h .. 4h + 3 of pixel p as pairs of partial sums (input channels 0-1 and 2-3 of each group), added
// up in the epilogue.
static inline __attribute__((always_inline)) void row_tile(const uint16_t* x, const size_t* taps, const int8_t* w,
                                                           const int32_t* bias, int8_t* y, const requant_t* rq,
                                                           const residual_t* add, const shape_t* s, int b, int q0,
                                                           const size_t* at, const int np, const int usual,
                                                           const size_t ahead) {
  const int8_t* wb = w + (size_t)b * s->kh * s->kw * s->c4 * BLOCK * 4;
  __m256i acc[TILE_PIXELS][2];
  for (int p = 0; p < np; ++p) acc[p][0] = acc[p][1] = _mm256_setzero_si256();
  for (int t = 0; t < s->kh * s->kw; ++t) {
    const uint16_t* xt = x + taps[t];
    const int8_t* wt = wb + (size_t)t * s->c4 * BLOCK * 4;
    for (int c = 0; c < s->c4; ++c) {
      const __m256i w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(wt + c * BLOCK * 4)));
      const __m256i w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(wt + c * BLOCK * 4 + 16)));
      if (ahead && c % 2 == 0)  // 32 bytes a step: one prefetch per line
        _mm_prefetch((const char*)(wt + c * BLOCK * 4 + ahead), _MM_HINT_T0);
      const uint16_t* xc = xt + c * s->cstride;
#pragma clang loop unroll(full)
      for (int p = 0; p < np; ++p) {  // x0 x1 x2 x3 of pixel p, u16, in each 64-bit lane
        int64_t four;
        __builtin_memcpy(&four, xc + at[p], 8);
        const __m256i xw = _mm256_set1_epi64x(four);
        acc[p][0] = _mm256_add_epi32(acc[p][0], _mm256_madd_epi16(xw, w0));
        acc[p][1] = _mm256_add_epi32(acc[p][1], _mm256_madd_epi16(xw, w1));
      }
    }
  }
  const int n_oc = s->oc - b * BLOCK < BLOCK ? s->oc - b * BLOCK : BLOCK;
  const __m256i m = block_multipliers(rq, s->oc, b), m_odd = _mm256_srli_epi64(m, 32);
  const __m256i bv = _mm256_loadu_si256((const __m256i*)(bias + b * BLOCK));
  const size_t out_plane = (size_t)s->out_h * s->out_w;
  int8_t* row = y + (size_t)b * BLOCK * out_plane + q0;
  __m128i r[8];  // the residual, [pixel][output channel]
  if (add) {
    const int8_t* rrow = add->r + (row - y);
    for (int l = 0; l < 8; ++l) r[l] = l < n_oc ? load_bytes(rrow + l * out_plane, np) : _mm_setzero_si128();
    transpose8x8(r);
  }
  __m128i q[8];  // the results, [pixel][output channel], then [output channel][pixel]
#pragma clang loop unroll(full)
  for (int p = 0; p < 8; ++p) {
    if (p >= np) {
      q[p] = _mm_setzero_si128();
      continue;
    }
    const __m256i sums = pair_sums(acc[p][0], acc[p][1]);
    const __m256i v = requantize8(_mm256_add_epi32(sums, bv), rq, m, m_odd, usual);
    q[p] = add ? add_residual(v, add, r[p]) : saturate8(v);
  }
  transpose8x8(q);
  for (int l = 0; l < n_oc; ++l) store_bytes(row + l * out_plane, q[l], np);
}

static inline __attribute__((always_inline)) void rows_conv(
    const uint16_t* x, const int8_t* w, const int32_t* bias, int8_t* y, const requant_t* rq, const residual_t* add,
    int32_t c4, int32_t oc, int32_t oc8, int32_t kh, int32_t kw, int32_t sh, int32_t sw, int32_t dh, int32_t dw,
    int32_t ph, int32_t pw, int32_t wq, int32_t plane, int32_t out_h, int32_t out_w, int32_t parts, int32_t group,
    size_t gx, size_t gy) {
  const shape_t s = {c4, oc, kh, kw, sh, sw, dh, dw, pw, wq, out_h, out_w, (size_t)plane,
                     (size_t)ph * pw * plane * 4};
  const int usual = usual_requant(rq);
  size_t taps[kh * kw];
  tap_offsets(&s, taps);
  const int b1 = (int)gx * group + group < oc8 ? (int)gx * group + group : oc8;
  // the workgroup's output rows, as segments of nearly equal lengths in row-major order
  const int q1 = ((int)gy + 1) * out_h / parts * out_w, q0 = (int)gy * out_h / parts * out_w;
  const int segments = (q1 - q0 + TILE_PIXELS - 1) / TILE_PIXELS;
  for (int seg = 0; seg < segments; ++seg) {
    const int p0 = q0 + seg * (q1 - q0) / segments, p1 = q0 + (seg + 1) * (q1 - q0) / segments;
    size_t at[TILE_PIXELS];
    for (int p = p0, oh = p0 / out_w, ow = p0 % out_w; p < p1; ++p, ow = ow + 1 < out_w ? ow + 1 : (++oh, 0))
      at[p - p0] = ((size_t)oh * wq + ow) * 4;
    const size_t ahead = seg == 0 ? COLD_AHEAD : 0;  // the first segment reads the weights from memory
    for (int b = (int)gx * group; b < b1; ++b) {  // the blocks reuse the segment's input from L1
#define ROW_TILE(NP) \
  usual ? row_tile(x, taps, w, bias, y, rq, add, &s, b, p0, at, NP, 1, ahead) \
        : row_tile(x, taps, w, bias, y, rq, add, &s, b, p0, at, NP, 0, ahead)
      switch (p1 - p0) {  // each length its own unrolled copy: accumulators in registers
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

// The requantized conv's entries, in the pass's order of arguments (conv2d_u8s8_avx512vnni.c's REQUANT_ENTRIES):
// workgroup (gx, gy) computes the gx-th `group` of 8-channel blocks for the gy-th of `parts` equal parts of the
// output rows.
#define SHAPE_PARAMS                                                                                                \
  int32_t c4, int32_t oc, int32_t oc8, int32_t kh, int32_t kw, int32_t sh, int32_t sw, int32_t dh, int32_t dw,     \
      int32_t ph, int32_t pw, int32_t wq, int32_t plane, int32_t out_h, int32_t out_w, int32_t parts, int32_t group
#define SHAPE_ARGS c4, oc, oc8, kh, kw, sh, sw, dh, dw, ph, pw, wq, plane, out_h, out_w, parts, group

void edgeq_conv2d_u8s8_rows_requant(const uint16_t* x, const int8_t* w, const int32_t* bias, const int32_t* m,
                                    int8_t* y, SHAPE_PARAMS, int32_t shift, int32_t lo, int32_t hi, int32_t zp,
                                    size_t gx, size_t gy) {
  const requant_t rq = {m, shift, lo, hi, zp};
  rows_conv(x, w, bias, y, &rq, 0, SHAPE_ARGS, gx, gy);
}

void edgeq_conv2d_u8s8_rows_requant_add(const uint16_t* x, const int8_t* w, const int32_t* bias, const int32_t* m,
                                        const int8_t* r, int8_t* y, SHAPE_PARAMS, int32_t shift, int32_t lo,
                                        int32_t hi, int32_t zp, int32_t mc, int32_t mr, int32_t k, int32_t add_shift,
                                        int32_t add_zp, int32_t add_lo, int32_t add_hi, size_t gx, size_t gy) {
  const requant_t rq = {m, shift, lo, hi, zp};
  const residual_t add = {r, mc, mr, k, add_shift, add_zp, add_lo, add_hi};
  rows_conv(x, w, bias, y, &rq, &add, SHAPE_ARGS, gx, gy);
}

// 16 bytes of a row w wide from column col, those outside [0, w) read as pad: the row's bytes in a register,
// moved into place by a byte shuffle whose lanes outside [0, w) take pad. A row at least 16 wide loads the 16
// bytes around col, a narrower one all its bytes: two 8-byte loads that overlap, or pieces below 8. (Through a
// buffer of pad bytes, each load of it waited for the stores before it: ResNet-18's packs took 2.4-2.7x as long,
// C harness.)
static inline __m128i bytes16(const int8_t* row, int col, int w, __m128i pad) {
  const __m128i lanes = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  __m128i v, at, out;  // the row's bytes, each lane's byte of v, and the lanes outside the row
  if (w >= 16) {
    const int start = col < 0 ? 0 : col > w - 16 ? w - 16 : col;
    v = _mm_loadu_si128((const __m128i*)(row + start));
    at = _mm_add_epi8(lanes, _mm_set1_epi8((char)(col - start)));
    out = _mm_or_si128(_mm_cmpgt_epi8(_mm_setzero_si128(), at), _mm_cmpgt_epi8(at, _mm_set1_epi8(15)));
  } else {
    at = _mm_add_epi8(lanes, _mm_set1_epi8((char)col));  // the columns
    out = _mm_or_si128(_mm_cmpgt_epi8(_mm_setzero_si128(), at), _mm_cmpgt_epi8(at, _mm_set1_epi8((char)(w - 1))));
    if (w >= 8) {  // columns 0-7, then w - 8 .. w - 1: column 8 + u at byte 16 - w + 8 + u
      v = _mm_unpacklo_epi64(_mm_loadl_epi64((const __m128i*)row), _mm_loadl_epi64((const __m128i*)(row + w - 8)));
      at = _mm_add_epi8(at, _mm_and_si128(_mm_cmpgt_epi8(at, _mm_set1_epi8(7)), _mm_set1_epi8((char)(16 - w))));
    } else {
      v = load_bytes(row, w);
    }
  }
  return _mm_or_si128(_mm_shuffle_epi8(v, _mm_or_si128(at, out)), _mm_and_si128(out, pad));
}

// 16 bytes of a row from column col at stride sw (1 or 2), the columns outside [0, w) read as pad; row 0: all pad.
static inline __attribute__((always_inline)) __m128i row16(const int8_t* row, int col, const int sw, int w,
                                                           int8_t pad) {
  const __m128i even = _mm_set1_epi16(0xFF);
  __m128i lo, hi;
  if (row && col >= 0 && col + 16 * sw <= w) {
    lo = _mm_loadu_si128((const __m128i*)(row + col));
    if (sw == 1) return lo;
    hi = _mm_loadu_si128((const __m128i*)(row + col + 16));
  } else {
    const __m128i pads = _mm_set1_epi8(pad);
    if (!row) return pads;
    lo = bytes16(row, col, w, pads);
    if (sw == 1) return lo;
    hi = bytes16(row, col + 16, w, pads);
  }
  return _mm_packus_epi16(_mm_and_si128(lo, even), _mm_and_si128(hi, even));
}

// The conv's input in the kernel's layout, one dispatch before it (conv2d_u8s8_avx512vnni.c's edgeq_pack_u8, the
// same arguments):
//   out[c4][a][b][i][j][k] = x[4 c4 + k][a + sh i - top][b + sw j - left] + 128
// for phase plane (a, b), with `value` (the conv's padding) wherever that lies outside x, channels >= c included.
// With unfold > 1, channel unfold q + t is x's channel q shifted left by t columns. 16 positions of a row at a
// time: each channel's 16 bytes, interleaved by two rounds of unpacks.
static inline __attribute__((always_inline)) void pack(const int8_t* x, uint16_t* out, int c, int h, int w, int top,
                                                       int left, int value, int sh, const int sw, int pw, int rows,
                                                       int wq, int unfold, int g, int plane) {
  const int a = plane / pw, b = plane % pw;
  const __m128i sign = _mm_set1_epi8((char)0x80);
  for (int i = 0; i < rows; ++i) {
    const int r = a + sh * i - top;
    const int8_t* src[4];  // the 4 channels' rows, or none where the row is padding
    int shift[4];          // their columns' shift (unfolded taps)
    for (int k = 0; k < 4; ++k) {
      const int v = 4 * g + k, q = v / unfold;
      src[k] = v < c && r >= 0 && r < h ? x + ((size_t)q * h + r) * w : 0;
      shift[k] = v % unfold;
    }
    for (int j = 0; j < wq; j += 16) {
      const int col = b + sw * j - left;
      __m128i ch[4];
      for (int k = 0; k < 4; ++k) ch[k] = _mm_xor_si128(sign, row16(src[k], col + shift[k], sw, w, (int8_t)value));
      const __m128i p0 = _mm_unpacklo_epi8(ch[0], ch[1]), p1 = _mm_unpackhi_epi8(ch[0], ch[1]);
      const __m128i p2 = _mm_unpacklo_epi8(ch[2], ch[3]), p3 = _mm_unpackhi_epi8(ch[2], ch[3]);
      const __m128i v[4] = {_mm_unpacklo_epi16(p0, p2), _mm_unpackhi_epi16(p0, p2), _mm_unpacklo_epi16(p1, p3),
                            _mm_unpackhi_epi16(p1, p3)};
      uint16_t* o = out + ((size_t)i * wq + j) * 4;
      if (j + 16 <= wq) {
        for (int l = 0; l < 4; ++l) _mm256_storeu_si256((__m256i*)(o + 16 * l), _mm256_cvtepu8_epi16(v[l]));
      } else {  // the row's last n < 16 positions: no store past them (the plane's last row ends the buffer)
        const int n = wq - j;
        int l = 0;
        for (; 4 * l + 4 <= n; ++l) _mm256_storeu_si256((__m256i*)(o + 16 * l), _mm256_cvtepu8_epi16(v[l]));
        if (n % 4) {  // 1 to 3 positions of v[l], 8 bytes each
          const __m256i t = _mm256_cvtepu8_epi16(v[l]);
          __m128i q = _mm256_castsi256_si128(t);
          uint16_t* at = o + 16 * l;
          if (n & 2) _mm_storeu_si128((__m128i*)at, q), q = _mm256_extracti128_si256(t, 1), at += 8;
          if (n & 1) _mm_storel_epi64((__m128i*)at, q);
        }
      }
    }
  }
}

// Workgroup (gx, gy) packs the gx-th of `parts` equal parts of the channel groups, phase plane gy.
void edgeq_pack_u8(const int8_t* x, uint16_t* out, int32_t c, int32_t h, int32_t w, int32_t top, int32_t left,
                   int32_t value, int32_t sh, int32_t sw, int32_t ph, int32_t pw, int32_t rows, int32_t wq,
                   int32_t parts, int32_t unfold, size_t gx, size_t gy) {
  const int c4 = (c + 3) / 4;
  for (int g = (int)gx * c4 / parts; g < ((int)gx + 1) * c4 / parts; ++g) {
    uint16_t* o = out + ((size_t)g * ph * pw + gy) * rows * wq * 4;
    if (sw == 1)  // each stride as its own copy
      pack(x, o, c, h, w, top, left, value, sh, 1, pw, rows, wq, unfold, g, (int)gy);
    else
      pack(x, o, c, h, w, top, left, value, sh, 2, pw, rows, wq, unfold, g, (int)gy);
  }
}

// A 3x3 depthwise conv with its requantization (conv2d_u8s8_avx512vnni.c's edgeq_dwconv3x3_u8s8_requant, the same
// arguments; NCHW out only: plane must be 0):
//   x    [c][h][wd]  i8   the unpadded input, padded here with `value` (top, left)
//   w    [c][3][4]  s8   each row of taps padded to 4
//   bias [c]  i32   bias - 128 * sum(w): the input is read + 128
// 8 output pixels of a row at a time, per row of taps one vpmaddwd on pairs of neighbouring input pixels (taps 0
// and 1) and one on the third tap alone: at stride 2 the pairs are the input's bytes in order, widened; at stride 1
// a shuffle of 16 bytes makes them. Workgroup gx computes the gx-th of `parts` equal parts of the groups of 4
// channels.
// Input row r of channel plane xc, + 128, padded: buf[left + j] = x[r][j] for j in [0, wd), `value` elsewhere in
// [0, n) (n >= left + wd).
static inline void dw_row(const int8_t* xc, int r, int h, int wd, int left, int8_t value, uint8_t* buf, int n) {
  const __m128i sign = _mm_set1_epi8((char)0x80), pad = _mm_set1_epi8((char)(value ^ 0x80));
  if (r < 0 || r >= h) {
    for (int l = 0; l < n; l += 16) _mm_storeu_si128((__m128i*)(buf + l), pad);
    return;
  }
  const int8_t* src = xc + (size_t)r * wd;
  for (int l = 0; l < left; ++l) buf[l] = (uint8_t)(value ^ 0x80);
  int j = 0;
  for (; j + 16 <= wd; j += 16)
    _mm_storeu_si128((__m128i*)(buf + left + j), _mm_xor_si128(sign, _mm_loadu_si128((const __m128i*)(src + j))));
  if (j < wd && wd >= 16) {  // the last 16 bytes again, overlapping
    j = wd - 16;
    _mm_storeu_si128((__m128i*)(buf + left + j), _mm_xor_si128(sign, _mm_loadu_si128((const __m128i*)(src + j))));
  } else {
    for (; j < wd; ++j) buf[left + j] = (uint8_t)(src[j] ^ 0x80);
  }
  for (int l = left + wd; l < n; l += 16) _mm_storeu_si128((__m128i*)(buf + l), pad);
}

// Channel ch's rows of taps: (w0, w1) and (w2, 0) as i16 pairs.
static inline void dw_weights(const int8_t* w, int ch, __m256i* pair, __m256i* third) {
  const int8_t* wc = w + 12 * ch;
  for (int i = 0; i < 3; ++i) {
    pair[i] = _mm256_set1_epi32((int32_t)((uint32_t)(uint16_t)wc[4 * i] | (uint32_t)(uint16_t)wc[4 * i + 1] << 16));
    third[i] = _mm256_set1_epi32((int32_t)(uint32_t)(uint16_t)wc[4 * i + 2]);
  }
}

// One row of taps for 8 output pixels: q, the padded input row's 16 bytes from the first pixel's first tap; q2,
// the same from 2 bytes on (stride 2 only). At stride 1, pixels p and p + 1 as u16 pairs and p + 2 alone, for p =
// 0..3 (low lane) and 4..7 (high lane).
static inline __attribute__((always_inline)) __m256i dw_row_taps(__m128i q, __m128i q2, __m256i pair, __m256i third,
                                                                 const int sw) {
  __m256i p, t;
  if (sw == 1) {
    const __m256i pairs1 = _mm256_setr_epi8(0, -1, 1, -1, 1, -1, 2, -1, 2, -1, 3, -1, 3, -1, 4, -1, 4, -1, 5, -1, 5,
                                            -1, 6, -1, 6, -1, 7, -1, 7, -1, 8, -1);
    const __m256i thirds1 = _mm256_setr_epi8(2, -1, -1, -1, 3, -1, -1, -1, 4, -1, -1, -1, 5, -1, -1, -1, 6, -1, -1,
                                             -1, 7, -1, -1, -1, 8, -1, -1, -1, 9, -1, -1, -1);
    const __m256i r = _mm256_broadcastsi128_si256(q);
    p = _mm256_shuffle_epi8(r, pairs1), t = _mm256_shuffle_epi8(r, thirds1);
  } else {
    p = _mm256_cvtepu8_epi16(q), t = _mm256_cvtepu8_epi16(q2);
  }
  return _mm256_add_epi32(_mm256_madd_epi16(p, pair), _mm256_madd_epi16(t, third));
}

#define DW_BYTES 16384  // the bytes of padded input rows a depthwise conv makes at a time (or 3 rows, if wider)

static inline __attribute__((always_inline)) void dwconv3x3(const int8_t* x, const int8_t* w, const int32_t* bias,
                                                            int8_t* y, const requant_t* rq, int ch, int h, int wd,
                                                            int top, int left, int value, const int sw, int out_h,
                                                            int out_w, const int usual) {
  const int8_t* xc = x + (size_t)ch * h * wd;
  __m256i pair[3], third[3];
  dw_weights(w, ch, pair, third);
  const __m256i b = _mm256_set1_epi32(bias[ch]), m = _mm256_set1_epi32(rq->m[ch]);
  // the 3 input rows of an output row, padded: as wide as the last 8 pixels' reads (16 bytes from each, 18 at
  // stride 2), in whole 16-byte stores
  const int reads = sw * 8 * ((out_w + 7) / 8) + 18, n = ((reads > left + wd ? reads : left + wd) + 15) / 16 * 16;
  // the input rows of `chunk` output rows (DW_BYTES), all made before those rows' taps read them (+ 16: the
  // padding's last store). Made row by row as the output rows needed them, in a ring of 3, the convs on 28 x 28 to
  // 112 x 112 took 1.1-1.3x as long (C harness, one core)
  const int fit = DW_BYTES / (n + 16), chunk = fit > 3 + sw ? (fit - 3) / sw + 1 : 1;
  uint8_t buf[(chunk - 1) * sw + 3][n + 16];
  for (int oh0 = 0; oh0 < out_h; oh0 += chunk) {
    const int oh1 = out_h - oh0 < chunk ? out_h : oh0 + chunk;
    for (int r = 0; r < (oh1 - oh0 - 1) * sw + 3; ++r)
      dw_row(xc, oh0 * sw - top + r, h, wd, left, (int8_t)value, buf[r], n);
    for (int oh = oh0; oh < oh1; ++oh) {
      for (int ow = 0; ow < out_w; ow += 8) {
        __m256i acc = b;
#pragma clang loop unroll(full)
        for (int i = 0; i < 3; ++i) {
          const uint8_t* row = buf[(oh - oh0) * sw + i] + sw * ow;
          const __m128i q = _mm_loadu_si128((const __m128i*)row);
          acc = _mm256_add_epi32(acc, dw_row_taps(q, sw == 1 ? q : _mm_loadu_si128((const __m128i*)(row + 2)),
                                                  pair[i], third[i], sw));
        }
        store_bytes(y + ((size_t)ch * out_h + oh) * out_w + ow, saturate8(requantize8(acc, rq, m, m, usual)),
                    out_w - ow < 8 ? out_w - ow : 8);
      }
    }
  }
}

// Small maps (a padded input row within 16 bytes: MobileNet's 14 x 14 and 7 x 7): each input row, + 128 and padded
// as dw_row's, is built in a register from one 16-byte load and a shuffle, and the taps read it there. The ring of
// rows built such rows byte by byte, and each tap's 16-byte load read bytes stored just before in smaller pieces:
// MobileNetV2's convs on 14 x 14 and 7 x 7 take 0.28-0.42x as long this way (C harness, one core).
typedef struct {
  __m128i idx_end, idx_start;  // for a load that ends at the row's end, and for one from its start
  __m128i pad, fill;           // the padding's bytes (0 elsewhere), and a whole row of padding
} dw_small_t;

static inline __m128i dw_row16(const int8_t* x, size_t at, int r, int h, int wd, const dw_small_t* d) {
  if (r < 0 || r >= h) return d->fill;
  const __m128i sign = _mm_set1_epi8((char)0x80);
  at += (size_t)r * wd;
  if (at + wd >= 16)
    return _mm_or_si128(_mm_shuffle_epi8(_mm_xor_si128(sign, _mm_loadu_si128((const __m128i*)(x + at + wd - 16))),
                                         d->idx_end), d->pad);
  return _mm_or_si128(_mm_shuffle_epi8(_mm_xor_si128(sign, _mm_loadu_si128((const __m128i*)(x + at))),
                                       d->idx_start), d->pad);  // the tensor's first bytes: it has 32 or more
}

static inline __attribute__((always_inline)) void dwconv3x3_small(const int8_t* x, const int8_t* w,
                                                                  const int32_t* bias, int8_t* y, const requant_t* rq,
                                                                  const dw_small_t* d, int ch, int h, int wd, int top,
                                                                  const int sw, int out_h, int out_w,
                                                                  const int usual) {
  __m256i pair[3], third[3];
  dw_weights(w, ch, pair, third);
  const __m256i b = _mm256_set1_epi32(bias[ch]), m = _mm256_set1_epi32(rq->m[ch]);
  const size_t at = (size_t)ch * h * wd;
  __m128i q[3];  // the output row's 3 input rows
  for (int i = 0; i < 3; ++i) q[i] = dw_row16(x, at, i - top, h, wd, d);
  int8_t* yc = y + (size_t)ch * out_h * out_w;
  for (int oh = 0; oh < out_h; ++oh) {
    if (oh > 0) {
      if (sw == 1) {
        q[0] = q[1], q[1] = q[2], q[2] = dw_row16(x, at, oh + 2 - top, h, wd, d);
      } else {
        q[0] = q[2], q[1] = dw_row16(x, at, 2 * oh + 1 - top, h, wd, d);
        q[2] = dw_row16(x, at, 2 * oh + 2 - top, h, wd, d);
      }
    }
    for (int ow = 0; ow < out_w; ow += 8) {
      __m256i acc = b;
#pragma clang loop unroll(full)
      for (int i = 0; i < 3; ++i) {
        const __m128i r = sw == 1 && ow ? _mm_alignr_epi8(d->fill, q[i], 8) : q[i];  // from pixel 8 on
        acc = _mm256_add_epi32(acc, dw_row_taps(r, _mm_srli_si128(r, 2), pair[i], third[i], sw));
      }
      const __m128i v = saturate8(requantize8(acc, rq, m, m, usual));
      int8_t* at_y = yc + (size_t)oh * out_w + ow;
      if (oh + 1 < out_h)  // all 8 bytes: those past the row are the next row's, stored after
        _mm_storel_epi64((__m128i*)at_y, v);
      else
        store_bytes(at_y, v, out_w - ow < 8 ? out_w - ow : 8);
    }
  }
}

void edgeq_dwconv3x3_u8s8_requant(const int8_t* x, const int8_t* w, const int32_t* bias, const int32_t* m,
                                  int8_t* y, int32_t c, int32_t h, int32_t wd, int32_t top, int32_t left,
                                  int32_t value, int32_t sh, int32_t sw, int32_t out_h, int32_t out_w,
                                  int32_t plane, int32_t parts, int32_t shift, int32_t lo, int32_t hi, int32_t zp,
                                  size_t gx, size_t gy) {
  (void)sh, (void)plane, (void)gy;  // sh = sw (the pass's _matches_depthwise); plane = 0 (the pass gives no reader)
  const requant_t rq = {m, shift, lo, hi, zp};
  const int groups = (c + 3) / 4, usual = usual_requant(&rq);
  const int c0 = 4 * ((int)gx * groups / parts), c_end = 4 * (((int)gx + 1) * groups / parts);
  const int c1 = c_end < c ? c_end : c;
  // each case its own copy, with constant strides
#define DW_COPIES(CALL) \
  if (sw == 1 && usual) CALL(1, 1); else if (sw == 1) CALL(1, 0); else if (usual) CALL(2, 1); else CALL(2, 0)
  if (left + wd <= 16 && sw * (out_w - 1) + 3 <= 16 && c * h * wd >= 32) {
    int8_t idx_end[16], idx_start[16], pad[16];
    for (int k = 0; k < 16; ++k) {
      const int data = k >= left && k < left + wd;
      idx_end[k] = (int8_t)(data ? k - left + 16 - wd : 0x80);
      idx_start[k] = (int8_t)(data ? k - left : 0x80);
      pad[k] = (int8_t)(data ? 0 : value ^ 0x80);
    }
    const dw_small_t d = {_mm_loadu_si128((const __m128i*)idx_end), _mm_loadu_si128((const __m128i*)idx_start),
                          _mm_loadu_si128((const __m128i*)pad), _mm_set1_epi8((char)(value ^ 0x80))};
#define DW_SMALL(S, U) dwconv3x3_small(x, w, bias, y, &rq, &d, ch, h, wd, top, S, out_h, out_w, U)
    for (int ch = c0; ch < c1; ++ch) DW_COPIES(DW_SMALL);
#undef DW_SMALL
    return;
  }
#define DW_RING(S, U) dwconv3x3(x, w, bias, y, &rq, ch, h, wd, top, left, value, S, out_h, out_w, U)
  for (int ch = c0; ch < c1; ++ch) DW_COPIES(DW_RING);
#undef DW_RING
#undef DW_COPIES
}

// 3x3 max pooling at stride 2 (ResNet's after the stem; conv2d_u8s8_avx512vnni.c's edgeq_maxpool3x3s2_i8, the same
// entry), i8 NCHW: y = max(init, the window's values), the input padded by top rows and left columns of `value`
// (and as many as the windows need at the other edges). Each input row, padded and + 128 by dw_row (u8 order is
// then i8's), gives its horizontal maxima for all the outputs once, 16 at a time from 33 bytes: the even, odd and
// next even columns; an output row takes the maxima of its 3 rows, the last of which serves the next output row
// too. IREE took 162 us for ResNet-18's, and 100 us for a copy of its input with the padding (two threads).
// Workgroup gx: the gx-th of `parts` equal parts of the channels.
static inline void pool_row(const int8_t* xc, int r, int h, int w, int left, int8_t value, uint8_t* buf, int n,
                            int ow, uint8_t* maxima) {
  const __m128i split = _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
  dw_row(xc, r, h, w, left, value, buf, n);
  for (int j0 = 0; j0 < ow; j0 += 16) {
    const uint8_t* row = buf + 2 * j0;
    const __m128i a = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i*)row), split);
    const __m128i b = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i*)(row + 16)), split);
    const __m128i even = _mm_unpacklo_epi64(a, b), odd = _mm_unpackhi_epi64(a, b);
    const __m128i next = _mm_alignr_epi8(_mm_cvtsi32_si128(row[32]), even, 1);  // columns 2 j + 2
    _mm_storeu_si128((__m128i*)(maxima + j0), _mm_max_epu8(_mm_max_epu8(even, odd), next));
  }
}

void edgeq_maxpool3x3s2_i8(const int8_t* x, int8_t* y, int32_t c, int32_t h, int32_t w, int32_t top, int32_t left,
                           int32_t value, int32_t init, int32_t oh, int32_t ow, int32_t parts, size_t gx, size_t gy) {
  (void)gy;
  const int steps = (ow + 15) / 16, reads = 32 * steps + 1;
  const int n = ((reads > left + w ? reads : left + w) + 15) / 16 * 16;
  uint8_t buf[n + 16], maxima[3][16 * steps];  // + 16: dw_row's last store
  const __m128i sign = _mm_set1_epi8((char)0x80), floor = _mm_set1_epi8((char)(init ^ 0x80));
  for (int ch = (int)gx * c / parts; ch < ((int)gx + 1) * c / parts; ++ch) {
    const int8_t* xc = x + (size_t)ch * h * w;
    int8_t* yc = y + (size_t)ch * oh * ow;
    uint8_t *top_row = maxima[0], *mid = maxima[1], *bottom = maxima[2];
    pool_row(xc, -top, h, w, left, (int8_t)value, buf, n, ow, bottom);  // the first output row's top, as a bottom
    for (int r = 0; r < oh; ++r) {
      uint8_t* t = top_row;
      top_row = bottom, bottom = t;  // the last output row's bottom row is this one's top
      pool_row(xc, 2 * r - top + 1, h, w, left, (int8_t)value, buf, n, ow, mid);
      pool_row(xc, 2 * r - top + 2, h, w, left, (int8_t)value, buf, n, ow, bottom);
      for (int j0 = 0; j0 < ow; j0 += 16) {
        const __m128i v = _mm_max_epu8(_mm_max_epu8(_mm_loadu_si128((const __m128i*)(top_row + j0)), floor),
                                       _mm_max_epu8(_mm_loadu_si128((const __m128i*)(mid + j0)),
                                                    _mm_loadu_si128((const __m128i*)(bottom + j0))));
        const __m128i q = _mm_xor_si128(v, sign);
        int8_t* at = yc + (size_t)r * ow + j0;
        if (ow - j0 >= 16) {
          _mm_storeu_si128((__m128i*)at, q);
        } else {
          const int nb = ow - j0;
          store_bytes(at, q, nb < 8 ? nb : 8);
          if (nb > 8) store_bytes(at + 8, _mm_srli_si128(q, 8), nb - 8);
        }
      }
    }
  }
}

// A 1x1 stride-1 conv on its NCHW input, with no pack: pixels in the lanes, a register tile of 3 vectors of 8
// pixels x 4 output channels. A workgroup takes its pixels in strips of 24: it first interleaves the strip's input
// into its scratch, xs [c / 2][3][8 pixels][2 channels] u16 (x + 128, zero-extended), once for all the output
// channels. Each step of a tile then takes a pair of input channels: each output channel's pair of i16 weights
// broadcast once for 3 vpmaddwd, which read their inputs from L1 (held in registers, they spilled an accumulator:
// 48 -> 63 GMAC/s on one core), adding the pair in each pixel's lane. The sums come out one pixel per lane, in
// order: the epilogue requantizes them and stores them NCHW as they are.
//   x    [c][hw]  i8   the input, unpadded
//   w    [oc8][c4][8][4]  s16   the 8 x 4 weights of each block and group of 4 input channels, sign-extended
//   bias [oc8 * 8]  i32   bias - 128 * sum(w)
//   y    [oc][hw]  i8, and r [oc][hw] the residual of the _add entry
//   ws   per workgroup, xs (conv_kernel.py's pointwise_scratch)
// Workgroup (gx, gy): the gx-th `group` of 8-channel blocks, the gy-th of `parts` equal parts of the 8-pixel
// vectors.
#define PW_VECTORS 3  // 8-pixel vectors per register tile
#define PW_OC 4       // output channels per register tile: 12 accumulators, a weight pair and a product

// xs for the n <= 24 pixels from p0, in nv vectors: the lanes past n read 0 (their sums are not stored). Channel
// k's pixels are at rows[k] where rows is given (the patch kernel's), else at x + k hw + p0.
static inline __attribute__((always_inline)) void pointwise_strip(const int8_t* const* rows, const int8_t* x, int c,
                                                                  int hw, int p0, int n, int nv, uint16_t* xs) {
  const __m128i sign = _mm_set1_epi8((char)0x80);
#define PW_CHANNEL(k) (rows ? rows[k] : x + (size_t)(k) * hw + p0)
  if (n == 8 * PW_VECTORS) {  // a whole strip: 16 + 8 bytes of each channel
    for (int k = 0; k < c / 2; ++k) {
      const int8_t *xa = PW_CHANNEL(2 * k), *xd = PW_CHANNEL(2 * k + 1);
      const __m128i a = _mm_xor_si128(sign, _mm_loadu_si128((const __m128i*)xa));
      const __m128i d = _mm_xor_si128(sign, _mm_loadu_si128((const __m128i*)xd));
      const __m128i a2 = _mm_xor_si128(sign, _mm_loadl_epi64((const __m128i*)(xa + 16)));
      const __m128i d2 = _mm_xor_si128(sign, _mm_loadl_epi64((const __m128i*)(xd + 16)));
      __m256i* out = (__m256i*)(xs + (size_t)k * PW_VECTORS * 16);
      _mm256_storeu_si256(out, _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(a, d)));
      _mm256_storeu_si256(out + 1, _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(a, d)));
      _mm256_storeu_si256(out + 2, _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(a2, d2)));
    }
    if (c % 2 == 0) return;
  }
  for (int k = n == 8 * PW_VECTORS ? c / 2 : 0; k < (c + 1) / 2; ++k) {
    const int8_t *xa = PW_CHANNEL(2 * k), *xd = 2 * k + 1 < c ? PW_CHANNEL(2 * k + 1) : 0;
    for (int v = 0; v < nv; ++v) {
      const int nb = n - 8 * v < 8 ? n - 8 * v : 8;
      const __m128i a = nb == 8 ? _mm_loadl_epi64((const __m128i*)(xa + 8 * v)) : load_bytes(xa + 8 * v, nb);
      const __m128i d = !xd     ? sign  // the last channel alone: its pair reads 0 (its weights are 0)
                        : nb == 8 ? _mm_loadl_epi64((const __m128i*)(xd + 8 * v))
                                  : load_bytes(xd + 8 * v, nb);
      _mm256_storeu_si256((__m256i*)(xs + ((size_t)k * PW_VECTORS + v) * 16),
                          _mm256_cvtepu8_epi16(_mm_xor_si128(sign, _mm_unpacklo_epi8(a, d))));
    }
  }
#undef PW_CHANNEL
}

// The tile of output channels o0 .. o0 + 3 (within one block) x the strip's nv vectors.
static inline __attribute__((always_inline)) void pointwise_tile(const uint16_t* xs, const int16_t* w,
                                                                 const int32_t* bias, int8_t* y, const requant_t* rq,
                                                                 const residual_t* add, int c, int oc, int hw, int o0,
                                                                 int p0, int n, const int nv, const int usual) {
  __m256i acc[PW_VECTORS][PW_OC];
  for (int j = 0; j < PW_OC; ++j)
    for (int v = 0; v < nv; ++v) acc[v][j] = _mm256_set1_epi32(bias[o0 + j]);
  // (w[o][2k], w[o][2k + 1]): int32 (k / 2) * 16 + 2 * (o % 8) + k % 2 of o's block
  const int32_t* wb = (const int32_t*)(w + (size_t)(o0 / BLOCK) * ((c + 3) / 4) * BLOCK * 4) + 2 * (o0 % BLOCK);
  for (int k = 0; k < (c + 1) / 2; ++k) {
    const uint16_t* xk = xs + (size_t)k * PW_VECTORS * 16;
    const int32_t* wk = wb + (k / 2) * 16 + k % 2;
#pragma clang loop unroll(full)
    for (int j = 0; j < PW_OC; ++j) {
      const __m256i wj = _mm256_set1_epi32(wk[2 * j]);
      __asm__("" : "+r"(xk));  // so that each vpmaddwd reads its input from memory instead of a register
#pragma clang loop unroll(full)
      for (int v = 0; v < nv; ++v)
        acc[v][j] = _mm256_add_epi32(
            acc[v][j], _mm256_madd_epi16(_mm256_loadu_si256((const __m256i*)(xk + v * 16)), wj));
    }
  }
  for (int j = 0; j < PW_OC && o0 + j < oc; ++j) {
    const int ch = o0 + j;
    const __m256i m = _mm256_set1_epi32(rq->m[ch]);
#pragma clang loop unroll(full)
    for (int v = 0; v < nv; ++v) {
      const int nb = n - 8 * v < 8 ? n - 8 * v : 8;
      const __m256i q = requantize8(acc[v][j], rq, m, m, usual);
      int8_t* at = y + (size_t)ch * hw + p0 + 8 * v;
      if (add) {
        const int8_t* r = add->r + (size_t)ch * hw + p0 + 8 * v;
        store_bytes(at, add_residual(q, add, nb == 8 ? _mm_loadl_epi64((const __m128i*)r) : load_bytes(r, nb)),
                    nb);
      } else {
        store_bytes(at, saturate8(q), nb);
      }
    }
  }
}

// Output channels o0 .. o1 - 1 of a strip.
static inline __attribute__((always_inline)) void pointwise_tiles(const uint16_t* xs, const int16_t* w,
                                                                  const int32_t* bias, int8_t* y, const requant_t* rq,
                                                                  const residual_t* add, int c, int oc, int hw,
                                                                  int o0, int o1, int p0, int n, int nv, int usual) {
  for (int o = o0; o < o1; o += PW_OC) {  // the tiles reuse the strip from L1
#define PW_TILE(NV) \
  usual ? pointwise_tile(xs, w, bias, y, rq, add, c, oc, hw, o, p0, n, NV, 1) \
        : pointwise_tile(xs, w, bias, y, rq, add, c, oc, hw, o, p0, n, NV, 0)
    switch (nv) {  // each count its own unrolled copy: accumulators in registers
      case 3: PW_TILE(3); break;
      case 2: PW_TILE(2); break;
      default: PW_TILE(1); break;
    }
#undef PW_TILE
  }
}

// The last n <= PW_LONE pixels of a workgroup's part, alone in their vector (MobileNetV2's 49th pixel of a 7 x 7
// map): with pixels in the lanes each weight broadcast fed one vpmaddwd, and that strip took more than half a
// whole one's time. They take the rows kernel's tile instead: output channels in the lanes, each pixel's 4 channels broadcast
// against a block's 8 x 4 weights; xt [c4][n][4] u16 holds the pixels' input + 128, in the workgroup's scratch.
// MobileNetV2's 960-channel convs on 7 x 7: 0.73-0.85x the time (C harness, one core).
#define PW_LONE 6

static inline __attribute__((always_inline)) void lone_tile(const uint16_t* xt, const int16_t* w, const int32_t* bias,
                                                            int8_t* y, const requant_t* rq, const residual_t* add,
                                                            int c4, int oc, int hw, int b0, const int nb, int p0,
                                                            int n, const int np, const int usual) {
  __m256i acc[6][2];  // [block j * np + pixel p]: output channels 0-3 and 4-7 as pairs of partial sums
  for (int i = 0; i < nb * np; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_si256();
  for (int g = 0; g < c4; ++g) {
#pragma clang loop unroll(full)
    for (int j = 0; j < nb; ++j) {
      const int16_t* wg = w + ((size_t)(b0 + j) * c4 + g) * BLOCK * 4;
      const __m256i w0 = _mm256_loadu_si256((const __m256i*)wg), w1 = _mm256_loadu_si256((const __m256i*)(wg + 16));
#pragma clang loop unroll(full)
      for (int p = 0; p < np; ++p) {
        int64_t four;
        __builtin_memcpy(&four, xt + ((size_t)g * n + p) * 4, 8);
        const __m256i xb = _mm256_set1_epi64x(four);
        acc[j * np + p][0] = _mm256_add_epi32(acc[j * np + p][0], _mm256_madd_epi16(xb, w0));
        acc[j * np + p][1] = _mm256_add_epi32(acc[j * np + p][1], _mm256_madd_epi16(xb, w1));
      }
    }
  }
  for (int j = 0; j < nb; ++j) {
    const int b = b0 + j, n_oc = oc - b * BLOCK < BLOCK ? oc - b * BLOCK : BLOCK;
    const __m256i m = block_multipliers(rq, oc, b), m_odd = _mm256_srli_epi64(m, 32);
    const __m256i bv = _mm256_loadu_si256((const __m256i*)(bias + b * BLOCK));
    for (int p = 0; p < np; ++p) {
      const __m256i sums = pair_sums(acc[j * np + p][0], acc[j * np + p][1]);
      const __m256i v = requantize8(_mm256_add_epi32(sums, bv), rq, m, m_odd, usual);
      const size_t at = (size_t)b * BLOCK * hw + p0 + p;  // output channel 8 b + l of the pixel: at + l hw
      int8_t q[16];
      if (add) {
        int8_t r[16] = {0};
        for (int l = 0; l < n_oc; ++l) r[l] = add->r[at + (size_t)l * hw];
        _mm_storeu_si128((__m128i*)q, add_residual(v, add, _mm_loadu_si128((const __m128i*)r)));
      } else {
        _mm_storeu_si128((__m128i*)q, saturate8(v));
      }
      for (int l = 0; l < n_oc; ++l) y[at + (size_t)l * hw] = q[l];
    }
  }
}

static inline __attribute__((always_inline)) void pointwise_lone(const int8_t* x, const int16_t* w,
                                                                 const int32_t* bias, int8_t* y, uint16_t* xt,
                                                                 const requant_t* rq, const residual_t* add, int c,
                                                                 int oc, int hw, int b0, int b1, int p0, int n,
                                                                 int usual) {
  const int c4 = (c + 3) / 4;
  for (int q = 0; q < 4 * c4; ++q)  // channels past c read 0 (their weights are 0)
    for (int p = 0; p < n; ++p)
      xt[((size_t)(q / 4) * n + p) * 4 + q % 4] = q < c ? (uint8_t)(x[(size_t)q * hw + p0 + p] ^ 0x80) : 0;
  const int nb = n == 1 ? 6 : n == 2 ? 3 : 1;  // blocks per tile: up to 12 accumulators
#define LONE(NB, NP) \
  (usual ? lone_tile(xt, w, bias, y, rq, add, c4, oc, hw, b, NB, p0, n, NP, 1) \
         : lone_tile(xt, w, bias, y, rq, add, c4, oc, hw, b, NB, p0, n, NP, 0))
  for (int b = b0; b < b1;) {
    const int whole = b1 - b >= nb;  // else a block at a time
    switch (n) {  // each shape its own unrolled copy: accumulators in registers
      case 1: whole ? LONE(6, 1) : LONE(1, 1); break;
      case 2: whole ? LONE(3, 2) : LONE(1, 2); break;
      case 3: LONE(1, 3); break;
      case 4: LONE(1, 4); break;
      case 5: LONE(1, 5); break;
      default: LONE(1, 6); break;
    }
    b += whole ? nb : 1;
  }
#undef LONE
}

static inline __attribute__((always_inline)) void pointwise_conv(
    const int8_t* x, const int16_t* w, const int32_t* bias, int8_t* y, void* ws, const requant_t* rq,
    const residual_t* add, int32_t c, int32_t oc, int32_t hw, int32_t parts, int32_t group, size_t gx, size_t gy) {
  const int usual = usual_requant(rq), oc8 = (oc + BLOCK - 1) / BLOCK, vectors = (hw + 7) / 8;
  const int groups = (oc8 + group - 1) / group, o_end = ((int)gx + 1) * group * BLOCK;
  const int o1 = o_end < oc ? o_end : oc;
  uint16_t* xs = (uint16_t*)ws + (gy * groups + gx) * ((c + 1) / 2) * PW_VECTORS * 16;
  const int v1 = ((int)gy + 1) * vectors / parts;
  for (int v = (int)gy * vectors / parts; v < v1; v += PW_VECTORS) {
    const int nv = v1 - v < PW_VECTORS ? v1 - v : PW_VECTORS, p0 = 8 * v;
    const int n = hw - p0 < 8 * nv ? hw - p0 : 8 * nv;
    if (n <= PW_LONE) {
      pointwise_lone(x, w, bias, y, xs, rq, add, c, oc, hw, (int)gx * group, (o1 + BLOCK - 1) / BLOCK, p0, n, usual);
      continue;
    }
    pointwise_strip(0, x, c, hw, p0, n, nv, xs);
    pointwise_tiles(xs, w, bias, y, rq, add, c, oc, hw, (int)gx * group * BLOCK, o1, p0, n, nv, usual);
  }
}

void edgeq_conv1x1_u8s8_requant(const int8_t* x, const int16_t* w, const int32_t* bias, const int32_t* m,
                                int8_t* y, void* ws, int32_t c, int32_t oc, int32_t hw, int32_t parts, int32_t group,
                                int32_t shift, int32_t lo, int32_t hi, int32_t zp, size_t gx, size_t gy) {
  const requant_t rq = {m, shift, lo, hi, zp};
  pointwise_conv(x, w, bias, y, ws, &rq, 0, c, oc, hw, parts, group, gx, gy);
}

void edgeq_conv1x1_u8s8_requant_add(const int8_t* x, const int16_t* w, const int32_t* bias, const int32_t* m,
                                    const int8_t* r, int8_t* y, void* ws, int32_t c, int32_t oc, int32_t hw,
                                    int32_t parts, int32_t group, int32_t shift, int32_t lo, int32_t hi, int32_t zp,
                                    int32_t mc, int32_t mr, int32_t k, int32_t add_shift, int32_t add_zp,
                                    int32_t add_lo, int32_t add_hi, size_t gx, size_t gy) {
  const requant_t rq = {m, shift, lo, hi, zp};
  const residual_t add = {r, mc, mr, k, add_shift, add_zp, add_lo, add_hi};
  pointwise_conv(x, w, bias, y, ws, &rq, &add, c, oc, hw, parts, group, gx, gy);
}

// A conv with few input channels (the stems) as a 1x1 conv over its whole patch (conv2d_u8s8_avx512vnni.c's
// edgeq_conv2d_u8s8_patch_requant, the same entry, with the weights [oc8][f4][8][4] widened to s16): patch channel
// f = (channel q, tap row i, tap column j) is input channel q shifted by (i, j), and the 1x1 kernel's strips and
// tiles sum over the patch's c kh kw channels, with no pack: ResNet-18's 147 in 74 pairs. For each output row, the
// workgroup first lays out each (channel, tap row)'s input row as sw phase rows, phase p holding the padded row's
// columns sw t + p; patch channel f's pixels from output column ox are then the bytes of phase j mod sw from
// ox + j / sw. Workgroup gy computes all output channels of the gy-th of `parts` equal parts of the output pixels,
// in segments within rows, in strips of up to 24 pixels.
// An input row's columns as the sw phase rows of a conv padded by `left`: column u is padded column u + left,
// phase (u + left) mod sw, at (u + left) / sw. 16 columns at a time; at stride 2 split into even and odd by a
// shuffle (no libc: no memcpy).
static inline void patch_phases(const int8_t* src, int wd, int left, int sw, int8_t* ph0, int8_t* ph1) {
  if (sw == 1) {
    copy_bytes(ph0 + left, src, wd);
    return;
  }
  const __m128i split = _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
  int8_t* even = (left % 2 ? ph1 : ph0) + left / 2;
  int8_t* odd = (left % 2 ? ph0 : ph1) + (left + 1) / 2;
  int u = 0;
  for (; u + 16 <= wd; u += 16) {
    const __m128i v = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i*)(src + u)), split);
    _mm_storel_epi64((__m128i*)(even + u / 2), v);
    _mm_storel_epi64((__m128i*)(odd + u / 2), _mm_unpackhi_epi64(v, v));
  }
  if (u < wd && wd >= 16 && wd % 2 == 0) {  // the last 16 columns again, overlapping (an even start: the same split)
    u = wd - 16;
    const __m128i v = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i*)(src + u)), split);
    _mm_storel_epi64((__m128i*)(even + u / 2), v);
    _mm_storel_epi64((__m128i*)(odd + u / 2), _mm_unpackhi_epi64(v, v));
    return;
  }
  for (; u < wd; ++u) (u % 2 ? odd : even)[u / 2] = src[u];
}

#define PATCH_MAX 256  // patch channels: the strip's xs (12 KB) is on the stack (conv_kernel.py's PATCH_MAX_GROUPS)

void edgeq_conv2d_u8s8_patch_requant(const int8_t* x, const int16_t* w, const int32_t* bias, const int32_t* m,
                                     int8_t* y, int32_t c, int32_t h, int32_t wd, int32_t top, int32_t left,
                                     int32_t value, int32_t kh, int32_t kw, int32_t sh, int32_t sw, int32_t oc,
                                     int32_t oc8, int32_t out_h, int32_t out_w, int32_t parts, int32_t group,
                                     int32_t shift, int32_t lo, int32_t hi, int32_t zp, size_t gx, size_t gy) {
  (void)oc8, (void)group, (void)gx;  // one workgroup along the output channels: all of them
  const requant_t rq = {m, shift, lo, hi, zp};
  const int usual = usual_requant(&rq), f = c * kh * kw, hw = out_h * out_w;
  // phase rows: the columns the taps read (out_w + (kw - 1) / sw) or the input's, and the 24 bytes a whole strip
  // reads past its first
  const int taps = out_w + (kw - 1) / sw, cols = (left + wd + sw - 1) / sw;
  const int span = ((taps > cols ? taps : cols) + 24 + 15) / 16 * 16;
  int8_t phases[c * kh * sw][span];
  const int8_t* rows[PATCH_MAX];
  // patch channel k's bytes from output column 0 in its phase row: computed once, not per strip (its divisions by
  // the stride took 7% of ResNet-18's stem)
  int32_t at[PATCH_MAX];
  for (int q = 0, k = 0; q < c; ++q)
    for (int i = 0; i < kh; ++i)
      for (int j = 0; j < kw; ++j, ++k) at[k] = ((q * kh + i) * sw + j % sw) * span + j / sw;
  uint16_t xs[PATCH_MAX / 2 * PW_VECTORS * 16];
  const int first = (int)gy * hw / parts, end = ((int)gy + 1) * hw / parts;
  for (int oy = first / out_w; oy * out_w < end; ++oy) {
    for (int q = 0; q < c; ++q)
      for (int i = 0; i < kh; ++i) {  // input row r = oy sh - top + i: phase p, column t = padded column sw t + p
        const int r = oy * sh - top + i;
        int8_t* ph = phases[(q * kh + i) * sw];
        for (int t = 0; t < sw * span; t += 16) _mm_storeu_si128((__m128i*)(ph + t), _mm_set1_epi8((char)value));
        if (r >= 0 && r < h) patch_phases(x + ((size_t)q * h + r) * wd, wd, left, sw, ph, ph + span);
      }
    const int a = first > oy * out_w ? first - oy * out_w : 0, b = end < (oy + 1) * out_w ? end - oy * out_w : out_w;
    for (int ox = a; ox < b; ox += 8 * PW_VECTORS) {  // the segment's strips
      const int n = b - ox < 8 * PW_VECTORS ? b - ox : 8 * PW_VECTORS, nv = (n + 7) / 8;
      for (int k = 0; k < f; ++k) rows[k] = phases[0] + at[k] + ox;
      pointwise_strip(rows, 0, f, 0, 0, n, nv, xs);
      pointwise_tiles(xs, w, bias, y, &rq, 0, f, oc, hw, 0, oc, oy * out_w + ox, n, nv, usual);
    }
  }
}

// Winograd F(4x4, 3x3) for 3x3 stride-1 convs padded by 1: conv2d_u8s8_avx512vnni.c's edgeq_winograd_conv_requant,
// with its entries, scratch (V [36][C/2][span][2] i16, then M) and exactness argument, and its transformed weights
// in groups of 16 output channels, U [OC/16][36][C/2][16][2] i16: 36 products per 16 outputs instead of 144, each
// vpmaddwd on a pair of channels, and the division by 576 modulo 2^26 exact while |Y| < 2^25. More than 128 input
// channels (ResNet's layer3) are summed in chunks of 128, each chunk's Y recovered on its own and the chunks' Ys
// added in i32. A workgroup takes a range of the tiles as there, in pieces of WINO_PIECE tiles, and a part of the
// output channels (the pass splits a conv with few tiles by its channels: each worker then reads half of U); it
// computes a piece's sums position by position, with a register tile of 6 tiles x 16 output channels (12
// accumulators, as the rows kernel's).
#define WINO_TILES 6
#define WINO_PIECE 16  // the most tiles of a range computed at a time: whole tile rows (one, if longer)
#define WINO_CHUNK 8  // tiles per input-transform step: one tile's pair of channels per 32-bit lane
#define WINO_PAIRS 64  // pairs of input channels per chunk of the sums: |Y| < 128 * 9 * 128 * 128 < 2^25

#define WINO_BYTES 32
#include "winograd_transforms.h"

typedef struct {
  const int8_t* x;
  const int16_t* u;
  const int32_t* bias;
  int8_t* y;
  int16_t* v;  // the workgroup's V, M and the chunks' Ys in ws
  __m256i* m;
  __m256i* ys;
  const requant_t* rq;
  const residual_t* add;
  int pairs, tw, h, w, value, span, first;  // tw: tiles per row; span: V's tiles; first: V's first tile
} winograd_t;

// Row `row` of channel plane xc padded by a column of `value` on the left and as many as n needs on the right:
// buf[1 + j] = xc[row][j]; a whole row of `value` outside [0, h). n: a multiple of 16, at least w + 1.
static inline void winograd_row(const int8_t* xc, int row, int h, int w, int8_t value, int8_t* buf, int n) {
  const __m128i pad = _mm_set1_epi8(value);
  for (int l = 0; l < n; l += 16) _mm_storeu_si128((__m128i*)(buf + l), pad);
  if (row < 0 || row >= h) return;
  const int8_t* src = xc + (size_t)row * w;
  copy_bytes(buf + 1, src, w);
}

// pshufb indices: byte 4k + U of each 128-bit lane to byte 2k (the pair's first channel, PICK0) or 2k + 1
// (PICK1), k = 0..3; zeros elsewhere
#define Z -128
#define PICK0(U)                                                                                                  \
  _mm256_setr_epi8(U, Z, 4 + U, Z, 8 + U, Z, 12 + U, Z, Z, Z, Z, Z, Z, Z, Z, Z, U, Z, 4 + U, Z, 8 + U, Z, 12 + U, Z, \
                   Z, Z, Z, Z, Z, Z, Z, Z)
#define PICK1(U)                                                                                                  \
  _mm256_setr_epi8(Z, U, Z, 4 + U, Z, 8 + U, Z, 12 + U, Z, Z, Z, Z, Z, Z, Z, Z, Z, U, Z, 4 + U, Z, 8 + U, Z, 12 + U, \
                   Z, Z, Z, Z, Z, Z, Z, Z)

// Column 4k + u of 32 bytes of two channels' rows (a, b; u < 4), k = 0..7, as 8 pairs of i16: the window column
// u of 8 tiles, a tile's pair in a 32-bit lane.
static inline __m256i winograd_pairs(__m256i a, __m256i b, __m256i pick0, __m256i pick1) {
  const __m256i v = _mm256_or_si256(_mm256_shuffle_epi8(a, pick0), _mm256_shuffle_epi8(b, pick1));
  return _mm256_cvtepi8_epi16(_mm256_castsi256_si128(_mm256_permute4x64_epi64(v, 0x08)));
}

// The first n of 8 32-bit lanes to p: a masked store (vpmaskmovd) takes about 12 cycles on Zen 3.
static inline void store_lanes(void* p, __m256i v, int n) {
  if (n == 8) {
    _mm256_storeu_si256((__m256i*)p, v);
    return;
  }
  __m128i h = _mm256_castsi256_si128(v);
  char* at = (char*)p;
  if (n & 4) _mm_storeu_si128((__m128i*)at, h), h = _mm256_extracti128_si256(v, 1), at += 16;
  if (n & 2) _mm_storel_epi64((__m128i*)at, h), h = _mm_srli_si128(h, 8), at += 8;
  if (n & 1) _mm_storeu_si32(at, h);
}

// V of tiles [t0, t1): for each pair of channels and tile row, its 6 window rows of both channels padded, then
// WINO_CHUNK tiles at a time.
// Not inlined, as conv2d_u8s8_avx512vnni.c's winograd_input.
static __attribute__((noinline)) void winograd_input(const winograd_t* k, int t0, int t1) {
  const int pairs = k->pairs, tw = k->tw, h = k->h, w = k->w, first = k->first;
  const size_t span = (size_t)k->span;
  int16_t* v = k->v;
  const int n = (4 * tw + 40 + 15) / 16 * 16;  // a step's reads end before 4 (tw - 1) + 36
  int8_t buf[2][10][n];  // [channel][window row]: 6 rows for a tile row, 10 for two
  const __m256i pick0[4] = {PICK0(0), PICK0(1), PICK0(2), PICK0(3)};
  const __m256i pick1[4] = {PICK1(0), PICK1(1), PICK1(2), PICK1(3)};
  for (int cp = 0; cp < pairs; ++cp) {
    const int8_t* x0 = k->x + (size_t)(2 * cp) * h * w;
    for (int i = t0 / tw, two; i * tw < t1; i += 1 + two) {
      // rows of 4 tiles (14 x 14 and 16 x 16 maps) two at a time, one per 128-bit lane: their 8 tiles are
      // consecutive in V
      two = tw == 4 && i * tw >= t0 && (i + 2) * tw <= t1;
      for (int c = 0; c < 2; ++c)
        for (int r = 0; r < (two ? 10 : 6); ++r)
          winograd_row(x0 + (size_t)c * h * w, 4 * i - 1 + r, h, w, (int8_t)k->value, buf[c][r], n);
      const int j1 = two ? 8 : t1 - i * tw < tw ? t1 - i * tw : tw;
      for (int j0 = t0 > i * tw ? t0 - i * tw : 0; j0 < j1; j0 += WINO_CHUNK) {
        __m256i t[6][6];  // [window row][transformed column]
        for (int r = 0; r < 6; ++r) {
          const int8_t* a = buf[0][r] + 4 * j0;  // window column u of tile j0 + k: a[4 k + u]
          const int8_t* b = buf[1][r] + 4 * j0;
          __m256i a0, b0, a4, b4;
          if (two) {  // lane 1: the next tile row's window row r
            a0 = _mm256_loadu2_m128i((const __m128i*)(a + 4 * n), (const __m128i*)a);
            b0 = _mm256_loadu2_m128i((const __m128i*)(b + 4 * n), (const __m128i*)b);
            a4 = _mm256_loadu2_m128i((const __m128i*)(a + 4 * n + 4), (const __m128i*)(a + 4));
            b4 = _mm256_loadu2_m128i((const __m128i*)(b + 4 * n + 4), (const __m128i*)(b + 4));
          } else {
            a0 = _mm256_loadu_si256((const __m256i*)a), b0 = _mm256_loadu_si256((const __m256i*)b);
            a4 = _mm256_loadu_si256((const __m256i*)(a + 4)), b4 = _mm256_loadu_si256((const __m256i*)(b + 4));
          }
          const __m256i d[6] = {winograd_pairs(a0, b0, pick0[0], pick1[0]), winograd_pairs(a0, b0, pick0[1], pick1[1]),
                                winograd_pairs(a0, b0, pick0[2], pick1[2]), winograd_pairs(a0, b0, pick0[3], pick1[3]),
                                winograd_pairs(a4, b4, pick0[0], pick1[0]), winograd_pairs(a4, b4, pick0[1], pick1[1])};
          winograd_bt((const wino_u16*)d, (wino_u16*)t[r]);
        }
        const int nt = j1 - j0 < WINO_CHUNK ? j1 - j0 : WINO_CHUNK;
        const size_t at = (size_t)i * tw + j0 - first;
        for (int q = 0; q < 6; ++q) {
          const __m256i col[6] = {t[0][q], t[1][q], t[2][q], t[3][q], t[4][q], t[5][q]};
          __m256i out[6];
          winograd_bt((const wino_u16*)col, (wino_u16*)out);
          for (int p = 0; p < 6; ++p) store_lanes(v + (((size_t)(6 * p + q) * pairs + cp) * span + at) * 2, out[p], nt);
        }
      }
    }
  }
}
#undef PICK0
#undef PICK1
#undef Z

// Position p's sums over channel pairs [cp0, cp1) of nt tiles from the piece's t0 x the 16 output channels from
// channel 8 o0, to M [the piece's tiles][2 vectors of 8 channels][36]; with `next`, prefetching position p + 1's U.
static inline __attribute__((always_inline)) void winograd_products(const winograd_t* k, int p, int t0, const int nt,
                                                                    int o0, int cp0, int cp1, int next) {
  __m256i acc[WINO_TILES][2];
  for (int t = 0; t < nt; ++t) acc[t][0] = acc[t][1] = _mm256_setzero_si256();
  const int16_t* up = k->u + ((size_t)(o0 / 2) * 36 + p) * k->pairs * 32;
  const int32_t* vp = (const int32_t*)k->v + (size_t)p * k->pairs * k->span + t0;
  for (int cp = cp0; cp < cp1; ++cp) {
    if (next) _mm_prefetch((const char*)(up + (size_t)(cp + k->pairs) * 32), _MM_HINT_T0);  // position p + 1's
    const __m256i w0 = _mm256_loadu_si256((const __m256i*)(up + (size_t)cp * 32));
    const __m256i w1 = _mm256_loadu_si256((const __m256i*)(up + (size_t)cp * 32 + 16));
#pragma clang loop unroll(full)
    for (int t = 0; t < nt; ++t) {
      const __m256i b = _mm256_set1_epi32(vp[(size_t)cp * k->span + t]);
      acc[t][0] = _mm256_add_epi32(acc[t][0], _mm256_madd_epi16(b, w0));
      acc[t][1] = _mm256_add_epi32(acc[t][1], _mm256_madd_epi16(b, w1));
    }
  }
  for (int t = 0; t < nt; ++t)
    for (int o = 0; o < 2; ++o) _mm256_storeu_si256(k->m + ((t0 + t) * 2 + o) * 36 + p, acc[t][o]);
}

// The 16 outputs of tile (i, j) for 8 channels from oc0 (one chunk's sums at M's slot): the output transform and the
// division by 576; added to the earlier chunks' Ys unless `first`, and stored for the next chunk unless `last`;
// for the last, bias, requantization and residual add, stored to NCHW y, two tile rows at a time. Not inlined, as
// conv2d_u8s8_avx512vnni.c's winograd_outputs.
static __attribute__((noinline)) void winograd_outputs(const winograd_t* k, int i, int j, int slot, int oc0,
                                                      const int usual, int first, int last) {
  const __m256i* ms = k->m + slot * 36;
  __m256i* ys = k->ys + slot * 16;  // the earlier chunks' Ys, [row][col]
  __m256i t[4][6];  // the first stage's 4 x 6
  winograd_at_columns((const wino_u32_unaligned*)ms, (wino_u32(*)[6])t);
  // 576 Y modulo 2^32 -> (Y modulo 2^26) << 6, whose arithmetic shift back is Y
  const __m256i inv9 = _mm256_set1_epi32((int32_t)((uint32_t)WINO_INV9 << 6));
  if (!last) {
#pragma clang loop unroll(full)
    for (int a = 0; a < 4; ++a) {
      __m256i y[4];
      winograd_at((const wino_u32*)t[a], (wino_u32*)y);
#pragma clang loop unroll(full)
      for (int col = 0; col < 4; ++col) {
        const __m256i sum = _mm256_srai_epi32(_mm256_mullo_epi32(_mm256_srai_epi32(y[col], 6), inv9), 6);
        ys[4 * a + col] = first ? sum : _mm256_add_epi32(ys[4 * a + col], sum);
      }
    }
    return;
  }
  const __m256i bias = _mm256_loadu_si256((const __m256i*)(k->bias + oc0));
  const __m256i mult = _mm256_loadu_si256((const __m256i*)(k->rq->m + oc0)), m_odd = _mm256_srli_epi64(mult, 32);
  const int rows = k->h - 4 * i < 4 ? k->h - 4 * i : 4, cols = k->w - 4 * j < 4 ? k->w - 4 * j : 4;
  const size_t plane = (size_t)k->h * k->w;
  const size_t at = (size_t)oc0 * plane + (size_t)(4 * i) * k->w + 4 * j;
#pragma clang loop unroll(full)
  for (int half = 0; half < 2; ++half) {  // tile rows 2 half and 2 half + 1
    if (2 * half >= rows) break;
    const int both = 2 * half + 1 < rows;
    __m128i r[8];  // the residual, [channel][row][col], then [pixel][channel]
    if (k->add) {
      for (int l = 0; l < 8; ++l) {
        const int8_t* rr = k->add->r + at + l * plane + (size_t)(2 * half) * k->w;
        if (cols == 4 && both) {
          r[l] = _mm_unpacklo_epi32(_mm_loadu_si32(rr), _mm_loadu_si32(rr + k->w));
          continue;
        }
        const __m128i top = load_bytes(rr, cols);
        r[l] = both ? _mm_unpacklo_epi32(top, load_bytes(rr + k->w, cols)) : top;
      }
      transpose8x8(r);
    }
    __m128i q[8];  // the results, [pixel][channel], then [channel][row][col]
#pragma clang loop unroll(full)
    for (int a = 0; a < 2; ++a) {
      __m256i y[4];
      winograd_at((const wino_u32*)t[2 * half + a], (wino_u32*)y);
#pragma clang loop unroll(full)
      for (int col = 0; col < 4; ++col) {
        __m256i sum = _mm256_srai_epi32(_mm256_mullo_epi32(_mm256_srai_epi32(y[col], 6), inv9), 6);
        if (!first) sum = _mm256_add_epi32(sum, ys[4 * (2 * half + a) + col]);
        const __m256i v = requantize8(_mm256_add_epi32(sum, bias), k->rq, mult, m_odd, usual);
        q[4 * a + col] = k->add ? add_residual(v, k->add, r[4 * a + col]) : saturate8(v);
      }
    }
    transpose8x8(q);
    for (int l = 0; l < 8; ++l) {
      int8_t* out = k->y + at + l * plane + (size_t)(2 * half) * k->w;
      if (cols == 4 && both) {  // a whole tile's two rows: two 4-byte stores from the register
        _mm_storeu_si32(out, q[l]);
        _mm_storeu_si32(out + k->w, _mm_srli_si128(q[l], 4));
        continue;
      }
      store_bytes(out, q[l], cols);
      if (both) store_bytes(out + k->w, _mm_srli_si128(q[l], 4), cols);
    }
  }
}

// The workgroup's share of a conv: the gx-th of oc_parts equal parts of the groups of 16 output channels for the
// gy-th of `parts` equal ranges of the tiles.
static inline __attribute__((always_inline)) void winograd_conv(const int8_t* x, const int16_t* u,
                                                                const int32_t* bias, int8_t* y, void* ws,
                                                                const requant_t* rq, const residual_t* add, int32_t c,
                                                                int32_t oc, int32_t h, int32_t w, int32_t value,
                                                                int32_t parts, int32_t oc_parts, size_t gx,
                                                                size_t gy) {
  const int tw = (w + 3) / 4, tiles = ((h + 3) / 4) * tw, pairs = c / 2;
  const int usual = usual_requant(rq);
  // pieces of whole tile rows: a piece that ends mid-row builds that row's padded input rows again for the next
  const int longest = (tiles + parts - 1) / parts, piece = tw > WINO_PIECE ? tw : WINO_PIECE / tw * tw;
  const int span = piece < longest ? piece : longest;  // V's tiles
  const size_t v_bytes = ((size_t)36 * pairs * span * 4 + 63) / 64 * 64;
  // the slot: V, then M [span][2][36] and the chunks' Ys [span][2][16] (conv_kernel.py's winograd_scratch)
  int8_t* slot = (int8_t*)ws + (gy * oc_parts + gx) * (v_bytes + (size_t)span * 2 * (36 + 16) * 32);
  winograd_t k;
  k.x = x, k.u = u, k.bias = bias, k.y = y, k.v = (int16_t*)slot, k.m = (__m256i*)(slot + v_bytes), k.rq = rq;
  k.ys = k.m + (size_t)span * 2 * 36;
  k.add = add, k.pairs = pairs, k.tw = tw, k.h = h, k.w = w, k.value = value, k.span = span;
  const int groups = oc / 16, g0 = (int)gx * groups / oc_parts, g1 = ((int)gx + 1) * groups / oc_parts;
  const int first = (int)gy * tiles / parts, last = ((int)gy + 1) * tiles / parts;
  // U larger than L2 (more than one chunk: ResNet's layer3) stalled the products on its loads from L3 (43% of the
  // samples on one load): the first block of tiles at each position prefetches the next position's U. With the
  // input transformed two tile rows at a time, layer3's convs took 0.66-0.68x as long in the model; layer1's and
  // layer2's gained nothing from it in a C harness
  const int ahead = pairs > WINO_PAIRS;
  for (int r0 = first, r1; r0 < last; r0 = r1) {  // the range in pieces of `span` tiles
    r1 = r0 + span < last ? r0 + span : last;
    k.first = r0;
    winograd_input(&k, r0, r1);
    for (int g = g0; g < g1; ++g)
      for (int cp0 = 0; cp0 < pairs; cp0 += WINO_PAIRS) {  // the chunks of the sums
        const int cp1 = pairs - cp0 < WINO_PAIRS ? pairs : cp0 + WINO_PAIRS;
        // position by position, so that its weights for the group and chunk (4 KB) serve all the piece's tiles
        // from L1, and U is read once per piece: a block of tiles at a time, each reading all of U in turn,
        // ResNet's layer3 streamed 14 MB from L3 per conv
        for (int p = 0; p < 36; ++p)
          for (int t0 = 0; t0 < r1 - r0; t0 += WINO_TILES) {
            const int next = ahead && t0 == 0 && p < 35;
            switch (r1 - r0 - t0) {  // each count as its own unrolled copy, so the accumulators stay in registers
              case 1: winograd_products(&k, p, t0, 1, 2 * g, cp0, cp1, next); break;
              case 2: winograd_products(&k, p, t0, 2, 2 * g, cp0, cp1, next); break;
              case 3: winograd_products(&k, p, t0, 3, 2 * g, cp0, cp1, next); break;
              case 4: winograd_products(&k, p, t0, 4, 2 * g, cp0, cp1, next); break;
              case 5: winograd_products(&k, p, t0, 5, 2 * g, cp0, cp1, next); break;
              default: winograd_products(&k, p, t0, WINO_TILES, 2 * g, cp0, cp1, next); break;
            }
          }
        for (int t = 0, i = r0 / tw, j = r0 % tw; t < r1 - r0; ++t, j = j + 1 < tw ? j + 1 : (++i, 0))
          for (int o = 0; o < 2; ++o)
            winograd_outputs(&k, i, j, 2 * t + o, 16 * g + 8 * o, usual, cp0 == 0, cp1 == pairs);
      }
  }
}

#define WINOGRAD_PARAMS \
  int32_t c, int32_t oc, int32_t h, int32_t w, int32_t value, int32_t parts, int32_t oc_parts
void edgeq_winograd_conv_requant(const int8_t* x, const int16_t* u, const int32_t* bias, const int32_t* m,
                                 int8_t* y, void* ws, WINOGRAD_PARAMS, int32_t shift, int32_t lo, int32_t hi,
                                 int32_t zp, size_t gx, size_t gy) {
  const requant_t rq = {m, shift, lo, hi, zp};
  winograd_conv(x, u, bias, y, ws, &rq, 0, c, oc, h, w, value, parts, oc_parts, gx, gy);
}

void edgeq_winograd_conv_requant_add(const int8_t* x, const int16_t* u, const int32_t* bias, const int32_t* m,
                                     const int8_t* r, int8_t* y, void* ws, WINOGRAD_PARAMS, int32_t shift,
                                     int32_t lo, int32_t hi, int32_t zp, int32_t mc, int32_t mr, int32_t k,
                                     int32_t add_shift, int32_t add_zp, int32_t add_lo, int32_t add_hi, size_t gx,
                                     size_t gy) {
  const requant_t rq = {m, shift, lo, hi, zp};
  const residual_t add = {r, mc, mr, k, add_shift, add_zp, add_lo, add_hi};
  winograd_conv(x, u, bias, y, ws, &rq, &add, c, oc, h, w, value, parts, oc_parts, gx, gy);
}

// A batch-1 linear layer (the classifier after the global pool): conv2d_u8s8_avx512vnni.c's edgeq_linear_u8s8, its
// entry, packed weights [n16][k4][16][4] s8 and bias (bias - 128 * sum(w)). Each step broadcasts 4 inputs + 128 as
// u16 against 16 outputs' 4 weights, sign-extended from 16 bytes at a time: 4 vpmaddwd, whose lanes hold an
// output's pair of inputs 0-1 and 2-3, added in the epilogue as the rows kernel's. LINEAR_TILE blocks of 16 at a
// time: 12 accumulators. It is bound by reading the weights: MobileNetV2's 1.3 MB once.
#define LINEAR_TILE 3

static inline __attribute__((always_inline)) void linear_tile(const int8_t* x, const int8_t* w,
                                                              const int32_t* bias, int32_t* y, int k, int n, int b,
                                                              const int t) {
  const int k4 = (k + 3) / 4, whole = k / 4;
  __m256i acc[LINEAR_TILE][4];
  for (int i = 0; i < t; ++i)
    for (int a = 0; a < 4; ++a) acc[i][a] = _mm256_setzero_si256();
  const int8_t* wb = w + (size_t)b * k4 * 64;
  for (int q = 0; q < k4; ++q) {
    uint32_t four;
    if (q < whole)
      __builtin_memcpy(&four, x + 4 * q, 4);
    else  // the last k % 4 inputs: past k the weights are 0, any input
      four = (uint32_t)_mm_cvtsi128_si32(load_bytes(x + 4 * q, k - 4 * q));
    const __m256i xv = _mm256_broadcastq_epi64(_mm_cvtepu8_epi16(_mm_cvtsi32_si128((int)(four ^ 0x80808080u))));
#pragma clang loop unroll(full)
    for (int i = 0; i < t; ++i) {
      const int8_t* wq = wb + ((size_t)i * k4 + q) * 64;
#pragma clang loop unroll(full)
      for (int a = 0; a < 4; ++a)  // outputs 4a .. 4a + 3
        acc[i][a] = _mm256_add_epi32(
            acc[i][a], _mm256_madd_epi16(xv, _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(wq + 16 * a)))));
    }
  }
  for (int i = 0; i < t; ++i) {
    const int o = 16 * (b + i), left = n - o;
    int32_t out[16];
    for (int h = 0; h < 2; ++h) {  // outputs 8h .. 8h + 7
      const __m256i sums = pair_sums(acc[i][2 * h], acc[i][2 * h + 1]);
      const __m256i v = _mm256_add_epi32(sums, _mm256_loadu_si256((const __m256i*)(bias + o + 8 * h)));
      if (left >= 16)
        _mm256_storeu_si256((__m256i*)(y + o + 8 * h), v);
      else
        _mm256_storeu_si256((__m256i*)(out + 8 * h), v);
    }
    for (int l = 0; l < left && left < 16; ++l) y[o + l] = out[l];
  }
}

void edgeq_linear_u8s8(const int8_t* x, const int8_t* w, const int32_t* bias, int32_t* y, int32_t k, int32_t n,
                       int32_t group, size_t gx, size_t gy) {
  (void)gy;
  const int n16 = (n + 15) / 16, b1 = ((int)gx + 1) * group < n16 ? ((int)gx + 1) * group : n16;
  for (int b = (int)gx * group; b < b1; b += LINEAR_TILE) {
    switch (b1 - b < LINEAR_TILE ? b1 - b : LINEAR_TILE) {  // a copy per tile size: the sums stay in registers
      case 1: linear_tile(x, w, bias, y, k, n, b, 1); break;
      case 2: linear_tile(x, w, bias, y, k, n, b, 2); break;
      default: linear_tile(x, w, bias, y, k, n, b, LINEAR_TILE); break;
    }
  }
}
