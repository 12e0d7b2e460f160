"""Rewrite the i64 arithmetic inside linalg bodies as pairs of i32 words (low, high), with no i64 value left.

For the Vulkan target, whose baseline (vp_android_baseline_2022) has no Int64: IREE's own i64 emulation on SPIR-V
keeps each i64 as a vector<2xi32> and fails to legalize it once the dispatch is vectorized (docs/vulkan.md, defect
3). Here each i64 becomes two scalar i32 values that IREE vectorizes like any other i32. Where i64 comes from:
TOSA's RESCALE (apply_scale: a 32 x 32 -> 64 product, a rounding term, TFLite's double rounding, a per-channel
shift) in models imported from TFLite, and edgeq's own fused requantization (edgeq-lower-requant).

Exact, two's complement modulo 2^64 like the i64 ops it replaces:
  addi/subi   word-wise with the carry (borrow) from the low word: an unsigned compare
  muli        low x low as an unsigned 32 x 32 -> 64 product from 16-bit halves, plus both cross products
              into the high word (arith.mulsi_extended is not legalized by either backend)
  shifts      by the amount's low word, selecting between the < 32 and >= 32 forms; every i32 shift amount
              is masked to 0..31, so no intermediate shift is out of range
  cmpi, maxsi, minsi, select, extsi, extui, trunci, constants
  index_cast  to index from the low word: torch computes gather indices in i64, but they index tensors, whose
              sizes are below 2^31, so the low word is the index
A body with any other op on i64 values, or with i64 block arguments (i64 tensors), is left unchanged.
"""
from __future__ import annotations

from iree.compiler import ir
from iree.compiler.dialects import arith

from edgeq.dialect_passes._match import defining_op, erase_if_dead, int_width

ARGUMENT = "edgeq-emulate-i64"

_P = arith.CmpIPredicate
# For a signed/unsigned order predicate on (high, low): the strict form on high words, the predicate on low words
_ORDER = {"slt": ("slt", "ult"), "sle": ("slt", "ule"), "sgt": ("sgt", "ugt"), "sge": ("sgt", "uge"),
          "ult": ("ult", "ult"), "ule": ("ult", "ule"), "ugt": ("ugt", "ugt"), "uge": ("ugt", "uge")}
_PREDICATES = ["eq", "ne", "slt", "sle", "sgt", "sge", "ult", "ule", "ugt", "uge"]   # arith.cmpi's enum order
_SUPPORTED = {"arith.constant", "arith.extsi", "arith.extui", "arith.trunci", "arith.addi", "arith.subi", "arith.muli",
              "arith.shli", "arith.shrui", "arith.shrsi", "arith.maxsi", "arith.minsi", "arith.select", "arith.cmpi",
              "arith.index_cast"}


class _Words:
    """Builds i32 arithmetic at the current insertion point; a 64-bit value is a (low, high) pair."""

    def __init__(self):
        self.i32 = ir.IntegerType.get_signless(32)

    def k(self, v: int) -> ir.Value:
        v &= 0xFFFFFFFF
        return arith.constant(self.i32, v - (1 << 32) if v >= 1 << 31 else v)

    def constant(self, v: int) -> tuple[ir.Value, ir.Value]:
        return self.k(v), self.k(v >> 32)

    def cmp(self, pred: str, a: ir.Value, b: ir.Value) -> ir.Value:
        return arith.cmpi(getattr(_P, pred), a, b)

    def add(self, a, b):
        low = arith.addi(a[0], b[0])
        carry = arith.extui(self.i32, self.cmp("ult", low, a[0]))
        return low, arith.addi(arith.addi(a[1], b[1]), carry)

    def sub(self, a, b):
        borrow = arith.extui(self.i32, self.cmp("ult", a[0], b[0]))
        return arith.subi(a[0], b[0]), arith.subi(arith.subi(a[1], b[1]), borrow)

    def mul(self, a, b):
        """a * b mod 2^64: the unsigned product of the low words, plus the cross products into the high word."""
        m16, s16 = self.k(0xFFFF), self.k(16)
        al, ah = arith.andi(a[0], m16), arith.shrui(a[0], s16)
        bl, bh = arith.andi(b[0], m16), arith.shrui(b[0], s16)
        ll, lh, hl, hh = arith.muli(al, bl), arith.muli(al, bh), arith.muli(ah, bl), arith.muli(ah, bh)
        mid = arith.addi(arith.addi(arith.shrui(ll, s16), arith.andi(lh, m16)), arith.andi(hl, m16))
        low = arith.ori(arith.andi(ll, m16), arith.shli(mid, s16))
        high = arith.addi(arith.addi(hh, arith.shrui(lh, s16)), arith.addi(arith.shrui(hl, s16), arith.shrui(mid, s16)))
        cross = arith.addi(arith.muli(a[0], b[1]), arith.muli(a[1], b[0]))
        return low, arith.addi(high, cross)

    def shift(self, kind: str, a, s):
        """a << s, a >>u s or a >>s s for 0 <= s < 64 (s's low word)."""
        n = arith.andi(s[0], self.k(31))
        wide = self.cmp("uge", s[0], self.k(32))
        inv = arith.subi(self.k(31), n)                     # 31 - n: the other word moves by 32 - n in two steps
        if kind == "shli":
            moved = arith.shli(a[0], n)                      # the low word's bits that stay in the pair
            spill = arith.shrui(arith.shrui(a[0], self.k(1)), inv)
            small = moved, arith.ori(arith.shli(a[1], n), spill)
            large = self.k(0), moved
        else:
            moved = (arith.shrsi if kind == "shrsi" else arith.shrui)(a[1], n)
            spill = arith.shli(arith.shli(a[1], self.k(1)), inv)
            small = arith.ori(arith.shrui(a[0], n), spill), moved
            large = moved, arith.shrsi(a[1], self.k(31)) if kind == "shrsi" else self.k(0)
        return tuple(arith.select(wide, x, y) for x, y in zip(large, small))

    def compare(self, pred: str, a, b) -> ir.Value:
        if pred in ("eq", "ne"):
            both = [self.cmp(pred, x, y) for x, y in zip(a, b)]
            return arith.andi(*both) if pred == "eq" else arith.ori(*both)
        high, low = _ORDER[pred]
        decided = self.cmp(high, a[1], b[1])
        tie = arith.andi(self.cmp("eq", a[1], b[1]), self.cmp(low, a[0], b[0]))
        return arith.ori(decided, tie)

    def select(self, c, a, b):
        return arith.select(c, a[0], b[0]), arith.select(c, a[1], b[1])


