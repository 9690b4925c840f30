"""Tensor: an array that remembers how it was made, so gradients can flow back through it.

Reverse-mode autodiff in three parts:
1. every op (a ``Function`` in ``functions.py``) computes its output from raw arrays and keeps
   what its backward pass will need;
2. ``Tensor.backward`` orders the graph topologically (iteratively, so deep graphs are fine);
3. it walks that order backwards, asking each op for its inputs' gradients and summing them
   back to each input's shape in ``unbroadcast`` (the one place broadcasting is undone).

Example:
    >>> import neuralab as nl
    >>> x = nl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad
    array([2., 4., 6.], dtype=float32)
"""
from __future__ import annotations

import contextlib
import threading
from typing import Any

import numpy as np

from . import backend

class _GradMode(threading.local):
    """Whether ops record a graph: the only global state in neuralab (see docs/architecture.md).

    Per thread, as PyTorch's: a ``no_grad`` in one thread (a concurrent ``predict``) must
    never switch recording off, or leave it off, for another.
    """

    def __init__(self) -> None:
        self.enabled = True
        self.saved: list[bool] = []


_grad_mode = _GradMode()


def is_grad_enabled() -> bool:
    """Whether ops record a graph now (False inside ``no_grad``).

    Example: ``with nl.no_grad(): is_grad_enabled()  # False``
    """
    return _grad_mode.enabled


class no_grad(contextlib.ContextDecorator):
    """Context manager (and decorator) under which no graph is recorded.

    Example:
        >>> with nl.no_grad():
        ...     y = model(x)          # y.requires_grad is False, nothing kept for backward
    """

    def __enter__(self) -> None:
        _grad_mode.saved.append(_grad_mode.enabled)
        _grad_mode.enabled = False

    def __exit__(self, *exc: Any) -> None:
        _grad_mode.enabled = _grad_mode.saved.pop()


class enable_grad(contextlib.ContextDecorator):
    """Turn graph recording back on inside a ``no_grad`` block.

    Example: ``with nl.no_grad(): ... with nl.enable_grad(): loss.backward()``
    """

    def __enter__(self) -> None:
        _grad_mode.saved.append(_grad_mode.enabled)
        _grad_mode.enabled = True

    def __exit__(self, *exc: Any) -> None:
        _grad_mode.enabled = _grad_mode.saved.pop()


