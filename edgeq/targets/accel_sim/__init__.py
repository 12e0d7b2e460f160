"""accel-sim: an edge NPU that exists as a HardwareModel file. Latency and energy come from simulating the module's
dispatches on it (workload.py, cost.py); the outputs come from running the same integer module on the host CPU,
so the target is bit-exact by the same check as every other.

The module is compiled for the host; the simulation reads the linalg IR beside it (model.edgeq.mlir) and the
bits of each layer from its manifest, whose `layers` list is in the order the contractions appear in the IR.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgeq.errors import EdgeqError
from edgeq.targets.accel_sim.cost import DispatchCost, systolic, vector
from edgeq.targets.accel_sim.hardware import HardwareModel
from edgeq.targets.accel_sim.workload import dispatches
from edgeq.targets.base import Measurement, TargetSpec
from edgeq.targets.host import OPT_FLAGS, HostTarget


@dataclass(frozen=True)
class Simulation:
    hardware: str
    clock_mhz: float
    dispatches: list[DispatchCost]

    @property
    def cycles(self) -> int:
        return sum(d.cycles for d in self.dispatches)

    @property
    def latency_ms(self) -> float:
        return self.cycles / (self.clock_mhz * 1e3)

    @property
    def energy_uj(self) -> float:
        return sum(d.energy_pj for d in self.dispatches) / 1e6

    def to_json(self) -> dict:
        return {**asdict(self), "cycles": self.cycles, "latency_ms": self.latency_ms, "energy_uj": self.energy_uj}

    def measurement(self) -> Measurement:
        """As a target's Measurement: deterministic, so one 'repetition' says all."""
        return Measurement("accel-sim", [self.latency_ms], energy_uj=self.energy_uj,
                           note=f"simulated on {self.hardware}: {len(self.dispatches)} dispatches, {self.cycles} "
                                f"cycles at {self.clock_mhz:g} MHz, {self.energy_uj:.4g} µJ")


def simulate(module_dir: str | Path, hw: HardwareModel) -> Simulation:
    """Every dispatch of the module compiled in module_dir (by edgeq compile) on hw, in program order."""
    module_dir = Path(module_dir)
    try:
        manifest = json.loads((module_dir / "manifest.json").read_text())
        ir_text = (module_dir / manifest["files"]["after_passes"]).read_text()
        layers, plan = manifest["layers"], manifest["bits"]
    except (OSError, ValueError, KeyError) as e:
        raise EdgeqError(f"{module_dir} has no simulatable module ({type(e).__name__}: {e})",
                         "compile it again with `edgeq compile` (the manifest lists its layers since edgeq 0.1)") from None
    work = dispatches(ir_text)
    contractions = [d for d in work if d.kind == "systolic"]
    if len(contractions) != len(layers):
        raise EdgeqError(f"{module_dir}: the IR has {len(contractions)} contractions but the manifest "
                         f"{len(layers)} layers", "compile the module again; do not edit model.edgeq.mlir by hand")
    default = plan.get("default", {"w_bits": 8, "a_bits": 8})
    bits = {}
    for d, layer in zip(contractions, layers):
        if d.weight_elems != int(np.prod(layer["weight"])):
            raise EdgeqError(f"{module_dir}: {d.name} has {d.weight_elems} weights but layer {layer['name']} "
                             f"{layer['weight']}", "compile the module again")
        bits[id(d)] = layer["name"], plan.get("layers", {}).get(layer["name"], default)
    costs = []
    for d in work:
        if d.kind == "vector":
            costs.append(vector(d, hw))
            continue
        name, spec = bits[id(d)]
        costs.append(systolic(d, hw, hw.precision(spec["w_bits"], spec["a_bits"]), spec["a_bits"], spec["w_bits"], name))
    return Simulation(hw.name, hw.clock_mhz, costs)


class AccelSimTarget:
    simulated = True   # its latency is computed, not timed: cheap to redo, so never cached
    emulated = False

    def __init__(self, hw: HardwareModel):
        self.hw = hw
        self.spec = TargetSpec("accel-sim", "local", cpu="host", extra_flags=OPT_FLAGS, hardware=hw.to_json())
        self._host = HostTarget()

    def check_available(self) -> None:
        self._host.check_available()

    def run(self, vmfb: Path, inputs: list[np.ndarray], function: str = "main", n_outputs: int = 1) -> list[np.ndarray]:
        return self._host.run(vmfb, inputs, function)

    def measure(self, vmfb: Path, inputs: list[np.ndarray], repetitions: int = 20, function: str = "main") -> Measurement:
        return simulate(Path(vmfb).parent, self.hw).measurement()
