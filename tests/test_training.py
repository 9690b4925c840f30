"""fit / evaluate / predict: the loop learns, modes and batching are right, bad input is named."""
from __future__ import annotations

import numpy as np
import pytest

import neuralab as nl
from neuralab import functional as F
from neuralab import nn, training
from neuralab.training import loop as training_loop
from neuralab.data import Batches, StandardScaler, train_val_split

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
XOR_Y = np.array([0.0, 1.0, 1.0, 0.0], np.float32)


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    sc = StandardScaler().fit(Xtr)
    return sc.transform(Xtr), sc.transform(Xte), ytr, yte


def blobs(n=300, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = rng.standard_normal((n, 4)).astype(np.float32) + 2.5 * np.eye(3, 4, dtype=np.float32)[y]
    return X, y


# ============================================================================ it really learns
def test_xor_needs_a_hidden_layer():
    hidden = nn.Sequential(nn.Linear(2, 4, rng=np.random.default_rng(0)), nn.Tanh(),
                           nn.Linear(4, 1, rng=np.random.default_rng(1)))
    nl.fit(hidden, XOR_X, XOR_Y, loss="bce", optimizer="adam", lr=0.05, epochs=600,
           batch_size=4, seed=0, verbose=0)
    acc_hidden = nl.evaluate(hidden, XOR_X, XOR_Y, loss="bce", metrics=["accuracy"])["accuracy"]

    linear = nn.Linear(2, 1, rng=np.random.default_rng(0))
    hist = nl.fit(linear, XOR_X, XOR_Y, loss="bce", optimizer="adam", lr=0.05, epochs=600,
                  batch_size=4, seed=0, verbose=0, metrics=["accuracy"])
    acc_linear = nl.evaluate(linear, XOR_X, XOR_Y, loss="bce", metrics=["accuracy"])["accuracy"]

    assert acc_hidden == 1.0
    # A line cannot separate XOR: at best 3 of the 4 points, whatever the training did.
    assert acc_linear <= 0.75
    assert max(hist.history["accuracy"]) <= 0.75


def test_digits_reach_97_percent_on_a_quarter_held_out(digits):
    Xtr, Xte, ytr, yte = digits
    model = nn.MLP(64, hidden=(128,), out_features=10, rng=0)
    hist = nl.fit(model, Xtr, ytr, optimizer="adam", lr=1e-3, epochs=30, batch_size=32,
                  validation_split=0.1, metrics=["accuracy"], seed=0, verbose=0,
                  callbacks=[nl.callbacks.EarlyStopping(patience=5)])
    scores = nl.evaluate(model, Xte, yte, metrics=["accuracy"])
    assert len(yte) == 450
    assert scores["accuracy"] >= 0.97, scores
    assert hist.history["loss"][-1] < hist.history["loss"][0] / 5


def test_regression_learns_a_linear_map_and_metrics_match_sklearn():
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 3)).astype(np.float32)
    y = X @ np.array([1.5, -2.0, 0.5], np.float32) + 0.3 + 0.05 * rng.standard_normal(400).astype(np.float32)
    model = nn.MLP(3, hidden=(16,), out_features=1, rng=0)
    hist = nl.fit(model, X, y, loss="mse", lr=0.01, epochs=60, batch_size=32, seed=0, verbose=0,
                  metrics=["mse", "mae", "r2"])
    pred = nl.predict(model, X)
    assert pred.shape == (400, 1)
    scores = nl.evaluate(model, X, y, loss="mse", metrics=["mse", "mae", "r2"])
    assert scores["r2"] > 0.99
    np.testing.assert_allclose(scores["mse"], mean_squared_error(y, pred[:, 0]), rtol=1e-4)
    np.testing.assert_allclose(scores["mae"], mean_absolute_error(y, pred[:, 0]), rtol=1e-4)
    np.testing.assert_allclose(scores["r2"], r2_score(y, pred[:, 0]), rtol=1e-5)
    np.testing.assert_allclose(scores["loss"], scores["mse"], rtol=1e-4)
    assert set(hist.history) == {"loss", "mse", "mae", "r2", "lr"}


# ============================================================================ History and options
def test_history_has_one_entry_per_epoch_for_every_key():
    X, y = blobs()
    model = nn.MLP(4, hidden=(8,), out_features=3, rng=0)
    hist = nl.fit(model, X, y, epochs=4, batch_size=50, validation_data=(X[:60], y[:60]),
                  metrics=["accuracy"], optimizer="sgd", lr=0.1, seed=0, verbose=0)
    assert list(hist.history) == ["loss", "accuracy", "val_loss", "val_accuracy", "lr"]
    assert all(len(v) == 4 for v in hist.history.values())
    assert hist.epoch == [0, 1, 2, 3]
    assert hist.history["lr"] == [0.1] * 4
    # val numbers are those of evaluate() on the final weights
    final = nl.evaluate(model, X[:60], y[:60], metrics=["accuracy"])
    assert hist.history["val_loss"][-1] == pytest.approx(final["loss"], rel=1e-5)
    assert hist.history["val_accuracy"][-1] == pytest.approx(final["accuracy"])


