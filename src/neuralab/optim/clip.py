"""Gradient clipping: rescale or clamp gradients in place before ``optimizer.step()``."""
from __future__ import annotations

import math
from typing import Any, Iterable

from .. import backend
from ..tensor import Tensor


def _grads(parameters: Tensor | Iterable[Tensor]) -> list[Any]:
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"gradient clipping: item {i} is a {type(p).__name__}, not a Tensor")
    return [p.grad for p in params if p.grad is not None]


def clip_grad_norm(parameters: Tensor | Iterable[Tensor], max_norm: float,
                   norm_type: float = 2.0, error_if_nonfinite: bool = False) -> float:
    """Scale all gradients together so their joint norm is at most ``max_norm``.

    The norm is taken over all gradients as if they were one vector; when it exceeds
    ``max_norm`` every gradient is multiplied (in place) by ``max_norm / (norm + 1e-6)``, as
    ``torch.nn.utils.clip_grad_norm_``. Returns the norm before clipping.

    Args:
        parameters: a Tensor or an iterable of them (those without ``grad`` are skipped).
        max_norm: the largest norm allowed.
        norm_type: p of the p-norm; ``math.inf`` for the largest absolute value.
        error_if_nonfinite: raise if the norm is nan or inf (otherwise the gradients become
            nan, as in PyTorch).

    Example:
        >>> loss.backward()
        >>> norm = optim.clip_grad_norm(model.parameters(), max_norm=1.0)
        >>> opt.step()
    """
    grads = _grads(parameters)
    norm_type = float(norm_type)
    if not norm_type > 0:
        raise ValueError(f"clip_grad_norm: norm_type must be > 0 (or math.inf), got {norm_type}")
    if not grads:
        return 0.0
    if norm_type == math.inf:
        total = max(float(backend.xp_of(g).abs(g).max()) if g.size else 0.0 for g in grads)
    elif norm_type == 2.0:
        # NOTE: a dot product is one BLAS pass with no temporary (g**2 would allocate one).
        total = math.sqrt(sum(float(backend.xp_of(g).vdot(g.reshape(-1), g.reshape(-1)))
                              for g in grads))
    else:
        total = sum(float((backend.xp_of(g).abs(g) ** norm_type).sum()) for g in grads)
        total = total ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"clip_grad_norm: the total gradient norm is {total}; pass "
                           "error_if_nonfinite=False to clip anyway")
    coef = max_norm / (total + 1e-6)
    if coef < 1.0 or not math.isfinite(total):
        for g in grads:
            g *= coef
    return total


def clip_grad_value(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clamp every gradient entry to ``[-clip_value, clip_value]`` in place.

    Example: ``optim.clip_grad_value(model.parameters(), 0.5)``
    """
    if clip_value < 0:
        raise ValueError(f"clip_grad_value: clip_value must be >= 0, got {clip_value}")
    for g in _grads(parameters):
        backend.xp_of(g).clip(g, -clip_value, clip_value, out=g)


# PyTorch's names (trailing underscore: works in place)
clip_grad_norm_ = clip_grad_norm
clip_grad_value_ = clip_grad_value
