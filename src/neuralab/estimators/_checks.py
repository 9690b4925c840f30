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


def _is_sparse(X: Any) -> bool:
    return type(X).__module__.startswith("scipy.sparse")


def _sparse_entries(X: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, columns, values) of the stored entries of a SciPy sparse matrix, rows sorted."""
    coo = X.tocsr().tocoo()  # NOTE: through CSR so that the first bad entry is in the first bad row
    return coo.row, coo.col, coo.data


def _check_sparse_finite(X: Any, names: Any, what: str) -> None:
    if X.dtype.kind not in "fc" or np.isfinite(X.data).all():
        return
    rows, cols, values = _sparse_entries(X)
    bad = ~np.isfinite(values)
    n_bad, n_nan = int(bad.sum()), int(np.isnan(values).sum())
    kind = ("NaN" if n_nan == n_bad else "infinite" if n_nan == 0 else "NaN or infinite")
    bad_cols = np.unique(cols[bad])
    shown = [_column_label(names, j) for j in bad_cols[:5]]
    more = f" and {len(bad_cols) - 5} more" if len(bad_cols) > 5 else ""
    raise ValueError(f"{what} has {n_bad} {kind} value(s) in {len(bad_cols)} column(s) {shown}"
                     f"{more} (first in row {int(rows[bad][0])}); impute or drop them before "
                     f"training or predicting (NaN and inf are not accepted)")


def check_finite(X: np.ndarray, names: Any = None, what: str = "X") -> None:
    """Raise ValueError counting the NaN/infinite values of X and naming their first columns.

    X may be a SciPy sparse matrix (its stored values are checked).
    Example: ``check_finite(np.array([[1.0, np.nan]]))  # X has 1 NaN value ... column 1``
    """
    if _is_sparse(X):
        return _check_sparse_finite(X, names, what)
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


# Float32 training overflows past this magnitude: squares of such values summed over a batch
# of 1000 rows pass float32's largest number, 3.4e38 (sqrt(3.4e38 / 1000) = 5.8e17).
MAX_TRAINING_MAGNITUDE = 5.8e17
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_magnitude(X: Any, names: Any = None, what: str = "X", float32: bool = True) -> None:
    """Refuse complex values, and (with ``float32``) values too large for float32 training,
    naming the column and the row.

    Example: ``check_magnitude(np.array([[1.0, 1e30]]))  # ValueError: ... column 1, row 0 ...``
    """
    if _is_sparse(X):
        return _check_sparse_magnitude(X, names, what, float32)
    a = X.to_numpy() if hasattr(X, "columns") and all(k in "biufc" for k in X.dtypes.map(
        lambda d: getattr(d, "kind", "O"))) else X
    if isinstance(a, (list, tuple)):
        try:
            a = np.asarray(a)
        except (ValueError, TypeError):
            return  # ragged or mixed: validate_data explains
    if not isinstance(a, np.ndarray) or a.ndim != 2 or a.dtype.kind not in "iufc":
        return
    if a.dtype.kind == "c":
        bad = np.argwhere(a.imag != 0)
        where = (f" (column {_column_label(names, bad[0][1])!r}, row {bad[0][0]})" if len(bad) else "")
        raise ValueError(f"Complex data not supported: {what} holds complex numbers{where}; give "
                         f"the real and imaginary parts (or magnitude and angle) as two columns")
    if not float32 or a.dtype.kind in "iu" and a.dtype.itemsize < 8 or a.size == 0:
        return  # float64 training has room; 32-bit integers cannot exceed the limit
    big = (a > MAX_TRAINING_MAGNITUDE) | (a < -MAX_TRAINING_MAGNITUDE)
    if a.dtype.kind == "f":
        big &= np.isfinite(a)  # NaN and inf are check_finite's to report
    if not big.any():
        return
    row, col = (int(i) for i in np.argwhere(big)[0])
    _too_large(float(a[row, col]), int(big.sum()), row, col, names, what)


def _check_sparse_magnitude(X: Any, names: Any, what: str, float32: bool) -> None:
    """check_magnitude on the stored values of a SciPy sparse matrix (never densified)."""
    kind = X.dtype.kind
    if kind not in "iufc" or X.nnz == 0 or (not float32 and kind != "c"):
        return
    rows, cols, values = _sparse_entries(X)
    if kind == "c":
        bad = np.flatnonzero(values.imag != 0)
        where = f" (column {_column_label(names, cols[bad[0]])!r}, row {rows[bad[0]]})" if len(bad) else ""
        raise ValueError(f"Complex data not supported: {what} holds complex numbers{where}; give "
                         f"the real and imaginary parts (or magnitude and angle) as two columns")
    if kind in "iu" and X.dtype.itemsize < 8:
        return
    big = (values > MAX_TRAINING_MAGNITUDE) | (values < -MAX_TRAINING_MAGNITUDE)
    if kind == "f":
        big &= np.isfinite(values)
    if big.any():
        i = int(np.flatnonzero(big)[0])
        _too_large(float(values[i]), int(big.sum()), int(rows[i]), int(cols[i]), names, what)


def _too_large(value: float, count: int, row: int, col: int, names: Any, what: str) -> None:
    if abs(value) > _FLOAT32_MAX:
        why = f"too large for float32 (whose largest value is {_FLOAT32_MAX:.3g})"
    else:
        why = (f"too large to train on in float32 (above {MAX_TRAINING_MAGNITUDE:.2g}, "
               f"squares over a batch overflow float32's {_FLOAT32_MAX:.3g})")
    raise ValueError(f"{what} column {_column_label(names, col)!r}, row {row} holds {value:.3g}: "
                     f"{why}; {count} value(s) like it. Scale or standardise the column "
                     f"(e.g. sklearn.preprocessing.StandardScaler)")


def check_column_names(X: Any) -> None:
    """A DataFrame whose columns repeat a name: say which names (scikit-learn's error does not).

    Example: ``check_column_names(pd.DataFrame([[1, 2]], columns=["a", "a"]))  # ValueError``
    """
    columns = getattr(X, "columns", None)
    if columns is None or not hasattr(columns, "duplicated"):
        return
    dup = columns[columns.duplicated()].unique()
    if len(dup):
        shown = [str(c) for c in dup[:5]]
        raise ValueError(f"X has duplicate column names {shown}; every column needs its own "
                         f"name (rename them, e.g. df.columns = [...])")


def check_labels(y: Any, what: str = "y") -> None:
    """Refuse missing labels (None) in y, naming the first row.

    Example: ``check_labels([0, None, 1])  # ValueError: y has None (a missing label) in row 1``
    """
    if y is None:
        return
    a = y.to_numpy() if hasattr(y, "to_numpy") else y
    if isinstance(a, np.ndarray) and a.dtype.kind != "O":
        return
    try:
        flat = np.asarray(a, dtype=object).ravel()
    except (ValueError, TypeError):
        return
    missing = [i for i, v in enumerate(flat) if v is None]
    if missing:
        raise ValueError(f"{what} has {len(missing)} missing label(s) (None), first in row "
                         f"{missing[0]}; drop those rows or fill in their labels")


def validate(est: Any, X: Any, *args: Any, **kwargs: Any) -> Any:
    """``sklearn.utils.validation.validate_data`` with clear NaN/inf and non-numeric errors.

    Example: ``X = validate(self, X, reset=False)`` in predict
    """
    from sklearn.utils.validation import validate_data  # noqa: PLC0415

    check_column_names(X)
    check_numeric_columns(X)
    names = [str(c) for c in X.columns] if hasattr(X, "columns") else None
    dtype = kwargs.get("dtype")
    float32 = dtype is not None and not isinstance(dtype, list) and np.dtype(dtype) == np.float32
    check_magnitude(X, names, float32=float32 or getattr(X, "dtype", None) == np.float32)
    if args:
        check_labels(args[0])
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
