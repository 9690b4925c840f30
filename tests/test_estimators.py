"""MLPClassifier / MLPRegressor: sklearn's semantics, neuralab's extras, and sklearn tooling."""
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits, make_multilabel_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

import neuralab as nl

warnings.filterwarnings("ignore", category=ConvergenceWarning)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16.0)[:600], y[:600]


def test_same_parameters_and_defaults_as_sklearn():
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    for ours, theirs in [(nl.MLPClassifier(), MLPClassifier()), (nl.MLPRegressor(), MLPRegressor())]:
        mine = ours.get_params()
        for name, value in theirs.get_params().items():
            assert mine[name] == value, name


def test_classifier_fits_and_has_sklearn_attributes(digits):
    X, y = digits
    clf = nl.MLPClassifier(hidden_layer_sizes=(32, 16), max_iter=40, learning_rate_init=0.01, random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.95
    assert [c.shape for c in clf.coefs_] == [(64, 32), (32, 16), (16, 10)]
    assert [b.shape for b in clf.intercepts_] == [(32,), (16,), (10,)]
    np.testing.assert_array_equal(clf.coefs_[0], clf.model_.parameters()[0].data.T)
    assert clf.n_layers_ == 4 and clf.n_outputs_ == 10 and clf.out_activation_ == "softmax"
    assert clf.n_iter_ == len(clf.loss_curve_) and clf.t_ == clf.n_iter_ * len(X)
    assert clf.loss_curve_[-1] < clf.loss_curve_[0] and clf.best_loss_ == min(clf.loss_curve_)
    proba = clf.predict_proba(X[:5])
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)
    np.testing.assert_allclose(clf.predict_log_proba(X[:5]), np.log(proba), rtol=1e-5)
    assert clf.coefs_[0].dtype == np.float32


def test_loss_includes_sklearns_l2_term(digits):
    X, y = digits
    common = dict(hidden_layer_sizes=(8,), max_iter=1, shuffle=False, batch_size=len(X),
                  learning_rate_init=1e-12, random_state=0, dtype="float64")
    a = nl.MLPClassifier(alpha=0.0, **common).fit(X, y)
    b = nl.MLPClassifier(alpha=10.0, **common).fit(X, y)
    w2 = sum((c.astype(np.float64) ** 2).sum() for c in b.coefs_)
    assert b.loss_ - a.loss_ == pytest.approx(0.5 * 10.0 * w2 / len(X), rel=1e-4)


def test_binary_multilabel_and_string_labels():
    X, Y = make_multilabel_classification(n_samples=200, n_classes=3, random_state=0)
    clf = nl.MLPClassifier(hidden_layer_sizes=(32,), max_iter=200, random_state=0).fit(X, Y)
    assert clf.out_activation_ == "logistic" and clf.predict(X).shape == (200, 3)
    assert clf.predict_proba(X).shape == (200, 3) and clf.score(X, Y) > 0.5
    y = np.where(X[:, 0] > np.median(X[:, 0]), "yes", "no")
    b = nl.MLPClassifier(hidden_layer_sizes=(16,), max_iter=200, random_state=0).fit(X, y)
    assert list(b.classes_) == ["no", "yes"] and b.predict_proba(X).shape == (200, 2)
    assert b.score(X, y) > 0.9


def test_regressor_multioutput_lbfgs_and_pandas():
    X, Y = make_regression(n_samples=200, n_features=5, n_targets=2, noise=0.1, random_state=0)
    Y = Y / Y.std(0)
    df = pd.DataFrame(X, columns=list("abcde"))
    reg = nl.MLPRegressor(hidden_layer_sizes=(32,), solver="lbfgs", max_iter=300, random_state=0)
    reg.fit(df, Y)
    assert list(reg.feature_names_in_) == list("abcde")
    assert reg.predict(df).shape == (200, 2) and reg.score(df, Y) > 0.95
    assert reg.n_iter_ > 1 and np.isfinite(reg.loss_)


def test_dtype_follows_parameter_or_input(digits):
    X, y = digits
    c64 = nl.MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, dtype=None, random_state=0).fit(X, y)
    c32 = nl.MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, dtype=None, random_state=0).fit(
        X.astype(np.float32), y)
    assert c64.coefs_[0].dtype == np.float64 and c32.coefs_[0].dtype == np.float32


def test_early_stopping_restores_best_and_records_scores(digits):
    X, y = digits
    clf = nl.MLPClassifier(hidden_layer_sizes=(16,), early_stopping=True, n_iter_no_change=3,
                           max_iter=300, random_state=0).fit(X, y)
    assert clf.n_iter_ < 300 and len(clf.validation_scores_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_) and clf.best_loss_ is None


