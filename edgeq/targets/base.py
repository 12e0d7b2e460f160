"""What every target is: compile flags (a pure function), and how to run and time a module on it."""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from edgeq.errors import EdgeqError


@dataclass(frozen=True)
class TargetSpec:
    """A compile target: IREE device, LLVM triple and CPU features where they apply, and extra flags."""

    name: str
    device: str                       # iree-compile's --iree-hal-target-device
    triple: str | None = None
    cpu: str | None = None
    features: str | None = None
    extra_flags: tuple[str, ...] = ()
    hardware: dict | None = None      # accel-sim: the HardwareModel its latency comes from

    def compile_flags(self) -> list[str]:
        flags = [f"--iree-hal-target-device={self.device}"]
        if self.device == "local":
            flags.append("--iree-hal-local-target-device-backends=llvm-cpu")
        if self.triple:
            flags.append(f"--iree-llvmcpu-target-triple={self.triple}")
        if self.cpu:
            flags.append(f"--iree-llvmcpu-target-cpu={self.cpu}")
        if self.features:
            flags.append(f"--iree-llvmcpu-target-cpu-features={self.features}")
        return flags + list(self.extra_flags)

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class Measurement:
    """Latencies of one module on one target, in milliseconds."""

    target: str
    latencies_ms: list[float] = field(default_factory=list)
    note: str = ""
    energy_uj: float | None = None    # where the target can tell (accel-sim)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.latencies_ms)

    def to_json(self) -> dict:
        return {"target": self.target, "median_ms": self.median_ms, "min_ms": min(self.latencies_ms),
                "max_ms": max(self.latencies_ms), "repetitions": len(self.latencies_ms),
                "latencies_ms": self.latencies_ms, "note": self.note,
                **({"energy_uj": self.energy_uj} if self.energy_uj is not None else {})}


class Target(Protocol):
    spec: TargetSpec
    simulated: bool   # latency from a model of the hardware (recomputed on every call) rather than a clock
    emulated: bool    # timed, but on an emulator (qemu): the times say nothing about the device

    def check_available(self) -> None: ...
    def run(self, vmfb: Path, inputs: list[np.ndarray], function: str = "main",
            n_outputs: int = 1) -> list[np.ndarray]: ...   # results to fetch (command-line runners need the count)
    def measure(self, vmfb: Path, inputs: list[np.ndarray], repetitions: int = 20,
                function: str = "main") -> Measurement: ...


@contextmanager
def timing_lock(target: str) -> Iterator[None]:
    """Held while timing on a target: two edgeq processes on one machine never time at once."""
    import fcntl

    from edgeq._cache import cache_dir

    with open(cache_dir("locks") / f"{target}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def runtime_tool(name: str) -> str:
    """Path of a tool of the iree-base-runtime wheel (iree-run-module, iree-benchmark-module), beside its bindings."""
    from iree.runtime._binding import __file__ as binding

    path = Path(binding).parent.parent / "_runtime_libs" / name
    return str(path) if path.exists() else name


def run_tool(argv: list[str], inputs: list[np.ndarray], n_outputs: int, env: dict | None = None,
             timeout_s: float = 900) -> tuple[list[np.ndarray], str]:
    """Run iree-run-module-style tools with .npy inputs and outputs; returns (outputs, stdout)."""
    with tempfile.TemporaryDirectory(prefix="edgeq-run-") as tmp:
        args = list(argv)
        for i, x in enumerate(inputs):
            np.save(f"{tmp}/in{i}.npy", x)
            args.append(f"--input=@{tmp}/in{i}.npy")
        for i in range(n_outputs):
            args.append(f"--output=@{tmp}/out{i}.npy")
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout_s,
                              env={**os.environ, **(env or {})})
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise EdgeqError(f"{Path(argv[0]).name} failed: {' | '.join(tail)}",
                             f"reproduce with: {' '.join(args)}")
        return [np.load(f"{tmp}/out{i}.npy") for i in range(n_outputs)], proc.stdout


def parse_benchmark_json(text: str) -> list[float]:
    """Per-repetition real times (ms) from iree-benchmark-module's --benchmark_format=json."""
    data = json.loads(text[text.index("{"):])
    times = []
    for b in data["benchmarks"]:
        if b.get("run_type", "iteration") == "iteration":
            unit = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[b.get("time_unit", "ns")]
            times.append(b["real_time"] * unit)
    return times


def require_binary(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise EdgeqError(f"{name} is not installed", f"install the Debian package {package} (apt-get install {package})")
    return path
