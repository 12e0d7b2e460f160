"""The compile driver: integer model -> torch MLIR -> IREE input (linalg) -> edgeq passes -> IREE -> .vmfb.

Every step writes its output into the run directory, and a failing step prints the command that
reproduces it from those files.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from edgeq.errors import EdgeqError
from edgeq.pipeline.export import export_mlir
from edgeq.quant.integer import IntegerModel
from edgeq.quant.transformer import IntBert
from edgeq.targets import Measurement, TargetSpec, for_spec, get
from edgeq.targets.base import timing_lock


def iree_compile_tool() -> str:
    from iree.compiler.tools.binaries import find_tool

    return find_tool("iree-compile")


def versions() -> dict[str, str]:
    from importlib.metadata import version

    return {p: version(p) for p in ("edgeq", "torch", "iree-base-compiler", "iree-base-runtime")}


def toolchain(target: str) -> dict:
    """Besides the model, what decides a module's bytes: the target (its flags), edgeq's passes, the versions.
    Cached modules are reused only when it is unchanged."""
    from edgeq.dialect_passes import pipeline_for

    return {"target": get(target).spec.to_json(), "passes": pipeline_for(target), "versions": versions()}


@dataclass
class Manifest:
    """What was compiled and how: enough to rebuild, run and check the module."""

    model: str
    target: TargetSpec
    bits: dict                       # the Plan, as JSON
    flags: list[str]
    passes: list[str]
    versions: dict[str, str]
    inputs: list[dict]               # [{"shape": [...], "dtype": "int8"}]
    outputs: list[dict]
    input_qparams: dict
    output_scale: list[float]
    output_zero_point: int
    files: dict[str, str] = field(default_factory=dict)
    layers: list[dict] = field(default_factory=list)   # conv/linear layers in graph (= IR) order: name, weight shape
    reference: str = "integer"       # what `edgeq run` checks against: edgeq's integer reference (bit-exact) or
                                     # "tflite": LiteRT's outputs (an imported .tflite; tflite.importer's tolerance)
    tuning: dict = field(default_factory=dict)   # the autotuner's flag sets and times, when compiled with --tune

    def toolchain(self) -> dict:
        """What built this module, comparable with compile.toolchain(target)."""
        return {"target": self.target.to_json(), "passes": self.passes, "versions": self.versions}

    def save(self, path: Path) -> None:
        data = asdict(self)
        path.write_text(json.dumps(data, indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> "Manifest":
        try:
            data = json.loads(Path(path).read_text())
            data["target"] = TargetSpec(**{**data["target"], "extra_flags": tuple(data["target"]["extra_flags"])})
            return cls(**data)
        except FileNotFoundError:
            raise EdgeqError(f"{path} not found", "give the directory written by `edgeq compile`") from None
        except (ValueError, TypeError, KeyError) as e:
            raise EdgeqError(f"manifest {path} is corrupt ({e})", "compile the model again with `edgeq compile`") from None


@dataclass
class Artifact:
    out_dir: Path
    manifest: Manifest

    @property
    def vmfb(self) -> Path:
        return self.out_dir / self.manifest.files["vmfb"]

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return for_spec(self.manifest.target).run(self.vmfb, inputs, n_outputs=len(self.manifest.outputs))

    def measure(self, inputs: list[np.ndarray], repetitions: int = 20) -> Measurement:
        """Timed while holding the target's lock: two edgeq processes on one machine never time at once."""
        with timing_lock(self.manifest.target.name):
            return for_spec(self.manifest.target).measure(self.vmfb, inputs, repetitions)

    @classmethod
    def load(cls, out_dir: str | Path) -> "Artifact":
        return cls(Path(out_dir), Manifest.load(Path(out_dir) / "manifest.json"))


# What compile_mlir writes beside the module (stem "model"), as a Manifest's files name them
STAGE_FILES = {"before_passes": "model.input.mlir", "after_passes": "model.edgeq.mlir"}


def _run_step(cmd: list[str], what: str, cwd: Path) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    if proc.returncode != 0:
        errors = [ln for ln in proc.stderr.splitlines() if "error" in ln][:3] or proc.stderr.splitlines()[:3]
        raise EdgeqError(f"{what} failed: {' | '.join(errors)}", f"reproduce with: cd {cwd} && {' '.join(cmd)}")


def compile_input(source: Path, flags: list[str], output: Path, extra: tuple[str, ...] = ()) -> None:
    """iree-compile from IREE input MLIR (after edgeq's passes) with a target's flags; EdgeqError if it fails."""
    _run_step([iree_compile_tool(), str(source), "--compile-from=input", *flags, *extra, "-o", str(output)],
              f"iree-compile {source.name}", Path(source).parent)


