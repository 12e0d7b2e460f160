"""Q-BERT's Hessian sensitivity (Shen et al. 2020, sec. 3.1): the top Hessian eigenvalue of each weight block,
taken on several data batches, and its spread across them.

Blocks are the sub-modules the bits are chosen for (each layer's Q, K, V, attention output, FFN in and out, and
the two embedding tables) and, for the report, each whole encoder layer (all its matrices as one block, Q-BERT's
own granularity). The loss is the one all-MiniLM-L6-v2 was trained with, the multiple-negatives ranking loss on
paraphrase pairs: cross-entropy of 20·cos(a_i, b_j) over the batch, the partner as the class.

    Ω(l, b) = (mean λ_l + std λ_l) · ‖Q_b(W_l) − W_l‖²     (Q-BERT ranks by mean + std of λ; HAWQ weights it
                                                              by the quantization perturbation, as sensitivity/ does)
"""
from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from edgeq._cache import cache_dir, content_key, write_atomic
from edgeq.sensitivity._objective import weight_error
from edgeq.sensitivity.table import Estimate, LayerSensitivity, Sensitivity

SCALE = 20.0     # sentence-transformers' MultipleNegativesRankingLoss scale


def ranking_loss(model: Callable[..., torch.Tensor], batch) -> torch.Tensor:
    """Multiple-negatives ranking loss of a batch (ids_a, mask_a, ids_b, mask_b) of paraphrase pairs."""
    ids_a, mask_a, ids_b, mask_b = batch
    a, b = F.normalize(model(ids_a, mask_a), dim=-1), F.normalize(model(ids_b, mask_b), dim=-1)
    return F.cross_entropy(SCALE * a @ b.T, torch.arange(len(a)))


def _top_eigenvalue(params: list[torch.Tensor], grads: tuple[torch.Tensor, ...], tol: float, max_iter: int,
                    g: torch.Generator) -> tuple[float, int, bool]:
    """Power iteration on H·v = ∂(g·v)/∂θ over a block of several tensors (v is one vector across them)."""
    v = [torch.randn(p.shape, generator=g) for p in params]
    norm = torch.sqrt(sum((x * x).sum() for x in v))
    v = [x / norm for x in v]
    lam = 0.0
    for step in range(1, max_iter + 1):
        hv = torch.autograd.grad(grads, params, v, retain_graph=True)
        new = float(sum((x.double() * h.double()).sum() for x, h in zip(v, hv)))
        norm = torch.sqrt(sum((h * h).sum() for h in hv))
        if norm == 0:
            return 0.0, step, True
        v = [h / norm for h in hv]
        if step > 1 and abs(new - lam) <= tol * max(abs(new), 1e-30):
            return new, step, True
        lam = new
    return lam, max_iter, False


def _trace(params: list[torch.Tensor], grads: tuple[torch.Tensor, ...], probes: int,
           g: torch.Generator) -> tuple[float, int, bool]:
    """Hutchinson's Tr(H) = E[vᵀHv] over Rademacher probes v spanning the block (HAWQ-V2)."""
    total = 0.0
    for _ in range(probes):
        v = [torch.randint(0, 2, p.shape, generator=g, dtype=torch.float32) * 2 - 1 for p in params]
        hv = torch.autograd.grad(grads, params, v, retain_graph=True)
        total += float(sum((x.double() * h.double()).sum() for x, h in zip(v, hv)))
    return total / probes, probes, True


