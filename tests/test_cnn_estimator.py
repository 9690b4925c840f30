"""nl.CNNClassifier: learns digits, follows scikit-learn's estimator rules, saves and loads."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import neuralab as nl


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16, y, test_size=0.3, random_state=0, stratify=y)


@pytest.fixture(scope="module")
def fitted(digits):
    Xtr, _, ytr, _ = digits
    return nl.CNNClassifier(conv_channels=(8, 16), hidden_layer_sizes=(32,), max_iter=8,
                            random_state=0).fit(Xtr, ytr)


def test_learns_digits_from_flat_rows(digits, fitted):
    _, Xte, _, yte = digits
    assert fitted.image_shape_ == (1, 8, 8)  # 64 features: a square one-channel image
    assert fitted.n_features_in_ == 64
    assert fitted.score(Xte, yte) >= 0.9
    assert fitted.loss_curve_[-1] < 0.5 * fitted.loss_curve_[0]
    assert fitted.n_iter_ == len(fitted.loss_curve_) == 8


def test_image_layouts_give_the_same_predictions(digits, fitted):
    _, Xte, _, _ = digits
    p = fitted.predict_proba(Xte)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(fitted.predict(Xte), fitted.classes_[p.argmax(1)])
    np.testing.assert_allclose(fitted.predict_proba(Xte.reshape(-1, 8, 8)), p, rtol=1e-6)
    np.testing.assert_allclose(fitted.predict_proba(Xte.reshape(-1, 1, 8, 8)), p, rtol=1e-6)


def test_string_labels_and_channels_first_images():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2, 6, 5)).astype(np.float32)
    y = np.where(X[:, 0].mean(axis=(1, 2)) > X[:, 1].mean(axis=(1, 2)), "red", "blue")
    clf = nl.CNNClassifier(conv_channels=(4,), hidden_layer_sizes=(8,), max_iter=3,
                           random_state=1).fit(X, y)
    assert clf.image_shape_ == (2, 6, 5)
    assert list(clf.classes_) == ["blue", "red"]
    assert set(clf.predict(X)) <= {"blue", "red"}
    assert clf.predict_proba(X).shape == (60, 2)


def test_flat_rows_take_image_shape_or_become_a_strip():
    X, y = np.zeros((10, 12)), np.arange(10) % 2
    strip = nl.CNNClassifier(conv_channels=(2,), hidden_layer_sizes=(4,), max_iter=1).fit(X, y)
    assert strip.image_shape_ == (1, 1, 12)  # not a square: one pixel high
    clf = nl.CNNClassifier(image_shape=(3, 4), conv_channels=(2,), hidden_layer_sizes=(4,),
                           max_iter=1, random_state=0).fit(X, y)
    assert clf.image_shape_ == (1, 3, 4)
    with pytest.raises(ValueError, match="C \\* H \\* W = 12"):
        nl.CNNClassifier(image_shape=(5, 5), max_iter=1).fit(X, y)


def test_bad_input_is_named(fitted):
    with pytest.raises(ValueError, match="fitted on images of shape \\(1, 8, 8\\)"):
        fitted.predict(np.zeros((2, 7, 7)))
    with pytest.raises(ValueError, match="NaN"):
        fitted.predict(np.full((1, 64), np.nan))
    with pytest.raises(ValueError, match="3 images but y has 2 labels"):
        nl.CNNClassifier().fit(np.zeros((3, 4, 4)), [0, 1])
    with pytest.raises(ValueError, match="only one class"):
        nl.CNNClassifier().fit(np.zeros((3, 4, 4)), [1, 1, 1])


def test_clone_and_get_params_follow_sklearn(fitted):
    params = fitted.get_params()
    assert params["conv_channels"] == (8, 16) and params["learning_rate_init"] == 0.001
    assert {"max_iter", "batch_size", "random_state", "early_stopping", "alpha"} <= set(params)
    fresh = clone(fitted)
    assert fresh.get_params() == params
    assert not hasattr(fresh, "model_")


def test_same_seed_same_model(digits):
    Xtr, Xte, ytr, _ = digits
    a = nl.CNNClassifier(conv_channels=(4,), hidden_layer_sizes=(8,), max_iter=2, random_state=3)
    b = clone(a)
    np.testing.assert_array_equal(a.fit(Xtr, ytr).predict_proba(Xte), b.fit(Xtr, ytr).predict_proba(Xte))


def test_early_stopping_keeps_validation_scores(digits):
    Xtr, _, ytr, _ = digits
    clf = nl.CNNClassifier(conv_channels=(4,), hidden_layer_sizes=(16,), max_iter=4,
                           early_stopping=True, n_iter_no_change=2, batch_norm=True, dropout=0.1,
                           random_state=0).fit(Xtr, ytr)
    assert len(clf.validation_scores_) == clf.n_iter_ <= 4
    assert clf.best_validation_score_ == max(clf.validation_scores_) > 0.5


def test_save_load_round_trip(digits, fitted, tmp_path):
    _, Xte, _, _ = digits
    path = nl.save(fitted, tmp_path / "cnn.safetensors")
    back = nl.load(path)
    assert type(back) is nl.CNNClassifier
    assert back.get_params() == fitted.get_params()
    assert back.image_shape_ == (1, 8, 8)
    np.testing.assert_array_equal(back.predict_proba(Xte), fitted.predict_proba(Xte))
    np.testing.assert_array_equal(back.classes_, fitted.classes_)


def test_sklearn_estimator_checks():
    from sklearn.utils.estimator_checks import check_estimator
    est = nl.CNNClassifier(conv_channels=(4,), hidden_layer_sizes=(16,), learning_rate_init=0.01,
                           max_iter=20, random_state=0)
    results = check_estimator(est, on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"]
    assert len(results) > 40
    assert failed == []
