"""TabularClassifier and TabularRegressor: RealMLP-TD and a TabM-style ensemble on any table.

The recipe is RealMLP-TD (Holzmüller, Grinsztajn & Steinwart, "Better by Default", NeurIPS
2024), rebuilt on neuralab's engine; ``n_ensemble`` adds TabM's parameter-efficient ensemble
(Gorishniy et al., ICLR 2025) and ``n_bags`` bagging over cross-validation folds. A table
goes in as it is: a pandas DataFrame with numbers, categories, strings, booleans, dates and
missing values, or a NumPy array.

Presets (fit times measured on 2 CPU cores for a 10,000 x 20 table; see docs/tabular.md):
    "fast": 32 epochs, one network.
    "default": RealMLP-TD's 256 epochs, batch 256, 3 x 256 units; one network, bagged over
        3 folds on up to 4,000 rows (regression: 3 to 8 folds, more on smaller tables), about
        the time one network takes on 10,000 rows; there too, piecewise-linear bins of the
        number columns where the first fold validates them better (``ple_bins="auto"``).
    "best": the default network as a k=4 TabM-style ensemble, bagged over 3 folds.

Example:
    >>> import pandas as pd
    >>> from neuralab.estimators import TabularClassifier
    >>> df = pd.DataFrame({"x": np.arange(40.0), "c": ["a", "b"] * 20, "y": [0] * 20 + [1] * 20})
    >>> clf = TabularClassifier(preset="fast", n_epochs=2, random_state=0)
    >>> clf = clf.fit(df.drop(columns="y"), df["y"])
    >>> clf.predict_proba(df.drop(columns="y").head(2)).shape
    (2, 2)
"""
from __future__ import annotations

import math
import warnings
from typing import Any, Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from ..callbacks import Callback

__all__ = ["TabularClassifier", "TabularRegressor", "TableEncoder"]

PRESETS = {
    "fast": {"n_epochs": 32, "n_ensemble": 1, "n_bags": 1, "ple_bins": 0},
    "default": {"n_epochs": 256, "n_ensemble": 1, "n_bags": "auto", "ple_bins": "auto"},
    "best": {"n_epochs": 256, "n_ensemble": 4, "n_bags": 3, "ple_bins": "auto"},
}
# "auto": more networks where they cost no more than one network on the 10,000-row table
# (8,000 training rows). K bags train K networks on (K-1)/K of n rows each: (K-1) n rows.
# Chosen on validation folds of the training parts, 5 seeds (benchmarks/tabular_ablation.py,
# docs/tabular.md). Classification: 3 bags beat one network on 7 of 9 tables (+0.0069);
# 5 or 8 bags were no better than 3 on the 5 small ones (-0.0013 / -0.0028), so 3 bags up
# to 4,000 rows. Regression: more bags helped on all 3 tables (3 -> 5: +0.0058, 3 -> 8:
# +0.0077), so as many as fit the budget, 3 to 8. k = 4 members: on 4 of 8 small tables
# (+0.0033, worse on 3, at twice the bags' time), so an option (n_ensemble="auto") only.
AUTO_MEMBERS, AUTO_MAX_ROWS = 4, 2_500
AUTO_BAGS, AUTO_BAGS_MAX_ROWS = 3, 4_000
AUTO_BAG_ROWS, AUTO_MAX_BAGS = 8_000, 8
# ple_bins="auto": 16 piecewise-linear bins against none, on the first fold, up to 4,000 rows
# (12 tables x 5 validation seeds, one network: +0.0028, better on 4 by 0.008-0.020, worse
# on 5 by at most 0.006). The trial costs one network more: beyond 4,000 rows that would
# break the 60 s budget of the 10,000-row table, so none there.
AUTO_PLE_BINS, AUTO_PLE_MAX_ROWS = 16, 4_000


def auto_members(n_rows: int) -> int:
    """The ensemble size ``n_ensemble="auto"`` picks for a table of ``n_rows`` training rows.

    Example: ``auto_members(1_000), auto_members(2_501)  # (4, 1)``
    """
    return AUTO_MEMBERS if int(n_rows) <= AUTO_MAX_ROWS else 1


