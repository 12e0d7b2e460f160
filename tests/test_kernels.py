"""edgeq's own int8 conv kernel (targets/kernels, dialect_passes/conv_kernel.py) against torch's float64 conv, bit for
bit, over the shapes its tiling and packing have edges on, with and without its fused requantization; the host
pipeline's whole models (tests/test_targets.py) check it too."""
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

from edgeq.dialect_passes import conv_kernel
from edgeq.dialect_passes._registry import run_pipeline
from edgeq.pipeline.compile import compile_input, iree_compile_tool
from edgeq.targets.host import HostTarget, runs_edgeq_kernels, uses_pool
from edgeq.targets.kernels import SOURCES, VNNI

pytestmark = pytest.mark.skipif(not runs_edgeq_kernels(), reason="the kernels need x86-64 with AVX-512 VNNI and VBMI")


def _dense(a: np.ndarray) -> str:
    return f"dense<[{', '.join(map(str, a.flatten()))}]> : tensor<{a.size}x{'i8' if a.dtype == np.int8 else 'i32'}>"


def _conv_module(w: np.ndarray, bias: np.ndarray, hw: tuple[int, int], stride: int, pad: int, dilation: int,
                 pad_value: int, requant: tuple[np.ndarray, int, int, int, int] | None = None) -> str:
    """An i8 conv as edgeq-raise-int-contraction leaves it: pad, then linalg.conv_2d_nchw_fchw into a broadcast bias;
    with `requant` (multipliers, shift, lo, hi, zero point), followed by the requantization to i8 as
    edgeq-lower-requant writes it."""
    depthwise = w.ndim == 3   # [C][KH][KW]: linalg.depthwise_conv_2d_nchw_chw
    oc, c, k = (w.shape[0], w.shape[0], w.shape[1]) if depthwise else w.shape[:3]
    w_type = f"{c}x{k}x{k}xi8" if depthwise else f"{oc}x{c}x{k}x{k}xi8"
    op = "depthwise_conv_2d_nchw_chw" if depthwise else "conv_2d_nchw_fchw"
    h, wd = hw
    hp, wp = h + 2 * pad, wd + 2 * pad
    oh, ow = (hp - dilation * (k - 1) - 1) // stride + 1, (wp - dilation * (k - 1) - 1) // stride + 1
    out = f"1x{oc}x{oh}x{ow}xi32"
    result = out.replace("xi32", "xi8") if requant else out
    return f"""util.func public @main(%x: tensor<1x{c}x{h}x{wd}xi8>) -> tensor<{result}> {{
  %wf = arith.constant {_dense(w)}
  %w = tensor.expand_shape %wf [[{", ".join(map(str, range(w.ndim)))}]] output_shape [{", ".join(map(str, w.shape))}] : tensor<{w.size}xi8> into tensor<{w_type}>
  %b = arith.constant {_dense(bias)}
  %z = arith.constant {pad_value} : i8
  %xp = tensor.pad %x low[0, 0, {pad}, {pad}] high[0, 0, {pad}, {pad}] {{
  ^bb0(%i: index, %j: index, %k: index, %l: index):
    tensor.yield %z : i8
  }} : tensor<1x{c}x{h}x{wd}xi8> to tensor<1x{c}x{hp}x{wp}xi8>
  %e = tensor.empty() : tensor<{out}>
  %bi = linalg.broadcast ins(%b : tensor<{oc}xi32>) outs(%e : tensor<{out}>) dimensions = [0, 2, 3]
  %y = linalg.{op} {{dilations = dense<{dilation}> : vector<2xi64>, strides = dense<{stride}> : vector<2xi64>}} ins(%xp, %w : tensor<1x{c}x{hp}x{wp}xi8>, tensor<{w_type}>) outs(%bi : tensor<{out}>) -> tensor<{out}>
{_requantized(oc, out, *requant) if requant else f"  util.return %y : tensor<{out}>"}
}}"""


def _requantized(oc: int, out: str, m: np.ndarray, shift: int, lo: int, hi: int, zp: int) -> str:
    q = out.replace("xi32", "xi8")
    return f"""  %m = arith.constant dense<[{', '.join(map(str, m))}]> : tensor<{oc}xi32>
  %m3 = tensor.expand_shape %m [[0, 1, 2]] output_shape [{oc}, 1, 1] : tensor<{oc}xi32> into tensor<{oc}x1x1xi32>
  %qe = tensor.empty() : tensor<{q}>
  %q = linalg.generic {{indexing_maps = [affine_map<(n, c, h, w) -> (n, c, h, w)>, affine_map<(n, c, h, w) -> (c, 0, 0)>, affine_map<(n, c, h, w) -> (n, c, h, w)>], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}} ins(%y, %m3 : tensor<{out}>, tensor<{oc}x1x1xi32>) outs(%qe : tensor<{q}>) {{
  ^bb0(%a: i32, %s: i32, %o: i8):
    %a64 = arith.extsi %a : i32 to i64
    %s64 = arith.extsi %s : i32 to i64
    %p = arith.muli %a64, %s64 : i64
    %round = arith.constant {1 << (shift - 1)} : i64
    %r = arith.addi %p, %round : i64
    %shift = arith.constant {shift} : i64
    %t = arith.shrsi %r, %shift : i64
    %lo = arith.constant {lo} : i64
    %c1 = arith.maxsi %t, %lo : i64
    %hi = arith.constant {hi} : i64
    %c2 = arith.minsi %c1, %hi : i64
    %n32 = arith.trunci %c2 : i64 to i32
    %zp = arith.constant {zp} : i32
    %sum = arith.addi %n32, %zp : i32
    %n8 = arith.trunci %sum : i32 to i8
    linalg.yield %n8 : i8
  }} -> tensor<{q}>
  util.return %q : tensor<{q}>"""


def _run_kernel(text: str, x: np.ndarray | list[np.ndarray], tmp_path, outputs: int = 1,
                pass_name: str = "edgeq-conv-kernel") -> tuple[np.ndarray | list[np.ndarray], str]:
    """The module through edgeq-conv-kernel (or `pass_name`), compiled for host and run on x (or these inputs); and
    the IR after the pass. With several outputs, the list of them."""
    vmfb, after = _compile_kernel(text, tmp_path, pass_name)
    ys = HostTarget().run(vmfb, x if isinstance(x, list) else [x], n_outputs=outputs)
    return (ys if outputs > 1 else ys[0]), after


def _compile_kernel(text: str, tmp_path, pass_name: str = "edgeq-conv-kernel") -> tuple[Path, str]:
    """The module through `pass_name`, compiled for host; and the IR after the pass."""
    (tmp_path / "conv.mlir").write_text(text)
    subprocess.run([iree_compile_tool(), "conv.mlir", "--compile-to=input", "-o", "input.mlir"], cwd=tmp_path,
                   check=True)
    after = run_pipeline((tmp_path / "input.mlir").read_text(), [pass_name])
    assert "_conv_2d_nchw" not in after and "flow.dispatch @edgeq_kernels::@" in after
    (tmp_path / "after.mlir").write_text(after)
    compile_input(tmp_path / "after.mlir", HostTarget().spec.compile_flags(), tmp_path / "conv.vmfb")
    return tmp_path / "conv.vmfb", after


def _reference(x, w, bias, stride, pad, dilation, pad_value) -> np.ndarray:
    xp = torch.nn.functional.pad(torch.from_numpy(x).double(), (pad,) * 4, value=pad_value)
    groups = w.shape[0] if w.ndim == 3 else 1
    ref = torch.nn.functional.conv2d(xp, torch.from_numpy(w.reshape(w.shape[0], -1, *w.shape[-2:])).double(),
                                     torch.from_numpy(bias).double(), stride=stride, dilation=dilation, groups=groups)
    return ref.numpy().astype(np.int64)   # exact: |sums| < 2^53


