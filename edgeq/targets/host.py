"""host: llvm-cpu for this machine's CPU (edgeq's kernels where it has AVX-512 VNNI and VBMI), run through the IREE
Python runtime."""
from __future__ import annotations

import functools
import os
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

from edgeq.errors import EdgeqError
from edgeq.targets.base import Measurement, TargetSpec
from edgeq.targets.kernels import AVX2, VNNI

# IREE's best CPU flags here, for int8 and fp32 alike. Without transpose propagation, IREE keeps a transformer's
# split into heads out of the matmul before it, which then reaches data tiling and the ukernels (fused, the Q/K/V
# projections ran as generic 12x128x32x384 contractions at 5-19 GMAC/s): MiniLM-L6 int8 46.0 -> 19.2 ms on one
# worker, bit-identical; MobileNetV2 fp32 14.36 -> 13.43 ms and ResNet-18 fp32 30.0 -> 29.0 on two threads; edgeq's
# int8 image models unchanged (docs/profiling.md).
# IREE evaluates a constant expression at compile time only while it grows the constants by at most 1 MiB, by
# default; the AVX2 Winograd kernel's transformed weights grow ResNet's layer3 convs by 4.1 MB each
# (dialect_passes/conv_kernel.py's WINOGRAD_MAX_GROWTH): computed at every call instead, they took 14 ms per conv.
# IREE fp32 ResNet-18 compiles to the same module with 4 MiB.
BASE_FLAGS = ("--iree-opt-level=O3", "--iree-opt-data-tiling", "--iree-llvmcpu-enable-ukernels=all",
              "--iree-global-opt-propagate-transposes=false",
              "--iree-opt-const-expr-max-size-increase-threshold=4194304")
# im2col turns every conv into the i8 x i8 -> i32 matmul that data tiling and the VNNI/dotprod ukernels take:
# ResNet-18 int8 131 -> 13.8 ms (iree-benchmark-module, 2 threads, 224x224, this machine).
OPT_FLAGS = BASE_FLAGS + ("--iree-global-opt-use-im2col-for-convs",)

# What the autotuner (targets/tune.py) tries on llvm-cpu targets, the default first. NHWC makes the im2col
# gathers read whole channel vectors; smaller matmul tiles spread small layers over both threads; aggressive
# fusion may put more elementwise work into the contractions; "direct" leaves convs to IREE's conv codegen,
# without im2col.
CPU_VARIANTS = {
    "im2col": OPT_FLAGS,
    "im2col-nhwc": OPT_FLAGS + ("--iree-preprocessing-pass-pipeline="
                                "builtin.module(util.func(iree-preprocessing-convert-conv-to-channels-last))",),
    "im2col-tiles64k": OPT_FLAGS + ("--iree-llvmcpu-matmul-tile-bytes=65536",),
    "im2col-fusion": OPT_FLAGS + ("--iree-dispatch-creation-enable-aggressive-fusion",),
    "direct": BASE_FLAGS,
}


@functools.cache
def kernel_isa() -> str | None:
    """Which of edgeq's kernel sets (targets/kernels) this machine's CPU runs: VNNI on x86-64 with AVX-512 VNNI
    (vpdpbusd) and VBMI (the depthwise kernel's vpermt2b): Ice Lake and later, Zen 4 and later; else AVX2 on
    x86-64-v3 (Haswell and later, Zen 1 and later); else none. EDGEQ_KERNELS=avx2 takes the AVX2 set on a VNNI CPU
    too (tests and A/B timing), EDGEQ_KERNELS=none neither."""
    try:
        flags = set(next((ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("flags")),
                         "").split())
    except OSError:
        return None
    runs = [isa for isa, needs in ((VNNI, {"avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512vbmi"}),
                                   (AVX2, {"avx2", "fma", "bmi2", "f16c", "movbe"})) if needs <= flags]
    wanted = os.environ.get("EDGEQ_KERNELS")
    if wanted is None:
        return runs[0] if runs else None
    if wanted == "none":
        return None
    if wanted not in runs:
        raise EdgeqError(f"EDGEQ_KERNELS={wanted}: this CPU runs {', '.join(runs) or 'none of edgeq kernel sets'}",
                         f"set EDGEQ_KERNELS to one of {', '.join(runs + ['none'])}, or unset it")
    return wanted


POOL_IMPORT = b"edgeq_pool"   # the import of a module with edgeq's kernels (dialect_passes/conv_kernel.py)
POOL_THREADS = "EDGEQ_POOL_THREADS"   # the environment variable that sizes a pool as it loads (pool.c)


