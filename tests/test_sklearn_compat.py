"""scikit-learn's own estimator checks on Perceptron, MLPClassifier and MLPRegressor."""
import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

import neuralab as nl

# Small, quick instances: the checks only need the API to behave, not good models.
ESTIMATORS = [
    nl.Perceptron(max_iter=20, random_state=0),
    nl.MLPClassifier(hidden_layer_sizes=(16,), max_iter=100, learning_rate_init=0.01, random_state=0),
    nl.MLPRegressor(hidden_layer_sizes=(16,), max_iter=100, learning_rate_init=0.01, random_state=0),
]

_WEIGHTS = ("mini-batch adam visits a duplicated row in other batches and another shuffled "
            "order, so weight 2 != a repeated row; full-batch lbfgs is checked separately below")
_WEIGHTS_CLF = ("as MLPRegressor; with full-batch lbfgs in float64 the weighted and repeated "
                "fits agree to 1e-12 for 25 iterations (same objective and gradient, tested "
                "below), then the check's 15 rows x 30 features are separated, alpha alone bounds "
                "the weights, and in that flat valley the last-bit difference between a weighted "
                "sum and a mean over repeated rows changes a line search (1e-4 apart at 30)")
# The MLPs take sparse X (tags.input_tags.sparse), so sklearn runs the sparse variant of the
# weight check too; it fails for the same reasons as the dense one.
EXPECTED_FAILURES: dict = {
    "MLPClassifier": {"check_sample_weight_equivalence_on_dense_data": _WEIGHTS_CLF,
                      "check_sample_weight_equivalence_on_sparse_data": _WEIGHTS_CLF},
    "MLPRegressor": {"check_sample_weight_equivalence_on_dense_data": _WEIGHTS,
                     "check_sample_weight_equivalence_on_sparse_data": _WEIGHTS},
}


def _expected_failed_checks(estimator):
    return EXPECTED_FAILURES.get(type(estimator).__name__, {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("kind", ["dense", "sparse"])
def test_sample_weight_equals_repetition_with_full_batch_lbfgs(kind):
    # The check that mini-batches cannot pass (see EXPECTED_FAILURES) holds for full-batch
    # L-BFGS in float64, as sklearn runs it for its own MLPRegressor, on dense and sparse X.
    from sklearn.utils import estimator_checks

    check = getattr(estimator_checks, f"check_sample_weight_equivalence_on_{kind}_data")
    reg = nl.MLPRegressor(hidden_layer_sizes=(8,), solver="lbfgs", dtype="float64", random_state=0)
    check("MLPRegressor", reg)


@pytest.mark.parametrize("est", ESTIMATORS[1:], ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("container", ["csr_matrix", "csr_array"])
def test_sparse_checks_pass_by_fitting_not_by_refusing(est, container):
    """sklearn's check_estimator_sparse_* also pass an estimator that refuses sparse X with
    a "sparse" error; these MLPs must fit every format and index width it generates."""
    import warnings

    from scipy import sparse
    from sklearn.base import clone
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.utils.estimator_checks import _generate_sparse_data  # the check's formats

    rng = np.random.RandomState(0)
    X = rng.uniform(size=(40, 3))
    X[X < 0.6] = 0
    y = (4 * rng.uniform(size=40)).astype(np.int32)
    formats = []
    for fmt, Xs in _generate_sparse_data(getattr(sparse, container)(X)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fitted = clone(est).fit(Xs, y)  # raises on refusal: the test fails
        assert fitted.predict(Xs).shape == (40,)
        out = fitted.predict_proba if hasattr(fitted, "predict_proba") else fitted.predict
        # sparse and dense products sum in another order: float32 rounding apart
        np.testing.assert_allclose(out(Xs), out(X), rtol=1e-5, atol=1e-6)
        formats.append(fmt)
    assert {"csr", "csc", "coo", "lil", "dok", "bsr", "dia"} <= set(formats)


def _check_data():
    # The data of sklearn's check_sample_weight_equivalence: integer weights, zeros included.
    from sklearn.utils import shuffle
    rng = np.random.RandomState(42)
    X, y, sw = rng.rand(15, 30), rng.randint(0, 3, size=15), rng.randint(0, 5, size=15)
    Xr, yr = X.repeat(sw, axis=0), y.repeat(sw)
    Xw, yw, sw = shuffle(X, y, sw, random_state=0)
    return X, (Xr, yr), (Xw, yw, sw)


@pytest.mark.parametrize("make, binary", [
    (lambda **kw: nl.MLPClassifier(solver="lbfgs", **kw), False),
    (lambda **kw: nl.MLPClassifier(solver="lbfgs", **kw), True),
    (lambda **kw: nl.MLPRegressor(solver="lbfgs", **kw), False),
    (lambda **kw: nl.MLPClassifier(solver="adam", batch_size=200, learning_rate_init=0.01, **kw), False),
])
@pytest.mark.parametrize("alpha", [1e-4, 0.1])
def test_sample_weights_enter_loss_and_penalty_as_repeated_rows(make, binary, alpha):
    """Before rounding differences grow, a weighted fit follows the repeated-rows fit
    step for step: the weights enter the loss and the L2 term exactly as repetitions."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    X, (Xr, yr), (Xw, yw, sw) = _check_data()
    if binary:
        yr, yw = yr % 2, yw % 2
    kw = dict(hidden_layer_sizes=(8,), dtype="float64", random_state=0, alpha=alpha, max_iter=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        rep = make(**kw).fit(Xr, yr)
        wei = make(**kw).fit(Xw, yw, sample_weight=sw)
        plain = make(**kw).fit(Xw, yw)  # the same rows unweighted: a clearly different fit
    for a, b in zip(rep.coefs_ + rep.intercepts_, wei.coefs_ + wei.intercepts_):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-10)
    assert rep.loss_ == pytest.approx(wei.loss_, rel=1e-10)
    assert max(np.abs(a - b).max() for a, b in zip(rep.coefs_, plain.coefs_)) > 1e-3
