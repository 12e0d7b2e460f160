"""Targets, one per file behind the Target protocol: compile flags, run, measure."""
from __future__ import annotations

from edgeq.errors import EdgeqError
from edgeq.targets.base import Measurement, Target, TargetSpec

NAMES = ("host", "arm64", "arm64-linux", "arm64-dotprod", "arm64-android", "vulkan", "accel-sim")


def get(name: str) -> Target:
    """A target by name; `accel-sim:HW.toml` is the simulated accelerator described by HW.toml (default: npu.toml)."""
    from edgeq.targets.arm64 import Arm64Target
    from edgeq.targets.host import HostTarget
    from edgeq.targets.vulkan import VulkanTarget

    if name == "accel-sim" or name.startswith("accel-sim:"):
        from edgeq.targets.accel_sim import AccelSimTarget
        from edgeq.targets.accel_sim.hardware import DEFAULT, HardwareModel

        return AccelSimTarget(HardwareModel.load(name.partition(":")[2] or DEFAULT))
    if name == "host":
        return HostTarget()
    if name.startswith("arm64") and name in NAMES:
        return Arm64Target(name)
    if name == "vulkan":
        return VulkanTarget()
    raise EdgeqError(f"unknown target {name!r}", f"use one of {', '.join(NAMES)}")


def for_spec(spec: TargetSpec) -> Target:
    """The target a module was compiled for, as its manifest recorded it (accel-sim: with that hardware)."""
    if spec.hardware is not None:
        from edgeq.targets.accel_sim import AccelSimTarget
        from edgeq.targets.accel_sim.hardware import HardwareModel

        return AccelSimTarget(HardwareModel.from_json(spec.hardware))
    return get(spec.name)


__all__ = ["Measurement", "NAMES", "Target", "TargetSpec", "for_spec", "get"]
