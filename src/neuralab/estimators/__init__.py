"""scikit-learn estimators: Perceptron, MLPClassifier, MLPRegressor, TabularClassifier, TabularRegressor.

Same parameter names and fitted attributes as scikit-learn's, so they drop into
``Pipeline``, ``GridSearchCV`` and ``cross_val_score``.

Example:
    >>> from neuralab.estimators import MLPClassifier
    >>> clf = MLPClassifier(hidden_layer_sizes=(64,), dropout=0.1).fit(X, y)
"""
from __future__ import annotations

import importlib
from typing import Any

_CLASSES = {"Perceptron": "perceptron", "MLPClassifier": "mlp", "MLPRegressor": "mlp", "CNNClassifier": "cnn",
            "TabularClassifier": "tabular", "TabularRegressor": "tabular"}


def __getattr__(name: str) -> Any:
    # Each estimator is imported on first use, so the perceptron needs nothing from nn/.
    module = _CLASSES.get(name)
    if module is None:
        raise AttributeError(f"module 'neuralab.estimators' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = list(_CLASSES)