def _operands(c, hw, oc, k, seed, depthwise=False):
    rng = np.random.default_rng(seed)
    w = rng.integers(-128, 128, size=(c, k, k) if depthwise else (oc, c, k, k), dtype=np.int8)
    bias = rng.integers(-(1 << 20), 1 << 20, size=(oc,), dtype=np.int32)
    x = rng.integers(-128, 128, size=(1, c, *hw), dtype=np.int8)
    x.flat[:7] = [-128, 127, -128, 127, 0, -1, 1]   # the extremes, where x + 128 must not wrap
    return rng, w, bias, x


# (in channels, size, out channels, kernel, stride, padding, dilation): channels padded to 4 and 8 (3 -> 4,
# 20 -> 24, 50 -> 56), workgroups of one or several 8-channel blocks, with a partial last group (200 = 13 + 12
# blocks, in 2 groups x 5 parts of the grid), grids that end in 1, 2 and 3 of the
# 3-vector tiles and in a partial vector, no padding, odd sizes under stride 2, dilation 2, ResNet's 7x7 stem,
# 1x1 convs with all lanes valid (no padding) and strided, workgroups of several tiles and packs of several
# channel groups (64 x 40 x 40); convs with few channels whose horizontal taps run as channels (unfolded, the
# last column: 3 x 7 at stride 2 and 1, 1 x 3, 2 x 5 at stride 2), and one that is not, being dilated
_SHAPES = [(3, (23, 23), 64, 7, 2, 3, 1, 7), (16, (10, 10), 80, 3, 1, 1, 1, 1), (24, (9, 13), 24, 3, 1, 0, 1, 1),
           (8, (13, 11), 40, 3, 1, 2, 2, 1), (64, (14, 14), 128, 3, 2, 1, 1, 1), (20, (7, 7), 16, 3, 1, 1, 1, 1),
           (8, (15, 9), 50, 5, 2, 2, 1, 1), (32, (16, 16), 24, 1, 1, 0, 1, 1), (40, (13, 13), 72, 1, 2, 0, 1, 1),
           (64, (40, 40), 16, 1, 1, 0, 1, 1), (3, (20, 19), 16, 7, 1, 3, 1, 7), (1, (12, 17), 8, 3, 1, 1, 1, 3),
           (2, (11, 20), 24, 5, 2, 2, 1, 5), (3, (12, 12), 8, 3, 1, 2, 2, 1), (8, (19, 19), 200, 3, 1, 1, 1, 1)]


@pytest.mark.parametrize("c,hw,oc,k,stride,pad,dilation,unfold", _SHAPES)
def test_conv_kernel_matches_torch(c, hw, oc, k, stride, pad, dilation, unfold, tmp_path):
    _, w, bias, x = _operands(c, hw, oc, k, c * 1000 + oc)
    y, after = _run_kernel(_conv_module(w, bias, hw, stride, pad, dilation, pad_value=-5), x, tmp_path)
    ref = _reference(x, w, bias, stride, pad, dilation, -5)
    assert y.dtype == np.int32 and y.shape == ref.shape
    assert np.array_equal(y, ref), f"{int((y != ref).sum())} values differ"
    assert {int(u) for u in re.findall(r"_d\d+x\d+_u(\d+)", after)} == ({unfold} if unfold > 1 else set())


# (shift, lo, hi, zero point): ReLU into u8 stored as i8 (edgeq's activations after ReLU), the same usual form
# with another zero point and shift (the kernel adds the zero point before its shift), a signed output with a
# shift under 33 (the kernel's i64 path), and a clamp narrower than i8 (explicit, not vpmovsdb's saturation)
@pytest.mark.parametrize("shift,lo,hi,zp", [(39, 0, 255, -128), (44, -120, 135, -8), (31, -128, 127, 0),
                                            (35, -100, 90, 3)])
@pytest.mark.parametrize("c,hw,oc,k,stride,pad,dilation", [s[:7] for s in (_SHAPES[0], _SHAPES[1], _SHAPES[6],
                                                                        _SHAPES[8])])
def test_conv_kernel_requantizes_like_the_reference(c, hw, oc, k, stride, pad, dilation, shift, lo, hi, zp, tmp_path):
    """The conv with its requantization fused into the kernel: i8 out, the i64 arithmetic of the reference."""
    rng, w, bias, x = _operands(c, hw, oc, k, c * 1000 + oc + shift)
    _check_requantized(rng, x, w, bias, stride, pad, dilation, shift, lo, hi, zp, tmp_path)


# Stems on the patch kernel (patch_fits), each with the usual requantization and a clamped one: ResNet's 3 x 7 x 7
# at stride 2 and MobileNet's 3 x 3 x 3 (their own copies for the usual requantization), a 7 x 7 at stride 1 on
# rows of two vectors, and 2 channels x 5 x 5 (the general copy) with output channels padded to 8 (20 -> 24);
# padded with a value other than the usual zero point
_STEMS = [(3, (62, 64), 64, 7, 2, 3), (3, (32, 31), 32, 3, 2, 1), (3, (9, 32), 16, 7, 1, 3), (2, (20, 32), 20, 5, 2, 2)]


@pytest.mark.parametrize("shift,lo,hi,zp", [(39, 0, 255, -128), (35, -100, 90, 3)])
@pytest.mark.parametrize("c,hw,oc,k,stride,pad", _STEMS)
def test_patch_kernel_runs_the_stems(c, hw, oc, k, stride, pad, shift, lo, hi, zp, tmp_path):
    _check_patch(c, hw, oc, k, stride, pad, shift, lo, hi, zp, tmp_path)


def _check_patch(c, hw, oc, k, stride, pad, shift, lo, hi, zp, tmp_path, pass_name: str = "edgeq-conv-kernel") -> str:
    """The stem through the pass (`pass_name`) on one dispatch of the patch kernel, bit for bit; the IR after."""
    rng, w, bias, x = _operands(c, hw, oc, k, c * 1000 + oc + shift)
    after = _check_requantized(rng, x, w, bias, stride, pad, 1, shift, lo, hi, zp, tmp_path, pad_value=-7,
                               pass_name=pass_name)
    assert [d.endswith("_patch") for d in re.findall(r"flow.dispatch @edgeq_kernels::@(\w+)", after)] == [True]
    return after


def _requantized_ref(ref: np.ndarray, m: np.ndarray, shift: int, lo: int, hi: int, zp: int) -> np.ndarray:
    """edgeq's requantization of the sums `ref`: i64, then i32 + zp truncated to i8 (wraps past 127)."""
    wide = (ref * m.astype(np.int64)[None, :, None, None] + (1 << (shift - 1))) >> shift
    return (wide.clip(lo, hi) + zp).astype(np.int8)


def _multipliers(rng, ref: np.ndarray, shift: int) -> np.ndarray:
    """Multipliers per output channel that spread the sums `ref` over the whole output range."""
    return (np.float64(1 << shift) * 255 / (np.abs(ref).max() + 1)
            * rng.uniform(0.5, 4, size=ref.shape[1])).astype(np.int64)


