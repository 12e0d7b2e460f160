"""edgeq: Hessian-aware quantization compiled through IREE and checked bit-exact on the device.

Stages, one subpackage each, in data-flow order: models -> sensitivity -> allocate -> quant -> pipeline
(export, compile) -> dialect_passes -> targets. `import edgeq` stays light: no IREE until a stage needs it.
"""
__version__ = "0.1.0"
