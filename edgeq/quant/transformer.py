"""Integer-only BERT encoders (Q-BERT's group-wise mixed precision on HAWQ-V3's integer arithmetic).

quantize_bert(model, plan, calibration) calibrates activation ranges on the fp32 model and returns IntBert,
whose forward uses integer torch ops only: it is the reference executor, and exported it is what IREE compiles.

    ids ──► word_i8[ids]·b_w[ids] + pos_i8·b_p ──► LN ──► h_i8
    per layer:
      q, k, v  = requant(h·Wᵀ)                  int8 (weights: `bits` per matrix, one scale per row group)
      p        = int_softmax(q·kᵀ)              int8, (p + 128)/255
      ctx      = requant(p·v + 128·Σv)          int8
      h        = LN(requant16(ctx·Woᵀ) + requant16(h))              residual stream: int32 clamped to 16 bits
      h        = LN(requant16(GELU_table[requant(h·W1ᵀ)]·W2ᵀ) + requant16(h))
    output: Σ_t mask_t·h_t  (int32; the embedding is its direction, dequantize() scales it to fp32's)

Weights are quantized per group of output rows (quantizer.quantize_weight); the word and position tables one
scale per row. Activations are symmetric: per channel for LayerNorm outputs and attention contexts (smoothed,
BertQuantConfig), per tensor elsewhere.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from edgeq.errors import EdgeqError
from edgeq.models.minilm import BertLayer, MiniLM
from edgeq.quant.dyadic import Dyadic, requantize, rounding_shift
from edgeq.quant.int_ops import (PROB_LEVELS, RESIDUAL_MAX, int_layernorm, int_softmax, layernorm_shifts,
                                 layernorm_unit, table_lookup)
from edgeq.quant.plan import Plan
from edgeq.quant.quantizer import QParams, RangeObserver, quantize_weight

SUBMODULES = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
              "intermediate.dense", "output.dense")
EMBEDDINGS = ("embeddings.word_embeddings", "embeddings.position_embeddings")


@dataclass(frozen=True)
class BertQuantConfig:
    """groups: row groups per weight matrix (Q-BERT; None = one scale per row, 1 = per tensor).
    method/percentile: how int8 activation ranges are calibrated (the 16-bit residual stream always min/max).

    BERT's LayerNorm outputs carry outlier channels (in MiniLM the largest channel reaches 28 where the rms is
    0.8), so one int8 scale per tensor leaves most channels a few levels. Their scales are per channel instead:
    s_c ∝ max|h_c|^α / max|W_:c|^(1−α) (SmoothQuant), folded into the columns of the matrices that read them;
    the residual adds and LayerNorm's γ, β take per-channel multipliers anyway, so the integer path is unchanged."""

    groups: int | None = 12
    method: str = "percentile"
    percentile: float = 99.99
    smooth: float | None = 0.5   # SmoothQuant's α for the per-channel scales of LayerNorm outputs and attention
                                 # contexts (None: one scale per tensor)
    mse_clip: bool = True        # weight scales clipped to the ‖Q(W) − W‖²-optimal fraction of each group's max


def quantized_layers(model: MiniLM) -> list[str]:
    """What a Plan for a BERT names: the two embedding tables, then each encoder layer's six matrices."""
    return list(EMBEDDINGS) + [f"encoder.layer.{i}.{s}" for i in range(len(model.encoder.layer)) for s in SUBMODULES]


