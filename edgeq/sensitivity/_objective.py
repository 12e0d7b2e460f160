"""The loss as a function of every layer's weight and input activation, its gradient kept for Hessian products.

A *block* is one tensor the quantizer perturbs: a weighted layer's weight (`w`) or the activation it reads (`a`).
Activations become differentiable through a zero tensor δ added at each layer's input by a forward pre-hook:
∂L/∂δ at δ = 0 is the gradient with respect to that activation. The forward pass and the first backward
(create_graph=True) run once; every Hessian-vector product afterwards is one more backward through that
retained graph, so no probe rebuilds it (PyHessian rebuilds it per data batch and probe).

Loss: cross-entropy when labels are given; otherwise KL(p_fp32 || p) against the model's own outputs, whose
Hessian at the fp32 point is the generalised Gauss-Newton matrix (PSD), so data-free sensitivities need no labels.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import fx, nn
from torch.nn import functional as F

from edgeq.errors import EdgeqError
from edgeq.quant.fold import fold_batchnorms
from edgeq.quant.graph import trace as fx_trace
from edgeq.quant.quantizer import QParams, RangeObserver, quantize_weight


@dataclass(frozen=True)
class LayerInfo:
    """What allocation needs to know of a layer: sizes per sample, not per batch."""

    name: str
    n_params: int       # weight elements
    n_bias: int         # int32 bias elements
    macs: int           # multiply-accumulates per sample
    a_numel: int        # elements of the input activation per sample


def folded(module: nn.Module) -> fx.GraphModule:
    """The graph the quantizer sees: BatchNorm folded, so the Hessian is taken w.r.t. the weights that get quantized."""
    return fold_batchnorms(fx_trace(module.eval()))


def weighted_layers(gm: fx.GraphModule) -> list[str]:
    """Full dotted names of the conv and linear layers, in graph order."""
    return [str(n.target) for n in gm.graph.nodes
            if n.op == "call_module" and isinstance(gm.get_submodule(n.target), (nn.Conv2d, nn.Linear))]


def weight_error(w: torch.Tensor, bits: int, groups: int | None = None) -> float:
    """‖Q_b(W) − W‖² for the symmetric quantizer the model will use (per channel, or `groups` row groups)."""
    q, s = quantize_weight(w, bits, groups)
    return float((q.double() * s.view(-1, *[1] * (w.dim() - 1)) - w.double()).pow(2).sum())


def activation_qparams(a: torch.Tensor, bits: int) -> QParams:
    """The min/max calibration the quantizer uses (unsigned when a ≥ 0)."""
    obs = RangeObserver("minmax")
    obs.observe(a)
    lo, hi = obs.range()
    return QParams.from_range(lo, hi, bits, unsigned=lo >= 0)


def activation_error(a: torch.Tensor, bits: int) -> float:
    """‖Q_b(a) − a‖²."""
    return float((activation_qparams(a, bits).fake_quantize(a).double() - a.double()).pow(2).sum())


class Objective:
    """One retained forward/backward of the loss on (x, y); blocks are (layer, 'w' | 'a') in graph order."""

    def __init__(self, gm: fx.GraphModule, x: torch.Tensor, y: torch.Tensor | None = None,
                 layers: list[str] | None = None, kinds: str = "wa"):
        self.gm = gm.eval()
        all_layers = weighted_layers(gm)
        self.layers = [l for l in all_layers if layers is None or l in layers]
        unknown = set(layers or ()) - set(all_layers)
        if unknown:
            raise EdgeqError(f"no conv or linear layer named {sorted(unknown)}",
                             f"choose among {', '.join(all_layers)}")
        self.activations: dict[str, torch.Tensor] = {}
        deltas: dict[str, torch.Tensor] = {}
        infos: dict[str, LayerInfo] = {}
        n = len(x)

        def pre_hook(name):
            def hook(_module, args):
                a = args[0]
                self.activations[name] = a.detach()
                deltas[name] = torch.zeros_like(a, requires_grad=True)
                return (a + deltas[name],)
            return hook

        def post_hook(name):
            def hook(module, args, out):
                w = module.weight
                infos[name] = LayerInfo(name, w.numel(), w.shape[0], out.numel() // n * (w[0].numel()),
                                        args[0].numel() // n)
            return hook

        handles = []
        for name in self.layers:
            m = gm.get_submodule(name)
            m.weight.requires_grad_(True)
            handles += [m.register_forward_pre_hook(pre_hook(name)), m.register_forward_hook(post_hook(name))]
        try:
            with torch.enable_grad():
                logits = gm(x)
                if y is not None:
                    loss = F.cross_entropy(logits, y)
                else:
                    target = F.log_softmax(logits.detach(), dim=1)
                    loss = F.kl_div(F.log_softmax(logits, dim=1), target, reduction="batchmean", log_target=True)
                self.blocks = [(name, k) for name in self.layers for k in "wa" if k in kinds]
                self.params = [gm.get_submodule(l).weight if k == "w" else deltas[l] for l, k in self.blocks]
                self.grads = torch.autograd.grad(loss, self.params, create_graph=True) if self.params else ()
        finally:
            for h in handles:
                h.remove()
        self.loss = float(loss.detach())
        self.infos = [infos[name] for name in self.layers]

    def tensor(self, block: tuple[str, str]) -> torch.Tensor:
        """The block's value: the layer's weight or the activation it read."""
        layer, k = block
        return self.gm.get_submodule(layer).weight.detach() if k == "w" else self.activations[layer]

    def block_hvp(self, i: int, v: torch.Tensor, batched: bool = False) -> torch.Tensor:
        """Hᵢᵢ·v, block i's diagonal Hessian block: only gᵢ is differentiated, only w.r.t. block i.
        batched=True takes v with a leading probe dimension and runs one vmap'ed backward."""
        return torch.autograd.grad(self.grads[i], self.params[i], v, retain_graph=True, is_grads_batched=batched)[0]
