"""Model files: round trips predict bit-identically, no pickle, atomic writes, clear errors."""
from __future__ import annotations

import json
import os
import pickle
import struct
import warnings

import numpy as np
import pytest

import neuralab as nl
from neuralab import nn
from neuralab.io import ModelFileError

RNG = np.random.default_rng(0)
X5 = RNG.normal(size=(9, 5)).astype(np.float32)


def _warm_up(model, x):
    """One training-mode pass so batch norm has non-trivial running statistics."""
    model.train()
    model(x)
    model.eval()
    return model


ARCHITECTURES = {
    "sequential": lambda: nn.Sequential(nn.Linear(5, 7, rng=1), nn.ReLU(), nn.Dropout(0.3, rng=2),
                                        nn.Linear(7, 3, rng=3)),
    "mlp_bn_residual_gelu": lambda: nn.MLP(5, hidden=(8, 8), out_features=3, activation="gelu",
                                           dropout=0.2, norm="batch", residual=True, rng=0),
    "mlp_layernorm_tanh_softmax": lambda: nn.MLP(5, hidden=(6,), out_features=4, activation="tanh",
                                                 norm="layer", output_activation="softmax", rng=1),
    "residual_projection": lambda: nn.Sequential(
        nn.Residual(nn.Sequential(nn.Linear(5, 6, rng=0), nn.LeakyReLU(0.2)), 5, 6, rng=1),
        nn.Sigmoid(), nn.Linear(6, 2, bias=False, rng=2)),
    "float64": lambda: nn.MLP(5, hidden=(4,), out_features=2, rng=0, dtype="float64"),
}


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_module_round_trip_is_bit_identical(tmp_path, name):
    model = _warm_up(ARCHITECTURES[name](), X5)
    path = nl.save(model, tmp_path / "m.safetensors")
    loaded = nl.load(path)
    assert type(loaded) is type(model)
    assert repr(loaded) == repr(model)
    want, got = model.state_dict(), loaded.state_dict()
    assert list(got) == list(want)
    for k in want:
        assert got[k].dtype == want[k].dtype and np.array_equal(got[k], want[k]), k
    x = X5.astype(model.state_dict()["0.weight" if "0.weight" in want else next(iter(want))].dtype)
    assert loaded.training is False
    assert np.array_equal(loaded(x).data, model(x).data)


def test_sequential_built_by_append_and_named_children(tmp_path):
    from collections import OrderedDict
    model = nn.Sequential(OrderedDict(inp=nn.Linear(5, 4, rng=0), act=nn.Tanh()))
    model.append(nn.Linear(4, 2, rng=1))
    loaded = nl.load(nl.save(model, tmp_path / "m.safetensors"))
    assert list(loaded.state_dict()) == ["inp.weight", "inp.bias", "2.weight", "2.bias"]
    assert np.array_equal(loaded(X5).data, model(X5).data)


def test_training_mode_is_restored(tmp_path):
    model = nn.Sequential(nn.Linear(5, 2, rng=0), nn.Dropout(0.5, rng=0)).train()
    loaded = nl.load(nl.save(model, tmp_path / "m.safetensors"))
    assert loaded.training is True and loaded[1].training is True


def test_model_changed_after_construction_is_refused(tmp_path):
    model = nn.MLP(5, hidden=(4,), out_features=2, rng=0)
    model.append(nn.Linear(2, 2, rng=0))  # MLP's arguments no longer describe it
    with pytest.raises(TypeError, match="changed after it was built"):
        nl.save(model, tmp_path / "m.safetensors")
    assert not (tmp_path / "m.safetensors").exists()


class Scale(nn.Module):
    def __init__(self, n: int, factor: float = 2.0):
        super().__init__()
        self.factor = factor
        self.w = nn.Parameter(np.full(n, factor, np.float32))

    def forward(self, x):
        return x * self.w


def test_custom_module_needs_custom_objects(tmp_path):
    model = nn.Sequential(nn.Linear(5, 3, rng=0), Scale(3, factor=3.0))
    path = nl.save(model, tmp_path / "m.safetensors")
    with pytest.raises(ModelFileError, match=r"Scale.*custom_objects"):
        nl.load(path)
    loaded = nl.load(path, custom_objects={"Scale": Scale})
    assert loaded[1].factor == 3.0
    assert np.array_equal(loaded(X5).data, model(X5).data)


# ----------------------------------------------------------------------------- estimators
@pytest.fixture(scope="module")
def iris():
    from sklearn.datasets import load_iris
    X, y = load_iris(return_X_y=True)
    return X.astype(np.float32), np.array(["setosa", "versicolor", "virginica"])[y]


def _fit_quiet(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y)


def test_classifier_round_trip(tmp_path, iris):
    X, y = iris
    clf = _fit_quiet(nl.MLPClassifier((16,), max_iter=15, batch_norm=True, dropout=0.1,
                                      random_state=0), X, y)
    loaded = nl.load(nl.save(clf, tmp_path / "clf.safetensors"))
    assert type(loaded) is nl.MLPClassifier
    assert loaded.get_params() == clf.get_params()
    assert list(loaded.classes_) == ["setosa", "versicolor", "virginica"]
    assert np.array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert np.array_equal(loaded.predict(X), clf.predict(X))
    assert loaded.n_iter_ == clf.n_iter_ and loaded.loss_curve_ == clf.loss_curve_
    # Attributes that pointed into the network point into the loaded network again.
    assert loaded._linears[0] is loaded.model_[0][0]
    meta = nl.io.read_metadata(tmp_path / "clf.safetensors")
    assert meta["kind"] == "estimator" and meta["classes"] == list(clf.classes_)
    assert meta["training"]["n_iter"] == 15
    # Training can continue after loading (with a fresh optimizer).
    loaded.partial_fit(X, y)
    assert loaded.n_iter_ >= 1


