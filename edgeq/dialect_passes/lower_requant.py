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

`run(..., i32_only=True)` (edgeq-lower-requant-i32, for the Vulkan target) builds the same function with
no i64 value at all: the 64-bit product as an (high, low) pair of i32 words, the rounding
term added with a carry, the shift and the saturation done on the pair. IREE's SPIR-V backend emulates i64
on targets without Int64 and fails to legalize it once the elementwise dispatch is vectorized
(vector<4xi64>). The CPU targets keep the i64 body (LLVM selects one widening multiply for it; see
docs/vulkan.md).
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


def _mul_extended(a: ir.Value, b: ir.Value, k) -> tuple[ir.Value, ir.Value]:
    """(low, high) i32 words of the signed 64-bit product a * b, in plain i32 arithmetic.

    What arith.mulsi_extended computes; IREE's SPIR-V backend does not unroll that op to 4-wide vectors
    (vector.from_elements of 8 x i32 fails to legalize), so the product is built from 16-bit halves: the
    unsigned 32 x 32 -> 64 product, then the signed high word high - (a < 0 ? b : 0) - (b < 0 ? a : 0)."""
    m16, s16 = k(0xFFFF), k(16)
    al, ah, bl, bh = arith.andi(a, m16), arith.shrui(a, s16), arith.andi(b, m16), arith.shrui(b, s16)
    ll, lh, hl, hh = arith.muli(al, bl), arith.muli(al, bh), arith.muli(ah, bl), arith.muli(ah, bh)
    mid = arith.addi(arith.addi(arith.shrui(ll, s16), arith.andi(lh, m16)), arith.andi(hl, m16))
    low = arith.ori(arith.andi(ll, m16), arith.shli(mid, s16))
    high = arith.addi(arith.addi(hh, arith.shrui(lh, s16)), arith.addi(arith.shrui(hl, s16), arith.shrui(mid, s16)))
    for x, y in ((a, b), (b, a)):
        negative = arith.cmpi(arith.CmpIPredicate.slt, x, k(0))
        high = arith.subi(high, arith.select(negative, y, k(0)))
    return low, high


def _requant_i32(acc: ir.Value, b: ir.Value, c: int, lo: int, hi: int) -> ir.Value:
    """clamp((acc * b + 2^(c-1)) >>s c, lo, hi) on i32 values, exact for any i32 acc and b.

    |acc * b| <= 2^62, so the high word (|high| <= 2^30) absorbs the rounding term and its carry without
    overflow. For c >= 32 the result is the shifted high word, which fits in i32; for c < 32 the 64-bit
    result is rebuilt from both words and saturated when it does not fit in i32."""
    i32 = ir.IntegerType.get_signless(32)

    def k(v: int) -> ir.Value:
        return arith.constant(i32, v - (1 << 32) if v >= 1 << 31 else v)

    def clamp(v: ir.Value) -> ir.Value:
        return arith.minsi(arith.maxsi(v, k(lo)), k(hi))

    low, high = _mul_extended(acc, b, k)
    r_lo, r_hi = (0, 1 << (c - 33)) if c >= 33 else (1 << (c - 1), 0)
    t_low = arith.addi(low, k(r_lo)) if r_lo else low
    t_high = arith.addi(high, k(r_hi)) if r_hi else high
    if r_lo:  # carry out of the low word (unsigned wrap-around)
        carry = arith.extui(i32, arith.cmpi(arith.CmpIPredicate.ult, t_low, low))
        t_high = arith.addi(t_high, carry)
    if c >= 32:
        return clamp(arith.shrsi(t_high, k(c - 32)) if c > 32 else t_high)
    q_low = arith.ori(arith.shrui(t_low, k(c)), arith.shli(t_high, k(32 - c)))
    q_high = arith.shrsi(t_high, k(c))
    fits = arith.cmpi(arith.CmpIPredicate.eq, q_high, arith.shrsi(q_low, k(31)))
    negative = arith.cmpi(arith.CmpIPredicate.slt, q_high, k(0))
    return arith.select(fits, clamp(q_low), arith.select(negative, k(lo), k(hi)))


def _rewrite(ch: _Chain, i32_only: bool = False) -> None:
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

        def requant_i32(acc, b):
            q = _requant_i32(acc, b, ch.c, ch.lo - ch.zero_point, ch.hi - ch.zero_point)
            q = arith.addi(q, k(ch.zero_point)) if ch.zero_point else q
            return arith.trunci(ir.IntegerType.get_signless(8), q)

        def requant(acc, b):
            # sext * sext in i64: LLVM selects vpmuldq (x86) / smull (arm64) for it
            i64 = ir.IntegerType.get_signless(64)
            p = arith.muli(arith.extsi(i64, acc), arith.extsi(i64, b))
            q = arith.shrsi(arith.addi(p, k(1 << (ch.c - 1), i64)), k(ch.c, i64))
            q = arith.trunci(i32, arith.minsi(arith.maxsi(q, k(ch.lo - ch.zero_point, i64)),
                                              k(ch.hi - ch.zero_point, i64)))
            q = arith.addi(q, k(ch.zero_point)) if ch.zero_point else q
            return arith.trunci(ir.IntegerType.get_signless(8), q)

        new = _generic([ch.acc, b32], [identity, ch.b_map, identity], iterators, out_type,
                       requant_i32 if i32_only else requant)
    last.results[0].replace_all_uses_with(new)
    for op in reversed(ch.ops):
        op.erase()
    erase_if_dead(defining_op(ch.b))


def run(module: ir.Operation, pass_, i32_only: bool = False) -> None:
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
        _rewrite(ch, i32_only)