def test_same_seed_same_run_other_seed_other_order():
    X, y = blobs()

    def run(seed):
        model = nn.MLP(4, hidden=(8,), out_features=3, rng=0)
        return nl.fit(model, X, y, epochs=3, batch_size=16, seed=seed, verbose=0).history["loss"]

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_validation_split_holds_out_that_fraction(monkeypatch):
    X, y = blobs(200)
    model = nn.MLP(4, hidden=(8,), out_features=3, rng=0)
    seen = []
    real = training.make_train_step

    def spy(*args, **kwargs):
        step = real(*args, **kwargs)

        def counted(xb, yb, wb):
            seen.append(len(xb))
            return step(xb, yb, wb)
        return counted

    monkeypatch.setattr(training_loop, "make_train_step", spy)
    hist = nl.fit(model, X, y, epochs=2, batch_size=64, validation_split=0.25, seed=0, verbose=0)
    # the seam: fit's every optimisation step goes through make_train_step's function
    assert seen == [64, 64, 22] * 2
    assert len(hist.history["val_loss"]) == 2


def test_l2_shrinks_and_l1_sparsifies_weights():
    X, y = blobs()

    def weights(**pen):
        model = nn.MLP(4, hidden=(32,), out_features=3, rng=0)
        nl.fit(model, X, y, epochs=40, batch_size=32, lr=0.01, seed=0, verbose=0, **pen)
        return np.concatenate([p.data.ravel() for p in model.parameters() if p.ndim == 2])

    plain, l2, l1 = weights(), weights(l2=0.05), weights(l1=0.01)
    assert np.linalg.norm(l2) < 0.7 * np.linalg.norm(plain)
    assert np.mean(np.abs(l1) < 1e-2) > 2 * np.mean(np.abs(plain) < 1e-2)


def test_penalty_adds_weight_decay_to_the_gradient():
    w = nn.Parameter(np.array([[1.0, -2.0]], np.float32))
    training.penalty([w], l1=0.1, l2=0.5).backward()
    np.testing.assert_allclose(w.grad, 0.5 * w.data + 0.1 * np.sign(w.data))


def test_sample_weight_ones_change_nothing_and_zero_weights_ignore_samples():
    X, y = blobs()

    def run(**kw):
        model = nn.MLP(4, hidden=(8,), out_features=3, rng=0)
        hist = nl.fit(model, X, y, epochs=3, batch_size=32, seed=0, verbose=0, **kw)
        return model, hist.history["loss"]

    _, base = run()
    _, ones = run(sample_weight=np.ones(len(X)))
    np.testing.assert_allclose(ones, base, rtol=1e-5)
    # Corrupt a third of the labels but give them weight 0: the model learns the clean ones.
    y_bad = y.copy()
    y_bad[::3] = (y[::3] + 1) % 3
    w = np.ones(len(X))
    w[::3] = 0
    model = nn.MLP(4, hidden=(8,), out_features=3, rng=0)
    nl.fit(model, X, y_bad, sample_weight=w, epochs=30, batch_size=32, seed=0, verbose=0, lr=0.01)
    assert nl.evaluate(model, X, y, metrics=["accuracy"])["accuracy"] > 0.9


