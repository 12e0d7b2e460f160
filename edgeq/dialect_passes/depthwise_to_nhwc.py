"""Compute NCHW depthwise convolutions channels-last: transpose in, linalg.depthwise_conv_2d_nhwc_hwc, transpose out.

For the Vulkan target. IREE 3.13's SPIR-V backend lowers linalg.depthwise_conv_2d_nchw_chw (SPIRVBaseDistribute)
with its zero fill and its accumulation distributed over different threads and no barrier between them:
a thread can zero an output another thread has already accumulated (on lavapipe a quarter of the outputs
come back 0; docs/vulkan.md). The NHWC form takes another lowering, exact there. The weight transpose is
a constant expression that IREE folds; the activation transposes are data movement only, so the result is
the same i32 sums.
"""
from __future__ import annotations

from iree.compiler import ir
from iree.compiler.dialects import linalg, tensor

from edgeq.dialect_passes._match import ops_named

ARGUMENT = "edgeq-depthwise-to-nhwc"


def _transpose(v: ir.Value, perm: list[int]) -> ir.Value:
    shape = [v.type.shape[p] for p in perm]
    op = linalg.transpose(v, outs=[tensor.empty(shape, v.type.element_type)], permutation=perm)
    return op.results[0] if isinstance(op, ir.OpView) else op


def _rewrite(op: ir.Operation) -> None:
    x, w, init = op.operands
    kwargs = {k: [int(s) for s in op.attributes[k]] for k in ("strides", "dilations") if k in op.attributes}
    with ir.InsertionPoint(op), op.location:
        y = linalg.depthwise_conv_2d_nhwc_hwc(_transpose(x, [0, 2, 3, 1]), _transpose(w, [1, 2, 0]),
                                              outs=[_transpose(init, [0, 2, 3, 1])], **kwargs)
        y = _transpose(y, [0, 3, 1, 2])
    op.results[0].replace_all_uses_with(y)
    op.erase()


def run(module: ir.Operation, pass_) -> None:
    for op in ops_named(module, "linalg.depthwise_conv_2d_nchw_chw"):
        _rewrite(op)
