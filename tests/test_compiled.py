"""The captured training step (training/captured.py): what it captures, what it leaves to the eager step.

Its numbers equal the eager engine's bit for bit: tests/test_fast_paths.py checks that.
"""
import numpy as np
import pytest

import neuralab as nl
from neuralab import nn, optim
from neuralab.training.captured import CapturedMLP, capture_train_step


def _data(n=150, d=6, c=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    y = (X[:, :c] @ rng.standard_normal(c) > 0).astype(np.int64) + (X[:, 0] > 1)
    return X, y


def _model(seed=0, hidden=(16, 16), d=6, c=3):
    return nn.MLP(d, hidden=hidden, out_features=c, rng=seed)


def test_what_is_not_captured_falls_back():
    assert CapturedMLP.from_model(nn.MLP(4, hidden=(8,), out_features=2, dropout=0.5, rng=0)) is None
    assert CapturedMLP.from_model(nn.Sequential(nn.Linear(4, 8, rng=0), nn.Tanh(),
                                                nn.Linear(8, 2, rng=0))) is None
    model = _model()
    o = optim.SGD(model.parameters(), lr=0.1)
    assert capture_train_step(model, "mse", o) is None
    assert capture_train_step(model, "cross_entropy", o, l2=1e-3) is None
    assert capture_train_step(model, "cross_entropy", o) is not None


def test_sample_weighted_batches_go_to_the_eager_step():
    X, y = _data()
    model = _model()
    calls = []
    o = optim.SGD(model.parameters(), lr=0.1)
    step = capture_train_step(model, "cross_entropy", o,
                              fallback=lambda xb, yb, wb: calls.append(len(xb)) or (0.0, None))
    step(X[:10], y[:10], np.ones(10, np.float32))
    assert calls == [10]


def test_bad_labels_are_reported():
    X, y = _data()
    cap = CapturedMLP.from_model(_model())
    with pytest.raises(ValueError, match="class targets must lie in"):
        cap.forward_backward(X[:4], np.array([0, 1, 2, 7]))


def test_estimator_fast_predict_path_equals_validated_path():
    X, y = _data(120)
    clf = nl.MLPClassifier(hidden_layer_sizes=(10,), max_iter=3, random_state=0).fit(X, y)
    fast = clf.predict_proba(X)                       # float ndarray: skips validate_data
    slow = clf.predict_proba(X.astype(np.float64).tolist())  # a list: full validation
    np.testing.assert_allclose(fast, slow, rtol=1e-6)
    with pytest.raises(ValueError, match="NaN"):
        clf.predict_proba(np.full((1, X.shape[1]), np.nan, np.float32))
    with pytest.raises(ValueError, match="features"):
        clf.predict_proba(X[:, :3])
