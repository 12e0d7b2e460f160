"""Mixed precision by Hessian ILP against uniform precision and random allocations at the same model size.

    python benchmarks/allocation.py --json results/allocation.json --plot results/allocation.png

On the digits ResNet (real images, 450 held out): for each size budget (the size of uniform W3, W4 and W6,
weights from {2, 4, 8} bits, activations 8 bits), the test accuracy of the integer-only model for
  uniform          every layer at the budget's bit-width
  HAWQ-V2 trace    ILP on Hutchinson traces, 256 labelled training images
  HAWQ eigen       ILP on top eigenvalues, same data
  ZeroQ KL         ILP on per-layer output KL, same data
  trace data-free  HAWQ-V2 on ZeroQ distilled data (KL to the fp32 outputs as the loss)
  KL data-free     ZeroQ proper
  random           mean of 5 seeded random allocations from {2, 4, 8} within 90-100% of the budget
and Spearman's rank correlation of data-free against data-driven sensitivities. Prints a table, writes JSON
and a plot (Ω frontier with the chosen points; accuracy against size).
"""
from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table
from scipy.stats import spearmanr

from edgeq import allocate, models, sensitivity
from edgeq.models.digits import accuracy
from edgeq.quant import LayerSpec, Plan, quantize, to_integer

W_BITS = (2, 4, 8)
BUDGET_BITS = (3, 4, 6)
RANDOM_DRAWS = 5


def _accuracy(model: models.Model, plan: Plan) -> float:
    """Test accuracy of the integer-only model (what the compiled module computes bit for bit)."""
    im = to_integer(quantize(model.module, plan, model.calibration), model.calibration[:1])
    x, y = model.test_set
    with torch.no_grad():
        return accuracy(im.dequantize_output(im.graph_module(im.quantize_input(x))), y)


def _random_plans(sens: sensitivity.Sensitivity, size_mb: float, n: int, seed: int) -> list[Plan]:
    """Plans drawn uniformly from {2, 4, 8}^layers, kept when their size is 90-100% of the budget."""
    rng = random.Random(seed)
    plans = []
    while len(plans) < n:
        plan = Plan(LayerSpec(8, 8), {l.name: LayerSpec(rng.choice(W_BITS), 8) for l in sens.layers})
        if 0.9 * size_mb <= allocate.costs(sens, plan).size_mb <= size_mb:
            plans.append(plan)
    return plans


