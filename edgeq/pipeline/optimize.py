"""The compress-compile-measure loop: a latency budget met as measured on the target, not as predicted.

1. sensitivity (HAWQ-V2 traces; cached);  2. per-layer latency table measured on the target (cached);
3. ILP under the budgets;  4. quantize, compile, check bit-exact on the target, measure end to end;
5. per-layer sums are not the whole-model time, so measured ≈ α·predicted + β is fitted by least squares over
   the iterations so far and the ILP is solved again for the predicted budget that maps to the real one.
Every iteration lives in OUT_DIR/iter-K with its measurement: a rerun reuses what it finds there.
"""
from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from edgeq import allocate, sensitivity
from edgeq.allocate import Allocation, Budget, InfeasibleBudget
from edgeq.errors import EdgeqError
from edgeq.models import Model
from edgeq.pipeline.compile import Artifact, compile_model, toolchain
from edgeq.pipeline.latency import layer_latency_table
from edgeq.pipeline.report import write_html
from edgeq.quant import LayerSpec, Plan, quantize, to_integer
from edgeq.targets import Measurement, get

Start = Callable[[str], Callable[[int, int], None] | None]


@dataclass(frozen=True)
class Iteration:
    index: int
    ilp_budget_ms: float | None   # the predicted-latency budget the ILP was given (None: the fastest plan)
    predicted_ms: float           # Σ per-layer table latencies of the plan
    measured_ms: float            # median, whole model, on the target
    min_ms: float
    max_ms: float
    bit_exact: bool
    omega: float
    size_mb: float
    plan: dict[str, str]          # layer -> "w4a8"


@dataclass
class Result:
    model: str
    target: str
    latency_budget_ms: float
    size_budget_mb: float | None
    met: bool
    reason: str
    iterations: list[Iteration] = field(default_factory=list)
    chosen: int | None = None     # index of the iteration whose plan is the answer
    fit: tuple[float, float] = (1.0, 0.0)
    accuracy: dict[str, float] = field(default_factory=dict)
    work: dict[str, int] = field(default_factory=dict)   # what this run computed and what it reused

    def to_json(self) -> dict:
        return asdict(self)


def _fit(iterations: list[Iteration]) -> tuple[float, float]:
    """measured ≈ α·predicted + β: a ratio from one point, least squares from two distinct ones."""
    pred = np.array([it.predicted_ms for it in iterations])
    meas = np.array([it.measured_ms for it in iterations])
    if len(set(pred.round(9))) >= 2:
        alpha, beta = np.polyfit(pred, meas, 1)
        if alpha > 0:
            return float(alpha), float(beta)
    return float(meas.mean() / pred.mean()), 0.0


def _tag_plan(a: Allocation) -> dict[str, str]:
    return {k: v.tag for k, v in sorted(a.plan.layers.items())}


def _build(model: Model, alloc: Allocation, target: str, out_dir: Path, check_inputs: torch.Tensor,
           repetitions: int) -> tuple[Measurement, bool, bool]:
    """Compile the plan, check it bit-exact on the target, measure it; reuse what a stopped run left behind.
    Returns (measurement, bit-exact, reused)."""
    measured, checked = out_dir / "measurement.json", out_dir / "check.json"
    try:
        built = Artifact.load(out_dir).manifest
        same_plan = (built.bits.get("layers") == alloc.plan.to_json()["layers"]
                     and built.toolchain() == toolchain(target))
        check = json.loads(checked.read_text())
        if same_plan and check["inputs"] >= len(check_inputs):
            if get(target).simulated:   # the cost model may have changed since: simulate again
                m = Artifact.load(out_dir).measure([np.zeros(built.inputs[0]["shape"], np.int8)])
                measured.write_text(json.dumps(m.to_json(), indent=2))
                return m, check["bit_exact"], True
            m = json.loads(measured.read_text())
            return Measurement(m["target"], m["latencies_ms"], m.get("note", "")), check["bit_exact"], True
    except (EdgeqError, OSError, ValueError, KeyError, TypeError):
        pass   # missing, torn or from another plan: build it again
    shutil.rmtree(out_dir, ignore_errors=True)
    integer = to_integer(quantize(model.module, alloc.plan, model.calibration), model.calibration[:1])
    artifact = compile_model(integer, model.calibration[:1], target, out_dir, model.name, alloc.to_json())
    q = integer.quantize_input(check_inputs)
    with torch.no_grad():
        ref = integer.graph_module(q).numpy()
    exact = all(np.array_equal(artifact.run([q[i:i + 1].numpy()])[0], ref[i:i + 1]) for i in range(len(q)))
    checked.write_text(json.dumps({"bit_exact": exact, "inputs": len(q)}))
    m = artifact.measure([q[:1].numpy()], repetitions)
    measured.write_text(json.dumps(m.to_json(), indent=2))
    return m, exact, False


