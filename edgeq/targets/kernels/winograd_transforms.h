// Winograd F(4x4, 3x3)'s input and output transforms, shared by the VNNI and AVX2 kernel files' Winograd convs
// (conv2d_u8s8_avx512vnni.c's header gives the exactness argument). Each file defines WINO_BYTES, its vector width,
// before including this. The lanes are unsigned so that the sums wrap by definition; the bits are those of the
// signed values.
#define WINO_INV9 954437177  // 9 * WINO_INV9 = 1 modulo 2^32: the division of 9 Y by 9 (after the shift by 6)

typedef uint16_t wino_u16 __attribute__((vector_size(WINO_BYTES), __may_alias__));
typedef uint32_t wino_u32 __attribute__((vector_size(WINO_BYTES), __may_alias__));
typedef uint32_t wino_u32_unaligned __attribute__((vector_size(WINO_BYTES), __may_alias__, aligned(1)));

// V = B^T d over 6 vectors of i16 lanes (rows of B^T: 4 0 -5 0 1 0 / 0 -4 -4 1 1 0 / 0 4 -4 -1 1 0 /
// 0 -2 -1 2 1 0 / 0 2 -1 -2 1 0 / 0 4 0 -5 0 1), in wrap-around i16: exact, as the results fit i16.
static inline __attribute__((always_inline)) void winograd_bt(const wino_u16* d, wino_u16* v) {
  const wino_u16 d02 = d[0] - d[2], d13 = d[1] - d[3], d42 = d[4] - d[2], d43 = d[4] - d[3];
  const wino_u16 s12 = d[1] + d[2], m12 = d[1] - d[2], s34 = d[3] + d[4];
  v[0] = (d02 << 2) - d[2] + d[4];
  v[1] = s34 - (s12 << 2);
  v[2] = d43 + (m12 << 2);
  v[3] = d42 - (d13 << 1);
  v[4] = d42 + (d13 << 1);
  v[5] = (d13 << 2) - d[3] + d[5];
}

// Four rows of A'^T (6 4 4 1 1 0 / 0 4 -4 2 -2 0 / 0 4 4 4 4 0 / 0 4 -4 8 -8 24) applied to 6 vectors of i32 sums.
static inline __attribute__((always_inline)) void winograd_at(const wino_u32* m, wino_u32* y) {
  const wino_u32 s12 = m[1] + m[2], d12 = (m[1] - m[2]) << 2, s34 = m[3] + m[4], d34 = m[3] - m[4];
  y[0] = ((m[0] << 2) + (m[0] << 1)) + ((s12 << 2) + s34);
  y[1] = d12 + (d34 << 1);
  y[2] = (s12 + s34) << 2;
  y[3] = (d12 + (d34 << 3)) + ((m[5] << 4) + (m[5] << 3));
}

// The output transform's first stage: each of the 6 columns of a tile's 36 sums (6 x 6 vectors from ms, row-major)
// through A'^T, into t [4][6]. Fully unrolled, M read where it is needed: as loops over arrays, clang copied M to
// the stack and ran both stages through memory.
static inline __attribute__((always_inline)) void winograd_at_columns(const wino_u32_unaligned* ms, wino_u32 (*t)[6]) {
#pragma clang loop unroll(full)
  for (int q = 0; q < 6; ++q) {
    const wino_u32 col[6] = {ms[q], ms[6 + q], ms[12 + q], ms[18 + q], ms[24 + q], ms[30 + q]};
    wino_u32 out[4];
    winograd_at(col, out);
#pragma clang loop unroll(full)
    for (int a = 0; a < 4; ++a) t[a][q] = out[a];
  }
}
