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
array dimension unless it fits in half its SRAM (the other half is the double buffer). Under ws and is, partial
sums live in the ofmap SRAM across reduction folds; when they outgrow it the dispatch either spills them to DRAM
and back, or cuts the streamed dimension into tiles (each paying the fill again): whichever is faster.
Double buffering overlaps transfers with compute, so a dispatch takes max(compute, memory) cycles; dispatches
run one after another.

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
    tiles: int = 1              # passes over the streamed dimension (1: SCALE-Sim's schedule)

    def to_json(self) -> dict:
        return asdict(self)


def array_dims(g: Gemm, dataflow: str, macs_per_cycle: int = 1) -> tuple[int, int, int]:
    """(S_r, S_c, T) of one group's GEMM under the dataflow."""
    window = math.ceil(g.window / macs_per_cycle)
    return {"ws": (window, g.filters, g.pixels), "os": (g.pixels, g.filters, window),
            "is": (window, g.pixels, g.filters)}[dataflow]


def compute_cycles(g: Gemm, hw: HardwareModel, macs_per_cycle: int = 1, tiles: int = 1) -> int:
    """Array cycles of the GEMM; with the streamed dimension T cut into `tiles` passes, each pass pays the
    stationary load and the skew again."""
    s_r, s_c, t = array_dims(g, hw.dataflow, macs_per_cycle)
    folds = math.ceil(s_r / hw.rows) * math.ceil(s_c / hw.cols)
    fill = hw.rows if hw.dataflow == "os" else 2 * hw.rows
    return g.groups * folds * (tiles * (fill + hw.cols - 2) + t)


def systolic(d: Dispatch, hw: HardwareModel, p: Precision, a_bits: int, w_bits: int, layer: str | None) -> DispatchCost:
    """The cheaper of two schedules when ws/is partial sums outgrow the ofmap SRAM: stream all of T and spill
    them to DRAM between reduction folds, or cut T into tiles whose partial sums stay on chip."""
    g = d.gemm
    s_r, s_c, t = array_dims(g, hw.dataflow, p.macs_per_cycle)
    row_folds, col_folds = math.ceil(s_r / hw.rows), math.ceil(s_c / hw.cols)
    weights, ifmap = d.weight_elems * w_bits / 8, d.ifmap_elems * a_bits / 8   # DRAM-side tensors, packed
    psums = g.groups * g.pixels * g.filters * _PSUM_BYTES
    psum_set = t * min(s_c, hw.cols) * _PSUM_BYTES          # live while one column fold runs its reduction folds
    half = {"ifmap": hw.ifmap_kb * 512, "filter": hw.filter_kb * 512, "ofmap": hw.ofmap_kb * 512}   # double buffers

    def reread(nbytes: float, sram: str, times: int) -> float:
        return nbytes if nbytes <= half[sram] else nbytes * times

    # Operand matrices as they enter the array (the ifmap one is im2col'ed: pixels x window).
    if_mat, w_mat = g.groups * g.pixels * g.window * a_bits / 8, g.groups * g.window * g.filters * w_bits / 8

    def schedule(tiles: int) -> tuple[int, int, float, float]:
        if hw.dataflow == "ws":
            dram = reread(weights, "filter", tiles) + reread(ifmap, "ifmap", col_folds)
            sram = w_mat * tiles + if_mat * col_folds + psums * row_folds
        elif hw.dataflow == "os":                            # outputs accumulate in the PEs: nothing spills
            dram = reread(weights, "filter", row_folds) + reread(ifmap, "ifmap", col_folds)
            sram = if_mat * col_folds + w_mat * row_folds + psums
        else:
            dram = reread(ifmap, "ifmap", tiles) + reread(weights, "filter", col_folds)
            sram = if_mat * tiles + w_mat * col_folds + psums * row_folds
        if hw.dataflow != "os" and row_folds > 1 and psum_set / tiles > half["ofmap"]:
            dram += 2 * (row_folds - 1) * psums
        dram += d.inputs_bytes + d.outputs_bytes
        return compute_cycles(g, hw, p.macs_per_cycle, tiles), math.ceil(dram / hw.dram_bytes_per_cycle), dram, sram

    options = [1]
    if hw.dataflow != "os" and row_folds > 1 and psum_set > half["ofmap"]:
        options.append(min(math.ceil(psum_set / half["ofmap"]), t))
    schedules = {n: schedule(n) for n in options}
    tiles = min(schedules, key=lambda n: max(schedules[n][:2]))
    compute, memory, dram, sram = schedules[tiles]
    energy = g.macs * p.mac_pj + sram * hw.sram_pj_per_byte + dram * hw.dram_pj_per_byte
    return DispatchCost(d.name, d.kind, layer, p.tag, g.macs, compute, memory, max(compute, memory), dram, energy, tiles)


def vector(d: Dispatch, hw: HardwareModel) -> DispatchCost:
    dram = d.inputs_bytes + d.outputs_bytes
    compute = math.ceil(d.vector_ops / hw.vector_lanes)
    memory = math.ceil(dram / hw.dram_bytes_per_cycle)
    energy = d.vector_ops * hw.vector_op_pj + dram * (hw.dram_pj_per_byte + hw.sram_pj_per_byte)
    return DispatchCost(d.name, d.kind, None, None, 0, compute, memory, max(compute, memory), dram, energy)
