"""Fake-quant modules with HAWQ-V3 semantics: the float simulation of the integer model.

QuantAct quantizes an activation tensor (observing its range while calibrating); QuantConv2d / QuantLinear
quantize their weights per output channel and their bias to int32 at scale s_x * s_w.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from edgeq.quant.quantizer import QParams, RangeObserver, quantize_weight


class QuantAct(nn.Module):
    """Signed, or unsigned when calibration saw no negative value (after a ReLU, or a [0, 1] image)."""

    def __init__(self, bits: int, clip_hi: float | None = None, method: str = "minmax", percentile: float = 99.99):
        super().__init__()
        self.bits, self.clip_hi = bits, clip_hi
        self.observer: RangeObserver | None = RangeObserver(method, percentile)
        self.qparams: QParams | None = None

    def freeze(self) -> None:
        lo, hi = self.observer.range()
        if self.clip_hi is not None:  # ReLU6: the range never needs to exceed 6
            hi = min(hi, self.clip_hi)
        self.qparams = QParams.from_range(lo, hi, self.bits, unsigned=lo >= 0)
        self.observer = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.qparams is None:
            self.observer.observe(x)
            return x
        return self.qparams.fake_quantize(x)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, qparams={self.qparams}"


class _QuantWeighted(nn.Module):
    """Shared by conv and linear: per-channel weights, bias at s_x * s_w (needs the input's QParams)."""

    def __init__(self, layer: nn.Conv2d | nn.Linear, w_bits: int):
        super().__init__()
        self.layer, self.w_bits = layer, w_bits
        self.w_q, self.s_w = quantize_weight(layer.weight, w_bits)
        self.input_qparams: QParams | None = None  # set once the input's QuantAct is frozen

    def quantized_bias(self) -> torch.Tensor:
        """bias_i32 = round(bias / (s_x * s_w)) (half to even)."""
        s = self.input_qparams.scale * self.s_w
        if self.layer.bias is None:
            return torch.zeros_like(s, dtype=torch.int64)
        return torch.round(self.layer.bias.detach().double() / s).to(torch.int64)

    def fake_weight_and_bias(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        shape = (-1,) + (1,) * (self.layer.weight.dim() - 1)
        w = (self.w_q.double() * self.s_w.view(shape)).float()
        if self.input_qparams is None:  # calibrating: float bias
            return w, self.layer.bias
        return w, (self.quantized_bias().double() * self.input_qparams.scale * self.s_w).float()


class QuantConv2d(_QuantWeighted):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, b = self.fake_weight_and_bias()
        c = self.layer
        return F.conv2d(x, w, b, c.stride, c.padding, c.dilation, c.groups)


class QuantLinear(_QuantWeighted):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, b = self.fake_weight_and_bias()
        return F.linear(x, w, b)