def auto_bags(n_rows: int, members: int, task: str = "classification") -> int:
    """The number of bags ``n_bags="auto"`` picks for ``n_rows`` rows and networks of
    ``members`` members: for a single network, 3 on up to 4,000 rows (classification) or
    ``1 + 8,000 // n_rows`` capped at 8 while that is at least 3 (regression); else 1.

    Example: ``auto_bags(3_000, 1), auto_bags(800, 1, "regression"), auto_bags(5_000, 1)  # (3, 8, 1)``
    """
    n = int(n_rows)
    if members != 1 or n > AUTO_BAGS_MAX_ROWS:
        return 1
    if task == "regression":
        # beyond 3 only while every fold keeps 20 rows to pick its epoch on
        return min(AUTO_MAX_BAGS, 1 + AUTO_BAG_ROWS // max(n, 1), max(AUTO_BAGS, n // 20))
    return AUTO_BAGS


def auto_ple_bins(n_rows: int) -> int:
    """The bins ``ple_bins="auto"`` tries against none for ``n_rows`` training rows (0: none
    tried, no piecewise-linear encoding).

    Example: ``auto_ple_bins(3_000), auto_ple_bins(8_000)  # (16, 0)``
    """
    return AUTO_PLE_BINS if int(n_rows) <= AUTO_PLE_MAX_ROWS else 0


def _categorical_names(given: Any, X: Any) -> list[str]:
    """The column names ``categorical_features`` names in table ``X`` (names, positions or a
    boolean mask, as sklearn's HistGradientBoosting takes them; None / "from_dtype": none)."""
    if given is None or (isinstance(given, str) and given == "from_dtype"):
        return []
    columns = list(_frame(X).columns) if not hasattr(X, "columns") else [str(c) for c in X.columns]
    if isinstance(given, str):  # one name, not a sequence of letters
        given = [given]
    items = list(np.asarray(given, dtype=object).ravel()) if not isinstance(given, (list, tuple)) \
        else list(given)
    if items and all(isinstance(v, (bool, np.bool_)) for v in items):
        if len(items) != len(columns):
            raise ValueError(f"categorical_features as a boolean mask needs one value per column "
                             f"({len(columns)}), got {len(items)}")
        return [c for c, flag in zip(columns, items) if flag]
    names = []
    for v in items:
        if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
            if not 0 <= int(v) < len(columns):
                raise ValueError(f"categorical_features: position {int(v)} is not a column of X "
                                 f"(it has {len(columns)})")
            names.append(columns[int(v)])
        elif isinstance(v, str):
            if v not in columns:
                raise ValueError(f"categorical_features: column {v!r} is not in X (columns: "
                                 f"{columns[:8]}{' ...' if len(columns) > 8 else ''})")
            names.append(v)
        else:
            raise ValueError(f"categorical_features takes column names, positions or a boolean "
                             f"mask, got {v!r}")
    return names


def _resolve(name: str, value: Any, auto: Any) -> int:
    """A count setting as an int: "auto" becomes ``auto()``; anything else must be >= 1."""
    if isinstance(value, str) and value == "auto":
        return int(auto())
    if isinstance(value, str) or isinstance(value, bool) or int(value) < 1:
        raise ValueError(f"{name} must be a positive integer or 'auto', got {value!r}")
    return int(value)
_DATE_PARTS = ("year", "month", "day", "weekday")


# ============================================================================ the table encoder
def _frame(X: Any):
    """X as a DataFrame with string column names (a NumPy array gets x0, x1, ...)."""
    import pandas as pd  # noqa: PLC0415
    if isinstance(X, pd.DataFrame):
        return X.set_axis([str(c) for c in X.columns], axis=1)
    arr = np.asarray(X)
    if arr.ndim == 1:
        raise ValueError(f"X must be 2-D (rows x columns), got a 1-D array of {len(arr)} values; "
                         "use X.reshape(-1, 1) for a single column")
    if arr.ndim != 2:
        raise ValueError(f"X must be 2-D (rows x columns), got shape {arr.shape}")
    return pd.DataFrame(arr, columns=[f"x{j}" for j in range(arr.shape[1])])


def _keys(s) -> np.ndarray:
    """Category keys as strings (missing -> None), so 1, 1.0 and "1" are the same category."""
    from ..preprocessing import _category_key  # noqa: PLC0415
    values, missing = s.to_numpy(), s.isna().to_numpy()
    return np.array([None if m else _category_key(v) for v, m in zip(values, missing)], dtype=object)


class TableEncoder:
    """Looks at each column once and records, as JSON-able data, how to encode it.

    Numbers (and date parts: year, month, day, weekday) stay numbers, imputed with the median
    plus a 0/1 "missing" flag; categories, strings and booleans with at most ``one_hot_max``
    distinct values become one-hot columns (2 categories: one 0/1 column), more become integer
    codes for a learned embedding (code 0: missing or not seen in training).
    ``transform`` returns float32 columns in the order [numbers | 0/1 columns | codes].
    With ``ple_bins`` a number column of more than two values also gets its piecewise-linear
    encoding (Gorishniy, Rubachev & Babenko, NeurIPS 2022): one column per training-quantile
    bin, 0 below the bin, 1 above it, linear inside (the first bin open below, the last open
    above), a threshold a network can use as a tree does. The bins join the 0/1 columns (no
    periodic embedding of their own); the number stays a number.

    Args:
        one_hot_max: most categories one-hot encoded (8, as RealMLP's "<= 8 plus missing").
        max_distinct_fraction: a text column with more distinct values than this fraction of
            the rows (and more than 100) is refused: it is free text or an ID, not a category.
        ple_bins: quantile bins of the piecewise-linear encoding (0: numbers stay one column).
        categorical: columns encoded as categories whatever their dtype (integer codes: a
            store, a school id); other columns of numbers stay numbers.

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"x": [1.0, 2.0, None], "c": ["a", "b", "a"]})
        >>> enc = TableEncoder().fit(df)
        >>> enc.transform(df).shape[0]
        3
    """

    def __init__(self, one_hot_max: int = 8, max_distinct_fraction: float = 0.5,
                 ple_bins: int = 0, categorical: Sequence[str] = ()) -> None:
        self.one_hot_max, self.max_distinct_fraction = int(one_hot_max), float(max_distinct_fraction)
        self.ple_bins = int(ple_bins)
        self.categorical = [str(c) for c in categorical]
        self.spec: dict | None = None

    def fit(self, X: Any) -> "TableEncoder":
        """Decide every column's encoding from the training table ``X``; returns self.

        Example: ``enc = TableEncoder().fit(df)``
        """
        import pandas as pd  # noqa: PLC0415
        from ..preprocessing import _looks_like_dates  # noqa: PLC0415
        frame = _frame(X)
        if frame.shape[1] == 0:
            raise ValueError("X has no columns; a table needs at least one feature column")
        unknown = [c for c in self.categorical if c not in frame.columns]
        if unknown:
            raise ValueError(f"categorical column(s) {unknown[:8]} are not in X (columns: "
                             f"{list(frame.columns)[:8]}{' ...' if frame.shape[1] > 8 else ''})")
        cols = []
        for name in frame.columns:
            s = frame[name]
            n_present = int(s.notna().sum())
            if n_present == 0:
                raise ValueError(f"column {name!r} has no values (every value is missing); drop it")
            if name in self.categorical:
                cols.append(self._categorical(name, s, declared=True))
            elif pd.api.types.is_bool_dtype(s):
                cols.append(self._categorical(name, s))
            elif pd.api.types.is_numeric_dtype(s):
                values = s.to_numpy(dtype=np.float64, na_value=np.nan)
                _check_finite(name, values)
                col = {"name": name, "kind": "numeric", "median": float(np.nanmedian(values)),
                       "missing": bool(np.isnan(values).any())}
                edges = _ple_edges(values, self.ple_bins)
                if edges is not None:
                    col["edges"] = edges
                cols.append(col)
            elif _looks_like_dates(s) is not None:
                fmt = _looks_like_dates(s)
                parts = _dates(s, fmt)
                for part in _DATE_PARTS:
                    v = parts[part]
                    cols.append({"name": name, "kind": "date", "part": part, "format": fmt,
                                 "median": float(np.nanmedian(v)) if np.isfinite(v).any() else 0.0,
                                 "missing": bool(np.isnan(v).any())})
            else:
                cols.append(self._categorical(name, s))
        self.spec = {"columns": cols, "input_columns": list(frame.columns)}
        return self

    def _categorical(self, name: str, s, declared: bool = False) -> dict:
        keys = _keys(s)
        present = keys[keys != None]  # noqa: E711  (an object array of strings and None)
        uniq, counts = np.unique(present.astype(str), return_counts=True)
        if len(uniq) > max(100, self.max_distinct_fraction * len(s)):
            if declared:
                raise ValueError(f"column {name!r} is declared categorical but has {len(uniq)} "
                                 f"distinct values in {len(s)} rows: too many for a category "
                                 f"(at most max(100, {self.max_distinct_fraction:g} x rows)); "
                                 f"leave it a number or drop it")
            raise ValueError(f"column {name!r} looks like free text or an ID ({len(uniq)} distinct "
                             f"values in {len(s)} rows), not a category; drop it or encode it "
                             f"as numbers first")
        # most frequent first, ties by name, so the encoding does not depend on row order
        order = sorted(zip(uniq.tolist(), counts.tolist()), key=lambda kv: (-kv[1], kv[0]))
        cats = [k for k, _ in order]
        kind = "one_hot" if len(cats) <= self.one_hot_max else "embedding"
        return {"name": name, "kind": kind, "categories": cats}

    # ------------------------------------------------------------------ applying
    def _fitted(self) -> dict:
        if self.spec is None:
            raise ValueError("this TableEncoder is not fitted yet; call fit() first")
        return self.spec

    def layout(self) -> tuple[int, int, list[int]]:
        """(numeric columns, 0/1 columns, cardinalities of the embedded columns) of ``transform``.

        Example: ``n_num, n_bin, cards = enc.layout()``
        """
        n_num = n_bin = 0
        cards = []
        for c in self._fitted()["columns"]:
            if c["kind"] in ("numeric", "date"):
                n_num += 1
                n_bin += int(c["missing"]) + (len(c["edges"]) - 1 if c.get("edges") else 0)
            elif c["kind"] == "one_hot":
                n_bin += 1 if len(c["categories"]) <= 2 else len(c["categories"])
            else:
                cards.append(len(c["categories"]) + 1)
        return n_num, n_bin, cards

    def feature_names(self) -> list[str]:
        """Names of the encoded columns, in ``transform``'s order.

        Example: ``enc.feature_names()  # ['age', 'age=<missing>', 'city=Oslo', 'zip#code']``
        """
        return [name for name, _ in self._outputs()]

    def source_columns(self) -> list[str]:
        """The table column behind each encoded column, in ``transform``'s order.

        Example: ``enc.source_columns()  # ['age', 'age', 'city', 'zip']``
        """
        return [source for _, source in self._outputs()]

    def _outputs(self) -> list[tuple[str, str]]:
        """(name, source column) of each encoded column: [numbers | 0/1 columns | codes]."""
        num, binary, codes = [], [], []
        for c in self._fitted()["columns"]:
            name = c["name"]
            label = name if c["kind"] != "date" else f"{name}.{c['part']}"
            if c["kind"] in ("numeric", "date"):
                num.append((label, name))
                if c["missing"]:
                    binary.append((f"{label}=<missing>", name))
                if c.get("edges"):
                    binary += [(f"{label}:bin{t}", name) for t in range(len(c["edges"]) - 1)]
            elif c["kind"] == "one_hot":
                cats = c["categories"][-1:] if len(c["categories"]) <= 2 else c["categories"]
                binary += [(f"{label}={k}", name) for k in cats]
            else:
                codes.append((f"{label}#code", name))
        return num + binary + codes

    def transform(self, X: Any) -> np.ndarray:
        """The float32 matrix [numbers | 0/1 columns | codes] for table ``X``.

        Categories not seen in training get code 0 (embedded) or all-zero one-hot columns.
        Example: ``enc.transform(df_new)``
        """
        spec = self._fitted()
        frame = _frame(X)
        missing_cols = [c for c in spec["input_columns"] if c not in frame.columns]
        if missing_cols:
            raise ValueError(f"column(s) {missing_cols[:8]} used in training are missing from the data")
        n = len(frame)
        num, binary, codes = [], [], []
        dates: dict[str, dict] = {}
        for c in spec["columns"]:
            s = frame[c["name"]]
            if c["kind"] in ("numeric", "date"):
                if c["kind"] == "date":
                    if c["name"] not in dates:
                        dates[c["name"]] = _dates(s, c["format"])
                    values = dates[c["name"]][c["part"]]
                else:
                    values = _numbers(c["name"], s)
                isnan = np.isnan(values)
                values = np.where(isnan, c["median"], values)
                num.append(values)
                if c["missing"]:
                    binary.append(isnan.astype(np.float64))
                if c.get("edges"):
                    binary.extend(ple(values, c["edges"]).T)
                continue
            keys = _keys(s)
            index = {k: i for i, k in enumerate(c["categories"])}
            pos = np.array([index.get(k, -1) if k is not None else -1 for k in keys], dtype=np.int64)
            unseen = (pos < 0) & np.array([k is not None for k in keys], dtype=bool)
            if unseen.any():  # said once per column, never silently: they count as missing
                first = keys[np.flatnonzero(unseen)[0]]
                warnings.warn(f"column {c['name']!r}: {int(unseen.sum())} value(s) not seen in "
                              f"training (first: {first!r}), encoded as missing", UserWarning,
                              stacklevel=3)
            if c["kind"] == "one_hot":
                cats = c["categories"]
                if len(cats) <= 2:  # one column: the second (rarer) category
                    binary.append((pos == len(cats) - 1).astype(np.float64) if len(cats) == 2
                                  else (pos == 0).astype(np.float64))
                else:
                    oh = np.zeros((n, len(cats)))
                    ok = pos >= 0
                    oh[np.flatnonzero(ok), pos[ok]] = 1.0
                    binary.extend(oh.T)
            else:
                codes.append((pos + 1).astype(np.float64))  # 0: missing or unseen
        blocks = [np.stack(b, axis=1) if b else np.zeros((n, 0)) for b in (num, binary, codes)]
        return np.ascontiguousarray(np.hstack(blocks), dtype=np.float32)


def free_text_columns(X: Any, max_distinct_fraction: float = 0.5,
                      categorical: Sequence[str] = ()) -> dict[str, int]:
    """The columns ``TableEncoder(max_distinct_fraction=...).fit(X)`` would refuse as free
    text or IDs (text with more distinct values than that fraction of the rows, and over 100),
    each with its number of distinct values; ``categorical``: declared columns, not counted.

    Example: ``free_text_columns(df)  # {'comment': 4211}``
    """
    import pandas as pd  # noqa: PLC0415
    from ..preprocessing import _looks_like_dates  # noqa: PLC0415
    frame, out = _frame(X), {}
    for name in frame.columns:
        s = frame[name]
        if name in categorical or pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s) \
                or s.notna().sum() == 0 or _looks_like_dates(s) is not None:
            continue
        keys = _keys(s)
        distinct = len(set(keys[keys != None].tolist()))  # noqa: E711
        if distinct > max(100, max_distinct_fraction * len(s)):
            out[name] = distinct
    return out


