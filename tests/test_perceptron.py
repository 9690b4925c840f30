"""Rosenblatt's perceptron: converges on separable data, gives up (with a warning) on XOR."""
import warnings

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.exceptions import ConvergenceWarning

import neuralab as nl

GATES = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)


@pytest.mark.parametrize("name, y", [("AND", [0, 0, 0, 1]), ("OR", [0, 1, 1, 1]),
                                     ("NAND", [1, 1, 1, 0])])
def test_learns_linearly_separable_gates(name, y):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf = nl.Perceptron(random_state=0).fit(GATES, y)
    assert clf.converged_
    assert clf.n_iter_ < clf.max_iter
    assert clf.mistakes_[-1] == 0 and clf.mistakes_[0] > 0
    np.testing.assert_array_equal(clf.predict(GATES), y)


def test_xor_cannot_be_separated():
    clf = nl.Perceptron(max_iter=40, random_state=0)
    with pytest.warns(ConvergenceWarning, match="linearly separable"):
        clf.fit(GATES, [0, 1, 1, 0])
    assert clf.n_iter_ == 40
    assert not clf.converged_
    assert min(clf.mistakes_) > 0                        # every epoch made a mistake
    assert (clf.predict(GATES) == [0, 1, 1, 0]).mean() < 1


def test_update_rule_is_rosenblatts_not_gradient_descent():
    # One epoch without shuffling, worked by hand: w starts at 0 and step(0) = 1.
    X = np.array([[1.0, 2.0], [2.0, 0.5]])
    clf = nl.Perceptron(max_iter=1, shuffle=False, eta0=0.5)
    with pytest.warns(ConvergenceWarning):
        clf.fit(X, [0, 1])
    # sample 0: predicted 1, target 0 -> w = -0.5 * [1, 2], b = -0.5
    # sample 1: w.x + b = -1 - 0.5 - 0.5 = -2 < 0 -> predicted 0, target 1 -> w += 0.5 * [2, .5]
    np.testing.assert_allclose(clf.coef_, [[0.5, -0.75]])
    np.testing.assert_allclose(clf.intercept_, [0.0])
    assert clf.mistakes_ == [2]


def test_separable_blobs_multiclass_one_vs_rest():
    X, y = make_blobs(n_samples=150, centers=[[-5, 0], [5, 0], [0, 8]], cluster_std=0.6,
                      random_state=1)
    clf = nl.Perceptron(random_state=0).fit(X, y)
    assert clf.converged_
    assert clf.coef_.shape == (3, 2) and clf.intercept_.shape == (3,)
    assert clf.score(X, y) == 1.0
    assert clf.decision_function(X).shape == (150, 3)


def test_string_labels_and_binary_decision_function():
    X, y = make_blobs(n_samples=60, centers=[[-4, -4], [4, 4]], random_state=0)
    labels = np.where(y == 1, "spam", "ham")
    clf = nl.Perceptron(random_state=0).fit(X, labels)
    assert list(clf.classes_) == ["ham", "spam"]
    scores = clf.decision_function(X)
    assert scores.shape == (60,)
    np.testing.assert_array_equal(clf.predict(X), np.where(scores >= 0, "spam", "ham"))


def test_random_state_makes_it_reproducible_and_shuffle_matters():
    X, y = make_blobs(n_samples=80, centers=2, cluster_std=3.0, random_state=3)
    a = nl.Perceptron(max_iter=5, random_state=7)
    b = nl.Perceptron(max_iter=5, random_state=7)
    c = nl.Perceptron(max_iter=5, random_state=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a.fit(X, y); b.fit(X, y); c.fit(X, y)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert not np.array_equal(a.coef_, c.coef_)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="eta0"):
        nl.Perceptron(eta0=-1.0).fit(GATES, [0, 0, 0, 1])
    with pytest.raises(ValueError, match="at least 2 classes"):
        nl.Perceptron().fit(GATES, [1, 1, 1, 1])
    clf = nl.Perceptron(random_state=0).fit(GATES, [0, 0, 0, 1])
    with pytest.raises(ValueError, match="features"):
        clf.predict(np.ones((2, 3)))