def uses_pool(vmfb: Path) -> bool:
    """Whether the module runs edgeq's kernels, which take their threads from edgeq's pool (targets/kernels/pool.c):
    its executables import edgeq_pool."""
    return POOL_IMPORT in Path(vmfb).read_bytes()


def tool_device(pooled: bool, threads: int) -> tuple[list[str], dict[str, str]]:
    """The device flags and the environment with which IREE's command-line tools (iree-benchmark-module) run a
    module as the host target does (HostTarget.device; pooled: uses_pool)."""
    if pooled:
        from edgeq.targets.kernels import pool_plugin

        return ["--device=local-sync", f"--executable_plugin={pool_plugin()}"], {POOL_THREADS: str(threads)}
    return ["--device=local-task", "--task_topology_group_count=0", f"--task_topology_max_group_count={threads}"], {}


def runs_edgeq_kernels() -> bool:
    """Whether this machine runs edgeq's AVX-512 VNNI kernels, the full set (kernel_isa)."""
    return kernel_isa() == VNNI


class HostTarget:
    simulated = emulated = False

    def __init__(self, threads: int = 2):
        self.spec = TargetSpec("host", "local", cpu="host", extra_flags=OPT_FLAGS)
        self.threads = threads

    def check_available(self) -> None:
        import iree.runtime  # noqa: F401  (a dependency of edgeq: always there)

    def device(self, pooled: bool = False):
        """The IREE device that this target runs a module on: with edgeq's kernels (pooled, uses_pool), local-sync
        with edgeq's thread pool, `threads` threads in all; else local-task, `threads` workers, one per core,
        pinned."""
        return _pooled_device(self.threads) if pooled else _device(self.threads)

    def load(self, vmfb: Path, function: str = "main") -> Callable:
        """The module's `function` on its device (device), called as the host target calls it (_as_called); it
        takes numpy arrays or device arrays."""
        ctx, pooled = self._context(vmfb)
        return _as_called(ctx.modules.module[function], pooled)

    def _context(self, vmfb: Path):
        """The module loaded on its device, and whether that is the pooled one."""
        import iree.runtime as rt

        data = Path(vmfb).read_bytes()
        pooled = POOL_IMPORT in data
        ctx = rt.SystemContext(config=rt.Config(device=self.device(pooled)))
        ctx.add_vm_module(_module_in_huge_pages(ctx.instance, data))
        return ctx, pooled

    def run(self, vmfb: Path, inputs: list[np.ndarray], function: str = "main", n_outputs: int = 1) -> list[np.ndarray]:
        return self.runner(vmfb, inputs, function)()

    def runner(self, vmfb: Path, inputs: list[np.ndarray], function: str = "main") -> Callable[[], list[np.ndarray]]:
        """One call of `function` on `inputs`, returning its results on the host once they are computed: what run
        returns and measure times, for benchmarks that time several runtimes in interleaved rounds. As a
        deployment would call it: each call copies the inputs into device buffers made once, invokes the VM
        function on them directly, and reads the results through a mapping. IREE's function invoker makes a new
        buffer for each input and packs the arguments in Python: 11-19 us more per call on two threads (ResNet-18
        and MobileNetV2, alternating calls, docs/profiling.md)."""
        import iree.runtime as rt
        from iree.runtime.array_interop import map_dtype_to_element_type

        ctx, pooled = self._context(vmfb)
        device = self.device(pooled)
        module = ctx.modules.module.vm_module
        fn = module.lookup_function(function)
        if fn is None:
            raise EdgeqError(f"{Path(vmfb).name} has no function {function}",
                             f"call one of {', '.join(n for n in module.function_names if not n.startswith('__'))}")
        arrays = [np.ascontiguousarray(x) for x in inputs]
        views = [device.allocator.allocate_buffer_copy(
            memory_type=rt.MemoryType.DEVICE_LOCAL | rt.MemoryType.HOST_VISIBLE,
            allowed_usage=rt.BufferUsage.DEFAULT | rt.BufferUsage.MAPPING, device=device, buffer=x,
            element_type=map_dtype_to_element_type(x.dtype)) for x in arrays]
        mappings = [v.map() for v in views]   # held: the arrays below view them
        staged = [(x, m.asarray(x.shape, x.dtype)) for x, m in zip(arrays, mappings)]

        args = rt.VmVariantList(len(views))
        for v in views:
            args.push_ref(v)

        def invoke():
            results = rt.VmVariantList(1)
            try:
                ctx.vm_context.invoke(fn, args, results)
            except ValueError as e:   # IREE's checks of the arguments, among others
                reason = str(e).split("; while")[0].split("INVALID_ARGUMENT; ")[-1]
                raise EdgeqError(f"{Path(vmfb).name}'s {function} failed on its inputs ({reason})",
                                 "pass arrays of the shapes and dtypes in the artifact's manifest (inputs)") from None
            return results
        invoke = _as_called(invoke, pooled)

        layouts = []   # each result's (shape, dtype): an edgeq module's are static, so read at the first call

        def call() -> list[np.ndarray]:
            for x, buffer in staged:
                np.copyto(buffer, x)
            results = invoke()
            outs = [results.get_as_ref(k).deref(rt.HalBufferView) for k in range(results.size)]
            if not layouts:
                layouts.extend((tuple(v.shape), rt.HalElementType.map_to_dtype(v.element_type)) for v in outs)
            return [np.array(v.map().asarray(shape, dtype)) for v, (shape, dtype) in zip(outs, layouts)]
        return call

    def measure(self, vmfb: Path, inputs: list[np.ndarray], repetitions: int = 20,
                function: str = "main", warmup: int = 3) -> Measurement:
        call = self.runner(vmfb, inputs, function)
        for _ in range(warmup):
            call()
        times = []
        for _ in range(repetitions):
            t0 = time.perf_counter()
            call()
            times.append((time.perf_counter() - t0) * 1e3)
        device = ("local-sync and edgeq's pool" if uses_pool(vmfb) else "local-task, one worker per core, pinned")
        return Measurement("host", times, note=f"IREE Python runtime, {device}, {self.threads} threads")


