"""Explanations: which inputs drove a prediction.

Native, exact gradient methods (neuralab has its own gradients): ``saliency``,
``gradient_x_input``, ``integrated_gradients`` and ``smoothgrad``; the model-agnostic
standards through their own libraries: ``shap_values`` (shap) and ``lime_explanation``
(lime); and global importance (``global_importance``: mean |attribution| next to
scikit-learn's permutation importance).

Every method takes an ``nn.Module`` or a fitted estimator (``MLPClassifier``,
``MLPRegressor``). For a classifier estimator the explained output is the predicted
probability of the target class; for a module it is the module's raw output.

Example:
    >>> clf = nl.MLPClassifier(hidden_layer_sizes=(16,)).fit(X, y)
    >>> att = nl.explain.integrated_gradients(clf, X[:5])
    >>> att.values.shape, float(abs(att.residual).max()) < 0.01
    ((5, 64), True)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from .backend import to_numpy
from .tensor import Tensor, no_grad


@dataclass
class Attributions:
    """Per-row, per-feature attributions for one output (class) per row.

    Attributes:
        values: array (n_rows, *input_shape) of attributions.
        target: the output index explained for each row.
        method: the method's name.
        feature_names: names of the input features, when known.
        residual: for integrated gradients, sum(values) - (f(x) - f(baseline)) per row
            (completeness says it is 0; its size shows the integral's error).
        outputs: f(x) for the explained target, per row.

    Example: ``nl.explain.saliency(model, X[:3]).top(2)``
    """

    values: np.ndarray
    target: np.ndarray
    method: str
    feature_names: list[str] | None = None
    residual: np.ndarray | None = None
    outputs: np.ndarray | None = None
    extra: dict = field(default_factory=dict)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.values if dtype is None else self.values.astype(dtype)

    def top(self, k: int = 5) -> list[list[tuple[str, float]]]:
        """The k features with the largest |attribution|, per row, as (name, value) pairs.

        Example: ``nl.explain.saliency(clf, X[:2]).top(3)``
        """
        flat = self.values.reshape(len(self.values), -1)
        names = self.feature_names or [f"x{i}" for i in range(flat.shape[1])]
        order = np.argsort(-np.abs(flat), axis=1)[:, :k]
        return [[(names[j], float(flat[i, j])) for j in row] for i, row in enumerate(order)]


# ============================================================================ model access
class _Explained:
    """A differentiable function X -> outputs (n, k) for a module or a fitted estimator."""

    def __init__(self, model: Any, output: str = "auto") -> None:
        from .nn import Module

        self.estimator = None
        if isinstance(model, Module):
            self.module = model
            kind = "identity"
        else:
            module = getattr(model, "model_", None)
            if not isinstance(module, Module):
                raise TypeError(f"explain needs an nn.Module or a fitted neuralab estimator, got "
                                f"{type(model).__name__} (is it fitted?)")
            self.module, self.estimator = module, model
            kind = getattr(model, "out_activation_", "identity")
        if output == "raw":
            kind = "identity"
        elif output not in ("auto", "probability"):
            raise ValueError(f"output must be 'auto', 'raw' or 'probability', got {output!r}")
        self.kind = kind
        self.feature_names = (list(map(str, model.feature_names_in_))
                              if hasattr(model, "feature_names_in_") else None)
        params = self.module.parameters()
        self.dtype = params[0].dtype if params else np.dtype(np.float32)

    def __call__(self, x: Tensor) -> Tensor:
        out = self.module(x)
        if out.ndim == 1:
            out = out.reshape(-1, 1)
        if self.kind == "softmax":
            return out.softmax(axis=1)
        if self.kind == "logistic":
            p = out.sigmoid()
            if out.shape[1] == 1:  # binary: explain P(class 0) and P(class 1) like predict_proba
                from .functional import concatenate
                return concatenate([1 - p, p], axis=1)
            return p
        return out

    def array(self, X: Any) -> np.ndarray:
        if hasattr(X, "to_numpy"):  # a pandas DataFrame
            X = X.to_numpy()
        X = np.asarray(X, dtype=self.dtype)
        if X.ndim == 1:
            X = X[None, :]
        if not np.all(np.isfinite(X)):
            bad = np.argwhere(~np.isfinite(X.reshape(len(X), -1)))[0]
            raise ValueError(f"explain: X contains NaN or infinity (first at row {bad[0]}, column {bad[1]})")
        return X

    def outputs(self, X: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        was = self.module.training
        self.module.eval()
        try:
            with no_grad():
                parts = [to_numpy(self(Tensor(X[i:i + batch_size])).data)
                         for i in range(0, len(X), batch_size)]
        finally:
            self.module.train(was)
        return np.concatenate(parts, axis=0)

    def gradients(self, X: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """d output[target] / d X for each row, and the outputs themselves."""
        was = self.module.training
        self.module.eval()
        # the weights are held fixed: no weight gradients are computed (most of a backward
        # pass's work) and none are left behind in the model's .grad
        params = self.module.parameters()
        frozen = [p.requires_grad for p in params]
        for p in params:
            p.requires_grad = False
        try:
            x = Tensor(X, requires_grad=True, dtype=X.dtype)
            out = self(x)
            picked = out[np.arange(len(X)), target]
            picked.sum().backward()
        finally:
            self.module.train(was)
            for p, flag in zip(params, frozen):
                p.requires_grad = flag
        return to_numpy(x.grad), to_numpy(picked.data)

    def targets(self, X: np.ndarray, target: Any) -> np.ndarray:
        if target is None:
            out = self.outputs(X)
            return out.argmax(axis=1) if out.shape[1] > 1 else np.zeros(len(X), dtype=np.int64)
        if self.estimator is not None and hasattr(self.estimator, "classes_"):
            classes = list(self.estimator.classes_)
            tgt = np.atleast_1d(np.asarray(target, dtype=object))
            if all(t in classes for t in tgt):  # class labels given: map to output columns
                idx = np.array([classes.index(t) for t in tgt])
                return np.broadcast_to(idx, (len(X),)).copy()
        idx = np.atleast_1d(np.asarray(target, dtype=np.int64))
        return np.broadcast_to(idx, (len(X),)).copy()


# ============================================================================ native methods
def saliency(model: Any, X: Any, target: Any = None, output: str = "auto") -> Attributions:
    """Input gradient d f_target / d x for each row (Simonyan et al. 2014).

    Example: ``nl.explain.saliency(clf, X[:5]).values``
    """
    f = _Explained(model, output)
    X = f.array(X)
    t = f.targets(X, target)
    grads, outs = f.gradients(X, t)
    return Attributions(grads, t, "saliency", f.feature_names, outputs=outs)


def gradient_x_input(model: Any, X: Any, target: Any = None, output: str = "auto") -> Attributions:
    """Gradient times input, x * d f_target / d x (Shrikumar et al. 2016).

    Example: ``nl.explain.gradient_x_input(model, X[:5]).values``
    """
    f = _Explained(model, output)
    X = f.array(X)
    t = f.targets(X, target)
    grads, outs = f.gradients(X, t)
    return Attributions(grads * X, t, "gradient_x_input", f.feature_names, outputs=outs)


def _path_integral(f: _Explained, X: np.ndarray, base: np.ndarray, t: np.ndarray, steps: int,
                   method: str, batch_size: int) -> np.ndarray:
    """(x - b) * the average gradient along the straight path from b to x, per row."""
    if method == "trapezoid":
        alphas = np.linspace(0.0, 1.0, steps + 1)
        weights = np.full(steps + 1, 1.0 / steps)
        weights[[0, -1]] *= 0.5
    elif method == "riemann":  # midpoints
        alphas = (np.arange(steps) + 0.5) / steps
        weights = np.full(steps, 1.0 / steps)
    else:
        raise ValueError(f"method must be 'riemann' or 'trapezoid', got {method!r}")
    diff = X - base
    avg = np.zeros(X.shape, dtype=np.float64)
    rows_per_batch = max(1, batch_size // len(alphas))
    for start in range(0, len(X), rows_per_batch):
        sl = slice(start, start + rows_per_batch)
        n = len(X[sl])
        # every row's path points in one batch: shape (n * len(alphas), *features)
        path = base[None] + alphas.reshape((1, -1) + (1,) * (X.ndim - 1)) * diff[sl][:, None]
        path = path.reshape((-1,) + X.shape[1:]).astype(X.dtype)
        grads, _ = f.gradients(path, np.repeat(t[sl], len(alphas)))
        grads = grads.reshape((n, len(alphas)) + X.shape[1:]).astype(np.float64)
        avg[sl] = np.tensordot(weights, grads, axes=([0], [1]))
    return diff * avg


def integrated_gradients(model: Any, X: Any, baseline: Any = None, target: Any = None,
                         steps: int = 50, batch_size: int = 4096, output: str = "auto",
                         method: str = "riemann", tolerance: float | None = 0.01,
                         max_steps: int = 4096) -> Attributions:
    """Integrated gradients (Sundararajan et al. 2017), batched over rows and path steps.

    Attribution_i = (x_i - b_i) * integral over a in [0, 1] of d f(b + a (x - b)) / d x_i,
    taken with ``steps`` midpoints (``method="riemann"``) or the trapezoid rule.
    Completeness: a row's attributions sum to f(x) - f(b). The difference is returned as
    ``residual``; rows whose residual exceeds ``tolerance`` * |f(x) - f(b)| are recomputed
    with twice the steps, up to ``max_steps`` (``tolerance=None`` turns this off). Saturated
    sigmoid and ReLU kinks along the path are what makes a fixed 50 steps miss 1% at times.

    Args:
        baseline: None (zeros), a number, or an array broadcastable to one row.
        target: output column (or class label) per row; None picks the predicted class.

    Example:
        >>> att = nl.explain.integrated_gradients(clf, X[:3])
        >>> bool(np.abs(att.residual).max() < 0.01), att.extra["steps"]
        (True, array([50, 50, 50]))
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    f = _Explained(model, output)
    X = f.array(X)
    t = f.targets(X, target)
    base = np.zeros_like(X[:1]) if baseline is None else np.broadcast_to(
        np.asarray(baseline, dtype=X.dtype), X.shape[1:])[None].copy()
    rows = np.arange(len(X))
    out_x = f.outputs(X)[rows, t]
    out_b = f.outputs(np.broadcast_to(base, X.shape).copy())[rows, t]
    gap = out_x - out_b
    values = _path_integral(f, X, base, t, steps, method, batch_size)
    used = np.full(len(X), steps)
    residual = values.reshape(len(X), -1).sum(axis=1) - gap
    while tolerance is not None:
        bad = np.abs(residual) > tolerance * np.abs(gap) + 1e-7
        if not bad.any() or steps * 2 > max_steps:
            break
        steps *= 2
        values[bad] = _path_integral(f, X[bad], base, t[bad], steps, method, batch_size)
        used[bad] = steps
        residual[bad] = values[bad].reshape(int(bad.sum()), -1).sum(axis=1) - gap[bad]
    return Attributions(values, t, "integrated_gradients", f.feature_names, residual=residual,
                        outputs=out_x, extra={"baseline_outputs": out_b, "steps": used})


def smoothgrad(model: Any, X: Any, target: Any = None, noise: float = 0.15, samples: int = 25,
               random_state: int | None = 0, output: str = "auto") -> Attributions:
    """SmoothGrad (Smilkov et al. 2017): saliency averaged over noisy copies of each row.

    ``noise`` is the noise's standard deviation as a fraction of each row's value range.
    Example: ``nl.explain.smoothgrad(model, X[:5], samples=50).values``
    """
    f = _Explained(model, output)
    X = f.array(X)
    t = f.targets(X, target)
    rng = np.random.default_rng(random_state)
    flat = X.reshape(len(X), -1)
    sigma = noise * (flat.max(axis=1) - flat.min(axis=1)).reshape((-1,) + (1,) * (X.ndim - 1))
    total = np.zeros(X.shape, dtype=np.float64)
    for _ in range(samples):
        noisy = (X + rng.standard_normal(X.shape) * sigma).astype(X.dtype)
        grads, _ = f.gradients(noisy, t)
        total += grads
    return Attributions(total / samples, t, "smoothgrad", f.feature_names)


METHODS: dict[str, Callable[..., Attributions]] = {
    "saliency": saliency, "gradient_x_input": gradient_x_input,
    "integrated_gradients": integrated_gradients, "ig": integrated_gradients,
    "smoothgrad": smoothgrad,
}


# ============================================================================ SHAP and LIME
def _require(module: str, extra: str = "explain"):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"{module} is not installed; install it with: "
                          f"pip install 'neuralab[{extra}]'") from None


