"""The simulated accelerator's hardware, as data: read from a TOML file, printed back into every measurement.

    name = "npu-32x32"
    clock_mhz = 800
    [array]                 # a systolic array of rows x cols processing elements
    rows = 32
    cols = 32
    dataflow = "ws"         # ws (weight), os (output) or is (input) stationary, as SCALE-Sim names them
    [precisions]            # (weight, activation) bits it runs: MACs per PE per cycle, energy per MAC
    w8a8 = { macs_per_cycle = 1, mac_pj = 0.23 }
    w4a8 = { macs_per_cycle = 2, mac_pj = 0.12 }
    [memory]                # double-buffered on-chip SRAMs and the DRAM behind them
    ifmap_kb = 256
    filter_kb = 256
    ofmap_kb = 128
    dram_gbps = 12.8
    sram_pj_per_byte = 1.2
    dram_pj_per_byte = 80
    [vector]                # the unit that runs what is not a contraction (residual adds, pooling)
    lanes = 32
    op_pj = 0.05
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path

from edgeq.errors import EdgeqError

DATAFLOWS = ("ws", "os", "is")
DEFAULT = Path(__file__).with_name("npu.toml")


@dataclass(frozen=True)
class Precision:
    w_bits: int
    a_bits: int
    macs_per_cycle: int     # per PE: a PE packs this many reduction-dimension MACs per cycle (bit fusion)
    mac_pj: float

    @property
    def tag(self) -> str:
        return f"w{self.w_bits}a{self.a_bits}"


@dataclass(frozen=True)
class HardwareModel:
    name: str
    clock_mhz: float
    rows: int
    cols: int
    dataflow: str
    precisions: tuple[Precision, ...]
    ifmap_kb: float
    filter_kb: float
    ofmap_kb: float
    dram_gbps: float
    sram_pj_per_byte: float
    dram_pj_per_byte: float
    vector_lanes: int
    vector_op_pj: float

    @property
    def dram_bytes_per_cycle(self) -> float:
        return self.dram_gbps * 1e9 / (self.clock_mhz * 1e6)

    def precision(self, w_bits: int, a_bits: int) -> Precision:
        """The mode a (w_bits, a_bits) layer runs in: its own, else the cheapest listed one that holds both
        operands (a w2a8 layer on an array without 2-bit weights runs as w4a8)."""
        fits = [p for p in self.precisions if p.w_bits >= w_bits and p.a_bits >= a_bits]
        if not fits:
            have = ", ".join(p.tag for p in self.precisions)
            raise EdgeqError(f"the accelerator {self.name!r} has no mode for w{w_bits}a{a_bits} (it runs {have})",
                             f"add a w{w_bits}a{a_bits} (or wider) entry under [precisions], or allocate fewer bits")
        return min(fits, key=lambda p: (p.w_bits + p.a_bits, -p.macs_per_cycle))

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "HardwareModel":
        return cls(**{**data, "precisions": tuple(Precision(**p) for p in data["precisions"])})

    @classmethod
    def load(cls, path: str | Path) -> "HardwareModel":
        path = Path(path)
        try:
            doc = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise EdgeqError(f"hardware file {str(path)!r} not found", f"give a TOML file like {DEFAULT}") from None
        except tomllib.TOMLDecodeError as e:
            raise EdgeqError(f"hardware file {str(path)!r} is not valid TOML ({e})", f"compare it with {DEFAULT}") from None
        return _parse(doc, str(path))


def _parse(doc: dict, where: str) -> HardwareModel:
    def section(name: str) -> dict:
        value = doc.get(name)
        if not isinstance(value, dict):
            raise EdgeqError(f"{where}: missing [{name}] table", f"add it; {DEFAULT} shows every key")
        return value

    def number(table: dict, key: str, prefix: str, integer: bool = False) -> float:
        value = table.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0 or (integer and value != int(value)):
            kind = "a positive integer" if integer else "a positive number"
            raise EdgeqError(f"{where}: {prefix}{key} is {value!r}", f"set it to {kind}")
        return int(value) if integer else float(value)

    array, memory, vector = section("array"), section("memory"), section("vector")
    dataflow = array.get("dataflow")
    if dataflow not in DATAFLOWS:
        raise EdgeqError(f"{where}: array.dataflow is {dataflow!r}", f"use one of {', '.join(DATAFLOWS)}")
    precisions = []
    for tag, p in section("precisions").items():
        m = re.fullmatch(r"w(\d+)a(\d+)", tag)
        if not m or not isinstance(p, dict):
            raise EdgeqError(f"{where}: [precisions] entry {tag!r} is not wXaY = {{ macs_per_cycle, mac_pj }}",
                             'write e.g. w4a8 = { macs_per_cycle = 2, mac_pj = 0.12 }')
        precisions.append(Precision(int(m[1]), int(m[2]), number(p, "macs_per_cycle", f"precisions.{tag}.", True),
                                    number(p, "mac_pj", f"precisions.{tag}.")))
    if not precisions:
        raise EdgeqError(f"{where}: [precisions] is empty", "list at least w8a8 = { macs_per_cycle = 1, mac_pj = ... }")
    return HardwareModel(
        name=str(doc.get("name", Path(where).stem)), clock_mhz=number(doc, "clock_mhz", ""),
        rows=number(array, "rows", "array.", True), cols=number(array, "cols", "array.", True), dataflow=dataflow,
        precisions=tuple(sorted(precisions, key=lambda p: (p.w_bits, p.a_bits))),
        ifmap_kb=number(memory, "ifmap_kb", "memory."), filter_kb=number(memory, "filter_kb", "memory."),
        ofmap_kb=number(memory, "ofmap_kb", "memory."), dram_gbps=number(memory, "dram_gbps", "memory."),
        sram_pj_per_byte=number(memory, "sram_pj_per_byte", "memory."),
        dram_pj_per_byte=number(memory, "dram_pj_per_byte", "memory."),
        vector_lanes=number(vector, "lanes", "vector.", True), vector_op_pj=number(vector, "op_pj", "vector."))