def optimize(model: Model, target: str, latency_ms: float, out_dir: str | Path, *, size_mb: float | None = None,
             data: tuple[torch.Tensor, torch.Tensor | None] | None = None, data_free: bool = False,
             w_bits=(2, 4, 8), a_bits=(8,), max_iterations: int = 6, repetitions: int = 20, check_inputs: int = 8,
             jobs: int = 2, executor: str = "local", start: Start = lambda _: None) -> Result:
    """Bits per layer whose compiled module meets latency_ms (and size_mb) measured on the target."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("model.vmfb", "plan.json"):   # an earlier run's answer must not pass for this one's
        (out_dir / stale).unlink(missing_ok=True)
    if data_free:
        x = sensitivity.distill(model.module, model.input_shape, 64, progress=start("distilling data (ZeroQ)"))
        y, note = None, f"{len(x)} ZeroQ distilled inputs (KL to fp32)"
    else:
        x, y = data if data is not None else (model.calibration, model.labels)
        note = None
    sens = sensitivity.trace(model.module, x, y, name=model.name, data_note=note,
                             progress=start("Hessian traces per layer"))
    specs = [LayerSpec(w, a) for w in sorted(set(w_bits)) for a in sorted(set(a_bits))]
    table_work = Counter()
    table = layer_latency_table(model.module, model.input_shape, target, specs, repetitions=repetitions, jobs=jobs,
                                executor=executor, progress=start(f"per-layer latency on {target}"), work=table_work)
    sens.save(out_dir / "sensitivity.json")
    table.save(out_dir / "latency_table.json")
    inputs = (model.test_set[0] if model.test_set is not None else model.calibration)[:check_inputs]
    options = dict(w_bits=w_bits, a_bits=a_bits, latency=table)

    result = Result(model.name, target, latency_ms, size_mb, False, "")
    result.work = {"latency_entries_cached": table_work["cached"], "latency_entries_measured": table_work["measured"],
                   "layer_modules_compiled": table_work["compiled"], "iterations_reused": 0, "iterations_built": 0}
    allocations: dict[int, Allocation] = {}
    seen: dict[tuple, Iteration] = {}
    step = start(f"compile, check and measure on {target}")
    for k in range(max_iterations):
        alpha, beta = result.fit = _fit(result.iterations) if result.iterations else (1.0, 0.0)
        ilp_budget = (latency_ms - beta) / alpha
        for prev in seen.values():   # a plan that missed must not come back: ask for less than it predicted
            if prev.measured_ms > latency_ms:
                ilp_budget = min(ilp_budget, prev.predicted_ms * (1 - 1e-6))
        try:
            alloc = allocate.ilp(sens, Budget(size_mb=size_mb, latency_ms=max(ilp_budget, 1e-9)), **options)
        except InfeasibleBudget:
            # Nothing is predicted to fit (alone or beside the size budget): measure the fastest plan within the
            # size budget, which also calibrates the correction. A size budget nothing meets raises here.
            alloc = allocate.ilp(sens, Budget(size_mb=size_mb), **options, minimise="latency_ms")
            ilp_budget = None
            fastest = seen.get(tuple(_tag_plan(alloc).items()))
            if fastest is not None and fastest.measured_ms > latency_ms:
                result.reason = (f"impossible: the fastest plan by the table measured {fastest.measured_ms:.4g} ms "
                                 f"(median; fastest run {fastest.min_ms:.4g} ms), over the {latency_ms:.4g} ms budget")
                break
        key = tuple(_tag_plan(alloc).items())
        if key in seen:
            result.reason = "the plan the corrected budget selects was measured and meets the budget"
            break
        m, exact, reused = _build(model, alloc, target, out_dir / f"iter-{k}", inputs, repetitions)
        result.work["iterations_reused" if reused else "iterations_built"] += 1
        it = Iteration(k, ilp_budget, alloc.costs.latency_ms, m.median_ms, min(m.latencies_ms), max(m.latencies_ms),
                       exact, alloc.costs.omega, alloc.costs.size_mb, dict(key))
        result.iterations.append(it)
        allocations[k] = alloc
        seen[key] = it
        if step:
            step(k + 1, max_iterations)
        if not exact:
            raise EdgeqError(f"iteration {k}: the module compiled for {target} is not bit-exact against the integer "
                             "reference", f"inspect {out_dir / f'iter-{k}'} (model.compile.sh rebuilds it)")
    else:
        result.reason = result.reason or f"stopped after {max_iterations} iterations"
    met = [it for it in result.iterations if it.measured_ms <= latency_ms]
    if met:
        best = min(met, key=lambda it: it.omega)
        result.met, result.chosen = True, best.index
        shutil.copy(out_dir / f"iter-{best.index}" / "model.vmfb", out_dir / "model.vmfb")
        allocations[best.index].save(out_dir / "plan.json")
        if model.test_set is not None:
            result.accuracy = _accuracy(model, allocations[best.index].plan)
    elif not result.reason.startswith("impossible"):
        result.reason = f"no measured plan met {latency_ms} ms ({result.reason})"
    (out_dir / "report.json").write_text(json.dumps(result.to_json(), indent=2) + "\n")
    write_html(result, out_dir)
    return result


def _accuracy(model: Model, plan: Plan) -> dict[str, float]:
    from edgeq.models.digits import accuracy

    x, y = model.test_set
    integer = to_integer(quantize(model.module, plan, model.calibration), model.calibration[:1])
    with torch.no_grad():
        return {"fp32": accuracy(model.module(x), y),
                "quantized": accuracy(integer.dequantize_output(integer.graph_module(integer.quantize_input(x))), y)}
