"""Quantization: uniform quantizers, fake-quant modules, and the integer-only model (HAWQ-V3)."""
from edgeq.quant.integer import IntegerModel, to_integer
from edgeq.quant.plan import LayerSpec, Plan
from edgeq.quant.quantize import quantize
from edgeq.quant.quantizer import QParams

__all__ = ["IntegerModel", "LayerSpec", "Plan", "QParams", "quantize", "to_integer"]
