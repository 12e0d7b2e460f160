"""The Sensitivity table: per layer, Ω for every candidate weight and activation bit-width, and what it came from.

Ω(l, w, a) = Ω_w(l, w) + Ω_a(l, a), the perturbation of the loss when layer l's weights are quantized to w bits
and its input to a bits (HAWQ-V2 sums block perturbations; ZeroQ sums per-layer KLs). Allocation reads only this.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgeq.errors import EdgeqError


@dataclass(frozen=True)
class Estimate:
    """A Hessian statistic of one block: trace (with its standard error) or top eigenvalue, and its cost."""

    value: float
    stderr: float = 0.0
    steps: int = 0              # Hutchinson probes or power iterations
    converged: bool = True


@dataclass(frozen=True)
class LayerSensitivity:
    name: str
    n_params: int
    n_bias: int
    macs: int                   # per sample
    a_numel: int                # input activation elements per sample
    omega_w: dict[int, float]   # weight bits -> Ω_w
    omega_a: dict[int, float]   # activation bits -> Ω_a
    stat_w: Estimate | None = None
    stat_a: Estimate | None = None

    def omega(self, w_bits: int, a_bits: int) -> float:
        try:
            return self.omega_w[w_bits] + self.omega_a[a_bits]
        except KeyError as e:
            raise EdgeqError(f"layer {self.name} has no sensitivity for {e.args[0]} bits",
                             f"compute it with `edgeq sensitivity --bits` including {e.args[0]}") from None


@dataclass(frozen=True)
class Sensitivity:
    model: str
    method: str                 # trace | eigen | kl
    data: str                   # what the statistics were taken on, e.g. "256 samples, labels" or "distilled"
    layers: tuple[LayerSensitivity, ...]
    settings: dict = field(default_factory=dict)
    seconds: float = 0.0

    def layer(self, name: str) -> LayerSensitivity:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise EdgeqError(f"layer {name!r} is not in the sensitivity table",
                         f"use one of {', '.join(l.name for l in self.layers)}")

    def to_json(self) -> dict:
        return asdict(self) | {"layers": [asdict(l) for l in self.layers]}

    @classmethod
    def from_json(cls, data: dict) -> "Sensitivity":
        def est(d):
            return None if d is None else Estimate(**d)

        layers = tuple(LayerSensitivity(**(l | {"omega_w": {int(b): float(v) for b, v in l["omega_w"].items()},
                                               "omega_a": {int(b): float(v) for b, v in l["omega_a"].items()},
                                               "stat_w": est(l.get("stat_w")), "stat_a": est(l.get("stat_a"))}))
                       for l in data["layers"])
        return cls(data["model"], data["method"], data["data"], layers, data.get("settings", {}),
                   data.get("seconds", 0.0))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "Sensitivity":
        try:
            return cls.from_json(json.loads(Path(path).read_text()))
        except FileNotFoundError:
            raise EdgeqError(f"sensitivity file {str(path)!r} not found",
                             "write it with `edgeq sensitivity MODEL -o sens.json`") from None
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            raise EdgeqError(f"sensitivity file {str(path)!r} is corrupt ({type(e).__name__}: {e})",
                             "recompute it with `edgeq sensitivity MODEL -o sens.json`") from None
