"""RMSprop: divide each gradient by a running root-mean-square of its recent values."""
from __future__ import annotations

from typing import Any, Iterable

from .. import backend
from ..kernels.numpy_ref import scalars
from .optimizer import Optimizer


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture 6e), exactly PyTorch's ``torch.optim.RMSprop``.

    With ``d = grad + weight_decay * w``: ``sq = alpha*sq + (1-alpha)*d**2``; the scale is
    ``r = sqrt(sq) + eps`` (centered: ``sqrt(sq - ga**2) + eps`` with ``ga`` the running mean
    of ``d``); then ``w -= lr * d / r``, or with momentum ``buf = momentum*buf + d / r`` and
    ``w -= lr * buf``. Note: eps is added outside the square root, as in PyTorch.

    Args:
        params: parameters or parameter groups (see ``Optimizer``).
        lr: learning rate.
        alpha: decay rate of the running mean of squared gradients.
        eps: added to the denominator for numerical stability.
        weight_decay: L2 penalty coefficient (added to the gradient).
        momentum: momentum factor (0 turns it off).
        centered: normalise by the running variance instead of the raw second moment.

    Example:
        >>> opt = optim.RMSprop(model.parameters(), lr=1e-3, momentum=0.9)
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False) -> None:
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered))

    def _check_hyperparameters(self, group: dict[str, Any]) -> None:
        super()._check_hyperparameters(group)
        for name in ("alpha", "eps", "momentum"):
            if group[name] < 0:
                raise ValueError(f"RMSprop: {name} must be >= 0, got {group[name]}")

    def _update(self, group: dict[str, Any], w: Any, g: Any, state: dict[str, Any]) -> None:
        xp = backend.xp_of(w)
        lr, alpha, mu = group["lr"], group["alpha"], group["momentum"]
        if not state:
            state["step"] = 0
            state["square_avg"] = xp.zeros_like(w)
            if mu > 0:
                state["momentum_buffer"] = xp.zeros_like(w)
            if group["centered"]:
                state["grad_avg"] = xp.zeros_like(w)
        state["step"] += 1
        centered = bool(group["centered"])
        extra = [state[k] for k in ("grad_avg", "momentum_buffer") if k in state]
        views = self._kernel_views(w, g, state["square_avg"], *extra)
        if views is not None:  # the fused kernel (unused buffers: any array, never touched)
            sq = views[2]
            ga = state["grad_avg"].reshape(-1) if centered else sq
            buf = state["momentum_buffer"].reshape(-1) if mu > 0 else sq
            self._kernels.rmsprop(views[0], views[1], sq, ga, buf,
                                   *scalars(w.dtype, lr, group["weight_decay"], alpha, 1.0 - alpha,
                                            group["eps"], mu), centered)
            return
        g = self._grad_with_decay(g, w, group["weight_decay"])
        sq = state["square_avg"]
        s = self._work.get(w)  # NOTE: every temporary below reuses this one buffer
        sq *= alpha
        xp.multiply(g, g, out=s)
        self._axpy(1.0 - alpha, s, sq)
        if group["centered"]:
            ga = state["grad_avg"]
            ga *= alpha
            self._axpy(1.0 - alpha, g, ga)
            xp.multiply(ga, ga, out=s)
            xp.subtract(sq, s, out=s)
            xp.sqrt(s, out=s)
        else:
            xp.sqrt(sq, out=s)
        s += group["eps"]
        xp.divide(g, s, out=s)
        if mu > 0:
            buf = state["momentum_buffer"]
            buf *= mu
            buf += s
            self._axpy(-lr, buf, w)
        else:
            self._axpy(-lr, s, w)