HUGE_PAGE = 2 << 20


def _module_in_huge_pages(instance, data: bytes):
    """The module, its bytes in transparent huge pages where Linux gives them on request (madvise): the kernels read
    the weights in place from it, and with 4 KB pages each 4 KB of a layer's weights is a TLB miss whose page walk
    misses the caches too (ResNet-18's layer4 convs took 498 us hot and 546 us after a 64 MB sweep, one core, C
    harness; software prefetches did not move that). ResNet-18 on two threads, alternating calls: 1.3-1.9% faster
    (docs/profiling.md). Elsewhere the module is copied as IREE would."""
    import ctypes
    import mmap

    import iree.runtime as rt

    if not hasattr(mmap, "MADV_HUGEPAGE"):
        return rt.VmModule.copy_buffer(instance, data)
    # private and anonymous (a shared mapping would be shmem, which THP's madvise mode leaves alone), data at a
    # 2 MB boundary
    region = mmap.mmap(-1, len(data) + 2 * HUGE_PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    region.madvise(mmap.MADV_HUGEPAGE)
    start = -ctypes.addressof(ctypes.c_char.from_buffer(region)) % HUGE_PAGE
    region[start:start + len(data)] = data
    # the module holds the view, and the view the mapping, as long as IREE uses them
    return rt.VmModule.wrap_buffer(instance, memoryview(region)[start:start + len(data)])


def _as_called(fn: Callable, pooled: bool) -> Callable:
    """`fn`, a call into a module, as the host target makes it: on edgeq's pool, on the first CPU and one call at a
    time; on IREE's workers, as an idle-class thread."""
    return _on_first_cpu(_one_at_a_time(fn)) if pooled else _yielding_to_workers(fn)


def _one_at_a_time(fn: Callable) -> Callable:
    """`fn`, its calls from several threads taking turns. Why: IREE's invoke lets other Python threads run
    meanwhile, and the Winograd convs' workgroups claim their pieces from counters in a global of the module
    (dialect_passes/conv_kernel.py, winograd_claims): two calls of one loaded module at once claimed each other's
    pieces (about one call in 1600 from four threads came out wrong, tests/test_kernels.py), and at times crashed
    the process."""
    lock = threading.Lock()

    def call(*args):
        with lock:
            return fn(*args)
    return call


def _on_first_cpu(fn: Callable) -> Callable:
    """`fn`, called with the calling thread pinned to the first of the process's CPUs, where edgeq's pool leaves it
    (targets/kernels/pool.c pins its helpers to the others); its affinity is restored after the call. Why: the
    caller runs its share of each dispatch, and unpinned the scheduler at times put it beside a spinning helper on
    one CPU: ResNet-18's calls then took up to 7-9 ms instead of 2.3-3, its median 0.85-1.09x ONNX Runtime's
    instead of 0.70-0.79x (0.95x with the helpers pinned alone; docs/profiling.md, stop 40)."""
    if not hasattr(os, "sched_setaffinity"):
        return fn

    def call(*args):
        allowed = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(allowed)})
        try:
            return fn(*args)
        finally:
            os.sched_setaffinity(0, allowed)
    return call


