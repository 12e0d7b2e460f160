"""Top Hessian eigenvalue per block by power iteration on Hessian-vector products (HAWQ, sec. 3.1).

Each block's diagonal Hessian Hᵢᵢ is iterated on its own: v ← Hᵢᵢv / ‖Hᵢᵢv‖, λ = vᵀHᵢᵢv, until λ moves by less
than tol relative to |λ| or max_iter is reached. Power iteration finds the eigenvalue of largest magnitude.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from edgeq.sensitivity._objective import Objective
from edgeq.sensitivity.table import Estimate


def power_iteration(objective: Objective, *, tol: float = 1e-3, max_iter: int = 100,
                    generator: torch.Generator | None = None,
                    progress: Callable[[int, int], None] | None = None) -> list[Estimate]:
    g = generator or torch.Generator().manual_seed(0)
    estimates = []
    for i, p in enumerate(objective.params):
        v = torch.randn(p.shape, generator=g)
        v /= v.norm()
        lam, converged, steps = 0.0, False, 0
        for steps in range(1, max_iter + 1):
            hv = objective.block_hvp(i, v)
            new = float((v.double() * hv.double()).sum())
            norm = hv.norm()
            if norm == 0:  # the block does not affect the loss to second order
                lam, converged = 0.0, True
                break
            v = hv / norm
            converged = steps > 1 and abs(new - lam) <= tol * max(abs(new), 1e-30)
            lam = new
            if converged:
                break
        estimates.append(Estimate(lam, 0.0, steps, converged))
        if progress:
            progress(i + 1, len(objective.params))
    return estimates
