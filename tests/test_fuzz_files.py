"""Model files nothing can subvert: no pickle, fuzzed files fail cleanly, saves are atomic.

The fuzz test mutates real model files (an estimator and a CLI model): truncation, flipped
bytes, inserted and deleted bytes, rewritten header JSON, shapes that contradict the
metadata. Every mutant must load identically (the mutation was a no-op) or raise
``ModelFileError`` -- never another exception, never code execution.
"""
from __future__ import annotations

import json
import os
import re
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


def _with_header(header: dict, body: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + body


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


@settings(max_examples=FUZZ_CASES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(which=st.sampled_from(["clf", "net"]), kind=st.sampled_from(KINDS),
       pos=st.integers(0, 10**6), value=st.integers(0, 255), length=st.integers(1, 64))
def test_fuzzed_model_files_fail_cleanly(originals, tmp_path, which, kind, pos, value, length):
    files, X = originals
    data = _mutate(files[which], kind, pos, value, length)
    path = tmp_path / "m.safetensors"
    path.write_bytes(data)
    try:
        model = nl.load(path)
    except ModelFileError as e:
        assert str(e) and "\n" not in str(e).strip()
        return
    # Loaded: only possible when the mutation changed nothing that matters (e.g. the header
    # JSON re-serialised, a dtype set to the one it had): the same model must come back.
    original = tmp_path / "original.safetensors"
    original.write_bytes(files[which])
    same = nl.load(original)
    if which == "clf":
        np.testing.assert_array_equal(model.predict_proba(X), same.predict_proba(X))
    else:
        a, b = model.state_dict(), same.state_dict()
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])


def test_fuzz_case_count():
    print(f"fuzz: {FUZZ_CASES} mutated model files per run")
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
