"""Small matchers on linalg IR shared by the passes: what an op is, what a generic's body computes."""
from __future__ import annotations

from iree.compiler import ir


def defining_op(value: ir.Value) -> ir.Operation | None:
    owner = value.owner
    return None if isinstance(owner, ir.Block) else (owner.operation if hasattr(owner, "operation") else owner)


def int_width(t: ir.Type) -> int | None:
    if isinstance(t, ir.RankedTensorType):
        t = t.element_type
    return t.width if isinstance(t, ir.IntegerType) else None


def ops_named(module: ir.Operation, name: str) -> list[ir.Operation]:
    """Every op called `name` in module, collected before any is rewritten."""
    found: list[ir.Operation] = []

    def collect(op):
        if op.name == name:
            found.append(op.operation if hasattr(op, "operation") else op)
        return ir.WalkResult.ADVANCE

    module.walk(collect)
    return found


def body_ops(generic: ir.Operation) -> list[ir.Operation]:
    return [op.operation for op in generic.regions[0].blocks[0].operations]


def is_elementwise(generic: ir.Operation) -> bool:
    """All-parallel linalg.generic whose maps are identities or broadcasts (projections) of them."""
    if generic.name != "linalg.generic":
        return False
    iters = [str(a) for a in generic.attributes["iterator_types"]]
    return all("parallel" in a for a in iters)


def identity_maps(generic: ir.Operation) -> bool:
    maps = [a.value for a in generic.attributes["indexing_maps"]]
    return all(m == ir.AffineMap.get_identity(m.n_dims) for m in maps)


def single_cast(generic: ir.Operation, cast: str) -> tuple[int, int] | None:
    """(from_width, to_width) if `generic` is an identity-mapped elementwise `cast` (arith.extsi / arith.trunci)."""
    if generic is None or generic.name != "linalg.generic" or len(generic.operands) != 2:
        return None
    ops = body_ops(generic)
    if not (is_elementwise(generic) and identity_maps(generic) and len(ops) == 2 and ops[0].name == cast):
        return None
    block = generic.regions[0].blocks[0]
    if ops[0].operands[0] != block.arguments[0] or ops[1].operands[0] != ops[0].results[0]:
        return None
    return int_width(ops[0].operands[0].type), int_width(ops[0].results[0].type)


def erase_if_dead(op: ir.Operation | None) -> None:
    """Erase a side-effect-free tensor op with no users, then its operands' producers in turn.

    The bindings may wrap one op in several Python objects, and touching an erased one crashes: so ops are
    compared with == (pointer equality) while all are alive, and the worklist never holds one op twice."""
    pure = ("linalg.generic", "linalg.broadcast", "linalg.fill", "linalg.transpose", "tensor.empty",
            "tensor.collapse_shape", "tensor.expand_shape", "arith.constant")
    work = [op]
    while work:
        o = work.pop()
        if o is None or o.name not in pure or any(True for r in o.results for _ in r.uses):
            continue
        producers = [defining_op(v) for v in o.operands]
        o.erase()
        for p in producers:
            if p is not None and not any(p == w for w in work):
                work.append(p)
