"""Per layer, in one run: each dense int8 conv of a model compiled two ways for the host target, IREE's own code
(im2col + its s8 x s8 ukernel) and edgeq's AVX-512 VNNI kernel (edgeq-conv-kernel), against this machine's int8
peak as measured by benchmarks/vnni_peak.c on every core at once.

    python benchmarks/conv_kernel.py --model resnet18 --json benchmarks/results/conv_kernel_resnet18.json

Each conv is timed as the model runs it, but for the requantization: padded NCHW i8 in, i32 with its bias out
(edgeq's includes the pack of its input). The kernel's dispatch is also timed alone, on inputs already in its
layouts, as the pass runs it (stems unfolded); the table gives its best. And the conv is timed with its
requantization to i8, as the model runs it: that picks the kernel (the Winograd one for the 3x3 stride-1 convs it
fits, whose GMAC/s count a direct conv's MACs, so they can pass the peak; the patch one for the stem; the rows one,
output channels in the lanes, where ConvShape.rows_kernel says; else the grid). A call runs the conv on CALLS different
inputs, so the per-call overhead (about 30 us) is spread; the ways are timed in the latency benchmark's interleaved
rounds.
Prints a table of medians (GMAC/s from the medians) and writes JSON.
"""
from __future__ import annotations

import argparse
import os
import re
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
from edgeq.dialect_passes.conv_kernel import (CONV_PATCH, CONV_ROWS, EXECUTABLE, WINOGRAD, ConvShape, conv_export,
                                              kernel_executable)
from edgeq.pipeline.compile import compile_input, iree_compile_tool
from edgeq.pipeline.latency import layer_inputs
from edgeq.targets.host import HostTarget, runs_edgeq_kernels, uses_pool

sys.path.insert(0, str(Path(__file__).parent))
from latency import THREADS, _interleaved, write_report  # noqa: E402  (the latency benchmark's interleaved rounds)

CALLS = 8


def vnni_peak(work: Path, cores: int) -> float:
    """GMAC/s of `cores` copies of vnni_peak.c running at once, summed."""
    exe = work / "vnni_peak"
    subprocess.run([sys.executable, "-m", "ziglang", "cc", "-target", "x86_64-linux-gnu", "-mcpu=x86_64_v4+avx512vnni",
                    "-O2", str(Path(__file__).with_name("vnni_peak.c")), "-o", str(exe)], check=True)
    procs = [subprocess.Popen([str(exe)], stdout=subprocess.PIPE, text=True) for _ in range(cores)]
    return sum(float(p.communicate()[0].split()[0]) for p in procs)


def _module(conv: ConvShape, pad: int, requantized: bool = False) -> str:
    """util.func @main: the conv on CALLS inputs, constant weights and bias, as edgeq's integer models export it;
    `requantized`: with the bias broadcast and the requantization to i8 after it, as the models run it (which
    picks the kernel: the Winograd, grid or rows one)."""
    rng = np.random.default_rng(0)
    w = rng.integers(-128, 128, size=(conv.oc, conv.c, conv.kh, conv.kw), dtype=np.int8)
    h, wd = conv.hp - 2 * pad, conv.wp - 2 * pad
    x, out = f"1x{conv.c}x{h}x{wd}xi8", f"1x{conv.oc}x{conv.oh}x{conv.ow}xi32"
    y = out.replace("xi32", "xi8") if requantized else out
    body = [f"  %wf = arith.constant dense<[{', '.join(map(str, w.flatten()))}]> : tensor<{w.size}xi8>",
            f"  %w = tensor.expand_shape %wf [[0, 1, 2, 3]] output_shape [{conv.oc}, {conv.c}, {conv.kh}, {conv.kw}]"
            f" : tensor<{w.size}xi8> into tensor<{conv.oc}x{conv.c}x{conv.kh}x{conv.kw}xi8>",
            "  %z = arith.constant 0 : i8", "  %c0 = arith.constant 0 : i32",
            f"  %e = tensor.empty() : tensor<{out}>"]
    if requantized:
        bias = ", ".join(map(str, rng.integers(-(1 << 16), 1 << 16, size=conv.oc)))
        mult = ", ".join(map(str, rng.integers(1 << 29, 1 << 30, size=conv.oc)))
        body += [f"  %bv = arith.constant dense<[{bias}]> : tensor<{conv.oc}xi32>",
                 f"  %b = linalg.broadcast ins(%bv : tensor<{conv.oc}xi32>) outs(%e : tensor<{out}>) dimensions = [0, 2, 3]",
                 f"  %mv = arith.constant dense<[{mult}]> : tensor<{conv.oc}xi32>",
                 f"  %m = tensor.expand_shape %mv [[0, 1, 2]] output_shape [{conv.oc}, 1, 1] : tensor<{conv.oc}xi32> "
                 f"into tensor<{conv.oc}x1x1xi32>", f"  %qe = tensor.empty() : tensor<{y}>"]
    else:
        body.append(f"  %b = linalg.fill ins(%c0 : i32) outs(%e : tensor<{out}>) -> tensor<{out}>")
    for k in range(CALLS):
        body += [f"  %xp{k} = tensor.pad %x{k} low[0, 0, {pad}, {pad}] high[0, 0, {pad}, {pad}] {{",
                 "  ^bb0(%i: index, %j: index, %k: index, %l: index):", "    tensor.yield %z : i8",
                 f"  }} : tensor<{x}> to tensor<1x{conv.c}x{conv.hp}x{conv.wp}xi8>",
                 f"  %{'s' if requantized else 'y'}{k} = linalg.conv_2d_nchw_fchw {{dilations = dense<{conv.dh}> : "
                 f"vector<2xi64>, "
                 f"strides = dense<{conv.sh}> : vector<2xi64>}} ins(%xp{k}, %w : "
                 f"tensor<1x{conv.c}x{conv.hp}x{conv.wp}xi8>, tensor<{conv.oc}x{conv.c}x{conv.kh}x{conv.kw}xi8>) "
                 f"outs(%b : tensor<{out}>) -> tensor<{out}>"]
        if requantized:
            body += _requantization(k, out, y, conv.oc)
    args = ", ".join(f"%x{k}: tensor<{x}>" for k in range(CALLS))
    results = ", ".join(f"%y{k}" for k in range(CALLS))
    types = ", ".join([f"tensor<{y}>"] * CALLS)
    return (f"util.func public @main({args}) -> ({types}) {{\n" + "\n".join(body) +
            f"\n  util.return {results} : {types}\n}}\n")


