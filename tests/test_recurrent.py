"""RNN, LSTM, GRU: PyTorch's layers with the same weights (float64), BPTT by finite differences."""
from __future__ import annotations

import numpy as np
import pytest

import neuralab as nl
from neuralab import functions as fn
from neuralab import nn

from _layer_check import close, compare_params, copy_to_torch, t64, torch64

torch = pytest.importorskip("torch")

CASES = [
    dict(),
    dict(num_layers=2),
    dict(bidirectional=True),
    dict(num_layers=2, bidirectional=True, batch_first=True),
    dict(bias=False),
]


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("kw", CASES, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()) or "default")
def test_matches_torch_with_states(kind, kw):
    rng = np.random.default_rng(0)
    layer = getattr(nn, kind)(3, 4, rng=0, dtype="float64", **kw)
    tlayer = getattr(torch.nn, kind)(3, 4, **kw).double()
    copy_to_torch(layer, tlayer)
    batch, steps = 2, 5
    x = rng.normal(size=(batch, steps, 3) if kw.get("batch_first") else (steps, batch, 3))
    states = (kw.get("num_layers", 1) * (2 if kw.get("bidirectional") else 1), batch, 4)
    h0, c0 = rng.normal(size=states), rng.normal(size=states)
    X, H0, C0 = t64(x), t64(h0), t64(c0)
    tx, th0, tc0 = torch64(x), torch64(h0), torch64(c0)
    if kind == "LSTM":
        out, (h_n, c_n) = layer(X, (H0, C0))
        tout, (th_n, tc_n) = tlayer(tx, (th0, tc0))
        loss, tloss = (c_n * c_n).sum(), (tc_n * tc_n).sum()
        close(c_n, tc_n, "c_n")
    else:
        out, h_n = layer(X, H0)
        tout, th_n = tlayer(tx, th0)
        loss, tloss = 0, 0
    g = rng.normal(size=out.shape)
    (loss + (out * nl.tensor(g, dtype="float64")).sum() + (h_n * h_n).sum()).backward()
    (tloss + (tout * torch.tensor(g)).sum() + (th_n * th_n).sum()).backward()
    close(out, tout, "output")
    close(h_n, th_n, "h_n")
    close(X.grad, tx.grad, "dx")
    close(H0.grad, th0.grad, "dh0")
    if kind == "LSTM":
        close(C0.grad, tc0.grad, "dc0")
    compare_params(layer, tlayer)


def _seq_inputs(rng, gates, bias=True):
    x, h0 = t64(rng.normal(size=(4, 2, 3))), t64(rng.normal(size=(2, 2)))
    w = [t64(rng.normal(size=(gates * 2, 3))), t64(rng.normal(size=(gates * 2, 2)))]
    b = [t64(rng.normal(size=gates * 2)), t64(rng.normal(size=gates * 2))] if bias else []
    return x, h0, w, b


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_gradcheck_rnn_sequence(nonlinearity):
    x, h0, w, b = _seq_inputs(np.random.default_rng(1), 1)
    assert nl.gradcheck(lambda *a: fn.RNNSequence.apply(*a, nonlinearity=nonlinearity), x, h0, *w, *b)


def test_gradcheck_lstm_sequence():
    rng = np.random.default_rng(2)
    x, h0, w, b = _seq_inputs(rng, 4)
    c0 = t64(rng.normal(size=(2, 2)))
    assert nl.gradcheck(lambda x, h, c, *p: fn.LSTMSequence.apply(x, h, c, *p), x, h0, c0, *w, *b)


@pytest.mark.parametrize("bias", [True, False])
def test_gradcheck_gru_sequence(bias):
    x, h0, w, b = _seq_inputs(np.random.default_rng(3), 3, bias)
    assert nl.gradcheck(lambda *a: fn.GRUSequence.apply(*a), x, h0, *w, *b)


def test_dropout_between_layers_only_in_training():
    lstm = nn.LSTM(3, 5, num_layers=2, dropout=0.5, rng=0)
    x = nl.tensor(np.random.default_rng(4).normal(size=(6, 2, 3)))
    a, b = lstm(x)[0].numpy(), lstm(x)[0].numpy()
    assert not np.allclose(a, b)  # different masks each call
    lstm.eval()
    np.testing.assert_array_equal(lstm(x)[0].numpy(), lstm(x)[0].numpy())


def test_unbatched_input_and_gradient_clipping():
    gru = nn.GRU(3, 4, rng=0)
    out, h = gru(nl.tensor(np.ones((7, 3))))
    assert out.shape == (7, 4) and h.shape == (1, 4)
    (out * 100).sum().backward()
    total = nl.optim.clip_grad_norm(gru.parameters(), 1.0)
    assert float(total) > 1.0
    norm = np.sqrt(sum((p.grad.astype(np.float64) ** 2).sum() for p in gru.parameters()))
    assert norm == pytest.approx(1.0, rel=1e-4)


def test_learns_to_remember_the_first_input():
    # The target is the sign of the first step: only a recurrent state can carry it to the end.
    rng = np.random.default_rng(5)
    x = rng.normal(size=(64, 8, 1)).astype(np.float32)
    y = (x[:, 0, 0] > 0).astype(np.int64)
    gru, head = nn.GRU(1, 8, batch_first=True, rng=0), nn.Linear(8, 2, rng=0)
    opt = nl.optim.Adam(gru.parameters() + head.parameters(), lr=0.05)
    for _ in range(60):
        _, h = gru(nl.tensor(x))
        loss = nl.F.cross_entropy(head(h[0]), nl.tensor(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
    _, h = gru(nl.tensor(x))
    assert (head(h[0]).numpy().argmax(1) == y).mean() >= 0.95


@pytest.mark.parametrize("call,match", [
    (lambda: nn.LSTM(3, 4)(nl.zeros(5, 2, 6)), "input_size=3"),
    (lambda: nn.GRU(3, 4)(nl.zeros(5, 2, 3), nl.zeros(2, 2, 4)), r"h0 must have shape \(1, 2, 4\)"),
    (lambda: nn.RNN(3, 4, nonlinearity="sigmoid"), "nonlinearity"),
    (lambda: nn.GRU(3, 0), "hidden_size"),
])
def test_bad_input_names_the_problem(call, match):
    with pytest.raises(ValueError, match=match):
        call()
