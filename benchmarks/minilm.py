"""MiniLM-L6 (all-MiniLM-L6-v2) quantized with Q-BERT's recipe, judged against fp32 on 600 sentence pairs.

    python benchmarks/minilm.py --json benchmarks/results/minilm_accuracy.json

Rows: fp32; uniform W8 and W4 (one scale per matrix); group-wise W4 (12 row groups per matrix: one per attention
head for Q, K, V); per-channel W4 for reference; and Hessian mixed precision at the size of W4, ILP over
{3, 4, 8} and {2, 3, 4, 8} bits, group-wise. Sensitivity: mean + std over 4 batches of the Hessian statistic of
each matrix (Q-BERT), times its quantization error as the quantizer makes it; the statistic is Hutchinson's
trace (HAWQ-V2) or the top eigenvalue (Q-BERT's own). Embedding tables count like any matrix. Activations int8
everywhere; the models are edgeq's integer-only reference, which the compiled modules match bit for bit.
Columns, against fp32's embeddings:
  cos        mean cosine similarity of each sentence's embedding to its fp32 embedding (1200 sentences)
  top-1      how often each first sentence retrieves the same second sentence (of 600) as fp32 does
  spearman   rank correlation of the 600 pair similarities with fp32's
  auc        how well the pair similarity separates paraphrases from non-paraphrases (fp32 for reference)
The Hessian statistics are cached under edgeq's cache directory (per batch); --no-cache recomputes them.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score
from torch.nn import functional as F

from edgeq import allocate
from edgeq.models import sentence_pairs
from edgeq.models.minilm import Tokenizer, embed, minilm_l6
from edgeq.quant.plan import Plan
from edgeq.quant.transformer import (EMBEDDINGS, SUBMODULES, BertQuantConfig, quantize_bert, quantized_layers,
                                     weight_perturbation)
from edgeq.sensitivity.qbert import qbert
from edgeq.sensitivity.table import Sensitivity

BITS = (2, 3, 4, 8)


def metrics(ref_a, ref_b, a, b, labels) -> dict:
    """The columns of the table, for embeddings a, b of the pairs' two sides (ref_*: fp32)."""
    cos = torch.cat([(a * ref_a).sum(1), (b * ref_b).sum(1)])
    sim, ref_sim = (a * b).sum(1), (ref_a * ref_b).sum(1)
    return {"cos_mean": float(cos.mean()), "cos_min": float(cos.min()),
            "top1_agreement": float(((a @ b.T).argmax(1) == (ref_a @ ref_b.T).argmax(1)).double().mean()),
            "spearman": float(spearmanr(sim.numpy(), ref_sim.numpy()).statistic),
            "auc": float(roc_auc_score(labels, sim.numpy()))}


def _embed_int(q, tok, texts, batch=64) -> torch.Tensor:
    out = []
    for i in range(0, len(texts), batch):
        ids, mask = tok(texts[i:i + batch])
        out.append(F.normalize(q.embed(ids, mask), dim=-1))
    return torch.cat(out)


