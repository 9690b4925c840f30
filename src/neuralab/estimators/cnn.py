"""CNNClassifier: a small convolutional network for image arrays, with scikit-learn's API.

Where its parameters overlap scikit-learn's ``MLPClassifier`` they have the same names and
meanings (``hidden_layer_sizes``, ``alpha``, ``batch_size``, ``learning_rate_init``,
``max_iter``, ``tol``, ``n_iter_no_change``, ``early_stopping``, ``validation_fraction``,
``random_state``...); the convolutional part is ``conv_channels`` and ``kernel_size``.
The default network is LeNet-style: per entry of ``conv_channels`` a "same" convolution,
ReLU and 2x2 max pooling (while the image is at least 2 pixels wide), then the hidden
linear layers and the output layer. Training runs through ``nl.fit``; the network is an
``nn.Sequential`` in ``model_``, so ``nl.save``/``nl.load`` and ``nl.export_onnx`` take it.

Example:
    >>> from sklearn.datasets import load_digits
    >>> X, y = load_digits(return_X_y=True)                 # flat rows of 8x8 images
    >>> clf = nl.CNNClassifier(max_iter=2, random_state=0).fit(X / 16, y)
    >>> clf.image_shape_
    (1, 8, 8)
"""
from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from ._checks import check_finite, check_trainable

__all__ = ["CNNClassifier"]


