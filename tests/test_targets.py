"""Compiled modules against the PyTorch integer reference, bit for bit, on every target that runs here."""
import os
import re
import resource
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from edgeq import models
from edgeq.dialect_passes import CPU_PIPELINE
from edgeq.pipeline.compile import compile_model
from edgeq.quant import Plan, quantize, to_integer
from edgeq.quant.integer import IntAdd, IntConv2d, IntLinear
from edgeq.targets.base import runtime_tool
from edgeq.targets.host import kernel_isa, runs_edgeq_kernels
from edgeq.targets.kernels import AVX2

_cache: dict = {}


def _integer(name: str, bits: str, input_shape: tuple[int, ...] | None = None):
    if (name, bits, input_shape) not in _cache:
        m = models.load(name, input_shape)
        cal = m.calibration[:4]
        _cache[(name, bits, input_shape)] = (to_integer(quantize(m.module, Plan.uniform(bits), cal), cal[:1]), cal[:1])
    return _cache[(name, bits, input_shape)]


def _inputs(im, example):
    g = torch.Generator().manual_seed(1)
    qp = im.input_qparams
    extreme = torch.randint(qp.qmin, qp.qmax + 1, tuple(example.shape), generator=g, dtype=torch.int8)
    return [im.quantize_input(example), extreme]  # a calibration image, and the full int8 range (saturation)


def _check(im, example, target, tmp_path, passes=None):
    art = compile_model(im, example, target, tmp_path, passes=passes)
    for x in _inputs(im, example):
        with torch.no_grad():
            ref = im.graph_module(x).numpy()
        out = art.run([x.numpy()])[0]
        assert out.dtype == ref.dtype and out.shape == ref.shape
        assert np.array_equal(out, ref), f"{int((out != ref).sum())} of {ref.size} values differ"
    return art


# Vulkan runs on lavapipe, a CPU rasterizer: ImageNet-sized models at 224x224 take minutes per run there, so
# they are checked on vulkan at 64x64 (same layers, smaller maps).
_CASES = [("digits", t) for t in ("host", "arm64", "vulkan", "accel-sim")] + [
    pytest.param(name, target, marks=pytest.mark.slow) for name in ("resnet18", "mobilenet_v2")
    for target in ("host", "arm64", "vulkan")]


@pytest.mark.parametrize("bits", ["w8a8", "w4a8"])
@pytest.mark.parametrize("name,target", _CASES)
def test_bit_exact(name, bits, target, tmp_path):
    im, example = _integer(name, bits, (1, 3, 64, 64) if target == "vulkan" and name != "digits" else None)
    art = _check(im, example, target, tmp_path)
    after = (tmp_path / art.manifest.files["after_passes"]).read_text()
    contractions = re.findall(r"linalg\.(?:conv_2d|depthwise_conv_2d|matmul)\w* .*?ins\(.*?: (.*?)\) outs\(.*?: (.*?)\)", after)
    isa = kernel_isa() if target == "host" else None   # with VNNI none is left to IREE (below)
    kernels = isa is not None
    assert (contractions or kernels) and all(outs.endswith("xi32>") for _, outs in contractions)
    if target == "vulkan":
        # i32 operands extended in dispatches of their own, no i64 anywhere (docs/vulkan.md)
        assert all("xi8>" not in ins for ins, _ in contractions) and "util.optimization_barrier" in after
        assert not re.search(r"arith\.(?:muli|addi|shrsi|maxsi|minsi) [^\n]*: i64$", after, re.M)
    else:   # every conv/matmul reads i8: the int8 kernels apply
        assert all(re.findall(r"xi8>", ins) for ins, _ in contractions)
    if kernels:   # every dense conv runs on edgeq's kernel (targets/kernels)
        dense = [m for m in im.graph_module.modules() if isinstance(m, IntConv2d) and m.groups == 1]
        calls = re.findall(r"util\.call @edgeq_conv_\w+", after)
        assert len(calls) == len(dense) > 0 and "linalg.conv_2d_nchw_fchw" not in after
        assert any("_rq" in c for c in calls)   # with their requantization fused
        # and every residual add after one (the grid kernel's or the small-map kernel's epilogue)
        adds = [m for m in im.graph_module.modules() if isinstance(m, IntAdd)]
        fused = [c for c in calls if "_add" in c]
        assert len(fused) == len(adds) > 0
        depthwise = [m for m in im.graph_module.modules() if isinstance(m, IntConv2d) and m.groups > 1]
        assert len(re.findall(r"util\.call @edgeq_dw_", after)) == len(depthwise)   # 3x3, requantized
        if isa == AVX2:   # the AVX2 set has no matvec
            return
        # and the classifier on edgeq's matvec, its bias add fused
        linear = [m for m in im.graph_module.modules() if isinstance(m, IntLinear)]
        assert len(re.findall(r"util\.call @edgeq_linear_", after)) == len(linear) > 0
        assert "linalg.matmul" not in after


