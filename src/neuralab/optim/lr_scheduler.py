"""Learning-rate schedules: each ``step()`` sets ``group["lr"]`` for the coming epoch or batch.

They give the same learning rates as PyTorch's schedulers of the same name (``LinearWarmup``
is PyTorch's ``LinearLR`` with ``end_factor=1``). Call ``scheduler.step()`` after
``optimizer.step()``: once per epoch, or once per batch if the schedule counts batches.

Each schedule here computes the rate from its closed form (``base_lr * gamma ** t``, ...), so
it is easy to read; PyTorch's chainable recursive forms give the same numbers when one
schedule drives an optimizer. ``ReduceLROnPlateau`` instead reacts to a metric:
``step(val_loss)``.

Example:
    >>> sched = optim.CosineAnnealingLR(opt, T_max=20)
    >>> for epoch in range(20):
    ...     train_one_epoch(); sched.step()
"""
from __future__ import annotations

import math
from typing import Any, Sequence

from .optimizer import Optimizer


class _ScheduleState:
    """What every schedule shares: the last rates it set and a state dict without the optimizer."""

    optimizer: Optimizer
    _last_lr: list[float]

    def get_last_lr(self) -> list[float]:
        """The learning rate of each parameter group, as set by the last ``step``.

        Example: ``sched.step(); sched.get_last_lr()  # [0.05]``
        """
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """Everything but the optimizer (which has its own state dict).

        Example: ``state = sched.state_dict()``
        """
        return {k: (list(v) if isinstance(v, list) else v)
                for k, v in vars(self).items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state saved by ``state_dict`` (the optimizer's lr is not touched).

        Example: ``sched.load_state_dict(state)``
        """
        self.__dict__.update({k: (list(v) if isinstance(v, list) else v)
                              for k, v in state_dict.items()})


class LRScheduler(_ScheduleState):
    """Base class: ``step()`` advances ``last_epoch`` and sets each group's ``lr``.

    Subclasses write ``_lr(base_lr, t)``: the learning rate after ``t`` steps.

    Example: ``sched.step(); sched.get_last_lr()  # [0.05]``
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__} needs a neuralab optimizer, "
                            f"got {type(optimizer).__name__}")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        elif any("initial_lr" not in g for g in optimizer.param_groups):
            raise KeyError(f"{type(self).__name__}(last_epoch={last_epoch}) resumes a schedule, "
                           "but the optimizer's groups have no 'initial_lr' (load the "
                           "optimizer's state dict first)")
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()  # as PyTorch: the learning rate of step 0 is set on construction

    def _lr(self, base_lr: float, t: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def step(self) -> None:
        """Advance the schedule by one epoch (or batch) and set the new learning rates.

        Example: ``opt.step(); sched.step()``
        """
        self.last_epoch += 1
        self._last_lr = [self._lr(base, self.last_epoch) for base in self.base_lrs]
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr

    def __repr__(self) -> str:
        return f"{type(self).__name__}(last_epoch={self.last_epoch}, lr={self.get_last_lr()})"


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` steps.

    ``lr = base_lr * gamma ** (t // step_size)``

    Example: ``sched = optim.StepLR(opt, step_size=10, gamma=0.1)``
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        if int(step_size) != step_size or step_size < 1:
            raise ValueError(f"StepLR: step_size must be a positive integer, got {step_size}")
        self.step_size, self.gamma = int(step_size), gamma
        super().__init__(optimizer, last_epoch)

    def _lr(self, base_lr: float, t: int) -> float:
        return base_lr * self.gamma ** (t // self.step_size)


class ExponentialLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every step: ``lr = base_lr * gamma ** t``.

    Example: ``sched = optim.ExponentialLR(opt, gamma=0.95)``
    """

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _lr(self, base_lr: float, t: int) -> float:
        return base_lr * self.gamma ** t


class CosineAnnealingLR(LRScheduler):
    """Half a cosine from ``base_lr`` down to ``eta_min`` over ``T_max`` steps (SGDR, no restarts).

    ``lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2``; past ``T_max`` it
    rises again along the same cosine, as PyTorch's does.

    Example: ``sched = optim.CosineAnnealingLR(opt, T_max=50, eta_min=1e-5)``
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0,
                 last_epoch: int = -1) -> None:
        if T_max <= 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be positive, got {T_max}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def _lr(self, base_lr: float, t: int) -> float:
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * t / self.T_max)) / 2


class LinearWarmup(LRScheduler):
    """Grow the learning rate linearly from ``start_factor * base_lr`` to ``base_lr``.

    ``lr = base_lr * (start_factor + (1 - start_factor) * min(t, warmup_steps) / warmup_steps)``
    where ``t`` counts ``step()`` calls (batches or epochs, as you call it). Same values as
    PyTorch's ``LinearLR(start_factor, end_factor=1.0, total_iters=warmup_steps)``.

    Example: ``sched = optim.LinearWarmup(opt, warmup_steps=500, start_factor=0.01)``
    """

    def __init__(self, optimizer: Optimizer, warmup_steps: int = 5, start_factor: float = 1 / 3,
                 last_epoch: int = -1) -> None:
        if not 0 < start_factor <= 1:
            raise ValueError(f"LinearWarmup: start_factor must be in (0, 1], got {start_factor}")
        if warmup_steps < 0:
            raise ValueError(f"LinearWarmup: warmup_steps must be >= 0, got {warmup_steps}")
        self.warmup_steps, self.start_factor = warmup_steps, start_factor
        super().__init__(optimizer, last_epoch)

    def _lr(self, base_lr: float, t: int) -> float:
        if t >= self.warmup_steps:
            return base_lr
        return base_lr * (self.start_factor + (1 - self.start_factor) * t / self.warmup_steps)


class ReduceLROnPlateau(_ScheduleState):
    """Multiply the learning rate by ``factor`` when a metric stops improving.

    After ``patience`` steps without improvement (better than the best by more than
    ``threshold``, relative or absolute) the rate is reduced, then ``cooldown`` steps pass
    before counting again. Same rules and defaults as PyTorch's ``ReduceLROnPlateau``.

    Args:
        optimizer: the optimizer whose ``lr`` to reduce.
        mode: "min" (e.g. a loss) or "max" (e.g. an accuracy).
        factor: multiply the rate by this (< 1) on a plateau.
        patience: steps without improvement tolerated before reducing.
        threshold: how much better counts as better.
        threshold_mode: "rel" (``best * (1 -+ threshold)``) or "abs" (``best -+ threshold``).
        cooldown: steps to wait after a reduction before counting bad steps again.
        min_lr: lower bound on the rate (one number, or one per parameter group).
        eps: a reduction smaller than this is skipped.

    Example:
        >>> sched = optim.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=3)
        >>> sched.step(val_loss)     # once per epoch
    """

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1,
                 patience: int = 10, threshold: float = 1e-4, threshold_mode: str = "rel",
                 cooldown: int = 0, min_lr: float | Sequence[float] = 0.0,
                 eps: float = 1e-8) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"ReduceLROnPlateau needs a neuralab optimizer, "
                            f"got {type(optimizer).__name__}")
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be < 1, got {factor}")
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', "
                             f"got {threshold_mode!r}")
        n = len(optimizer.param_groups)
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != n:
                raise ValueError(f"ReduceLROnPlateau: {len(min_lr)} min_lr values for {n} groups")
            min_lrs = list(min_lr)
        else:
            min_lrs = [min_lr] * n
        self.optimizer = optimizer
        self.mode, self.factor, self.patience = mode, factor, patience
        self.threshold, self.threshold_mode = threshold, threshold_mode
        self.cooldown, self.min_lrs, self.eps = cooldown, min_lrs, eps
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.last_epoch = 0
        self._last_lr = [g["lr"] for g in optimizer.param_groups]

    def _is_better(self, current: float) -> bool:
        if self.mode == "min":
            bar = self.best * (1 - self.threshold) if self.threshold_mode == "rel" \
                else self.best - self.threshold
            return current < bar
        bar = self.best * (1 + self.threshold) if self.threshold_mode == "rel" \
            else self.best + self.threshold
        return current > bar

    def step(self, metric: float) -> None:
        """Record this epoch's metric and reduce the learning rate if it has plateaued.

        Example: ``sched.step(val_loss)``
        """
        current = float(metric)
        self.last_epoch += 1
        if self._is_better(current):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs during cooldown do not count
        if self.num_bad_epochs > self.patience:
            for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs):
                new_lr = max(group["lr"] * self.factor, min_lr)
                if group["lr"] - new_lr > self.eps:
                    group["lr"] = new_lr
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]


class InverseScalingLR(LRScheduler):
    """scikit-learn's ``learning_rate="invscaling"``: ``lr = base_lr / (t + 1) ** power_t``.

    ``t`` counts what you step by: ``step()`` adds one, ``step(t)`` moves to count ``t``
    (PyTorch's old ``step(epoch)`` form). scikit-learn's MLP steps it after every epoch with
    the number of samples seen so far (its ``t_``), so that ``lr = lr_init / (t_ + 1) ** power_t``
    (its docs write ``t ** power_t``; its code adds the 1, and so does this).

    Example:
        >>> sched = optim.InverseScalingLR(opt, power_t=0.5)   # opt's lr is 0.1
        >>> train_one_epoch(); sched.step(99)                  # 99 samples seen so far
        >>> sched.get_last_lr()
        [0.01]
    """

    def __init__(self, optimizer: Optimizer, power_t: float = 0.5, last_epoch: int = -1) -> None:
        if power_t < 0:
            raise ValueError(f"InverseScalingLR: power_t must be >= 0, got {power_t}")
        self.power_t = float(power_t)
        super().__init__(optimizer, last_epoch)

    def _lr(self, base_lr: float, t: int) -> float:
        return float(base_lr) / (t + 1) ** self.power_t

    def step(self, t: int | None = None) -> None:
        """Advance the count by one, or move it to ``t``, and set the new learning rates.

        Example: ``sched.step(); sched.step(1000)``
        """
        if t is not None:
            self.last_epoch = int(t) - 1
        super().step()


class AdaptiveLR(_ScheduleState):
    """scikit-learn's ``learning_rate="adaptive"``: divide the learning rate by ``divisor``
    each time training has stalled, until it is at most ``min_lr``.

    The caller decides what "stalled" means and calls ``step()`` then (scikit-learn's MLP:
    ``n_iter_no_change`` epochs in a row without the training loss falling, or the
    validation score rising, by ``tol``). ``step()`` returns False, changing nothing, when
    the rate is already at most ``min_lr``: scikit-learn stops training then.

    Example:
        >>> sched = optim.AdaptiveLR(opt)            # opt's lr is 0.1; / 5 per stall, down to 1e-6
        >>> sched.step(), sched.get_last_lr()        # training has stalled
        (True, [0.02])
    """

    def __init__(self, optimizer: Optimizer, divisor: float = 5.0, min_lr: float = 1e-6) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"AdaptiveLR needs a neuralab optimizer, got {type(optimizer).__name__}")
        if divisor <= 1:
            raise ValueError(f"AdaptiveLR: divisor must be > 1, got {divisor}")
        self.optimizer, self.divisor, self.min_lr = optimizer, float(divisor), float(min_lr)
        self._last_lr = [g["lr"] for g in optimizer.param_groups]

    def step(self) -> bool:
        """Divide every group's rate by ``divisor``; False (and no change) once it is <= ``min_lr``.

        Example: ``if not sched.step(): print("learning rate too small")``
        """
        groups = self.optimizer.param_groups
        if groups[0]["lr"] <= self.min_lr:
            return False
        for group in groups:
            group["lr"] = group["lr"] / self.divisor
        self._last_lr = [g["lr"] for g in groups]
        return True


class CosLogLR(LRScheduler):
    """RealMLP's "coslog" schedule: ``cycles`` cosine cycles evenly spaced on a log-time axis.

    ``lr = base_lr * (1 - cos(2 pi log2(1 + (2**cycles - 1) t / total))) / 2`` (Holzmüller et
    al., 2024): each cycle is half as long as the one before, so the rate rises and falls
    faster towards the end of training and is 0 at the first and the last step.

    Args:
        optimizer: a neuralab optimizer (each group keeps its own base rate).
        total_steps: the number of steps that make up the whole schedule.
        cycles: number of cosine cycles (4 in RealMLP-TD).

    Example: ``sched = optim.CosLogLR(opt, total_steps=epochs * steps_per_epoch)``
    """

    def __init__(self, optimizer: Optimizer, total_steps: int, cycles: int = 4,
                 last_epoch: int = -1) -> None:
        if total_steps <= 0:
            raise ValueError(f"CosLogLR: total_steps must be positive, got {total_steps}")
        self.total_steps, self.cycles = int(total_steps), int(cycles)
        super().__init__(optimizer, last_epoch)

    def _lr(self, base_lr: float, t: int) -> float:
        frac = min(t / self.total_steps, 1.0)
        return base_lr * 0.5 * (1.0 - math.cos(2 * math.pi * math.log2(1.0 + (2 ** self.cycles - 1) * frac)))
