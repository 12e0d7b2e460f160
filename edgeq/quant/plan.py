"""A Plan: bits per layer, keyed by the layer's full dotted module name (like torchao's FqnToConfig)."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from edgeq.errors import EdgeqError
from edgeq.quant.quantizer import check_bits


@dataclass(frozen=True)
class LayerSpec:
    """w_bits: the layer's weights; a_bits: the activation it reads (HAWQ-V3 quantizes a layer's input)."""

    w_bits: int = 8
    a_bits: int = 8

    def __post_init__(self):
        check_bits(self.w_bits, "weight")
        check_bits(self.a_bits, "activation")

    @property
    def tag(self) -> str:
        return f"w{self.w_bits}a{self.a_bits}"


@dataclass(frozen=True)
class Plan:
    default: LayerSpec = LayerSpec()
    layers: dict[str, LayerSpec] = field(default_factory=dict)

    def spec(self, fqn: str) -> LayerSpec:
        return self.layers.get(fqn, self.default)

    @classmethod
    def uniform(cls, tag: str) -> "Plan":
        m = re.fullmatch(r"w(\d+)a(\d+)", tag.strip().lower())
        if not m:
            raise EdgeqError(f"bits {tag!r} is neither wXaY nor a plan file", "use e.g. w8a8, w4a8 or PLAN.json")
        return cls(LayerSpec(int(m[1]), int(m[2])))

    @classmethod
    def parse(cls, text: str) -> "Plan":
        """`w8a8`-style tags, or a path to a plan JSON file."""
        if text.endswith(".json") or Path(text).is_file():
            return cls.load(text)
        return cls.uniform(text)

    def to_json(self) -> dict:
        return {"default": vars(self.default), "layers": {k: vars(v) for k, v in sorted(self.layers.items())}}

    @classmethod
    def from_json(cls, data: dict) -> "Plan":
        return cls(LayerSpec(**data.get("default", {})), {k: LayerSpec(**v) for k, v in data.get("layers", {}).items()})

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "Plan":
        try:
            data = json.loads(Path(path).read_text())
            if not isinstance(data, dict):
                raise TypeError("top level is not an object")
            return cls.from_json(data)
        except FileNotFoundError:
            raise EdgeqError(f"plan file {str(path)!r} not found", "give the path written by `edgeq allocate`") from None
        except EdgeqError:
            raise
        except (ValueError, TypeError) as e:
            raise EdgeqError(f"plan file {str(path)!r} is corrupt ({e})",
                             'write it as {"default": {"w_bits": 8, "a_bits": 8}, "layers": {"fqn": {...}}}') from None