class _Conv(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(4, 8, 3, padding=1)

    def forward(self, x):
        return self.c(x)


class _Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc(torch.flatten(x, 1))


def test_kernel_set_follows_the_cpu_or_edgeq_kernels(monkeypatch):
    """EDGEQ_KERNELS picks a kernel set the CPU runs, or none; one it does not run is named, with the choices."""
    from edgeq.errors import EdgeqError

    detected = kernel_isa()
    try:
        monkeypatch.setenv("EDGEQ_KERNELS", "none")
        kernel_isa.cache_clear()
        assert kernel_isa() is None and runs_edgeq_kernels() is False
        monkeypatch.setenv("EDGEQ_KERNELS", "avx9")
        kernel_isa.cache_clear()
        with pytest.raises(EdgeqError, match="EDGEQ_KERNELS=avx9") as e:
            kernel_isa()
        assert "none" in e.value.fix and (detected is None or detected in e.value.fix)
        if detected:   # a VNNI CPU runs the AVX2 set too
            monkeypatch.setenv("EDGEQ_KERNELS", AVX2)
            kernel_isa.cache_clear()
            assert kernel_isa() == AVX2
    finally:
        monkeypatch.delenv("EDGEQ_KERNELS")
        kernel_isa.cache_clear()
    assert kernel_isa() == detected


@pytest.mark.parametrize("model", [_Conv, _Linear])
def test_vulkan_bit_exact(model, tmp_path):
    """Single contractions on Vulkan (lavapipe); whole networks are in test_bit_exact (docs/vulkan.md)."""
    cal = torch.randn(8, 4, 4, 4)
    im = to_integer(quantize(model().eval(), Plan.uniform("w8a8"), cal), cal[:1])
    _check(im, cal[:1], "vulkan", tmp_path)


# edgeq's full kernel set runs on x86-64 with AVX-512 VNNI and VBMI, its AVX2 set on other x86-64-v3 CPUs;
# elsewhere the host pipeline leaves them out
_VNNI = pytest.mark.skipif(not runs_edgeq_kernels(), reason="edgeq's kernels need AVX-512 VNNI and VBMI")
_AVX2 = pytest.mark.skipif(kernel_isa() != AVX2, reason="edgeq's AVX2 kernels run where AVX-512 VNNI does not")
_KERNELS = pytest.mark.skipif(kernel_isa() is None, reason="edgeq's kernels need x86-64 with AVX2 or AVX-512 VNNI")


class _Depthwise(nn.Module):
    """Depthwise convs as edgeq-depthwise-taps rewrites them: stride 1, stride 2 over an odd size (padded phase
    planes), a 5x5 kernel with stride 2 and no padding. (Dilation: the integer reference has no dilated int32
    conv in torch, so tests/lit/depthwise_taps.mlir checks its offsets.)"""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.b = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8)
        self.d = nn.Conv2d(8, 8, 5, stride=2, groups=8)

    def forward(self, x):
        return self.d(torch.relu(self.b(torch.relu(self.a(x)))))


@pytest.mark.parametrize("target", ["host", "arm64"])
def test_depthwise_taps_bit_exact(target, tmp_path):
    """On the CPU pipeline (host with edgeq's kernels takes 3x3 depthwise convs to edgeq's kernel instead)."""
    cal = torch.randn(8, 8, 15, 15)
    im = to_integer(quantize(_Depthwise().eval(), Plan.uniform("w8a8"), cal), cal[:1])
    art = _check(im, cal[:1], target, tmp_path, passes=CPU_PIPELINE)
    after = (tmp_path / art.manifest.files["after_passes"]).read_text()
    assert "depthwise_conv" not in after and after.count("linalg.transpose") >= 2   # two strided convs: phase planes


