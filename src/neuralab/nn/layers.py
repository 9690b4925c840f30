"""Basic layers: Linear, Identity, Flatten and Dropout.

Each layer only creates its parameters (through ``nn.init`` with an explicit
``numpy.random.Generator``) and composes ops from ``functional``; gradients come from the
engine, so there is no backward code here.

Example:
    >>> layer = nn.Linear(3, 2, rng=np.random.default_rng(0))
    >>> layer(nl.tensor(np.ones((4, 3)))).shape
    (4, 2)
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from .. import backend
from .. import functional as F
from ..tensor import Tensor
from . import init as nn_init  # the argument of Linear is called init, as in Keras
from .module import Module, Parameter

__all__ = ["Linear", "Identity", "Flatten", "Dropout"]

Initializer = Callable[..., np.ndarray]

# Weight initialisers Linear accepts by name; each is called as fn(shape, rng, dtype=...).
WEIGHT_INITS: dict[str, Initializer] = {
    "xavier_uniform": nn_init.xavier_uniform, "glorot_uniform": nn_init.xavier_uniform,
    "xavier_normal": nn_init.xavier_normal, "glorot_normal": nn_init.xavier_normal,
    "kaiming_uniform": nn_init.kaiming_uniform, "he_uniform": nn_init.kaiming_uniform,
    "kaiming_normal": nn_init.kaiming_normal, "he_normal": nn_init.kaiming_normal,
    "lecun_normal": nn_init.lecun_normal, "zeros": nn_init.zeros,
}


def _weight_initializer(name: str | Initializer) -> Initializer:
    if callable(name):
        return name
    try:
        return WEIGHT_INITS[name]
    except KeyError:
        raise ValueError(f"unknown init {name!r}; expected a callable or one of "
                         f"{sorted(WEIGHT_INITS)}") from None


def _check_size(layer: str, **sizes: Any) -> None:
    for name, n in sizes.items():
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
            raise ValueError(f"{layer}: {name} must be a positive integer, got {n!r}")


class Linear(Module):
    """Fully connected layer: ``y = x @ weight.T + bias``, weight shaped (out, in) as PyTorch.

    Args:
        in_features, out_features: input and output widths.
        bias: add a learnable bias.
        rng: ``numpy.random.Generator`` or seed for the initial weights (None: fresh entropy).
        init: None for PyTorch's default (kaiming_uniform with a=sqrt(5), i.e. weight and bias
            both U(-1/sqrt(in), 1/sqrt(in))); or an initialiser name ("kaiming_uniform",
            "xavier_uniform", ... see ``WEIGHT_INITS``) or a callable ``fn(shape, rng, dtype=)``
            for the weight, and then the bias starts at zero.
        dtype: float dtype of the parameters (default: ``backend.get_default_dtype()``).

    Example:
        >>> layer = nn.Linear(64, 10, rng=np.random.default_rng(0), init="xavier_uniform")
        >>> layer.weight.shape
        (10, 64)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 rng: np.random.Generator | int | None = None,
                 init: str | Initializer | None = None, dtype: Any = None) -> None:
        super().__init__()
        _check_size("Linear", in_features=in_features, out_features=out_features)
        self.in_features, self.out_features = int(in_features), int(out_features)
        rng = np.random.default_rng(rng)
        dtype = backend.get_default_dtype() if dtype is None else np.dtype(dtype)
        shape = (self.out_features, self.in_features)
        if init is None:
            # PyTorch's reset_parameters: kaiming_uniform(a=sqrt(5)) is U(-1/sqrt(in), 1/sqrt(in)),
            # and the bias is drawn from the same range.
            bound = 1.0 / math.sqrt(self.in_features)
            self.weight = Parameter(nn_init.kaiming_uniform(shape, rng, a=math.sqrt(5), dtype=dtype))
            b = nn_init.uniform((self.out_features,), rng, -bound, bound, dtype=dtype)
        else:
            self.weight = Parameter(_weight_initializer(init)(shape, rng, dtype=dtype))
            b = nn_init.zeros((self.out_features,), dtype=dtype)
        self.bias = Parameter(b) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Identity(Module):
    """Returns its input unchanged (a placeholder, e.g. for "no activation").

    Example: ``nn.Identity()(x) is x  # True``
    """

    def forward(self, x: Tensor) -> Tensor:
        return x


class Flatten(Module):
    """Flatten axes ``start_axis..end_axis`` into one (default: all but the batch axis).

    Example: ``nn.Flatten()(images).shape  # (N, 28 * 28) for images (N, 28, 28)``
    """

    def __init__(self, start_axis: int = 1, end_axis: int = -1) -> None:
        super().__init__()
        self.start_axis, self.end_axis = start_axis, end_axis

    def forward(self, x: Tensor) -> Tensor:
        start, end = self.start_axis % x.ndim, self.end_axis % x.ndim
        if start > end:
            raise ValueError(f"Flatten: start_axis {self.start_axis} comes after end_axis "
                             f"{self.end_axis} for input of shape {x.shape}")
        shape = x.shape[:start] + (-1,) + x.shape[end + 1:]
        return x.reshape(shape)

    def extra_repr(self) -> str:
        return f"start_axis={self.start_axis}, end_axis={self.end_axis}"


class Dropout(Module):
    """Inverted dropout: in training, zero each value with probability ``p`` and scale the
    rest by 1 / (1 - p); in eval mode the identity (so no rescaling is needed at test time).

    Args:
        p: probability of dropping a value, in [0, 1).
        rng: ``numpy.random.Generator`` or seed; the layer keeps its own Generator, so the
            same seed gives the same masks.

    Example:
        >>> drop = nn.Dropout(0.5, rng=0)
        >>> drop.eval()(x) is x
        True
    """

    def __init__(self, p: float = 0.5, rng: np.random.Generator | int | None = None) -> None:
        super().__init__()
        if not isinstance(p, (int, float)) or not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be a probability in [0, 1), got {p!r}")
        self.p = float(p)
        self.rng = np.random.default_rng(rng)

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, training=self.training, rng=self.rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"
