"""Helpers the labs share: an ``nn.MLP`` built with the labs' initialisation schemes, a
training loop that records what the labs measure, and small datasets.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import datasets
from .. import functional as F
from ..nn import init
from ..nn.module import Module
from ..tensor import Tensor, no_grad
from ..training import fit

from ..nn import MLP, Linear


def init_weight(shape: tuple[int, int], scheme: str, rng: np.random.Generator) -> np.ndarray:
    """A weight matrix from a named scheme: "xavier" (Glorot & Bengio 2010), "he" (He et al.
    2015), "lecun", or "small" (N(0, 0.01^2), the pre-2010 habit).

    Example: ``init_weight((64, 32), "he", np.random.default_rng(0))``
    """
    if scheme == "xavier":
        return init.xavier_normal(shape, rng)
    if scheme == "he":
        return init.kaiming_normal(shape, rng)
    if scheme == "lecun":
        return init.lecun_normal(shape, rng)
    if scheme == "small":
        return (0.01 * rng.standard_normal(shape)).astype(np.float32)
    raise ValueError(f"unknown init scheme {scheme!r}")


class _LabInit:
    """``nn.Linear`` init for ``lab_mlp``: the named scheme for the hidden layers, "xavier" for
    the output layer, residual branches scaled by 1/sqrt(depth) without normalisation."""

    def __init__(self, scheme: str, depth: int, fixup: bool) -> None:
        self.scheme, self.depth, self.fixup, self.layer = scheme, depth, fixup, 0

    def __call__(self, shape: tuple, rng: np.random.Generator, dtype: Any = None) -> np.ndarray:
        i, self.layer = self.layer, self.layer + 1
        # The draws of Linear's default init first, as the labs' numbers were made with them.
        rng.uniform(size=shape), rng.uniform(size=shape[0])
        w = init_weight(shape, self.scheme if i < self.depth else "xavier", rng)
        if self.fixup and 0 < i < self.depth:
            w = w / np.float32(math.sqrt(self.depth))
        return w.astype(dtype or np.float32)


def lab_mlp(n_in: int, width: int, n_out: int, depth: int, activation: str = "relu",
            init: str = "he", norm: str | None = None, residual: bool = False,
            dropout: float = 0.0, rng: np.random.Generator | None = None) -> MLP:
    """An ``nn.MLP`` with ``depth`` hidden layers of equal width, initialised by a named scheme.

    Residual skips join the hidden layers (``h + act(norm(W h + b))``, not around the first
    layer); without normalisation each branch's weights are scaled by 1/sqrt(depth) so the
    sum's variance stays bounded with depth (the role batch norm plays in He et al. 2016;
    the scaling is the Fixup idea, Zhang et al. 2019). Biases start at zero.

    Example: ``lab_mlp(2, 64, 2, depth=20, activation="relu", init="he", norm="batch", rng=rng)``
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    return MLP(n_in, (width,) * depth, n_out, activation=activation, dropout=dropout, norm=norm,
               residual="hidden" if residual else False, rng=rng,
               init=_LabInit(init, depth, fixup=residual and norm is None))


def linears(model: Module) -> list:
    """The model's dense layers, input to output.

    Example: ``[l.weight.shape for l in linears(model)]``
    """
    return [m for m in model.modules() if isinstance(m, Linear)]


def layer_grad_norms(model: Module, X: np.ndarray, y: np.ndarray, loss: str = "cross_entropy",
                     weights: list | None = None) -> np.ndarray:
    """The Frobenius norm of each dense layer's weight gradient on one batch (input layer first).

    ``weights`` are the weight Parameters to measure (default: the dense layers').

    Example: ``layer_grad_norms(model, X[:64], y[:64])``
    """
    weights = weights if weights is not None else [l.weight for l in linears(model)]
    model.zero_grad()
    out = model(Tensor(X))
    F.get_loss(loss)(out, y).backward()
    norms = np.array([float(np.linalg.norm(w.grad)) for w in weights])
    model.zero_grad()
    return norms


def make_optimizer(name: str, params: list, lr: float, **kw: Any):
    """neuralab's optimizer by name (``optim.get``), plus "momentum": SGD with momentum 0.9.

    Example: ``make_optimizer("momentum", model.parameters(), lr=0.01)``
    """
    from .. import optim
    if name == "momentum":
        name, kw = "sgd", {"momentum": 0.9, **kw}
    return optim.get(name, params, lr=lr, **kw)


def accuracy(model: Module, X: np.ndarray, y: np.ndarray) -> float:
    """Share of correct argmax predictions, in eval mode.

    Example: ``accuracy(model, X_test, y_test)``
    """
    was = model.training
    model.eval()
    with no_grad():
        out = model(Tensor(X)).data
    model.train(was)
    pred = out.argmax(axis=1) if out.ndim == 2 and out.shape[1] > 1 else (out.reshape(-1) > 0).astype(int)
    return float((pred == y).mean())


def train(model: Module, X: np.ndarray, y: np.ndarray, opt: Any, epochs: int, batch_size: int,
          rng: np.random.Generator, loss: str = "cross_entropy") -> dict[str, list[float]]:
    """``nl.fit`` on (X, y); returns per-epoch training loss and training accuracy.

    The accuracy is measured after each epoch in eval mode (fit's validation pass run on the
    training data), not averaged over the epoch's batches while the weights were moving.

    Example: ``losses, accs = train(model, X, y, opt, epochs=5)``
    """
    hist = fit(model, X, y, loss=loss, optimizer=opt, epochs=epochs, batch_size=batch_size,
               validation_data=(X, y), metrics=["accuracy"], seed=rng, verbose=0).history
    return {"loss": hist["loss"], "accuracy": hist["val_accuracy"]}


def standardize(X_train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Scale every feature to mean 0, std 1 using the training set's statistics.

    Example: ``X_train, X_test = standardize(X_train, X_test)``
    """
    mu, sd = X_train.mean(axis=0), X_train.std(axis=0) + 1e-8
    return [((a - mu) / sd).astype(np.float32) for a in (X_train, *others)]


def digits(n_train: int | None = None, seed: int = 0) -> tuple[np.ndarray, ...]:
    """``nl.datasets.load_digits`` (8x8 images, 10 classes) split 75/25, pixels scaled to
    [0, 1]; ``n_train`` keeps only that many training images.

    Example: ``X_train, y_train, X_test, y_test = digits(n_train=500)``
    """
    d = datasets.load_digits(test_size=0.25, random_state=seed)
    n = len(d.X_train) if n_train is None else n_train
    return d.X_train[:n] / 16.0, d.y_train[:n], d.X_test / 16.0, d.y_test
