"""A SciPy sparse input to a linear layer: sparse-dense products forward and backward."""
from __future__ import annotations

import numpy as np
import pytest

import neuralab as nl
from neuralab import functional as F
from neuralab import nn

sp = pytest.importorskip("scipy.sparse")


def _sparse(n=7, d=11, density=0.3, seed=0, dtype=np.float64):
    return sp.random(n, d, density=density, format="csr", random_state=seed, dtype=dtype)


def test_forward_equals_the_dense_product():
    x = _sparse(dtype=np.float32)
    rng = np.random.default_rng(0)
    w = nl.tensor(rng.standard_normal((4, 11)).astype(np.float32))
    b = nl.tensor(rng.standard_normal(4).astype(np.float32))
    out = F.linear(x, w, b)
    assert type(out.data) is np.ndarray and out.dtype == np.float32
    np.testing.assert_allclose(out.data, x.toarray() @ w.data.T + b.data, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_weight_and_bias_gradients_equal_the_dense_ones(fmt):
    x = _sparse().asformat(fmt)
    rng = np.random.default_rng(1)
    w = nl.tensor(rng.standard_normal((3, 11)), requires_grad=True, dtype=np.float64)
    b = nl.tensor(rng.standard_normal(3), requires_grad=True, dtype=np.float64)
    (F.linear(x, w, b) ** 2).sum().backward()
    wd = nl.tensor(w.data.copy(), requires_grad=True, dtype=np.float64)
    bd = nl.tensor(b.data.copy(), requires_grad=True, dtype=np.float64)
    (F.linear(nl.tensor(x.toarray(), dtype=np.float64), wd, bd) ** 2).sum().backward()
    np.testing.assert_allclose(w.grad, wd.grad, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b.grad, bd.grad, rtol=1e-12, atol=1e-12)


def test_gradcheck_with_a_sparse_input():
    x = _sparse()
    rng = np.random.default_rng(2)
    w = nl.tensor(rng.standard_normal((3, 11)), requires_grad=True, dtype=np.float64)
    b = nl.tensor(rng.standard_normal(3), requires_grad=True, dtype=np.float64)
    nl.gradcheck(lambda w, b: F.tanh(F.linear(x, w, b)).sum(), w, b)


def test_a_network_takes_sparse_rows():
    x = _sparse(n=5, d=11, dtype=np.float32)
    net = nn.Sequential(nn.Linear(11, 6, rng=0), nn.ReLU(), nn.Linear(6, 2, rng=1))
    dense = net(x.toarray()).data
    with nl.no_grad():
        np.testing.assert_allclose(net(x).data, dense, rtol=1e-6, atol=1e-6)
    out = net(x)
    out.sum().backward()
    assert net[0].weight.grad.shape == (6, 11)


def test_a_sparse_input_of_the_wrong_width_is_one_clear_error():
    w = nl.tensor(np.ones((2, 4), np.float32))
    with pytest.raises(ValueError, match="input has 11 features"):
        F.linear(_sparse(), w)
