"""Primitive ops, the engine's internals: each one class with its forward and backward side by side.

(``functional.py`` holds the functions users call, built on these; this file is the maths.)

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
import sys
from typing import Any

import numpy as np

from . import kernels
from . import tensor as _tensor
from .backend import xp_of
from .kernels import numpy_ref
from .tensor import Tensor


class Function:
    """Base class of every op: ``apply`` runs ``forward`` and links the result into the graph.

    Example: ``Tanh.apply(x)`` (what ``x.tanh()`` calls); see the module docstring for a custom op
    """

    parents = None  # the input Tensors, set when a graph is recorded; None once freed

    @classmethod
    def apply(cls, *inputs: Tensor, **kwargs: Any) -> Tensor:
        """Run ``forward`` on the inputs' arrays; record the op in the graph if one needs a gradient.

        Example: ``y = Exp.apply(x)``
        """
        ctx = cls()
        out = ctx.forward(*[t.data for t in inputs], **kwargs)
        if isinstance(out, np.generic):  # NumPy reductions return scalars; keep data an array
            out = np.asarray(out)
        if _tensor._grad_mode.enabled:
            for t in inputs:
                if t.requires_grad:
                    result = Tensor._make(out, True)
                    ctx.parents = inputs
                    result._ctx = ctx
                    return result
        return Tensor._make(out, False)

    def needs_grad(self, i: int) -> bool:
        """Whether input ``i`` takes a gradient, so backward can skip costly unused work.

        Example: ``gb = grad * self.a if self.needs_grad(1) else None``
        """
        return self.parents[i].requires_grad

    def forward(self, *arrays: Any, **kwargs: Any) -> Any:  # pragma: no cover - abstract
        """Compute the output array from the input arrays, keeping what ``backward`` needs.

        Example: ``def forward(self, x): self.y = np.tanh(x); return self.y``
        """
        raise NotImplementedError

    def backward(self, grad: Any) -> tuple:  # pragma: no cover - abstract
        """Map d loss / d output to d loss / d input, one per input (``None`` where none is needed).

        Example: ``def backward(self, grad): return (grad * (1 - self.y ** 2),)``
        """
        raise NotImplementedError


_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))  # what kernels' loops take


def _kernels_for(training: bool, *arrays: Any) -> Any:
    """The module whose fused kernels (``neuralab.kernels``) an op runs on these arrays.

    Training (a forward that records a graph, and backward) takes ``kernels.active()``, the
    optimizers' choice, made alike in every process; inference takes numba's only once it is
    loaded (a first prediction never waits for its import); CuPy arrays, other dtypes and
    non-contiguous arrays take the NumPy reference. Every kernel gives its reference's bits,
    so the choice never changes a result.
    """
    if not kernels.usable(*arrays):
        return numpy_ref
    if training or kernels.loaded():
        return kernels.active()
    return numpy_ref


def _shape_error(op: str, a: Any, b: Any) -> ValueError:
    return ValueError(f"{op}: shapes {tuple(a.shape)} and {tuple(b.shape)} are not compatible")


# ============================================================================ arithmetic
class Add(Function):
    """a + b; both inputs receive the output gradient unchanged.

    Example: ``Add.apply(a, b)`` (what ``a + b`` calls)
    """

    def forward(self, a, b):
        try:
            return a + b
        except ValueError:
            raise _shape_error("add", a, b) from None

    def backward(self, grad):
        return grad, grad


class Sub(Function):
    """a - b; b receives the negated gradient.

    Example: ``Sub.apply(a, b)`` (what ``a - b`` calls)
    """

    def forward(self, a, b):
        try:
            return a - b
        except ValueError:
            raise _shape_error("sub", a, b) from None

    def backward(self, grad):
        return grad, -grad


class Mul(Function):
    """a * b; each input's gradient is the output gradient times the other input.

    Example: ``Mul.apply(a, b)`` (what ``a * b`` calls)
    """

    def forward(self, a, b):
        self.a, self.b = a, b
        try:
            return a * b
        except ValueError:
            raise _shape_error("mul", a, b) from None

    def backward(self, grad):
        # a constant factor (x * 0.5) needs no gradient: skip that product
        ga = grad * self.b if self.needs_grad(0) else None
        gb = grad * self.a if self.needs_grad(1) else None
        return ga, gb


class Div(Function):
    """a / b; d/da = 1/b, d/db = -a/b**2 = -out/b.

    Example: ``Div.apply(a, b)`` (what ``a / b`` calls)
    """

    def forward(self, a, b):
        self.b = b
        try:
            self.out = a / b
        except ValueError:
            raise _shape_error("div", a, b) from None
        return self.out

    def backward(self, grad):
        ga = grad / self.b
        return ga, (-ga * self.out if self.needs_grad(1) else None)


class Neg(Function):
    """-x.

    Example: ``Neg.apply(x)`` (what ``-x`` calls)
    """

    def forward(self, x):
        return -x

    def backward(self, grad):
        return (-grad,)


class Pow(Function):
    """x ** p for a constant number p; d/dx = p * x**(p-1).

    Example: ``Pow.apply(x, exponent=2.0)`` (what ``x ** 2`` calls)
    """

    def forward(self, x, exponent):
        self.x, self.p = x, exponent
        return x ** exponent

    def backward(self, grad):
        p = self.p
        if p == 2:
            return (grad * 2 * self.x,)
        return (grad * p * self.x ** (p - 1),)


class PowTensor(Function):
    """a ** b for tensors; d/da = b * a**(b-1), d/db = a**b * log(a) (0 where a == 0).

    Example: ``PowTensor.apply(a, b)`` (what ``a ** b`` calls when b is a Tensor)
    """

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
    """a @ b (1-D, 2-D or batched); d/da = g @ b^T, d/db = a^T @ g.

    Example: ``MatMul.apply(a, b)`` (what ``a @ b`` calls)
    """

    def forward(self, a, b):
        self.a, self.b = a, b
        try:
            return a @ b
        except ValueError:
            raise _shape_error("matmul", a, b) from None

    def backward(self, grad):
        xp = xp_of(grad)
        # As matmul does, treat a 1-D a as a row (1, k) and a 1-D b as a column (k, 1), give
        # the gradient those axes, and drop them at the end. Batch axes that were broadcast
        # are summed away by the engine's unbroadcast.
        a = self.a[None, :] if self.a.ndim == 1 else self.a
        b = self.b[:, None] if self.b.ndim == 1 else self.b
        g = grad[..., None] if self.b.ndim == 1 else grad
        g = g[..., None, :] if self.a.ndim == 1 else g
        ga = gb = None
        if self.needs_grad(0):
            ga = g @ xp.swapaxes(b, -1, -2)
            ga = ga[..., 0, :] if self.a.ndim == 1 else ga
        if self.needs_grad(1):
            gb = xp.swapaxes(a, -1, -2) @ g
            gb = gb[..., 0] if self.b.ndim == 1 else gb
        return ga, gb


# ============================================================================ elementwise
class Exp(Function):
    """e**x; its derivative is itself, so the output is kept.

    Example: ``Exp.apply(x)`` (what ``x.exp()`` calls)
    """

    def forward(self, x):
        self.out = xp_of(x).exp(x)
        return self.out

    def backward(self, grad):
        return (grad * self.out,)


class Log(Function):
    """Natural log; d/dx = 1/x.

    Example: ``Log.apply(x)`` (what ``x.log()`` calls)
    """

    def forward(self, x):
        self.x = x
        return xp_of(x).log(x)

    def backward(self, grad):
        return (grad / self.x,)


class Sqrt(Function):
    """sqrt(x); d/dx = 1 / (2 sqrt(x)) reuses the output.

    Example: ``Sqrt.apply(x)`` (what ``x.sqrt()`` calls)
    """

    def forward(self, x):
        self.out = xp_of(x).sqrt(x)
        return self.out

    def backward(self, grad):
        return (grad / (2 * self.out),)


class Abs(Function):
    """|x|; d/dx = sign(x), 0 at 0 (as PyTorch).

    Example: ``Abs.apply(x)`` (what ``x.abs()`` calls)
    """

    def forward(self, x):
        self.x = x
        return xp_of(x).abs(x)

    def backward(self, grad):
        return (grad * xp_of(self.x).sign(self.x),)


class Clip(Function):
    """Clamp into [lo, hi]; gradient 1 where lo <= x <= hi (inclusive, as PyTorch), else 0.

    Example: ``Clip.apply(x, lo=0.0, hi=1.0)`` (what ``x.clip(0, 1)`` calls)
    """

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
    """Elementwise max(a, b); ties split the gradient equally (as PyTorch).

    Example: ``Maximum.apply(a, b)`` (what ``F.maximum(a, b)`` calls)
    """

    def forward(self, a, b):
        self.a, self.b = a, b
        return xp_of(a).maximum(a, b)

    def backward(self, grad):
        # the weights are cast so a float32 gradient stays float32
        wa = ((self.a > self.b) + 0.5 * (self.a == self.b)).astype(grad.dtype, copy=False)
        return grad * wa, grad * (1 - wa)


class Minimum(Function):
    """Elementwise min(a, b); ties split the gradient equally (as PyTorch).

    Example: ``Minimum.apply(a, b)`` (what ``F.minimum(a, b)`` calls)
    """

    def forward(self, a, b):
        self.a, self.b = a, b
        return xp_of(a).minimum(a, b)

    def backward(self, grad):
        wa = ((self.a < self.b) + 0.5 * (self.a == self.b)).astype(grad.dtype, copy=False)
        return grad * wa, grad * (1 - wa)


class Cast(Function):
    """Change dtype; the gradient goes back in the input's dtype.

    Example: ``Cast.apply(x, dtype=np.dtype("float64"))`` (what ``x.astype("float64")`` calls)
    """

    def forward(self, x, dtype):
        self.dtype = x.dtype
        return x.astype(dtype)

    def backward(self, grad):
        return (grad.astype(self.dtype),)


# ============================================================================ activations
class ReLU(Function):
    """max(x, 0); gradient 1 where x > 0.

    Example: ``ReLU.apply(x)`` (what ``F.relu(x)`` calls)
    """

    def forward(self, x):
        # one pass; the mask is made in backward, so inference never pays for it
        self.out = xp_of(x).maximum(x, 0)  # not x * (x > 0), which gives -0.0 for x < 0
        return self.out

    def backward(self, grad):
        return (grad * (self.out > 0),)


class LeakyReLU(Function):
    """x where x > 0, slope * x elsewhere.

    Example: ``LeakyReLU.apply(x, slope=0.01)`` (what ``F.leaky_relu(x)`` calls)
    """

    def forward(self, x, slope=0.01):
        self.x, self.slope = x, slope
        return xp_of(x).where(x > 0, x, x * slope)

    def backward(self, grad):
        return (xp_of(grad).where(self.x > 0, grad, grad * self.slope),)


class Sigmoid(Function):
    """1 / (1 + e**-x), computed from e**-|x| so it never overflows; d/dx = y (1 - y).

    Example: ``Sigmoid.apply(x)`` (what ``F.sigmoid(x)`` calls)
    """

    def forward(self, x):
        xp = xp_of(x)
        e = xp.exp(-xp.abs(x))
        self.out = xp.where(x >= 0, 1 / (1 + e), e / (1 + e))
        return self.out

    def backward(self, grad):
        return (grad * self.out * (1 - self.out),)


class Tanh(Function):
    """tanh(x); its derivative 1 - tanh(x)**2 reuses the forward output.

    Example: ``Tanh.apply(x)`` (what ``F.tanh(x)`` calls)
    """

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
    """x * Phi(x) (exact, with erf) or its tanh approximation, as PyTorch's ``approximate``.

    Example: ``GELU.apply(x, approximate="none")`` (what ``F.gelu(x)`` calls)
    """

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
    """Heaviside step: 1 where x >= 0, else 0; its gradient is zero everywhere (perceptron).

    Example: ``Step.apply(x)`` (what ``F.step(x)`` calls)
    """

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
    """Sum over axes; every input element receives the output gradient.

    Example: ``Sum.apply(x, axis=0, keepdims=False)`` (what ``x.sum(axis=0)`` calls)
    """

    def forward(self, x, axis=None, keepdims=False):
        self.shape, self.axis, self.keepdims = x.shape, axis, keepdims
        return x.sum(axis=axis, keepdims=keepdims)

    def backward(self, grad):
        g = _expand(grad, self.shape, self.axis, self.keepdims)
        return (xp_of(g).broadcast_to(g, self.shape),)


class Mean(Function):
    """Mean over axes; each input element receives grad / count.

    Example: ``Mean.apply(x, axis=None, keepdims=False)`` (what ``x.mean()`` calls)
    """

    def forward(self, x, axis=None, keepdims=False):
        self.shape, self.axis, self.keepdims = x.shape, axis, keepdims
        out = x.mean(axis=axis, keepdims=keepdims)
        self.count = x.size // max(out.size, 1) if x.size else 1
        return out

    def backward(self, grad):
        g = _expand(grad, self.shape, self.axis, self.keepdims) / self.count
        return (xp_of(g).broadcast_to(g, self.shape),)


class Max(Function):
    """Maximum over axes; the gradient goes to the maxima, split equally among ties.

    Example: ``Max.apply(x, axis=1, keepdims=False)`` (what ``x.max(axis=1)`` calls)
    """

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
    """Minimum over axes; the gradient goes to the minima, split equally among ties.

    Example: ``Min.apply(x, axis=1, keepdims=False)`` (what ``x.min(axis=1)`` calls)
    """

    reduce = "min"


# ============================================================================ shapes
class Reshape(Function):
    """Same data, new shape; the gradient is reshaped back.

    Example: ``Reshape.apply(x, shape=(2, -1))`` (what ``x.reshape(2, -1)`` calls)
    """

    def forward(self, x, shape):
        self.shape = x.shape
        try:
            return x.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape shape {x.shape} into {tuple(shape)}") from None

    def backward(self, grad):
        return (grad.reshape(self.shape),)


class Transpose(Function):
    """Permute axes (reverse them when axes is None); the gradient is permuted back.

    Example: ``Transpose.apply(x, axes=None)`` (what ``x.T`` calls)
    """

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
    """x[index] for slices, integer arrays and boolean masks; backward scatters (adds) back.

    Example: ``x[:, 0]`` (indexing a Tensor records this op)
    """

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
    """Join tensors along an axis; the gradient is split back into the pieces.

    Example: ``Concatenate.apply(a, b, axis=1)`` (what ``F.concatenate([a, b], axis=1)`` calls)
    """

    def forward(self, *xs, axis=0):
        xp = xp_of(xs[0])
        self.axis = axis
        try:
            self.sizes = [x.shape[axis] for x in xs]
            return xp.concatenate(xs, axis=axis)
        except (ValueError, IndexError):
            raise ValueError(f"concatenate: shapes {[x.shape for x in xs]} do not fit together "
                             f"along axis {axis}") from None

    def backward(self, grad):
        xp = xp_of(grad)
        cuts = np.cumsum(self.sizes)[:-1].tolist()
        return tuple(xp.split(grad, cuts, axis=self.axis))


class Stack(Function):
    """Stack tensors along a new axis; each piece gets its slice of the gradient.

    Example: ``Stack.apply(a, b, axis=0)`` (what ``F.stack([a, b])`` calls)
    """

    def forward(self, *xs, axis=0):
        self.axis = axis
        try:
            return xp_of(xs[0]).stack(xs, axis=axis)
        except (ValueError, IndexError):
            raise ValueError(f"stack: shapes {[x.shape for x in xs]} must all be equal "
                             f"(axis {axis})") from None

    def backward(self, grad):
        xp = xp_of(grad)
        return tuple(xp.moveaxis(grad, self.axis, 0))


# ============================================================================ fused ops
class Linear(Function):
    """x @ W^T + b with W laid out (out, in) as PyTorch.

    NOTE: one node instead of three (matmul, transpose, add): fewer Python calls per layer,
    and BLAS reads W^T without a copy.

    Example: ``Linear.apply(x, weight, bias)`` (what ``F.linear(x, weight, bias)`` calls)
    """

    def forward(self, x, weight, bias=None):
        self.x, self.weight, self.has_bias = x, weight, bias is not None
        if x.shape[-1] != weight.shape[1]:
            raise ValueError(f"linear: input has {x.shape[-1]} features (shape {x.shape}) but the "
                             f"weight expects {weight.shape[1]} (weight shape {weight.shape})")
        out = x @ weight.T  # a SciPy sparse x (rows of a TF-IDF matrix, say) gives a dense out
        if bias is not None:
            out = out + bias if is_sparse(x) else _add_inplace(out, bias)
        return out

    def backward(self, grad):
        x = self.x
        # the first layer's input (the data) needs no gradient: skip that matmul
        gx = grad @ self.weight if self.needs_grad(0) else None
        g2 = grad.reshape(-1, grad.shape[-1])
        if not self.needs_grad(1):  # frozen weights (an explanation's input gradient): no dW
            gw = None
        elif is_sparse(x):
            # NOTE: grad.T @ x for a sparse x, written as (x.T @ grad).T: SciPy multiplies a
            # sparse matrix by a dense one, not the other way round; a sparse input takes no
            # gradient (it is data).
            gw, gx = np.asarray((x.T @ g2).T), None
        else:
            gw = g2.T @ x.reshape(-1, x.shape[-1])
        if self.has_bias:
            return gx, gw, g2.sum(axis=0) if self.needs_grad(2) else None
        return gx, gw


def is_sparse(x: Any) -> bool:
    """Whether ``x`` is a SciPy sparse matrix or array (checked without importing SciPy).

    Example: ``is_sparse(scipy.sparse.csr_matrix(np.eye(3)))  # True``
    """
    # NOTE: asked several times per training batch: a NumPy array is answered by one
    # identity test, without looking up and comparing the type's module name
    return type(x) is not np.ndarray and type(x).__module__.startswith("scipy.sparse")


def _add_inplace(out: Any, bias: Any) -> Any:
    out += bias
    return out


class Softmax(Function):
    """exp(x - max) / sum; backward y * (g - sum(g * y)).

    Example: ``Softmax.apply(x, axis=-1)`` (what ``F.softmax(x)`` calls)
    """

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
    """x - logsumexp(x), shifted by the max so large inputs stay finite; backward g - softmax * sum(g).

    Example: ``LogSoftmax.apply(x, axis=-1)`` (what ``F.log_softmax(x)`` calls)
    """

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

    Example: ``F.cross_entropy(logits, y)`` applies it
    """

    def forward(self, z, target, weight=None, label_smoothing=0.0, reduction="mean"):
        xp = xp_of(z)
        single = z.ndim == 1
        if single:
            z, target = z[None, :], target.reshape(1, *target.shape)
        n, c = z.shape
        self.dz = self.logp = None  # dz: set by the fused kernel's path
        fused = (target.dtype.kind in "iub" and weight is None and not label_smoothing
                 and type(z) is np.ndarray and z.dtype in _KERNEL_DTYPES)
        logp = None if fused else _log_softmax(z, 1)
        if target.dtype.kind in "iub":  # class indices
            t = target.astype(np.int64)
            if t.shape != (n,):
                raise ValueError(f"cross_entropy: class targets must have shape ({n},), got {target.shape}")
            if t.size and (t.min() < 0 or t.max() >= c):
                raise ValueError(f"cross_entropy: class targets must lie in [0, {c - 1}], "
                                 f"got values from {t.min()} to {t.max()}")
            if fused:
                return self._fused(z, t, reduction, single)
            a = xp.zeros_like(z)
            a[xp.arange(n), t] = 1.0
            if label_smoothing:
                a = a * (1 - label_smoothing) + label_smoothing / c
            denom = n
            if weight is not None:
                a = a * weight
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
        return self._reduce(losses, single)

    def _fused(self, z, t, reduction, single):
        """Class indices, no weight or smoothing, a NumPy float32/float64 batch: the losses and
        the unscaled gradient softmax - onehot from ``kernels``' softmax_xent, the captured
        training step's kernel (``training/captured.py``), so the two give the same bits."""
        # NOTE: no one-hot array, no a * logp, one exp: float32 forward + backward through the
        # graph (128, 10) 61-95 -> 20-46 us, (256, 10) 78-96 -> 40-43 us, (1024, 1000) 6.1-20 ->
        # 3.5-4.3 ms (interleaved A/B, two runs at load 4.5-6)
        # a step needs the kernels the optimizers use (kernels.active(): the same choice in
        # every process); a loss computed without a graph must not wait for numba's import
        # (the bits are the same either way: the kernel's exps and logs are NumPy's)
        z = np.ascontiguousarray(z)
        k = _kernels_for(_tensor._grad_mode.enabled, z)
        dz, losses = np.empty_like(z), np.empty(z.shape[0], z.dtype)
        k.softmax_xent(z, t, z.dtype.type(1), dz, losses)  # times 1: backward scales
        self.dz, self.reduction, self.single, self.denom = dz, reduction, single, z.shape[0]
        return self._reduce(losses, single)

    def _reduce(self, losses, single):
        if self.reduction == "none":
            return losses[0] if single else losses
        if self.reduction == "sum":
            return losses.sum()
        return losses.sum() / self.denom

    def backward(self, grad):
        xp = xp_of(grad)
        if self.dz is not None:
            dz = self.dz
        else:
            dz = xp.exp(self.logp) * self.a.sum(axis=1, keepdims=True) - self.a
        if self.reduction == "none":
            g = grad.reshape(-1, 1)
        elif self.reduction == "sum":
            g = grad
        else:
            g = grad / self.denom
        dtype = dz.dtype if self.logp is None else self.logp.dtype
        dz = (dz * g).astype(dtype, copy=False)
        return (dz[0] if self.single else dz), None, None