@_KERNELS
def test_depthwise_kernel_with_taps_bit_exact(tmp_path):
    """The host pipeline: the two 3x3 depthwise convs on edgeq's kernel, the 5x5 one as taps, in one model."""
    cal = torch.randn(8, 8, 15, 15)
    im = to_integer(quantize(_Depthwise().eval(), Plan.uniform("w8a8"), cal), cal[:1])
    art = _check(im, cal[:1], "host", tmp_path)
    after = (tmp_path / art.manifest.files["after_passes"]).read_text()
    assert after.count("util.call @edgeq_dw_") == 2 and "depthwise_conv" not in after
    # the kernels' bindings are indirect, so IREE records the command buffer once, when the module loads, rather
    # than at every call (main$async would call a function that records it)
    dump = subprocess.run([runtime_tool("iree-dump-module"), str(art.vmfb)], capture_output=True, text=True,
                          check=True).stdout
    main = dump[dump.index("vm.func @main$async("):]
    main = main[:main.index("\n}")]
    assert re.search(r"vm\.global\.load\.ref \S+ : !hal\.command_buffer", main) and "vm.call @module." not in main


@pytest.mark.slow
@pytest.mark.parametrize("target", ["host", "arm64"])
def test_resnet50_bit_exact(target, tmp_path):
    im, example = _integer("resnet50", "w8a8")
    _check(im, example, target, tmp_path)


def test_arm64_android_compiles(tmp_path):
    """No Android device here: the module is compiled for the Android triple with dotprod/i8mm, not run."""
    im, example = _integer("digits", "w8a8")
    art = compile_model(im, example, "arm64-android", tmp_path)
    assert art.vmfb.stat().st_size > 0
    assert "--iree-llvmcpu-target-triple=aarch64-linux-android34" in art.manifest.flags
    assert "+dotprod" in art.manifest.target.features and "+i8mm" in art.manifest.target.features


@pytest.mark.parametrize("target,used,absent", [("arm64", "smmla", "vpdpwssd"), ("arm64-dotprod", "sdot", "smmla"),
                                                pytest.param("host", "vpdpbusd", "smmla", marks=_VNNI),
                                                pytest.param("host", "vpmaddwd", "vpdpbusd", marks=_AVX2)])
def test_dot_product_instructions(target, used, absent, tmp_path):
    """qemu times say nothing, so the arm64 code shows its int8 kernels by disassembly: smmla with i8mm, sdot with
    dotprod alone; and it stays bit-exact under qemu either way. On host, edgeq's conv kernel brings vpdpbusd
    (IREE's own int8 code has only vpdpwssd, docs/profiling.md)."""
    from typer.testing import CliRunner

    from edgeq.cli import app
    from edgeq.targets.instructions import dot_product_counts

    im, example = _integer("digits", "w8a8")
    art = _check(im, example, target, tmp_path)
    counts = dot_product_counts(tmp_path / art.manifest.files["after_passes"], art.manifest.flags, art.manifest.target)
    assert counts[used] >= 16 and counts[absent] == 0
    r = CliRunner().invoke(app, ["instructions", str(tmp_path)])
    assert r.exit_code == 0 and re.search(rf"{used}\s+│\s+{counts[used]}\b", r.output), r.output


def _threads_named(prefix: str) -> dict[str, str]:
    """This process's threads whose name starts with `prefix` (IREE's workers: iree-worker): thread id -> the CPUs
    it may run on."""
    out = {}
    for task in Path("/proc/self/task").iterdir():
        if (task / "comm").read_text().startswith(prefix):
            status = (task / "status").read_text()
            out[task.name] = re.search(r"Cpus_allowed_list:\s*(\S+)", status).group(1)
    return out


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads thread affinities from Linux's /proc")
def test_host_device_pins_one_worker_per_core():
    """Each thread count gets its own device, whatever device the process made first, and each worker is pinned
    to its own CPU (unpinned, the scheduler put both workers on one CPU: docs/profiling.md)."""
    from edgeq.targets import host

    devices = []   # kept alive: a destroyed device's worker ids could be reused
    for threads in (2, 1, 2):
        expected = min(threads, len(os.sched_getaffinity(0)))   # one worker per core this process may run on
        before = _threads_named("iree-worker")
        devices.append(host._device.__wrapped__(threads))   # a new device, as the first call for `threads` makes
        for _ in range(100):   # each worker names and pins itself once it runs
            new = {t: cpus for t, cpus in _threads_named("iree-worker").items() if t not in before}
            if len(new) >= expected and all(re.fullmatch(r"\d+", c) for c in new.values()):
                break
            time.sleep(0.01)
        assert len(new) == expected, new
        assert all(re.fullmatch(r"\d+", cpus) for cpus in new.values()), new   # one CPU each
        assert len(set(new.values())) == len(new), new                          # distinct CPUs
    assert host.HostTarget(2).device() is host.HostTarget(2).device()


