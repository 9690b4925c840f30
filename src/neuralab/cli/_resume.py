"""Ctrl-C and ``--resume`` for ``neuralab train``: interruption loses nothing.

A ``ResumableRun`` callback rides along with ``nl.fit``. At the start of every epoch it
remembers what the next epoch depends on (weights, optimizer state, the shuffling and
dropout random generators, early stopping's record). On SIGINT it lets the current batch
finish, stops training, and the command saves the best model so far together with that
snapshot to ``--out``. ``neuralab train --resume FILE`` rebuilds the same data and model from
the file, restores the snapshot and redoes the interrupted epoch from its start, so the
finished run ends with exactly the weights of a run that was never interrupted.

A run on a DATA file (``neuralab train data.csv --target y``) goes through the same engine,
so it is resumed the same way. SIGTERM (what ``kill``, ``timeout``, systemd and containers
send) is handled like Ctrl-C.

Example (shell):
    neuralab train --dataset digits --epochs 50 --out digits.safetensors   # Ctrl-C: exit 130
    neuralab train --resume digits.safetensors
"""
from __future__ import annotations

import signal
import threading
from typing import Any

import numpy as np

from ..callbacks import Callback


def _generators(model: Any) -> dict[str, np.random.Generator]:
    """Every random Generator held by a layer (dropout), keyed by layer path and attribute."""
    found = {}
    for path, m in model.named_modules():
        for attr, v in vars(m).items():
            if isinstance(v, np.random.Generator):
                found[f"{path}:{attr}"] = v
    return found


def _state_of(rng: np.random.Generator) -> dict:
    import json  # noqa: PLC0415
    return json.loads(json.dumps(rng.bit_generator.state, default=int))


class SigintStop(Callback):
    """Ctrl-C (SIGINT) or SIGTERM sets a flag and training stops after the current batch.

    For an estimator (``callbacks=[stop]``), ``on_batch_end`` returns True once interrupted;
    a second Ctrl-C raises KeyboardInterrupt at once. The signal handler is installed only
    between ``install()`` and ``uninstall()``, from the main thread.

    Example: ``stop = SigintStop(); stop.install(); clf.set_params(callbacks=[stop]).fit(X, y)``
    """

    def __init__(self) -> None:
        self.interrupted = False
        self._previous: dict[int, Any] = {}

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self.interrupted:  # a second Ctrl-C: the user insists
            raise KeyboardInterrupt
        self.interrupted = True

    def install(self) -> None:
        """Route SIGINT and SIGTERM to a flag (main thread only; elsewhere they keep theirs)."""
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._on_sigint)

    def uninstall(self) -> None:
        """Give SIGINT and SIGTERM back to their previous handlers."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def on_batch_end(self, batch: int, logs: dict | None = None) -> bool:
        return self.interrupted


class ResumableRun(SigintStop):
    """Catch SIGINT (stop after the current batch) and snapshot each epoch's starting state.

    Example: ``run = ResumableRun(rng, early); nl.fit(..., seed=rng, callbacks=[early, run])``
    """

    def __init__(self, rng: np.random.Generator, early: Any = None, epoch_offset: int = 0,
                 resume: tuple[dict, dict] | None = None) -> None:
        super().__init__()
        self.rng, self.early, self.epoch_offset = rng, early, epoch_offset
        self.resume = resume
        self.snapshot: tuple[dict, dict] | None = None

    # ---- fit hooks
    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.resume is not None:  # after EarlyStopping reset itself: give it its record back
            restore(self.resume, self.model, self.optimizer, self.rng, self.early)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.snapshot = capture(self.model, self.optimizer, self.rng, self.early,
                                epoch + self.epoch_offset, getattr(self.run, "blas_threads", None))

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if super().on_batch_end(batch, logs):
            self.run.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        early = self.early
        if early is not None and early.wait == 0 and early.best_epoch == epoch:
            early.best_epoch = epoch + self.epoch_offset  # count epochs across the resumption


def capture(model: Any, optimizer: Any, rng: np.random.Generator, early: Any,
            epoch: int, blas_threads: int | None = None) -> tuple[dict, dict]:
    """(JSON state, arrays) of everything the next epoch depends on.

    ``blas_threads`` is the run's BLAS thread count: the resumed run uses the same one, since
    another count can round a matmul's sums differently.
    """
    arrays = {f"model.{k}": np.array(v, copy=True) for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    opt_json: dict = {"param_groups": [{k: (list(v) if isinstance(v, tuple) else v)
                                        for k, v in g.items()} for g in opt["param_groups"]],
                      "state": {}}
    for i, entry in opt["state"].items():
        opt_json["state"][str(i)] = {}
        for name, v in entry.items():
            if hasattr(v, "shape") and np.ndim(v) > 0:
                arrays[f"opt.{i}.{name}"] = np.array(v, copy=True)
                opt_json["state"][str(i)][name] = {"array": f"opt.{i}.{name}"}
            else:
                opt_json["state"][str(i)][name] = {"value": np.asarray(v).item(),
                                                   "numpy": isinstance(v, (np.generic, np.ndarray))}
    state = {"epoch": int(epoch), "optimizer": opt_json, "rng": _state_of(rng),
             "blas_threads": blas_threads,
             "layer_rngs": {k: _state_of(g) for k, g in _generators(model).items()}}
    if early is not None:
        record = early.state_dict()
        weights = record.pop("best_weights")
        state["early_stopping"] = {**record, "has_best": weights is not None}
        if weights is not None:
            arrays.update({f"best.{k}": v for k, v in weights.items()})
    return state, arrays


def restore(saved: tuple[dict, dict], model: Any, optimizer: Any, rng: np.random.Generator,
            early: Any) -> None:
    """Put back what ``capture`` recorded (weights, optimizer, generators, early stopping)."""
    state, arrays = saved
    model.load_state_dict({k[len("model."):]: v.copy() for k, v in arrays.items()
                           if k.startswith("model.")})
    opt = state["optimizer"]
    entries = {}
    for i, entry in opt["state"].items():
        entries[int(i)] = {}
        for name, v in entry.items():
            if "array" in v:
                entries[int(i)][name] = arrays[v["array"]].copy()
            else:
                entries[int(i)][name] = np.asarray(v["value"])[()] if v["numpy"] else v["value"]
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()}
              for g in opt["param_groups"]]
    optimizer.load_state_dict({"state": entries, "param_groups": groups})
    rng.bit_generator.state = state["rng"]
    layer_rngs = _generators(model)
    for key, g_state in state["layer_rngs"].items():
        layer_rngs[key].bit_generator.state = g_state
    es = state.get("early_stopping")
    if early is not None and es is not None:
        weights = ({k[len("best."):]: v for k, v in arrays.items() if k.startswith("best.")}
                   if es["has_best"] else None)
        early.load_state_dict({**es, "best_weights": weights})


def load_checkpoint(path: str) -> tuple[dict, tuple[dict, dict]]:
    """(the train arguments, the snapshot) of a file written when a run was interrupted."""
    from ..io import read_extra_arrays  # noqa: PLC0415

    user, arrays = read_extra_arrays(path)
    info = user.get("checkpoint") if isinstance(user, dict) else None
    if not info:
        raise ValueError(f"{path} is a model file but not an interrupted run's checkpoint "
                         f"(nothing to resume: it finished)")
    return info["args"], (info["state"], arrays)
