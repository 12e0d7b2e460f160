"""The latency benchmark runs end to end and writes what it prints (timings themselves are never asserted)."""
import importlib.util
import json
from pathlib import Path


def test_latency_benchmark_writes_json(tmp_path):
    path = Path(__file__).parents[1] / "benchmarks" / "latency.py"
    spec = importlib.util.spec_from_file_location("latency", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "latency.json"
    bench.main(["--model", "digits", "--repetitions", "3", "--json", str(out)])
    data = json.loads(out.read_text())
    assert set(data["results"]) == {"torch eager fp32", "ort fp32", "ort int8", "iree fp32 (best flags)", "edgeq w8a8 (host)"}
    assert all(len(r["latencies_ms"]) == 3 and r["min_ms"] <= r["median_ms"] <= r["max_ms"] for r in data["results"].values())
    assert set(data["ratios"]) == {"edgeq_int8/ort_int8", "edgeq_int8/iree_fp32", "edgeq_int8/torch_fp32"}
