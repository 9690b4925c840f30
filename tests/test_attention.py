"""Attention, embeddings and the transformer encoder layer: PyTorch (float64) and finite differences."""
from __future__ import annotations

import numpy as np
import pytest

import neuralab as nl
from neuralab import functional as F
from neuralab import nn

from _layer_check import close, compare_params, copy_to_torch, t64, torch64

torch = pytest.importorskip("torch")

_mask_rng = np.random.default_rng(10)
_bool_mask = _mask_rng.random((4, 6)) > 0.4
_bool_mask[:, 0] = True  # every query may attend somewhere
SDPA_MASKS = [(None, False), (None, True), (_bool_mask, False), (_mask_rng.normal(size=(4, 6)), False),
              (_bool_mask, True)]


@pytest.mark.parametrize("mask,causal", SDPA_MASKS, ids=["none", "causal", "bool", "float", "bool+causal"])
def test_sdpa_matches_torch(mask, causal):
    rng = np.random.default_rng(0)
    q, k, v = rng.normal(size=(2, 3, 4, 5)), rng.normal(size=(2, 3, 6, 5)), rng.normal(size=(2, 3, 6, 2))
    Q, K, V = t64(q), t64(k), t64(v)
    tq, tk, tv = torch64(q), torch64(k), torch64(v)
    y = F.scaled_dot_product_attention(Q, K, V, attn_mask=mask, is_causal=causal)
    tmask = None if mask is None else torch.tensor(mask)
    if causal and mask is not None:  # torch takes one or the other; combine by hand
        tmask = torch.tensor(mask & np.tril(np.ones((4, 6), bool)))
        ty = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, attn_mask=tmask)
    else:
        ty = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, attn_mask=tmask, is_causal=causal)
    g = rng.normal(size=y.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    close(y, ty, "output")
    for ours, theirs, name in ((Q, tq, "dq"), (K, tk, "dk"), (V, tv, "dv")):
        close(ours.grad, theirs.grad, name)


def test_sdpa_gradcheck_with_mask():
    rng = np.random.default_rng(1)
    q, k, v = t64(rng.normal(size=(2, 3, 4))), t64(rng.normal(size=(2, 5, 4))), t64(rng.normal(size=(2, 5, 3)))
    assert nl.gradcheck(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, attn_mask=_bool_mask[:3, :5]), q, k, v)


