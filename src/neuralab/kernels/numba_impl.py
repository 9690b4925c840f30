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

__all__ = ["sgd", "adam", "rmsprop", "adagrad", "bias_relu", "relu_mask_backward", "bias_grad",
           "im2col", "col2im", "PARALLEL_FROM", "CHUNK"]

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


# ----------------------------------------------------------------------------- layers
def _rows_per_span(z: Any) -> int:
    return max(1, CHUNK // max(1, z.shape[1]))


# NOTE: one pass for NumPy's two (z += b row by row, then maximum) and the captured step's bool
# mask: float32 (64, 128) 7.8 -> 0.6 us, (128, 256) 17.6 -> 2.0 us (all three NumPy calls vs this)
@_span
def _bias_relu_span(lo, hi, z, b):  # noqa: ANN001, ANN202
    z = z[lo:hi]
    for r in range(z.shape[0]):
        row = z[r]
        for j in range(row.size):
            v = row[j] + b[j]
            # np.maximum(v, 0): a NaN stays (payload and all), -0.0 and below become +0.0
            if v > 0 or v != v:
                row[j] = v
            else:
                row[j] = 0


@_parallel
def _bias_relu_parallel(z, b, step):  # noqa: ANN001, ANN202
    n = z.shape[0]
    for c in prange((n + step - 1) // step):
        _bias_relu_span(c * step, min(n, (c + 1) * step), z, b)


def bias_relu(z: Any, b: Any) -> None:
    """numpy_ref.bias_relu, fused: one pass over ``z`` instead of two.

    Example: ``bias_relu(z, b)``
    """
    if z.size < PARALLEL_FROM:
        _bias_relu_span(0, z.shape[0], z, b)
    else:
        _bias_relu_parallel(z, b, _rows_per_span(z))


# NOTE: masks by ReLU's output, so no bool mask is written forward and read back: float32
# (64, 128) 2.2 -> 1.2 us, (128, 256) 5.3 -> 2.3 us (d * mask vs this)
@_span
def _relu_mask_backward_span(lo, hi, d, a):  # noqa: ANN001, ANN202
    d, a = d[lo:hi], a[lo:hi]
    for i in range(d.size):
        # multiplied, not set to 0, as NumPy's d * mask: inf * 0 is NaN, -1 * 0 is -0.0
        d[i] = d[i] * (a[i] > 0)


@_parallel
def _relu_mask_backward_parallel(d, a):  # noqa: ANN001, ANN202
    n = d.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        _relu_mask_backward_span(c * CHUNK, min(n, (c + 1) * CHUNK), d, a)


def relu_mask_backward(d: Any, a: Any) -> None:
    """numpy_ref.relu_mask_backward, fused: no mask array, one pass (C-contiguous ``d``, ``a``).

    Example: ``relu_mask_backward(d, a)``
    """
    d1, a1 = d.reshape(-1), a.reshape(-1)
    if d1.size < PARALLEL_FROM:
        _relu_mask_backward_span(0, d1.size, d1, a1)
    else:
        _relu_mask_backward_parallel(d1, a1)


# NOTE: the same sums without add.reduce's iterator set-up: float32 (64, 128) 2.5 -> 1.2 us,
# (128, 10) 2.8 -> 0.95 us, (128, 256) 4.6 -> 2.3 us; (1024, 1024), on threads: 71 -> 84 us
@_span
def _bias_grad_span(lo, hi, d, out):  # noqa: ANN001, ANN202
    # as NumPy's add.reduce over axis 0 of a C-contiguous array with two or more columns:
    # from 0 (so a column of -0.0 sums to +0.0), adding row after row (a single column is
    # summed pairwise: ``bias_grad`` hands it to NumPy)
    o = out[lo:hi]
    for j in range(o.size):
        o[j] = 0
    for r in range(d.shape[0]):
        row = d[r, lo:hi]
        for j in range(o.size):
            o[j] = o[j] + row[j]


@_parallel
def _bias_grad_parallel(d, out, step):  # noqa: ANN001, ANN202
    n = out.size
    for c in prange((n + step - 1) // step):
        _bias_grad_span(c * step, min(n, (c + 1) * step), d, out)


def bias_grad(d: Any, out: Any) -> None:
    """numpy_ref.bias_grad, compiled: the same row-after-row sums.

    Example: ``bias_grad(d, out)``
    """
    if d.shape[1] < 2:
        np.add.reduce(d, axis=0, out=out)  # one column is summed pairwise: NumPy's own
    elif d.size < PARALLEL_FROM:
        _bias_grad_span(0, d.shape[1], d, out)
    else:
        _bias_grad_parallel(d, out, max(16, d.shape[1] // 8))


# ----------------------------------------------------------------------------- convolution
# NOTE: Conv2d calls these between its GEMMs, once per band of about 2**18 values, so they
# run on the calling thread there: waking numba's threads per band next to OpenBLAS's cost
# far more than the copy (Conv2d(32->64) 64x32x14x14 at 2 threads, load 7: 198 ms a step on
# one thread, 1738 ms split over two; a 1 MB band alone at load 1.4: 21 us vs 8 ms)
CONV_PARALLEL_FROM = 1 << 20
# Each channel's copies run on one thread, tap after tap, so every value of cols (im2col) or
# of dxpad (col2im) is written by one thread in the reference's order: equal bits on any
# thread count. Runs are sliced out and looped from 0, as in the spans above.
@_span
def _copy_run(src, dst):  # noqa: ANN001, ANN202
    for k in range(dst.size):
        dst[k] = src[k]


@_span
def _add_run(src, dst):  # noqa: ANN001, ANN202
    for k in range(dst.size):
        dst[k] = dst[k] + src[k]


@_span
def _im2col_span(lo, hi, xpad, cols, r0, sh, sw, dh, dw):  # noqa: ANN001, ANN202
    _, kh, kw, rows, wo, _ = cols.shape
    for c in range(lo, hi):
        for i in range(kh):
            for j in range(kw):
                for r in range(rows):
                    y = i * dh + sh * (r0 + r)
                    if sw == 1:  # the tap's row is one contiguous run of Wo*N values
                        _copy_run(xpad[c, y, j * dw:j * dw + wo].reshape(-1),
                                  cols[c, i, j, r].reshape(-1))
                    else:
                        for q in range(wo):
                            _copy_run(xpad[c, y, j * dw + sw * q], cols[c, i, j, r, q])


@_parallel
def _im2col_parallel(xpad, cols, r0, sh, sw, dh, dw):  # noqa: ANN001, ANN202
    for c in prange(cols.shape[0]):
        _im2col_span(c, c + 1, xpad, cols, r0, sh, sw, dh, dw)


# NOTE: about even with NumPy's slice copies (both memory-bound): Conv2d(32->64) 64x32x14x14,
# 1 thread, load 5.7, CPU time of its 28 bands a step: 2.21-2.23 ms NumPy, 1.98-2.29 ms this
def im2col(xpad: Any, cols: Any, r0: int, stride: tuple, dilation: tuple) -> None:
    """numpy_ref.im2col, compiled: one loop nest instead of kh*kw strided NumPy copies.

    Example: ``im2col(xpad, cols, r0, (1, 1), (1, 1))``
    """
    (sh, sw), (dh, dw) = stride, dilation
    if cols.size < CONV_PARALLEL_FROM or cols.shape[0] < 2:
        _im2col_span(0, cols.shape[0], xpad, cols, r0, sh, sw, dh, dw)
    else:
        _im2col_parallel(xpad, cols, r0, sh, sw, dh, dw)


@_span
def _col2im_span(lo, hi, dcols, dxpad, r0, sh, sw, dh, dw):  # noqa: ANN001, ANN202
    _, kh, kw, rows, wo, _ = dcols.shape
    for c in range(lo, hi):
        for i in range(kh):  # taps in the reference's order: each value's sum is the same
            for j in range(kw):
                for r in range(rows):
                    y = i * dh + sh * (r0 + r)
                    if sw == 1:
                        _add_run(dcols[c, i, j, r].reshape(-1),
                                 dxpad[c, y, j * dw:j * dw + wo].reshape(-1))
                    else:
                        for q in range(wo):
                            _add_run(dcols[c, i, j, r, q], dxpad[c, y, j * dw + sw * q])


@_parallel
def _col2im_parallel(dcols, dxpad, r0, sh, sw, dh, dw):  # noqa: ANN001, ANN202
    for c in prange(dcols.shape[0]):
        _col2im_span(c, c + 1, dcols, dxpad, r0, sh, sw, dh, dw)


# NOTE: adds in place, no temporary and iterator per tap: 2.39-2.48 -> 1.01-1.14 ms a step
# (same conv and measure); the whole step 12.7-12.8 -> 11.6-12.2 ms CPU
def col2im(dcols: Any, dxpad: Any, r0: int, stride: tuple, dilation: tuple) -> None:
    """numpy_ref.col2im, compiled: the same adds, tap after tap, each channel on one thread.

    Example: ``col2im(dcols, dxpad, r0, (1, 1), (1, 1))``
    """
    (sh, sw), (dh, dw) = stride, dilation
    if dcols.size < CONV_PARALLEL_FROM or dcols.shape[0] < 2:
        _col2im_span(0, dcols.shape[0], dcols, dxpad, r0, sh, sw, dh, dw)
    else:
        _col2im_parallel(dcols, dxpad, r0, sh, sw, dh, dw)
