"""Time of the Hutchinson trace of every layer's weights, probes batched against one at a time, in one run.

    python benchmarks/sensitivity.py --json results/sensitivity.json [--model resnet18 --batch 32 --resolution 64]

The same seeded probes (a fixed count per layer, no early stop, so every mode does the same work) go through
  retained, looped    one forward + first backward, then one backward per probe through the kept graph (edgeq's default)
  retained, batched   the same graph, --probe-batch probes per vmap'ed backward (autograd's is_grads_batched)
  rebuilt per probe   forward and first backward redone for every probe (what keeping no graph costs)
Prints per-layer traces with standard errors and a table of seconds per mode with ratios; writes JSON.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from edgeq import models
from edgeq.sensitivity._objective import Objective, folded, weighted_layers
from edgeq.sensitivity.hutchinson import hutchinson


def _retained(gm, x, y, probes: int, probe_batch: int, seed: int):
    t0 = time.perf_counter()
    est = hutchinson(Objective(gm, x, y, kinds="w"), tol=0.0, min_probes=probes, max_probes=probes,
                     probe_batch=probe_batch, generator=torch.Generator().manual_seed(seed))
    return time.perf_counter() - t0, est


def _rebuilt(gm, x, y, probes: int, seed: int):
    """Each probe on a fresh Objective (new forward and first backward); the probes drawn are the same."""
    t0 = time.perf_counter()
    layers = weighted_layers(gm)
    g = torch.Generator().manual_seed(seed)
    values = []
    for layer in layers:
        samples = []
        for _ in range(probes):
            objective = Objective(gm, x, y, [layer], kinds="w")
            samples.append(hutchinson(objective, tol=0.0, min_probes=1, max_probes=1, generator=g)[0].value)
            del objective
        values.append(torch.tensor(samples).mean().item())
    return time.perf_counter() - t0, values


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--resolution", type=int, default=64, help="input height and width")
    ap.add_argument("--probes", type=int, default=16, help="probes per layer, the same in every mode")
    ap.add_argument("--probe-batch", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, required=True)
    args = ap.parse_args(argv)
    console = Console(width=140)
    torch.set_num_threads(2)

    model = models.load(args.model)
    shape = (args.batch, *model.input_shape[1:-2], args.resolution, args.resolution) \
        if model.test_set is None else (args.batch, *model.input_shape[1:])
    g = torch.Generator().manual_seed(args.seed)
    x = torch.randn(shape, generator=g) if model.test_set is None else model.calibration[:args.batch]
    gm = folded(model.module)
    with torch.no_grad():
        y = gm(x).argmax(1) if model.labels is None else model.labels[:args.batch]  # its own predictions as labels

    t_loop, est = _retained(gm, x, y, args.probes, 1, args.seed)
    t_batch, est_b = _retained(gm, x, y, args.probes, args.probe_batch, args.seed)
    t_rebuild, values_r = _rebuilt(gm, x, y, args.probes, args.seed)
    layers = weighted_layers(gm)

    per_layer = Table(title=f"{args.model}: Hutchinson trace of each layer's weights, {args.probes} probes, "
                            f"batch {args.batch}, {shape[-1]}x{shape[-1]}")
    for col in ("layer", "trace", "std. error", "rel. error"):
        per_layer.add_column(col, justify="left" if col == "layer" else "right")
    for name, e in zip(layers, est):
        per_layer.add_row(name, f"{e.value:.4g}", f"{e.stderr:.2g}", f"{e.stderr / abs(e.value):.1%}")
    console.print(per_layer)

    modes = {"retained, looped": t_loop, f"retained, batched ({args.probe_batch} per backward)": t_batch,
             "rebuilt per probe": t_rebuild}
    timing = Table(title=f"seconds for {len(layers)} layers x {args.probes} probes (2 threads)")
    for col in ("mode", "seconds", "ms per probe", "vs retained, looped"):
        timing.add_column(col, justify="left" if col == "mode" else "right")
    n = len(layers) * args.probes
    for mode, t in modes.items():
        timing.add_row(mode, f"{t:.2f}", f"{t / n * 1e3:.1f}", f"{t / t_loop:.2f}x")
    console.print(timing)
    agree = max(abs(a.value - b.value) / max(abs(a.value), 1e-30) for a, b in zip(est, est_b))
    agree_r = max(abs(a.value - v) / max(abs(a.value), 1e-30) for a, v in zip(est, values_r))
    console.print(f"same probes, same traces: batched within {agree:.1e}, rebuilt within {agree_r:.1e} (relative)")

    result = {"model": args.model, "input_shape": list(shape), "probes_per_layer": args.probes,
              "probe_batch": args.probe_batch, "threads": torch.get_num_threads(),
              "seconds": modes, "ratio_to_retained_looped": {k: v / t_loop for k, v in modes.items()},
              "layers": [{"name": nm, "trace": e.value, "stderr": e.stderr} for nm, e in zip(layers, est)],
              "max_relative_difference": {"batched": agree, "rebuilt": agree_r}}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
