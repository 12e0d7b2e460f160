"""Quantizers and dyadic arithmetic, against independent arithmetic (Python integers, float64)."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeq.errors import EdgeqError
from edgeq.quant.dyadic import Dyadic, requantize, rounding_shift
from edgeq.quant.quantizer import QParams, RangeObserver, quantize_weight

bits = st.integers(2, 8)


@given(bits=bits, lo=st.floats(-100, 0), hi=st.floats(1e-3, 100), unsigned=st.booleans())
def test_activation_quantizer_covers_its_range(bits, lo, hi, unsigned):
    if unsigned:
        lo = 0.0
    qp = QParams.from_range(lo, hi, bits, unsigned)
    x = torch.linspace(lo, hi, 101, dtype=torch.float64)
    q = qp.quantize(x)
    assert int(q.min()) >= qp.qmin and int(q.max()) <= qp.qmax
    assert (qp.dequantize(q).double() - x).abs().max() <= qp.scale / 2 + 1e-6 * max(1.0, hi)
    if unsigned:  # 0.0 is exactly representable, and the storage range is used whole
        assert float(qp.dequantize(qp.quantize(torch.zeros(1)))) == 0.0
        assert int(q.min()) == qp.qmin and int(q.max()) == qp.qmax


def test_activation_quantizer_saturates():
    qp = QParams.from_range(-1.0, 1.0, 4, unsigned=False)
    q = qp.quantize(torch.tensor([-1e9, 1e9, 0.0]))
    assert q.tolist() == [-8, 7, 0]


@given(bits=bits, seed=st.integers(0, 1000))
@settings(max_examples=30, derandomize=True)
def test_weight_quantizer_per_channel(bits, seed):
    w = torch.randn(6, 3, 3, 3, generator=torch.Generator().manual_seed(seed)) * torch.logspace(-3, 1, 6).view(-1, 1, 1, 1)
    q, s = quantize_weight(w, bits)
    qmax = 2 ** (bits - 1) - 1
    assert q.dtype == torch.int8 and q.abs().flatten(1).amax(1).tolist() == [qmax] * 6  # each channel uses its range
    assert ((q.double() * s.view(-1, 1, 1, 1) - w.double()).abs() <= s.view(-1, 1, 1, 1) / 2 + 1e-12).all()


@pytest.mark.parametrize("b", [0, 1, 9, 16])
def test_bit_width_out_of_range(b):
    with pytest.raises(EdgeqError, match="out of range.*from 2 to 8"):
        quantize_weight(torch.ones(2, 2), b)
    with pytest.raises(EdgeqError, match="out of range"):
        QParams.from_range(0, 1, b, True)


def test_percentile_calibration_ignores_outliers():
    x = torch.randn(100_000, generator=torch.Generator().manual_seed(0))
    x[0] = 1000.0
    mm, pc = RangeObserver("minmax"), RangeObserver("percentile", 99.9)
    mm.observe(x)
    pc.observe(x)
    assert mm.range()[1] == 1000.0
    assert 2.5 < pc.range()[1] < 4.0


@given(x=st.integers(-(2**31), 2**31 - 1), c=st.integers(1, 62))
def test_rounding_shift_is_round_half_up(x, c):
    expected = math.floor(x / 2**c + 0.5) if abs(x) < 2**52 else (x + 2 ** (c - 1)) // 2**c
    assert int(rounding_shift(torch.tensor([x], dtype=torch.int64), c)) == expected


@given(m=st.floats(1e-9, 1e4))
def test_dyadic_is_close_and_fits_int32(m):
    d = Dyadic.from_real(m)
    assert 0 < d.b[0] < 2**31 and 1 <= d.c <= 62
    assert abs(d.b[0] / 2**d.c - m) <= max(m * 2**-29, 2**-62)


@given(acc=st.lists(st.integers(-(2**31), 2**31 - 1), min_size=1, max_size=20),
       m=st.floats(1e-6, 0.49), zp=st.sampled_from([0, -128]))
def test_requantize_matches_exact_rational_rounding(acc, m, zp):
    d = Dyadic.from_real(m)
    got = requantize(torch.tensor(acc, dtype=torch.int32), torch.tensor(d.b), d.c, zp, -128, 127).tolist()
    # independent: Python's exact integers
    want = [max(-128, min(127, (a * d.b[0] + (1 << (d.c - 1))) // (1 << d.c) + zp)) for a in acc]
    assert got == want
