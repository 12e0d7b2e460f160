"""Where edgeq's int8 time goes on the host CPU, dispatch by dispatch, against this machine's measured int8 peak.

    python benchmarks/int8_profile.py --model resnet18 --json benchmarks/results/int8_profile_resnet18.json

1. int8 peak: a 1024^3 i8 x i8 -> i32 matmul through ONNX Runtime's MatMulInteger (MLAS: VNNI / dotprod
   kernels) and through IREE with the host target's flags. GMAC/s of each; the peak is the faster one.
2. The model as `edgeq compile` builds it for host with IREE's own kernels (CPU_PIPELINE: without
   edgeq-conv-kernel, whose custom dispatches IREE cannot benchmark alone; benchmarks/conv_kernel.py times
   those), timed whole.
3. Each dispatch of that module benchmarked alone: `iree-compile --iree-hal-dump-executable-benchmarks-to`, then
   `iree-benchmark-module`, times the number of times the model runs it (counted in its stream IR). A contraction
   (`matmul_like_MxNxK`) is one conv or linear layer, requantization fused; its layers are named by shape, in
   model order. A dispatch that embeds a constant cannot be benchmarked alone and is listed as such. Each one
   runs 20 times back to back (as in the model's command buffer, its operands warm in cache); medians and
   min-max over --repetitions.

Prints the per-dispatch table and writes JSON. docs/profiling.md reads the results.
"""
from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from edgeq import models
from edgeq.dialect_passes import CPU_PIPELINE
from edgeq.pipeline.compile import compile_input, compile_mlir, compile_model, iree_compile_tool
from edgeq.pipeline.latency import layer_inputs
from edgeq.quant import Plan, quantize, to_integer
from edgeq.targets.host import HostTarget
from edgeq.targets.base import parse_benchmark_json, runtime_tool

sys.path.insert(0, str(Path(__file__).parent))
from latency import THREADS, _time, write_report  # noqa: E402  (the same timing loop as the latency benchmark)

PEAK_SIZE = 1024
# Each dispatch benchmark runs the dispatch BATCH times back to back in one command buffer, as the model's own
# command buffer does, and reports the time per dispatch (with batch 1 the submission, ~50 us, would dominate).
BATCH = 20
_CONTRACTION = re.compile(r"(matmul|matvec)_like_(\d+(?:x\d+)*)_i8xi8xi32")