def _is_i64(t: ir.Type) -> bool:
    return isinstance(t, ir.IntegerType) and t.width == 64


def _wide_ops(generic: ir.Operation) -> list[ir.Operation] | None:
    """The body's ops that read or write i64, in order; None if one of them (or an i64 block argument, or an i64
    from outside the body other than a constant) is not understood."""
    block = generic.regions[0].blocks[0]
    if any(_is_i64(a.type) for a in block.arguments):
        return None
    wide, inside = [], set()
    for op in [o.operation for o in block.operations]:
        if not any(_is_i64(v.type) for v in [*op.operands, *op.results]):
            continue
        if op.name not in _SUPPORTED:
            return None
        for v in op.operands:
            source = defining_op(v)
            if _is_i64(v.type) and v not in inside and (source is None or source.name != "arith.constant"):
                return None
        wide.append(op)
        inside.update(op.results)
    return wide


def _emulate(ops: list[ir.Operation]) -> None:
    words, pairs, outer = _Words(), {}, []

    def pair(v: ir.Value):
        if v not in pairs:           # an i64 constant defined outside the body
            op = defining_op(v)
            outer.append(op)
            pairs[v] = words.constant(ir.IntegerAttr(op.attributes["value"]).value)
        return pairs[v]

    for op in ops:
        name, x = op.name, list(op.operands)
        with ir.InsertionPoint(op), op.location:
            if name == "arith.constant":
                pairs[op.results[0]] = words.constant(ir.IntegerAttr(op.attributes["value"]).value)
            elif name == "arith.extsi":
                low = x[0] if int_width(x[0].type) == 32 else arith.extsi(words.i32, x[0])
                pairs[op.results[0]] = low, arith.shrsi(low, words.k(31))
            elif name == "arith.extui":
                pairs[op.results[0]] = (x[0] if int_width(x[0].type) == 32 else arith.extui(words.i32, x[0])), \
                    words.k(0)
            elif name in ("arith.addi", "arith.subi", "arith.muli"):
                pairs[op.results[0]] = getattr(words, name[6:9])(pair(x[0]), pair(x[1]))
            elif name in ("arith.shli", "arith.shrui", "arith.shrsi"):
                pairs[op.results[0]] = words.shift(name[6:], pair(x[0]), pair(x[1]))
            elif name in ("arith.maxsi", "arith.minsi"):
                a, b = pair(x[0]), pair(x[1])
                pairs[op.results[0]] = words.select(words.compare("sgt" if name == "arith.maxsi" else "slt", a, b),
                                                    a, b)
            elif name == "arith.select":
                pairs[op.results[0]] = words.select(x[0], pair(x[1]), pair(x[2]))
            elif name == "arith.cmpi":
                pred = _PREDICATES[ir.IntegerAttr(op.attributes["predicate"]).value]
                op.results[0].replace_all_uses_with(words.compare(pred, pair(x[0]), pair(x[1])))
            elif name == "arith.index_cast":
                op.results[0].replace_all_uses_with(arith.index_cast(op.results[0].type, pair(x[0])[0]))
            else:   # arith.trunci
                low, out = pair(x[0])[0], op.results[0].type
                op.results[0].replace_all_uses_with(low if out.width == 32 else arith.trunci(out, low))
    for op in reversed(ops):
        op.erase()
    for op in outer:
        erase_if_dead(op)


def run(module: ir.Operation, pass_) -> None:
    generics = []

    def collect(op):
        op = op.operation if hasattr(op, "operation") else op
        if op.name == "linalg.generic" and any(_is_i64(r.type) for o in op.regions[0].blocks[0].operations
                                               for r in o.operation.results):
            generics.append(op)
        return ir.WalkResult.ADVANCE

    module.walk(collect)
    for g in generics:
        ops = _wide_ops(g)
        if ops is not None:
            _emulate(ops)