def test_causal_attention_ignores_the_future():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(1, 5, 4))
    x2 = x.copy()
    x2[0, 3:] += 10.0  # change only the last two positions
    a = F.scaled_dot_product_attention(*(nl.tensor(x),) * 3, is_causal=True).numpy()
    b = F.scaled_dot_product_attention(*(nl.tensor(x2),) * 3, is_causal=True).numpy()
    np.testing.assert_allclose(a[0, :3], b[0, :3], rtol=1e-6)
    assert not np.allclose(a[0, 3:], b[0, 3:])


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("self_attention", [True, False])
def test_multihead_attention_matches_torch(batch_first, self_attention):
    rng = np.random.default_rng(3)
    mha = nn.MultiheadAttention(8, 2, batch_first=batch_first, rng=0, dtype="float64")
    tmha = torch.nn.MultiheadAttention(8, 2, batch_first=batch_first).double()
    copy_to_torch(mha, tmha)
    n, length, s = 2, 3, 3 if self_attention else 5
    shape = (lambda t: (n, t, 8)) if batch_first else (lambda t: (t, n, 8))
    q = rng.normal(size=shape(length))
    kv = q if self_attention else rng.normal(size=shape(s))
    Q, KV, tq, tkv = t64(q), t64(kv), torch64(q), torch64(kv)
    if self_attention:
        KV, tkv = Q, tq
    kpm = np.zeros((n, s), bool)
    kpm[1, -1] = True
    am = rng.normal(size=(length, s))
    y, w = mha(Q, KV, KV, key_padding_mask=kpm, attn_mask=am)
    ty, tw = tmha(tq, tkv, tkv, key_padding_mask=torch.tensor(kpm), attn_mask=torch.tensor(am))
    ((y * y).sum() + (w * w).sum()).backward()
    ((ty * ty).sum() + (tw * tw).sum()).backward()
    close(y, ty, "output")
    close(w, tw, "attention weights")
    close(Q.grad, tq.grad, "dquery")
    if not self_attention:
        close(KV.grad, tkv.grad, "dkey/value")
    compare_params(mha, tmha)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_transformer_encoder_layer_matches_torch(norm_first, activation):
    rng = np.random.default_rng(4)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, activation=activation, batch_first=True,
                                       norm_first=norm_first, rng=0, dtype="float64")
    tlayer = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, activation=activation, batch_first=True,
                                              norm_first=norm_first).double()
    copy_to_torch(layer, tlayer)
    x = rng.normal(size=(3, 4, 8))
    X, tx = t64(x), torch64(x)
    kpm = np.zeros((3, 4), bool)
    kpm[2, 2:] = True
    causal = np.triu(np.ones((4, 4), bool), 1)
    y = layer(X, src_mask=causal, src_key_padding_mask=kpm)
    ty = tlayer(tx, src_mask=torch.tensor(causal), src_key_padding_mask=torch.tensor(kpm))
    g = rng.normal(size=y.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    close(y, ty, "output")
    close(X.grad, tx.grad, "dx")
    compare_params(layer, tlayer)


def test_transformer_dropout_is_off_in_eval():
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.5, rng=0)
    x = nl.tensor(np.random.default_rng(5).normal(size=(4, 2, 8)))
    assert not np.allclose(layer(x).numpy(), layer(x).numpy())
    layer.eval()
    np.testing.assert_array_equal(layer(x).numpy(), layer(x).numpy())


def test_embedding_matches_torch_and_padding_row_gets_no_gradient():
    emb = nn.Embedding(7, 3, padding_idx=0, rng=0, dtype="float64")
    temb = torch.nn.Embedding(7, 3, padding_idx=0).double()
    copy_to_torch(emb, temb)
    assert np.all(emb.weight.data[0] == 0)
    idx = np.array([[1, 2, 0, 2], [6, 0, 1, 1]])
    y, ty = emb(idx), temb(torch.tensor(idx))
    g = np.random.default_rng(6).normal(size=y.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    close(y, ty, "output")
    compare_params(emb, temb)
    assert np.all(emb.weight.grad[0] == 0)
    np.testing.assert_allclose(emb.weight.grad[2], g[0, 1] + g[0, 3])


def test_embedding_gradcheck_and_errors():
    w = t64(np.random.default_rng(7).normal(size=(5, 2)))
    assert nl.gradcheck(lambda w: F.embedding(np.array([0, 3, 3, 4]), w), w)
    with pytest.raises(IndexError, match=r"\[0, 4\]"):
        F.embedding(np.array([5]), w)
    with pytest.raises(TypeError, match="integers"):
        F.embedding(np.array([0.5]), w)


def test_positional_encoding_values():
    pe = nn.PositionalEncoding(6, max_len=10, batch_first=True)
    out = pe(nl.zeros(2, 4, 6)).numpy()
    t, i = 3, 1  # position 3, pair 1: sin/cos of 3 / 10000**(2/6)
    assert out[1, t, 2 * i] == pytest.approx(np.sin(t / 10000 ** (2 * i / 6)), rel=1e-6)
    assert out[0, t, 2 * i + 1] == pytest.approx(np.cos(t / 10000 ** (2 * i / 6)), rel=1e-6)
    assert list(pe.state_dict()) == []
    with pytest.raises(ValueError, match="max_len=10"):
        pe(nl.zeros(1, 11, 6))


def test_mha_bad_shapes_are_named():
    with pytest.raises(ValueError, match="multiple of num_heads"):
        nn.MultiheadAttention(10, 3)
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    with pytest.raises(ValueError, match=r"key_padding_mask must be \(2, 3\)"):
        x = nl.zeros(2, 3, 8)
        mha(x, x, x, key_padding_mask=np.zeros((3, 3), bool))
