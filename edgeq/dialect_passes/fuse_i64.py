"""Fuse elementwise generics joined by i64 tensors into their consumers, so that i64 lives only inside bodies.

torch exports each integer op on its own, so `((x.i64 * b + r) >> c).clamp(...).i32` passes i64 tensors between
generics. IREE would fuse them later, but edgeq-emulate-i64 (Vulkan) rewrites i64 only inside one body whose
boundary is i32 or narrower:

  %p = linalg.generic ins(%x : i32) outs(i64) {extsi}                 %y = linalg.generic ins(%x, %b : i32, i64)
  %y = linalg.generic ins(%p, %b : i64, i64) outs(i32) {muli; ...}    -->        outs(i32) {extsi; muli; ...}

First, unused i64 results are dropped from generics that compute them alongside others (torch's amax is
lowered as max.dim, whose i64 argmax nobody reads), with the body ops only they needed.

Exact: the producer's body is moved (or, for a producer with other users, copied) into the consumer unchanged.
Fused: single-result all-parallel producers with an identity output map that never read their init, into
all-parallel consumers reading them through a map of dims and zeros (identity, broadcast, permutation); the
producer's linalg.index ops are renumbered into the consumer's loops. Producers reading an i8 tensor are not
fused (i8 loads inside a wider dispatch are miscompiled on Vulkan, docs/vulkan.md defect 2): an i8 value must be
widened to i32 first (`x.to(torch.int32).to(torch.int64)`), which edgeq-isolate-i8-extensions puts in a dispatch
of its own; otherwise its i64 stays at a dispatch boundary and iree-compile refuses it. Anything else is left
alone.
"""
from __future__ import annotations

from iree.compiler import ir
from iree.compiler.dialects import arith, linalg

from edgeq.dialect_passes._match import body_ops, defining_op, erase_if_dead, int_width, is_elementwise

ARGUMENT = "edgeq-fuse-i64"


def _dims_or_zeros(m: ir.AffineMap) -> bool:
    return all(isinstance(e, ir.AffineDimExpr) or (isinstance(e, ir.AffineConstantExpr) and e.value == 0)
               for e in m.results)


def _fusable(producer: ir.Operation | None, consumer_map: ir.AffineMap) -> bool:
    if producer is None or not is_elementwise(producer) or len(producer.results) != 1:
        return False
    if any(int_width(v.type) == 8 for v in list(producer.operands)[:-1]):
        return False                    # i8 loads stay in their own extension dispatch (docs/vulkan.md, defect 2)
    maps = [a.value for a in producer.attributes["indexing_maps"]]
    out_map = maps[-1]
    if out_map != ir.AffineMap.get_identity(out_map.n_dims) or not _dims_or_zeros(consumer_map):
        return False
    block = producer.regions[0].blocks[0]
    return not any(True for _ in block.arguments[-1].uses)          # the init is never read


def _fuse(consumer: ir.Operation, index: int) -> ir.Operation:
    """The consumer with its input `index` replaced by that input's producer; returns the new consumer."""
    producer = defining_op(consumer.operands[index])
    if sum(1 for _ in producer.results[0].uses) > 1:                 # keep the producer for its other users
        producer = producer.clone(ip=ir.InsertionPoint(consumer))
        consumer.operands[index] = producer.results[0]
    n_in = len(consumer.operands) - len(consumer.results)
    c_maps = [a.value for a in consumer.attributes["indexing_maps"]]
    p_maps = [a.value for a in producer.attributes["indexing_maps"]]
    p_inputs = list(producer.operands)[:-1]
    via = c_maps[index]
    inputs = list(consumer.operands)[:index] + p_inputs + list(consumer.operands)[index + 1:n_in]
    maps = c_maps[:index] + [ir.AffineMap.get(via.n_dims, 0, [e.compose(via) for e in m.results])
                             for m in p_maps[:-1]] + c_maps[index + 1:]
    outs = list(consumer.operands)[n_in:]
    with ir.InsertionPoint(consumer), consumer.location:
        new = linalg.GenericOp([r.type for r in consumer.results], inputs, outs,
                               ir.ArrayAttr.get([ir.AffineMapAttr.get(m) for m in maps]),
                               consumer.attributes["iterator_types"])
        block = new.regions[0].blocks.append(*[v.type.element_type for v in inputs + outs])
    args = list(block.arguments)
    p_block, c_block = producer.regions[0].blocks[0], consumer.regions[0].blocks[0]
    p_ops, c_ops = body_ops(producer), body_ops(consumer)
    for arg, new_arg in zip(list(p_block.arguments)[:-1], args[index:index + len(p_inputs)]):
        arg.replace_all_uses_with(new_arg)
    for op in p_ops[:-1]:
        block.append(op)
        if op.name == "linalg.index":                                # producer loop d -> consumer's expression
            expr = via.results[ir.IntegerAttr(op.attributes["dim"]).value]
            with ir.InsertionPoint(op), op.location:
                repl = linalg.IndexOp(expr.position).result if isinstance(expr, ir.AffineDimExpr) \
                    else arith.ConstantOp(ir.IndexType.get(), 0).result
            op.results[0].replace_all_uses_with(repl)
            op.erase()
    yielded = p_ops[-1].operands[0]
    c_args = list(c_block.arguments)
    c_new = args[:index] + [None] + args[index + len(p_inputs):]
    for arg, new_arg in zip(c_args, c_new):
        arg.replace_all_uses_with(yielded if new_arg is None else new_arg)
    for op in c_ops:
        block.append(op)
    p_ops[-1].erase()
    for old, r in zip(consumer.results, new.results):
        old.replace_all_uses_with(r)
    consumer.erase()
    erase_if_dead(producer)
    return new.operation


