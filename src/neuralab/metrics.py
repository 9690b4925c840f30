"""Metrics that accumulate over mini-batches: accuracy, and for regression mse, mae, r2.

Each metric keeps running sums (in float64) so an epoch's value is exact over all its
samples, whatever the batch size; ``update`` takes the model's raw outputs as an array.

Example:
    >>> m = get_metric("accuracy")
    >>> m.update(np.array([[2.0, 0.1], [0.3, 0.9]]), np.array([0, 0])); m.result()
    0.5
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from . import backend

__all__ = ["Metric", "Accuracy", "MeanSquaredError", "MeanAbsoluteError", "R2", "get_metric"]


def _np(a: Any) -> np.ndarray:
    return backend.to_numpy(a)


def _weights(w: Any, n: int) -> np.ndarray:
    return np.ones(n) if w is None else _np(w).astype(np.float64).reshape(n)


class Metric:
    """A running metric: ``reset()``, ``update(output, target, sample_weight)``, ``result()``.

    Example: ``m = Accuracy(); m.update(logits, y); m.result()``
    """

    name = "metric"
    # the running sums that add up over batches (and over ranks, in data-parallel training)
    state_names: tuple[str, ...] = ("total", "count")

    def reset(self) -> None:
        """Forget everything seen (called at the start of each epoch).

        Example: ``metric.reset()``
        """
        self.total = 0.0
        self.count = 0.0

    def __init__(self) -> None:
        self.reset()

    def update(self, output: Any, target: Any, sample_weight: Any = None) -> None:  # pragma: no cover
        """Add one batch's outputs and targets (optionally weighted).

        Example: ``metric.update(logits, y_batch)``
        """
        raise NotImplementedError

    def result(self) -> float:
        """The metric over every batch since the last ``reset``.

        Example: ``metric.result()``
        """
        return self.total / self.count if self.count else float("nan")


class Accuracy(Metric):
    """Fraction of correct predictions from raw outputs.

    Several outputs: the arg-max class; one output: positive when above ``threshold``
    (0 for logits, 0.5 for probabilities). Targets may be labels or one-hot/probabilities.
    Example: ``Accuracy().update(logits, y)``
    """

    name = "accuracy"

    def __init__(self, threshold: float = 0.0) -> None:
        self.threshold = threshold
        super().__init__()

    def update(self, output: Any, target: Any, sample_weight: Any = None) -> None:
        out, t = _np(output), _np(target)
        n = len(out)
        if out.ndim == 2 and out.shape[1] > 1:
            pred = out.argmax(axis=1)
            t = t.argmax(axis=1) if t.ndim == 2 and t.shape[1] > 1 else t.reshape(n)
        else:
            pred = (out.reshape(n) > self.threshold).astype(np.int64)
            t = t.reshape(n)
        w = _weights(sample_weight, n)
        self.total += float(((pred == t) * w).sum())
        self.count += float(w.sum())


class MeanSquaredError(Metric):
    """Mean of (output - target)**2. Example: ``MeanSquaredError().update(pred, y)``"""

    name = "mse"

    def update(self, output: Any, target: Any, sample_weight: Any = None) -> None:
        out, t = _np(output).astype(np.float64), _np(target).astype(np.float64)
        d = (out - t.reshape(out.shape)).reshape(len(out), -1)
        w = _weights(sample_weight, len(out))
        self.total += float((self._err(d).mean(axis=1) * w).sum())
        self.count += float(w.sum())

    @staticmethod
    def _err(d: np.ndarray) -> np.ndarray:
        return d * d


class MeanAbsoluteError(MeanSquaredError):
    """Mean of |output - target|. Example: ``MeanAbsoluteError().update(pred, y)``"""

    name = "mae"

    @staticmethod
    def _err(d: np.ndarray) -> np.ndarray:
        return np.abs(d)


class R2(Metric):
    """Coefficient of determination 1 - SS_res / SS_tot, averaged over outputs (as sklearn).

    Example: ``R2().update(pred, y)``
    """

    name = "r2"
    state_names = ("sw", "sy", "syy", "sres")

    def reset(self) -> None:
        self.sw = 0.0
        self.sy = self.syy = self.sres = 0.0

    def update(self, output: Any, target: Any, sample_weight: Any = None) -> None:
        out = _np(output).astype(np.float64)
        out = out.reshape(len(out), -1)
        t = _np(target).astype(np.float64).reshape(out.shape)
        w = _weights(sample_weight, len(out))[:, None]
        # Sums are enough for the total sum of squares: SS_tot = sum(w y^2) - (sum(w y))^2 / sum(w)
        self.sw = self.sw + w.sum()
        self.sy = self.sy + (w * t).sum(axis=0)
        self.syy = self.syy + (w * t * t).sum(axis=0)
        self.sres = self.sres + (w * (t - out) ** 2).sum(axis=0)

    def result(self) -> float:
        if not self.sw:
            return float("nan")
        ss_tot = self.syy - self.sy ** 2 / self.sw
        ok = ss_tot > 1e-12 * np.maximum(self.syy, 1.0)
        r2 = np.where(ok, 1.0 - self.sres / np.where(ok, ss_tot, 1.0), 0.0)
        return float(np.mean(r2))


class FunctionMetric(Metric):
    """A user function ``fn(y_true, y_pred) -> float``, averaged over batches by size.

    Example: ``FunctionMetric(lambda y, p: float(np.median(np.abs(y - p))))``
    """

    def __init__(self, fn: Callable[[np.ndarray, np.ndarray], float]) -> None:
        self.fn = fn
        self.name = getattr(fn, "__name__", "metric")
        super().__init__()

    def update(self, output: Any, target: Any, sample_weight: Any = None) -> None:
        n = len(output)
        self.total += float(self.fn(_np(target), _np(output))) * n
        self.count += n


_METRICS = {"accuracy": Accuracy, "acc": Accuracy, "mse": MeanSquaredError,
            "mean_squared_error": MeanSquaredError, "mae": MeanAbsoluteError,
            "mean_absolute_error": MeanAbsoluteError, "r2": R2}


def get_metric(metric: str | Callable | Metric, threshold: float = 0.0) -> Metric:
    """A fresh Metric for a name ("accuracy", "mse", "mae", "r2"), a function or a Metric.

    Example: ``get_metric("r2").name  # 'r2'``
    """
    if isinstance(metric, Metric):
        return metric
    if isinstance(metric, str):
        cls = _METRICS.get(metric.lower())
        if cls is None:
            raise ValueError(f"unknown metric {metric!r}; expected one of "
                             f"{sorted(set(_METRICS))} or a function f(y_true, y_pred)")
        m = cls(threshold) if cls is Accuracy else cls()
        return m
    if callable(metric):
        return FunctionMetric(metric)
    raise TypeError(f"a metric must be a name or a function, got {type(metric).__name__}")
