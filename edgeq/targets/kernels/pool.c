// edgeq's host runtime: an IREE executable plugin whose threads run a dispatch's workgroups with the calling thread.
//
// Why: on IREE's local-task device the caller submits and sleeps while IREE's workers run the dispatches, and each
// call pays the task system and the workers' wake-ups: ResNet-18 on one worker took 5.1-5.5 ms where local-sync,
// which runs the dispatches on the caller, took 4.4-4.8 (docs/profiling.md, stop 40). So edgeq's modules run on
// local-sync, each of edgeq's dispatches as one workgroup whose shim (dialect_passes/conv_kernel.py's pool glue)
// asks this plugin for its pool (the import `edgeq_pool`) and calls pool->run with the kernel's workgroups. run
// publishes them, the caller and the helpers claim them one at a time, and the caller returns once all are done:
// as ONNX Runtime does, the calling thread is one of the pool's threads, and the helpers spin between jobs.
//
// Built as a shared library for the system loader (targets/kernels/__init__.py's pool_plugin), linked to libc and
// pthreads; IREE loads it with --executable_plugin, once per driver, and calls `load` for each (one pool each).
// The ABI's structs are those of IREE's iree/hal/local/executable_plugin.h (version 0.1), declared here as far as
// this plugin uses them: that header is not in IREE's Python packages.
#define _GNU_SOURCE
#include <immintrin.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

typedef struct {
  uint32_t version;
  const char* name;
  const char* description;
  uint32_t features;
  int32_t sanitizer;
  uint64_t reserved[8];
} plugin_header_t;
typedef struct {
  size_t count;
  const char* const* symbol_names;
  void** out_fn_ptrs;
  void** out_fn_contexts;
} resolve_params_t;
typedef struct {
  const plugin_header_t* header;
  uintptr_t (*load)(const void* environment, size_t param_count, const void* params, void** out_self);
  void (*unload)(void* self);
  uintptr_t (*resolve)(void* self, const resolve_params_t* params, uint32_t* out_resolution);
} plugin_v0_t;
enum { STATUS_OK = 0, STATUS_RESOURCE_EXHAUSTED = 8, STATUS_NOT_FOUND = 5, MISSING_OPTIONAL = 1 };

// How long a helper spins for the next job before it sleeps: longer than the gaps between a call's dispatches and
// between calls made back to back (tens of microseconds), short enough to leave the CPU to others soon after.
#define SPIN_NS 200000.0
#define MAX_HELPERS 63
#define BUSY 0xFFFFFFFFull  // a job's claim counter while run writes the job

typedef void (*body_fn)(const void* args, size_t workgroup);
typedef struct pool {
  // What the shims call: body(args, g) for each g in [0, n), on the calling thread and the helpers.
  void (*run)(struct pool* pool, body_fn body, const void* args, size_t n);
  _Alignas(64) uint64_t word;  // the job's sequence number << 32 | the next workgroup to claim
  _Alignas(64) body_fn body;
  const void* args;
  size_t n;
  _Alignas(64) size_t finished;  // the job's workgroups done
  _Alignas(64) uint32_t futex;   // bumped to wake sleeping helpers
  int sleeping, stop;  // sleeping: how many helpers are in (or about to enter) their futex wait
  int busy;  // a caller is in run: another caller (a second thread on the same device) runs its job alone
  int helpers;
  pthread_t threads[MAX_HELPERS];
} pool_t;

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return 1e9 * (double)t.tv_sec + (double)t.tv_nsec;
}

// Claims and runs job s's workgroups until none is left. A claim is a compare-and-swap on word, which succeeds only
// while the job is still s: its body, args and n, read after word showed s, are rewritten only after word has moved
// on to s + 1 (BUSY), so a claim never runs a workgroup with another job's arguments.
static void work(pool_t* p, uint64_t s) {
  const body_fn body = p->body;
  const void* args = p->args;
  const size_t n = p->n;
  for (uint64_t w = __atomic_load_n(&p->word, __ATOMIC_ACQUIRE); (w >> 32) == s && (w & BUSY) < n;) {
    if (__atomic_compare_exchange_n(&p->word, &w, w + 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
      body(args, (size_t)(w & BUSY));
      __atomic_add_fetch(&p->finished, 1, __ATOMIC_RELEASE);
      w = __atomic_load_n(&p->word, __ATOMIC_ACQUIRE);
    }
  }
}

static void* helper(void* arg) {
  pool_t* p = arg;
  uint64_t seen = __atomic_load_n(&p->word, __ATOMIC_ACQUIRE) >> 32;
  double idle = now_ns();
  for (unsigned spins = 0; !__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE);) {
    const uint64_t w = __atomic_load_n(&p->word, __ATOMIC_ACQUIRE);
    if ((w >> 32) != seen && (w & BUSY) != BUSY) {
      seen = w >> 32;
      work(p, seen);
      idle = now_ns(), spins = 0;
      continue;
    }
    _mm_pause();
    if (++spins % 64 == 0 && now_ns() - idle > SPIN_NS) {
      // sleep until run or unload bumps futex; sleeping is counted before word is read again, and run sets word
      // before it reads sleeping (both sequentially consistent), so a job published meanwhile is seen by one of them
      const uint32_t f = __atomic_load_n(&p->futex, __ATOMIC_SEQ_CST);
      __atomic_add_fetch(&p->sleeping, 1, __ATOMIC_SEQ_CST);
      if ((__atomic_load_n(&p->word, __ATOMIC_SEQ_CST) >> 32) == seen && !__atomic_load_n(&p->stop, __ATOMIC_SEQ_CST))
        syscall(SYS_futex, &p->futex, FUTEX_WAIT_PRIVATE, f, NULL, NULL, 0);
      __atomic_sub_fetch(&p->sleeping, 1, __ATOMIC_SEQ_CST);
      idle = now_ns();
    }
  }
  return NULL;
}

