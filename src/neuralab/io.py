"""Safe model files (safetensors + JSON metadata) and ONNX export.

One ``.safetensors`` file holds every array of a model; everything else (architecture as
layer names and constructor arguments, hyperparameters, preprocessing, classes, feature names,
a training summary) is JSON in the safetensors header's metadata. Loading parses JSON and
copies arrays: it never unpickles or runs code from the file. Only classes from the neuralab
package (or ones you pass in ``custom_objects``) are rebuilt.

Example:
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> nl.save(model, "model.safetensors")
    >>> same = nl.load("model.safetensors")
    >>> nl.export_onnx(model, "model.onnx")
"""
from __future__ import annotations

import hashlib
import importlib
import json
import math
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from . import backend

FORMAT = "neuralab"
FORMAT_VERSION = 1
# Constructor arguments that only shape the *initial* weights: a model file restores the
# trained weights, so a value JSON cannot hold (a Generator, a callable) is stored as None.
_INIT_ONLY_ARGS = {"rng", "init", "random_state", "callbacks"}


class ModelFileError(ValueError):
    """A file that is not a readable neuralab model (truncated, modified, wrong version, ...).

    Example:
        >>> try: nl.load("notes.txt")
        ... except nl.io.ModelFileError as e: print(e)
    """


def _version() -> str:
    from . import __version__
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
        from .nn.module import Module
        from .tensor import Tensor
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
        from .callbacks import History
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
        from .nn import ModuleList, Sequential
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
        from .nn.module import Module
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
            from .callbacks import History
            history = History()
            history.history = self.value(v["__history__"])
            history.epoch = [int(e) for e in v["epoch"]]
            return history
        if "__tensor__" in v:
            from .tensor import Tensor
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

        from .nn.module import Module
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
    from .nn.module import Module
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
    from .nn.module import Module
    from .preprocessing import TabularModel
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
        from .preprocessing import TabularModel, TabularPreprocessor
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


def _atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable; not every platform lets us open a folder
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


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
        >>> nl.save(clf, "model.safetensors"); nl.load("model.safetensors").predict(X)
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
    _atomic_write(path, st_save(tensors, metadata=header))
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

__all__ = ["save", "load", "read_metadata", "read_extra_arrays", "export_onnx", "ModelFileError", "FORMAT_VERSION"]


