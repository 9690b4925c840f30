"""Convolution and pooling layers: Conv1d, Conv2d, MaxPool1d/2d, AvgPool1d/2d, BatchNorm2d, Dropout2d.

Channels-first layouts as PyTorch: (N, C, L) for 1-D and (N, C, H, W) for 2-D; weights
(out_channels, in_channels / groups, *kernel_size), so PyTorch state dicts load one to one.
The layers only hold parameters and call ``functional``; the gradients live in
``functions.Conv2d``, ``functions.MaxPool2d`` and ``functions.AvgPool2d``.

Example:
    >>> net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, rng=0), nn.ReLU(), nn.MaxPool2d(2),
    ...                     nn.Flatten(), nn.Linear(8 * 14 * 14, 10, rng=0))
    >>> net(nl.zeros(2, 1, 28, 28)).shape
    (2, 10)
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import backend
from .. import functional as F
from .. import functions as fn
from ..tensor import Tensor
from . import init
from .module import Module, Parameter
from .normalization import BatchNorm1d

__all__ = ["Conv1d", "Conv2d", "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d",
           "BatchNorm2d", "Dropout2d"]


class _ConvNd(Module):
    """Shared parameter set-up of Conv1d and Conv2d (PyTorch's default initialisation)."""

    n_dims = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, dilation: Any = 1, groups: int = 1, bias: bool = True,
                 rng: np.random.Generator | int | None = None, dtype: Any = None) -> None:
        super().__init__()
        name = type(self).__name__
        for label, n in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
                raise ValueError(f"{name}: {label} must be a positive integer, got {n!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) and out_channels ({out_channels}) "
                             f"must both be divisible by groups ({groups})")
        k = F._tuple(kernel_size, self.n_dims, "kernel_size")
        self.in_channels, self.out_channels, self.kernel_size = int(in_channels), int(out_channels), k
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, int(groups)
        rng = np.random.default_rng(rng)
        dtype = backend.get_default_dtype() if dtype is None else np.dtype(dtype)
        shape = (self.out_channels, self.in_channels // self.groups) + k
        # PyTorch's reset_parameters: weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
        self.weight = Parameter(init.kaiming_uniform(shape, rng, a=math.sqrt(5), dtype=dtype))
        bound = 1.0 / math.sqrt(shape[1] * math.prod(k))
        self.bias = Parameter(init.uniform((self.out_channels,), rng, -bound, bound, dtype=dtype)) if bias else None

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
                f"groups={self.groups}, bias={self.bias is not None}")


class Conv1d(_ConvNd):
    """1-D convolution over (N, C, L): ``nn.Conv1d(in_channels, out_channels, kernel_size, stride=1,
    padding=0, dilation=1, groups=1, bias=True, rng=None)``; padding may be "same" or "valid".

    Example: ``nn.Conv1d(1, 32, 5, padding=2, rng=0)(nl.zeros(8, 1, 40)).shape  # (8, 32, 40)``
    """

    n_dims = 1

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 3 or x.shape[1] != self.in_channels:
            raise ValueError(f"Conv1d expects input of shape (N, {self.in_channels}, L), got {x.shape}")
        ws = self.__dict__.setdefault("_workspace", fn.Workspace())  # as Conv2d's
        return F.conv1d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups,
                        workspace=ws)


class Conv2d(_ConvNd):
    """2-D convolution over (N, C, H, W): ``nn.Conv2d(in_channels, out_channels, kernel_size, stride=1,
    padding=0, dilation=1, groups=1, bias=True, rng=None)``; padding may be "same" or "valid".

    Example: ``nn.Conv2d(3, 16, 3, padding=1, rng=0)(nl.zeros(2, 3, 32, 32)).shape  # (2, 16, 32, 32)``
    """

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"Conv2d expects input of shape (N, {self.in_channels}, H, W), got {x.shape}")
        # the op's band buffers stay with the layer for its next call (no fresh pages each step)
        ws = self.__dict__.setdefault("_workspace", fn.Workspace())
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups,
                        workspace=ws)


class _Pool(Module):
    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool):
    """Maximum over windows of (N, C, H, W); stride defaults to kernel_size.

    Example: ``nn.MaxPool2d(2)(nl.zeros(1, 3, 28, 28)).shape  # (1, 3, 14, 14)``
    """

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1) -> None:
        super().__init__(kernel_size, stride, padding)
        self.dilation = dilation

    def forward(self, x: Tensor) -> Tensor:
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation)


class MaxPool1d(MaxPool2d):
    """Maximum over windows of (N, C, L). Example: ``nn.MaxPool1d(2)(nl.zeros(1, 3, 40)).shape  # (1, 3, 20)``"""

    def forward(self, x: Tensor) -> Tensor:
        return F.max_pool1d(x, self.kernel_size, self.stride, self.padding, self.dilation)


class AvgPool2d(_Pool):
    """Mean over windows of (N, C, H, W), zero padding counted (PyTorch's default).

    Example: ``nn.AvgPool2d(2)(nl.zeros(1, 3, 28, 28)).shape  # (1, 3, 14, 14)``
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding)


class AvgPool1d(_Pool):
    """Mean over windows of (N, C, L). Example: ``nn.AvgPool1d(4)(nl.zeros(1, 3, 40)).shape  # (1, 3, 10)``"""

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool1d(x, self.kernel_size, self.stride, self.padding)


class BatchNorm2d(BatchNorm1d):
    """Batch normalisation of (N, C, H, W) per channel, statistics over N, H and W (as PyTorch).

    Same arguments and state-dict keys as ``BatchNorm1d``.
    Example: ``nn.BatchNorm2d(16)(feature_maps)``
    """

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ValueError(f"BatchNorm2d({self.num_features}) expects input of shape "
                             f"(N, {self.num_features}, H, W), got {x.shape}")
        return self._normalize(x)


class Dropout2d(Module):
    """Drop whole channels of (N, C, H, W) with probability p in training (identity in eval).

    Neighbouring pixels are strongly correlated, so dropping single values barely
    regularises a CNN; dropping feature maps does.
    Example: ``nn.Dropout2d(0.1, rng=0)``
    """

    def __init__(self, p: float = 0.5, rng: np.random.Generator | int | None = None) -> None:
        super().__init__()
        if not isinstance(p, (int, float)) or not 0 <= p < 1:
            raise ValueError(f"Dropout2d: p must be a probability in [0, 1), got {p!r}")
        self.p = float(p)
        self.rng = np.random.default_rng(rng)

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout2d(x, self.p, training=self.training, rng=self.rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"
