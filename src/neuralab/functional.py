"""The functions users call (``F.relu``, ``F.cross_entropy``, ...), built on the ops of ``functions.py``.

Activations, linear, dropout, normalisation and losses.

Each is either one primitive op from ``functions.py`` or a short composite of ops, whose
gradient then comes for free from the engine.

Example:
    >>> from neuralab import functional as F
    >>> logits = nl.tensor([[2.0, 0.5, -1.0]], requires_grad=True)
    >>> F.cross_entropy(logits, nl.tensor([0])).item()   # doctest: +ELLIPSIS
    0.24...
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from . import functions as fn
from .backend import xp_of
from .tensor import Tensor, _raw, _t

_REDUCTIONS = ("mean", "sum", "none")


def _tensor(x: Any, like: Tensor | None = None) -> Tensor:
    if isinstance(x, Tensor):
        return x
    return _t(x, like) if like is not None else Tensor(x)


# ============================================================================ activations
def relu(x: Tensor) -> Tensor:
    """max(x, 0). Example: ``F.relu(nl.tensor([-1.0, 2.0]))  # [0, 2]``"""
    return fn.ReLU.apply(x)


def sigmoid(x: Tensor) -> Tensor:
    """1 / (1 + e**-x), overflow-free. Example: ``F.sigmoid(nl.tensor([0.0]))  # [0.5]``"""
    return fn.Sigmoid.apply(x)


def tanh(x: Tensor) -> Tensor:
    """Hyperbolic tangent. Example: ``F.tanh(nl.tensor([0.0]))  # [0.]``"""
    return fn.Tanh.apply(x)


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x for x > 0, negative_slope * x otherwise. Example: ``F.leaky_relu(x, 0.1)``"""
    return fn.LeakyReLU.apply(x, slope=negative_slope)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x) (exact) or the tanh approximation. Example: ``F.gelu(x, approximate="tanh")``"""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return fn.GELU.apply(x, approximate=approximate)


def step(x: Tensor) -> Tensor:
    """Heaviside step (1 where x >= 0), zero gradient: the perceptron's activation.

    Example: ``F.step(nl.tensor([-0.5, 0.0, 2.0]))  # [0, 1, 1]``
    """
    return fn.Step.apply(x)


def identity(x: Tensor) -> Tensor:
    """Returns x unchanged. Example: ``F.identity(x) is x``"""
    return x


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """Softmax along ``axis``. Example: ``F.softmax(logits, axis=1).sum(axis=1)  # ones``"""
    return fn.Softmax.apply(x, axis=axis)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """log(softmax(x)) computed stably. Example: ``F.log_softmax(logits, axis=1)``"""
    return fn.LogSoftmax.apply(x, axis=axis)


ACTIVATIONS = {
    "relu": relu, "sigmoid": sigmoid, "logistic": sigmoid, "tanh": tanh,
    "leaky_relu": leaky_relu, "gelu": gelu, "identity": identity, "linear": identity,
}


def get_activation(name: str):
    """The activation function for a name ("relu", "tanh", "logistic", ...).

    Example: ``F.get_activation("relu")(x)``
    """
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}") from None