def _check_requantized(rng, x, w, bias, stride, pad, dilation, shift, lo, hi, zp, tmp_path, pad_value=-128,
                       pass_name="edgeq-conv-kernel"):
    ref = _reference(x, w, bias, stride, pad, dilation, pad_value)
    m = _multipliers(rng, ref, shift)   # and the int32 extremes
    m[:2] = [2 ** 31 - 1, -2 ** 31]
    m = m.clip(-2 ** 31, 2 ** 31 - 1).astype(np.int32)
    module = _conv_module(w, bias, x.shape[2:], stride, pad, dilation, pad_value, (m, shift, lo, hi, zp))
    y, after = _run_kernel(module, x, tmp_path, pass_name=pass_name)
    assert "_rq" in after and "linalg.generic" not in after.split("util.func public @main")[1]
    expected = _requantized_ref(ref, m, shift, lo, hi, zp)
    assert y.dtype == np.int8 and y.shape == expected.shape
    assert np.array_equal(y, expected), f"{int((y != expected).sum())} values differ"
    return after


def _residual_added(q: str, zc: int, mc: int, zr: int, mr: int, shift: int, zp: int, lo: int, hi: int) -> str:
    """%q plus the i8 input %res as edgeq's integer add (IntAdd) is imported: one op per generic, the zero points'
    subi and the output's addi only where they are not 0."""
    i32 = q.replace("xi8", "xi32")
    lines, k = [f"%ae = tensor.empty() : tensor<{i32}>", f"%a8 = tensor.empty() : tensor<{q}>"], [0]

    def generic(inputs: list[str], body: str, result: str = i32) -> str:
        k[0] += 1
        args = ", ".join(f"%i{j}: {'i8' if v in ('%q', '%res') else 'i32'}" for j, v in enumerate(inputs))
        maps = ", ".join(["affine_map<(n, c, h, w) -> (n, c, h, w)>"] * (len(inputs) + 1))
        types = ", ".join(f"tensor<{q if v in ('%q', '%res') else i32}>" for v in inputs)
        lines.append(f"%g{k[0]} = linalg.generic {{indexing_maps = [{maps}], iterator_types = [\"parallel\", "
                     f"\"parallel\", \"parallel\", \"parallel\"]}} ins({', '.join(inputs)} : {types}) "
                     f"outs({'%a8' if result == q else '%ae'} : tensor<{result}>) {{\n  ^bb0({args}, %o: "
                     f"{'i8' if result == q else 'i32'}):\n{body}\n  }} -> tensor<{result}>")
        return f"%g{k[0]}"

    def unary(v: str, op: str, const: int | None = None) -> str:
        if const is None:
            return generic([v], f"    %v = arith.{op} %i0 : i8 to i32\n    linalg.yield %v : i32")
        return generic([v], f"    %k = arith.constant {const} : i32\n    %v = arith.{op} %i0, %k : i32\n"
                            "    linalg.yield %v : i32")

    branches = []
    for v, z, m in (("%q", zc, mc), ("%res", zr, mr)):
        x = unary(v, "extsi")
        branches.append(unary(unary(x, "subi", z) if z else x, "muli", m))
    t = generic(branches, "    %v = arith.addi %i0, %i1 : i32\n    linalg.yield %v : i32")
    t = unary(unary(t, "addi", 1 << (shift - 1)), "shrsi", shift)
    t = unary(t, "addi", zp) if zp else t
    t = generic([t], f"    %lo = arith.constant {lo} : i32\n    %hi = arith.constant {hi} : i32\n"
                     "    %mx = arith.maxsi %i0, %lo : i32\n    %mn = arith.minsi %mx, %hi : i32\n    linalg.yield %mn : i32")
    t = generic([t], "    %v = arith.trunci %i0 : i32 to i8\n    linalg.yield %v : i8", q)
    return "\n".join("  " + ln for ln in lines) + f"\n  util.return {t} : tensor<{q}>"


def _read_by_conv(module: str, w1: np.ndarray, b1: np.ndarray, keep: bool, stride: int = 1, pad: int = 0,
                  pad_value: int = 0) -> str:
    """The module with a conv (i32, its bias as the init; 1x1 unless w1 says otherwise) that reads the i8 value main
    returns, padded by `pad` with `pad_value`, and returns that conv's result, after the i8 value if `keep`."""
    value, q = re.findall(r"util\.return (%\w+) : tensor<(\w+)>", module)[-1]
    oc, c, k = w1.shape[:3]
    h, w = (int(d) for d in q.split("x")[2:4])
    hp, wp = h + 2 * pad, w + 2 * pad
    out = f"1x{oc}x{(hp - k) // stride + 1}x{(wp - k) // stride + 1}xi32"
    results = f"tensor<{q}>, tensor<{out}>" if keep else f"tensor<{out}>"
    module = module.replace(f"-> tensor<{q}> {{", f"-> ({results}) {{")
    padded = f"""%z1 = arith.constant {pad_value} : i8
  %xp1 = tensor.pad {value} low[0, 0, {pad}, {pad}] high[0, 0, {pad}, {pad}] {{
  ^bb0(%i1: index, %j1: index, %k1: index, %l1: index):
    tensor.yield %z1 : i8
  }} : tensor<{q}> to tensor<1x{c}x{hp}x{wp}xi8>
  """ if pad else ""
    return module.replace(f"util.return {value} : tensor<{q}>", f"""\
%w1f = arith.constant {_dense(w1)}
  %w1 = tensor.expand_shape %w1f [[0, 1, 2, 3]] output_shape [{oc}, {c}, {k}, {k}] : tensor<{w1.size}xi8> into tensor<{oc}x{c}x{k}x{k}xi8>
  %b1 = arith.constant {_dense(b1)}
  {padded}%e1 = tensor.empty() : tensor<{out}>
  %bi1 = linalg.broadcast ins(%b1 : tensor<{oc}xi32>) outs(%e1 : tensor<{out}>) dimensions = [0, 2, 3]
  %y1 = linalg.conv_2d_nchw_fchw {{dilations = dense<1> : vector<2xi64>, strides = dense<{stride}> : vector<2xi64>}} ins({"%xp1" if pad else value}, %w1 : tensor<1x{c}x{hp}x{wp}xi8>, tensor<{oc}x{c}x{k}x{k}xi8>) outs(%bi1 : tensor<{out}>) -> tensor<{out}>
  util.return {value + ', ' if keep else ''}%y1 : {results}""")


# (the conv's requantization; zero points of the conv's output, the residual and the add's output, its clamp,
# shift): ResNet's adds (inputs after ReLU, zero point -128, subtracted), MobileNet's (zero points 0: no subi, no
# addi), and a conv requantized with a clamp (the kernel's other copy) before an add with a narrower clamp
@pytest.mark.parametrize("crq,zc,zr,zp,lo,hi,shift", [((39, 0, 255, -128), -128, -128, -128, -128, 127, 20),
                                                      ((39, 0, 255, -128), 0, 0, 0, -128, 127, 21),
                                                      ((35, -100, 90, 3), 3, 5, 3, -100, 90, 19)])
@pytest.mark.parametrize("c,hw,oc,k,stride,pad,rows", [(16, (14, 14), 40, 3, 1, 1, False),
                                                       (24, (13, 13), 16, 1, 2, 0, False),
                                                       (32, (10, 10), 24, 1, 1, 0, False),
                                                       (64, (7, 7), 40, 3, 1, 1, True),
                                                       (32, (13, 13), 24, 3, 2, 1, True),
                                                       (320, (7, 7), 24, 1, 1, 0, True),
                                                       (32, (10, 19), 40, 3, 1, 1, True)])
