"""Attention layers: Embedding, PositionalEncoding, MultiheadAttention, TransformerEncoderLayer.

PyTorch's parameter layout (``in_proj_weight`` (3E, E), ``in_proj_bias``,
``out_proj.weight``/``out_proj.bias``; the encoder layer's ``self_attn``, ``linear1``,
``linear2``, ``norm1``, ``norm2``), so PyTorch state dicts load one to one. Everything here
is a composite of existing ops (linear, matmul, softmax, layer norm), so there is no
backward code in this file.

Example:
    >>> layer = nn.TransformerEncoderLayer(32, 4, dim_feedforward=64, batch_first=True, rng=0)
    >>> layer(nl.zeros(2, 5, 32)).shape
    (2, 5, 32)
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import backend
from .. import functional as F
from ..tensor import Tensor
from . import init
from .layers import Dropout, Linear
from .module import Module, Parameter
from .normalization import LayerNorm

__all__ = ["Embedding", "PositionalEncoding", "MultiheadAttention", "TransformerEncoderLayer"]

RNG = np.random.Generator | int | None


class Embedding(Module):
    """A lookup table of ``num_embeddings`` vectors of size ``embedding_dim`` (N(0, 1) as PyTorch).

    ``padding_idx``'s row starts at zero and receives no gradient.
    Example: ``nn.Embedding(10, 4, padding_idx=0, rng=0)(nl.tensor([[1, 2, 0]])).shape  # (1, 3, 4)``
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 rng: RNG = None, dtype: Any = None) -> None:
        super().__init__()
        for label, n in (("num_embeddings", num_embeddings), ("embedding_dim", embedding_dim)):
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
                raise ValueError(f"Embedding: {label} must be a positive integer, got {n!r}")
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding: padding_idx {padding_idx} is outside [0, {num_embeddings})")
            padding_idx %= num_embeddings
        self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, padding_idx
        dtype = backend.get_default_dtype() if dtype is None else np.dtype(dtype)
        w = init.normal((num_embeddings, embedding_dim), np.random.default_rng(rng), dtype=dtype)
        if padding_idx is not None:
            w[padding_idx] = 0
        self.weight = Parameter(w)

    def forward(self, indices: Any) -> Tensor:
        return F.embedding(indices, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, padding_idx={self.padding_idx}"


class PositionalEncoding(Module):
    """Add the sinusoidal position code of "Attention is all you need" (then dropout):
    pe[t, 2i] = sin(t / 10000**(2i/d)), pe[t, 2i+1] = cos(t / 10000**(2i/d)).

    Input (T, N, d_model), or (N, T, d_model) with ``batch_first=True``. The code is a fixed
    table, not a parameter, so it is not in the state dict.
    Example: ``nn.PositionalEncoding(32, batch_first=True)(nl.zeros(2, 5, 32)).shape  # (2, 5, 32)``
    """

    def __init__(self, d_model: int, max_len: int = 5000, dropout: float = 0.0,
                 batch_first: bool = False, rng: RNG = None, dtype: Any = None) -> None:
        super().__init__()
        dtype = backend.get_default_dtype() if dtype is None else np.dtype(dtype)
        self.d_model, self.max_len, self.batch_first = d_model, max_len, batch_first
        pos = np.arange(max_len)[:, None]
        freq = np.exp(-math.log(10000.0) * np.arange(0, d_model, 2) / d_model)
        pe = np.zeros((max_len, d_model))
        pe[:, 0::2] = np.sin(pos * freq)
        pe[:, 1::2] = np.cos(pos * freq[: d_model // 2])
        self.pe = pe.astype(dtype)
        self.dropout = Dropout(dropout, rng=rng)

    def forward(self, x: Tensor) -> Tensor:
        t = x.shape[1] if self.batch_first else x.shape[0]
        if x.ndim != 3 or x.shape[-1] != self.d_model or t > self.max_len:
            raise ValueError(f"PositionalEncoding(d_model={self.d_model}, max_len={self.max_len}) got "
                             f"input of shape {x.shape}")
        pe = self.pe[:t] if self.batch_first else self.pe[:t, None, :]
        return self.dropout(x + Tensor._make(backend.xp_of(x.data).asarray(pe, dtype=x.dtype), False))


def _mask_bias(mask: Any, dtype: Any, xp: Any, what: str) -> Any:
    """A boolean mask (True = not allowed, PyTorch's MultiheadAttention convention) or a float
    mask (added) as an additive float bias."""
    m = mask.data if isinstance(mask, Tensor) else xp.asarray(mask)
    if m.dtype == bool:
        return xp.where(m, -np.inf, 0.0).astype(dtype)
    if m.dtype.kind != "f":
        raise TypeError(f"{what} must be boolean or float, got dtype {m.dtype}")
    return m.astype(dtype)


class MultiheadAttention(Module):
    """Multi-head attention as PyTorch's: project q, k, v, attend per head, concatenate, project.

    ``forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
    average_attn_weights=True, is_causal=False) -> (output, weights or None)``. Inputs are
    (L, N, E) or (N, L, E) with ``batch_first=True``. Boolean masks mark what may NOT be
    attended to (True = masked): ``key_padding_mask`` (N, S), ``attn_mask`` (L, S) or
    (N * num_heads, L, S); float masks are added to the scores.
    Example: ``out, w = nn.MultiheadAttention(32, 4, batch_first=True, rng=0)(x, x, x)``
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 batch_first: bool = False, rng: RNG = None, dtype: Any = None) -> None:
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0 or embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim ({embed_dim}) must be a positive multiple "
                             f"of num_heads ({num_heads})")
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.dropout, self.batch_first = float(dropout), batch_first
        self.rng = np.random.default_rng(rng)
        dtype = backend.get_default_dtype() if dtype is None else np.dtype(dtype)
        # PyTorch's _reset_parameters: xavier_uniform in-projection, zero biases.
        self.in_proj_weight = Parameter(init.xavier_uniform((3 * embed_dim, embed_dim), self.rng, dtype=dtype))
        self.in_proj_bias = Parameter(init.zeros((3 * embed_dim,), dtype=dtype)) if bias else None
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, rng=self.rng, dtype=dtype)
        if bias:
            self.out_proj.bias.data[...] = 0

    def _heads(self, x: Tensor) -> Tensor:
        n, length, _ = x.shape  # (N, L, E) -> (N, heads, L, head_dim)
        return x.reshape(n, length, self.num_heads, self.head_dim).transpose(0, 2, 1, 3)

    def forward(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Any = None,
                need_weights: bool = True, attn_mask: Any = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[Tensor, Tensor | None]:
        e = self.embed_dim
        for name, t in (("query", query), ("key", key), ("value", value)):
            if t.ndim != 3 or t.shape[-1] != e:
                layout = "(N, L, E)" if self.batch_first else "(L, N, E)"
                raise ValueError(f"MultiheadAttention: {name} must be {layout} with E={e}, got {t.shape}")
        self_attention = query is key and key is value
        if not self.batch_first:  # work in (N, L, E)
            query = query.transpose(1, 0, 2)
            key = query if self_attention else key.transpose(1, 0, 2)
            value = query if self_attention else value.transpose(1, 0, 2)
        w, b = self.in_proj_weight, self.in_proj_bias
        if self_attention:  # one GEMM for q, k and v
            qkv = F.linear(query, w, b)
            q, k, v = qkv[..., :e], qkv[..., e:2 * e], qkv[..., 2 * e:]
        else:
            q = F.linear(query, w[:e], None if b is None else b[:e])
            k = F.linear(key, w[e:2 * e], None if b is None else b[e:2 * e])
            v = F.linear(value, w[2 * e:], None if b is None else b[2 * e:])
        n, length, s = query.shape[0], query.shape[1], key.shape[1]
        bias = self._bias(attn_mask, key_padding_mask, is_causal, n, length, s, query)
        out, weights = F._attention(self._heads(q), self._heads(k), self._heads(v), bias, self.dropout,
                                    None, self.training, self.rng)
        out = self.out_proj(out.transpose(0, 2, 1, 3).reshape(n, length, e))
        if not self.batch_first:
            out = out.transpose(1, 0, 2)
        if not need_weights:
            return out, None
        return out, (weights.mean(axis=1) if average_attn_weights else weights)

    def _bias(self, attn_mask, key_padding_mask, is_causal, n, length, s, like):
        """All masks as one additive bias broadcasting to (N, heads, L, S)."""
        xp, dtype = backend.xp_of(like.data), like.dtype
        bias = None
        if attn_mask is not None:
            bias = _mask_bias(attn_mask, dtype, xp, "attn_mask")
            if bias.shape == (n * self.num_heads, length, s):
                bias = bias.reshape(n, self.num_heads, length, s)
            elif bias.shape != (length, s):
                raise ValueError(f"MultiheadAttention: attn_mask must be ({length}, {s}) or "
                                 f"({n * self.num_heads}, {length}, {s}), got {bias.shape}")
        if is_causal:
            causal = xp.where(xp.triu(xp.ones((length, s), dtype=bool), 1), -np.inf, 0.0).astype(dtype)
            bias = causal if bias is None else bias + causal
        if key_padding_mask is not None:
            kpm = _mask_bias(key_padding_mask, dtype, xp, "key_padding_mask")
            if kpm.shape != (n, s):
                raise ValueError(f"MultiheadAttention: key_padding_mask must be ({n}, {s}), got {kpm.shape}")
            kpm = kpm.reshape(n, 1, 1, s)
            bias = kpm if bias is None else bias + kpm
        return bias

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}, batch_first={self.batch_first}"


class TransformerEncoderLayer(Module):
    """Self-attention then a feed-forward block, each with dropout and a residual connection,
    layer norm after each (``norm_first=False``, the original) or before (pre-norm, easier to train).

    Same arguments, sub-module names and forward signature as PyTorch's:
    ``forward(src, src_mask=None, src_key_padding_mask=None, is_causal=False)``.
    Example: ``nn.TransformerEncoderLayer(64, 4, 128, dropout=0.1, batch_first=True, rng=0)``
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str = "relu", layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True, rng: RNG = None, dtype: Any = None) -> None:
        super().__init__()
        rng = np.random.default_rng(rng)
        if activation not in ("relu", "gelu"):
            raise ValueError(f"TransformerEncoderLayer: activation must be 'relu' or 'gelu', got {activation!r}")
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first, rng=rng, dtype=dtype)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, rng=rng, dtype=dtype)
        self.dropout = Dropout(dropout, rng=rng)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, rng=rng, dtype=dtype)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, dtype=dtype)
        self.dropout1 = Dropout(dropout, rng=rng)
        self.dropout2 = Dropout(dropout, rng=rng)
        self.activation = activation

    def _sa_block(self, x, mask, key_padding_mask, is_causal):
        out = self.self_attn(x, x, x, key_padding_mask=key_padding_mask, need_weights=False,
                             attn_mask=mask, is_causal=is_causal)[0]
        return self.dropout1(out)

    def _ff_block(self, x):
        act = F.get_activation(self.activation)
        return self.dropout2(self.linear2(self.dropout(act(self.linear1(x)))))

    def forward(self, src: Tensor, src_mask: Any = None, src_key_padding_mask: Any = None,
                is_causal: bool = False) -> Tensor:
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            return x + self._ff_block(self.norm2(x))
        x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
        return self.norm2(x + self._ff_block(x))
