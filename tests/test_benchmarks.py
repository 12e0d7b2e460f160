"""The benchmarks run end to end and write what they print (timings themselves are never asserted)."""
import importlib.util
import json
from pathlib import Path

import pytest
import torch

from edgeq.targets.host import runs_edgeq_kernels


def _load(name):
    path = Path(__file__).parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_latency_benchmark_writes_json(tmp_path):
    out = tmp_path / "latency.json"
    _load("latency").main(["--model", "digits", "--repetitions", "3", "--json", str(out)])
    data = json.loads(out.read_text())
    assert set(data["results"]) == {"torch eager fp32", "ort fp32", "ort int8", "iree fp32 (best flags)",
                                    "tflite int8 (litert)", "edgeq w8a8 (host)"}
    assert all(len(r["latencies_ms"]) == 3 and r["min_ms"] <= r["median_ms"] <= r["max_ms"] for r in data["results"].values())
    assert set(data["ratios"]) == {"edgeq_int8/ort_int8", "edgeq_int8/tflite_int8", "edgeq_int8/iree_fp32",
                                   "edgeq_int8/ort_fp32", "edgeq_int8/torch_fp32"}
    from edgeq.targets.host import CPU_VARIANTS   # edgeq ran with the tuner's winner, every flag set timed or dropped

    tuning = data["edgeq_tuning"]
    assert tuning["winner"] in CPU_VARIANTS and set(tuning["median_ms"]) | set(tuning["dropped"]) == set(CPU_VARIANTS)


def test_latency_benchmark_times_minilm_beside_torch_and_ort(tmp_path):
    out = tmp_path / "latency.json"
    _load("latency").main(["--model", "minilm-l6", "--repetitions", "2", "--no-tune", "--json", str(out)])
    data = json.loads(out.read_text())
    assert data["input_shape"] == [1, 128]
    assert set(data["results"]) == {"torch eager fp32", "ort fp32", "ort int8", "edgeq w8a8 (host)"}
    assert set(data["ratios"]) == {"edgeq_int8/ort_int8", "edgeq_int8/ort_fp32", "edgeq_int8/torch_fp32"}
    assert data["edgeq_tuning"] == {}


def test_allocation_benchmark_hessian_beats_uniform_and_random(tmp_path):
    """The issue's claim on real held-out digits, re-measured: at equal size the Hessian ILP is at least as accurate
    as uniform precision and as random allocations, and data-free sensitivities lose at most one point.
    Against uniform the test allows 2 of 450 images: on this machine they tie at one budget (98.22%), and another
    CPU's float rounding in training and calibration can move a single image either way."""
    result = _load("allocation").main(["--json", str(tmp_path / "a.json"), "--plot", str(tmp_path / "a.png")])
    for r in result["rows"]:
        acc = r["accuracy"]
        assert acc["HAWQ-V2 trace"] >= acc["uniform"] - 200 / 450, r
        assert acc["HAWQ-V2 trace"] >= acc["random (mean of 5)"], r
        assert abs(acc["trace data-free"] - acc["HAWQ-V2 trace"]) <= 1.0, r
    assert any({2, 4} <= set(r["weight_bits_used"]) for r in result["rows"])   # a budget that needs 2- and 4-bit layers
    assert result["spearman"]["trace data-free vs HAWQ-V2 trace"] >= 0.8
    assert json.loads((tmp_path / "a.json").read_text())["rows"] == result["rows"]


def test_sensitivity_benchmark_modes_agree(tmp_path):
    result = _load("sensitivity").main(["--model", "digits", "--probes", "8", "--json", str(tmp_path / "s.json")])
    assert set(result["seconds"]) == {"retained, looped", "retained, batched (8 per backward)", "rebuilt per probe"}
    assert result["max_relative_difference"]["batched"] < 1e-6 and result["max_relative_difference"]["rebuilt"] < 1e-5


