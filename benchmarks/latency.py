"""Side-by-side latency of one model, batch 1, in one run: torch eager fp32, ONNX Runtime fp32 and int8
(static QDQ, per-channel), IREE fp32 with its best CPU flags, TFLite int8 (the same integer model exported by
edgeq.tflite, run by ai-edge-litert with XNNPACK), and edgeq int8 on the host target, with the flag set that the
autotuner finds fastest for the model (targets/tune.py; --no-tune: the default flags).

    python benchmarks/latency.py --model resnet18 --json results/latency.json [--repetitions 30]

For --model minilm-l6 (sequence length 128, a real sentence padded): torch eager fp32, ONNX Runtime fp32 and
int8 (dynamic quantization, the usual recipe for BERT: int8 weights, activations quantized per call), and edgeq's
integer-only MiniLM (W8A8, group-wise weights, integer softmax/LayerNorm/GELU) on the host target.

The runtimes are timed in ten interleaved rounds (this machine is shared: a slow spell then falls
on all of them). Prints a table of medians and min-max, and writes JSON with every latency and the ratios.
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from edgeq import models
from edgeq.pipeline.compile import compile_mlir, compile_model
from edgeq.quant import Plan, quantize, to_integer
from edgeq.targets.base import timing_lock
from edgeq.targets.host import HostTarget
from edgeq.tflite import TFLiteModel
from edgeq.tflite.export import to_tflite

THREADS = 2
ROUNDS = 10
SETTLE_S = 0.2


def _time(fn, repetitions: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repetitions):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def add_tune_argument(parser: argparse.ArgumentParser) -> None:
    """--tune/--no-tune, for this benchmark and those that time edgeq's module as it does (spells, timeline)."""
    parser.add_argument("--tune", action=argparse.BooleanOptionalAction, default=True,
                        help="compile edgeq's module with the autotuner's fastest flag set (cached)")


def edgeq_module(m: models.Model, x: torch.Tensor, bits: str, work: Path, tune: bool):
    """(integer model, artifact): the model quantized to `bits` on its calibration images and compiled for the host
    target, with the autotuner's flag set where `tune`: the module this benchmark times, and spells and timeline."""
    im = to_integer(quantize(m.module, Plan.uniform(bits), m.calibration), x)
    return im, compile_model(im, x, "host", work / "edgeq", m.name, tune=tune)


def _ort_models(model, x: torch.Tensor, cal: torch.Tensor, work: Path) -> tuple[Path, Path]:
    """The model as ONNX fp32, and quantized by ONNX Runtime's static QDQ recipe (per-channel) on `cal`: their
    paths in `work`."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    fp32_path, int8_path = work / "model.onnx", work / "model.int8.onnx"
    torch.onnx.export(model, (x,), str(fp32_path), input_names=["x"], output_names=["y"], dynamo=False, opset_version=17)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"x": c[None].numpy()} for c in cal])

        def get_next(self):
            return next(self.batches, None)

    quantize_static(str(fp32_path), str(int8_path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return fp32_path, int8_path


def _ort_session(path: Path, feeds: dict[str, np.ndarray], threads: int = THREADS) -> Callable[[], None]:
    """One call of the ONNX model at `path` on `feeds`, on `threads` intra-op threads."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return partial(sess.run, None, feeds)


def _ort(model, x: torch.Tensor, cal: torch.Tensor, work: Path) -> dict[str, Callable[[], None]]:
    paths, feeds = _ort_models(model, x, cal, work), {"x": x.numpy()}
    return {name: _ort_session(path, feeds) for name, path in zip(("ort fp32", "ort int8"), paths)}


def _iree_fp32(model, x: torch.Tensor, work: Path) -> Callable[[], None]:
    from iree.compiler.extras.fx_importer import FxImporter

    from edgeq.quant.fold import fold_batchnorms
    from edgeq.quant.graph import trace

    folded = fold_batchnorms(trace(copy.deepcopy(model)))  # IREE's importer has no inference-mode batch norm
    for mod in folded.modules():
        if hasattr(mod, "inplace"):
            mod.inplace = False
    importer = FxImporter()
    importer.import_frozen_program(torch.export.export(folded, (x,)).run_decompositions(), func_name="main")
    (work / "fp32.torch.mlir").write_text(str(importer.module))
    host = HostTarget(THREADS)
    vmfb, _ = compile_mlir(work / "fp32.torch.mlir", host.spec, work, passes=[], stem="fp32")
    return host.runner(vmfb, [x.numpy()])


