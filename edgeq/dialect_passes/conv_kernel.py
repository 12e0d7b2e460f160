"""Run i8 x i8 -> i32 NCHW convolutions on edgeq's own AVX-512 VNNI kernel (targets/kernels) instead of IREE's
im2col + matmul: one custom dispatch per conv, an implicit GEMM on vpdpbusd.

For the host target on CPUs with AVX-512 VNNI. IREE 3.13 gathers every conv's patch matrix through memory and
its s8 x s8 ukernel widens both operands to 16 bits (vpdpwssd, 2 MACs per lane); ResNet-18's im2col gathers alone
took longer than its matmuls (docs/profiling.md). vpdpbusd multiplies u8 by s8, 4 MACs per lane, so the kernel
reads the activations as x + 128 (an xor of the sign bit) and starts each sum at -128 * sum(w):
sum((x + 128) w) - 128 sum(w) = sum(x w), exact in wrap-around i32 like the reference.

Each conv becomes a call to a private util.func (inlined by IREE) that
  - transposes the padded input to NHWC u8, channels padded to a multiple of 4;
  - packs the constant weights as [OC/16][KH][KW][C/4][16][4] and sums them (IREE evaluates both at compile time);
  - dispatches the kernel (one workgroup per output row and 64 output channels) into an NHWC i32 tensor;
  - adds the conv's init (its bias) while transposing back to NCHW; the requantization fuses into this.
All convs share one hal.executable.source that links the compiled kernel.

Left alone: batch > 1, non-i8 operands, dynamic shapes, and 1x1 convs. A 1x1 conv is a matmul to IREE, with no
patch gather to save, and the layout changes around it cost more than the kernel gains: MobileNetV2 (1x1 convs
between NCHW depthwise taps) took 11.4-29.5 ms with them on the kernel against 5.4 ms without (2 threads, this
machine; IREE compiles the requantizing transposes at 96-192 channels slowly).
"""
from __future__ import annotations

from dataclasses import dataclass

from iree.compiler import ir

from edgeq.dialect_passes._match import int_width, ops_named

ARGUMENT = "edgeq-conv-kernel"

EXECUTABLE = "edgeq_kernels"
KERNEL = "edgeq_conv2d_u8s8"  # the C function (targets/kernels/conv2d_u8s8_avx512vnni.c)
CHANNEL_TILE = 64  # one workgroup: an output row x 64 output channels

