"""Weight initialisation: functions that return a new array of a given shape.

Every function takes the shape, an explicit ``numpy.random.Generator`` (or a seed; ``None``
means fresh entropy, never NumPy's global seed) and a dtype (float32 unless told), and
returns a NumPy array. The formulas and argument names follow ``torch.nn.init``; for a
weight shaped ``(out, in, *kernel)``, ``fan_in = in * prod(kernel)`` and
``fan_out = out * prod(kernel)``.

Why the scales: a layer's output variance is ``fan_in * Var(w) * Var(x)``. Xavier/Glorot
keeps it near 1 for tanh/sigmoid nets (``Var(w) = 2 / (fan_in + fan_out)``); He/Kaiming
doubles it for ReLU, which zeroes half of its input (``Var(w) = 2 / fan_in``); LeCun uses
``Var(w) = 1 / fan_in`` (SELU nets).

Example:
    >>> rng = np.random.default_rng(0)
    >>> w = init.kaiming_uniform((128, 64), rng, nonlinearity="relu")
    >>> w.shape, w.dtype
    ((128, 64), dtype('float32'))
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

Shape = Sequence[int]
RNG = np.random.Generator | int | None

__all__ = ["calculate_gain", "fan_in_and_fan_out", "xavier_uniform", "xavier_normal",
           "kaiming_uniform", "kaiming_normal", "lecun_normal", "uniform", "normal",
           "zeros", "ones", "constant"]


def _generator(rng: RNG) -> np.random.Generator:
    # default_rng returns a Generator unchanged, turns a seed into one and None into a fresh one.
    return np.random.default_rng(rng)


def _shape(shape: Shape | int) -> tuple[int, ...]:
    return (shape,) if isinstance(shape, int) else tuple(int(n) for n in shape)


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended scale of the weights for a nonlinearity, as ``torch.nn.init``.

    linear/conv/sigmoid/identity: 1, tanh: 5/3, relu: sqrt(2),
    leaky_relu: sqrt(2 / (1 + negative_slope**2)) (slope ``param``, default 0.01), selu: 3/4.

    Example: ``init.calculate_gain("relu")  # 1.414...``
    """
    linear_like = ("linear", "identity", "sigmoid", "conv1d", "conv2d", "conv3d",
                   "conv_transpose1d", "conv_transpose2d", "conv_transpose3d")
    if nonlinearity in linear_like:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ValueError(f"calculate_gain: negative_slope {param!r} is not a number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}; expected one of "
                     f"{sorted(linear_like + ('tanh', 'relu', 'leaky_relu', 'selu'))}")


def fan_in_and_fan_out(shape: Shape) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight shaped (out, in, *kernel).

    Example: ``init.fan_in_and_fan_out((10, 3, 5))  # (15, 50)``
    """
    shape = _shape(shape)
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out need a weight with at least 2 dimensions "
                         f"(out, in, ...), got shape {shape}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _fan(shape: Shape, mode: str) -> int:
    fan_in, fan_out = fan_in_and_fan_out(shape)
    if mode == "fan_in":
        return fan_in
    if mode == "fan_out":
        return fan_out
    raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")


def uniform(shape: Shape, rng: RNG = None, a: float = 0.0, b: float = 1.0,
            dtype: Any = np.float32) -> np.ndarray:
    """Values drawn uniformly from [a, b).

    Example: ``init.uniform((3,), rng, -0.1, 0.1)``
    """
    return _generator(rng).uniform(a, b, size=_shape(shape)).astype(dtype)


def normal(shape: Shape, rng: RNG = None, mean: float = 0.0, std: float = 1.0,
           dtype: Any = np.float32) -> np.ndarray:
    """Values drawn from N(mean, std**2).

    Example: ``init.normal((3, 4), rng, std=0.02)``
    """
    return _generator(rng).normal(mean, std, size=_shape(shape)).astype(dtype)


def constant(shape: Shape, value: float, dtype: Any = np.float32) -> np.ndarray:
    """An array filled with ``value``. Example: ``init.constant((3,), 0.1)``"""
    return np.full(_shape(shape), value, dtype=dtype)


def zeros(shape: Shape, rng: RNG = None, dtype: Any = np.float32) -> np.ndarray:
    """Zeros (``rng`` is accepted and ignored, so every initialiser has the same call).

    Example: ``init.zeros((10,))``
    """
    return np.zeros(_shape(shape), dtype=dtype)


def ones(shape: Shape, rng: RNG = None, dtype: Any = np.float32) -> np.ndarray:
    """Ones (``rng`` is accepted and ignored). Example: ``init.ones((10,))``"""
    return np.ones(_shape(shape), dtype=dtype)


def xavier_uniform(shape: Shape, rng: RNG = None, gain: float = 1.0,
                   dtype: Any = np.float32) -> np.ndarray:
    """Glorot & Bengio (2010): U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)).

    Example: ``init.xavier_uniform((64, 32), rng)``
    """
    fan_in, fan_out = fan_in_and_fan_out(shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform(shape, rng, -bound, bound, dtype)


def xavier_normal(shape: Shape, rng: RNG = None, gain: float = 1.0,
                  dtype: Any = np.float32) -> np.ndarray:
    """Glorot & Bengio (2010): N(0, std**2) with std = gain * sqrt(2 / (fan_in + fan_out)).

    Example: ``init.xavier_normal((64, 32), rng)``
    """
    fan_in, fan_out = fan_in_and_fan_out(shape)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return normal(shape, rng, 0.0, std, dtype)


def kaiming_uniform(shape: Shape, rng: RNG = None, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu", dtype: Any = np.float32) -> np.ndarray:
    """He et al. (2015): U(-b, b) with b = gain * sqrt(3 / fan), gain from ``nonlinearity``.

    ``a`` is the negative slope used when nonlinearity is "leaky_relu" (a=0 gives ReLU's
    gain sqrt(2)); PyTorch's Linear uses a=sqrt(5), which makes b = 1 / sqrt(fan_in).
    Example: ``init.kaiming_uniform((128, 64), rng, nonlinearity="relu")``
    """
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(shape, mode))
    bound = math.sqrt(3.0) * std  # U(-b, b) has variance b**2 / 3
    return uniform(shape, rng, -bound, bound, dtype)


def kaiming_normal(shape: Shape, rng: RNG = None, a: float = 0.0, mode: str = "fan_in",
                   nonlinearity: str = "leaky_relu", dtype: Any = np.float32) -> np.ndarray:
    """He et al. (2015): N(0, std**2) with std = gain / sqrt(fan).

    Example: ``init.kaiming_normal((128, 64), rng, nonlinearity="relu")``
    """
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(shape, mode))
    return normal(shape, rng, 0.0, std, dtype)


def lecun_normal(shape: Shape, rng: RNG = None, gain: float = 1.0,
                 dtype: Any = np.float32) -> np.ndarray:
    """LeCun et al. (1998): N(0, std**2) with std = gain / sqrt(fan_in) (plain, not truncated).

    Example: ``init.lecun_normal((64, 32), rng)``
    """
    fan_in, _ = fan_in_and_fan_out(shape)
    return normal(shape, rng, 0.0, gain / math.sqrt(fan_in), dtype)
