"""Callbacks: code that ``fit`` calls at the start and end of training, epochs and batches.

``callbacks.base`` holds the protocol (``Callback``, ``CallbackList``, ``History``) that the
training loop and the model files use; ``callbacks.stock`` the ready-made callbacks.

Example:
    >>> hist = nl.fit(model, X, y, validation_split=0.2, epochs=100,
    ...               callbacks=[nl.callbacks.EarlyStopping(patience=5)])
    >>> hist.history["val_loss"][-1] < 0.5
    True
"""
from .base import Callback, CallbackList, History, get_lr, set_lr
from .stock import (CSVLogger, EarlyStopping, GradientMonitor, LearningRateScheduler,
                    ModelCheckpoint, ProgressBar, TerminateOnNaN, save_state_dict)

__all__ = ["Callback", "CallbackList", "History", "EarlyStopping", "ModelCheckpoint", "ProgressBar",
           "GradientMonitor", "TerminateOnNaN", "LearningRateScheduler", "CSVLogger", "get_lr",
           "set_lr", "save_state_dict"]
