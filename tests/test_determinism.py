"""Same seed, same bits: weights and predictions are bit-identical across runs on CPU, and
``fit`` equals ``partial_fit`` over the same batches where scikit-learn promises it
(``shuffle=False``, a constant learning rate, no early stopping). Where it cannot hold is
documented in docs/reliability.md (GPU, different BLAS thread counts).
"""
from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits

import neuralab as nl
from neuralab import nn

X, Y = load_digits(return_X_y=True)
X = (X[:500] / 16.0).astype(np.float32)
Y = Y[:500]


def _quiet(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn()


@pytest.mark.parametrize("params", [
    {"solver": "adam", "dropout": 0.2},
    {"solver": "sgd", "batch_norm": True},
    {"solver": "adamw", "residual": True, "hidden_layer_sizes": (16, 16)},
    {"solver": "lbfgs"},
])
def test_two_fits_with_one_seed_are_bit_identical(params):
    kw = {"hidden_layer_sizes": (16,), "max_iter": 4, "random_state": 7, **params}
    a = _quiet(lambda: nl.MLPClassifier(**kw).fit(X, Y))
    b = _quiet(lambda: nl.MLPClassifier(**kw).fit(X, Y))
    for wa, wb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(wa, wb)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    c = _quiet(lambda: nl.MLPClassifier(**{**kw, "random_state": 8}).fit(X, Y))
    assert not np.array_equal(a.coefs_[0], c.coefs_[0])  # the seed matters


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_fit_equals_partial_fit_over_the_same_batches(solver):
    kw = {"hidden_layer_sizes": (16,), "solver": solver, "shuffle": False, "random_state": 3,
          "batch_size": 50, "learning_rate_init": 0.01}
    fitted = _quiet(lambda: nl.MLPClassifier(max_iter=3, **kw).fit(X, Y))
    online = nl.MLPClassifier(**kw)
    for _ in range(3):
        online.partial_fit(X, Y, classes=np.arange(10))
    for wa, wb in zip(fitted.coefs_ + fitted.intercepts_, online.coefs_ + online.intercepts_):
        np.testing.assert_array_equal(wa, wb)
    np.testing.assert_array_equal(fitted.predict_proba(X), online.predict_proba(X))


def test_regressor_fit_equals_partial_fit():
    y = X[:, :3].sum(axis=1)
    kw = {"hidden_layer_sizes": (8,), "shuffle": False, "random_state": 0, "batch_size": 64}
    fitted = _quiet(lambda: nl.MLPRegressor(max_iter=2, **kw).fit(X, y))
    online = nl.MLPRegressor(**kw)
    online.partial_fit(X, y)
    online.partial_fit(X, y)
    np.testing.assert_array_equal(fitted.predict(X), online.predict(X))


def test_nl_fit_is_bit_identical_across_runs():
    def run():
        model = nn.MLP(64, hidden=(32,), out_features=10, dropout=0.1,
                       rng=np.random.default_rng(0))
        nl.fit(model, X, Y, epochs=3, batch_size=32, seed=1, verbose=0, validation_split=0.2)
        return model.state_dict(), nl.predict(model, X)
    (sa, pa), (sb, pb) = run(), run()
    for k in sa:
        np.testing.assert_array_equal(sa[k], sb[k])
    np.testing.assert_array_equal(pa, pb)


def test_bit_identical_across_processes():
    """A fresh interpreter gives the same bits as this one (no hidden global state)."""
    code = ("import numpy as np, warnings, neuralab as nl\n"
            "from sklearn.datasets import load_digits\n"
            "X, y = load_digits(return_X_y=True); X = (X[:500] / 16.0).astype(np.float32)\n"
            "warnings.simplefilter('ignore')\n"
            "c = nl.MLPClassifier(hidden_layer_sizes=(16,), max_iter=4, random_state=7).fit(X, y[:500])\n"
            "print(c.coefs_[0].tobytes().hex())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    here = _quiet(lambda: nl.MLPClassifier(hidden_layer_sizes=(16,), max_iter=4,
                                           random_state=7).fit(X, Y))
    assert out.stdout.strip() == here.coefs_[0].tobytes().hex()
