"""edgeq's own CPU kernels, C sources compiled by the Zig toolchain's clang (PyPI `ziglang`) into freestanding
objects that IREE links into its executables (dialect_passes/conv_kernel.py), with the glue that runs their
workgroups on edgeq's thread pool. winograd_transforms.h holds what the two sets' Winograd kernels share. pool.c is
that pool, the host runtime's: a shared library that IREE loads as an executable plugin (targets/host.py).

Objects are cached by their source, the headers, flags and compiler version; the IR names them by their path in
the cache.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from edgeq._cache import cache_dir
from edgeq.errors import EdgeqError

VNNI, AVX2 = "avx512vnni", "avx2"   # the instruction sets edgeq has kernels for (targets/host.py's kernel_isa)
SOURCES = {VNNI: Path(__file__).with_name("conv2d_u8s8_avx512vnni.c"),
           AVX2: Path(__file__).with_name("conv2d_u8s8_avx2.c")}
# x86-64 v4 (AVX-512 F/BW/CD/DQ/VL) plus VNNI and VBMI, or x86-64 v3 (AVX2, FMA, BMI2); freestanding: what IREE's
# embedded ELF loader accepts.
CPUS = {VNNI: "x86_64_v4+avx512vnni+avx512vbmi", AVX2: "x86_64_v3"}
FLAGS = ("-target", "x86_64-freestanding-none", "-O2", "-g0", "-fPIC", "-ffreestanding", "-fno-sanitize=all",
         "-fno-stack-protector")
TARGET = '#hal.executable.target<"llvm-cpu", "embedded-elf-x86_64", {}>'
POOL = Path(__file__).with_name("pool.c")
POOL_FLAGS = ("-target", "x86_64-linux-gnu", "-O2", "-g0", "-fPIC", "-shared", "-lpthread")


def _zig_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ziglang")
    except PackageNotFoundError:
        raise EdgeqError("the ziglang package (the C compiler for edgeq's kernels) is not installed",
                         "run scripts/install.sh, or pip install ziglang") from None


def kernel_object(isa: str = VNNI) -> Path:
    """The kernels for `isa` (VNNI: conv, pack, depthwise, linear, Winograd, max pooling; AVX2: the rows, 1x1 and
    patch convs, pack, depthwise, Winograd, max pooling, linear) compiled for it, in the cache."""
    source = SOURCES[isa]
    headers = b"".join(h.read_bytes() for h in sorted(source.parent.glob("*.h")))   # what the sources include
    return _compiled(source.stem, source, source.read_bytes() + headers, (*FLAGS, f"-mcpu={CPUS[isa]}", "-c"), ".o")


def glue_object(name: str, source: str, isa: str = VNNI) -> Path:
    """`source`, C that calls the kernels (dialect_passes/conv_kernel.py's pool glue), compiled like them; the C
    file is kept beside the object in the cache."""
    path = cache_dir("kernels") / f"{name}-{hashlib.sha256(source.encode()).hexdigest()[:24]}.c"
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(source)
        tmp.replace(path)
    return _compiled(name, path, source.encode(), (*FLAGS, f"-mcpu={CPUS[isa]}", "-c"), ".o")


def pool_plugin() -> Path:
    """The host runtime's thread pool (pool.c), a shared library for IREE's --executable_plugin."""
    return _compiled(POOL.stem, POOL, POOL.read_bytes(), POOL_FLAGS, ".so")


def _compiled(name: str, source: Path, content: bytes, flags: tuple[str, ...], suffix: str) -> Path:
    """`source` (whose text and includes are `content`) compiled with `flags` by the Zig toolchain's clang, cached
    as name-<key><suffix>, the key hashing the content, the flags and the compiler's version."""
    key = hashlib.sha256(content + " ".join(flags).encode() + _zig_version().encode()).hexdigest()[:24]
    path = cache_dir("kernels") / f"{name}-{key}{suffix}"
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.tmp")   # compile jobs in parallel processes may build it at once
        proc = subprocess.run([sys.executable, "-m", "ziglang", "cc", *flags, str(source), "-o", str(tmp)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise EdgeqError(f"compiling {source.name} failed: {proc.stderr.strip()[:500]}",
                             "check the ziglang installation (python -m ziglang version)")
        tmp.replace(path)
    return path


def object_attribute(isa: str = VNNI, *glue: Path) -> str:
    """The kernel object and the `glue` objects as an entry of #hal.executable.objects. By path: IREE 3.13 links an
    object given as bytes only without its ukernels, and crashes with them (ExecutableObjectAttr::filterObjects)."""
    objects = ", ".join(f'#hal.executable.object<{{path = "{p}"}}>' for p in (kernel_object(isa), *glue))
    return f"{TARGET} = [{objects}]"
