"""The kernels of ``numpy_ref``, compiled with numba: one pass over memory per step.

Each kernel is a ``_span`` loop over elements ``lo:hi`` doing, per element, exactly the
operations of its NumPy twin in the same order (no ``fastmath``: no reassociation, no fused
multiply-add), so the bits are the same. Large arrays are cut into ``CHUNK``-sized spans
run on numba's threads (``prange``); since every element is computed on its own, the bits
do not depend on the thread count or on the cut.

Imported only by ``kernels.get`` (numba is heavy to import); ``cache=True`` keeps the
machine code on disk, so a second process loads it instead of compiling.

Example:
    >>> import numpy as np
    >>> from neuralab.kernels import numba_impl, numpy_ref
    >>> w, g, acc = np.ones(3), np.ones(3), np.zeros(3)
    >>> numba_impl.adagrad(w, g, acc, *numpy_ref.scalars(w.dtype, 0.5, 0.0, 0.0))
    >>> w
    array([0.5, 0.5, 0.5])
"""
from __future__ import annotations

from typing import Any

import numba
import numpy as np
from numba import prange

__all__ = ["sgd", "adam", "rmsprop", "adagrad", "PARALLEL_FROM", "CHUNK"]

# NOTE: waking numba's threads costs ~20 us on a quiet machine and ~10 ms on a loaded one
# (a 24-value Adam step: 1.7 us on the calling thread, 10 ms median with 2 threads at load
# 5.7); from about this many values a second thread pays for itself (100k values: 41 us on
# one thread, 23 us on two). Smaller arrays run on the calling thread.
PARALLEL_FROM = 1 << 17
CHUNK = 1 << 14  # values per parallel span: 64 KiB of float32 per array, cache-sized

# NOTE: each span slices its arrays and loops from 0: with ``range(lo, hi)`` numba keeps
# its negative-index check in the loop and LLVM does not vectorize it (SGD momentum on the
# wide net: 7.3 ms a step vs 0.75 ms). error_model="numpy": a division by zero gives inf
# or NaN, as in NumPy, instead of Python's check-and-raise, which also stops vectorizing.
_span = numba.njit(cache=True, error_model="numpy")
_parallel = numba.njit(parallel=True, cache=True, error_model="numpy")


# ----------------------------------------------------------------------------- SGD
# NOTE: NumPy makes one pass over memory (often with a temporary) per operation: momentum
# SGD is 4-6 passes, Adam about 12. Fused, a step reads and writes each array once
# (measured on the wide net: benchmarks/README.md, "Fused kernels").
@_span
def _sgd_span(lo, hi, w, g, buf, lr, wd, momentum, damp, nesterov, first):  # noqa: ANN001, ANN202
    w, g, buf = w[lo:hi], g[lo:hi], buf[lo:hi]
    for i in range(w.size):
        d = g[i] + wd * w[i] if wd else g[i]
        if momentum:
            b = d if first else momentum * buf[i] + damp * d
            buf[i] = b
            d = d + momentum * b if nesterov else b
        w[i] = w[i] - lr * d


@_parallel
def _sgd_parallel(w, g, buf, lr, wd, momentum, damp, nesterov, first):  # noqa: ANN001, ANN202
    n = w.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        _sgd_span(c * CHUNK, min(n, (c + 1) * CHUNK), w, g, buf, lr, wd, momentum, damp,
                  nesterov, first)


def sgd(w: Any, *args: Any) -> None:
    """numpy_ref.sgd, fused (same arguments).

    Example: ``sgd(w, g, buf, lr, wd, momentum, damp, nesterov, first)``
    """
    # NOTE: the size test is repeated in each wrapper rather than shared: a shared helper
    # would be one more Python call per parameter and step, which small nets feel
    if w.size < PARALLEL_FROM:
        _sgd_span(0, w.size, w, *args)
    else:
        _sgd_parallel(w, *args)


