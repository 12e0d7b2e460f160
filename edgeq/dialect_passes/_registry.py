"""The one file that knows the Python-pass API of the MLIR bindings (PassManager.add(callable))."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class PassInfo:
    argument: str
    run: Callable           # run(op: ir.Operation, pass_) -> None
    description: str


def passes() -> dict[str, PassInfo]:
    """Every edgeq pass by its command-line argument (without the leading --)."""
    from edgeq.dialect_passes import (conv_kernel, conv_kernel_avx2, depthwise_taps, depthwise_to_nhwc, emulate_i64,
                                      fuse_i64, isolate_i8_extensions, lower_requant, raise_int_contraction)

    return {p.ARGUMENT: PassInfo(p.ARGUMENT, p.run, (p.__doc__ or "").strip().splitlines()[0])
            for p in (raise_int_contraction, lower_requant, fuse_i64, emulate_i64, isolate_i8_extensions,
                      depthwise_to_nhwc, depthwise_taps, conv_kernel, conv_kernel_avx2)}


def run_pipeline(text: str, names: list[str]) -> str:
    """Parse `text`, run the named passes on the module (verified after each), print it back."""
    from iree.compiler import ir
    from iree.compiler.passmanager import PassManager

    table = passes()
    with ir.Context():
        module = ir.Module.parse(text)
        if names:
            pm = PassManager("builtin.module")
            for name in names:
                info = table[name]
                pm.add(info.run, name=name, argument=info.argument, description=info.description)
            pm.run(module.operation)
        return str(module)