# ============================================================================ ONNX export
class _OnnxGraph:
    """Collects ONNX nodes and constant tensors (initializers) under fresh names."""

    def __init__(self, opset: int) -> None:
        from onnx import helper, numpy_helper
        self.helper, self.numpy_helper = helper, numpy_helper
        self.opset = opset
        self.nodes: list = []
        self.initializers: list = []
        self.count = 0
        # Names of the (batch, time, features) tensors of sequence models -> their symbolic
        # shape, so a Linear on them becomes MatMul + Add (Gemm is 2-D only).
        self.seq: dict[str, list] = {}
        self.finals: list[tuple[str, str, list]] = []  # recurrent final states: (name, node, shape)

    def fresh(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def const(self, array: Any, hint: str, dtype: Any = np.float32) -> str:
        name = self.fresh(hint)
        a = np.asarray(backend.to_numpy(array), dtype=dtype)
        self.initializers.append(self.numpy_helper.from_array(a, name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, out: str | None = None,
           **attrs: Any) -> str:
        out = out or self.fresh(hint or op_type.lower())
        self.nodes.append(self.helper.make_node(op_type, inputs, [out], **attrs))
        return out


def _emit(m: Any, x: str, g: _OnnxGraph, path: str) -> str:
    """Append the ONNX nodes computing module ``m`` (in eval mode) on input ``x``."""
    from . import nn
    out = _emit_layer(m, x, g, path)
    if x in g.seq and out not in g.seq and not isinstance(m, nn.Flatten):
        # an element-wise layer or a Linear keeps a sequence a sequence
        width = m.out_features if isinstance(m, nn.Linear) else g.seq[x][-1]
        g.seq[out] = g.seq[x][:-1] + [width]
    return out


def _emit_layer(m: Any, x: str, g: _OnnxGraph, path: str) -> str:
    from . import nn
    where = path or type(m).__name__
    if isinstance(m, nn.Dropout) or isinstance(m, nn.Identity):
        return x  # dropout is the identity at inference
    if isinstance(m, nn.Linear) and x in g.seq:
        return _matmul_add(g, x, m.weight.data, None if m.bias is None else m.bias.data)
    if isinstance(m, nn.Linear):
        inputs = [x, g.const(m.weight.data, "weight")]
        if m.bias is not None:
            inputs.append(g.const(m.bias.data, "bias"))
        return g.op("Gemm", inputs, "linear", transB=1)  # weight is (out, in): Gemm transposes it
    if isinstance(m, nn.ReLU):
        return g.op("Relu", [x])
    if isinstance(m, nn.Sigmoid):
        return g.op("Sigmoid", [x])
    if isinstance(m, nn.Tanh):
        return g.op("Tanh", [x])
    if isinstance(m, nn.LeakyReLU):
        return g.op("LeakyRelu", [x], alpha=float(m.negative_slope))
    if isinstance(m, nn.GELU):
        if g.opset >= 20:
            return g.op("Gelu", [x], approximate=m.approximate)
        half = g.const(0.5, "half")
        one = g.const(1.0, "one")
        if m.approximate == "tanh":
            # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
            x3 = g.op("Mul", [g.op("Mul", [x, x]), x])
            inner = g.op("Add", [x, g.op("Mul", [x3, g.const(0.044715, "c")])])
            t = g.op("Tanh", [g.op("Mul", [inner, g.const(math.sqrt(2 / math.pi), "k")])])
        else:
            # x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2))
            t = g.op("Erf", [g.op("Div", [x, g.const(math.sqrt(2.0), "sqrt2")])])
        return g.op("Mul", [g.op("Mul", [x, half]), g.op("Add", [t, one])], "gelu")
    if isinstance(m, nn.LogSoftmax):
        return g.op("LogSoftmax", [x], axis=int(m.axis))
    if isinstance(m, nn.Softmax):
        return g.op("Softmax", [x], axis=int(m.axis))
    if isinstance(m, nn.Step):
        ge = g.op("GreaterOrEqual", [x, g.const(0.0, "zero")])
        return g.op("Cast", [ge], "step", to=1)  # 1 = FLOAT
    if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d)):
        return _emit_conv_pool(m, x, g)
    if isinstance(m, (nn.RNN, nn.LSTM, nn.GRU)):
        return _emit_recurrent(m, x, g)
    if isinstance(m, (nn.Embedding, nn.PositionalEncoding, nn.MultiheadAttention,
                      nn.TransformerEncoderLayer)):
        return _emit_attention_layer(m, x, g)
    if isinstance(m, nn.BatchNorm1d):  # BatchNorm2d too: ONNX normalises axis 1 of any rank
        if not m.track_running_stats:
            raise ValueError(f"{where}: BatchNorm1d without running statistics uses batch "
                             f"statistics at inference and cannot be exported")
        n = m.num_features
        scale = m.weight.data if m.affine else np.ones(n)
        shift = m.bias.data if m.affine else np.zeros(n)
        return g.op("BatchNormalization",
                    [x, g.const(scale, "bn_scale"), g.const(shift, "bn_bias"),
                     g.const(m.running_mean, "bn_mean"), g.const(m.running_var, "bn_var")],
                    "batchnorm", epsilon=float(m.eps))
    if isinstance(m, nn.LayerNorm):
        shape = m.normalized_shape
        scale = m.weight.data if m.weight is not None else np.ones(shape)
        shift = m.bias.data if m.bias is not None else np.zeros(shape)
        return g.op("LayerNormalization", [x, g.const(scale, "ln_scale"), g.const(shift, "ln_bias")],
                    "layernorm", axis=-len(shape), epsilon=float(m.eps))
    if isinstance(m, nn.Flatten):
        if m.start_axis == 1 and m.end_axis == -1:
            return g.op("Flatten", [x], axis=1)
    if isinstance(m, nn.Residual):
        out = _emit(m.block, x, g, f"{where}.block")
        skip = x if m.projection is None else _emit(m.projection, x, g, f"{where}.projection")
        return g.op("Add", [out, skip], "residual")
    if isinstance(m, nn.Sequential):
        for name, child in m.named_children():
            x = _emit(child, x, g, f"{path}.{name}" if path else name)
        return x
    raise ValueError(f"cannot export layer {where} ({type(m).__name__}) to ONNX; supported: "
                     f"Linear, activations, Dropout, BatchNorm1d/2d, LayerNorm, Residual, "
                     f"Sequential, MLP, Conv1d/2d, pooling, Flatten, RNN, LSTM, GRU, Embedding, "
                     f"PositionalEncoding, MultiheadAttention, TransformerEncoderLayer (a custom "
                     f"Module's forward cannot be read: build the model as nn.Sequential)")


