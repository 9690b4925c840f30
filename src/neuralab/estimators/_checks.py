"""Input checks shared by the estimators: scikit-learn's ``validate_data`` with errors that
name the problem (which column is not numeric, how many values are NaN or infinite and in
which columns), so a user never has to decode a NumPy message.

Example:
    >>> X, y = validate(est, X, y, reset=True)   # inside fit
"""
from __future__ import annotations

from typing import Any

import numpy as np


def _column_label(names: Any, j: int) -> Any:
    return str(names[j]) if names is not None else int(j)


def check_numeric_columns(X: Any) -> None:
    """A DataFrame with a text column: say which column and show a value that is not a number.

    Example: ``check_numeric_columns(pd.DataFrame({"city": ["Paris"]}))  # ValueError naming 'city'``
    """
    dtypes = getattr(X, "dtypes", None)
    if dtypes is None or not hasattr(X, "columns"):
        return
    import pandas as pd  # noqa: PLC0415  (X is already a DataFrame: pandas is loaded)
    for name in X.columns:
        s = X[name]
        if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            continue
        converted = pd.to_numeric(s, errors="coerce")
        bad = s[converted.isna() & s.notna()]
        if len(bad):
            raise ValueError(f"column {str(name)!r} is not numeric (row {bad.index[0]!r} holds "
                             f"{bad.iloc[0]!r}); encode it as numbers first, or use "
                             f"`neuralab train FILE --target COL`, which one-hot encodes text")


def check_finite(X: np.ndarray, names: Any = None, what: str = "X") -> None:
    """Raise ValueError counting the NaN/infinite values of X and naming their first columns.

    Example: ``check_finite(np.array([[1.0, np.nan]]))  # X has 1 NaN value ... column 1``
    """
    if not isinstance(X, np.ndarray) or X.dtype.kind not in "fc":
        return
    finite = np.isfinite(X)
    if finite.all():
        return
    bad = ~finite.reshape(len(X), -1)
    n_bad = int(bad.sum())
    n_nan = int(np.isnan(X).sum())
    kind = ("NaN" if n_nan == n_bad else "infinite" if n_nan == 0 else "NaN or infinite")
    cols = np.flatnonzero(bad.any(axis=0))
    shown = [_column_label(names, j) for j in cols[:5]]
    more = f" and {len(cols) - 5} more" if len(cols) > 5 else ""
    row = int(np.flatnonzero(bad.any(axis=1))[0])
    raise ValueError(f"{what} has {n_bad} {kind} value(s) in {len(cols)} column(s) {shown}{more} "
                     f"(first in row {row}); impute or drop them before training or predicting "
                     f"(NaN and inf are not accepted)")


def validate(est: Any, X: Any, *args: Any, **kwargs: Any) -> Any:
    """``sklearn.utils.validation.validate_data`` with clear NaN/inf and non-numeric errors.

    Example: ``X = validate(self, X, reset=False)`` in predict
    """
    from sklearn.utils.validation import validate_data  # noqa: PLC0415

    check_numeric_columns(X)
    names = [str(c) for c in X.columns] if hasattr(X, "columns") else None
    kwargs.setdefault("ensure_all_finite", False)  # checked below, with a better message
    out = validate_data(est, X, *args, **kwargs)
    check_finite(out[0] if isinstance(out, tuple) else out, names)
    return out


def check_trainable(n_samples: int, classes: Any = None) -> None:
    """Refuse data that cannot train a model: one sample, or one class for a classifier.

    Example: ``check_trainable(len(X), classes=np.unique(y))``
    """
    if n_samples < 2:
        raise ValueError(f"got {n_samples} sample; training needs at least 2 samples "
                         f"(n_samples = {n_samples})")
    if classes is not None and len(classes) < 2:
        only = classes[0].item() if isinstance(classes[0], np.generic) else classes[0]
        raise ValueError(f"y has only one class ({only!r}); a classifier needs samples of "
                         f"at least 2 classes")
