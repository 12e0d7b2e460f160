"""accel-sim: the hardware file, the dispatches read from the IR, the cost model against SCALE-Sim, and the target
in the loop (int4 and int2 pay off where the hardware says they do)."""
import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from edgeq import models
from edgeq.errors import EdgeqError
from edgeq.pipeline.compile import compile_model
from edgeq.quant import Plan, quantize, to_integer
from edgeq.targets.accel_sim import cost, scalesim, simulate
from edgeq.targets.accel_sim.hardware import DEFAULT, HardwareModel
from edgeq.targets.accel_sim.workload import dispatches

HW = HardwareModel.load(DEFAULT)


def _tiny_mobile():
    """conv, depthwise conv, pointwise conv, pool, linear: every contraction kind a CNN gives accel-sim."""
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                      nn.Conv2d(8, 8, 3, 1, 1, groups=8, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                      nn.Conv2d(8, 40, 1, bias=False), nn.BatchNorm2d(40), nn.ReLU(),
                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(40, 5))
    return m.eval()


def _compile(module, example, bits, tmp_path, hw=None):
    im = to_integer(quantize(module, Plan.uniform(bits), example), example[:1])
    target = f"accel-sim:{hw}" if hw else "accel-sim"
    return compile_model(im, example[:1], target, tmp_path / bits, "m", Plan.uniform(bits).to_json())


def _macs(module, example) -> int:
    """MACs of conv and linear layers, counted by torch forward hooks (independent of the IR)."""
    total = 0

    def hook(layer, args, out):
        nonlocal total
        if isinstance(layer, nn.Conv2d):
            total += out.numel() * layer.in_channels // layer.groups * math.prod(layer.kernel_size)
        else:
            total += out.numel() * layer.in_features
    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        module(example[:1])
    for h in handles:
        h.remove()
    return total


@pytest.fixture(scope="module")
def mobile(tmp_path_factory):
    module, x = _tiny_mobile(), torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    return module, x, _compile(module, x, "w8a8", tmp_path_factory.mktemp("mobile"))


def test_dispatches_cover_every_mac_of_the_model(mobile):
    module, x, art = mobile
    work = dispatches((art.out_dir / "model.edgeq.mlir").read_text())
    systolic = [d for d in work if d.kind == "systolic"]
    assert [d.name.split("#")[0] for d in systolic] == [
        "conv_2d_nchw_fchw", "depthwise_conv_2d_nchw_chw", "conv_2d_nchw_fchw", "matmul"]
    assert sum(d.gemm.macs for d in systolic) == _macs(module, x)
    assert systolic[1].gemm.groups == 8 and systolic[1].gemm.filters == 1
    assert [d.kind for d in work].count("vector") == 1                    # the global average pool
    assert systolic[0].gemm.pixels == 8 * 8 and systolic[0].gemm.stride == 2


def test_compute_cycles_match_scalesim(mobile, digits, tmp_path):
    """Every contraction of both models (stride 2, depthwise, 1x1, matmul) on every dataflow, against SCALE-Sim
    3.0's cycle-level run: equal but for one cycle per GEMM (SCALE-Sim reports the 0-based index of the last ofmap
    write, double_buffered_scratchpad_mem.py, not the count)."""
    gemms = {}
    for name, (module, x) in {"mobile": mobile[:2], "digits": (digits.module, digits.calibration)}.items():
        art = mobile[2] if name == "mobile" else _compile(module, x, "w8a8", tmp_path)
        for d in dispatches((art.out_dir / "model.edgeq.mlir").read_text()):
            if d.gemm:
                gemms[f"{name}_{d.name}"] = d.gemm
    for dataflow in ("ws", "os", "is"):
        hw = dataclasses.replace(HardwareModel.load(DEFAULT), rows=8, cols=8, dataflow=dataflow)
        reference = scalesim.compute_cycles(gemms, hw)
        for name, g in gemms.items():
            assert cost.compute_cycles(g, hw) - reference[name] == g.groups, (dataflow, name)


def test_low_bits_pay_off_as_the_hardware_says(mobile, tmp_path):
    module, x, art8 = mobile
    sims = {bits: simulate((art8 if bits == "w8a8" else _compile(module, x, bits, tmp_path)).out_dir, HW)
            for bits in ("w8a8", "w4a8", "w2a8")}
    assert sims["w2a8"].latency_ms < sims["w4a8"].latency_ms < sims["w8a8"].latency_ms
    assert sims["w2a8"].energy_uj < sims["w4a8"].energy_uj < sims["w8a8"].energy_uj
    work = dispatches((art8.out_dir / "model.edgeq.mlir").read_text())
    for d, c8, c4 in zip(work, sims["w8a8"].dispatches, sims["w4a8"].dispatches):
        if d.kind == "systolic":   # weight-stationary: 2 MACs per PE halve the window's row folds, when it has two
            assert (c8.precision, c4.precision) == ("w8a8", "w4a8")
            fewer_folds = math.ceil(d.gemm.window / HW.rows) > math.ceil(d.gemm.window / (2 * HW.rows))
            assert (c4.compute_cycles < c8.compute_cycles) == fewer_folds and c4.compute_cycles <= c8.compute_cycles
    # A hardware without 2-bit weights runs a w2a8 layer in its w4a8 mode.
    no_w2 = dataclasses.replace(HW, precisions=tuple(p for p in HW.precisions if p.w_bits != 2))
    w2_on_w4 = simulate(tmp_path / "w2a8", no_w2)
    assert {d.precision for d in w2_on_w4.dispatches if d.kind == "systolic"} == {"w4a8"}