def _emit_conv_pool(m: Any, x: str, g: _OnnxGraph) -> str:
    """ONNX Conv, MaxPool or AveragePool for a (1-D or 2-D) convolution or pooling layer."""
    from . import functional as F
    from . import nn
    one_d = isinstance(m, (nn.Conv1d, nn.MaxPool1d, nn.AvgPool1d))
    n = 1 if one_d else 2
    if isinstance(m, (nn.Conv1d, nn.Conv2d)):
        stride, dilation = F._tuple(m.stride, n, "stride"), F._tuple(m.dilation, n, "dilation")
        if isinstance(m.padding, str):
            k = m.kernel_size if n == 2 else (1,) + m.kernel_size
            pads = F._conv_padding(m.padding, k, (1,) * (2 - n) + dilation, (1,) * (2 - n) + stride)
            pads = pads[2:] if n == 1 else pads
        else:
            pads = tuple(p for p in F._tuple(m.padding, n, "padding") for _ in range(2))
        inputs = [x, g.const(m.weight.data, "conv_weight")]
        if m.bias is not None:
            inputs.append(g.const(m.bias.data, "conv_bias"))
        # ONNX lists all starts, then all ends: (top, left, bottom, right)
        return g.op("Conv", inputs, "conv", kernel_shape=list(m.kernel_size), strides=list(stride),
                    dilations=list(dilation), group=int(m.groups), pads=list(pads[0::2] + pads[1::2]))
    k, s, p = F._pool_args(m.kernel_size, m.stride, m.padding, n, type(m).__name__)
    attrs = {"kernel_shape": list(k), "strides": list(s), "pads": list(p) * 2}
    if isinstance(m, nn.MaxPool2d):  # MaxPool1d is a subclass
        return g.op("MaxPool", [x], "maxpool", dilations=list(F._tuple(m.dilation, n, "dilation")), **attrs)
    return g.op("AveragePool", [x], "avgpool", count_include_pad=1, **attrs)  # PyTorch's default


def _matmul_add(g: _OnnxGraph, x: str, weight: Any, bias: Any = None, hint: str = "linear") -> str:
    """x @ weight.T + bias for an x of any rank (ONNX Gemm takes 2-D only)."""
    y = g.op("MatMul", [x, g.const(np.asarray(backend.to_numpy(weight)).T, f"{hint}_weight")], hint)
    return y if bias is None else g.op("Add", [y, g.const(bias, f"{hint}_bias")], hint)


