"""Safe model files: safetensors + JSON metadata, loaded without running code from the file.

One ``.safetensors`` file holds every array of a model; everything else (architecture as
layer names and constructor arguments, hyperparameters, preprocessing, classes, feature names,
a training summary) is JSON in the safetensors header's metadata. Loading parses JSON and
copies arrays: it never unpickles or runs code from the file. Only classes from the neuralab
package (or ones you pass in ``custom_objects``) are rebuilt.

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
import struct
from pathlib import Path
from typing import Any

import numpy as np

from .. import backend
from .files import atomic_write

FORMAT = "neuralab"
FORMAT_VERSION = 1
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


def _version() -> str:
    from .. import __version__
    return __version__


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
    def __init__(self, tensors: dict[str, np.ndarray], custom_objects: dict | None) -> None:
        self.tensors = tensors
        self.custom = dict(custom_objects or {})
        self.built: dict[str, Any] = {}

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
            return np.dtype(v["__dtype__"])
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
            return np.array(v["__list__"], dtype=np.dtype(v["dtype"]))
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
        """A class by name: from custom_objects, or from inside the neuralab package (and
        scikit-learn, for estimators' helpers such as LabelBinarizer) only."""
        if name in self.custom:
            return self.custom[name]
        packages = ("neuralab",) if base.__name__ == "Module" else ("neuralab", "sklearn")
        if module.split(".")[0] in packages:
            try:
                cls = getattr(importlib.import_module(module), name)
            except (ImportError, AttributeError):
                cls = None
            if isinstance(cls, type) and issubclass(cls, base):
                return cls
        raise ModelFileError(f"the file needs class {module}.{name}, which is not part of "
                             f"neuralab; pass it as nl.load(path, custom_objects={{{name!r}: "
                             f"{name}}})")

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
        fresh = _Decoder({}, {type(m).__name__: type(m) for m in model.modules()}).build(arch)
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
    for name, v in items:
        if name in params:
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
    params = {k: dec.value(v) for k, v in rec["params"].items()}
    est = cls(**params)
    for name, v in rec["attributes"].items():
        setattr(est, name, dec.value(v))
    return est


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
def _digest(meta_json: str, tensors: dict[str, np.ndarray]) -> str:
    # Covers the metadata and every array (name, dtype, shape, bytes): any changed byte of a
    # saved model is detected. It is an integrity check, not a signature.
    h = hashlib.sha256(meta_json.encode("utf-8"))
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
              "neuralab_version": _version(), "kind": record["kind"], "neuralab": meta_json,
              "sha256": _digest(meta_json, enc.tensors)}
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
    from safetensors.numpy import load as st_load
    if not path.exists():
        raise ModelFileError(f"{path}: no such file")
    if path.is_dir():
        raise ModelFileError(f"{path}: is a folder, not a model file")
    data = path.read_bytes()
    where = str(path)
    if len(data) < 8:
        raise ModelFileError(f"{where}: not a model file ({len(data)} bytes; a safetensors file "
                             f"starts with an 8-byte header length)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > 100_000_000 or data[8:9] != b"{":
        raise ModelFileError(f"{where}: not a safetensors model file (it does not start with a "
                             f"safetensors header)")
    if 8 + n > len(data):
        raise ModelFileError(f"{where}: file is truncated (the header alone needs {8 + n} bytes, "
                             f"the file has {len(data)})")
    try:
        header = json.loads(data[8:8 + n])
    except ValueError:
        raise ModelFileError(f"{where}: corrupted safetensors header (not valid JSON)") from None
    if not isinstance(header, dict):
        raise ModelFileError(f"{where}: corrupted safetensors header")
    ends = [v["data_offsets"][1] for k, v in header.items()
            if k != "__metadata__" and isinstance(v, dict) and "data_offsets" in v]
    expected = 8 + n + max(ends, default=0)
    if len(data) < expected:
        raise ModelFileError(f"{where}: file is truncated ({len(data)} bytes, the header "
                             f"describes {expected})")
    if len(data) > expected:
        raise ModelFileError(f"{where}: {len(data) - expected} unexpected bytes after the "
                             f"tensor data (the file was modified or corrupted)")
    meta = header.get("__metadata__") or {}
    if meta.get("format") != FORMAT or "neuralab" not in meta:
        raise ModelFileError(f"{where}: a safetensors file, but not a neuralab model file "
                             f"(no neuralab metadata); to read bare weights use "
                             f"safetensors.numpy.load_file")
    try:
        version = int(meta.get("format_version", ""))
    except ValueError:
        raise ModelFileError(f"{where}: unreadable format version "
                             f"{meta.get('format_version')!r}") from None
    if version > FORMAT_VERSION or version < 1:
        raise ModelFileError(f"{where}: written in neuralab model format version {version} (by "
                             f"neuralab {meta.get('neuralab_version', '?')}); this neuralab "
                             f"{_version()} reads format version {FORMAT_VERSION}; upgrade neuralab")
    try:
        tensors = st_load(data)
    except Exception as e:  # safetensors raises its own error type for malformed data
        raise ModelFileError(f"{where}: corrupted tensor data ({e})") from None
    tensors.pop("__empty__", None)
    try:
        record = json.loads(meta["neuralab"])
        for key in record.get("scalar_arrays", ()):
            tensors[key] = tensors[key].reshape(())
    except (ValueError, KeyError, TypeError, AttributeError):
        record = None  # reported below: a damaged record cannot match its checksum
    if record is None or _digest(meta["neuralab"], tensors) != meta.get("sha256"):
        raise ModelFileError(f"{where}: contents do not match the checksum stored in the file "
                             f"(the weights or metadata were modified or corrupted)")
    return record, tensors


def load(path: str | os.PathLike, custom_objects: dict[str, type] | None = None) -> Any:
    """Load a model saved by ``nl.save``; never executes code from the file.

    Args:
        path: the ``.safetensors`` file.
        custom_objects: your own Module subclasses by class name, if the model uses any.

    Raises ``nl.io.ModelFileError`` (a ValueError) for a truncated, modified, wrong-version or
    non-neuralab file.
    Example: ``clf = nl.load("model.safetensors")``
    """
    path = Path(path)
    record, tensors = _read(path)
    try:
        return _from_record(record, _Decoder(tensors, custom_objects))
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFileError(f"{path}: malformed neuralab metadata ({type(e).__name__}: {e})") from None


__all__ = ["save", "load", "read_metadata", "read_extra_arrays", "ModelFileError", "FORMAT_VERSION"]
