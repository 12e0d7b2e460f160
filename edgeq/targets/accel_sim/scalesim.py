"""SCALE-Sim 3.0 (PyPI `scalesim`), the cycle-level systolic-array simulator, run on edgeq's dispatches: the
independent count accel-sim's compute model is validated against.

SCALE-Sim 3.0.0 fails under NumPy >= 2.3 (it converts 1-element arrays with int()), so scripts/install.sh gives it
its own environment, .venv/scalesim, with NumPy 2.2; it runs there as a subprocess.
"""
from __future__ import annotations

import csv
import subprocess
import sys
import tempfile
from pathlib import Path

from edgeq.errors import EdgeqError
from edgeq.targets.accel_sim.hardware import HardwareModel
from edgeq.targets.accel_sim.workload import Gemm

_CONFIG = """[general]
run_name = edgeq

[architecture_presets]
ArrayHeight: {rows}
ArrayWidth: {cols}
IfmapSramSzkB: {sram_kb}
FilterSramSzkB: {sram_kb}
OfmapSramSzkB: {sram_kb}
IfmapOffset: 0
FilterOffset: 100000000
OfmapOffset: 200000000
Bandwidth: {bandwidth}
Dataflow: {dataflow}
MemoryBanks: 1
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport: false
SparseRep: ellpack_block
OptimizedMapping: false
BlockSize: 8
RandomNumberGeneratorSeed: 40

[run_presets]
InterfaceBandwidth: USER
UseRamulatorTrace: False
"""


def python() -> Path:
    """The interpreter of the environment scripts/install.sh made for SCALE-Sim."""
    path = Path(sys.prefix) / "scalesim" / "bin" / "python"
    if not path.exists():
        raise EdgeqError(f"SCALE-Sim is not installed ({path} is missing)", "run bash scripts/install.sh")
    return path


def topology_rows(name: str, g: Gemm) -> list[str]:
    """SCALE-Sim topology rows of one GEMM: one conv per group (a depthwise conv is one single-channel conv per
    channel, as accel-sim runs it). The ifmap given is the part the conv reads: SCALE-Sim rounds the ofmap size up,
    (H - R + s) / s, where a conv rounds down, so the padded input could add a row of outputs."""
    kh, kw = g.kernel
    row = f"{g.ifmap_rows}, {g.ifmap_cols}, {kh}, {kw}, {g.window // (kh * kw)}, {g.filters}, {g.stride},"
    return [f"{name}_g{i}, {row}" if g.groups > 1 else f"{name}, {row}" for i in range(g.groups)]


def compute_cycles(gemms: dict[str, Gemm], hw: HardwareModel, timeout_s: float = 1800) -> dict[str, int]:
    """SCALE-Sim's compute cycles for each GEMM on hw's array and dataflow (at one MAC per PE per cycle).

    SRAMs and bandwidth are set so large that nothing stalls: what remains is the array's own cycles."""
    with tempfile.TemporaryDirectory(prefix="edgeq-scalesim-") as tmp:
        tmp = Path(tmp)
        names = [n.replace(",", "_").replace(" ", "_").replace("#", "_") for n in gemms]
        (tmp / "edgeq.cfg").write_text(_CONFIG.format(rows=hw.rows, cols=hw.cols, dataflow=hw.dataflow,
                                                      sram_kb=1_000_000, bandwidth=100_000))
        header = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
        rows = [r for n, g in zip(names, gemms.values()) for r in topology_rows(n, g)]
        (tmp / "topology.csv").write_text(header + "".join(r + "\n" for r in rows))
        (tmp / "layout.csv").write_text("Layer name, a, b, c, d, e, f,\n" +   # read, unused without custom layouts
                                        "".join(f"{r.split(',')[0]}, 1, 1, 1, 1, 1, 1,\n" for r in rows))
        proc = subprocess.run([str(python()), "-m", "scalesim.scale", "-c", "edgeq.cfg", "-t", "topology.csv",
                               "-l", "layout.csv", "-p", "out", "-s", "N"], cwd=tmp, capture_output=True, text=True,
                              timeout=timeout_s)
        reports = list((tmp / "out").glob("*/COMPUTE_REPORT.csv"))
        if proc.returncode != 0 or not reports:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise EdgeqError(f"SCALE-Sim failed: {' | '.join(tail)}", "check the .venv/scalesim environment")
        with open(reports[0]) as f:
            report = [int(r["Total Cycles"]) - int(r["Stall Cycles"]) for r in csv.DictReader(f, skipinitialspace=True)]
    cycles, i = {}, 0
    for name, g in gemms.items():   # a GEMM of several groups is several rows, in order
        cycles[name], i = sum(report[i:i + g.groups]), i + g.groups
    return cycles