def test_residual_add_runs_in_the_epilogue(c, hw, oc, k, stride, pad, rows, crq, zc, zr, zp, lo, hi, shift,
                                           tmp_path):
    """A requantized conv followed by a residual add with another i8 tensor: one kernel call, whose epilogue adds
    the residual (edgeq_conv2d_u8s8_requant_add), bit for bit against the reference's i32 arithmetic. On 7 x 7
    maps the rows kernel's epilogue adds it (partial last 16 channels, stride 2, a long 1x1 sum), and on a map 19
    wide in row segments of 6, 6 and 7."""
    after = _check_residual(c, hw, oc, k, stride, pad, crq, zc, zr, zp, lo, hi, shift, tmp_path)
    assert ("_rows" in after) == rows


def _check_residual(c, hw, oc, k, stride, pad, crq, zc, zr, zp, lo, hi, shift, tmp_path,
                    pass_name="edgeq-conv-kernel") -> str:
    """The conv and the add against the reference; the IR after the pass."""
    rng, w, bias, x = _operands(c, hw, oc, k, c * 31 + oc + shift)
    ref = _reference(x, w, bias, stride, pad, 1, -128)
    m = _multipliers(rng, ref, crq[0]).astype(np.int32)
    mc, mr = (int(v) for v in rng.integers(1 << 19, 1 << 21, size=2))
    module = _conv_module(w, bias, hw, stride, pad, 1, -128, (m, *crq))
    q = module.split("util.return %q : tensor<")[1].split(">")[0]
    module = (module.replace("util.func public @main(%x: ", f"util.func public @main(%res: tensor<{q}>, %x: ")
              .replace(f"  util.return %q : tensor<{q}>", _residual_added(q, zc, mc, zr, mr, shift, zp, lo, hi)))
    r = rng.integers(-128, 128, size=tuple(int(d) for d in q.split("x")[:4]), dtype=np.int8)
    r.flat[:2] = [-128, 127]
    y, after = _run_kernel(module, [r, x], tmp_path, pass_name=pass_name)
    assert "_add" in after and "linalg.generic" not in after.split("util.func public @main")[1]
    conv = _requantized_ref(ref, m, *crq)
    acc = (conv.astype(np.int64) - zc) * mc + (r.astype(np.int64) - zr) * mr   # |acc| < 2^31: as in i32
    expected = ((((acc + (1 << (shift - 1))) >> shift) + zp).clip(lo, hi)).astype(np.int8)
    assert y.dtype == np.int8 and y.shape == expected.shape
    assert np.array_equal(y, expected), f"{int((y != expected).sum())} values differ"
    return after


# (in channels, size, out channels, kernel, stride, padding, channels in lanes): the convs the rows kernel, with
# output channels in its lanes, takes (ConvShape.rows_kernel). Output rows of 8 pixels or fewer: ResNet's layer4
# (7 x 7) with a partial last 16 channels, stride 2 with an odd count of 8-channel blocks, a 5x5 conv on a map 3
# wide, 1x1 convs with sums of 128 and more on 7 x 7 (MobileNetV2's last ones; one with padded input channels;
# ResNet's stride-2 downsample to 7 x 7); 1x1 convs with shorter sums stay on the grid; 240 channels in 8
# workgroups of 32 with a last one of 16. Wider rows in segments of nearly equal widths, for sums of 256 and more
# (ResNet's layer3, 14 x 14: segments of 7; stride 2 to 12 x 10: of 5); shorter sums on wide maps stay on the grid,
# among them maps whose packed rows are longer than the pack's 64-position steps (stride 1 and 2)
_ROWS_KERNEL = [(64, (7, 7), 80, 3, 1, 1, True), (32, (13, 13), 40, 3, 2, 1, True), (16, (5, 3), 16, 5, 1, 2, True),
                (320, (7, 7), 40, 1, 1, 0, True), (330, (7, 7), 24, 1, 1, 0, True), (128, (7, 7), 40, 1, 1, 0, True),
                (136, (14, 14), 24, 1, 2, 0, True), (48, (7, 7), 24, 1, 1, 0, False), (96, (7, 7), 24, 1, 1, 0, False),
                (32, (7, 7), 240, 3, 1, 1, True), (256, (14, 14), 24, 3, 1, 1, True), (32, (23, 20), 40, 3, 2, 1, True),
                (24, (12, 20), 16, 3, 1, 1, False), (8, (5, 140), 16, 3, 1, 1, False),
                (12, (6, 150), 16, 3, 2, 1, False)]


@pytest.mark.parametrize("shift,lo,hi,zp", [(39, 0, 255, -128), (35, -100, 90, 3)])
@pytest.mark.parametrize("c,hw,oc,k,stride,pad,rows", _ROWS_KERNEL)
def test_rows_kernel_runs_with_channels_in_lanes(c, hw, oc, k, stride, pad, rows, shift, lo, hi, zp, tmp_path):
    rng, w, bias, x = _operands(c, hw, oc, k, c * 1000 + oc + shift)
    after = _check_requantized(rng, x, w, bias, stride, pad, 1, shift, lo, hi, zp, tmp_path)
    assert ("_rows" in after) == rows


# (in channels, size, out channels): 3x3 stride-1 convs padded by 1 that the Winograd kernel takes
# (winograd_fits), in two workgroups of tiles, each taken in pieces of 14 tiles or a tile row: a partial block of 6
# tiles (2 x 5 tiles: 5 each), two 64-channel blocks and the 128 input channels of its exactness bound, one 4x4 tile
# of 4 channels, tile rows of 16 (64 wide: two steps of its input transform) with pieces ending mid-row, maps that
# end in partial tiles (14 x 14: 2 rows and columns of the last; 7 x 9); pieces of 7, 8 and 9 tiles, whose last
# tiles join the block before them. Two workgroups whose ranges are whole pieces claim them from both ends of the
# tiles (winograd_claims); each takes its own range where there is one (4 x 4), two not of whole pieces (12 x 64:
# 48 tiles, ranges of 24 in pieces of 16 and 8) and four (64 x 60: 240 tiles, in pieces of a tile row). Tile rows
# of at most 7 tiles go through the input transform two at a time: whole (16 x 16), with the map's last tiles
# partial (14 x 14), and as ResNet's layer2 (28 x 28: ranges of 24 and 25 tiles whose pieces start and end mid-row)
_WINOGRAD = [(16, (8, 20), 64), (128, (16, 16), 128), (4, (4, 4), 64), (24, (12, 64), 64), (32, (14, 14), 64),
             (8, (7, 9), 128), (16, (8, 28), 64), (8, (8, 32), 64), (8, (8, 36), 64), (8, (64, 60), 64),
             (8, (28, 28), 64)]


@pytest.mark.parametrize("shift,lo,hi,zp", [(39, 0, 255, -128), (31, -128, 127, 0), (35, -100, 90, 3)])
@pytest.mark.parametrize("c,hw,oc", _WINOGRAD)
def test_winograd_conv_requantizes_like_the_reference(c, hw, oc, shift, lo, hi, zp, tmp_path):
    _check_winograd(c, hw, oc, shift, lo, hi, zp, tmp_path)


def _check_winograd(c, hw, oc, shift, lo, hi, zp, tmp_path, pass_name="edgeq-conv-kernel"):
    """F(4x4, 3x3) in i16 products and wrap-around i32 sums, bit for bit against torch's float64 conv."""
    rng, w, bias, x = _operands(c, hw, oc, 3, c * 7 + oc + shift)
    after = _check_requantized(rng, x, w, bias, 1, 1, 1, shift, lo, hi, zp, tmp_path, pass_name=pass_name)
    assert re.findall(r"flow.dispatch @edgeq_kernels::@(\w+)", after) == [re.search(r"@(winograd_\w+)\(", after)[1]]
    assert re.search(r"@edgeq_winograd_conv_requant(?:_claimed)?_pooled\(", after)


