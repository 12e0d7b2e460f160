"""edgeq's own CPU kernels, C sources compiled by the Zig toolchain's clang (PyPI `ziglang`) into freestanding
objects that IREE links into its executables (dialect_passes/conv_kernel.py).

Objects are cached by their source, flags and compiler version; the IR names them by their path in the cache.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from edgeq._cache import cache_dir
from edgeq.errors import EdgeqError

SOURCE = Path(__file__).with_name("conv2d_u8s8_avx512vnni.c")
# x86-64 v4 (AVX-512 F/BW/CD/DQ/VL) plus VNNI and VBMI, freestanding: what IREE's embedded ELF loader accepts.
FLAGS = ("-target", "x86_64-freestanding-none", "-mcpu=x86_64_v4+avx512vnni+avx512vbmi", "-O2", "-g0", "-fPIC",
         "-ffreestanding", "-fno-sanitize=all", "-fno-stack-protector")
TARGET = '#hal.executable.target<"llvm-cpu", "embedded-elf-x86_64", {}>'


def _zig_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ziglang")
    except PackageNotFoundError:
        raise EdgeqError("the ziglang package (the C compiler for edgeq's kernels) is not installed",
                         "run scripts/install.sh, or pip install ziglang") from None


def kernel_object() -> Path:
    """The kernels (conv, pack, depthwise, linear) compiled for x86-64 with AVX-512 VNNI and VBMI, in the cache."""
    key = hashlib.sha256(SOURCE.read_bytes() + " ".join(FLAGS).encode() + _zig_version().encode()).hexdigest()[:24]
    path = cache_dir("kernels") / f"{SOURCE.stem}-{key}.o"
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.tmp")   # compile jobs in parallel processes may build it at once
        proc = subprocess.run([sys.executable, "-m", "ziglang", "cc", *FLAGS, "-c", str(SOURCE), "-o", str(tmp)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise EdgeqError(f"compiling {SOURCE.name} failed: {proc.stderr.strip()[:500]}",
                             "check the ziglang installation (python -m ziglang version)")
        tmp.replace(path)
    return path


def object_attribute() -> str:
    """The kernel object as an entry of #hal.executable.objects. By path: IREE 3.13 links an object given as
    bytes only without its ukernels, and crashes with them (ExecutableObjectAttr::filterObjects)."""
    return f'{TARGET} = [#hal.executable.object<{{path = "{kernel_object()}"}}>]'
