"""Lab ``linear-collapse``: without non-linear activations, depth buys nothing.

A deep network with identity activations computes ``W_L ... W_2 W_1 x + b``: one linear
map, which the lab multiplies out and compares with the network's outputs. On concentric
circles (not linearly separable) it therefore does no better than a single linear layer,
while the same depth with ReLU separates the rings.

Example: ``nl.labs.run("linear-collapse", quick=True).rows``
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import datasets
from ..nn.module import Module
from ..tensor import Tensor, no_grad
from . import Claim, LabResult
from ._common import accuracy, lab_mlp, linears, make_optimizer, train


def circles(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two noisy concentric rings (inner radius 0.5, outer 1), labels 1 (inner) and 0.

    Example: ``X, y = circles(200, np.random.default_rng(0))``
    """
    d = datasets.make_circles(n_samples=n, noise=0.08, factor=0.5, random_state=int(rng.integers(2**31)))
    return d.X_train, d.y_train


def collapse(model: Module) -> tuple[np.ndarray, np.ndarray]:
    """Multiply out an identity-activation network: returns (W, b) with out = x @ W.T + b.

    Example: ``W, b = collapse(model)``
    """
    W = np.eye(linears(model)[0].weight.shape[1])
    b = np.zeros(W.shape[0])
    for layer in linears(model):
        Wl, bl = layer.weight.data.astype(np.float64), layer.bias.data.astype(np.float64)
        W, b = Wl @ W, Wl @ b + bl
    return W, b


def run(quick: bool = False, out_dir: Path | None = None, seed: int = 0) -> LabResult:
    """Show that a deep identity-activation network equals one linear map and cannot fit rings.

    Example: ``run(quick=True).passed``
    """
    rng = np.random.default_rng(seed)
    depth, width = (6, 32) if quick else (10, 64)
    n, epochs = (400, 60) if quick else (1000, 150)
    X, y = circles(n, rng)
    Xte, yte = circles(n, rng)

    models, rows, hists = {}, [], {}
    for label, act, d in (("identity, depth %d" % depth, "identity", depth),
                          ("single linear layer", "identity", 0),
                          ("ReLU, depth %d" % depth, "relu", depth)):
        m = lab_mlp(2, width, 2, depth=d, activation=act, init="xavier" if act == "identity" else "he",
                   rng=np.random.default_rng(seed + 1))
        opt = make_optimizer("adam", m.parameters(), lr=3e-3)
        hists[label] = train(m, X, y, opt, epochs=epochs, batch_size=32, rng=np.random.default_rng(seed + 2))
        models[label] = m
        rows.append([label, m.num_parameters(), accuracy(m, X, y), accuracy(m, Xte, yte)])

    deep_label = "identity, depth %d" % depth
    deep = models[deep_label]
    # Exactness in float64: the trained weights, multiplied out, against the network's own output.
    W, b = collapse(deep)
    for layer in linears(deep):
        layer.weight.data = layer.weight.data.astype(np.float64)
        layer.bias.data = layer.bias.data.astype(np.float64)
    with no_grad():
        out = deep(Tensor(Xte.astype(np.float64), dtype=np.float64)).data
    err = float(np.abs(out - (Xte.astype(np.float64) @ W.T + b)).max())
    scale = float(np.abs(out).max())

    acc = {r[0]: r[3] for r in rows}
    relu_label = "ReLU, depth %d" % depth
    claims = [
        Claim(f"A {depth}-layer network with identity activations computes exactly one linear map: "
              "the product of its weight matrices reproduces its outputs.",
              err < 1e-6, {"max_abs_difference": err, "largest_output": scale,
                           "effective_W_shape": list(W.shape)}),
        # A line through two concentric rings leaves about half of each ring on either side, so
        # no linear map beats chance (0.5) by much; it can do worse when it cuts off a cap.
        Claim("On concentric circles the deep linear network is no better than a single linear layer: "
              "neither beats chance by more than 0.1 (test accuracy <= 0.6).",
              acc[deep_label] <= 0.6 and acc["single linear layer"] <= 0.6,
              {"test_accuracy_deep_linear": acc[deep_label],
               "test_accuracy_single_layer": acc["single linear layer"]}),
        Claim("The same depth with ReLU separates the circles (test accuracy >= 0.95).",
              acc[relu_label] >= 0.95, {"test_accuracy_relu": acc[relu_label]}),
    ]

    figures = []
    if out_dir is not None:
        from .. import plots

        def predictor(m):
            def predict(G):
                m.eval()
                with no_grad():
                    d = m(Tensor(G.astype(linears(m)[0].weight.dtype), dtype=linears(m)[0].weight.dtype)).data
                return d.argmax(axis=1)
            return predict

        figures.append(plots.decision_boundaries(
            [{"title": f"{k}\ntest accuracy {acc[k]:.2f}", "predict": predictor(m), "X": Xte, "y": yte}
             for k, m in models.items()],
            out_dir / "linear_collapse_boundaries.png",
            title="Without activations, depth collapses to one linear map"))
        figures.append(plots.line_panels(
            [{"title": "Training loss on circles", "xlabel": "epoch", "ylabel": "cross-entropy",
              "series": {k: (np.arange(1, epochs + 1), h["loss"]) for k, h in hists.items()}},
             {"title": "Training accuracy", "xlabel": "epoch", "ylabel": "accuracy", "hline": 0.5,
              "series": {k: (np.arange(1, epochs + 1), h["accuracy"]) for k, h in hists.items()}}],
            out_dir / "linear_collapse_curves.png", title="Linear collapse: learning curves"))
    return LabResult("linear-collapse", "", columns=["model", "parameters", "train accuracy", "test accuracy"],
                     rows=rows, claims=claims, figures=figures)
