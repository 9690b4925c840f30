"""Tabular preprocessing for file input, recorded as plain data (JSON) rather than code.

``TabularPreprocessor.fit(frame, target=...)`` looks at each column once and writes down what
to do with it: numbers are median-imputed and standardised; strings, categories and booleans
are one-hot encoded (missing values get their own category); date-like columns are expanded
to year / month / day / weekday numbers; ID-like columns (every value a distinct string)
are left out with a notice. The result, ``spec``, is a dict of lists, numbers and strings that
``nl.save`` stores in the model file, so loading a model never runs code.

Example:
    >>> import pandas as pd
    >>> df = pd.DataFrame({"age": [30, None, 50], "city": ["Oslo", "Rome", None], "y": [0, 1, 0]})
    >>> prep = TabularPreprocessor().fit(df, target="y")
    >>> prep.feature_names
    ['age', 'city=Oslo', 'city=Rome', 'city=<missing>']
    >>> prep.transform(df).shape
    (3, 4)
"""
from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np

SPEC_VERSION = 1
MISSING = "<missing>"
OTHER = "<other>"
DATE_PARTS = ("year", "month", "day", "weekday")
_DATE_ATTRS = {"year": "year", "month": "month", "day": "day", "weekday": "day_of_week"}


def _reject_infinite(name, values, index) -> None:
    # A missing number (NaN, an empty cell) is imputed; an infinity is almost always an
    # upstream bug (a division by zero), so it is reported rather than hidden.
    inf = np.isinf(values)
    if inf.any():
        raise PreprocessingError(f"column {name!r} has {int(inf.sum())} infinite value(s) "
                                 f"(first in row {_py(index[int(inf.argmax())])!r}); replace them, or "
                                 f"leave the cells empty to have them imputed")


class PreprocessingError(ValueError):
    """Input data that the preprocessing cannot use (missing column, empty target, ...).

    Example: ``raise PreprocessingError("column 'age' is missing from the data")``
    """


def _pd():
    import pandas as pd  # lazy: pandas is the `data` extra, not needed by `import neuralab`
    return pd


