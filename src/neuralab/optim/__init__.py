"""Optimizers, learning-rate schedules and gradient clipping, with PyTorch's API and maths.

Example:
    >>> from neuralab import optim
    >>> opt = optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    >>> sched = optim.CosineAnnealingLR(opt, T_max=20)
    >>> opt.zero_grad(); loss.backward(); optim.clip_grad_norm(model.parameters(), 1.0)
    >>> opt.step(); sched.step()
"""
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .clip import clip_grad_norm, clip_grad_norm_, clip_grad_value, clip_grad_value_
from .lr_scheduler import (CosineAnnealingLR, CosLogLR, ExponentialLR, LinearWarmup, LRScheduler,
                           ReduceLROnPlateau, StepLR)
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad",
           "LRScheduler", "StepLR", "ExponentialLR", "CosineAnnealingLR", "LinearWarmup",
           "ReduceLROnPlateau", "CosLogLR", "clip_grad_norm", "clip_grad_norm_", "clip_grad_value",
           "clip_grad_value_"]