def _requantization(k: int, out: str, y: str, oc: int) -> list[str]:
    """edgeq's requantization of %s{k} to %y{k}, as edgeq-lower-requant writes it (shift 40, ReLU into u8)."""
    return [f"  %y{k} = linalg.generic {{indexing_maps = [affine_map<(n, c, h, w) -> (n, c, h, w)>, "
            "affine_map<(n, c, h, w) -> (c, 0, 0)>, affine_map<(n, c, h, w) -> (n, c, h, w)>], iterator_types = "
            f'["parallel", "parallel", "parallel", "parallel"]}} ins(%s{k}, %m : tensor<{out}>, '
            f"tensor<{oc}x1x1xi32>) outs(%qe : tensor<{y}>) {{",
            "  ^bb0(%a: i32, %mm: i32, %o: i8):", "    %a64 = arith.extsi %a : i32 to i64",
            "    %m64 = arith.extsi %mm : i32 to i64", "    %p = arith.muli %a64, %m64 : i64",
            f"    %round = arith.constant {1 << 39} : i64", "    %r = arith.addi %p, %round : i64",
            "    %shift = arith.constant 40 : i64", "    %t = arith.shrsi %r, %shift : i64",
            "    %lo = arith.constant 0 : i64", "    %c1 = arith.maxsi %t, %lo : i64",
            "    %hi = arith.constant 255 : i64", "    %c2 = arith.minsi %c1, %hi : i64",
            "    %n32 = arith.trunci %c2 : i64 to i32", "    %zp = arith.constant -128 : i32",
            "    %sum = arith.addi %n32, %zp : i32", "    %n8 = arith.trunci %sum : i32 to i8",
            "    linalg.yield %n8 : i8", f"  }} -> tensor<{y}>"]


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


REQUANTIZED = "edgeq requantized"   # the way that times the conv as the models run it
CONV_FUNCTIONS = {"winograd": WINOGRAD, "patch": CONV_PATCH, "rows": CONV_ROWS}   # edgeq's kernels, by their C names