def unbroadcast(grad: Any, shape: tuple) -> Any:
    """Sum ``grad`` back to ``shape``: the adjoint of NumPy broadcasting.

    Broadcasting copies a value along new leading axes and along axes of length 1, so the
    gradient of that value is the sum over those axes. Every op relies on this one function.

    Example:
        >>> unbroadcast(np.ones((4, 3)), (3,))
        array([4., 4., 4.])
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    if grad.shape != shape:  # a scalar parent of a 0-d or size-1 result, e.g. () vs (1,)
        grad = grad.reshape(shape)
    return grad


def _as_array(data: Any, dtype: Any = None, device: str | None = None):
    """Convert user data to a backend array, applying the float32-by-default rule."""
    if isinstance(data, Tensor):
        data = data.data
    if device is None:
        device = backend.device_of(data) if not isinstance(data, (list, tuple, float, int, bool)) else "cpu"
    xp = backend.get_array_module(device)
    if dtype is not None:
        dt = np.dtype(dtype)
        return xp.asarray(data, dtype=dt)
    arr = xp.asarray(data)
    if arr.dtype.kind == "f" and arr.dtype != backend.get_default_dtype():
        arr = arr.astype(backend.get_default_dtype())
    elif arr.dtype.kind not in "fiub":
        raise TypeError(f"cannot make a tensor from data of dtype {arr.dtype} (expected numbers)")
    return arr


class Tensor:
    """An n-dimensional array with an optional gradient.

    Args:
        data: array-like (list, NumPy/CuPy array, number or Tensor).
        requires_grad: record operations on it so ``backward`` can fill ``grad``.
        dtype: NumPy dtype or its name; float input becomes float32 unless given.
        device: "cpu" (NumPy) or "cuda" (CuPy).

    Example:
        >>> w = nl.Tensor(np.zeros((3, 2)), requires_grad=True)
        >>> w.shape, w.dtype
        ((3, 2), dtype('float32'))
    """

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "__weakref__")
    __array_ufunc__ = None  # make NumPy defer to Tensor's reflected operators (a + t)

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None,
                 device: str | None = None) -> None:
        self.data = _as_array(data, dtype, device)
        self.grad = None
        self._ctx = None
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"only float tensors can require gradients, got dtype {self.data.dtype}")
        self.requires_grad = bool(requires_grad)

    @classmethod
    def _make(cls, data: Any, requires_grad: bool) -> "Tensor":
        # Fast constructor for op outputs: data is already a backend array.
        t = object.__new__(Tensor)
        t.data = data
        t.grad = None
        t._ctx = None
        t.requires_grad = requires_grad
        return t

    # ------------------------------------------------------------------ properties
    @property
    def shape(self) -> tuple:
        """The shape of ``data``.

        Example: ``nl.zeros(3, 2).shape  # (3, 2)``
        """
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        """The NumPy dtype of ``data``.

        Example: ``nl.zeros(2).dtype  # dtype('float32')``
        """
        return self.data.dtype

    @property
    def ndim(self) -> int:
        """The number of axes.

        Example: ``nl.zeros(3, 2).ndim  # 2``
        """
        return self.data.ndim

    @property
    def size(self) -> int:
        """The number of elements.

        Example: ``nl.zeros(3, 2).size  # 6``
        """
        return self.data.size

    @property
    def device(self) -> str:
        """"cpu" or "cuda": where ``data`` lives.

        Example: ``t.device  # 'cpu'``
        """
        return backend.device_of(self.data)

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user (no op produced them); ``backward`` fills their ``grad``.

        Example: ``w.is_leaf, (w * 2).is_leaf  # (True, False)``
        """
        return self._ctx is None

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        body = np.array2string(backend.to_numpy(self.data), separator=", ", precision=4,
                               threshold=20, prefix="tensor(")
        extra = f", dtype={self.dtype}" if self.dtype != backend.get_default_dtype() else ""
        if self.device != "cpu":
            extra += f", device='{self.device}'"
        if self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    # ------------------------------------------------------------------ conversions
    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (copied from the GPU if needed).

        Example: ``t.numpy()``
        """
        return backend.to_numpy(self.data)

    def item(self) -> float:
        """The single value of a one-element tensor as a Python number.

        Example: ``loss.item()``
        """
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.item()

    def tolist(self) -> Any:
        """The data as nested Python lists.

        Example: ``nl.tensor([1.0, 2.0]).tolist()  # [1.0, 2.0]``
        """
        return self.numpy().tolist()

    def detach(self) -> "Tensor":
        """The same data, cut from the graph (no gradient flows through it).

        Example: ``target = pred.detach()``
        """
        return Tensor._make(self.data, False)

    def to(self, device: str) -> "Tensor":
        """A copy on another device ("cpu" or "cuda"); itself if already there.

        Example: ``t.to("cuda")``
        """
        if backend.normalize_device(device) == self.device:
            return self
        return Tensor._make(backend.to_device(self.data, device), self.requires_grad)

    def astype(self, dtype: Any) -> "Tensor":
        """Cast to another dtype (the gradient is cast back in backward).

        Example: ``t.astype("float64")``
        """
        from .functions import Cast
        return Cast.apply(self, dtype=np.dtype(dtype))

    def requires_grad_(self, flag: bool = True) -> "Tensor":
        """Switch gradient recording for this tensor on (or off) in place; returns self.

        Example: ``w = nl.zeros(3, 2).requires_grad_()``
        """
        if flag and self.data.dtype.kind != "f":
            raise TypeError(f"only float tensors can require gradients, got dtype {self.dtype}")
        self.requires_grad = flag
        return self

    def zero_grad(self) -> None:
        """Forget the accumulated gradient (``grad`` becomes None).

        Example: ``w.zero_grad()``
        """
        self.grad = None

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        arr = self.numpy()
        return arr.astype(dtype) if dtype is not None else arr

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        return bool(self.item())

    # ------------------------------------------------------------------ autodiff
    def backward(self, grad: Any = None, retain_graph: bool = False) -> None:
        """Compute gradients of this tensor with respect to every leaf that requires them.

        Args:
            grad: the gradient flowing into this tensor; optional only for a scalar
                (one-element) tensor, where it defaults to 1.
            retain_graph: keep the graph (and the values it saved) for another backward.

        Example:
            >>> w = nl.tensor([1.0, 2.0], requires_grad=True); x = nl.tensor([3.0, 4.0])
            >>> loss = (w * x).sum(); loss.backward(); w.grad
            array([3., 4.], dtype=float32)
        """
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad "
                               "(was it computed under no_grad, or from constants only?)")
        xp = backend.xp_of(self.data)
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward() without grad needs a scalar output, got shape "
                                   f"{self.shape}; pass grad= of that shape")
            grad = xp.ones_like(self.data)
        else:
            # a copy: the caller's array must not become (and be updated as) a leaf's grad
            grad = xp.array(grad.data if isinstance(grad, Tensor) else grad, dtype=self.dtype)
            if grad.shape != self.shape:
                raise ValueError(f"grad shape {grad.shape} does not match tensor shape {self.shape}")

        order = _topological_order(self)
        grads = {id(self): grad}
        adopted: set = set()  # ids of the arrays already stored as some leaf's grad
        for node in reversed(order):
            g = grads.pop(id(node), None)
            ctx = node._ctx
            if ctx is None:  # a leaf: gradients accumulate (a new array, never in place)
                if g is None:
                    continue
                if node.grad is not None:
                    node.grad = node.grad + g
                    continue
                # A leaf's grad is updated in place by optimizers, so it must own its array:
                # not a view (e.g. sum's broadcast), not a NumPy scalar, and not an array that
                # another leaf got too (add hands the same gradient to both of its inputs).
                if g.base is not None or id(g) in adopted or isinstance(g, np.generic):
                    g = xp.array(g)
                adopted.add(id(g))
                node.grad = g
                continue
            if g is None:
                continue
            if ctx.parents is None:
                raise RuntimeError("backward through a graph that was already freed; "
                                   "call backward(retain_graph=True) the first time")
            parent_grads = ctx.backward(g)
            for parent, pg in zip(ctx.parents, parent_grads):
                if pg is None or not parent.requires_grad:
                    continue
                pg = unbroadcast(pg, parent.data.shape)
                key = id(parent)
                prev = grads.get(key)
                grads[key] = pg if prev is None else prev + pg
            if not retain_graph:
                vars(ctx).clear()  # release saved buffers as soon as they are used

    # ------------------------------------------------------------------ operators
    def __add__(self, other): return fn.Add.apply(self, _t(other, self))
    def __radd__(self, other): return fn.Add.apply(_t(other, self), self)
    def __sub__(self, other): return fn.Sub.apply(self, _t(other, self))
    def __rsub__(self, other): return fn.Sub.apply(_t(other, self), self)
    def __mul__(self, other): return fn.Mul.apply(self, _t(other, self))
    def __rmul__(self, other): return fn.Mul.apply(_t(other, self), self)
    def __truediv__(self, other): return fn.Div.apply(self, _t(other, self))
    def __rtruediv__(self, other): return fn.Div.apply(_t(other, self), self)
    def __neg__(self): return fn.Neg.apply(self)
    def __matmul__(self, other): return fn.MatMul.apply(self, _t(other, self))
    def __rmatmul__(self, other): return fn.MatMul.apply(_t(other, self), self)

    def __pow__(self, exponent):
        if isinstance(exponent, Tensor):
            return fn.PowTensor.apply(self, exponent)
        return fn.Pow.apply(self, exponent=exponent)

    def __rpow__(self, base):
        return fn.PowTensor.apply(_t(base, self), self)

    def __getitem__(self, index):
        return fn.GetItem.apply(self, index=_index_data(index))

    # comparisons give constant boolean tensors (no gradient); == stays identity-based
    def __lt__(self, other): return Tensor._make(self.data < _raw(other), False)
    def __le__(self, other): return Tensor._make(self.data <= _raw(other), False)
    def __gt__(self, other): return Tensor._make(self.data > _raw(other), False)
    def __ge__(self, other): return Tensor._make(self.data >= _raw(other), False)
    __hash__ = object.__hash__

    # ------------------------------------------------------------------ methods
    def sum(self, axis=None, keepdims=False):
        """Sum over ``axis`` (all axes when None).

        Example: ``x.sum(axis=0)``
        """
        return fn.Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        """Mean over ``axis`` (all axes when None).

        Example: ``x.mean(axis=1, keepdims=True)``
        """
        return fn.Mean.apply(self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims=False):
        """Maximum over ``axis``; the gradient is shared equally among ties.

        Example: ``x.max(axis=1)``
        """
        return fn.Max.apply(self, axis=axis, keepdims=keepdims)

    def min(self, axis=None, keepdims=False):
        """Minimum over ``axis``; the gradient is shared equally among ties.

        Example: ``x.min()``
        """
        return fn.Min.apply(self, axis=axis, keepdims=keepdims)

    def var(self, axis=None, keepdims=False, ddof=0):
        """Variance over ``axis`` (a composite of mean, sub and mul).

        Example: ``x.var(axis=0)``
        """
        mu = self.mean(axis=axis, keepdims=True)
        d = self - mu
        n = self.data.size // max(mu.data.size, 1)
        return (d * d).sum(axis=axis, keepdims=keepdims) * (1.0 / (n - ddof))

    def exp(self):
        """e ** x, elementwise.

        Example: ``x.exp()``
        """
        return fn.Exp.apply(self)

    def log(self):
        """Natural logarithm, elementwise.

        Example: ``x.log()``
        """
        return fn.Log.apply(self)

    def sqrt(self):
        """Square root, elementwise.

        Example: ``x.sqrt()``
        """
        return fn.Sqrt.apply(self)

    def abs(self):
        """Absolute value, elementwise (gradient sign(x)).

        Example: ``x.abs()``
        """
        return fn.Abs.apply(self)

    def clip(self, min=None, max=None):
        """Clamp values into [min, max]; gradient 1 inside the range, 0 outside.

        Example: ``x.clip(0, 1)``
        """
        return fn.Clip.apply(self, lo=min, hi=max)

    def reshape(self, *shape):
        """The same data in a new shape (one axis may be -1); a tuple or separate ints.

        Example: ``x.reshape(2, -1)``
        """
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return fn.Reshape.apply(self, shape=shape)

    def flatten(self, start_axis: int = 0):
        """Merge the axes from ``start_axis`` on into one.

        Example: ``images.flatten(1)  # (N, C*H*W)``
        """
        return self.reshape(self.shape[:start_axis] + (-1,))

    def transpose(self, *axes):
        """Permute the axes (reverse them when none are given), as NumPy's ``transpose``.

        Example: ``x.transpose(0, 2, 1)``
        """
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return fn.Transpose.apply(self, axes=axes or None)

    @property
    def T(self):
        """The transpose with all axes reversed.

        Example: ``x @ w.T``
        """
        return fn.Transpose.apply(self, axes=None)

    def relu(self):
        """max(x, 0), elementwise.

        Example: ``x.relu()``
        """
        return fn.ReLU.apply(self)

    def sigmoid(self):
        """1 / (1 + e**-x), elementwise.

        Example: ``x.sigmoid()``
        """
        return fn.Sigmoid.apply(self)

    def tanh(self):
        """Hyperbolic tangent, elementwise.

        Example: ``x.tanh()``
        """
        return fn.Tanh.apply(self)

    def softmax(self, axis=-1):
        """Softmax along ``axis`` (each slice sums to 1).

        Example: ``logits.softmax(axis=1)``
        """
        return fn.Softmax.apply(self, axis=axis)

    def log_softmax(self, axis=-1):
        """log(softmax(x)) along ``axis``, computed stably.

        Example: ``logits.log_softmax(axis=1)``
        """
        return fn.LogSoftmax.apply(self, axis=axis)


def _raw(x):
    return x.data if isinstance(x, Tensor) else x


def _index_data(index):
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    if isinstance(index, list):
        return np.asarray(index)
    return index


def _t(x: Any, like: Tensor) -> Tensor:
    """Wrap a constant operand in a Tensor of the other operand's dtype and device."""
    if isinstance(x, Tensor):
        return x
    xp = backend.xp_of(like.data)
    if isinstance(x, (int, float)) and like.data.dtype.kind == "f":
        return Tensor._make(xp.asarray(x, dtype=like.data.dtype), False)
    arr = xp.asarray(x)
    if arr.dtype.kind == "f" and like.data.dtype.kind == "f" and arr.dtype != like.data.dtype:
        arr = arr.astype(like.data.dtype)
    return Tensor._make(arr, False)


