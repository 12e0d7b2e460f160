"""The ILP against brute-force enumeration, its budgets, pins and infeasibility answers, and the Pareto frontier."""
import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeq.allocate import Budget, InfeasibleBudget, LatencyTable, costs, frontier, ilp, plot
from edgeq.errors import EdgeqError
from edgeq.quant.plan import LayerSpec, Plan
from edgeq.sensitivity.table import LayerSensitivity, Sensitivity

W_BITS, A_BITS = (2, 4, 8), (4, 8)


def _table(omegas_w, omegas_a, sizes):
    layers = tuple(LayerSensitivity(f"l{i}", n, 2, 10 * n, 7, dict(zip(W_BITS, ow)), dict(zip(A_BITS, oa)))
                   for i, (ow, oa, n) in enumerate(zip(omegas_w, omegas_a, sizes)))
    return Sensitivity("toy", "trace", "test", layers)


def _latency(sens):
    return LatencyTable("toy", {l.name: {f"w{w}a{a}": l.n_params * (w + a) / 1e4 for w in W_BITS for a in A_BITS}
                                for l in sens.layers})


def _brute_force(sens, budget, latency):
    """Every assignment, checked with plain arithmetic: size in bytes, BOPs from MACs."""
    best = None
    for pick in itertools.product(itertools.product(W_BITS, A_BITS), repeat=len(sens.layers)):
        size = sum(l.n_params * w / 8 + 4 * l.n_bias for l, (w, _) in zip(sens.layers, pick)) / 1e6
        bops = sum(l.macs * w * a for l, (w, a) in zip(sens.layers, pick)) / 1e9
        lat = sum(latency.ms[l.name][f"w{w}a{a}"] for l, (w, a) in zip(sens.layers, pick))
        over = lambda value, limit: limit and value > limit * (1 + 1e-9)   # a sum's last bit is not a budget
        if over(size, budget.size_mb) or over(bops, budget.bops_g) or over(lat, budget.latency_ms):
            continue
        omega = sum(l.omega_w[w] + l.omega_a[a] for l, (w, a) in zip(sens.layers, pick))
        if best is None or omega < best:
            best = omega
    return best


omega_triples = st.lists(st.floats(1e-4, 10.0), min_size=3, max_size=3).map(lambda v: sorted(v, reverse=True))
omega_pairs = st.lists(st.floats(1e-4, 10.0), min_size=2, max_size=2).map(lambda v: sorted(v, reverse=True))


@settings(max_examples=40, deadline=None, derandomize=True)
@given(n_layers=st.integers(1, 4), data=st.data(), fraction=st.floats(0.2, 1.1), which=st.sampled_from(
    ["size_mb", "bops_g", "latency_ms", "all"]))
def test_ilp_finds_the_brute_force_optimum(n_layers, data, fraction, which):
    sens = _table([data.draw(omega_triples) for _ in range(n_layers)], [data.draw(omega_pairs) for _ in range(n_layers)],
                  [data.draw(st.integers(1, 5000)) for _ in range(n_layers)])
    latency = _latency(sens)
    full = costs(sens, Plan.uniform("w8a8"), latency)
    keys = ["size_mb", "bops_g", "latency_ms"] if which == "all" else [which]
    budget = Budget(**{k: getattr(full, k) * fraction for k in keys})
    best = _brute_force(sens, budget, latency)
    if best is None:
        with pytest.raises(InfeasibleBudget):
            ilp(sens, budget, w_bits=W_BITS, a_bits=A_BITS, latency=latency)
        return
    a = ilp(sens, budget, w_bits=W_BITS, a_bits=A_BITS, latency=latency)
    assert a.costs.omega == pytest.approx(best, rel=1e-6)
    for k in keys:
        assert getattr(a.costs, k) <= getattr(budget, k) * (1 + 1e-9)


def test_pinned_layers_stay_pinned_and_plan_feeds_compile(tmp_path):
    sens = _table([[5, 1, 0.1]] * 3, [[1, 0.5]] * 3, [1000, 1000, 1000])
    a = ilp(sens, Budget(size_mb=costs(sens, Plan.uniform("w2a8")).size_mb * 2), w_bits=W_BITS, a_bits=A_BITS,
            pinned={"l0": LayerSpec(8, 8)})
    assert a.plan.spec("l0") == LayerSpec(8, 8)
    assert a.choices["l0"] == ["w8a8"] and len(a.choices["l1"]) == 6
    a.save(tmp_path / "plan.json")
    assert Plan.load(tmp_path / "plan.json") == a.plan       # what `edgeq compile --bits plan.json` reads
    assert json.loads((tmp_path / "plan.json").read_text())["allocation"]["sensitivity"] == "trace"


