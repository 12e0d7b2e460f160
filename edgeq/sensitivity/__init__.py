"""Per-layer sensitivity to quantization: Hessian trace (HAWQ-V2), top eigenvalue (HAWQ), output KL (ZeroQ).

    sens = edgeq.sensitivity.trace(module, x, y)                     # labels: cross-entropy Hessian
    sens = edgeq.sensitivity.trace(module, edgeq.sensitivity.distill(module, shape))   # data-free
Each returns a `Sensitivity` table (JSON round trip) and is cached by model, data and settings.
"""
from __future__ import annotations

import json
import time
from dataclasses import replace
from collections.abc import Callable, Iterable

import torch
from torch import fx, nn

from edgeq._cache import cache_dir, content_key, write_atomic
from edgeq.sensitivity._objective import Objective, activation_error, folded, weight_error, weighted_layers
from edgeq.sensitivity.distill import distill
from edgeq.sensitivity.hutchinson import hutchinson
from edgeq.sensitivity.kl import kl_sensitivity
from edgeq.sensitivity.power_iteration import power_iteration
from edgeq.sensitivity.table import Estimate, LayerSensitivity, Sensitivity

__all__ = ["Sensitivity", "LayerSensitivity", "Estimate", "trace", "eigen", "kl", "distill"]

BITS = (2, 3, 4, 5, 6, 7, 8)
_FORMAT = 2   # part of every cache key: bump when an estimator's results change
Progress = Callable[[int, int], None]


def _digest(gm: fx.GraphModule, module: nn.Module, tensors: Iterable[torch.Tensor | None], settings: dict) -> str:
    """Content hash of (architecture, weights, data, settings): the cache key."""
    named = list(module.state_dict().items()) + [(f"data{i}", t) for i, t in enumerate(tensors)]
    return content_key(str(gm.code), named, settings | {"format": _FORMAT})


def _cached(module: nn.Module, x: torch.Tensor, y: torch.Tensor | None, settings: dict, use_cache: bool,
            name: str, data_note: str | None,
            compute: Callable[[fx.GraphModule], tuple[LayerSensitivity, ...]]) -> Sensitivity:
    """The table from the cache, or computed on the BN-folded graph and stored; a corrupt entry is recomputed,
    never trusted. The key is the content; the labels (model name, data description) are the caller's."""
    gm = folded(module)
    note = data_note or f"{len(x)} samples, " + ("labels (cross-entropy)" if y is not None else "no labels (KL to fp32)")
    path = cache_dir("sensitivity") / f"{_digest(gm, module, (x, y), settings)}.json"
    if use_cache and path.exists():
        try:
            return replace(Sensitivity.from_json(json.loads(path.read_text())), model=name, data=note)
        except (ValueError, TypeError, KeyError, AttributeError):
            path.unlink()
    t0 = time.perf_counter()
    layers = compute(gm)
    sens = Sensitivity(name, settings["method"], note, layers, settings, time.perf_counter() - t0)
    if use_cache:
        write_atomic(path, json.dumps(sens.to_json()))
    return sens


def _hessian_layers(method: str, objective: Objective, estimates: list[Estimate],
                    bits: list[int]) -> tuple[LayerSensitivity, ...]:
    """Ω from the Hessian statistic of each block (HAWQ-V2 eq. (5); for eigen, λ·‖ΔW‖² bounds ΔWᵀHΔW)."""
    stat = dict(zip(objective.blocks, estimates))
    layers = []
    for info in objective.infos:
        omegas = {}
        for k, error in (("w", weight_error), ("a", activation_error)):
            t = objective.tensor((info.name, k))
            e = stat[(info.name, k)]
            curvature = e.value / t.numel() if method == "trace" else e.value   # Tr(H)/n or λ_max
            # Negative curvature (a saddle, or noise around a flat block) predicts no loss increase, never a gain.
            curvature = max(curvature, 0.0)
            omegas[k] = {b: curvature * error(t, b) for b in bits}
        layers.append(LayerSensitivity(info.name, info.n_params, info.n_bias, info.macs, info.a_numel,
                                       omegas["w"], omegas["a"], stat[(info.name, "w")], stat[(info.name, "a")]))
    return tuple(layers)


def trace(module: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None, *, name: str = "model",
          layers: list[str] | None = None, bits: Iterable[int] = BITS, tol: float = 1e-2, min_probes: int = 16,
          max_probes: int = 256, probe_batch: int = 1, seed: int = 0, data_note: str | None = None,
          use_cache: bool = True, progress: Progress | None = None) -> Sensitivity:
    """HAWQ-V2: Ω(l, b) = Tr(H_l)/n_l · ‖Q_b(W_l) − W_l‖² for each layer's weights and input activation."""
    bits = sorted(set(bits))
    settings = dict(method="trace", layers=sorted(layers) if layers else None, bits=bits, tol=tol, min_probes=min_probes,
                    max_probes=max_probes, probe_batch=probe_batch, seed=seed)

    def compute(gm):
        objective = Objective(gm, x, y, layers)
        est = hutchinson(objective, tol=tol, min_probes=min_probes, max_probes=max_probes, probe_batch=probe_batch,
                         generator=torch.Generator().manual_seed(seed), progress=progress)
        return _hessian_layers("trace", objective, est, bits)
    return _cached(module, x, y, settings, use_cache, name, data_note, compute)


def eigen(module: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None, *, name: str = "model",
          layers: list[str] | None = None, bits: Iterable[int] = BITS, tol: float = 1e-3, max_iter: int = 100,
          seed: int = 0, data_note: str | None = None, use_cache: bool = True,
          progress: Progress | None = None) -> Sensitivity:
    """HAWQ: the top eigenvalue of each block's Hessian; Ω(l, b) = λ_l · ‖Q_b(W_l) − W_l‖²."""
    bits = sorted(set(bits))
    settings = dict(method="eigen", layers=sorted(layers) if layers else None, bits=bits, tol=tol, max_iter=max_iter,
                    seed=seed)

    def compute(gm):
        objective = Objective(gm, x, y, layers)
        est = power_iteration(objective, tol=tol, max_iter=max_iter, generator=torch.Generator().manual_seed(seed),
                              progress=progress)
        return _hessian_layers("eigen", objective, est, bits)
    return _cached(module, x, y, settings, use_cache, name, data_note, compute)


def kl(module: nn.Module, x: torch.Tensor, *, name: str = "model", layers: list[str] | None = None,
       bits: Iterable[int] = BITS, data_note: str | None = None, use_cache: bool = True,
       progress: Progress | None = None) -> Sensitivity:
    """ZeroQ: Ω(l, b) = KL(fp32 ‖ layer l alone quantized to b bits), for weights and input activations."""
    bits = sorted(set(bits))
    settings = dict(method="kl", layers=sorted(layers) if layers else None, bits=bits)

    def compute(gm):
        objective = Objective(gm, x[:1], None, layers, kinds="")  # layer sizes only
        ow, oa = kl_sensitivity(gm, x, objective.layers, bits, progress)
        return tuple(LayerSensitivity(i.name, i.n_params, i.n_bias, i.macs, i.a_numel, w, a)
                     for i, w, a in zip(objective.infos, ow, oa))
    return _cached(module, x, None, settings, use_cache, name, data_note, compute)