def test_winograd_scratch_is_sized_with_the_kernels_constants():
    """The pass sizes each Winograd dispatch's scratch for the kernel's pieces and blocks (winograd_scratch): its
    constants must be the kernel's, or a workgroup's V and M would run past its slot."""
    source = SOURCES[VNNI].read_text()

    def define(name: str) -> int:
        return int(re.search(rf"#define {name} (\d+)\b", source)[1])
    assert (define("WINO_PIECE"), define("WINO_TILES"), 16 * define("WINO_VECTORS")) == (
        conv_kernel.WINOGRAD_PIECE[VNNI], conv_kernel.WINOGRAD_TILES, conv_kernel.WINOGRAD_OC)


def test_winograd_leaves_convs_it_does_not_fit(tmp_path):
    """128 -> 256 channels: transformed weights 1 MiB larger than the conv's, which IREE would not evaluate at
    compile time (winograd_fits); the direct kernel (here the rows one) takes it."""
    rng, w, bias, x = _operands(128, (8, 8), 256, 3, 3)
    after = _check_requantized(rng, x, w, bias, 1, 1, 1, 39, 0, 255, -128, tmp_path)
    assert "@edgeq_winograd_conv_requant" not in after and "@edgeq_conv2d_u8s8_rows_requant_pooled(" in after


@pytest.mark.parametrize("xv,wv", [(-128, -128), (127, -128), (-128, 127)])
def test_winograd_is_exact_at_its_bound(xv, wv, tmp_path):
    _check_winograd_bound(xv, wv, tmp_path)


def _check_winograd_bound(xv, wv, tmp_path, pass_name="edgeq-conv-kernel", c=128):
    """c channels of extreme inputs and weights: with 128, sums of 128 * 9 * 128 * 128 (just under the kernel's 2^25
    after its division by 576 modulo 2^26), 2^32 times over in its i32 sums before that."""
    rng, _, bias, _ = _operands(c, (8, 8), 64, 3, 5)
    w = np.full((64, c, 3, 3), wv, dtype=np.int8)
    w[1::2] = -w[1::2] - 1   # both signs of sums
    x = np.full((1, c, 8, 8), xv, dtype=np.int8)
    after = _check_requantized(rng, x, w, bias, 1, 1, 1, 46, -128, 127, 0, tmp_path, pass_name=pass_name)
    assert re.search(r"@edgeq_winograd_conv_requant(?:_claimed)?_pooled\(", after)


# whole tiles: the residual gathered; the map's last tiles partial: read row by row; both in two workgroups, which
# claim their pieces, and 64 x 60 in four, which take their own ranges
_WINOGRAD_ADDS = [((12, 8), (39, 0, 255, -128), -128, -128, -128, -128, 127, 20),
                  ((10, 7), (35, -100, 90, 3), 3, 5, 3, -100, 90, 19),
                  ((64, 60), (39, 0, 255, -128), -128, -128, -128, -128, 127, 18)]


@pytest.mark.parametrize("hw,crq,zc,zr,zp,lo,hi,shift", _WINOGRAD_ADDS)
def test_winograd_conv_adds_the_residual(hw, crq, zc, zr, zp, lo, hi, shift, tmp_path):
    _check_winograd_residual(hw, crq, zc, zr, zp, lo, hi, shift, tmp_path)


def _check_winograd_residual(hw, crq, zc, zr, zp, lo, hi, shift, tmp_path, pass_name="edgeq-conv-kernel"):
    """ResNet's basic block end on the Winograd kernel: its epilogue adds the residual, as the direct kernels'."""
    rng, w, bias, x = _operands(32, hw, 64, 3, 11 + shift)
    ref = _reference(x, w, bias, 1, 1, 1, -128)
    m = _multipliers(rng, ref, crq[0]).astype(np.int32)
    mc, mr = (int(v) for v in rng.integers(1 << 19, 1 << 21, size=2))
    module = _conv_module(w, bias, hw, 1, 1, 1, -128, (m, *crq))
    q = module.split("util.return %q : tensor<")[1].split(">")[0]
    module = (module.replace("util.func public @main(%x: ", f"util.func public @main(%res: tensor<{q}>, %x: ")
              .replace(f"  util.return %q : tensor<{q}>", _residual_added(q, zc, mc, zr, mr, shift, zp, lo, hi)))
    r = rng.integers(-128, 128, size=(1, 64, *hw), dtype=np.int8)
    r.flat[:2] = [-128, 127]
    y, after = _run_kernel(module, [r, x], tmp_path, pass_name=pass_name)
    assert re.search(r"@edgeq_winograd_conv_requant_add(?:_claimed)?_pooled\(", after)
    assert "linalg.generic" not in after.split("util.func public @main")[1]
    conv = _requantized_ref(ref, m, *crq)
    acc = (conv.astype(np.int64) - zc) * mc + (r.astype(np.int64) - zr) * mr   # |acc| < 2^31: as in i32
    expected = ((((acc + (1 << (shift - 1))) >> shift) + zp).clip(lo, hi)).astype(np.int8)
    assert np.array_equal(y, expected), f"{int((y != expected).sum())} values differ"


def _layer1_in_small(tmp_path, calls: int):
    """A Winograd conv with claimed pieces compiled for host, `calls` inputs and their outputs by the reference."""
    rng, w, bias, _ = _operands(8, (32, 56), 64, 3, 32)
    xs = [rng.integers(-128, 128, size=(1, 8, 32, 56), dtype=np.int8) for _ in range(calls)]
    refs = [_reference(x, w, bias, 1, 1, 1, -128) for x in xs]
    m = _multipliers(rng, refs[0], 39).astype(np.int32)
    vmfb, after = _compile_kernel(_conv_module(w, bias, (32, 56), 1, 1, 1, -128, (m, 39, 0, 255, -128)), tmp_path)
    return vmfb, after, xs, [_requantized_ref(ref, m, 39, 0, 255, -128) for ref in refs]


def test_winograd_workgroups_claim_pieces_call_after_call(tmp_path):
    """ResNet's layer1 in small: two workgroups claim the pieces of their ranges (4 tile rows each) from both ends
    of the tiles, counted in a global of the module that the last workgroup leaves at 0 (winograd_claims). A count
    left over from one call would skip pieces in the next: call after call on one loaded module, on two workers and
    on one, each output is the reference's."""
    vmfb, after, xs, expected = _layer1_in_small(tmp_path, 4)
    assert "call @edgeq_winograd_conv_requant_claimed_pooled(" in after
    assert "util.global private mutable @edgeq_conv_8x34x58_64x3x3" in after
    for threads in (2, 1):
        run = HostTarget(threads).load(vmfb)
        for k, (x, want) in enumerate(zip(xs * 2, expected * 2)):
            y = np.asarray(run(x))
            assert np.array_equal(y, want), f"call {k} on {threads} threads: {int((y != want).sum())} differ"


