"""What this machine's slow spells do to edgeq's latency and to ONNX Runtime's, in one run:

    python benchmarks/spells.py --model resnet18 --minutes 8 --json benchmarks/results/spells_resnet18.json

This workplace's VM has two vCPUs, and they do not always run on neighbouring cores: in spells, the round trip of a
cache line between them (benchmarks/core_to_core.c) goes from about 100 ns to about 400. Probe after probe for
--minutes, each probe measures that round trip, then the medians of PROBE_CALLS calls of edgeq's host module on
two workers and on one, and of ORT int8 (the latency benchmark's QDQ model) on two threads. The table splits the
probes at SLOW_ROUND_TRIP_NS: per runtime, the median over the probes, and the median of edgeq's per-probe ratio to
ORT. The JSON has every probe. docs/profiling.md ("Stop 33") reads the results.

ORT int8 on one thread is timed too, so that each probe's ratio splits into its factors (docs/profiling.md, "Stop
38"): edgeq's time over ORT's on one thread each, times ORT's speedup from its second thread, over edgeq's from its
second worker. The table gives each factor's median per class.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from edgeq import models
from edgeq.errors import EdgeqError
from edgeq.targets.base import timing_lock
from edgeq.targets.host import HostTarget

sys.path.insert(0, str(Path(__file__).parent))
from latency import (SETTLE_S, THREADS, _ort_models, _ort_session, _time,  # noqa: E402
                     add_tune_argument, edgeq_module, write_report)   # the latency benchmark's modules and timing

PROBE_CALLS = 30
SLOW_ROUND_TRIP_NS = 200


def core_to_core(work: Path) -> Callable[[], float]:
    """A function that measures the round trip of a cache line between CPUs 0 and 1, in ns (core_to_core.c)."""
    exe = work / "core_to_core"
    subprocess.run([sys.executable, "-m", "ziglang", "cc", "-O2", "-pthread",
                    str(Path(__file__).with_name("core_to_core.c")), "-o", str(exe)], check=True)
    return lambda: float(subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--minutes", type=float, default=6.0)
    parser.add_argument("--json", type=Path, default=None)
    add_tune_argument(parser)
    args = parser.parse_args(argv)
    if len(os.sched_getaffinity(0)) < 2:
        raise EdgeqError("the spell probe times two vCPUs against each other, and this process may use only one",
                         "run it where it may use CPUs 0 and 1")

    torch.set_num_threads(THREADS)
    m = models.load(args.model)
    x = m.calibration[:1]
    with tempfile.TemporaryDirectory(prefix="edgeq-bench-") as tmp:
        work = Path(tmp)
        round_trip = core_to_core(work)
        im, art = edgeq_module(m, x, "w8a8", work, args.tune)
        x_i8 = [im.quantize_input(x).numpy()]
        ort_int8, feeds = _ort_models(m.module, x, m.calibration, work)[1], {"x": x.numpy()}
        runners = {"edgeq, 2 workers": HostTarget(2).runner(art.vmfb, x_i8),
                   "edgeq, 1 worker": HostTarget(1).runner(art.vmfb, x_i8),
                   "ort int8": _ort_session(ort_int8, feeds),
                   "ort int8, 1 thread": _ort_session(ort_int8, feeds, threads=1)}
        probes = []
        with timing_lock("host"):
            end = time.monotonic() + 60 * args.minutes
            while not probes or time.monotonic() < end:
                time.sleep(SETTLE_S)   # ORT's threads stop spinning: on the vCPUs, they would slow the round trip
                probe = {"round_trip_ns": round_trip()}
                for name, run in runners.items():
                    time.sleep(SETTLE_S)
                    probe[name] = statistics.median(_time(run, PROBE_CALLS))
                probes.append(probe)
    return _report(args, probes)


def _report(args, probes: list[dict]) -> dict:
    """The table (the probes at either side of SLOW_ROUND_TRIP_NS) and the JSON report."""
    table = Table(title=f"{args.model}: {len(probes)} probes in {args.minutes:g} minutes, medians over the probes "
                        f"of each probe's median of {PROBE_CALLS} calls, ms")
    names = [k for k in probes[0] if k != "round_trip_ns"]
    factors = {   # each probe's edgeq / ORT (two threads) = one_thread * ort_speedup / edgeq_speedup
        "one_thread": ("edgeq / ort, 1 thread each", lambda p: p["edgeq, 1 worker"] / p["ort int8, 1 thread"]),
        "ort_speedup": ("ort's 2nd thread: speedup", lambda p: p["ort int8, 1 thread"] / p["ort int8"]),
        "edgeq_speedup": ("edgeq's 2nd worker: speedup", lambda p: p["edgeq, 1 worker"] / p["edgeq, 2 workers"]),
        "edgeq_over_ort": ("edgeq (2 workers) / ort int8", lambda p: p["edgeq, 2 workers"] / p["ort int8"])}
    for col in ("round trip between the vCPUs", "probes", "median ns", *names, *(c for c, _ in factors.values())):
        table.add_column(col)
    classes = {}
    for label, inside in ((f"< {SLOW_ROUND_TRIP_NS} ns", lambda ns: ns < SLOW_ROUND_TRIP_NS),
                          (f">= {SLOW_ROUND_TRIP_NS} ns", lambda ns: ns >= SLOW_ROUND_TRIP_NS)):
        chosen = [p for p in probes if inside(p["round_trip_ns"])]
        if not chosen:
            continue
        summary = {"probes": len(chosen), "round_trip_ns": statistics.median(p["round_trip_ns"] for p in chosen),
                   **{n: statistics.median(p[n] for p in chosen) for n in names},
                   **{k: statistics.median(f(p) for p in chosen) for k, (_, f) in factors.items()}}
        classes[label] = summary
        table.add_row(label, str(len(chosen)), f"{summary['round_trip_ns']:.0f}", *(f"{summary[n]:.3f}" for n in names),
                      *(f"{summary[k]:.3f}" for k in factors))
    Console().print(table)
    report = {"model": args.model, "threads": THREADS, "minutes": args.minutes, "probe_calls": PROBE_CALLS,
              "slow_round_trip_ns": SLOW_ROUND_TRIP_NS, "classes": classes, "probes": probes}
    return write_report(args.json, report)


if __name__ == "__main__":
    main()
