"""Safe model files: safetensors + JSON metadata, loaded without running code from the file.

One ``.safetensors`` file holds every array of a model; everything else (architecture as
layer names and constructor arguments, hyperparameters, preprocessing, classes, feature names,
a training summary) is JSON in the safetensors header's metadata. Loading parses JSON and
copies arrays: it never unpickles or runs code from the file.

The SHA-256 stored in the file detects damage, but anyone can recompute it, so the loader
trusts nothing in a file: it rebuilds only the classes of ``ALLOWED_CLASSES`` (or ones you
pass in ``custom_objects``), imports nothing a file names, checks every layer's size against
the arrays the file really holds before building it, caps the header (``MAX_HEADER_BYTES``)
and its nesting (``MAX_JSON_DEPTH``), and turns every failure into ``ModelFileError``.

Example:
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> nl.save(model, "model.safetensors")
    PosixPath('model.safetensors')
    >>> same = nl.load("model.safetensors")
"""
from __future__ import annotations

import hashlib
import importlib
import json
import math
import os
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np

from .. import backend
from .files import atomic_write

FORMAT = "neuralab"
FORMAT_VERSION = 1
# Version 2 of the checksum also covers the header fields beside the record (kind, versions);
# files without a "digest_version" field carry version 1 and still load.
DIGEST_VERSION = 2
_DIGEST_FIELDS = ("format", "format_version", "neuralab_version", "kind", "digest_version")
MAX_HEADER_BYTES = 16 * 2**20
MAX_JSON_DEPTH = 100
# Values a layer may allocate beyond the arrays stored in the file (buffers rebuilt from the
# configuration, e.g. PositionalEncoding's table): 4M values, 16 MB in float32.
_UNSTORED_VALUES = 2**22

# The classes a model file may name: class name -> "module:attribute", imported only when a
# file needs it. Anything else must be passed by the user in ``custom_objects``.
ALLOWED_CLASSES: dict[str, str] = {
    **{name: f"neuralab.nn.layers:{name}" for name in ("Linear", "Dropout", "Flatten", "Identity")},
    **{name: f"neuralab.nn.activation:{name}" for name in (
        "ReLU", "Sigmoid", "Tanh", "LeakyReLU", "GELU", "Softmax", "LogSoftmax", "Step")},
    **{name: f"neuralab.nn.container:{name}" for name in ("Sequential", "ModuleList", "Residual")},
    **{name: f"neuralab.nn.conv:{name}" for name in (
        "Conv1d", "Conv2d", "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "BatchNorm2d",
        "Dropout2d")},
    **{name: f"neuralab.nn.normalization:{name}" for name in ("BatchNorm1d", "LayerNorm")},
    **{name: f"neuralab.nn.recurrent:{name}" for name in ("RNN", "GRU", "LSTM")},
    **{name: f"neuralab.nn.attention:{name}" for name in (
        "Embedding", "MultiheadAttention", "PositionalEncoding", "TransformerEncoderLayer")},
    "MLP": "neuralab.nn.mlp:MLP",
    "NCF": "neuralab.apps.recommend:NCF",
    "FastText": "neuralab.apps.text:FastText",
    "DateTranslator": "neuralab.apps.translate:DateTranslator",
    "MLPClassifier": "neuralab.estimators.mlp:MLPClassifier",
    "MLPRegressor": "neuralab.estimators.mlp:MLPRegressor",
    "CNNClassifier": "neuralab.estimators.cnn:CNNClassifier",
    "Perceptron": "neuralab.estimators.perceptron:Perceptron",
    "NCFRecommender": "neuralab.apps.recommend:NCFRecommender",
    "FastTextClassifier": "neuralab.apps.text:FastTextClassifier",
    **{name: f"neuralab.nn.tabular:{name}" for name in (
        "RobustScale", "ScaleLayer", "PeriodicEmbedding", "NTKLinear", "EnsembleLinear",
        "CategoricalEmbedding", "ParametricActivation", "TabularMLP")},
    "TabularClassifier": "neuralab.estimators.tabular:TabularClassifier",
    "TabularRegressor": "neuralab.estimators.tabular:TabularRegressor",
    # the one scikit-learn helper the estimators keep (MLPClassifier's label encoding)
    "LabelBinarizer": "sklearn.preprocessing:LabelBinarizer",
}
# Constructor arguments that only shape the *initial* weights: a model file restores the
# trained weights, so a value JSON cannot hold (a Generator, a callable) is stored as None.
_INIT_ONLY_ARGS = {"rng", "init", "random_state", "callbacks"}


class ModelFileError(ValueError):
    """A file that is not a readable neuralab model (truncated, modified, wrong version, ...).

    Example:
        >>> nl.io.atomic_write("notes.txt", b"hello")
        >>> try: nl.load("notes.txt")
        ... except nl.io.ModelFileError as e: print(e)
        notes.txt: not a model file (5 bytes; ...)
    """

    def __init__(self, message: str) -> None:
        # Messages quote the file (class names, versions): printed escaped, on one line.
        super().__init__(printable(message, limit=2000))


def _version() -> str:
    from .. import __version__
    return __version__


def printable(text: Any, limit: int | None = 200) -> str:
    """``text`` safe to print on a terminal: control characters (escape sequences, newlines,
    bidirectional overrides) are shown escaped as in ``repr``, long text is cut.

    Use it for every string that comes from a file (class names, versions, user metadata).

    Args:
        text: a string (anything else is turned into one with ``str``).
        limit: at most this many characters of the result (None: no limit).

    Example:
        >>> print(printable("MLP" + chr(27) + "[2J"))
        MLP\\x1b[2J
    """
    s = text if isinstance(text, str) else str(text)
    out = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in s)
    if limit is not None and len(out) > limit:
        out = out[:limit] + "..."
    return out


