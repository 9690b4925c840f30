"""The training loop: ``fit``, ``evaluate`` and ``predict``.

Training a network is four lines repeated for every mini-batch (see ``make_train_step``):

    out = model(x)            # forward: the graph of ops is recorded
    loss = loss_fn(out, y)    # one number saying how wrong the outputs are
    loss.backward()           # backpropagation: every parameter's gradient
    optimizer.step()          # move each parameter a little against its gradient

Everything else here is bookkeeping around those lines: checking the data once,
cutting it into shuffled mini-batches, measuring the validation data after each epoch
(in eval mode and without recording a graph), and telling the callbacks.

Example:
    >>> model = nn.MLP(64, hidden=(128,), out_features=10)
    >>> hist = nl.fit(model, X, y, epochs=20, batch_size=64, validation_split=0.1,
    ...               metrics=["accuracy"], seed=0)
    >>> nl.evaluate(model, X_test, y_test, metrics=["accuracy"])
    {'loss': ..., 'accuracy': 0.9...}
"""
from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from .. import backend, kernels
from .. import functional as F
from .. import optim
from ..callbacks.base import Callback, CallbackList, History, get_lr, set_lr
from ..callbacks.stock import ProgressBar, _EpochPrinter
from ..data import (BatchIterable, Batches, as_features, as_targets, batch_rows, check_finite,
                    n_rows, train_val_split)
from ..functions import is_sparse
from ..metrics import Metric, get_metric
from ..tensor import Tensor, no_grad

__all__ = ["fit", "evaluate", "predict", "make_train_step", "penalty"]

LossFn = Callable[[Tensor, Tensor, Any], Tensor]

_CLASSIFICATION_LOSSES = {"cross_entropy", "log_loss"}
_BINARY_LOSSES = {"bce", "binary_cross_entropy_with_logits"}


# ============================================================================ one training step
def penalty(params: Sequence[Tensor], l1: float = 0.0, l2: float = 0.0) -> Tensor:
    """The regularisation term l1 * sum|w| + l2/2 * sum(w**2) over ``params``.

    With the 1/2, the L2 term adds exactly ``l2 * w`` to each gradient: weight decay.
    Example: ``loss = loss + penalty([m.weight for m in linears], l2=1e-4)``
    """
    total = None
    for p in params:
        term = 0.0
        if l1:
            term = p.abs().sum() * l1
        if l2:
            term = term + (p * p).sum() * (0.5 * l2)
        total = term if total is None else total + term
    return total


def make_train_step(model: Any, loss_fn: LossFn, optimizer: Any, l1: float = 0.0,
                    l2: float = 0.0, loss_name: str | None = None
                    ) -> Callable[[Any, Any, Any], tuple[float, Any]]:
    """Build the function that does one optimisation step on one mini-batch.

    The returned ``train_step(xb, yb, wb) -> (loss value, model outputs)`` is the whole of
    learning; ``fit`` only calls it in a loop. It is kept separate so that a faster step
    (captured or fused for a particular model) can replace it without touching ``fit``.
    Gradients are left in ``p.grad`` after the step, for callbacks such as GradientMonitor.
    With ``loss_name="cross_entropy"`` a plain Linear/ReLU chain gets the captured step of
    ``training.captured`` (same gradients; set NEURALAB_EAGER=1 to compare with the eager one).

    Example:
        >>> step = make_train_step(model, lambda out, y, w: F.cross_entropy(out, y), opt)
        >>> loss, logits = step(X[:32], y[:32], None)
    """
    # Penalise weights only (matrices), not biases or normalisation scales, as sklearn's alpha.
    penalised = [p for p in model.parameters() if p.ndim >= 2] if (l1 or l2) else []

    def train_step(xb: Any, yb: Any, wb: Any) -> tuple[float, Any]:
        optimizer.zero_grad()
        out = model(model_input(xb))                 # forward
        loss = loss_fn(out, Tensor(yb), wb)          # how wrong
        if penalised:
            loss = loss + penalty(penalised, l1, l2)
        loss.backward()                              # gradients of every parameter
        optimizer.step()                             # update the parameters in place
        return loss.item(), out.data

    # NOTE: a Linear/ReLU chain under cross-entropy (``loss_name``) replays a captured step
    # (training/captured.py): no graph, no per-step allocations, the same gradients bit for bit.
    from .captured import capture_train_step  # noqa: PLC0415
    return capture_train_step(model, loss_name, optimizer, l1, l2, fallback=train_step) or train_step


