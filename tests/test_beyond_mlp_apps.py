"""Conv, pooling, recurrent and attention layers everywhere else: nl.save/nl.load and ONNX export."""
from __future__ import annotations

import numpy as np
import pytest

import neuralab as nl
from neuralab import nn


class _Seq(nn.Module):
    """A recurrent encoder (RNN, LSTM or GRU, two layers, bidirectional) with a linear head."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.rnn = getattr(nn, kind)(3, 5, num_layers=2, batch_first=True, bidirectional=True, rng=1)
        self.head = nn.Linear(10, 2, rng=2)

    def forward(self, x):
        out = self.rnn(x)[0]
        return self.head(out[:, -1])


class _Attn(nn.Module):
    """Embedding, positions, one encoder layer and a head: the transformer example's shape."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 8, padding_idx=0, rng=0)
        self.pos = nn.PositionalEncoding(8, max_len=16, batch_first=True)
        self.layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True, rng=1)
        self.mha = nn.MultiheadAttention(8, 2, batch_first=True, rng=2)
        self.head = nn.Linear(8, 10, rng=3)

    def forward(self, x):
        h = self.layer(self.pos(self.embed(x)))
        return self.head(self.mha(h, h, h)[0])


def _cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, rng=0), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(4, 6, 3, stride=2, groups=2, rng=1), nn.ReLU(),
                         nn.AvgPool2d(2, padding=1), nn.Flatten(), nn.Linear(6 * 2 * 2, 3, rng=2))


def _cnn1d() -> nn.Module:
    return nn.Sequential(nn.Conv1d(2, 4, 5, padding="same", dilation=2, rng=0), nn.ReLU(),
                         nn.MaxPool1d(3, stride=2, padding=1), nn.Conv1d(4, 4, 3, stride=2, rng=1),
                         nn.AvgPool1d(2), nn.Flatten(), nn.Linear(4 * 2, 2, rng=2))


MODELS = {  # name: (model factory, input maker)
    "cnn2d": (_cnn, lambda r: r.normal(size=(5, 1, 12, 12)).astype(np.float32)),
    "cnn1d": (_cnn1d, lambda r: r.normal(size=(5, 2, 20)).astype(np.float32)),
    "rnn": (lambda: _Seq("RNN"), lambda r: r.normal(size=(4, 6, 3)).astype(np.float32)),
    "lstm": (lambda: _Seq("LSTM"), lambda r: r.normal(size=(4, 6, 3)).astype(np.float32)),
    "gru": (lambda: _Seq("GRU"), lambda r: r.normal(size=(4, 6, 3)).astype(np.float32)),
    "attention": (_Attn, lambda r: r.integers(0, 10, size=(4, 7))),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_save_load_round_trip_gives_the_same_outputs(name, tmp_path):
    make, inputs = MODELS[name]
    model = make()
    x = inputs(np.random.default_rng(0))
    if name == "cnn2d":  # move the batch-norm statistics off their initial values
        model.train()
        model(nl.tensor(x))
    model.eval()
    with nl.no_grad():
        expected = model(nl.tensor(x) if x.dtype != np.int64 else x).numpy()
    path = tmp_path / f"{name}.safetensors"
    if isinstance(model, nn.Sequential):
        nl.save(model, path)
        loaded = nl.load(path)
    else:  # a user's own Module class: its weights go through the state dict
        nl.save(model, path)
        loaded = nl.load(path, custom_objects={type(model).__name__: type(model)})
    assert set(loaded.state_dict()) == set(model.state_dict())
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(np.asarray(loaded.state_dict()[key]), np.asarray(value), err_msg=key)
    loaded.eval()
    with nl.no_grad():
        got = loaded(nl.tensor(x) if x.dtype != np.int64 else x).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["cnn2d", "cnn1d"])
def test_onnx_export_of_conv_and_pooling_matches_onnxruntime(name, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    make, inputs = MODELS[name]
    model = make()
    x = inputs(np.random.default_rng(1))
    if name == "cnn2d":
        model.train()
        model(nl.tensor(x))
    model.eval()
    with nl.no_grad():
        expected = model(nl.tensor(x)).numpy()
    path = nl.export_onnx(model, tmp_path / f"{name}.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(["output"], {"input": x})[0]
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    ops = {node.op_type for node in __import__("onnx").load(str(path)).graph.node}
    assert {"Conv", "MaxPool", "AveragePool"} <= ops
