"""What the accelerator is asked to do: the dispatches of a module, read from the linalg IR edgeq's passes produce.

A dispatch is what an NPU runs as one job:
- a contraction (conv, depthwise conv, matmul) on the systolic array, with the elementwise chain that only it
  feeds (bias, requantization, ReLU) fused behind it as the post-processing unit does;
- a vector dispatch: a connected group of the remaining elementwise or reduction ops (residual adds, pooling).
Padding, reshapes and work on constants cost nothing: address generation and compile-time folding. A tensor that
crosses a dispatch boundary moves through DRAM at its IR element width, except a contraction's operands, which
move at the layer's bits (w-bit weights and a-bit activations, packed).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from edgeq.errors import EdgeqError

CONTRACTIONS = ("linalg.conv_2d_nchw_fchw", "linalg.conv_2d_nhwc_hwcf", "linalg.depthwise_conv_2d_nchw_chw",
                "linalg.depthwise_conv_2d_nhwc_hwc", "linalg.matmul", "linalg.batch_matmul",
                # IREE's TOSA input (imported .tflite): zero points as operands, depthwise with a multiplier dim
                "linalg.conv_2d_nhwc_hwcf_q", "linalg.depthwise_conv_2d_nhwc_hwcm",
                "linalg.depthwise_conv_2d_nhwc_hwcm_q", "linalg.quantized_matmul")
_VIEWS = ("tensor.pad", "tensor.collapse_shape", "tensor.expand_shape")   # no data moves: addressing only
_COMPUTE = ("linalg.generic", "linalg.transpose", "linalg.broadcast", "linalg.fill", "linalg.reduce", "linalg.map")


@dataclass(frozen=True)
class Gemm:
    """A contraction as SCALE-Sim's operand matrices see it, per group: ofmap pixels x window -> pixels x filters."""

    pixels: int
    window: int
    filters: int
    groups: int = 1               # depthwise: one GEMM per channel, run one after another
    ifmap_rows: int = 1           # the input rows and columns the conv reads (a matmul: M x 1), for SCALE-Sim
    ifmap_cols: int = 1
    kernel: tuple[int, int] = (1, 1)
    stride: int = 1

    @property
    def macs(self) -> int:
        return self.groups * self.pixels * self.window * self.filters


@dataclass(eq=False)
class Dispatch:
    name: str
    kind: str                     # "systolic" | "vector"
    gemm: Gemm | None = None
    weight_elems: int = 0         # of the contraction's filter operand
    ifmap_elems: int = 0          # of the contraction's (unpadded) input
    vector_ops: int = 0           # element operations of the vector unit
    inputs_bytes: float = 0.0     # other tensors read from DRAM (at IR width)
    outputs_bytes: float = 0.0    # tensors written to DRAM (at IR width)
    ops: list[str] = field(default_factory=list)


def _numel(t) -> int:
    return math.prod(t.shape)


def _bytes(t) -> float:
    from iree.compiler import ir

    elem = t.element_type
    width = elem.width if isinstance(elem, ir.IntegerType) else ir.FloatType(elem).width
    return _numel(t) * width / 8


def _owner(value):
    from iree.compiler import ir

    owner = value.owner
    return None if isinstance(owner, ir.Block) else owner.operation if hasattr(owner, "operation") else owner


def _gemm(op) -> Gemm:
    """Operand-matrix dimensions of a named contraction (its input already padded by tensor.pad)."""
    x, w = (v.type.shape for v in op.operands[:2])
    y = op.results[0].type.shape
    strides = [int(s) for s in op.attributes["strides"]] if "strides" in op.attributes else [1, 1]
    name = op.name.removesuffix("_q").replace("quantized_matmul", "matmul")
    if name == "linalg.matmul":
        return Gemm(pixels=y[0], window=x[1], filters=y[1], ifmap_rows=y[0])
    if name == "linalg.batch_matmul":
        return Gemm(pixels=y[1], window=x[2], filters=y[2], groups=y[0], ifmap_rows=y[1])
    if name == "linalg.conv_2d_nchw_fchw":
        (n, f, oh, ow), (kh, kw), c = y, w[2:], w[1]
    elif name == "linalg.conv_2d_nhwc_hwcf":
        (n, oh, ow, f), (kh, kw), c = y, w[:2], w[2]
    elif name == "linalg.depthwise_conv_2d_nchw_chw":
        (n, f, oh, ow), (kh, kw), c = y, w[1:], 1
    elif name == "linalg.depthwise_conv_2d_nhwc_hwcm":   # output N x OH x OW x C x M: C * M one-channel filters
        (n, oh, ow), (kh, kw), f, c = y[:3], w[:2], y[3] * y[4], 1
    else:   # linalg.depthwise_conv_2d_nhwc_hwc
        (n, oh, ow, f), (kh, kw), c = y, w[:2], 1
    dilations = [int(d) for d in op.attributes["dilations"]] if "dilations" in op.attributes else [1, 1]
    if dilations != [1, 1] or strides[0] != strides[1]:
        raise EdgeqError(f"{name} with strides {strides} and dilations {dilations} is not modelled by accel-sim",
                         "use square strides and no dilation, or another target")
    depthwise = "depthwise" in name
    rows, cols = (oh - 1) * strides[0] + kh, (ow - 1) * strides[1] + kw
    return Gemm(pixels=n * oh * ow, window=c * kh * kw, filters=1 if depthwise else f, groups=f if depthwise else 1,
                ifmap_rows=rows, ifmap_cols=cols, kernel=(kh, kw), stride=strides[0])


