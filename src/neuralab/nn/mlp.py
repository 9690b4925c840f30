"""MLP: a multi-layer perceptron assembled from Linear, norm, activation and Dropout blocks.

Example:
    >>> model = nn.MLP(64, hidden=(128, 128), out_features=10, dropout=0.2, norm="batch", rng=0)
    >>> list(model.state_dict())[:3]
    ['0.0.weight', '0.0.bias', '0.1.weight']
"""
from __future__ import annotations

import functools
from typing import Any, Sequence

import numpy as np

from . import init as nn_init
from .activation import get_activation
from .container import Residual, Sequential
from .layers import Dropout, Identity, Linear
from .module import Module
from .normalization import BatchNorm1d, LayerNorm

__all__ = ["MLP"]

RELU_FAMILY = ("relu", "leaky_relu", "gelu")
NORMS = {None: None, "batch": BatchNorm1d, "layer": LayerNorm}


def _weight_init_for(activation: str | None):
    """He/Kaiming for the ReLU family, Xavier/Glorot otherwise (both uniform)."""
    if activation == "leaky_relu":
        # the gain of a leaky ReLU with PyTorch's default slope 0.01
        return functools.partial(nn_init.kaiming_uniform, a=0.01, nonlinearity="leaky_relu")
    if activation in RELU_FAMILY:  # GELU is close enough to ReLU to use ReLU's gain
        return functools.partial(nn_init.kaiming_uniform, nonlinearity="relu")
    return nn_init.xavier_uniform


def _activation_layer(name: str, what: str) -> Module:
    try:
        return get_activation(name, what)
    except ValueError as e:
        raise ValueError(f"MLP: {e}") from None


class MLP(Sequential):
    """A multi-layer perceptron: hidden blocks, then an output Linear (and its activation).

    Each hidden block is ``Sequential(Linear, [BatchNorm1d | LayerNorm], activation,
    [Dropout])`` (norm before the activation, as in the batch-norm paper); with
    ``residual=True`` it is wrapped as ``Residual(block)``, which adds a bias-free Linear
    projection on the skip path wherever the width changes. The model is itself a
    Sequential, so its state-dict keys read ``"0.0.weight"`` (block 0, its Linear),
    ``"0.1.running_mean"`` (block 0, its batch norm), ``"2.weight"`` (the output layer), and
    with residual blocks ``"0.block.0.weight"`` and ``"0.projection.weight"``.

    Initialisation (``init="auto"``): a Linear followed by a ReLU-family activation
    (relu, leaky_relu, gelu) gets He/Kaiming uniform weights (variance 2 / fan_in, since
    ReLU zeroes half its input); one followed by sigmoid, tanh or nothing (identity, the
    output layer unless ``output_activation`` says otherwise) gets Xavier/Glorot uniform
    (variance 2 / (fan_in + fan_out)). Biases start at zero. ``init=None`` uses PyTorch's
    Linear default instead; an initialiser name or callable is used for every Linear.

    Args:
        in_features: input width.
        hidden: widths of the hidden layers, e.g. ``(128, 64)``; ``()`` for none.
        out_features: output width.
        activation: hidden activation: "relu", "leaky_relu", "gelu", "tanh", "sigmoid"
            (alias "logistic") or "identity".
        dropout: dropout probability after each hidden activation (0: no Dropout layer).
        norm: None, "batch" (BatchNorm1d) or "layer" (LayerNorm) in each hidden block.
        residual: wrap each hidden block in a Residual skip connection (True), or only the
            skips between hidden layers of equal width, without projections ("hidden": not
            around the first block, whose input is the data; the estimators' ``residual``).
        rng: ``numpy.random.Generator`` or seed, for the weights and the dropout masks.
        output_activation: None, or an activation name (e.g. "softmax", "sigmoid") appended
            as the last layer.
        init: "auto" (the rule above), None (PyTorch's default) or a weight initialiser.
        dtype: float dtype of the parameters.

    Example:
        >>> model = nn.MLP(4, hidden=(16,), out_features=3, activation="tanh", rng=0)
        >>> model
        MLP(
          in_features=4, hidden=(16,), out_features=3, activation='tanh', ...
          (0): Sequential(
            (0): Linear(in_features=4, out_features=16, bias=True)
            (1): Tanh()
          )
          (1): Linear(in_features=16, out_features=3, bias=True)
        )
    """

    def __init__(self, in_features: int, hidden: Sequence[int], out_features: int,
                 activation: str = "relu", dropout: float = 0.0, norm: str | None = None,
                 residual: bool | str = False, rng: np.random.Generator | int | None = None,
                 output_activation: str | None = None, init: Any = "auto",
                 dtype: Any = None) -> None:
        super().__init__()
        hidden = (hidden,) if isinstance(hidden, (int, np.integer)) else tuple(hidden)
        if any(isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h <= 0 for h in hidden):
            raise ValueError(f"MLP: hidden must be positive layer widths, got {hidden!r}")
        if norm not in NORMS:
            raise ValueError(f"MLP: norm must be None, 'batch' or 'layer', got {norm!r}")
        if not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ValueError(f"MLP: dropout must be a probability in [0, 1), got {dropout!r}")
        if residual not in (True, False, "hidden"):
            raise ValueError(f"MLP: residual must be True, False or 'hidden', got {residual!r}")
        _activation_layer(activation, "activation")  # validate the names before building
        if output_activation is not None:
            _activation_layer(output_activation, "output_activation")
        self.in_features, self.hidden, self.out_features = in_features, hidden, out_features
        self.activation, self.dropout, self.norm = activation, float(dropout), norm
        self.residual, self.output_activation = residual, output_activation
        rng = np.random.default_rng(rng)

        def weight_init(act: str | None):
            return _weight_init_for(act) if init == "auto" else init

        widths = (in_features,) + hidden
        for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
            layers: list[Module] = [Linear(n_in, n_out, rng=rng, init=weight_init(activation), dtype=dtype)]
            if norm is not None:
                layers.append(NORMS[norm](n_out, dtype=dtype))
            layers.append(_activation_layer(activation, "activation"))
            if dropout > 0:
                layers.append(Dropout(dropout, rng=rng))
            block: Module = Sequential(*layers)
            if residual is True or (residual == "hidden" and i > 0 and n_in == n_out):
                block = Residual(block, n_in, n_out, rng=rng, dtype=dtype)
            self.append(block)
        self.append(Linear(widths[-1], out_features, rng=rng, init=weight_init(output_activation),
                           dtype=dtype))
        if output_activation is not None:
            self.append(_activation_layer(output_activation, "output_activation"))

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, hidden={self.hidden}, out_features={self.out_features}, "
                f"activation={self.activation!r}, dropout={self.dropout}, norm={self.norm!r}, "
                f"residual={self.residual}, output_activation={self.output_activation!r}")
