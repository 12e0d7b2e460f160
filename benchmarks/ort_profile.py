"""ONNX Runtime int8's time per node of one model, in one run: the other side of benchmarks/timeline.py's
per-dispatch times, to see layer by layer where ORT is faster than edgeq.

    python benchmarks/ort_profile.py --model mobilenet_v2 --json benchmarks/results/ort_profile_mobilenet_v2.json

The model is quantized as the latency benchmark quantizes it (static QDQ, per-channel, u8 activations, s8
weights) and run on THREADS intra-op threads with ORT's own profiler (SessionOptions.enable_profiling), which
records each node's kernel time per run. Prints, in execution order, each node's median over the calls, and the
sums per operator type. The profiler's bookkeeping makes a call a little slower than in the latency benchmark.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import onnxruntime as ort
from rich.console import Console
from rich.table import Table

from edgeq import models

sys.path.insert(0, str(Path(__file__).parent))
from latency import THREADS, _ort_models, write_report  # noqa: E402  (the latency benchmark's ORT model and report)


def node_times(onnx_path: Path, feeds: dict, calls: int, work: Path) -> list[dict]:
    """Each node's median kernel time in µs over `calls` runs, in execution order."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = THREADS, 1
    opts.enable_profiling, opts.profile_file_prefix = True, str(work / "ort_profile")
    session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    for _ in range(calls):
        session.run(None, feeds)
    times, ops = defaultdict(list), {}
    for event in json.loads(Path(session.end_profiling()).read_text()):
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            name = event["name"][:-len("_kernel_time")]
            ops.setdefault(name, event["args"].get("op_name", "?"))
            times[name].append(event["dur"])
    return [{"node": name, "op": ops[name], "median_us": statistics.median(times[name])} for name in ops]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    m = models.load(args.model)
    x = m.calibration[:1]
    with tempfile.TemporaryDirectory(prefix="edgeq-ort-profile-") as tmp:
        work = Path(tmp)
        int8_path = _ort_models(m.module, x, m.calibration, work)[1]
        nodes = node_times(int8_path, {"x": x.numpy()}, args.calls, work)
    per_op = defaultdict(float)
    for n in nodes:
        per_op[n["op"]] += n["median_us"]

    table = Table(title=f"{args.model}: ONNX Runtime int8 on {THREADS} threads, medians of {args.calls} calls")
    for col in ("node", "op", "µs"):
        table.add_column(col, justify="right" if col == "µs" else "left")
    for n in nodes:
        table.add_row(n["node"][:70], n["op"], f"{n['median_us']:.1f}")
    console = Console(width=120)
    console.print(table)
    console.print("Per operator type, µs: " + ", ".join(f"{op} {t:.0f}" for op, t in
                                                        sorted(per_op.items(), key=lambda kv: -kv[1])))
    report = {"model": args.model, "threads": THREADS, "calls": args.calls, "nodes": nodes,
              "per_op_us": dict(per_op), "sum_us": sum(per_op.values())}
    return write_report(args.json, report)


if __name__ == "__main__":
    main()
