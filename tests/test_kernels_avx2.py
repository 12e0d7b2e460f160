"""edgeq's AVX2 kernels (targets/kernels/conv2d_u8s8_avx2.c, edgeq-conv-kernel-avx2) against torch's float64 conv
and the reference's requantization and residual add, bit for bit: the shapes of tests/test_kernels.py, whose
helpers build the modules. They run on any x86-64-v3 CPU, AVX-512 ones included; tests/test_targets.py runs whole
models on them where the host has no AVX-512 VNNI."""
import re

import numpy as np
import pytest

from edgeq.targets.host import kernel_isa
from test_kernels import (_LINEARS, _MAXPOOLS, _SHAPES, _STEMS, _WINOGRAD, _WINOGRAD_ADDS, _check_linear,
                          _check_maxpool, _check_patch, _check_requantized, _check_residual, _check_winograd,
                          _check_winograd_bound, _check_winograd_residual, _operands)

pytestmark = pytest.mark.skipif(kernel_isa() is None, reason="the AVX2 kernels need x86-64 with AVX2 (x86-64-v3)")

PASS = "edgeq-conv-kernel-avx2"


# Every shape of test_kernels.py's (channels padded to 4 and 8, strides, dilation, the unfolded stems, 1x1 convs,
# 200 output channels in 25 blocks) with ReLU's usual requantization; four of them also with a shift under 33 (the
# scalar i64 path), a clamp narrower than i8 and another zero point
# 1x1 stride-1 convs take the 1x1 kernel, on their NCHW input: also an odd channel count with maps that end in a
# partial 8-pixel vector and a partial 8-channel block (3 -> 20 on 5 x 7, 33 -> 40 on 7 x 7), and MobileNetV2's
# last expand (160 -> 960 on 7 x 7)
_POINTWISE = [(3, (5, 7), 20, 1, 1, 0, 1), (33, (7, 7), 40, 1, 1, 0, 1), (160, (7, 7), 960, 1, 1, 0, 1)]
_REQUANTIZED = [s[:7] + (39, 0, 255, -128) for s in _SHAPES + _POINTWISE] + [
    s[:7] + rq for s in (_SHAPES[0], _SHAPES[1], _SHAPES[6], _SHAPES[8], _SHAPES[7], _POINTWISE[1])
    for rq in ((31, -128, 127, 0), (35, -100, 90, 3), (44, -120, 135, -8))]


@pytest.mark.parametrize("c,hw,oc,k,stride,pad,dilation,shift,lo,hi,zp", _REQUANTIZED)
def test_avx2_conv_requantizes_like_the_reference(c, hw, oc, k, stride, pad, dilation, shift, lo, hi, zp, tmp_path):
    rng, w, bias, x = _operands(c, hw, oc, k, c * 1000 + oc + shift)
    after = _check_requantized(rng, x, w, bias, stride, pad, dilation, shift, lo, hi, zp, tmp_path, pass_name=PASS)
    dispatches = re.findall(r"flow.dispatch @edgeq_kernels::@(\w+)", after)
    if (k, stride, pad) == (1, 1, 0):   # no pack; its weights i16
        assert len(dispatches) == 1 and dispatches[0].endswith("_pw") and "x8x4xi16>" in after
    else:   # its u16 packed input
        assert [d.startswith("pack_") for d in dispatches] == [True, False] and dispatches[1].endswith("_rows")
        assert re.search(r"-> tensor<\w+x4xi16>", after)
    assert "conv2d_u8s8_avx2-" in after   # its object


# 1x1 convs whose map ends in 2 to 6 pixels alone in their vector (50, 51 and 54 pixels), which the kernel computes
# with output channels in the lanes: channels not a multiple of 4, a partial last block, tiles of 3 blocks and of
# one; with a residual add too
_LONE = [(13, (5, 10), 20), (24, (3, 17), 48), (40, (6, 9), 56)]