def _check_depth(obj: Any, where: str) -> None:
    # Walked with a stack, not recursively: a deep structure must not exhaust Python's stack.
    stack = [(obj, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise ModelFileError(f"{where}: the metadata is nested more than {MAX_JSON_DEPTH} "
                                 f"levels deep (the file was modified or corrupted)")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def _json(text: str | bytes, where: str) -> Any:
    try:
        value = json.loads(text)
    except RecursionError:
        raise ModelFileError(f"{where}: the metadata is nested too deeply (the file was modified "
                             f"or corrupted)") from None
    _check_depth(value, where)
    return value


def _safe_dtype(spec: Any) -> np.dtype:
    """A dtype named by a file: numbers only, at most 16 bytes an element."""
    try:
        dt = np.dtype(spec) if isinstance(spec, (str, np.dtype)) else None
    except (TypeError, ValueError):
        dt = None
    if dt is None or dt.kind not in "biufc" or dt.itemsize > 16:
        raise ModelFileError(f"the metadata names an unsupported dtype {printable(repr(spec))}")
    return dt


def _canonical_module(module: str) -> str:
    from .. import MOVED_MODULES  # 0.1 module paths (neuralab.recommend) -> their new place
    for old, new in MOVED_MODULES.items():
        if module == old or module.startswith(old + "."):
            return new + module[len(old):]
    return module


# ------------------------------------------------------------ layer sizes from their config
# How many values a layer's constructor allocates, computed from its configuration alone
# (weight matrices: the bulk), so a modified file cannot make the loader allocate more than
# the arrays it really holds. tests/test_io.py checks each formula against real layers.
def _pos(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else 0


def _prod(v: Any) -> int:
    if isinstance(v, (list, tuple)):
        return math.prod(_pos(x) for x in v)
    return _pos(v)


def _widths_product(widths: list) -> int:
    return sum(_pos(a) * _pos(b) for a, b in zip(widths, widths[1:]))


def _kernel(c: dict, ndim: int) -> int:
    k = c.get("kernel_size")
    return _pos(k) ** ndim if not isinstance(k, (list, tuple)) else _prod(k)


def _rnn(c: dict, gates: int) -> int:
    x, h, layers = _pos(c.get("input_size")), _pos(c.get("hidden_size")), _pos(c.get("num_layers", 1))
    dirs = 2 if c.get("bidirectional") is True else 1
    if not layers:
        return 0
    return dirs * gates * h * (x + h) + (layers - 1) * dirs * gates * h * (dirs * h + h)


def _mlp(c: dict) -> int:
    hidden = list(c.get("hidden")) if isinstance(c.get("hidden"), (list, tuple)) else []
    widths = [c.get("in_features"), *hidden, c.get("out_features")]
    n = _widths_product(widths)
    if c.get("residual") is True:  # a projection wherever a hidden block changes the width
        n += sum(_pos(a) * _pos(b) for a, b in zip(widths[:-2], hidden) if a != b)
    if c.get("norm"):
        n += 2 * sum(_pos(h) for h in hidden)
    return n


def _ncf(c: dict) -> int:
    users_items = _pos(c.get("n_users")) + _pos(c.get("n_items"))
    layers = list(c.get("mlp_layers") or ()) if isinstance(c.get("mlp_layers"), (list, tuple)) else []
    towers = c.get("towers", "neumf")
    n = users_items * _pos(c.get("factors", 8)) if towers in ("neumf", "gmf") else 0
    if towers in ("neumf", "mlp") and layers:
        n += users_items * (_pos(layers[0]) // 2) + _widths_product(layers)
    return n


def _date_translator(c: dict) -> int:
    chars = c.get("source_chars")
    e, h2 = _pos(c.get("embed_dim", 24)), 2 * _pos(c.get("hidden", 64))
    n_chars = len(chars) if isinstance(chars, str) else 0
    return (n_chars * e + 3 * h2 * (e + h2 // 2) + 3 * h2 * (e + h2)  # embeddings, two GRUs
            + 4 * h2 * h2)  # bridge, attention, combine


def _ints(v: Any) -> list[int]:
    return [_pos(x) for x in v] if isinstance(v, (list, tuple)) else []


def _tabular_mlp(c: dict) -> int:
    """The weight matrices of nn.TabularMLP's linear layers (a lower bound of what it holds)."""
    n_num, n_bin, cards = _pos(c.get("n_numeric")), _pos(c.get("n_binary", 0)), _ints(c.get("cardinalities"))
    periodic = c.get("periodic", True) is not False and n_num
    width = (n_num * _pos(c.get("periodic_dim", 4)) if periodic else n_num) + n_bin \
        + len(cards) * _pos(c.get("embedding_dim", 8))
    hidden = _ints(c.get("hidden", (256, 256, 256)))
    return _widths_product([width, *hidden, _pos(c.get("n_out", 1))])


_LAYER_VALUES = {
    "Linear": lambda c: _pos(c.get("in_features")) * _pos(c.get("out_features")),
    "Conv1d": lambda c: _pos(c.get("out_channels")) * _pos(c.get("in_channels")) * _kernel(c, 1)
    // max(_pos(c.get("groups", 1)), 1),
    "Conv2d": lambda c: _pos(c.get("out_channels")) * _pos(c.get("in_channels")) * _kernel(c, 2)
    // max(_pos(c.get("groups", 1)), 1),
    "BatchNorm1d": lambda c: _pos(c.get("num_features")) * 2 * (
        (c.get("affine", True) is not False) + (c.get("track_running_stats", True) is not False)),
    "BatchNorm2d": lambda c: _pos(c.get("num_features")) * 2 * (
        (c.get("affine", True) is not False) + (c.get("track_running_stats", True) is not False)),
    "LayerNorm": lambda c: _prod(c.get("normalized_shape")) * 2 * (
        c.get("elementwise_affine", True) is not False),
    "Embedding": lambda c: _pos(c.get("num_embeddings")) * _pos(c.get("embedding_dim")),
    "MultiheadAttention": lambda c: 4 * _pos(c.get("embed_dim")) ** 2,
    "PositionalEncoding": lambda c: _pos(c.get("d_model")) * _pos(c.get("max_len", 5000)),
    "TransformerEncoderLayer": lambda c: 4 * _pos(c.get("d_model")) ** 2
    + 2 * _pos(c.get("d_model")) * _pos(c.get("dim_feedforward", 2048)),
    "RNN": lambda c: _rnn(c, 1),
    "GRU": lambda c: _rnn(c, 3),
    "LSTM": lambda c: _rnn(c, 4),
    "MLP": lambda c: _mlp(c),
    "Residual": lambda c: (_pos(c.get("in_features")) * _pos(c.get("out_features"))
                           if c.get("in_features") != c.get("out_features") else 0),
    "NCF": _ncf,
    "FastText": lambda c: _pos(c.get("embed_dim")) * (_pos(c.get("vocab_size"))
                                                      + _pos(c.get("num_classes"))),
    "DateTranslator": _date_translator,
    # the tabular layers (nn.tabular)
    "RobustScale": lambda c: 2 * _pos(c.get("n_features")),
    "ScaleLayer": lambda c: _pos(c.get("n_features")),
    "ParametricActivation": lambda c: _pos(c.get("n_features", 1)),
    # w1, b1 (n, h); w2 (n, h, o - 1); b2 (n, o - 1): x itself is the first output value
    "PeriodicEmbedding": lambda c: _pos(c.get("n_features")) * (
        _pos(c.get("frequencies", 16)) * (1 + _pos(c.get("out_dim", 4))) + _pos(c.get("out_dim", 4)) - 1),
    "NTKLinear": lambda c: _pos(c.get("in_features")) * _pos(c.get("out_features")),
    "EnsembleLinear": lambda c: (_pos(c.get("in_features")) + _pos(c.get("k", 4)))
    * _pos(c.get("out_features")),
    "CategoricalEmbedding": lambda c: sum(_ints(c.get("cardinalities"))) * _pos(c.get("dim", 8)),
    "TabularMLP": _tabular_mlp,
}


def layer_values(name: str, config: dict) -> int:
    """How many values (weights and buffers) the allow-listed layer ``name`` allocates for
    ``config``, computed without building it (0 for a layer without weights).

    Example: ``layer_values("Linear", {"in_features": 3, "out_features": 4})  # 12``
    """
    formula = _LAYER_VALUES.get(name)
    return int(formula(config)) if formula is not None else 0


# ============================================================================ encoding
class _Encoder:
    """Turns Python values into JSON, moving arrays into ``tensors`` under stable keys."""

    def __init__(self) -> None:
        self.tensors: dict[str, np.ndarray] = {}
        # id(sub-module) -> where it was stored, so a module referenced twice (an estimator's
        # list of its own Linear layers) is stored once and shared again after loading.
        self.seen_modules: dict[int, dict] = {}

    def array(self, key: str, a: Any) -> str:
        a = np.require(backend.to_numpy(a), requirements="C")  # ascontiguousarray makes 0-d 1-d
        if key in self.tensors:
            raise ModelFileError(f"two arrays would be stored under the same name {key!r}")
        self.tensors[key] = a
        return key

    def value(self, v: Any, key: str) -> Any:
        from ..nn.module import Module
        from ..tensor import Tensor
        if v is None or isinstance(v, (bool, str, int)):
            return v
        if isinstance(v, float):
            return v if math.isfinite(v) else {"__float__": repr(v)}
        if isinstance(v, np.generic):
            if v.dtype.kind in "biuf":
                return {"__scalar__": self.array(key, np.asarray(v))}
            return v.item()
        if isinstance(v, np.dtype):
            return {"__dtype__": v.str}
        if isinstance(v, type) and issubclass(v, np.generic):
            return {"__dtype__": np.dtype(v).str}
        if isinstance(v, Module):
            if id(v) in self.seen_modules:
                return self.seen_modules[id(v)]
            for path, sub in v.named_modules():
                self.seen_modules.setdefault(id(sub), {"__ref__": key, "path": path})
            return {"__module__": self.module(v, key), "prefix": key}
        if _is_estimator(v) and type(v).__module__.startswith(("sklearn.", "neuralab.")):
            return {"__estimator__": _encode_estimator(v, self, f"{key}.")}
        from ..callbacks.base import History
        if type(v) is History:  # an estimator's history_: the per-epoch numbers
            return {"__history__": self.value(v.history, f"{key}.history"),
                    "epoch": [int(e) for e in v.epoch]}
        if isinstance(v, Tensor):
            return {"__tensor__": self.array(key, v.data), "requires_grad": v.requires_grad}
        if isinstance(v, np.ndarray) or backend.xp_of(v) is not np:
            v = backend.to_numpy(v)
            if v.dtype.kind in "biuf":
                return {"__array__": self.array(key, v)}
            if v.dtype.kind in "USO":
                items = v.tolist()
                if not all(x is None or isinstance(x, (str, int, float, bool))
                           for x in v.ravel().tolist()):
                    raise TypeError(f"array {key!r} holds objects that are not numbers or strings")
                return {"__objarray__": items, "dtype": "str" if v.dtype.kind == "U" else "object",
                        "shape": list(v.shape)}
        if isinstance(v, np.random.Generator):
            state = v.bit_generator.state
            return {"__rng__": json.loads(json.dumps(state, default=int))}
        if isinstance(v, tuple):
            return {"__tuple__": [self.value(x, f"{key}.{i}") for i, x in enumerate(v)]}
        if isinstance(v, list):
            return [self.value(x, f"{key}.{i}") for i, x in enumerate(v)]
        if isinstance(v, dict) and all(isinstance(k, str) for k in v):
            return {"__dict__": {k: self.value(x, f"{key}.{k}") for k, x in v.items()}}
        raise TypeError(f"{key!r}: cannot store a {type(v).__name__} in a model file")

    def module(self, m: Any, prefix: str) -> dict:
        """Architecture (class + constructor config) and weights of a Module."""
        from ..nn import ModuleList, Sequential
        cls = type(m)
        config = {}
        if cls in (Sequential, ModuleList):
            # Plain containers are described by their children (which may have been appended
            # after construction), not by their constructor arguments.
            children = [[name, _Encoder().module(child, "")] for name, child in m.named_children()]
            state = m.state_dict()
            for name, a in state.items():
                self.array(f"{prefix}.{name}" if prefix else name, a)
            return {"class": cls.__name__, "module": cls.__module__, "children": children,
                    "state": list(state), "training": bool(m.training)}
        for name, v in m.config().items():
            try:
                config[name] = self.config_value(v, f"{prefix}.{name}" if prefix else name)
            except TypeError as e:
                if name in _INIT_ONLY_ARGS:
                    config[name] = None
                else:
                    raise TypeError(f"layer {cls.__name__}: argument {name!r} cannot be stored "
                                    f"({e})") from None
        state = m.state_dict()
        for name, a in state.items():
            self.array(f"{prefix}.{name}" if prefix else name, a)
        return {"class": cls.__name__, "module": cls.__module__, "config": config,
                "state": list(state), "training": bool(m.training)}

    def config_value(self, v: Any, key: str) -> Any:
        # Constructor arguments are small: modules are described (their weights live in
        # the parent's state dict), arrays are inlined, a Generator becomes None (init only).
        from ..nn.module import Module
        if isinstance(v, Module):
            sub = _Encoder()
            arch = sub.module(v, "")
            return {"__layer__": arch}
        if isinstance(v, (list, tuple)):
            items = [self.config_value(x, f"{key}.{i}") for i, x in enumerate(v)]
            return {"__tuple__": items} if isinstance(v, tuple) else items
        if isinstance(v, dict) and all(isinstance(k, str) for k in v):
            return {"__dict__": {k: self.config_value(x, f"{key}.{k}") for k, x in v.items()}}
        if isinstance(v, np.random.Generator) or callable(v) and not isinstance(v, type):
            raise TypeError(f"a {type(v).__name__}")
        if isinstance(v, np.ndarray):
            return {"__list__": v.tolist(), "dtype": v.dtype.str}
        if isinstance(v, np.generic):
            return v.item()
        return self.value(v, key)


class _Decoder:
    def __init__(self, tensors: dict[str, np.ndarray], custom_objects: dict | None,
                 trusted: bool = False) -> None:
        self.tensors = tensors
        self.custom = dict(custom_objects or {})
        self.built: dict[str, Any] = {}
        # Layers may allocate no more values than the file holds (plus a little for buffers
        # rebuilt from their config); None when rebuilding a model we are saving.
        self.budget = None if trusted else (
            sum(int(a.size) for a in tensors.values()) + _UNSTORED_VALUES)

    def array(self, key: str) -> np.ndarray:
        try:
            return self.tensors[key]
        except KeyError:
            raise ModelFileError(f"the metadata refers to an array {key!r} that is not in the "
                                 f"file") from None

    def value(self, v: Any) -> Any:
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if not isinstance(v, dict):
            return v
        if "__float__" in v:
            return float(v["__float__"])
        if "__scalar__" in v:
            return self.array(v["__scalar__"])[()]
        if "__dtype__" in v:
            return _safe_dtype(v["__dtype__"])
        if "__module__" in v:
            self.built[v["prefix"]] = self.module(v["__module__"], v["prefix"])
            return self.built[v["prefix"]]
        if "__ref__" in v:
            try:
                return dict(self.built[v["__ref__"]].named_modules())[v["path"]]
            except KeyError:
                raise ModelFileError(f"the metadata refers to a layer {v['__ref__']}:{v['path']} "
                                     f"that is not in the file") from None
        if "__estimator__" in v:
            return _decode_estimator(v["__estimator__"], self)
        if "__history__" in v:
            from ..callbacks.base import History
            history = History()
            history.history = self.value(v["__history__"])
            history.epoch = [int(e) for e in v["epoch"]]
            return history
        if "__tensor__" in v:
            from ..tensor import Tensor
            return Tensor(self.array(v["__tensor__"]).copy(), requires_grad=v["requires_grad"])
        if "__array__" in v:
            return self.array(v["__array__"]).copy()
        if "__objarray__" in v:
            dtype = str if v["dtype"] == "str" else object
            return np.array(v["__objarray__"], dtype=dtype).reshape(v["shape"])
        if "__list__" in v:
            return np.array(v["__list__"], dtype=_safe_dtype(v["dtype"]))
        if "__rng__" in v:
            state = v["__rng__"]
            bitgen = getattr(np.random, state["bit_generator"], None)
            if not isinstance(bitgen, type) or not issubclass(bitgen, np.random.BitGenerator):
                raise ModelFileError(f"unknown random bit generator {state['bit_generator']!r}")
            g = np.random.Generator(bitgen())
            g.bit_generator.state = state
            return g
        if "__tuple__" in v:
            return tuple(self.value(x) for x in v["__tuple__"])
        if "__dict__" in v:
            return {k: self.value(x) for k, x in v["__dict__"].items()}
        if "__layer__" in v:
            return self.build(v["__layer__"])
        raise ModelFileError(f"unknown value in the metadata: {sorted(v)}")

    def resolve(self, name: str, module: str, base: type) -> type:
        """A class by name: from custom_objects, else from ``ALLOWED_CLASSES`` (imported by its
        known path); nothing the file names is imported."""
        if not isinstance(name, str) or not isinstance(module, str):
            raise ModelFileError("the metadata names a class that is not text")
        if name in self.custom:
            cls = self.custom[name]
            if isinstance(cls, type) and issubclass(cls, base):
                return cls
            raise ModelFileError(f"custom_objects[{name!r}] is not a {base.__name__} class")
        target = ALLOWED_CLASSES.get(name)
        if target is not None:
            where, _, attr = target.partition(":")
            canonical = _canonical_module(module)
            if canonical == where or (where.startswith("sklearn.")
                                      and canonical.startswith(where + ".")):
                cls = getattr(importlib.import_module(where), attr)
                if issubclass(cls, base):
                    return cls
        raise ModelFileError(f"the file needs class {printable(module)}.{printable(name)}, which "
                             f"neuralab does not rebuild from a file; if it is your own class, "
                             f"pass it as nl.load(path, custom_objects={{{printable(repr(name))}: "
                             f"{printable(name)}}})")

    def spend(self, name: str, config: dict) -> None:
        """Refuse a layer whose configuration needs more values than the file holds."""
        if self.budget is None:
            return
        need = layer_values(name, config)
        if need > self.budget:
            stored = sum(int(a.size) for a in self.tensors.values())
            raise ModelFileError(f"layer {printable(name)}'s stored configuration needs {need:,} "
                                 f"values, more than the {stored:,} the file holds (the file "
                                 f"was modified or corrupted)")
        self.budget -= need

    def build(self, arch: dict) -> Any:
        """A fresh module from an architecture description (weights not yet loaded)."""
        import inspect

        from ..nn.module import Module
        cls = self.resolve(arch["class"], arch["module"], Module)
        if "children" in arch:
            from collections import OrderedDict
            children = [(name, self.build(child)) for name, child in arch["children"]]
            if arch["class"] == "Sequential":
                return cls(OrderedDict(children))
            return cls([child for _, child in children])
        config = {k: self.value(v) for k, v in arch["config"].items()}
        if config.get("dtype") is not None:
            _safe_dtype(config["dtype"])
        if cls is _allowed_class(arch["class"]):  # custom classes are the user's to trust
            self.spend(arch["class"], config)
        args, kwargs = [], {}
        for p in list(inspect.signature(cls.__init__).parameters.values())[1:]:
            if p.name not in config:
                continue
            if p.kind is p.VAR_POSITIONAL:
                args.extend(config[p.name])
            elif p.kind is p.VAR_KEYWORD:
                kwargs.update(config[p.name])
            elif p.kind is p.POSITIONAL_ONLY:
                args.append(config[p.name])
            else:
                kwargs[p.name] = config[p.name]
        try:
            return cls(*args, **kwargs)
        except Exception as e:
            raise ModelFileError(f"could not rebuild layer {arch['class']} from its stored "
                                 f"configuration: {e}") from None

    def module(self, arch: dict, prefix: str) -> Any:
        model = self.build(arch)
        state = {}
        for name in arch["state"]:
            state[name] = self.array(f"{prefix}.{name}" if prefix else name)
        floats = {a.dtype for a in state.values() if a.dtype.kind == "f"}
        fresh = {a.dtype for a in model.state_dict().values() if a.dtype.kind == "f"}
        if len(floats) == 1 and floats != fresh and hasattr(model, "to"):
            model.to(dtype=floats.pop())  # e.g. a float64 model: keep its precision exactly
        try:
            model.load_state_dict(state)
        except (KeyError, ValueError) as e:
            raise ModelFileError(f"stored weights do not fit the stored architecture: {e}") from None
        model.train(arch.get("training", False))
        return model


# ============================================================================ objects -> records
def _check_rebuild(model: Any, arch: dict) -> None:
    """Refuse to save a model whose constructor arguments no longer describe it (e.g. a layer
    was replaced after construction): such a file could not be loaded."""
    try:
        fresh = _Decoder({}, {type(m).__name__: type(m) for m in model.modules()},
                         trusted=True).build(arch)
    except ModelFileError as e:
        raise TypeError(f"nl.save: {e}") from None
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in fresh.state_dict().items()}
    if want != got:
        diff = sorted(set(want.items()) ^ set(got.items()))[:4]
        raise TypeError(f"nl.save: {type(model).__name__} was changed after it was built (its "
                        f"constructor arguments give different weights: {diff}); build it "
                        f"from layers instead, e.g. with nn.Sequential")


def _is_estimator(obj: Any) -> bool:
    return hasattr(obj, "get_params") and hasattr(obj, "fit")


def _training_summary(obj: Any) -> dict:
    """A few numbers about how an estimator was trained (for `neuralab info`)."""
    out: dict[str, Any] = {}
    for attr in ("n_iter_", "best_loss_", "best_validation_score_", "t_", "converged_"):
        v = getattr(obj, attr, None)
        if isinstance(v, (int, float, bool, np.generic)) and v is not None:
            v = v.item() if isinstance(v, np.generic) else v
            if not (isinstance(v, float) and not math.isfinite(v)):
                out[attr.rstrip("_")] = v
    for attr, name in (("loss_curve_", "final_loss"), ("validation_scores_", "final_validation_score")):
        curve = getattr(obj, attr, None)
        if curve is not None and len(curve):
            if math.isfinite(float(curve[-1])):  # a diverged run ends in NaN: not JSON
                out[name] = float(curve[-1])
            out.setdefault("epochs", len(curve))
    return out


def _encode_estimator(est: Any, enc: _Encoder, prefix: str) -> dict:
    cls = type(est)
    params = {}
    for name, v in est.get_params(deep=False).items():
        try:
            params[name] = enc.config_value(v, f"{prefix}params.{name}")
        except TypeError:
            if name not in _INIT_ONLY_ARGS:
                raise TypeError(f"{cls.__name__}: parameter {name!r} = {v!r} cannot be stored") from None
            params[name] = None
    from ..nn.module import Module
    attributes, skipped = {}, []
    # Networks first, so that other attributes pointing into them are stored as references.
    items = sorted(vars(est).items(), key=lambda kv: not isinstance(kv[1], Module))
    derived = set(getattr(cls, "_not_stored", ()))
    for name, v in items:
        if name in params or name in derived:
            continue
        try:
            attributes[name] = enc.value(v, f"{prefix}{name}")
        except TypeError as e:
            if name.startswith("_"):
                # Private training state (e.g. the optimizer's moments) is not needed to
                # predict; partial_fit after loading starts a fresh optimizer.
                skipped.append(name)
                continue
            raise TypeError(f"{cls.__name__}: attribute {name!r} cannot be stored ({e})") from None
    return {"class": cls.__name__, "module": cls.__module__, "params": params,
            "attributes": attributes, "not_saved": skipped, "training": _training_summary(est)}


def _decode_estimator(rec: dict, dec: _Decoder) -> Any:
    from sklearn.base import BaseEstimator
    cls = dec.resolve(rec["class"], rec["module"], BaseEstimator)
    known = set(cls._get_param_names())
    unknown = sorted(set(rec["params"]) - known)
    if unknown:
        raise ModelFileError(f"{cls.__name__} has no parameter(s) "
                             f"{printable(unknown)} (the file was modified)")
    params = {k: dec.value(v) for k, v in rec["params"].items()}
    if params.get("dtype") is not None:
        _safe_dtype(params["dtype"])
    est = cls(**params)
    # An estimator's ``_not_stored`` names what it derives from its other attributes (e.g.
    # scikit-learn's coefs_ from the network); older files that stored copies still load.
    derived = set(getattr(cls, "_not_stored", ()))
    for name, v in rec["attributes"].items():
        if name in derived:
            continue
        if not (isinstance(name, str) and _ATTRIBUTE.fullmatch(name)) or name in known \
                or _is_class_member(cls, name):
            raise ModelFileError(f"{cls.__name__}: the file sets attribute "
                                 f"{printable(repr(name))}, which a fitted estimator does not "
                                 f"have (the file was modified)")
        setattr(est, name, dec.value(v))
    return est


# What an estimator's stored attribute may be called: a plain name (``coef_``,
# ``_label_binarizer``), never a dunder nor one of the class's methods or properties.
_ATTRIBUTE = re.compile(r"_?[A-Za-z][A-Za-z0-9_]*")


def _is_class_member(cls: type, name: str) -> bool:
    for klass in cls.__mro__:  # what inspect.getattr_static does, without its cost
        if name in vars(klass):
            member = vars(klass)[name]
            return callable(member) or hasattr(member, "__get__")
    return False


def _allowed_class(name: str) -> type | None:
    """The allow-listed class of that name if its module is already imported (it is, once
    ``resolve`` returned it)."""
    import sys
    target = ALLOWED_CLASSES.get(name)
    if target is None:
        return None
    where, _, attr = target.partition(":")
    module = sys.modules.get(where)
    return getattr(module, attr, None) if module is not None else None


def _record(obj: Any, enc: _Encoder) -> dict:
    from ..nn.module import Module
    from ..preprocessing import TabularModel
    if isinstance(obj, TabularModel):
        return {"kind": "tabular", "preprocessing": obj.preprocessor.to_dict(),
                "estimator": _encode_estimator(obj.estimator, enc, "estimator."),
                "info": obj.info, "training": _training_summary(obj.estimator),
                "feature_names": obj.preprocessor.feature_names,
                "classes": obj.preprocessor.spec.get("classes")}
    if isinstance(obj, Module):
        arch = enc.module(obj, "")
        _check_rebuild(obj, arch)
        return {"kind": "module", "architecture": arch}
    if _is_estimator(obj):
        if not any(k.endswith("_") and not k.startswith("_") for k in vars(obj)):
            raise ValueError(f"{type(obj).__name__} is not fitted; call fit() before nl.save")
        rec = _encode_estimator(obj, enc, "")
        classes = getattr(obj, "classes_", None)
        names = getattr(obj, "feature_names_in_", None)
        return {"kind": "estimator", "estimator": rec, "training": rec["training"],
                "classes": None if classes is None else np.asarray(classes).tolist(),
                "feature_names": None if names is None else [str(n) for n in names]}
    raise TypeError(f"nl.save expects an nn.Module, a fitted neuralab estimator or a CLI model, "
                    f"got {type(obj).__name__}")


def _from_record(meta: dict, dec: _Decoder) -> Any:
    kind = meta.get("kind")
    if kind == "module":
        return dec.module(meta["architecture"], "")
    if kind == "estimator":
        return _decode_estimator(meta["estimator"], dec)
    if kind == "tabular":
        from ..preprocessing import TabularModel, TabularPreprocessor
        return TabularModel(TabularPreprocessor.from_dict(meta["preprocessing"]),
                            _decode_estimator(meta["estimator"], dec), info=meta.get("info") or {})
    raise ModelFileError(f"unknown model kind {kind!r} in the file")


# ============================================================================ file format
def _digest(meta_json: str, tensors: dict[str, np.ndarray], header: dict | None = None) -> str:
    # Covers the metadata and every array (name, dtype, shape, bytes): any changed byte of a
    # saved model is detected. It is an integrity check, not a signature: anyone can
    # recompute it, which is why loading trusts nothing else in the file either.
    # Version 2 (``header`` given) also covers the header fields of _DIGEST_FIELDS.
    h = hashlib.sha256()
    if header is not None:
        for field in _DIGEST_FIELDS:
            h.update(f"{field}\0{header.get(field, '')}\0".encode("utf-8"))
    h.update(meta_json.encode("utf-8"))
    for name in sorted(tensors):
        a = np.require(tensors[name], requirements="C")
        h.update(f"\0{name}\0{a.dtype.str}\0{a.shape}\0".encode("utf-8"))
        h.update(a.tobytes())
    return h.hexdigest()


def save(obj: Any, path: str | os.PathLike, metadata: dict | None = None,
         arrays: dict[str, Any] | None = None) -> Path:
    """Save an nn.Module, a fitted estimator or a CLI model to one ``.safetensors`` file.

    Args:
        obj: the model.
        path: file to write (replaced atomically: readers never see half a file).
        metadata: extra JSON-able information stored under ``"user"``.
        arrays: extra named arrays (e.g. a training checkpoint's optimizer state), stored as
            ``"extra.<name>"`` tensors, covered by the checksum; read them with
            ``read_extra_arrays``.

    Example:
        >>> nl.save(clf, "model.safetensors"); nl.load("model.safetensors").predict(X[:3])
        PosixPath('model.safetensors')
        array([...])
    """
    from safetensors.numpy import save as st_save
    enc = _Encoder()
    record = _record(obj, enc)
    for name, a in (arrays or {}).items():
        enc.array(f"extra.{name}", a)
    record = {"format": FORMAT, "format_version": FORMAT_VERSION,
              "neuralab_version": _version(), **record}
    if metadata is not None:
        record["user"] = metadata
    # safetensors stores a 0-d array as shape (1,); remember which ones to give back as 0-d.
    record["scalar_arrays"] = sorted(k for k, a in enc.tensors.items() if a.ndim == 0)
    try:
        meta_json = json.dumps(record, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise TypeError(f"nl.save: the model's metadata is not JSON-able: {e}") from None
    header = {"format": FORMAT, "format_version": str(FORMAT_VERSION),
              "neuralab_version": _version(), "kind": record["kind"],
              "digest_version": str(DIGEST_VERSION), "neuralab": meta_json}
    header["sha256"] = _digest(meta_json, enc.tensors, header)
    # safetensors cannot store an empty file; a parameter-free model gets one marker array.
    tensors = enc.tensors or {"__empty__": np.zeros(0, np.float32)}
    path = Path(path)
    atomic_write(path, st_save(tensors, metadata=header))
    return path


def read_metadata(path: str | os.PathLike) -> dict:
    """The JSON metadata of a model file (checked like ``load``), without rebuilding it.

    Example: ``nl.io.read_metadata("model.safetensors")["kind"]  # 'tabular'``
    """
    meta, _ = _read(Path(path))
    return meta


def read_extra_arrays(path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    """The ``metadata`` and ``arrays`` given to ``save`` (checked like ``load``).

    Example: ``user, arrays = nl.io.read_extra_arrays("checkpoint.safetensors")``
    """
    record, tensors = _read(Path(path))
    extra = {k[len("extra."):]: v for k, v in tensors.items() if k.startswith("extra.")}
    return record.get("user") or {}, extra


def _read(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """The checked record and arrays of a model file; every failure is a ModelFileError."""
    try:
        return _read_checked(path)
    except ModelFileError:
        raise
    except OSError as e:
        raise ModelFileError(f"{path}: cannot read it ({e.strerror or e})") from None
    except RecursionError:
        raise ModelFileError(f"{path}: the metadata is nested too deeply") from None
    except Exception as e:  # noqa: BLE001 - a damaged file must never escape as another error
        raise ModelFileError(f"{path}: corrupted model file ({type(e).__name__}: "
                             f"{printable(e)})") from None


def _tensor_entries(header: dict, where: str) -> list[int]:
    """The end offset of every tensor of a safetensors header, after checking its form."""
    ends = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        shape = entry.get("shape") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2
                and all(isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in offsets)
                and offsets[0] <= offsets[1] and isinstance(shape, list)
                and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
                and isinstance(entry.get("dtype"), str)):
            raise ModelFileError(f"{where}: corrupted safetensors header (tensor "
                                 f"{printable(repr(name))} has no valid dtype, shape and offsets)")
        ends.append(offsets[1])
    return ends


def _read_checked(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    from safetensors.numpy import load as st_load
    where = str(path)
    if not path.exists():
        raise ModelFileError(f"{path}: no such file")
    if path.is_dir():
        raise ModelFileError(f"{path}: is a folder, not a model file")
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(8)
        if len(head) < 8:
            raise ModelFileError(f"{where}: not a model file ({len(head)} bytes; a safetensors "
                                 f"file starts with an 8-byte header length)")
        (n,) = struct.unpack("<Q", head)
        first = f.read(1)
        if first != b"{" or n < 2:
            raise ModelFileError(f"{where}: not a safetensors model file (it does not start with "
                                 f"a safetensors header)")
        if n > MAX_HEADER_BYTES:
            raise ModelFileError(f"{where}: the header claims {n:,} bytes; a neuralab model "
                                 f"file's header is at most {MAX_HEADER_BYTES:,} bytes")
        if 8 + n > size:
            raise ModelFileError(f"{where}: file is truncated (the header alone needs {8 + n} "
                                 f"bytes, the file has {size})")
        raw = first + f.read(n - 1)
        try:
            header = _json(raw, where)
        except ValueError as e:
            if isinstance(e, ModelFileError):
                raise
            raise ModelFileError(f"{where}: corrupted safetensors header (not valid JSON)") from None
        if not isinstance(header, dict):
            raise ModelFileError(f"{where}: corrupted safetensors header")
        expected = 8 + n + max(_tensor_entries(header, where), default=0)
        if size < expected:
            raise ModelFileError(f"{where}: file is truncated ({size} bytes, the header "
                                 f"describes {expected})")
        if size > expected:
            raise ModelFileError(f"{where}: {size - expected} unexpected bytes after the "
                                 f"tensor data (the file was modified or corrupted)")
        meta = header.get("__metadata__")
        if not isinstance(meta, dict) or meta.get("format") != FORMAT \
                or not isinstance(meta.get("neuralab"), str):
            raise ModelFileError(f"{where}: a safetensors file, but not a neuralab model file "
                                 f"(no neuralab metadata); to read bare weights use "
                                 f"safetensors.numpy.load_file")
        if not all(isinstance(v, str) for v in meta.values()):
            raise ModelFileError(f"{where}: corrupted safetensors header (metadata values must "
                                 f"be text)")
        version = meta.get("format_version", "")
        if not (version.isascii() and version.isdigit() and len(version) < 10):
            raise ModelFileError(f"{where}: unreadable format version {printable(repr(version))}")
        if int(version) > FORMAT_VERSION or int(version) < 1:
            raise ModelFileError(f"{where}: written in neuralab model format version "
                                 f"{int(version)} (by neuralab "
                                 f"{printable(meta.get('neuralab_version', '?'), 40)}); this "
                                 f"neuralab {_version()} reads format version {FORMAT_VERSION}; "
                                 f"upgrade neuralab")
        f.seek(0)
        data = f.read()
    try:
        tensors = st_load(data)
    except Exception as e:  # safetensors raises its own error type for malformed data
        raise ModelFileError(f"{where}: corrupted tensor data ({printable(e)})") from None
    del data
    tensors.pop("__empty__", None)
    try:
        record = _json(meta["neuralab"], where)
    except ValueError as e:
        if isinstance(e, ModelFileError):
            raise
        record = None  # reported below: a damaged record cannot match its checksum
    if isinstance(record, dict):
        scalars = record.get("scalar_arrays", ())
        if not (isinstance(scalars, list) and all(isinstance(k, str) and k in tensors
                                                  and tensors[k].size == 1 for k in scalars)):
            record = None
        else:
            for key in scalars:
                tensors[key] = tensors[key].reshape(())
    digest_version = meta.get("digest_version", "1")
    if digest_version not in ("1", str(DIGEST_VERSION)):
        raise ModelFileError(f"{where}: unknown checksum version {printable(repr(digest_version))}")
    covered = meta if digest_version == str(DIGEST_VERSION) else None
    if not isinstance(record, dict) or _digest(meta["neuralab"], tensors, covered) != meta.get("sha256"):
        raise ModelFileError(f"{where}: contents do not match the checksum stored in the file "
                             f"(the weights or metadata were modified or corrupted)")
    if "kind" in meta and meta["kind"] != record.get("kind"):
        raise ModelFileError(f"{where}: the header says kind {printable(repr(meta['kind']))} but "
                             f"the record holds {printable(repr(record.get('kind')))}")
    return record, tensors


def load(path: str | os.PathLike, custom_objects: dict[str, type] | None = None) -> Any:
    """Load a model saved by ``nl.save``; never executes code from the file.

    Args:
        path: the ``.safetensors`` file.
        custom_objects: your own Module subclasses by class name, if the model uses any.

    Raises ``nl.io.ModelFileError`` (a ValueError), and nothing else, for any file it cannot
    load: truncated, modified, wrong version, not neuralab's, or naming a class outside
    ``ALLOWED_CLASSES`` and ``custom_objects``.
    Example: ``clf = nl.load("model.safetensors")``
    """
    path = Path(path)
    record, tensors = _read(path)
    try:
        return _from_record(record, _Decoder(tensors, custom_objects))
    except ModelFileError as e:
        message = str(e)
        if message.startswith(str(path)):
            raise
        raise ModelFileError(f"{path}: {message}") from None
    except RecursionError:
        raise ModelFileError(f"{path}: the metadata is nested too deeply") from None
    except Exception as e:  # noqa: BLE001 - every failure of a damaged file is a ModelFileError
        raise ModelFileError(f"{path}: malformed neuralab metadata ({type(e).__name__}: "
                             f"{printable(e)})") from None


__all__ = ["save", "load", "read_metadata", "read_extra_arrays", "ModelFileError", "FORMAT_VERSION",
           "ALLOWED_CLASSES", "printable", "layer_values", "MAX_HEADER_BYTES", "MAX_JSON_DEPTH"]
