"""Training: the loop (``fit``, ``evaluate``, ``predict``) and what makes it fast.

``training.loop`` is the readable training loop; ``training.captured`` replays a plain MLP's
step on fixed buffers (the same numbers); ``training.threads`` chooses BLAS threads per run.

Example:
    >>> hist = nl.training.fit(model, X, y, epochs=10, validation_split=0.1, seed=0)
"""
from .loop import TrainingRun, evaluate, fit, make_optimizer, make_train_step, penalty, predict

__all__ = ["fit", "evaluate", "predict", "make_train_step", "make_optimizer", "penalty", "TrainingRun"]
