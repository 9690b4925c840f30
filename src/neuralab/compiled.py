"""A captured training step: the ops of one MLP step, recorded once and replayed on fixed buffers.

The eager engine (``tensor.py``) builds a graph of Python objects for every mini-batch and
allocates every intermediate array afresh. For small nets (digits, 20 thin layers) that
bookkeeping costs more than the arithmetic. When a model is a plain chain of ``Linear``
layers and ReLUs trained with softmax cross-entropy, the whole step is known in advance:

    forward   z_i = a_{i-1} @ W_i.T + b_i,  a_i = max(z_i, 0)       (per layer)
    loss      -mean log_softmax(z_L)[y]
    backward  d_L = (softmax(z_L) - onehot(y)) / n
              grad W_i = d_i.T @ a_{i-1},  grad b_i = sum(d_i),  d_{i-1} = (d_i @ W_i) * (z_{i-1} > 0)

``capture_train_step`` recognises such a model and returns a step that does exactly these
NumPy calls, in the eager engine's order, writing into buffers allocated once per batch
shape (and into each parameter's ``grad``), so the gradients equal the eager ones bit for
bit (``tests/test_compiled.py``). The optimizer step is the optimizer's own. Anything else
(dropout, batch norm, another loss, sample weights, a GPU array) returns None, and ``fit``
uses the eager step.

Example:
    >>> step = capture_train_step(model, "cross_entropy", opt)   # None if not capturable
    >>> loss, logits = step(xb, yb, None)
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from .tensor import Tensor

__all__ = ["CapturedMLP", "capture_train_step", "blas_threads_for", "BlasThreadPolicy", "inference_layers",
           "forward_layers", "no_grad_forward"]


def _chain(model: Any) -> list | None:
    """The model as a flat list of ("linear", module) / ("relu", None), or None if it is not
    a plain chain the captured step knows."""
    from .nn.activation import ReLU
    from .nn.container import Sequential
    from .nn.layers import Dropout, Identity, Linear
    from .nn.module import Module

    out: list = []

    def walk(m: Any) -> bool:
        kind = type(m)
        if kind is Linear or (isinstance(m, Linear) and kind.forward is Linear.forward):
            out.append(("linear", m))
            return True
        if kind is ReLU:
            out.append(("relu", None))
            return True
        if kind is Identity or (kind is Dropout and (m.p == 0 or not m.training)):
            return True
        if isinstance(m, Sequential) and kind.forward is Sequential.forward:
            return all(walk(c) for c in vars(m).values() if isinstance(c, Module))
        return False

    if not walk(model):
        return None
    # the chain must be: linear, then optionally relu, repeated; no relu before a linear
    if not out or out[0][0] != "linear" or out[-1][0] != "linear":
        return None
    for a, b in zip(out, out[1:]):
        if a[0] == "relu" and b[0] == "relu":
            return None
    return out


class CapturedMLP:
    """The forward and backward of a Linear/ReLU chain under softmax cross-entropy, replayed
    on buffers preallocated per batch size.

    ``forward_backward(xb, yb)`` fills every parameter's ``grad`` (as ``loss.backward()``
    after ``zero_grad()`` would) and returns the mean loss; the logits stay in ``logits``.

    Example:
        >>> cap = CapturedMLP.from_model(model)
        >>> loss = cap.forward_backward(xb, yb); opt.step()
    """

    def __init__(self, layers: list[tuple[Any, Any, bool]], loss: str = "cross_entropy") -> None:
        self.layers = layers  # (weight Parameter, bias Parameter or None, relu after it)
        self.loss = loss  # "cross_entropy" (mean), or "bce_sum": sum of BCE-with-logits * scale
        self.dtype = layers[0][0].data.dtype
        self._bufs: dict[int, dict[str, list]] = {}
        self.logits: Any = None

    @classmethod
    def from_model(cls, model: Any, loss: str = "cross_entropy") -> "CapturedMLP | None":
        """Capture ``model`` if it is a Linear/ReLU chain of NumPy float parameters, else None.

        ``loss``: "cross_entropy" (class indices, mean) or "bce_sum" (the sum of binary
        cross-entropy with logits over float targets shaped like the output, times ``scale``).
        """
        layers = inference_layers(model)
        if layers is None:
            return None
        params = [t for w, b, _ in layers for t in (w, b) if t is not None]
        dtype = params[0].data.dtype
        if any(type(p.data) is not np.ndarray or p.data.dtype != dtype or dtype.kind != "f"
               or not p.data.flags.c_contiguous for p in params):
            return None
        if {id(p) for p in model.parameters()} != {id(p) for p in params}:
            return None  # parameters the chain does not use (e.g. frozen extras): stay eager
        return cls(layers, loss)

    def _buffers(self, m: int) -> dict[str, list]:
        bufs = self._bufs.get(m)
        if bufs is None:
            e = np.empty
            dt = self.dtype
            bufs = {
                "z": [e((m, w.data.shape[0]), dt) for w, _, _ in self.layers],
                "mask": [e((m, w.data.shape[0]), bool) if r else None for w, _, r in self.layers],
                "d": [e((m, w.data.shape[1]), dt) for w, _, _ in self.layers],
                "rows": [np.arange(m)],
                # the softmax cross-entropy's log-probabilities and gradient, and its 1/n
                "logp": e((m, self.layers[-1][0].data.shape[0]), dt),
                "p": e((m, self.layers[-1][0].data.shape[0]), dt),
                "scale": np.ones((), dt) / m,
            }
            if len(self._bufs) > 4:  # many batch sizes (batches of any length): keep it bounded
                self._bufs.clear()
            self._bufs[m] = bufs
        return bufs

    @staticmethod
    def _grad_buffer(p: Any) -> Any:
        g = p.grad
        if g is None or g.shape != p.data.shape or g.dtype != p.data.dtype or g.base is not None:
            g = np.empty_like(p.data)
        return g

    def forward_backward(self, xb: Any, yb: Any, scale: float = 1.0) -> float:
        """Forward, loss and backward on one batch; grads into ``p.grad``; returns the loss."""
        m = xb.shape[0]
        bufs = self._buffers(m)
        zs, masks, ds = bufs["z"], bufs["mask"], bufs["d"]
        if xb.dtype != self.dtype:
            xb = xb.astype(self.dtype)
        if xb.shape[1] != self.layers[0][0].data.shape[1]:
            raise ValueError(f"linear: input has {xb.shape[1]} features (shape {xb.shape}) but "
                             f"the weight expects {self.layers[0][0].data.shape[1]}")
        # ---- forward: the same calls as functions.Linear and functions.ReLU
        a = xb
        acts = []
        for (w, b, relu), z, mask in zip(self.layers, zs, masks):
            acts.append(a)
            np.matmul(a, w.data.T, out=z)
            if b is not None:
                z += b.data
            if relu:
                np.greater(z, 0, out=mask)
                np.maximum(z, 0, out=z)  # NOTE: in place: the pre-activation is not needed again
            a = z
        z = zs[-1]
        self.logits = z
        if self.loss == "bce_sum":
            value, g = self._bce_sum(z, yb, scale)
            self._backward(g, acts, masks, ds)
            return value
        # ---- softmax cross-entropy, as functions.CrossEntropy with class indices
        n, c = z.shape
        t = np.asarray(yb)
        if t.shape != (n,) or t.dtype.kind not in "iu":
            raise ValueError(f"cross_entropy: class targets must have shape ({n},), got {t.shape}")
        # NOTE: the reductions are called as ufunc.reduce, which is what ndarray.min/max/sum
        # run (the same bits as functions.CrossEntropy), without their Python wrappers, and the
        # softmax's arrays are this batch size's buffers: about 15 us less a step.
        if n and (np.minimum.reduce(t) < 0 or np.maximum.reduce(t) >= c):
            raise ValueError(f"cross_entropy: class targets must lie in [0, {c - 1}], "
                             f"got values from {t.min()} to {t.max()}")
        rows = bufs["rows"][0]
        logp, p = bufs["logp"], bufs["p"]
        np.subtract(z, np.maximum.reduce(z, axis=1, keepdims=True), out=logp)
        np.exp(logp, out=p)
        logp -= np.log(np.add.reduce(p, axis=1, keepdims=True))
        loss = -logp[rows, t]
        value = np.add.reduce(loss) / n
        # gradient (softmax - onehot) / n, written over p
        np.exp(logp, out=p)
        p[rows, t] -= 1.0
        p *= bufs["scale"]
        self._backward(p, acts, masks, ds)
        return float(value)

    @staticmethod
    def _bce_sum(z: Any, yb: Any, scale: float) -> tuple[float, Any]:
        """functional.binary_cross_entropy_with_logits(z, t, reduction="sum") * scale, and its
        gradient: the eager op's own forward and backward on raw arrays, so the same bits."""
        from .functions import BCEWithLogits
        bce = BCEWithLogits()
        total = np.asarray(bce.forward(z, np.asarray(yb), reduction="sum"))
        c = np.asarray(scale, dtype=z.dtype)
        return float(total * c), bce.backward(np.ones((), z.dtype) * c)[0]

    def _backward(self, g: Any, acts: list, masks: list, ds: list) -> None:
        """Backward through the chain, last layer first, from the logits' gradient ``g``."""
        for i in range(len(self.layers) - 1, -1, -1):
            w, b, _ = self.layers[i]
            gw = self._grad_buffer(w)
            np.matmul(g.T, acts[i], out=gw)
            w.grad = gw
            if b is not None:
                gb = self._grad_buffer(b)
                # NOTE: add.reduce is what ndarray.sum runs (same bits as the eager Linear), without
                # np.sum's Python wrapper: ~4 us less per layer, 6% of a deep-net step
                np.add.reduce(g, axis=0, out=gb)
                b.grad = gb
            if i:
                d = ds[i]
                np.matmul(g, w.data, out=d)
                prev_mask = masks[i - 1]
                if prev_mask is not None:
                    np.multiply(d, prev_mask, out=d)
                g = d


