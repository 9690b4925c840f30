"""ONNX export of recurrent and attention layers, checked by onnx.checker and run in onnxruntime."""
from __future__ import annotations

import numpy as np
import pytest

import neuralab as nl
from neuralab import nn

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def _export_and_run(model, x, tmp_path):
    path = nl.export_onnx(model, tmp_path / "model.onnx")
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {"input": x}))), proto


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("layers,bidirectional,bias", [(1, False, True), (2, True, True), (2, False, False)])
def test_recurrent_layers_match_onnxruntime(kind, batch_first, layers, bidirectional, bias, tmp_path):
    rng = np.random.default_rng(0)
    extra = {"nonlinearity": "relu"} if kind == "RNN" and layers == 2 else {}
    m = getattr(nn, kind)(3, 5, num_layers=layers, bias=bias, batch_first=batch_first,
                          bidirectional=bidirectional, rng=1, **extra)
    x = rng.normal(size=(4, 6, 3)).astype(np.float32)  # (N, T, C) or (T, N, C)
    out, state = m(nl.tensor(x))
    want = {"output": out.numpy()}
    if kind == "LSTM":
        want["h_n"], want["c_n"] = state[0].numpy(), state[1].numpy()
    else:
        want["h_n"] = state.numpy()
    got, proto = _export_and_run(m, x, tmp_path)
    assert sorted(got) == sorted(want)
    for name, value in want.items():
        assert got[name].shape == value.shape, name
        np.testing.assert_allclose(got[name], value, atol=1e-5, rtol=1e-5, err_msg=name)
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count(kind) == layers  # the ONNX operator itself, one node per layer
    if kind == "GRU":
        attrs = {a.name: a.i for n in proto.graph.node if n.op_type == "GRU" for a in n.attribute}
        assert attrs["linear_before_reset"] == 1  # PyTorch's GRU


def _transformer(batch_first, norm_first, activation):
    return nn.Sequential(
        nn.Embedding(10, 8, padding_idx=0, rng=0),
        nn.PositionalEncoding(8, max_len=16, batch_first=batch_first),
        nn.TransformerEncoderLayer(8, 2, 16, dropout=0.1, activation=activation,
                                   batch_first=batch_first, norm_first=norm_first, rng=1),
        nn.LayerNorm(8), nn.ReLU(), nn.Linear(8, 5, rng=3))


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("norm_first,activation", [(False, "relu"), (True, "gelu")])
def test_transformer_encoder_matches_onnxruntime(batch_first, norm_first, activation, tmp_path):
    model = _transformer(batch_first, norm_first, activation)
    tokens = np.random.default_rng(1).integers(0, 10, size=(3, 7) if batch_first else (7, 3))
    model.train()  # export must use eval mode (dropout off) and leave training mode as it was
    got, proto = _export_and_run(model, tokens.astype(np.int64), tmp_path)
    assert model.training
    with nl.no_grad():
        want = model.eval()(tokens).numpy()
    assert got["output"].shape == want.shape == tokens.shape + (5,)
    np.testing.assert_allclose(got["output"], want, atol=1e-5, rtol=1e-5)
    ops = {n.op_type for n in proto.graph.node}
    assert {"Gather", "MatMul", "Softmax", "LayerNormalization"} <= ops
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64
    # a longer sequence than the one exported with: positions are sliced at run time
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    longer = np.random.default_rng(2).integers(0, 10, size=(2, 16) if batch_first else (16, 2))
    with nl.no_grad():
        np.testing.assert_allclose(session.run(None, {"input": longer.astype(np.int64)})[0],
                                   model(longer).numpy(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("batch_first", [True, False])
def test_self_attention_and_encoder_layer_alone(batch_first, tmp_path):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 5, 12)).astype(np.float32)
    mha = nn.MultiheadAttention(12, 3, batch_first=batch_first, rng=4)
    t = nl.tensor(x)
    got, _ = _export_and_run(mha, x, tmp_path)
    np.testing.assert_allclose(got["output"], mha(t, t, t)[0].numpy(), atol=1e-5, rtol=1e-5)
    layer = nn.TransformerEncoderLayer(12, 3, 24, dropout=0.0, batch_first=batch_first, rng=5).eval()
    got, _ = _export_and_run(layer, x, tmp_path)
    np.testing.assert_allclose(got["output"], layer(t).numpy(), atol=1e-5, rtol=1e-5)


def test_cnn_classifier_exports_from_flat_rows(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 36)).astype(np.float32)
    y = (X[:, :18].sum(1) > 0).astype(int)
    clf = nl.CNNClassifier(conv_channels=(3,), hidden_layer_sizes=(6,), max_iter=2,
                           random_state=0).fit(X, y)
    got, _ = _export_and_run(clf, X, tmp_path)
    np.testing.assert_allclose(got["probabilities"], clf.predict_proba(X), atol=1e-5, rtol=1e-5)
    np.testing.assert_array_equal(got["label"], clf.predict(X))


def test_custom_module_gets_a_clear_error(tmp_path):
    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(3, 4, rng=0)

        def forward(self, x):
            return self.lstm(x)[0]

    with pytest.raises(ValueError, match="Tagger.*build the model as nn.Sequential"):
        nl.export_onnx(Tagger(), tmp_path / "m.onnx")
