// This machine's exact int8 peak with AVX2 alone, on one core: vpmaddwd on i16 operands (16 MACs per 256-bit
// instruction: 8 lanes of a pair of products) and the vpaddd that accumulates it, 8 independent accumulators, no
// memory traffic. The products are the AVX2 kernels' (targets/kernels/conv2d_u8s8_avx2.c): vpmaddubsw's u8 x s8
// pairs saturate at 16 bits, so exact kernels cannot use it. Prints GMAC/s. The inputs are rewritten (an empty
// asm) at every iteration, so the compiler computes every product.
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

int main(void) {
  __m256i x0 = _mm256_set1_epi16(1), x1 = _mm256_set1_epi16(2), x2 = _mm256_set1_epi16(3),
          x3 = _mm256_set1_epi16(4), w0 = _mm256_set1_epi16(5), w1 = _mm256_set1_epi16(6);
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  const long iterations = 100000000;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long k = 0; k < iterations; ++k) {
    __asm__ volatile("" : "+x"(x0), "+x"(x1), "+x"(x2), "+x"(x3));
    a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(x0, w0)), a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(x0, w1));
    a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(x1, w0)), a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(x1, w1));
    a4 = _mm256_add_epi32(a4, _mm256_madd_epi16(x2, w0)), a5 = _mm256_add_epi32(a5, _mm256_madd_epi16(x2, w1));
    a6 = _mm256_add_epi32(a6, _mm256_madd_epi16(x3, w0)), a7 = _mm256_add_epi32(a7, _mm256_madd_epi16(x3, w1));
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  const double seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
  const __m256i sum = _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(a0, a1), _mm256_add_epi32(a2, a3)),
                                       _mm256_add_epi32(_mm256_add_epi32(a4, a5), _mm256_add_epi32(a6, a7)));
  printf("%.2f %d\n", iterations * 8.0 * 16.0 / seconds / 1e9, _mm256_extract_epi32(sum, 0));
  return 0;
}