@_KERNELS
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads thread affinities from Linux's /proc")
def test_pool_helpers_leave_the_first_cpu_to_the_caller():
    """edgeq's pool (targets/kernels/pool.c) has threads - 1 helpers, at most one per CPU but the first, each pinned
    to its own; a call of a module on it runs on the first CPU, its affinity restored after it (docs/profiling.md,
    stop 40: unpinned, the caller at times shared a CPU with a spinning helper)."""
    from edgeq.targets import host

    allowed = os.sched_getaffinity(0)
    devices = []   # kept alive: a destroyed pool's helper ids could be reused
    for threads in (2, 1, 3):
        before = _threads_named("edgeq-pool")
        devices.append(host._pooled_device.__wrapped__(threads))   # a new pool, as the first call for `threads` makes
        new = {t: cpus for t, cpus in _threads_named("edgeq-pool").items() if t not in before}
        helpers = min(threads, len(allowed)) - 1
        assert len(new) == helpers and len(set(new.values())) == helpers, new
        assert all(re.fullmatch(r"\d+", c) and int(c) in allowed - {min(allowed)} for c in new.values()), new
    seen = []
    call = host._on_first_cpu(lambda x: seen.append(os.sched_getaffinity(0)) or x)
    assert call(1) == 1 and seen == [{min(allowed)}] and os.sched_getaffinity(0) == allowed
    with pytest.raises(ZeroDivisionError):   # restored when the call fails too
        host._on_first_cpu(lambda: 1 / 0)()
    assert os.sched_getaffinity(0) == allowed


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux scheduling policies")
def test_host_calls_run_as_an_idle_class_thread():
    """The caller waits for the workers as a SCHED_IDLE thread (so that, woken, it does not preempt them: IREE's
    wait spins until they finish; and a worker it wakes takes its CPU at once, docs/profiling.md), during the call
    only; as a SCHED_BATCH thread where it could not switch back from SCHED_IDLE."""
    from edgeq.targets import host

    policy = host._waiting_policy()
    # the kernel's rule (sched_setscheduler(2)): CAP_SYS_NICE (bit 23 of the effective set), or an RLIMIT_NICE
    # that allows nice 0
    caps = int(re.search(r"CapEff:\s*([0-9a-f]+)", Path("/proc/self/status").read_text()).group(1), 16)
    can_leave_idle = caps >> 23 & 1 or resource.getrlimit(resource.RLIMIT_NICE)[0] >= 20
    assert policy == (os.SCHED_IDLE if can_leave_idle else os.SCHED_BATCH)
    seen = []
    call = host._yielding_to_workers(lambda *args: seen.append((os.sched_getscheduler(0), args)) or "out")
    assert os.sched_getscheduler(0) == os.SCHED_OTHER
    assert call(1, 2) == "out" and seen == [(policy, (1, 2))]
    assert os.sched_getscheduler(0) == os.SCHED_OTHER
    with pytest.raises(ZeroDivisionError):   # restored when the call fails too
        host._yielding_to_workers(lambda: 1 / 0)()
    assert os.sched_getscheduler(0) == os.SCHED_OTHER


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux scheduling policies")
def test_host_caller_falls_back_to_batch_where_idle_is_one_way(monkeypatch):
    """Without the right to leave SCHED_IDLE (an unprivileged user, RLIMIT_NICE 0), the caller uses SCHED_BATCH."""
    from edgeq.targets import host

    real = os.sched_setscheduler

    def unprivileged(pid, policy, param):
        if policy == os.SCHED_OTHER and os.sched_getscheduler(0) == os.SCHED_IDLE:
            real(pid, os.SCHED_OTHER, param)   # undo, then refuse as the kernel would have
            raise PermissionError(1, "Operation not permitted")
        real(pid, policy, param)

    monkeypatch.setattr(os, "sched_setscheduler", unprivileged)
    host._waiting_policy.cache_clear()
    try:
        assert host._waiting_policy() == os.SCHED_BATCH
    finally:
        host._waiting_policy.cache_clear()

def _anon_huge_kb() -> int:
    return sum(int(ln.split()[1]) for ln in Path("/proc/self/smaps").read_text().splitlines()
               if ln.startswith("AnonHugePages:"))


def _advised_kb() -> list[int]:
    """The sizes of this process's mappings advised for huge pages (VmFlags hg)."""
    sizes, size = [], 0
    for ln in Path("/proc/self/smaps").read_text().splitlines():
        if ln.startswith("Size:"):
            size = int(ln.split()[1])
        elif ln.startswith("VmFlags:") and " hg" in ln:
            sizes.append(size)
    return sizes