def model_input(xb: Any) -> Any:
    """A batch as a model takes it: a Tensor, or a SciPy sparse batch as it is (``nn.Linear``
    multiplies its rows sparse x dense; a Tensor cannot hold a sparse matrix).

    Example: ``out = model(model_input(X[:32]))``
    """
    return xb if is_sparse(xb) else Tensor(xb)


# ============================================================================ setup helpers
def _loss_name(loss: Any) -> str | None:
    if isinstance(loss, str):
        return loss.lower()
    for name, fn in F.LOSSES.items():
        if loss is fn:
            return name
    return None


def _make_loss_fn(loss: Any) -> LossFn:
    """Wrap a loss name or function as ``fn(out, y, sample_weight) -> scalar Tensor``."""
    fn = F.get_loss(loss.lower()) if isinstance(loss, str) else loss
    if not callable(fn):
        raise TypeError(f"loss must be a name or a function f(output, target), got {type(loss).__name__}")
    builtin = fn in F.LOSSES.values()

    def loss_fn(out: Tensor, y: Tensor, w: Any) -> Tensor:
        # One output column against 1-D targets: compare (N, 1) with (N, 1), not a broadcast (N, N).
        if out.ndim == 2 and out.shape[1] == 1 and y.ndim == 1 and y.dtype.kind == "f":
            y = y.reshape((-1, 1))
        if w is None:
            return fn(out, y)
        if not builtin:
            raise ValueError("sample_weight needs a built-in loss, or a loss function that takes "
                             "sample_weight= itself")
        return fn(out, y, sample_weight=w)

    return loss_fn


def _task(loss: Any, y: Any) -> str:
    name = _loss_name(loss)
    if name in _CLASSIFICATION_LOSSES:
        return "classification"
    if name is None and y is not None:  # a user's loss: keep integer labels as they are
        kind = backend.xp_of(y).asarray(y).dtype.kind
        if kind in "iub" and np.ndim(y) == 1:
            return "classification"
    return "regression"


def make_optimizer(model: Any, optimizer: Any, lr: float | None = None) -> Any:
    """The optimizer ``fit`` uses: ``optim.get(name, ...)`` for a name, else ``optimizer`` itself
    (its learning rate set to ``lr`` when given).

    Example: ``opt = make_optimizer(model, "adam", lr=1e-3)``
    """
    if isinstance(optimizer, str):
        return optim.get(optimizer, model.parameters(), **({} if lr is None else {"lr": lr}))
    if not hasattr(optimizer, "step") or not hasattr(optimizer, "zero_grad"):
        raise TypeError(f"optimizer must be a name or an object with step() and zero_grad(), "
                        f"got {type(optimizer).__name__}")
    if lr is not None:
        set_lr(optimizer, lr)
    return optimizer


def _prepare(X: Any, y: Any, task: str, sample_weight: Any = None, device: str = "cpu",
             name: str = "X", dtype: Any = None) -> tuple[Any, Any, Any]:
    """Check and cast arrays once (to ``dtype``, float32 unless told); move them to the device once."""
    X = as_features(X, dtype=dtype, name=name)
    if is_sparse(X) and device != "cpu":
        raise ValueError(f"{name} is a sparse matrix, which trains on the CPU only; use "
                         f"device='cpu', or {name}.toarray() if it fits in the GPU's memory")
    if n_rows(X) == 0:
        raise ValueError(f"{name} is empty (0 samples); there is nothing to train on or measure")
    check_finite(X, name)
    y = as_targets(y, n_rows(X), task, name="y" if name == "X" else name.replace("X", "y"), dtype=dtype)
    if sample_weight is not None:
        w = np.asarray(backend.to_numpy(sample_weight), dtype=X.dtype)
        if w.shape != (n_rows(X),):
            raise ValueError(f"sample_weight must have shape ({n_rows(X)},), got {w.shape}")
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError("sample_weight must be finite and non-negative")
        sample_weight = w
    if device != "cpu" and not isinstance(X, np.memmap):
        X, y = backend.to_device(X, device), backend.to_device(y, device)
        if sample_weight is not None:
            sample_weight = backend.to_device(sample_weight, device)
    return X, y, sample_weight