def inference_layers(model: Any) -> list | None:
    """``[(weight, bias, relu_after), ...]`` for a Linear/ReLU chain with NumPy parameters,
    else None. Used for predictions without building Tensors (see ``forward_layers``).

    Example: ``layers = inference_layers(model); out = forward_layers(layers, X)``
    """
    chain = _chain(model)
    if chain is None:
        return None
    layers = []
    for i, (kind, m) in enumerate(chain):
        if kind == "linear":
            if type(m.weight.data) is not np.ndarray:
                return None
            layers.append((m.weight, m.bias, i + 1 < len(chain) and chain[i + 1][0] == "relu"))
    return layers


def forward_layers(layers: list, X: np.ndarray) -> np.ndarray:
    """The chain's output for X: the eager forward's NumPy calls without the graph.

    NOTE: a single-row prediction through Modules and Functions spends more time in Python
    than in the three matmuls; this is the same arithmetic, bit for bit, at NumPy's speed.
    """
    for w, b, relu in layers:
        X = X @ w.data.T
        if b is not None:
            X += b.data
        if relu:
            np.maximum(X, 0, out=X)
    return X


_CLASSES: tuple = ()  # (nn.Linear, nn.ReLU, nn.Module), imported on first use (nn imports this module)


def no_grad_forward(children: Any, x: Any) -> Any:
    """The output Tensor of ``children`` (a flat Linear/ReLU chain; non-Module values are
    skipped) applied to Tensor ``x`` as raw NumPy calls, or None when the chain is anything
    else (then the caller runs the eager modules, which also raise the usual errors). Only
    for use under ``no_grad``.

    NOTE: ``Sequential.forward`` calls this under ``no_grad``: one row through the mnist net
    spent half its time in module and op dispatch; the arithmetic is the eager one, bit for bit.
    Nothing is cached, so a changed model is always run as it is now.

    Example: ``with nl.no_grad(): out = no_grad_forward(list(model), nl.tensor(X))``
    """
    global _CLASSES
    if not _CLASSES:
        from .nn.activation import ReLU
        from .nn.layers import Linear
        from .nn.module import Module
        _CLASSES = (Linear, ReLU, Module)
    linear, relu, module = _CLASSES
    X = x.data
    if type(X) is not np.ndarray or X.ndim == 0:
        return None
    layers: list = []  # [weight, bias, relu_after]
    for m in children:
        kind = type(m)
        if kind is linear:
            layers.append([m.weight, m.bias, False])
        elif kind is relu and layers and not layers[-1][2]:
            layers[-1][2] = True
        elif isinstance(m, module):
            return None
    if not layers:
        return None
    try:
        return Tensor._make(forward_layers(layers, X), False)
    except (ValueError, TypeError):  # wrong shapes or a GPU weight: the eager path explains
        return None


