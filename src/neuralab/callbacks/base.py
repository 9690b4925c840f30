"""The callback protocol: ``Callback`` (the hooks), ``CallbackList`` (calls them), ``History``.

``fit`` gives every callback its ``run`` (the model, the optimizer, the run's settings and
a ``stop_training`` flag) and a ``logs`` dict of the numbers so far (``loss``,
``val_loss``, metrics, ``lr``). A callback reads them, and may stop training or change the
learning rate; it never has to know how the loop is written. The stock callbacks are in
``callbacks.stock``.

Example:
    >>> class PrintLoss(Callback):
    ...     def on_epoch_end(self, epoch, logs):
    ...         print(epoch, logs["loss"])
"""
from __future__ import annotations

from typing import Any, Callable

__all__ = ["Callback", "CallbackList", "History", "get_lr", "set_lr"]


# ============================================================================ learning-rate access
def get_lr(optimizer: Any) -> float:
    """The optimizer's current learning rate (its first parameter group's).

    Example: ``get_lr(optim.Adam(model.parameters(), lr=1e-3))  # 0.001``
    """
    groups = getattr(optimizer, "param_groups", None)
    if groups:
        return float(groups[0]["lr"])
    return float(getattr(optimizer, "lr"))


def set_lr(optimizer: Any, lr: float) -> None:
    """Set the learning rate of every parameter group. Example: ``set_lr(opt, 1e-4)``"""
    groups = getattr(optimizer, "param_groups", None)
    if groups:
        for g in groups:
            g["lr"] = float(lr)
    if hasattr(optimizer, "lr") or not groups:
        optimizer.lr = float(lr)


# ============================================================================ base class
class Callback:
    """Base class: override any of the hooks; ``self.run`` (the running fit) is set by ``fit``.

    ``self.model``, ``self.optimizer`` and ``self.params`` (epochs, steps per epoch, batch
    size, whether there is validation data) are shortcuts into the run; set
    ``self.run.stop_training = True`` to stop after the current batch.

    Example:
        >>> class PrintLoss(Callback):
        ...     def on_epoch_end(self, epoch, logs):
        ...         print(epoch, logs["loss"])
    """

    run: Any = None

    def set_run(self, run: Any) -> None:
        """Attach the running fit, a ``training.TrainingRun`` (``fit`` calls this first).

        Example: ``cb.set_run(run)``
        """
        self.run = run

    @property
    def trainer(self) -> Any:
        """The running fit under its 0.1 name (``self.run``). Example: ``self.trainer.epoch``"""
        return self.run

    @property
    def model(self) -> Any:
        """The model being trained (set by ``fit``).

        Example: ``self.model.state_dict()``
        """
        return self.run.model

    @property
    def optimizer(self) -> Any:
        """The optimizer of the running fit.

        Example: ``self.optimizer.param_groups[0]["lr"]``
        """
        return self.run.optimizer

    @property
    def params(self) -> dict:
        """The fit's settings (epochs, batch size, ...).

        Example: ``self.params["epochs"]``
        """
        return self.run.params

    def on_train_begin(self, logs: dict | None = None) -> None:
        """Called once before the first epoch.

        Example: ``def on_train_begin(self, logs=None): self.t0 = time.time()``
        """

    def on_train_end(self, logs: dict | None = None) -> None:
        """Called once after the last epoch (also when stopped early).

        Example: ``def on_train_end(self, logs=None): print("done")``
        """

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        """Called before each epoch (epochs count from 0).

        Example: ``def on_epoch_begin(self, epoch, logs=None): print(epoch)``
        """

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Called after each epoch with its training and validation numbers.

        Example: ``def on_epoch_end(self, epoch, logs=None): print(logs["loss"])``
        """

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Called after each optimizer step; ``logs`` has the batch's ``loss`` and ``size``.

        Example: ``def on_batch_end(self, batch, logs=None): self.losses.append(logs["loss"])``
        """


class CallbackList:
    """Calls each hook on every callback in order (used by ``fit``).

    Example: ``CallbackList([History()], run).on_train_begin()``
    """

    def __init__(self, callbacks: list[Callback], run: Any) -> None:
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be Callback instances, got {type(cb).__name__}")
            cb.set_run(run)
        self.callbacks = callbacks

    def __getattr__(self, hook: str) -> Callable[..., None]:
        if not hook.startswith("on_"):
            raise AttributeError(hook)

        def call(*args: Any) -> None:
            for cb in self.callbacks:
                getattr(cb, hook)(*args)
        return call


# ============================================================================ history
class History(Callback):
    """Records every epoch's logs: ``history["loss"]``, ``history["val_accuracy"]``, ``["lr"]``...

    ``fit`` always adds one and returns it.
    Example: ``hist = nl.fit(...); hist.history["loss"][-1]; hist.epoch  # [0, 1, ...]``
    """

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs: dict | None = None) -> None:
        # A second fit continues the same record (as Keras), so nothing is reset here.
        pass

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)

    def __getitem__(self, key: str) -> list[float]:
        """``hist["loss"]`` is ``hist.history["loss"]`` (an estimator's ``history_`` too)."""
        return self.history[key]

    def __contains__(self, key: str) -> bool:
        return key in self.history

    def __repr__(self) -> str:
        last = {k: round(v[-1], 4) for k, v in self.history.items() if v}
        return f"History(epochs={len(self.epoch)}, last={last})"