def _peak_ort(n: int, repetitions: int) -> list[float]:
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    b = numpy_helper.from_array(rng.integers(-128, 128, (n, n), dtype=np.int8), "b")
    graph = helper.make_graph([helper.make_node("MatMulInteger", ["a", "b"], ["y"])], "peak",
                              [helper.make_tensor_value_info("a", TensorProto.UINT8, [n, n])],
                              [helper.make_tensor_value_info("y", TensorProto.INT32, [n, n])], [b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = THREADS, 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    a = rng.integers(0, 256, (n, n), dtype=np.uint8)
    return _time(lambda: sess.run(None, {"a": a}), repetitions)


def _peak_iree(n: int, work: Path, repetitions: int) -> list[float]:
    t = f"tensor<{n}x{n}xi8>"
    (work / "peak.mlir").write_text(f"""
func.func @main(%a: {t}, %b: {t}) -> tensor<{n}x{n}xi32> {{
  %zero = arith.constant 0 : i32
  %e = tensor.empty() : tensor<{n}x{n}xi32>
  %acc = linalg.fill ins(%zero : i32) outs(%e : tensor<{n}x{n}xi32>) -> tensor<{n}x{n}xi32>
  %y = linalg.matmul ins(%a, %b : {t}, {t}) outs(%acc : tensor<{n}x{n}xi32>) -> tensor<{n}x{n}xi32>
  return %y : tensor<{n}x{n}xi32>
}}""")
    host = HostTarget(THREADS)
    vmfb, _ = compile_mlir(work / "peak.mlir", host.spec, work, passes=[], stem="peak")
    rng = np.random.default_rng(0)
    a, b = (rng.integers(-128, 128, (n, n), dtype=np.int8) for _ in range(2))
    return host.measure(vmfb, [a, b], repetitions).latencies_ms


def _macs(what: str) -> int:
    m = _CONTRACTION.search(what)
    return int(np.prod([int(d) for d in m.group(2).split("x")])) if m else 0


def dispatch_profile(module_dir: Path, flags: list[str], repetitions: int) -> list[dict]:
    """Every dispatch of module_dir's model.edgeq.mlir benchmarked alone: its times (us) and how often `main` runs
    it."""
    iree, src = iree_compile_tool(), module_dir / "model.edgeq.mlir"
    bench = module_dir / "dispatch-benchmarks"
    compile_input(src, flags, module_dir / "dumped.vmfb", (f"--iree-hal-dump-executable-benchmarks-to={bench}",))
    compile_input(src, flags, module_dir / "stream.mlir", ("--compile-to=stream",))   # which dispatches run, how often
    entries = re.findall(r"dispatch @(main\$async_dispatch_\d+)::@main\$async_dispatch_\d+_(\w+)",
                         (module_dir / "stream.mlir").read_text())
    runs = Counter(entries)
    rows = []
    for (name, what), count in sorted(runs.items(), key=lambda kv: int(kv[0][0].rsplit("_", 1)[1])):
        source = next(bench.glob(f"module_{name}_*_benchmark.mlir"))
        vmfb = bench / f"{name}.vmfb"
        row = {"dispatch": name.split("$async_")[1], "what": what, "runs": count, "macs": _macs(what)}
        proc = subprocess.run([iree, str(source), *flags, "-o", str(vmfb)], capture_output=True, text=True)
        if proc.returncode != 0:
            rows.append({**row, "times_us": None, "note": "embeds a constant: not measurable alone"})
            continue
        out = subprocess.run([runtime_tool("iree-benchmark-module"), f"--module={vmfb}", "--device=local-task",
                              f"--task_topology_group_count={THREADS}", f"--benchmark_repetitions={repetitions}",
                              f"--batch_size={BATCH}", "--benchmark_min_time=0.05", "--benchmark_format=json"],
                             capture_output=True, text=True, check=True).stdout
        rows.append({**row, "times_us": [t * 1e3 for t in parse_benchmark_json(out)]})
    return rows


def _name_layers(rows: list[dict], module, input_shape) -> None:
    """Name each contraction dispatch by the conv/linear layers it computes: same M (output channels), N (output
    pixels) and K (input channels x kernel), in model order."""
    import torch

    pending = []
    for name, (layer, shape) in layer_inputs(module, input_shape).items():
        if isinstance(layer, torch.nn.Linear):
            pending.append((name, layer.out_features * layer.in_features))
            continue
        out = layer(torch.zeros(shape)).shape
        pending.append((name, out[1] * out[2] * out[3] * layer.in_channels // layer.groups * np.prod(layer.kernel_size)))
    for row in rows:
        row["layers"] = []
        for _ in range(row["runs"] if row["macs"] else 0):
            match = next((p for p in pending if p[1] == row["macs"]), None)
            if match:
                pending.remove(match)
                row["layers"].append(match[0])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--bits", default="w8a8")
    parser.add_argument("--repetitions", type=int, default=20)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    m = models.load(args.model)
    x = m.calibration[:1]
    with tempfile.TemporaryDirectory(prefix="edgeq-profile-") as tmp:
        work = Path(tmp)
        peak = {"onnxruntime MatMulInteger (u8 x s8)": _peak_ort(PEAK_SIZE, args.repetitions),
                "iree linalg.matmul (s8 x s8), host flags": _peak_iree(PEAK_SIZE, work, args.repetitions)}
        peak_gmacs = {k: PEAK_SIZE ** 3 / statistics.median(t) / 1e6 for k, t in peak.items()}
        im = to_integer(quantize(m.module, Plan.uniform(args.bits), m.calibration), x)
        art = compile_model(im, x, "host", work / "model", args.model, passes=CPU_PIPELINE)
        whole = art.measure([im.quantize_input(x).numpy()], args.repetitions).latencies_ms
        rows = dispatch_profile(work / "model", art.manifest.flags, args.repetitions)
    _name_layers(rows, m.module, tuple(m.input_shape))

    best = max(peak_gmacs.values())
    whole_ms = statistics.median(whole)
    table = Table(title=f"{args.model} {args.bits} on host, {THREADS} threads: whole model {whole_ms:.2f} ms "
                        f"(median of {args.repetitions}); int8 peak {best:.0f} GMAC/s")
    for col in ("dispatch", "what", "runs", "median us", "min-max us", "total ms", "share", "GMAC/s", "of peak",
                "layers"):
        table.add_column(col)
    for row in rows:
        t = row["times_us"]
        if t is None:
            table.add_row(row["dispatch"], row["what"], str(row["runs"]), "-", "-", "-", "-", "-", "-", row["note"])
            continue
        med = statistics.median(t)
        row.update(median_us=med, total_ms=med * row["runs"] / 1e3, share=med * row["runs"] / 1e3 / whole_ms)
        macs = row["macs"]
        row["gmacs"] = macs / med / 1e3 if macs else None
        table.add_row(row["dispatch"], row["what"], str(row["runs"]), f"{med:.0f}", f"{min(t):.0f}-{max(t):.0f}",
                      f"{row['total_ms']:.2f}", f"{row['share']:.0%}",
                      f"{row['gmacs']:.0f}" if macs else "", f"{row['gmacs'] / best:.0%}" if macs else "",
                      ", ".join(row["layers"]))
    Console().print(table)
    kinds = Counter()
    for row in rows:
        if row["times_us"] is not None:
            kind = "contraction" if row["macs"] else row["what"].split("_")[0]
            kinds[kind] += row["total_ms"]
    summed = sum(kinds.values())
    Console().print(f"sum of dispatches {summed:.2f} ms of {whole_ms:.2f} ms whole; by kind: " +
                    ", ".join(f"{k} {v:.2f} ms" for k, v in kinds.most_common()))
    Console().print("int8 peak: " + ", ".join(f"{k} {v:.0f} GMAC/s" for k, v in peak_gmacs.items()))
    report = {"model": args.model, "bits": args.bits, "threads": THREADS, "repetitions": args.repetitions,
              "whole_model_ms": {"median": whole_ms, "min": min(whole), "max": max(whole)},
              "peak": {"size": PEAK_SIZE, "gmacs": peak_gmacs, "latencies_ms": peak},
              "by_kind_ms": dict(kinds), "dispatches": rows}
    return write_report(args.json, report)


if __name__ == "__main__":
    main()
