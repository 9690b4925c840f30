"""The readable reference of every kernel: plain NumPy on whole arrays, updated in place.

Each optimizer function is the maths of one step on 1-D arrays (one parameter, or all of a
group's parameters laid end to end); the layer functions work on 2-D batches. Scalars come
already in the arrays' dtype (see ``scalars``): a float64 ``lr`` would otherwise make the
compiled twin compute in float64.
The compiled twins in ``numba_impl`` do, per element, exactly these operations in this
order, so the two give the same bits.

Example:
    >>> w, g, buf = np.ones(3), np.full(3, 0.5), np.zeros(3)
    >>> sgd(w, g, buf, *scalars(w.dtype, 0.1, 0.0, 0.9, 1.0), nesterov=False, first=True)
    >>> w
    array([0.95, 0.95, 0.95])
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import xp_of

__all__ = ["scalars", "sgd", "adam", "rmsprop", "adagrad", "bias_relu", "relu_mask_backward",
           "bias_grad", "softmax_xent", "dropout", "dropout_backward", "im2col", "col2im",
           "lstm_step", "lstm_step_backward", "gru_step", "gru_step_backward"]


def scalars(dtype: Any, *values: float) -> tuple:
    """``values`` as scalars of ``dtype``, the form every kernel takes its numbers in.

    Example: ``lr, wd = scalars(np.float32, 0.1, 0.0)``
    """
    # NOTE: one call per parameter and step: np.dtype() on what already is one, and a
    # generator, cost more than the conversions themselves
    t = (dtype if isinstance(dtype, np.dtype) else np.dtype(dtype)).type
    return tuple(map(t, values))


def sgd(w: Any, g: Any, buf: Any, lr: Any, wd: Any, momentum: Any, damp: Any,
        nesterov: bool, first: bool) -> None:
    """SGD: ``d = g + wd*w``; ``buf = momentum*buf + damp*d`` (``d`` on the first step);
    ``w -= lr * (d + momentum*buf)`` (Nesterov), ``lr * buf`` or, without momentum, ``lr * d``.

    Example: ``sgd(w, g, buf, lr, wd, momentum, 1 - dampening, False, first=True)``
    """
    d = g + wd * w if wd else g
    if momentum:
        if first:
            buf[...] = d
        else:
            buf *= momentum
            buf += damp * d
        d = d + momentum * buf if nesterov else buf
    w -= lr * d


def adam(w: Any, g: Any, m: Any, v: Any, vmax: Any, step_size: Any, b1: Any, omb1: Any,
         b2: Any, omb2: Any, eps_c: Any, wd: Any, decay: Any, amsgrad: bool) -> None:
    """Adam/AdamW: ``w *= decay``; ``d = g + wd*w``; ``m = b1*m + omb1*d``;
    ``v = b2*v + omb2*d*d`` (``vmax = max(vmax, v)`` with amsgrad, used instead of ``v``);
    ``w -= step_size * m / (sqrt(v) + eps_c)``.

    Example: ``adam(w, g, m, v, v, lr * c / bc1, b1, 1 - b1, b2, 1 - b2, eps * c, 0, 1, False)``
    """
    if decay != 1:
        w *= decay
    d = g + wd * w if wd else g
    m *= b1
    m += omb1 * d
    v *= b2
    v += omb2 * (d * d)
    if amsgrad:
        np.maximum(vmax, v, out=vmax)
        v = vmax
    w -= step_size * (m / (np.sqrt(v) + eps_c))


def rmsprop(w: Any, g: Any, sq: Any, ga: Any, buf: Any, lr: Any, wd: Any, alpha: Any,
            oma: Any, eps: Any, momentum: Any, centered: bool) -> None:
    """RMSprop: ``d = g + wd*w``; ``sq = alpha*sq + oma*d*d``; ``r = sqrt(sq) + eps``
    (centered: ``ga = alpha*ga + oma*d``, ``r = sqrt(sq - ga*ga) + eps``); then
    ``buf = momentum*buf + d/r`` and ``w -= lr*buf``, or ``w -= lr * d/r`` without momentum.

    Example: ``rmsprop(w, g, sq, sq, sq, lr, wd, alpha, 1 - alpha, eps, 0, False)``
    """
    d = g + wd * w if wd else g
    sq *= alpha
    sq += oma * (d * d)
    if centered:
        ga *= alpha
        ga += oma * d
        r = np.sqrt(sq - ga * ga) + eps
    else:
        r = np.sqrt(sq) + eps
    if momentum:
        buf *= momentum
        buf += d / r
        w -= lr * buf
    else:
        w -= lr * (d / r)


def adagrad(w: Any, g: Any, acc: Any, clr: Any, wd: Any, eps: Any) -> None:
    """Adagrad: ``d = g + wd*w``; ``acc += d*d``; ``w -= clr * d / (sqrt(acc) + eps)``.

    Example: ``adagrad(w, g, acc, lr / (1 + (t - 1) * lr_decay), wd, eps)``
    """
    d = g + wd * w if wd else g
    acc += d * d
    w -= clr * (d / (np.sqrt(acc) + eps))


# ----------------------------------------------------------------------------- layers
# The kernels below work on 2-D C-contiguous batches (rows = samples), not on 1-D arrays.
def bias_relu(z: Any, b: Any) -> None:
    """Linear's bias then ReLU, in place: ``z += b`` (one value per column), ``z = max(z, 0)``.

    ``np.maximum`` keeps a NaN (with its payload) and turns ``-0.0`` into ``+0.0``.

    Example: ``bias_relu(z, b)   # z: (rows, out_features), b: (out_features,)``
    """
    z += b
    np.maximum(z, 0, out=z)


def relu_mask_backward(d: Any, a: Any) -> None:
    """ReLU's backward through its output ``a``, in place: ``d *= (a > 0)``.

    ``a > 0`` wherever the input was (ReLU's output is then the input), so the mask needs
    no buffer of its own; a 0 of the mask still turns an inf or NaN of ``d`` into NaN.

    Example: ``relu_mask_backward(d, a)   # d, a: (rows, features)``
    """
    np.multiply(d, np.greater(a, 0), out=d)


def bias_grad(d: Any, out: Any) -> None:
    """Linear's bias gradient: the column sums of ``d`` into ``out`` (``d.sum(axis=0)``).

    Example: ``bias_grad(d, b.grad)   # d: (rows, out_features)``
    """
    np.add.reduce(d, axis=0, out=out)


# ----------------------------------------------------------------------------- softmax cross-entropy and dropout
def softmax_xent(z: Any, t: Any, scale: Any, grad_out: Any, loss_out: Any) -> None:
    """Softmax cross-entropy of logits ``z`` (n, c) against class indices ``t`` (n,), forward
    and backward at once: ``loss_out[i] = -log_softmax(z)[i, t[i]]`` and
    ``grad_out = (softmax(z) - onehot(t)) * scale``. The targets must lie in [0, c).

    The softmax is the log-probabilities' exp: ``logp = (z - max) - log(sum(exp(z - max)))``,
    ``softmax = exp(logp)`` (per row), the arithmetic of ``functions.CrossEntropy``.

    Example: ``softmax_xent(z, t.astype(np.int64), z.dtype.type(1 / n), grad, loss)``
    """
    n = z.shape[0]
    np.subtract(z, np.maximum.reduce(z, axis=1, keepdims=True), out=grad_out)  # shifted
    grad_out -= np.log(np.add.reduce(np.exp(grad_out), axis=1, keepdims=True))  # logp
    rows = np.arange(n)
    np.negative(grad_out[rows, t], out=loss_out)
    np.exp(grad_out, out=grad_out)
    grad_out[rows, t] -= 1.0
    grad_out *= scale


def dropout(x: Any, u: Any, p: float, scale: Any, out: Any, mask: Any) -> None:
    """Inverted dropout's forward: ``mask = u >= p`` (bool) and ``out = x * (mask * scale)``,
    where ``u`` holds uniform numbers in [0, 1) shaped like ``x`` and ``scale`` is 1 / (1 - p)
    in ``x``'s dtype. A dropped value is multiplied by 0, so an inf or NaN there gives NaN.

    Example: ``dropout(x, rng.random(x.shape), 0.2, x.dtype.type(1 / 0.8), out, mask)``
    """
    np.greater_equal(u, p, out=mask)
    np.multiply(x, mask.astype(x.dtype) * scale, out=out)


def dropout_backward(grad: Any, mask: Any, scale: Any, out: Any) -> None:
    """Inverted dropout's backward: ``out = grad * (mask * scale)``, ``mask`` the forward's.

    Example: ``dropout_backward(grad, mask, scale, out)``
    """
    np.multiply(grad, mask.astype(grad.dtype) * scale, out=out)


# ----------------------------------------------------------------------------- convolution
# Conv2d's copies, batch innermost: the padded input ``xpad`` is (C, Hp, Wp, N) and a band of
# columns ``cols`` is (C, kh, kw, rows, Wo, N), for the output rows r0 .. r0 + rows - 1.
# Plain slicing, so these also run on CuPy arrays.
def _tap(i: int, j: int, r0: int, rows: int, wo: int, stride: tuple, dilation: tuple) -> tuple:
    """Where kernel tap (i, j) reads ``xpad`` for output rows r0 .. r0 + rows - 1."""
    (sh, sw), (dh, dw) = stride, dilation
    return (slice(None), slice(i * dh + sh * r0, i * dh + sh * (r0 + rows - 1) + 1, sh),
            slice(j * dw, j * dw + sw * (wo - 1) + 1, sw))


def im2col(xpad: Any, cols: Any, r0: int, stride: tuple, dilation: tuple) -> None:
    """Fill ``cols`` with the input under each kernel tap:
    ``cols[c, i, j, r, q] = xpad[c, i*dh + sh*(r0 + r), j*dw + sw*q]`` (each a run of N values).

    Example: ``im2col(xpad, cols, 0, (1, 1), (1, 1))   # cols: (C, kh, kw, rows, Wo, N)``
    """
    _, kh, kw, rows, wo, _ = cols.shape
    for i in range(kh):
        for j in range(kw):
            cols[:, i, j] = xpad[_tap(i, j, r0, rows, wo, stride, dilation)]


def col2im(dcols: Any, dxpad: Any, r0: int, stride: tuple, dilation: tuple) -> None:
    """im2col's adjoint: add each tap's slice of ``dcols`` onto the positions it was copied
    from, tap after tap (i, then j), so overlapping taps add in one fixed order.

    Example: ``col2im(dcols, dxpad, 0, (1, 1), (1, 1))   # dxpad += the taps of dcols``
    """
    _, kh, kw, rows, wo, _ = dcols.shape
    for i in range(kh):
        for j in range(kw):
            dxpad[_tap(i, j, r0, rows, wo, stride, dilation)] += dcols[:, i, j]


# ----------------------------------------------------------------------------- recurrent cells
# One time step's elementwise part of functions.LSTMSequence and GRUSequence, on their
# transposed per-step arrays (features, N); the GEMMs stay with the caller. The array module
# follows the arrays, so CuPy's arrays run this code too.
def lstm_step(a: Any, hz: Any, bias: Any, c_prev: Any, c: Any, tanh_c: Any, h: Any) -> None:
    """LSTM forward step, gates stored o, i, f, g with the sigmoid rows' weights halved:
    ``a += hz + bias``; ``a = tanh(a)``, then ``(a + 1) / 2`` on the o, i, f rows (their
    sigmoid); ``c = f*c_prev + i*g``; ``tanh_c = tanh(c)``; ``h = o * tanh_c``.

    ``a`` (4H, N) holds x_t W_ih^T and is activated in place; ``hz`` (4H, N) is h_{t-1} W_hh^T;
    ``bias`` (4H, 1) or None.

    Example: ``lstm_step(gates[t], hz, bias, cs[t], cs[t + 1], tanh_c[t], hs[t + 1])``
    """
    xp = xp_of(a)
    hid = c.shape[0]
    a += hz
    if bias is not None:
        a += bias
    xp.tanh(a, out=a)
    sig = a[:3 * hid]
    sig *= 0.5
    sig += 0.5
    o, i, f, g = a[:hid], a[hid:2 * hid], a[2 * hid:3 * hid], a[3 * hid:]
    xp.multiply(f, c_prev, out=c)
    c += xp.multiply(i, g, out=tanh_c)  # tanh_c: scratch until tanh(c) goes there
    xp.tanh(c, out=tanh_c)
    xp.multiply(o, tanh_c, out=h)


def lstm_step_backward(grad_t: Any, dhc: Any, a: Any, tanh_c: Any, c_prev: Any, d: Any,
                       d_all: Any, t: int) -> None:
    """LSTM backward step (``lstm_step``'s arrays): ``dh, dc += grad_t``;
    ``dc += dh * o * (1 - tanh_c^2)``; the gate gradients into ``d_all[:, t]``:
    ``do = dh * tanh_c * o(1-o)``, ``di = dc * g * i(1-i)``, ``df = dc * c_prev * f(1-f)``,
    ``dg = dc * i * (1-g^2)``; then ``dc *= f`` (dc_{t-1}). ``dh`` is left for the caller's
    ``W_hh^T d`` to overwrite.

    ``dhc`` (2H, N) is dh above dc; ``d_all`` (4H, T, N); ``d`` (4H, N) is scratch: NumPy's
    calls run several times faster on it than on the strided ``d_all[:, t]``, which gets a copy.

    Example: ``lstm_step_backward(grad[t], dhc, gates[t], tanh_c[t], cs[t], d, d_all, t)``
    """
    xp = xp_of(a)
    hid = tanh_c.shape[0]
    o, i, f, g = a[:hid], a[hid:2 * hid], a[2 * hid:3 * hid], a[3 * hid:]
    dh, dc, tmp = dhc[:hid], dhc[hid:], d[3 * hid:]  # tmp: dg's rows, not yet written
    dhc += grad_t
    xp.multiply(tanh_c, tanh_c, out=tmp)              # dc += dh * o * (1 - tanh(c)^2)
    xp.subtract(1, tmp, out=tmp)
    tmp *= o
    tmp *= dh
    dc += tmp
    xp.multiply(a, a, out=d)                          # sigmoid' = s - s^2, tanh' = 1 - g^2
    xp.subtract(a[:3 * hid], d[:3 * hid], out=d[:3 * hid])
    xp.subtract(1, d[3 * hid:], out=d[3 * hid:])
    d[:hid] *= tanh_c                                 # do = dh * tanh(c) * o'
    d[:hid] *= dh
    d[hid:2 * hid] *= g                               # di, df, dg = dc * (g i', c_{t-1} f', i g')
    d[2 * hid:3 * hid] *= c_prev
    d[3 * hid:] *= i
    d_ifg = d[hid:].reshape(3, hid, -1)
    d_ifg *= dc
    dc *= f
    d_all[:, t] = d


def gru_step(a: Any, hg: Any, b_hn: Any, h_prev: Any, h: Any) -> None:
    """GRU forward step, gates r, z, n with the r and z rows' weights halved:
    ``hg_n += b_hn``; ``r, z = (tanh(a_rz + hg_rz) + 1) / 2``; ``n = tanh(a_n + r * hg_n)``;
    ``h = n + z * (h_prev - n)``.

    ``a`` (3H, N) holds x_t W_ih^T (+ the input-side biases) and is activated in place; ``hg``
    (3H, N) is h_{t-1} W_hh^T, its n rows kept (with ``b_hn`` (H, 1), or None) for backward.

    Example: ``gru_step(gates[t], hh[t], b_hn, hs[t], hs[t + 1])``
    """
    xp = xp_of(a)
    hid = h.shape[0]
    if b_hn is not None:
        hg[2 * hid:] += b_hn
    rz = a[:2 * hid]
    rz += hg[:2 * hid]
    xp.tanh(rz, out=rz)
    rz *= 0.5
    rz += 0.5
    r, z, n = a[:hid], a[hid:2 * hid], a[2 * hid:]
    n += xp.multiply(r, hg[2 * hid:], out=h)          # h: scratch until h_t goes there
    xp.tanh(n, out=n)
    xp.subtract(h_prev, n, out=h)                     # h_t = n + z * (h_{t-1} - n)
    h *= z
    xp.add(n, h, out=h)


def gru_step_backward(grad_t: Any, dh: Any, a: Any, hn: Any, h_prev: Any, d: Any,
                      dhh: Any) -> None:
    """GRU backward step (``gru_step``'s arrays): ``dh += grad_t``;
    ``dn = dh (1 - z) (1 - n^2)``, ``dr = dn hn r(1-r)``, ``dz = dh (h_prev - n) z(1-z)`` into
    ``d`` (3H, N), the hidden side's ``[dr, dz, dn r]`` into ``dhh``; then ``dh *= z`` (the
    caller adds ``W_hh^T dhh`` for dh_{t-1}).

    Example: ``gru_step_backward(grad[t], dh, gates[t], hn[t], hs[t], d, dhh)``
    """
    xp = xp_of(a)
    hid = dh.shape[0]
    r, z, n = a[:hid], a[hid:2 * hid], a[2 * hid:]
    dr, dz, dn = d[:hid], d[hid:2 * hid], d[2 * hid:]
    tmp = dhh[2 * hid:]                               # scratch until dn * r goes there
    dh += grad_t
    xp.multiply(a, a, out=d)                          # sigmoid' = s - s^2, tanh' = 1 - n^2
    xp.subtract(a[:2 * hid], d[:2 * hid], out=d[:2 * hid])
    xp.subtract(1, dn, out=dn)
    xp.subtract(1, z, out=tmp)                        # dn = dh (1 - z) tanh'
    tmp *= dh
    dn *= tmp
    dr *= hn                                          # dr = dn (W_hn h + b_hn) r'
    dr *= dn
    xp.subtract(h_prev, n, out=tmp)                   # dz = dh (h_{t-1} - n) z'
    tmp *= dh
    dz *= tmp
    dhh[:2 * hid] = d[:2 * hid]
    xp.multiply(dn, r, out=dhh[2 * hid:])
    dh *= z