def _emit_recurrent(m: Any, x: str, g: _OnnxGraph) -> str:
    """ONNX RNN, LSTM or GRU nodes, one per layer, for a (3-D input) recurrent layer.

    Same equations, different bookkeeping: ONNX stacks the gate blocks in another order
    (LSTM i, o, f, c where PyTorch has i, f, g, o; GRU z, r, h where PyTorch has r, z, n),
    keeps both biases in one (directions, 2 * gates * hidden) tensor, and returns Y as
    (T, directions, N, hidden). GRU's ``linear_before_reset=1`` is PyTorch's n = tanh(W x +
    b + r * (U h + c)). The initial states are zeros; the final ones go to ``g.finals``.
    """
    from onnx import helper
    from . import nn
    kind = "LSTM" if isinstance(m, nn.LSTM) else "GRU" if isinstance(m, nn.GRU) else "RNN"
    hid, dirs = m.hidden_size, m.num_directions
    order = {"LSTM": [0, 3, 1, 2], "GRU": [1, 0, 2], "RNN": [0]}[kind]

    def blocks(a: Any) -> np.ndarray:  # PyTorch's gate blocks in ONNX's order
        a = backend.to_numpy(a.data)
        return np.concatenate([a[i * hid:(i + 1) * hid] for i in order])

    if m.batch_first:  # ONNX recurrences read (T, N, features); onnxruntime has no layout=1
        x = g.op("Transpose", [x], "time_major", perm=[1, 0, 2])
    finals: list[list[str]] = [[], []]
    for layer in range(m.num_layers):
        ws = [m._weights(suffix) for suffix in m._suffixes(layer)]
        inputs = [x, g.const(np.stack([blocks(w[0]) for w in ws]), f"{kind.lower()}_W"),
                  g.const(np.stack([blocks(w[1]) for w in ws]), f"{kind.lower()}_R")]
        if m.bias:
            inputs.append(g.const(np.stack([np.concatenate([blocks(w[2]), blocks(w[3])]) for w in ws]),
                                  f"{kind.lower()}_B"))
        outs = [g.fresh(f"{kind.lower()}_Y"), g.fresh(f"{kind.lower()}_Yh")]
        outs += [g.fresh("lstm_Yc")] if kind == "LSTM" else []
        attrs: dict[str, Any] = {"hidden_size": hid,
                                 "direction": "bidirectional" if dirs == 2 else "forward"}
        if kind == "GRU":
            attrs["linear_before_reset"] = 1
        if kind == "RNN":
            attrs["activations"] = ["Tanh" if m.nonlinearity == "tanh" else "Relu"] * dirs
        g.nodes.append(helper.make_node(kind, inputs, outs, **attrs))
        # (T, D, N, H) -> (T, N, D * H): the directions side by side, forward first, as PyTorch
        y = g.op("Transpose", [outs[0]], perm=[0, 2, 1, 3])
        x = g.op("Reshape", [y, g.const([0, 0, -1], "shape", np.int64)], f"{kind.lower()}_out")
        for f, state in zip(finals, outs[1:]):
            f.append(state)
    if m.batch_first:
        x = g.op("Transpose", [x], "batch_major", perm=[1, 0, 2])
    g.seq[x] = (["N", "T"] if m.batch_first else ["T", "N"]) + [dirs * hid]
    g.finals = []
    for label, states in zip(("h_n", "c_n"), finals):
        if states:  # (layers * directions, N, hidden), layer by layer, as PyTorch
            node = states[0] if len(states) == 1 else g.op("Concat", states, label, axis=0)
            g.finals.append((label, node, [m.num_layers * dirs, "N", hid]))
    return x