def test_extras_dropout_batchnorm_residual_solvers(digits):
    X, y = digits
    for kw in [dict(dropout=0.2), dict(batch_norm=True), dict(residual=True, hidden_layer_sizes=(32, 32)),
               dict(solver="adamw"), dict(solver="rmsprop"), dict(activation="gelu"),
               dict(solver="sgd", learning_rate="adaptive", learning_rate_init=0.1)]:
        params = dict(hidden_layer_sizes=(32,), max_iter=30, learning_rate_init=0.01, random_state=0)
        params.update(kw)
        clf = nl.MLPClassifier(**params).fit(X, y)
        assert clf.score(X, y) > 0.9, kw
    res = nl.MLPClassifier(hidden_layer_sizes=(32, 32), residual=True, max_iter=1, random_state=0).fit(X, y)
    assert any(type(m).__name__ == "Residual" for m in res.model_.modules())


def test_class_weight_shifts_predictions(digits):
    X, y = digits
    yb = (y == 0).astype(int)  # ~10% positives
    plain = nl.MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0).fit(X, yb)
    heavy = nl.MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0,
                             class_weight={0: 1, 1: 20}).fit(X, yb)
    assert heavy.predict_proba(X)[:, 1].mean() > plain.predict_proba(X)[:, 1].mean() + 0.1


def test_partial_fit_and_warm_start(digits):
    X, y = digits
    clf = nl.MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, random_state=0)
    with pytest.raises(ValueError, match="classes"):
        nl.MLPClassifier().partial_fit(X, y)
    for _ in range(10):
        clf.partial_fit(X, y, classes=np.arange(10))
    assert clf.score(X, y) > 0.85
    with pytest.raises(AttributeError, match="partial_fit"):
        nl.MLPClassifier(solver="lbfgs").partial_fit
    ws = nl.MLPClassifier(hidden_layer_sizes=(16,), max_iter=3, warm_start=True, random_state=0).fit(X, y)
    first = ws.coefs_[0].copy()
    ws.fit(X, y)
    assert not np.array_equal(first, ws.coefs_[0]) and ws.t_ == 6 * len(X)


def test_callbacks_can_stop_training(digits):
    X, y = digits

    class StopAt3:
        def on_epoch_end(self, epoch, logs):
            self.seen = epoch
            return epoch >= 2

    cb = StopAt3()
    clf = nl.MLPClassifier(hidden_layer_sizes=(8,), max_iter=50, callbacks=[cb], random_state=0).fit(X, y)
    assert clf.n_iter_ == 3 and cb.seen == 2 and clf.history_["loss"] == clf.loss_curve_


def test_invalid_parameters_are_named(digits):
    X, y = digits
    with pytest.raises(InvalidParameterError, match="dropout"):
        nl.MLPClassifier(dropout=1.5).fit(X, y)
    with pytest.raises(InvalidParameterError, match="solver"):
        nl.MLPClassifier(solver="newton").fit(X, y)
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        nl.MLPClassifier(hidden_layer_sizes=(0,)).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        nl.MLPClassifier(hidden_layer_sizes=(4,), max_iter=1).fit(X, y).predict(X[:, :3])


def test_pipeline_search_cross_val_and_clone(digits):
    X, y = digits
    pipe = make_pipeline(StandardScaler(), nl.MLPClassifier(hidden_layer_sizes=(16,), max_iter=30,
                                                            learning_rate_init=0.01, random_state=0))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.85
    grid = GridSearchCV(pipe, {"mlpclassifier__alpha": [1e-4, 1e-1]}, cv=2).fit(X, y)
    assert grid.best_score_ > 0.8
    rand = RandomizedSearchCV(nl.MLPRegressor(max_iter=20, random_state=0),
                              {"hidden_layer_sizes": [(8,), (16,)]}, n_iter=2, cv=2,
                              random_state=0).fit(X, y.astype(float))
    assert len(rand.cv_results_["params"]) == 2
    c = clone(pipe.steps[-1][1].set_params(dropout=0.3))
    assert c.get_params()["dropout"] == 0.3 and not hasattr(c, "model_")


