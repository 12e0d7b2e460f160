"""ZeroQ's sensitivity: the KL divergence of the model's outputs when one layer alone is quantized (ZeroQ eq. (3)).

Ω_w(l, b) = KL(p_fp32 ‖ p with layer l's weights at b bits); Ω_a(l, a) likewise with its input at a bits.
Measured on the data given, which for a data-free run is ZeroQ's distilled data.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import fx
from torch.nn import functional as F

from edgeq.quant.quantizer import quantize_weight
from edgeq.sensitivity._objective import activation_qparams


def _input_of(gm: fx.GraphModule, module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    captured = []
    h = module.register_forward_pre_hook(lambda _m, args: captured.append(args[0]))
    try:
        gm(x)
    finally:
        h.remove()
    return captured[0]


def _kl(ref_log_p: torch.Tensor, logits: torch.Tensor) -> float:
    return float(F.kl_div(F.log_softmax(logits, 1), ref_log_p, reduction="batchmean", log_target=True))


@torch.no_grad()
def kl_sensitivity(gm: fx.GraphModule, x: torch.Tensor, layers: list[str], bits: Iterable[int],
                   progress: Callable[[int, int], None] | None = None
                   ) -> tuple[list[dict[int, float]], list[dict[int, float]]]:
    """(Ω_w per layer, Ω_a per layer), each a map bits -> KL."""
    bits = list(bits)
    ref = F.log_softmax(gm(x), 1)
    omega_w, omega_a = [], []
    total, done = len(layers) * len(bits) * 2, 0
    for name in layers:
        m = gm.get_submodule(name)
        w = m.weight.data.clone()
        ow, oa = {}, {}
        for b in bits:
            q, s = quantize_weight(w, b)
            m.weight.data = (q.double() * s.view(-1, *[1] * (w.dim() - 1))).float()
            try:
                ow[b] = _kl(ref, gm(x))
            finally:
                m.weight.data = w
            done += 1
            if progress:
                progress(done, total)

        a = _input_of(gm, m, x)
        for b in bits:
            qp = activation_qparams(a, b)
            h = m.register_forward_pre_hook(lambda _m, args, qp=qp: (qp.fake_quantize(args[0]),))
            try:
                oa[b] = _kl(ref, gm(x))
            finally:
                h.remove()
            done += 1
            if progress:
                progress(done, total)
        omega_w.append(ow)
        omega_a.append(oa)
    return omega_w, omega_a
