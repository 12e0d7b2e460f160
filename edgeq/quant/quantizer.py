"""Uniform quantizers (2-8 bits) and their calibration.

Storage convention, for every bit-width b: an activation is held in the signed range
q in [-2^(b-1), 2^(b-1)-1] with real value r = s * (q - zp).
  signed (symmetric):          zp = 0
  unsigned (after ReLU):       zp = -2^(b-1), so q - zp covers [0, 2^b - 1]
Keeping every tensor in signed storage lets one i8 x i8 -> i32 kernel serve both kinds.
Rounding of real values is round-half-to-even (torch.round, numpy.rint).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from edgeq.errors import EdgeqError

MIN_BITS, MAX_BITS = 2, 8


def check_bits(bits: int, what: str) -> int:
    if not isinstance(bits, int) or not MIN_BITS <= bits <= MAX_BITS:
        raise EdgeqError(f"{what} bit-width {bits!r} is out of range", f"use an integer from {MIN_BITS} to {MAX_BITS}")
    return bits


@dataclass(frozen=True)
class QParams:
    """Per-tensor activation quantization: r = scale * (q - zero_point), q in [qmin, qmax]."""

    scale: float
    zero_point: int
    bits: int

    @property
    def qmin(self) -> int:
        return -(1 << (self.bits - 1))

    @property
    def qmax(self) -> int:
        return (1 << (self.bits - 1)) - 1

    @property
    def unsigned(self) -> bool:
        return self.zero_point != 0

    @classmethod
    def from_range(cls, lo: float, hi: float, bits: int, unsigned: bool) -> "QParams":
        check_bits(bits, "activation")
        if unsigned:
            return cls(max(hi, 1e-8) / ((1 << bits) - 1), -(1 << (bits - 1)), bits)
        return cls(max(abs(lo), abs(hi), 1e-8) / ((1 << (bits - 1)) - 1), 0, bits)

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        """float -> int8 storage (round half to even, saturate)."""
        q = torch.round(x.double() / self.scale) + self.zero_point
        return q.clamp(self.qmin, self.qmax).to(torch.int8)

    def dequantize(self, q: torch.Tensor) -> torch.Tensor:
        return (q.double() - self.zero_point).mul(self.scale).float()

    def fake_quantize(self, x: torch.Tensor) -> torch.Tensor:
        return self.dequantize(self.quantize(x))

    def to_dict(self) -> dict:
        return asdict(self)


def quantize_weight(w: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric signed per-output-channel quantization: (q_w int8, s_w float64 per channel).

    q in [-(2^(b-1)-1), 2^(b-1)-1] (restricted range, so -q never overflows)."""
    check_bits(bits, "weight")
    qmax = (1 << (bits - 1)) - 1
    w64 = w.detach().double()
    s_w = w64.abs().flatten(1).amax(1).clamp_min(1e-12) / qmax
    q = torch.round(w64 / s_w.view(-1, *[1] * (w.dim() - 1))).clamp(-qmax, qmax)
    return q.to(torch.int8), s_w


class RangeObserver:
    """Calibration of an activation range over batches: 'minmax' (running extremes) or
    'percentile' (mean over batches of the p-th / (100-p)-th percentiles, robust to outliers)."""

    def __init__(self, method: str = "minmax", percentile: float = 99.99):
        if method not in ("minmax", "percentile"):
            raise EdgeqError(f"unknown calibration method {method!r}", "use 'minmax' or 'percentile'")
        self.method, self.percentile = method, percentile
        self.lo: list[float] = []
        self.hi: list[float] = []

    def observe(self, x: torch.Tensor) -> None:
        x = x.detach().flatten().float()
        if self.method == "minmax":
            self.lo.append(float(x.min()))
            self.hi.append(float(x.max()))
        else:
            if x.numel() > 1 << 20:  # torch.quantile's size limit; a strided subsample keeps it deterministic
                x = x[:: x.numel() // (1 << 20) + 1]
            q = torch.tensor([1 - self.percentile / 100, self.percentile / 100])
            lo, hi = torch.quantile(x, q)
            self.lo.append(float(lo))
            self.hi.append(float(hi))

    def range(self) -> tuple[float, float]:
        if not self.lo:
            raise EdgeqError("an activation was never observed during calibration",
                             "pass calibration data that runs through the whole model")
        if self.method == "minmax":
            return min(self.lo), max(self.hi)
        return sum(self.lo) / len(self.lo), sum(self.hi) / len(self.hi)
