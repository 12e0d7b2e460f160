"""Targets, one per file behind the Target protocol: compile flags, run, measure."""
from __future__ import annotations

from edgeq.errors import EdgeqError
from edgeq.targets.base import Measurement, Target, TargetSpec

NAMES = ("host", "arm64", "arm64-linux", "arm64-android", "vulkan")


def get(name: str) -> Target:
    from edgeq.targets.arm64 import Arm64Target
    from edgeq.targets.host import HostTarget
    from edgeq.targets.vulkan import VulkanTarget

    if name == "host":
        return HostTarget()
    if name.startswith("arm64") and name in NAMES:
        return Arm64Target(name)
    if name == "vulkan":
        return VulkanTarget()
    raise EdgeqError(f"unknown target {name!r}", f"use one of {', '.join(NAMES)}")


__all__ = ["Measurement", "NAMES", "Target", "TargetSpec", "get"]