def _signed_dyadic(m: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Signed multipliers as b / 2^c with |b| < 2^31 (LayerNorm's γ can be of either sign)."""
    d = Dyadic.from_real(m.abs().clamp_min(1e-30))
    return torch.tensor(d.b, dtype=torch.int64) * m.sign().to(torch.int64), d.c


@dataclass(frozen=True, eq=False)
class Act:
    """A symmetric activation quantizer: real = scale·q, q in [−2^(b−1), 2^(b−1) − 1]; `scale` (float64) has one
    entry (per tensor) or one per channel of the last dim."""

    scale: torch.Tensor
    bits: int = 8
    qmin, qmax = QParams.qmin, QParams.qmax


class _Ranges:
    """Activation ranges of the fp32 model, observed through hooks on every Linear and LayerNorm: per tensor
    (min/max or percentile) and the per-channel maxima of |x| (last dim)."""

    def __init__(self, model: MiniLM, batches, config: BertQuantConfig):
        self.obs: dict[tuple[str, str], RangeObserver] = {}
        self.channel_max: dict[tuple[str, str], torch.Tensor] = {}
        self.config = config
        self.modules = dict(model.named_modules())
        hooks = []
        for name, m in self.modules.items():
            if isinstance(m, (nn.Linear, nn.LayerNorm)):
                hooks.append(m.register_forward_pre_hook(self._hook(name, "in", m)))
                hooks.append(m.register_forward_hook(self._hook(name, "out", m)))
        try:
            with torch.no_grad():
                for ids, mask in batches:
                    model(ids, mask)
        finally:
            for h in hooks:
                h.remove()

    def _hook(self, name, where, module):
        def hook(_m, args, out=None):
            key, x = (name, where), args[0] if where == "in" else out
            method = "minmax" if isinstance(module, nn.LayerNorm) and where == "in" else self.config.method
            self.obs.setdefault(key, RangeObserver(method, self.config.percentile)).observe(x)
            cm = x.detach().abs().flatten(0, -2).amax(0).double()
            self.channel_max[key] = torch.maximum(self.channel_max.get(key, cm), cm)
        return hook

    def per_tensor(self, name: str, where: str, bits: int = 8) -> Act:
        scale = QParams.from_range(*self.obs[(name, where)].range(), bits, unsigned=False).scale
        return Act(torch.tensor([scale], dtype=torch.float64), bits)

    def smoothed(self, name: str, where: str, readers: list[str], bits: int = 8) -> Act:
        """Per-channel scales s_c = t_c·max_c(a_c/t_c)/qmax, t_c = a_c^α / w_c^(1−α) (SmoothQuant, eq. 4), where a_c
        is channel c's largest |value| and w_c the largest |weight| of the readers' column c."""
        alpha = self.config.smooth
        if alpha is None:
            return self.per_tensor(name, where, bits)
        a = self.channel_max[(name, where)].clamp_min(1e-5)
        w = torch.stack([self.modules[r].weight.detach().abs().amax(0).double() for r in readers]).amax(0)
        w = w.clamp_min(1e-5)
        t = a.pow(alpha) / w.pow(1 - alpha)
        return Act(t * (a / t).max() / ((1 << (bits - 1)) - 1), bits)

    def residual_scale(self, ln: str) -> float:
        lo, hi = self.obs[(ln, "in")].range()
        return max(abs(lo), abs(hi), 1e-8) / RESIDUAL_MAX


class _Dense(nn.Module):
    """acc_i32 = x_i8·W_i8ᵀ + bias_i32, where W_i8 quantizes W·diag(s_x) (the input's scales, folded into the
    columns) group-wise by rows, so one accumulator unit of row o is worth acc_scale[o]."""

    def __init__(self, linear: nn.Linear, bits: int, config: BertQuantConfig, x: Act):
        super().__init__()
        w_q, self.acc_scale = quantize_weight(linear.weight.detach().double() * x.scale, bits, config.groups,
                                              config.mse_clip)
        self.w_bits, self.input_scale = bits, x.scale
        self.register_buffer("w_i8", w_q)
        bias = torch.round(linear.bias.detach().double() / self.acc_scale)
        self.register_buffer("bias_i32", bias.to(torch.int32))

    def forward(self, x_i8: torch.Tensor) -> torch.Tensor:
        x = x_i8.reshape(-1, x_i8.shape[-1]).to(torch.int32)    # 2-D: exported as a matmul on the i8 weight
        return F.linear(x, self.w_i8.to(torch.int32), self.bias_i32).view(*x_i8.shape[:-1], -1)


class _Requant(nn.Module):
    """int32 -> int8 by a dyadic rescale per channel of the last dim (HAWQ-V3)."""

    def __init__(self, m: torch.Tensor, out: Act):
        super().__init__()
        d = Dyadic.from_real(m)
        self.c, self.out = d.c, out
        self.register_buffer("b_i32", d.b_tensor((-1,)).to(torch.int32))

    def forward(self, acc_i32: torch.Tensor) -> torch.Tensor:
        return requantize(acc_i32, self.b_i32.to(torch.int64), self.c, 0, self.out.qmin, self.out.qmax)


class _LayerNormOut(nn.Module):
    """int_layernorm with γ, β and the output's per-channel scales folded into its multipliers."""

    def __init__(self, ln: nn.LayerNorm, out: Act):
        super().__init__()
        hidden = ln.normalized_shape[0]
        self.shifts, self.out = layernorm_shifts(hidden), out
        gamma, beta = ln.weight.detach().double(), ln.bias.detach().double()
        g, self.c = _signed_dyadic(gamma * layernorm_unit(hidden, self.shifts) / out.scale)
        self.register_buffer("g_i32", g.to(torch.int32))
        # β/s_out·2^c in i32 at the finest resolution that fits, shifted up to 2^c in the body
        self.beta_shift = max(0, self.c - (30 - math.ceil(math.log2(float((beta / out.scale).abs().max()) + 1))))
        beta_i32 = torch.round(beta / out.scale * 2.0 ** (self.c - self.beta_shift)).to(torch.int32)
        self.register_buffer("beta_i32", beta_i32)

    def forward(self, x_i32: torch.Tensor) -> torch.Tensor:
        beta = self.beta_i32.to(torch.int64) << self.beta_shift
        return int_layernorm(x_i32, self.g_i32.to(torch.int64), beta, self.c, self.shifts, 0, self.out.qmin,
                             self.out.qmax)


class _ResidualLayerNorm(nn.Module):
    """LN(acc·m_acc + h·m_h): both branches rescaled to the residual stream's scale s_x with one rounding and
    clamped to 16 bits, then _LayerNormOut."""

    def __init__(self, ln: nn.LayerNorm, acc_scale: torch.Tensor, h: Act, s_x: float, out: Act):
        super().__init__()
        hidden = ln.normalized_shape[0]
        d = Dyadic.from_real(torch.cat([acc_scale, h.scale.expand(hidden)]) / s_x)
        b = d.b_tensor((-1,))
        self.c = d.c
        self.register_buffer("b_acc_i32", b[:hidden].to(torch.int32))
        self.register_buffer("b_h_i32", b[hidden:].to(torch.int32))
        self.norm = _LayerNormOut(ln, out)

    def forward(self, acc_i32: torch.Tensor, h_i8: torch.Tensor) -> torch.Tensor:
        # i8 widens to i32 first: on Vulkan that extension stays a dispatch of its own (docs/vulkan.md, defect 6)
        x = acc_i32.to(torch.int64) * self.b_acc_i32.to(torch.int64) \
            + h_i8.to(torch.int32).to(torch.int64) * self.b_h_i32.to(torch.int64)
        x = rounding_shift(x, self.c).clamp(-RESIDUAL_MAX, RESIDUAL_MAX).to(torch.int32)
        return self.norm(x)


class IntEmbeddings(nn.Module):
    """word_i8[ids]·b_w[ids] + pos_i8[:S]·b_p (token type 0 folded into the position table), then LN."""

    def __init__(self, model: MiniLM, plan: Plan, config: BertQuantConfig, s_x: float, out: Act):
        super().__init__()
        emb = model.embeddings
        word = emb.word_embeddings.weight.detach()
        pos = emb.position_embeddings.weight.detach() + emb.token_type_embeddings.weight.detach()[0]
        w_q, s_w = quantize_weight(word, plan.spec(EMBEDDINGS[0]).w_bits, mse_clip=config.mse_clip)   # per row
        p_q, s_p = quantize_weight(pos, plan.spec(EMBEDDINGS[1]).w_bits, mse_clip=config.mse_clip)
        d = Dyadic.from_real(torch.cat([s_w, s_p]) / s_x)
        b = d.b_tensor((-1,))
        self.c = d.c
        self.register_buffer("word_i8", w_q)
        self.register_buffer("pos_i8", p_q)
        self.register_buffer("b_word_i32", b[:len(s_w), None].to(torch.int32))   # gathered: i32 (b < 2^31)
        self.register_buffer("b_pos_i32", b[len(s_w):, None].to(torch.int32))
        self.norm = _LayerNormOut(emb.LayerNorm, out)

    def forward(self, ids_i32: torch.Tensor) -> torch.Tensor:
        s, ids = ids_i32.shape[1], ids_i32.to(torch.int64)   # gathers index in int64 (torch-mlir's index.Tensor)
        x = self.word_i8[ids].to(torch.int32).to(torch.int64) * self.b_word_i32[ids].to(torch.int64) \
            + self.pos_i8[:s].to(torch.int32).to(torch.int64) * self.b_pos_i32[:s].to(torch.int64)
        x = rounding_shift(x, self.c).clamp(-RESIDUAL_MAX, RESIDUAL_MAX).to(torch.int32)
        return self.norm(x)


class IntLayer(nn.Module):
    """One encoder layer; h_in, ffn_in and out are the activations of its input, of its attention LayerNorm and
    of its output LayerNorm (decided by IntBert, since the next layer's matrices read them)."""

    def __init__(self, layer: BertLayer, prefix: str, plan: Plan, config: BertQuantConfig, r: _Ranges, h_in: Act,
                 ffn_in: Act, out: Act):
        super().__init__()
        sa, ao = layer.attention.self, layer.attention.output
        self.heads, self.head_dim = layer.heads, layer.head_dim
        name = {s: f"{prefix}.{s}" for s in SUBMODULES}

        fp32 = dict(zip(SUBMODULES, (sa.query, sa.key, sa.value, ao.dense, layer.intermediate.dense,
                                     layer.output.dense)))

        def dense(sub, x):
            return _Dense(fp32[sub], plan.spec(name[sub]).w_bits, config, x)

        qkv = [r.per_tensor(name[s], "out") for s in SUBMODULES[:3]]
        self.query, self.key, self.value = (dense(s, h_in) for s in SUBMODULES[:3])
        self.rq_query, self.rq_key, self.rq_value = (_Requant(d.acc_scale / a.scale, a)
                                                     for d, a in zip((self.query, self.key, self.value), qkv))
        # one score unit is s_q·s_k/√d in real terms; the softmax wants log2(e)·2^15 per real unit
        d = Dyadic.from_real(qkv[0].scale * qkv[1].scale / math.sqrt(self.head_dim) * math.log2(math.e) * 2 ** 15)
        self.softmax_b, self.softmax_c = d.b[0], d.c
        ctx = r.smoothed(name[SUBMODULES[3]], "in", [name[SUBMODULES[3]]], plan.spec(name[SUBMODULES[3]]).a_bits)
        self.rq_ctx = _Requant(qkv[2].scale / PROB_LEVELS / ctx.scale, ctx)
        self.attn_out = dense(SUBMODULES[3], ctx)
        self.attn_norm = _ResidualLayerNorm(ao.LayerNorm, self.attn_out.acc_scale, h_in,
                                            r.residual_scale(f"{prefix}.attention.output.LayerNorm"), ffn_in)

        self.ffn_in = dense(SUBMODULES[4], ffn_in)
        pre = r.per_tensor(name[SUBMODULES[4]], "out")
        post = r.per_tensor(name[SUBMODULES[5]], "in", plan.spec(name[SUBMODULES[5]]).a_bits)
        self.rq_ffn = _Requant(self.ffn_in.acc_scale / pre.scale, pre)
        grid = torch.arange(-128, 128, dtype=torch.float64) * pre.scale
        gelu = torch.round(F.gelu(grid) / post.scale)                       # exact erf GELU, half to even
        self.register_buffer("gelu_i8", gelu.clamp(post.qmin, post.qmax).to(torch.int8))
        self.ffn_out = dense(SUBMODULES[5], post)
        self.out_norm = _ResidualLayerNorm(layer.output.LayerNorm, self.ffn_out.acc_scale, ffn_in,
                                           r.residual_scale(f"{prefix}.output.LayerNorm"), out)

    def forward(self, h_i8: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        b, s, hidden = h_i8.shape

        def heads(t):  # (B, S, H) -> (B, A, S, d)
            return t.view(b, s, self.heads, self.head_dim).transpose(1, 2).to(torch.int32)

        q = heads(self.rq_query(self.query(h_i8)))
        k = heads(self.rq_key(self.key(h_i8)))
        v = heads(self.rq_value(self.value(h_i8)))
        scores_i32 = q @ k.transpose(-1, -2)                                        # (B, A, S, S), |s| < 2^20
        p = int_softmax(scores_i32, valid, self.softmax_b, self.softmax_c)
        ctx_i32 = p.to(torch.int32) @ v + 128 * v.sum(-2, keepdim=True, dtype=torch.int32)  # Σ (p_q + 128)·v
        ctx = self.rq_ctx(ctx_i32.transpose(1, 2).reshape(b, s, hidden))
        h1 = self.attn_norm(self.attn_out(ctx), h_i8)
        g = table_lookup(self.rq_ffn(self.ffn_in(h1)), self.gelu_i8)
        return self.out_norm(self.ffn_out(g), h1)


class IntBert(nn.Module):
    """forward(ids int32 (B, S), mask int32 (B, S)) -> Σ_t mask_t·h_t, int32 (B, hidden)."""

    def __init__(self, model: MiniLM, plan: Plan, calibration, config: BertQuantConfig = BertQuantConfig()):
        super().__init__()
        names = quantized_layers(model)
        for name in plan.layers:
            if name not in names:
                raise EdgeqError(f"the plan names {name!r}, which is not a quantized matrix of this BERT",
                                 f"name among {', '.join(names[:8])}, ...")
        self.config, self.plan = config, plan
        r = _Ranges(model, calibration, config)
        n = len(model.encoder.layer)

        def ln_out(ln: str, readers: list[str]) -> Act:
            if not readers:  # the last LayerNorm: only pooled, so plainly per channel
                return Act(r.channel_max[(ln, "out")].clamp_min(1e-5) / 127)
            return r.smoothed(ln, "out", readers, max(plan.spec(x).a_bits for x in readers))

        def qkv(i: int) -> list[str]:
            return [f"encoder.layer.{i}.{s}" for s in SUBMODULES[:3]] if i < n else []

        outs = [ln_out("embeddings.LayerNorm", qkv(0))] + \
            [ln_out(f"encoder.layer.{i}.output.LayerNorm", qkv(i + 1)) for i in range(n)]
        self.embeddings = IntEmbeddings(model, plan, config, r.residual_scale("embeddings.LayerNorm"), outs[0])
        self.layers = nn.ModuleList(
            IntLayer(layer, f"encoder.layer.{i}", plan, config, r, outs[i],
                     ln_out(f"encoder.layer.{i}.attention.output.LayerNorm", [f"encoder.layer.{i}.{SUBMODULES[4]}"]),
                     outs[i + 1])
            for i, layer in enumerate(model.encoder.layer))
        self.output_scale = outs[-1].scale

    def forward(self, ids_i32: torch.Tensor, mask_i32: torch.Tensor) -> torch.Tensor:
        valid = (mask_i32 != 0)[:, None, None, :]                                   # keys that exist
        h = self.embeddings(ids_i32)
        for layer in self.layers:
            h = layer(h, valid)
        return (h.to(torch.int32) * mask_i32[..., None]).sum(1, dtype=torch.int32)

    def dequantize(self, pooled_i32: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The fp32 mean-pooled embedding the integer sum stands for."""
        return (pooled_i32.double() * self.output_scale / mask.sum(1, keepdim=True).clamp_min(1)).float()

    def embed(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.dequantize(self(ids.to(torch.int32), mask.to(torch.int32)), mask)

    def input_scales(self) -> dict[str, torch.Tensor]:
        """The activation scales each matrix's columns were multiplied by before quantizing (smoothing)."""
        attrs = dict(zip(("query", "key", "value", "attn_out", "ffn_in", "ffn_out"), SUBMODULES))
        return {f"encoder.layer.{i}.{attrs[a]}": getattr(layer, a).input_scale
                for i, layer in enumerate(self.layers) for a in attrs}

    def weight_bytes(self) -> float:
        """Packed weight storage at each matrix's bit-width (int32 biases and per-row scales not counted)."""
        total = sum(m.w_i8.numel() * m.w_bits for m in self.modules() if isinstance(m, _Dense))
        e = self.embeddings
        total += e.word_i8.numel() * self.plan.spec(EMBEDDINGS[0]).w_bits \
            + e.pos_i8.numel() * self.plan.spec(EMBEDDINGS[1]).w_bits
        return total / 8


def weight_perturbation(model: MiniLM, calibration, config: BertQuantConfig = BertQuantConfig()):
    """perturbation(matrix, bits) = ‖Q_b(W) − W‖² of a matrix as IntBert quantizes it: W·diag(s_x) group-wise
    (clipped, with config.mse_clip), in W's own units, so that Hessian sensitivities weigh the real error."""
    scales = IntBert(model, Plan(), calibration, config).input_scales()

    def perturbation(name: str, bits: int) -> float:
        w = model.get_submodule(name).weight.detach().double()
        if name == EMBEDDINGS[1]:               # the table IntEmbeddings quantizes: positions + token type 0
            w = w + model.embeddings.token_type_embeddings.weight.detach().double()[0]
        s = scales.get(name, torch.ones(1, dtype=torch.float64))
        q, s_w = quantize_weight(w * s, bits, config.groups if name in scales else None, config.mse_clip)
        return float(((q.double() * s_w[:, None] - w * s) / s).pow(2).sum())
    return perturbation


def quantize_bert(model: MiniLM, plan: Plan, calibration, config: BertQuantConfig = BertQuantConfig()) -> IntBert:
    """calibration: an iterable of (input_ids, attention_mask) batches run through the fp32 model."""
    return IntBert(model, plan, list(calibration), config).eval()