def sensitivity(model, tok, calib_pairs, calibration, use_cache: bool, config: BertQuantConfig,
                estimator: str) -> Sensitivity:
    """Q-BERT on 4 batches of 16 paraphrase pairs (the spread of λ is across them); cached per batch by qbert."""
    batches = []
    for i in range(0, 64, 16):
        chunk = calib_pairs[i:i + 16]
        batches.append((*tok([p["a"] for p in chunk]), *tok([p["b"] for p in chunk])))
    n = len(model.encoder.layer)
    return qbert(model, batches, matrices=quantized_layers(model),
                 encoder_layers=[f"encoder.layer.{i}" for i in range(n)], bits=BITS, embedding_tables=EMBEDDINGS,
                 perturbation=weight_perturbation(model, calibration, config), name="minilm-l6", use_cache=use_cache,
                 estimator=estimator)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path)
    ap.add_argument("--no-cache", action="store_true")
    args = ap.parse_args()
    console = Console()
    torch.manual_seed(0)

    model, tok = minilm_l6(), Tokenizer()
    pairs, calib_pairs = sentence_pairs.load(), sentence_pairs.calibration()
    a_texts, b_texts = [p["a"] for p in pairs], [p["b"] for p in pairs]
    labels = [p["label"] for p in pairs]
    calib_texts = [t for p in calib_pairs for t in (p["a"], p["b"])]
    calibration = [tok(calib_texts[i:i + 32]) for i in range(0, 128, 32)]
    ref_a, ref_b = embed(model, tok, a_texts), embed(model, tok, b_texts)

    groupwise = BertQuantConfig(groups=12)
    sens = {e: sensitivity(model, tok, calib_pairs, calibration, not args.no_cache, groupwise, e)
            for e in ("trace", "eigen")}
    w4_size = allocate.costs(sens["trace"], Plan.uniform("w4a8")).size_mb
    mixed = {(e, bits): allocate.ilp(sens[e], allocate.Budget(size_mb=w4_size), w_bits=bits, a_bits=(8,))
             for e, bits in (("trace", (3, 4, 8)), ("trace", BITS), ("eigen", BITS))}
    rows = {"fp32": None,
            "uniform W8": (Plan.uniform("w8a8"), BertQuantConfig(groups=1)),
            "uniform W4": (Plan.uniform("w4a8"), BertQuantConfig(groups=1)),
            "group-wise W4": (Plan.uniform("w4a8"), groupwise),
            "per-channel W4": (Plan.uniform("w4a8"), BertQuantConfig(groups=None)),
            **{f"mixed {'/'.join(map(str, b))} ({'trace' if e == 'trace' else 'λ max'})": (a.plan, groupwise)
               for (e, b), a in mixed.items()}}
    results = {}
    for label, spec in rows.items():
        if spec is None:
            a, b, size = ref_a, ref_b, sum(p.numel() for n, p in model.named_parameters() if n.endswith("weight")
                                           and "LayerNorm" not in n) * 4 / 1e6
        else:
            q = quantize_bert(model, spec[0], calibration, spec[1])
            a, b, size = _embed_int(q, tok, a_texts), _embed_int(q, tok, b_texts), q.weight_bytes() / 1e6
        results[label] = {"weight_mb": size, **metrics(ref_a, ref_b, a, b, labels)}
        console.print(f"{label}: {results[label]}")

    table = Table(title="all-MiniLM-L6-v2 on 600 sentence pairs, int8 activations (integer-only reference)")
    for col in ("model", "weights (MB)", "cos to fp32 (mean / min)", "top-1 agreement", "spearman", "auc"):
        table.add_column(col, justify="right" if col != "model" else "left")
    for label, r in results.items():
        table.add_row(label, f"{r['weight_mb']:.2f}", f"{r['cos_mean']:.4f} / {r['cos_min']:.4f}",
                      f"{r['top1_agreement']:.3f}", f"{r['spearman']:.4f}", f"{r['auc']:.4f}")
    console.print(table)
    for e, bits in mixed:
        plan = mixed[(e, bits)].plan
        console.print(f"mixed {bits} ({e}): bits per sub-module, layer by layer",
                      [[plan.spec(f"encoder.layer.{i}.{s}").w_bits for s in SUBMODULES]
                       for i in range(len(model.encoder.layer))],
                      "embeddings", [plan.spec(e_).w_bits for e_ in EMBEDDINGS])
    for e, sn in sens.items():
        console.print(f"per encoder layer {e} (mean, std):",
                      {k: (round(v["mean"], 3), round(v["std"], 3)) for k, v in sn.settings["encoder_layers"].items()})
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": results,
                                         "mixed_plans": {f"{e} {'/'.join(map(str, b))}": a.to_json()
                                                         for (e, b), a in mixed.items()},
                                         "sensitivity": {e: sn.to_json() for e, sn in sens.items()},
                                         "config": vars(groupwise)}, indent=2) + "\n")


if __name__ == "__main__":
    main()
