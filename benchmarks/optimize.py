"""`edgeq optimize` under three latency budgets between the all-4-bit and the all-8-bit model, on one target.

    python benchmarks/optimize.py --model digits --target host --json benchmarks/results/optimize_digits_host.json

First the two uniform models (W4A8 and W8A8) are compiled and measured end to end on the target; the three
budgets sit at 25, 50 and 75% of the way from the faster to the slower. Then the loop runs once per budget
(sensitivity and the per-layer table are shared through the cache) and the table shows, per budget and
iteration, the latency the ILP was given, the table's prediction, the measurement (median, min-max) and
whether the module was bit-exact. When the two uniform models run equally fast (same kernels for both
bit-widths, as on a CPU without int4 instructions) the budgets fall inside the measurement noise: it says so.
On `--target accel-sim` (a 4-bit mode twice as fast as 8-bit, a simulated and so noiseless latency) the
budgets are where bits pay off:

    python benchmarks/optimize.py --model resnet18 --target accel-sim --repetitions 3 \
        --json benchmarks/results/optimize_resnet18_accel-sim.json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from edgeq import models
from edgeq.pipeline.compile import compile_model
from edgeq.pipeline.optimize import optimize
from edgeq.quant import Plan, quantize, to_integer


def _uniform_ms(model: models.Model, tag: str, target: str, work: Path, repetitions: int) -> dict:
    integer = to_integer(quantize(model.module, Plan.uniform(tag), model.calibration), model.calibration[:1])
    artifact = compile_model(integer, model.calibration[:1], target, work / tag, model.name, Plan.uniform(tag).to_json())
    m = artifact.measure([integer.quantize_input(model.calibration[:1]).numpy()], repetitions)
    return {"median_ms": m.median_ms, "min_ms": min(m.latencies_ms), "max_ms": max(m.latencies_ms)}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="digits")
    p.add_argument("--target", default="host")
    p.add_argument("--input-shape", default=None, help="e.g. 1,3,112,112 (default: the model's)")
    p.add_argument("--repetitions", type=int, default=30)
    p.add_argument("--work", type=Path, default=Path("benchmarks/results/optimize-work"))
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args(argv)
    torch.manual_seed(0)
    shape = tuple(int(v) for v in a.input_shape.split(",")) if a.input_shape else None
    model = models.load(a.model, shape)
    console = Console(width=150)
    uniform = {tag: _uniform_ms(model, tag, a.target, a.work / "uniform", a.repetitions) for tag in ("w4a8", "w8a8")}
    lo, hi = sorted(u["median_ms"] for u in uniform.values())
    budgets = [lo + f * (hi - lo) for f in (0.25, 0.5, 0.75)]
    noise = max(u["max_ms"] - u["min_ms"] for u in uniform.values())
    runs = []
    for budget in budgets:
        r = optimize(model, a.target, budget, a.work / f"budget-{budget:.6f}", w_bits=(4, 8), a_bits=(8,),
                     repetitions=a.repetitions)
        runs.append(r.to_json())

    table = Table(title=f"{model.name} on {a.target}: uniform W4A8 {uniform['w4a8']['median_ms']:.4g} ms, "
                        f"W8A8 {uniform['w8a8']['median_ms']:.4g} ms (median of {a.repetitions})")
    for col in ("budget ms", "iter", "ILP budget", "predicted", "measured (min-max)", "exact", "W4 layers", "≤ budget"):
        table.add_column(col, justify="right")
    for r in runs:
        for it in r["iterations"]:
            w4 = sum(tag.startswith("w4") for tag in it["plan"].values())
            table.add_row(f"{r['latency_budget_ms']:.4g}", str(it["index"]) + (" *" if it["index"] == r["chosen"] else ""),
                          "fastest" if it["ilp_budget_ms"] is None else f"{it['ilp_budget_ms']:.4g}",
                          f"{it['predicted_ms']:.4g}", f"{it['measured_ms']:.4g} ({it['min_ms']:.4g}-{it['max_ms']:.4g})",
                          "yes" if it["bit_exact"] else "NO", f"{w4}/{len(it['plan'])}", "yes" if it["measured_ms"] <= r["latency_budget_ms"] else "no")
    console.print(table)
    if hi - lo < noise:
        console.print(f"W4A8 and W8A8 differ by {hi - lo:.3g} ms, less than the {noise:.3g} ms spread of one "
                      f"measurement: on {a.target} the budgets between them are inside the noise.")
    result = {"model": model.name, "target": a.target, "input_shape": list(model.input_shape), "uniform": uniform,
              "budgets_ms": budgets, "runs": runs}
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(result, indent=2) + "\n")
        console.print(f"wrote {a.json}")
    return result


if __name__ == "__main__":
    main()