def test_optimize_benchmark_three_budgets(tmp_path):
    """Three budgets between the measured all-W4 and all-W8 models; every module the loop built is bit-exact and
    every iteration is recorded against the budget it was run for (met or not is the machine's noise on host)."""
    result = _load("optimize").main(["--model", "digits", "--repetitions", "5", "--work", str(tmp_path / "w"),
                                     "--json", str(tmp_path / "o.json")])
    lo, hi = sorted(u["median_ms"] for u in result["uniform"].values())
    assert len(result["budgets_ms"]) == 3 and all(lo <= b <= hi for b in result["budgets_ms"])
    assert [r["latency_budget_ms"] for r in result["runs"]] == result["budgets_ms"]
    for r in result["runs"]:
        assert r["iterations"] and all(it["bit_exact"] for it in r["iterations"])
        assert all(set(it["plan"].values()) <= {"w4a8", "w8a8"} for it in r["iterations"])
        if r["met"]:
            assert r["iterations"][r["chosen"]]["measured_ms"] <= r["latency_budget_ms"]
    assert json.loads((tmp_path / "o.json").read_text())["runs"] == json.loads(json.dumps(result["runs"]))


def test_accel_sim_benchmark_agrees_with_scalesim(tmp_path):
    result = _load("accel_sim").main(["--model", "digits", "--dataflows", "ws", "--json", str(tmp_path / "a.json")])
    rows = result["rows"]   # one cycle apart (SCALE-Sim reports the last cycle's 0-based index), none to explain
    assert len(rows) == 7 and all(r["edgeq_cycles"] - r["scalesim_cycles"] == 1 and not r["explanation"] for r in rows)
    assert json.loads((tmp_path / "a.json").read_text())["rows"] == rows


def test_int8_profile_accounts_for_every_layer(tmp_path):
    """Every conv and linear layer of digits is found among the dispatches of the compiled module, by the
    contraction shapes IREE names them with, and their MACs add up to the model's (counted here from torch)."""
    from edgeq import models

    result = _load("int8_profile").main(["--model", "digits", "--repetitions", "3", "--json", str(tmp_path / "p.json")])
    module = models.load("digits").module.eval()
    macs, names = {}, []

    def hook(name):
        def record(layer, args, out):
            k = layer.in_features if isinstance(layer, torch.nn.Linear) else \
                layer.in_channels // layer.groups * layer.kernel_size[0] * layer.kernel_size[1]
            macs[name] = out[0].numel() * k
        return record

    for name, layer in module.named_modules():
        if isinstance(layer, (torch.nn.Conv2d, torch.nn.Linear)):
            layer.register_forward_hook(hook(name))
            names.append(name)
    with torch.no_grad():
        module(torch.zeros(1, 1, 8, 8))
    rows = result["dispatches"]
    assert sorted(n for r in rows for n in r["layers"]) == sorted(names)
    measured = [r for r in rows if r["times_us"] is not None]
    assert sum(r["runs"] for r in rows) >= len(names) and len(measured) >= len(rows) - 2
    assert all(len(r["times_us"]) == 3 and r["median_us"] > 0 for r in measured)
    assert sum(r["macs"] * r["runs"] for r in rows) == sum(macs.values())
    assert set(result["peak"]["gmacs"]) == {"onnxruntime MatMulInteger (u8 x s8)", "iree linalg.matmul (s8 x s8), host flags"}
    assert json.loads((tmp_path / "p.json").read_text())["dispatches"] == rows


@pytest.mark.skipif(not runs_edgeq_kernels(), reason="edgeq's kernels need x86-64 with AVX-512 VNNI and VBMI")
def test_conv_kernel_benchmark_covers_every_dense_conv(tmp_path):
    """Every dense digits conv is timed four ways: IREE's, edgeq's kernel with the pack of its input, the kernel
    alone, and requantized as the model runs it (which names its kernel); the peak comes from vnni_peak.c on every
    core."""
    from edgeq import models

    result = _load("conv_kernel").main(["--model", "digits", "--repetitions", "3", "--json", str(tmp_path / "c.json")])
    convs = [n for n, m in models.load("digits").module.named_modules()
             if isinstance(m, torch.nn.Conv2d) and m.groups == 1]
    rows = result["convs"]
    assert convs and sorted(n for r in rows for n in r["layers"]) == sorted(convs)
    for r in rows:
        assert set(r["times_us"]) == {"iree", "edgeq", "kernel alone", "edgeq requantized"}
        assert r["kernel"] in ("grid", "rows")   # digits' convs: too few output channels for the Winograd one
        assert all(len(t) >= 3 and r["median_us"][w] > 0 for w, t in r["times_us"].items())
    assert 10 < result["peak_gmacs"] < 10_000
    assert json.loads((tmp_path / "c.json").read_text())["convs"] == rows