@pytest.mark.parametrize("c,hw,oc", _LONE)
def test_avx2_pointwise_kernel_computes_lone_pixels(c, hw, oc, tmp_path):
    rng, w, bias, x = _operands(c, hw, oc, 1, c + oc)
    _check_requantized(rng, x, w, bias, 1, 0, 1, 35, -100, 90, 3, tmp_path, pass_name=PASS)
    _check_residual(c, hw, oc, 1, 1, 0, (39, 0, 255, -128), -128, -128, -128, -128, 127, 20, tmp_path,
                    pass_name=PASS)


# test_kernels.py's stems on the patch kernel, through the 1x1 kernel's strips and tiles: strips that end in a
# partial vector (62 x 64 at stride 2: rows of 32 pixels, 24 + 8), parts of the pixels that start mid-row, padded
# with a value other than the zero point
@pytest.mark.parametrize("shift,lo,hi,zp", [(39, 0, 255, -128), (35, -100, 90, 3)])
@pytest.mark.parametrize("c,hw,oc,k,stride,pad", _STEMS)
def test_avx2_patch_kernel_runs_the_stems(c, hw, oc, k, stride, pad, shift, lo, hi, zp, tmp_path):
    after = _check_patch(c, hw, oc, k, stride, pad, shift, lo, hi, zp, tmp_path, pass_name=PASS)
    assert "x8x4xi16>" in after   # its weights widened


# ResNet's and MobileNet's residual adds after the conv's requantization, and a clamped conv before a narrower add,
# on the rows kernel with maps in segments of 5 and 6 pixels across row ends (7 x 7; 10 x 19), at stride 2, and on
# the 1x1 kernel (a long sum; MobileNetV2's project conv on 28 x 28)
@pytest.mark.parametrize("crq,zc,zr,zp,lo,hi,shift", [((39, 0, 255, -128), -128, -128, -128, -128, 127, 20),
                                                      ((39, 0, 255, -128), 0, 0, 0, -128, 127, 21),
                                                      ((35, -100, 90, 3), 3, 5, 3, -100, 90, 19)])
@pytest.mark.parametrize("c,hw,oc,k,stride,pad", [(16, (14, 14), 40, 3, 1, 1), (24, (13, 13), 16, 1, 2, 0),
                                                  (64, (7, 7), 40, 3, 1, 1), (320, (7, 7), 24, 1, 1, 0),
                                                  (32, (10, 19), 40, 3, 1, 1), (144, (28, 28), 32, 1, 1, 0)])
def test_avx2_conv_adds_the_residual(c, hw, oc, k, stride, pad, crq, zc, zr, zp, lo, hi, shift, tmp_path):
    after = _check_residual(c, hw, oc, k, stride, pad, crq, zc, zr, zp, lo, hi, shift, tmp_path, pass_name=PASS)
    assert re.search(r"flow.dispatch @edgeq_kernels::@conv_\w+_(rows|pw)_add", after)


# test_kernels.py's depthwise shapes (strides 1 and 2, odd sizes, rows narrower than 8 pixels and wider than 128,
# channels not a multiple of 4, padding and none), with the usual requantization and a clamped one, padded with a
# value other than the zero point: maps whose padded rows fit in 16 bytes (built in registers; the first rows of
# the tensor from its start), and maps whose input rows are made in 3 chunks of output rows (300 wide)
@pytest.mark.parametrize("shift,lo,hi,zp", [(39, 0, 255, -128), (35, -100, 90, 3)])
@pytest.mark.parametrize("c,hw,stride,pad", [(16, (9, 13), 1, 1), (24, (14, 14), 2, 1), (8, (23, 70), 1, 1),
                                            (40, (15, 9), 2, 1), (3, (33, 20), 1, 0), (5, (7, 7), 2, 0),
                                            (64, (9, 9), 1, 1), (6, (9, 133), 2, 1), (12, (7, 7), 1, 1),
                                            (6, (5, 8), 1, 1), (2, (120, 300), 1, 1), (2, (131, 300), 2, 1)])
def test_avx2_depthwise_requantizes_like_the_reference(c, hw, stride, pad, shift, lo, hi, zp, tmp_path):
    rng, w, bias, x = _operands(c, hw, c, 3, c * 100 + hw[0] + shift, depthwise=True)
    after = _check_requantized(rng, x, w, bias, stride, pad, 1, shift, lo, hi, zp, tmp_path, pad_value=-7,
                               pass_name=PASS)
    assert re.findall(r"flow.dispatch @edgeq_kernels::@(\w+)", after) == [re.search(r"@(dw_\w+)\(", after)[1]]


