"""Sign-extend every i8 tensor to i32 in a dispatch of its own (contractions then read i32 operands).

For the Vulkan target. IREE 3.13's SPIR-V backend miscompiles a dispatch that sign-extends an i8 tensor it
loads with vectors wider than 32 bits (the operands of a matmul-like dispatch: 1x1 convolutions, matmuls with
M > 1, and any i8 tensor fused into such a dispatch, e.g. a residual input): the loads become i32 vectors
bitcast to i8, and MLIR's RewriteExtOfBitCast<arith.extsi> rewrites extsi(bitcast) into masks and logical
shifts, which zero-extend (docs/vulkan.md). An elementwise extension on its own loads 32 bits at a time and is
exact (given the 8-bit storage the Vulkan target asks for). So:

  %y = linalg.conv_2d_nchw_fchw ins(%x, %w : i8, i8) outs(%acc : i32)
becomes
  %x32 = util.optimization_barrier (linalg.generic {extsi} ins(%x : i8) -> i32)
  %w32 = util.optimization_barrier (linalg.generic {extsi} ins(%w : i8) -> i32)
  %y   = linalg.conv_2d_nchw_fchw ins(%x32, %w32 : i32, i32) outs(%acc : i32)

and every other elementwise extsi i8 -> i32 generic gets a barrier on its result. The barrier keeps IREE
from cloning the extension into its consumer's dispatch; IREE may still fuse it into its producer, which
then writes i32. For a constant weight IREE evaluates the extension at compile time (the module stores i32
weights). Exact: the same values, in wider storage.

A quantized contraction (linalg's `_q` ops, from TOSA) also gets a barrier on its result: fused with TOSA's
requantization (emulated i64) into one matmul-like dispatch, a 1x1 convolution comes out wrong (docs/vulkan.md,
defect 5).
"""
from __future__ import annotations

from iree.compiler import ir
from iree.compiler.dialects import arith, linalg, tensor

from edgeq.dialect_passes._match import int_width, single_cast
from edgeq.dialect_passes.raise_int_contraction import _CONTRACTIONS

ARGUMENT = "edgeq-isolate-i8-extensions"
# The quantized contractions (zero points as operands) of models imported from TFLite through TOSA
_QUANTIZED = {f"linalg.{name}": getattr(linalg, name) for name in (
    "conv_2d_nhwc_hwcf_q", "depthwise_conv_2d_nhwc_hwc_q", "depthwise_conv_2d_nhwc_hwcm_q", "quantized_matmul")}
_OPS = {**_CONTRACTIONS, **_QUANTIZED}
_BARRIER = "util.optimization_barrier"


def _users(v: ir.Value) -> list[ir.Operation]:
    return [u.owner.operation if hasattr(u.owner, "operation") else u.owner for u in v.uses]


def _barrier(v: ir.Value) -> ir.Value:
    return ir.Operation.create(_BARRIER, results=[v.type], operands=[v]).results[0]


def _widen(v: ir.Value) -> ir.Value:
    """barrier(extsi(v)) for an i8 tensor v."""
    i32 = ir.IntegerType.get_signless(32)
    shape = v.type.shape
    ident = ir.AffineMapAttr.get(ir.AffineMap.get_identity(len(shape)))
    par = ir.ArrayAttr.get([ir.Attribute.parse("#linalg.iterator_type<parallel>")] * len(shape))
    result = ir.RankedTensorType.get(shape, i32)
    gen = linalg.GenericOp([result], [v], [tensor.empty(shape, i32)], ir.ArrayAttr.get([ident, ident]), par)
    block = gen.regions[0].blocks.append(v.type.element_type, i32)
    with ir.InsertionPoint(block):
        linalg.YieldOp([arith.extsi(i32, block.arguments[0])])
    return _barrier(gen.results[0])


def _widen_contraction(op: ir.Operation) -> None:
    *ins, init = op.operands      # lhs, rhs (and the zero points of a quantized op)
    with ir.InsertionPoint(op), op.location:
        ins = [_widen(v) if i < 2 and int_width(v.type) == 8 else v for i, v in enumerate(ins)]
        kwargs = {k: [int(x) for x in op.attributes[k]] for k in ("strides", "dilations") if k in op.attributes}
        new = _OPS[op.name](*ins, outs=[init], **kwargs)
        if op.name in _QUANTIZED:
            new = _barrier(new)
    op.results[0].replace_all_uses_with(new)
    op.erase()


def _isolate_extension(op: ir.Operation) -> None:
    result = op.results[0]
    if all(u.name == _BARRIER for u in _users(result)):
        return
    with ir.InsertionPoint.after(op), op.location:
        isolated = _barrier(result)
    result.replace_all_uses_except(isolated, isolated.owner.operation)


def run(module: ir.Operation, pass_) -> None:
    contractions: list[ir.Operation] = []
    extensions: list[ir.Operation] = []

    def collect(op):
        op = op.operation if hasattr(op, "operation") else op
        if op.name in _OPS and int_width(op.results[0].type) == 32 \
                and 8 in (int_width(op.operands[0].type), int_width(op.operands[1].type)):
            contractions.append(op)
        elif single_cast(op, "arith.extsi") == (8, 32):
            extensions.append(op)
        return ir.WalkResult.ADVANCE

    module.walk(collect)
    for op in extensions:
        _isolate_extension(op)
    for op in contractions:
        _widen_contraction(op)
