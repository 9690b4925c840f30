"""The ``>>>`` examples in every public module's docstrings run and print what they say.

Each example runs as a learner would paste it after the usual imports: the namespace holds
``nl``, ``np``, ``nn``, ``optim``, ``F`` and small ready objects (``model``, ``X``, ``y``,
``opt``, ``clf``, ...), built fresh for each docstring and only when its examples use them,
in a temporary working directory (examples write files such as "model.safetensors").
"""
from __future__ import annotations

import doctest
import functools
import importlib
import pkgutil
import re

import numpy as np
import pytest

import neuralab as nl

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _public_modules() -> list[str]:
    names = ["neuralab"]
    for info in pkgutil.walk_packages(nl.__path__, "neuralab."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


def _collect():
    """(module name, DocTest) for every docstring with examples, each found once."""
    finder = doctest.DocTestFinder(exclude_empty=True)
    found, seen = [], set()
    for name in _public_modules():
        try:
            module = importlib.import_module(name)
        except ImportError as exc:   # an optional extra that is not installed
            found.append(pytest.param(name, None, id=name,
                                      marks=pytest.mark.skip(reason=f"cannot import: {exc}")))
            continue
        for test in finder.find(module):
            if test.examples and test.name not in seen:
                seen.add(test.name)
                found.append(pytest.param(name, test, id=test.name))
    return found


# --- the ready objects, built only for the docstrings that use them -------------------------

@functools.lru_cache(maxsize=None)
def _digits():
    d = nl.datasets.load_digits()
    return (d.X_train / 16).astype(np.float32), d.y_train, (d.X_test / 16).astype(np.float32), d.y_test


def _model(ns):
    # a digits-sized MLP: 64 inputs, 10 classes
    return nl.nn.MLP(64, hidden=(32,), out_features=10, rng=0)


def _loss(ns):
    # a loss of ``model`` on a batch of ``X``, ready for ``loss.backward()``
    F = nl.functional
    return F.cross_entropy(ns["model"](nl.tensor(ns["X"][:32])), nl.tensor(ns["y"][:32]))


def _clf(ns):
    return nl.MLPClassifier(hidden_layer_sizes=(16,), max_iter=5, random_state=0).fit(ns["X"], ns["y"])


def _texts(ns):
    return ["WINNER!! claim your cash prize now", "Free entry to win a prize, call now",
            "are we still on for lunch tomorrow", "see you at home tonight",
            "URGENT you have won a 1000 cash prize", "can you pick up milk on the way"] * 5


def _labels(ns):
    return ["spam", "spam", "ham", "ham", "spam", "ham"] * 5


def _tabular(ns):
    import pandas as pd
    rng = np.random.default_rng(0)
    return pd.DataFrame({"name": [f"item{i}" for i in range(40)],
                         "size": rng.uniform(10, 100, 40).round(1),
                         "kind": rng.choice(["flat", "house"], 40),
                         "price": rng.uniform(100, 900, 40).round(0)})


def _train_step(ns):
    model, opt, F = ns["model"], ns["opt"], nl.functional

    def train_step(xb, yb):
        opt.zero_grad()
        loss = F.cross_entropy(model(nl.tensor(xb)), nl.tensor(yb))
        loss.backward()
        opt.step()
        return loss.item()
    return train_step


def _train_one_epoch(ns):
    step, X, y = ns["train_step"], ns["X"], ns["y"]
    def train_one_epoch():
        for i in range(0, 256, 64):
            step(X[i:i + 64], y[i:i + 64])
    return train_one_epoch


def _clicks(ns):
    # who clicked what: raw user and item ids, as read from a log
    import pandas as pd
    rng = np.random.default_rng(0)
    users = ["alice", "bob", "carol", "dan", "erin", "frank"]
    rows = [(u, f"song{i}") for u in users for i in rng.choice(30, 12, replace=False)]
    return pd.DataFrame(rows, columns=["user", "item"])


def _tabular_model_files(ns):
    # what `neuralab train churn.csv --target churned --out model.safetensors` leaves behind
    import pandas as pd
    from neuralab.preprocessing import TabularModel, TabularPreprocessor
    rng = np.random.default_rng(0)
    age = rng.uniform(18, 90, 200).round()
    df = pd.DataFrame({"age": age, "plan": rng.choice(["basic", "pro"], 200),
                       "churned": np.where(age > 50, "yes", "no")})
    prep = TabularPreprocessor().fit(df, target="churned")
    est = nl.MLPClassifier(hidden_layer_sizes=(8,), max_iter=200, random_state=0)
    est.fit(prep.transform(df), prep.transform_target(df))
    nl.save(TabularModel(prep, est), "model.safetensors")
    pd.DataFrame({"age": [80, 20, 30], "plan": ["pro", "basic", "pro"]}).to_csv("new.csv", index=False)
    return pd


_READY = {
    # name: (the names it needs first, how to build it)
    "X": ((), lambda ns: _digits()[0].copy()),
    "y": ((), lambda ns: _digits()[1].copy()),
    "X_train": ((), lambda ns: _digits()[0].copy()),
    "y_train": ((), lambda ns: _digits()[1].copy()),
    "X_test": ((), lambda ns: _digits()[2].copy()),
    "y_test": ((), lambda ns: _digits()[3].copy()),
    "X_images": ((), lambda ns: _digits()[0].reshape(-1, 1, 8, 8).copy()),
    "xb": (("X",), lambda ns: ns["X"][:64]),
    "yb": (("y",), lambda ns: ns["y"][:64]),
    "x": (("X",), lambda ns: nl.tensor(ns["X"][:4])),
    "a64": ((), lambda ns: nl.tensor(np.random.default_rng(0).standard_normal((3, 4)),
                                     dtype="float64", requires_grad=True)),
    "b64": ((), lambda ns: nl.tensor(np.random.default_rng(1).standard_normal((4, 2)),
                                     dtype="float64", requires_grad=True)),
    "model": ((), _model),
    "body": ((), lambda ns: nl.nn.Linear(64, 32, rng=0)),
    "head": ((), lambda ns: nl.nn.Linear(32, 10, rng=0)),
    "opt": (("model",), lambda ns: nl.optim.SGD(ns["model"].parameters(), lr=0.1)),
    "loss": (("model", "X", "y"), _loss),
    "loss_fn": ((), lambda ns: lambda out, target: nl.functional.cross_entropy(out, nl.tensor(target))),
    "val_loss": ((), lambda ns: 0.25),
    "train_step": (("model", "opt"), _train_step),
    "train_one_epoch": (("train_step", "X", "y"), _train_one_epoch),
    "clf": (("X", "y"), _clf),
    "step": (("model", "opt"), lambda ns: nl.training.make_train_step(
        ns["model"], lambda out, y, w: nl.functional.cross_entropy(out, y), ns["opt"])),
    "texts": ((), _texts),
    "labels": ((), _labels),
    "df": ((), _tabular),
}

def _exported_onnx(ns):
    import onnxruntime
    nl.export_onnx(ns["model"], "churn.onnx")
    return onnxruntime


def _mpi(ns):
    mpi4py = pytest.importorskip("mpi4py.MPI", reason="the MPI examples need mpi4py (the mpi extra)")
    return mpi4py


class _Rank1Of3:
    """Stands for rank 1 of a 3-process communicator in the sharding example."""

    def Get_rank(self):
        return 1

    def Get_size(self):
        return 3


def _cities(ns):
    import pandas as pd
    return pd.DataFrame({"city": ["Oslo"] * 342 + ["Bergen"] * 120})


# ready objects that mean something else in one module's examples
_READY_IN = {
    "neuralab.apps.recommend": {"df": ((), _clicks)},
    "neuralab.preprocessing.TabularModel": {"pd": ((), _tabular_model_files)},
    "neuralab.distributed": {
        "MPI": ((), _mpi), "comm": ((), lambda ns: _Rank1Of3()), "df": ((), _cities),
        "X_local": (("X",), lambda ns: ns["X"]), "y_local": (("y",), lambda ns: ns["y"]),
        "column_local": ((), lambda ns: np.array([0.0, 1.5, 3.0, 7.25, 9.0])),
    },
    "neuralab.io.onnx.onnx_feed": {
        "pd": ((), _tabular_model_files),
        "model": (("pd",), lambda ns: nl.load("model.safetensors")),
        "frame": (("pd",), lambda ns: ns["pd"].read_csv("new.csv")),
        "onnxruntime": (("model",), _exported_onnx),
    },
}

_BASE = {
    "nl": lambda: nl, "np": lambda: np, "nn": lambda: nl.nn, "optim": lambda: nl.optim,
    "F": lambda: nl.functional, "functional": lambda: nl.functional,
    "datasets": lambda: nl.datasets, "init": lambda: nl.nn.init, "backend": lambda: nl.backend,
}


def _namespace(test: doctest.DocTest) -> dict:
    """The module's globals, the usual imports, and the ready objects the examples name."""
    ns = dict(test.globs)
    for name, make in _BASE.items():
        ns.setdefault(name, make())
    used = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", "\n".join(e.source for e in test.examples)))

    ready = dict(_READY)
    for prefix, extra in _READY_IN.items():
        if test.name == prefix or test.name.startswith(prefix + "."):
            ready.update(extra)

    def build(name):
        if name in ns:
            return
        needs, make = ready[name]
        for need in needs:
            build(need)
        ns[name] = make(ns)

    for name in sorted(used & set(ready)):
        build(name)
    return ns


@pytest.mark.filterwarnings("ignore:Stochastic Optimizer")   # the examples train briefly
@pytest.mark.parametrize("module, test", _collect())
def test_docstring_examples_run(module, test, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    test.globs = _namespace(test)
    report = []
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    try:
        result = runner.run(test, out=report.append, clear_globs=False)
    finally:
        test.globs.clear()
    assert result.failed == 0, "".join(report)


def test_the_collector_finds_the_examples():
    # a collector that silently found nothing would make every example "pass"
    tests = [p.values[1] for p in _collect() if p.values[1] is not None]
    modules = {t.name.split(".")[1] if "." in t.name else "" for t in tests}
    assert len(tests) > 80
    assert {"tensor", "nn", "optim", "training", "io", "estimators", "datasets"} <= modules
