"""Primitive ops: each one class with its forward and its backward side by side.

This file is where backpropagation lives. Each ``forward`` computes a result from raw
arrays and keeps what the derivative needs; each ``backward`` receives the gradient of the
loss with respect to the op's output and returns the gradients with respect to its inputs
(one per input, ``None`` for inputs that take no gradient). Broadcasting is undone once, by
the engine (``tensor.unbroadcast``), never here.

To add your own op, subclass ``Function``, write both methods, and check them with
``nl.gradcheck``:

    >>> class Square(Function):
    ...     def forward(self, x):
    ...         self.x = x
    ...         return x * x
    ...     def backward(self, grad):
    ...         return (2 * self.x * grad,)
    >>> y = Square.apply(nl.tensor([3.0], requires_grad=True))
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import tensor as _tensor
from .backend import xp_of
from .tensor import Tensor


class Function:
    """Base class of every op: ``apply`` runs ``forward`` and links the result into the graph."""

    parents = None  # the input Tensors, set when a graph is recorded; None once freed

    @classmethod
    def apply(cls, *inputs: Tensor, **kwargs: Any) -> Tensor:
        ctx = cls()
        out = ctx.forward(*[t.data for t in inputs], **kwargs)
        if isinstance(out, np.generic):  # NumPy reductions return scalars; keep data an array
            out = np.asarray(out)
        if _tensor._grad_enabled:
            for t in inputs:
                if t.requires_grad:
                    result = Tensor._make(out, True)
                    ctx.parents = inputs
                    result._ctx = ctx
                    return result
        return Tensor._make(out, False)

    def needs_grad(self, i: int) -> bool:
        """Whether input ``i`` takes a gradient, so backward can skip costly unused work."""
        return self.parents[i].requires_grad

    def forward(self, *arrays: Any, **kwargs: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, grad: Any) -> tuple:  # pragma: no cover - abstract
        raise NotImplementedError


def _shape_error(op: str, a: Any, b: Any) -> ValueError:
    return ValueError(f"{op}: shapes {tuple(a.shape)} and {tuple(b.shape)} are not compatible")


# ============================================================================ arithmetic
class Add(Function):
    """a + b; both inputs receive the output gradient unchanged."""

    def forward(self, a, b):
        try:
            return a + b
        except ValueError:
            raise _shape_error("add", a, b) from None

    def backward(self, grad):
        return grad, grad


class Sub(Function):
    """a - b; b receives the negated gradient."""

    def forward(self, a, b):
        try:
            return a - b
        except ValueError:
            raise _shape_error("sub", a, b) from None

    def backward(self, grad):
        return grad, -grad


class Mul(Function):
    """a * b; each input's gradient is the output gradient times the other input."""

    def forward(self, a, b):
        self.a, self.b = a, b
        try:
            return a * b
        except ValueError:
            raise _shape_error("mul", a, b) from None

    def backward(self, grad):
        return grad * self.b, grad * self.a


class Div(Function):
    """a / b; d/da = 1/b, d/db = -a/b**2 = -out/b."""

    def forward(self, a, b):
        self.b = b
        try:
            self.out = a / b
        except ValueError:
            raise _shape_error("div", a, b) from None
        return self.out

    def backward(self, grad):
        ga = grad / self.b
        return ga, -ga * self.out


class Neg(Function):
    """-x."""

    def forward(self, x):
        return -x

    def backward(self, grad):
        return (-grad,)


class Pow(Function):
    """x ** p for a constant number p; d/dx = p * x**(p-1)."""

    def forward(self, x, exponent):
        self.x, self.p = x, exponent
        return x ** exponent

    def backward(self, grad):
        p = self.p
        if p == 2:
            return (grad * 2 * self.x,)
        return (grad * p * self.x ** (p - 1),)