def _yielding_to_workers(fn: Callable) -> Callable:
    """`fn`, called with the calling thread under SCHED_IDLE (_waiting_policy): it neither preempts the workers
    when it wakes nor keeps a worker it woke off its CPU.

    Why: when the workers signal the call's fence, the woken caller often preempts the signalling worker on its
    CPU. IREE 3.13's iree_async_semaphore_multi_wait then spins (`pause`, unbounded) until that worker has
    finished its timepoint callback, which it cannot do until the scheduler's next tick: 2-4 ms lost on about a
    third of the calls on this workplace's VM. SCHED_BATCH fixed that; an idle-class caller also gives its CPU
    to the worker it woke at the submission at once, which a batch thread need not: MobileNetV2 on two threads,
    three interleaved A/B runs, 1.457, 1.428, 1.398 ms -> 1.398, 1.408, 1.377; ResNet-18 5.21 -> 5.13
    (docs/profiling.md). The caller only submits and waits meanwhile; in a process whose other threads keep
    every core busy, an idle-class wait could stretch. The policy is the caller's only during the call; threads
    already under another policy keep theirs."""
    policy = _waiting_policy()
    if policy is None:
        return fn

    def call(*args):
        if os.sched_getscheduler(0) != os.SCHED_OTHER:
            return fn(*args)
        os.sched_setscheduler(0, policy, os.sched_param(0))
        try:
            return fn(*args)
        finally:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    return call


@functools.cache
def _waiting_policy() -> int | None:
    """SCHED_IDLE where this process may switch a thread back from it, else SCHED_BATCH; None off Linux. Linux
    lets a thread leave SCHED_IDLE only with CAP_SYS_NICE or an RLIMIT_NICE that allows nice 0, so a throwaway
    thread tries it first: a caller must never be left idle-class."""
    if not hasattr(os, "SCHED_IDLE"):
        return None
    switched_back = []

    def probe():
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
            switched_back.append(True)
        except OSError:   # EPERM on leaving SCHED_IDLE, or a kernel without it
            pass

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    return os.SCHED_IDLE if switched_back else os.SCHED_BATCH


@functools.cache
def _device(threads: int):
    """A local-task device with one worker per core, pinned to it, on at most `threads` cores.

    Why pin: unpinned, the kernel's scheduler often puts both workers of a 2-thread device on one CPU after they
    slept. On this workplace's VM a MobileNetV2 call then takes the 1-thread 4.0 ms instead of 2.3 ms, and the
    median over rounds of calls nearly doubles. ONNX Runtime's threads spin rather than sleep, so they keep their
    CPUs. Measured in docs/profiling.md ("Two threads: the scheduler and IREE's wait").

    IREE reads the topology flags when a driver is made, and rt.Config caches drivers by name: each thread count
    gets its own driver here, not whichever one the process made first."""
    import iree.runtime as rt
    from iree.runtime._binding import create_hal_driver   # uncached, unlike rt.get_driver

    rt.flags.parse_flags("--task_topology_group_count=0", f"--task_topology_max_group_count={threads}")
    return create_hal_driver("local-task").create_default_device()


@functools.cache
def _pooled_device(threads: int):
    """A local-sync device that loads edgeq's pool (targets/kernels/pool.c): the calling thread runs the module,
    and edgeq's dispatches share their workgroups with threads - 1 helpers, which spin between them.

    Why: on local-task, ResNet-18's calls took 5-10% longer and MobileNetV2's 3-14% (alternating A/B,
    docs/profiling.md, stop 40): IREE's task system, the submission's wake-ups and the caller's wait. IREE's own
    dispatches in such a module (ResNet's global pool) run on the caller alone.

    IREE loads the plugins named by --executable_plugin into every driver it makes after the flag is set, local-task's
    too (a pool whose helper sleeps there); EDGEQ_POOL_THREADS, read as the plugin loads, sizes this driver's pool."""
    from iree.runtime._binding import create_hal_driver

    _register_pool_plugin()
    os.environ[POOL_THREADS] = str(threads)
    return create_hal_driver("local-sync").create_default_device()


@functools.cache
def _register_pool_plugin() -> None:
    """Once: each time the flag is parsed, IREE adds the plugin again."""
    import iree.runtime as rt

    from edgeq.targets.kernels import pool_plugin

    rt.flags.parse_flags(f"--executable_plugin={pool_plugin()}")