def _plot(trace: sensitivity.Sensitivity, rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = allocate.frontier(trace, "size_mb", 30, w_bits=W_BITS)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.4), dpi=110)
    allocate.draw(ax1, points, "size_mb", title="Pareto frontier (trace Ω)")
    for r in rows:
        ax1.plot(r["size_kb"]["HAWQ-V2 trace"] / 1e3, r["omega"]["HAWQ-V2 trace"], "*", color="red", ms=12)
        ax1.plot(r["size_kb"]["uniform"] / 1e3, r["omega"]["uniform"], "s", mfc="none", color="k", ms=8)
        ax1.plot(r["size_kb"]["ZeroQ KL"] / 1e3, r["omega"]["ZeroQ KL"], "D", mfc="none", color="tab:green", ms=9)
    ax1.plot([], [], "*", color="red", label="chosen (trace ILP)")
    ax1.plot([], [], "s", mfc="none", color="k", label="uniform W3/W4/W6")
    ax1.plot([], [], "D", mfc="none", color="tab:green", label="ZeroQ KL choice")
    ax1.legend(fontsize=8)
    for method in rows[0]["accuracy"]:
        ax2.plot([r["budget_kb"] for r in rows], [r["accuracy"][method] for r in rows], "o-", label=method, ms=4)
    ax2.set(xlabel="size budget (KB)", ylabel="test accuracy (%)", title="digits ResNet, 450 held-out images")
    ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--plot", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    console = Console(width=140)
    model = models.load("digits")
    x, y = model.calibration, model.labels
    distilled = sensitivity.distill(model.module, model.input_shape, n=len(x),
                                    generator=torch.Generator().manual_seed(args.seed))
    sens = {
        "HAWQ-V2 trace": sensitivity.trace(model.module, x, y, name="digits", seed=args.seed),
        "HAWQ eigen": sensitivity.eigen(model.module, x, y, name="digits", seed=args.seed),
        "ZeroQ KL": sensitivity.kl(model.module, x, name="digits"),
        "trace data-free": sensitivity.trace(model.module, distilled, name="digits", seed=args.seed,
                                             data_note="ZeroQ distilled"),
        "KL data-free": sensitivity.kl(model.module, distilled, name="digits", data_note="ZeroQ distilled"),
    }
    trace = sens["HAWQ-V2 trace"]
    rank = {f"{free} vs {real}": float(spearmanr([l.omega_w[4] for l in sens[real].layers],
                                                 [l.omega_w[4] for l in sens[free].layers]).statistic)
            for free, real in (("trace data-free", "HAWQ-V2 trace"), ("KL data-free", "ZeroQ KL"),
                               ("trace data-free", "ZeroQ KL"))}
    fp32 = accuracy(model.module(model.test_set[0]), model.test_set[1])
    rows = []
    for b in BUDGET_BITS:
        uniform = Plan.uniform(f"w{b}a8")
        budget = allocate.Budget(size_mb=allocate.costs(trace, uniform).size_mb)
        plans = {"uniform": uniform} | {k: allocate.ilp(s, budget, w_bits=W_BITS).plan for k, s in sens.items()}
        randoms = [_accuracy(model, p) for p in _random_plans(trace, budget.size_mb, RANDOM_DRAWS, args.seed + b)]
        acc = {k: _accuracy(model, p) for k, p in plans.items()} | {"random (mean of 5)": sum(randoms) / len(randoms)}
        rows.append({
            "budget_bits": b, "budget_kb": budget.size_mb * 1e3, "accuracy": acc, "random_draws": randoms,
            "size_kb": {k: allocate.costs(trace, p).size_mb * 1e3 for k, p in plans.items()},
            "omega": {k: allocate.costs(trace, p).omega for k, p in plans.items()},
            "plans": {k: {n: s.tag for n, s in p.layers.items()} for k, p in plans.items() if k != "uniform"},
            "weight_bits_used": sorted({s.w_bits for s in plans["HAWQ-V2 trace"].layers.values()}),
        })

    table = Table(title=f"digits ResNet: test accuracy % at equal size (fp32 {fp32:.2f}%, A8 throughout)")
    table.add_column("budget")
    for k in rows[0]["accuracy"]:
        table.add_column(k, justify="right")
    table.add_column("trace ILP bits used")
    for r in rows:
        table.add_row(f"W{r['budget_bits']} ({r['budget_kb']:.2f} KB)", *(f"{v:.2f}" for v in r["accuracy"].values()),
                      ",".join(map(str, r["weight_bits_used"])))
    console.print(table)
    for k, v in rank.items():
        console.print(f"Spearman rank correlation of Ω_w(4 bits), {k}: {v:.3f}")
    result = {"model": "digits", "fp32_accuracy": fp32, "w_bits": W_BITS, "rows": rows, "spearman": rank,
              "sensitivity_seconds": {k: s.seconds for k, s in sens.items()},
              "checks": {
                  "hessian_at_least_uniform": all(r["accuracy"]["HAWQ-V2 trace"] >= r["accuracy"]["uniform"] for r in rows),
                  "hessian_at_least_random": all(r["accuracy"]["HAWQ-V2 trace"] >= r["accuracy"]["random (mean of 5)"]
                                                 for r in rows),
                  "data_free_within_1_point": all(abs(r["accuracy"]["trace data-free"] - r["accuracy"]["HAWQ-V2 trace"])
                                                  <= 1.0 for r in rows),
              }}
    console.print(result["checks"])
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.plot:
        _plot(trace, rows, args.plot)
        console.print(f"plot -> {args.plot}")
    return result


if __name__ == "__main__":
    main()
