""".tflite -> TOSA -> IREE module for any edgeq target, checked against LiteRT on the same inputs.

IREE's own TFLite importer (iree-import-tflite) needs TensorFlow, and with TensorFlow >= 2.20 it no longer runs
(it imports a symbol TF stopped exporting). Arm's tosa-converter-for-tflite does the same translation in a 25 MB
wheel with no TensorFlow. From its TOSA bytecode on, the module is compiled like one of edgeq's (compile_mlir):
IREE's input pipeline, edgeq's passes for the target, the backend.

Tolerance: float models are compared with LiteRT (XNNPACK) to a relative tolerance (they sum in different
orders); int8 models with TFLite's reference kernels, which define its integer arithmetic, to within one LSB: TOSA's
RESCALE is TFLite's double-rounding multiplier, but not every op's integer steps are TFLite's own. Measured
at most 1 LSB on digits, ResNet-18 and MobileNetV2 (edgeq's exports); XNNPACK differs from the reference kernels
by up to 2 LSB on ResNet-18.
"""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np

from edgeq.errors import EdgeqError
from edgeq.dialect_passes import pipeline_for
from edgeq.pipeline.compile import STAGE_FILES, Artifact, Manifest, compile_mlir, versions
from edgeq.targets import get
from edgeq.tflite import _EXTRA, TFLiteModel, pack, schema

FLOAT_RTOL = 1e-3     # of the output's largest magnitude
INT_ATOL = 1          # LSB


@dataclass
class Comparison:
    """How a compiled module's outputs compare with LiteRT's on one input."""

    max_abs_diff: list[float]          # per output
    scale: list[float]                 # per output: largest |LiteRT value| (float) or 1 LSB (integer)
    differing: list[float]             # per output: fraction of elements that differ at all
    tolerance: str

    @property
    def ok(self) -> bool:
        limit = [FLOAT_RTOL * s if self.tolerance == "float" else INT_ATOL for s in self.scale]
        return all(d <= t for d, t in zip(self.max_abs_diff, limit))

    def summary(self) -> str:
        return (f"max |difference| from LiteRT {self.max_abs_diff} (tolerance {self.to_json()['tolerance']}): "
                f"{'yes' if self.ok else 'NO'}")

    def to_json(self) -> dict:
        return {"max_abs_diff": self.max_abs_diff, "reference_scale": self.scale, "differing": self.differing,
                "tolerance": f"{FLOAT_RTOL} of the largest |output|" if self.tolerance == "float" else
                             f"{INT_ATOL} LSB", "ok": self.ok}


def compare(got: list[np.ndarray], ref: list[np.ndarray]) -> Comparison:
    if len(got) != len(ref) or any(g.shape != r.shape for g, r in zip(got, ref)):
        raise EdgeqError(f"the module returns {[g.shape for g in got]}, LiteRT {[r.shape for r in ref]}",
                         "report this model: the TOSA import changed its outputs")
    is_float = any(r.dtype.kind == "f" for r in ref)
    diff = [np.abs(g.astype(np.float64) - r.astype(np.float64)) for g, r in zip(got, ref)]
    return Comparison([float(d.max()) for d in diff],
                      [float(np.abs(r).max()) if is_float else 1.0 for r in ref],
                      [float((d > 0).mean()) for d in diff], "float" if is_float else "int")