def capture_train_step(model: Any, loss_name: str | None, optimizer: Any, l1: float = 0.0,
                       l2: float = 0.0, fallback: Any = None) -> Any:
    """A ``train_step(xb, yb, wb) -> (loss, logits)`` replaying a captured MLP step, or None.

    Captures only what it can reproduce exactly: a Linear/ReLU chain, loss "cross_entropy"
    with integer labels, no l1/l2 penalty. Batches with sample weights go to ``fallback``
    (the eager step). Set ``NEURALAB_EAGER=1`` to turn capturing off.

    Example: ``step = capture_train_step(model, "cross_entropy", opt, fallback=eager_step)``
    """
    import os
    if os.environ.get("NEURALAB_EAGER") or loss_name != "cross_entropy" or l1 or l2:
        return None
    cap = CapturedMLP.from_model(model)
    if cap is None:
        return None

    def train_step(xb: Any, yb: Any, wb: Any) -> tuple[float, Any]:
        if wb is not None or type(xb) is not np.ndarray or getattr(yb, "dtype", np.float32).kind not in "iu":
            return fallback(xb, yb, wb)
        value = cap.forward_backward(xb, yb)
        optimizer.step()
        return value, cap.logits

    train_step.captured = cap
    return train_step


_RECENT_CHOICES: dict = {}  # (flops, threads) -> (time of the trial, chosen thread count)
_BLAS_LIBS: dict = {}  # number of loaded shared libraries -> threadpoolctl's BLAS controllers