def _without_bins(spec: dict) -> dict:
    """``spec`` with no piecewise-linear bins (every number one column)."""
    return {**spec, "columns": [{k: v for k, v in c.items() if k != "edges"} for c in spec["columns"]]}


def _ple_edges(values: np.ndarray, bins: int) -> list[float] | None:
    """Bin edges at the training quantiles (repeated ones merged); None when the column has
    two values or fewer, or fewer than 2 distinct bins, or ``bins`` is 0."""
    present = values[~np.isnan(values)]
    if bins <= 0 or len(np.unique(present)) <= 2:
        return None
    edges = np.unique(np.quantile(present, np.linspace(0.0, 1.0, int(bins) + 1)))
    return [float(e) for e in edges] if len(edges) >= 3 else None


def ple(x: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Piecewise-linear encoding of ``x`` (N,) on bin ``edges``: (N, bins), each bin's column
    (x - left) / width clipped to [0, 1], the first not clipped below, the last not above.

    Example: ``ple(np.array([0.0, 1.5, 9.0]), [0, 1, 2, 3])  # rows [0,0,0], [1,.5,0], [1,1,7]``
    """
    left, width, lower, upper = _ple_terms(edges)
    z = (np.asarray(x, dtype=np.float64)[:, None] - left) / width
    return np.minimum(np.maximum(z, lower), upper)


def _ple_terms(edges: Sequence[float]) -> tuple:
    """Each bin's left edge, width and clipping bounds, (bins,) each (also the ONNX graph's)."""
    e = np.asarray(edges, dtype=np.float64)
    lower, upper = np.zeros(len(e) - 1), np.ones(len(e) - 1)
    lower[0], upper[-1] = -np.inf, np.inf  # below the first edge, above the last: extrapolate
    return e[:-1], np.diff(e), lower, upper


def _check_finite(name: str, values: np.ndarray) -> None:
    inf = np.isinf(values)
    if inf.any():
        raise ValueError(f"column {name!r} has {int(inf.sum())} infinite value(s) (first in row "
                         f"{int(inf.argmax())}); replace them, or leave the cells empty (missing)")


def _numbers(name: str, s) -> np.ndarray:
    import pandas as pd  # noqa: PLC0415
    converted = pd.to_numeric(s, errors="coerce")
    bad = converted.isna() & s.notna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(f"column {name!r} should hold numbers but row {i} has {s.iloc[i]!r}")
    values = converted.to_numpy(dtype=np.float64, na_value=np.nan)
    _check_finite(name, values)
    return values


def _dates(s, fmt: str) -> dict[str, np.ndarray]:
    from ..preprocessing import _date_parts, _parse_dates  # noqa: PLC0415
    dates = s if fmt == "datetime" else _parse_dates(s.astype("string"), fmt)
    return _date_parts(dates)


# ============================================================================ training pieces
def _flat_cos(t: float) -> float:
    """1 for the first half of training, then half a cosine down to 0 (RealMLP's "flat_cos")."""
    return 1.0 if t <= 0.5 else 0.5 * (1.0 + math.cos(math.pi * (2.0 * t - 1.0)))


_SCHEDULES = {"constant": lambda t: 1.0, "flat_cos": _flat_cos,
              "cos": lambda t: 0.5 * (1.0 + math.cos(math.pi * t))}


class RecipeSchedule(Callback):
    """Per-step schedules of RealMLP: learning rate (an ``optim`` scheduler), weight decay, dropout.

    Args:
        total_steps: steps of the whole training (epochs x batches per epoch).
        lr_schedule: "coslog4" (``optim.CosLogLR``), "cos" or "constant".
        wd_schedule, dropout_schedule: "flat_cos", "cos" or "constant".
        dropout: the dropout probability the schedule scales.

    Example: ``fit(net, X, y, callbacks=[RecipeSchedule(256 * 31)])``
    """

    def __init__(self, total_steps: int, lr_schedule: str = "coslog4", wd_schedule: str = "flat_cos",
                 dropout: float = 0.15, dropout_schedule: str = "flat_cos") -> None:
        self.total_steps, self.lr_schedule = max(int(total_steps), 1), lr_schedule
        self.wd_fn, self.p_fn = _SCHEDULES[wd_schedule], _SCHEDULES[dropout_schedule]
        self.dropout = dropout

    def on_train_begin(self, logs: dict | None = None) -> None:
        from .. import optim  # noqa: PLC0415
        opt = self.optimizer
        self._wd = [g["weight_decay"] for g in opt.param_groups]
        if self.lr_schedule.startswith("coslog"):
            self.scheduler = optim.CosLogLR(opt, self.total_steps, cycles=int(self.lr_schedule[6:] or 4))
        elif self.lr_schedule == "cos":
            self.scheduler = optim.CosineAnnealingLR(opt, self.total_steps)
        else:
            self.scheduler = None
        self.t = 0
        self._apply()

    def _apply(self) -> None:
        frac = min(self.t / self.total_steps, 1.0)
        for g, wd in zip(self.optimizer.param_groups, self._wd):
            g["weight_decay"] = wd * self.wd_fn(frac)
        if hasattr(self.model, "set_dropout"):
            self.model.set_dropout(self.dropout * self.p_fn(frac))

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.t += 1
        if self.scheduler is not None:
            self.scheduler.step()
        self._apply()


class BestEpoch(Callback):
    """Keep the weights of the epoch with the lowest ``monitor`` (ties: the later epoch, as RealMLP).

    Example: ``fit(..., validation_data=(Xv, yv), callbacks=[BestEpoch("val_error")])``
    """

    def __init__(self, monitor: str = "val_loss") -> None:
        self.monitor = monitor

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.best, self.best_epoch, self._state = math.inf, None, None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        value = float((logs or {}).get(self.monitor, math.nan))
        if value <= self.best:
            self.best, self.best_epoch = value, epoch
            self._state = {k: v.copy() for k, v in self.model.state_dict().items()}

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._state is not None:
            self.model.load_state_dict(self._state)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


# ============================================================================ the estimators
_PARAMS_DOC = """
    Args:
        preset: "fast", "default" or "best" (see the module docstring); the explicit
            arguments below override it when not None.
        n_epochs: training epochs (RealMLP-TD: 256); the best validation epoch is kept.
        n_ensemble: k members of a TabM-style ensemble (``nn.EnsembleLinear``), one forward;
            "auto": 4 on up to 2,500 rows, else 1 (the default preset: 1).
        n_bags: bag over this many cross-validation folds of the training data (each fold
            validates its own model); 1: one split with ``validation_fraction``; "auto" (the
            default preset): when ``n_ensemble`` is 1, on up to 4,000 rows 3 (classification)
            or 3 to 8 (regression, ``1 + 8,000 // rows``), else 1.
        batch_size: rows per step (256).
        hidden: hidden layer widths ((256, 256, 256)).
        activation: "selu" for classification, "mish" for regression (None: by task).
        lr: base learning rate (None: 0.04 classification, 0.2 regression, as RealMLP-TD).
        betas: Adam's (beta1, beta2) ((0.9, 0.95)).
        lr_schedule: "coslog4" (RealMLP), "cos" or "constant".
        weight_decay: AdamW decay (0.02), scheduled by ``wd_schedule`` ("flat_cos").
        dropout: dropout probability (0.15), scheduled by ``dropout_schedule`` ("flat_cos").
        robust_scale: median/IQR scaling of the inputs; ``smooth_clip``: x / sqrt(1 + (x/3)^2).
        periodic: PBLD periodic embeddings of numeric columns (16 frequencies, 4 values each).
        front_scale: the learnable per-feature scale layer.
        ntk: NTK parametrisation with RealMLP's data-dependent initialisation.
        parametric_act: learnable mix of the activation and the identity per unit.
        one_hot_max: categories one-hot encoded up to this many, embedded beyond.
        categorical_features: columns encoded as categories whatever their dtype, as in
            sklearn's HistGradientBoosting: names, positions or a boolean mask (None or
            "from_dtype": strings, categories and booleans only, numbers stay numbers). For
            integer codes: a store or school id is a category, not a quantity.
        ple_bins: piecewise-linear encoding of number columns in this many quantile bins
            (``TableEncoder``; 0: off); "auto" (the default preset): on up to 4,000 rows one
            network with 16 bins and one without on the first fold, the better on validation
            is used for every fold (about one network's time more); beyond, none.
        embedding_dim: size of each categorical embedding (8).
        validation_fraction: share of the training rows held out to pick the best epoch.
        random_state: seed (int) or None.
        verbose: 0 silent, 2 one line per epoch.
"""


class _TabularBase(BaseEstimator):
    _task = "classification"

    def __init__(self, preset: str = "default", *, n_epochs: int | None = None,
                 n_ensemble: int | str | None = None, n_bags: int | str | None = None,
                 batch_size: int = 256,
                 hidden: Sequence[int] = (256, 256, 256), activation: str | None = None,
                 lr: float | None = None, betas: tuple[float, float] = (0.9, 0.95),
                 lr_schedule: str = "coslog4", weight_decay: float = 0.02,
                 wd_schedule: str = "flat_cos", dropout: float = 0.15,
                 dropout_schedule: str = "flat_cos", label_smoothing: float = 0.1,
                 val_metric: str | None = None, ple_bins: int | str | None = None,
                 robust_scale: bool = True, smooth_clip: bool = True, periodic: bool = True,
                 front_scale: bool = True, ntk: bool = True, parametric_act: bool = True,
                 one_hot_max: int = 8, embedding_dim: int = 8, validation_fraction: float = 0.2,
                 categorical_features: Sequence[str | int | bool] | str | None = None,
                 random_state: int | None = None, verbose: int = 0) -> None:
        self.preset = preset
        self.n_epochs = n_epochs
        self.n_ensemble = n_ensemble
        self.n_bags = n_bags
        self.batch_size = batch_size
        self.hidden = hidden
        self.activation = activation
        self.lr = lr
        self.betas = betas
        self.lr_schedule = lr_schedule
        self.weight_decay = weight_decay
        self.wd_schedule = wd_schedule
        self.dropout = dropout
        self.dropout_schedule = dropout_schedule
        self.label_smoothing = label_smoothing
        self.val_metric = val_metric
        self.ple_bins = ple_bins
        self.robust_scale = robust_scale
        self.smooth_clip = smooth_clip
        self.periodic = periodic
        self.front_scale = front_scale
        self.ntk = ntk
        self.parametric_act = parametric_act
        self.one_hot_max = one_hot_max
        self.embedding_dim = embedding_dim
        self.validation_fraction = validation_fraction
        self.categorical_features = categorical_features
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ settings
    def _setting(self, name: str) -> Any:
        value = getattr(self, name)
        if value is not None:
            return value
        if self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {self.preset!r}")
        return PRESETS[self.preset][name]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.non_deterministic = self.random_state is None
        return tags

    # ------------------------------------------------------------------ input
    def _table(self, X: Any, reset: bool):
        """Check X as sklearn does (feature count and names), then return it as a DataFrame."""
        from sklearn.utils.validation import validate_data  # noqa: PLC0415
        if hasattr(X, "columns") and hasattr(X, "dtypes"):
            names = getattr(self, "feature_names_in_", None)
            if not reset and names is not None:
                # columns are found by name: extra ones (the target, an ID) are ignored
                cols = [str(c) for c in X.columns]
                lost = [str(n) for n in names if str(n) not in cols]
                if lost:
                    raise ValueError(f"column(s) {lost[:8]} used in training are missing from the data")
                X = X.set_axis(cols, axis=1)[[str(n) for n in names]]
            validate_data(self, X, reset=reset, skip_check_array=True)
            if len(X) == 0:
                raise ValueError("X is empty (0 rows); a table needs at least one row")
            return X
        X = validate_data(self, X, reset=reset, dtype=None, ensure_all_finite="allow-nan")
        if X.dtype.kind == "c":
            raise ValueError("X holds complex numbers; a table needs real numbers or categories")
        return X

    def _encode_y(self, y: Any) -> np.ndarray:
        raise NotImplementedError

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any, *, validation_data: tuple | None = None,
            callbacks: Sequence[Callback] | None = None) -> "_TabularBase":
        """Encode the table, train the network(s) and keep the best validation epoch; returns self.

        ``validation_data=(X_val, y_val)`` picks the best epoch on those rows instead of
        holding out ``validation_fraction`` of ``X`` (one network; with ``n_bags > 1`` the
        folds of ``X`` pick it and ``validation_data`` is not used). ``callbacks`` ride along
        with every network's ``nl.fit``; one that stops training (Ctrl-C) also ends the bagging:
        the networks trained so far are kept.
        Example: ``est.fit(df.drop(columns="y"), df["y"])``
        """
        from sklearn.utils.validation import column_or_1d  # noqa: PLC0415
        table = self._table(X, reset=True)
        y = column_or_1d(np.asarray(y), warn=True)
        if len(y) != len(table):
            raise ValueError(f"X has {len(table)} rows but y has {len(y)}; they must match row for row")
        from ._checks import check_trainable  # noqa: PLC0415
        check_trainable(len(table))
        target = self._encode_y(y)
        bins = self._setting("ple_bins")
        auto_ple = isinstance(bins, str) and bins == "auto"
        if not auto_ple and (isinstance(bins, (str, bool)) or int(bins) < 0):
            raise ValueError(f"ple_bins must be a non-negative integer or 'auto', got {bins!r}")
        encoder = TableEncoder(one_hot_max=self.one_hot_max,
                               ple_bins=auto_ple_bins(len(table)) if auto_ple else int(bins),
                               categorical=_categorical_names(self.categorical_features, table)
                               ).fit(table)
        specs = [encoder.spec]
        if auto_ple and any(c.get("edges") for c in encoder.spec["columns"]):
            specs = [_without_bins(encoder.spec), encoder.spec]  # RealMLP-TD's first: it wins ties
        rng = np.random.default_rng(self.random_state)
        epochs = int(self._setting("n_epochs"))
        n = len(table)
        self.n_ensemble_ = _resolve("n_ensemble", self._setting("n_ensemble"), lambda: auto_members(n))
        bags = _resolve("n_bags", self._setting("n_bags"), lambda: auto_bags(n, self.n_ensemble_, self._task))
        self.n_bags_ = bags  # networks trained (fewer if a callback stopped the bagging)
        if validation_data is not None and bags > 1:
            warnings.warn(f"validation_data is not used: each of the {bags} bags picks its best "
                          f"epoch on its own fold of X (n_bags=1 to use validation_data)",
                          UserWarning, stacklevel=2)
        external = validation_data is not None and bags == 1
        if external:
            X_val, y_val = validation_data
            table_val = self._table(X_val, reset=False)
            y_val = self._encode_validation(column_or_1d(np.asarray(y_val), warn=True), len(table_val))
            folds = [(np.arange(n), None)]
        else:
            folds = self._splits(target, bags, rng)

        def encoded(spec: dict) -> tuple:
            """The rows in ``spec``'s encoding, and each fold's (train rows, validation data)."""
            enc = TableEncoder(one_hot_max=self.one_hot_max)
            enc.spec = spec
            Z = enc.transform(table)
            if external:
                return Z, [(folds[0][0], (enc.transform(table_val), y_val))]
            return Z, [(tr, None if va is None else (Z[va], target[va])) for tr, va in folds]

        self.networks_, self.best_epochs_, self.history_ = [], [], []
        first = None  # the first fold's network, trained while choosing the encoding
        if len(specs) > 1 and (external or folds[0][1] is not None):
            # ple_bins="auto": one network each way on the first fold; the lower validation
            # score keeps its encoding for every fold (about one network's time more). Both
            # start from the same random state, so the result is the chosen encoding's own fit.
            monitor = "val_" + self._val_metric(self.n_ensemble_).__name__
            start, trials = rng.bit_generator.state, []
            for spec in specs:
                rng.bit_generator.state = start
                self.encoding_ = spec
                Z, splits = encoded(spec)
                trained = self._train_one(Z, target, *splits[0], rng, callbacks)
                trials.append((spec, trained, rng.bit_generator.state))
                if len(trained[2].get("loss", ())) < epochs:
                    break  # a callback stopped training: keep what was trained
            pick = min(range(len(trials)), key=lambda j: (min(trials[j][1][2].get(monitor, [np.inf])), j))
            specs, first, rng.bit_generator.state = [trials[pick][0]], trials[pick][1], trials[pick][2]
        self.encoding_ = specs[0]  # plain data (JSON in a model file)
        self.ple_bins_ = max((len(c["edges"]) - 1 for c in self.encoding_["columns"] if c.get("edges")),
                             default=0)
        self.feature_names_out_ = self._encoder().feature_names()
        Z, splits = encoded(self.encoding_)
        for i, (train_idx, val) in enumerate(splits):
            net, best, hist = first if (i == 0 and first is not None) else \
                self._train_one(Z, target, train_idx, val, rng, callbacks)
            self.networks_.append(net)
            self.best_epochs_.append(best)
            self.history_.append(hist)
            if len(hist.get("loss", ())) < epochs:  # a callback stopped training: no more bags
                break
        self.n_iter_ = epochs  # epochs run per network (sklearn's name)
        return self

    def _encode_validation(self, y: np.ndarray, n: int) -> np.ndarray:
        """Validation targets in the encoding ``_encode_y`` chose for the training targets."""
        if len(y) != n:
            raise ValueError(f"validation_data: X has {n} rows but y has {len(y)}")
        if self._task == "regression":
            values = np.asarray(y, dtype=np.float64)
            return (values - self.y_mean_) / self.y_std_
        pos = np.searchsorted(self.classes_, y)
        pos = np.minimum(pos, len(self.classes_) - 1)
        unseen = self.classes_[pos] != y
        if unseen.any():
            first = y[np.flatnonzero(unseen)[0]]
            plain = [c.item() if isinstance(c, np.generic) else c for c in self.classes_[:8]]
            raise ValueError(f"validation_data: label "
                             f"{first.item() if isinstance(first, np.generic) else first!r} is "
                             f"not among the training labels {plain}")
        return pos.astype(np.int64)

    def _splits(self, target: np.ndarray, bags: int, rng: np.random.Generator) -> list:
        n = len(target)
        if n < 5 or (bags == 1 and self.validation_fraction <= 0):
            return [(np.arange(n), None)]  # too few rows to hold any out: train on all, last epoch
        from sklearn.model_selection import KFold, StratifiedKFold, train_test_split  # noqa: PLC0415
        if bags > n:
            raise ValueError(f"n_bags={bags} folds need at least {bags} rows; the table has {n}")
        seed = int(rng.integers(2 ** 31 - 1))
        stratify = target if self._task == "classification" and np.bincount(target).min() >= max(bags, 2) \
            else None
        if bags == 1:
            tr, va = train_test_split(np.arange(n), test_size=self.validation_fraction,
                                      random_state=seed, stratify=stratify)
            return [(np.sort(tr), np.sort(va))]
        cv = StratifiedKFold(bags, shuffle=True, random_state=seed) if stratify is not None \
            else KFold(bags, shuffle=True, random_state=seed)
        return list(cv.split(np.zeros(n), stratify if stratify is not None else None))

    def _n_out(self) -> int:
        return 1

    def _encoder(self) -> TableEncoder:
        enc = TableEncoder(one_hot_max=self.one_hot_max)
        enc.spec = self.encoding_
        return enc

    def _train_one(self, Z: np.ndarray, target: np.ndarray, train_idx: np.ndarray,
                   val: tuple | None, rng: np.random.Generator,
                   extra_callbacks: Sequence[Callback] | None = None) -> tuple:
        from .. import nn, optim  # noqa: PLC0415
        from ..training import fit  # noqa: PLC0415
        k = self.n_ensemble_
        epochs = int(self._setting("n_epochs"))
        n_num, n_bin, cards = self._encoder().layout()
        activation = self.activation or ("selu" if self._task == "classification" else "mish")
        net = nn.TabularMLP(n_num, n_bin, cards, n_out=self._n_out(), hidden=tuple(self.hidden),
                            activation=activation, k=k, periodic=self.periodic,
                            embedding_dim=self.embedding_dim, dropout=self.dropout,
                            front_scale=self.front_scale, parametric=self.parametric_act,
                            clip=self.smooth_clip, ntk=self.ntk, rng=rng)
        Ztr = Z[train_idx]
        if self.robust_scale:
            net.scaler.fit_statistics(Ztr[:, :n_num + n_bin])
        batch = max(1, min(int(self.batch_size), len(train_idx)))
        init_rows = rng.permutation(len(train_idx))[:batch]
        if self.ntk:
            net.data_init(Ztr[init_rows])
        lr = self.lr if self.lr is not None else (0.04 if self._task == "classification" else 0.2)
        opt = optim.AdamW(net.param_groups(lr, self.weight_decay), lr=lr, betas=tuple(self.betas),
                          weight_decay=self.weight_decay)
        y_tr = self._fit_target(target[train_idx], k)
        steps = epochs * max(len(train_idx) // batch, 1)
        callbacks: list = [RecipeSchedule(steps, self.lr_schedule, self.wd_schedule, self.dropout,
                                          self.dropout_schedule)]
        best = BestEpoch("val_" + self._val_metric(k).__name__)
        if val is not None and len(val[0]):
            val = (val[0], self._fit_target(val[1], k))
            callbacks.append(best)
        else:
            val = None
        callbacks += list(extra_callbacks or ())
        hist = fit(net, Ztr, y_tr, loss=self._loss(k), optimizer=opt, epochs=epochs, batch_size=batch,
                   validation_data=val, metrics=[self._val_metric(k)] if val else None,
                   callbacks=callbacks, seed=rng, verbose=self.verbose, drop_last=True)
        ran = len(hist.history.get("loss", ()))  # fewer than ``epochs`` when a callback stopped it
        best_epoch = best.best_epoch + 1 if val is not None and best.best_epoch is not None else ran
        return net, best_epoch, {k_: [float(v) for v in vals] for k_, vals in hist.history.items()}

    # ------------------------------------------------------------------ predict
    def _outputs(self, X: Any) -> np.ndarray:
        """Per network, per member outputs: (networks, k, N, n_out)."""
        from sklearn.utils.validation import check_is_fitted  # noqa: PLC0415
        from ..training import predict  # noqa: PLC0415
        check_is_fitted(self, "networks_")
        table = self._table(X, reset=False)
        Z = self._encoder().transform(table)
        outs = []
        for net in self.networks_:
            out = predict(net, Z).astype(np.float64)
            outs.append(out.reshape(len(Z), net.k, net.n_out).transpose(1, 0, 2))
        return np.stack(outs)


def _averaged_network(est: Any, one_hot_codes: bool = False) -> Any:
    """One differentiable network for explanations: encoded rows (``TableEncoder.transform``)
    -> class probabilities or values, averaged over ensemble members and bags as predict does.
    ``one_hot_codes``: rows whose embedded codes are one-hot blocks (``one_hot_codes``)."""
    from .. import nn  # noqa: PLC0415

    class AveragedTabular(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.networks = nn.ModuleList(est.networks_)

        def forward(self, x: Any) -> Any:
            total = None
            for net in self.networks:
                out = net(x, one_hot_codes=one_hot_codes).reshape(x.shape[0], net.k, net.n_out)
                out = out.softmax(axis=2) if est._task == "classification" else out
                total = out.mean(axis=1) if total is None else total + out.mean(axis=1)
            mean = total * (1.0 / len(self.networks))
            return mean if est._task == "classification" else mean * est.y_std_ + est.y_mean_

    return AveragedTabular()


def one_hot_codes(est: Any, Z: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Encoded rows ``Z`` with each embedded code column as a one-hot block (code 0, missing or
    unseen, included), and the block sizes; what ``_averaged_network(est, True)`` reads.

    Example: ``X1, sizes = one_hot_codes(clf, clf._encoder().transform(df))``
    """
    n_num, n_bin, cards = est._encoder().layout()
    front, codes = Z[:, :n_num + n_bin], Z[:, n_num + n_bin:].astype(np.int64)
    blocks = [np.eye(card, dtype=Z.dtype)[np.clip(codes[:, j], 0, card - 1)]
              for j, card in enumerate(cards)]
    return np.hstack([front, *blocks]), list(cards)


# ``model_`` is what neuralab.explain differentiates (as for MLPClassifier); it is built from
# ``networks_`` when asked for, so a model file stores the networks once
_TabularBase.model_ = property(lambda self: _averaged_network(self) if hasattr(self, "networks_")
                               else _not_fitted(self))


def _not_fitted(est: Any) -> Any:
    raise AttributeError(f"this {type(est).__name__} is not fitted yet: it has no model_")


class TabularClassifier(ClassifierMixin, _TabularBase):
    __doc__ = """RealMLP-TD classifier for tables (DataFrames with mixed columns, or arrays).

    Cross-entropy with label smoothing ``label_smoothing`` (0.1), SELU, the best epoch by
    validation error; probabilities are averaged over ensemble members and bags.
    """ + _PARAMS_DOC + """        label_smoothing: mix the targets with the uniform distribution (0.1).
        val_metric: what picks the best epoch: "error" (None; RealMLP-TD) or "log_loss".

    Attributes: ``classes_``, ``encoding_`` (the column recipe, plain data), ``networks_`` (one
    ``nn.TabularMLP`` per bag), ``best_epochs_``, ``history_``, ``n_iter_``, ``n_features_in_``.

    Example:
        >>> clf = nl.TabularClassifier(preset="fast", random_state=0).fit(X_train, y_train)
        >>> clf.score(X_test, y_test)   # doctest: +SKIP
    """

    _task = "classification"

    def _encode_y(self, y: Any) -> np.ndarray:
        from sklearn.utils.multiclass import check_classification_targets  # noqa: PLC0415
        check_classification_targets(y)
        present = ~_is_missing(y)
        if not present.all():
            raise ValueError(f"y has {int((~present).sum())} missing value(s) (first in row "
                             f"{int(np.flatnonzero(~present)[0])}); drop those rows")
        self.classes_, encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            only = self.classes_[0].item() if isinstance(self.classes_[0], np.generic) else self.classes_[0]
            raise ValueError(f"y has a single class ({only!r}); a classifier needs at least 2 classes")
        return encoded.astype(np.int64)

    def _n_out(self) -> int:
        return len(self.classes_)

    def _fit_target(self, y: np.ndarray, k: int) -> np.ndarray:
        return y

    def _loss(self, k: int):
        from .. import functional as F  # noqa: PLC0415
        from ..tensor import Tensor  # noqa: PLC0415
        c, eps = len(self.classes_), float(self.label_smoothing)

        def loss(out: Any, y: Any) -> Any:
            # each member learns from its own loss (TabM): (N, k*C) -> (N*k, C) rows
            if k > 1:
                out = out.reshape((out.shape[0] * k, c))
                y = Tensor(np.repeat(np.asarray(y.data), k))
            return F.cross_entropy(out, y, label_smoothing=eps)
        return loss

    def _val_metric(self, k: int):
        c = len(self.classes_)
        choice = self.val_metric or "error"
        if choice not in ("error", "log_loss"):
            raise ValueError(f"val_metric must be 'error' or 'log_loss' for a classifier, got {choice!r}")

        def error(y_true: np.ndarray, out: np.ndarray) -> float:
            p = _softmax(out.reshape(len(out), k, c)).mean(axis=1)
            return float(np.mean(p.argmax(axis=1) != y_true))

        def log_loss(y_true: np.ndarray, out: np.ndarray) -> float:
            # smoother than the error on a small fold: every row moves it, not only flips
            p = _softmax(out.reshape(len(out), k, c).astype(np.float64)).mean(axis=1)
            return float(-np.mean(np.log(np.maximum(p[np.arange(len(p)), y_true], 1e-15))))
        return error if choice == "error" else log_loss

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (N, n_classes), averaged over ensemble members and bags.

        Example: ``clf.predict_proba(df_new)[:, 1]``
        """
        return _softmax(self._outputs(X)).mean(axis=(0, 1))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class label of each row.

        Example: ``clf.predict(df_new)``
        """
        best = self.predict_proba(X).argmax(axis=1)
        return self.classes_[best]


class TabularRegressor(RegressorMixin, _TabularBase):
    __doc__ = """RealMLP-TD regressor for tables (DataFrames with mixed columns, or arrays).

    Trains on the standardised target with mean squared error and Mish; predictions are
    scaled back and clipped to the training targets' range, averaged over members and bags.
    """ + _PARAMS_DOC + """        label_smoothing: unused (classification only).
        val_metric: what picks the best epoch: "mse" (None).

    Attributes: ``y_mean_``, ``y_std_``, ``y_min_``, ``y_max_``, ``encoding_``, ``networks_``,
    ``best_epochs_``, ``history_``, ``n_iter_``, ``n_features_in_``.

    Example:
        >>> reg = nl.TabularRegressor(preset="fast", random_state=0).fit(X_train, y_train)
        >>> reg.score(X_test, y_test)   # doctest: +SKIP
    """

    _task = "regression"

    def _encode_y(self, y: Any) -> np.ndarray:
        try:
            y = np.asarray(y, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError("y must hold numbers for regression (got text); use "
                             "TabularClassifier for class labels") from None
        if not np.isfinite(y).all():
            bad = int(np.flatnonzero(~np.isfinite(y))[0])
            raise ValueError(f"y has {int((~np.isfinite(y)).sum())} missing or infinite value(s) "
                             f"(first in row {bad}); drop those rows")
        std = float(y.std())
        self.y_mean_, self.y_std_ = float(y.mean()), std if std > 0 else 1.0
        self.y_min_, self.y_max_ = float(y.min()), float(y.max())
        return (y - self.y_mean_) / self.y_std_

    def _fit_target(self, y: np.ndarray, k: int) -> np.ndarray:
        y = y.astype(np.float32)
        return y if k == 1 else np.repeat(y[:, None], k, axis=1)

    def _loss(self, k: int):
        from .. import functional as F  # noqa: PLC0415
        return lambda out, y: F.mse_loss(out, y)

    def _val_metric(self, k: int):
        if self.val_metric not in (None, "mse"):
            raise ValueError(f"val_metric must be 'mse' for a regressor, got {self.val_metric!r}")

        def mse(y_true: np.ndarray, out: np.ndarray) -> float:
            truth = y_true if y_true.ndim == 1 else y_true[:, 0]
            return float(np.mean((out.reshape(len(out), k).mean(axis=1) - truth) ** 2))
        return mse

    def predict(self, X: Any) -> np.ndarray:
        """Predicted values, on the target's scale, clipped to the training range.

        Example: ``reg.predict(df_new)``
        """
        mean = self._outputs(X)[..., 0].mean(axis=(0, 1))
        return np.clip(mean * self.y_std_ + self.y_mean_, self.y_min_, self.y_max_)


def _is_missing(y: np.ndarray) -> np.ndarray:
    import pandas as pd  # noqa: PLC0415
    return np.asarray(pd.isna(y), dtype=bool)


# ============================================================================ ONNX
def _onnx_network(net: Any, x: str, g: Any) -> str:
    """Nodes computing ``net`` (a TabularMLP, eval mode) on the encoded rows ``x``: (N, k, n_out)."""
    from onnx import TensorProto  # noqa: PLC0415
    from .. import nn  # noqa: PLC0415
    i64 = lambda v, hint="idx": g.const(np.asarray(v, np.int64), hint, np.int64)  # noqa: E731

    def cols(t: str, start: int, stop: int) -> str:
        return g.op("Slice", [t, i64([start]), i64([stop]), i64([1])], "cols")

    n_num, n_in = net.n_numeric, net.n_numeric + net.n_binary
    parts = []
    if n_in:
        z = g.op("Mul", [g.op("Sub", [cols(x, 0, n_in), g.const(net.scaler.center, "center")]),
                         g.const(net.scaler.scale, "scale")], "scaled")
        if net.scaler.clip:  # z / sqrt(1 + (z / 3)^2)
            third = g.op("Mul", [z, g.const(1.0 / 3.0, "third")])
            denom = g.op("Sqrt", [g.op("Add", [g.op("Mul", [third, third]), g.const(1.0, "one")])])
            z = g.op("Div", [z, denom], "clipped")
        if n_num:
            num = cols(z, 0, n_num)
            if net.periodic is not None:
                pe = net.periodic
                x3 = g.op("Reshape", [num, i64([0, n_num, 1], "shape")])
                a = g.op("Add", [g.op("Mul", [x3, g.const(pe.weight_1.data * (2 * math.pi), "freq")]),
                                 g.const(pe.bias_1.data, "phase")])
                c = g.op("Transpose", [g.op("Cos", [a])], perm=[1, 0, 2])
                m = g.op("Transpose", [g.op("MatMul", [c, g.const(pe.weight_2.data, "pbld_w")])], perm=[1, 0, 2])
                m = g.op("Add", [m, g.const(pe.bias_2.data, "pbld_b")])
                num = g.op("Reshape", [g.op("Concat", [x3, m], axis=2), i64([0, n_num * pe.out_dim], "shape")])
            parts.append(num)
        if net.n_binary:
            parts.append(cols(z, n_num, n_in))
    if net.embedding is not None:
        emb = net.embedding
        n_cat = len(emb.cardinalities)
        codes = g.op("Cast", [cols(x, n_in, n_in + n_cat)], to=TensorProto.INT64)
        codes = g.op("Min", [g.op("Max", [codes, i64(0, "zero")]), i64(np.asarray(emb.cardinalities) - 1, "top")])
        rows = g.op("Gather", [g.const(emb.weight.data, "embedding"), g.op("Add", [codes, i64(emb.offsets, "offsets")])])
        parts.append(g.op("Reshape", [rows, i64([0, n_cat * emb.dim], "shape")]))
    h = parts[0] if len(parts) == 1 else g.op("Concat", parts, axis=1)
    if net.front is not None:
        h = g.op("Mul", [h, g.const(net.front.weight.data, "front_scale")])
    for i, lin in enumerate(net.linears):
        w = (lin.weight.data * lin._factor()).T
        if isinstance(lin, nn.EnsembleLinear):
            k = lin.k
            if i == 0:
                h = g.op("Reshape", [h, i64([1, -1, lin.in_features], "shape")])
            h = g.op("Mul", [h, g.const(lin.r.data.reshape(k, 1, -1), "ens_r")])
            h = g.op("Mul", [g.op("MatMul", [h, g.const(w, "weight")]), g.const(lin.s.data.reshape(k, 1, -1), "ens_s")])
            h = g.op("Add", [h, g.const(lin.bias.data.reshape(k, 1, -1), "ens_bias")])
        else:
            h = g.op("MatMul", [h, g.const(w, "weight")])
            if lin.bias is not None:
                h = g.op("Add", [h, g.const(lin.bias.data, "bias")])
        if i < len(net.acts):
            act = net.acts[i]
            f = _onnx_activation(act.activation, h, g)
            if act.weight is not None:  # x + (f(x) - x) * w
                f = g.op("Add", [h, g.op("Mul", [g.op("Sub", [f, h]), g.const(act.weight.data, "act_w")])])
            h = f
    if net.k > 1:
        return g.op("Transpose", [h], perm=[1, 0, 2])  # (k, N, out) -> (N, k, out)
    return g.op("Reshape", [h, i64([0, 1, net.n_out], "shape")])


def _onnx_activation(name: str, h: str, g: Any) -> str:
    from ..functions import _SELU_ALPHA, _SELU_SCALE  # noqa: PLC0415
    if name == "selu":
        return g.op("Selu", [h], alpha=_SELU_ALPHA, gamma=_SELU_SCALE)
    if name == "mish":  # Mish is an operator only from opset 18: x * tanh(softplus(x))
        return g.op("Mul", [h, g.op("Tanh", [g.op("Softplus", [h])])])
    simple = {"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid", "identity": "Identity"}
    if name not in simple:
        raise ValueError(f"export_onnx: activation {name!r} of a tabular network is not supported; "
                         f"use one of {sorted(['selu', 'mish', *simple])}")
    return g.op(simple[name], [h])


def _emit_onnx(self: Any, x: str, g: Any, outputs: list) -> None:
    """ONNX head of a tabular estimator on its encoded rows ``x``: members and bags averaged."""
    from onnx import TensorProto  # noqa: PLC0415
    outs = [_onnx_network(net, x, g) for net in self.networks_]
    z = outs[0] if len(outs) == 1 else g.op("Concat", outs, axis=1)  # (N, all members, n_out)
    if isinstance(self, TabularRegressor):
        mean = g.op("ReduceMean", [z], axes=[1], keepdims=0)
        y = g.op("Add", [g.op("Mul", [mean, g.const(self.y_std_, "y_std")]), g.const(self.y_mean_, "y_mean")])
        y = g.op("Clip", [y, g.const(self.y_min_, "y_min"), g.const(self.y_max_, "y_max")])
        outputs.append(("prediction", g.op("Reshape", [y, g.const([-1], "shape", np.int64)]),
                        TensorProto.FLOAT, ["N"]))
        return
    proba = g.op("ReduceMean", [g.op("Softmax", [z], axis=2)], axes=[1], keepdims=0)
    outputs.append(("probabilities", proba, TensorProto.FLOAT, ["N", len(self.classes_)]))
    idx = g.op("ArgMax", [proba], axis=1, keepdims=0)
    classes = np.asarray(self.classes_)
    if classes.dtype.kind in "iub":
        outputs.append(("label", g.op("Gather", [g.const(classes, "classes", np.int64), idx]),
                        TensorProto.INT64, ["N"]))
    elif classes.dtype.kind == "f":
        outputs.append(("label", g.op("Gather", [g.const(classes, "classes"), idx]), TensorProto.FLOAT, ["N"]))
    else:
        const = g.fresh("classes")
        g.initializers.append(g.helper.make_tensor(const, TensorProto.STRING, [len(classes)],
                                                   [str(c).encode("utf-8") for c in classes]))
        outputs.append(("label", g.op("Gather", [const, idx]), TensorProto.STRING, ["N"]))


# export_onnx calls this hook after encoding the columns in the graph (io.onnx._emit_encoder_inputs)
_TabularBase._emit_onnx = _emit_onnx
