"""Hyperparameter search for neuralab's estimators: grid or random, locally or on a Dask cluster.

A thin layer over scikit-learn's ``GridSearchCV``/``RandomizedSearchCV``: it parses parameter
ranges written on the command line or in a TOML file, runs the search with ``n_jobs`` local
processes or on a Dask cluster through joblib's Dask backend, and ranks the results.

Range syntax (``--param NAME=SPEC``):
    ``64,128``            a list of values (``64-64`` is the tuple (64, 64) for hidden_layer_sizes)
    ``1e-4:1e-2:log``     log-uniform between the two (random search) or 5 log-spaced points (grid)
    ``0:0.5``             uniform, same rule; ``0:0.5:lin:3`` asks for 3 grid points
    ``1:10:int``          integers in [1, 10]

``TABULAR_SPACE`` is the space of ``neuralab tune --preset tabular`` (``tabular_space``).

Example:
    >>> space = parse_params(["hidden_layer_sizes=64,128", "alpha=1e-4:1e-2:log"])
    >>> search = run_search(nl.MLPClassifier(max_iter=10), space, X, y, method="random", n_iter=4)
    >>> print(ranked_table(search))
    rank     score    ± std   fit s  params
       1 ...
    >>> search = run_search(nl.MLPClassifier(), space, X, y, method="random", n_iter=64,
    ...                     scheduler="tcp://HOST:8786")   # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

_GRID_POINTS = 5

# The space `neuralab tune --preset tabular` searches at random for a TabularClassifier /
# TabularRegressor, per task, in --param's syntax (docs/tabular.md, "Tuning"). Centred on
# the RealMLP-TD defaults the estimators use (lr 0.04 / 0.2, 3 x 256 units, dropout 0.15,
# weight decay 0.02, label smoothing 0.1). For comparison, RealMLP-HPO's space (Holzmüller
# et al., NeurIPS 2024; pytabkit's "default" space): lr log-uniform in [0.02, 0.3]; hidden
# [256]*3 (p 0.6), [64]*5 (0.2) or [512] (0.2); dropout 0, 0.15, 0.3 (p 0.3, 0.5, 0.2);
# weight decay 0 or 0.02; label smoothing 0 (p 0.3) or 0.1 (p 0.7), classification only;
# activation ReLU, SELU or Mish; numeric embeddings none, PL, PLR or PBLD; the front scale
# layer on with p 0.6; PLR sigma log-uniform in [0.05, 0.5]; 256 epochs, not tuned.
# Epochs are not searched here either: they are the budget (--max-iter), and the best
# validation epoch is kept whatever the budget.
TABULAR_SPACE: dict[str, dict[str, str]] = {
    "classification": {
        "lr": "0.01:0.15:log",
        "hidden": "128-128-128,256-256-256,512-512-512",
        "dropout": "0:0.3",
        "weight_decay": "0:0.05",
        "label_smoothing": "0:0.2",
        "periodic": "true,false",
        "ple_bins": "0,16",
    },
    "regression": {
        "lr": "0.05:0.5:log",
        "hidden": "128-128-128,256-256-256,512-512-512",
        "dropout": "0:0.3",
        "weight_decay": "0:0.05",
        "periodic": "true,false",
        "ple_bins": "0,16",
    },
}
TABULAR_EPOCHS = 32  # epochs per fit with --preset tabular (the estimators' "fast" preset)
TABULAR_N_ITER = 8   # candidates: 8 x 3 folds + 1 refit = 25 fits


def _scalar(text: str) -> Any:
    """'64' -> 64, '1e-3' -> 0.001, 'true' -> True, '64-32' -> (64, 32), else the string."""
    t = text.strip()
    low = t.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    if "-" in t[1:] and all(p.strip().isdigit() for p in t.split("-")):
        return tuple(int(p) for p in t.split("-"))
    for cast in (int, float):
        try:
            return cast(t)
        except ValueError:
            pass
    return t


def parse_range(name: str, spec: Any) -> dict:
    """One parameter's range: {"values": [...]} or {"low", "high", "scale", "points"}.

    Example: ``parse_range("alpha", "1e-4:1e-2:log")  # {'low': 0.0001, 'high': 0.01, 'scale': 'log', ...}``
    """
    if isinstance(spec, (list, tuple)):
        values = [tuple(v) if isinstance(v, list) else v for v in spec]
        return {"values": _fix_hidden(name, values)}
    if not isinstance(spec, str):
        return {"values": _fix_hidden(name, [spec])}
    if ":" in spec:
        parts = spec.split(":")
        if len(parts) < 2 or len(parts) > 4:
            raise ValueError(f"--param {name}: range {spec!r} must be LOW:HIGH[:log|lin|int[:POINTS]]")
        try:
            low, high = float(parts[0]), float(parts[1])
        except ValueError:
            raise ValueError(f"--param {name}: LOW and HIGH of {spec!r} must be numbers") from None
        scale = parts[2] if len(parts) > 2 else "lin"
        if scale not in ("log", "lin", "int"):
            raise ValueError(f"--param {name}: scale {scale!r} must be 'log', 'lin' or 'int'")
        if not low < high:
            raise ValueError(f"--param {name}: LOW must be below HIGH in {spec!r}")
        if scale == "log" and low <= 0:
            raise ValueError(f"--param {name}: a log range needs LOW > 0, got {low}")
        points = int(parts[3]) if len(parts) > 3 else _GRID_POINTS
        return {"low": low, "high": high, "scale": scale, "points": points}
    return {"values": _fix_hidden(name, [_scalar(v) for v in spec.split(",")])}


def _fix_hidden(name: str, values: list) -> list:
    # hidden_layer_sizes=64,128 means two candidates, (64,) and (128,), not one net.
    if name in ("hidden_layer_sizes", "hidden"):
        return [(v,) if isinstance(v, int) else tuple(v) for v in values]
    return values


def tabular_space(task: str) -> dict[str, dict]:
    """``TABULAR_SPACE`` of ``task`` ("classification" or "regression"), parsed.

    Example: ``tabular_space("regression")["lr"]  # {'low': 0.05, 'high': 0.5, 'scale': 'log', ...}``
    """
    if task not in TABULAR_SPACE:
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    return {name: parse_range(name, spec) for name, spec in TABULAR_SPACE[task].items()}


def parse_params(items: list[str]) -> dict[str, dict]:
    """Parse ``NAME=SPEC`` strings into a search space. Example: ``parse_params(["alpha=1e-4:1e-2:log"])``"""
    space = {}
    for item in items:
        name, sep, spec = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--param {item!r}: expected NAME=VALUES, e.g. alpha=1e-4:1e-2:log")
        space[name.strip()] = parse_range(name.strip(), spec.strip())
    return space


def load_toml(path: str) -> dict:
    """Read a search description from TOML: ``[params]`` ranges plus optional settings.

    Example file::

        search = "random"      # or "grid"
        n_iter = 10
        cv = 3
        [fixed]
        max_iter = 50
        [params]
        hidden_layer_sizes = [[64], [128], [64, 64]]
        alpha = "1e-4:1e-2:log"
    """
    import tomllib  # noqa: PLC0415  (Python 3.11+)

    with open(path, "rb") as f:
        doc = tomllib.load(f)
    params = doc.get("params")
    if not isinstance(params, dict) or not params:
        raise ValueError(f"{path}: needs a [params] table with at least one parameter range")
    doc["params"] = {k: parse_range(k, v) for k, v in params.items()}
    return doc


def to_sklearn(space: dict[str, dict], method: str) -> dict[str, Any]:
    """Turn parsed ranges into a ``param_grid`` (lists) or ``param_distributions`` (scipy.stats)."""
    import numpy as np  # noqa: PLC0415
    from scipy import stats  # noqa: PLC0415

    out: dict[str, Any] = {}
    for name, r in space.items():
        if "values" in r:
            out[name] = list(r["values"])
        elif method == "grid":
            if r["scale"] == "int":
                pts = np.unique(np.linspace(r["low"], r["high"], r["points"]).round().astype(int))
                out[name] = [int(v) for v in pts]
            else:
                space_fn = np.geomspace if r["scale"] == "log" else np.linspace
                out[name] = [float(v) for v in space_fn(r["low"], r["high"], r["points"])]
        elif r["scale"] == "log":
            out[name] = stats.loguniform(r["low"], r["high"])
        elif r["scale"] == "int":
            out[name] = stats.randint(int(r["low"]), int(r["high"]) + 1)
        else:
            out[name] = stats.uniform(r["low"], r["high"] - r["low"])
    return out


@contextlib.contextmanager
def dask_backend(scheduler: str | None, n_workers: int = 2, processes: bool = True) -> Iterator[Any]:
    """Run joblib work (and so sklearn's searches) on Dask while inside the block.

    ``scheduler``: None (no Dask: local ``n_jobs``), ``"local"`` (start a LocalCluster of
    ``n_workers`` and shut it down on exit) or an address such as ``"tcp://HOST:8786"``.
    Example: ``with dask_backend("tcp://10.0.0.5:8786"): search.fit(X, y)``
    """
    if scheduler is None:
        yield None
        return
    import joblib  # noqa: PLC0415
    from distributed import Client, LocalCluster  # noqa: PLC0415

    cluster = None
    if scheduler == "local":
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=processes,
                               dashboard_address=None)
        client = Client(cluster)
    else:
        client = Client(scheduler, timeout="20s")
    try:
        with joblib.parallel_backend("dask"):
            yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def check_names(estimator: Any, space: dict) -> None:
    """Raise ValueError naming the parameters of ``space`` that ``estimator`` does not have.

    Example: ``check_names(nl.MLPClassifier(), {"alpha": {...}})  # passes``
    """
    unknown = sorted(set(space) - set(estimator.get_params()))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} for {type(estimator).__name__}; "
                         f"valid ones: {sorted(estimator.get_params())}")


def run_search(estimator: Any, space: dict[str, dict], X: Any, y: Any, method: str = "grid",
               n_iter: int = 10, cv: int = 3, n_jobs: int | None = None,
               scheduler: str | None = None, random_state: int = 0, verbose: int = 0,
               scoring: Any = None, shuffle: bool = False) -> Any:
    """Fit a GridSearchCV or RandomizedSearchCV over ``space`` and return it (``best_estimator_`` etc.).

    ``shuffle=True`` shuffles the rows (seeded by ``random_state``) before cutting ``cv``
    folds (stratified for a classifier): a file sorted by some column otherwise gives folds
    that each hold one kind of row.
    Example: ``run_search(nl.MLPClassifier(), parse_params(["alpha=1e-4,1e-3"]), X, y)``
    """
    from sklearn.base import is_classifier  # noqa: PLC0415
    from sklearn.model_selection import (GridSearchCV, KFold, RandomizedSearchCV,  # noqa: PLC0415
                                         StratifiedKFold)

    if method not in ("grid", "random"):
        raise ValueError(f"method must be 'grid' or 'random', got {method!r}")
    check_names(estimator, space)
    params = to_sklearn(space, method)
    if shuffle and isinstance(cv, int):
        folds = StratifiedKFold if is_classifier(estimator) else KFold
        cv = folds(cv, shuffle=True, random_state=random_state)
    if scheduler is not None and n_jobs is None:
        n_jobs = -1  # every Dask worker
    if method == "grid":
        search = GridSearchCV(estimator, params, cv=cv, n_jobs=n_jobs, verbose=verbose, scoring=scoring)
    else:
        search = RandomizedSearchCV(estimator, params, n_iter=n_iter, cv=cv, n_jobs=n_jobs,
                                    verbose=verbose, random_state=random_state, scoring=scoring)
    with dask_backend(scheduler):
        try:
            search.fit(X, y)
        except ValueError as e:
            raise _first_failure(e) from None
    return search


def _first_failure(e: ValueError) -> ValueError:
    """sklearn's "All the N fits failed" (with every traceback pasted in) as one line: the
    error the fits raised."""
    text = str(e)
    if "fits failed" not in text:
        return e
    import re  # noqa: PLC0415
    found = re.findall(r"^\w*(?:Error|Exception): (.+)$", text, flags=re.MULTILINE)
    return ValueError(f"every fit failed: {found[-1].strip()}" if found else
                      " ".join(text.split()[:40]))


def plain(value: Any) -> str:
    """A parameter value as a user writes it: 0.00123, (64, 32), 'relu' (no NumPy reprs).

    Example: ``plain(np.float64(0.5))  # '0.5'``
    """
    if hasattr(value, "item") and not hasattr(value, "__len__"):
        value = value.item()
    if isinstance(value, tuple):
        return "(" + ", ".join(plain(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, float):
        return f"{value:.6g}"
    return repr(value)


def ranked_table(search: Any, top: int | None = None) -> str:
    """The candidates, best first: rank, mean and std of the CV score, fit time, parameters."""
    res = search.cv_results_
    order = sorted(range(len(res["params"])), key=lambda i: res["rank_test_score"][i])
    lines = [f"{'rank':>4}  {'score':>8}  {'± std':>7}  {'fit s':>6}  params"]
    for i in order[:top]:
        params = ", ".join(f"{k}={plain(v)}" for k, v in sorted(res["params"][i].items()))
        lines.append(f"{res['rank_test_score'][i]:>4}  {res['mean_test_score'][i]:8.4f}  "
                     f"{res['std_test_score'][i]:7.4f}  {res['mean_fit_time'][i]:6.2f}  {params}")
    return "\n".join(lines)


def load_builtin(name: str):
    """(X, y, task) of a built-in data set (``datasets.list_datasets()``; train and test parts
    together: cross-validation splits them), features standardised for the MLP.

    Example: ``X, y, task = load_builtin("iris")``
    """
    import numpy as np  # noqa: PLC0415

    from . import datasets  # noqa: PLC0415
    from .data import StandardScaler  # noqa: PLC0415

    data = datasets.load(name)
    parts = [(data.X_train, data.y_train)] + ([] if data.X_test is None else [(data.X_test, data.y_test)])
    X = np.concatenate([np.asarray(x, np.float64).reshape(len(x), -1) for x, _ in parts])
    y = np.concatenate([np.asarray(t) for _, t in parts])
    if data.task == "regression":
        y = (y - y.mean()) / (y.std() or 1.0)
    return StandardScaler().fit_transform(X), y, data.task


def load_file(path: str, target: str) -> tuple[Any, Any, str, Any]:
    """(X, y, task, preprocessor) from a CSV/TSV/Parquet file, preprocessed as `neuralab train`.

    The preprocessing (imputation, scaling, one-hot) is fitted on the whole table before the
    cross-validation, a small optimism in the CV scores that the final model does not have.
    Example: ``X, y, task, prep = load_file("houses.csv", "price")``
    """
    from .data import read_table  # noqa: PLC0415
    from .preprocessing import TabularPreprocessor  # noqa: PLC0415

    frame = read_table(path)
    prep = TabularPreprocessor().fit(frame, target=target)
    frame = frame[frame[target].notna()]
    X, y = prep.transform(frame), prep.transform_target(frame)
    task = prep.spec["task"]
    if task == "regression":
        y = prep.scale_target(y)
    return X, y, task, prep


def load_table(source: str, target: str | None = None) -> tuple[Any, Any, str]:
    """(X, y, task) as raw columns, for the tabular estimators: a file (DATA, ``target``) read
    as `neuralab train` reads it, or a built-in data set's name (its 'target' column).

    Rows without a target are left out; X is the rest of the table, unprocessed. The task is
    the data set's, or inferred from the target as `neuralab train` infers it.
    Example: ``X, y, task = load_table("houses.csv", "price")``
    """
    from . import datasets  # noqa: PLC0415
    from .data import check_target, read_table  # noqa: PLC0415
    from .preprocessing import infer_task  # noqa: PLC0415

    frame = read_table(source)
    frame = frame.set_axis([str(c) for c in frame.columns], axis=1)
    builtin = target is None
    target = "target" if builtin else target
    check_target(frame, target, source)
    frame = frame[frame[target].notna()]
    if len(frame) == 0:
        raise ValueError(f"target column {target!r} has no values (every row is missing it)")
    X, y = frame.drop(columns=[target]), frame[target]
    task = datasets.task(source) if builtin else infer_task(y)
    return X, y.to_numpy(), task
