"""Hessian trace per block by Hutchinson's estimator with Rademacher probes (HAWQ-V2, sec. 3.1).

Tr(Hᵢᵢ) = E[vᵀHᵢᵢv] for v with i.i.d. ±1 entries. Each block is probed alone (v is zero outside it): a probe
spanning all blocks would estimate every block per product, but its cross terms vᵢᵀHᵢⱼvⱼ swamp the weakly
curved blocks (an input activation's trace measured 0.006 ± 0.015 against an exact 0.014 that way).
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch

from edgeq.sensitivity._objective import Objective
from edgeq.sensitivity.table import Estimate

ROUND = 8   # probes between two looks at the running mean


def rademacher(shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
    return torch.randint(0, 2, shape, generator=generator, dtype=torch.float32).mul_(2).sub_(1)


def hutchinson(objective: Objective, *, tol: float = 1e-2, min_probes: int = 16, max_probes: int = 256,
               probe_batch: int = 1, generator: torch.Generator | None = None,
               progress: Callable[[int, int], None] | None = None) -> list[Estimate]:
    """Tr(Hᵢᵢ) for every block i, with its standard error. Probes are drawn in rounds of ROUND; it stops when the
    running mean moves by less than tol (relative) over a round, after at least min_probes and at most max_probes.

    probe_batch > 1 pushes that many probes through one vmap'ed backward (is_grads_batched) instead of a loop
    of single backwards through the retained graph; benchmarks/sensitivity.py measures which is faster.
    """
    if not 1 <= min_probes <= max_probes:
        raise ValueError(f"need 1 <= min_probes ({min_probes}) <= max_probes ({max_probes})")
    g = generator or torch.Generator().manual_seed(0)
    estimates = []
    for i, p in enumerate(objective.params):
        samples: list[torch.Tensor] = []       # vᵀHᵢᵢv per probe
        n, previous = 0, None
        while n < max_probes:
            round_end = min(n + ROUND, max_probes)
            while n < round_end:
                k = min(probe_batch, round_end - n)
                if k == 1:
                    v = rademacher(p.shape, g)
                    samples.append((v.double() * objective.block_hvp(i, v).double()).sum().view(1))
                else:
                    v = rademacher((k, *p.shape), g)
                    hv = objective.block_hvp(i, v, batched=True)
                    samples.append((v.double() * hv.double()).flatten(1).sum(1))
                n += k
            mean = float(torch.cat(samples).mean())
            if previous is not None and n >= min_probes and abs(mean - previous) < tol * max(abs(mean), 1e-30):
                break
            previous = mean
        s = torch.cat(samples)
        stderr = float(s.std()) / math.sqrt(n) if n > 1 else math.inf
        estimates.append(Estimate(float(s.mean()), stderr, n, n < max_probes))
        if progress:
            progress(i + 1, len(objective.params))
    return estimates