def _blas_libs() -> list:
    """threadpoolctl's controllers of the loaded BLAS libraries (looked up again only when
    new libraries were loaded: scanning them costs milliseconds)."""
    import sys
    key = len(sys.modules)
    if key not in _BLAS_LIBS:
        try:
            from threadpoolctl import ThreadpoolController
            _BLAS_LIBS.clear()
            _BLAS_LIBS[key] = ThreadpoolController().select(user_api="blas").lib_controllers
        except (ImportError, AttributeError):  # pragma: no cover - optional
            _BLAS_LIBS[key] = []
    return _BLAS_LIBS[key]


class BlasThreadPolicy:
    """How many BLAS threads a training run uses: a context manager that restores them.

    Small matmuls (under 4 MFLOP) always run on one thread. For larger ones, ``wrap(step)``
    times a few steps on one thread and a few on all of them, and keeps the faster.

    NOTE: waking a second OpenBLAS thread costs more than it saves on small matmuls, and on
    a busy machine it can cost far more than the work: a digits epoch took 1.4 s with 2
    threads vs 30 ms with 1, and an mnist one 5x longer, on this shared 2-core box. On a quiet
    machine 2 threads win for mnist-sized layers; measuring decides, per run.

    Example:
        >>> with blas_threads_for(model, 128) as policy:
        ...     step = policy.wrap(step)
    """

    trial_steps = 6  # steps timed per thread count (after one warm-up each)
    small_flops = 4e6  # below this a step's matmuls always run on one thread
    remember_s = 60.0  # a choice is reused by runs starting within this many seconds

    def __init__(self, model: Any = None, batch_size: int = 0, flops: int | None = None) -> None:
        if flops is None:
            sizes = ([p.data.size for p in model.parameters() if p.ndim >= 2]
                     if hasattr(model, "parameters") else [])
            flops = int(batch_size) * max(sizes) if sizes else 0
        self.flops = int(flops)  # multiply-adds of the largest matmul of a step
        self._libs: list = []
        self._orig: list = []
        self._all_libs: list = []
        self._whole: bool | None = None

    def _set(self, n: int) -> None:
        for lib in self._libs:
            lib.set_num_threads(n)

    def __enter__(self) -> "BlasThreadPolicy":
        if self.flops:
            from .optim import optimizer
            if optimizer._AXPY is None:
                optimizer._load_blas()  # SciPy's BLAS too must be among the libraries below
            self._libs = _blas_libs()
        self._all_libs = list(self._libs)
        self._orig = [lib.num_threads for lib in self._libs]
        self.max_threads = max(self._orig, default=1)
        # NOTE: the optimizers' axpy comes from SciPy's own OpenBLAS (pip wheels ship one in
        # scipy.libs, apart from NumPy's). Held at one thread, it can take whole arrays: no
        # Python loop over 10,000-value slices (see optim.optimizer.axpy), 1.9x faster for
        # SGD on the wide net, and its idle threads never spin against NumPy's GEMMs.
        axpy_libs = [lib for lib in self._libs
                     if os.path.basename(os.path.dirname(lib.filepath)).startswith("scipy")]
        if axpy_libs and len(axpy_libs) < len(self._libs):
            from .optim.optimizer import whole_axpy
            for lib in axpy_libs:
                lib.set_num_threads(1)
            self._libs = [lib for lib in self._libs if lib not in axpy_libs]
            self._whole = whole_axpy(True)
        if self.flops and self.flops < self.small_flops:
            self._set(1)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._whole is not None:
            from .optim.optimizer import whole_axpy
            whole_axpy(self._whole)
            self._whole = None
        for lib, n in zip(self._all_libs, self._orig):
            lib.set_num_threads(n)

    def wrap(self, step: Any) -> Any:
        """``step`` timed on 1 and on all threads for its first calls, then the faster kept."""
        if self.flops < self.small_flops or self.max_threads <= 1 or not self._libs:
            return step
        import time
        plan = [1] * (self.trial_steps + 1) + [self.max_threads] * (self.trial_steps + 1)
        times: dict[int, list] = {1: [], self.max_threads: []}
        state = {"i": 0, "chosen": None}
        key = (self.flops, self.max_threads)
        recent = _RECENT_CHOICES.get(key)
        if recent is not None and time.monotonic() - recent[0] < self.remember_s:
            state["chosen"] = recent[1]  # fit called epoch by epoch: do not re-time every call
            self._set(recent[1])

        def tuned(*args: Any, **kwargs: Any) -> Any:
            if state["chosen"] is not None:
                return step(*args, **kwargs)
            i = state["i"]
            n = plan[i]
            if i == 0 or plan[i - 1] != n:
                self._set(n)
            t = time.perf_counter()
            out = step(*args, **kwargs)
            if i and plan[i - 1] == n:  # the first call on a new count is a warm-up
                times[n].append(time.perf_counter() - t)
            state["i"] = i + 1
            if state["i"] == len(plan):
                best = min(times, key=lambda k: sorted(times[k])[len(times[k]) // 2])
                state["chosen"] = best
                _RECENT_CHOICES[key] = (time.monotonic(), best)
                self._set(best)
            return out

        tuned.policy = self
        tuned.chosen = state
        return tuned


def blas_threads_for(model: Any, batch_size: int) -> BlasThreadPolicy:
    """The BLAS thread policy for training ``model`` with this batch size (see BlasThreadPolicy).

    Example: ``with blas_threads_for(model, 128) as policy: step = policy.wrap(step)``
    """
    return BlasThreadPolicy(model, batch_size)
