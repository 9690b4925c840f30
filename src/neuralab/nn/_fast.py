"""The no-graph forward: a Linear/ReLU chain run as raw NumPy calls, the eager arithmetic bit for bit.

Predictions (``Sequential`` under ``no_grad``, the estimators' ``predict``) and the captured
training step (``training.captured``) recognise a plain chain of ``Linear`` layers and ReLUs
here and skip building Tensors and Functions; anything else returns None and the caller runs
the eager modules. ``tests/test_fast_paths.py`` checks each path equal to the eager one.

Example:
    >>> layers = inference_layers(model)          # None unless a Linear/ReLU chain
    >>> out = forward_layers(layers, X)            # == model(nl.tensor(X)).data
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import kernels
from ..tensor import Tensor
from .activation import ReLU
from .layers import Dropout, Identity, Linear
from .module import Module

__all__ = ["inference_layers", "forward_layers", "no_grad_forward"]


def _chain(model: Any) -> list | None:
    """The model as a flat list of ("linear", module) / ("relu", None), or None if it is not
    a plain chain the captured step knows."""
    out: list = []

    def walk(m: Any) -> bool:
        kind = type(m)
        if kind is Linear or (isinstance(m, Linear) and kind.forward is Linear.forward):
            out.append(("linear", m))
            return True
        if kind is ReLU:
            out.append(("relu", None))
            return True
        if kind is Identity or (kind is Dropout and (m.p == 0 or not m.training)):
            return True
        # a Sequential whose forward is its own (marked in container.py, which imports this module)
        if getattr(kind.forward, "runs_children_in_order", False):
            return all(walk(c) for c in vars(m).values() if isinstance(c, Module))
        return False

    if not walk(model):
        return None
    # the chain must be: linear, then optionally relu, repeated; no relu before a linear
    if not out or out[0][0] != "linear" or out[-1][0] != "linear":
        return None
    for a, b in zip(out, out[1:]):
        if a[0] == "relu" and b[0] == "relu":
            return None
    return out


def inference_layers(model: Any) -> list | None:
    """``[(weight, bias, relu_after), ...]`` for a Linear/ReLU chain with NumPy parameters,
    else None. Used for predictions without building Tensors (see ``forward_layers``).

    Example: ``layers = inference_layers(model); out = forward_layers(layers, X)``
    """
    chain = _chain(model)
    if chain is None:
        return None
    layers = []
    for i, (kind, m) in enumerate(chain):
        if kind == "linear":
            if type(m.weight.data) is not np.ndarray:
                return None
            layers.append((m.weight, m.bias, i + 1 < len(chain) and chain[i + 1][0] == "relu"))
    return layers


def forward_layers(layers: list, X: np.ndarray) -> np.ndarray:
    """The chain's output for X: the eager forward's NumPy calls without the graph.

    X may be a SciPy sparse CSR matrix: the first product is then sparse x dense, as in the
    eager ``functions.Linear``, and gives a dense array.

    NOTE: a single-row prediction through Modules and Functions spends more time in Python
    than in the three matmuls; this is the same arithmetic, bit for bit, at NumPy's speed.
    """
    k = kernels.active() if kernels.loaded() else None  # numba's, when already imported
    for w, b, relu in layers:
        X = X @ w.data.T
        # NOTE: mnist net, numba loaded: 128 rows 407 -> 383 us, 500 rows 1510 -> 1402 us; a few
        # rows lose to the kernel's call (1 row: 20.0 -> 21.5 us), hence the size floor
        if (k is not None and b is not None and relu and X.ndim == 2 and X.size >= 8192
                and b.data.shape == X.shape[1:] and kernels.usable(X, b.data)):
            k.bias_relu(X, b.data)  # X += b; max(X, 0) in one pass, the same bits
            continue
        if b is not None:
            X += b.data
        if relu:
            np.maximum(X, 0, out=X)
    return X


def no_grad_forward(children: Any, x: Any) -> Any:
    """The output Tensor of ``children`` (a flat Linear/ReLU chain; non-Module values are
    skipped) applied to Tensor ``x`` as raw NumPy calls, or None when the chain is anything
    else (then the caller runs the eager modules, which also raise the usual errors). Only
    for use under ``no_grad``.

    NOTE: ``Sequential.forward`` calls this under ``no_grad``: one row through the mnist net
    spends much of its time in module and op dispatch; the arithmetic is the eager one, bit for bit.
    Nothing is cached, so a changed model is always run as it is now.

    Example: ``with nl.no_grad(): out = no_grad_forward(list(model), nl.tensor(X))``
    """
    X = x.data
    if type(X) is not np.ndarray or X.ndim == 0:
        return None  # a GPU or SciPy sparse array: the eager modules take it
    layers: list = []  # [weight, bias, relu_after]
    for m in children:
        kind = type(m)
        if kind is Linear:
            layers.append([m.weight, m.bias, False])
        elif kind is ReLU and layers and not layers[-1][2]:
            layers[-1][2] = True
        elif isinstance(m, Module):
            return None
    if not layers:
        return None
    try:
        return Tensor._make(forward_layers(layers, X), False)
    except (ValueError, TypeError):  # wrong shapes or a GPU weight: the eager path explains
        return None