# ============================================================================ layers' maths
def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x @ weight.T + bias, weight shaped (out_features, in_features) as in PyTorch.

    ``x`` may also be a SciPy sparse matrix (CSR rows, e.g. TF-IDF features): the product is
    sparse times dense, and the weight's gradient too.

    Example: ``F.linear(x, w, b)  # x (N, 3), w (2, 3), b (2,) -> (N, 2)``
    """
    if not isinstance(x, Tensor) and fn.is_sparse(x):
        if x.ndim != 2:
            raise ValueError(f"linear: a sparse input must be 2-D, got shape {x.shape}")
        x = x.tocsr()
        dtype = _raw(weight).dtype
        x = Tensor._make(x if x.dtype == dtype else x.astype(dtype), False)
    if bias is None:
        return fn.Linear.apply(x, weight)
    return fn.Linear.apply(x, weight, bias)


def dropout(x: Tensor, p: float = 0.5, training: bool = True,
            rng: np.random.Generator | None = None) -> Tensor:
    """Inverted dropout: zero each element with probability p and scale the rest by 1/(1-p).

    Off (identity) when ``training`` is False, so evaluation needs no rescaling.
    Example: ``F.dropout(h, 0.2, training=True, rng=np.random.default_rng(0))``
    """
    if not 0 <= p < 1:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    if not training or p == 0:
        return x
    rng = rng if rng is not None else np.random.default_rng()
    scale = x.dtype.type(1.0 / (1.0 - p))
    if type(x.data) is np.ndarray and x.dtype in fn._KERNEL_DTYPES:
        # the same numbers and arithmetic as below, fused (and a bool mask, not a float one)
        return fn.Dropout.apply(x, u=rng.random(x.shape), p=p, scale=scale)
    xp = xp_of(x.data)
    keep = rng.random(x.shape) >= p
    mask = xp.asarray(keep, dtype=x.dtype) * scale
    return x * Tensor._make(mask, False)


def _norm_param_shape(x: Tensor, p: Tensor | None) -> Tensor | None:
    # (C,) parameters broadcast over (N, C, *spatial) when reshaped to (C, 1, ..., 1).
    if p is None or x.ndim <= 2:
        return p
    return p.reshape((p.shape[0],) + (1,) * (x.ndim - 2))


def batch_norm(x: Tensor, running_mean: Any = None, running_var: Any = None,
               weight: Tensor | None = None, bias: Tensor | None = None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch normalisation over the batch (and spatial) axes of (N, C, ...) input.

    In training, normalise with the batch's statistics and update ``running_mean`` and
    ``running_var`` in place (unbiased variance, as PyTorch); in eval, use the running ones.
    Example: ``F.batch_norm(h, rm, rv, gamma, beta, training=True)``
    """
    if x.ndim < 2:
        raise ValueError(f"batch_norm expects input of shape (N, C, ...), got {x.shape}")
    # running statistics are plain arrays updated in place (a Tensor's data is used as such)
    running_mean = running_mean.data if isinstance(running_mean, Tensor) else running_mean
    running_var = running_var.data if isinstance(running_var, Tensor) else running_var
    axes = (0,) + tuple(range(2, x.ndim))
    affine = () if weight is None else (_norm_param_shape(x, weight), _norm_param_shape(x, bias))
    if training:
        n = x.size // x.shape[1]
        if n <= 1:
            raise ValueError(f"batch_norm in training needs more than one value per channel, "
                             f"got input shape {x.shape}")
        out = fn.Normalize.apply(x, *affine, axes=axes, eps=eps)
        if running_mean is not None:
            ctx = out._ctx
            d = x.data
            mean = d.mean(axis=axes) if ctx is None else ctx.mean.reshape(-1)
            var = d.var(axis=axes) if ctx is None else ctx.var.reshape(-1)
            running_mean *= 1 - momentum
            running_mean += momentum * mean
            running_var *= 1 - momentum
            running_var += momentum * var * (n / (n - 1))
        return out
    if running_mean is None:
        raise ValueError("batch_norm in eval mode needs running_mean and running_var")
    shape = (1, -1) + (1,) * (x.ndim - 2)
    # cast: float64 running statistics must not turn a float32 network's output into float64
    mean = running_mean.reshape(shape).astype(x.dtype, copy=False)
    var = running_var.reshape(shape).astype(x.dtype, copy=False)
    return fn.Normalize.apply(x, *affine, axes=axes, eps=eps, mean=mean, var=var)