def _predict_fn(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    f = _Explained(model)
    return lambda A: f.outputs(f.array(A))


def _background(X: np.ndarray, k: int, random_state: int) -> np.ndarray:
    """A k-means summary of the data (k weighted centroids), as SHAP recommends."""
    if len(X) <= k:
        return X
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, n_init=3, random_state=random_state).fit(X).cluster_centers_


def shap_values(model: Any, X: Any, background: Any = None, max_evals: int | str = "auto",
                k: int = 10, target: Any = None, random_state: int = 0) -> Attributions:
    """SHAP values through ``shap.Explainer`` on the model's probability or regression output.

    Args:
        background: reference data; its k-means summary (``k`` centroids) is the masker's
            background. Defaults to X itself when not given (pass training data when you can).
        max_evals: model evaluations per row for the permutation explainer.

    Example: ``nl.explain.shap_values(clf, X_test[:10], background=X_train)``
    """
    shap = _require("shap")
    f = _Explained(model)
    X = f.array(X)
    bg = _background(f.array(background) if background is not None else X, k, random_state)
    masker = shap.maskers.Independent(bg, max_samples=len(bg))
    # The permutation algorithm: model-agnostic, exact for additive models, and it avoids the
    # exact explainer's numba compilation (about 30 s on the first call).
    explainer = shap.Explainer(lambda A: f.outputs(np.asarray(A, dtype=f.dtype)), masker,
                               algorithm="permutation", feature_names=f.feature_names,
                               seed=random_state)
    n_features = X.shape[1]
    evals = max_evals if max_evals != "auto" else max(2 * n_features + 1, 500)
    result = explainer(X, max_evals=evals, silent=True)
    vals = np.asarray(result.values)  # (n, features) or (n, features, outputs)
    t = f.targets(X, target)
    if vals.ndim == 3:
        vals = vals[np.arange(len(X)), :, t]
    return Attributions(vals, t, "shap", f.feature_names,
                        extra={"base_values": np.asarray(result.base_values)})


