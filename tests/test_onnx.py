"""ONNX export: every layer type passes the full checker and matches neuralab in onnxruntime."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import neuralab as nl
from neuralab import nn

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

TOL = 1e-5


def _random(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32) * 2


def _run(path, feeds):
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds)))


def _trained_bn(n, affine=True):
    bn = nn.BatchNorm1d(n, affine=affine)
    if affine:
        rng = np.random.default_rng(3)
        bn.weight.data[...] = rng.normal(size=n)
        bn.bias.data[...] = rng.normal(size=n)
    bn.train()
    bn(_random((32, n), seed=4) * 3 + 1)  # non-trivial running statistics
    return bn


def _ln(n, affine=True):
    ln = nn.LayerNorm(n, elementwise_affine=affine)
    if affine:
        rng = np.random.default_rng(5)
        ln.weight.data[...] = rng.normal(size=n)
        ln.bias.data[...] = rng.normal(size=n)
    return ln


LAYERS = {
    "linear": lambda: nn.Linear(6, 4, rng=0),
    "linear_no_bias": lambda: nn.Linear(6, 4, bias=False, rng=0),
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "gelu": nn.GELU,
    "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
    "identity": nn.Identity,
    "softmax": lambda: nn.Softmax(axis=1),
    "log_softmax": lambda: nn.LogSoftmax(axis=-1),
    "dropout": lambda: nn.Dropout(0.5, rng=0),
    "batch_norm": lambda: _trained_bn(6),
    "batch_norm_no_affine": lambda: _trained_bn(6, affine=False),
    "layer_norm": lambda: _ln(6),
    "layer_norm_no_affine": lambda: _ln(6, affine=False),
    "residual": lambda: nn.Residual(nn.Sequential(nn.Linear(6, 6, rng=1), nn.Tanh())),
    "residual_projection": lambda: nn.Residual(nn.Sequential(nn.Linear(6, 3, rng=1), nn.ReLU()),
                                               6, 3, rng=2),
}


@pytest.mark.parametrize("opset", [17, 20])
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_each_layer_matches_onnxruntime(tmp_path, name, opset):
    layer = LAYERS[name]()
    # A leading Linear gives the graph a known input width and the layer non-trivial input.
    model = nn.Sequential(nn.Linear(5, 6, rng=7), layer).eval()
    x = _random((11, 5), seed=1)
    want = model(x).data
    path = nl.export_onnx(model, tmp_path / "m.onnx", opset=opset)
    got = _run(path, {"input": x})["output"]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=TOL, rtol=TOL)
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    if name == "dropout":
        assert "Dropout" not in ops and "RandomUniformLike" not in ops
    if name.startswith("gelu"):
        assert ("Gelu" in ops) == (opset >= 20)


def test_export_leaves_training_mode_alone(tmp_path):
    model = nn.Sequential(nn.Linear(5, 6, rng=0), nn.Dropout(0.5, rng=0)).train()
    nl.export_onnx(model, tmp_path / "m.onnx")
    assert model.training is True


@pytest.mark.parametrize("kw", [
    dict(activation="gelu", dropout=0.2, norm="batch", residual=True),
    dict(activation="tanh", norm="layer", output_activation="softmax"),
    dict(activation="leaky_relu", hidden=(7, 5, 3)),
])
def test_mlp_matches_onnxruntime(tmp_path, kw):
    kw = {"hidden": (8, 8), **kw}
    model = nn.MLP(5, out_features=3, rng=0, **kw)
    model.train()
    model(_random((40, 5), seed=2))
    model.eval()
    x = _random((13, 5), seed=3)
    got = _run(nl.export_onnx(model, tmp_path / "m.onnx"), {"input": x})["output"]
    np.testing.assert_allclose(got, model(x).data, atol=TOL, rtol=TOL)


def test_unsupported_layer_is_named(tmp_path):
    class Odd(nn.Module):
        def forward(self, x):
            return x * 2
    with pytest.raises(ValueError, match=r"cannot export layer 1 \(Odd\)"):
        nl.export_onnx(nn.Sequential(nn.Linear(3, 3), Odd()), tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="opset >= 17"):
        nl.export_onnx(nn.Sequential(nn.Linear(3, 3)), tmp_path / "m.onnx", opset=13)


# ----------------------------------------------------------------------------- estimators
def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y)


@pytest.fixture(scope="module")
def iris():
    from sklearn.datasets import load_iris
    X, y = load_iris(return_X_y=True)
    return X.astype(np.float32), y


@pytest.mark.parametrize("labels", ["strings", "ints"])
def test_multiclass_classifier_head(tmp_path, iris, labels):
    X, y = iris
    y = np.array(["setosa", "versicolor", "virginica"])[y] if labels == "strings" else y * 10
    clf = _fit(nl.MLPClassifier((16,), max_iter=20, batch_norm=True, dropout=0.1,
                                random_state=0), X, y)
    x = X + _random(X.shape, seed=9) * 0.1
    out = _run(nl.export_onnx(clf, tmp_path / "c.onnx"), {"input": x})
    np.testing.assert_allclose(out["probabilities"], clf.predict_proba(x), atol=TOL, rtol=TOL)
    got = out["label"].astype(str) if labels == "strings" else out["label"]
    assert np.array_equal(got, clf.predict(x))


def test_binary_classifier_sigmoid_head(tmp_path):
    from sklearn.datasets import load_breast_cancer
    X, y = load_breast_cancer(return_X_y=True)
    X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    clf = _fit(nl.MLPClassifier((8, 8), activation="tanh", residual=True, max_iter=10,
                                random_state=0), X, y)
    out = _run(nl.export_onnx(clf, tmp_path / "b.onnx"), {"input": X})
    assert out["probabilities"].shape == (len(X), 2)
    np.testing.assert_allclose(out["probabilities"], clf.predict_proba(X), atol=TOL, rtol=TOL)
    assert np.array_equal(out["label"], clf.predict(X))


def test_regressor(tmp_path):
    from sklearn.datasets import load_diabetes
    X, y = load_diabetes(return_X_y=True)
    reg = _fit(nl.MLPRegressor(hidden_layer_sizes=(16,), activation="gelu", max_iter=20,
                               random_state=0), X.astype(np.float32), y)
    x = X.astype(np.float32)
    out = _run(nl.export_onnx(reg, tmp_path / "r.onnx"), {"input": x})
    want = reg.predict(x)
    assert out["prediction"].shape == want.shape
    np.testing.assert_allclose(out["prediction"], want, atol=TOL, rtol=TOL)


def test_perceptron(tmp_path, iris):
    X, y = iris
    p = _fit(nl.Perceptron(max_iter=20, random_state=0), X, y)
    out = _run(nl.export_onnx(p, tmp_path / "p.onnx"), {"input": X})
    assert np.array_equal(out["label"], p.predict(X))


def test_cli_model_folds_imputation_and_scaling(tmp_path):
    pd = pytest.importorskip("pandas")
    from neuralab.preprocessing import TabularModel, TabularPreprocessor
    rng = np.random.default_rng(0)
    n = 120
    frame = pd.DataFrame({"size": rng.normal(100, 30, n), "rooms": rng.integers(1, 6, n).astype(float),
                          "town": rng.choice(["a", "b", "c"], n)})
    frame.loc[::7, "size"] = np.nan
    frame.loc[::11, "town"] = None
    frame["label"] = np.where(frame["size"].fillna(100) + 20 * frame["rooms"] > 160, "big", "small")
    prep = TabularPreprocessor().fit(frame, target="label")
    clf = _fit(nl.MLPClassifier((8,), max_iter=30, random_state=0), prep.transform(frame),
               prep.transform_target(frame))
    model = TabularModel(prep, clf)
    feed = nl.io.onnx_feed(model, frame)
    assert set(feed) == {"size", "rooms", "town"}  # one input per original column
    assert np.isnan(feed["size"]).any() and "" in feed["town"]  # the graph imputes and encodes
    path = nl.export_onnx(model, tmp_path / "t.onnx")
    out = _run(path, feed)
    np.testing.assert_allclose(out["probabilities"], model.predict_proba(frame), atol=TOL, rtol=TOL)
    assert np.array_equal(out["label"].astype(str), model.predict(frame).astype(str))
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    import json
    assert json.loads(props["feature_names"]) == prep.feature_names


def test_cli_model_graph_encodes_raw_categories_unseen_and_grouped(tmp_path):
    pd = pytest.importorskip("pandas")
    from neuralab.preprocessing import TabularModel, TabularPreprocessor
    rng = np.random.default_rng(1)
    n = 150
    frame = pd.DataFrame({"x": rng.normal(size=n), "city": rng.choice(list("abcdefg"), n),
                          "flag": rng.choice([True, False], n)})
    frame.loc[::9, "city"] = None
    frame["y"] = np.where(frame["x"] + (frame["city"] == "a") > 0.3, "p", "q")
    prep = TabularPreprocessor(max_categories=3).fit(frame, target="y")  # rare cities -> <other>
    clf = _fit(nl.MLPClassifier((6,), max_iter=20, random_state=0), prep.transform(frame),
               prep.transform_target(frame))
    model = TabularModel(prep, clf)
    path = nl.export_onnx(model, tmp_path / "c.onnx")
    new = frame.drop(columns="y").head(12).copy()
    new.loc[new.index[:3], "city"] = "never-seen"
    out = _run(path, nl.io.onnx_feed(model, new))
    want = model.predict_proba(new)  # an unseen city counts as <other>, in both
    np.testing.assert_allclose(out["probabilities"], want, atol=TOL, rtol=TOL)
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    import json
    assert json.loads(props["input_columns"]) == ["x", "city", "flag"]