@pytest.mark.skipif(not runs_edgeq_kernels(), reason="edgeq's kernels need x86-64 with AVX-512 VNNI and VBMI")
def test_conv_kernel_benchmark_names_the_winograd_kernel_by_its_claimed_entry(tmp_path):
    """ResNet's layer1 conv runs on the Winograd kernel's _claimed entry; the table still names its kernel
    (it named it grid from stop 35 to stop 37)."""
    import subprocess

    from edgeq.dialect_passes._registry import run_pipeline
    from edgeq.dialect_passes.conv_kernel import ConvShape
    from edgeq.pipeline.compile import iree_compile_tool

    bench = _load("conv_kernel")
    (tmp_path / "l1.mlir").write_text(bench._module(ConvShape(64, 58, 58, 64, 3, 3, 56, 56), 1, requantized=True))
    subprocess.run([iree_compile_tool(), "l1.mlir", "--compile-to=input", "-o", "l1.input.mlir"], cwd=tmp_path,
                   check=True)
    lowered = run_pipeline((tmp_path / "l1.input.mlir").read_text(), ["edgeq-conv-kernel"])
    assert f"@{bench.WINOGRAD}_claimed_pooled(" in lowered
    assert bench._kernel_name(lowered) == "winograd"


def test_timeline_benchmark_splits_a_call(tmp_path):
    """Every call but the last is split into the wait for its first dispatch, the dispatches and the gaps between
    them, the wait after them and the caller's share; each dispatch is named and its workers' time lies within
    THREADS times its span."""
    bench = _load("timeline")
    result = bench.main(["--model", "digits", "--calls", "6", "--no-tune", "--json", str(tmp_path / "t.json")])
    assert json.loads((tmp_path / "t.json").read_text()) == json.loads(json.dumps(result))
    assert result["calls"] == 5 and result["dispatches"]
    commands = [d["command"] for d in result["dispatches"]]
    assert commands == sorted(set(commands))
    for d in result["dispatches"]:
        assert d["key"] and d["span_us"] > 0 and 0 < d["worker_us"] <= bench.THREADS * d["span_us"] + 1, d
    call = result["per_call"]
    assert call["queued_to_first_dispatch_us"] > 0 and call["last_dispatch_to_dealloca_us"] > 0
    assert call["call_us"] > call["sum_span_us"] + call["sum_gap_us"] and call["caller_us"] > 0


def test_spells_benchmark_probes_the_round_trip_and_each_runtime(tmp_path):
    """Each probe has the vCPUs' round trip and a median for each runtime; every probe falls in one class of the
    table, whose medians lie within its probes' range, and so do its medians of the ratio's factors: edgeq over ORT
    on one thread each, and each runtime's speedup from its second thread."""
    bench = _load("spells")
    result = bench.main(["--model", "digits", "--minutes", "0.02", "--no-tune", "--json", str(tmp_path / "s.json")])
    assert json.loads((tmp_path / "s.json").read_text()) == json.loads(json.dumps(result))
    probes = result["probes"]
    assert probes and all(p["round_trip_ns"] > 0 for p in probes)
    runtimes = {"edgeq, 2 workers", "edgeq, 1 worker", "ort int8", "ort int8, 1 thread"}
    assert all(set(p) == runtimes | {"round_trip_ns"} and all(p[n] > 0 for n in runtimes) for p in probes)
    assert sum(c["probes"] for c in result["classes"].values()) == len(probes)
    for label, c in result["classes"].items():
        slow = label.startswith(">=")
        inside = [p for p in probes if (p["round_trip_ns"] >= bench.SLOW_ROUND_TRIP_NS) == slow]
        assert c["probes"] == len(inside)
        for n in runtimes:
            assert min(p[n] for p in inside) <= c[n] <= max(p[n] for p in inside)
        for key, (a, b) in {"one_thread": ("edgeq, 1 worker", "ort int8, 1 thread"),
                            "ort_speedup": ("ort int8, 1 thread", "ort int8"),
                            "edgeq_speedup": ("edgeq, 1 worker", "edgeq, 2 workers"),
                            "edgeq_over_ort": ("edgeq, 2 workers", "ort int8")}.items():
            ratios = [p[a] / p[b] for p in inside]
            assert min(ratios) <= c[key] <= max(ratios), key
