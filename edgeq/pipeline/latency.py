"""Per-layer latency tables measured on the target: each layer compiled alone by edgeq's own pipeline and timed.

A layer's module is the layer as the network runs it: its input quantized to a bits, the conv or linear with
w-bit weights and int32 bias, then ReLU and requantization to the next layer's input. Layers of the same shape
share one entry. Entries are cached by (layer shape, bits, toolchain: target flags, passes, versions): a
killed run resumes where it stopped (compiled modules are kept too), and a corrupt entry is measured again.
Compiles run in parallel (a process pool or Ray); measurements start when every compile is done and run one
at a time, so nothing shares the device.
"""
from __future__ import annotations

import copy
import hashlib
import json
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgeq._cache import cache_dir, write_atomic
from edgeq.allocate.ilp import LatencyTable
from edgeq.errors import EdgeqError
from edgeq.pipeline.executor import check as check_executor
from edgeq.pipeline.executor import run_all
from edgeq.quant.plan import LayerSpec, Plan
from edgeq.targets import Measurement, get


class _Alone(nn.Module):
    """One layer, then ReLU; flatten keeps the requantized activation from being the (int32) model output."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        return torch.flatten(torch.relu(self.layer(x)), 1)


@dataclass(frozen=True)
class _Job:
    key: str
    layer: nn.Module
    input_shape: tuple[int, ...]      # batch 1
    spec: LayerSpec
    target: str


def layer_inputs(module: nn.Module, input_shape: tuple[int, ...]) -> dict[str, tuple[nn.Module, tuple[int, ...]]]:
    """Each conv/linear layer of the BN-folded model, with the shape of its input at batch 1, in graph order."""
    from edgeq.sensitivity._objective import folded, weighted_layers

    gm = folded(module)
    shapes: dict[str, tuple[int, ...]] = {}

    def record(name):
        def hook(_module, args):
            shapes[name] = (1, *args[0].shape[1:])
        return hook

    handles = [gm.get_submodule(n).register_forward_pre_hook(record(n)) for n in weighted_layers(gm)]
    try:
        with torch.no_grad():
            gm(torch.zeros((1, *input_shape[1:])))
    finally:
        for h in handles:
            h.remove()
    return {n: (gm.get_submodule(n), shapes[n]) for n in weighted_layers(gm)}


def _key(layer: nn.Module, input_shape, spec: LayerSpec, target: str) -> str:
    from edgeq.pipeline.compile import toolchain

    desc = {"layer": repr(layer), "weight": list(layer.weight.shape), "bias": layer.bias is not None,
            "input": list(input_shape), "bits": spec.tag, **toolchain(target)}
    return hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()[:24]


def _compile(job: _Job) -> dict[str, bytes]:
    """Quantize the layer alone and compile it; the module's files, by value (runs in a worker)."""
    from edgeq.pipeline.compile import compile_model
    from edgeq.quant import quantize, to_integer

    torch.manual_seed(0)
    calibration = torch.randn((8, *job.input_shape[1:]), generator=torch.Generator().manual_seed(0))
    integer = to_integer(quantize(_Alone(job.layer), Plan(job.spec), calibration), calibration[:1])
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        compile_model(integer, calibration[:1], job.target, out, f"layer {job.spec.tag}", Plan(job.spec).to_json())
        np.save(out / "input.npy", integer.quantize_input(calibration[:1]).numpy())
        return {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()}


def _compiled(out_dir: Path) -> bool:
    from edgeq.pipeline.compile import Artifact

    try:
        Artifact.load(out_dir)
        return (out_dir / "input.npy").is_file()
    except EdgeqError:
        return False


def _store(files: dict[str, bytes], out_dir: Path) -> None:
    """Write a compiled module's files and move them into place in one step: never half a module in the cache."""
    tmp = out_dir.with_suffix(".part")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, data in files.items():
        (tmp / name).write_bytes(data)
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)


def _read(path: Path) -> Measurement | None:
    try:
        data = json.loads(path.read_text())
        m = Measurement(data["target"], [float(t) for t in data["latencies_ms"]], data.get("note", ""))
        return m if m.latencies_ms else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def layer_latency_table(module: nn.Module, input_shape: tuple[int, ...], target: str, specs: list[LayerSpec], *,
                        repetitions: int = 20, jobs: int = 2, executor: str = "local",
                        progress: Callable[[int, int], None] | None = None,
                        work: Counter | None = None) -> LatencyTable:
    """Median ms per layer and bit-width, with each entry's spread.

    Compiles run on `executor` (see pipeline.executor), then each module is timed on the target, one at a
    time. `work` counts what this call did: entries "cached" / "measured", modules "compiled".
    A script calling this with jobs > 1 needs the `if __name__ == "__main__":` guard of spawned workers."""
    from edgeq.pipeline.compile import Artifact

    device = get(target)
    device.check_available()
    check_executor(executor)
    work = Counter() if work is None else work
    root = cache_dir("latency")
    layers = layer_inputs(module, input_shape)
    keys: dict[tuple[str, str], str] = {}
    pending: dict[str, _Job] = {}
    results: dict[str, Measurement] = {}
    for name, (layer, shape) in layers.items():
        for spec in specs:
            key = keys[(name, spec.tag)] = _key(layer, shape, spec, target)
            cached = None if device.simulated else _read(root / f"{key}.json")   # a simulation is redone
            if cached is not None:
                results[key] = cached
            elif key not in pending:
                pending[key] = _Job(key, copy.deepcopy(layer), shape, spec, target)
    work["cached"] += len(results)
    total = 2 * len(pending)   # one step to compile, one to measure
    if progress:
        progress(0, total)
    to_compile = [job for job in pending.values() if not _compiled(root / job.key)]   # kept from a stopped run
    done = len(pending) - len(to_compile)
    for job, files in run_all(_compile, to_compile, executor=executor, jobs=jobs):
        _store(files, root / job.key)
        work["compiled"] += 1
        done += 1
        if progress:
            progress(done, total)
    for key in pending:   # every compile finished: nothing else runs on the machine while timing
        m = Artifact.load(root / key).measure([np.load(root / key / "input.npy")], repetitions)
        write_atomic(root / f"{key}.json", json.dumps(m.to_json()))
        results[key] = m
        work["measured"] += 1
        done += 1
        if progress:
            progress(done, total)

    def entry(name: str, spec: LayerSpec) -> Measurement:
        return results[keys[(name, spec.tag)]]

    return LatencyTable(target, {n: {s.tag: entry(n, s).median_ms for s in specs} for n in layers},
                        {n: {s.tag: {"min_ms": min(entry(n, s).latencies_ms), "max_ms": max(entry(n, s).latencies_ms),
                                     "n": len(entry(n, s).latencies_ms)} for s in specs} for n in layers})