def _emit_self_attention(m: Any, x: str, g: _OnnxGraph) -> str:
    """Multi-head self-attention as MatMul/Softmax: softmax(q k^T / sqrt(d)) v per head."""
    e, heads, d = m.embed_dim, m.num_heads, m.head_dim
    if not m.batch_first:
        x = g.op("Transpose", [x], perm=[1, 0, 2])  # work in (N, L, E), as the layer does
    w = backend.to_numpy(m.in_proj_weight.data)
    b = None if m.in_proj_bias is None else backend.to_numpy(m.in_proj_bias.data)
    split = g.const([0, 0, heads, d], "heads", np.int64)

    def project(i: int, scale: float, perm: list) -> str:
        rows = slice(i * e, (i + 1) * e)
        y = _matmul_add(g, x, w[rows] * scale, None if b is None else b[rows] * scale, "qkv"[i])
        return g.op("Transpose", [g.op("Reshape", [y, split])], perm=perm)

    # The 1/sqrt(d) score scale is folded into q's projection (one multiply fewer per score).
    q = project(0, 1.0 / math.sqrt(d), [0, 2, 1, 3])   # (N, heads, L, d)
    k = project(1, 1.0, [0, 2, 3, 1])                   # (N, heads, d, L): already transposed
    v = project(2, 1.0, [0, 2, 1, 3])
    p = g.op("Softmax", [g.op("MatMul", [q, k], "scores")], "attention", axis=-1)
    out = g.op("Transpose", [g.op("MatMul", [p, v])], perm=[0, 2, 1, 3])
    out = g.op("Reshape", [out, g.const([0, 0, e], "shape", np.int64)])
    proj = m.out_proj
    out = _matmul_add(g, out, proj.weight.data, None if proj.bias is None else proj.bias.data, "out_proj")
    if not m.batch_first:
        out = g.op("Transpose", [out], perm=[1, 0, 2])
    return out


def _emit_attention_layer(m: Any, x: str, g: _OnnxGraph) -> str:
    """Embedding (Gather), positional encoding (Add of a sliced table), self-attention and the
    transformer encoder layer (attention, feed-forward, residuals, layer norms); no masks."""
    from . import nn
    if isinstance(m, nn.Embedding):
        out = g.op("Gather", [g.const(m.weight.data, "embedding"), x], "embedded", axis=0)
        g.seq[out] = ["N", "T", m.embedding_dim]
        return out
    dims = g.seq.get(x, ["N", "T", None])
    if isinstance(m, nn.PositionalEncoding):
        t = 1 if m.batch_first else 0
        length = g.op("Shape", [x], "length", start=t, end=t + 1)
        pe = g.op("Slice", [g.const(m.pe, "positions"), g.const([0], "start", np.int64), length,
                            g.const([0], "axis", np.int64)], "pe")
        if not m.batch_first:  # (T, d) -> (T, 1, d) to broadcast over the batch axis
            pe = g.op("Unsqueeze", [pe, g.const([1], "axis", np.int64)])
        out = g.op("Add", [x, pe], "positioned")
    elif isinstance(m, nn.MultiheadAttention):
        out = _emit_self_attention(m, x, g)
    else:
        def ff(z: str) -> str:
            h = _matmul_add(g, z, m.linear1.weight.data, _bias(m.linear1), "ff1")
            h = g.op("Relu", [h]) if m.activation == "relu" else _emit_layer(nn.GELU(), h, g, "gelu")
            return _matmul_add(g, h, m.linear2.weight.data, _bias(m.linear2), "ff2")

        sa = lambda z: _emit_self_attention(m.self_attn, z, g)  # noqa: E731
        if m.norm_first:
            x = g.op("Add", [x, sa(_emit_layer(m.norm1, x, g, "norm1"))])
            out = g.op("Add", [x, ff(_emit_layer(m.norm2, x, g, "norm2"))])
        else:
            x = _emit_layer(m.norm1, g.op("Add", [x, sa(x)]), g, "norm1")
            out = _emit_layer(m.norm2, g.op("Add", [x, ff(x)]), g, "norm2")
    g.seq[out] = dims
    return out


def _bias(linear: Any) -> Any:
    return None if linear.bias is None else linear.bias.data


def _sequence_input(m: Any) -> tuple[int, list] | None:
    """(ONNX element type, symbolic shape) of a sequence model's input, None for other models:
    int64 token ids (N, T) before an Embedding, float (N, T, features) before a recurrent or
    attention layer (time first without ``batch_first``)."""
    from onnx import TensorProto
    from . import nn
    first = next((s for s in m.modules() if not isinstance(s, (nn.Sequential, nn.Dropout))), None)
    later = [s for s in m.modules() if hasattr(s, "batch_first")]
    batch_first = later[0].batch_first if later else True
    dims = ["N", "T"] if batch_first else ["T", "N"]
    if isinstance(first, nn.Embedding):
        return TensorProto.INT64, dims
    if isinstance(first, (nn.RNN, nn.LSTM, nn.GRU)):
        return TensorProto.FLOAT, dims + [first.input_size]
    if isinstance(first, (nn.MultiheadAttention, nn.PositionalEncoding)):
        return TensorProto.FLOAT, dims + [getattr(first, "embed_dim", getattr(first, "d_model", None))]
    if isinstance(first, nn.TransformerEncoderLayer):
        return TensorProto.FLOAT, dims + [first.self_attn.embed_dim]
    return None


