"""The integer-only model against the fake-quant simulation and independent float64 arithmetic."""
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from edgeq import models
from edgeq.errors import EdgeqError
from edgeq.models.digits import accuracy
from edgeq.quant import Plan, quantize, to_integer
from edgeq.quant.fold import fold_batchnorms
from edgeq.quant.graph import trace
from edgeq.quant.integer import IntConv2d


class ConvReluConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.c2 = nn.Conv2d(8, 4, 3, padding=1)

    def forward(self, x):
        return self.c2(torch.relu(self.c1(x)))


@pytest.mark.parametrize("w_bits,a_bits", [(8, 8), (4, 8), (4, 4), (2, 6)])
def test_accumulator_exact_and_requant_within_one_step(w_bits, a_bits):
    model = ConvReluConv().eval()
    cal = torch.randn(16, 3, 12, 12)
    qgm = quantize(model, Plan.uniform(f"w{w_bits}a{a_bits}"), cal)
    im = to_integer(qgm, cal[:1])
    x = cal[:4]
    q_x = im.quantize_input(x)
    # 1. The last conv's int32 output (no requant) equals an independent float64 conv of the integers it reads:
    #    exact, since every partial sum is an integer below 2^53.
    c1, c2 = im.graph_module.c1, im.graph_module.c2
    h_q = c1(q_x)
    acc = im.graph_module(q_x)
    ref = F.conv2d(F.pad(h_q.double() - c2.zp_in, (1, 1, 1, 1)), c2.w_i8.double(),
                   qgm.c2.quantized_bias().double(), padding=0)
    assert torch.equal(acc.double(), ref)
    # 2. The requantized hidden activation is within one step of the fake-quant simulation's, and mostly equal.
    act = qgm.act_relu.qparams
    fq_hidden = qgm.act_relu(torch.relu(qgm.c1(qgm.act_x(x))))
    q_sim = torch.round(fq_hidden.double() / act.scale) + act.zero_point
    diff = (h_q.double() - q_sim).abs()
    assert diff.max() <= 1 and (diff == 0).float().mean() > 0.95
    # 3. And the fake-quant model's output equals the integer output dequantized, up to float32 rounding.
    assert torch.allclose(qgm(x), im.dequantize_output(acc), rtol=1e-4, atol=1e-4 * float(acc.abs().max()) * 1e-3 + 1e-4)


def test_bn_folding_preserves_fp32():
    m = models.load("resnet18", (1, 3, 64, 64))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        before = m.module(x)
        folded = fold_batchnorms(trace(m.module))
        after = folded(x)
    assert not any(isinstance(mod, nn.BatchNorm2d) for mod in folded.modules())
    assert torch.allclose(before, after, rtol=1e-5, atol=1e-5 * float(before.abs().max()))


def test_digits_w8a8_within_half_a_point_of_fp32(digits):
    x, y = digits.test_set
    with torch.no_grad():
        fp32 = accuracy(digits.module(x), y)
        im = to_integer(quantize(digits.module, Plan.uniform("w8a8"), digits.calibration), x[:1])
        int8 = accuracy(im.dequantize_output(im.graph_module(im.quantize_input(x))), y)
    print(f"digits fp32 {fp32:.2f}%  integer W8A8 {int8:.2f}%")
    assert fp32 > 95 and abs(fp32 - int8) <= 0.5


def test_integer_graph_is_integer_only(digits):
    im = to_integer(quantize(digits.module, Plan.uniform("w8a8"), digits.calibration), digits.calibration[:1])
    floats = [n for n, b in im.graph_module.named_buffers() if b.is_floating_point()]
    assert floats == [] and any(isinstance(m, IntConv2d) for m in im.graph_module.modules())


class Sigmoid(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        return torch.sigmoid(self.c(x))  # the line the error must name


def test_unsupported_op_names_op_and_source_line():
    with pytest.raises(EdgeqError) as e:
        quantize(Sigmoid(), Plan(), torch.randn(2, 3, 4, 4))
    assert "sigmoid" in str(e.value) and "test_integer.py:" in str(e.value) and "fix:" in str(e.value)


def test_corrupt_plan_file(tmp_path):
    p = tmp_path / "plan.json"
    p.write_text('{"default": {"w_bits": 8, "a_bits"')
    with pytest.raises(EdgeqError, match="corrupt"):
        Plan.load(p)
    p.write_text('{"default": {"w_bits": 12, "a_bits": 8}}')
    with pytest.raises(EdgeqError, match="weight bit-width 12 is out of range"):
        Plan.load(p)


def test_plan_round_trips_json(tmp_path):
    from edgeq.quant import LayerSpec

    plan = Plan(LayerSpec(8, 8), {"layer1.0.conv1": LayerSpec(4, 8), "fc": LayerSpec(2, 4)})
    plan.save(tmp_path / "p.json")
    assert Plan.load(tmp_path / "p.json") == plan
