"""The estimators train through nl.fit: their schedules, stored weights, input checks and threads."""
import sys
import threading
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

import neuralab as nl
from neuralab import nn, optim
from neuralab.callbacks.base import get_lr
from neuralab.estimators.mlp import _BaseMLP


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X[:600] / 16).astype(np.float32), y[:600]


def _quiet(est, X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y, **kw)


# ---------------------------------------------------------------- learning-rate schedules
def test_invscaling_lr_is_sklearns_and_lives_only_in_the_optimizer(digits):
    from sklearn.neural_network import MLPClassifier
    X, y = digits
    kw = dict(hidden_layer_sizes=(8,), solver="sgd", learning_rate="invscaling",
              learning_rate_init=0.5, power_t=0.3, max_iter=3, random_state=0)
    ours = _quiet(nl.MLPClassifier(**kw), X, y)
    theirs = _quiet(MLPClassifier(**kw), X, y)
    assert ours.t_ == theirs.t_ == 3 * len(X)
    assert get_lr(ours._optimizer) == pytest.approx(theirs._optimizer.learning_rate, rel=1e-12)
    assert get_lr(ours._optimizer) == pytest.approx(0.5 / (ours.t_ + 1) ** 0.3)
    assert not hasattr(ours, "_lr")


def test_inverse_scaling_and_adaptive_schedules():
    p = nl.tensor(np.zeros(2), requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    sched = optim.InverseScalingLR(opt, power_t=0.5)
    assert get_lr(opt) == 0.1  # t = 0
    sched.step(99)
    assert get_lr(opt) == pytest.approx(0.01)
    sched.step()
    assert get_lr(opt) == pytest.approx(0.1 / 101 ** 0.5)
    opt = optim.SGD([p], lr=1e-4)
    adaptive = optim.AdaptiveLR(opt)
    rates = []
    while adaptive.step():
        rates.append(get_lr(opt))
    assert rates == pytest.approx([2e-5, 4e-6, 8e-7]) and get_lr(opt) == pytest.approx(8e-7)


def test_adaptive_schedule_divides_by_5_on_a_stall(digits):
    X, y = digits
    clf = _quiet(nl.MLPClassifier(hidden_layer_sizes=(8,), solver="sgd", learning_rate="adaptive",
                                  learning_rate_init=0.1, tol=10.0, n_iter_no_change=1,
                                  max_iter=5, random_state=0), X, y)
    # tol=10 makes every epoch a non-improvement: lr / 5 after epochs 2 and 4
    assert get_lr(clf._optimizer) == pytest.approx(0.1 / 25)


# ---------------------------------------------------------------- one copy of each weight
def test_loaded_estimator_predicts_from_its_network_after_fine_tuning(digits, tmp_path):
    X, y = digits
    clf = _quiet(nl.MLPClassifier(hidden_layer_sizes=(128,), max_iter=2, random_state=0), X, y)
    path = nl.save(clf, tmp_path / "m.safetensors")
    weight_bytes = sum(p.data.nbytes for p in clf.model_.parameters())
    assert path.stat().st_size < 1.5 * weight_bytes  # each weight once (0.1.0: three times)
    loaded = nl.load(path)
    before = loaded.score(X, y)
    nl.fit(loaded.model_, X, y, epochs=20, optimizer=optim.Adam(loaded.model_.parameters(), lr=0.01),
           verbose=0, seed=0)
    logits = nl.predict(loaded.model_, X)
    np.testing.assert_array_equal(loaded.predict(X), loaded.classes_[logits.argmax(1)])
    assert loaded.score(X, y) > before + 0.05
    np.testing.assert_array_equal(loaded.coefs_[0], loaded.model_[0][0].weight.data.T)
    assert np.shares_memory(loaded.coefs_[0], loaded.model_[0][0].weight.data)


def test_files_with_the_0_1_copies_still_load(digits, tmp_path, monkeypatch):
    from neuralab.nn._fast import inference_layers
    X, y = digits
    clf = _quiet(nl.MLPClassifier(hidden_layer_sizes=(16,), max_iter=2, random_state=0), X, y)
    # what 0.1.0 kept beside the network: copies of the weights and the inference cache
    clf.__dict__.update(coefs_=[c.copy() for c in clf.coefs_],
                        intercepts_=[b.copy() for b in clf.intercepts_],
                        _linears=clf._linears,
                        _infer_layers=(clf.model_, inference_layers(clf.model_)))
    monkeypatch.setattr(_BaseMLP, "_not_stored", ())
    old = nl.save(clf, tmp_path / "old.safetensors")
    monkeypatch.undo()
    loaded = nl.load(old)
    assert not {"coefs_", "intercepts_", "_infer_layers", "_linears"} & set(vars(loaded))
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    loaded.model_[0][0].weight.data[...] = 0  # its views follow the one network
    assert not loaded.coefs_[0].any()


# ---------------------------------------------------------------- bad input, divergence
def test_negative_sample_weight_is_refused_naming_the_row(digits):
    X, y = digits
    w = np.ones(len(X))
    w[7] = -2
    with pytest.raises(ValueError, match=r"sample_weight must be non-negative; row 7 has -2"):
        nl.MLPClassifier(max_iter=2).fit(X, y, sample_weight=w)


def test_a_loss_that_grows_1000_fold_stops_with_a_warning(digits):
    X, y = digits
    clf = nl.MLPClassifier(hidden_layer_sizes=(32,), learning_rate_init=1e6, max_iter=20,
                           random_state=0)
    with pytest.warns(ConvergenceWarning, match=r"diverged: the loss became .*, over 1000 times"):
        clf.fit(X, y)
    assert clf.diverged_ and clf.n_iter_ < 20
    assert all(np.isfinite(p.data).all() for p in clf.model_.parameters())
    assert max(clf.loss_curve_, default=0) < 1e3 * 3  # no epoch with the grown loss is recorded


@pytest.mark.parametrize("value, dtype, expect", [
    (1e39, np.float64, r"column 2, row 5 holds 1e\+39: too large for float32"),
    (1e30, np.float64, r"column 2, row 5 holds 1e\+30: too large to train on in float32"),
    (2 ** 62, np.int64, r"column 2, row 5 holds 4.61e\+18: too large to train on in float32"),
])
def test_values_that_overflow_float32_are_refused_naming_column_and_row(digits, value, dtype, expect):
    X, y = digits
    X = X[:, :4].astype(dtype)
    X[5, 2] = value
    with pytest.raises(ValueError, match=expect):
        nl.MLPClassifier(max_iter=2).fit(X, y)
    nl.MLPRegressor(max_iter=1, dtype="float64").fit(X[:, :2] / 1e3, y)  # float64: room enough


def test_duplicate_columns_none_labels_and_complex_values_are_named(digits):
    import pandas as pd
    X, y = digits
    frame = pd.DataFrame(X[:, :3], columns=["a", "b", "a"])
    with pytest.raises(ValueError, match=r"duplicate column names \['a'\]"):
        nl.MLPClassifier(max_iter=2).fit(frame, y)
    labels = list(y)
    labels[4] = None
    with pytest.raises(ValueError, match=r"missing label\(s\) \(None\), first in row 4"):
        nl.MLPClassifier(max_iter=2).fit(X, labels)
    Xc = X[:, :3].astype(complex)
    Xc[2, 1] += 1j
    with pytest.raises(ValueError, match=r"complex numbers \(column 1, row 2\)"):
        nl.MLPClassifier(max_iter=2).fit(Xc, y)


# ---------------------------------------------------------------- threads
def test_predicting_from_threads_leaves_the_models_mode_as_it_was(monkeypatch):
    monkeypatch.setattr(sys, "getswitchinterval", sys.getswitchinterval)
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        model = nn.Sequential(nn.Linear(4, 8, rng=0), nn.Dropout(0.5, rng=0), nn.Linear(8, 2, rng=0))
        model.train()
        X = np.ones((3, 4), np.float32)
        start = threading.Barrier(4)

        def work():
            start.wait()
            for _ in range(300):
                nl.predict(model, X)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(0.005)
    assert all(m.training for m in model.modules())
    assert not hasattr(model, "_evaluating_depth")


def test_fitting_one_estimator_from_two_threads_is_refused(digits):
    X, y = digits
    errors = []

    class FitAgainFromAnotherThread:
        def on_epoch_end(self, epoch, logs):
            def again():
                try:
                    clf.fit(X, y)
                except RuntimeError as e:
                    errors.append(str(e))
            t = threading.Thread(target=again)
            t.start()
            t.join()

    clf = nl.MLPClassifier(hidden_layer_sizes=(8,), max_iter=1, random_state=0,
                           callbacks=[FitAgainFromAnotherThread()])
    _quiet(clf, X, y)
    assert len(errors) == 1 and "not thread-safe for concurrent fit" in errors[0]
    _quiet(clf.set_params(callbacks=None), X, y)  # and fits again once the first is done


# ---------------------------------------------------------------- fit's train_step hook
def test_fit_takes_a_train_step_and_casts_data_to_the_models_dtype():
    model = nn.Linear(3, 1, rng=0, dtype=np.float64)
    opt = optim.SGD(model.parameters(), lr=0.1)
    seen = []

    def step(xb, yb, wb):
        seen.append((xb.dtype, yb.dtype))
        opt.zero_grad()
        loss = nl.functional.mse_loss(model(nl.tensor(xb)), nl.tensor(yb).reshape((-1, 1)))
        loss.backward()
        opt.step()
        return 2.0, None

    X = np.random.default_rng(0).normal(size=(10, 3))
    hist = nl.fit(model, X, X[:, 0], loss="mse", optimizer=opt, epochs=2, batch_size=5,
                  train_step=step, verbose=0)
    assert hist.history["loss"] == [2.0, 2.0] and len(seen) == 4
    assert set(seen) == {(np.dtype(np.float64), np.dtype(np.float64))}
    with pytest.raises(TypeError, match="train_step must be a function"):
        nl.fit(model, X, X[:, 0], loss="mse", train_step=3, verbose=0)


def test_fit_hands_batches_to_a_train_step_as_given():
    # ids, a (users, items) tuple and y=None reach the step uncast (without it, X becomes float32)
    model = nn.Linear(2, 1, rng=0)
    ids = np.array([[1, 2], [3, 4], [5, 6]], np.int64)
    tgt = np.array([[7, 8], [9, 10], [11, 12]], np.int64)
    seen, sizes = [], []

    class Sizes(nl.callbacks.Callback):
        def on_batch_end(self, batch, logs=None):
            sizes.append(logs["size"])

    def step(xb, yb, wb):
        rows = len(xb[0]) if isinstance(xb, tuple) else len(xb)
        seen.append((type(xb).__name__, (xb[0] if isinstance(xb, tuple) else xb).dtype,
                     None if yb is None else yb.dtype, wb))
        return float(rows), None          # a loss equal to the batch's rows

    batches = [((ids[:2, 0], ids[:2, 1]), None), (ids[2:], tgt[2:])]
    hist = nl.fit(model, batches, epochs=1, train_step=step, callbacks=[Sizes()], verbose=0)
    assert seen == [("tuple", np.dtype(np.int64), None, None),
                    ("ndarray", np.dtype(np.int64), np.dtype(np.int64), None)]
    assert sizes == [2, 1]
    # each batch weighs by its rows (a tuple's first array): (2 * 2 + 1 * 1) / 3
    assert hist.history["loss"] == [pytest.approx(5 / 3)]
