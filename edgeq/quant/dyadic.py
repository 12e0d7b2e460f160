"""Dyadic numbers b / 2^c (HAWQ-V3, eq. 4): every rescale in the integer-only model is an integer
multiply and a rounding arithmetic right shift, so no float is needed at inference.

Rounding: y = (x * b + 2^(c-1)) >> c  = floor(x * b / 2^c + 1/2), i.e. round half up (towards +inf).
Widths: x is int32 (or narrower), b < 2^31, so x * b + 2^(c-1) < 2^63 fits int64.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

B_BITS = 31       # b < 2^31: the product with an int32 fits int64
MAX_SHIFT = 62


@dataclass(frozen=True)
class Dyadic:
    """A per-channel multiplier b[i] / 2^c sharing one shift c (a scalar shift keeps the lowered IR simple)."""

    b: tuple[int, ...]
    c: int

    @classmethod
    def from_real(cls, m: "torch.Tensor | list[float] | float", b_bits: int = B_BITS) -> "Dyadic":
        """The closest dyadic numbers to positive reals m, with the largest common shift keeping every b < 2^b_bits."""
        ms = [float(v) for v in (torch.as_tensor(m, dtype=torch.float64).flatten().tolist())]
        if any(not v > 0 or not math.isfinite(v) for v in ms):
            raise ValueError(f"dyadic multipliers must be positive and finite, got {ms[:4]}")
        # largest c with round(max(m) * 2^c) < 2^31
        c = min(MAX_SHIFT, (b_bits - 1) - math.floor(math.log2(max(ms))))
        while c > 1 and round(max(ms) * 2.0**c) >= 1 << b_bits:
            c -= 1
        if c < 1:
            raise ValueError(f"multiplier {max(ms)} too large for a dyadic rescale")
        return cls(tuple(int(round(v * 2.0**c)) for v in ms), c)

    def value(self) -> torch.Tensor:
        return torch.tensor(self.b, dtype=torch.float64) / 2.0**self.c

    def b_tensor(self, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.tensor(self.b, dtype=torch.int64).view(shape)


def rounding_shift(x: torch.Tensor, c: int) -> torch.Tensor:
    """floor(x / 2^c + 1/2), in x's integer type: the rounding right shift of every requantization."""
    return (x + (1 << (c - 1))) >> c


def requantize(acc: torch.Tensor, b_i64: torch.Tensor, c: int, zero_point: int, qmin: int, qmax: int) -> torch.Tensor:
    """int32 accumulator -> int8 storage: saturate(round(acc * b / 2^c) + zp). Written in the ops torch exports."""
    y = rounding_shift(acc.to(torch.int64) * b_i64, c) + zero_point
    return y.clamp(qmin, qmax).to(torch.int8)
