"""Explanations: completeness, exactness on a linear model, and agreement on planted features."""
import numpy as np
import pytest

import neuralab as nl
from neuralab import explain, nn


def planted_data(n=600, d=6, seed=0):
    """Only features 0 and 1 decide the class; the other four are noise."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    y = (2.0 * X[:, 0] - 3.0 * X[:, 1] > 0).astype(np.int64)
    return X, y


@pytest.fixture(scope="module")
def planted_clf():
    X, y = planted_data()
    clf = nl.MLPClassifier(hidden_layer_sizes=(16,), max_iter=200, random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.95
    return clf, X, y


def linear_module(d=5, seed=0):
    model = nn.Linear(d, 1, rng=np.random.default_rng(seed))
    return model


def test_integrated_gradients_equals_weight_times_input_on_a_linear_model():
    model = linear_module()
    X = np.random.default_rng(1).standard_normal((8, 5)).astype(np.float32)
    att = explain.integrated_gradients(model, X, steps=8)
    w = model.weight.data[0]
    np.testing.assert_allclose(att.values, X * w, rtol=1e-5, atol=1e-6)
    assert np.abs(att.residual).max() < 1e-4


def test_shap_agrees_with_integrated_gradients_on_a_linear_model():
    pytest.importorskip("shap")
    model = linear_module()
    X = np.random.default_rng(2).standard_normal((6, 5)).astype(np.float32)
    ig = explain.integrated_gradients(model, X)
    # with a single all-zero background row, exact SHAP values of a linear map are w * x
    sv = explain.shap_values(model, X, background=np.zeros((1, 5), np.float32))
    np.testing.assert_allclose(sv.values, ig.values, rtol=1e-4, atol=1e-5)


def test_completeness_on_a_nonlinear_classifier(planted_clf):
    clf, X, _ = planted_clf
    att = explain.integrated_gradients(clf, X[:20], steps=64)
    gap = att.outputs - att.extra["baseline_outputs"]
    # attributions sum to f(x) - f(baseline) within 1% of the gap (plus a tiny absolute floor)
    assert np.all(np.abs(att.residual) <= 0.01 * np.abs(gap) + 1e-4)


@pytest.mark.parametrize("method", ["saliency", "gradient_x_input", "integrated_gradients", "smoothgrad"])
def test_native_methods_rank_the_two_planted_features_first(planted_clf, method):
    clf, X, _ = planted_clf
    rows = explain.global_importance(clf, X[:100], method=method)
    assert {rows[0]["feature"], rows[1]["feature"]} == {"x0", "x1"}


def test_shap_and_lime_rank_the_two_planted_features_first(planted_clf):
    pytest.importorskip("shap")
    pytest.importorskip("lime")
    clf, X, _ = planted_clf
    sv = explain.shap_values(clf, X[:20], background=X)
    top = np.argsort(-np.abs(sv.values).mean(axis=0))[:2]
    assert set(top.tolist()) == {0, 1}
    weights = np.zeros(X.shape[1])
    for row in X[:5]:
        for rule, w in explain.lime_explanation(clf, row, X, num_features=6, num_samples=1000):
            j = int(rule.split()[0].lstrip("x")) if rule.startswith("x") else None
            weights[j] += abs(w)
    assert set(np.argsort(-weights)[:2].tolist()) == {0, 1}


def test_permutation_importance_sits_beside_attributions(planted_clf):
    clf, X, y = planted_clf
    rows = explain.global_importance(clf, X[:200], y[:200], method="saliency", n_repeats=3)
    assert {"permutation_importance", "permutation_std"} <= set(rows[0])
    perm_top = sorted(rows, key=lambda r: -r["permutation_importance"])[:2]
    assert {r["feature"] for r in perm_top} == {"x0", "x1"}


def test_target_can_be_a_class_label_and_top_names_features(planted_clf):
    clf, X, _ = planted_clf
    att = explain.saliency(clf, X[:3], target=1)
    assert att.target.tolist() == [1, 1, 1]
    assert len(att.top(2)[0]) == 2


def test_bad_input_is_named():
    model = linear_module()
    X = np.ones((2, 5), np.float32)
    X[1, 3] = np.nan
    with pytest.raises(ValueError, match="row 1, column 3"):
        explain.saliency(model, X)
    with pytest.raises(TypeError, match="nn.Module or a fitted"):
        explain.saliency(object(), X)
    with pytest.raises(ValueError, match="steps"):
        explain.integrated_gradients(model, X[:1], steps=0)