def test_pool_serves_callers_on_several_threads(tmp_path):
    """The module runs on edgeq's pool (targets/kernels/pool.c): one workgroup per dispatch, whose shim takes the
    pool from the import edgeq_pool. Four Python threads call one loaded module 1500 times each: every output is
    the reference's. Each call waits for the helpers' last workgroups, and the calls take turns (host.py's
    _one_at_a_time): the Winograd workgroups' claims are a global of the module, and without the turns about one
    call in 1600 came out wrong."""
    vmfb, after, xs, expected = _layer1_in_small(tmp_path, 8)
    assert uses_pool(vmfb) and re.search(r"= call @edgeq_pool\(\) : \(\) -> index", after)
    assert re.findall(r"hal.return (%\w+), (%\w+), (%\w+) :", after) == [("%c1", "%c1", "%c1")]
    run = HostTarget(2).load(vmfb)

    def calls(k: int) -> list[bool]:
        return [np.array_equal(np.asarray(run(xs[(k + i) % len(xs)])), expected[(k + i) % len(xs)])
                for i in range(1500)]

    with ThreadPoolExecutor(4) as pool:
        assert all(all(ok) for ok in pool.map(calls, range(4)))


def _maxpool_module(c: int, hw: tuple[int, int], pad_value: int, init: int) -> str:
    """A 3x3 max pooling at stride 2 as torch's MaxPool2d(3, 2, 1) imports to i8: pad, fill, pooling_nchw_max."""
    h, w = hw
    oh, ow = (h - 1) // 2 + 1, (w - 1) // 2 + 1
    return f"""util.func public @main(%x: tensor<1x{c}x{h}x{w}xi8>) -> tensor<1x{c}x{oh}x{ow}xi8> {{
  %v = arith.constant {pad_value} : i8
  %i = arith.constant {init} : i8
  %xp = tensor.pad %x low[0, 0, 1, 1] high[0, 0, 1, 1] {{
  ^bb0(%a: index, %b: index, %c: index, %d: index):
    tensor.yield %v : i8
  }} : tensor<1x{c}x{h}x{w}xi8> to tensor<1x{c}x{h + 2}x{w + 2}xi8>
  %e = tensor.empty() : tensor<1x{c}x{oh}x{ow}xi8>
  %f = linalg.fill ins(%i : i8) outs(%e : tensor<1x{c}x{oh}x{ow}xi8>) -> tensor<1x{c}x{oh}x{ow}xi8>
  %k = tensor.empty() : tensor<3x3xi8>
  %y = linalg.pooling_nchw_max {{dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>}} ins(%xp, %k : tensor<1x{c}x{h + 2}x{w + 2}xi8>, tensor<3x3xi8>) outs(%f : tensor<1x{c}x{oh}x{ow}xi8>) -> tensor<1x{c}x{oh}x{ow}xi8>
  util.return %y : tensor<1x{c}x{oh}x{ow}xi8>
}}"""


# (channels, size, padding value, init): ResNet's (64 x 112 x 112, 2 steps of 32 outputs per row), odd sizes, a
# rows of 3 steps, the last of 2 outputs (131 wide -> 66), padding and init that are not the i8 minimum
_MAXPOOLS = [(64, (112, 112), -128, -128), (5, (13, 17), -3, -128), (3, (9, 131), 7, -100), (2, (20, 20), -128, 5)]


@pytest.mark.parametrize("c,hw,pad_value,init", _MAXPOOLS)
def test_maxpool_kernel_matches_numpy(c, hw, pad_value, init, tmp_path):
    _check_maxpool(c, hw, pad_value, init, tmp_path)


def _check_maxpool(c, hw, pad_value, init, tmp_path, pass_name: str = "edgeq-conv-kernel"):
    """The max pooling through the kernel against numpy's maxima over the padded input, bit for bit."""
    rng = np.random.default_rng(c)
    x = rng.integers(-128, 128, size=(1, c, *hw), dtype=np.int8)
    y, after = _run_kernel(_maxpool_module(c, hw, pad_value, init), x, tmp_path, pass_name=pass_name)
    assert "@edgeq_maxpool3x3s2_i8_pooled(" in after and "pooling_nchw_max" not in after
    h, w = hw
    xp = np.pad(x[0].astype(np.int64), ((0, 0), (1, 2), (1, 2)), constant_values=pad_value)
    oh, ow = y.shape[2:]
    expected = np.full((c, oh, ow), init, np.int64)
    for i in range(3):
        for j in range(3):
            expected = np.maximum(expected, xp[:, i:i + 2 * oh:2, j:j + 2 * ow:2])
    assert y.shape == (1, c, oh, ow) and np.array_equal(y[0], expected.astype(np.int8))


# (channels, size, stride, padding): MobileNet's strides and paddings, rows narrower and wider than the kernel's
# 16 lanes and its 64-byte row loads at both strides, odd sizes under stride 2, channels that are not a multiple of
# its groups of 4, workgroups of several groups (64 x 9 x 9); output rows of 8 pixels or fewer, two to a vector
# (24 x 14 x 14 and 40 x 15 x 9 at stride 2, 5 x 7 x 7 unpadded, MobileNet's 7 x 7, 8-pixel rows of an odd count)
@pytest.mark.parametrize("c,hw,stride,pad", [(16, (9, 13), 1, 1), (24, (14, 14), 2, 1), (8, (23, 70), 1, 1),
                                            (40, (15, 9), 2, 1), (3, (33, 20), 1, 0), (5, (7, 7), 2, 0),
                                            (64, (9, 9), 1, 1), (6, (9, 133), 2, 1), (12, (7, 7), 1, 1),
                                            (6, (5, 8), 1, 1)])
def test_depthwise_kernel_requantizes_like_the_reference(c, hw, stride, pad, tmp_path):
    rng, w, bias, x = _operands(c, hw, c, 3, c * 100 + hw[0], depthwise=True)
    _check_requantized(rng, x, w, bias, stride, pad, 1, 39, 0, 255, -128, tmp_path)


@pytest.mark.parametrize("shift,lo,hi,zp", [(39, 0, 255, -128), (35, -100, 90, 3)])
@pytest.mark.parametrize("c,hw,stride,oc", [(24, (14, 14), 1, 40), (13, (15, 9), 2, 16), (20, (7, 7), 1, 24)])
def test_depthwise_hands_its_output_packed_to_a_1x1_conv(c, hw, stride, oc, shift, lo, hi, zp, tmp_path):
    """MobileNet's depthwise -> 1x1 pairs: the depthwise kernel writes the 1x1 conv's packed input (4 channels per
    lane, + 128) and that conv runs without a pack dispatch; bit for bit against torch, through the i8 between.
    With edgeq's usual requantization (the kernel's copy for it) and a clamp."""
    rng, w, bias, x = _operands(c, hw, c, 3, c * 7 + oc, depthwise=True)
    m = np.full(c, 1 << (shift - 9), np.int32) // (rng.integers(1, 4, c).astype(np.int32))
    dw = _conv_module(w, bias, hw, stride, 1, 1, -128, (m, shift, lo, hi, zp))
    w1 = rng.integers(-128, 128, size=(oc, c, 1, 1), dtype=np.int8)
    b1 = rng.integers(-(1 << 20), 1 << 20, size=(oc,), dtype=np.int32)
    text = _read_by_conv(dw, w1, b1, keep=False)
    y, after = _run_kernel(text, x, tmp_path)
    assert "_packed" in after and "@pack_" not in after   # the 1x1 conv's input came packed
    ref = _reference(x, w, bias, stride, 1, 1, -128)
    mid = _requantized_ref(ref, m, shift, lo, hi, zp)
    expected = _reference(mid, w1, b1, 1, 0, 1, 0)
    assert y.dtype == np.int32 and y.shape == expected.shape
    assert np.array_equal(y, expected), f"{int((y != expected).sum())} values differ"


