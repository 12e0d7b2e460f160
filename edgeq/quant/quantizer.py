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


CLIP_RATIOS = tuple(1 - 0.025 * i for i in range(21))   # 1.0 down to 0.5: the clipping search's candidates


def quantize_weight(w: torch.Tensor, bits: int, groups: int | None = None,
                    mse_clip: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric signed quantization of the output rows (dim 0): (q_w int8, s_w float64 per row).

    groups=None gives every row its own scale (per channel); groups=G splits the rows into G contiguous blocks
    sharing one scale each (Q-BERT's group-wise quantization; G=1 is per tensor). The scale covers the group's
    largest |w|, or with mse_clip the fraction of it (CLIP_RATIOS) that minimises the group's ‖Q(w) − w‖²: at
    4 bits and below, clipping a few outliers buys resolution for all the other weights.
    q in [-(2^(b-1)-1), 2^(b-1)-1] (restricted range, so -q never overflows)."""
    check_bits(bits, "weight")
    rows = w.shape[0]
    if groups is not None and not (isinstance(groups, int) and 1 <= groups <= rows and rows % groups == 0):
        raise EdgeqError(f"{groups!r} groups do not divide the {rows} rows of a weight",
                         f"use a divisor of {rows} (1 = one scale per tensor, {rows} = per channel)")
    n_groups = rows if groups is None else groups
    qmax = (1 << (bits - 1)) - 1
    w64 = w.detach().double().reshape(n_groups, -1)           # one group per row of w64
    amax = w64.abs().amax(1).clamp_min(1e-12)
    scale = amax / qmax
    if mse_clip:
        best = torch.full_like(amax, torch.inf)
        for r in CLIP_RATIOS:
            s = amax * r / qmax
            err = ((torch.round(w64 / s[:, None]).clamp(-qmax, qmax) * s[:, None] - w64) ** 2).sum(1)
            better = err < best
            best, scale = torch.where(better, err, best), torch.where(better, s, scale)
    q = torch.round(w64 / scale[:, None]).clamp(-qmax, qmax).reshape(w.shape)
    return q.to(torch.int8), scale.repeat_interleave(rows // n_groups)


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
