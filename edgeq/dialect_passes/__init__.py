"""edgeq's MLIR passes, written in Python on the MLIR bindings of iree-base-compiler.

They run on IREE's input-level IR (linalg on tensors), between `--compile-to=input` and `--compile-from=input`.
"""
DEFAULT_PIPELINE: list[str] = ["edgeq-raise-int-contraction", "edgeq-lower-requant"]