# ============================================================================ modes and graphs
class Probe(nn.Module):
    """Records (training flag, grad enabled) at every forward."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 3, rng=np.random.default_rng(0))
        self.calls = []

    def forward(self, x):
        self.calls.append((self.training, nl.is_grad_enabled(), x.shape[0]))
        return self.lin(x)


def test_train_mode_for_steps_eval_mode_without_graph_for_validation():
    X, y = blobs(100)
    model = Probe()
    nl.fit(model, X, y, epochs=1, batch_size=50, validation_data=(X[:30], y[:30]), seed=0, verbose=0)
    calls = model.calls[1:]  # the first is fit's shape check on two rows (eval, no grad)
    assert model.calls[0][:2] == (False, False)
    assert calls == [(True, True, 50), (True, True, 50), (False, False, 30)]
    assert model.training is False  # left ready to predict
    model.train()
    model.calls.clear()
    out = nl.predict(model, X[:7])
    assert model.calls == [(False, False, 7)] and model.training is True  # mode restored
    assert isinstance(out, np.ndarray) and out.shape == (7, 3)


def test_dropout_is_off_in_evaluate_and_predict():
    X, y = blobs(64)
    model = nn.MLP(4, hidden=(16,), out_features=3, dropout=0.5, rng=0)
    nl.fit(model, X, y, epochs=1, batch_size=16, seed=0, verbose=0)
    np.testing.assert_array_equal(nl.predict(model, X), nl.predict(model, X))
    model.eval()
    with nl.no_grad():
        direct = model(nl.tensor(X)).numpy()
    np.testing.assert_allclose(nl.predict(model, X, batch_size=10), direct, rtol=1e-6, atol=1e-6)


def test_evaluate_matches_the_loss_on_all_data():
    X, y = blobs(130)
    model = nn.MLP(4, hidden=(8,), out_features=3, rng=0)
    scores = nl.evaluate(model, X, y, metrics=["accuracy"], batch_size=32)
    with nl.no_grad():
        logits = model(nl.tensor(X))
        full = F.cross_entropy(logits, y).item()
    assert scores["loss"] == pytest.approx(full, rel=1e-5)
    assert scores["accuracy"] == pytest.approx(np.mean(logits.numpy().argmax(1) == y))


# ============================================================================ batching
def test_batches_visit_every_row_once_per_epoch_and_reuse_one_buffer():
    X = np.arange(23, dtype=np.float32).reshape(23, 1) * np.ones((1, 2), np.float32)
    y = np.arange(23)
    batches = Batches(X, y, batch_size=5, rng=np.random.default_rng(0))
    assert len(batches) == 5
    for _ in range(2):
        rows, bases = [], set()
        for xb, yb, _ in batches:
            np.testing.assert_array_equal(xb[:, 0], yb)  # rows and labels stay paired
            rows += yb.tolist()
            bases.add(id(xb.base if xb.base is not None else xb))
        assert sorted(rows) == list(range(23)) and rows != list(range(23))
        assert len(bases) == 1  # every batch is a view of the same buffer: no per-epoch copy


def test_fit_reads_a_memory_mapped_array_like_an_array(tmp_path):
    X, y = blobs(120)
    path = tmp_path / "X.npy"
    np.save(path, (X * 10 + 100).astype(np.uint8))  # stored as bytes, as images often are
    Xmm = np.load(path, mmap_mode="r")
    Xmem = np.asarray(Xmm, dtype=np.float32)

    def run(data):
        model = nn.MLP(4, hidden=(8,), out_features=3, rng=0)
        return nl.fit(model, data, y, epochs=2, batch_size=32, seed=0, verbose=0, lr=1e-3).history["loss"]

    assert isinstance(Xmm, np.memmap)
    np.testing.assert_allclose(run(Xmm), run(Xmem), rtol=1e-5)


def test_fit_takes_a_list_or_a_function_of_batches():
    X, y = blobs(96)
    pairs = [(X[i:i + 32], y[i:i + 32]) for i in range(0, 96, 32)]
    model = nn.MLP(4, hidden=(8,), out_features=3, rng=0)
    hist = nl.fit(model, pairs, epochs=3, seed=0, verbose=0, metrics=["accuracy"])
    assert len(hist.history["loss"]) == 3
    model2 = nn.MLP(4, hidden=(8,), out_features=3, rng=0)
    hist2 = nl.fit(model2, lambda: iter(pairs), epochs=3, seed=0, verbose=0, metrics=["accuracy"])
    assert hist2.history["loss"] == hist.history["loss"]
    with pytest.raises(ValueError, match="one-shot iterator"):
        nl.fit(model, (p for p in pairs), epochs=1, verbose=0)


def test_train_val_split_is_seeded_and_disjoint():
    X = np.arange(50, dtype=np.float32).reshape(25, 2)
    y = np.arange(25)
    a = train_val_split(X, y, validation_split=0.2, seed=3)
    b = train_val_split(X, y, validation_split=0.2, seed=3)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    Xtr, Xv, ytr, yv = a
    assert len(yv) == 5 and len(ytr) == 20
    assert sorted(np.concatenate([ytr, yv]).tolist()) == list(range(25))
    np.testing.assert_array_equal(Xv[:, 0], 2 * yv)


def test_standard_scaler_centres_and_keeps_constant_columns():
    rng = np.random.default_rng(0)
    X = np.c_[rng.normal(5, 3, 200), np.full(200, 7.0)]
    Z = StandardScaler().fit_transform(X)
    np.testing.assert_allclose(Z[:, 0].mean(), 0, atol=1e-5)
    np.testing.assert_allclose(Z[:, 0].std(), 1, rtol=1e-4)
    np.testing.assert_array_equal(Z[:, 1], 0)
    sc = StandardScaler().fit(X)
    np.testing.assert_allclose(sc.inverse_transform(sc.transform(X)), X, rtol=1e-5)
    with pytest.raises(ValueError, match="per-sample shape"):
        sc.transform(np.zeros((3, 5)))


# ============================================================================ bad input, in words
@pytest.mark.parametrize("kwargs, match", [
    ({"y": np.zeros(5, int)}, "X has 10 samples but y has 5"),
    ({"y": np.full(10, 7)}, "class label 7 but the model has only 3 outputs"),
    ({"y": np.full(10, -1)}, "negative class label"),
    ({"loss": "hinge"}, "unknown loss 'hinge'"),
    ({"optimizer": "adamax"}, "unknown optimizer 'adamax'"),
    ({"metrics": ["f7"]}, "unknown metric 'f7'"),
    ({"validation_split": 1.5}, "validation_split must be between 0 and 1"),
    ({"batch_size": 0}, "batch_size must be a positive integer"),
    ({"y": np.linspace(0, 1, 10)}, "non-integer values"),
    ({"callbacks": [nl.callbacks.EarlyStopping()]}, "no validation data"),
    ({"sample_weight": np.ones(3)}, r"sample_weight must have shape \(10,\)"),
])
def test_bad_input_is_named(kwargs, match):
    X = np.zeros((10, 4), np.float32)
    args = {"y": np.zeros(10, int), **kwargs}
    model = nn.Linear(4, 3, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=match):
        nl.fit(model, X, epochs=1, verbose=0, **args)


def test_nan_and_feature_mismatch_are_named():
    X = np.zeros((10, 4), np.float32)
    X[6, 2] = np.nan
    with pytest.raises(ValueError, match="NaN in row 6"):
        nl.fit(nn.Linear(4, 3), X, np.zeros(10, int), verbose=0)
    with pytest.raises(ValueError, match="5 features"):
        nl.fit(nn.Linear(4, 3), np.zeros((10, 5)), np.zeros(10, int), verbose=0)
    with pytest.raises(ValueError, match="1-D array"):
        nl.fit(nn.Linear(4, 3), np.zeros(10), np.zeros(10, int), verbose=0)
    with pytest.raises(ValueError, match="must match"):
        nl.fit(nn.Linear(4, 2), np.zeros((10, 4)), np.zeros((10, 3)), loss="mse", verbose=0)


class _BatchSizeRecorder(nn.Module):
    """A small MLP (with batch norm or not) that records the rows of every training batch."""

    def __init__(self, norm: bool) -> None:
        super().__init__()
        mid = [nn.BatchNorm1d(8)] if norm else []
        self.net = nn.Sequential(nn.Linear(3, 8, rng=0), *mid, nn.ReLU(), nn.Linear(8, 2, rng=1))
        self.seen: list[int] = []

    def forward(self, x):
        if self.training:
            self.seen.append(x.shape[0])
        return self.net(x)


def _nine_rows():
    rng = np.random.default_rng(0)
    return rng.standard_normal((9, 3)).astype(np.float32), rng.integers(0, 2, 9)


@pytest.mark.parametrize("drop_last, want", [(False, [4, 4, 1] * 2), (True, [4, 4] * 2)])
def test_fit_drop_last_skips_the_short_final_batch(drop_last, want):
    X, y = _nine_rows()
    model = _BatchSizeRecorder(norm=False)
    nl.fit(model, X, y, epochs=2, batch_size=4, seed=0, verbose=0, drop_last=drop_last)
    assert model.seen == want


def test_fit_drop_last_lets_batch_norm_train_when_one_row_is_left_over():
    X, y = _nine_rows()  # 9 rows in batches of 4 leave a batch of one row
    with pytest.raises(ValueError, match="more than one value per channel"):
        nl.fit(_BatchSizeRecorder(norm=True), X, y, epochs=1, batch_size=4, seed=0, verbose=0)
    model = _BatchSizeRecorder(norm=True)
    hist = nl.fit(model, X, y, epochs=3, batch_size=4, seed=0, verbose=0, drop_last=True)
    assert model.seen == [4, 4] * 3
    assert np.all(np.isfinite(hist.history["loss"]))


def test_fit_drop_last_with_batches_is_refused():
    batches = [(np.ones((4, 3), np.float32), np.zeros(4, np.int64))]
    with pytest.raises(ValueError, match="drop_last applies to arrays"):
        nl.fit(nn.Linear(3, 2, rng=0), batches, epochs=1, verbose=0, drop_last=True)
