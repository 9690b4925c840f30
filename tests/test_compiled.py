"""The captured training step (compiled.py) gives the eager engine's numbers exactly."""
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


def _eager_grads(model, X, y):
    for p in model.parameters():
        p.grad = None
    loss = nl.functional.cross_entropy(model(nl.tensor(X)), y)
    loss.backward()
    return loss.item(), [p.grad.copy() for p in model.parameters()]


def test_captured_gradients_equal_eager_bit_for_bit():
    X, y = _data()
    model = _model()
    loss_e, grads_e = _eager_grads(model, X, y)
    cap = CapturedMLP.from_model(model)
    assert cap is not None
    loss_c = cap.forward_backward(X, y)
    assert loss_c == loss_e
    for p, g in zip(model.parameters(), grads_e):
        assert np.array_equal(p.grad, g)
    # and the logits are the model's
    assert np.array_equal(cap.logits, model(nl.tensor(X)).data)


@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_fit_with_captured_step_matches_eager_fit(opt, monkeypatch):
    X, y = _data()
    results = []
    for eager in (True, False):
        if eager:
            monkeypatch.setenv("NEURALAB_EAGER", "1")
        else:
            monkeypatch.delenv("NEURALAB_EAGER", raising=False)
        model = _model(seed=1)
        o = (optim.SGD(model.parameters(), lr=0.05, momentum=0.9) if opt == "sgd"
             else optim.Adam(model.parameters(), lr=1e-2))
        hist = nl.fit(model, X, y, optimizer=o, epochs=3, batch_size=32, verbose=0, seed=0)
        results.append((hist.history["loss"], [p.data.copy() for p in model.parameters()]))
    (loss_e, w_e), (loss_c, w_c) = results
    assert loss_e == loss_c
    for a, b in zip(w_e, w_c):
        assert np.array_equal(a, b)
    assert loss_c[-1] < loss_c[0]


@pytest.mark.parametrize("labels", ["multiclass", "binary", "multilabel"])
def test_estimator_shares_captured_step_and_matches_eager(labels, monkeypatch):
    X, y = _data(200)
    if labels == "binary":  # one logistic output: the captured step's "bce_sum" loss
        y = (y > 0).astype(np.int64)
    elif labels == "multilabel":
        y = np.stack([y > 0, X[:, 1] > 0], axis=1).astype(np.int64)
    fitted = []
    for eager in (True, False):
        if eager:  # make capture impossible: the estimator then builds graphs as before
            monkeypatch.setattr(CapturedMLP, "from_model", classmethod(lambda cls, *a: None))
        else:
            monkeypatch.undo()
        clf = nl.MLPClassifier(hidden_layer_sizes=(12,), max_iter=4, random_state=0,
                               dtype="float32").fit(X, y)
        fitted.append(clf)
    for a, b in zip(fitted[0].coefs_, fitted[1].coefs_):
        assert np.array_equal(a, b)
    assert fitted[0].loss_curve_ == fitted[1].loss_curve_


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


def test_forward_layers_equal_the_eager_forward():
    from neuralab.nn._fast import forward_layers, inference_layers
    X, _ = _data()
    model = _model().eval()
    with nl.no_grad():
        expected = model(nl.tensor(X)).data
    assert np.array_equal(forward_layers(inference_layers(model), X), expected)


def test_estimator_fast_predict_path_equals_validated_path():
    X, y = _data(120)
    clf = nl.MLPClassifier(hidden_layer_sizes=(10,), max_iter=3, random_state=0).fit(X, y)
    fast = clf.predict_proba(X)                       # float ndarray: skips validate_data
    slow = clf.predict_proba(X.astype(np.float64).tolist())  # a list: full validation
    np.testing.assert_allclose(fast, slow, rtol=1e-6)
    with nl.no_grad():  # the cached NumPy forward equals the eager model's logits exactly
        z = clf.model_(nl.tensor(X)).data
    assert np.array_equal(clf._forward_raw(X), z)
    with pytest.raises(ValueError, match="NaN"):
        clf.predict_proba(np.full((1, X.shape[1]), np.nan, np.float32))
    with pytest.raises(ValueError, match="features"):
        clf.predict_proba(X[:, :3])
