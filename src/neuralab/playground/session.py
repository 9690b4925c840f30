"""One playground run: its data, its network (real neuralab modules) and its training steps.

The server keeps one ``Session`` per browser tab. Everything the page shows comes from
``snapshot()``: the output over the plane, each neuron's activation map, the weights, the
per-layer gradient norms and the losses.

Example:
    >>> s = Session(validate_config({"dataset": "xor", "hidden": [4, 4]}))
    >>> s.train_steps(50); round(s.snapshot()["train_loss"], 2) < 0.7
    True
"""
from __future__ import annotations

import math
import threading
import time
from typing import Any, Iterator

import numpy as np

from .. import functional as F
from .. import nn, optim
from ..callbacks import Callback
from ..tensor import Tensor, no_grad
from ..training import fit, penalty
from .data import DATASETS, FEATURES, featurize, grid, is_regression, make_dataset

ACTIVATIONS = ("relu", "tanh", "sigmoid", "linear", "leaky_relu", "gelu")
OPTIMIZERS = ("sgd", "momentum", "adam")
REGULARIZATION = ("none", "l1", "l2")
MAX_LAYERS, MAX_NEURONS, MAX_POINTS = 8, 16, 2000
OUTPUT_GRID, NEURON_GRID = 50, 14

DEFAULTS: dict[str, Any] = {
    "dataset": "circle", "noise": 0.0, "train_ratio": 0.5, "batch_size": 10, "n_points": 500,
    "seed": 0, "features": ["x1", "x2"], "hidden": [4, 2], "activation": "tanh",
    "optimizer": "sgd", "lr": 0.03, "regularization": "none", "reg_rate": 0.0,
    "dropout": 0.0, "batch_norm": False, "residual": False,
}


class ConfigError(ValueError):
    """A playground setting out of range; the message names the setting.

    Example: ``raise ConfigError("learning_rate must be positive, got -1")``
    """


def _num(cfg: dict, key: str, lo: float, hi: float, integer: bool = False) -> float:
    value = cfg[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key} must be a number, got {value!r}") from None
    if not np.isfinite(value) or not lo <= value <= hi:
        raise ConfigError(f"{key} must be between {lo} and {hi}, got {value}")
    if integer:
        if int(value) != value:
            raise ConfigError(f"{key} must be a whole number, got {value}")
        return int(value)
    return float(value)


def validate_config(raw: Any) -> dict:
    """Merge a user's settings with the defaults and check every one (ConfigError if not).

    Example: ``validate_config({"hidden": [8, 8], "activation": "relu"})["lr"]  # 0.03``
    """
    if not isinstance(raw, dict):
        raise ConfigError("the settings must be a JSON object")
    unknown = sorted(set(raw) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"unknown settings {unknown}; known ones are {sorted(DEFAULTS)}")
    cfg = {**DEFAULTS, **raw}
    for key, choices in (("dataset", DATASETS), ("activation", ACTIVATIONS),
                         ("optimizer", OPTIMIZERS), ("regularization", REGULARIZATION)):
        if cfg[key] not in choices:
            raise ConfigError(f"{key} must be one of {list(choices)}, got {cfg[key]!r}")
    cfg["noise"] = _num(cfg, "noise", 0, 0.5)
    cfg["train_ratio"] = _num(cfg, "train_ratio", 0.1, 0.9)
    cfg["batch_size"] = _num(cfg, "batch_size", 1, 100, integer=True)
    cfg["n_points"] = _num(cfg, "n_points", 20, MAX_POINTS, integer=True)
    cfg["seed"] = _num(cfg, "seed", 0, 2**31 - 1, integer=True)
    cfg["lr"] = _num(cfg, "lr", 1e-6, 10)
    cfg["reg_rate"] = _num(cfg, "reg_rate", 0, 1)
    cfg["dropout"] = _num(cfg, "dropout", 0, 0.9)
    feats = cfg["features"]
    if not isinstance(feats, list) or not feats or any(f not in FEATURES for f in feats) \
            or len(set(feats)) != len(feats):
        raise ConfigError(f"features must be a non-empty list of distinct names from {list(FEATURES)}")
    hidden = cfg["hidden"]
    if not isinstance(hidden, list) or len(hidden) > MAX_LAYERS or any(
            isinstance(h, bool) or not isinstance(h, int) or not 1 <= h <= MAX_NEURONS for h in hidden):
        raise ConfigError(f"hidden must be a list of at most {MAX_LAYERS} layer widths, each 1 to {MAX_NEURONS}")
    for key in ("batch_norm", "residual"):
        if not isinstance(cfg[key], bool):
            raise ConfigError(f"{key} must be true or false, got {cfg[key]!r}")
    if cfg["batch_norm"] and cfg["batch_size"] < 2:
        raise ConfigError("batch norm needs a batch size of at least 2")
    return cfg


