"""The Pareto frontier of total Ω against one resource, by sweeping that resource's budget through the ILP."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeq.allocate.ilp import RESOURCES, Allocation, Budget, Costs, LatencyTable, ilp
from edgeq.quant.plan import LayerSpec
from edgeq.sensitivity.table import Sensitivity


def frontier(sens: Sensitivity, resource: str = "size_mb", points: int = 24, *, w_bits=(2, 4, 8), a_bits=(8,),
             pinned: dict[str, LayerSpec] | None = None, latency: LatencyTable | None = None,
             fixed: Budget | None = None) -> list[Allocation]:
    """Optimal allocations for `points` budgets spread evenly from the least to the most the resource can be,
    the other budgets of `fixed` held; duplicates (the same plan from neighbouring budgets) dropped."""
    if resource not in RESOURCES:
        raise ValueError(f"resource must be one of {list(RESOURCES)}, got {resource!r}")
    others = (fixed or Budget()).limits()
    others.pop(resource, None)

    def solve(b: float) -> Allocation:
        return ilp(sens, Budget(**{resource: b} | others), w_bits=w_bits, a_bits=a_bits, pinned=pinned,
                   latency=latency)

    top = getattr(solve(1e30).costs, resource)   # the least-Ω end, where the resource is largest
    # the other end: the least the resource can be while the other budgets hold
    least = ilp(sens, Budget(**others), w_bits=w_bits, a_bits=a_bits, pinned=pinned, latency=latency,
                minimise=resource)
    bottom = getattr(least.costs, resource) * (1 + 1e-9)
    out: dict[tuple, Allocation] = {}
    for b in np.linspace(bottom, top, points):
        a = solve(float(b))
        out.setdefault(tuple(sorted((k, v.tag) for k, v in a.plan.layers.items())), a)
    return sorted(out.values(), key=lambda a: getattr(a.costs, resource))


def draw(ax, points: list[Allocation], resource: str, *, chosen: Allocation | None = None,
         marks: dict[str, Costs] | None = None, title: str = "") -> None:
    """The frontier (Ω on a log axis), the chosen allocation and marked points (e.g. uniform precision) on ax."""
    xs = [getattr(a.costs, resource) for a in points]
    ax.step(xs, [a.costs.omega for a in points], where="post", color="tab:blue", lw=1.2, label="ILP frontier")
    ax.plot(xs, [a.costs.omega for a in points], "o", color="tab:blue", ms=3)
    if chosen is not None:
        ax.plot(getattr(chosen.costs, resource), chosen.costs.omega, "*", color="red", ms=14, label="chosen")
    for i, (label, c) in enumerate((marks or {}).items()):   # hollow, so a mark on the chosen point still shows
        ax.plot(getattr(c, resource), c.omega, "sv^Dp<>"[i % 7], ms=9, mfc="none", mew=1.6, label=label)
    ax.set_yscale("log")
    ax.set_xlabel(RESOURCES[resource])
    ax.set_ylabel("total Ω (predicted loss perturbation)")
    ax.set_title(title or f"Pareto frontier, Ω vs {RESOURCES[resource]}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def plot(points: list[Allocation], resource: str, path: str | Path, *, chosen: Allocation | None = None,
         marks: dict[str, Costs] | None = None, title: str = "") -> Path:
    """PNG of draw()'s picture."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    draw(ax, points, resource, chosen=chosen, marks=marks, title=title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