class Dropout(Function):
    """Inverted dropout of a NumPy float32/float64 array, fused: ``x * (keep * scale)`` with
    ``keep = u >= p``; backward ``grad * (keep * scale)``. The mask is kept as bools.

    ``u`` holds the uniform numbers (``rng.random(x.shape)``) and ``scale`` is 1 / (1 - p) in
    ``x``'s dtype: the arithmetic of ``x * Tensor(keep.astype(dtype) * scale)``, so the
    same bits, in one pass forward and one backward (``kernels``' dropout).

    Example: ``Dropout.apply(x, u=rng.random(x.shape), p=0.2, scale=np.float32(1.25))``
    """

    # NOTE: float32 (256, 1024) forward + backward 725-915 -> 673-678 us (two A/B runs at
    # load 4-6), most of it rng.random's ~500 us; the mask takes 1 byte a value instead of 4
    def forward(self, x, u=None, p=0.5, scale=None):
        # training only (dropout is the identity in eval): the kernels the optimizers use
        if not x.flags.c_contiguous:
            x = x.copy()
        out, mask = np.empty_like(x), np.empty(x.shape, np.bool_)
        kernels.active().dropout(x, u, p, scale, out, mask)
        self.mask, self.scale = mask, scale
        return out

    def backward(self, grad):
        if not kernels.usable(grad) or grad.dtype != self.scale.dtype or grad.shape != self.mask.shape:
            return (grad * (self.mask.astype(self.scale.dtype) * self.scale),)
        out = np.empty_like(grad)
        kernels.active().dropout_backward(grad, self.mask, self.scale, out)
        return (out,)