# (in channels, size, out channels, kernel, padding, a residual add, packs): a padded 3x3 conv (the grid's dropped
# columns), MobileNet's project conv with its residual add on a map whose grid ends in a partial vector, and
# output channels that are not whole tiles of 8, whose reader packs its input itself; on 7 x 7, the rows
# kernel's packed output, with and without the add, with a partial last 16 channels (24), and on a map 11 wide, in
# row segments of 5 and 6
@pytest.mark.parametrize("crq", [(39, 0, 255, -128), (35, -100, 90, 3)])
@pytest.mark.parametrize("c,hw,oc,k,pad,add,packs", [(12, (10, 10), 16, 3, 1, False, True),
                                                     (16, (13, 13), 24, 1, 0, True, True),
                                                     (8, (9, 9), 20, 3, 1, False, False),
                                                     (64, (7, 7), 32, 3, 1, True, True),
                                                     (320, (7, 7), 24, 1, 0, False, True),
                                                     (320, (7, 7), 24, 1, 0, True, True),
                                                     (32, (10, 11), 24, 3, 1, True, True)])
def test_conv_hands_its_output_packed_to_a_1x1_conv(c, hw, oc, k, pad, add, packs, crq, tmp_path):
    """MobileNet's project -> expand pairs: a requantized conv (on the grid or the rows kernel) whose output a
    1x1 conv reads writes that conv's packed input as a second result, besides its NCHW output (which main returns
    too, as the next residual add would read it); the 1x1 conv runs without a pack dispatch. Both outputs bit for
    bit."""
    rng, w, bias, x = _operands(c, hw, oc, k, c * 13 + oc + crq[0])
    ref = _reference(x, w, bias, 1, pad, 1, -128)
    m = _multipliers(rng, ref, crq[0]).astype(np.int32)
    module = _conv_module(w, bias, hw, 1, pad, 1, -128, (m, *crq))
    expected = _requantized_ref(ref, m, *crq)
    inputs = [x]
    if add:   # MobileNet's: zero points 0
        q = module.split("util.return %q : tensor<")[1].split(">")[0]
        mc, mr = (int(v) for v in rng.integers(1 << 19, 1 << 21, size=2))
        module = (module.replace("util.func public @main(%x: ", f"util.func public @main(%res: tensor<{q}>, %x: ")
                  .replace(f"  util.return %q : tensor<{q}>", _residual_added(q, 0, mc, 0, mr, 21, 0, -128, 127)))
        r = rng.integers(-128, 128, size=expected.shape, dtype=np.int8)
        inputs = [r, x]
        acc = expected.astype(np.int64) * mc + r.astype(np.int64) * mr
        expected = (((acc + (1 << 20)) >> 21).clip(-128, 127)).astype(np.int8)
    w1 = rng.integers(-128, 128, size=(40, oc, 1, 1), dtype=np.int8)
    b1 = rng.integers(-(1 << 20), 1 << 20, size=(40,), dtype=np.int32)
    (y, y1), after = _run_kernel(_read_by_conv(module, w1, b1, keep=True), inputs, tmp_path, outputs=2)
    assert ("_packs" in after) == packs and after.count("flow.dispatch @edgeq_kernels::@pack_") == 2 - packs
    assert ("_add" in after) == add
    assert y.dtype == np.int8 and np.array_equal(y, expected), f"{int((y != expected).sum())} values differ"
    expected1 = _reference(expected, w1, b1, 1, 0, 1, 0)
    assert y1.dtype == np.int32 and np.array_equal(y1, expected1), f"{int((y1 != expected1).sum())} values differ"


# (the rows kernel's conv: in channels, size, out channels, kernel, stride, padding, a residual add; its reader:
# kernel, stride, padding, padding value, out channels): ResNet's layer3 pairs, a 3x3 conv padded by 1 reading the
# output (on the rows kernel or, with sums of 24 x 9, the grid) on a map 11 wide, in segments of 5 and 6 that start
# at odd and even padded columns; at stride 2 (four phase planes), with the add; a 1x1 conv at stride 2 (odd rows
# and columns not stored), with a partial last 16 channels (24); a 5x5 conv padded by 2 at stride 2 after a
# stride-2 conv, its padding not the zero point
@pytest.mark.parametrize("crq", [(39, 0, 255, -128), (35, -100, 90, 3)])
@pytest.mark.parametrize("c,hw,oc,k,stride,pad,add,reader", [
    (32, (10, 11), 32, 3, 1, 1, False, (3, 1, 1, -128, 40)), (32, (10, 11), 24, 3, 1, 1, False, (3, 1, 1, 7, 16)),
    (32, (10, 11), 32, 3, 1, 1, True, (3, 2, 1, -128, 40)), (32, (9, 13), 24, 3, 1, 1, True, (1, 2, 0, 0, 16)),
    (64, (13, 12), 16, 3, 2, 1, False, (5, 2, 2, -5, 8))])
def test_rows_kernel_hands_its_output_packed_to_any_conv(c, hw, oc, k, stride, pad, add, reader, crq, tmp_path):
    """A conv on the rows kernel whose output another conv reads through a pack writes that conv's packed input,
    its padding and phase planes included, as a second result; the reader has no pack dispatch. Both outputs bit
    for bit."""
    k1, s1, p1, v1, oc1 = reader
    rng, w, bias, x = _operands(c, hw, oc, k, c * 7 + oc + k1 + s1 + crq[0])
    ref = _reference(x, w, bias, stride, pad, 1, -128)
    m = _multipliers(rng, ref, crq[0]).astype(np.int32)
    module = _conv_module(w, bias, hw, stride, pad, 1, -128, (m, *crq))
    expected = _requantized_ref(ref, m, *crq)
    inputs = [x]
    if add:   # ResNet's: zero points -128
        q = module.split("util.return %q : tensor<")[1].split(">")[0]
        mc, mr = (int(v) for v in rng.integers(1 << 19, 1 << 21, size=2))
        module = (module.replace("util.func public @main(%x: ", f"util.func public @main(%res: tensor<{q}>, %x: ")
                  .replace(f"  util.return %q : tensor<{q}>", _residual_added(q, -128, mc, -128, mr, 20, -128, -128,
                                                                             127)))
        r = rng.integers(-128, 128, size=expected.shape, dtype=np.int8)
        inputs = [r, x]
        acc = (expected.astype(np.int64) + 128) * mc + (r.astype(np.int64) + 128) * mr
        expected = ((((acc + (1 << 19)) >> 20) - 128).clip(-128, 127)).astype(np.int8)
    w1 = rng.integers(-128, 128, size=(oc1, oc, k1, k1), dtype=np.int8)
    b1 = rng.integers(-(1 << 20), 1 << 20, size=(oc1,), dtype=np.int32)
    text = _read_by_conv(module, w1, b1, keep=True, stride=s1, pad=p1, pad_value=v1)
    (y, y1), after = _run_kernel(text, inputs, tmp_path, outputs=2)
    assert "_rows_" in after and "_packs_" in after and after.count("flow.dispatch @edgeq_kernels::@pack_") == 1
    assert y.dtype == np.int8 and np.array_equal(y, expected), f"{int((y != expected).sum())} values differ"
    expected1 = _reference(expected, w1, b1, s1, p1, 1, v1)
    assert y1.dtype == np.int32 and np.array_equal(y1, expected1), f"{int((y1 != expected1).sum())} values differ"


def _spliced(other: str, prefix: str, value: str) -> tuple[str, str, str]:
    """`other`'s main on `value` (its %x), its names prefixed: its lines up to its return, what it returns, and
    their types."""
    body = re.sub(r"%(?!x\b)(\w+)", rf"%{prefix}_\1", other.split("{", 1)[1].rsplit("}", 1)[0]).replace("%x", value)
    ret = re.search(r"util\.return (.*) : (.*)", body)
    return body[:ret.start()].strip(), ret.group(1), ret.group(2)


