"""Rosenblatt's perceptron: a weighted sum, a step, and the error-driven update rule.

The perceptron is not trained by gradient descent on a smooth loss: the step activation has
no useful derivative. Instead, after each sample it nudges the weights towards the sample
when it predicted 0 for a 1, and away from it when it predicted 1 for a 0:

    y_hat = step(w . x + b)            (1 where w . x + b >= 0, else 0)
    w    += eta0 * (y - y_hat) * x     (no change when the prediction was right)
    b    += eta0 * (y - y_hat)

If the classes can be split by a hyperplane the rule stops making mistakes after finitely
many updates (Novikoff's theorem); if they cannot (XOR) it never settles, and ``fit`` says so
with a ``ConvergenceWarning``.

Example:
    >>> import numpy as np, neuralab as nl
    >>> X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]]); y_and = [0, 0, 0, 1]
    >>> nl.Perceptron(random_state=0).fit(X, y_and).predict(X)
    array([0, 0, 0, 1])
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from ._checks import validate as _validate

from numbers import Integral, Real


class Perceptron(ClassifierMixin, BaseEstimator):
    """Rosenblatt's perceptron (step activation, error-driven updates), one-vs-rest for >2 classes.

    Args:
        max_iter: the most passes (epochs) over the training data.
        eta0: the learning rate: how far each mistake moves the weights.
        shuffle: visit the samples in a new random order every epoch.
        random_state: seed or ``numpy.random.Generator``-compatible state for the shuffling.
        fit_intercept: learn the bias ``b`` (else it stays 0).
        warm_start: start from the previous ``coef_``/``intercept_`` instead of zeros.
        verbose: print the number of mistakes per epoch when > 0.

    Fitted attributes: ``coef_`` (n_classes or 1, n_features), ``intercept_``, ``classes_``,
    ``n_iter_`` (epochs run), ``converged_`` (an epoch made no mistake), ``mistakes_`` (per
    epoch), ``n_features_in_``, ``t_`` (number of samples seen).

    Example:
        >>> X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
        >>> clf = nl.Perceptron(random_state=0).fit(X, [0, 1, 1, 1])   # OR
        >>> clf.converged_, clf.predict([[0, 0], [1, 0]])
        (True, array([0, 1]))
    """

    _parameter_constraints: dict = {
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "eta0": [Interval(Real, 0, None, closed="neither")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "fit_intercept": ["boolean"],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
    }

    def __init__(self, *, max_iter: int = 1000, eta0: float = 1.0, shuffle: bool = True,
                 random_state: Any = None, fit_intercept: bool = True, warm_start: bool = False,
                 verbose: int = 0) -> None:
        self.max_iter = max_iter
        self.eta0 = eta0
        self.shuffle = shuffle
        self.random_state = random_state
        self.fit_intercept = fit_intercept
        self.warm_start = warm_start
        self.verbose = verbose

    def fit(self, X: Any, y: Any) -> "Perceptron":
        """Run the perceptron rule until an epoch makes no mistake or ``max_iter`` epochs pass.

        Example: ``nl.Perceptron().fit(X, y)``
        """
        self._validate_params()
        reset = not (self.warm_start and hasattr(self, "coef_"))
        X, y = _validate(self, X, y, dtype=np.float64, reset=reset)
        check_classification_targets(y)
        classes = np.unique(y)
        if classes.size < 2:
            raise ValueError(f"Perceptron needs samples of at least 2 classes; got only 1 class: {classes[0]!r}")
        if not reset and not np.array_equal(classes, self.classes_):
            raise ValueError(f"warm_start: y has classes {classes} but the perceptron was fitted on {self.classes_}")
        self.classes_ = classes
        # One 0/1 target column per class (one-vs-rest); a single column for two classes.
        targets = (y[:, None] == classes[None, :]).astype(np.float64)
        if classes.size == 2:
            targets = targets[:, 1:]
        k = targets.shape[1]
        n, d = X.shape
        if reset:
            w = np.zeros((k, d))
            b = np.zeros(k)
        else:
            w, b = self.coef_.copy(), self.intercept_.copy()
        rng = check_random_state(self.random_state)
        order = np.arange(n)
        eta = float(self.eta0)
        self.mistakes_ = []
        self.converged_ = False
        self.n_iter_ = 0
        for epoch in range(self.max_iter):
            if self.shuffle:
                rng.shuffle(order)
            mistakes = 0
            for i in order:
                x = X[i]
                y_hat = (w @ x + b >= 0).astype(np.float64)   # step activation, all classes at once
                err = targets[i] - y_hat                      # -1, 0 or +1 per class
                if err.any():
                    mistakes += 1
                    w += eta * np.outer(err, x)
                    if self.fit_intercept:
                        b += eta * err
            self.n_iter_ = epoch + 1
            self.mistakes_.append(mistakes)
            if self.verbose:
                print(f"Perceptron epoch {epoch + 1}: {mistakes} mistakes")
            if mistakes == 0:
                self.converged_ = True
                break
        self.coef_, self.intercept_ = w, b
        self.t_ = self.n_iter_ * n
        if not self.converged_:
            warnings.warn(f"Perceptron did not converge: every one of the {self.max_iter} epochs "
                          "made mistakes (the classes are probably not linearly separable, "
                          "e.g. XOR). Increase max_iter or use an MLP.", ConvergenceWarning)
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """w . x + b per class ((n,) for two classes, positive means ``classes_[1]``).

        Example: ``clf.decision_function(X[:3])``
        """
        check_is_fitted(self)
        X = _validate(self, X, dtype=np.float64, reset=False)
        scores = X @ self.coef_.T + self.intercept_
        return scores[:, 0] if scores.shape[1] == 1 else scores

    def predict(self, X: Any) -> np.ndarray:
        """The class of each row: step of the score (binary) or the highest score (one-vs-rest).

        Example: ``clf.predict([[1, 0]])``
        """
        scores = self.decision_function(X)
        if scores.ndim == 1:
            return self.classes_[(scores >= 0).astype(int)]
        return self.classes_[np.argmax(scores, axis=1)]
