"""Lower requantization chains like edgeq-lower-requant, with i32 arithmetic only (no i64 value).

For the Vulkan target: IREE's SPIR-V backend emulates i64 on targets without Int64 (vp_android_baseline_2022)
and that emulation fails to legalize vectorized elementwise dispatches (vector<4xi64>). The body computes the
64-bit product as an (high, low) pair of i32 words from 16-bit halves; see lower_requant.py.
"""
from __future__ import annotations

from iree.compiler import ir

from edgeq.dialect_passes import lower_requant

ARGUMENT = "edgeq-lower-requant-i32"


def run(module: ir.Operation, pass_) -> None:
    lower_requant.run(module, pass_, i32_only=True)
