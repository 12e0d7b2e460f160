"""HAWQ-V3's integer linear program (sec. 3.4): one bit-width pair per layer, least total Ω under the budgets.

    minimise   Σ_l Σ_c Ω(l, c) x_lc                      c = (w_bits, a_bits), x_lc ∈ {0, 1}
    subject to Σ_c x_lc = 1                              for every layer l
               Σ size(l, c) x_lc ≤ size budget           size(l, c) = n_params·w/8 + 4·n_bias bytes (int32 bias)
               Σ bops(l, c) x_lc ≤ BOPs budget           bops(l, c) = MACs·w·a
               Σ latency(l, c) x_lc ≤ latency budget     from a latency table measured on the target
solved with scipy's milp (HiGHS). 1 MB = 10⁶ bytes, 1 GBOP = 10⁹ bit-operations.
"""
from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from edgeq.errors import EdgeqError
from edgeq.quant.plan import LayerSpec, Plan
from edgeq.quant.quantizer import check_bits
from edgeq.sensitivity.table import LayerSensitivity, Sensitivity

RESOURCES = {"size_mb": "model size (MB)", "bops_g": "BOPs (G)", "latency_ms": "latency (ms)"}


@dataclass(frozen=True)
class Budget:
    size_mb: float | None = None
    bops_g: float | None = None
    latency_ms: float | None = None

    def __post_init__(self):
        for key, value in self.limits().items():
            if not value > 0:
                raise ValueError(f"{key} budget must be positive, got {value}")

    def limits(self) -> dict[str, float]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class LatencyTable:
    """Latency of each layer compiled and run alone, per LayerSpec tag, on one target (milliseconds)."""

    target: str
    ms: dict[str, dict[str, float]]          # layer -> "w4a8" -> ms (median)
    spread: dict[str, dict[str, dict]] = field(default_factory=dict)   # layer -> tag -> {"min_ms", "max_ms", "n"}

    def get(self, layer: str, spec: LayerSpec) -> float:
        try:
            return self.ms[layer][spec.tag]
        except KeyError:
            raise EdgeqError(f"latency table for {self.target} has no entry for {layer} at {spec.tag}",
                             "measure the table for every layer and candidate bit-width (edgeq optimize does)") from None

    def to_json(self) -> dict:
        return asdict(self)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "LatencyTable":
        try:
            data = json.loads(Path(path).read_text())
            return cls(str(data["target"]), {l: {t: float(v) for t, v in row.items()} for l, row in data["ms"].items()},
                       data.get("spread", {}))
        except FileNotFoundError:
            raise EdgeqError(f"latency table {str(path)!r} not found", "give the table written by edgeq optimize") from None
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            raise EdgeqError(f"latency table {str(path)!r} is corrupt ({type(e).__name__}: {e})",
                             'write it as {"target": "host", "ms": {"layer": {"w8a8": 0.12, ...}}}') from None


@dataclass(frozen=True)
class Costs:
    omega: float
    size_mb: float
    bops_g: float
    latency_ms: float | None = None


@dataclass(frozen=True)
class Allocation:
    plan: Plan
    costs: Costs
    budget: Budget
    sensitivity: str                          # the method whose Ω was minimised
    choices: dict[str, list[str]] = field(default_factory=dict)

    def to_json(self) -> dict:
        """The plan (what `edgeq compile --bits` reads) with how it was chosen beside it."""
        return self.plan.to_json() | {"allocation": {"costs": asdict(self.costs), "budget": asdict(self.budget),
                                                     "sensitivity": self.sensitivity, "choices": self.choices}}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=2) + "\n")


def _layer_costs(layer: LayerSensitivity, spec: LayerSpec, latency: LatencyTable | None) -> dict[str, float]:
    return {"omega": layer.omega(spec.w_bits, spec.a_bits),
            "size_mb": (layer.n_params * spec.w_bits / 8 + 4 * layer.n_bias) / 1e6,
            "bops_g": layer.macs * spec.w_bits * spec.a_bits / 1e9,
            "latency_ms": latency.get(layer.name, spec) if latency else 0.0}


def costs(sens: Sensitivity, plan: Plan, latency: LatencyTable | None = None) -> Costs:
    """Total Ω, size, BOPs (and latency, given a table) of a plan, counted as the ILP counts them."""
    total = {"omega": 0.0, "size_mb": 0.0, "bops_g": 0.0, "latency_ms": 0.0}
    for layer in sens.layers:
        for k, v in _layer_costs(layer, plan.spec(layer.name), latency).items():
            total[k] += v
    return Costs(total["omega"], total["size_mb"], total["bops_g"], total["latency_ms"] if latency else None)


