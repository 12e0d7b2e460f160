// This machine's int8 peak on one core: 24 independent vpdpbusd accumulators (u8 x s8, 4 MACs per 32-bit lane),
// no memory traffic. benchmarks/conv_kernel.py builds it with ziglang's clang and runs one copy per core.
// Prints GMAC/s. The 512-bit form, as edgeq's kernels use: on AMD Zen 4 it runs as two 256-bit halves (the same
// MACs per cycle as the 256-bit form, 234 GMAC/s per core there); on Zen 5 at full width, twice the 256-bit form's
// (540-570 against 270 GMAC/s per core, docs/profiling.md "Stop 32").
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

#define ACC(i) __m512i a##i = _mm512_set1_epi32(i);
#define DOT(i) a##i = _mm512_dpbusd_epi32(a##i, x, w);
#define SUM(i) sum += _mm512_cvtsi512_si32(a##i);
#define ALL(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11) \
               M(12) M(13) M(14) M(15) M(16) M(17) M(18) M(19) M(20) M(21) M(22) M(23)

int main(void) {
  ALL(ACC)
  __m512i x = _mm512_set1_epi32(0x01010101), w = _mm512_set1_epi32(0x02020202);
  const long iterations = 50000000;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long k = 0; k < iterations; ++k) {
    __asm__ volatile("" : "+v"(x), "+v"(w));  // keep the loop from being folded away
    ALL(DOT)
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  const double seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
  int sum = 0;
  ALL(SUM)
  printf("%.2f %d\n", iterations * 24.0 * 64.0 / seconds / 1e9, sum);
  return 0;
}