def _minilm(args, work: Path) -> tuple[dict[str, list[float]], tuple[int, ...], dict | None]:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from edgeq.models import sentence_pairs
    from edgeq.models.minilm import SEQ_LEN, Tokenizer, minilm_l6
    from edgeq.pipeline.compile import compile_bert
    from edgeq.quant.transformer import quantize_bert

    model, tok = minilm_l6(), Tokenizer()
    calib = sentence_pairs.calibration()
    ids, mask = tok([calib[0]["a"]], SEQ_LEN)

    def torch_eager():
        with torch.no_grad():
            model(ids, mask)

    runners = {"torch eager fp32": torch_eager}
    fp32_path, int8_path = work / "minilm.onnx", work / "minilm.int8.onnx"
    torch.onnx.export(model, (ids, mask), str(fp32_path), input_names=["ids", "mask"], output_names=["y"],
                      dynamo=False, opset_version=17)
    quantize_dynamic(str(fp32_path), str(int8_path), weight_type=QuantType.QInt8)
    feeds = {"ids": ids.numpy(), "mask": mask.numpy()}
    for name, path in (("ort fp32", fp32_path), ("ort int8", int8_path)):
        runners[name] = _ort_session(path, feeds)
    q = quantize_bert(model, Plan.uniform(args.bits), [tok([p["a"] for p in calib[i:i + 32]]) for i in (0, 32)])
    art = compile_bert(q, "host", work / "edgeq", SEQ_LEN, tune=args.tune)
    runners[f"edgeq {args.bits} (host)"] = HostTarget(THREADS).runner(art.vmfb, [ids.int().numpy(), mask.int().numpy()])
    with timing_lock("host"):
        results = _interleaved(runners, args.repetitions)
    return results, tuple(ids.shape), art.manifest.tuning


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--bits", default="w8a8")
    parser.add_argument("--repetitions", type=int, default=30)
    parser.add_argument("--json", type=Path, default=None)
    add_tune_argument(parser)
    args = parser.parse_args(argv)

    torch.set_num_threads(THREADS)
    if args.model == "minilm-l6":
        with tempfile.TemporaryDirectory(prefix="edgeq-bench-") as tmp:
            return _report(args, *_minilm(args, Path(tmp)))
    m = models.load(args.model)
    x = m.calibration[:1]
    with tempfile.TemporaryDirectory(prefix="edgeq-bench-") as tmp:
        work = Path(tmp)

        def torch_eager():
            with torch.no_grad():
                m.module(x)

        runners = {"torch eager fp32": torch_eager, **_ort(m.module, x, m.calibration, work),
                   "iree fp32 (best flags)": _iree_fp32(m.module, x, work)}
        im, art = edgeq_module(m, x, args.bits, work, args.tune)
        x_i8 = im.quantize_input(x)
        tflite = to_tflite(im, x, m.calibration, work / "model.tflite")
        tfl, x_nhwc = TFLiteModel(tflite, THREADS), [x_i8.permute(0, 2, 3, 1).numpy()]
        runners["tflite int8 (litert)"] = lambda: tfl.run(x_nhwc)
        runners[f"edgeq {args.bits} (host)"] = HostTarget(THREADS).runner(art.vmfb, [x_i8.numpy()])
        with timing_lock("host"):
            results = _interleaved(runners, args.repetitions)
    return _report(args, results, tuple(m.input_shape), art.manifest.tuning)


def write_report(path: Path | None, report: dict) -> dict:
    """The report, written as JSON to `path` where one is given (the benchmarks' --json)."""
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")
    return report


def _interleaved(runners: dict[str, Callable[[], None]], repetitions: int) -> dict[str, list[float]]:
    """Each runtime timed in ROUNDS rounds that take turns, so that a slow spell of this shared machine falls on
    all of them rather than on whichever ran then. The spells last from a fraction of a second to minutes: with 3
    rounds of 10 calls, all of edgeq's first round once ran at its one-worker speed (4.1-4.7 ms against 2.4-3.6
    after) while ORT's round beside it did not (docs/profiling.md, stop 36)."""
    for run in runners.values():
        _time(run, 0)   # warm-up
    out: dict[str, list[float]] = {name: [] for name in runners}
    rounds = min(ROUNDS, repetitions)
    for k in range(rounds):
        n = repetitions // rounds + (k < repetitions % rounds)
        for name, run in runners.items():
            time.sleep(SETTLE_S)   # the last runtime's worker threads stop spinning
            out[name] += _time(run, n, warmup=1)   # one call wakes its threads
    return out


def _report(args, results: dict[str, list[float]], input_shape: tuple[int, ...], tuning: dict) -> dict:
    """The table (medians, min-max, edgeq's ratio to each runtime) and the JSON report."""
    edgeq_ms = statistics.median(results[f"edgeq {args.bits} (host)"])
    flags = f"flag set {tuning['winner']}" if tuning else "default flags"
    table = Table(title=f"{args.model}, batch 1, input {input_shape}, {THREADS} threads, "
                        f"{args.repetitions} repetitions; edgeq with its {flags}")
    for col in ("runtime", "median ms", "min-max ms", "edgeq / this"):
        table.add_column(col)
    summary = {}
    for name, t in results.items():
        med = statistics.median(t)
        summary[name] = {"median_ms": med, "min_ms": min(t), "max_ms": max(t), "latencies_ms": t,
                         "edgeq_over_this": edgeq_ms / med}
        table.add_row(name, f"{med:.2f}", f"{min(t):.2f}-{max(t):.2f}", f"{edgeq_ms / med:.2f}")
    Console().print(table)
    ratio_of = {"ort_int8": "ort int8", "tflite_int8": "tflite int8 (litert)", "iree_fp32": "iree fp32 (best flags)",
                "ort_fp32": "ort fp32", "torch_fp32": "torch eager fp32"}
    report = {"model": args.model, "bits": args.bits, "threads": THREADS, "batch": 1,
              "input_shape": list(input_shape), "repetitions": args.repetitions, "edgeq_tuning": tuning,
              "results": summary,
              "ratios": {f"edgeq_int8/{k}": edgeq_ms / summary[v]["median_ms"] for k, v in ratio_of.items()
                         if v in summary}}
    return write_report(args.json, report)


if __name__ == "__main__":
    main()
