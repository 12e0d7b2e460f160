"""Integer model -> torch.export -> torch-mlir's FX importer (inside iree-base-compiler) -> torch-dialect MLIR."""
from __future__ import annotations

import torch

from edgeq.errors import EdgeqError
from edgeq.quant.integer import IntegerModel


def export_mlir(model: IntegerModel, example_i8: torch.Tensor, function: str = "main") -> str:
    from iree.compiler.extras.fx_importer import FxImporter

    try:
        program = torch.export.export(model.graph_module, (example_i8,), strict=False)
    except Exception as e:
        raise EdgeqError(f"torch.export failed on the integer model ({type(e).__name__}: {str(e).splitlines()[0]})",
                         "report the model; the integer graph uses only conv, linear, add, pool and reshape") from None
    importer = FxImporter()
    importer.import_frozen_program(program, func_name=function)
    return str(importer.module)