def _beside(module: str, other: str) -> str:
    """`module` whose main also computes `other`'s main on the same %x and returns both."""
    lines, values, types = _spliced(other, "o", "%x")
    ret = list(re.finditer(r"util\.return (%\w+) : (tensor<\w+>)", module))[-1]
    head = module[:ret.start()].replace(f"-> {ret.group(2)} {{", f"-> ({ret.group(2)}, {types}) {{", 1)
    return head + lines + f"\n  util.return {ret.group(1)}, {values} : {ret.group(2)}, {types}\n}}"


# (in channels, size, the 1x1 conv's out channels, requantized, the input from a conv before): a requantized 1x1
# stride-2 conv on the rows kernel beside a 3x3 stride-2 conv padded by 1 on the same input (ResNet's layer4
# downsample and its block's first conv) reads phase plane (1, 1) of that conv's packed input, with no pack of its
# own: 128 channels to 7 x 7, an odd map (13 x 13: planes 8 wide, outputs 7, out channels a partial 16), and their
# input written packed by the 3x3 conv before them (the rows kernel's second output); i32 sums on the grid kernel
# pack their own
@pytest.mark.parametrize("c,hw,oc,requantized,before", [(128, (14, 14), 64, True, False),
                                                        (128, (13, 13), 40, True, False),
                                                        (128, (14, 14), 64, True, True),
                                                        (16, (14, 14), 24, False, False)])
def test_downsample_reads_the_strided_convs_packed_input(c, hw, oc, requantized, before, tmp_path):
    rng, w3, b3, x = _operands(c, hw, 24, 3, c + oc)
    w1 = rng.integers(-128, 128, size=(oc, c, 1, 1), dtype=np.int8)
    b1 = rng.integers(-(1 << 20), 1 << 20, size=(oc,), dtype=np.int32)
    x1, text = x, None
    if before:   # a requantized 3x3 conv on the rows kernel writes their input (256 channels: not Winograd's)
        x = rng.integers(-128, 128, size=(1, 256, *hw), dtype=np.int8)
        w0 = rng.integers(-128, 128, size=(c, 256, 3, 3), dtype=np.int8)
        ref0 = _reference(x, w0, b1[:1].repeat(c), 1, 1, 1, -128)
        m0 = _multipliers(rng, ref0, 39).clip(0, 2 ** 31 - 1).astype(np.int32)
        x1 = _requantized_ref(ref0, m0, 39, 0, 255, -128)
        text = _conv_module(w0, b1[:1].repeat(c), hw, 1, 1, 1, -128, (m0, 39, 0, 255, -128))
    refs, modules = [], []
    for w, b, stride, pad in ((w3, b3, 2, 1), (w1, b1, 2, 0)):
        ref = _reference(x1, w, b, stride, pad, 1, -128)
        rq = None
        if requantized:
            m = _multipliers(rng, ref, 39).clip(0, 2 ** 31 - 1).astype(np.int32)
            rq, ref = (m, 39, 0, 255, -128), _requantized_ref(ref, m, 39, 0, 255, -128)
        refs.append(ref)
        modules.append(_conv_module(w, b, hw, stride, pad, 1, -128, rq))
    pair = _beside(modules[0], modules[1])
    if before:   # the pair reads the first conv's output instead of %x, and main returns only theirs
        lines, values, types = _spliced(pair, "p", re.findall(r"util\.return (%\w+) :", text)[-1])
        head = text[:re.search(r"util\.return ", text).start()]
        text = (re.sub(r"-> tensor<\w+> \{", f"-> ({types}) {{", head, count=1) + lines
                + f"\n  util.return {values} : {types}\n}}")
    else:
        text = pair
    (y3, y1), after = _run_kernel(text, x, tmp_path, outputs=2)
    assert bool(re.search(r"flow.dispatch @edgeq_kernels::@conv_\w+_rows_reads_\w+", after)) == requantized
    # one pack: of the pair's input, or of the first conv's, which writes the pair's; the grid's, one more
    assert (after.count("flow.dispatch @edgeq_kernels::@pack_") == (1 if requantized else 2)
            and ("_packs_" in after) == before)
    for y, ref in zip((y3, y1), refs):
        assert y.dtype == (np.int8 if requantized else np.int32) and np.array_equal(y, ref), \
            f"{int((y != ref).sum())} values differ"


# Inputs past a whole group of 4 (17, 301, 1283) and outputs past a whole block of 16, 1000 outputs in 8 workgroups
# with a partial last tile
_LINEARS = [(32, 10, True), (301, 1000, True), (1283, 40, True), (17, 5, False)]


@pytest.mark.parametrize("k,n,bias", _LINEARS)
def test_linear_kernel_matches_numpy(k, n, bias, tmp_path):
    _check_linear(k, n, bias, tmp_path)


def _check_linear(k, n, bias, tmp_path, pass_name: str = "edgeq-conv-kernel"):
    """A batch-1 linear layer as torch's nn.Linear imports (a matmul by the transposed weights from zero, then the
    bias add, or none): one dispatch of edgeq_linear_u8s8, against numpy's product, bit for bit."""
    rng = np.random.default_rng(k + n)
    x, w = rng.integers(-128, 128, (1, k), dtype=np.int8), rng.integers(-128, 128, (n, k), dtype=np.int8)
    b = rng.integers(-2 ** 20, 2 ** 20, n, dtype=np.int32)
    add = f"""  %b = arith.constant {_dense(b)}
  %ze = tensor.empty() : tensor<1x{n}xi32>
  %z = linalg.generic {{indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]}} ins(%y, %b : tensor<1x{n}xi32>, tensor<{n}xi32>) outs(%ze : tensor<1x{n}xi32>) {{
  ^bb0(%p: i32, %q: i32, %o: i32):
    %s = arith.addi %p, %q : i32
    linalg.yield %s : i32
  }} -> tensor<1x{n}xi32>
  util.return %z : tensor<1x{n}xi32>"""
    text = f"""util.func public @main(%x: tensor<1x{k}xi8>) -> tensor<1x{n}xi32> {{
  %wf = arith.constant {_dense(w)}
  %w = tensor.expand_shape %wf [[0, 1]] output_shape [{n}, {k}] : tensor<{w.size}xi8> into tensor<{n}x{k}xi8>
  %we = tensor.empty() : tensor<{k}x{n}xi8>
  %wt = linalg.transpose ins(%w : tensor<{n}x{k}xi8>) outs(%we : tensor<{k}x{n}xi8>) permutation = [1, 0]
  %c0 = arith.constant 0 : i32
  %ye = tensor.empty() : tensor<1x{n}xi32>
  %f = linalg.fill ins(%c0 : i32) outs(%ye : tensor<1x{n}xi32>) -> tensor<1x{n}xi32>
  %y = linalg.matmul ins(%x, %wt : tensor<1x{k}xi8>, tensor<{k}x{n}xi8>) outs(%f : tensor<1x{n}xi32>) -> tensor<1x{n}xi32>
{add if bias else f"  util.return %y : tensor<1x{n}xi32>"}
}}"""
    y, after = _run_kernel(text, x, tmp_path, pass_name=pass_name)
    assert "linalg.matmul" not in after and "@edgeq_linear_u8s8" in after
    ref = x.astype(np.int64) @ w.T.astype(np.int64) + (b if bias else 0)
    np.testing.assert_array_equal(y, ref)
