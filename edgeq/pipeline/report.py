"""report.html for `edgeq optimize`: one self-contained page (plots embedded as PNG) a person can read at a glance."""
from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

from edgeq import allocate
from edgeq.allocate import Budget, LatencyTable
from edgeq.quant import Plan
from edgeq.sensitivity.table import Sensitivity


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    import matplotlib.pyplot as plt
    plt.close(fig)
    return f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _figures(result, sens: Sensitivity, table: LatencyTable, plan: Plan | None) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs = []
    names = [l.name for l in sens.layers]
    if plan is not None:
        specs = [plan.spec(n) for n in names]
        fig, axes = plt.subplots(1, 3, figsize=(13, 0.28 * len(names) + 1.6), dpi=100, sharey=True)
        axes[0].barh(names, [s.w_bits for s in specs], color="tab:blue")
        axes[0].set(title="weight bits chosen", xlim=(0, 8.5))
        axes[1].barh(names, [l.omega(s.w_bits, s.a_bits) for l, s in zip(sens.layers, specs)], color="tab:orange")
        axes[1].set(title="Ω at the chosen bits (HAWQ-V2)", xscale="log")
        axes[2].barh(names, [table.get(n, s) for n, s in zip(names, specs)], color="tab:green")
        axes[2].set(title=f"layer alone on {table.target} (ms, median)")
        axes[0].invert_yaxis()
        fig.tight_layout()
        figs.append(_png(fig))

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.2), dpi=100)
    specs = {Plan.uniform(tag).default for row in table.ms.values() for tag in row}
    w_bits, a_bits = sorted({s.w_bits for s in specs}), sorted({s.a_bits for s in specs})
    points = allocate.frontier(sens, "latency_ms", 20, w_bits=w_bits, a_bits=a_bits, latency=table,
                               fixed=Budget(size_mb=result.size_budget_mb))
    uniform = {f"uniform W{w}A{max(a_bits)}": allocate.costs(sens, Plan.uniform(f"w{w}a{max(a_bits)}"), table)
               for w in w_bits}
    allocate.draw(ax1, points, "latency_ms", marks=uniform, title="Pareto frontier; circles: plans measured (red: chosen)")
    for it in result.iterations:
        ax1.plot(it.predicted_ms, it.omega, "o", mfc="none", color="tab:red" if it.index == result.chosen else "grey")
    ax1.set_xlabel("predicted latency (Σ per-layer table, ms)")
    its = result.iterations
    ks = [it.index for it in its]
    alpha, beta = result.fit
    ax2.plot(ks, [it.predicted_ms for it in its], "o--", label="predicted (table sum)")
    ax2.plot(ks, [alpha * it.predicted_ms + beta for it in its], "^:", label=f"corrected ({alpha:.3g}·p + {beta:.3g})")
    ax2.errorbar(ks, [it.measured_ms for it in its], yerr=[[it.measured_ms - it.min_ms for it in its],
                                                           [it.max_ms - it.measured_ms for it in its]],
                 fmt="s-", capsize=3, label="measured (median, min-max)")
    ax2.axhline(result.latency_budget_ms, color="red", lw=1, label="budget")
    ax2.set(xlabel="iteration", ylabel="ms", title=f"predicted vs measured on {result.target}", xticks=ks)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    figs.append(_png(fig))
    return figs


def write_html(result, out_dir: Path) -> Path:
    """report.html from what optimize left in out_dir (report.json, sensitivity.json, latency_table.json, plan.json)."""
    sens = Sensitivity.load(out_dir / "sensitivity.json")
    table = LatencyTable.load(out_dir / "latency_table.json")
    plan = Plan.load(out_dir / "plan.json") if result.met else None
    rows = "".join(
        f"<tr{' class=chosen' if it.index == result.chosen else ''}><td>{it.index}</td>"
        f"<td>{'fastest' if it.ilp_budget_ms is None else f'{it.ilp_budget_ms:.4g}'}</td><td>{it.predicted_ms:.4g}</td>"
        f"<td>{it.measured_ms:.4g} ({it.min_ms:.4g}–{it.max_ms:.4g})</td><td>{'yes' if it.bit_exact else 'NO'}</td>"
        f"<td>{it.omega:.3g}</td><td>{it.size_mb * 1e3:.2f}</td>"
        f"<td>{' '.join(sorted(set(it.plan.values())))}</td></tr>" for it in result.iterations)
    acc = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.2f}%</td></tr>" for k, v in result.accuracy.items())
    status = "met" if result.met else "NOT met"
    size = f", {result.size_budget_mb * 1e3:.4g} KB" if result.size_budget_mb else ""
    made = {"sensitivity": sens.settings, "latency table": {"target": table.target, "entries": sum(map(len, table.ms.values()))},
            "this run": result.work}
    page = f"""<!doctype html><meta charset="utf-8"><title>edgeq optimize: {html.escape(result.model)}</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;max-width:1300px}} img{{max-width:100%}} td,th{{padding:2px 10px;text-align:right}}
table{{border-collapse:collapse}} tr:nth-child(even){{background:#f4f4f4}} .chosen{{font-weight:bold;color:#b00}}</style>
<h1>{html.escape(result.model)} on {html.escape(result.target)}: {result.latency_budget_ms:.4g} ms{size} {status}</h1>
<p>{html.escape(result.reason)}. Sensitivity: {html.escape(sens.method)} on {html.escape(sens.data)}.</p>
<h2>Iterations</h2><table><tr><th>#</th><th>ILP budget (predicted ms)</th><th>predicted ms</th>
<th>measured ms (min–max)</th><th>bit-exact</th><th>Ω</th><th>size KB</th><th>bit-widths used</th></tr>{rows}</table>
{f'<h2>Accuracy (held-out data)</h2><table>{acc}</table>' if acc else ''}
<h2>Per layer and frontier</h2>{''.join(_figures(result, sens, table, plan))}
<h2>How it was made</h2><pre>{html.escape(chr(10).join(f"{k}: {json.dumps(v)}" for k, v in made.items()))}</pre>
"""
    path = out_dir / "report.html"
    path.write_text(page)
    return path