def test_regressor_with_feature_names_round_trip(tmp_path):
    import pandas as pd
    from sklearn.datasets import load_diabetes
    frame = load_diabetes(as_frame=True).frame
    X, y = frame.drop(columns="target").astype("float32"), frame["target"].to_numpy()
    reg = _fit_quiet(nl.MLPRegressor(hidden_layer_sizes=(8,), max_iter=10, random_state=0), X, y)
    loaded = nl.load(nl.save(reg, tmp_path / "reg.safetensors"))
    assert list(loaded.feature_names_in_) == list(X.columns)
    assert np.array_equal(loaded.predict(X), reg.predict(X))
    assert nl.io.read_metadata(tmp_path / "reg.safetensors")["feature_names"] == list(X.columns)
    assert isinstance(X, pd.DataFrame)


def test_perceptron_round_trip(tmp_path, iris):
    X, y = iris
    p = _fit_quiet(nl.Perceptron(max_iter=20, random_state=0), X, y)
    loaded = nl.load(nl.save(p, tmp_path / "p.safetensors"))
    assert np.array_equal(loaded.coef_, p.coef_) and loaded.coef_.dtype == p.coef_.dtype
    assert np.array_equal(loaded.predict(X), p.predict(X))


def test_unfitted_estimator_is_refused(tmp_path):
    with pytest.raises(ValueError, match="not fitted"):
        nl.save(nl.MLPClassifier(), tmp_path / "x.safetensors")


# ----------------------------------------------------------------------------- safety
def test_loading_never_unpickles(tmp_path, monkeypatch, iris):
    X, y = iris
    clf = _fit_quiet(nl.MLPClassifier((4,), max_iter=3, random_state=0), X, y)
    path = nl.save(clf, tmp_path / "clf.safetensors")

    def forbidden(*args, **kwargs):
        raise AssertionError("pickle was used")
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    assert np.array_equal(nl.load(path).predict(X), clf.predict(X))


def _header(path):
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return data, n, json.loads(data[8:8 + n])


def test_file_is_plain_safetensors_with_json_metadata(tmp_path):
    from safetensors.numpy import load_file
    model = nn.Sequential(nn.Linear(5, 3, rng=0))
    path = nl.save(model, tmp_path / "m.safetensors")
    tensors = load_file(path)  # any safetensors reader gets the PyTorch-style weights
    assert sorted(tensors) == ["0.bias", "0.weight"]
    _, _, header = _header(path)
    meta = header["__metadata__"]
    assert meta["format"] == "neuralab" and meta["format_version"] == "1"
    record = json.loads(meta["neuralab"])
    assert record["architecture"]["class"] == "Sequential"
    assert record["neuralab_version"] == nl.__version__


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    old = nn.Sequential(nn.Linear(5, 3, rng=0))
    nl.save(old, path)
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        nl.save(nn.Sequential(nn.Linear(5, 3, rng=1)), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]  # no temp file left


@pytest.fixture
def saved(tmp_path):
    model = _warm_up(nn.MLP(5, hidden=(6,), out_features=2, norm="batch", rng=0), X5)
    return nl.save(model, tmp_path / "m.safetensors")


def test_truncated_file(saved):
    data = saved.read_bytes()
    saved.write_bytes(data[:-7])
    with pytest.raises(ModelFileError, match="truncated"):
        nl.load(saved)
    saved.write_bytes(data[:20])
    with pytest.raises(ModelFileError, match="truncated"):
        nl.load(saved)


def test_modified_weight_byte_is_detected(saved):
    data = bytearray(saved.read_bytes())
    data[-3] ^= 0x40  # a bit inside the last tensor
    saved.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="checksum"):
        nl.load(saved)


def test_modified_metadata_is_detected(saved):
    from safetensors.numpy import load_file, save_file
    tensors = load_file(saved)
    _, _, header = _header(saved)
    meta = header["__metadata__"]
    record = json.loads(meta["neuralab"])
    assert record["architecture"]["config"]["activation"] == "relu"
    record["architecture"]["config"]["activation"] = "tanh"  # same weights, different model
    meta["neuralab"] = json.dumps(record)
    save_file(tensors, saved, metadata=meta)
    with pytest.raises(ModelFileError, match="checksum"):
        nl.load(saved)


def test_newer_format_version_is_refused(saved):
    from safetensors.numpy import load_file, save_file
    tensors = load_file(saved)
    meta = _header(saved)[2]["__metadata__"]
    meta["format_version"] = "2"
    save_file(tensors, saved, metadata=meta)
    with pytest.raises(ModelFileError, match=r"format version 2.*reads format version 1"):
        nl.load(saved)


def test_plain_safetensors_file_is_not_a_neuralab_model(tmp_path):
    from safetensors.numpy import save_file
    path = tmp_path / "w.safetensors"
    save_file({"weight": np.ones((2, 2), np.float32)}, path)
    with pytest.raises(ModelFileError, match="not a neuralab model file"):
        nl.load(path)


@pytest.mark.parametrize("content", [b"", b"abc", b"id,age\n1,2\n", b"\x00" * 64])
def test_non_model_files(tmp_path, content):
    path = tmp_path / "notes.safetensors"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match="not a"):
        nl.load(path)


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="no such file"):
        nl.load(tmp_path / "nope.safetensors")
    assert issubclass(ModelFileError, ValueError)
