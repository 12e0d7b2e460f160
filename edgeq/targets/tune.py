"""Target flags as a search space: compile one module with each of a few IREE flag sets, check they agree, time
them on the target in interleaved rounds, keep the fastest.

Which flags win depends on the model (im2col pays for 3x3 convs, not for depthwise ones) and on the CPU, so it is
measured, not guessed. The winner is cached under the module's bytes, the target and the tool versions: a model
is tuned once per machine, and a killed tuning run starts again from nothing it trusted.
"""
from __future__ import annotations

import json
import statistics
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from edgeq._cache import cache_dir, content_key, write_atomic
from edgeq.errors import EdgeqError
from edgeq.targets.base import Target, timing_lock
from edgeq.targets.host import CPU_VARIANTS


@dataclass
class Tuning:
    """The flag set that won, and what every candidate measured (median ms, or why it was dropped)."""

    winner: str
    flags: tuple[str, ...]
    median_ms: dict[str, float]
    dropped: dict[str, str] = field(default_factory=dict)
    cached: bool = False

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "cached"}


def variants_for(target: Target) -> dict[str, tuple[str, ...]]:
    """The flag sets worth trying on a target; refuses targets whose times would mislead the choice."""
    if target.simulated or target.emulated:
        how = "simulated from a cost model" if target.simulated else "emulated (qemu)"
        raise EdgeqError(f"cannot tune {target.spec.name}: its times here are {how}, not the device's",
                         "tune on the device itself, or compile without --tune (the default flags)")
    if target.spec.device != "local":
        raise EdgeqError(f"no flag variants are defined for {target.spec.name} ({target.spec.device})",
                         "compile without --tune; the tuner covers the llvm-cpu targets")
    return CPU_VARIANTS


def _cached(path: Path, variants: dict) -> Tuning | None:
    """A cache entry, or None when it is missing, corrupt or names a flag set no longer offered."""
    try:
        data = json.loads(path.read_text())
        tuning = Tuning(data["winner"], tuple(data["flags"]), dict(data["median_ms"]), dict(data["dropped"]), True)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return tuning if variants.get(tuning.winner) == tuning.flags else None


def tune(source: Path, target: Target, inputs: list[np.ndarray], n_outputs: int = 1, repetitions: int = 10,
         rounds: int = 3, use_cache: bool = True) -> Tuning:
    """The fastest of the target's flag sets for `source` (IREE input MLIR, after edgeq's passes).

    Every candidate must give, on `inputs`, the outputs of the first one that compiles (the target's default
    flags come first); one that does not, or does not compile, is dropped with the reason. The candidates are
    timed in `rounds` interleaved rounds of repetitions // rounds runs, so that a slow minute of a shared machine
    does not fall on one of them."""
    from edgeq.pipeline.compile import versions

    variants = variants_for(target)
    key = content_key(source.read_text(), [], {"spec": target.spec.to_json(), "variants": variants,
                                               "versions": versions(), "repetitions": repetitions})
    path = cache_dir("tune") / f"{key}.json"
    if use_cache and (hit := _cached(path, variants)) is not None:
        return hit
    with tempfile.TemporaryDirectory(prefix="edgeq-tune-") as tmp:
        tuning = _tune(source, target, inputs, n_outputs, variants, Path(tmp), repetitions, rounds)
    write_atomic(path, json.dumps(tuning.to_json(), indent=2) + "\n")
    return tuning


def _tune(source: Path, target: Target, inputs: list[np.ndarray], n_outputs: int, variants: dict, work_dir: Path,
          repetitions: int, rounds: int) -> Tuning:
    from edgeq.pipeline.compile import compile_input

    modules, dropped, reference, reference_name = {}, {}, None, ""
    for name, flags in variants.items():
        vmfb = work_dir / f"{name}.vmfb"
        try:
            compile_input(source, replace(target.spec, extra_flags=flags).compile_flags(), vmfb)
        except EdgeqError as e:
            dropped[name] = f"does not compile: {e.problem[:300]}"
            continue
        outputs = target.run(vmfb, inputs, n_outputs=n_outputs)
        if reference is None:
            reference, reference_name = outputs, name
        elif not all(np.array_equal(a, b) for a, b in zip(outputs, reference)):
            dropped[name] = f"outputs differ from those of {reference_name}"
            continue
        modules[name] = vmfb
    if not modules:
        raise EdgeqError(f"no flag set compiles {source.name} for {target.spec.name}: {dropped}",
                         "compile without --tune to see the default flags' error")
    times: dict[str, list[float]] = {name: [] for name in modules}
    with timing_lock(target.spec.name):
        for _ in range(rounds):
            for name, vmfb in modules.items():
                times[name] += target.measure(vmfb, inputs, max(1, repetitions // rounds)).latencies_ms
    median_ms = {name: statistics.median(t) for name, t in times.items()}
    winner = min(median_ms, key=median_ms.get)
    return Tuning(winner, variants[winner], median_ms, dropped)