class PowTensor(Function):
    """a ** b for tensors; d/da = b * a**(b-1), d/db = a**b * log(a) (0 where a == 0)."""

    def forward(self, a, b):
        self.a, self.b = a, b
        self.out = a ** b
        return self.out

    def backward(self, grad):
        xp = xp_of(self.a)
        ga = grad * self.b * self.a ** (self.b - 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_a = xp.where(self.a > 0, xp.log(xp.where(self.a > 0, self.a, 1)), xp.nan)
        gb = grad * self.out * xp.where(self.a == 0, 0, log_a)
        return ga, gb


class MatMul(Function):
    """a @ b (1-D, 2-D or batched); d/da = g @ b^T, d/db = a^T @ g."""

    def forward(self, a, b):
        self.a, self.b = a, b
        try:
            return a @ b
        except ValueError:
            raise _shape_error("matmul", a, b) from None

    def backward(self, grad):
        xp = xp_of(grad)
        a, b = self.a, self.b
        # Treat 1-D operands as matrices (a row for a, a column for b), then drop the axis.
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g = grad
        if a.ndim == 1:
            g = xp.expand_dims(g, -2)
        if b.ndim == 1:
            g = xp.expand_dims(g, -1)
        ga = g @ xp.swapaxes(b2, -1, -2)
        gb = xp.swapaxes(a2, -1, -2) @ g
        if a.ndim == 1:
            ga = ga.reshape(ga.shape[:-2] + (-1,)) if ga.ndim > 2 else ga[0]
            ga = ga.reshape(-1, a.shape[0]).sum(0) if ga.ndim > 1 else ga
        if b.ndim == 1:
            gb = gb[..., 0]
            gb = gb.reshape(-1, b.shape[0]).sum(0) if gb.ndim > 1 else gb
        return ga, gb


# ============================================================================ elementwise
class Exp(Function):
    """e**x; its derivative is itself, so the output is kept."""

    def forward(self, x):
        self.out = xp_of(x).exp(x)
        return self.out

    def backward(self, grad):
        return (grad * self.out,)


class Log(Function):
    """Natural log; d/dx = 1/x."""

    def forward(self, x):
        self.x = x
        return xp_of(x).log(x)

    def backward(self, grad):
        return (grad / self.x,)


class Sqrt(Function):
    """sqrt(x); d/dx = 1 / (2 sqrt(x)) reuses the output."""

    def forward(self, x):
        self.out = xp_of(x).sqrt(x)
        return self.out

    def backward(self, grad):
        return (grad / (2 * self.out),)


class Abs(Function):
    """|x|; d/dx = sign(x), 0 at 0 (as PyTorch)."""

    def forward(self, x):
        self.x = x
        return xp_of(x).abs(x)

    def backward(self, grad):
        return (grad * xp_of(self.x).sign(self.x),)


class Clip(Function):
    """Clamp into [lo, hi]; gradient 1 where lo <= x <= hi (inclusive, as PyTorch), else 0."""

    def forward(self, x, lo=None, hi=None):
        self.x, self.lo, self.hi = x, lo, hi
        return xp_of(x).clip(x, lo, hi)

    def backward(self, grad):
        mask = True
        if self.lo is not None:
            mask = self.x >= self.lo
        if self.hi is not None:
            mask = mask & (self.x <= self.hi)
        return (grad * mask,)


class Maximum(Function):
    """Elementwise max(a, b); ties split the gradient equally (as PyTorch)."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return xp_of(a).maximum(a, b)

    def backward(self, grad):
        # the weights are cast so a float32 gradient stays float32
        wa = ((self.a > self.b) + 0.5 * (self.a == self.b)).astype(grad.dtype, copy=False)
        return grad * wa, grad * (1 - wa)


class Minimum(Function):
    """Elementwise min(a, b); ties split the gradient equally (as PyTorch)."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return xp_of(a).minimum(a, b)

    def backward(self, grad):
        wa = ((self.a < self.b) + 0.5 * (self.a == self.b)).astype(grad.dtype, copy=False)
        return grad * wa, grad * (1 - wa)


class Cast(Function):
    """Change dtype; the gradient goes back in the input's dtype."""

    def forward(self, x, dtype):
        self.dtype = x.dtype
        return x.astype(dtype)

    def backward(self, grad):
        return (grad.astype(self.dtype),)


# ============================================================================ activations
class ReLU(Function):
    """max(x, 0); gradient 1 where x > 0."""

    def forward(self, x):
        self.mask = x > 0
        return x * self.mask

    def backward(self, grad):
        return (grad * self.mask,)


class LeakyReLU(Function):
    """x where x > 0, slope * x elsewhere."""

    def forward(self, x, slope=0.01):
        self.x, self.slope = x, slope
        return xp_of(x).where(x > 0, x, x * slope)

    def backward(self, grad):
        return (xp_of(grad).where(self.x > 0, grad, grad * self.slope),)


class Sigmoid(Function):
    """1 / (1 + e**-x), computed from e**-|x| so it never overflows; d/dx = y (1 - y)."""

    def forward(self, x):
        xp = xp_of(x)
        e = xp.exp(-xp.abs(x))
        self.out = xp.where(x >= 0, 1 / (1 + e), e / (1 + e))
        return self.out

    def backward(self, grad):
        return (grad * self.out * (1 - self.out),)


class Tanh(Function):
    """tanh(x); its derivative 1 - tanh(x)**2 reuses the forward output."""

    def forward(self, x):
        self.out = xp_of(x).tanh(x)
        return self.out

    def backward(self, grad):
        return (grad * (1 - self.out * self.out),)


def _erf(x):
    xp = xp_of(x)
    if xp is np:
        from scipy.special import erf  # lazy: only GELU needs it
    else:  # pragma: no cover - GPU only
        from cupyx.scipy.special import erf
    return erf(x)


class GELU(Function):
    """x * Phi(x) (exact, with erf) or its tanh approximation, as PyTorch's ``approximate``."""

    def forward(self, x, approximate="none"):
        xp = xp_of(x)
        self.x, self.approximate = x, approximate
        if approximate == "tanh":
            k = math.sqrt(2 / math.pi)
            self.t = xp.tanh(k * (x + 0.044715 * x ** 3))
            return 0.5 * x * (1 + self.t)
        self.cdf = 0.5 * (1 + _erf(x / math.sqrt(2)))
        return x * self.cdf

    def backward(self, grad):
        xp = xp_of(grad)
        x = self.x
        if self.approximate == "tanh":
            k = math.sqrt(2 / math.pi)
            dt = (1 - self.t ** 2) * k * (1 + 3 * 0.044715 * x ** 2)
            return (grad * (0.5 * (1 + self.t) + 0.5 * x * dt),)
        pdf = xp.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
        return (grad * (self.cdf + x * pdf),)


class Step(Function):
    """Heaviside step: 1 where x >= 0, else 0; its gradient is zero everywhere (perceptron)."""

    def forward(self, x):
        return (x >= 0).astype(x.dtype)

    def backward(self, grad):
        return (grad * 0,)


# ============================================================================ reductions
def _norm_axis(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int):
        axis = (axis,)
    return tuple(a % ndim if ndim else 0 for a in axis)


def _expand(grad, shape, axis, keepdims):
    """Reshape a reduced gradient so it broadcasts against the input again."""
    if keepdims or grad.ndim == len(shape):
        return grad
    axes = _norm_axis(axis, len(shape))
    kept = tuple(1 if i in axes else n for i, n in enumerate(shape))
    return grad.reshape(kept)


class Sum(Function):
    """Sum over axes; every input element receives the output gradient."""

    def forward(self, x, axis=None, keepdims=False):
        self.shape, self.axis, self.keepdims = x.shape, axis, keepdims
        return x.sum(axis=axis, keepdims=keepdims)

    def backward(self, grad):
        g = _expand(grad, self.shape, self.axis, self.keepdims)
        return (xp_of(g).broadcast_to(g, self.shape),)


class Mean(Function):
    """Mean over axes; each input element receives grad / count."""

    def forward(self, x, axis=None, keepdims=False):
        self.shape, self.axis, self.keepdims = x.shape, axis, keepdims
        out = x.mean(axis=axis, keepdims=keepdims)
        self.count = x.size // max(out.size, 1) if x.size else 1
        return out

    def backward(self, grad):
        g = _expand(grad, self.shape, self.axis, self.keepdims) / self.count
        return (xp_of(g).broadcast_to(g, self.shape),)


class Max(Function):
    """Maximum over axes; the gradient goes to the maxima, split equally among ties."""

    reduce = "max"

    def forward(self, x, axis=None, keepdims=False):
        self.x, self.axis, self.keepdims = x, axis, keepdims
        self.out = getattr(x, self.reduce)(axis=axis, keepdims=True)
        return self.out if keepdims else self.out.reshape(
            tuple(n for i, n in enumerate(x.shape) if i not in _norm_axis(axis, x.ndim)))

    def backward(self, grad):
        hit = self.x == self.out
        count = hit.sum(axis=_norm_axis(self.axis, self.x.ndim), keepdims=True)
        g = _expand(grad, self.x.shape, self.axis, self.keepdims)
        return (g * hit / count.astype(g.dtype),)  # cast: int counts would promote to float64


class Min(Max):
    """Minimum over axes; the gradient goes to the minima, split equally among ties."""

    reduce = "min"


# ============================================================================ shapes
class Reshape(Function):
    """Same data, new shape; the gradient is reshaped back."""

    def forward(self, x, shape):
        self.shape = x.shape
        try:
            return x.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape shape {x.shape} into {tuple(shape)}") from None

    def backward(self, grad):
        return (grad.reshape(self.shape),)


class Transpose(Function):
    """Permute axes (reverse them when axes is None); the gradient is permuted back."""

    def forward(self, x, axes=None):
        self.axes = axes
        return x.transpose(axes) if axes is not None else x.T

    def backward(self, grad):
        if self.axes is None:
            return (grad.T,)
        return (grad.transpose(np.argsort(self.axes)),)


def _is_basic_index(index):
    items = index if isinstance(index, tuple) else (index,)
    return all(i is None or i is Ellipsis or isinstance(i, (int, slice, np.integer)) for i in items)


class GetItem(Function):
    """x[index] for slices, integer arrays and boolean masks; backward scatters (adds) back."""

    def forward(self, x, index):
        xp = xp_of(x)
        if xp is not np:  # a CuPy array is indexed with CuPy arrays: move NumPy ones along
            items = index if isinstance(index, tuple) else (index,)
            items = tuple(xp.asarray(i) if isinstance(i, np.ndarray) else i for i in items)
            index = items if isinstance(index, tuple) else items[0]
        self.shape, self.dtype, self.index = x.shape, x.dtype, index
        try:
            return x[index]
        except IndexError as exc:
            raise IndexError(f"index {index!r} does not fit a tensor of shape {x.shape}: {exc}") from None

    def backward(self, grad):
        xp = xp_of(grad)
        out = xp.zeros(self.shape, dtype=grad.dtype)
        if _is_basic_index(self.index):
            out[self.index] = grad  # a view: each element picked at most once
        else:
            xp.add.at(out, self.index, grad)  # repeated indices must add up
        return (out,)


class Concatenate(Function):
    """Join tensors along an axis; the gradient is split back into the pieces."""

    def forward(self, *xs, axis=0):
        xp = xp_of(xs[0])
        self.axis = axis
        self.sizes = [x.shape[axis] for x in xs]
        return xp.concatenate(xs, axis=axis)

    def backward(self, grad):
        xp = xp_of(grad)
        cuts = np.cumsum(self.sizes)[:-1].tolist()
        return tuple(xp.split(grad, cuts, axis=self.axis))


class Stack(Function):
    """Stack tensors along a new axis; each piece gets its slice of the gradient."""

    def forward(self, *xs, axis=0):
        self.axis = axis
        return xp_of(xs[0]).stack(xs, axis=axis)

    def backward(self, grad):
        xp = xp_of(grad)
        return tuple(xp.moveaxis(grad, self.axis, 0))


# ============================================================================ fused ops
class Linear(Function):
    """x @ W^T + b with W laid out (out, in) as PyTorch.

    NOTE: one node instead of three (matmul, transpose, add): fewer Python calls per layer,
    and BLAS reads W^T without a copy.
    """

    def forward(self, x, weight, bias=None):
        self.x, self.weight, self.has_bias = x, weight, bias is not None
        if x.shape[-1] != weight.shape[1]:
            raise ValueError(f"linear: input has {x.shape[-1]} features (shape {x.shape}) but the "
                             f"weight expects {weight.shape[1]} (weight shape {weight.shape})")
        out = x @ weight.T
        if bias is not None:
            out += bias
        return out

    def backward(self, grad):
        x = self.x
        # the first layer's input (the data) needs no gradient: skip that matmul
        gx = grad @ self.weight if self.needs_grad(0) else None
        g2 = grad.reshape(-1, grad.shape[-1])
        gw = g2.T @ x.reshape(-1, x.shape[-1])
        if self.has_bias:
            return gx, gw, g2.sum(axis=0)
        return gx, gw


class Softmax(Function):
    """exp(x - max) / sum; backward y * (g - sum(g * y))."""

    def forward(self, x, axis=-1):
        xp = xp_of(x)
        e = xp.exp(x - x.max(axis=axis, keepdims=True))
        self.out = e / e.sum(axis=axis, keepdims=True)
        self.axis = axis
        return self.out

    def backward(self, grad):
        y = self.out
        return (y * (grad - (grad * y).sum(axis=self.axis, keepdims=True)),)


def _log_softmax(x, axis):
    xp = xp_of(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


class LogSoftmax(Function):
    """x - logsumexp(x), shifted by the max so large inputs stay finite; backward g - softmax * sum(g)."""

    def forward(self, x, axis=-1):
        self.out = _log_softmax(x, axis)
        self.axis = axis
        return self.out

    def backward(self, grad):
        xp = xp_of(grad)
        return (grad - xp.exp(self.out) * grad.sum(axis=self.axis, keepdims=True),)


class CrossEntropy(Function):
    """Softmax cross-entropy from logits (N, C) or (C,), with class or probability targets.

    loss_i = -sum_c a_ic * log_softmax(z)_ic, where a_i is the (weighted, smoothed) target
    distribution; its gradient is softmax(z)_i * sum_c a_ic - a_i, divided by the reduction's
    denominator.
    NOTE: fused so the softmax is computed once and log(0) never occurs.
    """

    def forward(self, z, target, weight=None, label_smoothing=0.0, reduction="mean"):
        xp = xp_of(z)
        single = z.ndim == 1
        if single:
            z, target = z[None, :], target.reshape(1, *target.shape)
        n, c = z.shape
        logp = _log_softmax(z, 1)
        if target.dtype.kind in "iub":  # class indices
            t = target.astype(np.int64)
            if t.shape != (n,):
                raise ValueError(f"cross_entropy: class targets must have shape ({n},), got {target.shape}")
            if t.size and (t.min() < 0 or t.max() >= c):
                raise ValueError(f"cross_entropy: class targets must lie in [0, {c - 1}], "
                                 f"got values from {t.min()} to {t.max()}")
            a = xp.zeros_like(z)
            a[xp.arange(n), t] = 1.0
            if label_smoothing:
                a = a * (1 - label_smoothing) + label_smoothing / c
            denom = n
            if weight is not None:
                a = a * weight
                w_t = weight[t]
                # PyTorch divides the weighted sum by sum_i w_{y_i}, smoothing term included.
                denom = weight[t].sum()
        else:  # probabilities over classes
            if target.shape != z.shape:
                raise ValueError(f"cross_entropy: probability targets must have the logits' "
                                 f"shape {z.shape}, got {target.shape}")
            a = target.astype(z.dtype)
            if label_smoothing:
                a = a * (1 - label_smoothing) + label_smoothing / c
            if weight is not None:
                a = a * weight
            denom = n
        losses = -(a * logp).sum(axis=1)
        self.a, self.logp, self.reduction, self.single = a, logp, reduction, single
        self.denom = denom
        if reduction == "none":
            return losses[0] if single else losses
        if reduction == "sum":
            return losses.sum()
        return losses.sum() / denom

    def backward(self, grad):
        xp = xp_of(grad)
        p = xp.exp(self.logp)
        dz = p * self.a.sum(axis=1, keepdims=True) - self.a
        if self.reduction == "none":
            g = grad.reshape(-1, 1)
        elif self.reduction == "sum":
            g = grad
        else:
            g = grad / self.denom
        dz = (dz * g).astype(self.logp.dtype, copy=False)
        return (dz[0] if self.single else dz), None, None


class BCEWithLogits(Function):
    """Binary cross-entropy from logits: max(z,0) - z t + log(1 + e**-|z|); gradient sigmoid(z) - t.

    NOTE: fused so that large |z| neither overflows exp nor takes log(0).
    """

    def forward(self, z, t, weight=None, pos_weight=None, reduction="mean"):
        xp = xp_of(z)
        if t.shape != z.shape:
            raise ValueError(f"binary_cross_entropy_with_logits: target shape {t.shape} does not "
                             f"match input shape {z.shape}")
        t = t.astype(z.dtype, copy=False)
        e = xp.exp(-xp.abs(z))
        log1p_e = xp.log1p(e)
        sig = xp.where(z >= 0, 1 / (1 + e), e / (1 + e))
        if pos_weight is None:
            losses = xp.maximum(z, 0) - z * t + log1p_e
            dz = sig - t
        else:
            # loss = (1 - t) z + (1 + (pw - 1) t) * softplus(-z)
            lw = 1 + (pos_weight - 1) * t
            softplus_neg = xp.maximum(-z, 0) + log1p_e
            losses = (1 - t) * z + lw * softplus_neg
            dz = (1 - t) - lw * (1 - sig)
        if weight is not None:
            losses = losses * weight
            dz = dz * weight
        self.dz, self.reduction, self.n = dz, reduction, z.size
        if reduction == "none":
            return losses
        if reduction == "sum":
            return losses.sum()
        return losses.mean()

    def backward(self, grad):
        if self.reduction == "mean":
            grad = grad / self.n
        return (self.dz * grad).astype(self.dz.dtype, copy=False), None, None, None


class Normalize(Function):
    """(x - mean) / sqrt(var + eps) over ``axes``, then * gamma + beta (batch and layer norm).

    Backward, with xhat the normalised input, N the count over ``axes``, dy = g * gamma:
    dx = (dy - mean(dy) - xhat * mean(dy * xhat)) / sqrt(var + eps).
    NOTE: fused; as composites this would be about ten nodes per norm layer.
    """

    def forward(self, x, *affine, axes=(0,), eps=1e-5, mean=None, var=None):
        gamma, beta = affine if affine else (None, None)
        self.axes = axes
        if mean is None:  # batch statistics (training) or per-sample statistics (layer norm)
            mean = x.mean(axis=axes, keepdims=True)
            var = x.var(axis=axes, keepdims=True)
            self.batch_stats = True
        else:  # given running statistics: a fixed affine map of x
            self.batch_stats = False
        self.mean, self.var = mean, var
        self.inv = 1 / xp_of(x).sqrt(var + eps)
        self.xhat = (x - mean) * self.inv
        self.gamma, self.has_beta = gamma, beta is not None
        out = self.xhat if gamma is None else self.xhat * gamma
        if beta is not None:
            out = out + beta
        return out

    def backward(self, grad):
        xhat = self.xhat
        dy = grad if self.gamma is None else grad * self.gamma
        if self.batch_stats:
            dx = (dy - dy.mean(axis=self.axes, keepdims=True)
                  - xhat * (dy * xhat).mean(axis=self.axes, keepdims=True)) * self.inv
        else:
            dx = dy * self.inv
        grads = [dx]
        if self.gamma is not None:
            grads.append(grad * xhat)  # unbroadcast sums it to gamma's shape
        if self.has_beta:
            grads.append(grad)
        return tuple(grads)
