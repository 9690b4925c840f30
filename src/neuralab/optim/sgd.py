"""Stochastic gradient descent, with momentum, Nesterov momentum and weight decay."""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from ..kernels.numpy_ref import scalars
from .optimizer import Optimizer


class SGD(Optimizer):
    """Stochastic gradient descent, exactly PyTorch's ``torch.optim.SGD``.

    With ``d = grad + weight_decay * w``:
    ``buf = momentum * buf + (1 - dampening) * d`` (``buf = d`` on the first step), then
    ``w -= lr * (d + momentum * buf)`` with Nesterov, ``w -= lr * buf`` without, and
    ``w -= lr * d`` when ``momentum == 0``.

    Args:
        params: parameters or parameter groups (see ``Optimizer``).
        lr: learning rate.
        momentum: momentum factor (0 turns momentum off).
        dampening: how much of each new gradient is left out of the momentum buffer.
        weight_decay: L2 penalty coefficient (added to the gradient).
        nesterov: use Nesterov momentum (needs momentum > 0 and dampening 0).

    Example:
        >>> opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    """

    # NOTE: SGD makes only one to three NumPy calls per parameter, so gathering all of them
    # into one flat array (see Optimizer.step) costs more than it saves: never go flat.
    flat_max_mean_size = 0

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _check_hyperparameters(self, group: dict[str, Any]) -> None:
        super()._check_hyperparameters(group)
        if group["momentum"] < 0:
            raise ValueError(f"SGD: momentum must be >= 0, got {group['momentum']}")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("SGD: Nesterov momentum needs momentum > 0 and dampening = 0, got "
                             f"momentum={group['momentum']}, dampening={group['dampening']}")

    def _update(self, group: dict[str, Any], w: Any, g: Any, state: dict[str, Any]) -> None:
        lr, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
        buf = state.get("momentum_buffer")
        views = self._kernel_views(w, g, *([] if mu == 0 or buf is None else [buf]))
        if views is not None:  # the fused kernel: one pass over w, g (and the buffer)
            first = mu != 0 and buf is None
            if first:
                buf = state["momentum_buffer"] = np.empty_like(w)
                views.append(buf.reshape(-1))
            dampening = group["dampening"]
            nums = self._reused_scalars((w.dtype, lr, wd, mu, dampening),
                                        lambda: scalars(w.dtype, lr, wd, mu, 1.0 - dampening))
            # views: w, g and (with momentum) the buffer; without, w stands in for the unused buffer
            self._kernels.sgd(views[0], views[1], views[2] if mu != 0 else views[0], *nums,
                              bool(group["nesterov"]), first)
            return
        # NOTE: weight decay is never materialised as ``g + wd * w``: it is folded into the
        # passes that happen anyway (``w *= 1 - lr * wd``, or one more axpy into the buffer),
        # so plain SGD is one pass over w (two with decay) and momentum three.
        if mu == 0:
            if wd:
                w *= 1.0 - lr * wd
            self._axpy(-lr, g, w)
            return
        if buf is None:
            buf = state["momentum_buffer"] = g.astype(w.dtype, copy=True)
            if wd:
                self._axpy(wd, w, buf)
        else:
            damp = 1.0 - group["dampening"]
            buf *= mu
            self._axpy(damp, g, buf)
            if wd:
                self._axpy(damp * wd, w, buf)
        if group["nesterov"]:
            if wd:
                w *= 1.0 - lr * wd
            self._axpy(-lr, g, w)
            self._axpy(-lr * mu, buf, w)
        else:
            self._axpy(-lr, buf, w)
