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
NumPy calls, in the eager engine's order (the bias + ReLU, the ReLU mask and the bias sum
as ``kernels``' fused loops, which give those calls' bits; the softmax cross-entropy as the
kernel the eager ``functions.CrossEntropy`` calls too), writing into buffers allocated
once per batch shape (and into each parameter's ``grad``), so the gradients equal the eager
ones bit for bit (``tests/test_fast_paths.py``). A SciPy sparse batch (CSR rows) is replayed too: its
first product is the eager ``functions.Linear``'s sparse one, ``x @ W.T`` forward and
``(x.T @ d).T`` for the weight's gradient. The optimizer step is the optimizer's own. Anything
else (dropout, batch norm, another loss, sample weights, a GPU array) returns None, and ``fit``
uses the eager step.

Example:
    >>> step = capture_train_step(model, "cross_entropy", opt)   # None if not capturable
    >>> loss, logits = step(xb, yb, None)
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from .. import kernels
from ..functions import is_sparse
from ..kernels import numpy_ref
from ..nn._fast import inference_layers

__all__ = ["CapturedMLP", "capture_train_step"]


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
        # fused kernels take float32/float64; another float dtype runs their NumPy reference
        self._fusable = self.dtype in (np.dtype(np.float32), np.dtype(np.float64))
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
                # no gradient for the data (layer 0's input): a 100000-wide sparse batch
                # would otherwise get a dense (m, 100000) buffer it never uses
                "d": [e((m, w.data.shape[1]), dt) if i else None
                      for i, (w, _, _) in enumerate(self.layers)],
                # the softmax cross-entropy's gradient and per-row losses, and its 1/n
                "p": e((m, self.layers[-1][0].data.shape[0]), dt),
                "losses": e(m, dt),
                "scale": (np.ones((), dt) / m)[()],
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
        zs, ds = bufs["z"], bufs["d"]
        k = kernels.active() if self._fusable else numpy_ref
        if xb.dtype != self.dtype:
            xb = xb.astype(self.dtype)
        if xb.shape[1] != self.layers[0][0].data.shape[1]:
            raise ValueError(f"linear: input has {xb.shape[1]} features (shape {xb.shape}) but "
                             f"the weight expects {self.layers[0][0].data.shape[1]}")
        # ---- forward: the same calls as functions.Linear and functions.ReLU
        a = xb
        acts = []
        for (w, b, relu), z in zip(self.layers, zs):
            acts.append(a)
            # only the data (layer 0's input) can be sparse; SciPy's product has no out=
            if a is xb and is_sparse(a):
                z[...] = a @ w.data.T
            else:
                np.matmul(a, w.data.T, out=z)
            # in place: the pre-activation is not needed again (ReLU's backward masks by its
            # output: a > 0 exactly where z > 0)
            if b is not None and relu:
                k.bias_relu(z, b.data)
            elif b is not None:
                z += b.data
            elif relu:
                np.maximum(z, 0, out=z)
            a = z
        z = zs[-1]
        self.logits = z
        if self.loss == "bce_sum":
            value, g = self._bce_sum(z, yb, scale)
            self._backward(k, g, acts, ds)
            return value
        # ---- softmax cross-entropy, as functions.CrossEntropy with class indices
        n, c = z.shape
        t = np.asarray(yb)
        if t.shape != (n,) or t.dtype.kind not in "iu":
            raise ValueError(f"cross_entropy: class targets must have shape ({n},), got {t.shape}")
        # NOTE: the reductions are called as ufunc.reduce, which is what ndarray.min/max/sum
        # run (the same bits as functions.CrossEntropy), without their Python wrappers, and the
        # softmax's arrays are this batch size's buffers (see benchmarks/README.md).
        if n and (np.minimum.reduce(t) < 0 or np.maximum.reduce(t) >= c):
            raise ValueError(f"cross_entropy: class targets must lie in [0, {c - 1}], "
                             f"got values from {t.min()} to {t.max()}")
        # the forward and backward at once, with the kernel of functions.CrossEntropy's
        # (the eager loss), so both give the same bits; the losses summed afterwards, in
        # one fixed order.
        # NOTE: (128, 10) 20-52 -> 6-9 us, but the GEMMs make the step: mnist 784-256-256-10,
        # batch 128, one thread: 3.4 -> 3.3 ms a step; an epoch of nl.fit (20k rows, Adam)
        # 477/623 -> 487/644 ms in two A/B runs at load 6, i.e. no change one can measure
        p, losses = bufs["p"], bufs["losses"]
        k.softmax_xent(z, t.astype(np.int64, copy=False), bufs["scale"], p, losses)
        value = np.add.reduce(losses) / n
        self._backward(k, p, acts, ds)
        return float(value)

    @staticmethod
    def _bce_sum(z: Any, yb: Any, scale: float) -> tuple[float, Any]:
        """functional.binary_cross_entropy_with_logits(z, t, reduction="sum") * scale, and its
        gradient: the eager op's own forward and backward on raw arrays, so the same bits."""
        from ..functions import BCEWithLogits
        bce = BCEWithLogits()
        total = np.asarray(bce.forward(z, np.asarray(yb), reduction="sum"))
        c = np.asarray(scale, dtype=z.dtype)
        return float(total * c), bce.backward(np.ones((), z.dtype) * c)[0]

    def _backward(self, k: Any, g: Any, acts: list, ds: list) -> None:
        """Backward through the chain, last layer first, from the logits' gradient ``g``;
        ``k`` is the kernels module (``kernels.active()`` or ``numpy_ref``)."""
        for i in range(len(self.layers) - 1, -1, -1):
            w, b, _ = self.layers[i]
            gw = self._grad_buffer(w)
            if i == 0 and is_sparse(acts[0]):  # as functions.Linear: SciPy multiplies sparse x dense only
                gw[...] = (acts[i].T @ g).T
            else:
                np.matmul(g.T, acts[i], out=gw)
            w.grad = gw
            if b is not None:
                gb = self._grad_buffer(b)
                k.bias_grad(g, gb)  # add.reduce(g, axis=0), what the eager Linear's sum runs
                b.grad = gb
            if i:
                d = ds[i]
                np.matmul(g, w.data, out=d)
                if self.layers[i - 1][2]:  # a ReLU after the previous layer: its output is acts[i]
                    k.relu_mask_backward(d, acts[i])
                g = d


def capture_train_step(model: Any, loss_name: str | None, optimizer: Any, l1: float = 0.0,
                       l2: float = 0.0, fallback: Any = None) -> Any:
    """A ``train_step(xb, yb, wb) -> (loss, logits)`` replaying a captured MLP step, or None.

    Captures only what it can reproduce exactly: a Linear/ReLU chain, loss "cross_entropy"
    with integer labels, no l1/l2 penalty; NumPy or SciPy sparse (CSR) batches. Batches with
    sample weights or on a GPU go to ``fallback`` (the eager step). Set ``NEURALAB_EAGER=1`` to turn capturing off.

    Example: ``step = capture_train_step(model, "cross_entropy", opt, fallback=eager_step)``
    """
    if os.environ.get("NEURALAB_EAGER") or loss_name != "cross_entropy" or l1 or l2:
        return None
    cap = CapturedMLP.from_model(model)
    if cap is None:
        return None

    def train_step(xb: Any, yb: Any, wb: Any) -> tuple[float, Any]:
        if wb is not None or not (type(xb) is np.ndarray or is_sparse(xb)) or getattr(yb, "dtype", np.float32).kind not in "iu":
            return fallback(xb, yb, wb)
        value = cap.forward_backward(xb, yb)
        optimizer.step()
        return value, cap.logits

    train_step.captured = cap
    return train_step