def _choices(sens: Sensitivity, w_bits, a_bits, pinned: dict[str, LayerSpec]) -> list[list[LayerSpec]]:
    for b in w_bits:
        check_bits(b, "weight")
    for b in a_bits:
        check_bits(b, "activation")
    names = {l.name for l in sens.layers}
    unknown = sorted(set(pinned) - names)
    if unknown:
        raise EdgeqError(f"pinned layers {unknown} are not in the sensitivity table",
                         f"pin layers among {', '.join(l.name for l in sens.layers)}")
    free = [LayerSpec(w, a) for w, a in itertools.product(sorted(set(w_bits)), sorted(set(a_bits)))]
    return [[pinned[l.name]] if l.name in pinned else free for l in sens.layers]


class InfeasibleBudget(EdgeqError):
    def __init__(self, problem: str, fix: str, resource: str, smallest: float | None):
        super().__init__(problem, fix)
        self.resource, self.smallest = resource, smallest   # the least the resource can be, where known


def _solve(c: np.ndarray, rows: dict[str, np.ndarray], limits: dict[str, float], groups: list[range]):
    n = len(c)
    one_each = np.zeros((len(groups), n))
    for i, g in enumerate(groups):
        one_each[i, g.start:g.stop] = 1
    constraints = [LinearConstraint(one_each, 1, 1)]
    constraints += [LinearConstraint(rows[k][None, :] / limits[k], -np.inf, 1) for k in limits]  # scaled to ≤ 1
    return milp(c, constraints=constraints, integrality=np.ones(n), bounds=Bounds(0, 1),
                options={"mip_rel_gap": 1e-9})


def ilp(sens: Sensitivity, budget: Budget, *, w_bits=(2, 4, 8), a_bits=(8,), pinned: dict[str, LayerSpec] | None = None,
        latency: LatencyTable | None = None, minimise: str = "omega") -> Allocation:
    """The plan of least total Ω (or of another cost, `minimise`: a key of RESOURCES) within the budget.
    An infeasible budget raises InfeasibleBudget naming the smallest achievable value and the layer that
    weighs most in it."""
    pinned = pinned or {}
    limits = budget.limits()
    if "latency_ms" in limits and latency is None:
        raise EdgeqError("a latency budget needs a per-layer latency table", "pass --latency-table T.json")
    choices = _choices(sens, w_bits, a_bits, pinned)
    per = [[_layer_costs(l, s, latency) for s in ch] for l, ch in zip(sens.layers, choices)]
    flat = [c for row in per for c in row]
    groups, start = [], 0
    for row in per:
        groups.append(range(start, start + len(row)))
        start += len(row)
    rows = {k: np.array([c[k] for c in flat]) for k in ("omega", *RESOURCES)}
    if minimise not in rows:
        raise ValueError(f"minimise must be omega or one of {list(RESOURCES)}, got {minimise!r}")
    res = _solve(rows[minimise], rows, limits, groups)
    if res.status != 0 or res.x is None:
        raise _infeasible(sens, choices, per, rows, limits, groups)
    picked = [max(g, key=lambda j: res.x[j]) - g.start for g in groups]
    plan = Plan(LayerSpec(8, 8), {l.name: ch[i] for l, ch, i in zip(sens.layers, choices, picked)})
    return Allocation(plan, costs(sens, plan, latency), budget, sens.method,
                      {l.name: [s.tag for s in ch] for l, ch in zip(sens.layers, choices)})


def _infeasible(sens, choices, per, rows, limits, groups) -> InfeasibleBudget:
    for key, limit in limits.items():
        least = [min(range(len(row)), key=lambda i: row[i][key]) for row in per]
        smallest = sum(row[i][key] for row, i in zip(per, least))
        if smallest > limit:
            heavy = max(range(len(per)), key=lambda l: per[l][least[l]][key])
            layer, spec = sens.layers[heavy], choices[heavy][least[heavy]]
            why = "pinned" if len(choices[heavy]) == 1 else "at its fewest bits"
            return InfeasibleBudget(
                f"{RESOURCES[key]} budget {limit:.6g} is infeasible: the smallest achievable is {smallest:.6g}; "
                f"the layer that binds is {layer.name} ({spec.tag}, {why}) with {per[heavy][least[heavy]][key]:.6g}",
                f"raise the budget to at least {smallest:.6g}, allow fewer bits (--bits), or unpin layers",
                key, smallest)
    # Every budget is reachable alone but not together: the least first budget that the others allow.
    key, *others = limits
    res = _solve(rows[key], rows, {k: limits[k] for k in others}, groups)
    smallest = float(res.fun) if res.status == 0 else None
    least = f"with the other budgets the smallest {RESOURCES[key]} is {smallest:.6g}" if smallest is not None else \
        "the other budgets are infeasible together"
    return InfeasibleBudget(f"the budgets {limits} cannot hold together: {least}",
                            f"raise the {RESOURCES[key]} budget or relax the others", key, smallest)
