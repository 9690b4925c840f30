"""Normalisation layers: BatchNorm1d and LayerNorm.

Example:
    >>> bn = nn.BatchNorm1d(64)
    >>> list(bn.state_dict())
    ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .. import backend
from .. import functional as F
from ..tensor import Tensor
from . import init
from .module import Module, Parameter

__all__ = ["BatchNorm1d", "LayerNorm"]


class BatchNorm1d(Module):
    """Batch normalisation of (N, C) or (N, C, L) input, per channel C.

    In training it normalises with the batch's mean and (biased) variance and updates the
    running statistics: ``running = (1 - momentum) * running + momentum * batch`` (the
    running variance uses the unbiased batch variance, as PyTorch). In eval mode it uses the
    running statistics. ``momentum=None`` gives a cumulative average over all batches.

    Args:
        num_features: the number of channels C.
        eps: added to the variance before the square root.
        momentum: weight of the newest batch in the running statistics.
        affine: learn a per-channel scale ``weight`` (ones) and shift ``bias`` (zeros).
        track_running_stats: keep running statistics (buffers ``running_mean``,
            ``running_var``, ``num_batches_tracked``); without them batch statistics are
            used in eval mode too.
        dtype: float dtype of parameters and running statistics.

    Example:
        >>> bn = nn.BatchNorm1d(3)
        >>> y = bn(nl.tensor(np.random.default_rng(0).normal(size=(8, 3))))
        >>> bn.num_batches_tracked
        array(1)
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, dtype: Any = None) -> None:
        super().__init__()
        if isinstance(num_features, bool) or not isinstance(num_features, (int, np.integer)) \
                or num_features <= 0:
            raise ValueError(f"BatchNorm1d: num_features must be a positive integer, got {num_features!r}")
        dtype = backend.get_default_dtype() if dtype is None else np.dtype(dtype)
        self.num_features, self.eps, self.momentum = int(num_features), eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = Parameter(init.ones((num_features,), dtype=dtype)) if affine else None
        self.bias = Parameter(init.zeros((num_features,), dtype=dtype)) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", init.zeros((num_features,), dtype=dtype))
            self.register_buffer("running_var", init.ones((num_features,), dtype=dtype))
            self.register_buffer("num_batches_tracked", np.zeros((), dtype=np.int64))

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in (2, 3) or x.shape[1] != self.num_features:
            raise ValueError(f"BatchNorm1d({self.num_features}) expects input of shape "
                             f"(N, {self.num_features}) or (N, {self.num_features}, L), got {x.shape}")
        return self._normalize(x)

    def _normalize(self, x: Tensor) -> Tensor:
        # shared with BatchNorm2d, which only checks a different input shape
        if not self.track_running_stats:
            return F.batch_norm(x, None, None, self.weight, self.bias, training=True, eps=self.eps)
        momentum = self.momentum
        if self.training:
            self.num_batches_tracked += 1  # in place: the state dict holds this very array
            if momentum is None:
                momentum = 1.0 / int(self.num_batches_tracked)
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            training=self.training, momentum=momentum, eps=self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class LayerNorm(Module):
    """Normalise each sample over its last axes (``normalized_shape``), then scale and shift.

    Unlike batch norm it has no running statistics and behaves the same in train and eval.

    Example:
        >>> ln = nn.LayerNorm(64)
        >>> ln.weight.shape
        (64,)
    """

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5,
                 elementwise_affine: bool = True, dtype: Any = None) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) \
            else tuple(normalized_shape)
        if not shape or any(int(n) <= 0 for n in shape):
            raise ValueError(f"LayerNorm: normalized_shape must be positive sizes, got {normalized_shape!r}")
        dtype = backend.get_default_dtype() if dtype is None else np.dtype(dtype)
        self.normalized_shape = tuple(int(n) for n in shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        self.weight = Parameter(init.ones(self.normalized_shape, dtype=dtype)) if elementwise_affine else None
        self.bias = Parameter(init.zeros(self.normalized_shape, dtype=dtype)) if elementwise_affine else None

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, eps=self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