# test_kernels.py's Winograd convs, its exactness bound and its residual adds, on the AVX2 Winograd kernel: maps
# ending in partial tiles, partial blocks of 6 tiles, 128 channels, ranges of tiles that start mid-row (12 x 64:
# 48 tiles in 2 ranges) and convs of one piece split by their output channels (16 tiles and fewer)
@pytest.mark.parametrize("shift,lo,hi,zp", [(39, 0, 255, -128), (31, -128, 127, 0), (35, -100, 90, 3)])
@pytest.mark.parametrize("c,hw,oc", _WINOGRAD)
def test_avx2_winograd_conv_requantizes_like_the_reference(c, hw, oc, shift, lo, hi, zp, tmp_path):
    _check_winograd(c, hw, oc, shift, lo, hi, zp, tmp_path, pass_name=PASS)


# More than 128 input channels, summed in chunks of 128: ResNet's layer3 (256 on 14 x 14); 192, a chunk of 64
# after one of 128
@pytest.mark.parametrize("c,hw,oc", [(256, (14, 14), 256), (192, (6, 10), 64)])
def test_avx2_winograd_sums_in_chunks(c, hw, oc, tmp_path):
    _check_winograd(c, hw, oc, 39, 0, 255, -128, tmp_path, pass_name=PASS)


# Rows of 4 tiles (maps 13 to 16 wide), whose input the kernel transforms two tile rows at a time: 3 tile rows (a
# pair and one alone), and 20 tiles in 2 ranges that start and end mid-row
@pytest.mark.parametrize("c,hw,oc", [(16, (10, 13), 64), (16, (20, 16), 64)])
def test_avx2_winograd_transforms_two_tile_rows_at_a_time(c, hw, oc, tmp_path):
    _check_winograd(c, hw, oc, 35, -100, 90, 3, tmp_path, pass_name=PASS)


# 128 channels at the bound of one chunk's division; 256, whose sums of up to 256 * 9 * 128 * 128 > 2^25 are exact
# only as two chunks
@pytest.mark.parametrize("c", [128, 256])
@pytest.mark.parametrize("xv,wv", [(-128, -128), (127, -128), (-128, 127)])
def test_avx2_winograd_is_exact_at_its_bound(xv, wv, c, tmp_path):
    _check_winograd_bound(xv, wv, tmp_path, pass_name=PASS, c=c)


# test_kernels.py's residual adds (convs of one piece, split by their output channels), and one on 30 tiles, which
# the kernel splits into ranges of tiles
@pytest.mark.parametrize("hw,crq,zc,zr,zp,lo,hi,shift",
                         _WINOGRAD_ADDS + [((20, 24), (39, 0, 255, -128), -128, -128, -128, -128, 127, 20)])
def test_avx2_winograd_conv_adds_the_residual(hw, crq, zc, zr, zp, lo, hi, shift, tmp_path):
    _check_winograd_residual(hw, crq, zc, zr, zp, lo, hi, shift, tmp_path, pass_name=PASS)


# test_kernels.py's max poolings (ResNet's, odd sizes, rows of 66 outputs: 4 steps of 16 and a partial one, padding
# and init other than the i8 minimum) on the AVX2 kernel
@pytest.mark.parametrize("c,hw,pad_value,init", _MAXPOOLS)
def test_avx2_maxpool_kernel_matches_numpy(c, hw, pad_value, init, tmp_path):
    _check_maxpool(c, hw, pad_value, init, tmp_path, pass_name=PASS)


# test_kernels.py's linear layers (inputs past a group of 4, outputs past a block of 16, partial tiles) on the AVX2
# kernel
@pytest.mark.parametrize("k,n,bias", _LINEARS)
def test_avx2_linear_kernel_matches_numpy(k, n, bias, tmp_path):
    _check_linear(k, n, bias, tmp_path, pass_name=PASS)
