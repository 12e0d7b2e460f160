"""arm64: aarch64 Linux and Android with int8 dot product (+dotprod, +i8mm).

Run with the aarch64 iree-base-runtime wheel's iree-run-module / iree-benchmark-module under
qemu-user. qemu emulates: its times say nothing about a phone and are reported as emulated.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from edgeq.errors import EdgeqError
from edgeq.targets.host import OPT_FLAGS
from edgeq.targets.base import Measurement, TargetSpec, parse_benchmark_json, require_binary, run_tool

# Armv8.6 cores (Cortex-A710/X2 on) have both; many phones in use (Cortex-A76/A77, Snapdragon 855/865) only
# dotprod, hence arm64-dotprod. IREE's int8 ukernels use smmla where there is i8mm, sdot otherwise.
FEATURES = "+neon,+dotprod,+i8mm"
TRIPLES = {"arm64": "aarch64-linux-gnu", "arm64-linux": "aarch64-linux-gnu", "arm64-dotprod": "aarch64-linux-gnu",
           "arm64-android": "aarch64-linux-android34"}


def runtime_dir() -> Path:
    """Where scripts/install.sh unpacks the aarch64 iree-base-runtime wheel's tools."""
    return Path(sys.prefix) / "aarch64-runtime" / "iree" / "_runtime_libs"


class Arm64Target:
    simulated = False
    emulated = True   # qemu-user: the arm64 code runs, its times are the emulator's

    def __init__(self, name: str = "arm64", threads: int = 2):
        features = "+neon,+dotprod" if name == "arm64-dotprod" else FEATURES
        self.spec = TargetSpec(name, "local", triple=TRIPLES[name], features=features, extra_flags=OPT_FLAGS)
        self.threads = threads

    def check_available(self) -> None:
        if self.spec.name == "arm64-android":
            raise EdgeqError("arm64-android modules cannot run here (no Android device or emulator)",
                             "compile with --target arm64-android and run on the phone, or use --target arm64")
        require_binary("qemu-aarch64", "qemu-user")
        if not Path("/lib/ld-linux-aarch64.so.1").exists():
            raise EdgeqError("the aarch64 C library is missing",
                             "dpkg --add-architecture arm64 && apt-get update && apt-get install libc6:arm64 libstdc++6:arm64")
        if not (runtime_dir() / "iree-run-module").exists():
            raise EdgeqError(f"the aarch64 IREE runtime is not in {runtime_dir()}", "run scripts/install.sh")

    def _argv(self, tool: str, vmfb: Path, function: str) -> list[str]:
        return ["qemu-aarch64", str(runtime_dir() / tool), "--device=local-task", f"--module={vmfb}",
                f"--function={function}", f"--task_topology_group_count={self.threads}"]

    def run(self, vmfb: Path, inputs: list[np.ndarray], function: str = "main", n_outputs: int = 1):
        self.check_available()
        return run_tool(self._argv("iree-run-module", vmfb, function), inputs, n_outputs)[0]

    def measure(self, vmfb: Path, inputs: list[np.ndarray], repetitions: int = 20, function: str = "main"):
        self.check_available()
        argv = self._argv("iree-benchmark-module", vmfb, function) + [
            f"--benchmark_repetitions={repetitions}", "--benchmark_format=json", "--benchmark_min_time=1x"]
        _, stdout = run_tool(argv, inputs, 0)
        return Measurement(self.spec.name, parse_benchmark_json(stdout), note="emulated by qemu-aarch64: not a device time")
