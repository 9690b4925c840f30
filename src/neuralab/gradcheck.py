"""Finite-difference gradient check: compare backward's gradients with numerical ones.

Learners use it to verify their own ops; the test suite uses it on every op.

Example:
    >>> x = nl.tensor(np.random.rand(3, 2), dtype="float64", requires_grad=True)
    >>> nl.gradcheck(lambda t: (t ** 3).sum(), x)
    True
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .backend import to_numpy
from .tensor import Tensor, no_grad


def _as_float64(t: Any) -> Any:
    if not isinstance(t, Tensor):
        return t
    if t.dtype.kind == "f":  # a float64 copy on the same device, so the user's data is untouched
        return Tensor(t.data.astype(np.float64), requires_grad=t.requires_grad, dtype=np.float64)
    return t


def gradcheck(fn: Callable[..., Tensor], *tensors: Any, eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-4, seed: int = 0) -> bool:
    """Check ``fn``'s analytic gradients against central differences, in float64.

    Every input that requires grad is copied to float64. For a non-scalar output the check
    uses the scalar ``sum(r * fn(...))`` with fixed random weights ``r``, which exercises
    every output element in one backward pass (so reported values are of that sum).

    Args:
        fn: function of the tensors returning a Tensor.
        tensors: its inputs; those with ``requires_grad=True`` are checked.
        eps: the finite-difference step.
        atol, rtol: a mismatch is ``|analytic - numeric| > atol + rtol * |numeric|``.
        seed: seed of the random output weights.

    Returns True, or raises AssertionError naming the input, the index and both values of
    the worst mismatch.

    Example:
        >>> nl.gradcheck(lambda a, b: a @ b, a64, b64)
        True
    """
    inputs = [_as_float64(t) for t in tensors]
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True")
    out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    # weights 1 for a scalar output, so the reported values are the derivatives themselves
    r = np.random.default_rng(seed).standard_normal(out.shape) if out.size > 1 else np.ones(out.shape)

    def scalar(result: Tensor) -> float:
        return float(np.sum(to_numpy(result.data).astype(np.float64) * r))

    if out.requires_grad:  # otherwise no input reaches the output: every gradient is zero
        (out * Tensor(r, dtype=out.dtype, device=out.device)).sum().backward()

    worst = None  # (excess, input index, element index, analytic, numeric)
    for i in checked:
        t = inputs[i]
        analytic = np.zeros(t.shape) if t.grad is None else to_numpy(t.grad).astype(np.float64)
        data = t.data
        numeric = np.zeros(t.shape)
        for idx in np.ndindex(*t.shape):
            orig = data[idx]
            with no_grad():
                data[idx] = orig + eps
                plus = scalar(fn(*inputs))
                data[idx] = orig - eps
                minus = scalar(fn(*inputs))
            data[idx] = orig
            numeric[idx] = (plus - minus) / (2 * eps)
        err = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
        if err.size:
            j = np.unravel_index(int(np.argmax(err)), err.shape)
            if err[j] > 0 and (worst is None or err[j] > worst[0]):
                worst = (err[j], i, j, analytic[j], numeric[j])
    if worst is not None:
        _, i, j, a, n = worst
        raise AssertionError(
            f"gradcheck failed for input {i} (shape {inputs[i].shape}) at index {tuple(int(k) for k in j)}: "
            f"analytic {a:.8g} vs numeric {n:.8g} (difference {abs(a - n):.3g}, "
            f"allowed {atol + rtol * abs(n):.3g})")
    return True
