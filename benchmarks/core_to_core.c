// The round trip of one cache line between two CPUs, in ns: two threads, pinned to CPUs 0 and 1 (or the two given),
// take turns incrementing it, 200000 times each. benchmarks/spells.py runs it before each of its probes.
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define TRIPS 200000

static _Atomic long turn __attribute__((aligned(64)));

static void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void* answer(void* cpu) {
  pin((int)(size_t)cpu);
  for (long i = 0; i < TRIPS; ++i) {
    while (atomic_load_explicit(&turn, memory_order_acquire) != 2 * i + 1) {
    }
    atomic_store_explicit(&turn, 2 * i + 2, memory_order_release);
  }
  return 0;
}

int main(int argc, char** argv) {
  const int first = argc > 2 ? atoi(argv[1]) : 0, second = argc > 2 ? atoi(argv[2]) : 1;
  pin(first);
  pthread_t other;
  pthread_create(&other, 0, answer, (void*)(size_t)second);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long i = 0; i < TRIPS; ++i) {
    atomic_store_explicit(&turn, 2 * i + 1, memory_order_release);
    while (atomic_load_explicit(&turn, memory_order_acquire) != 2 * i + 2) {
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  pthread_join(other, 0);
  printf("%.1f\n", ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / TRIPS);
  return 0;
}