def _kernel_name(after: str) -> str:
    """Which of edgeq's kernels the pass gave a requantized conv: its C function, or one of its entries with a
    suffix (the Winograd kernel's _claimed)."""
    for name in ("winograd", "patch", "rows"):
        if re.search(rf"@{CONV_FUNCTIONS[name]}(_\w+)?\(", after):
            return name
    return "grid"


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
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgeq-conv-kernel-") as tmp:
        work = Path(tmp)
        peak = vnni_peak(work, os.cpu_count() or 1)
        for k, (conv, names) in enumerate(layers.items()):
            (work / f"{k}.mlir").write_text(_module(conv, pads[conv]))
            subprocess.run([iree_compile_tool(), f"{k}.mlir", "--compile-to=input", "-o", f"{k}.input.mlir"],
                           cwd=work, check=True)
            text = (work / f"{k}.input.mlir").read_text()
            (work / f"{k}.rq.mlir").write_text(_module(conv, pads[conv], requantized=True))
            subprocess.run([iree_compile_tool(), f"{k}.rq.mlir", "--compile-to=input", "-o", f"{k}.rq.input.mlir"],
                           cwd=work, check=True)
            fns, kernel = {}, ""
            for way, passes, module in (("iree", [], text), ("edgeq", ["edgeq-conv-kernel"], text),
                                        (REQUANTIZED, ["edgeq-conv-kernel"],
                                         (work / f"{k}.rq.input.mlir").read_text())):
                source = work / f"{k}.{way.split()[0]}{'.rq' if way == REQUANTIZED else ''}.mlir"
                lowered = run_pipeline(module, passes)
                source.write_text(lowered)
                if way == REQUANTIZED:
                    kernel = _kernel_name(lowered)
                vmfb = source.with_suffix(".vmfb")
                compile_input(source, host.spec.compile_flags(), vmfb)
                fn, device = host.load(vmfb), host.device(uses_pool(vmfb))
                rng = np.random.default_rng(k)
                inputs = [rt.asdevicearray(device, rng.integers(-128, 128, (1, conv.c, conv.hp - 2 * pads[conv],
                                                                           conv.wp - 2 * pads[conv]), dtype=np.int8))
                          for _ in range(CALLS)]
                fns[way] = (fn, inputs)
            (work / f"{k}.kernel.mlir").write_text(_kernel_module(conv.unfolded()))   # as the pass runs it
            vmfb = work / f"{k}.kernel.vmfb"
            compile_input(work / f"{k}.kernel.mlir", host.spec.compile_flags(), vmfb)
            fn, device = host.load(vmfb), host.device(uses_pool(vmfb))
            t = conv.unfolded().types()
            shapes = [t["xk"]] * CALLS + [t["wk"], t["bk"]]
            fns["kernel alone"] = (fn, [rt.asdevicearray(device, np.zeros(
                [int(d) for d in s.split("x")[:-1]], np.int32 if s.endswith("i32") else np.int8)) for s in shapes])
            # a call returns when the module's work is done; its ms become us per conv
            ms = _interleaved({way: partial(fn, *inputs) for way, (fn, inputs) in fns.items()}, args.repetitions)
            times = {way: [t * 1e3 / CALLS for t in ts] for way, ts in ms.items()}
            med = {way: statistics.median(t) for way, t in times.items()}
            rows.append({"layers": names, "shape": conv.name, "macs": conv.macs, "kernel": kernel, "times_us": times,
                         "median_us": med, "gmacs": {w: conv.macs / t / 1e3 for w, t in med.items()}})

    table = Table(title=f"{args.model}: dense int8 convs on host, {THREADS} threads; int8 peak {peak:.0f} GMAC/s "
                        f"(vnni_peak.c on {os.cpu_count()} cores)")
    for col in ("layers", "C x Hp x Wp, OC x KH x KW, stride", "MMAC", "IREE us", "edgeq us", "IREE / edgeq",
                "edgeq GMAC/s", "of peak", "kernel alone, best us", "kernel GMAC/s", "of peak",
                "requantized us (kernel)", "GMAC/s", "of peak"):
        table.add_column(col)
    for row in rows:
        med, g = row["median_us"], row["gmacs"]
        best = min(row["times_us"]["kernel alone"])
        table.add_row(", ".join(row["layers"]), row["shape"], f"{row['macs'] / 1e6:.0f}", f"{med['iree']:.0f}",
                      f"{med['edgeq']:.0f}", f"{med['iree'] / med['edgeq']:.2f}", f"{g['edgeq']:.0f}",
                      f"{g['edgeq'] / peak:.0%}", f"{best:.0f}", f"{row['macs'] / best / 1e3:.0f}",
                      f"{row['macs'] / best / 1e3 / peak:.0%}", f"{med[REQUANTIZED]:.0f} ({row['kernel']})",
                      f"{g[REQUANTIZED]:.0f}", f"{g[REQUANTIZED] / peak:.0%}")
    # ms, each conv once per layer that has its shape; the kernel alone swings between its best and about twice
    # that (module docstring)
    total = {way: sum(r["median_us"][way] * len(r["layers"]) for r in rows) / 1e3
             for way in ("iree", "edgeq", "kernel alone", REQUANTIZED)}
    total["kernel alone, best"] = sum(min(r["times_us"]["kernel alone"]) * len(r["layers"]) for r in rows) / 1e3
    macs = sum(r["macs"] * len(r["layers"]) for r in rows)
    Console().print(table)
    Console().print(f"all dense convs, each once per layer: IREE {total['iree']:.2f} ms, edgeq {total['edgeq']:.2f} ms "
                    f"({macs / total['edgeq'] / 1e6:.0f} GMAC/s, {macs / total['edgeq'] / 1e6 / peak:.0%} of peak); "
                    f"the kernel's dispatches alone {total['kernel alone, best']:.2f} ms (best of each); requantized, "
                    f"as the model runs them, {total[REQUANTIZED]:.2f} ms ({macs / total[REQUANTIZED] / 1e6:.0f} GMAC/s "
                    "of a direct conv's MACs)")
    report = {"model": args.model, "threads": THREADS, "calls_per_timing": CALLS, "peak_gmacs": peak,
              "total_ms": total, "macs": macs, "convs": rows}
    return write_report(args.json, report)


if __name__ == "__main__":
    main()