def _drop_dead_i64_results(generic: ir.Operation) -> None:
    n_out = len(generic.results)
    dead = [k for k, r in enumerate(generic.results) if int_width(r.type) == 64 and not any(True for _ in r.uses)]
    if not dead or len(dead) == n_out:
        return
    keep = [k for k in range(n_out) if k not in dead]
    n_in = len(generic.operands) - n_out
    ops = body_ops(generic)
    args = list(generic.regions[0].blocks[0].arguments)
    needed, work = [], [ops[-1].operands[k] for k in keep]       # the body slice the kept results read
    while work:
        v = work.pop()
        op = defining_op(v)
        if op is None:
            if any(v == args[n_in + k] for k in dead):
                return                                              # a kept result reads a dropped init
            continue
        if not any(op == o for o in needed):
            needed.append(op)
            work += list(op.operands)
    maps = list(generic.attributes["indexing_maps"])
    outs = list(generic.operands)[n_in:]
    with ir.InsertionPoint(generic), generic.location:
        new = linalg.GenericOp([generic.results[k].type for k in keep], list(generic.operands)[:n_in],
                               [outs[k] for k in keep], ir.ArrayAttr.get(maps[:n_in] + [maps[n_in + k] for k in keep]),
                               generic.attributes["iterator_types"])
        block = new.regions[0].blocks.append(*[a.type for a in args[:n_in]] + [args[n_in + k].type for k in keep])
    for arg, new_arg in zip(args[:n_in] + [args[n_in + k] for k in keep], block.arguments):
        arg.replace_all_uses_with(new_arg)
    for op in [o for o in ops[:-1] if any(o == n for n in needed)]:
        block.append(op)
    with ir.InsertionPoint(block), generic.location:
        linalg.YieldOp([ops[-1].operands[k] for k in keep])
    ops[-1].erase()                                                 # after: values read from it need it alive
    for op in reversed(ops[:-1]):                                   # what only the dropped results needed
        if not any(op == o for o in needed):
            op.erase()
    for k, r in zip(keep, new.results):
        generic.results[k].replace_all_uses_with(r)
    dropped_inits = [defining_op(outs[k]) for k in dead]
    generic.erase()
    for init in dropped_inits:
        erase_if_dead(init)


def run(module: ir.Operation, pass_) -> None:
    generics: list[ir.Operation] = []

    def collect(op):
        op = op.operation if hasattr(op, "operation") else op
        if op.name == "linalg.generic":
            generics.append(op)
        return ir.WalkResult.ADVANCE

    module.walk(collect)
    for g in generics:
        if len(g.results) > 1:
            _drop_dead_i64_results(g)
    generics.clear()
    module.walk(collect)
    consumers = [g for g in generics if is_elementwise(g)]
    for consumer in consumers:                                       # program order: chains fuse front to back
        fused = True
        while fused:
            fused = False
            n_in = len(consumer.operands) - len(consumer.results)
            maps = [a.value for a in consumer.attributes["indexing_maps"]]
            for i in range(n_in):
                v = consumer.operands[i]
                if int_width(v.type) == 64 and isinstance(v.type, ir.RankedTensorType) \
                        and _fusable(defining_op(v), maps[i]):
                    consumer = _fuse(consumer, i)
                    fused = True
                    break