def _topological_order(root: Tensor) -> list:
    """Nodes that lead to ``root`` (and need gradients), parents before children.

    An explicit stack instead of recursion: a chain of 10,000 ops must not hit Python's
    recursion limit.
    """
    order: list = []
    seen: set = set()
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        ctx = node._ctx
        if ctx is not None and ctx.parents is not None:
            for parent in ctx.parents:
                if parent.requires_grad and id(parent) not in seen:
                    stack.append((parent, False))
    return order


def tensor(data: Any, dtype: Any = None, requires_grad: bool = False, device: str = "cpu") -> Tensor:
    """Make a Tensor from array-like data (float32 by default for float data).

    Example:
        >>> nl.tensor([[1, 2], [3, 4]], dtype="float64", requires_grad=True)
        tensor([[1., 2.],
                [3., 4.]], dtype=float64, requires_grad=True)
    """
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, device=device)


def _tensor_factory(fn_name: str):
    def make(*shape, dtype: Any = None, requires_grad: bool = False, device: str = "cpu") -> Tensor:
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        xp = backend.get_array_module(device)
        arr = getattr(xp, fn_name)(shape, dtype=np.dtype(dtype) if dtype else backend.get_default_dtype())
        return Tensor._make(arr, False).requires_grad_(requires_grad)
    make.__name__ = fn_name
    make.__doc__ = f"A tensor filled with {fn_name}.\n\nExample: ``nl.{fn_name}(2, 3)``"
    return make


zeros = _tensor_factory("zeros")
ones = _tensor_factory("ones")


# Imported last: functions.py needs Tensor defined above.
from . import functions as fn  # noqa: E402
