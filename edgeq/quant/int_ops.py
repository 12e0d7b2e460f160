"""Integer-only softmax, LayerNorm and GELU for transformers (in the spirit of I-BERT, Kim et al. 2021).

Every function here uses integer torch ops only (no float at inference), in widths stated per line, so the
exported module computes the same bits on every target: int32 except the dyadic products (int64, which
edgeq-emulate-i64 turns into i32 word pairs on Vulkan). Divisions are int32 and truncate toward zero.

    softmax:   2^y = 2^-k · 2^(r/2^15)   with y = (s − max s)·log2(e)·scale in Q15, a cubic for 2^u on [0, 1)
    LayerNorm: H·(x − μ) exactly in int32, σ by a digit-by-digit integer square root, (x − μ)/σ by one division
    GELU:      a 256-entry table from the int8 input to the int8 output (TFLite's way for int8 GELU)
"""
from __future__ import annotations

import math

import torch

from edgeq.quant.dyadic import rounding_shift

Q = 15                                   # fraction bits of the softmax's base-2 exponent and of 2^u
EXP2_POLY = (2501, 7481, 22775, 1 << Q)  # 2^u ≈ 1 + 0.6950u + 0.2283u² + 0.0763u³ on [0, 1), Q15; rel. error 1.7e-4
PROB_LEVELS = 255                        # probabilities are stored as p·255 − 128 in int8 (scale 1/255, zero point −128)
RESIDUAL_MAX = (1 << 15) - 1             # the residual stream (LayerNorm's input) is int32 clamped to 16 bits


def int_softmax(scores_i32: torch.Tensor, valid: torch.Tensor, b: int, c: int) -> torch.Tensor:
    """Softmax over the last dim of int32 scores whose real value is (b / 2^c) / log2(e) / 2^15 per unit.

    valid (bool, broadcast to scores) marks the keys that exist; the others get probability exactly 0.
    Returns int8 probabilities p_q with p = (p_q + 128) / 255 (round half up)."""
    masked = torch.where(valid, scores_i32, torch.iinfo(torch.int32).min)
    delta = scores_i32 - masked.amax(-1, keepdim=True)                     # <= 0 on valid keys, |delta| < 2^21
    y = rounding_shift(delta.to(torch.int64) * b, c).clamp(-(31 << Q), 0).to(torch.int32)  # Q15 log2 units
    k = -(y >> Q)                                                           # integer part, 0..31
    r = y & ((1 << Q) - 1)                                                  # fraction in Q15, [0, 2^15)
    p = torch.full_like(r, EXP2_POLY[0])
    for coef in EXP2_POLY[1:]:                                              # Horner: every product < 2^30
        p = ((p * r) >> Q) + coef                                           # 2^(r/2^15) in Q15, [2^15, 2^16)
    e = torch.where(valid, torch.bitwise_right_shift(p, k.clamp(max=31)), 0)
    total = e.sum(-1, keepdim=True, dtype=torch.int32)                      # >= 2^15 (the max key), < 2^16·S
    probs = torch.div(e * (2 * PROB_LEVELS) + total, 2 * total, rounding_mode="trunc")   # round(e·255/total)
    return (probs - 128).to(torch.int8)


def isqrt(v_i32: torch.Tensor) -> torch.Tensor:
    """round(sqrt(v)) for 0 <= v < 2^31, digit by digit (16 unrolled steps of compare and subtract)."""
    root, rest = torch.zeros_like(v_i32), v_i32
    for k in range(15, -1, -1):
        t = root + (1 << 2 * k)                                             # < 2^31 at every step
        ge = rest >= t
        rest = torch.where(ge, rest - t, rest)
        root = torch.where(ge, (root >> 1) + (1 << 2 * k), root >> 1)
    return root + (rest > root).to(torch.int32)                             # v − root² > root: round up


def layernorm_shifts(hidden: int) -> tuple[int, int, int]:
    """(sh_var, sh_num, z) for int_layernorm on `hidden` channels and |x| <= RESIDUAL_MAX:
    H·(Σ e²) fits int32 with e = d >> sh_var, and n·2^z fits int32 with n = d >> sh_num (d = H·(x − μ))."""
    d_max = 2 * RESIDUAL_MAX * hidden
    sh_var = next(s for s in range(32) if hidden * ((d_max >> s) + 1) ** 2 < 1 << 31)
    sh_num = 8                                                              # n's step: 2^8 / H of one x unit
    z = 30 - math.ceil(math.log2((d_max >> sh_num) + 1))
    return sh_var, sh_num, z


def int_layernorm(x_i32: torch.Tensor, g_i64: torch.Tensor, beta_i64: torch.Tensor, c: int, shifts: tuple[int, int, int],
                  zero_point: int, qmin: int, qmax: int) -> torch.Tensor:
    """LayerNorm over the last dim of x (|x| <= RESIDUAL_MAX) to int8: q = round((z·g + β) / 2^c) + zp, where
    z = n·2^z_shift / σ_e is (x − μ)/σ in units that `g` (γ per channel, from transformer.py) absorbs."""
    sh_var, sh_num, z_shift = shifts
    hidden = x_i32.shape[-1]
    d = x_i32 * hidden - x_i32.sum(-1, keepdim=True, dtype=torch.int32)   # H·(x − μ), exact, < 2^(17+log2 H)
    e = rounding_shift(d, sh_var)
    sigma = isqrt((e * e).sum(-1, keepdim=True, dtype=torch.int32)).clamp_min(1)   # sqrt(Σ e²) = √H·σ_e
    z = torch.div(rounding_shift(d, sh_num) << z_shift, sigma, rounding_mode="trunc")
    y = rounding_shift(z.to(torch.int64) * g_i64 + beta_i64, c) + zero_point
    return y.clamp(qmin, qmax).to(torch.int8)


def layernorm_unit(hidden: int, shifts: tuple[int, int, int]) -> float:
    """The real value of one unit of int_layernorm's z: (x − μ)/σ = z · layernorm_unit."""
    sh_var, sh_num, z_shift = shifts
    return 2.0 ** (sh_num - sh_var - z_shift) * math.sqrt(hidden)


def table_lookup(x_i8: torch.Tensor, table_i8: torch.Tensor) -> torch.Tensor:
    """y = table[x + 128]: any int8 -> int8 function as a 256-entry table."""
    return table_i8[(x_i8.to(torch.int32) + 128).to(torch.int64)]