@pytest.mark.skipif(not Path("/sys/kernel/mm/transparent_hugepage/enabled").exists()
                    or "[never]" in Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text(),
                    reason="transparent huge pages: Linux, where they are not turned off")
def test_host_module_weights_lie_in_huge_pages(tmp_path):
    """The host target loads a module into transparent huge pages (madvise), where its kernels read the weights in
    place (docs/profiling.md): a matmul with 6 MB of constant weights runs bit-exact from it, a mapping at least as
    large as the module is advised for huge pages, and the kernel has backed at least 4 MB of it with them (it
    compacts memory for advised mappings, unless the defrag setting says otherwise)."""
    from edgeq.pipeline.compile import compile_input
    from edgeq.targets.host import HostTarget

    rng = np.random.default_rng(0)
    k, n = 4096, 1536
    w = rng.integers(-128, 128, size=(k, n), dtype=np.int8)
    x = rng.integers(-128, 128, size=(1, k), dtype=np.int8)
    (tmp_path / "m.mlir").write_text(f"""
util.func public @main(%x: tensor<1x{k}xi8>) -> tensor<1x{n}xi32> {{
  %w = arith.constant dense<"0x{w.tobytes().hex().upper()}"> : tensor<{k}x{n}xi8>
  %z = arith.constant 0 : i32
  %e = tensor.empty() : tensor<1x{n}xi32>
  %f = linalg.fill ins(%z : i32) outs(%e : tensor<1x{n}xi32>) -> tensor<1x{n}xi32>
  %y = linalg.matmul ins(%x, %w : tensor<1x{k}xi8>, tensor<{k}x{n}xi8>) outs(%f : tensor<1x{n}xi32>) -> tensor<1x{n}xi32>
  util.return %y : tensor<1x{n}xi32>
}}""")
    target = HostTarget()
    compile_input(tmp_path / "m.mlir", target.spec.compile_flags(), tmp_path / "m.vmfb")
    before, advised = _anon_huge_kb(), len(_advised_kb())
    fn = target.load(tmp_path / "m.vmfb")
    grown = _anon_huge_kb() - before
    y = np.asarray(fn(x).to_host())
    assert np.array_equal(y, x.astype(np.int32) @ w.astype(np.int32))
    assert len(_advised_kb()) > advised and max(_advised_kb()) * 1024 >= (tmp_path / "m.vmfb").stat().st_size
    defrag = Path("/sys/kernel/mm/transparent_hugepage/defrag")
    if not defrag.exists() or re.search(r"\[(always|madvise|defer\+madvise)\]", defrag.read_text()):
        assert grown >= 4096, f"{grown} kB more in huge pages"


def test_host_run_names_inputs_it_rejects(tmp_path):
    """An input of the wrong dtype or shape, or a function the module lacks, is an EdgeqError that names the
    complaint and the fix, not a traceback from the VM; the runner copies new inputs into its buffers at each
    call."""
    from edgeq.errors import EdgeqError
    from edgeq.pipeline.compile import compile_input
    from edgeq.targets.host import HostTarget

    (tmp_path / "m.mlir").write_text("""
util.func public @main(%x: tensor<2x3xi8>) -> tensor<2x3xi32> {
  %e = tensor.empty() : tensor<2x3xi32>
  %y = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>],
                       iterator_types = ["parallel", "parallel"]} ins(%x : tensor<2x3xi8>) outs(%e : tensor<2x3xi32>) {
  ^bb0(%a: i8, %o: i32):
    %w = arith.extsi %a : i8 to i32
    %s = arith.muli %w, %w : i32
    linalg.yield %s : i32
  } -> tensor<2x3xi32>
  util.return %y : tensor<2x3xi32>
}""")
    target = HostTarget()
    compile_input(tmp_path / "m.mlir", target.spec.compile_flags(), tmp_path / "m.vmfb")
    x = np.arange(-3, 3, dtype=np.int8).reshape(2, 3)
    call = target.runner(tmp_path / "m.vmfb", [x])
    assert np.array_equal(call()[0], x.astype(np.int32) ** 2)
    x[0, 0] = 11   # the same array, changed: the next call reads it again
    assert call()[0][0, 0] == 121
    for bad, complaint in ((x.astype(np.float32), "element type mismatch"), (x[:1], "shape dimension 0 mismatch")):
        with pytest.raises(EdgeqError, match=f"{complaint}.*fix: pass arrays of the shapes and dtypes"):
            target.run(tmp_path / "m.vmfb", [bad])
    with pytest.raises(EdgeqError, match="m.vmfb has no function nope; fix: call one of main"):
        target.runner(tmp_path / "m.vmfb", [x], "nope")
