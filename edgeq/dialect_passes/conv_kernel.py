"""Run i8 NCHW convolutions and batch-1 linear layers on edgeq's own AVX-512 VNNI kernels (targets/kernels) instead
of IREE's im2col + matmul, depthwise taps and matvec: custom dispatches, direct convs on vpdpbusd.

For the host target on CPUs with AVX-512 VNNI and VBMI (on AVX2 CPUs, edgeq-conv-kernel-avx2 runs this pass with
the AVX2 set: run's docstring). IREE 3.13 gathers every conv's patch matrix through memory and
its s8 x s8 ukernel widens both operands to 16 bits (vpdpwssd, 2 MACs per lane); ResNet-18's im2col gathers alone
took longer than its matmuls (docs/profiling.md). vpdpbusd multiplies u8 by s8, 4 MACs per lane, so the kernels
read the activations as x + 128 (an xor of the sign bit) and start each sum at bias - 128 * sum(w):
sum((x + 128) w) - 128 sum(w) = sum(x w), exact in wrap-around i32 like the reference.

The kernels keep pixels in their vector lanes, so they read and write channel-major data: the graph stays NCHW
and nothing is transposed. Each dense conv (linalg.conv_2d_nchw_fchw) becomes a call to a private util.func
(inlined by IREE) that
  - packs its input with edgeq_pack_u8: 4-channel groups of u8, [C/4][phase rows][phase cols][rows][cols][4],
    one phase plane per stride step so that every tap reads contiguous pixels (the kernel's header explains the
    grid). The conv's padding is done there too: the pack reads the tensor.pad's source;
  - packs the constant weights as [OC/8][KH][KW][C/4][8][4] and sums them (IREE evaluates both at compile time);
  - dispatches the kernel into the NCHW result: when the conv's only use is edgeq's requantization (Requant), the
    kernel applies it and writes i8; otherwise it writes the i32 sums and the conv's init is added after.
Each 3x3 depthwise conv with such a requantization becomes one dispatch of edgeq_dwconv3x3_u8s8_requant, which
reads the unpadded input itself; the others are left to edgeq-depthwise-taps. When its output feeds a 1x1 conv
alone (MobileNet's depthwise -> project pairs), it writes that conv's packed input, and the conv has no pack.
Likewise a requantized conv whose output a 1x1 conv reads (MobileNet's project -> expand pairs) writes that
conv's packed input as a second result, besides its NCHW output for the other uses; on the rows kernel, the packed
input of any conv that reads it, padding and phase planes included (ResNet's layer3 and layer4). A 1x1 stride-2
conv beside a stride-2 conv on the same input (ResNet's downsamples) reads a phase plane of that conv's packed
input, and packs nothing itself (_plane_sibling).
A batch-1 linear layer (linalg.matmul of a 1 x K row by constant K x N weights, the classifier after the pool)
becomes one dispatch of edgeq_linear_u8s8, its bias add fused: IREE's own matvec took about 40 us of
MobileNetV2's 1280 -> 1000 classifier on one core (s8 x s8 without vpdpbusd), the kernel takes 21 in the model (15
in a C harness), bound by reading the weights.
A requantized conv with few input channels (the stems, patch_fits) becomes one dispatch of
edgeq_conv2d_u8s8_patch_requant: a 1x1 conv over its whole patch, which the kernel unfolds from the unpadded input
into L1 tile by tile, with no pack (ResNet-18's sums of 147 in 37 groups of 4, not 42).
A requantized 3x3 stride-1 conv padded by 1 with up to 128 channels (winograd_fits: ResNet-18's layer1 and layer2;
with the AVX2 set up to 256, layer3 too) becomes one dispatch of edgeq_winograd_conv_requant instead: Winograd
F(4x4, 3x3), exact in integers (the kernel's header), half the direct conv's instructions; its filters' transform
is a generic on the constant weights that IREE evaluates at compile time. ResNet-18 on one worker: those 7 convs
4.2 -> 3.3 ms; with the AVX2 set, the model 0.73x (docs/profiling.md). With the VNNI set, its two workgroups claim
their pieces of the tiles from both ends where both ranges are whole pieces, counted in a global of the module
(winograd_claims), so that the worker on a slower vCPU takes fewer.
A 3x3 max pooling at stride 2 (ResNet's, after the stem) becomes one dispatch of edgeq_maxpool3x3s2_i8, which reads
its input unpadded: IREE's took 84 us and a 23 us copy for the padding on two threads.
All share one hal.executable.source that links the compiled kernels and their pool glue (_pool_glue): each export
is one workgroup, whose shim hands the kernel's workgroups to edgeq's thread pool (targets/kernels/pool.c), which it
gets from the import edgeq_pool; the host target runs such modules on local-sync with the pool loaded
(targets/host.py, _pooled_device).

Left alone: batch > 1, non-i8 operands, dynamic shapes, strides over 2, a stride together with a dilation, and
depthwise convs whose two strides differ.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

from iree.compiler import ir

from edgeq.dialect_passes._match import body_ops, defining_op, erase_if_dead, identity_maps, int_width, ops_named
from edgeq.targets.kernels import AVX2, VNNI

ARGUMENT = "edgeq-conv-kernel"

EXECUTABLE = "edgeq_kernels"
POOLED = "_pooled"   # a kernel function's pool glue: <function>_pooled (_pool_glue)
# the C functions (targets/kernels/conv2d_u8s8_avx512vnni.c)
CONV, CONV_REQUANT, PACK = "edgeq_conv2d_u8s8", "edgeq_conv2d_u8s8_requant", "edgeq_pack_u8"
CONV_ROWS = "edgeq_conv2d_u8s8_rows_requant"   # output channels in the lanes (ConvShape.rows_kernel)
CONV_POINTWISE = "edgeq_conv1x1_u8s8_requant"   # AVX2: 1x1 stride-1 convs on their NCHW input (pointwise_fits)
POINTWISE_PIXELS = 24   # the 1x1 kernel's strip: 3 vectors of 8 pixels (PW_VECTORS)
CONV_PATCH = "edgeq_conv2d_u8s8_patch_requant"   # the stems, as 1x1 convs over their patches (patch_fits)
ADD = "_add"       # the suffix of the requantized kernels' copies with a residual add after the requantization
PACKS = "_packs"   # the suffix of their copies that also write the packed input of the conv that reads the output
DEPTHWISE = "edgeq_dwconv3x3_u8s8_requant"
LINEAR = "edgeq_linear_u8s8"
MAXPOOL = "edgeq_maxpool3x3s2_i8"
WINOGRAD = "edgeq_winograd_conv_requant"
CLAIMED = "_claimed"   # the suffix of its copies whose two workgroups claim the pieces (winograd_claims)
WINOGRAD_TILES, WINOGRAD_OC = 6, 64   # the Winograd kernel's register tile: 6 tiles of 4x4 outputs x 64 channels
# output channels per group of the transformed weights: the VNNI kernel's register tile, the AVX2 kernel's 16 (its
# tile is 8 or 16 channels, and a group's weights are read in order)
WINOGRAD_GROUP = {VNNI: WINOGRAD_OC, AVX2: 16}
# The most input channels: the VNNI kernel's exactness bound, |sum| < 2^25 for any i8 input and weights (the
# kernel's header); the AVX2 kernel sums more in chunks of 128, up to ResNet's layer3 (256)
WINOGRAD_MAX_C = {VNNI: 128, AVX2: 256}
# The most bytes the filters' transform may add to the weights: IREE evaluates it at compile time only up to
# --iree-opt-const-expr-max-size-increase-threshold (targets/host.py), else it runs at every call (14 ms for a
# 256 x 256 conv). The VNNI kernel on ResNet's layer3 (4.1 MB more) took 765 us against 580 on the direct one,
# streaming U from L3; on AVX2, where the direct kernel has a quarter of VNNI's products per instruction, ResNet-18
# took 0.97x the time with layer3 on it (docs/profiling.md, stop 28).
WINOGRAD_MAX_GROWTH = {VNNI: 1 << 20, AVX2: 1 << 22}
WINOGRAD_SPAN = 98   # tiles per workgroup (_winograd_parts)
WINOGRAD_PIECE = {VNNI: 14, AVX2: 16}   # tiles of its range a workgroup computes at a time (the kernels' WINO_PIECE)
LINEAR_BLOCK = 16   # its outputs per vector
PATCH_MAX_GROUPS = 64   # the patch kernel's groups of 4 patch channels: 16 KB of each tile's patch on its stack
# How the kernels split a dispatch into workgroups, in equal parts and at most MAX_WORKGROUPS in all. IREE 3.13's
# workers take a dispatch's workgroups one at a time while there are fewer than 8 per worker, but 8 at a time from
# 16 on (2 workers), and then one worker waits for up to 8 of the other's: ResNet-18 on two threads took 5.54 ms
# with up to 29 workgroups per conv, 5.31 with at most 15, 5.22 with at most 10, 5.24 with 8. The convs split as
# _split says (an even count where it can), the depthwise convs' groups of 4 channels too; packs in at least
# MIN_WORKGROUPS parts, of about WORKGROUP_MACS (18 us on one core) for large layers: 0.5 M MACs made MobileNetV2
# 3% slower (docs/profiling.md).
WORKGROUP_MACS = 1 << 22
MIN_WORKGROUPS = 8
MAX_WORKGROUPS = 10
CHANNEL_BLOCK = 8  # output channels per register tile
ROWS_BLOCK = 16    # the VNNI rows kernel's: per weight vector (_weight_block)
WORKERS = 2   # the host target's threads (HostTarget), which share each dispatch's workgroups
# The Winograd kernel for the convs it fits (winograd_fits); EDGEQ_WINOGRAD=0 keeps them all on the direct kernels
# (for A/B timing: the passes run in their own process)
WINOGRAD_ENABLED = os.environ.get("EDGEQ_WINOGRAD", "1") != "0"


def _parts(units: int, cost: int, other: int = 1, least: int = 1) -> int:
    """How many equal parts to split `units` (each `cost` MACs or their equivalent) into, given `other` workgroups
    along the dispatch's other dimension; parts of at least `least` units where the threads have enough."""
    enough = -(-MIN_WORKGROUPS // other)
    parts = max(1, min(units, max(min(-(-units * cost // WORKGROUP_MACS), units // least), enough)))
    return max(1, min(parts, MAX_WORKGROUPS // other))


def _split(oc8: int, units: int, step: int = 1, least: int = 1, overhead: int = 0) -> tuple[int, int, int]:
    """How a conv kernel's dispatch splits into workgroups: (blocks of 8 output channels per workgroup, workgroups
    along the output channels, equal parts of `units` along the other dimension), at most MAX_WORKGROUPS, groups
    of blocks in multiples of `step`, parts of at least `least` units where there are enough. The split that
    WORKERS threads finish first when each takes the next workgroup as it is done (an odd count leaves one idle
    for a workgroup's time: MobileNetV2's 96 -> 576 convs on 14x14 had 9 workgroups of 64 channels, one thread
    idle for 6.5 us of their 34), where each workgroup also does `overhead` blocks' worth of work per unit;
    within 4% of that, the most workgroups (the least lost when a thread starts late), then the fewest channel
    groups (each reads the whole input)."""
    candidates = []
    for group in range(step, -(-oc8 // step) * step + 1, step):
        blocks = -(-oc8 // group)
        for parts in range(1, min(units, MAX_WORKGROUPS // blocks) + 1):
            if parts > 1 and units // parts < least:
                break
            n = blocks * parts
            candidates.append((-(-n // WORKERS) * (min(group, oc8) + overhead) * -(-units // parts), n, group,
                               blocks, parts))
    fastest = min(c[0] for c in candidates)
    best = max((c for c in candidates if c[0] <= 1.04 * fastest), key=lambda c: (c[1], -c[3]))
    return best[2:]


@dataclass(frozen=True)
class ConvShape:
    """One conv's static shape: padded input C x Hp x Wp, weights OC x C x KH x KW, output OH x OW."""

    c: int
    hp: int
    wp: int
    oc: int
    kh: int
    kw: int
    oh: int
    ow: int
    sh: int = 1
    sw: int = 1
    dh: int = 1
    dw: int = 1
    unfold: int = 1          # > 1: the horizontal taps of a conv with few channels, run as channels (unfolded())
    unfold_stride: int = 1   # its horizontal stride, at which the pack reads
    isa: str = VNNI          # the kernels' instruction set (targets/kernels): AVX2's packed input is u16

    @classmethod
    def of(cls, op: ir.Operation, isa: str = VNNI) -> "ConvShape":
        """From linalg.conv_2d_nchw_fchw's operands and attributes."""
        x, w, init = (v.type for v in op.operands)
        attr = op.attributes
        sh, sw = (int(s) for s in attr["strides"]) if "strides" in attr else (1, 1)
        dh, dw = (int(d) for d in attr["dilations"]) if "dilations" in attr else (1, 1)
        return cls(*x.shape[1:], *w.shape[:1], *w.shape[2:], *init.shape[2:], sh, sw, dh, dw, isa=isa)

    @property
    def c4(self) -> int:
        return -(-self.c // 4)

    def unfolded(self) -> "ConvShape":
        """This conv as a KH x 1 conv over its KW horizontal taps as channels (channel KW q + t: input channel q
        shifted by t columns, read by the pack at the conv's horizontal stride). For convs whose few channels
        leave the kernel's 4-channel lanes part empty, with no horizontal dilation, when that fills the lanes at
        least as well. Each tap is then a longer K loop, with no columns to drop: ResNet-18's stem (3 channels
        x 7 taps in 24 lanes, not 3 in 4) takes 0.72 ms instead of 0.96 on one core, MobileNetV2's (3 x 3 in
        12) 0.11 instead of 0.16. Itself otherwise."""
        c = self.c * self.kw
        fills = 4 * -(-c // 4) * self.c <= 4 * self.c4 * c   # lanes per channel, unfolded, no more than now
        if self.c % 4 == 0 or self.kw == 1 or self.dw != 1 or c > 32 or not fills:
            return self
        return ConvShape(c, self.hp, self.ow, self.oc, self.kh, 1, self.oh, self.ow, self.sh, 1, self.dh, 1,
                         self.kw, self.sw, self.isa)

    @property
    def xk_bits(self) -> int:
        """The packed input's element width: u8 for vpdpbusd, u16 for AVX2's vpmaddwd."""
        return 16 if self.isa == AVX2 else 8

    @property
    def oc8(self) -> int:
        return -(-self.oc // CHANNEL_BLOCK)

    @property
    def cp(self) -> int:
        return 4 * self.c4

    def ocp(self, block: int = CHANNEL_BLOCK) -> int:
        """Output channels padded to whole blocks of `block` (the packed weights' blocks)."""
        return block * -(-self.oc // block)

    @property
    def phases(self) -> tuple[int, int]:
        """Phase planes per dimension: a strided tap reads every sh-th row, which is contiguous in its plane."""
        return (self.sh if self.kh > 1 else 1), (self.sw if self.kw > 1 else 1)

    @property
    def wq(self) -> int:
        """The grid's width: the padded input's columns per phase plane."""
        return -(-self.wp // self.sw)

    @property
    def vectors(self) -> int:
        """16-pixel vectors that cover the grid, oh x wq."""
        return -(-self.oh * self.wq // 16)

    @property
    def rows_kernel(self) -> bool:
        """Whether edgeq_conv2d_u8s8_rows_requant (output channels in the lanes, each output row in segments of at
        most 8 pixels) takes the conv instead of the grid kernel: it computes no dropped columns and rounds no
        pixels up to whole vectors. On one core (C harness over both kernels, grid -> rows, us): 3x3 convs 256 -> 256
        on 14x14 574 -> 504, 512 -> 512 on 7x7 649 -> 499, 64 -> 64 on 56x56 552 -> 529; stride 2 to 28x28, 14x14
        and 7x7: 277 -> 270, 293 -> 258, 328 -> 253. Not for short sums on wide maps, where its per-tile
        transposing epilogue does not pay: the unfolded stem (147 per output, 646 -> 732), 1x1 convs (64 -> 128 at
        stride 2 to 28x28: 36 -> 47). 1x1 convs only on maps 8 wide and with sums of 128 or more: 64 -> 128 on 7x7
        3.0 -> 3.3, 96 -> 576 18.5 -> 18.8; 128 -> 256 10.5 -> 9.7, 160 -> 960 47.6 -> 42.9, 256 -> 512 38.7 -> 33.6,
        320 -> 1280 119 -> 100 (docs/profiling.md). On AVX2 it is the one conv kernel."""
        if self.isa == AVX2:
            return True
        small = self.ow <= 8 and 5 * 16 * self.vectors >= 6 * self.oh * self.ow   # the grid wastes a sixth
        if self.kh * self.kw > 1:
            return small or self.c * self.kh * self.kw >= 256
        return small and self.c >= 128

    @property
    def rows(self) -> int:
        """Rows per phase plane: enough for the last vector's reads at the farthest tap."""
        farthest = ((self.kh - 1) * self.dh // self.sh) * self.wq + (self.kw - 1) * self.dw // self.sw
        return -(-(16 * self.vectors + farthest) // self.wq)

    @property
    def macs(self) -> int:
        return self.oh * self.ow * self.oc * self.c * self.kh * self.kw

    @property
    def name(self) -> str:
        return (f"conv_{self.c}x{self.hp}x{self.wp}_{self.oc}x{self.kh}x{self.kw}"
                f"_s{self.sh}x{self.sw}_d{self.dh}x{self.dw}" + (f"_u{self.unfold}" if self.unfold > 1 else ""))

    @property
    def source_weights(self) -> str:
        """The weights' type in the model: before unfolding, OC x C x KH x KW."""
        return f"{self.oc}x{self.c // self.unfold}x{self.kh}x{self.kw * self.unfold}xi8"

    def types(self, block: int = CHANNEL_BLOCK) -> dict[str, str]:
        """The tensor types of its function: with the packed weights in blocks of `block` output channels."""
        ph, pw = self.phases
        ocp = self.ocp(block)
        return {"w": f"{self.oc}x{self.c}x{self.kh}x{self.kw}xi8",
                "out": f"1x{self.oc}x{self.oh}x{self.ow}xi32",
                "xk": f"{self.c4}x{ph}x{pw}x{self.rows}x{self.wq}x4xi{self.xk_bits}",
                "wk": f"{ocp // block}x{self.kh}x{self.kw}x{self.c4}x{block}x4xi8", "bk": f"{ocp}xi32"}


@dataclass(frozen=True)
class Source:
    """What the pack reads: the conv's input before its zero-point padding (top rows, left columns, value)."""

    h: int
    w: int
    top: int = 0
    left: int = 0
    value: int = 0

    @classmethod
    def of(cls, x: ir.Value) -> tuple[ir.Value, "Source"]:
        """x's tensor.pad source and padding when x is a constant padding of rows and columns, else x itself."""
        pad = defining_op(x)
        if pad is not None and pad.name == "tensor.pad" and len(pad.operands) == 1:
            low, high = list(pad.attributes["static_low"]), list(pad.attributes["static_high"])
            body = list(pad.regions[0].blocks[0].operations)
            const = defining_op(body[0].operands[0]) if len(body) == 1 else None
            if low[:2] == high[:2] == [0, 0] and const is not None and const.name == "arith.constant":
                src = pad.operands[0]
                value = ir.IntegerAttr(const.attributes["value"]).value
                return src, cls(*src.type.shape[2:], low[2], low[3], value)
        return x, cls(*x.type.shape[2:])

    @property
    def name(self) -> str:
        return f"{self.h}x{self.w}_t{self.top}l{self.left}_v{self.value & 0xFF}"


@dataclass(frozen=True)
class DepthwiseShape:
    """One depthwise conv's static shape: C channels of the padded input Hp x Wp, KH x KW taps, output OH x OW."""

    c: int
    hp: int
    wp: int
    kh: int
    kw: int
    oh: int
    ow: int
    sh: int
    sw: int

    @classmethod
    def of(cls, op: ir.Operation) -> "DepthwiseShape":
        """From linalg.depthwise_conv_2d_nchw_chw's operands and attributes."""
        x, w, init = (v.type for v in op.operands)
        sh, sw = (int(s) for s in op.attributes["strides"]) if "strides" in op.attributes else (1, 1)
        return cls(*x.shape[1:], *w.shape[1:], *init.shape[2:], sh, sw)

    @property
    def name(self) -> str:
        return f"dw_{self.c}x{self.hp}x{self.wp}_{self.kh}x{self.kw}_s{self.sh}x{self.sw}"


@dataclass(frozen=True)
class Export:
    """One entry of the kernel executable: a C function called with bare pointers to its bindings, constant i32
    scalars and its workgroup's x and y."""

    name: str
    function: str
    pointers: tuple[str, ...]   # memref<1xT> per binding; the last `outputs` are written
    scalars: tuple[int, ...]
    groups: tuple[int, int]
    outputs: int = 1
    x_offset: int = 0   # bytes into the first binding where the kernel's input starts (_plane_sibling)

    @property
    def signature(self) -> str:
        """Its pool glue's (_pool_glue): the pointers, the scalars, the grid's x and y, the pool."""
        return ", ".join(self.pointers + ("i32",) * len(self.scalars) + ("index",) * 3)

    def layout(self) -> str:
        """Indirect bindings: without them IREE records the model's command buffer again at every call, as its
        bindings would capture that call's buffers (85 us of MobileNetV2's 2 ms, docs/profiling.md)."""
        bindings = ['#hal.pipeline.binding<storage_buffer, "ReadOnly|Indirect">'] * (len(self.pointers) - self.outputs)
        bindings += ["#hal.pipeline.binding<storage_buffer, Indirect>"] * self.outputs
        return f"#hal.pipeline.layout<bindings = [{', '.join(bindings)}]>"


@dataclass(frozen=True)
class Requant:
    """The requantization of edgeq's integer models, fused into the kernel's epilogue:
    y = i8(clamp((acc * m[oc] + 2^(shift - 1)) >> shift, lo, hi) + zp), in i64, m per output channel."""

    shift: int
    lo: int
    hi: int
    zp: int

    @property
    def name(self) -> str:
        return "rq" + "_".join(str(v).replace("-", "m") for v in (self.shift, self.lo, self.hi, self.zp))


@dataclass(frozen=True)
class ResidualAdd:
    """A residual add of edgeq's integer models after a conv's requantization, fused into the kernel's epilogue:
    y = i8(clamp(((c - zc) mc + (r - zr) mr + 2^(shift - 1)) >> shift + zp, lo, hi)) in wrap-around i32, c the conv's
    i8 output, r the add's other i8 input; k = 2^(shift - 1) - zc mc - zr mr, the same modulo 2^32."""

    mc: int
    mr: int
    k: int
    shift: int
    zp: int
    lo: int
    hi: int

    @property
    def scalars(self) -> tuple[int, ...]:
        return self.mc, self.mr, self.k, self.shift, self.zp, self.lo, self.hi

    @property
    def name(self) -> str:
        return "add" + "_".join(str(v).replace("-", "m") for v in self.scalars)


def conv_export(conv: ConvShape, rq: Requant | None = None, add: ResidualAdd | None = None,
                packs: tuple[ConvShape, Source] | None = None, reads: tuple[ConvShape, Source] | None = None) -> Export:
    """With `packs`, the conv that reads the output and how it reads it: the kernel writes that conv's packed input
    too (a second result), its padding included. With `reads`, the strided conv beside it whose packed input it
    reads a phase plane of (_plane_sibling), and how that conv reads its input."""
    rows = rq is not None and conv.rows_kernel
    wq, plane, phases, offset = conv.wq, conv.rows * conv.wq, conv.phases, 0
    if reads is not None:   # a 1x1 conv: its one tap reads that plane, from the first of its pixels
        sibling, src = reads
        wq, plane, phases = sibling.wq, sibling.rows * sibling.wq, sibling.phases
        offset = ((((src.top % 2) * phases[1] + src.left % 2) * plane + src.top // 2 * wq + src.left // 2) * 4
                  * conv.xk_bits // 8)
    # the grid kernel splits the 16-pixel vectors (in parts of 3 at least: a tile of 1 vector loads as many weights
    # as it computes with), the rows kernel the output rows and its channels in groups of 32
    vectors = -(-conv.oh * wq // 16)
    group, blocks, parts = _split(conv.oc8, conv.oh, 4) if rows else _split(conv.oc8, vectors, 1, 3)
    scalars = (conv.c4, conv.oc, conv.oc8, conv.kh, conv.kw, conv.sh, conv.sw, conv.dh, conv.dw, *phases, wq, plane,
               conv.oh, conv.ow, parts, group)
    groups, suffix = (blocks, parts), _reads_name(reads) if reads else ""
    if rq is None:
        return Export(conv.name + suffix, CONV, ("memref<1xi8>", "memref<1xi8>", "memref<1xi32>", "memref<1xi32>"),
                      scalars, groups, x_offset=offset)
    pointers = ("memref<1xi8>", "memref<1xi8>", "memref<1xi32>", "memref<1xi32>", "memref<1xi8>")
    name, function = (f"{conv.name}_{rq.name}_rows", CONV_ROWS) if rows else (f"{conv.name}_{rq.name}", CONV_REQUANT)
    name, scalars = name + suffix, scalars + (rq.shift, rq.lo, rq.hi, rq.zp)
    if add is not None:
        name, function, scalars = f"{name}_{add.name}", function + ADD, scalars + add.scalars
        pointers = pointers[:4] + ("memref<1xi8>",) + pointers[4:]
    if packs is None:
        return Export(name, function, pointers, scalars, groups, x_offset=offset)
    reader, src = packs
    layout = (reader.rows * reader.wq, reader.wq, reader.rows, src.top, src.left, reader.sh, reader.sw,
              *reader.phases, src.value)
    return Export(name + _packs_name(packs), function + PACKS, pointers + ("memref<1xi8>",), scalars + layout,
                  groups, outputs=2, x_offset=offset)


def pointwise_fits(conv: ConvShape, src: Source, rq: Requant | None) -> bool:
    """Whether the AVX2 set's 1x1 kernel takes the conv: 1x1 at stride 1 on its unpadded input, requantized. It
    reads the input NCHW, so the conv needs no pack (MobileNetV2's expand and project convs)."""
    return (conv.isa == AVX2 and rq is not None and (conv.kh, conv.kw, conv.sh, conv.sw) == (1, 1, 1, 1)
            and (src.h, src.w, src.top, src.left) == (conv.hp, conv.wp, 0, 0))


def _pointwise_split(conv: ConvShape) -> tuple[int, int, int]:
    """Groups of 8-channel blocks x equal parts of the 8-pixel vectors. Each workgroup interleaves its pixels'
    input, which takes about as long as a block's products: MobileNetV2's 960 -> 160 conv on 7 x 7 in 10 groups of
    16 channels took 1.25x as long as in 2 of 80 (C harness, one core)."""
    return _split(conv.oc8, -(-conv.oh * conv.ow // 8), overhead=1)


def pointwise_export(conv: ConvShape, rq: Requant, add: ResidualAdd | None = None) -> Export:
    """Workgroups: _pointwise_split. Two results: the i8 output, and the kernel's scratch (pointwise_scratch
    bytes, unused after)."""
    group, blocks, parts = _pointwise_split(conv)
    name, function = f"{conv.name}_{rq.name}_pw", CONV_POINTWISE
    scalars = (conv.c, conv.oc, conv.oh * conv.ow, parts, group, rq.shift, rq.lo, rq.hi, rq.zp)
    pointers = ("memref<1xi8>", "memref<1xi16>", "memref<1xi32>", "memref<1xi32>", "memref<1xi8>", "memref<1xi8>")
    if add is not None:
        name, function, scalars = f"{name}_{add.name}", function + ADD, scalars + add.scalars
        pointers = pointers[:4] + ("memref<1xi8>",) + pointers[4:]
    return Export(name, function, pointers, scalars, (blocks, parts), outputs=2)


def pointwise_scratch(conv: ConvShape) -> int:
    """The bytes of a 1x1 dispatch's scratch: per workgroup, its strip of 24 pixels' input interleaved in pairs of
    channels, [C/2][24][2] u16 (the kernel's xs)."""
    _, blocks, parts = _pointwise_split(conv)
    return blocks * parts * -(-conv.c // 2) * POINTWISE_PIXELS * 4


def _conv_exports(conv: ConvShape, src: Source, rq: Requant | None, packed: bool = False,
                  add: ResidualAdd | None = None, packs: tuple[ConvShape, Source] | None = None,
                  reads: tuple[ConvShape, Source] | None = None) -> list[Export]:
    """A dense conv's kernel export, then its pack's where it has one (not packed by the kernel before it, and not
    on the AVX2 1x1 kernel, which reads its input NCHW)."""
    if pointwise_fits(conv, src, rq):
        return [pointwise_export(conv, rq, add)]
    return [conv_export(conv, rq, add, packs, reads)] + ([] if packed else [pack_export(conv, src)])


def _reads_name(reads: tuple[ConvShape, Source]) -> str:
    """The suffix of a conv that reads a phase plane of another's packed input: that input's layout, and where the
    plane's pixels start."""
    sibling, src = reads
    return f"_reads_{sibling.rows}x{sibling.wq}_t{src.top}l{src.left}"


def _plane_sibling(k: int, dense: list, winograd_at: list[bool], packed_input: dict) -> int | None:
    """The index in `dense` of a strided conv beside dense[k] whose packed input dense[k] reads instead of packing
    its own: dense[k] a 1x1 conv at stride 2 without padding (ResNet's downsamples) on the rows kernel, the other a
    conv at stride 2 with 2 x 2 phase planes on the same tensor and with the same output size, not on the Winograd
    kernel (the block's first 3x3 conv). The downsample's pixels (2i, 2j) are the padded input's (2i + top,
    2j + left): phase plane (top % 2, left % 2) of that conv's packed input, from row top // 2 and column
    left // 2. On the grid kernel, the plane's extra column costs more than the pack saves (one worker, pack and
    conv against the conv reading the plane: ResNet-18's layer2 downsample 55.6 -> 64.7 us, layer3's 46.5 -> 51.8;
    on the rows kernel, layer4's 63.1 -> 57.5)."""
    op, conv, src, fused = dense[k]
    if ((conv.kh, conv.kw, conv.sh, conv.sw, conv.unfold) != (1, 1, 2, 2, 1) or (src.top, src.left) != (0, 0)
            or (src.h, src.w) != (conv.hp, conv.wp) or k in packed_input or not (fused and conv.rows_kernel)):
        return None
    x = Source.of(op.operands[0])[0]
    for j, (other, sibling, _, _) in enumerate(dense):
        if (j != k and not winograd_at[j] and sibling.unfold == 1 and Source.of(other.operands[0])[0] == x
                and (sibling.sh, sibling.sw, *sibling.phases) == (2, 2, 2, 2)
                and (sibling.oh, sibling.ow) == (conv.oh, conv.ow)):
            return j
    return None


def _packs_name(packs: tuple[ConvShape, Source]) -> str:
    """The suffix of a kernel that writes this reader's packed input: its layout, which the output's shape and it
    determine."""
    reader, src = packs
    return f"{PACKS}_{reader.rows}x{reader.wq}_t{src.top}l{src.left}_s{reader.sh}x{reader.sw}_v{src.value & 0xFF}"


def pack_export(conv: ConvShape, src: Source) -> Export:
    ph, pw = conv.phases
    parts = _parts(conv.c4, 16 * conv.rows * conv.wq * 4, ph * pw)   # a byte packed as 16 MACs
    read_sw = conv.unfold_stride if conv.unfold > 1 else conv.sw   # the column stride the pack reads at
    scalars = (conv.c, src.h, src.w, src.top, src.left, src.value, conv.sh, read_sw, ph, pw, conv.rows, conv.wq,
               parts, conv.unfold)
    return Export(f"pack_{conv.name}_{src.name}", PACK, ("memref<1xi8>", "memref<1xi8>"), scalars, (parts, ph * pw))


def depthwise_export(dw: DepthwiseShape, src: Source, rq: Requant, packed: ConvShape | None = None) -> Export:
    """With `packed`, the 1x1 conv that reads the output: the kernel writes that conv's packed input instead of
    NCHW, in groups of 4 channels."""
    plane = packed.rows * packed.wq if packed else 0
    parts = _split(1, -(-dw.c // 4))[2]   # of the groups of 4 channels
    scalars = (dw.c, src.h, src.w, src.top, src.left, src.value, dw.sh, dw.sw, dw.oh, dw.ow, plane, parts, rq.shift,
               rq.lo, rq.hi, rq.zp)
    return Export(f"{dw.name}_{src.name}_{rq.name}" + ("_packed" if packed else ""), DEPTHWISE,
                  ("memref<1xi8>", "memref<1xi8>", "memref<1xi32>", "memref<1xi32>", "memref<1xi8>"), scalars,
                  (parts, 1))


def patch_fits(conv: ConvShape, rq: Requant | None) -> bool:
    """A requantized conv with few input channels that the patch kernel takes (the stems): a 1x1 conv over its
    whole patch, unfolded in the kernel from the unpadded input, where that has fewer groups of 4 channels than the
    unfolded pack's rows (ResNet-18's 3 x 7 x 7 in 37 groups, not 7 x 6; MobileNetV2's 3 x 3 x 3 in 7, not 3 x 3),
    and its output rows are whole vectors; at most PATCH_MAX_GROUPS, as the kernel keeps a tile's patch on its stack.
    ResNet-18's stem on one core (C harness): 26 us of pack and 643 of conv, 604 in all on the patch kernel."""
    unfolded, groups = conv.unfolded(), -(-conv.c * conv.kh * conv.kw // 4)
    return (rq is not None and unfolded.unfold > 1 and conv.ow % 16 == 0 and conv.dh == conv.dw == 1
            and groups < unfolded.kh * unfolded.c4 and groups <= PATCH_MAX_GROUPS)


def patch_export(conv: ConvShape, src: Source, rq: Requant) -> Export:
    """Each workgroup computes all output channels of its vectors: the patch is unfolded once."""
    parts = _split(1, conv.oh * conv.ow // 16, 1, 3)[2]
    scalars = (conv.c, src.h, src.w, src.top, src.left, src.value, conv.kh, conv.kw, conv.sh, conv.sw, conv.oc,
               conv.oc8, conv.oh, conv.ow, parts, conv.oc8, rq.shift, rq.lo, rq.hi, rq.zp)
    weights = "memref<1xi16>" if conv.isa == AVX2 else "memref<1xi8>"
    return Export(f"{conv.name}_{src.name}_{rq.name}_patch", CONV_PATCH,
                  ("memref<1xi8>", weights, "memref<1xi32>", "memref<1xi32>", "memref<1xi8>"), scalars, (1, parts))


def _patch_function(conv: ConvShape, src: Source, rq: Requant) -> str:
    """The util.func that computes one conv with the patch kernel: (x, w, bias, multipliers) -> i8, one dispatch that
    reads x unpadded. The weights flattened to the patch's channels and packed as [OC/8][C/4][8][4], for the AVX2
    kernel widened to i16."""
    export, oc, f = patch_export(conv, src, rq), conv.oc, conv.c * conv.kh * conv.kw
    fp, ocp, wide = 4 * -(-f // 4), conv.ocp(), conv.isa == AVX2
    x_type, y_type = f"1x{conv.c}x{src.h}x{src.w}xi8", f"1x{oc}x{conv.oh}x{conv.ow}xi8"
    wk_type = f"{conv.oc8}x{fp // 4}x{CHANNEL_BLOCK}x4x{'i16' if wide else 'i8'}"
    lines = ["%zero = arith.constant 0 : i8", "%c0_i32 = arith.constant 0 : i32", "%m128 = arith.constant -128 : i32",
             f"%wf = tensor.collapse_shape %w [[0], [1, 2, 3]] : tensor<{conv.source_weights}> into "
             f"tensor<{oc}x{f}xi8>"]
    w, start = "%wf", "%bias"
    if (fp, ocp) != (f, oc):   # zero weights for the padded channels
        lines.append(f"%wp = tensor.pad %wf low[0, 0] high[{ocp - oc}, {fp - f}] {{\n    ^bb0(%i: index, %j: index):\n"
                     f"      tensor.yield %zero : i8\n    }} : tensor<{oc}x{f}xi8> to tensor<{ocp}x{fp}xi8>")
        w = "%wp"
    if ocp != oc:
        lines.append(f"%b0 = tensor.pad %bias low[0] high[{ocp - oc}] {{\n    ^bb0(%i: index):\n"
                     f"      tensor.yield %c0_i32 : i32\n    }} : tensor<{oc}xi32> to tensor<{ocp}xi32>")
        start = "%b0"
    lines += [
        f"%we = tensor.empty() : tensor<{wk_type}>",
        "%wk = linalg.generic {indexing_maps = [affine_map<(o, c, l, k) -> "
        f"(o * {CHANNEL_BLOCK} + l, c * 4 + k)>, affine_map<(o, c, l, k) -> (o, c, l, k)>], iterator_types = ["
        + ", ".join(['"parallel"'] * 4) + "]} "
        f"ins({w} : tensor<{ocp}x{fp}xi8>) outs(%we : tensor<{wk_type}>) {{\n"
        + ("    ^bb0(%in: i8, %out: i16):\n      %e = arith.extsi %in : i8 to i16\n      linalg.yield %e : i16\n"
           if wide else "    ^bb0(%in: i8, %out: i8):\n      linalg.yield %in : i8\n") +
        f"    }} -> tensor<{wk_type}>",
        _compensated(w, f"{ocp}x{fp}xi8", start, f"{ocp}xi32", "o, c", "o"),
    ]
    return _requantizing_function(export, lines, x_type, conv.source_weights, wk_type, f"{ocp}xi32", oc, y_type)


def _requantizing_function(export: Export, lines: list[str], x_type: str, w_type: str, wk_type: str, bk_type: str,
                           oc: int, y_type: str) -> str:
    """The util.func (x, w, bias, multipliers) -> i8 of a kernel that requantizes: `lines`, which make %wk and %bk
    from %w and %bias, then the dispatch of `export` on x and them."""
    lines = lines + [
        f"%y = flow.dispatch @{EXECUTABLE}::@{export.name}(%x, %wk, %bk, %mult) : (tensor<{x_type}>, "
        f"tensor<{wk_type}>, tensor<{bk_type}>, tensor<{oc}x1x1xi32>) -> tensor<{y_type}>",
        f"util.return %y : tensor<{y_type}>",
    ]
    return _util_func(f"edgeq_{export.name}", f"%x: tensor<{x_type}>, %w: tensor<{w_type}>, %bias: tensor<{oc}xi32>, "
                      f"%mult: tensor<{oc}x1x1xi32>", f"tensor<{y_type}>", lines)


def _util_func(name: str, params: str, results: str, lines: list[str]) -> str:
    """The text of util.func private @name(params) -> results, whose body is `lines`."""
    body = "\n".join("  " + ln for ln in lines)
    return f"util.func private @{name}({params}) -> {results} {{\n{body}\n}}"


def winograd_fits(conv: ConvShape, src: Source) -> bool:
    """A 3x3 stride-1 conv padded by 1 on each side that the Winograd kernel takes: an even number of channels up to
    WINOGRAD_MAX_C, output channels in blocks of 64, transformed weights (36 x C x OC i16, against 9 x C x OC i8)
    that grow the weights by at most WINOGRAD_MAX_GROWTH: ResNet's layer1 and layer2, and on AVX2 layer3."""
    return ((conv.kh, conv.kw, conv.sh, conv.sw, conv.dh, conv.dw, conv.unfold) == (3, 3, 1, 1, 1, 1, 1)
            and (src.top, src.left, src.h, src.w) == (1, 1, conv.oh, conv.ow) and conv.c % 2 == 0
            and conv.c <= WINOGRAD_MAX_C[conv.isa] and conv.oc % WINOGRAD_OC == 0
            and (72 - 9) * conv.c * conv.oc <= WINOGRAD_MAX_GROWTH[conv.isa])


def _winograd_tiles(conv: ConvShape) -> int:
    return -(-conv.oh // 4) * -(-conv.ow // 4)


def winograd_export(conv: ConvShape, src: Source, rq: Requant, add: ResidualAdd | None) -> Export:
    """Two results: the i8 output, and the kernel's scratch (winograd_scratch bytes, unused after); where the
    workgroups claim the pieces (winograd_claims), the conv's claims are written too (_winograd_function)."""
    oc_parts, parts = _winograd_parts(conv)
    claims = winograd_claims(conv)
    name = (f"winograd_{conv.c}x{conv.oh}x{conv.ow}_{conv.oc}_v{src.value & 0xFF}_{rq.name}"
            + (f"_{add.name}" if add else ""))
    pointers = ("memref<1xi8>", "memref<1xi16>", "memref<1xi32>", "memref<1xi32>") + (
        ("memref<1xi8>",) if add else ()) + (("memref<1xi64>",) if claims else ()) + ("memref<1xi8>", "memref<1xi8>")
    scalars = (conv.c, conv.oc, conv.oh, conv.ow, src.value, parts, oc_parts, rq.shift, rq.lo, rq.hi, rq.zp)
    return Export(name, WINOGRAD + (ADD if add else "") + (CLAIMED if claims else ""), pointers,
                  scalars + (add.scalars if add else ()), (oc_parts, parts), outputs=3 if claims else 2)


def _winograd_parts(conv: ConvShape) -> tuple[int, int]:
    """(parts of the output channels, ranges of the tiles). Ranges of about WINOGRAD_SPAN tiles, as many per
    worker: ResNet-18's layer1 (196 tiles) took 5.09 ms in 2 parts, 5.16 in 4, 5.23 in 6, and 5.68 in 3 (one worker
    idle at the end); each range transforms its own input. The AVX2 kernel splits a conv whose tiles make one
    piece by its output channels instead, so that each worker reads half of the transformed weights: ResNet's
    layer3 (16 tiles, 4.7 MB of weights)."""
    tiles = _winograd_tiles(conv)
    if conv.isa == AVX2 and tiles <= WINOGRAD_PIECE[AVX2]:
        return WORKERS, 1
    return 1, max(1, min(tiles, MAX_WORKGROUPS, WORKERS * -(-tiles // (WORKERS * WINOGRAD_SPAN))))


def winograd_scratch(conv: ConvShape) -> int:
    """The bytes of a Winograd dispatch's scratch: per workgroup, V [36][C/2][piece][2] i16 (64-byte aligned) for
    the piece of its range it computes at a time (WINOGRAD_PIECE tiles, or a tile row if longer; on AVX2 whole tile
    rows; at most the range); then for the VNNI kernel M [36][6 tiles][64 channels] i32, for the AVX2 one M
    [piece][16 channels][36] and its chunks' sums [piece][16 channels][16] i32."""
    oc_parts, parts = _winograd_parts(conv)
    piece = _winograd_piece(conv)
    sums = 36 * WINOGRAD_TILES * WINOGRAD_OC * 4 if conv.isa == VNNI else piece * WINOGRAD_GROUP[AVX2] * (36 + 16) * 4
    return oc_parts * parts * (-(-36 * conv.c * piece * 2 // 64) * 64 + sums)


def _winograd_piece(conv: ConvShape) -> int:
    """The tiles a workgroup transforms and computes at a time (winograd_scratch)."""
    tw, piece = -(-conv.ow // 4), WINOGRAD_PIECE[conv.isa]
    piece = max(piece, tw) if conv.isa == VNNI else max(piece // tw * tw, tw)
    return min(piece, -(-_winograd_tiles(conv) // _winograd_parts(conv)[1]))


def winograd_claims(conv: ConvShape) -> bool:
    """Whether the conv's two workgroups claim its pieces from both ends of the tiles instead of each taking its
    range (the VNNI kernel's winograd_conv): where both ranges are whole pieces, ResNet's layer1 (7 tile rows
    each). At times one vCPU is slower at memory than the other, and a static split waits for it (docs/profiling.md,
    stop 35). Layer2 (49 tiles) would need smaller pieces near the middle, which cost as much as they saved."""
    return (conv.isa == VNNI and _winograd_parts(conv) == (1, 2)
            and _winograd_tiles(conv) % (2 * _winograd_piece(conv)) == 0)


# G' (the rows of Winograd F(4, 3)'s G scaled to integers by 4, 6, 6, 24, 24, 1; the kernel's header)
_WINOGRAD_G = ((1, 0, 0), (-1, -1, -1), (-1, 1, -1), (1, 2, 4), (1, -2, 4), (0, 0, 1))


def _winograd_function(conv: ConvShape, src: Source, rq: Requant, add: ResidualAdd | None) -> str:
    """The util.func that computes one conv with the Winograd kernel: (x, w, bias, multipliers[, residual]) -> i8,
    one dispatch that reads x unpadded. The filters' transform U = G' g G'^T, [OC/n][6][6][C/2][n][2] i16 with n
    output channels per group (WINOGRAD_GROUP), is a
    generic on the constant weights (IREE evaluates it at compile time), summed in wrap-around i16: exact, as
    |U| <= 49 * 128."""
    c, oc, pairs = conv.c, conv.oc, conv.c // 2
    export = winograd_export(conv, src, rq, add)
    name = _callee(conv, src, rq, add=add, winograd=True)
    # the pieces that its workgroups claimed (winograd_claims): a global updated in place, 0 between calls; IREE
    # orders the dispatches that use it
    claims = export.function.endswith(CLAIMED) and f"{name}_claims"
    in_claims, claims_type, claimed = (", %claims", ", tensor<2xi64>", ", %claimed") if claims else ("", "", "")
    x_type, y_type = f"1x{c}x{src.h}x{src.w}xi8", f"1x{oc}x{conv.oh}x{conv.ow}xi8"
    group = WINOGRAD_GROUP[conv.isa]
    u_type = f"{oc // group}x6x6x{pairs}x{group}x2xi16"
    gg = ", ".join(str(a * b) for ra in _WINOGRAD_G for rb in _WINOGRAD_G for a in ra for b in rb)
    dims = "ob, p, q, cp, o, k, i, j"
    res, res_type = (", %res", f", tensor<{y_type}>") if add else ("", "")
    scratch = f"{winograd_scratch(conv)}xi8"
    lines = [
        "%z16 = arith.constant 0 : i16",
        f"%gg = arith.constant dense<[{gg}]> : tensor<324xi16>",
        "%g = tensor.expand_shape %gg [[0, 1, 2, 3]] output_shape [6, 6, 3, 3] : tensor<324xi16> into "
        "tensor<6x6x3x3xi16>",   # [p][q][i][j]: G'[p][i] G'[q][j]
        f"%ue = tensor.empty() : tensor<{u_type}>",
        f"%u0 = linalg.fill ins(%z16 : i16) outs(%ue : tensor<{u_type}>) -> tensor<{u_type}>",
        f"%u = linalg.generic {{indexing_maps = [affine_map<({dims}) -> (ob * {group} + o, cp * 2 + k, i, j)>, "
        f"affine_map<({dims}) -> (p, q, i, j)>, affine_map<({dims}) -> (ob, p, q, cp, o, k)>], iterator_types = ["
        + ", ".join(['"parallel"'] * 6 + ['"reduction"'] * 2) + "]} "
        f"ins(%w, %g : tensor<{oc}x{c}x3x3xi8>, tensor<6x6x3x3xi16>) outs(%u0 : tensor<{u_type}>) {{\n"
        "    ^bb0(%in: i8, %gv: i16, %out: i16):\n      %e = arith.extsi %in : i8 to i16\n"
        "      %m = arith.muli %e, %gv : i16\n      %s = arith.addi %out, %m : i16\n      linalg.yield %s : i16\n"
        f"    }} -> tensor<{u_type}>",
        *([f"%claims = util.global.load @{claims} : tensor<2xi64>"] if claims else []),
        f"%y, %ws{claimed} = flow.dispatch @{EXECUTABLE}::@{export.name}(%x, %u, %bias, %mult{res}{in_claims}) : ("
        f"tensor<{x_type}>, tensor<{u_type}>, tensor<{oc}xi32>, tensor<{oc}x1x1xi32>{res_type}{claims_type}) -> ("
        f"tensor<{y_type}>, tensor<{scratch}>{in_claims})",
        *([f"util.global.store %claimed, @{claims} : tensor<2xi64>"] if claims else []),
        f"util.return %y : tensor<{y_type}>",
    ]
    args = f"%bias: tensor<{oc}xi32>, %mult: tensor<{oc}x1x1xi32>" + (f", %res: tensor<{y_type}>" if add else "")
    function = _util_func(name, f"%x: tensor<{x_type}>, %w: tensor<{conv.source_weights}>, {args}",
                          f"tensor<{y_type}>", lines)
    return f"util.global private mutable @{claims} = dense<0> : tensor<2xi64>\n{function}" if claims else function


def _compensated(w: str, w_type: str, start: str, out_type: str, dims: str, out: str) -> str:
    """%bk, where a kernel's sums start: `start` - 128 * sum(w) over w's dims (`dims`, names) other than `out`,
    which undoes the kernels' reading of x + 128. Needs %m128 (-128 : i32) defined before it."""
    names = [d.strip() for d in dims.split(",")]
    iterators = ", ".join('"parallel"' if d == out else '"reduction"' for d in names)
    return (f"%bk = linalg.generic {{indexing_maps = [affine_map<({dims}) -> ({dims})>, affine_map<({dims}) -> "
            f"({out})>], iterator_types = [{iterators}]}} ins({w} : tensor<{w_type}>) outs({start} : "
            f"tensor<{out_type}>) {{\n"
            "    ^bb0(%in: i8, %out: i32):\n      %e = arith.extsi %in : i8 to i32\n"
            "      %m = arith.muli %e, %m128 : i32\n      %s = arith.addi %out, %m : i32\n      linalg.yield %s : i32\n"
            f"    }} -> tensor<{out_type}>")


def _depthwise_function(dw: DepthwiseShape, src: Source, rq: Requant, packed: ConvShape | None) -> str:
    """The util.func that computes one depthwise conv and its requantization with the kernel: (x, w, bias,
    multipliers) -> i8, NCHW or packed for `packed`. Each row of taps is padded to 4, one vpdpbusd per row; the
    sums start at bias - 128 * sum(w)."""
    c, export = dw.c, depthwise_export(dw, src, rq, packed)
    x_type = f"1x{c}x{src.h}x{src.w}xi8"
    out = packed.types()["xk"] if packed else f"1x{c}x{dw.oh}x{dw.ow}xi8"
    w_type = f"{c}x{dw.kh}x{dw.kw}xi8"
    lines = [
        "%zero = arith.constant 0 : i8",
        "%m128 = arith.constant -128 : i32",
        f"%wk = tensor.pad %w low[0, 0, 0] high[0, 0, {4 - dw.kw}] {{\n    ^bb0(%i: index, %j: index, %k: index):\n"
        f"      tensor.yield %zero : i8\n    }} : tensor<{w_type}> to tensor<{c}x{dw.kh}x4xi8>",
        _compensated("%w", w_type, "%bias", f"{c}xi32", "c, i, j", "c"),
    ]
    return _requantizing_function(export, lines, x_type, w_type, f"{c}x{dw.kh}x4xi8", f"{c}xi32", c, out)


@dataclass(frozen=True)
class LinearShape:
    """A batch-1 linear layer: an input row of K i8 times a K x N i8 matrix (linalg.matmul 1xK by KxN)."""

    k: int
    n: int

    @property
    def k4(self) -> int:
        return -(-self.k // 4)

    @property
    def n16(self) -> int:
        return -(-self.n // LINEAR_BLOCK)

    @property
    def name(self) -> str:
        return f"linear_{self.k}x{self.n}"

    def types(self) -> dict[str, str]:
        return {"x": f"1x{self.k}xi8", "w": f"{self.k}x{self.n}xi8", "bias": f"{self.n}xi32",
                "wp": f"{4 * self.k4}x{LINEAR_BLOCK * self.n16}xi8", "bk": f"{LINEAR_BLOCK * self.n16}xi32",
                "wk": f"{self.n16}x{self.k4}x{LINEAR_BLOCK}x4xi8", "out": f"1x{self.n}xi32"}


def linear_export(lin: LinearShape) -> Export:
    group, blocks, _ = _split(lin.n16, 1)   # of the blocks of 16 outputs
    return Export(lin.name, LINEAR, ("memref<1xi8>", "memref<1xi8>", "memref<1xi32>", "memref<1xi32>"),
                  (lin.k, lin.n, group), (blocks, 1))


def _linear_function(lin: LinearShape) -> str:
    """The util.func that computes a batch-1 linear layer with the kernel: (x, w, bias) -> i32 sums + bias. The
    constant weights are padded with zeros to whole groups of 4 inputs and 16 outputs and packed as
    [N/16][K/4][16][4]; the sums start at bias - 128 * sum(w)."""
    t, export = lin.types(), linear_export(lin)
    lines = ["%zero = arith.constant 0 : i8", "%c0_i32 = arith.constant 0 : i32", "%m128 = arith.constant -128 : i32"]
    w, bias = "%w", "%bias"
    if t["wp"] != t["w"]:
        lines.append(f"%wp = tensor.pad %w low[0, 0] high[{4 * lin.k4 - lin.k}, {LINEAR_BLOCK * lin.n16 - lin.n}] {{\n"
                     f"    ^bb0(%i: index, %j: index):\n      tensor.yield %zero : i8\n"
                     f"    }} : tensor<{t['w']}> to tensor<{t['wp']}>")
        w = "%wp"
    if t["bk"] != t["bias"]:
        lines.append(f"%bp = tensor.pad %bias low[0] high[{LINEAR_BLOCK * lin.n16 - lin.n}] {{\n    ^bb0(%i: index):\n"
                     f"      tensor.yield %c0_i32 : i32\n    }} : tensor<{t['bias']}> to tensor<{t['bk']}>")
        bias = "%bp"
    lines += [
        f"%we = tensor.empty() : tensor<{t['wk']}>",
        f"%wk = linalg.generic {{indexing_maps = [affine_map<(b, q, l, j) -> (q * 4 + j, b * {LINEAR_BLOCK} + l)>, "
        "affine_map<(b, q, l, j) -> (b, q, l, j)>], iterator_types = "
        '["parallel", "parallel", "parallel", "parallel"]} '
        f"ins({w} : tensor<{t['wp']}>) outs(%we : tensor<{t['wk']}>) {{\n"
        f"    ^bb0(%in: i8, %out: i8):\n      linalg.yield %in : i8\n    }} -> tensor<{t['wk']}>",
        _compensated(w, t["wp"], bias, t["bk"], "k, n", "n"),
        f"%y = flow.dispatch @{EXECUTABLE}::@{export.name}(%x, %wk, %bk) : (tensor<{t['x']}>, tensor<{t['wk']}>, "
        f"tensor<{t['bk']}>) -> tensor<{t['out']}>",
        f"util.return %y : tensor<{t['out']}>",
    ]
    return _util_func(f"edgeq_{lin.name}", f"%x: tensor<{t['x']}>, %w: tensor<{t['w']}>, %bias: tensor<{t['bias']}>",
                      f"tensor<{t['out']}>", lines)


def _pad(value: str, source: str, shape: str, high: str) -> str:
    """tensor.pad of a 4-d i8 `value` (type `source`) with %zero at the end of each dimension to `shape`."""
    idx = ", ".join(f"%i{k}: index" for k in range(4))
    return (f"tensor.pad {value} low[0, 0, 0, 0] high[{high}] {{\n    ^bb0({idx}):\n      tensor.yield %zero : i8\n"
            f"    }} : tensor<{source}> to tensor<{shape}>")


def _function(conv: ConvShape, src: Source, rq: Requant | None, packed: bool = False,
              add: ResidualAdd | None = None, packs: tuple[ConvShape, Source] | None = None,
              reads: tuple[ConvShape, Source] | None = None) -> str:
    """The util.func that computes one conv with the kernels (see the module docstring): (x, w, init) -> i32 sums,
    or with rq, (x, w, bias, multipliers) -> i8, and with add, (..., residual) -> i8 after the add; `packed`: x
    comes packed (from the kernel before); with `packs`, the i8 result and that reader's packed input; with
    `reads` (and `packed`), x is that conv's packed input (conv_export)."""
    block = _weight_block(conv, rq)
    t, ocp = conv.types(block), conv.ocp(block)
    if reads is not None:
        t["xk"] = reads[0].types()["xk"]
    x_type = t["xk"] if packed else f"1x{conv.c // conv.unfold}x{src.h}x{src.w}xi8"
    pointwise = pointwise_fits(conv, src, rq)   # its weights widened to i16, its input as it is
    if pointwise:
        t["xk"], t["wk"] = x_type, t["wk"].replace("xi8", "xi16")
    w_src, w_type = "%w", f"{ocp}x{conv.cp}x{conv.kh}x{conv.kw}xi8"
    lines = ["%zero = arith.constant 0 : i8", "%c0_i32 = arith.constant 0 : i32"]
    if conv.unfold > 1:   # w[o][q][i][t] -> [o][unfold q + t][i][0]
        u, c, kh = conv.unfold, conv.c // conv.unfold, conv.kh
        lines += [f"%wt0 = tensor.empty() : tensor<{conv.oc}x{c}x{u}x{kh}xi8>",
                  f"%wt = linalg.transpose ins(%w : tensor<{conv.source_weights}>) outs(%wt0 : "
                  f"tensor<{conv.oc}x{c}x{u}x{kh}xi8>) permutation = [0, 1, 3, 2]",
                  f"%wu = tensor.expand_shape %wt [[0], [1], [2], [3, 4]] output_shape [{conv.oc}, {c}, {u}, {kh}, 1]"
                  f" : tensor<{conv.oc}x{c}x{u}x{kh}xi8> into tensor<{conv.oc}x{c}x{u}x{kh}x1xi8>",
                  f"%wv = tensor.collapse_shape %wu [[0], [1, 2], [3], [4]] : tensor<{conv.oc}x{c}x{u}x{kh}x1xi8> "
                  f"into tensor<{t['w']}>"]
        w_src = "%wv"
    if (conv.cp, ocp) != (conv.c, conv.oc):   # zero weights for the padded channels
        lines.append("%wc = " + _pad(w_src, t["w"], w_type, f"{ocp - conv.oc}, {conv.cp - conv.c}, 0, 0"))
        w_src = "%wc"
    if rq is None:   # the sums start at -128 * sum(w); the init is added after
        lines += [f"%be = tensor.empty() : tensor<{t['bk']}>",
                  f"%b0 = linalg.fill ins(%c0_i32 : i32) outs(%be : tensor<{t['bk']}>) -> tensor<{t['bk']}>"]
    elif ocp != conv.oc:   # at bias - 128 * sum(w)
        lines.append(f"%b0 = tensor.pad %bias low[0] high[{ocp - conv.oc}] {{\n    ^bb0(%i: index):\n"
                     f"      tensor.yield %c0_i32 : i32\n    }} : tensor<{conv.oc}xi32> to tensor<{t['bk']}>")
    start = "%bias" if rq and ocp == conv.oc else "%b0"
    parallel = '"parallel"'
    export = _conv_exports(conv, src, rq, packed, add, packs, reads)[0]
    x = "%x"
    if not packed and not pointwise:
        x = "%xk"
        lines.append(_pack_dispatch(conv, src))
    lines += [
        f"%we = tensor.empty() : tensor<{t['wk']}>",
        "%wk = linalg.generic {indexing_maps = [affine_map<(o, i, j, c, l, k) -> "
        f"(o * {block} + l, c * 4 + k, i, j)>, "
        "affine_map<(o, i, j, c, l, k) -> (o, i, j, c, l, k)>], iterator_types = ["
        + ", ".join([parallel] * 6) + "]} "
        f"ins({w_src} : tensor<{w_type}>) outs(%we : tensor<{t['wk']}>) {{\n"
        + ("    ^bb0(%in: i8, %out: i16):\n      %e = arith.extsi %in : i8 to i16\n      linalg.yield %e : i16\n"
           if pointwise else "    ^bb0(%in: i8, %out: i8):\n      linalg.yield %in : i8\n") +
        f"    }} -> tensor<{t['wk']}>",
        "%m128 = arith.constant -128 : i32",
        _compensated(w_src, w_type, start, t["bk"], "o, c, i, j", "o"),
    ]
    if rq is None:
        lines += [
            f"%yk = flow.dispatch @{EXECUTABLE}::@{export.name}({x}, %wk, %bk) : (tensor<{t['xk']}>, "
            f"tensor<{t['wk']}>, tensor<{t['bk']}>) -> tensor<{t['out']}>",
            "%y = linalg.generic {indexing_maps = [affine_map<(n, o, h, w) -> (n, o, h, w)>, "
            "affine_map<(n, o, h, w) -> (n, o, h, w)>], iterator_types = [" + ", ".join([parallel] * 4) + "]} "
            f"ins(%yk : tensor<{t['out']}>) outs(%init : tensor<{t['out']}>) {{\n"
            "    ^bb0(%in: i32, %out: i32):\n      %s = arith.addi %in, %out : i32\n      linalg.yield %s : i32\n"
            f"    }} -> tensor<{t['out']}>",
            f"util.return %y : tensor<{t['out']}>"]
        args, results = f"%init: tensor<{t['out']}>", f"tensor<{t['out']}>"
    else:
        y = f"tensor<{t['out'].replace('xi32', 'xi8')}>"
        res, res_type = (", %res", f", {y}") if add else ("", "")
        ys, results = ("%y, %yk", f"{y}, tensor<{packs[0].types()['xk']}>") if packs else ("%y", y)
        outs = f"{y}, tensor<{pointwise_scratch(conv)}xi8>" if pointwise else results   # and the 1x1's scratch
        lines += [
            f"{'%y, %ws' if pointwise else ys} = flow.dispatch @{EXECUTABLE}::@{export.name}({x}, %wk, %bk, "
            f"%mult{res}) : (tensor<{t['xk']}>, tensor<{t['wk']}>, tensor<{t['bk']}>, tensor<{conv.oc}x1x1xi32>"
            f"{res_type}) -> ({outs})",
            f"util.return {ys} : {results}"]
        args = f"%bias: tensor<{conv.oc}xi32>, %mult: tensor<{conv.oc}x1x1xi32>" + (f", %res: {y}" if add else "")
    return _util_func(_callee(conv, src, rq, packed, add, packs, reads=reads),
                      f"%x: tensor<{x_type}>, %w: tensor<{conv.source_weights}>, {args}", f"({results})", lines)


def _weight_block(conv: ConvShape, rq: Requant | None) -> int:
    """Output channels per block of a conv's packed weights: ROWS_BLOCK for the rows kernel on VNNI, which loads a
    block's 64 bytes per step as one vector, else CHANNEL_BLOCK."""
    return ROWS_BLOCK if rq is not None and conv.rows_kernel and conv.isa == VNNI else CHANNEL_BLOCK


def _pack_dispatch(conv: ConvShape, src: Source) -> str:
    """%xk, the conv's input x packed by edgeq_pack_u8."""
    return (f"%xk = flow.dispatch @{EXECUTABLE}::@{pack_export(conv, src).name}(%x) : "
            f"(tensor<1x{conv.c // conv.unfold}x{src.h}x{src.w}xi8>) -> tensor<{conv.types()['xk']}>")


def _pack_function(conv: ConvShape, src: Source) -> str:
    """The util.func that packs a conv's input, for that conv and a downsample that reads it (_plane_sibling)."""
    x_type, xk_type = f"1x{conv.c}x{src.h}x{src.w}xi8", conv.types()["xk"]
    return _util_func(f"edgeq_{pack_export(conv, src).name}", f"%x: tensor<{x_type}>", f"tensor<{xk_type}>",
                      [_pack_dispatch(conv, src), f"util.return %xk : tensor<{xk_type}>"])


def _callee(conv: ConvShape, src: Source, rq: Requant | None, packed: bool = False,
            add: ResidualAdd | None = None, packs: tuple[ConvShape, Source] | None = None,
            winograd: bool = False, reads: tuple[ConvShape, Source] | None = None) -> str:
    return (f"edgeq_{conv.name}_{src.name}" + (f"_{rq.name}" if rq else "") + ("_packed" if packed else "")
            + (_reads_name(reads) if reads else "") + (f"_{add.name}" if add else "")
            + (_packs_name(packs) if packs else "") + ("_winograd" if winograd else ""))


def _entry(export: Export, ordinal: int) -> str:
    """The export, one workgroup, and its shim: it asks the host runtime for its pool (the import edgeq_pool,
    targets/kernels/pool.c) and hands the kernel's workgroups (export.groups) to it through the kernel's pool glue
    (_pool_glue)."""
    layout = export.layout()
    # the first binding from x_offset, aligned to what divides it
    offsets = [(export.x_offset if k == 0 else 0) for k in range(len(export.pointers))]
    bindings = "\n".join(
        f"      %b{k} = hal.interface.binding.subspan layout({layout}) binding({k}) alignment({math.gcd(64, at)}) "
        f"offset(%c{at}){' flags(ReadOnly)' if k < len(export.pointers) - export.outputs else ''} : {m}"
        for k, (m, at) in enumerate(zip(export.pointers, offsets)))
    starts = "\n".join(f"      %c{at} = arith.constant {at} : index" for at in sorted(set(offsets) - {0}))
    consts = "\n".join(f"      %s{k} = arith.constant {v} : i32" for k, v in enumerate(export.scalars))
    gx, gy = export.groups
    args = ", ".join([f"%b{k}" for k in range(len(export.pointers))] +
                     [f"%s{k}" for k in range(len(export.scalars))] + ["%gx", "%gy", "%pool"])
    return f"""  hal.executable.export public @{export.name} ordinal({ordinal}) layout({layout})
      count(%device: !hal.device) -> (index, index, index) {{
    %c1 = arith.constant 1 : index
    hal.return %c1, %c1, %c1 : index, index, index
  }}""", f"""    func.func @{export.name}() {{
      %c0 = arith.constant 0 : index
{starts}
{bindings}
{consts}
      %gx = arith.constant {gx} : index
      %gy = arith.constant {gy} : index
      %pool = func.call @edgeq_pool() : () -> index
      func.call @{export.function}{POOLED}({args}) : ({export.signature}) -> ()
      return
    }}"""


def _pool_glue(exports: list[Export]) -> str:
    """C for each kernel function f: f_pooled(its pointers, its i32 scalars, the grid's x and y, the pool), which
    runs f's workgroups (x fastest) on the pool."""
    lines = ["#include <stddef.h>", "#include <stdint.h>",
             "typedef void (*body_fn)(const void* args, size_t workgroup);",
             "typedef struct pool { void (*run)(struct pool*, body_fn, const void*, size_t); } pool_t;"]
    for f, e in {e.function: e for e in exports}.items():
        types = [f"int{m.removeprefix('memref<1xi').removesuffix('>')}_t*" for m in e.pointers]   # int8_t*, ...
        ns = len(e.scalars)
        pointers = [f"({t})p->b[{k}]" for k, t in enumerate(types)]
        call = ", ".join(pointers + [f"p->s[{k}]" for k in range(ns)] + ["g % p->gx", "g / p->gx"])
        params = ", ".join([f"void* b{k}" for k in range(len(types))] + [f"int32_t s{k}" for k in range(ns)])
        lines += [f"void {f}({', '.join(types + ['int32_t'] * ns)}, size_t, size_t);",
                  f"typedef struct {{ void* b[{len(types)}]; int32_t s[{max(ns, 1)}]; size_t gx; }} args_{f};",
                  f"static void body_{f}(const void* args, size_t g) {{",
                  f"  const args_{f}* p = args;",
                  f"  {f}({call});",
                  "}",
                  f"void {f}{POOLED}({params}, size_t gx, size_t gy, pool_t* pool) {{",
                  f"  const args_{f} a = {{{{{', '.join(f'b{k}' for k in range(len(types)))}}}, "
                  f"{{{', '.join(f's{k}' for k in range(ns)) or '0'}}}, gx}};",
                  f"  pool->run(pool, body_{f}, &a, gx * gy);",
                  "}"]
    return "\n".join(lines) + "\n"


def _strides_dilated(op: ir.Operation) -> tuple[int, bool]:
    """A conv's largest stride, and whether it is dilated."""
    attr = op.attributes
    stride = max(int(s) for s in attr["strides"]) if "strides" in attr else 1
    return stride, "dilations" in attr and any(int(d) > 1 for d in attr["dilations"])


def _i8_batch1(op: ir.Operation) -> bool:
    x, w, init = (v.type for v in op.operands)
    return (all(t.has_static_shape for t in (x, w, init)) and x.shape[0] == 1
            and (int_width(x), int_width(w), int_width(init)) == (8, 8, 32))


def _matches(op: ir.Operation) -> bool:
    stride, dilated = _strides_dilated(op)
    return _i8_batch1(op) and stride <= 2 and not (stride > 1 and dilated)


def _matches_depthwise(op: ir.Operation) -> bool:
    """3x3 taps, stride 1 or 2 the same in both dimensions (the kernel's copies), no dilation."""
    stride, dilated = _strides_dilated(op)
    square = "strides" not in op.attributes or len({int(s) for s in op.attributes["strides"]}) == 1
    return (_i8_batch1(op) and stride <= 2 and square and not dilated
            and op.operands[1].type.shape[1:] == [3, 3])


def kernel_executable(exports: list[Export], isa: str = VNNI) -> str:
    """The hal.executable.source with the given exports, linking the kernels' object and their pool glue. The C
    functions take bare pointers (memref<1xT>: only the address is passed), i32 scalars and the workgroup's x and
    y; their glue the pointers, the scalars, the grid's x and y and the pool."""
    from edgeq.targets.kernels import glue_object, object_attribute

    entries = [_entry(e, k) for k, e in enumerate(exports)]
    declared = {e.function: e.signature for e in exports}
    shims = "\n".join([f"    func.func private @{f}{POOLED}({sig}) attributes "
                        "{hal.import.static, llvm.bareptr = true}" for f, sig in declared.items()]
                       + ["    func.func private @edgeq_pool() -> index"] + [shim for _, shim in entries])
    glue = glue_object("pool_glue", _pool_glue(exports), isa)
    return (f"hal.executable.source private @{EXECUTABLE} <{{objects = #hal.executable.objects<{{"
            f"{object_attribute(isa, glue)}}}>}}> {{\n" + "\n".join(e for e, _ in entries) +
            f"\n  builtin.module {{\n{shims}\n  }}\n}}")


def _constant(value: ir.Value) -> int | None:
    op = defining_op(value)
    return ir.IntegerAttr(op.attributes["value"]).value if op is not None and op.name == "arith.constant" else None


def _requantization(conv_op: ir.Operation) -> tuple[ir.Operation, ir.Value, ir.Value, Requant] | None:
    """(the requantizing generic, the bias vector, the multipliers, the constants) when the conv starts from a
    broadcast bias and its only use is edgeq's requantization (Requant) with multipliers per output channel;
    the residual adds and anything else keep the conv's i32 sums."""
    init = defining_op(conv_op.operands[2])
    uses = list(conv_op.results[0].uses)
    if (init is None or init.name != "linalg.broadcast" or list(init.attributes["dimensions"]) != [0, 2, 3]
            or len(uses) != 1):
        return None
    generic = uses[0].owner
    generic = generic.operation if hasattr(generic, "operation") else generic
    if generic.name != "linalg.generic" or len(generic.operands) != 3 or generic.operands[0] != conv_op.results[0]:
        return None
    maps = [str(m) for m in generic.attributes["indexing_maps"]]
    identity = "affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>"
    m = generic.operands[1]
    if (maps != [identity, "affine_map<(d0, d1, d2, d3) -> (d1, 0, 0)>", identity] or int_width(m.type) != 32
            or int_width(generic.results[0].type) != 8):
        return None
    ops = [op for op in body_ops(generic) if op.name != "arith.constant"]
    names = [op.name for op in ops]
    expected = ["arith.extsi", "arith.extsi", "arith.muli", "arith.addi", "arith.shrsi", "arith.maxsi",
                "arith.minsi", "arith.trunci"]
    zp_add = names == expected + ["arith.addi", "arith.trunci", "linalg.yield"]
    if not (zp_add or names == expected + ["arith.trunci", "linalg.yield"]):
        return None
    args = generic.regions[0].blocks[0].arguments
    chain = all(ops[k].operands[0] == ops[k - 1].results[0] for k in range(3, len(ops)))
    if not (chain and ops[0].operands[0] == args[0] and ops[1].operands[0] == args[1]
            and list(ops[2].operands) == [ops[0].results[0], ops[1].results[0]]):
        return None
    round_, shift, lo, hi = (_constant(ops[k].operands[1]) for k in (3, 4, 5, 6))
    zp = _constant(ops[8].operands[1]) if zp_add else 0
    if (None in (shift, lo, hi, zp) or not 0 < shift < 63 or round_ != 1 << (shift - 1)
            or not -2 ** 31 <= lo <= hi < 2 ** 31 or int_width(ops[7].results[0].type) != 32):
        return None
    return generic, init.operands[0], m, Requant(shift, lo, hi, zp)


def _elementwise(generic: ir.Operation | None, name: str) -> tuple[list[ir.Value], int | None] | None:
    """(its inputs, the constant operand if any) when `generic` is an identity-mapped elementwise generic of one
    `name` op on its inputs (and a constant): the form of edgeq's integer adds after import, one op per generic."""
    if generic is None or generic.name != "linalg.generic" or not identity_maps(generic):
        return None
    ops = [op for op in body_ops(generic) if op.name != "arith.constant"]
    if len(ops) != 2 or ops[0].name != name or ops[1].operands[0] != ops[0].results[0]:
        return None
    args, inputs = list(generic.regions[0].blocks[0].arguments), list(generic.operands)[:-1]
    used, const = [], None
    for k, v in enumerate(ops[0].operands):
        if k < len(inputs) and v == args[k]:
            used.append(inputs[k])
        elif (const := _constant(v)) is None or k == 0:
            return None
    return used, const


def _only_user(value: ir.Value) -> ir.Operation | None:
    uses = list(value.uses)
    owner = uses[0].owner if len(uses) == 1 else None
    return owner.operation if hasattr(owner, "operation") else owner


def _add_input(value: ir.Value) -> tuple[ir.Value, int, int] | None:
    """(the i8 source, its zero point, its multiplier) of one input of an integer add:
    muli(subi(extsi(source), zero point), multiplier), the subi absent for a zero point of 0."""
    mul = _elementwise(defining_op(value), "arith.muli")
    if mul is None or mul[1] is None:
        return None
    x, z = mul[0][0], 0
    if (sub := _elementwise(defining_op(x), "arith.subi")) is not None and sub[1] is not None:
        x, z = sub[0][0], sub[1]
    ext = _elementwise(defining_op(x), "arith.extsi")
    if ext is None or int_width(ext[0][0].type) != 8:
        return None
    return ext[0][0], z, mul[1]


def _i32(v: int) -> int:
    return (v + 2 ** 31) % 2 ** 32 - 2 ** 31


def _residual_add(requant: ir.Operation) -> tuple[ir.Operation, ir.Value, ResidualAdd] | None:
    """(the add's last generic, its other i8 input, the constants) when the only use of a conv's requantized i8 is a
    residual add of edgeq's integer models (ResidualAdd) with another i8 tensor of its shape: extsi, subi of the
    zero point, muli, on each input; addi, addi of the rounding, shrsi, addi of the zero point (either optional),
    maxsi/minsi, trunci to i8."""
    c, op = requant.results[0], requant
    for _ in range(4):   # extsi, subi, muli: up to the add
        op = _only_user(op.results[0])
        if op is None or op.name != "linalg.generic" or _elementwise(op, "arith.addi") is not None:
            break
    add = _elementwise(op, "arith.addi")
    if add is None or len(add[0]) != 2:
        return None
    inputs = [_add_input(v) for v in add[0]]
    if None in inputs or [i[0] == c for i in inputs].count(True) != 1:
        return None
    (_, zc, mc), (r, zr, mr) = sorted(inputs, key=lambda i: i[0] != c)
    if r.type != c.type:
        return None
    steps = {}
    for name in ("round", "arith.shrsi", "zp", "clamp", "arith.trunci"):
        nxt = _only_user(op.results[0])
        if nxt is None or nxt.name != "linalg.generic":
            return None
        if name in ("round", "zp"):
            found = _elementwise(nxt, "arith.addi")
            if found is None or found[1] is None:
                if name == "round":
                    return None
                continue
        elif name == "clamp":
            ops = [o for o in body_ops(nxt) if o.name != "arith.constant"]
            if ([o.name for o in ops] != ["arith.maxsi", "arith.minsi", "linalg.yield"] or not identity_maps(nxt)
                    or ops[0].operands[0] != nxt.regions[0].blocks[0].arguments[0]
                    or ops[1].operands[0] != ops[0].results[0]):
                return None
            found = ([], (_constant(ops[0].operands[1]), _constant(ops[1].operands[1])))
        else:
            found = _elementwise(nxt, name)
            if found is None:
                return None
        steps[name], op = found[1], nxt
    shift, zp, (lo, hi) = steps["arith.shrsi"], steps.get("zp", 0), steps["clamp"]
    if (None in (shift, lo, hi) or not 0 < shift < 32 or steps["round"] != 1 << (shift - 1)
            or int_width(op.results[0].type) != 8):
        return None
    return op, r, ResidualAdd(mc, mr, _i32(steps["round"] - zc * mc - zr * mr), shift, zp, lo, hi)


def _linear(op: ir.Operation) -> tuple[LinearShape, ir.Operation | None] | None:
    """(its shape, the bias add if fused) for a linalg.matmul of a 1 x K i8 row by a K x N i8 matrix into i32 sums
    that start at zero (a batch-1 linear layer, as torch's nn.Linear imports); its only use may be the add of a
    bias vector of N i32, which the kernel then takes."""
    x, w, init = (v.type for v in op.operands)
    fill = defining_op(op.operands[2])
    if (not all(t.has_static_shape for t in (x, w, init)) or x.shape[0] != 1
            or (int_width(x), int_width(w), int_width(init)) != (8, 8, 32)
            or fill is None or fill.name != "linalg.fill" or _constant(fill.operands[0]) != 0):
        return None
    lin = LinearShape(*w.shape)
    add = _only_user(op.results[0])
    if add is None or add.name != "linalg.generic" or len(add.operands) != 3:
        return lin, None
    maps = [str(m) for m in add.attributes["indexing_maps"]]
    ops = [o for o in body_ops(add) if o.name != "arith.constant"]
    args = list(add.regions[0].blocks[0].arguments)
    if (maps != ["affine_map<(d0, d1) -> (d0, d1)>", "affine_map<(d0, d1) -> (d1)>", "affine_map<(d0, d1) -> (d0, d1)>"]
            or add.operands[0] != op.results[0] or int_width(add.results[0].type) != 32
            or [o.name for o in ops] != ["arith.addi", "linalg.yield"] or set(ops[0].operands) != set(args[:2])
            or ops[1].operands[0] != ops[0].results[0]):
        return lin, None
    return lin, add


@dataclass(frozen=True)
class MaxPool:
    """A 3x3 max pooling at stride 2 of C channels (H x W before its padding, Source) into OH x OW, from `init`."""

    c: int
    oh: int
    ow: int
    init: int

    @property
    def name(self) -> str:
        return f"maxpool_{self.c}x{self.oh}x{self.ow}_i{self.init & 0xFF}"


def _maxpool(op: ir.Operation) -> MaxPool | None:
    """linalg.pooling_nchw_max of a batch-1 i8 tensor, 3x3 window, stride 2, no dilation, into a constant fill."""
    x, window, init = (v.type for v in op.operands)
    attr = op.attributes
    fill = defining_op(op.operands[2])
    value = _constant(fill.operands[0]) if fill is not None and fill.name == "linalg.fill" else None
    if (not all(t.has_static_shape for t in (x, window, init)) or x.shape[0] != 1 or int_width(x) != 8
            or int_width(init) != 8 or list(window.shape) != [3, 3] or value is None
            or "strides" not in attr or [int(v) for v in attr["strides"]] != [2, 2]
            or ("dilations" in attr and any(int(d) != 1 for d in attr["dilations"]))):
        return None
    return MaxPool(x.shape[1], *init.shape[2:], value)


def maxpool_export(pool: MaxPool, src: Source) -> Export:
    parts = _split(1, pool.c)[2]   # of the channels
    return Export(f"{pool.name}_{src.name}", MAXPOOL, ("memref<1xi8>", "memref<1xi8>"),
                  (pool.c, src.h, src.w, src.top, src.left, src.value, pool.init, pool.oh, pool.ow, parts), (parts, 1))


def _maxpool_function(pool: MaxPool, src: Source, export: Export) -> str:
    """The util.func that runs one max pooling with the kernel, on the unpadded input."""
    x, y = f"1x{pool.c}x{src.h}x{src.w}xi8", f"1x{pool.c}x{pool.oh}x{pool.ow}xi8"
    return _util_func(f"edgeq_{export.name}", f"%x: tensor<{x}>", f"tensor<{y}>",
                      [f"%y = flow.dispatch @{EXECUTABLE}::@{export.name}(%x) : (tensor<{x}>) -> tensor<{y}>",
                       f"util.return %y : tensor<{y}>"])


def _zeros(n: int) -> ir.Value:
    """A constant vector of n i32 zeros, at the current insertion point."""
    i32 = ir.IntegerType.get_signless(32)
    t = ir.RankedTensorType.get([n], i32)
    return ir.Operation.create("arith.constant", results=[t], attributes={
        "value": ir.DenseElementsAttr.get_splat(t, ir.IntegerAttr.get(i32, 0))}).results[0]


def _packed_reader(value: ir.Value, dense: list, direct: list[bool], any_layout: bool = False) -> int | None:
    """The index in `dense` of a conv that reads `value` through a pack (not one that `direct` marks: the Winograd
    kernel reads NCHW): that conv can take it packed from the kernel that writes it. Only 1x1 convs at stride 1
    without padding, whose packed input is the output's pixels in order, unless `any_layout` (the rows kernel
    writes any conv's, padding and phase planes included; not an unfolded one's). Of several, the one whose pack
    writes the most."""
    readers = [k for k, (op, conv, src, _) in enumerate(dense)
               if Source.of(op.operands[0])[0] == value and not direct[k] and conv.unfold == 1
               and (any_layout or ((conv.kh, conv.kw, conv.sh, conv.sw) == (1, 1, 1, 1)
                                   and (src.h, src.w) == (conv.hp, conv.wp) and (src.top, src.left) == (0, 0)))]
    return max(readers, key=lambda k: math.prod(dense[k][1].phases) * dense[k][1].rows * dense[k][1].wq,
               default=None)


def run(module: ir.Operation, pass_, isa: str = VNNI) -> None:
    """With isa AVX2, only what conv2d_u8s8_avx2.c has: requantized 1x1 stride-1 convs on their NCHW input
    (pointwise_fits), the stems (patch_fits), the Winograd convs, the other requantized dense convs on the rows
    kernel, each with its pack (a downsample reading a phase plane of its sibling's), requantized 3x3 depthwise
    convs, NCHW out, the max pooling and the batch-1 linear layers; convs without a requantization stay IREE's."""
    avx2 = isa == AVX2
    dense = [(op, ConvShape.of(op, isa).unfolded(), Source.of(op.operands[0])[1], fused)
             for op in ops_named(module, "linalg.conv_2d_nchw_fchw")
             if _matches(op) and ((fused := _requantization(op)) or not avx2)]
    # the convs the Winograd kernel takes: they read their input NCHW
    winograd_at = [bool(WINOGRAD_ENABLED and fused and winograd_fits(conv, src))
                   for _, conv, src, fused in dense]
    depthwise, packed_input = [], {}   # dense conv index -> the op (depthwise or conv) that writes its input packed
    for op in ops_named(module, "linalg.depthwise_conv_2d_nchw_chw"):
        # only with their requantization; the others stay for edgeq-depthwise-taps
        if _matches_depthwise(op) and (fused := _requantization(op)):
            depthwise.append((op, DepthwiseShape.of(op), Source.of(op.operands[0])[1], fused))
            # a 1x1 conv that is its only use takes it packed
            reader = (_packed_reader(fused[0].results[0], dense, winograd_at)
                      if _only_user(fused[0].results[0]) and not avx2 else None)
            if reader is not None:
                packed_input[reader] = op
    # downsamples that read a phase plane of the packed input of a conv beside them: index -> that conv's index
    siblings = {k: j for k in range(len(dense))
                if (j := _plane_sibling(k, dense, winograd_at, packed_input)) is not None}
    # convs: (op, callee, fused, with a residual add, the dense index of the conv whose packed input it writes too,
    # its own, and that of the conv whose packed input it reads through a shared pack)
    convs, functions, exports, claimed = [], {}, [], []
    for k, (op, conv, src, fused) in enumerate(dense):
        # its pack a call of its own, unless the kernel before writes its input packed (known by now)
        shared = k in siblings.values() and k not in packed_input
        rq, packed = fused and fused[3], k in packed_input or shared or k in siblings
        reads = dense[siblings[k]][1:3] if k in siblings else None
        # a residual add after the requantization, unless the add's other conv took it
        found = _residual_add(fused[0]) if fused else None
        add = found[2] if found and not any(found[0] == c for c in claimed) else None
        if add:
            claimed.append(found[0])
        winograd = winograd_at[k] and not packed
        shape = ConvShape.of(op, isa)   # as the model has it, before unfolded()
        patch = not add and patch_fits(shape, rq)   # never packed: _packed_reader skips unfolded convs
        # whole tiles of 8 channels: a conv that reads the output takes it packed too (the rows kernel writes any
        # conv's packed input, the grid kernel a 1x1 conv's)
        reader = (_packed_reader((found[0] if add else fused[0]).results[0], dense, winograd_at, conv.rows_kernel)
                  if rq and conv.oc % CHANNEL_BLOCK == 0 and not (winograd or patch or avx2) else None)
        if reader is not None and reader not in packed_input:
            packed_input[reader] = op
        else:
            reader = None
        packs = dense[reader][1:3] if reader is not None else None
        if winograd:
            callee = _callee(conv, src, rq, add=add, winograd=True)
            functions.setdefault(callee, _winograd_function(conv, src, rq, add))
            exports.append(winograd_export(conv, src, rq, add))
        elif patch:
            export = patch_export(shape, src, rq)
            callee = f"edgeq_{export.name}"
            functions.setdefault(callee, _patch_function(shape, src, rq))
            exports.append(export)
        else:
            callee = _callee(conv, src, rq, packed, add, packs, reads=reads)
            functions.setdefault(callee, _function(conv, src, rq, packed, add, packs, reads))
            exports += _conv_exports(conv, src, rq, packed, add, packs, reads)
        if shared:
            functions.setdefault(f"edgeq_{pack_export(conv, src).name}", _pack_function(conv, src))
            exports.append(pack_export(conv, src))
        convs.append((op, callee, fused, add is not None, reader, k, siblings.get(k, k if shared else None)))
    consumers = {op: dense[k][1] for k, op in packed_input.items()}
    for op, dw, src, fused in depthwise:
        packed = consumers.get(op)
        export = depthwise_export(dw, src, fused[3], packed)
        # replaced before the convs, whose input it may produce packed
        convs.insert(0, (op, f"edgeq_{export.name}", fused, False, None, None, None))
        functions.setdefault(f"edgeq_{export.name}", _depthwise_function(dw, src, fused[3], packed))
        exports.append(export)
    linears = [(op, *found) for op in ops_named(module, "linalg.matmul") if (found := _linear(op))]
    for _, lin, _ in linears:
        functions.setdefault(f"edgeq_{lin.name}", _linear_function(lin))
        exports.append(linear_export(lin))
    pools = []   # (op, its export)
    for op in ops_named(module, "linalg.pooling_nchw_max"):
        if pool := _maxpool(op):
            src = Source.of(op.operands[0])[1]
            export = maxpool_export(pool, src)
            pools.append((op, export))
            functions.setdefault(f"edgeq_{export.name}", _maxpool_function(pool, src, export))
            exports.append(export)
    if not convs and not linears and not pools:
        return
    text = kernel_executable(list(dict.fromkeys(exports)), isa) + "\n" + "\n".join(functions.values())
    body = module.regions[0].blocks[0]
    parsed = ir.Module.parse(text)
    ip = ir.InsertionPoint.at_block_begin(body)
    for op in list(parsed.body.operations):
        op.detach_from_parent()
        ip.insert(op)
    symbols = ir.SymbolTable(module)
    packed_for = {}   # dense index -> its input packed by a kernel before, or by its shared pack
    for op, callee, fused, added, reader, k, shared_by in convs:
        # now, not before: a producer may have been a fused generic, replaced above
        if shared_by is not None and shared_by not in packed_for:   # before the first conv that reads it
            conv, src = dense[shared_by][1:3]
            with ir.InsertionPoint(op), op.location:
                packed_for[shared_by] = ir.Operation.create(
                    "util.call", results=[ir.RankedTensorType.parse(f"tensor<{conv.types()['xk']}>")],
                    operands=[Source.of(op.operands[0])[0]],   # the same tensor as the other's
                    attributes={"callee": ir.FlatSymbolRefAttr.get(f"edgeq_{pack_export(conv, src).name}")}).result
        key = shared_by if shared_by is not None else k
        x = packed_for[key] if key in packed_for else Source.of(op.operands[0])[0]
        # the call takes the place of the conv, or with its requantization fused, of the requantizing generic, or
        # with the residual add too, of the add's last generic (after both inputs)
        replaced, operands = ([op], list(op.operands)[1:]) if fused is None else ([fused[0], op], [op.operands[1],
                                                                                                   *fused[1:3]])
        if added:   # matched again now: its residual may have become an earlier call's result
            last, residual, _ = _residual_add(fused[0])
            replaced, operands = [last], operands + [residual]
        fn = symbols[callee]   # its result types: a packed depthwise output's is not the op's
        results = ir.FunctionType(ir.TypeAttr(fn.attributes["function_type"]).value).results
        with ir.InsertionPoint(replaced[0]), op.location:
            call = ir.Operation.create("util.call", results=list(results), operands=[x, *operands],
                                       attributes={"callee": ir.FlatSymbolRefAttr.get(callee)})
        replaced[0].results[0].replace_all_uses_with(call.results[0])
        if reader is not None:
            packed_for[reader] = call.results[1]
        if added:   # the add's generics, the requantization's, then the conv
            erase_if_dead(last)
            op.erase()
        else:
            for dead in replaced:
                dead.erase()
    for op, export in pools:   # its input may have become a kernel's result above
        with ir.InsertionPoint(op), op.location:
            call = ir.Operation.create("util.call", results=[op.results[0].type],
                                       operands=[Source.of(op.operands[0])[0]],
                                       attributes={"callee": ir.FlatSymbolRefAttr.get(f"edgeq_{export.name}")})
        op.results[0].replace_all_uses_with(call.results[0])
        op.erase()
    for op, lin, add in linears:
        # the call takes the place of the bias add, or of the matmul
        replaced = add or op
        with ir.InsertionPoint(replaced), op.location:
            bias = add.operands[1] if add else _zeros(lin.n)
            call = ir.Operation.create("util.call", results=[replaced.results[0].type],
                                       operands=[op.operands[0], op.operands[1], bias],
                                       attributes={"callee": ir.FlatSymbolRefAttr.get(f"edgeq_{lin.name}")})
        replaced.results[0].replace_all_uses_with(call.results[0])
        if add:
            add.erase()
        op.erase()
