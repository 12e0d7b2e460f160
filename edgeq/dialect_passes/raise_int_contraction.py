"""Raise integer conv/matmul on sign-extended i8 operands to linalg named ops with i8 inputs, i32 accumulation.

torch-mlir lowers an int32 conv (or matmul) to one on i32 operands with an i64 accumulator:

  %x32 = linalg.generic {extsi i8->i32} ins(%x : i8)    %w32 = linalg.generic {extsi i8->i32} ins(%w : i8)
  %acc = linalg.conv_2d_nchw_fchw ins(%x32, %w32) outs(%bias_i64)          -> i64
  %y   = linalg.generic {trunci i64->i32} ins(%acc)
becomes
  %y   = linalg.conv_2d_nchw_fchw ins(%x, %w : i8, i8) outs(%bias_i32)       -> i32

Exact for every input: truncating an i64 sum to i32 equals summing in wrap-around i32 (two's complement
arithmetic is a ring homomorphism), so no range analysis is needed. The i8 x i8 -> i32 form is what IREE's
data tiling and int8 ukernels (VNNI, dotprod, i8mm) match. Left alone: operands that are not sign
extensions of i8, or an i64 accumulator that something other than a truncation to i32 reads.
"""
from __future__ import annotations

from iree.compiler import ir
from iree.compiler.dialects import linalg, tensor

from edgeq.dialect_passes._match import defining_op, erase_if_dead, int_width, single_cast

ARGUMENT = "edgeq-raise-int-contraction"

_CONTRACTIONS = {
    "linalg.conv_2d_nchw_fchw": linalg.conv_2d_nchw_fchw,
    "linalg.conv_2d_nhwc_hwcf": linalg.conv_2d_nhwc_hwcf,
    "linalg.depthwise_conv_2d_nchw_chw": linalg.depthwise_conv_2d_nchw_chw,
    "linalg.depthwise_conv_2d_nhwc_hwc": linalg.depthwise_conv_2d_nhwc_hwc,
    "linalg.matmul": linalg.matmul,
    "linalg.batch_matmul": linalg.batch_matmul,
}


def _narrow_operand(v: ir.Value) -> ir.Value | None:
    """The i8 value that `v` sign-extends, looking through reshapes and transposes (rebuilt on i8)."""
    op = defining_op(v)
    if op is None:
        return None
    cast = single_cast(op, "arith.extsi")
    if cast is not None:
        return op.operands[0] if cast[0] == 8 else None
    if op.name in ("tensor.collapse_shape", "tensor.expand_shape"):
        src = _narrow_operand(op.operands[0])
        if src is None:
            return None
        shape = v.type.shape
        result = ir.RankedTensorType.get(shape, src.type.element_type)
        builder = tensor.collapse_shape if op.name == "tensor.collapse_shape" else tensor.expand_shape
        if op.name == "tensor.collapse_shape":
            return builder(result, src, op.attributes["reassociation"])
        return builder(result, src, op.attributes["reassociation"], [], op.attributes["static_output_shape"])
    if op.name == "linalg.transpose":
        src = _narrow_operand(op.operands[0])
        if src is None:
            return None
        empty = tensor.empty(v.type.shape, src.type.element_type)
        perm = [int(p) for p in op.attributes["permutation"]]
        return linalg.transpose(src, outs=[empty], permutation=perm).results[0]
    return None


def _narrow_init(v: ir.Value) -> ir.Value | None:
    """An i32 accumulator init equal to the i64 one truncated: a broadcast of extsi(i32) or a fill."""
    op = defining_op(v)
    if op is None:
        return None
    i32 = ir.IntegerType.get_signless(32)
    shape = v.type.shape
    if op.name == "linalg.broadcast":
        src = defining_op(op.operands[0])
        if single_cast(src, "arith.extsi") is None or int_width(src.operands[0].type) != 32:
            return None
        dims = [int(d) for d in op.attributes["dimensions"]]
        return linalg.broadcast(src.operands[0], outs=[tensor.empty(shape, i32)], dimensions=dims)
    if op.name == "linalg.fill":
        const = defining_op(op.operands[0])
        if const is None or const.name != "arith.constant":
            return None
        value = const.attributes["value"].value
        if not -(1 << 31) <= value < 1 << 31:
            return None
        from iree.compiler.dialects import arith

        c = arith.constant(i32, value)
        return linalg.fill(c, outs=[tensor.empty(shape, i32)])
    return None


def _truncations(result: ir.Value) -> list[ir.Operation] | None:
    """The users of an i64 accumulator, if every one is an elementwise truncation to i32."""
    users = [u.owner.operation if hasattr(u.owner, "operation") else u.owner for u in result.uses]
    if not users or any(single_cast(u, "arith.trunci") != (64, 32) for u in users):
        return None
    return users


def _raise(op: ir.Operation) -> bool:
    acc_width = int_width(op.results[0].type)
    if acc_width not in (32, 64) or len(op.operands) != 3:
        return False
    truncs = _truncations(op.results[0]) if acc_width == 64 else []
    if truncs is None:
        return False
    with ir.InsertionPoint(op), op.location:
        lhs, rhs = _narrow_operand(op.operands[0]), _narrow_operand(op.operands[1])
        if lhs is None or rhs is None:
            return False  # anything built so far is dead and erased below
        init = _narrow_init(op.operands[2]) if acc_width == 64 else op.operands[2]
        if init is None:
            return False
        kwargs = {k: [int(x) for x in op.attributes[k]]
                  for k in ("strides", "dilations") if k in op.attributes}
        new = _CONTRACTIONS[op.name](lhs, rhs, outs=[init], **kwargs)
    for t in truncs:
        t.results[0].replace_all_uses_with(new)
        out_init = defining_op(t.operands[1])
        t.erase()
        erase_if_dead(out_init)
    if acc_width == 32:
        op.results[0].replace_all_uses_with(new)
    old_operands = [defining_op(v) for v in op.operands]
    op.erase()
    for p in old_operands:
        erase_if_dead(p)
    return True


def run(module: ir.Operation, pass_) -> None:
    found: list[ir.Operation] = []

    def collect(op):
        if op.name in _CONTRACTIONS:
            found.append(op.operation if hasattr(op, "operation") else op)
        return ir.WalkResult.ADVANCE

    module.walk(collect)
    for op in found:
        _raise(op)
