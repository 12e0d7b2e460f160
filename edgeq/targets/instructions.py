"""Which int8 dot-product instructions a module's code uses: IREE dumps the linked ELF of its executables,
llvm-objdump disassembles it, the mnemonics are counted.

Under qemu a time says nothing about a phone, so this is how an arm64 module shows that its int8 work reaches
sdot (dotprod) or smmla (i8mm); on x86 the VNNI vpdpbusd / vpdpwssd, or AVX2's vpmaddwd.
"""
from __future__ import annotations

import subprocess
import tempfile
from collections import Counter
from pathlib import Path

from edgeq.errors import EdgeqError
from edgeq.targets.base import TargetSpec, require_binary

DOT_PRODUCT = {
    "sdot": "arm64 dotprod: 4 s8 x s8 products per 32-bit lane",
    "udot": "arm64 dotprod: u8 x u8",
    "usdot": "arm64 i8mm: u8 x s8 dot product",
    "smmla": "arm64 i8mm: 2x8 by 8x2 s8 matrix multiply-accumulate (32 MACs)",
    "ummla": "arm64 i8mm: u8 matrix multiply-accumulate",
    "usmmla": "arm64 i8mm: u8 x s8 matrix multiply-accumulate",
    "vpdpbusd": "x86 VNNI: u8 x s8, 4 products per 32-bit lane",
    "vpdpwssd": "x86 VNNI: s16 x s16, 2 products per 32-bit lane",
    "vpmaddwd": "x86 AVX2: s16 x s16, 2 products per 32-bit lane, added after (edgeq's AVX2 kernels)",
}


def dot_product_counts(source: Path, flags: list[str], spec: TargetSpec) -> Counter:
    """How many of each DOT_PRODUCT instruction the module compiled from `source` (IREE input MLIR after edgeq's
    passes) with `flags` contains, summed over its executables."""
    from edgeq.pipeline.compile import compile_input

    objdump = require_binary("llvm-objdump", "llvm")
    with tempfile.TemporaryDirectory(prefix="edgeq-disasm-") as tmp:
        compile_input(source, flags, Path(tmp) / "module.vmfb", (f"--iree-hal-dump-executable-files-to={tmp}",))
        binaries = sorted(Path(tmp).glob("*.so"))
        if not binaries:
            raise EdgeqError(f"{spec.name} modules hold no CPU code to disassemble",
                             "count instructions of host or arm64 modules")
        mattr = [f"--mattr={spec.features}"] if spec.features else []   # decode the extensions compiled for
        counts = Counter()
        for binary in binaries:
            text = subprocess.run([objdump, "-d", "--no-show-raw-insn", *mattr, str(binary)],
                                  capture_output=True, text=True, check=True).stdout
            for line in text.splitlines():
                fields = line.split("\t")
                if len(fields) > 1 and (mnemonic := fields[1].split(" ")[0]) in DOT_PRODUCT:
                    counts[mnemonic] += 1
    return counts