def build_model(cfg: dict, rng: np.random.Generator) -> tuple[nn.MLP, list[nn.Module], list[nn.Linear]]:
    """The network: an ``nn.MLP`` (hidden blocks, then one output unit).

    Returns (model, its hidden blocks, the Linear layer of each block and the output layer).
    Each hidden block is Linear -> [BatchNorm1d] -> activation -> [Dropout], wrapped in
    ``nn.Residual`` when residual connections are on (see ``nn.MLP``).

    Example: ``model, blocks = build_model(cfg, np.random.default_rng(0))``
    """
    act = "identity" if cfg["activation"] == "linear" else cfg["activation"]
    model = nn.MLP(len(cfg["features"]), hidden=tuple(cfg["hidden"]), out_features=1,
                   activation=act, dropout=cfg["dropout"], norm="batch" if cfg["batch_norm"] else None,
                   residual=cfg["residual"], rng=rng)
    blocks = [model[i] for i in range(len(cfg["hidden"]))]
    linears = [(b.block if cfg["residual"] else b)[0] for b in blocks] + [model[len(blocks)]]
    return model, blocks, linears


class _StepBookkeeping(Callback):
    """What a playground run records after each step of its ``fit``: the step count and each
    layer's gradient norm, or, once the loss is NaN or infinite, that it diverged (which
    stops the run)."""

    def __init__(self, session: "Session") -> None:
        self.session = session

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        s = self.session
        if not math.isfinite(logs["loss"]):
            s.diverged, s.playing = True, False
            self.run.stop_training = True
            return
        for i, lin in enumerate(s.linears):
            s._grad_sum[i] += float(np.sqrt(np.sum(lin.weight.grad.astype(np.float64) ** 2)))
        s._grad_count += 1
        s.step += 1


