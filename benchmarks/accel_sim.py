"""accel-sim's compute cycles against SCALE-Sim 3.0's, layer by layer, for the same array and dataflow.

    python benchmarks/accel_sim.py --model resnet18 --json benchmarks/results/accel_sim_resnet18.json

The model is compiled (W8A8, the precision SCALE-Sim models: one MAC per PE per cycle) for accel-sim; every conv
and matmul dispatch of its IR is counted by accel-sim's analytical model and by SCALE-Sim's cycle-by-cycle
simulation (SRAMs and bandwidth so large that nothing stalls). The table gives the ratio per layer and dataflow;
a layer off by more than 10% is marked and the JSON carries why. Where the two agree, accel-sim counts one cycle
more per GEMM: SCALE-Sim reports the 0-based index of the last ofmap write.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from edgeq import models
from edgeq.pipeline.compile import compile_model
from edgeq.quant import Plan, quantize, to_integer
from edgeq.targets.accel_sim import cost, scalesim
from edgeq.targets.accel_sim.hardware import DEFAULT, HardwareModel
from edgeq.targets.accel_sim.workload import dispatches

TOLERANCE = 0.10


def layer_gemms(model: models.Model, target: str) -> dict:
    """Layer name -> Gemm of each contraction in the compiled module, in program order."""
    integer = to_integer(quantize(model.module, Plan.uniform("w8a8"), model.calibration), model.calibration[:1])
    with tempfile.TemporaryDirectory() as tmp:
        artifact = compile_model(integer, model.calibration[:1], target, tmp, model.name)
        work = [d for d in dispatches((Path(tmp) / "model.edgeq.mlir").read_text()) if d.kind == "systolic"]
        return {layer["name"]: d.gemm for layer, d in zip(artifact.manifest.layers, work)}


def why(ratio: float, g, hw: HardwareModel) -> str:
    """The explanation the JSON carries for a layer off by more than the tolerance."""
    if abs(ratio - 1) <= TOLERANCE:
        return ""
    s_r, s_c, t = cost.array_dims(g, hw.dataflow)
    return (f"unexplained: S_r={s_r}, S_c={s_c}, T={t} on {hw.rows}x{hw.cols}; compare SCALE-Sim's demand "
            "matrices for this layer")


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="resnet18")
    p.add_argument("--input-shape", default=None, help="e.g. 1,3,224,224 (default: the model's)")
    p.add_argument("--hw", type=Path, default=DEFAULT, help="the accelerator (array size; dataflows below)")
    p.add_argument("--dataflows", default="ws,os,is")
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args(argv)
    torch.manual_seed(0)
    shape = tuple(int(v) for v in a.input_shape.split(",")) if a.input_shape else None
    model = models.load(a.model, shape)
    base = HardwareModel.load(a.hw)
    gemms = layer_gemms(model, f"accel-sim:{a.hw.resolve()}")
    console = Console(width=150)
    rows, seconds = [], {}
    for dataflow in a.dataflows.split(","):
        hw = dataclasses.replace(base, dataflow=dataflow)
        t0 = time.perf_counter()
        reference = scalesim.compute_cycles(gemms, hw)
        seconds[dataflow] = time.perf_counter() - t0
        for name, g in gemms.items():
            ours = cost.compute_cycles(g, hw)
            ratio = ours / reference[name]
            rows.append({"layer": name, "dataflow": dataflow, "pixels": g.pixels, "window": g.window,
                         "filters": g.filters, "edgeq_cycles": ours, "scalesim_cycles": reference[name],
                         "ratio": ratio, "explanation": why(ratio, g, hw)})
    table = Table(title=f"{model.name}, {base.rows}x{base.cols} array: compute cycles, accel-sim / SCALE-Sim 3.0")
    for col in ("layer", "pixels x window x filters", *(f"{df} ratio" for df in a.dataflows.split(","))):
        table.add_column(col, justify="left" if col == "layer" else "right")
    for name, g in gemms.items():
        ratios = [r for r in rows if r["layer"] == name]
        table.add_row(name, f"{g.pixels} x {g.window} x {g.filters}",
                      *(f"{r['ratio']:.4f}" + (" !" if r["explanation"] else "") for r in ratios))
    console.print(table)
    summary = {df: {"median_ratio": statistics.median(r["ratio"] for r in rows if r["dataflow"] == df),
                    "max_abs_error": max(abs(r["ratio"] - 1) for r in rows if r["dataflow"] == df),
                    "scalesim_seconds": seconds[df]} for df in seconds}
    for df, s in summary.items():
        console.print(f"{df}: median ratio {s['median_ratio']:.4f}, worst |ratio - 1| {s['max_abs_error']:.2%} "
                      f"(SCALE-Sim took {s['scalesim_seconds']:.0f} s)")
    result = {"model": model.name, "input_shape": list(model.input_shape), "hardware": base.to_json(),
              "tolerance": TOLERANCE, "rows": rows, "summary": summary}
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
