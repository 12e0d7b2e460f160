"""Run i8 NCHW convolutions on edgeq's AVX2 kernels (targets/kernels/conv2d_u8s8_avx2.c): edgeq-conv-kernel for
x86-64 CPUs without AVX-512 VNNI, with what the AVX2 set has: the rows kernel and its pack, a 1x1 kernel that reads
its NCHW input, the 3x3 depthwise kernel.

IREE 3.13's s8 x s8 path on such a CPU widens both operands and gathers every conv's im2col patches through
memory: ResNet-18 int8 took 48 ms on two Zen 3 threads, against ONNX Runtime's 16.5 (docs/profiling.md).
"""
from __future__ import annotations

from edgeq.dialect_passes import conv_kernel
from edgeq.targets.kernels import AVX2

ARGUMENT = "edgeq-conv-kernel-avx2"


def run(module, pass_) -> None:
    conv_kernel.run(module, pass_, AVX2)
