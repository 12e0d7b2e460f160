"""Integer model -> torch.export -> torch-mlir's FX importer (inside iree-base-compiler) -> torch-dialect MLIR."""
from __future__ import annotations

import torch
from torch import nn

from edgeq.errors import EdgeqError


def export_mlir(module: nn.Module, example: tuple[torch.Tensor, ...], function: str = "main") -> str:
    from iree.compiler.extras.fx_importer import FxImporter

    try:
        program = torch.export.export(module, example, strict=False)
    except Exception as e:
        raise EdgeqError(f"torch.export failed on the integer model ({type(e).__name__}: {str(e).splitlines()[0]})",
                         "report the model; integer graphs use only integer torch ops (quant/integer.py, "
                         "quant/transformer.py)") from None
    importer = FxImporter()
    importer.import_frozen_program(program, func_name=function)
    return str(importer.module)
