"""MLPClassifier and MLPRegressor: scikit-learn's multi-layer perceptrons, on neuralab.

Every constructor parameter of ``sklearn.neural_network.MLPClassifier``/``MLPRegressor`` is
here with the same name, default and meaning (the loss and its L2 penalty
``0.5 * alpha * ||W||**2 / n_samples``, the learning-rate schedules, ``tol`` and
``n_iter_no_change``, early stopping, L-BFGS through SciPy), plus what scikit-learn lacks:
``dropout``, ``batch_norm``, ``residual`` blocks, more activations, the ``adamw`` and
``rmsprop`` solvers, ``class_weight``, ``callbacks``, a ``device`` and a ``dtype``
(float32 unless told). The network itself is an ``nn.Module`` (``model_``).

Example:
    >>> from sklearn.datasets import load_digits
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = nl.MLPClassifier(hidden_layer_sizes=(64,), max_iter=30, random_state=0).fit(X / 16, y)
    >>> clf.score(X / 16, y) > 0.95
    True
"""
from __future__ import annotations

import contextlib
import copy
import math
import os
import threading
import warnings
import weakref
from numbers import Integral, Real
from typing import Any, Iterator, Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, column_or_1d

from .. import backend
from .. import functional as F
from .. import nn
from ..callbacks.base import Callback
from ..functions import is_sparse
from ..tensor import Tensor, no_grad
from ._checks import check_trainable, validate as _validate

_STOCHASTIC_SOLVERS = ("sgd", "adam", "adamw", "rmsprop")
_ACTIVATIONS = tuple(k for k in nn.ACTIVATIONS if k not in ("linear", "softmax"))


