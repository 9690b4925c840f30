"""Model files nothing can subvert: no pickle, fuzzed files fail cleanly, saves are atomic.

The fuzz tests mutate real model files (an estimator and a network): truncation, flipped,
inserted and deleted bytes, rewritten header JSON, shapes that contradict the metadata,
structural damage (offsets, metadata of the wrong type, deep nesting), and *re-signed* files:
the record edited (wrong types, huge sizes, foreign classes, control characters) and the
checksum recomputed, as anyone can. Every mutant must load or raise ``ModelFileError`` --
never another exception, never code execution -- and no load may take 50 MB.
"""
from __future__ import annotations

import json
import os
import random
import re
import struct
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest

import neuralab as nl
from neuralab import io as nio
from neuralab.io import ModelFileError

PACKAGE = Path(nl.__file__).parent
FUZZ_CASES = 2500


def test_no_pickle_anywhere_in_the_package():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        # joblib is allowed as a parallel backend (tuning), never to store or read files.
        for pattern in (r"\bimport\s+(c?pickle|dill|shelve|marshal)\b",
                        r"\bfrom\s+(c?pickle|dill|shelve|marshal)\b", r"\bjoblib\.(load|dump)\b",
                        r"\bpickle\.", r"allow_pickle\s*=\s*True", r"\btorch\.load\b"):
            if re.search(pattern, text):
                offenders.append(f"{path.relative_to(PACKAGE)}: {pattern}")
    assert offenders == []


def _models(tmp_path_factory):
    from sklearn.datasets import load_iris
    X, y = load_iris(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = nl.MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0).fit(X, y)
    d = tmp_path_factory.mktemp("fuzz")
    nl.save(clf, d / "clf.safetensors")
    net = nl.nn.Sequential(nl.nn.Linear(3, 4, rng=np.random.default_rng(0)), nl.nn.ReLU(),
                           nl.nn.Linear(4, 2, rng=np.random.default_rng(1)))
    nl.save(net, d / "net.safetensors")
    return {name: (d / f"{name}.safetensors").read_bytes() for name in ("clf", "net")}, X


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    return _models(tmp_path_factory)


def _header(data: bytes) -> tuple[dict, bytes]:
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n]), data[8 + n:]


def _with_header(header, body: bytes) -> bytes:
    raw = json.dumps(header).encode() if not isinstance(header, bytes) else header
    return struct.pack("<Q", len(raw)) + raw + body


def resign(data: bytes, edit) -> bytes:
    """``data`` with its neuralab record changed by ``edit(record)`` and the checksum
    recomputed exactly as the loader checks it: what anyone can do to a model file."""
    from safetensors.numpy import load as st_load
    header, body = _header(data)
    meta = header["__metadata__"]
    record = json.loads(meta["neuralab"])
    tensors = st_load(data)
    tensors.pop("__empty__", None)
    for key in record.get("scalar_arrays", ()):
        tensors[key] = tensors[key].reshape(())
    text = json.dumps(edit(record))
    for marker, nested in _DEEP.items():
        text = text.replace(marker, nested)
    meta["neuralab"] = text
    meta["sha256"] = nio.model_file._digest(meta["neuralab"], tensors, meta)
    return _with_header(header, body)


def _mutate(data: bytes, kind: str, pos: int, value: int, length: int) -> bytes:
    pos = pos % len(data)
    if kind == "truncate":
        return data[:pos]
    if kind == "flip":
        return data[:pos] + bytes([data[pos] ^ (value or 1)]) + data[pos + 1:]
    if kind == "insert":
        return data[:pos] + bytes([value]) * length + data[pos:]
    if kind == "delete":
        return data[:pos] + data[pos + length:]
    if kind == "append":
        return data + bytes([value]) * length
    header, body = _header(data)
    names = [k for k in header if k != "__metadata__"]
    if kind == "shape" and names:  # a tensor's shape contradicting its bytes / the metadata
        name = names[pos % len(names)]
        header[name]["shape"] = [max(1, value)] + header[name]["shape"][1:]
        return _with_header(header, body)
    if kind == "dtype" and names:
        header[names[pos % len(names)]]["dtype"] = ["F64", "I64", "U8", "BOOL", "F16"][value % 5]
        return _with_header(header, body)
    meta = header["__metadata__"]
    if kind == "metadata-json":  # the neuralab record is no longer valid JSON
        meta["neuralab"] = meta["neuralab"][:pos % max(1, len(meta["neuralab"]))]
    elif kind == "metadata-edit":  # valid JSON, edited (e.g. a class name -> os.system)
        meta["neuralab"] = meta["neuralab"].replace('"MLPClassifier"', '"system"').replace(
            '"neuralab.estimators.mlp"', '"os"').replace('"Linear"', '"eval"')
    elif kind == "version":
        meta["format_version"] = str(value - 100)
    return _with_header(header, body)