static void wake_helpers(pool_t* p) {
  __atomic_add_fetch(&p->futex, 1, __ATOMIC_SEQ_CST);
  syscall(SYS_futex, &p->futex, FUTEX_WAKE_PRIVATE, MAX_HELPERS, NULL, NULL, 0);
}

static void run(pool_t* p, body_fn body, const void* args, size_t n) {
  if (p->helpers == 0 || n == 1 || __atomic_exchange_n(&p->busy, 1, __ATOMIC_ACQUIRE)) {
    for (size_t g = 0; g < n; ++g) body(args, g);
    return;
  }
  const uint64_t s = (__atomic_load_n(&p->word, __ATOMIC_RELAXED) >> 32) + 1;
  __atomic_store_n(&p->word, s << 32 | BUSY, __ATOMIC_SEQ_CST);
  p->body = body, p->args = args, p->n = n;
  __atomic_store_n(&p->finished, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&p->word, s << 32, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&p->sleeping, __ATOMIC_SEQ_CST)) wake_helpers(p);
  work(p, s);  // a helper still waking up finds the workgroups claimed, and the call need not wait for it
  while (__atomic_load_n(&p->finished, __ATOMIC_ACQUIRE) < n) _mm_pause();
  __atomic_store_n(&p->busy, 0, __ATOMIC_RELEASE);
}

// The import `edgeq_pool() -> index`: its packed parameters are its one result, the pool's address.
static int pool_import(void* params, void* context, void* reserved) {
  (void)reserved;
  *(void**)params = context;
  return 0;
}

// One pool per load: EDGEQ_POOL_THREADS threads in all (the caller and the helpers), at most one per CPU that this
// process may run on.
static uintptr_t load(const void* environment, size_t param_count, const void* params, void** out_self) {
  (void)environment, (void)param_count, (void)params;
  pool_t* p = aligned_alloc(64, (sizeof(pool_t) + 63) / 64 * 64);
  if (!p) return STATUS_RESOURCE_EXHAUSTED;
  memset(p, 0, sizeof *p);
  p->run = run;
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  CPU_SET(0, &cpus);
  sched_getaffinity(0, sizeof cpus, &cpus);
  const char* wanted = getenv("EDGEQ_POOL_THREADS");
  const int threads = wanted ? atoi(wanted) : CPU_COUNT(&cpus);
  const int cores = threads < CPU_COUNT(&cpus) ? threads : CPU_COUNT(&cpus);
  const int helpers = cores < 1 ? 0 : cores - 1 > MAX_HELPERS ? MAX_HELPERS : cores - 1;
  // helper k on the (k + 2)-th of the process's CPUs, the caller on the first one (targets/host.py pins it there
  // during a call): unpinned, the scheduler at times put the caller and a spinning helper on one CPU, and calls took
  // up to 3x as long (docs/profiling.md, stop 40)
  for (int cpu = 0, seen = 0; cpu < CPU_SETSIZE && p->helpers < helpers; ++cpu) {
    if (!CPU_ISSET(cpu, &cpus) || seen++ == 0) continue;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setaffinity_np(&attr, sizeof one, &one);
    const int failed = pthread_create(&p->threads[p->helpers], &attr, helper, p);
    pthread_attr_destroy(&attr);
    if (failed) break;
    pthread_setname_np(p->threads[p->helpers++], "edgeq-pool");
  }
  *out_self = p;
  return STATUS_OK;
}

static void unload(void* self) {
  pool_t* p = self;
  __atomic_store_n(&p->stop, 1, __ATOMIC_SEQ_CST);
  wake_helpers(p);
  for (int k = 0; k < p->helpers; ++k) pthread_join(p->threads[k], NULL);
  free(p);
}

static uintptr_t resolve(void* self, const resolve_params_t* params, uint32_t* out_resolution) {
  *out_resolution = 0;
  int missing = 0;
  for (size_t i = 0; i < params->count; ++i) {
    if (params->out_fn_ptrs[i]) continue;  // resolved by another provider
    const char* name = params->symbol_names[i];
    const int optional = name[0] == '?';
    if (strcmp(name + optional, "edgeq_pool") == 0) {
      params->out_fn_ptrs[i] = (void*)pool_import;
      params->out_fn_contexts[i] = self;
    } else if (optional) {
      *out_resolution |= MISSING_OPTIONAL;
    } else {
      missing = 1;
    }
  }
  return missing ? STATUS_NOT_FOUND : STATUS_OK;
}

__attribute__((visibility("default"))) const plugin_header_t** iree_hal_executable_plugin_query(uint32_t max_version,
                                                                                               void* reserved) {
  (void)reserved;
  static const plugin_header_t header = {1, "edgeq_pool", "edgeq's host thread pool (targets/kernels/pool.c)", 0, 0,
                                         {0}};
  static const plugin_v0_t plugin = {&header, load, unload, resolve};
  return max_version >= 1 ? (const plugin_header_t**)&plugin : NULL;
}
