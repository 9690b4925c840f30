"""Adam and AdamW: momentum plus a per-weight step size from the running gradient scale."""
from __future__ import annotations

import math
from typing import Any, Iterable

from .. import backend
from ..kernels.numpy_ref import scalars
from .optimizer import Optimizer


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015), exactly PyTorch's ``torch.optim.Adam``.

    With ``d = grad + weight_decay * w`` and step count ``t``:
    ``m = b1*m + (1-b1)*d``, ``v = b2*v + (1-b2)*d**2`` (``v = max(v_max, v)`` with amsgrad),
    ``w -= lr / (1-b1**t) * m / (sqrt(v) / sqrt(1-b2**t) + eps)``.

    Args:
        params: parameters or parameter groups (see ``Optimizer``).
        lr: learning rate.
        betas: decay rates of the running mean of the gradient and of its square.
        eps: added to the denominator for numerical stability.
        weight_decay: L2 penalty coefficient, added to the gradient (see ``AdamW`` for the
            decoupled form that usually works better).
        amsgrad: divide by the running maximum of ``v`` (Reddi et al., 2018).

    Example:
        >>> opt = optim.Adam(model.parameters(), lr=1e-3)
    """

    _decoupled = False  # AdamW: weight decay shrinks w directly instead of entering d

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False) -> None:
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad))

    def _check_hyperparameters(self, group: dict[str, Any]) -> None:
        super()._check_hyperparameters(group)
        betas = group["betas"]
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"{type(self).__name__}: betas must be two numbers in [0, 1), got {betas}")
        if group["eps"] < 0:
            raise ValueError(f"{type(self).__name__}: eps must be >= 0, got {group['eps']}")

    def _update(self, group: dict[str, Any], w: Any, g: Any, state: dict[str, Any]) -> None:
        xp = backend.xp_of(w)
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(w)
            state["exp_avg_sq"] = xp.zeros_like(w)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = xp.zeros_like(w)
        state["step"] += 1
        t = state["step"]
        amsgrad = bool(group["amsgrad"])
        views = self._kernel_views(w, g, state["exp_avg"], state["exp_avg_sq"],
                                   *([state["max_exp_avg_sq"]] if amsgrad else []))
        if views is not None:  # the fused kernel; the scalars as in the array code below
            c = math.sqrt(1.0 - b2 ** t)
            decay = 1.0 - lr * wd if self._decoupled else 1.0
            self._kernels.adam(*views[:4], views[-1] if amsgrad else views[3],
                                *scalars(w.dtype, lr * c / (1.0 - b1 ** t), b1, 1.0 - b1, b2,
                                         1.0 - b2, eps * c, 0.0 if self._decoupled else wd,
                                         decay), amsgrad)
            return
        if self._decoupled:
            if wd:
                w *= 1.0 - lr * wd
        else:
            g = self._grad_with_decay(g, w, wd)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        s = self._work.get(w)
        m *= b1
        self._axpy(1.0 - b1, g, m)
        v *= b2
        xp.multiply(g, g, out=s)
        self._axpy(1.0 - b2, s, v)
        if group["amsgrad"]:
            v = xp.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
        # NOTE: PyTorch's m / (sqrt(v) / c + eps) * lr / bc1 equals m / (sqrt(v) + eps * c) *
        # (lr * c / bc1) with c = sqrt(1 - b2**t): the scalar moves out of the array, which
        # saves one pass. The whole update is then sqrt, +eps, divide and one axpy, all in
        # the scratch buffer.
        c = math.sqrt(1.0 - b2 ** t)
        xp.sqrt(v, out=s)
        s += eps * c
        xp.divide(m, s, out=s)
        self._axpy(-lr * c / (1.0 - b1 ** t), s, w)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019), PyTorch's ``AdamW``.

    Each step first shrinks the weights, ``w *= 1 - lr * weight_decay``, then takes an Adam
    step on the plain gradient, so decay is not rescaled by Adam's per-weight step size.

    Args: as ``Adam``; ``weight_decay`` defaults to 0.01.

    Example:
        >>> opt = optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    """

    _decoupled = True

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad)