def layer_norm(x: Tensor, normalized_shape: int | Sequence[int], weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalise each sample over its last ``len(normalized_shape)`` axes.

    Example: ``F.layer_norm(h, (64,), gamma, beta)``
    """
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(x.shape[-len(shape):]) != shape:
        raise ValueError(f"layer_norm: input shape {x.shape} does not end with normalized_shape {shape}")
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    affine = () if weight is None else (weight, bias)
    return fn.Normalize.apply(x, *affine, axes=axes, eps=eps)


def concatenate(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis. Example: ``F.concatenate([a, b], axis=1)``"""
    return fn.Concatenate.apply(*[_tensor(t) for t in tensors], axis=axis)


def stack(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Stack tensors along a new axis. Example: ``F.stack([a, b]).shape  # (2, *a.shape)``"""
    return fn.Stack.apply(*[_tensor(t) for t in tensors], axis=axis)


def maximum(a: Tensor, b: Any) -> Tensor:
    """Elementwise maximum. Example: ``F.maximum(x, 0.0)``"""
    return fn.Maximum.apply(a, _tensor(b, a))


def minimum(a: Tensor, b: Any) -> Tensor:
    """Elementwise minimum. Example: ``F.minimum(x, 1.0)``"""
    return fn.Minimum.apply(a, _tensor(b, a))


# ============================================================================ losses
def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _reduce(losses: Tensor, reduction: str, sample_weight: Any = None) -> Tensor:
    """Apply a reduction, with optional per-sample weights (weighted mean over samples)."""
    _check_reduction(reduction)
    if sample_weight is not None:
        w = xp_of(losses.data).asarray(_raw(sample_weight),
                                       dtype=losses.dtype)
        if w.shape != (losses.shape[0],):
            raise ValueError(f"sample_weight must have shape ({losses.shape[0]},), got {w.shape}")
        per_sample = losses.size // max(losses.shape[0], 1)
        losses = losses * Tensor._make(w.reshape((-1,) + (1,) * (losses.ndim - 1)), False)
        if reduction == "mean":
            return losses.sum() * (1.0 / (float(w.sum()) * per_sample))
    if reduction == "mean":
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    return losses


def _pair(pred: Tensor, target: Any, name: str) -> tuple[Tensor, Tensor]:
    target = _tensor(target, pred)
    if pred.shape != target.shape:
        raise ValueError(f"{name}: prediction shape {pred.shape} and target shape {target.shape} differ")
    return pred, target


def mse_loss(pred: Tensor, target: Any, reduction: str = "mean", sample_weight: Any = None) -> Tensor:
    """Mean squared error. Example: ``F.mse_loss(model(X), y)``"""
    pred, target = _pair(pred, target, "mse_loss")
    d = pred - target
    return _reduce(d * d, reduction, sample_weight)


def l1_loss(pred: Tensor, target: Any, reduction: str = "mean", sample_weight: Any = None) -> Tensor:
    """Mean absolute error. Example: ``F.l1_loss(model(X), y)``"""
    pred, target = _pair(pred, target, "l1_loss")
    return _reduce((pred - target).abs(), reduction, sample_weight)


def huber_loss(pred: Tensor, target: Any, delta: float = 1.0, reduction: str = "mean",
               sample_weight: Any = None) -> Tensor:
    """Huber loss: quadratic below ``delta``, linear above.

    Written as 0.5 q**2 + delta (d - q) with d = |pred - target| and q = min(d, delta), so
    it is a composite of existing ops.
    Example: ``F.huber_loss(model(X), y, delta=1.0)``
    """
    pred, target = _pair(pred, target, "huber_loss")
    d = (pred - target).abs()
    q = d.clip(max=delta)
    return _reduce(0.5 * q * q + delta * (d - q), reduction, sample_weight)


def cross_entropy(logits: Tensor, target: Any, weight: Any = None, reduction: str = "mean",
                  label_smoothing: float = 0.0, sample_weight: Any = None) -> Tensor:
    """Softmax cross-entropy from logits (N, C), as PyTorch's ``cross_entropy``.

    Args:
        logits: unnormalised scores (N, C) or (C,).
        target: class indices (N,) (integers) or class probabilities (N, C) (floats).
        weight: optional per-class weights (C,).
        reduction: "mean" (weighted by class weights as PyTorch), "sum" or "none".
        label_smoothing: mix the target with the uniform distribution by this amount.
        sample_weight: optional per-sample weights (N,).

    Example: ``F.cross_entropy(model(X), y)`` with y integer labels.
    """
    _check_reduction(reduction)
    if not 0 <= label_smoothing <= 1:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    t = target.data if isinstance(target, Tensor) else xp_of(logits.data).asarray(target)
    if t.dtype.kind == "f" and t.ndim == logits.ndim - 1:
        raise TypeError("cross_entropy: class targets must be integers; got floats of shape "
                        f"{t.shape} (pass probabilities with the logits' shape {logits.shape})")
    w = None
    if weight is not None:
        w = (weight.data if isinstance(weight, Tensor) else xp_of(logits.data).asarray(weight)
             ).astype(logits.dtype)
        if w.shape != (logits.shape[-1],):
            raise ValueError(f"cross_entropy: weight must have shape ({logits.shape[-1]},), got {w.shape}")
    inner = "none" if sample_weight is not None else reduction
    out = fn.CrossEntropy.apply(logits, Tensor._make(t, False), weight=w,
                                label_smoothing=label_smoothing, reduction=inner)
    return out if sample_weight is None else _reduce(out, reduction, sample_weight)


def binary_cross_entropy_with_logits(logits: Tensor, target: Any, weight: Any = None,
                                     reduction: str = "mean", pos_weight: Any = None,
                                     sample_weight: Any = None) -> Tensor:
    """Sigmoid + binary cross-entropy in one stable op, as PyTorch's.

    Example: ``F.binary_cross_entropy_with_logits(model(X), y_float)``
    """
    _check_reduction(reduction)
    xp = xp_of(logits.data)
    t = target.data if isinstance(target, Tensor) else xp.asarray(target)
    w = None if weight is None else xp.asarray(_raw(weight), dtype=logits.dtype)
    pw = None if pos_weight is None else xp.asarray(_raw(pos_weight), dtype=logits.dtype)
    inner = "none" if sample_weight is not None else reduction
    out = fn.BCEWithLogits.apply(logits, Tensor._make(t, False), weight=w, pos_weight=pw, reduction=inner)
    return out if sample_weight is None else _reduce(out, reduction, sample_weight)


LOSSES = {
    "mse": mse_loss, "mse_loss": mse_loss, "squared_error": mse_loss,
    "l1": l1_loss, "l1_loss": l1_loss, "mae": l1_loss, "absolute_error": l1_loss,
    "huber": huber_loss, "huber_loss": huber_loss,
    "cross_entropy": cross_entropy, "log_loss": cross_entropy,
    "bce": binary_cross_entropy_with_logits,
    "binary_cross_entropy_with_logits": binary_cross_entropy_with_logits,
}


def get_loss(name: str):
    """The loss function for a name ("mse", "cross_entropy", "bce", "huber", ...).

    Example: ``F.get_loss("mse")(pred, target)``
    """
    if callable(name):
        return name
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; expected one of {sorted(LOSSES)}") from None


# ============================================================================ convolution, pooling, attention
# (Channels-first layouts as PyTorch: (N, C, L) and (N, C, H, W).)
def _tuple(value: Any, n: int, name: str) -> tuple:
    if isinstance(value, (int, np.integer)):
        return (int(value),) * n
    value = tuple(int(v) for v in value)
    if len(value) != n:
        raise ValueError(f"{name} must be an int or a tuple of {n} ints, got {value}")
    return value


def _conv_padding(padding: Any, kernel: tuple, dilation: tuple, stride: tuple) -> tuple:
    """Per-side padding (top, bottom, left, right) from an int, a pair, "valid" or "same"."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding != "same":
            raise ValueError(f"padding must be an int, a tuple, 'valid' or 'same', got {padding!r}")
        if any(s != 1 for s in stride):
            raise ValueError("padding='same' needs stride 1 (as in PyTorch)")
        sides = []
        for k, d in zip(kernel, dilation):
            total = d * (k - 1)
            sides += [total // 2, total - total // 2]
        return tuple(sides)
    ph, pw = _tuple(padding, 2, "padding")
    return (ph, ph, pw, pw)


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1,
           padding: Any = 0, dilation: Any = 1, groups: int = 1, *, workspace: Any = None) -> Tensor:
    """2-D convolution of (N, C, H, W) with weight (O, C/groups, kh, kw), as PyTorch's;
    ``workspace`` (a ``functions.Workspace``, as ``nn.Conv2d`` keeps) reuses scratch arrays.

    Example: ``F.conv2d(x, w, b, stride=2, padding=1)  # x (8, 3, 32, 32), w (16, 3, 3, 3) -> (8, 16, 16, 16)``
    """
    if x.ndim != 4:
        raise ValueError(f"conv2d expects input of shape (N, C, H, W), got {x.shape}")
    stride, dilation = _tuple(stride, 2, "stride"), _tuple(dilation, 2, "dilation")
    pads = _conv_padding(padding, weight.shape[2:], dilation, stride)
    extra = () if bias is None else (bias,)
    return fn.Conv2d.apply(x, weight, *extra, stride=stride, padding=pads, dilation=dilation, groups=groups,
                           workspace=workspace)


def conv1d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1,
           padding: Any = 0, dilation: Any = 1, groups: int = 1, *, workspace: Any = None) -> Tensor:
    """1-D convolution of (N, C, L) with weight (O, C/groups, k): a conv2d of height 1
    (``workspace`` as in ``conv2d``).

    Example: ``F.conv1d(x, w, padding=1)  # x (8, 1, 40), w (32, 1, 3) -> (8, 32, 40)``
    """
    if x.ndim != 3:
        raise ValueError(f"conv1d expects input of shape (N, C, L), got {x.shape}")
    (s,), (d,) = _tuple(stride, 1, "stride"), _tuple(dilation, 1, "dilation")
    if isinstance(padding, str):
        pads = _conv_padding(padding, (1,) + tuple(weight.shape[2:]), (1, d), (1, s))
    else:
        (p,) = _tuple(padding, 1, "padding")
        pads = (0, 0, p, p)
    extra = () if bias is None else (bias,)
    x4 = x.reshape(x.shape[0], x.shape[1], 1, x.shape[2])
    w4 = weight.reshape(weight.shape[0], weight.shape[1], 1, weight.shape[2])
    out = fn.Conv2d.apply(x4, w4, *extra, stride=(1, s), padding=pads, dilation=(1, d), groups=groups,
                          workspace=workspace)
    return out.reshape(out.shape[0], out.shape[1], out.shape[3])


def _pool_args(kernel_size, stride, padding, n, name):
    k = _tuple(kernel_size, n, f"{name} kernel_size")
    s = k if stride is None else _tuple(stride, n, f"{name} stride")
    p = _tuple(padding, n, f"{name} padding")
    if any(2 * pi > ki for pi, ki in zip(p, k)):
        raise ValueError(f"{name}: padding {p} must be at most half the kernel size {k}")
    return k, s, p


def max_pool2d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               dilation: Any = 1) -> Tensor:
    """Maximum over windows of (N, C, H, W); stride defaults to the window size.

    Example: ``F.max_pool2d(x, 2).shape  # (N, C, H // 2, W // 2)``
    """
    if x.ndim != 4:
        raise ValueError(f"max_pool2d expects input of shape (N, C, H, W), got {x.shape}")
    k, s, p = _pool_args(kernel_size, stride, padding, 2, "max_pool2d")
    return fn.MaxPool2d.apply(x, kernel=k, stride=s, padding=(p[0], p[0], p[1], p[1]),
                              dilation=_tuple(dilation, 2, "dilation"))


def max_pool1d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               dilation: Any = 1) -> Tensor:
    """Maximum over windows of (N, C, L). Example: ``F.max_pool1d(x, 2).shape  # (N, C, L // 2)``"""
    if x.ndim != 3:
        raise ValueError(f"max_pool1d expects input of shape (N, C, L), got {x.shape}")
    (k,), (s,), (p,) = _pool_args(kernel_size, stride, padding, 1, "max_pool1d")
    (d,) = _tuple(dilation, 1, "dilation")
    out = fn.MaxPool2d.apply(x.reshape(x.shape[0], x.shape[1], 1, x.shape[2]), kernel=(1, k),
                             stride=(1, s), padding=(0, 0, p, p), dilation=(1, d))
    return out.reshape(out.shape[0], out.shape[1], out.shape[3])


def avg_pool2d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0) -> Tensor:
    """Mean over windows of (N, C, H, W), zero padding counted (PyTorch's default).

    Example: ``F.avg_pool2d(x, 2).shape  # (N, C, H // 2, W // 2)``
    """
    if x.ndim != 4:
        raise ValueError(f"avg_pool2d expects input of shape (N, C, H, W), got {x.shape}")
    k, s, p = _pool_args(kernel_size, stride, padding, 2, "avg_pool2d")
    return fn.AvgPool2d.apply(x, kernel=k, stride=s, padding=(p[0], p[0], p[1], p[1]))


def avg_pool1d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0) -> Tensor:
    """Mean over windows of (N, C, L). Example: ``F.avg_pool1d(x, 4).shape  # (N, C, L // 4)``"""
    if x.ndim != 3:
        raise ValueError(f"avg_pool1d expects input of shape (N, C, L), got {x.shape}")
    (k,), (s,), (p,) = _pool_args(kernel_size, stride, padding, 1, "avg_pool1d")
    out = fn.AvgPool2d.apply(x.reshape(x.shape[0], x.shape[1], 1, x.shape[2]), kernel=(1, k),
                             stride=(1, s), padding=(0, 0, p, p))
    return out.reshape(out.shape[0], out.shape[1], out.shape[3])