def test_memory_bound_dispatch_moves_packed_weights(mobile, tmp_path):
    """With DRAM the bottleneck, W4 weights cost half the bytes of W8 ones (read once, weight-stationary)."""
    module, x, art8 = mobile
    slow = dataclasses.replace(HW, dram_gbps=0.05)
    art4 = _compile(module, x, "w4a8", tmp_path)
    s8, s4 = simulate(art8.out_dir, slow), simulate(art4.out_dir, slow)
    work = [d for d in dispatches((art8.out_dir / "model.edgeq.mlir").read_text()) if d.kind == "systolic"]
    for d, c8, c4 in zip(work, [c for c in s8.dispatches if c.kind == "systolic"],
                         [c for c in s4.dispatches if c.kind == "systolic"]):
        assert c8.dram_bytes - c4.dram_bytes == pytest.approx(d.weight_elems / 2)
        assert c8.cycles == c8.memory_cycles > c8.compute_cycles


@pytest.mark.parametrize("edit,problem", [
    (lambda t: t.replace('dataflow = "ws"', 'dataflow = "rs"'), "array.dataflow is 'rs'"),
    (lambda t: t.replace("rows = 32", "rows = -4"), "array.rows is -4"),
    (lambda t: t.replace("rows = 32", "rows = 3.5"), "array.rows is 3.5"),
    (lambda t: t.replace("[vector]", "[vectors]"), "missing [vector] table"),
    (lambda t: t.replace("w4a8 = {", "int4 = {"), "entry 'int4'"),
    (lambda t: t.replace("dram_gbps = 12.8", "dram_gbps = fast"), "not valid TOML"),
])
def test_hardware_file_errors_name_the_key(tmp_path, edit, problem):
    path = tmp_path / "hw.toml"
    path.write_text(edit(DEFAULT.read_text()))
    with pytest.raises(EdgeqError) as e:
        HardwareModel.load(path)
    assert problem in e.value.problem and e.value.fix


def test_hardware_round_trips_and_refuses_missing_precisions():
    assert HardwareModel.from_json(json.loads(json.dumps(HW.to_json()))) == HW
    assert HW.precision(8, 4).tag == "w8a8" and HW.precision(2, 4).tag == "w4a4"
    with pytest.raises(EdgeqError, match="no mode for w8a16"):
        HW.precision(8, 16)
    with pytest.raises(EdgeqError, match="not found"):
        HardwareModel.load("/nonexistent/hw.toml")


def test_simulation_refuses_a_manifest_that_does_not_match_the_ir(mobile, tmp_path):
    import shutil

    shutil.copytree(mobile[2].out_dir, tmp_path / "m")
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    manifest["layers"][1]["weight"] = [9, 1, 3, 3]
    (tmp_path / "m" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(EdgeqError, match="has 72 weights"):
        simulate(tmp_path / "m", HW)
    del manifest["layers"]
    (tmp_path / "m" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(EdgeqError, match="no simulatable module"):
        simulate(tmp_path / "m", HW)


def test_optimize_meets_three_budgets_between_w4_and_w8(digits, tmp_path):
    """Issue 4's figure where low bits are faster: on accel-sim every budget between uniform W4A8 and W8A8 is met,
    with a plan that mixes 4- and 8-bit layers (the uniform ones are the ends); every module is bit-exact."""
    from edgeq.pipeline.optimize import optimize

    uniform = {}
    for bits in ("w4a8", "w8a8"):
        art = _compile(digits.module, digits.calibration, bits, tmp_path)
        uniform[bits] = art.measure([np.zeros(art.manifest.inputs[0]["shape"], np.int8)]).median_ms
    lo, hi = uniform["w4a8"], uniform["w8a8"]
    assert lo < 0.8 * hi
    for f in (0.25, 0.5, 0.75):
        budget = lo + f * (hi - lo)
        r = optimize(digits, "accel-sim", budget, tmp_path / f"b{f}", w_bits=(4, 8), repetitions=3)
        chosen = r.iterations[r.chosen]
        assert r.met and chosen.measured_ms <= budget and all(it.bit_exact for it in r.iterations), r.reason
        assert {"w4a8", "w8a8"} <= set(chosen.plan.values())