def _input_shape(m: Any) -> list:
    """The symbolic input shape of an exported module: (N, C, H, W) after a Conv2d first, etc."""
    from . import nn
    for sub in m.modules():
        if isinstance(sub, nn.Conv2d):
            return ["N", sub.in_channels, "H", "W"]
        if isinstance(sub, nn.Conv1d):
            return ["N", sub.in_channels, "L"]
        if isinstance(sub, nn.Linear):
            return ["N", sub.in_features]
    return ["N", None]


def _first_linear_width(m: Any) -> int | None:
    from . import nn
    for sub in m.modules():
        if isinstance(sub, nn.Linear):
            return sub.in_features
    return None


def _estimator_network(est: Any) -> Any:
    """The trained nn.Module inside an estimator (the attribute that holds one)."""
    from .nn.module import Module
    for name in ("module_", "model_", "network_", "net_"):
        if isinstance(getattr(est, name, None), Module):
            return getattr(est, name)
    found = [v for v in vars(est).values() if isinstance(v, Module)]
    if len(found) == 1:
        return found[0]
    raise ValueError(f"{type(est).__name__}: cannot find its network to export")


def _emit_estimator(est: Any, x: str, g: _OnnxGraph, outputs: list) -> None:
    """Network plus head: probabilities and labels for classifiers, values for regressors."""
    from onnx import TensorProto
    if hasattr(est, "_emit_onnx"):  # an estimator that writes its own nodes (TabularClassifier)
        est._emit_onnx(x, g, outputs)
        return
    if hasattr(est, "coef_") and not hasattr(est, "predict_proba"):  # linear models (Perceptron)
        coef = np.atleast_2d(np.asarray(est.coef_, np.float64))
        intercept = np.atleast_1d(np.asarray(est.intercept_, np.float64))
        z = g.op("Gemm", [x, g.const(coef, "coef"), g.const(intercept, "intercept")], "score", transB=1)
        if coef.shape[0] == 1:
            idx = g.op("Cast", [g.op("GreaterOrEqual", [z, g.const(0.0, "zero")])], to=TensorProto.INT64)
            idx = g.op("Squeeze", [idx, g.const([1], "axis", np.int64)])
        else:
            idx = g.op("ArgMax", [z], axis=1, keepdims=0)
        outputs.append(("scores", z, TensorProto.FLOAT, ["N", coef.shape[0]]))
        _label_output(est, idx, g, outputs)
        return
    net = _estimator_network(est)
    net.eval()
    image = getattr(est, "image_shape_", None)
    if image is not None:  # CNNClassifier: flat rows (N, C*H*W) -> images (N, C, H, W)
        x = g.op("Reshape", [x, g.const([-1, *image], "image_shape", np.int64)], "images")
    z = _emit(net, x, g, "")
    act = getattr(est, "out_activation_", "softmax" if hasattr(est, "classes_") else "identity")
    width = _final_width(net)
    if act == "exp":  # Poisson regression
        z = g.op("Exp", [z])
    if not hasattr(est, "classes_"):
        if getattr(est, "n_outputs_", width) == 1:  # a single target predicts shape (N,), as sklearn
            z = g.op("Reshape", [z, g.const([-1], "shape", np.int64)])
            outputs.append(("prediction", z, TensorProto.FLOAT, ["N"]))
        else:
            outputs.append(("prediction", z, TensorProto.FLOAT, ["N", width]))
        return
    n_classes = len(est.classes_)
    if act == "logistic" and width == 1:  # binary: one logit, probabilities [1 - p, p]
        p = g.op("Sigmoid", [z])
        proba = g.op("Concat", [g.op("Sub", [g.const(1.0, "one"), p]), p], axis=1)
    elif act == "logistic":
        raise ValueError("export_onnx does not support multilabel classifiers")
    else:
        proba = g.op("Softmax", [z], axis=1)
    outputs.append(("probabilities", proba, TensorProto.FLOAT, ["N", n_classes]))
    _label_output(est, g.op("ArgMax", [proba], axis=1, keepdims=0), g, outputs)