class CNNClassifier(ClassifierMixin, BaseEstimator):
    """Convolutional-network classifier for images: (n, C, H, W), (n, H, W) or flat rows.

    Args:
        conv_channels: output channels of each convolution block (conv, ReLU, 2x2 max pool).
        kernel_size: side of the square convolution kernels (odd; "same" padding).
        hidden_layer_sizes: widths of the linear layers after the convolutions.
        image_shape: (C, H, W) or (H, W) of flat input rows; None: taken from 3-D/4-D input,
            or a square one-channel image when the row length is a perfect square (else a
            strip one pixel high).
        dropout: dropout rate before each linear layer after the convolutions.
        batch_norm: BatchNorm2d after each convolution.
        solver: "adam", "adamw" or "sgd" (with momentum 0.9).
        alpha: L2 penalty, as scikit-learn's MLP (``0.5 * alpha * ||W||**2 / n_samples``).
        batch_size: samples per step (default 32: small images learn faster with more steps;
            "auto" is min(200, n_samples), as scikit-learn).
        learning_rate_init: the optimizer's learning rate.
        max_iter: epochs at most (default 20: a CNN needs far fewer epochs than sklearn's 200).
        tol, n_iter_no_change: stop when the training loss (or, with ``early_stopping``, the
            validation accuracy) has not improved by ``tol`` for ``n_iter_no_change`` epochs.
        early_stopping: hold out ``validation_fraction`` of the data; keep the best epoch.
        random_state: seed for the weights, shuffling and the validation split.
        verbose: print one line per epoch.

    Fitted: ``classes_``, ``n_features_in_``, ``image_shape_`` (C, H, W), ``model_``,
    ``n_iter_``, ``loss_curve_``, ``validation_scores_`` and ``best_validation_score_``
    (with early stopping, else None).

    Example:
        >>> clf = nl.CNNClassifier(conv_channels=(8, 16), max_iter=5).fit(X_images, y)
        >>> clf.predict_proba(X_images[:3]).shape   # (3, n_classes)
        (3, 10)
    """

    _parameter_constraints: dict = {
        "conv_channels": ["array-like"],
        "kernel_size": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": ["array-like"],
        "image_shape": ["array-like", None],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "batch_norm": ["boolean"],
        "solver": [StrOptions({"adam", "adamw", "sgd"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(self, conv_channels: Any = (16, 32), kernel_size: int = 3,
                 hidden_layer_sizes: Any = (64,), image_shape: Any = None, dropout: float = 0.0,
                 batch_norm: bool = False, solver: str = "adam", alpha: float = 0.0001,
                 batch_size: Any = 32, learning_rate_init: float = 0.001, max_iter: int = 20,
                 tol: float = 1e-4, n_iter_no_change: int = 10, early_stopping: bool = False,
                 validation_fraction: float = 0.1, random_state: Any = None,
                 verbose: bool = False) -> None:
        self.conv_channels = conv_channels
        self.kernel_size = kernel_size
        self.hidden_layer_sizes = hidden_layer_sizes
        self.image_shape = image_shape
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ input
    def _image_shape(self, X: np.ndarray) -> tuple[int, int, int]:
        """(C, H, W) of the images in X, from X itself or the ``image_shape`` parameter."""
        if X.ndim == 4:
            return tuple(int(s) for s in X.shape[1:])
        if X.ndim == 3:
            return (1, int(X.shape[1]), int(X.shape[2]))
        if X.ndim != 2:
            raise ValueError(f"X must be images (n, C, H, W) or (n, H, W), or flat rows (n, "
                             f"features); got an array of shape {X.shape}")
        n_features = X.shape[1]
        if self.image_shape is not None:
            shape = tuple(int(s) for s in self.image_shape)
            if len(shape) == 2:
                shape = (1,) + shape
            if len(shape) != 3 or math.prod(shape) != n_features or min(shape) < 1:
                raise ValueError(f"image_shape={self.image_shape!r} does not fit rows of "
                                 f"{n_features} features (it must be (C, H, W) or (H, W) with "
                                 f"C * H * W = {n_features})")
            return shape
        side = math.isqrt(n_features)
        if side * side == n_features:
            return (1, side, side)
        # Not a square: a strip one pixel high, so that any table still fits (scikit-learn's
        # pipelines and searches pass arbitrary widths); pass image_shape for real images.
        return (1, 1, n_features)

    def _images(self, X: Any, reset: bool, y: Any = None) -> Any:
        """X as a float32 (n, C, H, W) array, checked (numbers, finite, the fitted shape);
        with ``reset`` also y, checked as scikit-learn does."""
        from sklearn.utils.validation import check_array, check_X_y
        from ._checks import check_magnitude, check_numeric_columns
        check_numeric_columns(X)
        if isinstance(X, np.ndarray) and X.ndim >= 2:
            check_magnitude(X.reshape(len(X), -1))
        common = dict(dtype=np.float32, allow_nd=True, ensure_all_finite=False)
        if reset:
            X, y = check_X_y(X, y, **common)
        else:
            X = check_array(X, **common)
        shape = self._image_shape(X)
        check_finite(X.reshape(len(X), -1))
        if reset:
            self.image_shape_ = shape
            self.n_features_in_ = math.prod(shape)
        elif X.ndim == 2 and X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                             f"{self.n_features_in_} features as input (images of shape "
                             f"{self.image_shape_})")
        elif X.ndim > 2 and shape != self.image_shape_:
            raise ValueError(f"X has images of shape {shape}, but {type(self).__name__} was "
                             f"fitted on images of shape {self.image_shape_}")
        X = X.reshape((len(X),) + self.image_shape_)
        return (X, y) if reset else X

    # ------------------------------------------------------------------ network
    def _build(self, n_classes: int, rng: np.random.Generator) -> Any:
        """conv blocks -> flatten -> hidden linear layers -> output layer."""
        from .. import nn
        channels, height, width = self.image_shape_
        k = int(self.kernel_size)
        if k % 2 == 0:
            raise ValueError(f"kernel_size must be odd (for 'same' padding), got {k}")
        layers: list = []
        for out in (int(c) for c in self.conv_channels):
            layers.append(nn.Conv2d(channels, out, k, padding=k // 2, rng=rng))
            if self.batch_norm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.ReLU())
            if min(height, width) >= 2:  # pool while there is something to pool
                layers.append(nn.MaxPool2d(2))
                height, width = height // 2, width // 2
            channels = out
        layers.append(nn.Flatten())
        fan_in = channels * height * width
        for hidden in (int(h) for h in self.hidden_layer_sizes):
            if self.dropout:
                layers.append(nn.Dropout(self.dropout, rng=rng))
            layers += [nn.Linear(fan_in, hidden, rng=rng), nn.ReLU()]
            fan_in = hidden
        if self.dropout:
            layers.append(nn.Dropout(self.dropout, rng=rng))
        layers.append(nn.Linear(fan_in, n_classes, rng=rng))
        return nn.Sequential(*layers)

    def _optimizer(self) -> Any:
        from .. import optim
        return optim.get(self.solver, self.model_.parameters(), lr=self.learning_rate_init,
                         **({"momentum": 0.9} if self.solver == "sgd" else {}))

    # ------------------------------------------------------------------ API
    def fit(self, X: Any, y: Any) -> "CNNClassifier":
        """Train a fresh network on images X and labels y; returns self.

        Example: ``nl.CNNClassifier(max_iter=5, random_state=0).fit(X_images, y)``
        """
        from .. import callbacks as cb
        from ..training import fit as nl_fit
        self._validate_params()
        if any(int(c) != c or c < 1 for c in self.conv_channels) or \
                any(int(h) != h or h < 1 for h in self.hidden_layer_sizes):
            raise ValueError(f"conv_channels and hidden_layer_sizes must be positive integers, got "
                             f"{self.conv_channels!r} and {self.hidden_layer_sizes!r}")
        n_x = X.shape[0] if hasattr(X, "shape") else len(X) if hasattr(X, "__len__") else None
        n_y = len(y) if hasattr(y, "__len__") else None
        if n_x is not None and n_y is not None and n_x != n_y:
            raise ValueError(f"X has {n_x} images but y has {n_y} labels")
        X, y = self._images(X, reset=True, y=y)
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        check_trainable(len(X), self.classes_)
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        rng = np.random.default_rng(seed)
        self.model_ = self._build(len(self.classes_), rng)
        n_train = len(X) * (1 - self.validation_fraction) if self.early_stopping else len(X)
        bs = min(200, len(X)) if self.batch_size == "auto" else int(min(self.batch_size, len(X)))
        stop = cb.EarlyStopping(monitor="val_accuracy" if self.early_stopping else "loss",
                                patience=self.n_iter_no_change, min_delta=self.tol,
                                restore_best=self.early_stopping)
        hist = nl_fit(self.model_, X, y_idx.astype(np.int64), optimizer=self._optimizer(),
                      epochs=self.max_iter, batch_size=bs,
                      validation_split=self.validation_fraction if self.early_stopping else 0.0,
                      metrics=["accuracy"] if self.early_stopping else None, callbacks=[stop],
                      seed=rng, verbose=2 if self.verbose else 0,
                      l2=float(self.alpha) / max(n_train, 1))
        self.loss_curve_ = [float(v) for v in hist.history["loss"]]
        self.n_iter_ = len(self.loss_curve_)
        if self.early_stopping:
            self.validation_scores_ = [float(v) for v in hist.history["val_accuracy"]]
            self.best_validation_score_ = max(self.validation_scores_)
        else:
            self.validation_scores_ = self.best_validation_score_ = None
        self.model_.eval()
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (n, n_classes), columns in the order of ``classes_``.

        Example: ``clf.predict_proba(X_images[:2]).sum(axis=1)  # [1., 1.]``
        """
        from .. import functional as F
        from ..tensor import Tensor
        from ..training.loop import _evaluating  # eval mode, the model's own mode restored after
        check_is_fitted(self, "model_")
        X = self._images(X, reset=False)
        # NOTE: a convolution's GEMM may round an image's outputs differently depending on
        # where the image sits in the batch (FMA kernels round their last columns apart), so
        # the images go through in one order fixed by their bytes: the same batches, whatever
        # order X lists them in.
        rows = np.ascontiguousarray(X).reshape(len(X), -1)
        order = np.argsort(rows.view(np.dtype((np.void, rows.strides[0]))).ravel(), kind="stable")
        X = X[order]
        out = []
        with _evaluating(self.model_):
            for start in range(0, len(X), 1024):
                out.append(F.softmax(self.model_(Tensor(X[start:start + 1024])), axis=1).data)
        proba = np.concatenate(out)
        proba[order] = proba.copy()
        return proba

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each image.

        Example: ``clf.predict(X_images[:5])  # array of labels``
        """
        proba = self.predict_proba(X)  # checks that the model is fitted first
        return self.classes_[proba.argmax(axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True
        tags.input_tags.three_d_array = True
        return tags