_LAYOUT = ("#hal.pipeline.layout<bindings = [#hal.pipeline.binding<storage_buffer, ReadOnly>, "
           "#hal.pipeline.binding<storage_buffer, ReadOnly>, #hal.pipeline.binding<storage_buffer, ReadOnly>, "
           "#hal.pipeline.binding<storage_buffer>]>")


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

    @classmethod
    def of(cls, op: ir.Operation) -> "ConvShape":
        """From linalg.conv_2d_nchw_fchw's operands and attributes."""
        x, w, init = (v.type for v in op.operands)
        attr = op.attributes
        sh, sw = (int(s) for s in attr["strides"]) if "strides" in attr else (1, 1)
        dh, dw = (int(d) for d in attr["dilations"]) if "dilations" in attr else (1, 1)
        return cls(*x.shape[1:], *w.shape[:1], *w.shape[2:], *init.shape[2:], sh, sw, dh, dw)

    @property
    def c4(self) -> int:
        return -(-self.c // 4)

    @property
    def oc16(self) -> int:
        return -(-self.oc // 16)

    @property
    def cp(self) -> int:
        return 4 * self.c4

    @property
    def ocp(self) -> int:
        return 16 * self.oc16

    @property
    def macs(self) -> int:
        return self.oh * self.ow * self.oc * self.c * self.kh * self.kw

    @property
    def name(self) -> str:
        return (f"conv_{self.c}x{self.hp}x{self.wp}_{self.oc}x{self.kh}x{self.kw}"
                f"_s{self.sh}x{self.sw}_d{self.dh}x{self.dw}")

    def types(self) -> dict[str, str]:
        return {"x": f"1x{self.c}x{self.hp}x{self.wp}xi8", "w": f"{self.oc}x{self.c}x{self.kh}x{self.kw}xi8",
                "out": f"1x{self.oc}x{self.oh}x{self.ow}xi32", "xk": f"{self.hp}x{self.wp}x{self.cp}xi8",
                "wk": f"{self.oc16}x{self.kh}x{self.kw}x{self.c4}x16x4xi8", "bk": f"{self.ocp}xi32",
                "yk": f"{self.oh}x{self.ow}x{self.ocp}xi32"}


def _pad(value: str, source: str, shape: str, high: str) -> str:
    """tensor.pad of a 4-d i8 `value` (type `source`) with zeros at the end of each dimension to `shape`."""
    idx = ", ".join(f"%i{k}: index" for k in range(4))
    return (f"tensor.pad {value} low[0, 0, 0, 0] high[{high}] {{\n    ^bb0({idx}):\n      tensor.yield %zero : i8\n"
            f"    }} : tensor<{source}> to tensor<{shape}>")


def _function(conv: ConvShape) -> str:
    """The util.func that computes one conv shape with the kernel (see the module docstring)."""
    t = conv.types()
    x_nchw, w_src = "%x", "%w"
    lines = ["%zero = arith.constant 0 : i8"]
    x_type = f"1x{conv.cp}x{conv.hp}x{conv.wp}xi8"
    w_type = f"{conv.ocp}x{conv.cp}x{conv.kh}x{conv.kw}xi8"
    if conv.cp != conv.c:   # channels to a multiple of 4 (zero weights: the padded values do not count)
        lines.append("%xc = " + _pad("%x", t["x"], x_type, f"0, {conv.cp - conv.c}, 0, 0"))
        x_nchw = "%xc"
    if (conv.cp, conv.ocp) != (conv.c, conv.oc):
        lines.append("%wc = " + _pad("%w", t["w"], w_type, f"{conv.ocp - conv.oc}, {conv.cp - conv.c}, 0, 0"))
        w_src = "%wc"
    parallel = '"parallel"'
    lines += [
        "%sign = arith.constant -128 : i8",
        f"%xe = tensor.empty() : tensor<{t['xk']}>",
        "%xk = linalg.generic {indexing_maps = [affine_map<(h, w, c) -> (0, c, h, w)>, "
        "affine_map<(h, w, c) -> (h, w, c)>], iterator_types = [" + ", ".join([parallel] * 3) + "]} "
        f"ins({x_nchw} : tensor<{x_type}>) outs(%xe : tensor<{t['xk']}>) {{\n"
        "    ^bb0(%in: i8, %out: i8):\n      %u = arith.xori %in, %sign : i8\n      linalg.yield %u : i8\n"
        f"    }} -> tensor<{t['xk']}>",
        f"%we = tensor.empty() : tensor<{t['wk']}>",
        "%wk = linalg.generic {indexing_maps = [affine_map<(o, i, j, c, l, k) -> (o * 16 + l, c * 4 + k, i, j)>, "
        "affine_map<(o, i, j, c, l, k) -> (o, i, j, c, l, k)>], iterator_types = ["
        + ", ".join([parallel] * 6) + "]} "
        f"ins({w_src} : tensor<{w_type}>) outs(%we : tensor<{t['wk']}>) {{\n"
        "    ^bb0(%in: i8, %out: i8):\n      linalg.yield %in : i8\n"
        f"    }} -> tensor<{t['wk']}>",
        "%c0_i32 = arith.constant 0 : i32",
        "%m128 = arith.constant -128 : i32",
        f"%be = tensor.empty() : tensor<{t['bk']}>",
        f"%bz = linalg.fill ins(%c0_i32 : i32) outs(%be : tensor<{t['bk']}>) -> tensor<{t['bk']}>",
        "%bk = linalg.generic {indexing_maps = [affine_map<(o, c, i, j) -> (o, c, i, j)>, "
        "affine_map<(o, c, i, j) -> (o)>], iterator_types = [\"parallel\", \"reduction\", \"reduction\", "
        f"\"reduction\"]}} ins({w_src} : tensor<{w_type}>) outs(%bz : tensor<{t['bk']}>) {{\n"
        "    ^bb0(%in: i8, %out: i32):\n      %e = arith.extsi %in : i8 to i32\n"
        "      %m = arith.muli %e, %m128 : i32\n      %s = arith.addi %out, %m : i32\n      linalg.yield %s : i32\n"
        f"    }} -> tensor<{t['bk']}>",
        f"%yk = flow.dispatch @{EXECUTABLE}::@{conv.name}(%xk, %wk, %bk) : (tensor<{t['xk']}>, "
        f"tensor<{t['wk']}>, tensor<{t['bk']}>) -> tensor<{t['yk']}>",
    ]
    y, y_type = "%yk", t["yk"]
    if conv.ocp != conv.oc:  # the padded channels' sums are dropped
        y, y_type = "%ys", f"{conv.oh}x{conv.ow}x{conv.oc}xi32"
        lines.append(f"%ys = tensor.extract_slice %yk[0, 0, 0] [{conv.oh}, {conv.ow}, {conv.oc}] [1, 1, 1] : "
                     f"tensor<{t['yk']}> to tensor<{y_type}>")
    lines += [
        "%y = linalg.generic {indexing_maps = [affine_map<(n, o, h, w) -> (h, w, o)>, "
        "affine_map<(n, o, h, w) -> (n, o, h, w)>], iterator_types = [" + ", ".join([parallel] * 4) + "]} "
        f"ins({y} : tensor<{y_type}>) outs(%init : tensor<{t['out']}>) {{\n"
        "    ^bb0(%in: i32, %out: i32):\n      %s = arith.addi %in, %out : i32\n      linalg.yield %s : i32\n"
        f"    }} -> tensor<{t['out']}>",
        f"util.return %y : tensor<{t['out']}>",
    ]
    body = "\n".join("  " + ln for ln in lines)
    return (f"util.func private @edgeq_{conv.name}(%x: tensor<{t['x']}>, %w: tensor<{t['w']}>, "
            f"%init: tensor<{t['out']}>) -> tensor<{t['out']}> {{\n{body}\n}}")


def _export(conv: ConvShape, ordinal: int) -> str:
    """The executable's entry for one conv shape: its workgroup count and the shim that calls the C kernel."""
    groups_x = -(-conv.ocp // CHANNEL_TILE)
    return f"""  hal.executable.export public @{conv.name} ordinal({ordinal}) layout({_LAYOUT})
      count(%device: !hal.device) -> (index, index, index) {{
    %gx = arith.constant {groups_x} : index
    %gy = arith.constant {conv.oh} : index
    %c1 = arith.constant 1 : index
    hal.return %gx, %gy, %c1 : index, index, index
  }}"""


# The kernel's C signature: bare pointers to x, w, bias, y (typed by one element: only the address is passed),
# the shape as i32 (in_w, c4, oc16, kh, kw, sh, sw, dh, dw, out_w), the workgroup's x and y.
_POINTERS = ("memref<1xi8>", "memref<1xi8>", "memref<1xi32>", "memref<1xi32>")
_SIGNATURE = ", ".join(_POINTERS + ("i32",) * 10 + ("index", "index"))


def _shim(conv: ConvShape) -> str:
    bindings = "\n".join(
        f"      %b{k} = hal.interface.binding.subspan layout({_LAYOUT}) binding({k}) alignment(64) offset(%c0)"
        f"{' flags(ReadOnly)' if k < 3 else ''} : {m}" for k, m in enumerate(_POINTERS))
    scalars = [conv.wp, conv.c4, conv.oc16, conv.kh, conv.kw, conv.sh, conv.sw, conv.dh, conv.dw, conv.ow]
    consts = "\n".join(f"      %s{k} = arith.constant {v} : i32" for k, v in enumerate(scalars))
    args = ", ".join([f"%b{k}" for k in range(4)] + [f"%s{k}" for k in range(len(scalars))] + ["%gx", "%gy"])
    return f"""    func.func @{conv.name}() {{
      %c0 = arith.constant 0 : index
{bindings}
{consts}
      %gx = hal.interface.workgroup.id[0] : index
      %gy = hal.interface.workgroup.id[1] : index
      func.call @{KERNEL}({args}) : ({_SIGNATURE}) -> ()
      return
    }}"""


def _matches(op: ir.Operation) -> bool:
    x, w, init = (v.type for v in op.operands)
    return (all(t.has_static_shape for t in (x, w, init)) and x.shape[0] == 1 and w.shape[2] * w.shape[3] > 1
            and (int_width(x), int_width(w), int_width(init)) == (8, 8, 32))


def kernel_executable(shapes: list[ConvShape]) -> str:
    """The hal.executable.source with one export per conv shape, linking the kernel object."""
    from edgeq.targets.kernels import object_attribute

    exports = "\n".join(_export(c, k) for k, c in enumerate(shapes))
    shims = "\n".join([f"    func.func private @{KERNEL}({_SIGNATURE}) attributes {{hal.import.static, "
                        "llvm.bareptr = true}"] + [_shim(c) for c in shapes])
    return (f"hal.executable.source private @{EXECUTABLE} <{{objects = #hal.executable.objects<{{"
            f"{object_attribute()}}}>}}> {{\n{exports}\n  builtin.module {{\n{shims}\n  }}\n}}")


def run(module: ir.Operation, pass_) -> None:
    convs = [(op, ConvShape.of(op)) for op in ops_named(module, "linalg.conv_2d_nchw_fchw") if _matches(op)]
    if not convs:
        return
    shapes = list(dict.fromkeys(shape for _, shape in convs))
    text = kernel_executable(shapes) + "\n" + "\n".join(_function(c) for c in shapes)
    body = module.regions[0].blocks[0]
    parsed = ir.Module.parse(text)
    ip = ir.InsertionPoint.at_block_begin(body)
    for op in list(parsed.body.operations):
        op.detach_from_parent()
        ip.insert(op)
    for op, shape in convs:
        with ir.InsertionPoint(op), op.location:
            callee = ir.FlatSymbolRefAttr.get(f"edgeq_{shape.name}")
            call = ir.Operation.create("util.call", results=[op.results[0].type], operands=list(op.operands),
                                       attributes={"callee": callee})
        op.results[0].replace_all_uses_with(call.results[0])
        op.erase()
