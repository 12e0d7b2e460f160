"""Sensitivity against independent references: the exact Hessian of a tiny network, and ZeroQ's own objective."""
import json

import pytest
import torch
from scipy.stats import spearmanr
from torch import nn
from torch.autograd.functional import hessian
from torch.nn import functional as F

from edgeq import sensitivity
from edgeq.errors import EdgeqError
from edgeq.sensitivity._objective import Objective, folded
from edgeq.sensitivity.distill import bn_statistics_loss
from edgeq.sensitivity.hutchinson import hutchinson
from edgeq.sensitivity.power_iteration import power_iteration
from edgeq.sensitivity.table import Sensitivity


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.bn = nn.BatchNorm2d(2)
        self.fc = nn.Linear(32, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))


def _tiny():
    torch.manual_seed(0)
    model = Tiny().eval()
    model.bn.running_mean.uniform_(-0.2, 0.2)
    model.bn.running_var.uniform_(0.5, 2.0)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 1, 4, 4, generator=g)
    y = torch.randint(0, 3, (4,), generator=g)
    return model, x, y


def _exact_blocks(model, x, y):
    """The Hessian of each block, by torch.autograd.functional.hessian on a hand-written forward."""
    gm = folded(model)
    wc, bc, wf, bf = gm.conv.weight.detach(), gm.conv.bias.detach(), gm.fc.weight.detach(), gm.fc.bias.detach()

    def loss(logits):
        if y is not None:
            return F.cross_entropy(logits, y)
        ref = F.log_softmax(forward(wc, x, wf, 0).detach(), 1)
        return F.kl_div(F.log_softmax(logits, 1), ref, reduction="batchmean", log_target=True)

    def forward(w_conv, x_in, w_fc, d_fc):
        h = torch.relu(F.conv2d(x_in, w_conv, bc, padding=1)).flatten(1)
        return F.linear(h + d_fc, w_fc, bf)

    h0 = torch.relu(F.conv2d(x, wc, bc, padding=1)).flatten(1)
    return {
        ("conv", "w"): hessian(lambda w: loss(forward(w, x, wf, 0)), wc),
        ("conv", "a"): hessian(lambda d: loss(forward(wc, x + d, wf, 0)), torch.zeros_like(x)),
        ("fc", "w"): hessian(lambda w: loss(forward(wc, x, w, 0)), wf),
        ("fc", "a"): hessian(lambda d: loss(forward(wc, x, wf, d)), torch.zeros_like(h0)),
    }