def test_from_network_wraps_an_nl_fit_network_as_a_fitted_estimator(tmp_path):
    """A softmax head over two classes, trained by nl.fit: predict, save/load, partial_fit."""
    from sklearn.datasets import make_moons
    X, y = make_moons(200, noise=0.1, random_state=0)
    X = X.astype(np.float32)
    net = nl.nn.MLP(2, hidden=(16,), out_features=2, rng=np.random.default_rng(0))
    hist = nl.fit(net, X, y, loss="cross_entropy", epochs=40, batch_size=32, seed=0, verbose=0,
                  optimizer=nl.optim.Adam(net.parameters(), lr=0.03))
    clf = nl.MLPClassifier.from_network(net, n_features=2, classes=["a", "b"],
                                        loss_curve=hist.history["loss"], n_samples=len(X),
                                        hidden_layer_sizes=(16,), random_state=0)
    logits = np.asarray(nl.predict(net, X))
    np.testing.assert_array_equal(clf.predict(X), np.array(["a", "b"])[logits.argmax(1)])
    p = clf.predict_proba(X)
    assert p.shape == (200, 2) and np.allclose(p.sum(1), 1)
    assert clf.score(X, np.array(["a", "b"])[y]) > 0.9
    assert clf.n_iter_ == 40 and clf.loss_ == hist.history["loss"][-1]
    np.testing.assert_array_equal(clf.coefs_[0], net.parameters()[0].data.T)
    path = nl.save(clf, tmp_path / "m.safetensors")
    again = nl.load(path)
    np.testing.assert_array_equal(again.predict_proba(X), p)
    before = again.coefs_[0].copy()
    again.partial_fit(X, np.array(["a", "b"])[y])  # continues training (fresh optimizer)
    assert len(again.loss_curve_) == 41 and not np.array_equal(again.coefs_[0], before)
    with pytest.raises(ValueError, match="2 outputs but 3 classes"):
        nl.MLPClassifier.from_network(net, n_features=2, classes=[0, 1, 2])


def test_from_network_regressor_predicts_the_network_output():
    X, y = make_regression(100, 3, noise=1.0, random_state=0)
    net = nl.nn.MLP(3, hidden=(8,), out_features=1, rng=np.random.default_rng(0))
    reg = nl.MLPRegressor.from_network(net, n_features=3)
    out = reg.predict(X.astype(np.float32))
    assert out.shape == (100,)
    np.testing.assert_array_equal(out, np.asarray(nl.predict(net, X.astype(np.float32)))[:, 0])
    with pytest.raises(ValueError, match="features"):
        reg.predict(X[:, :2])


class _StopAt:
    """Asks to stop after batch `batch` of epoch `epoch` (both from 0), as Ctrl-C would."""

    def __init__(self, epoch, batch):
        self.epoch, self.batch, self.seen = epoch, batch, 0

    def on_epoch_end(self, epoch, logs):
        self.seen = epoch + 1

    def on_batch_end(self, batch, logs):
        return self.seen == self.epoch and batch == self.batch


@pytest.mark.parametrize("early_stopping", [True, False])
def test_a_callback_stops_inside_an_epoch_after_a_whole_step(digits, early_stopping):
    X, y = digits
    kw = dict(hidden_layer_sizes=(16,), batch_size=50, learning_rate_init=0.01, random_state=0,
              early_stopping=early_stopping, n_iter_no_change=50)
    cut = nl.MLPClassifier(max_iter=20, callbacks=[_StopAt(3, 4)], **kw).fit(X, y)
    ref = nl.MLPClassifier(max_iter=3, **kw).fit(X, y)
    assert cut.interrupted_ and not ref.interrupted_
    assert cut.n_iter_ == 3 and cut.loss_curve_ == ref.loss_curve_  # the cut epoch is not counted
    if early_stopping:  # the best epoch's weights, as a run that ended after epoch 3
        assert cut.validation_scores_ == ref.validation_scores_
        for a, b in zip(cut.coefs_, ref.coefs_):
            np.testing.assert_array_equal(a, b)
    else:  # five more steps than the 3-epoch run, all finished
        assert all(np.isfinite(c).all() for c in cut.coefs_)
        assert not np.array_equal(cut.coefs_[0], ref.coefs_[0])
    assert cut.score(X, y) > 0.8


def test_history_is_the_history_record_of_nl_fit(digits, tmp_path):
    X, y = digits
    clf = nl.MLPClassifier(hidden_layer_sizes=(16,), max_iter=4, early_stopping=True,
                           random_state=0).fit(X, y)
    assert isinstance(clf.history_, nl.callbacks.History)
    assert clf.history_["loss"] == clf.history_.history["loss"] == clf.loss_curve_
    assert clf.history_["val_score"] == clf.validation_scores_
    assert clf.history_.epoch == [0, 1, 2, 3]
    again = nl.load(nl.save(clf, tmp_path / "m.safetensors")).history_
    assert isinstance(again, nl.callbacks.History)
    assert again.history == clf.history_.history and again.epoch == clf.history_.epoch
    inc = nl.MLPClassifier(hidden_layer_sizes=(16,), random_state=0)
    for _ in range(3):  # partial_fit keeps counting epochs
        inc.partial_fit(X, y, classes=np.arange(10))
    assert inc.history_.epoch == [0, 1, 2] and inc.history_["val_score"] == []
    lb = nl.MLPRegressor(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=5, random_state=0).fit(X, y)
    assert lb.history_["loss"] == [lb.loss_] and lb.history_.epoch == [0]
