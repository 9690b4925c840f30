"""The stock callbacks: early stopping, checkpoints, progress, gradient monitoring, schedules, logs.

Example:
    >>> hist = nl.fit(model, X, y, validation_split=0.2, epochs=100,
    ...               callbacks=[EarlyStopping(patience=5), CSVLogger("log.csv")])
    >>> hist.history["val_loss"][-1] < 0.5
    True
"""
from __future__ import annotations

import csv
import math
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .. import backend
from ..io.files import atomic_write
from ..io.model_file import save
from .base import Callback, get_lr, set_lr

__all__ = ["EarlyStopping", "ModelCheckpoint", "ProgressBar", "GradientMonitor", "TerminateOnNaN",
           "LearningRateScheduler", "CSVLogger", "save_state_dict"]


def _mode_for(monitor: str, mode: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode != "auto":
        return mode
    return "max" if any(k in monitor for k in ("acc", "r2", "auc", "f1")) else "min"


def _check_monitor(callback: Callback, monitor: str) -> None:
    if monitor.startswith("val_") and not callback.params.get("has_validation", True):
        raise ValueError(f"{type(callback).__name__} monitors {monitor!r} but fit got no "
                         "validation data: pass validation_split= or validation_data=, "
                         f"or monitor={monitor[4:]!r}")


def _monitored(logs: dict | None, monitor: str, who: str) -> float:
    logs = logs or {}
    if monitor not in logs:
        raise ValueError(f"{who} monitors {monitor!r}, which is not among this run's logs "
                         f"{sorted(logs)}")
    return float(logs[monitor])


class _Improvement:
    """Tracks the best value of a monitored number (shared by EarlyStopping and ModelCheckpoint)."""

    def __init__(self, mode: str, min_delta: float = 0.0) -> None:
        self.mode, self.min_delta = mode, abs(min_delta)
        self.best = math.inf if mode == "min" else -math.inf

    def improved(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.mode == "min":
            better = value < self.best - self.min_delta
        else:
            better = value > self.best + self.min_delta
        if better:
            self.best = value
        return better


# ============================================================================ early stopping
class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs.

    Args:
        monitor: a log key, "val_loss" by default ("loss" when there is no validation data).
        patience: stop after this many epochs in a row without improvement.
        min_delta: smallest change that counts as an improvement.
        mode: "min", "max" or "auto" (max for accuracy-like names).
        restore_best: put the weights of the best epoch back at the end of training.
        start_from_epoch: never stop before this many epochs have run (the best epoch is
            still tracked from the first): early epochs on a small validation part are noisy.

    After training: ``best`` (value), ``best_epoch``, ``stopped_epoch`` (None if it ran out).
    Example: ``nl.fit(..., validation_split=0.1, callbacks=[EarlyStopping(patience=5)])``
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0,
                 mode: str = "auto", restore_best: bool = True, start_from_epoch: int = 0) -> None:
        if patience < 0:
            raise ValueError(f"patience must be >= 0, got {patience}")
        if start_from_epoch < 0:
            raise ValueError(f"start_from_epoch must be >= 0, got {start_from_epoch}")
        self.monitor, self.patience, self.min_delta = monitor, int(patience), min_delta
        self.mode = _mode_for(monitor, mode)
        self.restore_best = restore_best
        self.start_from_epoch = int(start_from_epoch)

    def on_train_begin(self, logs: dict | None = None) -> None:
        _check_monitor(self, self.monitor)
        self._tracker = _Improvement(self.mode, self.min_delta)
        self.wait = 0
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None
        self._best_state: dict | None = None

    @property
    def best(self) -> float:
        """The best monitored value seen so far.

        Example: ``stopper.best``
        """
        return self._tracker.best

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        value = _monitored(logs, self.monitor, "EarlyStopping")
        if self._tracker.improved(value):
            self.wait, self.best_epoch = 0, epoch
            if self.restore_best:  # a copy: the live arrays keep changing in place
                self._best_state = {k: v.copy() for k, v in self.model.state_dict().items()}
            return
        self.wait += 1
        if self.wait >= self.patience and epoch + 1 >= self.start_from_epoch:
            self.stopped_epoch = epoch
            self.run.stop_training = True

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.restore_best and self._best_state is not None:
            self.model.load_state_dict(self._best_state)

    def state_dict(self) -> dict:
        """The record a resumed run needs: best value, wait, best epoch and best weights.

        Example: ``saved = stopper.state_dict(); later.load_state_dict(saved)``
        """
        best = float(self._tracker.best)
        return {"best": best if np.isfinite(best) else None, "wait": int(self.wait),
                "best_epoch": self.best_epoch,
                "best_weights": None if self._best_state is None else
                {k: np.array(v, copy=True) for k, v in self._best_state.items()}}

    def load_state_dict(self, state: dict) -> None:
        """Put back a ``state_dict()`` (call after ``on_train_begin``, which resets the record).

        Example: ``stopper.load_state_dict(saved)``
        """
        if state.get("best") is not None:
            self._tracker.best = state["best"]
        self.wait, self.best_epoch = int(state["wait"]), state["best_epoch"]
        weights = state.get("best_weights")
        self._best_state = None if weights is None else {k: np.array(v, copy=True)
                                                         for k, v in weights.items()}


# ============================================================================ checkpoints
def save_state_dict(model: Any, path: str | os.PathLike, metadata: dict[str, str] | None = None) -> None:
    """Write ``model.state_dict()`` as safetensors, atomically (``io.atomic_write``).

    A reader never sees a half-written file, even if training is killed mid-save.
    Example: ``save_state_dict(model, "best.safetensors")``
    """
    from safetensors.numpy import save as to_bytes  # noqa: PLC0415

    tensors = {k: np.ascontiguousarray(backend.to_numpy(v)) for k, v in model.state_dict().items()}
    atomic_write(path, to_bytes(tensors, metadata={"format": "neuralab-state-dict", **(metadata or {})}))


class ModelCheckpoint(Callback):
    """Save the model after each epoch, or only when ``monitor`` improves.

    The file is ``nl.save``'s format (safetensors + JSON: ``nl.load`` reads it back);
    ``path`` may use log keys and ``epoch``, e.g. ``"ckpt-{epoch:03d}-{val_loss:.3f}.safetensors"``.
    Each save goes to a temporary file first and is renamed into place.
    Example: ``ModelCheckpoint("best.safetensors", save_best_only=True)``
    """

    def __init__(self, path: str | os.PathLike, monitor: str = "val_loss",
                 save_best_only: bool = False, mode: str = "auto") -> None:
        self.path, self.monitor, self.save_best_only = str(path), monitor, save_best_only
        self.mode = _mode_for(monitor, mode)
        self.saved: list[str] = []

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.save_best_only:
            _check_monitor(self, self.monitor)
        self._tracker = _Improvement(self.mode)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        if self.save_best_only and not self._tracker.improved(
                _monitored(logs, self.monitor, "ModelCheckpoint")):
            return
        try:
            path = Path(self.path.format(epoch=epoch, **logs))
        except KeyError as exc:
            raise ValueError(f"ModelCheckpoint path {self.path!r} uses {exc}, which is not a log "
                             f"key; available: epoch, {', '.join(sorted(logs))}") from None
        save(self.model, path)
        self.saved.append(str(path))


# ============================================================================ progress
class ProgressBar(Callback):
    """A tqdm bar over all training steps: epoch, loss, validation numbers and ETA.

    Quiet when stderr is not a terminal (logs, CI) unless ``force=True``; ``fit(verbose=0)``
    adds none. Example: ``nl.fit(..., verbose=0, callbacks=[ProgressBar(force=True)])``
    """

    def __init__(self, force: bool = False, file: Any = None) -> None:
        self.force, self.file = force, file
        self.bar = None

    def _enabled(self) -> bool:
        stream = self.file if self.file is not None else sys.stderr
        return self.force or bool(getattr(stream, "isatty", lambda: False)())

    def on_train_begin(self, logs: dict | None = None) -> None:
        if not self._enabled():
            self.bar = None
            return
        from tqdm import tqdm  # noqa: PLC0415

        steps, epochs = self.params.get("steps"), self.params.get("epochs")
        total = steps * epochs if steps else None
        self.bar = tqdm(total=total, file=self.file or sys.stderr, unit="step", leave=True,
                        dynamic_ncols=True, mininterval=0.2)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self.bar is not None:
            self.bar.set_description(f"epoch {epoch + 1}/{self.params.get('epochs')}"
                                     + _global_batch(self.params), refresh=False)

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.bar is not None:
            self.bar.update(1)
            if batch % 10 == 0:
                self.bar.set_postfix(loss=f"{logs['loss']:.4f}", refresh=False)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.bar is not None:
            shown = {k: f"{v:.4g}" for k, v in (logs or {}).items() if k != "lr"}
            self.bar.set_postfix(shown, refresh=True)

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _global_batch(params: dict) -> str:
    """", global batch 4x64=256" in data-parallel training (nothing for one process)."""
    ranks, size = params.get("ranks", 1) or 1, params.get("batch_size")
    return f", global batch {ranks}x{size}={ranks * size}" if ranks > 1 and size else ""


class _EpochPrinter(Callback):
    """One line per epoch (``fit(verbose=2)``)."""

    def __init__(self, file: Any = None) -> None:
        self.file = file

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        numbers = "  ".join(f"{k}={v:.4g}" for k, v in (logs or {}).items())
        print(f"epoch {epoch + 1}/{self.params.get('epochs')}{_global_batch(self.params)}  {numbers}",
              file=self.file or sys.stderr)


# ============================================================================ diagnostics
class GradientMonitor(Callback):
    """Per-layer gradient norms, averaged over each epoch's batches.

    ``history[name]`` is a list (one value per epoch) of the L2 norm of that parameter's
    gradient, for weights only (``weights_only=True``, parameters with 2+ axes) in layer
    order: the raw material of the vanishing-gradient lab, where the first layers of a
    deep sigmoid network get gradients orders of magnitude smaller than the last.
    Example:
        >>> gm = GradientMonitor(); nl.fit(model, X, y, callbacks=[gm])
        History(epochs=10, ...)
        >>> {k: v[0] for k, v in gm.history.items()}   # gradient norm per weight, first epoch
        {'0.0.weight': ..., '1.weight': ...}
    """

    def __init__(self, weights_only: bool = True) -> None:
        self.weights_only = weights_only
        self.history: dict[str, list[float]] = {}

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._params = [(name, p) for name, p in self.model.named_parameters()
                        if p.requires_grad and (p.ndim >= 2 or not self.weights_only)]
        for name, _ in self._params:
            self.history.setdefault(name, [])

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._sums = dict.fromkeys(self.history, 0.0)
        self._batches = 0

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        for name, p in self._params:
            if p.grad is not None:
                g = p.grad.reshape(-1)
                self._sums[name] += math.sqrt(float(g @ g))
        self._batches += 1

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        for name in self._sums:
            self.history[name].append(self._sums[name] / max(self._batches, 1))

    @property
    def layers(self) -> list[str]:
        """The monitored parameter names, input side first.

        Example: ``monitor.layers  # ['0.weight', '2.weight']``
        """
        return list(self.history)


class TerminateOnNaN(Callback):
    """Stop as soon as the loss becomes NaN or infinite, and say what to try.

    Example: ``nl.fit(..., callbacks=[TerminateOnNaN()])``
    """

    def __init__(self) -> None:
        self.message: str | None = None

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            try:
                lr = f" (now {get_lr(self.optimizer):g})"
            except (AttributeError, KeyError, TypeError):
                lr = ""
            self.message = (f"loss became {loss} at epoch {self.run.epoch + 1}, batch {batch}: "
                            f"training stopped; try a smaller learning rate{lr}, standardised "
                            "inputs or gradient clipping")
            warnings.warn(self.message, RuntimeWarning, stacklevel=2)
            self.run.stop_training = True


class LearningRateScheduler(Callback):
    """Change the learning rate each epoch, from an optim scheduler or a function.

    Args:
        schedule: an ``optim`` scheduler (stepped after each epoch; ``ReduceLROnPlateau``
            gets ``logs[monitor]``), or a function ``epoch -> lr`` (or ``(epoch, lr) -> lr``)
            applied before each epoch.
        monitor: the log key ``ReduceLROnPlateau`` watches.

    Example:
        >>> decay = LearningRateScheduler(lambda epoch: 1e-3 * 0.9 ** epoch)
        >>> halve = LearningRateScheduler(optim.StepLR(opt, step_size=10, gamma=0.5))
    """

    def __init__(self, schedule: Any, monitor: str = "val_loss") -> None:
        self.schedule, self.monitor = schedule, monitor
        self._is_scheduler = hasattr(schedule, "step") and not isinstance(schedule, type)
        if not self._is_scheduler and not callable(schedule):
            raise TypeError("schedule must be an optim scheduler or a function epoch -> lr, "
                            f"got {type(schedule).__name__}")

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self._is_scheduler:
            return
        try:
            lr = self.schedule(epoch, get_lr(self.optimizer))
        except TypeError:
            lr = self.schedule(epoch)
        set_lr(self.optimizer, float(lr))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if not self._is_scheduler:
            return
        if type(self.schedule).__name__ == "ReduceLROnPlateau":
            monitor = self.monitor if self.monitor in (logs or {}) else "loss"
            self.schedule.step(_monitored(logs, monitor, "LearningRateScheduler"))
        else:
            self.schedule.step()


class CSVLogger(Callback):
    """Write one CSV row per epoch (epoch, loss, metrics, lr), flushed as it goes.

    Example: ``nl.fit(..., callbacks=[CSVLogger("training.csv")])``
    """

    def __init__(self, path: str | os.PathLike, separator: str = ",", append: bool = False) -> None:
        self.path, self.separator, self.append = Path(path), separator, append
        self._file = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        has_header = self.append and self.path.exists() and self.path.stat().st_size > 0
        self._file = open(self.path, "a" if self.append else "w", newline="")  # noqa: SIM115
        self._writer = None
        self._has_header = has_header

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        row = {"epoch": epoch, **(logs or {})}
        if self._writer is None:
            self._writer = csv.DictWriter(self._file, fieldnames=list(row), delimiter=self.separator,
                                          extrasaction="ignore", restval="")
            if not self._has_header:
                self._writer.writeheader()
        self._writer.writerow(row)
        self._file.flush()

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