def lime_explanation(model: Any, X_row: Any, training_data: Any, num_features: int = 10,
                     target: Any = None, num_samples: int = 2000, random_state: int = 0,
                     feature_names: Sequence[str] | None = None) -> list:
    """A LIME explanation of one row through ``lime.lime_tabular``: (feature rule, weight) pairs.

    Example: ``nl.explain.lime_explanation(clf, X_test[0], X_train, num_features=5)``
    """
    lime_tabular = _require("lime.lime_tabular")
    f = _Explained(model)
    row = f.array(X_row)[0]
    train = f.array(training_data)
    mode = "regression" if f.kind == "identity" else "classification"
    explainer = lime_tabular.LimeTabularExplainer(
        train, mode=mode, random_state=random_state,
        feature_names=list(feature_names or f.feature_names or [f"x{i}" for i in range(train.shape[1])]),
        discretize_continuous=False)
    if mode == "classification":
        t = int(f.targets(row[None], target)[0])
        exp = explainer.explain_instance(row, _predict_fn(model), labels=(t,),
                                         num_features=num_features, num_samples=num_samples)
        return exp.as_list(label=t)
    predict = _predict_fn(model)
    exp = explainer.explain_instance(row, lambda A: predict(A)[:, 0], num_features=num_features,
                                     num_samples=num_samples)
    return exp.as_list()