def _final_width(net: Any) -> int | None:
    from . import nn
    last = None
    for sub in net.modules():
        if isinstance(sub, nn.Linear):
            last = sub.out_features
    return last


def _label_output(est: Any, idx: str, g: _OnnxGraph, outputs: list) -> None:
    """Map class indices to the labels themselves (numbers or strings) with a Gather."""
    from onnx import TensorProto
    classes = np.asarray(est.classes_)
    if classes.dtype.kind in "iub":
        labels = g.op("Gather", [g.const(classes, "classes", np.int64), idx], "label")
        outputs.append(("label", labels, TensorProto.INT64, ["N"]))
    elif classes.dtype.kind == "f":
        labels = g.op("Gather", [g.const(classes, "classes", np.float32), idx], "label")
        outputs.append(("label", labels, TensorProto.FLOAT, ["N"]))
    elif classes.dtype.kind in "USO":
        const = g.fresh("classes")
        g.initializers.append(g.helper.make_tensor(const, TensorProto.STRING, [len(classes)],
                                                   [str(c).encode("utf-8") for c in classes]))
        labels = g.op("Gather", [const, idx], "label")
        outputs.append(("label", labels, TensorProto.STRING, ["N"]))
    else:
        outputs.append(("label", idx, TensorProto.INT64, ["N"]))