def test_infeasible_budgets_name_the_least_achievable_and_the_binding_layer():
    sens = _table([[5, 1, 0.1]] * 3, [[1, 0.5]] * 3, [100, 8000, 100])
    least = costs(sens, Plan.uniform("w2a8")).size_mb
    with pytest.raises(InfeasibleBudget, match=f"smallest achievable is {least:.6g}.*binds is l1 .w2a4") as e:
        ilp(sens, Budget(size_mb=least * 0.9), w_bits=W_BITS, a_bits=A_BITS)
    assert e.value.smallest == pytest.approx(least) and e.value.resource == "size_mb"
    with pytest.raises(InfeasibleBudget, match=r"binds is l1 \(w8a8, pinned\)"):
        ilp(sens, Budget(size_mb=least * 1.5), pinned={"l1": LayerSpec(8, 8)})
    # Each budget reachable alone, not together: on this target 2-bit kernels are slower than 8-bit ones.
    slow_low_bits = LatencyTable("cpu", {l.name: {"w2a8": 1.0, "w8a8": 0.1} for l in sens.layers})
    with pytest.raises(InfeasibleBudget, match="cannot hold together: with the other budgets the smallest model size"):
        ilp(sens, Budget(size_mb=least * 1.01, latency_ms=0.5), w_bits=(2, 8), latency=slow_low_bits)


def test_bad_requests_are_refused_with_a_fix():
    sens = _table([[5, 1, 0.1]], [[1, 0.5]], [100])
    with pytest.raises(EdgeqError, match="latency table"):
        ilp(sens, Budget(latency_ms=1.0))
    with pytest.raises(EdgeqError, match="bit-width 9 is out of range"):
        ilp(sens, Budget(size_mb=1.0), w_bits=(4, 9))
    with pytest.raises(EdgeqError, match="not in the sensitivity table"):
        ilp(sens, Budget(size_mb=1.0), pinned={"nope": LayerSpec(8, 8)})
    with pytest.raises(EdgeqError, match="no entry for l0 at w2a8"):
        ilp(sens, Budget(latency_ms=1.0), latency=LatencyTable("host", {"l0": {"w8a8": 0.1}}))
    with pytest.raises(ValueError, match="must be positive"):
        Budget(size_mb=0)


def test_latency_table_round_trip_and_corrupt_file(tmp_path):
    t = LatencyTable("host", {"l0": {"w8a8": 0.25, "w4a8": 0.125}})
    (tmp_path / "t.json").write_text(json.dumps(t.to_json()))
    assert LatencyTable.load(tmp_path / "t.json") == t
    (tmp_path / "bad.json").write_text('{"target": "host", "ms": {"l0": {"w8a8": "fast"}}}')
    with pytest.raises(EdgeqError, match="corrupt"):
        LatencyTable.load(tmp_path / "bad.json")


def test_frontier_spans_the_extremes_and_is_monotone(tmp_path):
    sens = _table([[5, 1, 0.1], [2, 0.3, 0.01], [9, 4, 1]], [[1, 0.5]] * 3, [1000, 3000, 200])
    points = frontier(sens, "size_mb", 30)
    sizes = [p.costs.size_mb for p in points]
    omegas = [p.costs.omega for p in points]
    assert sizes[0] == pytest.approx(costs(sens, Plan.uniform("w2a8")).size_mb)
    assert sizes[-1] == pytest.approx(costs(sens, Plan.uniform("w8a8")).size_mb)
    assert sizes == sorted(sizes) and omegas == sorted(omegas, reverse=True)
    png = plot(points, "size_mb", tmp_path / "f.png", chosen=points[2],
               marks={"uniform W4A8": costs(sens, Plan.uniform("w4a8"))})
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_frontier_under_a_fixed_budget_spans_what_that_budget_allows():
    """Latency frontier with a size budget held. Low bits are slow here (as on a CPU that unpacks them), so the
    fastest plan, all-W8, breaks the size budget: the frontier starts at the fastest plan that fits and ends
    at the least-Ω plan that fits. Both ends against brute force over the 27 plans."""
    sens = _table([[5, 1, 0.1], [2, 0.3, 0.01], [9, 4, 1]], [[1, 0.5]] * 3, [1000, 3000, 200])
    slow_low_bits = LatencyTable("cpu", {l.name: {"w2a8": 0.4, "w4a8": 0.3, "w8a8": 0.1} for l in sens.layers})
    size = (costs(sens, Plan.uniform("w4a8")).size_mb + costs(sens, Plan.uniform("w8a8")).size_mb) / 2
    points = frontier(sens, "latency_ms", 12, latency=slow_low_bits, fixed=Budget(size_mb=size))
    plans = [costs(sens, Plan(LayerSpec(8, 8), {l.name: LayerSpec(w, 8) for l, w in zip(sens.layers, ws)}),
                   slow_low_bits) for ws in itertools.product((2, 4, 8), repeat=3)]
    fitting = [c for c in plans if c.size_mb <= size]
    assert all(p.costs.size_mb <= size * (1 + 1e-9) for p in points) and len(fitting) < len(plans)
    assert points[0].costs.latency_ms == pytest.approx(min(c.latency_ms for c in fitting))
    assert points[-1].costs.omega == pytest.approx(min(c.omega for c in fitting))
    assert costs(sens, Plan.uniform("w8a8"), slow_low_bits).latency_ms < points[0].costs.latency_ms <= points[-1].costs.latency_ms