# ----------------------------------------------------------------------------- Adam
@_span
def _adam_span(lo, hi, w, g, m, v, vmax, step_size, b1, omb1, b2, omb2, eps_c, wd, decay,  # noqa: ANN001, ANN202
               amsgrad):
    w, g, m, v, vmax = w[lo:hi], g[lo:hi], m[lo:hi], v[lo:hi], vmax[lo:hi]
    for i in range(w.size):
        wi = w[i] * decay if decay != 1 else w[i]
        d = g[i] + wd * wi if wd else g[i]
        mi = b1 * m[i] + omb1 * d
        vi = b2 * v[i] + omb2 * (d * d)
        m[i] = mi
        v[i] = vi
        if amsgrad:
            vi = vi if (vi > vmax[i] or vi != vi) else vmax[i]  # np.maximum: NaN wins
            vmax[i] = vi
        w[i] = wi - step_size * (mi / (np.sqrt(vi) + eps_c))


@_parallel
def _adam_parallel(w, g, m, v, vmax, step_size, b1, omb1, b2, omb2, eps_c, wd, decay,  # noqa: ANN001, ANN202
                   amsgrad):
    n = w.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        _adam_span(c * CHUNK, min(n, (c + 1) * CHUNK), w, g, m, v, vmax, step_size, b1, omb1,
                   b2, omb2, eps_c, wd, decay, amsgrad)


def adam(w: Any, *args: Any) -> None:
    """numpy_ref.adam, fused (same arguments).

    Example: ``adam(w, g, m, v, vmax, step_size, b1, omb1, b2, omb2, eps_c, wd, decay, False)``
    """
    if w.size < PARALLEL_FROM:
        _adam_span(0, w.size, w, *args)
    else:
        _adam_parallel(w, *args)


# ----------------------------------------------------------------------------- RMSprop
@_span
def _rmsprop_span(lo, hi, w, g, sq, ga, buf, lr, wd, alpha, oma, eps, momentum, centered):  # noqa: ANN001, ANN202
    w, g, sq, ga, buf = w[lo:hi], g[lo:hi], sq[lo:hi], ga[lo:hi], buf[lo:hi]
    for i in range(w.size):
        d = g[i] + wd * w[i] if wd else g[i]
        s = alpha * sq[i] + oma * (d * d)
        sq[i] = s
        if centered:
            a = alpha * ga[i] + oma * d
            ga[i] = a
            r = np.sqrt(s - a * a) + eps
        else:
            r = np.sqrt(s) + eps
        if momentum:
            b = momentum * buf[i] + d / r
            buf[i] = b
            w[i] = w[i] - lr * b
        else:
            w[i] = w[i] - lr * (d / r)


@_parallel
def _rmsprop_parallel(w, g, sq, ga, buf, lr, wd, alpha, oma, eps, momentum, centered):  # noqa: ANN001, ANN202
    n = w.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        _rmsprop_span(c * CHUNK, min(n, (c + 1) * CHUNK), w, g, sq, ga, buf, lr, wd, alpha, oma,
                      eps, momentum, centered)


def rmsprop(w: Any, *args: Any) -> None:
    """numpy_ref.rmsprop, fused (same arguments).

    Example: ``rmsprop(w, g, sq, ga, buf, lr, wd, alpha, oma, eps, momentum, centered)``
    """
    if w.size < PARALLEL_FROM:
        _rmsprop_span(0, w.size, w, *args)
    else:
        _rmsprop_parallel(w, *args)


# ----------------------------------------------------------------------------- Adagrad
@_span
def _adagrad_span(lo, hi, w, g, acc, clr, wd, eps):  # noqa: ANN001, ANN202
    w, g, acc = w[lo:hi], g[lo:hi], acc[lo:hi]
    for i in range(w.size):
        d = g[i] + wd * w[i] if wd else g[i]
        a = acc[i] + d * d
        acc[i] = a
        w[i] = w[i] - clr * (d / (np.sqrt(a) + eps))


@_parallel
def _adagrad_parallel(w, g, acc, clr, wd, eps):  # noqa: ANN001, ANN202
    n = w.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        _adagrad_span(c * CHUNK, min(n, (c + 1) * CHUNK), w, g, acc, clr, wd, eps)


def adagrad(w: Any, *args: Any) -> None:
    """numpy_ref.adagrad, fused (same arguments).

    Example: ``adagrad(w, g, acc, clr, wd, eps)``
    """
    if w.size < PARALLEL_FROM:
        _adagrad_span(0, w.size, w, *args)
    else:
        _adagrad_parallel(w, *args)
