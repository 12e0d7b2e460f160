"""edgeq's MLIR passes, written in Python on the MLIR bindings of iree-base-compiler.

They run on IREE's input-level IR (linalg on tensors), between `--compile-to=input` and `--compile-from=input`.
"""
from edgeq.targets.kernels import AVX2, VNNI

DEFAULT_PIPELINE: list[str] = ["edgeq-raise-int-contraction", "edgeq-lower-requant"]

# CPU targets (host, arm64): depthwise convolutions as sums of taps, which IREE vectorizes (depthwise_taps.py).
# accel-sim keeps them named: its workload model maps them onto the array by their op.
CPU_PIPELINE: list[str] = DEFAULT_PIPELINE + ["edgeq-depthwise-taps"]

# Vulkan (IREE's SPIR-V backend, vp_android_baseline_2022): no i64 value (its emulation fails on vectorized
# dispatches: i64 chains are fused into one body, then rewritten in i32 words), every i8 -> i32 extension in a
# dispatch of its own (fused into a consumer that loads i8 with wide vectors, it is miscompiled) and depthwise
# convolutions channels-last (the NCHW lowering races). See docs/vulkan.md.
VULKAN_PIPELINE: list[str] = ["edgeq-raise-int-contraction", "edgeq-lower-requant", "edgeq-fuse-i64",
                              "edgeq-emulate-i64", "edgeq-isolate-i8-extensions", "edgeq-depthwise-to-nhwc"]


# host on a CPU with AVX-512 VNNI and VBMI, or with AVX2: convs on edgeq's own kernels (conv_kernel.py,
# targets/kernels); depthwise convs they do not take become taps
HOST_KERNEL_PIPELINES: dict[str, list[str]] = {
    isa: DEFAULT_PIPELINE + [argument, "edgeq-depthwise-taps"]
    for isa, argument in ((VNNI, "edgeq-conv-kernel"), (AVX2, "edgeq-conv-kernel-avx2"))}


def pipeline_for(target: str) -> list[str]:
    """The passes a target compiles with when none are given."""
    from edgeq.targets.host import kernel_isa

    if target == "vulkan":
        return list(VULKAN_PIPELINE)
    if target == "host" and (isa := kernel_isa()):
        return list(HOST_KERNEL_PIPELINES[isa])
    return list(DEFAULT_PIPELINE if target.startswith("accel-sim") else CPU_PIPELINE)