KINDS = ["truncate", "flip", "insert", "delete", "append", "shape", "dtype", "metadata-json",
         "metadata-edit", "version"]


def _structural(data: bytes) -> list[tuple[str, bytes]]:
    """Damage that needs no checksum: it breaks the file's form before the checksum is read."""
    header, body = _header(data)
    name = next(k for k in header if k != "__metadata__")
    cases = []

    def edit(label, change):
        h = json.loads(json.dumps(header))
        change(h)
        cases.append((label, _with_header(h, body)))

    edit("offsets-one", lambda h: h[name].update(data_offsets=[0]))
    edit("offsets-text", lambda h: h[name].update(data_offsets="0,8"))
    edit("offsets-negative", lambda h: h[name].update(data_offsets=[-8, 0]))
    edit("shape-text", lambda h: h[name].update(shape="big"))
    edit("entry-a-list", lambda h: h.update({name: [1, 2]}))
    edit("metadata-a-string", lambda h: h.update(__metadata__="neuralab"))
    edit("metadata-a-list", lambda h: h.update(__metadata__=["neuralab"]))
    edit("version-a-list", lambda h: h["__metadata__"].update(format_version=[1]))
    edit("version-huge", lambda h: h["__metadata__"].update(format_version="9" * 5000))
    edit("record-a-number", lambda h: h["__metadata__"].update(neuralab=5))
    edit("digest-version", lambda h: h["__metadata__"].update(digest_version="7"))
    cases.append(("header-nested", _with_header(b"[" * 30000 + b"]" * 30000, body)))
    cases.append(("header-nested-object", _with_header(b'{"a":' * 30000 + b"1" + b"}" * 30000, body)))
    cases.append(("header-size-huge", struct.pack("<Q", 2**40) + data[8:]))
    cases.append(("header-size-zero", struct.pack("<Q", 0) + data[8:]))
    return cases


# Replacement values for re-signed files: wrong types, huge sizes, classes the loader must
# not build, control characters, deep nesting, tags pointing at nothing.
NASTY = [
    None, True, -1, 0, 10**12, 10**400, 1e308, "", "\x1b[2J\x1b]0;owned\x07", [], {}, [[[]]],
    "x" * 1000, {"__tuple__": 3}, {"__dict__": []}, {"__array__": "nope"}, {"__scalar__": 5},
    {"__dtype__": "V100000000"}, {"__dtype__": "O"}, {"__list__": [1], "dtype": "U99999999"},
    {"__objarray__": [1, 2], "dtype": "str", "shape": [3]}, {"__ref__": "nope", "path": "x"},
    {"__rng__": {"bit_generator": "PCG64", "state": 5}}, {"__rng__": {"bit_generator": "os"}},
    {"__history__": 1, "epoch": "x"}, {"__float__": "1e999999"}, {"__layer__": {}},
    {"__module__": {"class": "Linear", "module": "neuralab.nn.layers",
                    "config": {"in_features": 30000, "out_features": 30000}, "state": []},
     "prefix": "p"},
    {"__estimator__": {"class": "LogisticRegression", "module": "sklearn.linear_model",
                       "params": {}, "attributes": {}}},
    {"__estimator__": {"class": "conftest", "module": "sklearn.conftest", "params": {},
                       "attributes": {}}},
    {"__estimator__": {"class": "LabelBinarizer", "module": "sklearn.preprocessing._label",
                       "params": {}, "attributes": {"__class__": 1, "transform": 2}}},
    "__DEEP5000__", "__DEEP150__",  # nested lists, spliced into the JSON text
]
_DEEP = {'"__DEEP5000__"': "[" * 5000 + "]" * 5000, '"__DEEP150__"': "[" * 150 + "]" * 150}