def _py(value: Any) -> Any:
    """A JSON-able Python scalar for a NumPy/pandas scalar (labels, categories)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer() and abs(value) < 2 ** 53:
        return value  # keep floats floats: 1.0 and 1 differ for a float target
    return value


def _category_key(value: Any) -> str:
    # One-hot categories are matched as strings so that a column read back as numbers
    # ("1", "2") or as booleans ("True") still finds its category.
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _parse_dates(series, fmt: str):
    pd = _pd()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas warns when it has to guess a format per row
        if fmt == "ISO8601":
            return pd.to_datetime(series, errors="coerce", format="ISO8601")
        return pd.to_datetime(series, errors="coerce", format="mixed")


_MONTHS = r"(?i)\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b"


def _date_shaped(text):
    """Which strings have a date's parts: three numbers (2021-05-03, 3/5/21), a four-digit
    year (2021-05) or a month's name (May 3). pandas reads '1/2' as 2 January of year 1, which
    in a table is an allele pair or a fraction, not a date."""
    return (text.str.count(r"\d+") >= 3) | text.str.contains(r"\d{4}") | text.str.contains(_MONTHS)


def _looks_like_dates(series) -> str | None:
    """The date format ("ISO8601" or "mixed") when >= 90% of the non-missing strings parse."""
    pd = _pd()
    values = series.dropna()
    if len(values) == 0:
        return None
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    text = values.astype(str)
    # Cheap guard: dates contain digits and a separator; this keeps 'Oslo' out of the parser.
    if not text.str.contains(r"\d").all() or not text.str.contains(r"[-/.: ]").mean() >= 0.9:
        return None
    if _date_shaped(text).mean() < 0.9:  # '1/2' (an allele pair), '3-4' (a range)
        return None
    for fmt in ("ISO8601", "mixed"):
        parsed = _parse_dates(text, fmt)
        if parsed.notna().mean() >= 0.9:
            return fmt
    return None


def infer_task(y) -> str:
    """'classification' for labels (strings, booleans, few distinct integers), else 'regression'.

    Example: ``infer_task(pd.Series(["a", "b"]))  # 'classification'``
    """
    pd = _pd()
    y = pd.Series(y).dropna()
    if pd.api.types.is_bool_dtype(y) or not pd.api.types.is_numeric_dtype(y):
        return "classification"
    values = y.to_numpy(dtype=float)
    n_unique = len(np.unique(values))
    integer_valued = bool(np.all(np.isfinite(values)) and np.all(values == np.round(values)))
    if integer_valued and n_unique <= max(2, min(20, len(values) // 2)):
        return "classification"
    return "regression"


class TabularPreprocessor:
    """Turns a DataFrame into a float32 matrix with a fitted, JSON-able recipe (``spec``).

    Args:
        features: columns to use (default: all but the target and those in ``drop``).
        drop: columns to leave out.
        task: "classification", "regression" or None to infer it from the target.
        max_categories: most frequent categories kept per column; the rest share ``<other>``.
        text: columns of free text (TF-IDF features).
        numeric_scale: "standard" (each numeric column to mean 0, std 1) or "shared_range" (every
            numeric column by the range of all of them together: pixels of one image scale).
        categorical: columns encoded as categories whatever their dtype (integer codes such as
            a store or school number; by default a column of numbers is a number).

    Example:
        >>> prep = TabularPreprocessor(drop=["name"]).fit(df, target="price")
        >>> X, y = prep.transform(df), prep.transform_target(df)
    """

    def __init__(self, features: Sequence[str] | None = None, drop: Sequence[str] = (),
                 task: str | None = None, max_categories: int = 50,
                 text: Sequence[str] = (), numeric_scale: str = "standard",
                 categorical: Sequence[str] = ()) -> None:
        if task not in (None, "classification", "regression"):
            raise PreprocessingError(f"task must be 'classification' or 'regression', got {task!r}")
        if numeric_scale not in ("standard", "shared_range"):
            raise PreprocessingError(f"numeric_scale must be 'standard' or 'shared_range', "
                                     f"got {numeric_scale!r}")
        self.numeric_scale = numeric_scale
        self.features = list(features) if features is not None else None
        self.drop = list(drop)
        self.task = task
        self.max_categories = max_categories
        self.text = list(text)  # columns of free text: TF-IDF (neuralab.text), stored as data
        # columns one-hot encoded whatever their dtype: integer codes (a store, a school id)
        # are categories, not quantities
        self.categorical = list(categorical)
        self.spec: dict | None = None
        self.notices: list[str] = []

    # ------------------------------------------------------------------ fitting
    def fit(self, frame, target: str | None = None, comm: Any = None) -> "TabularPreprocessor":
        """Decide each column's treatment from ``frame``; returns self.

        With ``comm`` (an MPI communicator; under ``mpiexec`` every rank calls ``fit`` with
        its own rows), the recipe is that of all ranks' rows together and the same on every
        rank, whatever the number of ranks: column kinds are agreed, means and variances are
        exact sums (``distributed.mean_and_std``), medians exact order statistics
        (``distributed.quantiles``), and categories and the ID-like check come from counts
        added up over the ranks (``distributed.merge_counts``). Free-text columns are not
        supported then.

        Example: ``prep = TabularPreprocessor().fit(part, target="y", comm=MPI.COMM_WORLD)``
        """
        pd = _pd()
        self.notices = []
        columns = [str(c) for c in frame.columns]
        frame = frame.set_axis(columns, axis=1)
        if target is not None and target not in columns:
            raise PreprocessingError(f"target column {target!r} is not in the data; columns are "
                                     f"{_short_list(columns)}")
        unknown = [c for c in (self.features or []) + self.drop + self.text + self.categorical
                   if c not in columns]
        if unknown:
            raise PreprocessingError(f"column(s) {_short_list(unknown)} not in the data; columns are "
                                     f"{_short_list(columns)}")
        chosen = self.features if self.features is not None else columns
        chosen = [c for c in chosen if c != target and c not in self.drop]
        if comm is not None:
            if self.text:
                raise PreprocessingError("free-text columns (--text) are not supported when "
                                         "the data is split over MPI ranks")
            frame = _agree_kinds(frame, chosen + ([target] if target is not None else []), comm)
            for note in frame.attrs.pop("notices", []):
                self._notice(note)
            return self._fit_ranks(frame, target, chosen, comm)

        spec: dict[str, Any] = {"version": SPEC_VERSION, "target": target, "task": None,
                                "classes": None, "columns": [], "dropped": []}
        if target is not None:
            y = frame[target]
            n_missing = int(y.isna().sum())
            if n_missing == len(y):
                raise PreprocessingError(f"target column {target!r} has no values")
            if n_missing:
                self._notice(f"{n_missing} row(s) with a missing target {target!r} left out")
                frame = frame[y.notna()]
                y = y[y.notna()]
            task = self.task or infer_task(y)
            spec["task"] = task
            if task == "classification":
                spec["classes"] = [_py(v) for v in np.unique(y.to_numpy())]
                if len(spec["classes"]) < 2:
                    raise PreprocessingError(f"target column {target!r} has a single class "
                                             f"{spec['classes'][0]!r}; classification needs two")
                self._many_classes(target, len(spec["classes"]), len(y))
            elif not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
                raise PreprocessingError(f"target column {target!r} holds non-numbers "
                                         f"(e.g. {y.iloc[0]!r}); regression needs numbers")
            else:
                # The network learns the standardised target (well-scaled gradients whatever
                # the units); predictions are scaled back.
                values = y.to_numpy(dtype=np.float64)
                std = float(values.std())
                spec["target_mean"], spec["target_std"] = float(values.mean()), std if std > 0 else 1.0

        chosen += [c for c in self.text if c not in chosen and c != target]
        for name in chosen:
            if name in self.text:
                from .apps.text_features import text_column_spec
                spec["columns"].append(text_column_spec(name, frame[name]))
                continue
            spec["columns"].extend(self._fit_column(name, frame[name], spec["dropped"]))
        if self.numeric_scale == "shared_range":
            numeric = [c for c in spec["columns"] if c["kind"] == "numeric"]
            if numeric:
                low, high = min(c["min"] for c in numeric), max(c["max"] for c in numeric)
                for c in numeric:
                    c["mean"], c["std"] = low, (high - low) or 1.0
        for c in spec["columns"]:
            c.pop("min", None), c.pop("max", None)
        if not spec["columns"]:
            raise PreprocessingError("no usable feature columns left "
                                     f"(dropped: {[d['name'] for d in spec['dropped']]})")
        spec["feature_names"] = _feature_names(spec["columns"])
        self.spec = spec
        return self

    def _fit_ranks(self, frame, target: str | None, chosen: list[str], comm: Any) -> "TabularPreprocessor":
        """``fit`` over every rank's rows: the same collective calls in the same order on
        every rank, and every decision taken from totals, so every rank agrees."""
        from . import distributed as d

        pd = _pd()
        spec: dict[str, Any] = {"version": SPEC_VERSION, "target": target, "task": None,
                                "classes": None, "columns": [], "dropped": []}
        if target is not None:
            y = frame[target]
            n_missing, n_all = (_total(v, comm) for v in (int(y.isna().sum()), len(y)))
            if n_missing == n_all:
                raise PreprocessingError(f"target column {target!r} has no values")
            if n_missing:
                self._notice(f"{n_missing} row(s) with a missing target {target!r} left out")
                frame = frame[y.notna()]
                y = y[y.notna()]
            task = self.task or _infer_task_ranks(y, comm)
            spec["task"] = task
            if task == "classification":
                spec["classes"] = _classes_ranks(y, comm)
                if len(spec["classes"]) < 2:
                    raise PreprocessingError(f"target column {target!r} has a single class "
                                             f"{spec['classes'][0]!r}; classification needs two")
                self._many_classes(target, len(spec["classes"]), _total(len(y), comm))
            elif not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
                raise PreprocessingError(f"target column {target!r} holds non-numbers; "
                                         "regression needs numbers")
            else:
                mean, std = d.mean_and_std(y.to_numpy(dtype=np.float64), comm)
                spec["target_mean"] = float(mean[0])
                spec["target_std"] = float(std[0]) if std[0] > 0 else 1.0
        for name in chosen:
            spec["columns"].extend(self._fit_column_ranks(name, frame[name], spec["dropped"], comm))
        if self.numeric_scale == "shared_range":
            numeric = [c for c in spec["columns"] if c["kind"] == "numeric"]
            if numeric:
                low, high = min(c["min"] for c in numeric), max(c["max"] for c in numeric)
                for c in numeric:
                    c["mean"], c["std"] = low, (high - low) or 1.0
        for c in spec["columns"]:
            c.pop("min", None), c.pop("max", None)
        if not spec["columns"]:
            raise PreprocessingError("no usable feature columns left "
                                     f"(dropped: {[d['name'] for d in spec['dropped']]})")
        spec["feature_names"] = _feature_names(spec["columns"])
        self.spec = spec
        return self

    def _fit_column_ranks(self, name: str, s, dropped: list, comm: Any) -> list[dict]:
        pd = _pd()
        n = _total(len(s), comm)
        if _total(int(s.notna().sum()), comm) == 0:
            dropped.append({"name": name, "reason": "all values missing"})
            self._notice(f"column {name!r} left out: every value is missing")
            return []
        if pd.api.types.is_bool_dtype(s) or name in self.categorical:
            return [self._categorical(name, s, comm)]
        if pd.api.types.is_numeric_dtype(s):
            values = s.to_numpy(dtype=np.float64, na_value=np.nan)
            _reject_infinite_ranks(name, values, s.index, comm)
            stats = _numeric_stats(values, comm)
            return [{"name": name, "kind": "numeric", **stats}]
        fmt = _looks_like_dates_ranks(s, comm)
        if fmt is not None:
            self._notice(f"column {name!r} looks like dates: expanded to "
                         f"{', '.join(name + '.' + p for p in DATE_PARTS)}")
            dates = s if fmt == "datetime" else _parse_dates(s.astype("string"), fmt)
            parts = _date_parts(dates)
            out = []
            for part in DATE_PARTS:
                stats = _numeric_stats(parts[part], comm)
                stats.pop("min"), stats.pop("max")
                out.append({"name": name, "kind": "date", "part": part, "format": fmt, **stats})
            return out
        counts = _merged_counts(s, comm)
        distinct = len(counts)
        if n >= 2 and (distinct == n or (n >= 20 and distinct >= 0.9 * n)):
            dropped.append({"name": name, "reason": f"ID-like ({distinct} distinct strings "
                                                    f"in {n} rows)"})
            self._notice(f"column {name!r} left out: ID-like ({distinct} distinct strings in "
                         f"{n} rows); use --text {name} if it is free text")
            return []
        return [self._categorical(name, s, comm, counts)]

    def _many_classes(self, target: str, k: int, n: int) -> None:
        """A note when the classes are more than half the rows: most appear once or twice, a
        network cannot learn them (often an ID, a date or a number read as a label)."""
        if k > max(20, 0.5 * n):
            self._notice(f"target {target!r} has {k} classes in {n} rows, most of them seen once "
                         f"or twice: little to learn per class (an ID or a date? choose another "
                         f"target; numbers? --task regression)")

    def _notice(self, message: str) -> None:
        self.notices.append(message)

    def _fit_column(self, name: str, s, dropped: list) -> list[dict]:
        pd = _pd()
        n = len(s)
        present = s.dropna()
        if len(present) == 0:
            dropped.append({"name": name, "reason": "all values missing"})
            self._notice(f"column {name!r} left out: every value is missing")
            return []
        if pd.api.types.is_bool_dtype(s) or name in self.categorical:
            return [self._categorical(name, s)]
        if pd.api.types.is_numeric_dtype(s):
            values = s.to_numpy(dtype=np.float64, na_value=np.nan)
            _reject_infinite(name, values, s.index)
            finite = values[np.isfinite(values)]
            median = float(np.median(finite))
            filled = np.where(np.isfinite(values), values, median)
            return [{"name": name, "kind": "numeric", "median": median,
                     "mean": float(filled.mean()), "std": _scale(filled),
                     "min": float(finite.min()), "max": float(finite.max())}]
        fmt = _looks_like_dates(s)
        if fmt is not None:
            self._notice(f"column {name!r} looks like dates: expanded to "
                         f"{', '.join(name + '.' + p for p in DATE_PARTS)}")
            dates = s if fmt == "datetime" else _parse_dates(s.astype("string"), fmt)
            parts = _date_parts(dates)
            out = []
            for part in DATE_PARTS:
                values = parts[part]
                finite = values[np.isfinite(values)]
                median = float(np.median(finite))
                filled = np.where(np.isfinite(values), values, median)
                out.append({"name": name, "kind": "date", "part": part, "format": fmt,
                            "median": median, "mean": float(filled.mean()),
                            "std": _scale(filled)})
            return out
        codes = _check_mostly_numeric(name, s)
        if codes:
            self._notice(codes)
        text = present.astype(str)
        distinct = text.nunique()
        # Near-unique strings (names, ids, free text) would become noise one-hot columns.
        if n >= 2 and (distinct == n or (n >= 20 and distinct >= 0.9 * n)):
            dropped.append({"name": name, "reason": f"ID-like ({distinct} distinct strings "
                                                    f"in {n} rows)"})
            self._notice(f"column {name!r} left out: ID-like ({distinct} distinct strings in "
                         f"{n} rows); use --text {name} if it is free text")
            return []
        return [self._categorical(name, s)]

    def _categorical(self, name: str, s, comm: Any = None, counts: dict | None = None) -> dict:
        if counts is None:
            counts = (_merged_counts(s, comm) if comm is not None else
                      s.dropna().map(_category_key).value_counts(sort=False).to_dict())
        # Most frequent first, ties by name, so the spec does not depend on row order.
        ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        categories = [k for k, _ in ordered[: self.max_categories]]
        other = len(ordered) > self.max_categories
        if other:
            self._notice(f"column {name!r}: {len(ordered)} categories, the "
                         f"{len(ordered) - self.max_categories} rarest grouped as {OTHER!r}")
        missing = bool(s.isna().any())
        if comm is not None:
            missing = any(comm.allgather(missing))
        return {"name": name, "kind": "categorical", "categories": sorted(categories),
                "other": other, "missing": missing}

    # ------------------------------------------------------------------ applying
    @property
    def feature_names(self) -> list[str]:
        """Names of the output columns, e.g. ``['age', 'city=Oslo', 'date.year']``."""
        return list(self._fitted()["feature_names"])

    @property
    def input_columns(self) -> list[str]:
        """The data columns the recipe reads, in order (each once)."""
        return list(dict.fromkeys(c["name"] for c in self._fitted()["columns"]))

    def _fitted(self) -> dict:
        if self.spec is None:
            raise PreprocessingError("this TabularPreprocessor is not fitted yet; call fit() first")
        return self.spec

    def transform(self, frame, scale: bool = True, impute: bool = True,
                  warn: bool = True) -> np.ndarray:
        """The float32 feature matrix for ``frame`` (numbers imputed and, if ``scale``, standardised).

        Unknown categories become all-zero one-hot groups, with a warning naming them.
        ``scale=False, impute=False`` gives the input of an exported ONNX graph (NaN kept).
        """
        spec = self._fitted()
        frame = frame.set_axis([str(c) for c in frame.columns], axis=1)
        missing = [c for c in self.input_columns if c not in frame.columns]
        if missing:
            raise PreprocessingError(f"column(s) {_short_list(missing)} used by the model are "
                                     f"missing from the data")
        blocks = []
        date_cache: dict[str, dict] = {}
        for col in spec["columns"]:
            s = frame[col["name"]]
            if col["kind"] == "categorical":
                blocks.append(self._one_hot(col, s, warn))
                continue
            if col["kind"] == "text":
                from .apps.text_features import transform_text_column
                blocks.append(transform_text_column(col, s))
                continue
            if col["kind"] == "date":
                if col["name"] not in date_cache:
                    dates = s if col["format"] == "datetime" else _parse_dates(
                        s.astype("string"), col["format"])
                    date_cache[col["name"]] = _date_parts(dates)
                values = date_cache[col["name"]][col["part"]]
            else:
                try:
                    values = _pd().to_numeric(s, errors="raise").to_numpy(dtype=np.float64,
                                                                          na_value=np.nan)
                except (ValueError, TypeError):
                    bad = s[_pd().to_numeric(s, errors="coerce").isna() & s.notna()]
                    raise PreprocessingError(
                        f"column {col['name']!r} should hold numbers but row {bad.index[0]} "
                        f"has {bad.iloc[0]!r}") from None
            _reject_infinite(col["name"], values, s.index)
            if impute:
                values = np.where(np.isfinite(values), values, col["median"])
            if scale:
                values = (values - col["mean"]) / col["std"]
            blocks.append(values[:, None])
        return np.ascontiguousarray(np.hstack(blocks), dtype=np.float32)

    def _one_hot(self, col: dict, s, warn: bool) -> np.ndarray:
        names = list(col["categories"]) + ([OTHER] if col["other"] else []) + (
            [MISSING] if col["missing"] else [])
        index = {k: i for i, k in enumerate(names)}
        out = np.zeros((len(s), len(names)), np.float64)
        isna = s.isna().to_numpy()
        keys = [None if m else _category_key(v) for v, m in zip(s.to_numpy(), isna)]
        unknown: dict[str, int] = {}
        for row, key in enumerate(keys):
            if key is None:
                j = index.get(MISSING)
                key = MISSING
            else:
                j = index.get(key, index.get(OTHER))
            if j is None:
                unknown[key] = unknown.get(key, 0) + 1
            else:
                out[row, j] = 1.0
        if unknown and warn:
            shown = ", ".join(repr(k) for k in list(unknown)[:5])
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            warnings.warn(f"column {col['name']!r}: {sum(unknown.values())} value(s) of categories "
                          f"not seen in training ({shown}{more}) were ignored", UserWarning,
                          stacklevel=3)
        return out

    def transform_target(self, frame) -> np.ndarray:
        """The target as class indices (classification) or float32 numbers (regression)."""
        spec = self._fitted()
        target = spec["target"]
        if target is None:
            raise PreprocessingError("this preprocessor was fitted without a target column")
        if target not in frame.columns:
            raise PreprocessingError(f"target column {target!r} is not in the data")
        y = frame[target]
        if spec["task"] == "regression":
            return y.to_numpy(dtype=np.float32, na_value=np.nan)
        return self.encode_labels(y)

    def scale_target(self, y) -> np.ndarray:
        """Regression: the standardised target the network is trained on."""
        spec = self._fitted()
        return ((np.asarray(y, np.float64) - spec["target_mean"]) / spec["target_std"]).astype(np.float32)

    def unscale_target(self, pred) -> np.ndarray:
        """Regression: network outputs back in the target's units."""
        spec = self._fitted()
        return np.asarray(pred) * spec["target_std"] + spec["target_mean"]

    def encode_labels(self, y) -> np.ndarray:
        """Class labels -> indices into ``spec['classes']``; an unknown label is an error."""
        classes = self._fitted()["classes"]
        index = {_category_key(c): i for i, c in enumerate(classes)}
        out = np.empty(len(y), np.int64)
        for i, v in enumerate(np.asarray(y, dtype=object)):
            j = index.get(_category_key(v))
            if j is None:
                raise PreprocessingError(f"label {v!r} in row {i} was not seen in training "
                                         f"(classes: {_short_list([str(c) for c in classes])})")
            out[i] = j
        return out

    def decode_labels(self, indices) -> np.ndarray:
        """Class indices -> the original labels."""
        classes = np.asarray(self._fitted()["classes"])
        return classes[np.asarray(indices, dtype=np.int64)]

    def scaling(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per output column (median, mean, std) with identity values for one-hot columns.

        ``transform(frame)`` equals ``(transform(frame, scale=False) - mean) / std``; ONNX
        export folds this into the graph.
        """
        med, mean, std = [], [], []
        for col in self._fitted()["columns"]:
            if col["kind"] == "categorical":
                k = len(col["categories"]) + int(col["other"]) + int(col["missing"])
                med += [0.0] * k
                mean += [0.0] * k
                std += [1.0] * k
            elif col["kind"] == "text":
                k = len(col["tfidf"]["vocabulary"])
                med, mean, std = med + [0.0] * k, mean + [0.0] * k, std + [1.0] * k
            else:
                med.append(col["median"])
                mean.append(col["mean"])
                std.append(col["std"])
        return (np.array(med), np.array(mean), np.array(std))

    def describe(self) -> list[str]:
        """One human-readable line per input column."""
        lines = []
        for col in self._fitted()["columns"]:
            if col["kind"] == "numeric":
                lines.append(f"{col['name']}: numeric, median-imputed ({col['median']:.4g}), "
                             f"standardised (mean {col['mean']:.4g}, std {col['std']:.4g})")
            elif col["kind"] == "text":
                tf = col["tfidf"]
                lines.append(f"{col['name']}: text -> TF-IDF over {len(tf['vocabulary'])} words "
                             f"and word pairs (vocabulary and idf stored in the file)")
            elif col["kind"] == "categorical":
                extra = (" + <other>" if col["other"] else "") + (" + <missing>" if col["missing"] else "")
                lines.append(f"{col['name']}: one-hot, {len(col['categories'])} categories{extra}")
            elif col["part"] == DATE_PARTS[0]:
                lines.append(f"{col['name']}: date -> {', '.join(DATE_PARTS)} (numeric, standardised)")
        for d in self._fitted()["dropped"]:
            lines.append(f"{d['name']}: left out ({d['reason']})")
        return lines

    @classmethod
    def numeric(cls, feature_names: Sequence[str], mean: Any, std: Any, median: Any,
                target: str = "target", task: str = "classification", classes: Any = None,
                target_mean: float = 0.0, target_std: float = 1.0) -> "TabularPreprocessor":
        """A fitted recipe for all-numeric columns from statistics computed elsewhere (the
        scaler of ``neuralab train --dataset``): impute with ``median``, standardise.

        Example:
            >>> prep = TabularPreprocessor.numeric(["a", "b"], mean=[0, 1], std=[1, 2],
            ...                                    median=[0, 1], classes=["no", "yes"])
        """
        if task not in ("classification", "regression"):
            raise PreprocessingError(f"task must be 'classification' or 'regression', got {task!r}")
        names = [str(n) for n in feature_names]
        mean, std, median = (np.asarray(a, np.float64).ravel() for a in (mean, std, median))
        if not len(names) == len(mean) == len(std) == len(median):
            raise PreprocessingError(f"numeric: {len(names)} names but {len(mean)} means, "
                                     f"{len(std)} scales and {len(median)} medians")
        if len(set(names)) != len(names):
            raise PreprocessingError("numeric: feature names must be distinct")
        columns = [{"name": n, "kind": "numeric", "median": float(md), "mean": float(mu),
                    "std": float(sd) if sd > 1e-12 * max(abs(float(mu)), 1.0) else 1.0}
                   for n, mu, sd, md in zip(names, mean, std, median)]
        spec: dict[str, Any] = {"version": SPEC_VERSION, "target": target, "task": task,
                                "classes": None, "columns": columns, "dropped": [],
                                "feature_names": _feature_names(columns)}
        if task == "classification":
            spec["classes"] = [_py(c) for c in np.asarray(classes).tolist()]
        else:
            spec["target_mean"], spec["target_std"] = float(target_mean), float(target_std) or 1.0
        prep = cls(task=task)
        prep.spec = spec
        return prep

    # ------------------------------------------------------------------ (de)serialising
    def to_dict(self) -> dict:
        """The fitted recipe as plain data (what goes into the model file)."""
        return {"spec": self._fitted(), "features": self.features, "drop": self.drop,
                "task": self.task, "max_categories": self.max_categories, "text": self.text,
                "numeric_scale": self.numeric_scale, "categorical": self.categorical}

    @classmethod
    def from_dict(cls, data: dict) -> "TabularPreprocessor":
        """Rebuild a fitted preprocessor from ``to_dict()``'s output."""
        spec = data.get("spec") if isinstance(data, dict) else None
        if not isinstance(spec, dict) or spec.get("version") != SPEC_VERSION:
            raise PreprocessingError(f"unsupported preprocessing spec (expected version {SPEC_VERSION})")
        prep = cls(features=data.get("features"), drop=data.get("drop", ()), task=data.get("task"),
                   max_categories=data.get("max_categories", 50), text=data.get("text", ()),
                   numeric_scale=data.get("numeric_scale", "standard"),
                   categorical=data.get("categorical", ()))
        prep.spec = spec
        return prep


# ============================================================================ over MPI ranks
# Helpers of ``fit(..., comm=)``. Each is called by every rank in the same order (they hold
# collective calls), and every check that may fail compares all ranks' findings first, so
# that all ranks raise the same error together instead of one rank leaving the others
# waiting in a collective call.
def _total(value: int, comm: Any) -> int:
    return int(sum(comm.allgather(int(value))))


def _merged_counts(s, comm: Any) -> dict:
    from .distributed import merge_counts

    local = s.dropna().map(_category_key).value_counts(sort=False).to_dict()
    return merge_counts({str(k): int(v) for k, v in local.items()}, comm)


def _numeric_stats(values: np.ndarray, comm: Any) -> dict:
    """median, mean, std (as ``_scale``), min, max of every rank's values, NaN imputed."""
    from . import distributed as d

    finite = values[np.isfinite(values)]
    median = float(d.quantiles(finite, 0.5, comm)[0])
    filled = np.where(np.isfinite(values), values, median)
    mean, std = (float(v[0]) for v in d.mean_and_std(filled, comm))
    ends = comm.allgather([float(finite.min(initial=np.inf)), float(finite.max(initial=-np.inf)),
                           float(np.abs(filled).max(initial=0.0))])
    low, high = min(e[0] for e in ends), max(e[1] for e in ends)
    biggest = max(e[2] for e in ends)
    std = std if std > 1e-6 * max(biggest, 1.0) else 1.0
    return {"median": median, "mean": mean, "std": std, "min": low, "max": high}


def _reject_infinite_ranks(name: str, values: np.ndarray, index, comm: Any) -> None:
    inf = np.isinf(values)
    found = comm.allgather((int(inf.sum()), _py(index[int(inf.argmax())]) if inf.any() else None))
    total = sum(c for c, _ in found)
    if total:
        rank, (_, row) = next((r, f) for r, f in enumerate(found) if f[0])
        raise PreprocessingError(f"rank {rank} of {len(found)}: column {name!r} has {total} "
                                 f"infinite value(s) (first in row {row!r}); replace them, or "
                                 f"leave the cells empty to have them imputed")


def _infer_task_ranks(y, comm: Any) -> str:
    """``infer_task`` of every rank's target values together."""
    pd = _pd()
    y = y.dropna()
    numeric = pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y)
    if not all(comm.allgather(numeric)):
        return "classification"
    values = y.to_numpy(dtype=float)
    integer_valued = bool(np.all(np.isfinite(values)) and np.all(values == np.round(values)))
    uniq = np.unique(values)
    # more than 21 distinct values on one rank already decides: regression
    local = (len(values), integer_valued, uniq.tolist() if len(uniq) <= 21 else None)
    found = comm.allgather(local)
    n = sum(f[0] for f in found)
    if not all(f[1] for f in found) or any(f[2] is None for f in found):
        return "regression"
    n_unique = len(np.unique(np.concatenate([np.asarray(f[2], float) for f in found])))
    return "classification" if n_unique <= max(2, min(20, n // 2)) else "regression"


def _classes_ranks(y, comm: Any) -> list:
    """The sorted class labels of every rank's target values (as ``np.unique`` of them all)."""
    local = [_py(v) for v in np.unique(y.to_numpy())]
    return [_py(v) for v in np.unique(np.asarray([v for part in comm.allgather(local)
                                                  for v in part]))]


def _looks_like_dates_ranks(s, comm: Any) -> str | None:
    """``_looks_like_dates`` decided on the counts of every rank's values."""
    pd = _pd()
    values = s.dropna()
    if pd.api.types.is_datetime64_any_dtype(s):
        return "datetime"  # the kinds were agreed: every rank's column is datetime
    text = values.astype(str)
    n = _total(len(text), comm)
    digits = _total(int(text.str.contains(r"\d").sum()), comm)
    seps = _total(int(text.str.contains(r"[-/.: ]").sum()), comm)
    shaped = _total(int(_date_shaped(text).sum()), comm)
    if n == 0 or digits < n or seps < 0.9 * n or shaped < 0.9 * n:
        return None
    for fmt in ("ISO8601", "mixed"):
        if _total(int(_parse_dates(text, fmt).notna().sum()), comm) >= 0.9 * n:
            return fmt
    return None


def _kind(s) -> str:
    pd = _pd()
    if s.notna().sum() == 0:
        return "empty"
    if pd.api.types.is_bool_dtype(s):
        return "bool"
    if pd.api.types.is_numeric_dtype(s):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(s):
        return "datetime"
    return "text"


def _agree_kinds(frame, names: list[str], comm: Any):
    """``frame`` with each column read the same way on every rank.

    A CSV read in parts gives each rank its own pandas dtypes: a number column is text on
    a rank whose part holds one typo, and all-missing parts have no type. The ranks compare
    their kinds; a column that is numbers on every rank (text ranks: every cell parses) is
    made numeric everywhere; a few non-numbers among numbers are reported naming the rank
    and row, as ``_check_mostly_numeric`` does for one process; any other mix is text.
    """
    pd = _pd()
    frame = frame.copy()
    kinds = comm.allgather({n: _kind(frame[n]) for n in names})
    for name in names:
        seen = {k[name] for k in kinds} - {"empty"}
        s = frame[name]
        if len(seen) <= 1 and "text" not in seen:
            if seen and _kind(s) == "empty":  # an empty part takes the others' kind
                kind = seen.pop()
                frame[name] = (pd.to_numeric(s) if kind == "numeric" else
                               pd.to_datetime(s) if kind == "datetime" else s.astype(object))
            continue
        if seen <= {"numeric", "text"}:
            present = s.dropna()
            numbers = pd.to_numeric(present.astype(str).str.strip(), errors="coerce")
            bad = present[numbers.isna()]
            first = (_py(bad.index[0]), str(bad.iloc[0])) if len(bad) else None
            # whole numbers on this rank, and its non-numbers (if any) codes such as '136A'
            whole = numbers.dropna()
            codes = bool(np.all(whole == np.round(whole))
                         and bad.astype(str).str.strip().str.fullmatch(_CODE).all())
            found = comm.allgather((len(present), len(bad), first, codes))
            n_present, n_bad = sum(f[0] for f in found), sum(f[1] for f in found)
            if n_bad == 0:
                frame[name] = pd.to_numeric(s.astype(object).map(
                    lambda v: v.strip() if isinstance(v, str) else v))
                continue
            if n_bad < n_present and all(f[3] for f in found):  # ids: categories on every rank
                code = next(f[2][1] for f in found if f[2] is not None)
                frame.attrs.setdefault("notices", []).append(
                    f"column {name!r} holds whole numbers and codes such as {code!r}: read as "
                    f"categories (if they are numbers with typos, fix those cells)")
                frame[name] = s.astype(object)
                continue
            if n_present >= 5 and n_bad <= max(1, 0.1 * n_present):
                rank, (_, _, (row, value), _) = next((r, f) for r, f in enumerate(found) if f[1])
                raise PreprocessingError(
                    f"rank {rank} of {len(found)}: column {name!r} holds numbers except row "
                    f"{row} ({value!r}) and {n_bad - 1} more; fix them, leave the cells empty "
                    f"to impute them, or --drop {name}" if n_bad > 1 else
                    f"rank {rank} of {len(found)}: column {name!r} holds numbers except row "
                    f"{row} ({value!r}); fix it, leave the cell empty to impute it, or "
                    f"--drop {name}")
        frame[name] = s.astype(object)
    return frame


def _scale(values: np.ndarray) -> float:
    """The standard deviation, or 1 for a (nearly) constant column: dividing by a tiny std
    would turn the first unusual value at prediction time into a huge input."""
    std = float(values.std())
    return std if std > 1e-6 * max(float(np.abs(values).max(initial=0.0)), 1.0) else 1.0


_CODE = r"[A-Za-z]{0,3}\d+[A-Za-z]{0,3}"  # 136A, c168, 207a: an id with a letter


def _looks_like_codes(numbers, bad) -> bool:
    """Whole numbers with a few cells such as '136A' or 'c168': identifiers, not numbers with
    typos (a typo in a number column rarely keeps the digits whole and adds only letters)."""
    whole = numbers.dropna()
    return bool(len(whole) and np.all(whole == np.round(whole))
                and bad.astype(str).str.strip().str.fullmatch(_CODE).all())


def _check_mostly_numeric(name: str, s) -> str | None:
    """A text column whose cells are nearly all numbers holds a few typos: say which rows.
    Whole numbers with a few codes such as '136A' are identifiers: read as categories, and the
    returned note says so (None otherwise)."""
    pd = _pd()
    present = s.dropna()
    if len(present) < 5:
        return None
    numbers = pd.to_numeric(present.astype(str).str.strip(), errors="coerce")
    bad = present[numbers.isna()]
    if 0 < len(bad) and _looks_like_codes(numbers, bad):
        return (f"column {name!r} holds whole numbers and codes such as {str(bad.iloc[0])!r}: "
                f"read as categories (if they are numbers with typos, fix those cells)")
    if 0 < len(bad) <= max(1, 0.1 * len(present)):
        shown = ", ".join(f"row {i} ({v!r})" for i, v in list(bad.items())[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        comma = present.astype(str).str.fullmatch(r"\s*-?\d+,\d+\s*").mean() > 0.5
        hint = (" (decimal commas? use --decimal ,)" if comma else
                f"; fix them, leave the cells empty to impute them, or --drop {name}")
        raise PreprocessingError(f"column {name!r} holds numbers except {shown}{more}{hint}")
    text = present.astype(str)
    comma = text.str.fullmatch(r"\s*-?\d+,\d+\s*").mean()
    grouped = text.str.fullmatch(r"\s*-?\d{1,3}(,\d{3})+(\.\d+)?\s*|\s*-?\d{1,3}\s*")
    if grouped.all() and text.str.contains(",").any():  # 1,234 and 12,345,678: thousands
        raise PreprocessingError(f"column {name!r} holds numbers written with thousands "
                                 f"separators (e.g. {present.iloc[0]!r}); write them without "
                                 f"the commas (or use --decimal , if the comma is a decimal mark)")
    if comma > 0.5:
        raise PreprocessingError(f"column {name!r} holds numbers written with a decimal comma "
                                 f"(e.g. {present.iloc[0]!r}); use --decimal ,")


def _date_parts(dates) -> dict[str, np.ndarray]:
    dt = dates.dt
    return {part: getattr(dt, _DATE_ATTRS[part]).to_numpy(dtype=np.float64, na_value=np.nan)
            for part in DATE_PARTS}


def _feature_names(columns: list[dict]) -> list[str]:
    names = []
    for col in columns:
        if col["kind"] == "numeric":
            names.append(col["name"])
        elif col["kind"] == "date":
            names.append(f"{col['name']}.{col['part']}")
        elif col["kind"] == "text":
            from .apps.text_features import text_feature_names
            names.extend(text_feature_names(col))
        else:
            cats = list(col["categories"]) + ([OTHER] if col["other"] else []) + (
                [MISSING] if col["missing"] else [])
            names.extend(f"{col['name']}={c}" for c in cats)
    return names


def _short_list(items: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(repr(i) for i in list(items)[:limit])
    return f"[{shown}{', ...' if len(items) > limit else ''}]"



class TabularModel:
    """What ``neuralab train`` produces: a fitted preprocessor plus a fitted estimator.

    ``predict`` and ``predict_proba`` take a DataFrame with the training columns (extra
    columns are ignored) and return the original labels / class probabilities.

    Example:
        >>> model = nl.load("model.safetensors")      # saved by `neuralab train`
        >>> model.predict(pd.read_csv("new.csv"))[:3]
        array(['yes', 'no', 'no'], dtype=...)
    """

    def __init__(self, preprocessor: TabularPreprocessor, estimator: Any,
                 info: dict | None = None) -> None:
        self.preprocessor = preprocessor
        self.estimator = estimator
        self.info = dict(info or {})

    @property
    def task(self) -> str:
        return self.preprocessor.spec["task"]

    @property
    def classes(self) -> list | None:
        return self.preprocessor.spec.get("classes")

    def features(self, frame) -> np.ndarray:
        """The estimator's input matrix for ``frame``."""
        return self.preprocessor.transform(frame)

    def predict(self, frame) -> np.ndarray:
        """Predicted labels (classification) or values (regression) for each row."""
        out = self.estimator.predict(self.features(frame))
        if self.task == "classification":
            return self.preprocessor.decode_labels(out)
        return self.preprocessor.unscale_target(out)

    def predict_proba(self, frame) -> np.ndarray:
        """Class probabilities, one column per entry of ``classes``."""
        if self.task != "classification":
            raise PreprocessingError("predict_proba needs a classification model; this one "
                                     "does regression")
        return np.asarray(self.estimator.predict_proba(self.features(frame)))