def _check_outputs(model: Any, X: Any, y: Any, task: str, loss_name: str | None) -> None:
    """Run two rows through the model so that a shape mismatch is reported in words."""
    with _evaluating(model):
        out = model(model_input(np.ascontiguousarray(X[:2]) if isinstance(X, np.memmap) else X[:2]))
    shape = tuple(out.shape)
    if task == "classification" and loss_name is not None:
        if len(shape) != 2 or shape[1] < 2:
            raise ValueError(f"loss {loss_name!r} needs one output per class, but the model "
                             f"outputs shape {shape}; for two classes with one output use loss='bce'")
        top = int(backend.to_numpy(y).max()) if len(y) else 0
        if top >= shape[1]:
            raise ValueError(f"y has class label {top} but the model has only {shape[1]} outputs "
                             f"(labels must be 0..{shape[1] - 1})")
    elif task == "regression":
        out_row, y_row = shape[1:], tuple(y.shape[1:])
        # 1-D targets go with one output per sample, (N,) or (N, 1); otherwise shapes must match.
        if not (y_row == out_row or (y_row == () and out_row in ((), (1,)))):
            raise ValueError(f"the model outputs shape {out_row} per sample but y has "
                             f"{y_row or '(1,)'}; they must match")


# Guards the few lines that switch a model to eval mode and back (see ``_evaluating``).
_MODE_LOCK = threading.Lock()


@contextlib.contextmanager
def _evaluating(model: Any) -> Iterator[None]:
    """Eval mode (dropout off, batch norm on running stats) and no graph; restore afterwards.

    Threads predicting with one model share one eval period: the first to enter switches the
    model to eval and remembers its mode, the last to leave restores it, both under a lock.
    Without that, a thread entering while another is inside saw "eval" as the mode to restore,
    and a model in train mode could be left in eval mode.
    """
    if not (hasattr(model, "eval") and hasattr(model, "train")):
        with no_grad():
            yield
        return
    with _MODE_LOCK:
        depth = getattr(model, "_evaluating_depth", 0)
        if depth == 0:
            model._evaluating_restore = bool(getattr(model, "training", False))
            model.eval()
        model._evaluating_depth = depth + 1
    try:
        with no_grad():
            yield
    finally:
        with _MODE_LOCK:
            model._evaluating_depth -= 1
            if model._evaluating_depth == 0:
                was_training = model._evaluating_restore
                del model._evaluating_depth, model._evaluating_restore
                model.train(was_training)


def _float_dtype_of(params: Sequence[Any]) -> Any:
    """The float dtype of the model's parameters (data are cast to it), or None (float32)."""
    dt = getattr(params[0], "dtype", None) if params else None
    return dt if dt is not None and np.dtype(dt).kind == "f" else None


def _device_of(model: Any, device: str | None, params: Sequence[Any] | None = None) -> str:
    if device is not None:
        device = backend.normalize_device(device)
        model.to(device)
        return device
    if params is None:
        params = model.parameters() if hasattr(model, "parameters") else []
    return backend.device_of(params[0].data) if params else "cpu"


@dataclass
class TrainingRun:
    """The state of a running ``fit`` that callbacks can see and change.

    Example: a callback calls ``self.run.stop_training = True`` to stop.
    """

    model: Any
    optimizer: Any
    params: dict = field(default_factory=dict)
    epoch: int = 0
    stop_training: bool = False
    blas_threads: int | None = None  # the BLAS thread count of the run's matmuls (fit's blas_threads)


