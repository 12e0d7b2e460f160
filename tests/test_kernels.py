"""edgeq's own int8 conv kernel (targets/kernels, dialect_passes/conv_kernel.py) against torch's float64 conv, bit for
bit, over the shapes its tiling has edges on; and in whole models, where the host pipeline uses it."""
import subprocess

import numpy as np
import pytest
import torch

from edgeq.dialect_passes._registry import run_pipeline
from edgeq.pipeline.compile import compile_input, iree_compile_tool
from edgeq.targets.host import HostTarget, has_avx512_vnni

pytestmark = pytest.mark.skipif(not has_avx512_vnni(), reason="the kernel needs x86-64 with AVX-512 VNNI")


def _dense(a: np.ndarray) -> str:
    return f"dense<[{', '.join(map(str, a.flatten()))}]> : tensor<{a.size}x{'i8' if a.dtype == np.int8 else 'i32'}>"


def _conv_module(w: np.ndarray, bias: np.ndarray, hw: tuple[int, int], stride: int, pad: int, dilation: int,
                 pad_value: int) -> tuple[str, tuple[int, int]]:
    """An i8 conv as edgeq-raise-int-contraction leaves it: pad, then linalg.conv_2d_nchw_fchw into a broadcast bias."""
    oc, c, k, _ = w.shape
    h, wd = hw
    hp, wp = h + 2 * pad, wd + 2 * pad
    oh, ow = (hp - dilation * (k - 1) - 1) // stride + 1, (wp - dilation * (k - 1) - 1) // stride + 1
    out = f"1x{oc}x{oh}x{ow}xi32"
    return f"""util.func public @main(%x: tensor<1x{c}x{h}x{wd}xi8>) -> tensor<{out}> {{
  %wf = arith.constant {_dense(w)}
  %w = tensor.expand_shape %wf [[0, 1, 2, 3]] output_shape [{oc}, {c}, {k}, {k}] : tensor<{w.size}xi8> into tensor<{oc}x{c}x{k}x{k}xi8>
  %b = arith.constant {_dense(bias)}
  %z = arith.constant {pad_value} : i8
  %xp = tensor.pad %x low[0, 0, {pad}, {pad}] high[0, 0, {pad}, {pad}] {{
  ^bb0(%i: index, %j: index, %k: index, %l: index):
    tensor.yield %z : i8
  }} : tensor<1x{c}x{h}x{wd}xi8> to tensor<1x{c}x{hp}x{wp}xi8>
  %e = tensor.empty() : tensor<{out}>
  %bi = linalg.broadcast ins(%b : tensor<{oc}xi32>) outs(%e : tensor<{out}>) dimensions = [0, 2, 3]
  %y = linalg.conv_2d_nchw_fchw {{dilations = dense<{dilation}> : vector<2xi64>, strides = dense<{stride}> : vector<2xi64>}} ins(%xp, %w : tensor<1x{c}x{hp}x{wp}xi8>, tensor<{oc}x{c}x{k}x{k}xi8>) outs(%bi : tensor<{out}>) -> tensor<{out}>
  util.return %y : tensor<{out}>
}}""", (oh, ow)


# (in channels, size, out channels, kernel, stride, padding, dilation): channels padded to 4 and 16 (3 -> 4,
# 24 -> 32, 40 -> 48), 64-channel blocks with a partial last one (80), widths that leave 1..5 pixels after the
# 6-pixel tiles, no padding, stride 2, dilation 2, ResNet's 7x7 stem
_SHAPES = [(3, (23, 23), 64, 7, 2, 3, 1), (16, (10, 10), 80, 3, 1, 1, 1), (24, (9, 13), 24, 3, 1, 0, 1),
           (8, (13, 11), 40, 3, 1, 2, 2), (64, (14, 14), 128, 3, 2, 1, 1), (20, (7, 7), 16, 3, 1, 1, 1)]


@pytest.mark.parametrize("c,hw,oc,k,stride,pad,dilation", _SHAPES)
def test_conv_kernel_matches_torch(c, hw, oc, k, stride, pad, dilation, tmp_path):
    rng = np.random.default_rng(c * 1000 + oc)
    w = rng.integers(-128, 128, size=(oc, c, k, k), dtype=np.int8)
    bias = rng.integers(-(1 << 20), 1 << 20, size=(oc,), dtype=np.int32)
    x = rng.integers(-128, 128, size=(1, c, *hw), dtype=np.int8)
    x.flat[:7] = [-128, 127, -128, 127, 0, -1, 1]   # the extremes, where x + 128 must not wrap
    text, _ = _conv_module(w, bias, hw, stride, pad, dilation, pad_value=-5)
    (tmp_path / "conv.mlir").write_text(text)
    subprocess.run([iree_compile_tool(), "conv.mlir", "--compile-to=input", "-o", "input.mlir"], cwd=tmp_path,
                   check=True)
    after = run_pipeline((tmp_path / "input.mlir").read_text(), ["edgeq-conv-kernel"])
    assert "linalg.conv_2d_nchw_fchw" not in after and "flow.dispatch @edgeq_kernels::@conv_" in after
    (tmp_path / "after.mlir").write_text(after)
    host = HostTarget()
    compile_input(tmp_path / "after.mlir", host.spec.compile_flags(), tmp_path / "conv.vmfb")
    y = host.run(tmp_path / "conv.vmfb", [x])[0]

    xp = torch.nn.functional.pad(torch.from_numpy(x).double(), (pad,) * 4, value=-5)
    ref = torch.nn.functional.conv2d(xp, torch.from_numpy(w).double(), torch.from_numpy(bias).double(),
                                     stride=stride, dilation=dilation)
    assert y.dtype == np.int32 and y.shape == tuple(ref.shape)
    assert np.array_equal(y, ref.numpy().astype(np.int64)), f"{int((y != ref.numpy()).sum())} values differ"