class BCEWithLogits(Function):
    """Binary cross-entropy from logits: max(z,0) - z t + log(1 + e**-|z|); gradient sigmoid(z) - t.

    NOTE: fused so that large |z| neither overflows exp nor takes log(0).

    Example: ``F.binary_cross_entropy_with_logits(logits, t)`` applies it
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

    Example: ``F.batch_norm(...)`` and ``F.layer_norm(...)`` apply it
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


# ============================================================================ convolution, pooling, embedding, recurrence
# (Layers beyond the MLP. Channels-first (N, C, H, W) as PyTorch.)
def _conv_out(size: int, k: int, stride: int, dilation: int, pad_lo: int, pad_hi: int) -> int:
    """Output length of a sliding window: how many taps fit into the padded input."""
    return (size + pad_lo + pad_hi - dilation * (k - 1) - 1) // stride + 1


def _tap(i: int, j: int, stride: tuple, dilation: tuple, ho: int, wo: int) -> tuple:
    """The input positions that kernel tap (i, j) reads, for every output position at once."""
    (sh, sw), (dh, dw) = stride, dilation
    return (slice(None), slice(None),
            slice(i * dh, i * dh + sh * (ho - 1) + 1, sh),
            slice(j * dw, j * dw + sw * (wo - 1) + 1, sw))


def _pad2d(x, padding, value=0.0):
    pt, pb, pl, pr = padding
    if not (pt or pb or pl or pr):
        return x
    return xp_of(x).pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=value)


def _unpad2d(x, padding):
    pt, pb, pl, pr = padding
    return x[:, :, pt:x.shape[2] - pb, pl:x.shape[3] - pr]


class Conv2d(Function):
    """2-D convolution (cross-correlation, as PyTorch) of (N, C, H, W) with (O, C/groups, kh, kw).

    Forward ("im2col"): copy the input under every kernel tap into a column matrix
    cols (groups, C/groups*kh*kw, positions); the convolution is then one GEMM, W @ cols.
    Backward: dW = grad @ cols^T and dcols = W^T @ grad (two GEMMs); "col2im" adds each
    tap's slice of dcols back onto the input positions it was copied from.
    NOTE: three speed choices. (1) Arrays are laid out (C, H, W, N) inside, batch innermost:
    each tap copies runs of Wo*N contiguous numbers, and the output is returned as an
    (N, O, Ho, Wo) view of exactly the layout the next convolution reads. (2) cols is built
    for a band of output rows at a time (about 1 MB), so it stays in cache for its GEMM and
    is rebuilt in backward instead of being stored: memory traffic, not arithmetic, is what
    a full-size im2col costs on CPU. The copies are the ``im2col``/``col2im`` kernels
    (``neuralab.kernels``: compiled loops, or the NumPy slices). (3) One buffer serves every
    band, taken from ``workspace`` (``nn.Conv2d`` keeps one) so that it is not fresh memory
    on the next call: a new 1 MB array per band meant page faults, and with two threads the
    frees' TLB shootdowns; col2im after a 2-thread GEMM took 0.73 ms a band (0.16 ms on one
    thread). A 2-epoch fit of a 2-conv MNIST net (4,096 images): 9.7-9.9 -> 8.2-8.3 s.

    Example: ``F.conv2d(x, weight, bias, stride=1, padding=1)`` applies it
    """

    CHUNK = 1 << 18  # numbers of cols per band: 1 MB in float32, fits in a core's L2 cache

    def forward(self, x, weight, *bias, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1,
                workspace=None):
        xp, self.ws = xp_of(x), workspace  # ws: the band buffers, reused across calls
        if x.ndim != 4:
            raise ValueError(f"conv2d: input must be (N, C, H, W), got shape {x.shape}")
        n, c, h, w = x.shape
        o, cg, kh, kw = weight.shape
        if c != cg * groups or o % groups:
            raise ValueError(f"conv2d: input has {c} channels, weight {weight.shape} with groups={groups} "
                             f"expects {cg * groups} (and out channels divisible by groups)")
        pt, pb, pl, pr = padding
        ho = _conv_out(h, kh, stride[0], dilation[0], pt, pb)
        wo = _conv_out(w, kw, stride[1], dilation[1], pl, pr)
        if ho <= 0 or wo <= 0:
            raise ValueError(f"conv2d: input {x.shape} is smaller than the (dilated) kernel {weight.shape[2:]}")
        self.xpad = xp.zeros((c, h + pt + pb, w + pl + pr, n), dtype=x.dtype)
        self.xpad[:, pt:pt + h, pl:pl + w] = x.transpose(1, 2, 3, 0)
        self.copies = _kernels_for(_tensor._grad_mode.enabled, self.xpad)  # im2col, col2im
        self.wmat = weight.reshape(groups, o // groups, cg * kh * kw)
        self.wshape, self.out_hw, self.has_bias = weight.shape, (ho, wo), bool(bias)
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        out = xp.empty((o, ho, wo, n), dtype=x.dtype)
        bands = self._bands()
        band_cols = (bands[0][1] - bands[0][0]) * wo * n  # positions in a (full) band
        colbuf = _scratch(workspace, "cols", (c * kh * kw * band_cols,), x.dtype, xp)
        prod = _scratch(workspace, "prod", (o * band_cols,), x.dtype, xp)
        for r0, r1 in bands:
            cols = self._im2col(r0, r1, colbuf)
            band = prod[:o * cols.shape[-1]].reshape(groups, o // groups, cols.shape[-1])
            xp.matmul(self.wmat, cols, out=band)
            out[:, r0:r1] = band.reshape(o, r1 - r0, wo, n)
        if bias:
            out += bias[0][:, None, None, None]
        return out.transpose(3, 0, 1, 2)

    def _bands(self):
        """Output-row ranges [r0, r1) whose cols fit in CHUNK numbers."""
        c, _, _, n = self.xpad.shape
        ho, wo = self.out_hw
        rows = max(1, self.CHUNK // (c * self.wshape[2] * self.wshape[3] * wo * n))
        return [(r0, min(ho, r0 + rows)) for r0 in range(0, ho, rows)]

    def _im2col(self, r0, r1, buf):
        """The band [r0, r1)'s cols, written into the flat buffer ``buf`` (every band's)."""
        c, _, _, n = self.xpad.shape
        kh, kw = self.wshape[2:]
        shape = (c, kh, kw, r1 - r0, self.out_hw[1], n)
        cols = buf[:c * kh * kw * (r1 - r0) * self.out_hw[1] * n].reshape(shape)
        self.copies.im2col(self.xpad, cols, r0, self.stride, self.dilation)
        return cols.reshape(self.groups, -1, (r1 - r0) * self.out_hw[1] * n)

    def backward(self, grad):
        xp = xp_of(grad)
        n, o, ho, wo = grad.shape
        c, hp, wp, _ = self.xpad.shape
        kh, kw = self.wshape[2:]
        # free (a view) when grad has the (O, Ho, Wo, N) memory layout our forward produced
        g = grad.transpose(1, 2, 3, 0).reshape(self.groups, o // self.groups, ho * wo * n)
        # dW^T (groups, C/groups*kh*kw, O/groups): BLAS runs cols @ g^T faster than g @ cols^T here
        dwt = xp.zeros(self.wmat.transpose(0, 2, 1).shape, dtype=grad.dtype)
        need_dx = self.needs_grad(0)  # a first layer's input needs none: skip a GEMM and col2im
        dxpad = xp.zeros(self.xpad.shape, dtype=grad.dtype) if need_dx else None
        bands = self._bands()
        ws, size = self.ws, c * kh * kw * (bands[0][1] - bands[0][0]) * wo * n
        colbuf = _scratch(ws, "cols", (size,), grad.dtype, xp)
        dcolbuf = _scratch(ws, "dcols", (size,), grad.dtype, xp) if need_dx else None
        dw_band = _scratch(ws, "dw", dwt.shape, grad.dtype, xp)
        for r0, r1 in bands:
            gb = g[:, :, r0 * wo * n:r1 * wo * n]
            dwt += xp.matmul(self._im2col(r0, r1, colbuf), gb.transpose(0, 2, 1), out=dw_band)
            if need_dx:
                dcols = dcolbuf[:c * kh * kw * gb.shape[-1]].reshape(self.groups, -1, gb.shape[-1])
                xp.matmul(self.wmat.transpose(0, 2, 1), gb, out=dcols)
                self.copies.col2im(dcols.reshape(c, kh, kw, r1 - r0, wo, n), dxpad, r0, self.stride, self.dilation)
        dx = None
        if need_dx:
            pt, pb, pl, pr = self.padding
            dx = dxpad[:, pt:hp - pb, pl:wp - pr].transpose(3, 0, 1, 2)
        dw = dwt.transpose(0, 2, 1).reshape(self.wshape)
        if self.has_bias:
            return dx, dw, g.reshape(o, -1).sum(axis=1)
        return dx, dw


class MaxPool2d(Function):
    """Maximum over each window of (N, C, H, W); the gradient goes to the (first) maximum, as PyTorch.

    Example: ``F.max_pool2d(x, 2)`` applies it
    """

    def forward(self, x, kernel=(2, 2), stride=(2, 2), padding=(0, 0, 0, 0), dilation=(1, 1)):
        xp = xp_of(x)
        kh, kw = kernel
        ho = _conv_out(x.shape[2], kh, stride[0], dilation[0], padding[0], padding[1])
        wo = _conv_out(x.shape[3], kw, stride[1], dilation[1], padding[2], padding[3])
        if ho <= 0 or wo <= 0:
            raise ValueError(f"max_pool2d: input {x.shape} is smaller than the window {kernel}")
        xpad = _pad2d(x, padding, value=-np.inf)  # padding never wins the max
        # NOTE: a running maximum over the taps (strided views, nothing stacked) is several
        # times faster than argmax over a stacked copy; ">" keeps the first maximum on ties.
        out = xpad[_tap(0, 0, stride, dilation, ho, wo)].copy()
        self.arg = xp.zeros(out.shape, dtype=np.uint8 if kh * kw <= 256 else np.int32)  # which tap won, per output position
        for k in range(1, kh * kw):
            tap = xpad[_tap(*divmod(k, kw), stride, dilation, ho, wo)]
            better = (tap > out) | xp.isnan(tap)  # NaN wins, so it propagates as in PyTorch
            xp.copyto(out, tap, where=better)
            self.arg[better] = k
        self.xpad_shape = xpad.shape
        self.kernel, self.stride, self.padding, self.dilation = kernel, stride, padding, dilation
        return out

    def backward(self, grad):
        xp = xp_of(grad)
        kh, kw = self.kernel
        ho, wo = grad.shape[2:]
        dxpad = xp.zeros(self.xpad_shape, dtype=grad.dtype)
        # windows that do not overlap (the usual stride == kernel) own their inputs: write, not add
        disjoint = all(s >= d * (k - 1) + 1 for s, k, d in zip(self.stride, self.kernel, self.dilation))
        for k in range(kh * kw):
            i, j = divmod(k, kw)
            where = dxpad[_tap(i, j, self.stride, self.dilation, ho, wo)]
            if disjoint:
                xp.multiply(grad, self.arg == k, out=where)
            else:
                where += grad * (self.arg == k)
        return (_unpad2d(dxpad, self.padding),)


class AvgPool2d(Function):
    """Mean over each window of (N, C, H, W), zero padding counted (PyTorch's default);
    every input position in a window receives grad / window size.

    Example: ``F.avg_pool2d(x, 2)`` applies it
    """

    def forward(self, x, kernel=(2, 2), stride=(2, 2), padding=(0, 0, 0, 0)):
        kh, kw = kernel
        ho = _conv_out(x.shape[2], kh, stride[0], 1, padding[0], padding[1])
        wo = _conv_out(x.shape[3], kw, stride[1], 1, padding[2], padding[3])
        if ho <= 0 or wo <= 0:
            raise ValueError(f"avg_pool2d: input {x.shape} is smaller than the window {kernel}")
        xpad = _pad2d(x, padding)
        out = xp_of(x).zeros((x.shape[0], x.shape[1], ho, wo), dtype=x.dtype)
        for i in range(kh):
            for j in range(kw):
                out += xpad[_tap(i, j, stride, (1, 1), ho, wo)]
        self.shape, self.xpad_shape = x.shape, xpad.shape
        self.kernel, self.stride, self.padding = kernel, stride, padding
        return out / (kh * kw)

    def backward(self, grad):
        kh, kw = self.kernel
        ho, wo = grad.shape[2:]
        dxpad = xp_of(grad).zeros(self.xpad_shape, dtype=grad.dtype)
        g = grad / (kh * kw)
        for i in range(kh):
            for j in range(kw):
                dxpad[_tap(i, j, self.stride, (1, 1), ho, wo)] += g
        return (_unpad2d(dxpad, self.padding),)


class Embedding(Function):
    """Rows of a weight table picked by integer indices; backward adds each output row's
    gradient onto the row it came from (rows picked twice get both), none to ``padding_idx``.

    Example: ``F.embedding(indices, weight)`` applies it
    """

    def forward(self, weight, indices=None, padding_idx=None):
        if indices.dtype.kind not in "iu":
            raise TypeError(f"embedding: indices must be integers, got dtype {indices.dtype}")
        if indices.size and (indices.min() < 0 or indices.max() >= weight.shape[0]):
            raise IndexError(f"embedding: indices must lie in [0, {weight.shape[0] - 1}], got values "
                             f"from {indices.min()} to {indices.max()}")
        self.indices, self.wshape, self.padding_idx = indices, weight.shape, padding_idx
        return weight[indices]

    def backward(self, grad):
        xp = xp_of(grad)
        dw = xp.zeros(self.wshape, dtype=grad.dtype)
        xp.add.at(dw, self.indices.reshape(-1), grad.reshape(-1, self.wshape[1]))
        if self.padding_idx is not None:
            dw[self.padding_idx] = 0
        return (dw,)


class Workspace(dict):
    """Scratch arrays an op may reuse from one call to the next (``nn.LSTM``/``nn.GRU`` keep one).

    NOTE: speed. A new array of a few MB is fresh memory from the OS: every page of it is
    faulted in again on each call (~2,800 page faults per LSTM(28->128) forward+backward on a
    64x28 batch). Reusing the arrays took that from about 15 to 11.3 ms at 2 threads (GRU 11.2
    to 8.5 ms), results bit for bit the same. Copies and pickles start empty.
    Example: ``LSTMSequence.apply(x, h0, c0, w_ih, w_hh, workspace=Workspace())``
    """

    def __deepcopy__(self, memo: dict) -> "Workspace":
        return type(self)()

    def __reduce__(self) -> tuple:
        return (type(self), ())


def _refs(ws, key):
    return sys.getrefcount(ws.get(key))


_FREE = _refs({0: np.empty(1)}, 0)  # the count when only the dict holds the array


def _scratch(ws, name, shape, dtype, xp):
    """An uninitialised array, taken from the workspace ``ws`` when nothing else holds it.

    An array in use (saved by an op of a live graph, returned as an output, or any view of
    it) has more references than the workspace's own, so it is never overwritten: a new array
    is made and kept in its place.
    """
    if ws is None:
        return xp.empty(shape, dtype=dtype)
    key = (name, tuple(shape), np.dtype(dtype).str, xp.__name__)
    if key not in ws or _refs(ws, key) > _FREE:
        ws[key] = xp.empty(shape, dtype=dtype)
    return ws[key]


def _sigmoid(z):
    # 0.5 (1 + tanh(z/2)) equals 1 / (1 + e**-z) and never overflows.
    return 0.5 * (1 + xp_of(z).tanh(0.5 * z))


class RNNSequence(Function):
    """One Elman RNN layer, one direction, over a whole sequence (T, N, I):
    h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), act tanh or relu.

    Backward is backpropagation through time: the same loop run from the last step to the first,
    dz_t = (dh_t + grad_t) * act'(z_t),  dh_{t-1} = dz_t @ W_hh.
    NOTE: speed, as LSTMSequence: one node per sequence; per-step arrays transposed to
    (H, N) and written in place; the input projection of all steps one GEMM before the loop.

    Example: ``nn.RNN(8, 16)(x)`` applies it
    """

    def forward(self, x, h0, w_ih, w_hh, *biases, nonlinearity="tanh"):
        xp = xp_of(x)
        t_len, n, _ = x.shape
        xt = xp.ascontiguousarray(x.transpose(0, 2, 1))      # (T, I, N)
        hs = xp.empty((t_len + 1, w_hh.shape[0], n), dtype=x.dtype)
        hs[0] = h0.T
        xp.matmul(w_ih, xt, out=hs[1:])                       # z of every step, activated in place
        for b in biases:
            hs[1:] += b[:, None]
        hz = xp.empty_like(hs[0])
        for t in range(t_len):
            z = hs[t + 1]
            z += xp.matmul(w_hh, hs[t], out=hz)
            if nonlinearity == "tanh":
                xp.tanh(z, out=z)
            else:
                xp.maximum(z, 0, out=z)
        self.xt, self.hs, self.w_ih, self.w_hh = xt, hs, w_ih, w_hh
        self.nonlinearity, self.n_bias = nonlinearity, len(biases)
        return hs[1:].transpose(0, 2, 1)

    def backward(self, grad):
        xp = xp_of(grad)
        grad = xp.ascontiguousarray(grad.transpose(0, 2, 1))  # (T, H, N) as the forward's arrays
        hs, t_len, n = self.hs, grad.shape[0], grad.shape[2]
        dh, d = xp.zeros_like(hs[0]), xp.empty_like(hs[0])
        # weight gradients summed step by step while d is in cache (see LSTMSequence.backward)
        dw_ih, dw_hh = xp.zeros_like(self.w_ih), xp.zeros_like(self.w_hh)
        part_ih, part_hh, db = xp.empty_like(dw_ih), xp.empty_like(dw_hh), xp.zeros(len(d), dtype=grad.dtype)
        dx = xp.empty((t_len, n, self.xt.shape[1]), dtype=grad.dtype) if self.needs_grad(0) else None
        for t in range(t_len - 1, -1, -1):
            dh += grad[t]
            h = hs[t + 1]
            if self.nonlinearity == "tanh":                   # tanh' = 1 - h^2
                xp.multiply(h, h, out=d)
                xp.subtract(1, d, out=d)
                d *= dh
            else:
                xp.multiply(dh, h > 0, out=d)
            dw_ih += xp.matmul(d, self.xt[t].T, out=part_ih)
            dw_hh += xp.matmul(d, hs[t].T, out=part_hh)
            db += d.sum(axis=1)
            if dx is not None:
                xp.matmul(d.T, self.w_ih, out=dx[t])
            xp.matmul(self.w_hh.T, d, out=dh)
        grads = (dx, dh.T, dw_ih, dw_hh)
        return grads + (db, db.copy()) if self.n_bias else grads


class LSTMSequence(Function):
    """One LSTM layer, one direction, over a whole sequence (T, N, I), PyTorch's gate order i, f, g, o:

        [i, f, g, o] = [sig, sig, tanh, sig](x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)
        c_t = f * c_{t-1} + i * g;   h_t = o * tanh(c_t)

    The output (T, N, 2H) holds h_t and c_t side by side, so both can pass gradients back.
    Backward runs the cell's chain rule from the last step to the first (BPTT):

        dc += dh * o * (1 - tanh(c)^2);   do = dh * tanh(c) * o(1-o)
        di = dc * g * i(1-i);   df = dc * c_{t-1} * f(1-f);   dg = dc * i * (1-g^2)
        dh_{t-1} = [di, df, dg, do] @ W_hh;   dc_{t-1} = dc * f

    NOTE: speed; the per-step NumPy calls on small arrays decide it. (1) One node per sequence
    (not ~12 per step); the input projection of all steps is one batched GEMM before the loop,
    the weight gradients are summed step by step in backward; per-step arrays are written in
    place into buffers made once. (2) Inside, every per-step array is transposed, (features, N): a gate
    is then a contiguous block of rows, and NumPy runs several times faster on contiguous
    blocks than on column slices. (3) The gates are stored in the order o, i, f, g: the three
    sigmoids are one block, and since sig(z) = (1 + tanh(z / 2)) / 2, halving their weight
    rows lets one tanh call activate all four gates. (4) A step's elementwise part is one
    kernel call (``kernels``' ``lstm_step``, ``lstm_step_backward``): numba's loops fuse what
    were 10 NumPy calls forward and 17 backward.

    Example: ``nn.LSTM(8, 16)(x)`` applies it
    """

    @staticmethod
    def _order(hid):
        """Rows of PyTorch's (i, f, g, o) weight blocks in our inner order (o, i, f, g)."""
        return np.r_[3 * hid:4 * hid, 0:2 * hid, 2 * hid:3 * hid]

    def forward(self, x, h0, c0, w_ih, w_hh, *biases, workspace=None):
        xp, ws = xp_of(x), workspace                         # ws: big arrays reused across calls
        (t_len, n, n_in), hid = x.shape, w_hh.shape[1]
        order = self._order(hid)
        half = xp.ones((4 * hid, 1), dtype=x.dtype)
        half[:3 * hid] = 0.5                                  # the sigmoid gates' rows
        w_ih, w_hh = w_ih[order], w_hh[order]                 # (4H, I) and (4H, H), our order
        xt = _scratch(ws, "xt", (t_len, n_in, n), x.dtype, xp)  # (T, I, N)
        xt[...] = x.transpose(0, 2, 1)
        gates = _scratch(ws, "gates", (t_len, 4 * hid, n), x.dtype, xp)
        xp.matmul(w_ih * half, xt, out=gates)                # (T, 4H, N): z of every step, activated in place
        # the bias is added step by step, to an array in cache (one pass over all the gates cost more)
        bias = (biases[0] + biases[1])[order, None] * half if biases else None
        w_hh_half = w_hh * half
        hc = _scratch(ws, "hc", (t_len + 1, 2 * hid, n), x.dtype, xp)  # h_t and c_t, one above the other
        hs, cs = hc[:, :hid], hc[:, hid:]
        hs[0], cs[0] = h0.T, c0.T
        tanh_c = _scratch(ws, "tanh_c", (t_len, hid, n), x.dtype, xp)
        hz = xp.empty((4 * hid, n), dtype=x.dtype)
        k = _kernels_for(_tensor._grad_mode.enabled, gates, hc, *([] if bias is None else [bias]))
        for t in range(t_len):
            xp.matmul(w_hh_half, hs[t], out=hz)
            # the step's elementwise part: gates activated in place, c_t, tanh(c_t), h_t
            k.lstm_step(gates[t], hz, bias, cs[t], cs[t + 1], tanh_c[t], hs[t + 1])
        self.xt, self.hs, self.cs, self.gates, self.tanh_c = xt, hs, cs, gates, tanh_c
        self.w_ih, self.w_hh, self.order, self.n_bias = w_ih, w_hh, order, len(biases)
        self.ws, self.x = ws, x
        return hc[1:].transpose(0, 2, 1)

    def backward(self, grad):
        xp = xp_of(grad)
        hid, (t_len, n) = self.w_hh.shape[1], grad.shape[:2]
        g = _scratch(self.ws, "grad", (t_len, 2 * hid, n), grad.dtype, xp)
        g[...] = grad.transpose(0, 2, 1)                      # (T, 2H, N) as the forward's arrays
        grad = g
        d = xp.empty((4 * hid, n), dtype=grad.dtype)          # one step's d loss / d gates (scratch)
        # NOTE: every step's d is kept, laid out (4H, T, N) so that (T, N) is one axis: after the
        # loop, the weight, bias and input gradients of all steps are each one large GEMM or sum
        # (which BLAS runs well on 2 threads) instead of 3 small GEMMs and 2 adds per step
        # (measured in benchmarks/README.md, "Figures behind the code").
        d_all = _scratch(self.ws, "d_all", (4 * hid, t_len, n), grad.dtype, xp)
        dhc = xp.zeros((2 * hid, n), dtype=grad.dtype)         # dh above dc, as the output's h and c
        dh, dc = dhc[:hid], dhc[hid:]
        k = _kernels_for(True, grad, dhc, d_all, self.gates)
        for t in range(t_len - 1, -1, -1):
            # the gate gradients into d_all[:, t], dc_{t-1} into dc
            k.lstm_step_backward(grad[t], dhc, self.gates[t], self.tanh_c[t], self.cs[t], d, d_all, t)
            xp.matmul(self.w_hh.T, d_all[:, t], out=dh)       # dh_{t-1}
        d_all = d_all.reshape(4 * hid, t_len * n)             # columns: (step, sample)
        h_prev = _scratch(self.ws, "h_prev", (hid, t_len, n), grad.dtype, xp)
        h_prev[...] = self.hs[:t_len].transpose(1, 0, 2)      # h_{t-1} of every step, same columns
        x_rows = self.x.reshape(t_len * n, -1)                # (T*N, I): the inputs, same order
        back = np.argsort(self.order)                          # our gate order -> PyTorch's
        dw_ih = xp.matmul(d_all, x_rows)[back]
        dw_hh = xp.matmul(d_all, h_prev.reshape(hid, t_len * n).T)[back]
        dx = None
        if self.needs_grad(0):
            dx = xp.matmul(d_all.T, self.w_ih).reshape(t_len, n, -1)
        grads = (dx, dh.T, dc.T, dw_ih, dw_hh)
        if not self.n_bias:
            return grads
        db = d_all.sum(axis=1)[back]
        return grads + (db, db.copy())


class GRUSequence(Function):
    """One GRU layer, one direction, over a whole sequence (T, N, I), PyTorch's gate order r, z, n:

        r = sig(W_ir x + b_ir + W_hr h + b_hr);  z = sig(W_iz x + b_iz + W_hz h + b_hz)
        n = tanh(W_in x + b_in + r * (W_hn h + b_hn));  h_t = (1 - z) * n + z * h_{t-1}

    Backward runs the chain rule from the last step to the first (BPTT):

        dn = dh (1 - z) (1 - n^2);   dr = dn (W_hn h + b_hn) r(1-r);   dz = dh (h_{t-1} - n) z(1-z)
        dh_{t-1} = dh z + [dr, dz, dn r] @ W_hh

    NOTE: speed, as LSTMSequence: per-step arrays transposed to (features, N) so that each
    gate is a contiguous block, written in place into buffers made once; r and z through one
    tanh with their weight rows halved; the weight gradients summed step by step; a step's
    elementwise part one kernel call (``gru_step``, ``gru_step_backward``).

    Example: ``nn.GRU(8, 16)(x)`` applies it
    """

    def forward(self, x, h0, w_ih, w_hh, *biases, workspace=None):
        xp, ws = xp_of(x), workspace                         # ws: big arrays reused across calls
        (t_len, n, n_in), hid = x.shape, w_hh.shape[1]
        half = xp.ones((3 * hid, 1), dtype=x.dtype)
        half[:2 * hid] = 0.5                                  # the sigmoid gates' rows (r, z)
        xt = _scratch(ws, "xt", (t_len, n_in, n), x.dtype, xp)  # (T, I, N)
        xt[...] = x.transpose(0, 2, 1)
        gates = _scratch(ws, "gates", (t_len, 3 * hid, n), x.dtype, xp)
        xp.matmul(w_ih * half, xt, out=gates)                # (T, 3H, N), activated in place
        if biases:
            b = biases[0].copy()
            b[:2 * hid] += biases[1][:2 * hid]                # b_hn stays inside r * (...)
            gates += b[:, None] * half
        w_hh_half = w_hh * half
        hs = _scratch(ws, "hs", (t_len + 1, hid, n), x.dtype, xp)
        hs[0] = h0.T
        hh = _scratch(ws, "hh", gates.shape, x.dtype, xp)     # W_hh h per step; backward needs its n rows
        b_hn = xp.ascontiguousarray(biases[1][2 * hid:, None]) if biases else None
        k = _kernels_for(_tensor._grad_mode.enabled, gates, hs, hh, *([] if b_hn is None else [b_hn]))
        for t in range(t_len):
            xp.matmul(w_hh_half, hs[t], out=hh[t])
            # the step's elementwise part: gates activated in place, h_t
            k.gru_step(gates[t], hh[t], b_hn, hs[t], hs[t + 1])
        self.xt, self.hs, self.gates, self.hn = xt, hs, gates, hh[:, 2 * hid:]
        self.w_ih, self.w_hh, self.n_bias, self.ws = w_ih, w_hh, len(biases), ws
        return hs[1:].transpose(0, 2, 1)

    def backward(self, grad):
        xp = xp_of(grad)
        hid, (t_len, n) = self.w_hh.shape[1], grad.shape[:2]
        g = _scratch(self.ws, "grad", (t_len, hid, n), grad.dtype, xp)
        g[...] = grad.transpose(0, 2, 1)                      # (T, H, N) as the forward's arrays
        grad = g
        d = xp.empty((3 * hid, n), dtype=grad.dtype)          # one step's gradient, input side ...
        dhh = xp.empty_like(d)                                # ... and hidden side (n rows: dn * r)
        # weight gradients summed step by step while d is in cache (see LSTMSequence.backward)
        dw_ih, dw_hh = xp.zeros_like(self.w_ih), xp.zeros_like(self.w_hh)
        part_ih, part_hh = xp.empty_like(dw_ih), xp.empty_like(dw_hh)
        db_ih, db_hh = xp.zeros(3 * hid, dtype=grad.dtype), xp.zeros(3 * hid, dtype=grad.dtype)
        dx = xp.empty((t_len, n, self.xt.shape[1]), dtype=grad.dtype) if self.needs_grad(0) else None
        dh, tmp = xp.zeros((hid, n), dtype=grad.dtype), xp.empty((hid, n), dtype=grad.dtype)
        k = _kernels_for(True, grad, dh, self.gates)
        for t in range(t_len - 1, -1, -1):
            # d and dhh of this step; dh becomes dh * z, the first part of dh_{t-1}
            k.gru_step_backward(grad[t], dh, self.gates[t], self.hn[t], self.hs[t], d, dhh)
            dw_ih += xp.matmul(d, self.xt[t].T, out=part_ih)
            dw_hh += xp.matmul(dhh, self.hs[t].T, out=part_hh)
            db_ih += d.sum(axis=1)
            db_hh += dhh.sum(axis=1)
            if dx is not None:
                xp.matmul(d.T, self.w_ih, out=dx[t])
            dh += xp.matmul(self.w_hh.T, dhh, out=tmp)
        grads = (dx, dh.T, dw_ih, dw_hh)
        return grads + (db_ih, db_hh) if self.n_bias else grads


# ============================================================================ tabular ops
class Cos(Function):
    """cos(x); d/dx = -sin(x). Periodic numeric embeddings (``nn.PeriodicEmbedding``) use it.

    Example: ``Cos.apply(x)`` (what ``F.cos(x)`` calls)
    """

    def forward(self, x):
        self.x = x
        return xp_of(x).cos(x)

    def backward(self, grad):
        return (-grad * xp_of(grad).sin(self.x),)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


class SELU(Function):
    """scale * (x if x > 0 else alpha * (e**x - 1)) (Klambauer et al., 2017), PyTorch's constants.

    Example: ``SELU.apply(x)`` (what ``F.selu(x)`` calls)
    """

    def forward(self, x):
        xp = xp_of(x)
        sa, scale = x.dtype.type(_SELU_SCALE * _SELU_ALPHA), x.dtype.type(_SELU_SCALE)
        # NOTE: arithmetic with a 0/1 array instead of np.where or masked writes, which were
        # 10-20x slower on random signs (branch mispredictions); exp only of the negative part.
        pos = xp.greater(x, 0).view(xp.uint8).astype(x.dtype)
        e = xp.minimum(x, 0)
        xp.exp(e, out=e)
        e *= sa                                   # the derivative where x <= 0
        out = xp.maximum(x, 0)
        out *= scale
        out += e
        out -= sa
        # derivative: scale where x > 0 (there e == sa), sa * e**x elsewhere
        pos *= scale - sa
        e += pos
        self.d = e
        return out

    def backward(self, grad):
        return (grad * self.d,)


class ParametricActivation(Function):
    """RealMLP's parametric activation: x + w * (f(x) - x), one weight per feature (last axis),
    f an elementwise Function (``inner``: SELU, Mish, ReLU, ...) whose own backward is reused:

        dx = grad * (1 - w) + f'(x) * (grad * w);   dw = grad * (f(x) - x)  (summed by the engine)

    NOTE: one node instead of four (f, a subtraction, a product, a sum) and their backward
    passes: forward + backward of (256, 256) float32 (a RealMLP block), SELU 853-878 -> 628-635
    us, Mish 1176-1204 -> 984-987 us (A/B, quiet 2-core machine); the four ops' bits exactly.

    Example: ``ParametricActivation.apply(x, w, inner=SELU)`` (what ``nn.ParametricActivation`` calls)
    """

    def forward(self, x, w, inner=None):
        self.inner = inner()
        diff = self.inner.forward(x) - x  # not in place: f may keep its output for its backward
        out = diff * w
        out += x
        self.diff, self.w = diff, w
        return out

    def backward(self, grad):
        gw = grad * self.w
        # summed in the order the engine adds the four ops' parts, so the same bits as they give
        dx = grad - gw
        dx += self.inner.backward(gw)[0]
        return dx, grad * self.diff


class Mish(Function):
    """x * tanh(softplus(x)) (Misra, 2019); d/dx = tanh(sp) + x * sigmoid(x) * (1 - tanh(sp)**2).

    Example: ``Mish.apply(x)`` (what ``F.mish(x)`` calls)
    """

    def forward(self, x):
        xp = xp_of(x)
        # tanh(log(1 + e)) = n / (n + 2) with n = e (e + 2); above x = 20 it is 1 in float32
        # and float64 to 1e-17, so e is clamped there instead of overflowing.
        e = xp.exp(xp.minimum(x, 20))
        n = e * (e + 2)
        self.t = n / (n + 2)
        self.x, self.e = x, e
        return x * self.t

    def backward(self, grad):
        sig = self.e / (1 + self.e)
        return (grad * (self.t + self.x * sig * (1 - self.t * self.t)),)
