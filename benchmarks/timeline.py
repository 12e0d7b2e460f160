"""Where a call of edgeq's host module spends its time on the workers, dispatch by dispatch, in one run:

    python benchmarks/timeline.py --model resnet18 --json benchmarks/results/timeline_resnet18.json

The model is compiled as the latency benchmark compiles it (W8A8, the autotuner's flag set) and run by
`iree-benchmark-module` on THREADS pinned workers, with IREE's host-execution profile (`--device_profiling_mode=
host-execution`), which records when each call's execute and each dispatch start and end, and each dispatch's
worker time (the sum of its workgroups' times). A module with edgeq's kernels runs on local-sync with edgeq's
pool, as the host target runs it: IREE then sees each of edgeq's dispatches as one workgroup on the calling thread,
so its worker time is its span and the pool's helpers are not in the profile. Per dispatch, medians over the
calls:
- span: from its start to its end;
- worker time, and idle: THREADS x span - worker time, the time its workers spent waiting inside it (for one to
  wake, or for the last workgroup);
- gap: from the end of the dispatch before it to its start (negative where IREE runs it beside that one).
And per call: its time (from its first queue operation to the next call's); from its last queue allocation to
its first dispatch (the submission and the first worker's wake); the sums of the spans, gaps and idle times; from
the last dispatch's end to the queue's deallocation (on local-sync, its barrier); and the rest (the caller's wake,
the VM, the benchmark's loop). docs/profiling.md reads the results. The profile's own bookkeeping makes calls a
little slower than in the latency benchmark.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from edgeq import models
from edgeq.targets.base import runtime_tool, timing_lock
from edgeq.targets.host import tool_device, uses_pool

sys.path.insert(0, str(Path(__file__).parent))
from latency import THREADS, add_tune_argument, edgeq_module, write_report  # noqa: E402  (the latency benchmark's)


def profile(vmfb: Path, pooled: bool, x: np.ndarray, calls: int,
            work: Path) -> tuple[list[dict], dict[tuple[int, int], str]]:
    """The profile's host-execution events and the module's dispatches' names by (executable, function ordinal),
    from one iree-benchmark-module run of `calls` calls on THREADS threads, as the host target runs the module
    (pooled: uses_pool)."""
    np.save(work / "x.npy", x)
    bundle = work / "calls.ireeprof"
    device, env = tool_device(pooled, THREADS)
    with timing_lock("host"):
        subprocess.run([runtime_tool("iree-benchmark-module"), f"--module={vmfb}", *device,
                        "--function=main", f"--input=@{work / 'x.npy'}", f"--benchmark_min_time={calls}x",
                        "--device_profiling_mode=host-execution", f"--device_profiling_output={bundle}"],
                       # the module in huge pages, as the host target loads it (_module_in_huge_pages)
                       env={**os.environ, **env, "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"},
                       capture_output=True, text=True, check=True)

    def records(command: str, kind: str) -> list[dict]:
        text = subprocess.run([runtime_tool("iree-profile"), command, "--format=jsonl", str(bundle)],
                              capture_output=True, text=True, check=True).stdout
        return [r for line in text.splitlines() if (r := json.loads(line))["type"] == kind]

    names = {(r["executable_id"], r["function_ordinal"]): r["key"]
             for r in records("dispatch", "host_dispatch_group")}
    return records("queue", "host_execution_event"), names


def _calls(events: list[dict]) -> list[list[dict]]:
    """The events by call, in time order: a call's queue allocations, the execute of its command buffer and its
    dispatches, and the deallocation after them (on local-sync, a barrier)."""
    calls, current = [], []
    for e in sorted(events, key=lambda e: e["start_host_time_ns"]):
        current.append(e)
        if e["op"] in ("dealloca", "barrier") and any(c["op"] == "execute" for c in current):
            calls.append(current)
            current = []
    return calls


NO_COMMAND = 2 ** 32 - 1   # a local-sync event's command index: its command buffers are not recorded


def timeline(events: list[dict], names: dict[tuple[int, int], str],
             workers: int = THREADS) -> tuple[list[dict], dict, int]:
    """Per dispatch (by command index, or on local-sync by its place in the call) and per call, the medians the
    module docstring lists (the caller's share: what the other medians leave of the call's), and the number of
    calls: each but the last, which has no next call to end its period. `workers`: the threads that IREE runs a
    dispatch's workgroups on."""
    calls = _calls(events)
    rows: dict[int, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    keys: dict[int, str] = {}
    per_call: dict[str, list[float]] = defaultdict(list)
    for call, following in zip(calls, calls[1:]):
        queued = max(e["end_host_time_ns"] for e in call if e["op"] == "alloca")
        dispatches = [e for e in call if e["op"] == "dispatch"]
        end, sums = None, defaultdict(float)
        for place, e in enumerate(dispatches):
            command = place if e["command_index"] == NO_COMMAND else e["command_index"]
            keys[command] = names[(e["executable_id"], e["function_ordinal"])]
            span, worker = e["duration_ns"] / 1e3, e["tile_duration_sum_ns"] / 1e3
            gap = 0.0 if end is None else (e["start_host_time_ns"] - end) / 1e3
            for name, v in (("span_us", span), ("worker_us", worker), ("idle_us", workers * span - worker),
                            ("gap_us", gap)):
                rows[command][name].append(v)
                sums[name] += v
            end = max(end or 0, e["end_host_time_ns"])
        per_call["call_us"].append((following[0]["start_host_time_ns"] - call[0]["start_host_time_ns"]) / 1e3)
        per_call["queued_to_first_dispatch_us"].append((dispatches[0]["start_host_time_ns"] - queued) / 1e3)
        per_call["last_dispatch_to_dealloca_us"].append((call[-1]["end_host_time_ns"] - end) / 1e3)
        for name in ("span_us", "worker_us", "idle_us", "gap_us"):
            per_call[f"sum_{name}"].append(sums[name])
    medians = {k: statistics.median(v) for k, v in per_call.items()}
    medians["caller_us"] = medians["call_us"] - sum(medians[k] for k in (
        "queued_to_first_dispatch_us", "sum_span_us", "sum_gap_us", "last_dispatch_to_dealloca_us"))
    per_dispatch = [{"command": i, "key": keys[i], **{k: statistics.median(v) for k, v in rows[i].items()}}
                    for i in sorted(rows)]
    return per_dispatch, medians, len(per_call["call_us"])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--calls", type=int, default=200)
    add_tune_argument(parser)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    m = models.load(args.model)
    x = m.calibration[:1]
    with tempfile.TemporaryDirectory(prefix="edgeq-timeline-") as tmp:
        work = Path(tmp)
        im, art = edgeq_module(m, x, "w8a8", work, args.tune)
        pooled = uses_pool(art.vmfb)
        events, names = profile(art.vmfb, pooled, im.quantize_input(x).numpy(), args.calls, work)
    # on edgeq's pool, IREE runs each of its dispatches as one workgroup on the calling thread
    per_dispatch, per_call, n = timeline(events, names, 1 if pooled else THREADS)

    threads = f"{THREADS} threads, edgeq's pool" if pooled else f"{THREADS} workers"
    table = Table(title=f"{args.model}: one call of edgeq's host module on {threads}, medians of {n} calls")
    for col in ("command", "dispatch", "gap before µs", "span µs", "worker µs", "idle µs"):
        table.add_column(col, justify="left" if col == "dispatch" else "right")
    for r in per_dispatch:
        table.add_row(str(r["command"]), r["key"][:56], f"{r['gap_us']:.1f}", f"{r['span_us']:.1f}",
                      f"{r['worker_us']:.1f}", f"{r['idle_us']:.1f}")
    console = Console(width=120)
    console.print(table)
    console.print(f"A call, {per_call['call_us']:.0f} µs: queued to its first dispatch "
                  f"{per_call['queued_to_first_dispatch_us']:.1f}, the dispatches' spans {per_call['sum_span_us']:.0f} "
                  f"and the gaps between them {per_call['sum_gap_us']:.1f}, the last dispatch's end to the "
                  f"deallocation {per_call['last_dispatch_to_dealloca_us']:.1f}, the rest (the caller, its wake, "
                  f"the VM) {per_call['caller_us']:.0f}. Idle worker time inside the dispatches: "
                  f"{per_call['sum_idle_us']:.0f} µs of {per_call['sum_worker_us']:.0f}.")
    report = {"model": args.model, "threads": THREADS, "calls": n, "per_call": per_call, "dispatches": per_dispatch}
    return write_report(args.json, report)


if __name__ == "__main__":
    main()