# ============================================================================ fit
def fit(model: Any, X: Any, y: Any = None, *, loss: str | Callable = "cross_entropy",
        optimizer: Any = "adam", lr: float | None = None, epochs: int = 10, batch_size: int = 32,
        validation_data: tuple | None = None, validation_split: float = 0.0,
        metrics: Sequence[str | Callable | Metric] | None = None,
        callbacks: Sequence[Callback] | None = None, shuffle: bool = True,
        seed: int | np.random.Generator | None = None, verbose: int = 1, l1: float = 0.0,
        l2: float = 0.0, sample_weight: Any = None, device: str | None = None,
        drop_last: bool = False, comm: Any = None, blas_threads: int | None = None,
        train_step: Callable[[Any, Any, Any], tuple[float, Any]] | None = None) -> History:
    """Train ``model`` on (X, y) with mini-batch gradient descent and return its History.

    Args:
        model: a Module (any callable with ``parameters()``, ``train()`` and ``eval()``).
        X: features (N, ...): array, memory-mapped array, or (with ``y=None``) a list of
            (X, y) batches or a function returning an iterator of them (one call per epoch).
        y: targets: class labels 0..C-1 for "cross_entropy", values for regression losses.
        loss: "cross_entropy", "bce", "mse", "l1"/"mae", "huber", or ``f(output, target)``.
        optimizer: an optim optimizer, or a name ("adam", "adamw", "sgd", "rmsprop", "adagrad").
        lr: learning rate (sets it on a given optimizer too); the optimizer's default if None.
        epochs: passes over the training data.
        batch_size: samples per gradient step.
        validation_data: (X_val, y_val) measured after every epoch.
        validation_split: or hold out this fraction of (X, y), seeded, for validation.
        metrics: names ("accuracy", "mse", "mae", "r2"), functions f(y_true, y_pred) or Metrics.
            Training values are running averages over the epoch's batches (as Keras).
        callbacks: Callback objects (EarlyStopping, ModelCheckpoint, ...).
        shuffle: visit the training samples in a new order each epoch.
        seed: int or numpy Generator for shuffling and the validation split (None: fresh).
        verbose: 0 silent, 1 progress bar (only on a terminal), 2 one line per epoch.
        l1, l2: penalties ``l1 * sum|w| + l2/2 * sum(w**2)`` on weight matrices.
        sample_weight: per-sample weights (N,) for the loss and the training metrics.
        device: "cpu" or "cuda"; the model and the data are moved there once.
        drop_last: skip each epoch's last batch when it is smaller than ``batch_size`` (as
            PyTorch's ``drop_last=True``): batch norm on a batch of a few rows is unstable.
            Those rows still take part in other epochs when ``shuffle`` is on.
        comm: an MPI communicator (``mpi4py.MPI.COMM_WORLD``) for data-parallel training:
            every rank passes its own shard of (X, y), each step averages the gradients of
            all ranks' batches (a global batch of ranks x batch_size); see
            ``neuralab.distributed`` and docs/distributed.md.
        blas_threads: BLAS threads for the matmuls; None chooses from the layer sizes and the
            cores (the same choice for the same model, batch size and machine). A run
            resumed with the count it started with (``run.blas_threads``) rounds alike.
        train_step: your own ``train_step(xb, yb, wb) -> (loss value, outputs)`` in place of
            ``make_train_step``'s (see there): forward, loss, backward and ``optimizer.step()``
            of one batch, e.g. with a loss the built-in ones do not cover. ``loss`` then only
            names the task (how y is checked) and measures ``validation_data``; ``l1``/``l2``
            are yours to add. Not with ``comm``. The loss value it returns is what ``on_batch_end`` and the
            epoch's ``loss`` see; ``outputs`` feed the training metrics. With arrays X and y,
            batches are cast as without it; with batches (``y=None``), each one reaches
            ``train_step`` exactly as given, not cast, checked or moved to ``device``: integer
            ids, a tuple ``(users, items)`` as xb (its first array counts the rows) or a
            ``yb`` of None.

    Returns:
        History, whose ``history`` dict holds per-epoch lists: ``loss``, each metric,
        ``val_loss`` and ``val_<metric>`` when there is validation data, and ``lr``.
        The model is left in eval mode, ready to predict.

    While it trains, this thread flushes denormal floats (below 1.2e-38 in float32) to zero,
    as TensorFlow and JAX do, because the CPU computes them many times slower; set
    NEURALAB_KEEP_DENORMALS=1 to keep them (see ``backend.flush_denormals``).

    Example:
        >>> hist = nl.fit(model, X, y, epochs=20, validation_split=0.1, metrics=["accuracy"],
        ...               callbacks=[nl.callbacks.EarlyStopping(patience=3)], seed=0)
        >>> hist.history["val_accuracy"][-1] > 0.9
        True
    """
    if comm is not None and not getattr(comm, "guarding", False):
        # data-parallel: the same fit on every rank, guarded so that an error on one rank
        # ends them all (instead of leaving the others waiting for its gradients)
        args = dict(locals())
        from ..distributed import fit_on_ranks  # noqa: PLC0415
        return fit_on_ranks(fit, comm, args)
    dist = comm  # None, or the distributed.DataParallel that fit_on_ranks made
    if int(epochs) < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    if l1 < 0 or l2 < 0:
        raise ValueError(f"l1 and l2 must be >= 0, got l1={l1}, l2={l2}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    # the parameters, listed once: walking the modules costs about a small step's tenth
    params = model.parameters() if hasattr(model, "parameters") else []
    dev = _device_of(model, device, params)
    dtype = _float_dtype_of(params)  # a float64 model trains on float64 data
    loss_name = _loss_name(loss)
    loss_fn = _make_loss_fn(loss)
    task = _task(loss, y)
    threshold = 0.0 if loss_name in _BINARY_LOSSES else 0.5 if task == "regression" else 0.0

    # ---- data: checked and cast once, split once, then batched by index every epoch
    # (a train_step of one's own gets user batches as given: ids, tuples, y=None)
    raw_batches = y is None and train_step is not None
    if y is None:
        if validation_split:
            raise ValueError("validation_split needs arrays X and y; with batches pass validation_data=")
        if sample_weight is not None:
            raise ValueError("with batches, give sample weights as a third item of each batch")
        if drop_last:
            raise ValueError("drop_last applies to arrays X and y; with batches, leave out the short one")
        train_batches: Any = BatchIterable(X, task, raw=raw_batches)
        steps = len(train_batches) if hasattr(X, "__len__") else None
        n_train = None
    else:
        X, y, sample_weight = _prepare(X, y, task, sample_weight, dev, dtype=dtype)
        if validation_split:
            if validation_data is not None:
                raise ValueError("give validation_data or validation_split, not both")
            X, Xv, y, yv, sample_weight, _ = train_val_split(X, y, sample_weight,
                                                             validation_split=validation_split, seed=rng)
            validation_data = (Xv, yv)
        if train_step is None or validation_data is not None:
            # NOTE: a step of your own computes its own loss, so the outputs' shape matters
            # only to fit's loss on validation data (and two rows through the model cost
            # about half a small batch's step, on every partial_fit of an estimator)
            _check_outputs(model, X, y, task, loss_name)
        train_batches = Batches(X, y, batch_size, shuffle=shuffle, rng=rng, sample_weight=sample_weight,
                                drop_last=drop_last, dtype=dtype)
        steps, n_train = len(train_batches), n_rows(X)
    val = None
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError("validation_data must be a pair (X_val, y_val) or (X_val, y_val, sample_weight)")
        Xv, yv = validation_data[0], validation_data[1]
        wv = validation_data[2] if len(validation_data) == 3 else None
        val = _prepare(Xv, yv, task, wv, dev, name="X_val", dtype=dtype)
    if dist is not None:  # every rank takes the same number of steps, the smallest shard's
        train_batches, steps = dist.agree(train_batches, steps, n_train, val is not None,
                                          epochs, batch_size, dev)

    optimizer = make_optimizer(model, optimizer, lr)
    metric_specs = list(metrics or [])
    train_metrics = [get_metric(m, threshold) for m in metric_specs]  # validation gets fresh ones

    # ---- callbacks: History first, so every other callback sees the same logs it records
    history = History()
    user_callbacks = list(callbacks or [])
    extra: list[Callback] = []
    if verbose == 1 and not any(isinstance(c, ProgressBar) for c in user_callbacks):
        extra.append(ProgressBar())
    elif verbose == 2:
        extra.append(_EpochPrinter())
    run = TrainingRun(model, optimizer, params={
        "epochs": int(epochs), "steps": steps, "batch_size": int(batch_size),
        "samples": n_train, "has_validation": val is not None, "metrics": [m.name for m in train_metrics],
        "ranks": 1 if dist is None else dist.size})
    cbs = CallbackList([history, *user_callbacks, *extra], run)
    if train_step is None:
        step_optimizer = optimizer if dist is None else dist.averaging(optimizer)
        train_step = make_train_step(model, loss_fn, step_optimizer, l1, l2, loss_name=loss_name)
    elif not callable(train_step):
        raise TypeError(f"train_step must be a function train_step(xb, yb, wb) -> (loss, outputs), "
                        f"got {type(train_step).__name__}")
    elif dist is not None:  # its optimizer.step() would not average the ranks' gradients
        raise ValueError("train_step and comm cannot be combined: a step of your own updates "
                         "without averaging the ranks' gradients")
    if dist is not None:
        train_step = dist.counting(train_step)
    from .threads import blas_threads_for  # noqa: PLC0415

    threads = blas_threads_for(model, batch_size, threads=blas_threads)
    run.blas_threads = threads.threads
    cbs.on_train_begin({})
    if dist is not None:  # after on_train_begin, so that rank 0's resumed state wins
        dist.begin(model, optimizer)
    # NOTE: a job of few parameter updates never waits ~0.5 s for numba's import (its
    # kernels would save less); the NumPy reference gives the same bits (neuralab.kernels)
    n_values = sum(p.data.size for p in model.parameters())
    small_job = kernels.deferred(n_values * steps * max(int(epochs), 1) if steps else 0)
    # NOTE: momentum and Adam buffers of weights whose gradient stays zero decay into
    # denormal floats, which the CPU computes far slower; flushing them to zero (as
    # TensorFlow and JAX do) saves much of the optimizer's time (benchmarks/README.md).
    denormals = backend.flush_denormals(not os.environ.get("NEURALAB_KEEP_DENORMALS"))
    on_batch_end = cbs.on_batch_end  # looked up once: CallbackList builds the hook on each lookup
    scope = contextlib.ExitStack()
    try:
        scope.enter_context(small_job)
        scope.enter_context(threads)
        scope.enter_context(denormals)
        for epoch in range(int(epochs)):
            run.epoch = epoch
            cbs.on_epoch_begin(epoch, {})
            lr_now = _current_lr(optimizer)
            model.train()
            for m in train_metrics:
                m.reset()
            total, count = 0.0, 0.0
            batch = -1
            for batch, (xb, yb, wb) in enumerate(train_batches):
                if dev != "cpu" and not raw_batches:
                    xb, yb = backend.to_device(xb, dev), backend.to_device(yb, dev)
                    wb = None if wb is None else backend.to_device(wb, dev)
                loss_value, out = train_step(xb, yb, wb)
                rows = batch_rows(xb) if raw_batches else xb.shape[0]
                size = rows if wb is None else float(wb.sum())
                total += loss_value * size
                count += size
                for m in train_metrics:
                    m.update(out, yb, wb)
                on_batch_end(batch, {"loss": loss_value, "size": rows})
                if dist is not None:
                    run.stop_training = dist.any_rank(run.stop_training)
                if run.stop_training:
                    break
            if not steps and small_job.add(n_values * (batch + 1)):  # batches of unknown number
                threads.__exit__(None, None, None)  # numba may load now: its thread count as
                threads.__enter__()                 # the policy sets it
            if dist is not None:
                total, count = dist.reduce_scores(total, count, train_metrics, model)
            logs = {"loss": total / count if count else float("nan")}
            logs.update({m.name: m.result() for m in train_metrics})
            if val is not None:
                scores = _evaluate(model, *val, loss_fn=loss_fn, metrics=metric_specs,
                                   batch_size=max(int(batch_size), 1024), threshold=threshold,
                                   dist=dist)
                logs.update({f"val_{k}": v for k, v in scores.items()})
            logs["lr"] = lr_now
            cbs.on_epoch_end(epoch, logs)
            if run.stop_training:
                break
    finally:
        scope.close()
        model.eval()
    if dist is not None:
        dist.check_replicas(buffers=True)
    cbs.on_train_end({})
    return history


def _current_lr(optimizer: Any) -> float:
    try:
        return get_lr(optimizer)
    except (AttributeError, KeyError, TypeError):
        return float("nan")


# ============================================================================ evaluate / predict
def _evaluate(model: Any, X: Any, y: Any, w: Any, loss_fn: LossFn | None,
              metrics: Sequence[Any], batch_size: int, threshold: float,
              dist: Any = None) -> dict[str, float]:
    ms = [get_metric(m, threshold) if not isinstance(m, Metric) else m for m in metrics]
    for m in ms:
        m.reset()
    total, count = 0.0, 0.0
    with _evaluating(model):
        for xb, yb, wb in Batches(X, y, batch_size, shuffle=False, sample_weight=w):
            out = model(model_input(xb))
            size = xb.shape[0] if wb is None else float(wb.sum())
            if loss_fn is not None:
                total += float(loss_fn(out, Tensor(yb), wb).item()) * size
                count += size
            for m in ms:
                m.update(out.data, yb, wb)
    if dist is not None:  # every rank's validation shard together
        total, count = dist.reduce_scores(total, count, ms)
    scores = {"loss": total / count} if loss_fn is not None and count else {}
    scores.update({m.name: m.result() for m in ms})
    return scores


def evaluate(model: Any, X: Any, y: Any, loss: str | Callable | None = "cross_entropy",
             metrics: Sequence[str | Callable | Metric] | None = None, batch_size: int = 1024,
             sample_weight: Any = None) -> dict[str, float]:
    """The loss and metrics of ``model`` on (X, y), in eval mode and without a graph.

    Example:
        >>> hist = nl.fit(model, X, y, epochs=20, seed=0)
        >>> nl.evaluate(model, X_test, y_test, metrics=["accuracy"])
        {'loss': ..., 'accuracy': 0.9...}
    """
    loss_name = _loss_name(loss) if loss is not None else None
    task = _task(loss, y) if loss is not None else (
        "classification" if np.asarray(backend.to_numpy(y)).dtype.kind in "iub" else "regression")
    dev = _device_of(model, None)
    X, y, w = _prepare(X, y, task, sample_weight, dev)
    threshold = 0.0 if loss_name in _BINARY_LOSSES else 0.5 if task == "regression" else 0.0
    return _evaluate(model, X, y, w, _make_loss_fn(loss) if loss is not None else None,
                     list(metrics or []), int(batch_size), threshold)


def predict(model: Any, X: Any, batch_size: int = 1024) -> np.ndarray:
    """The model's raw outputs for X as a NumPy array (logits for classifiers), batched.

    Runs in eval mode under ``no_grad`` and restores the model's mode afterwards.
    Example: ``classes = nl.predict(model, X_test).argmax(axis=1)``
    """
    dev = _device_of(model, None)
    X = as_features(X)
    if dev != "cpu" and not isinstance(X, np.memmap) and not is_sparse(X):
        X = backend.to_device(X, dev)
    result = None
    with _evaluating(model):
        start = 0
        for xb, _, _ in Batches(X, None, batch_size, shuffle=False):
            out = backend.to_numpy(model(model_input(xb)).data)
            if result is None:
                result = np.empty((n_rows(X),) + out.shape[1:], dtype=out.dtype)
            result[start:start + len(out)] = out
            start += len(out)
    return result if result is not None else np.empty((0,), dtype=backend.get_default_dtype())