@pytest.mark.parametrize("labels", [True, False], ids=["cross-entropy", "kl-to-fp32"])
def test_trace_and_eigenvalue_match_the_exact_hessian(labels):
    model, x, y = _tiny()
    y = y if labels else None
    exact = {b: h.reshape(h.shape[: h.dim() // 2].numel(), -1).double() for b, h in _exact_blocks(model, x, y).items()}
    objective = Objective(folded(model), x, y)
    assert objective.blocks == list(exact)
    traces = hutchinson(objective, tol=0.0, min_probes=2, max_probes=2000, generator=torch.Generator().manual_seed(3))
    eigens = power_iteration(objective, tol=1e-7, max_iter=2000, generator=torch.Generator().manual_seed(4))
    for block, t, e in zip(objective.blocks, traces, eigens):
        h = exact[block]
        true_trace = float(torch.trace(h))
        assert abs(t.value - true_trace) <= 3 * t.stderr, (block, t, true_trace)
        assert t.stderr < 0.2 * abs(true_trace) + 1e-6, (block, t)   # the estimate is informative, not just wide
        eig = torch.linalg.eigvalsh(h)
        top = float(eig[eig.abs().argmax()])
        assert e.converged and abs(e.value - top) <= 0.01 * abs(top), (block, e, top)
        if not labels:  # the KL Hessian at the fp32 point is a Gauss-Newton matrix: positive semi-definite
            assert float(eig.min()) > -1e-6 and true_trace > 0


def test_power_iteration_reports_non_convergence():
    model, x, y = _tiny()
    est = power_iteration(Objective(folded(model), x, y), tol=0.0, max_iter=3)
    assert all(not e.converged and e.steps == 3 for e in est)


def test_trace_stops_when_the_running_mean_settles(digits):
    x, y = digits.calibration[:64], digits.labels[:64]
    loose = sensitivity.trace(digits.module, x, y, tol=0.05, use_cache=False)
    tight = sensitivity.trace(digits.module, x, y, tol=0.002, use_cache=False)
    assert all(16 <= l.stat_w.steps < 256 and l.stat_w.steps % 8 == 0 and l.stat_w.converged and l.stat_w.stderr > 0
               for l in loose.layers)
    assert sum(l.stat_w.steps for l in tight.layers) > 2 * sum(l.stat_w.steps for l in loose.layers)


def test_distilled_data_matches_batchnorm_statistics(digits):
    x = sensitivity.distill(digits.module, digits.input_shape, n=64, iterations=200)
    noise = torch.randn_like(x)
    assert bn_statistics_loss(digits.module, x) < 0.02 * bn_statistics_loss(digits.module, noise)
    assert bn_statistics_loss(digits.module, x) < bn_statistics_loss(digits.module, digits.calibration)


def test_data_free_trace_ranks_layers_like_real_data(digits):
    real = sensitivity.trace(digits.module, digits.calibration, digits.labels)
    free = sensitivity.trace(digits.module, sensitivity.distill(digits.module, digits.input_shape, n=256))
    rho = spearmanr([l.omega_w[4] for l in real.layers], [l.omega_w[4] for l in free.layers]).statistic
    assert rho >= 0.8


def test_kl_sensitivity_is_monotone_in_bits(digits):
    s = sensitivity.kl(digits.module, digits.calibration[:128])
    for layer in s.layers:
        assert layer.omega_w[2] > layer.omega_w[4] > layer.omega_w[8] >= 0
        assert layer.omega_a[2] > layer.omega_a[8] >= 0


def test_omega_is_trace_over_n_times_quantization_error(digits):
    """HAWQ-V2 eq. (5), checked against a quantization error computed here with numpy."""
    s = sensitivity.trace(digits.module, digits.calibration[:64], digits.labels[:64], tol=0.05)
    w = folded(digits.module).get_submodule("fc").weight.detach().double().numpy()
    qmax = 7  # 4 bits, restricted symmetric range
    scale = abs(w).max(axis=1, keepdims=True) / qmax
    err = ((scale * (w / scale).round().clip(-qmax, qmax) - w) ** 2).sum()
    fc = s.layer("fc")
    assert fc.omega_w[4] == pytest.approx(fc.stat_w.value / w.size * err, rel=1e-9)
    assert (fc.n_params, fc.n_bias, fc.macs, fc.a_numel) == (320, 10, 320, 32)


def test_results_are_cached_and_a_corrupt_entry_is_recomputed(digits, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEQ_CACHE", str(tmp_path))
    x, y = digits.calibration[:32], digits.labels[:32]
    first = sensitivity.trace(digits.module, x, y, tol=0.05)
    entries = list((tmp_path / "sensitivity").glob("*.json"))
    assert len(entries) == 1
    assert sensitivity.trace(digits.module, x, y, tol=0.05) == first   # same seconds: read, not recomputed
    entries[0].write_text("{ torn")
    again = sensitivity.trace(digits.module, x, y, tol=0.05)
    assert again.layers == first.layers and again.seconds != first.seconds
    assert json.loads(entries[0].read_text())["method"] == "trace"
    sensitivity.trace(digits.module, x, y, tol=0.1)  # other settings: another entry
    assert len(list((tmp_path / "sensitivity").glob("*.json"))) == 2


def test_layer_subsets_and_errors(digits):
    s = sensitivity.eigen(digits.module, digits.calibration[:32], digits.labels[:32], layers=["fc", "conv1"])
    assert [l.name for l in s.layers] == ["conv1", "fc"]
    with pytest.raises(EdgeqError, match="no conv or linear layer named"):
        sensitivity.trace(digits.module, digits.calibration[:32], layers=["nope"])
    with pytest.raises(EdgeqError, match="no BatchNorm"):
        sensitivity.distill(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), (1, 1, 8, 8))


def test_table_round_trips_and_rejects_corrupt_files(digits, tmp_path):
    s = sensitivity.trace(digits.module, digits.calibration[:32], digits.labels[:32], tol=0.05)
    s.save(tmp_path / "s.json")
    assert Sensitivity.load(tmp_path / "s.json") == s
    (tmp_path / "bad.json").write_text('{"model": "m"}')
    with pytest.raises(EdgeqError, match="corrupt"):
        Sensitivity.load(tmp_path / "bad.json")
    with pytest.raises(EdgeqError, match="no sensitivity for 3 bits"):
        sensitivity.trace(digits.module, digits.calibration[:32], bits=(2, 4, 8), tol=0.05).layers[0].omega(3, 8)
