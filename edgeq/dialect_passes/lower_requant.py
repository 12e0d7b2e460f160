"""Lower requantization chains to one fused dyadic multiply-shift with saturation.

torch exports `clamp(((acc.i64 * b + 2^(c-1)) >> c) + zp, lo, hi).i8` (quant/dyadic.py) as seven
elementwise generics, each materialising an i64 tensor. They become one generic reading the i32
accumulator and an i32 multiplier, with i64 only in registers:

  %y = linalg.generic ins(%acc : i32, %b : i32) outs(i8) {
    %p = arith.muli (extsi %acc), (extsi %b) : i64      // LLVM: vpmuldq (x86), smull (arm64)
    %q = clamp((%p + 2^(c-1)) >>s c, lo - zp, hi - zp)  // saturate before narrowing
    trunci (trunci %q : i32 + zp) : i8 }

Exact: the same operations in the same order, with the zero point moved past the clamp. b < 2^31 by
construction, so its i64 constant narrows to i32 (a generic IREE folds at compile time). Chains that
differ in any step (another rounding term, a non-constant shift) are left alone.

On the Vulkan target edgeq-emulate-i64 then rewrites the i64 product and shift as pairs of i32 words.
"""
from __future__ import annotations

from dataclasses import dataclass

from iree.compiler import ir
from iree.compiler.dialects import arith, linalg, tensor

from edgeq.dialect_passes._match import body_ops, defining_op, erase_if_dead, int_width, is_elementwise, single_cast

ARGUMENT = "edgeq-lower-requant"


@dataclass
class _Chain:
    acc: ir.Value               # the i32 accumulator
    b: ir.Value                 # i64 multiplier tensor, read through b_map
    b_map: ir.Attribute
    c: int
    zero_point: int
    lo: int
    hi: int
    ops: list[ir.Operation]     # extsi ... trunci, in order


def _only_user(op: ir.Operation) -> ir.Operation | None:
    uses = list(op.results[0].uses)
    if len(uses) != 1:
        return None
    owner = uses[0].owner
    return owner.operation if hasattr(owner, "operation") else owner


def _const(v: ir.Value) -> int | None:
    op = defining_op(v)
    if op is None or op.name != "arith.constant" or not isinstance(op.attributes["value"], ir.IntegerAttr):
        return None
    return op.attributes["value"].value


def _scalar_step(op: ir.Operation | None, names: tuple[str, ...]) -> list[int] | None:
    """Constants of a unary elementwise generic whose body is `names` applied in turn with constant operands."""
    if op is None or not is_elementwise(op) or len(op.operands) != 2:
        return None
    ops = body_ops(op)
    if [o.name for o in ops[:-1]] != list(names):
        return None
    consts, prev = [], op.regions[0].blocks[0].arguments[0]
    for o in ops[:-1]:
        if o.operands[0] != prev:
            return None
        k = _const(o.operands[1])
        if k is None:
            return None
        consts.append(k)
        prev = o.results[0]
    return consts


def _match(ext: ir.Operation) -> _Chain | None:
    if single_cast(ext, "arith.extsi") != (32, 64):
        return None
    mul = _only_user(ext)
    if mul is None or not is_elementwise(mul) or len(mul.operands) != 3:
        return None
    body = body_ops(mul)
    args = mul.regions[0].blocks[0].arguments
    if [o.name for o in body] != ["arith.muli", "linalg.yield"] or list(body[0].operands) != [args[0], args[1]] \
            or mul.operands[0] != ext.results[0]:
        return None
    chain, op = [ext, mul], _only_user(mul)
    steps = {}
    for key, names, optional in (("round", ("arith.addi",), False), ("shift", ("arith.shrsi",), False),
                                 ("zp", ("arith.addi",), True), ("clamp", ("arith.maxsi", "arith.minsi"), False)):
        consts = _scalar_step(op, names)
        if consts is None:
            if optional:
                continue
            return None
        steps[key] = consts
        chain.append(op)
        op = _only_user(op)
    if single_cast(op, "arith.trunci") != (64, 8):
        return None
    chain.append(op)
    c = steps["shift"][0]
    if not 1 <= c <= 62 or steps["round"][0] != 1 << (c - 1):
        return None
    maps = list(mul.attributes["indexing_maps"])
    lo, hi = steps["clamp"]
    if not (-128 <= lo <= hi <= 127):
        return None
    return _Chain(ext.operands[0], mul.operands[1], maps[1], c, steps.get("zp", [0])[0], lo, hi, chain)


def _generic(inputs: list[ir.Value], maps: list[ir.Attribute], iterators: ir.Attribute,
             result: ir.RankedTensorType, body) -> ir.Value:
    empty = tensor.empty(result.shape, result.element_type)
    op = linalg.GenericOp([result], inputs, [empty], ir.ArrayAttr.get(maps), iterators)
    block = op.regions[0].blocks.append(*[v.type.element_type for v in inputs], result.element_type)
    with ir.InsertionPoint(block):
        linalg.YieldOp([body(*block.arguments[:-1])])
    return op.results[0]


def _rewrite(ch: _Chain) -> None:
    last = ch.ops[-1]
    i32 = ir.IntegerType.get_signless(32)
    mul = ch.ops[1]
    iterators = mul.attributes["iterator_types"]
    identity = list(mul.attributes["indexing_maps"])[0]
    out_type = last.results[0].type

    def k(v: int, t=i32):
        return arith.constant(t, v)

    with ir.InsertionPoint(last), last.location:
        b_type = ir.RankedTensorType.get(ch.b.type.shape, i32)
        b_id = ir.AffineMapAttr.get(ir.AffineMap.get_identity(b_type.rank))
        b_par = ir.ArrayAttr.get([ir.Attribute.parse("#linalg.iterator_type<parallel>")] * b_type.rank)
        # b < 2^31 by construction (quant/dyadic.py); a separate generic on the constant is folded by IREE.
        b32 = _generic([ch.b], [b_id, b_id], b_par, b_type, lambda x: arith.trunci(i32, x))

        def requant(acc, b):
            # sext * sext in i64: LLVM selects vpmuldq (x86) / smull (arm64) for it
            i64 = ir.IntegerType.get_signless(64)
            p = arith.muli(arith.extsi(i64, acc), arith.extsi(i64, b))
            q = arith.shrsi(arith.addi(p, k(1 << (ch.c - 1), i64)), k(ch.c, i64))
            q = arith.trunci(i32, arith.minsi(arith.maxsi(q, k(ch.lo - ch.zero_point, i64)),
                                              k(ch.hi - ch.zero_point, i64)))
            q = arith.addi(q, k(ch.zero_point)) if ch.zero_point else q
            return arith.trunci(ir.IntegerType.get_signless(8), q)

        new = _generic([ch.acc, b32], [identity, ch.b_map, identity], iterators, out_type, requant)
    last.results[0].replace_all_uses_with(new)
    for op in reversed(ch.ops):
        op.erase()
    erase_if_dead(defining_op(ch.b))


def run(module: ir.Operation, pass_) -> None:
    chains: list[_Chain] = []

    def collect(op):
        op = op.operation if hasattr(op, "operation") else op
        if op.name == "linalg.generic":
            ch = _match(op)
            if ch is not None:
                chains.append(ch)
        return ir.WalkResult.ADVANCE

    module.walk(collect)
    for ch in chains:
        _rewrite(ch)
