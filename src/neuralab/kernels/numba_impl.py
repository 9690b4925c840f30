"""The kernels of ``numpy_ref``, compiled with numba: one pass over memory per step.

Each kernel is a ``_span`` loop over elements ``lo:hi`` doing, per element, exactly the
operations of its NumPy twin in the same order (no ``fastmath``: no reassociation, no fused
multiply-add), so the bits are the same (``softmax_xent`` leaves its exps and logs to
NumPy's own calls, whose SIMD code numba's libm calls do not match). Large arrays are cut
into ``CHUNK``-sized spans run on numba's threads (``prange``); since every element is
computed on its own, the bits do not depend on the thread count or on the cut.

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

from . import numpy_ref

__all__ = ["sgd", "adam", "rmsprop", "adagrad", "bias_relu", "relu_mask_backward", "bias_grad",
           "softmax_xent", "dropout", "dropout_backward", "im2col", "col2im", "lstm_step",
           "lstm_step_backward", "gru_step", "gru_step_backward", "PARALLEL_FROM", "CHUNK"]

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


# ----------------------------------------------------------------------------- softmax cross-entropy and dropout
# NOTE: numba's exp and log are libm's, one value at a time (no SVML here), 5-10x slower than
# NumPy's SIMD exp: a softmax cross-entropy doing its exps in the row loop took, float32,
# (128, 10) 18.5 us, (128, 100) 90 us, (1024, 1000) 5.0 ms against NumPy's 27, 36 and 2000 us
# (and its results were up to 34 ulps off NumPy's). So the exps and logs stay NumPy's calls
# and the loops fuse what lies between them (the max and shift, the row sums, the target's
# pick, the one-hot and the scale): NumPy's bits, from fewer passes and no fancy indexing,
# float32 (128, 10) 20 -> 5.2 us, (256, 10) 31 -> 7.8 us, (128, 64) 32 -> 21 us (numpy_ref vs
# this). On the calling thread: rows this narrow are cheap, and NumPy's exps use one anyway.
WIDE = 64  # wider rows go to numpy_ref: from about 100 columns its SIMD passes are faster


@_span
def _shift_rows(z, out):  # noqa: ANN001, ANN202
    for r in range(z.shape[0]):
        zr, o = z[r], out[r]
        m = zr[0]
        for j in range(1, zr.size):  # np.maximum.reduce: a NaN wins
            v = zr[j]
            if v > m or v != v:
                m = v
        for j in range(zr.size):
            o[j] = zr[j] - m


@_span
def _row_sums(e, out):  # noqa: ANN001, ANN202
    # NumPy's pairwise summation of a contiguous row of at most 128 values (what add.reduce
    # runs along axis 1): one by one below 8, else 8 running sums, combined as a tree, then
    # the last n % 8 values one by one
    n = e.shape[1]
    for r in range(e.shape[0]):
        a = e[r]
        if n < 8:
            s = a[0]
            for i in range(1, n):
                s = s + a[i]
        else:
            r0, r1, r2, r3, r4, r5, r6, r7 = a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]
            i = 8
            while i < n - n % 8:
                r0, r1, r2, r3 = r0 + a[i], r1 + a[i + 1], r2 + a[i + 2], r3 + a[i + 3]
                r4, r5, r6, r7 = r4 + a[i + 4], r5 + a[i + 5], r6 + a[i + 6], r7 + a[i + 7]
                i += 8
            s = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
            while i < n:
                s = s + a[i]
                i += 1
        out[r] = s


@_span
def _log_probs(g, log_sums, t, loss_out):  # noqa: ANN001, ANN202
    for r in range(g.shape[0]):
        gr, ls = g[r], log_sums[r]
        for j in range(gr.size):
            gr[j] = gr[j] - ls
        loss_out[r] = -gr[t[r]]


@_span
def _onehot_scale(g, t, scale):  # noqa: ANN001, ANN202
    for r in range(g.shape[0]):
        gr, k = g[r], t[r]
        for j in range(gr.size):
            # (j == k) counts 1 or 0: softmax - 1 at the target, softmax - 0 (itself) elsewhere
            gr[j] = (gr[j] - (j == k)) * scale


def softmax_xent(z: Any, t: Any, scale: Any, grad_out: Any, loss_out: Any) -> None:
    """numpy_ref.softmax_xent with the passes between its exps fused: the same bits.
    ``t``: int64 class indices, already checked to lie in [0, c).

    Example: ``softmax_xent(z, t, scale, grad_out, loss_out)``
    """
    if z.shape[1] > WIDE or z.size == 0:
        numpy_ref.softmax_xent(z, t, scale, grad_out, loss_out)
        return
    _shift_rows(z, grad_out)
    sums = np.empty(z.shape[0], z.dtype)
    _row_sums(np.exp(grad_out), sums)
    _log_probs(grad_out, np.log(sums, out=sums), t, loss_out)
    np.exp(grad_out, out=grad_out)
    _onehot_scale(grad_out, t, scale)


# NOTE: dropout runs on the calling thread at every size: its uniform numbers (NumPy's
# rng.random, one thread) cost ~8x the kernel itself, and waking numba's threads cost up to
# 10 ms on a loaded machine (float32 (256, 1024) forward + backward: 24 ms on two threads at
# load 4.6, against 2.0 ms for NumPy's mask and products)
@_span
def _dropout_span(x, u, p, scale, out, mask):  # noqa: ANN001, ANN202
    for i in range(x.size):
        keep = u[i] >= p
        mask[i] = keep
        out[i] = x[i] * (scale * keep)  # x * 0 where dropped, as NumPy's x * mask: inf * 0 is NaN


def dropout(x: Any, u: Any, p: float, scale: Any, out: Any, mask: Any) -> None:
    """numpy_ref.dropout in one pass (C-contiguous arrays of one shape).

    Example: ``dropout(x, u, p, scale, out, mask)``
    """
    _dropout_span(x.reshape(-1), u.reshape(-1), p, scale, out.reshape(-1), mask.reshape(-1))


@_span
def _dropout_backward_span(grad, mask, scale, out):  # noqa: ANN001, ANN202
    for i in range(grad.size):
        out[i] = grad[i] * (scale * mask[i])


def dropout_backward(grad: Any, mask: Any, scale: Any, out: Any) -> None:
    """numpy_ref.dropout_backward in one pass (C-contiguous arrays of one shape).

    Example: ``dropout_backward(grad, mask, scale, out)``
    """
    _dropout_backward_span(grad.reshape(-1), mask.reshape(-1), scale, out.reshape(-1))


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


# ----------------------------------------------------------------------------- recurrent cells
# NOTE: the tanh stays NumPy's: numba's (libm's, one value at a time) took 895 us for one
# LSTM(128) step's 40,960 values, NumPy's SIMD loop 10 us. So each forward step is compiled
# loops around NumPy's tanh calls, which also keeps the reference's bits; backward has no
# tanh and is one loop. The loops run over rows ``lo:hi`` (hidden units; the gate rows for
# the bias add), every value on its own: rows split over threads give the same bits. They
# count from 0 and skip the rows below ``lo``: counted from ``lo`` (not known to be >= 0),
# their inner loops did not vectorize (GRU backward step 27 us vs 5 us).
_FLOATS = {np.dtype(np.float32): (np.float32(0.5), np.float32(1)),
           np.dtype(np.float64): (np.float64(0.5), np.float64(1))}  # typed, as numpy_ref's


def _rows(a: Any) -> int:
    """Hidden units per parallel span: about CHUNK values of each gate."""
    return max(1, CHUNK // max(1, a.shape[1]))


@_span
def _sum_bias_span(lo, hi, a, hz, bias):  # noqa: ANN001, ANN202
    # a += hz; a += bias (rows lo:hi of a)
    for r in range(hi):  # from 0: see above
        if r < lo:
            continue
        ar, hr = a[r], hz[r]
        if bias is None:
            for j in range(ar.size):
                ar[j] = ar[j] + hr[j]
        else:
            b = bias[r, 0]
            for j in range(ar.size):
                ar[j] = (ar[j] + hr[j]) + b


@_parallel
def _sum_bias_parallel(a, hz, bias, step):  # noqa: ANN001, ANN202
    n = a.shape[0]
    for c in prange((n + step - 1) // step):
        _sum_bias_span(c * step, min(n, (c + 1) * step), a, hz, bias)


def _sum_bias(a: Any, hz: Any, bias: Any) -> None:
    if a.size < PARALLEL_FROM:
        _sum_bias_span(0, a.shape[0], a, hz, bias)
    else:
        _sum_bias_parallel(a, hz, bias, _rows(a))


@_span
def _lstm_cell_span(lo, hi, a, c_prev, c, half):  # noqa: ANN001, ANN202
    # the o, i, f rows' tanh to sigmoids; c = f*c_prev + i*g
    hid = c.shape[0]
    for r in range(hi):  # from 0: see above
        if r < lo:
            continue
        o, i, f, g = a[r], a[hid + r], a[2 * hid + r], a[3 * hid + r]
        cp, cr = c_prev[r], c[r]
        for j in range(cr.size):
            so, si, sf = o[j] * half + half, i[j] * half + half, f[j] * half + half
            o[j], i[j], f[j] = so, si, sf
            cr[j] = sf * cp[j] + si * g[j]


@_parallel
def _lstm_cell_parallel(a, c_prev, c, half, step):  # noqa: ANN001, ANN202
    n = c.shape[0]
    for k in prange((n + step - 1) // step):
        _lstm_cell_span(k * step, min(n, (k + 1) * step), a, c_prev, c, half)


# NOTE: LSTM(128) step, batch 64, float32: 10 NumPy calls ~34 us -> 2 loops + 3 NumPy ~21 us
def lstm_step(a: Any, hz: Any, bias: Any, c_prev: Any, c: Any, tanh_c: Any, h: Any) -> None:
    """numpy_ref.lstm_step: the adds, the sigmoids' scale and shift and c_t compiled, the
    tanh NumPy's (same arguments, the same bits).

    Example: ``lstm_step(gates[t], hz, bias, cs[t], cs[t + 1], tanh_c[t], hs[t + 1])``
    """
    hid = c.shape[0]
    _sum_bias(a, hz, bias)
    np.tanh(a, out=a)
    if c.size < PARALLEL_FROM:
        _lstm_cell_span(0, hid, a, c_prev, c, _FLOATS[a.dtype][0])
    else:
        _lstm_cell_parallel(a, c_prev, c, _FLOATS[a.dtype][0], _rows(c))
    np.tanh(c, out=tanh_c)
    np.multiply(a[:hid], tanh_c, out=h)


@_span
def _lstm_back_span(lo, hi, grad_t, dhc, a, tanh_c, c_prev, d_all, t, one):  # noqa: ANN001, ANN202
    hid = tanh_c.shape[0]
    for r in range(hi):  # from 0: see above
        if r < lo:
            continue
        gh, gc, dh, dc = grad_t[r], grad_t[hid + r], dhc[r], dhc[hid + r]
        o, i, f, g = a[r], a[hid + r], a[2 * hid + r], a[3 * hid + r]
        tc, cp = tanh_c[r], c_prev[r]
        d_o, d_i, d_f, d_g = d_all[r, t], d_all[hid + r, t], d_all[2 * hid + r, t], d_all[3 * hid + r, t]
        for j in range(tc.size):
            # numpy_ref's operations, in its order
            oj, ij, fj, gj, tj = o[j], i[j], f[j], g[j], tc[j]
            hv = dh[j] + gh[j]
            cv = dc[j] + gc[j]
            cv = cv + ((one - tj * tj) * oj) * hv
            d_o[j] = ((oj - oj * oj) * tj) * hv
            d_i[j] = ((ij - ij * ij) * gj) * cv
            d_f[j] = ((fj - fj * fj) * cp[j]) * cv
            d_g[j] = ((one - gj * gj) * ij) * cv
            dh[j] = hv
            dc[j] = cv * fj


@_parallel
def _lstm_back_parallel(grad_t, dhc, a, tanh_c, c_prev, d_all, t, one, step):  # noqa: ANN001, ANN202
    n = tanh_c.shape[0]
    for k in prange((n + step - 1) // step):
        _lstm_back_span(k * step, min(n, (k + 1) * step), grad_t, dhc, a, tanh_c, c_prev,
                        d_all, t, one)


# NOTE: LSTM(128) step, batch 64, float32: 17 NumPy calls + copy into d_all ~26 us -> ~9 us
def lstm_step_backward(grad_t: Any, dhc: Any, a: Any, tanh_c: Any, c_prev: Any, d: Any,
                       d_all: Any, t: int) -> None:
    """numpy_ref.lstm_step_backward in one loop (same arguments, the same bits), writing
    ``d_all[:, t]`` directly (``d`` is not used).

    Example: ``lstm_step_backward(grad[t], dhc, gates[t], tanh_c[t], cs[t], d, d_all, t)``
    """
    one = _FLOATS[a.dtype][1]
    if tanh_c.size < PARALLEL_FROM:
        _lstm_back_span(0, tanh_c.shape[0], grad_t, dhc, a, tanh_c, c_prev, d_all, t, one)
    else:
        _lstm_back_parallel(grad_t, dhc, a, tanh_c, c_prev, d_all, t, one, _rows(tanh_c))


@_span
def _gru_in_span(lo, hi, a, hg, b_hn):  # noqa: ANN001, ANN202
    # hg_n += b_hn; a_rz += hg_rz
    hid = a.shape[0] // 3
    for r in range(hi):  # from 0: see above
        if r < lo:
            continue
        ar, az, hr, hz = a[r], a[hid + r], hg[r], hg[hid + r]
        for j in range(ar.size):
            ar[j] = ar[j] + hr[j]
            az[j] = az[j] + hz[j]
        if b_hn is not None:
            hn, b = hg[2 * hid + r], b_hn[r, 0]
            for j in range(hn.size):
                hn[j] = hn[j] + b


@_span
def _gru_mid_span(lo, hi, a, hg, half):  # noqa: ANN001, ANN202
    # r, z from tanh to sigmoids; a_n += r * hg_n
    hid = a.shape[0] // 3
    for r in range(hi):  # from 0: see above
        if r < lo:
            continue
        ar, az, an, hn = a[r], a[hid + r], a[2 * hid + r], hg[2 * hid + r]
        for j in range(ar.size):
            rj = ar[j] * half + half
            ar[j] = rj
            az[j] = az[j] * half + half
            an[j] = an[j] + rj * hn[j]


@_span
def _gru_out_span(lo, hi, a, h_prev, h):  # noqa: ANN001, ANN202
    # h = n + z * (h_prev - n)
    hid = h.shape[0]
    for r in range(hi):  # from 0: see above
        if r < lo:
            continue
        z, n, hp, hr = a[hid + r], a[2 * hid + r], h_prev[r], h[r]
        for j in range(hr.size):
            nj = n[j]
            hr[j] = nj + (hp[j] - nj) * z[j]


@_parallel
def _gru_parallel(part, a, hg, b_hn, h_prev, h, half, step):  # noqa: ANN001, ANN202
    n = h.shape[0]
    for k in prange((n + step - 1) // step):
        lo, hi = k * step, min(n, (k + 1) * step)
        if part == 0:
            _gru_in_span(lo, hi, a, hg, b_hn)
        elif part == 1:
            _gru_mid_span(lo, hi, a, hg, half)
        else:
            _gru_out_span(lo, hi, a, h_prev, h)


# NOTE: GRU(128) step, batch 64, float32: 11 NumPy calls ~22 us -> 3 loops + NumPy's 2 tanh ~17 us
def gru_step(a: Any, hg: Any, b_hn: Any, h_prev: Any, h: Any) -> None:
    """numpy_ref.gru_step: the adds, the sigmoids' scale and shift and h_t compiled, the tanh
    NumPy's (same arguments, the same bits).

    Example: ``gru_step(gates[t], hh[t], b_hn, hs[t], hs[t + 1])``
    """
    hid, half = h.shape[0], _FLOATS[a.dtype][0]
    if h.size < PARALLEL_FROM:
        _gru_in_span(0, hid, a, hg, b_hn)
        np.tanh(a[:2 * hid], out=a[:2 * hid])
        _gru_mid_span(0, hid, a, hg, half)
        np.tanh(a[2 * hid:], out=a[2 * hid:])
        _gru_out_span(0, hid, a, h_prev, h)
    else:
        step = _rows(h)
        _gru_parallel(0, a, hg, b_hn, h_prev, h, half, step)
        np.tanh(a[:2 * hid], out=a[:2 * hid])
        _gru_parallel(1, a, hg, b_hn, h_prev, h, half, step)
        np.tanh(a[2 * hid:], out=a[2 * hid:])
        _gru_parallel(2, a, hg, b_hn, h_prev, h, half, step)


@_span
def _gru_back_span(lo, hi, grad_t, dh, a, hn, h_prev, d, dhh, one):  # noqa: ANN001, ANN202
    hid = dh.shape[0]
    for r in range(hi):  # from 0: see above
        if r < lo:
            continue
        gr, dhr, hnr, hp = grad_t[r], dh[r], hn[r], h_prev[r]
        ar, az, an = a[r], a[hid + r], a[2 * hid + r]
        dr, dz, dn = d[r], d[hid + r], d[2 * hid + r]
        er, ez, en = dhh[r], dhh[hid + r], dhh[2 * hid + r]
        for j in range(dhr.size):
            # numpy_ref's operations, in its order
            rj, zj, nj = ar[j], az[j], an[j]
            hv = dhr[j] + gr[j]
            vn = (one - nj * nj) * ((one - zj) * hv)
            vr = ((rj - rj * rj) * hnr[j]) * vn
            vz = (zj - zj * zj) * ((hp[j] - nj) * hv)
            dr[j], dz[j], dn[j] = vr, vz, vn
            er[j], ez[j], en[j] = vr, vz, vn * rj
            dhr[j] = hv * zj


@_parallel
def _gru_back_parallel(grad_t, dh, a, hn, h_prev, d, dhh, one, step):  # noqa: ANN001, ANN202
    n = dh.shape[0]
    for k in prange((n + step - 1) // step):
        _gru_back_span(k * step, min(n, (k + 1) * step), grad_t, dh, a, hn, h_prev, d, dhh, one)


# NOTE: GRU(128) step, batch 64, float32: 15 NumPy calls ~17 us -> ~6 us (one thread, load ~6)
def gru_step_backward(grad_t: Any, dh: Any, a: Any, hn: Any, h_prev: Any, d: Any,
                      dhh: Any) -> None:
    """numpy_ref.gru_step_backward in one loop (same arguments, the same bits).

    Example: ``gru_step_backward(grad[t], dh, gates[t], hn[t], hs[t], d, dhh)``
    """
    one = _FLOATS[a.dtype][1]
    if dh.size < PARALLEL_FROM:
        _gru_back_span(0, dh.shape[0], grad_t, dh, a, hn, h_prev, d, dhh, one)
    else:
        _gru_back_parallel(grad_t, dh, a, hn, h_prev, d, dhh, one, _rows(dh))