class Session:
    """A playground run: data, model, optimizer, and the statistics the page draws.

    Example: ``s = Session(cfg); s.train_steps(10); s.snapshot()``
    """

    def __init__(self, cfg: dict, points: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        self.cfg = cfg
        self.lock = threading.Lock()
        self.last_used = time.monotonic()
        self.playing = False
        self.version = 0  # bumped on every change the page must redraw
        self.regression = is_regression(cfg["dataset"])
        if points is None:
            points = make_dataset(cfg["dataset"], cfg["n_points"], cfg["noise"], cfg["seed"])
        self.set_points(*points)
        self.reset()

    # ------------------------------------------------------------------ data
    def set_points(self, X: np.ndarray, y: np.ndarray) -> None:
        """Split (X, y) into training and test points by ``train_ratio`` and compute their features.

        Example: ``s.set_points(X, y)``
        """
        n_train = max(1, int(round(len(X) * self.cfg["train_ratio"])))
        if len(X) - n_train < 1:
            n_train = len(X) - 1
        self.X_train, self.y_train = X[:n_train], y[:n_train]
        self.X_test, self.y_test = X[n_train:], y[n_train:]
        self._featurize_all()

    def _featurize_all(self) -> None:
        feats = self.cfg["features"]
        self.F_train = featurize(self.X_train, feats)
        self.F_test = featurize(self.X_test, feats)
        self.G_out = featurize(grid(OUTPUT_GRID), feats)
        self.G_neuron = featurize(grid(NEURON_GRID), feats)

    def add_point(self, x: float, y: float, label: float) -> None:
        """Add a clicked point to the training set.

        Example: ``s.add_point(1.5, -2.0, 1.0)``
        """
        if len(self.X_train) + len(self.X_test) >= MAX_POINTS:
            raise ConfigError(f"at most {MAX_POINTS} points are allowed")
        if not self.regression and label not in (0, 1):
            raise ConfigError(f"label must be 0 or 1 for classification, got {label}")
        self.X_train = np.vstack([self.X_train, np.float32([[x, y]])])
        self.y_train = np.append(self.y_train, np.float32(label))
        self._featurize_all()
        self.version += 1

    # ------------------------------------------------------------------ model
    def reset(self) -> None:
        """New weights (same seed, so a reset run is reproducible), step 0, empty curves.

        Example: ``s.reset()``
        """
        rng = np.random.default_rng(self.cfg["seed"])
        self.rng = rng
        self.model, self.blocks, self.linears = build_model(self.cfg, rng)
        params = self.model.parameters()
        lr = self.cfg["lr"]
        name = self.cfg["optimizer"]  # "momentum" is SGD with momentum 0.9
        self.opt = optim.get("sgd" if name == "momentum" else name, params, lr=lr,
                             **({"momentum": 0.9} if name == "momentum" else {}))
        self.step = 0
        self.diverged = False  # the loss became NaN or infinite: training stops until reset
        self._grad_sum = np.zeros(len(self.linears))
        self._grad_count = 0
        self.history: list[tuple[int, float, float]] = []
        rate, reg = self.cfg["reg_rate"], self.cfg["regularization"]
        self._l1, self._l2 = (rate if reg == "l1" else 0.0), (rate if reg == "l2" else 0.0)
        self.version += 1

    def _loss(self, out: Tensor, target: np.ndarray) -> Tensor:
        if self.regression:
            return F.mse_loss(out, target)
        return F.binary_cross_entropy_with_logits(out, target)

    def train_steps(self, n: int) -> None:
        """Run n mini-batch steps of the real engine (``nl.fit``): forward, loss, backward, update.

        Example: ``s.train_steps(10)``
        """
        n_train = len(self.F_train)
        batch = min(self.cfg["batch_size"], n_train)
        if self.cfg["batch_norm"] and batch < 2:
            raise ConfigError("batch norm needs at least 2 training points")
        if self.diverged:  # a diverged run stays stopped until reset
            self.playing = False
        elif n > 0:
            def batches() -> Iterator[tuple[np.ndarray, np.ndarray]]:
                # NOTE: drawn one at a time, as the steps need them: the dropout masks come
                # from the same generator, so the draws interleave as in a plain loop
                for _ in range(n):
                    idx = self.rng.choice(n_train, batch, replace=False)
                    yield self.F_train[idx], self.y_train[idx]

            fit(self.model, batches, loss="mse" if self.regression else "bce", optimizer=self.opt,
                epochs=1, batch_size=batch, train_step=self._train_step,
                callbacks=[_StepBookkeeping(self)], verbose=0)
        self.version += 1

    def _train_step(self, xb: np.ndarray, yb: np.ndarray, wb: None) -> tuple[float, np.ndarray]:
        """One step on one mini-batch, as ``fit`` calls it; a NaN or infinite loss is not
        stepped on (``_StepBookkeeping`` then stops training)."""
        self.opt.zero_grad()
        out = self.model(Tensor(xb)).reshape(-1)                          # forward
        loss = self._loss(out, yb)                                        # how wrong
        if self._l1 or self._l2:
            loss = loss + penalty([lin.weight for lin in self.linears], self._l1, self._l2)
        if not math.isfinite(loss.item()):
            return loss.item(), out.data
        loss.backward()                                                   # gradients
        self.opt.step()                                                   # update
        return loss.item(), out.data

    # ------------------------------------------------------------------ what the page draws
    def _predict(self, feats: np.ndarray) -> np.ndarray:
        out = self.model(Tensor(feats)).data.reshape(-1)
        return out

    def losses(self) -> tuple[float, float]:
        """The current (training loss, test loss).

        Example: ``train_loss, test_loss = s.losses()``
        """
        with no_grad():
            self.model.eval()
            tr = float(self._loss(Tensor(self._predict(self.F_train)), self.y_train).item())
            te = float(self._loss(Tensor(self._predict(self.F_test)), self.y_test).item()) \
                if len(self.F_test) else float("nan")
        return tr, te

    def snapshot(self, full: bool = True) -> dict:
        """Everything the page draws, as JSON-ready lists.

        Example: ``s.snapshot(full=False)["step"]``
        """
        tr, te = self.losses()
        if not self.history or self.history[-1][0] != self.step:
            self.history.append((self.step, tr, te))
        snap: dict[str, Any] = {
            "step": self.step, "epoch": self.step * self.cfg["batch_size"] / max(len(self.F_train), 1),
            "train_loss": tr, "test_loss": te, "version": self.version,
            "diverged": self.diverged,
        }
        if not full:
            return snap
        with no_grad():
            self.model.eval()
            out = self._predict(self.G_out)
            snap["output"] = np.round(self._to_unit(out), 3).tolist()
            h = Tensor(self.G_neuron)
            neurons = [self._normalise_columns(self.G_neuron)]
            for block in self.blocks:
                h = block(h)
                neurons.append(self._normalise_columns(h.data))
        snap["neurons"] = neurons
        snap["weights"] = [np.round(lin.weight.data, 3).tolist() for lin in self.linears]
        count = max(self._grad_count, 1)
        snap["grad_norms"] = (self._grad_sum / count).tolist() if self._grad_count else [None] * len(self.linears)
        self._grad_sum[:] = 0
        self._grad_count = 0
        snap["history"] = self.history[-1:]
        return snap

    def _to_unit(self, out: np.ndarray) -> np.ndarray:
        if self.regression:
            return np.clip(out, -1, 1)
        return np.tanh(out / 2)  # = 2 sigmoid(out) - 1: the class-1 probability on [-1, 1]

    @staticmethod
    def _normalise_columns(a: np.ndarray) -> list:
        scale = np.abs(a).max(axis=0)
        scale[scale == 0] = 1
        return np.round((a / scale).T, 2).tolist()  # one list of grid values per neuron

    def points(self) -> dict:
        """The training and test points, for drawing.

        Example: ``s.points()["train"]``
        """
        return {"train": np.round(np.c_[self.X_train, self.y_train], 3).tolist(),
                "test": np.round(np.c_[self.X_test, self.y_test], 3).tolist(),
                "regression": self.regression}

    def code(self) -> str:
        """A Python snippet that reproduces this run with neuralab's API.

        Example: ``print(s.code())``
        """
        c = self.cfg
        act = {"linear": "identity"}.get(c["activation"], c["activation"])
        opt = ("optim.Adam(model.parameters(), lr={lr})" if c["optimizer"] == "adam" else
               "optim.SGD(model.parameters(), lr={lr}, momentum={m})").format(
            lr=c["lr"], m=0.9 if c["optimizer"] == "momentum" else 0.0)
        loss = "mse" if self.regression else "binary_cross_entropy_with_logits"
        epochs = max(1, int(round(self.step * c["batch_size"] / max(len(self.F_train), 1))))
        l1 = c["reg_rate"] if c["regularization"] == "l1" else 0.0
        l2 = c["reg_rate"] if c["regularization"] == "l2" else 0.0
        return f'''# Reproduces this playground run with neuralab ({self.step} steps ~ {epochs} epochs).
import numpy as np
import neuralab as nl
from neuralab import nn, optim
from neuralab.playground.data import make_dataset, featurize

X, y = make_dataset({c["dataset"]!r}, n={c["n_points"]}, noise={c["noise"]}, seed={c["seed"]})
n_train = int(round(len(X) * {c["train_ratio"]}))
features = {c["features"]!r}
X_train, y_train = featurize(X[:n_train], features), y[:n_train]
X_test, y_test = featurize(X[n_train:], features), y[n_train:]

model = nn.MLP({len(c["features"])}, hidden={tuple(c["hidden"])}, out_features=1, activation={act!r},
               dropout={c["dropout"]}, norm={"'batch'" if c["batch_norm"] else None},
               residual={c["residual"]}, rng=np.random.default_rng({c["seed"]}))
opt = {opt}
hist = nl.fit(model, X_train, y_train.reshape(-1, 1), loss={loss!r}, optimizer=opt,
              epochs={epochs}, batch_size={c["batch_size"]}, validation_data=(X_test, y_test.reshape(-1, 1)),
              l1={l1}, l2={l2}, seed={c["seed"]})
print("test loss", hist.history["val_loss"][-1])
'''