def compile_mlir(torch_mlir: Path, target: TargetSpec, out_dir: Path, passes: list[str] | None = None,
                 stem: str = "model", choose_spec: Callable[[Path], TargetSpec] | None = None
                 ) -> tuple[Path, list[str]]:
    """torch MLIR file -> .vmfb through IREE's input pipeline, edgeq's passes and the target backend; choose_spec,
    given the MLIR after edgeq's passes, may pick the spec (flags) the backend step compiles it with.

    Every step runs inside out_dir on relative names, so the module carries no path of the machine that built
    it (the same layer compiled in two places gives the same bytes) and model.compile.sh replays it anywhere."""
    from edgeq.dialect_passes import pipeline_for

    passes = pipeline_for(target.name) if passes is None else passes
    iree = iree_compile_tool()
    source = os.path.relpath(torch_mlir, out_dir)
    before, after, vmfb = f"{stem}.input.mlir", f"{stem}.edgeq.mlir", f"{stem}.vmfb"
    steps = [([iree, source, "--compile-to=input", "-o", before], "iree-compile --compile-to=input"),
             ([sys.executable, "-m", "edgeq.dialect_passes.opt", before, *[f"--{p}" for p in passes], "-o", after],
              "edgeq-opt")]
    for cmd, what in steps:
        _run_step(cmd, what, out_dir)
    if choose_spec is not None:
        target = choose_spec(out_dir / after)
    flags = target.compile_flags()
    steps.append(([iree, after, "--compile-from=input", *flags, "-o", vmfb], f"iree-compile for {target.name}"))
    _run_step(*steps[-1], out_dir)
    (out_dir / f"{stem}.compile.sh").write_text(
        '#!/bin/sh\n# how this module was built\nset -e\ncd "$(dirname "$0")"\n' +
        "".join(" \\\n  ".join(cmd) + "\n" for cmd, _ in steps))
    return out_dir / vmfb, flags


def _compile_for(torch_mlir: Path, target: str, out_dir: Path, passes: list[str],
                 tune_inputs: list[np.ndarray] | None) -> tuple[Path, list[str], TargetSpec, dict]:
    """compile_mlir with the target's default flags or, given tune_inputs, with the flag set that the autotuner
    (targets/tune.py) times fastest on them. Returns the module, flags, spec and tuning."""
    device = get(target)
    chosen = {"spec": device.spec, "tuning": {}}

    def tuned(after_passes: Path) -> TargetSpec:
        from edgeq.targets.tune import tune

        tuning = tune(after_passes, device, tune_inputs)
        chosen.update(spec=replace(device.spec, extra_flags=tuning.flags), tuning=tuning.to_json())
        return chosen["spec"]

    vmfb, flags = compile_mlir(torch_mlir, device.spec, out_dir, passes,
                               choose_spec=None if tune_inputs is None else tuned)
    return vmfb, flags, chosen["spec"], chosen["tuning"]


def compile_model(model: IntegerModel, example: torch.Tensor, target: str, out_dir: str | Path,
                  name: str = "model", plan_json: dict | None = None, passes: list[str] | None = None,
                  tune: bool = False) -> Artifact:
    """Compile an integer model for a target into out_dir (the .vmfb, MLIR before/after passes, manifest); with
    tune, with the target flags that run `example` fastest."""
    from edgeq.dialect_passes import pipeline_for

    passes = pipeline_for(target) if passes is None else passes
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    x_i8 = model.quantize_input(example)
    torch_mlir = out_dir / "model.torch.mlir"
    torch_mlir.write_text(export_mlir(model.graph_module, (x_i8,)))
    vmfb, flags, spec, tuning = _compile_for(torch_mlir, target, out_dir, passes, [x_i8.numpy()] if tune else None)
    with torch.no_grad():
        y = model.graph_module(x_i8)
    manifest = Manifest(
        model=name, target=spec, bits=plan_json or {}, flags=flags,
        passes=passes, versions=versions(),
        inputs=[{"shape": list(x_i8.shape), "dtype": "int8"}],
        outputs=[{"shape": list(y.shape), "dtype": str(y.dtype).removeprefix("torch.")}],
        input_qparams=model.input_qparams.to_dict(),
        output_scale=model.output_scale.flatten().tolist(), output_zero_point=model.output_zero_point,
        files={"vmfb": vmfb.name, "torch_mlir": torch_mlir.name, **STAGE_FILES},
        layers=model.weighted_layers(), tuning=tuning)
    manifest.save(out_dir / "manifest.json")
    return Artifact(out_dir, manifest)


# What the integer BERT runs between requantizations, on every target alike (quant/int_ops.py)
NONLINEARITIES = {"softmax": "integer: base-2 exponent in Q15, cubic 2^u, int8 probabilities",
                  "layernorm": "integer: exact H(x - mean), rounded integer square root, one int32 division",
                  "gelu": "integer: 256-entry int8 -> int8 table"}


def compile_bert(model: IntBert, target: str, out_dir: str | Path, seq_len: int, name: str = "minilm-l6",
                 tune: bool = False) -> Artifact:
    """Compile an integer BERT (quant/transformer.py) for a fixed sequence length: inputs are int32 token ids and
    attention mask (1, seq_len), the output the int32 masked sum of the last layer's int8 states (1, hidden)."""
    from edgeq.dialect_passes import pipeline_for

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    example = (torch.zeros(1, seq_len, dtype=torch.int32), torch.ones(1, seq_len, dtype=torch.int32))
    torch_mlir = out_dir / "model.torch.mlir"
    torch_mlir.write_text(export_mlir(model, example))
    passes = pipeline_for(target)
    vmfb, flags, spec, tuning = _compile_for(torch_mlir, target, out_dir, passes,
                                             [t.numpy() for t in example] if tune else None)
    hidden = int(model.output_scale.numel())
    manifest = Manifest(
        model=name, target=spec, flags=flags,
        bits=model.plan.to_json() | {"config": asdict(model.config), "nonlinearities": NONLINEARITIES},
        passes=passes, versions=versions(),
        inputs=[{"shape": [1, seq_len], "dtype": "int32"}] * 2, outputs=[{"shape": [1, hidden], "dtype": "int32"}],
        input_qparams={}, output_scale=model.output_scale.tolist(), output_zero_point=0,
        files={"vmfb": vmfb.name, "torch_mlir": torch_mlir.name, **STAGE_FILES}, tuning=tuning)
    manifest.save(out_dir / "manifest.json")
    return Artifact(out_dir, manifest)
