"""Adagrad: a per-weight step size that shrinks with the sum of that weight's squared gradients."""
from __future__ import annotations

from typing import Any, Iterable

from .. import backend
from ..kernels.numpy_ref import scalars
from .optimizer import Optimizer


class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011), exactly PyTorch's ``torch.optim.Adagrad``.

    With ``d = grad + weight_decay * w`` and step count ``t``: ``sum += d**2``,
    ``w -= lr / (1 + (t-1)*lr_decay) * d / (sqrt(sum) + eps)``.

    Args:
        params: parameters or parameter groups (see ``Optimizer``).
        lr: learning rate.
        lr_decay: the learning rate is divided by ``1 + (t-1) * lr_decay``.
        weight_decay: L2 penalty coefficient (added to the gradient).
        initial_accumulator_value: starting value of ``sum``.
        eps: added to the denominator for numerical stability.

    Example:
        >>> opt = optim.Adagrad(model.parameters(), lr=1e-2)
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10) -> None:
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, eps=eps))

    def _check_hyperparameters(self, group: dict[str, Any]) -> None:
        super()._check_hyperparameters(group)
        for name in ("lr_decay", "initial_accumulator_value", "eps"):
            if group[name] < 0:
                raise ValueError(f"Adagrad: {name} must be >= 0, got {group[name]}")

    def _update(self, group: dict[str, Any], w: Any, g: Any, state: dict[str, Any]) -> None:
        xp = backend.xp_of(w)
        if not state:
            state["step"] = 0
            state["sum"] = xp.full_like(w, group["initial_accumulator_value"])
        state["step"] += 1
        clr = group["lr"] / (1.0 + (state["step"] - 1) * group["lr_decay"])
        views = self._kernel_views(w, g, state["sum"])
        if views is not None:  # the fused kernel
            self._kernels.adagrad(*views, *scalars(w.dtype, clr, group["weight_decay"],
                                                    group["eps"]))
            return
        g = self._grad_with_decay(g, w, group["weight_decay"])
        s = self._work.get(w)  # NOTE: every temporary below reuses this one buffer
        xp.multiply(g, g, out=s)
        state["sum"] += s
        xp.sqrt(state["sum"], out=s)
        s += group["eps"]
        xp.divide(g, s, out=s)
        self._axpy(-clr, s, w)