def export_onnx(obj: Any, path: str | os.PathLike, opset: int = 17) -> Path:
    """Write a model as an ONNX graph for onnxruntime and other runtimes.

    An ``nn.Module`` maps input ``"input"`` (float32, (N, in_features)) to ``"output"``.
    A classifier gives ``"probabilities"`` (softmax or sigmoid head) and ``"label"``; a
    regressor ``"prediction"``. A CLI model takes ``"features"``: the columns listed in the
    model's ``feature_names`` metadata, numbers raw (NaN allowed: the median imputation and
    the standardisation are part of the graph) and categories one-hot.
    Dropout is left out; batch norm uses its running statistics. Needs ``opset >= 17``.
    Sequence models: an ``nn.Sequential`` starting with ``Embedding`` takes int64 token ids
    (N, T); a bare ``RNN``/``LSTM``/``GRU`` (ONNX's own operators, zero initial states) also
    outputs ``"h_n"`` (and ``"c_n"``); attention becomes MatMul/Softmax nodes (no masks).

    Example: ``nl.export_onnx(clf, "model.onnx", opset=17)``
    """
    import onnx
    from onnx import TensorProto, helper

    from . import nn
    from .nn.module import Module
    from .preprocessing import TabularModel
    if opset < 17:
        raise ValueError(f"export_onnx needs opset >= 17 (LayerNormalization), got {opset}")
    g = _OnnxGraph(opset)
    outputs: list = []
    props = {"neuralab_version": _version()}
    if isinstance(obj, Module):
        n_in = _first_linear_width(obj)
        was_training = obj.training
        obj.eval()
        seq_input = _sequence_input(obj)
        if seq_input is not None and len(seq_input[1]) == 3:
            g.seq["input"] = seq_input[1]
        try:
            out = _emit(obj, "input", g, "")
        finally:
            obj.train(was_training)
        elem, shape = seq_input or (TensorProto.FLOAT, _input_shape(obj))
        inputs = [helper.make_tensor_value_info("input", elem, shape)]
        g.op("Identity", [out], out="output")
        outputs.append(("output", "output", TensorProto.FLOAT,
                        g.seq.get(out) or ["N", _final_width(obj) or "M"]))
        if isinstance(obj, (nn.RNN, nn.LSTM, nn.GRU)):  # a bare recurrent layer: its final states too
            outputs += [(label, node, TensorProto.FLOAT, shape) for label, node, shape in g.finals]
    else:
        if isinstance(obj, TabularModel):
            prep, est = obj.preprocessor, obj.estimator
            median, mean, std = prep.scaling()
            name, n_in = "features", len(median)
            # Missing numbers -> the training median, then standardise: the CLI's preprocessing.
            # In float64, as neuralab does it: a column like a year (2023 - 2022.37) loses
            # 1e-4 to float32 rounding of the mean otherwise.
            x = g.op("Cast", ["features"], "features64", to=TensorProto.DOUBLE)
            x = g.op("Where", [g.op("IsNaN", [x]), g.const(median, "median", np.float64), x],
                     "imputed")
            x = g.op("Div", [g.op("Sub", [x, g.const(mean, "mean", np.float64)]),
                             g.const(std, "std", np.float64)])
            x = g.op("Cast", [x], "scaled", to=TensorProto.FLOAT)
            props["feature_names"] = json.dumps(prep.feature_names, ensure_ascii=False)
            if prep.spec.get("classes") is not None:
                props["classes"] = json.dumps(prep.spec["classes"], ensure_ascii=False)
        elif _is_estimator(obj):
            # a tabular estimator's graph takes its encoded columns (``_onnx_input_width``)
            n_in = getattr(obj, "_onnx_input_width", None) or getattr(obj, "n_features_in_", None)
            est, name, x = obj, "input", "input"
            if getattr(obj, "feature_names_in_", None) is not None:
                props["feature_names"] = json.dumps([str(n) for n in obj.feature_names_in_])
        else:
            raise TypeError(f"export_onnx expects an nn.Module, a fitted estimator or a CLI "
                            f"model, got {type(obj).__name__}")
        inputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", n_in])]
        _emit_estimator(est, x, g, outputs)
        if isinstance(obj, TabularModel) and obj.task == "regression":
            # The network predicts the standardised target: scale back to the data's units.
            i, (o_name, node, t, shape) = next((i, o) for i, o in enumerate(outputs)
                                              if o[0] == "prediction")
            spec = obj.preprocessor.spec
            node = g.op("Add", [g.op("Mul", [node, g.const(spec["target_std"], "target_std")]),
                                g.const(spec["target_mean"], "target_mean")], "unscaled")
            outputs[i] = (o_name, node, t, shape)
        if isinstance(obj, TabularModel) and obj.task == "classification":
            # The estimator was trained on class indices; give the user's labels instead.
            idx = next(o for o in outputs if o[0] == "label")
            outputs.remove(idx)
            est_classes = np.asarray(est.classes_)
            labels = np.asarray(obj.preprocessor.spec["classes"], dtype=object)[est_classes]
            fake = type("_Labels", (), {"classes_": np.asarray(labels.tolist())})()
            index = g.op("ArgMax", [next(o[1] for o in outputs if o[0] == "probabilities")],
                         axis=1, keepdims=0)
            _label_output(fake, index, g, outputs)
    for out_name, node_out, _, _ in outputs:  # give each output its public name
        if node_out != out_name:
            for node in g.nodes:
                node.output[:] = [out_name if o == node_out else o for o in node.output]
                node.input[:] = [out_name if i == node_out else i for i in node.input]
    graph = helper.make_graph(
        g.nodes, "neuralab", inputs,
        [helper.make_tensor_value_info(n, t, s) for n, _, t, s in outputs],
        initializer=g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="neuralab", producer_version=_version())
    model.ir_version = min(model.ir_version, 9)  # readable by onnxruntime releases of 2024+
    helper.set_model_props(model, props)
    onnx.checker.check_model(model, full_check=True)
    path = Path(path)
    _atomic_write(path, model.SerializeToString())
    return path