def dropout2d(x: Tensor, p: float = 0.5, training: bool = True,
              rng: np.random.Generator | None = None) -> Tensor:
    """Zero whole channels of (N, C, ...) with probability p, scale the rest by 1/(1-p).

    Example: ``F.dropout2d(feature_maps, 0.1, rng=np.random.default_rng(0))``
    """
    if not 0 <= p < 1:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    if not training or p == 0:
        return x
    rng = rng if rng is not None else np.random.default_rng()
    keep = rng.random(x.shape[:2] + (1,) * (x.ndim - 2)) >= p
    mask = xp_of(x.data).asarray(keep, dtype=x.dtype) * x.dtype.type(1.0 / (1.0 - p))
    return x * Tensor._make(mask, False)


def embedding(indices: Any, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Rows of ``weight`` (num, dim) for integer ``indices`` of any shape; ``padding_idx``'s row gets no gradient.

    Example: ``F.embedding(nl.tensor([[1, 2]]), table).shape  # (1, 2, dim)``
    """
    idx = indices.data if isinstance(indices, Tensor) else xp_of(weight.data).asarray(indices)
    return fn.Embedding.apply(weight, indices=idx, padding_idx=padding_idx)


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask: Any = None,
                                 dropout_p: float = 0.0, is_causal: bool = False,
                                 scale: float | None = None, training: bool = True,
                                 rng: np.random.Generator | None = None) -> Tensor:
    """softmax(q k^T / sqrt(d) + mask) v over the last two axes (..., L, d) and (..., S, d).

    ``attn_mask`` is boolean (True = may attend, as PyTorch's) or float (added to the scores);
    ``is_causal`` lets position i attend to positions <= i only. A composite of matmul,
    softmax and mul, so its gradient comes from those ops.
    Example: ``F.scaled_dot_product_attention(q, k, v, is_causal=True)``
    """
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise ValueError(f"scaled_dot_product_attention: query {query.shape}, key {key.shape} and "
                         f"value {value.shape} do not fit (need (..., L, d), (..., S, d), (..., S, dv))")
    bias = _attention_bias(attn_mask, is_causal, query.shape[-2], key.shape[-2], query.dtype,
                           xp_of(query.data))
    return _attention(query, key, value, bias, dropout_p, scale, training, rng)[0]


def _attention(query: Tensor, key: Tensor, value: Tensor, bias: Any, dropout_p: float,
               scale: float | None, training: bool, rng: Any) -> tuple[Tensor, Tensor]:
    """The attention output and the attention weights (after dropout), for an additive bias."""
    scale = 1.0 / np.sqrt(query.shape[-1]) if scale is None else scale
    scores = (query @ key.transpose(_swap_last(key.ndim))) * scale
    if bias is not None:
        scores = scores + Tensor._make(bias, False)
    weights = softmax(scores, axis=-1)
    if dropout_p:
        weights = dropout(weights, dropout_p, training=training, rng=rng)
    return weights @ value, weights


def _swap_last(ndim: int) -> tuple:
    return tuple(range(ndim - 2)) + (ndim - 1, ndim - 2)


def _attention_bias(attn_mask: Any, is_causal: bool, L: int, S: int, dtype: Any, xp: Any):
    """An additive float mask: 0 where attending is allowed, -inf where it is not."""
    bias = None
    if attn_mask is not None:
        m = attn_mask.data if isinstance(attn_mask, Tensor) else xp.asarray(attn_mask)
        bias = xp.where(m, 0.0, -np.inf).astype(dtype) if m.dtype == bool else m.astype(dtype)
    if is_causal:
        causal = xp.where(xp.tril(xp.ones((L, S), dtype=bool)), 0.0, -np.inf).astype(dtype)
        bias = causal if bias is None else bias + causal
    return bias


# ============================================================================ tabular ops
def cos(x: Tensor) -> Tensor:
    """Elementwise cosine, with its gradient -sin(x).

    Example: ``F.cos(nl.tensor([0.0])).item()  # 1.0``
    """
    return fn.Cos.apply(_tensor(x))


def selu(x: Tensor) -> Tensor:
    """Scaled exponential linear unit (Klambauer et al., 2017), as ``torch.nn.functional.selu``.

    Example: ``F.selu(nl.tensor([-1.0, 1.0]))``
    """
    return fn.SELU.apply(_tensor(x))


def mish(x: Tensor) -> Tensor:
    """Mish, x * tanh(softplus(x)) (Misra, 2019), as ``torch.nn.functional.mish``.

    Example: ``F.mish(nl.tensor([-1.0, 1.0]))``
    """
    return fn.Mish.apply(_tensor(x))


def smooth_clip(x: Tensor, limit: float = 3.0) -> Tensor:
    """x / sqrt(1 + (x / limit)**2): about x near 0, tending to +-limit (RealMLP's input clip).

    Example: ``F.smooth_clip(nl.tensor([0.0, 3.0, 1e6]))  # [0, 2.12, ~3]``
    """
    x = _tensor(x)
    return x / ((x * (1.0 / limit)) ** 2 + 1.0).sqrt()


ACTIVATIONS.update({"selu": selu, "mish": mish})