def qbert(model: nn.Module, batches: list, *, matrices: list[str], encoder_layers: list[str] = (),
          bits=(2, 3, 4, 8), groups: int | None = 12, embedding_tables: tuple[str, ...] = (), tol: float = 1e-2,
          max_iter: int = 20, seed: int = 0, name: str = "model", estimator: str = "eigen", probes: int = 16,
          perturbation: Callable[[str, int], float] | None = None, use_cache: bool = True,
          progress: Callable[[int, int], None] | None = None) -> Sensitivity:
    """Top eigenvalue per block and batch. matrices: the weighted sub-modules (fully qualified names) the plan
    chooses bits for; encoder_layers: prefixes whose matrices are also taken together; embedding_tables: the
    matrices that are lookup tables (no bias, no MACs). perturbation(matrix, bits) is ‖Q_b(W) − W‖² as the
    quantizer will do it (quant/transformer.py: weight_perturbation); by default, plain group-wise rounding
    (`groups`; one scale per row for the embedding tables). The eigenvalues of each batch are cached (keyed by
    the weights, the batch and the settings).

    estimator="trace" takes Hutchinson's trace (`probes` per block and batch) instead of the top eigenvalue, and
    Ω(l, b) = (mean + std of Tr(H_l)) / n_l · ‖Q_b(W_l) − W_l‖², HAWQ-V2's expected loss increase for a
    perturbation spread over the block, where λ_max·‖ΔW‖² bounds the worst direction."""
    if estimator not in ("eigen", "trace"):
        raise ValueError(f"estimator must be 'eigen' or 'trace', got {estimator!r}")
    model = model.eval()
    blocks = [(m, [m]) for m in matrices] + [(l, [m for m in matrices if m.startswith(l + ".")]) for l in encoder_layers]
    weights = {m: model.get_submodule(m).weight for m in matrices}
    lams: dict[str, list[float]] = {b: [] for b, _ in blocks}
    steps: dict[str, list[int]] = {b: [] for b, _ in blocks}
    converged: dict[str, bool] = {b: True for b, _ in blocks}
    t0 = time.perf_counter()
    for i, batch in enumerate(batches):
        # each batch's eigenvalues are cached on their own, so a killed run resumes at the batch it was in
        key = content_key("qbert", [(m, weights[m]) for m in matrices] + [(f"data{j}", t) for j, t in enumerate(batch)],
                          dict(blocks=blocks, tol=tol, max_iter=max_iter, seed=seed + i, estimator=estimator,
                               probes=probes if estimator == "trace" else None))
        path = cache_dir("sensitivity") / f"qbert-{key}.json"
        result = _load(path, blocks) if use_cache else None
        if result is None:
            estimate = partial(_trace, probes=probes) if estimator == "trace" else \
                partial(_top_eigenvalue, tol=tol, max_iter=max_iter)
            result = _batch_statistics(model, weights, blocks, batch, estimate, seed + i)
            if use_cache:
                write_atomic(path, json.dumps(result))
        for block, (lam, n, ok) in result.items():
            lams[block].append(lam)
            steps[block].append(n)
            converged[block] &= ok
        if progress:
            progress(i + 1, len(batches))

    def stat(block):
        values = lams[block]
        return Estimate(statistics.fmean(values), statistics.pstdev(values), sum(steps[block]), converged[block])

    layers = []
    for m in matrices:
        s, w = stat(m), weights[m].detach()
        omega = abs(s.value) + s.stderr                          # Q-BERT: mean + std of λ over the batches
        if estimator == "trace":
            omega /= w.numel()
        layers.append(LayerSensitivity(
            m, w.numel(), 0 if m in embedding_tables else w.shape[0], 0 if m in embedding_tables else w.numel(),
            0 if m in embedding_tables else w.shape[1],
            {b: omega * (perturbation(m, b) if perturbation else
                         weight_error(w, b, None if m in embedding_tables else groups)) for b in bits}, {8: 0.0}, s))
    settings = dict(method="qbert", estimator=estimator, bits=sorted(bits), groups=groups, tol=tol, max_iter=max_iter,
                    probes=probes, seed=seed,
                    batches=len(batches), loss="multiple-negatives ranking",
                    encoder_layers={l: {"mean": stat(l).value, "std": stat(l).stderr} for l in encoder_layers})
    return Sensitivity(name, "qbert", f"{len(batches)} batches of paraphrase pairs", tuple(layers), settings,
                       time.perf_counter() - t0)


def _batch_statistics(model, weights, blocks, batch, estimate, seed) -> dict[str, tuple[float, int, bool]]:
    g = torch.Generator().manual_seed(seed)
    trainable = {m: w.requires_grad for m, w in weights.items()}
    for w in weights.values():
        w.requires_grad_(True)
    try:
        with torch.enable_grad():
            loss = ranking_loss(model, batch)
            grads = dict(zip(weights, torch.autograd.grad(loss, list(weights.values()), create_graph=True)))
            return {block: estimate([weights[m] for m in members], tuple(grads[m] for m in members), g=g)
                    for block, members in blocks}
    finally:
        for m, w in weights.items():
            w.requires_grad_(trainable[m])


def _load(path: Path, blocks) -> dict | None:
    """A cached batch, or None; a corrupt or incomplete entry is deleted and recomputed, never trusted."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        return {b: (float(data[b][0]), int(data[b][1]), bool(data[b][2])) for b, _ in blocks}
    except (ValueError, KeyError, TypeError, IndexError):
        path.unlink()
        return None
