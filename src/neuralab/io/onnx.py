"""ONNX export: a model (module, estimator or CLI model) as an ONNX graph onnxruntime can run.

Example:
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> nl.export_onnx(model, "model.onnx")
    PosixPath('model.onnx')
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .. import backend
from .files import atomic_write
from .model_file import _is_estimator, _version

__all__ = ["export_onnx", "onnx_feed"]


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
    from .. import nn
    out = _emit_layer(m, x, g, path)
    if x in g.seq and out not in g.seq and not isinstance(m, nn.Flatten):
        # an element-wise layer or a Linear keeps a sequence a sequence
        width = m.out_features if isinstance(m, nn.Linear) else g.seq[x][-1]
        g.seq[out] = g.seq[x][:-1] + [width]
    return out


def _emit_layer(m: Any, x: str, g: _OnnxGraph, path: str) -> str:
    from .. import nn
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
    from .. import functional as F
    from .. import nn
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
    from .. import nn
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
    from .. import nn
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
    from .. import nn
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
    from .. import nn
    for sub in m.modules():
        if isinstance(sub, nn.Conv2d):
            return ["N", sub.in_channels, "H", "W"]
        if isinstance(sub, nn.Conv1d):
            return ["N", sub.in_channels, "L"]
        if isinstance(sub, nn.Linear):
            return ["N", sub.in_features]
    return ["N", None]


def _first_linear_width(m: Any) -> int | None:
    from .. import nn
    for sub in m.modules():
        if isinstance(sub, nn.Linear):
            return sub.in_features
    return None


def _estimator_network(est: Any) -> Any:
    """The trained nn.Module inside an estimator (the attribute that holds one)."""
    from ..nn.module import Module
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
    from .. import nn
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


def _emit_table_inputs(prep: Any, g: _OnnxGraph) -> tuple[list, str]:
    """One graph input per column the preprocessing reads, and the node of the scaled features.

    Numbers come in as float64 (N, 1), NaN for missing: the graph imputes the training median
    and standardises, in float64 as neuralab does. Categorical columns come in as strings
    (N, 1), "" for missing: the graph maps each to its one-hot group (an unseen category to
    all zeros, or to ``<other>`` when training grouped rare ones). Date columns come in as
    their parts, computed outside the graph (``onnx_feed`` does it): ``"signup.year"`` etc.
    """
    from onnx import TensorProto, helper

    from ..preprocessing import MISSING, OTHER
    inputs: dict[str, Any] = {}
    blocks = []
    for col in prep.spec["columns"]:
        kind = col["kind"]
        if kind == "text":
            raise ValueError(f"column {col['name']!r} is free text (TF-IDF): ONNX export of text "
                             f"columns is not supported; train without --text to export")
        if kind == "categorical":
            name = col["name"]
            if name not in inputs:
                inputs[name] = helper.make_tensor_value_info(name, TensorProto.STRING, ["N", 1])
            # the one-hot group's columns, as neuralab's transform lays them out
            names = list(col["categories"]) + ([OTHER] if col["other"] else []) + (
                [MISSING] if col["missing"] else [])
            keys = list(col["categories"]) + ([""] if col["missing"] else [])
            values = [names.index(k) for k in col["categories"]] + (
                [names.index(MISSING)] if col["missing"] else [])
            # an unseen category: <other> where rare ones were grouped, else all zeros
            default = names.index(OTHER) if col["other"] else -1
            width = len(names)
            index = g.fresh(f"{name}_index")
            g.nodes.append(helper.make_node("LabelEncoder", [name], [index], domain="ai.onnx.ml",
                                            keys_strings=keys, values_int64s=values,
                                            default_int64=default))
            hot = g.op("Equal", [index, g.const(np.arange(width, dtype=np.int64)[None, :],
                                                f"{name}_codes", np.int64)])
            blocks.append(g.op("Cast", [hot], f"{name}_onehot", to=TensorProto.DOUBLE))
            continue
        name = col["name"] if kind == "numeric" else f"{col['name']}.{col['part']}"
        inputs[name] = helper.make_tensor_value_info(name, TensorProto.DOUBLE, ["N", 1])
        x = g.op("Where", [g.op("IsNaN", [name]), g.const([col["median"]], "median", np.float64), name],
                 f"{_safe(name)}_imputed")
        blocks.append(g.op("Div", [g.op("Sub", [x, g.const([col["mean"]], "mean", np.float64)]),
                                   g.const([col["std"]], "std", np.float64)]))
    joined = g.op("Concat", blocks, "features64", axis=1) if len(blocks) > 1 else blocks[0]
    return list(inputs.values()), g.op("Cast", [joined], "scaled", to=TensorProto.FLOAT)


def _emit_encoder_inputs(spec: dict, g: _OnnxGraph) -> tuple[list, str]:
    """One graph input per column a tabular estimator reads, and the node of its encoded rows.

    The same layout as ``TableEncoder.transform``: [numbers | 0/1 columns | category codes].
    Numbers come in as float64 (N, 1), NaN for missing: the graph puts in the training median
    and the 0/1 "missing" flag. Categories come in as strings (N, 1), "" for missing: a few
    become 0/1 columns, many an embedding code (0: missing or unseen). Date parts are inputs
    of their own, computed outside the graph (``onnx_feed`` does it): ``"signup.year"`` etc.
    """
    from onnx import TensorProto, helper

    inputs: dict[str, Any] = {}
    numbers, binary, codes = [], [], []
    for col in spec["columns"]:
        kind = col["kind"]
        if kind in ("numeric", "date"):
            name = col["name"] if kind == "numeric" else f"{col['name']}.{col['part']}"
            inputs[name] = helper.make_tensor_value_info(name, TensorProto.DOUBLE, ["N", 1])
            nan = g.op("IsNaN", [name])
            imputed = g.op("Where", [nan, g.const([col["median"]], "median", np.float64), name],
                           f"{_safe(name)}_imputed")
            numbers.append(imputed)
            if col["missing"]:
                binary.append(g.op("Cast", [nan], f"{_safe(name)}_missing", to=TensorProto.DOUBLE))
            if col.get("edges"):  # piecewise-linear bins, as estimators.tabular.ple
                from ..estimators.tabular import _ple_terms
                left, width, lower, upper = (g.const(t[None, :], hint, np.float64) for t, hint in zip(
                    _ple_terms(col["edges"]), ("bin_left", "bin_width", "bin_lower", "bin_upper")))
                z = g.op("Max", [g.op("Div", [g.op("Sub", [imputed, left]), width]), lower])
                binary.append(g.op("Min", [z, upper], f"{_safe(name)}_bins"))
            continue
        name, cats = col["name"], list(col["categories"])
        if name not in inputs:
            inputs[name] = helper.make_tensor_value_info(name, TensorProto.STRING, ["N", 1])
        embedded = kind != "one_hot"
        index = g.fresh(f"{_safe(name)}_index")  # one-hot: position (-1 unseen); embedded: code
        g.nodes.append(helper.make_node(
            "LabelEncoder", [name], [index], domain="ai.onnx.ml", keys_strings=cats,
            values_int64s=list(range(1, len(cats) + 1)) if embedded else list(range(len(cats))),
            default_int64=0 if embedded else -1))
        if embedded:
            codes.append(g.op("Cast", [index], f"{_safe(name)}_code", to=TensorProto.DOUBLE))
            continue
        # two categories (or one): one 0/1 column, the second's (the only one's); more: one each
        wanted = [len(cats) - 1] if len(cats) <= 2 else list(range(len(cats)))
        hot = g.op("Equal", [index, g.const(np.asarray(wanted, np.int64)[None, :],
                                            f"{_safe(name)}_positions", np.int64)])
        binary.append(g.op("Cast", [hot], f"{_safe(name)}_onehot", to=TensorProto.DOUBLE))
    blocks = numbers + binary + codes
    joined = g.op("Concat", blocks, "encoded64", axis=1) if len(blocks) > 1 else blocks[0]
    return list(inputs.values()), g.op("Cast", [joined], "encoded", to=TensorProto.FLOAT)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


def onnx_feed(model: Any, frame: Any) -> dict[str, np.ndarray]:
    """The inputs of ``export_onnx(model)``'s graph for a table: one array per column.

    ``model`` is a CLI model (trained on a table) or a TabularClassifier/Regressor; numbers
    become float64 (N, 1) with NaN for missing values, categories strings (N, 1) with "" for
    missing, dates their parts.

    Example:
        >>> sess = onnxruntime.InferenceSession("churn.onnx")
        >>> proba, label = sess.run(["probabilities", "label"], onnx_feed(model, frame))
    """
    from ..preprocessing import _category_key, _date_parts, _parse_dates
    frame = frame.set_axis([str(c) for c in frame.columns], axis=1)
    feed: dict[str, np.ndarray] = {}
    if isinstance(getattr(model, "encoding_", None), dict):  # a tabular estimator
        from ..estimators.tabular import _dates, _keys, _numbers
        dates: dict[str, dict] = {}
        for col in model.encoding_["columns"]:
            s = frame[col["name"]]
            if col["kind"] == "numeric":
                feed[col["name"]] = _numbers(col["name"], s)[:, None]
            elif col["kind"] == "date":
                if col["name"] not in dates:
                    dates[col["name"]] = _dates(s, col["format"])
                feed[f"{col['name']}.{col['part']}"] = dates[col["name"]][col["part"]][:, None]
            else:
                keys = _keys(s)
                feed[col["name"]] = np.array(["" if k is None else k for k in keys], dtype=object)[:, None]
        return feed
    for col in model.preprocessor.spec["columns"]:
        s = frame[col["name"]]
        if col["kind"] == "categorical":
            keys = ["" if m else _category_key(v) for v, m in zip(s.to_numpy(), s.isna().to_numpy())]
            feed[col["name"]] = np.asarray(keys, dtype=object)[:, None]
        elif col["kind"] == "date":
            dates = s if col["format"] == "datetime" else _parse_dates(s.astype("string"), col["format"])
            feed[f"{col['name']}.{col['part']}"] = _date_parts(dates)[col["part"]][:, None]
        elif col["kind"] == "numeric":
            import pandas as pd
            feed[col["name"]] = pd.to_numeric(s, errors="coerce").to_numpy(
                dtype=np.float64, na_value=np.nan)[:, None]
    return feed


def export_onnx(obj: Any, path: str | os.PathLike, opset: int = 17) -> Path:
    """Write a model as an ONNX graph for onnxruntime and other runtimes.

    An ``nn.Module`` maps input ``"input"`` (float32, (N, in_features)) to ``"output"``.
    A classifier gives ``"probabilities"`` (softmax or sigmoid head) and ``"label"``; a
    regressor ``"prediction"``; an estimator trained on SciPy sparse X (TF-IDF rows, say)
    is exported the same way and its graph takes a dense float32 input. A CLI model takes ``"features"``: the columns listed in the
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

    from .. import nn
    from ..nn.module import Module
    from ..preprocessing import TabularModel
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
            inputs, x = _emit_table_inputs(prep, g)
            props["feature_names"] = json.dumps(prep.feature_names, ensure_ascii=False)
            props["input_columns"] = json.dumps([i.name for i in inputs], ensure_ascii=False)
            if prep.spec.get("classes") is not None:
                props["classes"] = json.dumps(prep.spec["classes"], ensure_ascii=False)
        elif _is_estimator(obj) and isinstance(getattr(obj, "encoding_", None), dict):
            # a tabular estimator: one input per column, encoded in the graph
            est = obj
            inputs, x = _emit_encoder_inputs(obj.encoding_, g)
            props["input_columns"] = json.dumps([i.name for i in inputs], ensure_ascii=False)
        elif _is_estimator(obj):
            n_in = getattr(obj, "n_features_in_", None)
            est, name, x = obj, "input", "input"
            if getattr(obj, "feature_names_in_", None) is not None:
                props["feature_names"] = json.dumps([str(n) for n in obj.feature_names_in_])
        else:
            raise TypeError(f"export_onnx expects an nn.Module, a fitted estimator or a CLI "
                            f"model, got {type(obj).__name__}")
        if not isinstance(obj, TabularModel) and not isinstance(getattr(obj, "encoding_", None), dict):
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
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset),
                                                    helper.make_opsetid("ai.onnx.ml", 3)],
                              producer_name="neuralab", producer_version=_version())
    model.ir_version = min(model.ir_version, 9)  # readable by onnxruntime releases of 2024+
    helper.set_model_props(model, props)
    onnx.checker.check_model(model, full_check=True)
    path = Path(path)
    atomic_write(path, model.SerializeToString())
    return path