def _paths(obj, path=()):
    yield path
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, (*path, i))


def _replace(record, path, value):
    if not path:
        return value
    target = record
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE and isinstance(target, dict):
        del target[path[-1]]
    else:
        target[path[-1]] = None if value is _DELETE else value
    return record


_DELETE = object()
BYTE_CASES = 1200
RESIGNED_CASES = 1000
FUZZ_CASES = BYTE_CASES + RESIGNED_CASES  # + the structural and named attack files
PEAK_BYTES = 50 * 2**20


class _Loads:
    """Loads mutants, requiring ModelFileError or a clean load, and each load's peak memory
    (tracemalloc, which sees NumPy's arrays) under PEAK_BYTES."""

    def __init__(self, path):
        self.path, self.peak, self.errors, self.loaded, self.watched = path, 0, 0, 0, 0

    def load(self, data: bytes, label: str, watch: bool = True):
        # A new name each time: rewriting one file in place is 40x slower on ext4, whose
        # truncate-then-write flushes (auto_da_alloc).
        path = self.path.with_name(f"m{self.errors + self.loaded}.safetensors")
        path.write_bytes(data)
        if watch:  # tracemalloc makes a load 4x slower: started only for the loads watched
            tracemalloc.start()
        try:
            model = nl.load(path)
        except ModelFileError as e:
            message = str(e)
            assert message and "\n" not in message and "\x1b" not in message, (label, message)
            model = None
            self.errors += 1
        except BaseException as e:  # anything else escaping is the failure this test hunts
            raise AssertionError(f"{label}: {type(e).__name__} escaped nl.load: {e}"[:500]) from None
        else:
            self.loaded += 1
        finally:
            path.unlink()
            if watch:
                peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
        if watch:
            self.peak, self.watched = max(self.peak, peak), self.watched + 1
            assert peak < PEAK_BYTES, (label, peak)
        return model


@pytest.fixture()
def loads(tmp_path, originals):
    files, _ = originals
    for data in files.values():  # import what a load needs before measuring
        (tmp_path / "warm.safetensors").write_bytes(data)
        nl.load(tmp_path / "warm.safetensors")
    yield _Loads(tmp_path / "m.safetensors")


def test_byte_level_mutants_fail_cleanly_or_load_the_same_model(originals, tmp_path):
    # No memory watch here (tracemalloc slows every load): a mutant that fails the checksum
    # never reaches the decoder, and the re-signed test below watches what gets past it.
    files, X = originals
    loads = _Loads(tmp_path / "m.safetensors")
    rng = random.Random(0)
    same = {name: nl.load(_write(loads.path.with_name(f"{name}.orig"), data))
            for name, data in files.items()}
    for case in range(BYTE_CASES):
        which, kind = rng.choice(sorted(files)), KINDS[case % len(KINDS)]
        data = _mutate(files[which], kind, rng.randrange(10**6), rng.randrange(256),
                       rng.randrange(1, 65))
        model = loads.load(data, f"{which}/{kind}/{case}", watch=False)
        if model is None:
            continue
        # Loaded: only possible when the mutation changed nothing that matters (e.g. the
        # header JSON re-serialised, a dtype set to the one it had): the same model.
        if which == "clf":
            np.testing.assert_array_equal(model.predict_proba(X), same["clf"].predict_proba(X))
        else:
            a, b = model.state_dict(), same["net"].state_dict()
            assert a.keys() == b.keys()
            for k in a:
                np.testing.assert_array_equal(a[k], b[k])
    print(f"byte-level: {BYTE_CASES} mutants, {loads.errors} refused, {loads.loaded} loaded "
          f"unchanged")
    assert loads.errors > BYTE_CASES // 2