def dispatches(mlir_text: str) -> list[Dispatch]:
    """The module's dispatches in program order."""
    from iree.compiler import ir

    with ir.Context():
        module = ir.Module.parse(mlir_text)
        bodies = [[op.operation for op in f.regions[0].blocks[0].operations] for f in module.body.operations
                  if f.operation.name in ("func.func", "util.func") and f.regions[0].blocks]
        bodies = [ops for ops in bodies if any(op.name.startswith("linalg.") for op in ops)]   # not the ABI stub
        if len(bodies) != 1:
            raise EdgeqError(f"accel-sim expects one function of linalg ops in the module, found {len(bodies)}",
                             "simulate the module edgeq compile writes (model.edgeq.mlir)")
        return _group(bodies[0])


def _group(ops) -> list[Dispatch]:
    """Walk one function body in order, giving each op to a dispatch (see the module docstring for the rules)."""
    constant: set = set()      # values known at compile time
    alias: dict = {}           # a view's result -> the value it views
    group_of: dict = {}        # value -> the Dispatch that produces it
    users: dict = {}
    for op in ops:
        for v in op.operands:
            users.setdefault(v, []).append(op)

    def root(v):
        while v in alias:
            v = alias[v]
        return v

    def consumers(v) -> list:
        """The ops that read v, looking through views."""
        found = []
        for u in users.get(v, []):
            found += consumers(u.results[0]) if u.name in _VIEWS else [u]
        return found

    result: list[Dispatch] = []
    for op in ops:
        ins = [root(v) for v in op.operands]
        if op.name in ("arith.constant", "tensor.empty") or (op.name in _COMPUTE and ins and all(v in constant for v in ins)):
            constant.update(op.results)
        elif op.name in _VIEWS:
            alias[op.results[0]] = ins[0]
        elif op.name in CONTRACTIONS:
            d = Dispatch(f"{op.name.removeprefix('linalg.')}#{sum(x.kind == 'systolic' for x in result)}", "systolic",
                         _gemm(op), weight_elems=_numel(op.operands[1].type), ifmap_elems=_numel(ins[0].type),
                         ops=[op.name])
            d.inputs_bytes = sum(_bytes(v.type) for v in ins[2:] if v not in constant)   # a computed accumulator init
            result.append(d)
            group_of[op.results[0]] = d
        elif op.name in _COMPUTE:
            live = [v for v in ins if v not in constant]
            producers = {id(group_of[v]): group_of[v] for v in live if v in group_of}
            sole = [g for g in producers.values()   # producers whose every value read here is read by this op only
                    if all(len(consumers(v)) == 1 for v in live if group_of.get(v) is g)]
            reduces = "reduction" in str(op.attributes["iterator_types"]) if "iterator_types" in op.attributes else False
            if len(producers) == 1 == len(sole) and all(v in group_of for v in live) and not (
                    sole[0].kind == "systolic" and reduces):   # the post-processing unit is elementwise only
                d = sole[0]
            else:                                              # a vector dispatch continues one it alone reads
                d = next((g for g in sole if g.kind == "vector"), None)
            if d is None:
                d = Dispatch(f"vector#{sum(x.kind == 'vector' for x in result)}", "vector")
                result.append(d)
            d.ops.append(op.name)
            if d.kind == "vector":
                d.vector_ops += _numel(max((v.type for v in [*op.operands, *op.results]), key=_numel))
            d.inputs_bytes += sum(_bytes(v.type) for v in live if group_of.get(v) is not d)
            group_of.update((r, d) for r in op.results)
    for v, d in group_of.items():                      # what another dispatch or the caller reads goes to DRAM
        if any(u.name not in CONTRACTIONS + _COMPUTE or group_of.get(u.results[0]) is not d for u in consumers(v)):
            d.outputs_bytes += _bytes(v.type)
    return result