def reference_input(detail: dict, seed: int = 0) -> np.ndarray:
    """Seeded input over the tensor's range: the full int8 range, or [-1, 1] for float (normalised images)."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(detail["dtype"])
    if dtype.kind == "f":
        return rng.uniform(-1, 1, detail["shape"]).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, detail["shape"], endpoint=True).astype(dtype)


def _tosa(tflite: Path, out: Path) -> None:
    if importlib.util.find_spec("tosa_converter_for_tflite") is None:
        raise EdgeqError("tosa-converter-for-tflite is not installed", _EXTRA)
    proc = subprocess.run([sys.executable, "-m", "tosa_converter_for_tflite.cli", str(tflite), "--bytecode", "-o",
                           str(out)], capture_output=True, text=True)
    if proc.returncode != 0 or not out.exists():
        lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if "rror" in ln][:3]
        raise EdgeqError(f"{tflite.name} could not be translated to TOSA: {' | '.join(lines) or 'no output'}",
                         "the model uses an op TOSA cannot express; see tosa-converter-for-tflite --verbose")


def widen_fp16_weights(src: Path, dst: Path) -> int:
    """Write src with every fp16 constant that a DEQUANTIZE widens replaced by its fp32 values: the same numbers
    (fp16 -> fp32 is exact, and it is what LiteRT computes), for targets without fp16 storage (Vulkan's baseline:
    declaring Float16 there compiles, but lavapipe then computes wrong outputs). Returns how many it widened."""
    fb = schema()
    model = fb.ModelT.InitFromPackedBuf(src.read_bytes(), 0)
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    widened = 0
    for graph in model.subgraphs:
        kept = []
        for op in graph.operators:
            src_t, out_t = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
            data = model.buffers[src_t.buffer].data if src_t.buffer else None
            if codes[op.opcodeIndex] == fb.BuiltinOperator.DEQUANTIZE and src_t.type == fb.TensorType.FLOAT16 \
                    and data is not None:
                buf = fb.BufferT()
                buf.data = np.frombuffer(np.frombuffer(bytes(data), np.float16).astype(np.float32).tobytes(), np.uint8)
                model.buffers.append(buf)
                out_t.buffer = len(model.buffers) - 1
                widened += 1
            else:
                kept.append(op)
        graph.operators = kept
    dst.write_bytes(pack(model))
    return widened


def _qparams(detail: dict) -> tuple[float, int]:
    scale, zero_point = detail["quantization"]
    return float(scale), int(zero_point)


def import_tflite(tflite: str | Path, target: str, out_dir: str | Path) -> tuple[Artifact, Comparison]:
    """Compile a .tflite model for `target` into out_dir (like `edgeq compile`), run it there on a seeded input and
    compare it with LiteRT (its reference kernels for an integer model). The input and LiteRT's outputs are saved as
    the module's reference."""
    tflite, out_dir = Path(tflite), Path(out_dir)
    if not tflite.is_file():
        raise EdgeqError(f"{tflite} not found", "give the path of a .tflite file")
    model = TFLiteModel(tflite)
    integer = all(np.dtype(d["dtype"]).kind in "iu" for d in model.inputs + model.outputs)
    if integer:
        model = TFLiteModel(tflite, reference_kernels=True)
    target_ = get(target)
    if target_.spec.hardware is not None and not integer:
        raise EdgeqError(f"{tflite.name} is a float model and accel-sim simulates integer precisions only",
                         "quantize it to int8 first (e.g. with ai-edge-quantizer), or choose another target")
    target_.check_available()
    spec = target_.spec
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tflite, out_dir / "model.tflite")
    if spec.name == "vulkan" and widen_fp16_weights(tflite, out_dir / "model.fp32-weights.tflite"):
        _tosa(out_dir / "model.fp32-weights.tflite", out_dir / "model.tosa.mlirbc")
    else:
        _tosa(out_dir / "model.tflite", out_dir / "model.tosa.mlirbc")
    passes = pipeline_for(spec.name)     # on Vulkan, TOSA's i64 RESCALE becomes i32 words (edgeq-emulate-i64)
    _, flags = compile_mlir(out_dir / "model.tosa.mlirbc", spec, out_dir, passes)

    layers = []
    if spec.hardware is not None:   # accel-sim: its contractions, which run in the array's int8 mode
        from edgeq.targets.accel_sim.workload import dispatches

        layers = [{"name": d.name, "weight": [d.weight_elems]}
                  for d in dispatches((out_dir / "model.edgeq.mlir").read_text()) if d.kind == "systolic"]
    in_scale, in_zp = _qparams(model.inputs[0])
    manifest = Manifest(
        model=tflite.stem, target=spec, bits={"default": {"w_bits": 8, "a_bits": 8}} if integer else {},
        flags=flags, passes=passes, versions={**versions(), "tosa-converter-for-tflite": version("tosa-converter-for-tflite"),
                                          "ai-edge-litert": version("ai-edge-litert")},
        inputs=[{"shape": [int(s) for s in d["shape"]], "dtype": np.dtype(d["dtype"]).name} for d in model.inputs],
        outputs=[{"shape": [int(s) for s in d["shape"]], "dtype": np.dtype(d["dtype"]).name} for d in model.outputs],
        input_qparams={"scale": in_scale, "zero_point": in_zp, "bits": 8} if integer else {},
        output_scale=[_qparams(d)[0] for d in model.outputs], output_zero_point=_qparams(model.outputs[0])[1],
        files={"vmfb": "model.vmfb", "tflite": "model.tflite", "tosa": "model.tosa.mlirbc", **STAGE_FILES},
        layers=layers, reference="tflite")
    manifest.save(out_dir / "manifest.json")
    artifact = Artifact(out_dir, manifest)

    inputs = [reference_input(d, seed=i) for i, d in enumerate(model.inputs)]
    ref = model.run(inputs)
    for stem, arrays in (("reference_input", inputs), ("reference_output", ref)):
        for i, a in enumerate(arrays):
            np.save(out_dir / f"{stem}{i or ''}.npy", a)
    return artifact, compare(artifact.run(inputs), ref)
