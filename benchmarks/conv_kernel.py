"""Per layer, in one run: each dense int8 conv of a model compiled two ways for the host target, IREE's own code
(im2col + its s8 x s8 ukernel) and edgeq's AVX-512 VNNI kernel (edgeq-conv-kernel), against this machine's int8
peak as measured by benchmarks/vnni_peak.c on every core at once.

    python benchmarks/conv_kernel.py --model resnet18 --json benchmarks/results/conv_kernel_resnet18.json

Each conv is timed as the model runs it, but for the requantization: padded NCHW i8 in, i32 with its bias out
(edgeq's includes the pack of its input). The kernel's dispatch is also timed alone, on inputs already in its
layouts, as the pass runs it (stems unfolded); the table gives its best. A call runs the conv on CALLS different
inputs, so the per-call overhead (about 30 us) is spread; the ways are timed in the latency benchmark's interleaved
rounds.
Prints a table of medians (GMAC/s from the medians) and writes JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from edgeq import models
from edgeq.dialect_passes._registry import run_pipeline
from edgeq.dialect_passes.conv_kernel import EXECUTABLE, ConvShape, conv_export, kernel_executable
from edgeq.pipeline.compile import compile_input, iree_compile_tool
from edgeq.pipeline.latency import layer_inputs
from edgeq.targets.host import HostTarget, runs_edgeq_kernels

sys.path.insert(0, str(Path(__file__).parent))
from latency import THREADS, _interleaved  # noqa: E402  (the latency benchmark's interleaved rounds)

CALLS = 8


def vnni_peak(work: Path, cores: int) -> float:
    """GMAC/s of `cores` copies of vnni_peak.c running at once, summed."""
    exe = work / "vnni_peak"
    subprocess.run([sys.executable, "-m", "ziglang", "cc", "-target", "x86_64-linux-gnu", "-mcpu=x86_64_v4+avx512vnni",
                    "-O2", str(Path(__file__).with_name("vnni_peak.c")), "-o", str(exe)], check=True)
    procs = [subprocess.Popen([str(exe)], stdout=subprocess.PIPE, text=True) for _ in range(cores)]
    return sum(float(p.communicate()[0].split()[0]) for p in procs)


def _module(conv: ConvShape, pad: int) -> str:
    """util.func @main: the conv on CALLS inputs, constant weights and bias, as edgeq's integer models export it."""
    rng = np.random.default_rng(0)
    w = rng.integers(-128, 128, size=(conv.oc, conv.c, conv.kh, conv.kw), dtype=np.int8)
    h, wd = conv.hp - 2 * pad, conv.wp - 2 * pad
    x, out = f"1x{conv.c}x{h}x{wd}xi8", f"1x{conv.oc}x{conv.oh}x{conv.ow}xi32"
    body = [f"  %wf = arith.constant dense<[{', '.join(map(str, w.flatten()))}]> : tensor<{w.size}xi8>",
            f"  %w = tensor.expand_shape %wf [[0, 1, 2, 3]] output_shape [{conv.oc}, {conv.c}, {conv.kh}, {conv.kw}]"
            f" : tensor<{w.size}xi8> into tensor<{conv.oc}x{conv.c}x{conv.kh}x{conv.kw}xi8>",
            "  %z = arith.constant 0 : i8", "  %c0 = arith.constant 0 : i32",
            f"  %e = tensor.empty() : tensor<{out}>",
            f"  %b = linalg.fill ins(%c0 : i32) outs(%e : tensor<{out}>) -> tensor<{out}>"]
    for k in range(CALLS):
        body += [f"  %xp{k} = tensor.pad %x{k} low[0, 0, {pad}, {pad}] high[0, 0, {pad}, {pad}] {{",
                 "  ^bb0(%i: index, %j: index, %k: index, %l: index):", "    tensor.yield %z : i8",
                 f"  }} : tensor<{x}> to tensor<1x{conv.c}x{conv.hp}x{conv.wp}xi8>",
                 f"  %y{k} = linalg.conv_2d_nchw_fchw {{dilations = dense<{conv.dh}> : vector<2xi64>, "
                 f"strides = dense<{conv.sh}> : vector<2xi64>}} ins(%xp{k}, %w : "
                 f"tensor<1x{conv.c}x{conv.hp}x{conv.wp}xi8>, tensor<{conv.oc}x{conv.c}x{conv.kh}x{conv.kw}xi8>) "
                 f"outs(%b : tensor<{out}>) -> tensor<{out}>"]
    args = ", ".join(f"%x{k}: tensor<{x}>" for k in range(CALLS))
    results = ", ".join(f"%y{k}" for k in range(CALLS))
    types = ", ".join([f"tensor<{out}>"] * CALLS)
    return (f"util.func public @main({args}) -> ({types}) {{\n" + "\n".join(body) +
            f"\n  util.return {results} : {types}\n}}\n")