def _write(path, data):
    path.write_bytes(data)
    return path


def test_structurally_damaged_files_raise_model_file_error(originals, loads):
    files, _ = originals
    cases = [(f"{which}/{label}", data) for which in sorted(files)
             for label, data in _structural(files[which])]
    for label, data in cases:
        assert loads.load(data, label) is None, f"{label} loaded"
    assert loads.peak < PEAK_BYTES
    assert len(cases) == 30


def test_resigned_mutants_raise_model_file_error_within_a_small_memory(originals, loads):
    files, _ = originals
    rng = random.Random(1)
    records = {name: json.loads(_header(data)[0]["__metadata__"]["neuralab"])
               for name, data in files.items()}
    paths = {name: list(_paths(rec)) for name, rec in records.items()}
    for case in range(RESIGNED_CASES):
        which = rng.choice(sorted(files))
        path = rng.choice(paths[which])
        value = rng.choice([*NASTY, _DELETE])
        data = resign(files[which], lambda rec: _replace(rec, path, json.loads(json.dumps(value))
                                                         if value is not _DELETE else value))
        # Memory is watched where sizes are attacked (numbers, tagged values) and on every
        # 8th other case.
        sized = (isinstance(value, (int, float)) and not isinstance(value, bool)
                 or isinstance(value, dict) and {"__module__", "__dtype__", "__list__"} & set(value))
        loads.load(data, f"{which}/{path}={str(value)[:40]}", watch=sized or case % 8 == 0)
    print(f"re-signed: {RESIGNED_CASES} mutants, {loads.errors} refused, {loads.loaded} loaded; "
          f"memory watched on {loads.watched}, largest peak {loads.peak / 2**20:.2f} MB")
    assert loads.errors > RESIGNED_CASES // 2


def test_fuzz_case_count():
    print(f"fuzz: {FUZZ_CASES} mutated model files per run (+ 30 structural)")
    assert FUZZ_CASES >= 2000


def test_failed_write_leaves_no_half_written_file(tmp_path, monkeypatch):
    net = nl.nn.Sequential(nl.nn.Linear(50, 50, rng=np.random.default_rng(0)))
    target = tmp_path / "model.safetensors"
    nl.save(net, target)
    before = target.read_bytes()

    real_fdopen = os.fdopen

    class FailingFile:
        """Writes half of the bytes, then fails as a full disk would."""

        def __init__(self, f):
            self.f = f

        def write(self, data):
            self.f.write(data[: len(data) // 2])
            raise OSError(28, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    from neuralab.io import files as nio_files
    monkeypatch.setattr(nio_files.os, "fdopen", lambda *a, **k: FailingFile(real_fdopen(*a, **k)))
    bigger = nl.nn.Sequential(nl.nn.Linear(50, 60, rng=np.random.default_rng(1)))
    with pytest.raises(OSError, match="No space left"):
        nl.save(bigger, target)
    with pytest.raises(OSError):
        nl.save(bigger, tmp_path / "new.safetensors")
    monkeypatch.undo()
    assert target.read_bytes() == before  # the old model is intact
    assert not (tmp_path / "new.safetensors").exists()  # no half file under the new name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]  # no temp files
    np.testing.assert_array_equal(nl.load(target).state_dict()["0.weight"],
                                  net.state_dict()["0.weight"])


def test_failed_rename_leaves_the_old_file(tmp_path, monkeypatch):
    net = nl.nn.Sequential(nl.nn.Linear(4, 4, rng=np.random.default_rng(0)))
    target = tmp_path / "model.safetensors"
    nl.save(net, target)
    before = target.read_bytes()

    def fail(*a, **k):
        raise OSError(5, "Input/output error")

    from neuralab.io import files as nio_files
    monkeypatch.setattr(nio_files.os, "replace", fail)
    with pytest.raises(OSError):
        nl.save(nl.nn.Sequential(nl.nn.Linear(4, 5)), target)
    monkeypatch.undo()
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]
