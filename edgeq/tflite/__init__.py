"""TFLite in and out: edgeq's integer models exported as int8 .tflite (the baseline runtime runs the same model),
and .tflite models compiled through IREE for every target (the input side).

The runtime is ai-edge-litert, TFLite's successor: tflite-runtime's last release (2.14) requires NumPy < 2,
which edgeq cannot use. Both parts live in the `tflite` extra (pip install 'edgeq[tflite]').
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeq.errors import EdgeqError

_EXTRA = "pip install 'edgeq[tflite]' (ai-edge-litert and tosa-converter-for-tflite)"


def schema():
    """The TFLite flatbuffer schema's Python object API, as ai-edge-litert ships it."""
    try:
        from ai_edge_litert import schema_py_generated
    except ImportError:
        raise EdgeqError("ai-edge-litert is not installed", _EXTRA) from None
    return schema_py_generated


def pack(model) -> bytes:
    """A schema ModelT as .tflite bytes."""
    import flatbuffers

    builder = flatbuffers.Builder(1 << 20)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


class TFLiteModel:
    """A .tflite model in the LiteRT interpreter (XNNPACK on CPU, as on a phone), with `threads` threads.

    reference_kernels: TFLite's reference kernels instead, which define its integer arithmetic (XNNPACK
    requantizes through fp32 and may round the other way: one more LSB per layer, compounding)."""

    def __init__(self, path: str | Path, threads: int = 2, reference_kernels: bool = False):
        try:
            from ai_edge_litert.interpreter import Interpreter, OpResolverType
        except ImportError:
            raise EdgeqError("ai-edge-litert is not installed", _EXTRA) from None
        resolver = OpResolverType.BUILTIN_REF if reference_kernels else OpResolverType.AUTO
        try:
            self.interpreter = Interpreter(model_path=str(path), num_threads=threads,
                                           experimental_op_resolver_type=resolver)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise EdgeqError(f"{path} is not a TFLite model LiteRT can load ({str(e).splitlines()[0]})",
                             "give a valid .tflite file") from None
        self.inputs = self.interpreter.get_input_details()
        self.outputs = self.interpreter.get_output_details()

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        for d, x in zip(self.inputs, inputs, strict=True):
            self.interpreter.set_tensor(d["index"], np.ascontiguousarray(x, d["dtype"]))
        self.interpreter.invoke()
        return [self.interpreter.get_tensor(d["index"]).copy() for d in self.outputs]