class _BaseMLP(BaseEstimator):
    """What MLPClassifier and MLPRegressor share: the network, the solvers and the loop."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(_ACTIVATIONS))],
        "solver": [StrOptions({"lbfgs", *_STOCHASTIC_SOLVERS})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "batch_norm": ["boolean"],
        "residual": ["boolean"],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "device": [StrOptions({"cpu", "cuda", "gpu"})],
        "callbacks": [list, None],
        "dtype": [StrOptions({"float32", "float64"}), type, None],
    }

    def __init__(self, hidden_layer_sizes, activation, solver, alpha, batch_size, learning_rate,
                 learning_rate_init, power_t, max_iter, shuffle, random_state, tol, verbose,
                 warm_start, momentum, nesterovs_momentum, early_stopping, validation_fraction,
                 beta_1, beta_2, epsilon, n_iter_no_change, max_fun, dropout, batch_norm,
                 residual, weight_decay, device, callbacks, dtype):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.residual = residual
        self.weight_decay = weight_decay
        self.device = device
        self.callbacks = callbacks
        self.dtype = dtype

    # ------------------------------------------------------------------ helpers
    def _float_dtype(self, X: Any = None):
        """The dtype X is validated to: the ``dtype`` parameter, or X's own float (sklearn's rule)."""
        if self.dtype is None:
            return [np.float64, np.float32]
        dt = np.dtype(self.dtype)
        if dt.kind != "f":
            raise ValueError(f"dtype must be a float dtype (float32 or float64), got {dt}")
        return dt

    def _hidden_sizes(self) -> list[int]:
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if np.isscalar(sizes) else list(sizes)
        if any(int(s) != s or s <= 0 for s in sizes):
            from sklearn.utils._param_validation import InvalidParameterError  # noqa: PLC0415
            raise InvalidParameterError(
                f"The 'hidden_layer_sizes' parameter of {type(self).__name__} must be positive "
                f"integers (a layer of width 0 has no units). Got {self.hidden_layer_sizes!r} instead.")
        return [int(s) for s in sizes]

    def _build(self, n_features: int, n_outputs: int, dtype: np.dtype) -> None:
        """Create ``model_``, an ``nn.MLP``, with scikit-learn's Glorot-uniform initialisation."""
        init = _SklearnInit(2.0 if self.activation in ("logistic", "sigmoid") else 6.0)
        self.model_ = nn.MLP(n_features, self._hidden_sizes(), n_outputs, activation=self.activation,
                             dropout=self.dropout, norm="batch" if self.batch_norm else None,
                             residual="hidden" if self.residual else False, rng=self._rng,
                             init=init, dtype=dtype)
        for lin, bias in zip(self._linears, init.biases):
            lin.bias.data[...] = bias
        init.biases.clear()
        if backend.normalize_device(self.device) != "cpu":
            self.model_.to(self.device)

    # Views of the network: derived from ``model_`` on each access, never stored beside it (a
    # copy saved with the model went stale when the loaded network was trained further).
    @property
    def _linears(self) -> list:
        return [m for m in self.model_.modules() if isinstance(m, nn.Linear)]

    @property
    def coefs_(self) -> list[np.ndarray]:
        """Weight matrices in scikit-learn's (in, out) layout: views of ``model_``'s weights.

        Example: ``clf.coefs_[0].shape  # (n_features, hidden_layer_sizes[0])``
        """
        if "model_" not in self.__dict__:
            raise AttributeError("coefs_")  # unfitted: hasattr(est, "coefs_") is False
        return [backend.to_numpy(lin.weight.data).T for lin in self._linears]

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """Bias vectors, one per layer: views of ``model_``'s biases.

        Example: ``clf.intercepts_[-1].shape  # (n_outputs_,)``
        """
        if "model_" not in self.__dict__:
            raise AttributeError("intercepts_")
        return [backend.to_numpy(lin.bias.data) for lin in self._linears]

    # Derived from ``model_``, so never stored in a model file; 0.1.0 files stored copies of
    # these, which loading skips (``io.model_file`` reads this tuple).
    _not_stored = ("coefs_", "intercepts_", "_linears", "_infer_layers", "_fast_predict")

    def _sync_sklearn_attributes(self) -> None:
        if backend.normalize_device(self.device) == "cpu":
            from ..nn._fast import inference_layers  # noqa: PLC0415
            self._fast_predict = _FastPredict(self.model_, inference_layers(self.model_))

    def _forward_raw(self, X: np.ndarray) -> np.ndarray:
        """The network's output before the output activation, in eval mode, in chunks."""
        if "model_" not in self.__dict__:
            check_is_fitted(self, "model_")
        # NOTE: a plain Linear/ReLU chain predicts with raw NumPy calls (nn/_fast.py), its
        # layers listed once by fit: no Tensors, no graph, no module walk; the same numbers.
        # A loaded estimator lists them on each call (predicting must not change its state).
        fast = self.__dict__.get("_fast_predict")
        if fast is None or fast.model is not self.model_:
            from ..nn._fast import inference_layers  # noqa: PLC0415
            cpu = backend.normalize_device(self.device) == "cpu"
            fast = _FastPredict(self.model_, inference_layers(self.model_) if cpu else None)
        if fast.layers is not None:
            from ..nn._fast import forward_layers  # noqa: PLC0415
            return forward_layers(fast.layers, X if is_sparse(X) else np.asarray(X, dtype=self._dtype))
        from ..training.loop import _evaluating  # noqa: PLC0415  (eval mode, restored after)
        dev = backend.normalize_device(self.device)
        out = [np.zeros((0, self.n_outputs_), self._dtype)]
        with _evaluating(self.model_):
            for start in range(0, X.shape[0], 8192):
                xb = X[start:start + 8192]  # sparse rows go to the first Linear as they are
                if not is_sparse(xb):
                    xb = Tensor(backend.to_device(xb, dev), dtype=self._dtype)
                out.append(backend.to_numpy(self.model_(xb).data))
        return np.concatenate(out)

    def _output(self, X: np.ndarray) -> np.ndarray:
        """Apply ``out_activation_`` to the raw output (softmax, logistic, identity or exp)."""
        z = self._forward_raw(X)
        act = self.out_activation_
        if act in ("softmax", "logistic"):
            with no_grad():
                z = Tensor._make(z, False)
                return (F.softmax(z, axis=1) if act == "softmax" else F.sigmoid(z)).data
        if act == "exp":
            return np.exp(z)
        return z

    def _validate_predict(self, X: Any) -> np.ndarray:
        """X checked for prediction; a finite float NumPy array of the right width skips
        scikit-learn's validate_data.

        NOTE: validate_data costs more than a one-row prediction itself (benchmarks/README.md).
        """
        if (type(X) is np.ndarray and X.ndim == 2 and X.dtype.kind == "f"
                and X.dtype.itemsize in (4, 8) and X.shape[0] > 0
                and X.shape[1] == getattr(self, "n_features_in_", -1)
                and not hasattr(self, "feature_names_in_")):
            dt = self._float_dtype()
            if not isinstance(dt, list):
                X = X.astype(dt, copy=False)
            if np.isfinite(X).all():
                return X
        return _validate(self, X, dtype=self._float_dtype(), reset=False, accept_sparse="csr")

    # ------------------------------------------------------------------ the loss
    def _batch_loss(self, z: Tensor, target: Tensor, w: np.ndarray | None, sw_sum: float) -> Tensor:
        """The objective whose gradient is sklearn's: its loss summed over outputs, weighted mean over samples."""
        act = self.out_activation_
        if act == "softmax":
            if w is None:
                return F.cross_entropy(z, target)
            return F.cross_entropy(z, target, reduction="none").__mul__(
                Tensor(w, dtype=z.dtype)).sum() * (1.0 / sw_sum)
        if act == "logistic":
            weight = None if w is None else w.reshape(-1, 1).astype(z.dtype)
            return F.binary_cross_entropy_with_logits(z, target, weight=weight, reduction="sum") * (1.0 / sw_sum)
        if act == "exp":  # Poisson deviance with log link, up to a constant in y
            per = z.exp() - target * z
        else:
            d = z - target
            per = d * d * 0.5
        if w is not None:
            per = per * Tensor(w.reshape(-1, 1), dtype=z.dtype)
        return per.sum() * (1.0 / sw_sum)

    def _reported_loss(self, objective: float, y_batch: np.ndarray, w: np.ndarray | None,
                       sw_sum: float) -> float:
        # sklearn reports squared loss averaged over outputs and Poisson with its constant term.
        if self.out_activation_ == "identity":
            return objective / self.n_outputs_
        if self.out_activation_ == "exp":
            from scipy.special import xlogy  # noqa: PLC0415
            y_batch = backend.to_numpy(y_batch)
            c = (xlogy(y_batch, y_batch) - y_batch).sum(axis=1)
            return objective + float((c if w is None else c * w).sum() / sw_sum)
        return objective

    # ------------------------------------------------------------------ fit
    def _check_solver(self) -> bool:
        # partial_fit exists only for the stochastic solvers, as in scikit-learn
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError(f"partial_fit is only available for stochastic optimizers. "
                                 f"{self.solver} is not stochastic.")
        return True

    def _fit(self, X: Any, y: Any, sample_weight: Any = None, incremental: bool = False,
             classes: Any = None) -> "_BaseMLP":
        with _one_fit_at_a_time(self):
            first_pass = not hasattr(self, "model_") or (not self.warm_start and not incremental)
            X, y_train, y_orig = self._validate_input(X, y, incremental, reset=first_pass, classes=classes)
            self._check_sparse_device(X)
            self._dtype = X.dtype
            sample_weight = _checked_sample_weight(sample_weight, X)
            sample_weight = self._with_class_weight(y_orig, sample_weight)
            if first_pass:
                seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
                self._rng = np.random.default_rng(seed)
                self._initialize(y_train, X.shape[1], X.dtype)
            if self.solver == "lbfgs":
                with _blas_threads_for(self, X.shape):
                    self._fit_lbfgs(X, y_train, sample_weight)
            else:
                self._fit_stochastic(X, y_train, sample_weight, incremental)
            self._sync_sklearn_attributes()
        return self

    def _check_sparse_device(self, X: Any) -> None:
        if is_sparse(X) and backend.normalize_device(self.device) != "cpu":
            raise ValueError(f"X is a sparse matrix, which trains on the CPU only; use "
                             f"device='cpu' (now {self.device!r}), or X.toarray() if it fits "
                             f"in the GPU's memory")

    def _initialize(self, y_train: np.ndarray, n_features: int, dtype: np.dtype) -> None:
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y_train.shape[1] if y_train.ndim == 2 else len(self.classes_)
        self.n_layers_ = len(self._hidden_sizes()) + 2
        self.out_activation_ = self._out_activation()
        self._build(n_features, self.n_outputs_, dtype)
        self.history_ = _new_history()
        if self.solver in _STOCHASTIC_SOLVERS:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None
        self.__dict__.pop("_optimizer", None)
        self.__dict__.pop("_schedule", None)

    def _make_optimizer(self) -> tuple[Any, Any]:
        """The solver as a neuralab optimizer (``optim.get``) and its learning-rate schedule
        (scikit-learn's "invscaling" and "adaptive" exist for sgd only, as there)."""
        from .. import optim  # noqa: PLC0415
        betas = (self.beta_1, self.beta_2)
        kwargs = {"sgd": dict(momentum=self.momentum,
                              nesterov=self.nesterovs_momentum and self.momentum > 0),
                  "adam": dict(betas=betas, eps=self.epsilon),
                  "adamw": dict(betas=betas, eps=self.epsilon, weight_decay=self.weight_decay),
                  "rmsprop": dict(eps=self.epsilon)}[self.solver]
        opt = optim.get(self.solver, self.model_.parameters(), lr=self.learning_rate_init, **kwargs)
        schedule = None
        if self.solver == "sgd" and self.learning_rate == "invscaling":
            schedule = optim.InverseScalingLR(opt, power_t=self.power_t)
        elif self.solver == "sgd" and self.learning_rate == "adaptive":
            schedule = optim.AdaptiveLR(opt, divisor=5.0, min_lr=1e-6)
        return opt, schedule

    def _train_step(self, dev: str) -> Any:
        """``train_step(xb, yb, wb) -> (loss, outputs)`` for ``nl.fit``: scikit-learn's loss and
        L2 penalty ``0.5 * alpha * ||W||**2 / batch size``, then one optimizer step.

        A batch whose loss is not finite is not stepped (the run stops, see ``_SklearnRun``).
        """
        from ..training.captured import CapturedMLP  # noqa: PLC0415
        model, opt, alpha = self.model_, self._optimizer, float(self.alpha)
        linears = self._linears
        # NOTE: a plain Linear/ReLU chain shares nl.fit's captured step (training/captured.py):
        # no graph and no allocations per batch, the same gradients bit for bit.
        kind = {"softmax": "cross_entropy", "logistic": "bce_sum"}.get(self.out_activation_)
        cap = None
        if kind and dev == "cpu" and not os.environ.get("NEURALAB_EAGER"):
            cap = CapturedMLP.from_model(model, kind)

        def train_step(xb: Any, yb: Any, wb: Any) -> tuple[float, Any]:
            sw_sum = float(xb.shape[0] if wb is None else wb.sum())
            if sw_sum <= 0:
                return 0.0, None  # every sample of the batch weighs 0: nothing to learn
            if cap is not None and wb is None:
                value, out = cap.forward_backward(xb, yb, 1.0 / sw_sum), cap.logits
            else:
                z = model(xb if is_sparse(xb) else Tensor._make(xb, False))
                loss = self._batch_loss(z, Tensor._make(yb, False), wb, sw_sum)
                opt.zero_grad()
                loss.backward()
                value, out = float(loss.data), z.data
            if not math.isfinite(value):
                return value, out
            if alpha:
                value += 0.5 * alpha * _penalty(linears) / sw_sum
                scale = alpha / sw_sum
                for lin in linears:
                    lin.weight.grad += scale * lin.weight.data
            opt.step()
            return self._reported_loss(value, yb, wb, sw_sum), out

        return train_step

    def _fit_stochastic(self, X, y, sample_weight, incremental) -> None:
        from ..training.loop import fit  # noqa: PLC0415
        if not incremental or "_optimizer" not in self.__dict__:
            self._optimizer, self._schedule = self._make_optimizer()
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        X_val = y_val = w_val = None
        if self.early_stopping:
            stratify = y if (isinstance(self, ClassifierMixin) and self._single_output_classes()) else None
            arrays = (X, y) if sample_weight is None else (X, y, sample_weight)
            parts = train_test_split(*arrays, random_state=int(self._rng.integers(2**31 - 1)),
                                     test_size=self.validation_fraction, stratify=stratify)
            X, X_val, y, y_val = parts[:4]
            if sample_weight is not None:
                sample_weight, w_val = parts[4], parts[5]
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase 'validation_fraction' "
                                 "or the size of your dataset.")
            y_val = self._decode(y_val)
        n = X.shape[0]
        if self.batch_size == "auto":
            bs = min(200, n)
        else:
            if self.batch_size > n:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. "
                              "It is going to be clipped")
            bs = int(np.clip(self.batch_size, 1, n))
        dev = backend.normalize_device(self.device)
        self.n_iter_ = 0
        self.diverged_ = None
        self.interrupted_ = False  # True when a callback stopped training inside an epoch
        run = _SklearnRun(self, X, (X_val, y_val, w_val))
        # The loss name only tells fit how y is checked; the step computes sklearn's own loss.
        task_loss = {"softmax": "cross_entropy", "logistic": "bce"}.get(self.out_activation_, "mse")
        fit(self.model_, X, y, loss=task_loss, optimizer=self._optimizer,
            epochs=1 if incremental else int(self.max_iter), batch_size=bs, callbacks=[run],
            shuffle=self.shuffle, seed=self._rng, verbose=0, sample_weight=sample_weight,
            device=dev, train_step=self._train_step(dev))
        if self.n_iter_ == self.max_iter and run.stop_reason is None and not incremental:
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached "
                          "and the optimization hasn't converged yet.", ConvergenceWarning)
        if self.early_stopping and self._best_state is not None:
            self.model_.load_state_dict(self._best_state)
        self.model_.eval()

    def _diverge(self, value: float, epoch: int, batch: int, finite_state: dict | None,
                 X: Any, initial_state: dict | None, first: float | None) -> str:
        """The loss became NaN/inf or grew past ``_DIVERGED_GROWTH`` times its first value: go
        back to the last weights that are finite and give finite outputs on the training
        data (else the initial ones), say so and stop."""
        kept = f"after epoch {epoch}" if epoch else "the initial ones"
        if finite_state:
            self.model_.load_state_dict(finite_state)
            # Finite but huge weights can still overflow the outputs to inf (and softmax to
            # NaN); checked once, here, rather than every epoch.
            if epoch and not np.isfinite(self._forward_raw(X if is_sparse(X) else backend.to_numpy(X))).all():
                self.model_.load_state_dict(initial_state)
                kept = f"the initial ones: those after epoch {epoch} overflow"
        self.model_.train()
        curve = getattr(self, "loss_curve_", None)
        self.loss_ = curve[-1] if curve else float("nan")
        from ..callbacks.base import get_lr  # noqa: PLC0415
        lr = get_lr(self._optimizer)
        what = (f"became {value}" if not np.isfinite(value) else
                f"became {value:.3g}, over {_DIVERGED_GROWTH:g} times its first value {first:.3g},")
        self.diverged_ = (f"training diverged: the loss {what} at epoch {epoch + 1}, "
                          f"batch {batch + 1}; stopped and kept the last finite weights ("
                          f"{kept}). Try a smaller learning_rate_init (now {lr:g}, e.g. "
                          f"{lr / 10:g}) or standardise the inputs")
        warnings.warn(self.diverged_, ConvergenceWarning, stacklevel=2)
        return "diverged"

    def _trigger_stopping(self, msg: str) -> bool:
        # sklearn: stop, unless sgd with the adaptive schedule can still divide lr by 5.
        from .. import optim  # noqa: PLC0415
        if not isinstance(self._schedule, optim.AdaptiveLR):
            if self.verbose:
                print(msg + " Stopping.")
            return True
        if not self._schedule.step():
            if self.verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        if self.verbose:
            print(msg + f" Setting learning rate to {self._schedule.get_last_lr()[0]:f}")
        return False

    def _update_no_improvement_count(self, X_val, y_val, w_val) -> None:
        if self.early_stopping:
            score = self._val_score(X_val, y_val, w_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print(f"Validation score: {score:f}")
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_state = copy.deepcopy(self.model_.state_dict())
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    _best_state = None
    _schedule = None

    def _fit_lbfgs(self, X, y, sample_weight) -> None:
        import scipy.optimize  # noqa: PLC0415  (imported only for solver="lbfgs")
        from sklearn.utils.optimize import _check_optimize_result  # noqa: PLC0415

        params, linears = self.model_.parameters(), self._linears
        shapes = [p.shape for p in params]
        sizes = [int(np.prod(s)) for s in shapes]
        dev = backend.normalize_device(self.device)
        # sparse X stays sparse: the first Linear multiplies it sparse x dense (CPU only)
        Xt = X if is_sparse(X) else Tensor(backend.to_device(X, dev), dtype=self._dtype)
        yt = Tensor._make(backend.to_device(y, dev), False)
        sw_sum = float(X.shape[0] if sample_weight is None else sample_weight.sum())
        self.model_.train()

        def loss_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
            offset = 0
            for p, shape, size in zip(params, shapes, sizes):
                p.data[...] = backend.to_device(theta[offset:offset + size].reshape(shape), dev)
                offset += size
            self.model_.zero_grad()
            loss = self._batch_loss(self.model_(Xt), yt, sample_weight, sw_sum)
            loss.backward()
            value = float(loss.data) + 0.5 * self.alpha * _penalty(linears) / sw_sum
            for lin in linears:
                lin.weight.grad += (self.alpha / sw_sum) * lin.weight.data
            grad = np.concatenate([backend.to_numpy(p.grad).ravel() for p in params])
            value = self._reported_loss(value, y, sample_weight, sw_sum)
            return value, grad.astype(np.float64)

        theta0 = np.concatenate([backend.to_numpy(p.data).ravel() for p in params]).astype(np.float64)
        res = scipy.optimize.minimize(loss_grad, theta0, method="L-BFGS-B", jac=True,
                                      options={"maxfun": self.max_fun, "maxiter": self.max_iter,
                                               "gtol": self.tol})
        self.n_iter_ = _check_optimize_result("lbfgs", res, self.max_iter)
        self.loss_ = float(res.fun)
        loss_grad(res.x)  # leave the best parameters in the model
        self.model_.eval()
        self.history_.on_epoch_end(len(self.history_.epoch), {"loss": self.loss_})

    # ------------------------------------------------------------------ shared API
    @classmethod
    def from_network(cls, network: nn.Module, n_features: int, classes: Any = None,
                     loss_curve: Sequence[float] | None = None, n_samples: int = 0,
                     **params: Any):
        """A fitted estimator around a network trained elsewhere (e.g. by ``nl.fit``).

        A classifier's network gives one logit per class (softmax head, trained with
        cross-entropy on class indices ``0..k-1``); a regressor's gives the targets.
        ``params`` are the constructor's (they describe the training, for ``get_params``
        and ``neuralab info``); ``loss_curve`` is the per-epoch training loss in the
        estimator's own convention. The result predicts, saves, exports and explains like
        one that ``fit`` trained; ``partial_fit`` continues with a fresh optimizer.

        Example:
            >>> net = nn.MLP(64, hidden=(16,), out_features=10); nl.fit(net, X, y, epochs=20)
            History(epochs=20, ...)
            >>> clf = nl.MLPClassifier.from_network(net, n_features=64, classes=list(range(10)))
        """
        est = cls(**params)
        linears = [m for m in network.modules() if isinstance(m, nn.Linear)]
        if not linears:
            raise ValueError(f"from_network needs a network with Linear layers, got "
                             f"{type(network).__name__}")
        width = linears[-1].out_features
        est.model_ = network.eval()  # first Module attribute: the one `neuralab info` shows
        est._dtype = np.dtype(linears[0].weight.dtype)
        est.n_features_in_ = int(n_features)
        est.n_layers_ = len(linears) + 1
        est.n_outputs_ = width
        if isinstance(est, ClassifierMixin):
            classes = np.asarray(classes if classes is not None else np.arange(width))
            if len(classes) != width:
                raise ValueError(f"from_network: the network gives {width} outputs but "
                                 f"{len(classes)} classes were given")
            est._label_binarizer = LabelBinarizer().fit(classes)
            est.classes_ = est._label_binarizer.classes_
            # Softmax over one logit per class, also for two classes (sklearn's own
            # binary head is one logistic output; predict and export follow out_activation_).
            est.out_activation_ = "softmax"
        else:
            est.out_activation_ = "identity"
            est._y_1d = width == 1
        curve = [float(v) for v in (loss_curve or [])]
        est.n_iter_ = len(curve)
        est.t_ = len(curve) * int(n_samples)
        est.loss_curve_ = curve
        est.loss_ = curve[-1] if curve else None
        finite = [v for v in curve if np.isfinite(v)]
        est.best_loss_ = min(finite) if finite else np.inf
        est.validation_scores_ = est.best_validation_score_ = None
        est._no_improvement_count = 0
        est.diverged_ = None
        est.history_ = _new_history()
        for epoch, value in enumerate(curve):
            est.history_.on_epoch_end(epoch, {"loss": value})
        seed = check_random_state(est.random_state).randint(np.iinfo(np.int32).max)
        est._rng = np.random.default_rng(seed)
        est._sync_sklearn_attributes()
        return est

    def _with_class_weight(self, y, sample_weight):
        return sample_weight

    def _single_output_classes(self) -> bool:
        return True

    def _decode(self, y):
        return y

    def _val_score(self, X, y, w) -> float:
        pred = self.predict(X)
        if not np.all(np.isfinite(np.asarray(pred, dtype=float) if pred.dtype.kind in "fiu" else 0)):
            return np.nan
        return float(self._score_fn(y, pred, sample_weight=w))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        tags.input_tags.sparse = True  # SciPy sparse X: the first layer multiplies it as it is
        return tags


# A loss this many times its first value (or above 1 when the first was smaller) counts as
# diverged: a learning rate far too large grows it by orders of magnitude within an epoch.
_DIVERGED_GROWTH = 1e3

# The estimators being fitted now, so that a second thread's fit of the same one is refused.
_FITTING: "weakref.WeakSet" = weakref.WeakSet()
_FITTING_LOCK = threading.Lock()


@contextlib.contextmanager
def _one_fit_at_a_time(est: Any) -> Iterator[None]:
    """Refuse to fit an estimator that another thread is fitting (they would share state)."""
    with _FITTING_LOCK:
        if est in _FITTING:
            raise RuntimeError(f"this {type(est).__name__} is already being fitted (in another "
                               f"thread); estimators are not thread-safe for concurrent fit: give "
                               f"each thread its own copy, e.g. sklearn.base.clone(est)")
        _FITTING.add(est)
    try:
        yield
    finally:
        with _FITTING_LOCK:
            _FITTING.discard(est)


class _SklearnInit:
    """scikit-learn's initialisation, as an ``nn.Linear`` init: U(-b, b) for the weights and
    the biases, b = sqrt(factor / (in + out)), factor 2 for the logistic activation, else 6
    (Glorot & Bengio, 2010). Each call draws a layer's bias too, kept in ``biases``."""

    def __init__(self, factor: float) -> None:
        self.factor, self.biases = factor, []

    def __call__(self, shape: tuple, rng: np.random.Generator, dtype: Any = None) -> np.ndarray:
        # First the draws of 0.1.0, which built each Linear with its default init and then
        # replaced it: the same random_state gives the same network as there.
        rng.uniform(size=shape), rng.uniform(size=shape[0])
        bound = np.sqrt(self.factor / sum(shape))  # shape is (out, in)
        weight = rng.uniform(-bound, bound, shape).astype(dtype)
        self.biases.append(rng.uniform(-bound, bound, shape[0]))
        return weight


class _FastPredict:
    """The Linear/ReLU layers of ``model`` (its own Parameters, not copies) for predictions
    without Tensors (``nn._fast``); None when the network is not such a chain."""

    __slots__ = ("model", "layers")

    def __init__(self, model: Any, layers: list | None) -> None:
        self.model, self.layers = model, layers


class _SklearnRun(Callback):
    """scikit-learn's bookkeeping around ``nl.fit``'s epochs: ``loss_curve_``, ``n_iter_``,
    ``t_``, the no-improvement count and early stopping, the learning-rate schedules,
    divergence, and the estimator's own ``callbacks`` (duck-typed, as documented there)."""

    def __init__(self, est: "_BaseMLP", X: np.ndarray, val: tuple) -> None:
        self.est, self.X, self.val, self.n = est, X, val, X.shape[0]
        self.user = list(est.callbacks or [])
        self.batch_hooks = [cb for cb in self.user if callable(getattr(cb, "on_batch_end", None))]
        self.stop_reason: str | None = None
        self.first_loss: float | None = None
        self.finite_state = self.initial_state = _finite_copy(est.model_)
        self.logs: dict[str, Any] = {}
        self.total = 0.0

    def _stop(self, reason: str) -> None:
        self.stop_reason = reason
        self.run.stop_training = True

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.total = 0.0
        if epoch == 0:  # just before the first step, after fit's own setup
            for cb in self.user:
                _call(cb, "set_model", self.est.model_)
                _call(cb, "on_train_begin", self.logs)

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        value = logs["loss"]
        if self.first_loss is None:
            self.first_loss = value
        if not math.isfinite(value) or value > _DIVERGED_GROWTH * max(abs(self.first_loss), 1.0):
            self._stop(self.est._diverge(value, self.run.epoch, batch, self.finite_state, self.X,
                                         self.initial_state, self.first_loss))
            return
        self.total += value * logs["size"]
        if self.batch_hooks and _batch_end(self.batch_hooks, batch, value):
            self.est.interrupted_ = True  # after a whole step: the weights are consistent
            self._stop("interrupted")

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        est = self.est
        if self.stop_reason is not None:  # diverged or interrupted: the cut epoch is not counted
            return
        snapshot = _finite_copy(est.model_)
        if snapshot is None:  # the epoch's last step made a weight NaN/inf
            self._stop(est._diverge(float("nan"), epoch, self.run.params["steps"] - 1,
                                    self.finite_state, self.X, self.initial_state, self.first_loss))
            return
        self.finite_state = snapshot
        est.n_iter_ += 1
        est.loss_ = self.total / self.n
        est.t_ += self.n
        est.loss_curve_.append(est.loss_)
        if est.verbose:
            print(f"Iteration {est.n_iter_}, loss = {est.loss_:.8f}")
        est._update_no_improvement_count(*self.val)
        if hasattr(est._schedule, "power_t"):  # invscaling: lr_init / (t_ + 1) ** power_t
            est._schedule.step(est.t_)
        self.logs = {"loss": est.loss_}
        if est.early_stopping:
            self.logs["val_score"] = est.validation_scores_[-1]
        est.history_.on_epoch_end(len(est.loss_curve_) - 1, self.logs)  # epochs across partial_fit
        stop = False
        for cb in self.user:
            stop = bool(_call(cb, "on_epoch_end", epoch, self.logs)) or stop
            stop = stop or bool(getattr(cb, "stop_training", False)) \
                or bool(getattr(est.model_, "stop_training", False))
        if stop:
            self._stop("callback")
            return
        if est._no_improvement_count > est.n_iter_no_change:
            what = "Validation score" if est.early_stopping else "Training loss"
            msg = (f"{what} did not improve more than tol={est.tol:f} for "
                   f"{est.n_iter_no_change} consecutive epochs.")
            if est._trigger_stopping(msg):
                self._stop("converged")
                return
            est._no_improvement_count = 0

    def on_train_end(self, logs: dict | None = None) -> None:
        for cb in self.user:
            _call(cb, "on_train_end", self.logs)


def _checked_sample_weight(sample_weight: Any, X: np.ndarray) -> np.ndarray | None:
    """sample_weight as X's dtype, one finite non-negative weight per row."""
    if sample_weight is None:
        return None
    w = _check_sample_weight(sample_weight, X, dtype=X.dtype)
    negative = np.flatnonzero(w < 0)
    if len(negative):
        i = int(negative[0])
        raise ValueError(f"sample_weight must be non-negative; row {i} has {w[i]:g} "
                         f"({len(negative)} negative weight(s) in all)")
    return w


def _penalty(linears: list) -> float:
    """sum ||W||**2 over the weight matrices (sklearn's alpha term, before its 0.5 * alpha / n)."""
    return float(sum(np.dot(lin.weight.data.ravel(), lin.weight.data.ravel()) for lin in linears))


def _blas_threads_for(est: _BaseMLP, shape: tuple):
    """The BLAS thread policy of an L-BFGS fit: the rule of ``training.threads`` on the
    largest matmul of a full-batch step (stochastic solvers get theirs from ``fit``)."""
    from ..training.threads import BlasThreadPolicy  # noqa: PLC0415
    rows = shape[0] if est.solver == "lbfgs" else (
        min(200, shape[0]) if est.batch_size == "auto" else min(int(est.batch_size), shape[0]))
    units = [shape[1], *est._hidden_sizes(), est.n_outputs_]
    flops = rows * max(a * b for a, b in zip(units[:-1], units[1:]))
    return BlasThreadPolicy(flops=flops)


def _finite_copy(model: nn.Module) -> dict | None:
    """A copy of the state dict if every float in it is finite, else None."""
    state = model.state_dict()
    if not all(bool(np.isfinite(backend.to_numpy(v)).all()) for v in state.values()
               if v.dtype.kind == "f"):
        return None
    return {k: v.copy() for k, v in state.items()}


def _new_history() -> Any:
    """nl.fit's History record for ``history_``: ``history_["loss"]``, ``history_.epoch``;
    ``"val_score"`` is there from the start (empty without early stopping)."""
    from ..callbacks import History  # noqa: PLC0415
    history = History()
    history.history.update(loss=[], val_score=[])
    return history


def _call(cb: Any, hook: str, *args: Any) -> Any:
    fn = getattr(cb, hook, None)
    return fn(*args) if callable(fn) else None


def _batch_end(callbacks: list, batch: int, loss: float) -> bool:
    """Call each callback's ``on_batch_end``; True when one asks to stop (returns True or
    sets ``stop_training``), e.g. the CLI's Ctrl-C handler."""
    logs = {"batch": batch, "loss": loss}
    stop = False
    for cb in callbacks:
        stop = bool(_call(cb, "on_batch_end", batch, logs)) or stop
        stop = stop or bool(getattr(cb, "stop_training", False))
    return stop


_SHARED_DOC = """
    Args (scikit-learn's, same meaning): hidden_layer_sizes, activation ("identity",
        "logistic", "tanh", "relu"; also "leaky_relu", "gelu", "sigmoid"), solver ("lbfgs",
        "sgd", "adam"; also "adamw", "rmsprop"), alpha (L2 penalty), batch_size,
        learning_rate, learning_rate_init, power_t, max_iter, shuffle, random_state, tol,
        verbose, warm_start, momentum, nesterovs_momentum, early_stopping,
        validation_fraction, beta_1, beta_2, epsilon, n_iter_no_change, max_fun.
    Args (neuralab's): dropout (probability after each hidden activation), batch_norm
        (BatchNorm1d before each hidden activation), residual (skip connections between
        hidden layers of equal width), weight_decay (decoupled, for solver="adamw"),
        device ("cpu" or "cuda"), callbacks (objects with ``on_epoch_end(epoch, logs)``
        and/or ``on_batch_end(batch, logs)``; returning True or setting ``stop_training``
        stops; from ``on_batch_end`` right after that step, with ``interrupted_`` set and,
        with early_stopping, the best weights restored), dtype ("float32" default;
        None follows X as sklearn does).
    X may be a SciPy sparse matrix or array (e.g. from TfidfVectorizer): it is converted
    once to CSR and never made dense; the first layer multiplies its rows sparse x dense
    (CPU only).
"""


class MLPClassifier(ClassifierMixin, _BaseMLP):
    # a class body's first statement is its docstring only when it is a plain literal, so the
    # shared parameter text is joined in by assigning __doc__ (else help() shows nothing)
    __doc__ = """Multi-layer perceptron classifier with scikit-learn's API, trained by neuralab.
    """ + _SHARED_DOC + """
    Example:
        >>> clf = nl.MLPClassifier(hidden_layer_sizes=(128,), dropout=0.2, max_iter=20, random_state=0)
        >>> clf.fit(X_train, y_train).score(X_test, y_test) > 0.9
        True
    """

    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }

    def __init__(self, hidden_layer_sizes: Sequence[int] = (100,), activation: str = "relu", *,
                 solver: str = "adam", alpha: float = 0.0001, batch_size: int | str = "auto",
                 learning_rate: str = "constant", learning_rate_init: float = 0.001,
                 power_t: float = 0.5, max_iter: int = 200, shuffle: bool = True,
                 random_state: Any = None, tol: float = 1e-4, verbose: bool = False,
                 warm_start: bool = False, momentum: float = 0.9, nesterovs_momentum: bool = True,
                 early_stopping: bool = False, validation_fraction: float = 0.1,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-8,
                 n_iter_no_change: int = 10, max_fun: int = 15000, dropout: float = 0.0,
                 batch_norm: bool = False, residual: bool = False, weight_decay: float = 0.01,
                 class_weight: dict | str | None = None, device: str = "cpu",
                 callbacks: list | None = None, dtype: Any = "float32") -> None:
        super().__init__(hidden_layer_sizes, activation, solver, alpha, batch_size, learning_rate,
                         learning_rate_init, power_t, max_iter, shuffle, random_state, tol, verbose,
                         warm_start, momentum, nesterovs_momentum, early_stopping,
                         validation_fraction, beta_1, beta_2, epsilon, n_iter_no_change, max_fun,
                         dropout, batch_norm, residual, weight_decay, device, callbacks, dtype)
        self.class_weight = class_weight

    _score_fn = staticmethod(accuracy_score)

    def _out_activation(self) -> str:
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _single_output_classes(self) -> bool:
        return self._label_binarizer.y_type_ != "multilabel-indicator"

    def _validate_input(self, X, y, incremental, reset, classes=None):
        X, y = _validate(self, X, y, multi_output=True, dtype=self._float_dtype(), reset=reset,
                         accept_sparse="csr")
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)  # sklearn warns about a column vector y
        if reset:
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
            if not incremental:
                check_trainable(X.shape[0], None if self._label_binarizer.y_type_ ==
                                "multilabel-indicator" else self.classes_)
        else:
            # NOTE: type_of_target once (it scans y; it was run three times per partial_fit,
            # 0.4 ms of a 5 ms digits epoch); a validated 1-D y's labels are np.unique's
            multilabel = type_of_target(y).startswith("multilabel")
            if multilabel != (self._label_binarizer.y_type_ == "multilabel-indicator"):
                raise ValueError("partial_fit / warm_start: y's type changed between calls")
            extra = np.setdiff1d(y, self.classes_) if not multilabel else []
            if len(extra):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has "
                                 f"{self.classes_}. 'y' has {np.unique(y)}.")
        kind = self._label_binarizer.y_type_
        if kind == "multiclass" or (not reset and self.out_activation_ == "softmax"):
            # class indices for the fused softmax cross-entropy (no one-hot in memory); a
            # from_network classifier has a softmax head for two classes too
            target = np.searchsorted(self.classes_, y).astype(np.int64)
        else:
            target = self._label_binarizer.transform(y).astype(X.dtype)
        return X, target, y

    def _with_class_weight(self, y, sample_weight):
        if self.class_weight is None:
            return sample_weight
        if self._label_binarizer.y_type_ == "multilabel-indicator":
            raise ValueError("class_weight is not supported for multilabel targets")
        cw = compute_sample_weight(self.class_weight, y).astype(self._dtype)
        return cw if sample_weight is None else cw * sample_weight

    def _decode(self, y):
        if self._label_binarizer.y_type_ == "multiclass":
            return self.classes_[y]
        return self._label_binarizer.inverse_transform(y)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> "MLPClassifier":
        """Fit the network to X (n_samples, n_features) and labels y; returns self.

        Example: ``nl.MLPClassifier(max_iter=50).fit(X, y)``
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None, classes: Any = None) -> "MLPClassifier":
        """One epoch over X, y, continuing from the current weights (``classes`` on the first call).

        Example: ``clf.partial_fit(X_batch, y_batch, classes=np.arange(10))``
        """
        if _check_partial_fit_first_call(self, classes):
            self.__dict__.pop("model_", None)
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
            self.classes_ = self._label_binarizer.classes_
            saved, self.warm_start = self.warm_start, True
            try:
                return self._fit_partial_first(X, y, sample_weight)
            finally:
                self.warm_start = saved
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def _fit_partial_first(self, X, y, sample_weight):
        with _one_fit_at_a_time(self):
            X, y_t, y_orig = self._validate_first_partial(X, y)
            self._check_sparse_device(X)
            self._dtype = X.dtype
            sample_weight = _checked_sample_weight(sample_weight, X)
            sample_weight = self._with_class_weight(y_orig, sample_weight)
            seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
            self._rng = np.random.default_rng(seed)
            self._initialize(y_t, X.shape[1], X.dtype)
            self._fit_stochastic(X, y_t, sample_weight, incremental=True)
            self._sync_sklearn_attributes()
        return self

    def _validate_first_partial(self, X, y):
        X, y = _validate(self, X, y, multi_output=True, dtype=self._float_dtype(), reset=True,
                         accept_sparse="csr")
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not type_of_target(y).startswith("multilabel"):
            extra = np.setdiff1d(unique_labels(y), self.classes_)
            if len(extra):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has "
                                 f"{self.classes_}. 'y' has {unique_labels(y)}.")
        if self._label_binarizer.y_type_ == "multiclass":
            target = np.searchsorted(self.classes_, y).astype(np.int64)
        else:
            target = self._label_binarizer.transform(y).astype(X.dtype)
        return X, target, y

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes) (one column per label for multilabel).

        Example: ``clf.predict_proba(X[:2]).sum(axis=1)  # [1., 1.]``
        """
        if "model_" not in self.__dict__:  # NOTE: sklearn's check_is_fitted is slow per call
            check_is_fitted(self)
        X = self._validate_predict(X)
        p = self._output(X)
        if self.n_outputs_ == 1 and self._label_binarizer.y_type_ != "multilabel-indicator":
            p = p.ravel()
            return np.column_stack([1 - p, p])
        return p

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """log of ``predict_proba``. Example: ``clf.predict_log_proba(X[:2])``"""
        return np.log(self.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels (an indicator matrix for multilabel). Example: ``clf.predict(X[:5])``"""
        if "model_" not in self.__dict__:  # NOTE: sklearn's check_is_fitted is slow per call
            check_is_fitted(self)
        X = self._validate_predict(X)
        p = self._output(X)
        if self.out_activation_ == "softmax":  # multiclass (or a softmax head from from_network)
            return self.classes_[np.argmax(p, axis=1)]
        if self.n_outputs_ == 1 and self._label_binarizer.y_type_ != "multilabel-indicator":
            p = p.ravel()
        return self._label_binarizer.inverse_transform(p)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    __doc__ = """Multi-layer perceptron regressor with scikit-learn's API, trained by neuralab.

    Args: loss ("squared_error" or "poisson"), then as MLPClassifier.
    """ + _SHARED_DOC + """
    Example:
        >>> reg = nl.MLPRegressor(hidden_layer_sizes=(64,), batch_norm=True, max_iter=20, random_state=0)
        >>> reg.fit(X_train, y_train).score(X_test, y_test) > 0.5   # R^2
        True
    """

    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    def __init__(self, loss: str = "squared_error", hidden_layer_sizes: Sequence[int] = (100,),
                 activation: str = "relu", *, solver: str = "adam", alpha: float = 0.0001,
                 batch_size: int | str = "auto", learning_rate: str = "constant",
                 learning_rate_init: float = 0.001, power_t: float = 0.5, max_iter: int = 200,
                 shuffle: bool = True, random_state: Any = None, tol: float = 1e-4,
                 verbose: bool = False, warm_start: bool = False, momentum: float = 0.9,
                 nesterovs_momentum: bool = True, early_stopping: bool = False,
                 validation_fraction: float = 0.1, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-8, n_iter_no_change: int = 10, max_fun: int = 15000,
                 dropout: float = 0.0, batch_norm: bool = False, residual: bool = False,
                 weight_decay: float = 0.01, device: str = "cpu", callbacks: list | None = None,
                 dtype: Any = "float32") -> None:
        super().__init__(hidden_layer_sizes, activation, solver, alpha, batch_size, learning_rate,
                         learning_rate_init, power_t, max_iter, shuffle, random_state, tol, verbose,
                         warm_start, momentum, nesterovs_momentum, early_stopping,
                         validation_fraction, beta_1, beta_2, epsilon, n_iter_no_change, max_fun,
                         dropout, batch_norm, residual, weight_decay, device, callbacks, dtype)
        self.loss = loss

    _score_fn = staticmethod(r2_score)

    def _out_activation(self) -> str:
        return "exp" if self.loss == "poisson" else "identity"

    def _validate_input(self, X, y, incremental, reset, classes=None):
        X, y = _validate(self, X, y, multi_output=True, y_numeric=True,
                         dtype=self._float_dtype(), reset=reset, accept_sparse="csr")
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if reset and not incremental:
            check_trainable(X.shape[0])
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError("loss='poisson' needs y >= 0; got a minimum of "
                             f"{np.min(y)}")
        self._y_1d = y.ndim == 1
        y2 = y.reshape(-1, 1) if y.ndim == 1 else y
        return X, y2.astype(X.dtype, copy=False), y2

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> "MLPRegressor":
        """Fit the network to X and targets y (n_samples,) or (n_samples, n_outputs); returns self.

        Example: ``nl.MLPRegressor(max_iter=100).fit(X, y)``
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> "MLPRegressor":
        """One epoch over X, y, continuing from the current weights.

        Example: ``reg.partial_fit(X_batch, y_batch)``
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets, (n_samples,) or (n_samples, n_outputs). Example: ``reg.predict(X[:5])``"""
        if "model_" not in self.__dict__:  # NOTE: sklearn's check_is_fitted is slow per call
            check_is_fitted(self)
        X = self._validate_predict(X)
        out = self._output(X)
        return out.ravel() if self._y_1d else out
