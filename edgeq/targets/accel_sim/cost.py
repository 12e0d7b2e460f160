"""Cycles and energy of each dispatch on a HardwareModel: a systolic array behind double-buffered SRAMs and DRAM.

Compute (SCALE-Sim's analytical model, Samajdar et al., ISPASS 2020, eq. 2): a dataflow maps two operand-matrix
dimensions onto the R x C array (S_r rows, S_c columns) and streams the third (T) through it, in
ceil(S_r/R) * ceil(S_c/C) folds:
    ws: S_r = window, S_c = filters, T = pixels     os: S_r = pixels, S_c = filters, T = window
    is: S_r = window, S_c = pixels,  T = filters
A ws/is fold costs 2R + C + T - 2 cycles: R to load the stationary operand, then T streamed with an R + C - 2
skew. An os fold costs R + C + T - 2: its outputs drain while the next fold streams in (SCALE-Sim 3.0 counts
it so; the paper's 2R keeps the drain serial). A precision with k MACs per PE per cycle packs k reduction
elements into each PE (window -> ceil(window/k)).

Memory: the stationary operand is read from DRAM once; a streamed operand is read once per fold of the other
array dimension unless it fits in half its SRAM (the other half is the double buffer); partial sums that do not
fit in half the ofmap SRAM go to DRAM and back between reduction folds. Double buffering overlaps transfers with
compute, so a dispatch takes max(compute, memory) cycles; dispatches run one after another.

Energy: MACs x the precision's pJ/MAC, every byte through SRAM into the array and every DRAM byte at theirs.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from edgeq.targets.accel_sim.hardware import HardwareModel, Precision
from edgeq.targets.accel_sim.workload import Dispatch, Gemm

_PSUM_BYTES = 4   # int32 partial sums


@dataclass(frozen=True)
class DispatchCost:
    name: str
    kind: str
    layer: str | None
    precision: str | None       # the mode it ran in, e.g. "w4a8"
    macs: int
    compute_cycles: int
    memory_cycles: int
    cycles: int
    dram_bytes: float
    energy_pj: float

    def to_json(self) -> dict:
        return asdict(self)


def array_dims(g: Gemm, dataflow: str, macs_per_cycle: int = 1) -> tuple[int, int, int]:
    """(S_r, S_c, T) of one group's GEMM under the dataflow."""
    window = math.ceil(g.window / macs_per_cycle)
    return {"ws": (window, g.filters, g.pixels), "os": (g.pixels, g.filters, window),
            "is": (window, g.pixels, g.filters)}[dataflow]


def compute_cycles(g: Gemm, hw: HardwareModel, macs_per_cycle: int = 1) -> int:
    s_r, s_c, t = array_dims(g, hw.dataflow, macs_per_cycle)
    folds = math.ceil(s_r / hw.rows) * math.ceil(s_c / hw.cols)
    fill = hw.rows if hw.dataflow == "os" else 2 * hw.rows
    return g.groups * folds * (fill + hw.cols + t - 2)


def systolic(d: Dispatch, hw: HardwareModel, p: Precision, a_bits: int, w_bits: int, layer: str | None) -> DispatchCost:
    g = d.gemm
    s_r, s_c, _ = array_dims(g, hw.dataflow, p.macs_per_cycle)
    row_folds, col_folds = math.ceil(s_r / hw.rows), math.ceil(s_c / hw.cols)
    weights, ifmap = d.weight_elems * w_bits / 8, d.ifmap_elems * a_bits / 8   # DRAM-side tensors, packed
    psums = g.groups * g.pixels * g.filters * _PSUM_BYTES
    kb = 1024 / 2                                                                 # half of each SRAM: double buffer

    def reread(nbytes: float, sram_kb: float, times: int) -> float:
        return nbytes if nbytes <= sram_kb * kb else nbytes * times

    # Operand matrices as they enter the array (the ifmap one is im2col'ed: pixels x window).
    if_mat, w_mat = g.groups * g.pixels * g.window * a_bits / 8, g.groups * g.window * g.filters * w_bits / 8
    if hw.dataflow == "ws":
        dram = weights + reread(ifmap, hw.ifmap_kb, col_folds)
        sram = w_mat + if_mat * col_folds + psums * row_folds
        spill = row_folds > 1
    elif hw.dataflow == "os":
        dram = reread(weights, hw.filter_kb, row_folds) + reread(ifmap, hw.ifmap_kb, col_folds)
        sram = if_mat * col_folds + w_mat * row_folds + psums
        spill = False                                                             # outputs stay in the PEs
    else:
        dram = ifmap + reread(weights, hw.filter_kb, col_folds)
        sram = if_mat + w_mat * col_folds + psums * row_folds
        spill = row_folds > 1
    if spill and psums > hw.ofmap_kb * kb:
        dram += 2 * (row_folds - 1) * psums
    dram += d.inputs_bytes + d.outputs_bytes
    compute = compute_cycles(g, hw, p.macs_per_cycle)
    memory = math.ceil(dram / hw.dram_bytes_per_cycle)
    energy = g.macs * p.mac_pj + sram * hw.sram_pj_per_byte + dram * hw.dram_pj_per_byte
    return DispatchCost(d.name, d.kind, layer, p.tag, g.macs, compute, memory, max(compute, memory), dram, energy)


def vector(d: Dispatch, hw: HardwareModel) -> DispatchCost:
    dram = d.inputs_bytes + d.outputs_bytes
    compute = math.ceil(d.vector_ops / hw.vector_lanes)
    memory = math.ceil(dram / hw.dram_bytes_per_cycle)
    energy = d.vector_ops * hw.vector_op_pj + dram * (hw.dram_pj_per_byte + hw.sram_pj_per_byte)
    return DispatchCost(d.name, d.kind, None, None, 0, compute, memory, max(compute, memory), dram, energy)
