"""vulkan: SPIR-V through IREE's vulkan-spirv backend, run with iree-run-module --device=vulkan.

Here the device is Mesa's lavapipe (a CPU Vulkan driver); on a phone it is the GPU's driver. The
Python runtime needs page-aligned host buffers for Vulkan imports, so the command-line tools run it.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edgeq.errors import EdgeqError
from edgeq.targets.base import Measurement, TargetSpec, parse_benchmark_json, run_tool, runtime_tool

_LAVAPIPE_ICD = Path("/usr/share/vulkan/icd.d/lvp_icd.x86_64.json")

# IREE's default Vulkan target (vp_android_baseline_2022: int32 compute, 32-bit storage) plus 8-bit storage
# buffers and Int8 (VK_KHR_8bit_storage, shaderInt8; lavapipe has both). Without them IREE emulates i8 storage
# in i32 words and its SPIR-V lowering of vector<4xi8> loads and stores reads and writes 16-byte vector<4xi32>
# elements at the index of a 4-byte one: every vectorized i8 access is wrong (docs/vulkan.md).
FEATURES = "spirv:v1.3,cap:Shader,cap:Int8,cap:StorageBuffer8BitAccess,ext:SPV_KHR_8bit_storage"


class VulkanTarget:
    simulated = emulated = False

    def __init__(self):
        self.spec = TargetSpec("vulkan", "vulkan", extra_flags=(f"--iree-vulkan-target-features={FEATURES}",))

    def _env(self) -> dict:
        # Pin lavapipe unless the user chose a driver: deterministic and present on every CI machine.
        if "VK_ICD_FILENAMES" in os.environ or "VK_DRIVER_FILES" in os.environ:
            return {}
        return {"VK_ICD_FILENAMES": str(_LAVAPIPE_ICD)}

    def check_available(self) -> None:
        if not ("VK_ICD_FILENAMES" in os.environ or "VK_DRIVER_FILES" in os.environ or _LAVAPIPE_ICD.exists()):
            raise EdgeqError("no Vulkan driver is installed",
                             "apt-get install mesa-vulkan-drivers (Mesa's lavapipe), or set VK_ICD_FILENAMES")

    def run(self, vmfb: Path, inputs: list[np.ndarray], function: str = "main", n_outputs: int = 1):
        self.check_available()
        argv = [runtime_tool("iree-run-module"), "--device=vulkan", f"--module={vmfb}", f"--function={function}"]
        return run_tool(argv, inputs, n_outputs, env=self._env())[0]

    def measure(self, vmfb: Path, inputs: list[np.ndarray], repetitions: int = 20, function: str = "main"):
        self.check_available()
        argv = [runtime_tool("iree-benchmark-module"), "--device=vulkan", f"--module={vmfb}", f"--function={function}",
                f"--benchmark_repetitions={repetitions}", "--benchmark_format=json", "--benchmark_min_time=1x"]
        _, stdout = run_tool(argv, inputs, 0, env=self._env())
        return Measurement("vulkan", parse_benchmark_json(stdout), note="Mesa lavapipe (CPU Vulkan driver)")