# ============================================================================ global importance
def global_importance(model: Any, X: Any, y: Any = None, method: str = "integrated_gradients",
                      n_repeats: int = 5, random_state: int = 0, **kwargs: Any) -> list[dict]:
    """Mean |attribution| per feature over X, next to permutation importance when y is given.

    Rows of the result are sorted by mean |attribution| and hold ``feature``,
    ``mean_abs_attribution`` and (with y and an estimator) ``permutation_importance`` and
    its ``permutation_std``, from scikit-learn's ``permutation_importance``.

    Example: ``nl.explain.global_importance(clf, X_test, y_test)[:3]``
    """
    try:
        explain = METHODS[method]
    except KeyError:
        raise ValueError(f"unknown method {method!r}; expected one of {sorted(METHODS)}") from None
    att = explain(model, X, **kwargs)
    flat = np.abs(att.values.reshape(len(att.values), -1)).mean(axis=0)
    names = att.feature_names or [f"x{i}" for i in range(len(flat))]
    rows = [{"feature": n, "mean_abs_attribution": float(v)} for n, v in zip(names, flat)]
    if y is not None and hasattr(model, "predict"):
        from sklearn.inspection import permutation_importance

        perm = permutation_importance(model, X, y, n_repeats=n_repeats, random_state=random_state)
        for row, m, s in zip(rows, perm.importances_mean, perm.importances_std):
            row["permutation_importance"] = float(m)
            row["permutation_std"] = float(s)
    return sorted(rows, key=lambda r: -r["mean_abs_attribution"])


def group_by_source(values: np.ndarray, sources: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Sum attribution columns that come from the same source column (one-hot groups).

    Example: ``group_by_source(att.values, ["age", "city", "city"])  # 2 columns``
    """
    names: list[str] = []
    for s in sources:
        if s not in names:
            names.append(s)
    out = np.zeros((values.shape[0], len(names)), dtype=np.float64)
    for j, s in enumerate(sources):
        out[:, names.index(s)] += values[:, j]
    return out, names
