"""ZeroQ distilled data: inputs optimised until the statistics they induce match the model's BatchNorm statistics.

ZeroQ (Cai et al., 2020), eq. (2): min over x of Σᵢ ‖μ̃ᵢ(x) − μᵢ‖² + ‖σ̃ᵢ(x) − σᵢ‖², where μᵢ, σᵢ are BN layer i's
running mean and standard deviation and μ̃ᵢ, σ̃ᵢ the per-channel batch statistics of its input. No real data needed.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from edgeq.errors import EdgeqError


def distill(module: nn.Module, input_shape: tuple[int, ...], n: int = 32, iterations: int = 500, lr: float = 0.2,
            generator: torch.Generator | None = None,
            progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """n inputs of shape input_shape[1:] whose BN statistics match the model's (ZeroQ Algorithm 1)."""
    bns = [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]
    if not bns:
        raise EdgeqError("the model has no BatchNorm layer, so there are no statistics to distil data from",
                         "pass real data with --data PATH")
    g = generator or torch.Generator().manual_seed(0)
    x = torch.randn((n, *input_shape[1:]), generator=g).requires_grad_(True)
    stats: list[tuple[torch.Tensor, torch.Tensor, nn.BatchNorm2d]] = []

    def hook(bn, args):
        a = args[0]
        stats.append((a.mean((0, 2, 3)), (a.var((0, 2, 3), unbiased=False) + bn.eps).sqrt(), bn))

    handles = [bn.register_forward_pre_hook(hook) for bn in bns]
    was_training = module.training
    module.eval()  # the forward uses running statistics; the hooks see the batch's
    opt = torch.optim.Adam([x], lr=lr)
    try:
        for it in range(iterations):
            stats.clear()
            opt.zero_grad()
            module(x)
            loss = sum(((mu - bn.running_mean).pow(2).mean() + (sd - (bn.running_var + bn.eps).sqrt()).pow(2).mean())
                       for mu, sd, bn in stats)
            loss.backward()
            opt.step()
            if progress:
                progress(it + 1, iterations)
    finally:
        for h in handles:
            h.remove()
        module.train(was_training)
    return x.detach()


def bn_statistics_loss(module: nn.Module, x: torch.Tensor) -> float:
    """The ZeroQ objective at x: how far x's BN statistics are from the model's (0 = perfectly distilled)."""
    losses = []

    def hook(bn, args):
        a = args[0]
        sd = (a.var((0, 2, 3), unbiased=False) + bn.eps).sqrt()
        losses.append(float((a.mean((0, 2, 3)) - bn.running_mean).pow(2).mean()
                            + (sd - (bn.running_var + bn.eps).sqrt()).pow(2).mean()))

    handles = [m.register_forward_pre_hook(hook) for m in module.modules() if isinstance(m, nn.BatchNorm2d)]
    try:
        with torch.no_grad():
            module.eval()(x)
    finally:
        for h in handles:
            h.remove()
    return sum(losses)
