// This machine's int8 peaks with AVX2 alone, on one core, 8 independent accumulators, no memory traffic:
//   - exact: vpmaddwd on i16 operands (16 MACs per 256-bit instruction: 8 lanes of a pair of products) and the
//     vpaddd that accumulates it, the products of edgeq's AVX2 kernels (targets/kernels/conv2d_u8s8_avx2.c);
//   - saturating: vpmaddubsw on u8 x s8 (32 products summed in pairs into i16, which saturate when a pair's sum
//     passes 2^15), vpmaddwd by ones to i32 and vpaddd: what ONNX Runtime's AVX2 u8 x s8 kernels run, not exact.
// Prints GMAC/s, exact then saturating, in one run. The inputs are rewritten (an empty asm) at every iteration, so
// the compiler computes every product.
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(void) {
  __m256i x0 = _mm256_set1_epi16(1), x1 = _mm256_set1_epi16(2), x2 = _mm256_set1_epi16(3),
          x3 = _mm256_set1_epi16(4), w0 = _mm256_set1_epi16(5), w1 = _mm256_set1_epi16(6);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  const long iterations = 100000000;
  const double t0 = now();
  for (long k = 0; k < iterations; ++k) {
    __asm__ volatile("" : "+x"(x0), "+x"(x1), "+x"(x2), "+x"(x3));
#define EXACT(a, x, w) a = _mm256_add_epi32(a, _mm256_madd_epi16(x, w))
    EXACT(a0, x0, w0), EXACT(a1, x0, w1), EXACT(a2, x1, w0), EXACT(a3, x1, w1);
    EXACT(a4, x2, w0), EXACT(a5, x2, w1), EXACT(a6, x3, w0), EXACT(a7, x3, w1);
  }
  const double t1 = now();
  for (long k = 0; k < iterations; ++k) {
    __asm__ volatile("" : "+x"(x0), "+x"(x1), "+x"(x2), "+x"(x3));
#define SATURATING(a, x, w) a = _mm256_add_epi32(a, _mm256_madd_epi16(_mm256_maddubs_epi16(x, w), ones))
    SATURATING(a0, x0, w0), SATURATING(a1, x0, w1), SATURATING(a2, x1, w0), SATURATING(a3, x1, w1);
    SATURATING(a4, x2, w0), SATURATING(a5, x2, w1), SATURATING(a6, x3, w0), SATURATING(a7, x3, w1);
  }
  const double t2 = now();
  const __m256i sum = _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(a0, a1), _mm256_add_epi32(a2, a3)),
                                       _mm256_add_epi32(_mm256_add_epi32(a4, a5), _mm256_add_epi32(a6, a7)));
  printf("exact (vpmaddwd + vpaddd) %.2f GMAC/s\n", iterations * 8.0 * 16.0 / (t1 - t0) / 1e9);
  printf("saturating (vpmaddubsw + vpmaddwd + vpaddd) %.2f GMAC/s (checksum %d)\n",
         iterations * 8.0 * 32.0 / (t2 - t1) / 1e9, _mm256_extract_epi32(sum, 0));
  return 0;
}
