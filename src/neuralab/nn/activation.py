"""Activation layers: thin Module wrappers around the functions in ``functional``.

Example:
    >>> nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1), nn.Sigmoid())
    Sequential(
      (0): Linear(in_features=4, out_features=8, bias=True)
      (1): ReLU()
      (2): Linear(in_features=8, out_features=1, bias=True)
      (3): Sigmoid()
    )
"""
from __future__ import annotations

from typing import Any

from .. import functional as F
from ..tensor import Tensor
from .layers import Identity
from .module import Module

__all__ = ["ReLU", "Sigmoid", "Tanh", "LeakyReLU", "GELU", "Softmax", "LogSoftmax", "Step", "ACTIVATIONS",
           "get_activation"]


class ReLU(Module):
    """max(x, 0). Example: ``nn.ReLU()(nl.tensor([-1.0, 2.0]))  # [0, 2]``"""

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x)


class Sigmoid(Module):
    """1 / (1 + e**-x). Example: ``nn.Sigmoid()(nl.tensor([0.0]))  # [0.5]``"""

    def forward(self, x: Tensor) -> Tensor:
        return F.sigmoid(x)


class Tanh(Module):
    """Hyperbolic tangent. Example: ``nn.Tanh()(nl.tensor([0.0]))  # [0.]``"""

    def forward(self, x: Tensor) -> Tensor:
        return F.tanh(x)


class LeakyReLU(Module):
    """x for x > 0, ``negative_slope * x`` otherwise. Example: ``nn.LeakyReLU(0.1)``"""

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class GELU(Module):
    """x * Phi(x); ``approximate="tanh"`` for the tanh formula. Example: ``nn.GELU()``"""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Softmax(Module):
    """Softmax along ``axis`` (NumPy's name for PyTorch's ``dim``). Example: ``nn.Softmax(axis=1)``"""

    def __init__(self, axis: int = -1) -> None:
        super().__init__()
        self.axis = axis

    def forward(self, x: Tensor) -> Tensor:
        return F.softmax(x, axis=self.axis)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


class LogSoftmax(Softmax):
    """log(softmax(x)) along ``axis``, computed stably. Example: ``nn.LogSoftmax(axis=1)``"""

    def forward(self, x: Tensor) -> Tensor:
        return F.log_softmax(x, axis=self.axis)


class Step(Module):
    """Heaviside step (1 where x >= 0, else 0): the perceptron's activation; zero gradient.

    Example: ``nn.Step()(nl.tensor([-0.5, 0.0, 2.0]))  # [0, 1, 1]``
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.step(x)


# The one table of activation layers by name (sklearn's "logistic" is the sigmoid): nn.MLP,
# the estimators, the CLI and the playground read it through ``get_activation``.
ACTIVATIONS: dict[str, Any] = {
    "relu": ReLU, "leaky_relu": LeakyReLU, "gelu": GELU, "sigmoid": Sigmoid, "logistic": Sigmoid,
    "tanh": Tanh, "identity": Identity, "linear": Identity, "softmax": Softmax,
}


def get_activation(name: str, what: str = "activation") -> Module:
    """A new activation layer by name ("relu", "tanh", "logistic", "identity", ...).

    Raises ValueError naming ``what`` (the caller's argument) and the known names otherwise.

    Example: ``nn.get_activation("relu")  # ReLU()``
    """
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown {what} {name!r}; expected one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()
