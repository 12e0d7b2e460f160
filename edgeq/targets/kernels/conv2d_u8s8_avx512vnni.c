// edgeq's int8 convolution for x86-64 with AVX-512 VNNI: an implicit GEMM on vpdpbusd (u8 x s8, 4 MACs per
// 32-bit lane). No im2col matrix: each tile reads its input pixels straight from the padded NHWC activations.
//
// Linked into IREE executables (edgeq/dialect_passes/conv_kernel.py); freestanding: no libc, no globals.
// Layouts (all dense, static per layer):
//   x    [in_h][in_w][c4 * 4]  u8   activations + 128, already padded; channels padded to a multiple of 4
//   w    [oc16][kh][kw][c4][16][4]  s8   the weights, 16 output channels x 4 input channels per 64 bytes
//   bias [oc16 * 16]  i32   where the sums start: -128 * sum(w) per output channel undoes the +128
//   y    [out_h][out_w][oc16 * 16]  i32
// Workgroup (gx, gy) computes output row gy for output channels [64 gx, 64 gx + 64).
// Sums wrap in i32 like the reference's (vpdpbusd does not saturate), so the result is exact.
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#define TILE_PIXELS 6   // 6 pixels x 4 vectors of 16 channels: 24 accumulators, 4 weights, 1 broadcast
#define TILE_VECTORS 4

typedef struct {
  int32_t in_w, c4, kh, kw, sh, sw, dh, dw, oc;
} shape_t;

static inline __attribute__((always_inline)) void tile(const uint8_t* x, const int8_t* w, const int32_t* bias,
                                                       int32_t* y, const shape_t* s, const int np, const int nv) {
  const size_t pixel = (size_t)s->c4 * 4, filter = (size_t)s->kh * s->kw * s->c4 * 64;
  __m512i acc[TILE_PIXELS][TILE_VECTORS];
  for (int v = 0; v < nv; ++v) {
    const __m512i b = _mm512_loadu_si512(bias + 16 * v);
    for (int p = 0; p < np; ++p) acc[p][v] = b;
  }
  for (int i = 0; i < s->kh; ++i) {
    for (int j = 0; j < s->kw; ++j) {
      const uint8_t* xt = x + ((size_t)i * s->dh * s->in_w + (size_t)j * s->dw) * pixel;
      const int8_t* wt = w + (size_t)(i * s->kw + j) * s->c4 * 64;
      for (int c = 0; c < s->c4; ++c) {
        __m512i wv[TILE_VECTORS];
        for (int v = 0; v < nv; ++v) wv[v] = _mm512_loadu_si512(wt + v * filter + c * 64);
        for (int p = 0; p < np; ++p) {
          int32_t four;
          __builtin_memcpy(&four, xt + p * s->sw * pixel + 4 * c, 4);
          const __m512i xb = _mm512_set1_epi32(four);
          for (int v = 0; v < nv; ++v) acc[p][v] = _mm512_dpbusd_epi32(acc[p][v], xb, wv[v]);
        }
      }
    }
  }
  for (int p = 0; p < np; ++p)
    for (int v = 0; v < nv; ++v) _mm512_storeu_si512(y + (size_t)p * s->oc + 16 * v, acc[p][v]);
}

// Every (pixels, vectors) tile shape as its own unrolled copy, so the accumulators stay in registers.
#define TILES_FOR(np)                                             \
  switch (nv) {                                                   \
    case 4: tile(x, w, bias, y, s, np, 4); break;                 \
    case 3: tile(x, w, bias, y, s, np, 3); break;                 \
    case 2: tile(x, w, bias, y, s, np, 2); break;                 \
    default: tile(x, w, bias, y, s, np, 1); break;                \
  }

static void any_tile(const uint8_t* x, const int8_t* w, const int32_t* bias, int32_t* y, const shape_t* s, int np,
                     int nv) {
  switch (np) {
    case 6: TILES_FOR(6) break;
    case 5: TILES_FOR(5) break;
    case 4: TILES_FOR(4) break;
    case 3: TILES_FOR(3) break;
    case 2: TILES_FOR(2) break;
    default: TILES_FOR(1) break;
  }
}

void edgeq_conv2d_u8s8(const uint8_t* x, const int8_t* w, const int32_t* bias, int32_t* y, int32_t in_w,
                       int32_t c4, int32_t oc16, int32_t kh, int32_t kw, int32_t sh, int32_t sw, int32_t dh,
                       int32_t dw, int32_t out_w, size_t gx, size_t gy) {
  const shape_t s = {in_w, c4, kh, kw, sh, sw, dh, dw, oc16 * 16};
  const int v0 = (int)gx * TILE_VECTORS;
  const int nv = oc16 - v0 < TILE_VECTORS ? oc16 - v0 : TILE_VECTORS;
  const size_t pixel = (size_t)c4 * 4;
  const uint8_t* row = x + (size_t)gy * sh * in_w * pixel;
  const int8_t* wb = w + (size_t)v0 * kh * kw * c4 * 64;
  int32_t* out = y + (size_t)gy * out_w * s.oc + 16 * v0;
  // The row in tiles of equal size, give or take a pixel (7 = 4 + 3, not 6 + 1): each tile streams the whole
  // filter block, so a narrow tile costs nearly as much as a full one.
  const int tiles = (out_w + TILE_PIXELS - 1) / TILE_PIXELS, narrow = out_w / tiles, wide = out_w % tiles;
  for (int t = 0, ow = 0; t < tiles; ++t) {
    const int np = narrow + (t < wide);
    any_tile(row + (size_t)ow * sw * pixel, wb, bias + 16 * v0, out + (size_t)ow * s.oc, &s, np, nv);
    ow += np;
  }
}