def _kernel_module(conv: ConvShape) -> str:
    """util.func @main: the kernel's dispatch alone on CALLS inputs already in its layouts (packed u8, packed
    weights, summed weights)."""
    t = conv.types()
    args = ", ".join([f"%x{k}: tensor<{t['xk']}>" for k in range(CALLS)] + [f"%w: tensor<{t['wk']}>",
                                                                            f"%b: tensor<{t['bk']}>"])
    body = [f"  %y{k} = flow.dispatch @{EXECUTABLE}::@{conv.name}(%x{k}, %w, %b) : (tensor<{t['xk']}>, "
            f"tensor<{t['wk']}>, tensor<{t['bk']}>) -> tensor<{t['out']}>" for k in range(CALLS)]
    types = ", ".join([f"tensor<{t['out']}>"] * CALLS)
    return (kernel_executable([conv_export(conv)]) + f"\nutil.func public @main({args}) -> ({types}) {{\n" +
            "\n".join(body) + f"\n  util.return {', '.join(f'%y{k}' for k in range(CALLS))} : {types}\n}}\n")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--repetitions", type=int, default=20)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if not runs_edgeq_kernels():
        sys.exit("edgeq's kernels need x86-64 with AVX-512 VNNI and VBMI; this CPU has not")
    import iree.runtime as rt

    m = models.load(args.model)
    layers: dict[ConvShape, list[str]] = {}
    pads: dict[ConvShape, int] = {}
    for name, (layer, shape) in layer_inputs(m.module, tuple(m.input_shape)).items():
        if getattr(layer, "groups", None) != 1:
            continue  # linear layers, depthwise convs
        (kh, kw), (sh, sw), (dh, dw), (ph, pw) = layer.kernel_size, layer.stride, layer.dilation, layer.padding
        hp, wp = shape[2] + 2 * ph, shape[3] + 2 * pw
        conv = ConvShape(shape[1], hp, wp, layer.out_channels, kh, kw, (hp - dh * (kh - 1) - 1) // sh + 1,
                         (wp - dw * (kw - 1) - 1) // sw + 1, sh, sw, dh, dw)
        layers.setdefault(conv, []).append(name)
        pads[conv] = ph
    host = HostTarget(THREADS)
    device = host.device()
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgeq-conv-kernel-") as tmp:
        work = Path(tmp)
        peak = vnni_peak(work, os.cpu_count() or 1)
        for k, (conv, names) in enumerate(layers.items()):
            (work / f"{k}.mlir").write_text(_module(conv, pads[conv]))
            subprocess.run([iree_compile_tool(), f"{k}.mlir", "--compile-to=input", "-o", f"{k}.input.mlir"],
                           cwd=work, check=True)
            text = (work / f"{k}.input.mlir").read_text()
            fns = {}
            for way, passes in (("iree", []), ("edgeq", ["edgeq-conv-kernel"])):
                source = work / f"{k}.{way}.mlir"
                source.write_text(run_pipeline(text, passes))
                compile_input(source, host.spec.compile_flags(), work / f"{k}.{way}.vmfb")
                fn = host.load(work / f"{k}.{way}.vmfb")
                rng = np.random.default_rng(k)
                inputs = [rt.asdevicearray(device, rng.integers(-128, 128, (1, conv.c, conv.hp - 2 * pads[conv],
                                                                           conv.wp - 2 * pads[conv]), dtype=np.int8))
                          for _ in range(CALLS)]
                fns[way] = (fn, inputs)
            (work / f"{k}.kernel.mlir").write_text(_kernel_module(conv.unfolded()))   # as the pass runs it
            compile_input(work / f"{k}.kernel.mlir", host.spec.compile_flags(), work / f"{k}.kernel.vmfb")
            fn = host.load(work / f"{k}.kernel.vmfb")
            t = conv.unfolded().types()
            shapes = [t["xk"]] * CALLS + [t["wk"], t["bk"]]
            fns["kernel alone"] = (fn, [rt.asdevicearray(device, np.zeros(
                [int(d) for d in s.split("x")[:-1]], np.int32 if s.endswith("i32") else np.int8)) for s in shapes])
            # a call returns when the module's work is done; its ms become us per conv
            ms = _interleaved({way: partial(fn, *inputs) for way, (fn, inputs) in fns.items()}, args.repetitions)
            times = {way: [t * 1e3 / CALLS for t in ts] for way, ts in ms.items()}
            med = {way: statistics.median(t) for way, t in times.items()}
            rows.append({"layers": names, "shape": conv.name, "macs": conv.macs, "times_us": times, "median_us": med,
                         "gmacs": {w: conv.macs / t / 1e3 for w, t in med.items()}})

    table = Table(title=f"{args.model}: dense int8 convs on host, {THREADS} threads; int8 peak {peak:.0f} GMAC/s "
                        f"(vnni_peak.c on {os.cpu_count()} cores)")
    for col in ("layers", "C x Hp x Wp, OC x KH x KW, stride", "MMAC", "IREE us", "edgeq us", "IREE / edgeq",
                "edgeq GMAC/s", "of peak", "kernel alone, best us", "kernel GMAC/s", "of peak"):
        table.add_column(col)
    for row in rows:
        med, g = row["median_us"], row["gmacs"]
        best = min(row["times_us"]["kernel alone"])
        table.add_row(", ".join(row["layers"]), row["shape"], f"{row['macs'] / 1e6:.0f}", f"{med['iree']:.0f}",
                      f"{med['edgeq']:.0f}", f"{med['iree'] / med['edgeq']:.2f}", f"{g['edgeq']:.0f}",
                      f"{g['edgeq'] / peak:.0%}", f"{best:.0f}", f"{row['macs'] / best / 1e3:.0f}",
                      f"{row['macs'] / best / 1e3 / peak:.0%}")
    # ms, each conv once per layer that has its shape; the kernel alone swings between its best and about twice
    # that (module docstring)
    total = {way: sum(r["median_us"][way] * len(r["layers"]) for r in rows) / 1e3
             for way in ("iree", "edgeq", "kernel alone")}
    total["kernel alone, best"] = sum(min(r["times_us"]["kernel alone"]) * len(r["layers"]) for r in rows) / 1e3
    macs = sum(r["macs"] * len(r["layers"]) for r in rows)
    Console().print(table)
    Console().print(f"all dense convs, each once per layer: IREE {total['iree']:.2f} ms, edgeq {total['edgeq']:.2f} ms "
                    f"({macs / total['edgeq'] / 1e6:.0f} GMAC/s, {macs / total['edgeq'] / 1e6 / peak:.0%} of peak); "
                    f"the kernel's dispatches alone {total['kernel alone, best']:.2f} ms (best of each)")
    report = {"model": args.model, "threads": THREADS, "calls_per_timing": CALLS, "peak_gmacs": peak,
              "total_ms": total, "macs": macs, "convs": rows}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
