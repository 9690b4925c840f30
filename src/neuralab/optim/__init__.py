"""Optimizers, learning-rate schedules and gradient clipping, with PyTorch's API and maths.

Example:
    >>> from neuralab import optim
    >>> opt = optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    >>> sched = optim.CosineAnnealingLR(opt, T_max=20)
    >>> opt.zero_grad(); loss.backward(); norm = optim.clip_grad_norm(model.parameters(), 1.0)
    >>> opt.step(); sched.step()
"""
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .clip import clip_grad_norm, clip_grad_norm_, clip_grad_value, clip_grad_value_
from .lr_scheduler import (AdaptiveLR, CosineAnnealingLR, CosLogLR, ExponentialLR,
                           InverseScalingLR, LinearWarmup, LRScheduler, ReduceLROnPlateau, StepLR)
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

# The one table of optimizers by name: fit, the estimators, the CLI, the labs and the
# playground all read it (through ``get``).
OPTIMIZERS: dict[str, type] = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop,
                               "adagrad": Adagrad}


def get(name: str, params, **kwargs) -> Optimizer:  # noqa: ANN001 - params: list of Tensors
    """An optimizer by name ("sgd", "adam", "adamw", "rmsprop", "adagrad") over ``params``.

    ``kwargs`` go to its constructor (``lr``, ``momentum``, ``weight_decay``, ...); unknown
    names raise ValueError listing the known ones.

    Example:
        >>> opt = optim.get("adam", model.parameters(), lr=1e-3)
    """
    cls = OPTIMIZERS.get(str(name).lower())
    if cls is None:
        raise ValueError(f"unknown optimizer {name!r}; expected one of {sorted(OPTIMIZERS)}")
    params = list(params)
    if not params:
        raise ValueError("the model has no parameters to train")
    return cls(params, **kwargs)


__all__ = ["OPTIMIZERS", "get", "Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad",
           "LRScheduler", "StepLR", "ExponentialLR", "CosineAnnealingLR", "LinearWarmup",
           "ReduceLROnPlateau", "InverseScalingLR", "AdaptiveLR", "CosLogLR", "clip_grad_norm",
           "clip_grad_norm_", "clip_grad_value",
           "clip_grad_value_"]
