"""Compute NCHW depthwise convolutions as a sum of taps: one elementwise linalg.generic over the output that reads,
for each kernel tap (i, j), a strided slice of the padded input and the tap's weight of each channel.

For the CPU targets. IREE 3.13's llvm-cpu code for linalg.depthwise_conv_2d_nchw_chw on i8 is nearly scalar: a 3x3
depthwise conv over 144x56x56 takes 1.64 ms (2.5 GMAC/s; channels-last 4.7 ms), the same sums as taps 0.075 ms
(2 threads, this machine), and MobileNetV2's depthwise convs were most of its int8 time (docs/profiling.md).
The generic is elementwise, so it vectorizes along output rows and the requantization after it fuses into it.
Integer sums in another order: the same i32 result, bit for bit.
"""
from __future__ import annotations

from iree.compiler import ir
from iree.compiler.dialects import arith, linalg, tensor

from edgeq.dialect_passes._match import defining_op, ops_named

ARGUMENT = "edgeq-depthwise-taps"


def _phases(x: ir.Value, sh: int, sw: int) -> ir.Value:
    """x (N, C, H, W) as its sh x sw phase planes (N, C, sh, sw, H/sh, W/sw), zero-padded to multiples of the
    strides: a strided conv's taps then read unit-stride slices (strided ones vectorize poorly)."""
    n, c, h, w = x.type.shape
    hq, wq = -(-h // sh), -(-w // sw)
    elt = x.type.element_type
    if (hq * sh, wq * sw) != (h, w):
        # The added rows and columns are never read. Where x is itself a pad (the conv's), pad its source once
        # more instead: IREE 3.13's CPU codegen fails on a pad of a pad fused into the producer's dispatch.
        source, low, high, value = x, [0] * 4, [0] * 4, ir.IntegerAttr.get(elt, 0)
        inner = defining_op(x)
        if inner is not None and inner.name == "tensor.pad" and len(inner.operands) == 1:
            fill = defining_op(inner.regions[0].blocks[0].operations[-1].operands[0])
            if fill is not None and fill.name == "arith.constant":
                source, value = inner.operands[0], fill.attributes["value"]
                low, high = list(inner.attributes["static_low"]), list(inner.attributes["static_high"])
        high = [high[0], high[1], high[2] + hq * sh - h, high[3] + wq * sw - w]
        pad = tensor.PadOp(ir.RankedTensorType.get([n, c, hq * sh, wq * sw], elt), source, [], [], low, high)
        block = pad.regions[0].blocks.append(*[ir.IndexType.get()] * 4)
        with ir.InsertionPoint(block):
            tensor.YieldOp(arith.ConstantOp(elt, value).result)
        x = pad.result
    i64 = ir.IntegerType.get_signless(64)
    groups = ir.ArrayAttr.get([ir.ArrayAttr.get([ir.IntegerAttr.get(i64, d) for d in group])
                               for group in ([0], [1], [2, 3], [4, 5])])
    split = tensor.expand_shape(ir.RankedTensorType.get([n, c, hq, sh, wq, sw], elt), x, groups, [],
                                [n, c, hq, sh, wq, sw])
    op = linalg.transpose(split, outs=[tensor.empty([n, c, sh, sw, hq, wq], elt)], permutation=[0, 1, 3, 5, 2, 4])
    return op.results[0] if isinstance(op, ir.OpView) else op


def _rewrite(op: ir.Operation) -> None:
    x, w, init = op.operands            # x: N x C x Hp x Wp (padded), w: C x Kh x Kw, init: N x C x Ho x Wo
    sh, sw = (int(s) for s in op.attributes["strides"]) if "strides" in op.attributes else (1, 1)
    dh, dw = (int(d) for d in op.attributes["dilations"]) if "dilations" in op.attributes else (1, 1)
    n, c, ho, wo = init.type.shape
    _, kh, kw = w.type.shape
    out_type = init.type
    acc_type = out_type.element_type
    taps = [(i, j) for i in range(kh) for j in range(kw)]
    identity = ir.AffineMap.get_identity(4)
    with ir.InsertionPoint(op), op.location:
        tap_type = ir.RankedTensorType.get([n, c, ho, wo], x.type.element_type)
        if (sh, sw) == (1, 1):
            slices = [tensor.extract_slice(tap_type, x, [], [], [], [0, 0, i * dh, j * dw], [n, c, ho, wo],
                                           [1, 1, 1, 1]) for i, j in taps]
        else:
            phases = _phases(x, sh, sw)
            slices = [tensor.extract_slice(tap_type, phases, [], [], [],
                                           [0, 0, (i * dh) % sh, (j * dw) % sw, (i * dh) // sh, (j * dw) // sw],
                                           [n, c, 1, 1, ho, wo], [1] * 6) for i, j in taps]
        # each tap's weights as a vector of their own: read through a map with constant indices into w instead,
        # IREE's code for the generic runs 10x slower
        weight_type = ir.RankedTensorType.get([c], w.type.element_type)
        weights = [tensor.extract_slice(weight_type, w, [], [], [], [0, i, j], [c, 1, 1], [1, 1, 1]) for i, j in taps]
        per_channel = ir.AffineMap.get(4, 0, [ir.AffineDimExpr.get(1)])
        maps = [ir.AffineMapAttr.get(m) for m in [identity] * len(taps) + [per_channel] * len(taps) + [identity]]
        parallel = ir.Attribute.parse("#linalg.iterator_type<parallel>")
        generic = linalg.GenericOp([out_type], slices + weights, [init], ir.ArrayAttr.get(maps),
                                   ir.ArrayAttr.get([parallel] * 4))
        block = generic.regions[0].blocks.append(*[x.type.element_type] * len(taps),
                                                 *[w.type.element_type] * len(taps), acc_type)
        with ir.InsertionPoint(block):
            args = list(block.arguments)

            def ext(v):   # as the named op casts its operands: sign-extended to the accumulator
                return v if v.type == acc_type else arith.extsi(acc_type, v)

            total = args[-1]
            for a, b in zip(args[:len(taps)], args[len(taps):-1]):
                total = arith.addi(total, arith.muli(ext(a), ext(b)))
            linalg.YieldOp([total])
    op.results[0].replace_all_uses_with(generic.results[0])
    op.erase()


def run(module: ir.Operation, pass_) -> None:
    for op in ops_named(module, "linalg.depthwise_conv_2d_nchw_chw"):
        _rewrite(op)
