"""Lab ``vanishing-gradients``: why deep sigmoid networks do not train, and what fixes it.

A sigmoid's derivative is at most 1/4, so the gradient reaching layer 1 of a deep sigmoid
network is a product of many factors below one: it vanishes and the first layers stop
learning (Glorot and Bengio 2010). ReLU with He initialisation keeps the signal's variance
constant through depth (He et al. 2015); batch normalisation re-centres and re-scales every
layer (Ioffe and Szegedy 2015); residual connections give the gradient an identity path
around every block (He et al. 2016).

The lab builds six networks of the same depth and width on the digits data and measures
each dense layer's weight-gradient norm at initialisation and after training.

Example: ``nl.labs.run("vanishing-gradients", quick=True).rows``
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import Claim, LabResult
from ._common import accuracy, digits, lab_mlp, layer_grad_norms, make_optimizer, standardize, train

CONFIGS = [  # label, activation, init, norm, residual
    ("sigmoid, Xavier", "sigmoid", "xavier", None, False),
    ("tanh, Xavier", "tanh", "xavier", None, False),
    ("ReLU, He", "relu", "he", None, False),
    ("ReLU + batch norm", "relu", "he", "batch", False),
    ("ReLU + residual", "relu", "he", None, True),
    ("sigmoid + batch norm", "sigmoid", "xavier", "batch", False),
]


def run(quick: bool = False, out_dir: Path | None = None, seed: int = 0) -> LabResult:
    """Measure per-layer gradient norms of deep sigmoid networks and the fixes that restore them.

    Example: ``run(quick=True).passed``
    """
    depth, width = (20, 64) if quick else (50, 64)
    # 1344 = 21 x 64 of the 1347 training images: every batch is full. A 3-image batch at the
    # end of each epoch (1347 = 21 x 64 + 3) normalised by 50 batch-norm layers gives gradients
    # ~1e13 times larger at the input than at the output; in PyTorch (same init, batches and
    # Adam) it cut sigmoid + batch norm from 0.98 to 0.42 training accuracy.
    n_train, epochs = (800, 12) if quick else (1344, 30)
    # Quick mode: SGD with momentum, the setting of the original papers (Adam rescales small
    # gradients and hides part of the effect), at lr 0.005: at 0.01 the 20-layer ReLU net is
    # at the edge of stability, and a BLAS kernel's rounding decided whether it trained
    # (training accuracy 0.37 to 0.90 over kernels and seeds; 0.005: 0.71 to 0.93). At depth 50 no single setting trains every
    # network that can train (SGD+momentum left most untrained, Adam 1e-3 made the residual
    # net diverge, Adam 1e-4 is too slow for sigmoid + batch norm), so full mode gives each
    # network the better of Adam at 1e-3 and 1e-4 (by final training accuracy).
    opt_name, lrs = ("momentum", (0.005,)) if quick else ("adam", (1e-3, 1e-4))
    Xtr, ytr, Xte, yte = digits(n_train, seed=seed)
    Xtr, Xte = standardize(Xtr, Xte)
    probe = slice(0, 256)  # the batch on which gradient norms are measured

    rows, at_init, after, curves = [], {}, {}, {}
    for label, act, init, norm, residual in CONFIGS:
        best = None
        for lr in lrs:
            model = lab_mlp(64, width, 10, depth=depth, activation=act, init=init, norm=norm,
                           residual=residual, rng=np.random.default_rng(seed))
            g0 = layer_grad_norms(model, Xtr[probe], ytr[probe])
            opt = make_optimizer(opt_name, model.parameters(), lr=lr)
            with np.errstate(all="ignore"):  # a diverging run is reported, not raised
                hist = train(model, Xtr, ytr, opt, epochs=epochs, batch_size=64,
                             rng=np.random.default_rng(seed + 1))
                g1 = layer_grad_norms(model, Xtr[probe], ytr[probe])
                test = accuracy(model, Xte, yte)
            if best is None or hist["accuracy"][-1] > best[2]["accuracy"][-1]:
                best = (g0, g1, hist, lr, test)
        g0, g1, hist, lr, test = best
        at_init[label], after[label], curves[label] = g0, g1, hist
        rows.append([label, lr, float(g0[0]), float(g0[depth - 1]), float(g0[0] / g0[depth - 1]),
                     float(g1[0] / g1[depth - 1]), hist["accuracy"][-1], test])

    r = {row[0]: row for row in rows}
    ratio0 = {k: v[4] for k, v in r.items()}
    ratio1 = {k: v[5] for k, v in r.items()}
    acc = {k: v[6] for k, v in r.items()}
    claims = [
        Claim(f"With sigmoid (Xavier init) at depth {depth}, the first layer's gradient is at least "
              "1000x smaller than the last hidden layer's, and the network trains poorly "
              "(training accuracy <= 0.3; chance is 0.1). (Glorot and Bengio 2010)",
              ratio0["sigmoid, Xavier"] <= 1e-3 and acc["sigmoid, Xavier"] <= 0.3,
              {"ratio_first_to_last_at_init": ratio0["sigmoid, Xavier"],
               "train_accuracy": acc["sigmoid, Xavier"]}),
        Claim("ReLU with He init keeps the first-to-last gradient ratio within 10x, at initialisation "
              "and after training, and trains (training accuracy >= 0.6). (He et al. 2015)",
              0.1 <= ratio0["ReLU, He"] <= 10 and 0.1 <= ratio1["ReLU, He"] <= 10 and acc["ReLU, He"] >= 0.6,
              {"ratio_at_init": ratio0["ReLU, He"], "ratio_after": ratio1["ReLU, He"],
               "train_accuracy": acc["ReLU, He"]}),
        # The weight gradient is (backward signal) x (layer input). The identity paths carry the
        # backward signal undiminished, but the residual stream's activations grow with depth,
        # so the last blocks see larger inputs: at initialisation the first layer's weight
        # gradient is ~10x smaller than the last's although nothing vanishes (compare sigmoid).
        Claim("Residual connections stop the vanishing: at initialisation the first layer's gradient is "
              "within 20x of the last hidden layer's (the later blocks see larger inputs), after "
              "training within 10x, and the network trains (training accuracy >= 0.6). (He et al. 2016)",
              ratio0["ReLU + residual"] >= 0.05 and 0.1 <= ratio1["ReLU + residual"] <= 10
              and acc["ReLU + residual"] >= 0.6,
              {"ratio_at_init": ratio0["ReLU + residual"], "ratio_after": ratio1["ReLU + residual"],
               "train_accuracy": acc["ReLU + residual"]}),
        Claim("Sigmoid + batch norm no longer vanishes: the ratio is within 10x at initialisation and "
              "after training, and it trains (training accuracy >= 0.6). (Ioffe and Szegedy 2015)",
              0.1 <= ratio0["sigmoid + batch norm"] <= 10 and 0.1 <= ratio1["sigmoid + batch norm"] <= 10
              and acc["sigmoid + batch norm"] >= 0.6,
              {"ratio_at_init": ratio0["sigmoid + batch norm"],
               "ratio_after": ratio1["sigmoid + batch norm"],
               "train_accuracy": acc["sigmoid + batch norm"]}),
        # Measured, not the textbook's "within 10x": at initialisation a deep ReLU + batch-norm
        # network's gradients grow towards the input, as mean-field theory predicts: by
        # sqrt(pi / (pi - 1)) = 1.21 per layer for ReLU (Yang et al. 2019), 1.21**(depth - 1)
        # from the last hidden layer to the first (~1e4 at depth 50).
        Claim("ReLU + batch norm does not vanish but explodes towards the input at initialisation: the "
              "first layer's gradient is larger than the last's (ratio > 1; Yang et al. 2019, 'A Mean "
              "Field Theory of Batch Normalization', predict ~1.21x per layer).",
              ratio0["ReLU + batch norm"] > 1,
              {"ratio_at_init": ratio0["ReLU + batch norm"],
               "mean_field_prediction": float(np.sqrt(np.pi / (np.pi - 1)) ** (depth - 1))}),
    ]
    if depth <= 20:
        claims.append(Claim(
            f"ReLU + batch norm trains at depth {depth} (training accuracy >= 0.6) and after training "
            "its ratio is within 10x. (Ioffe and Szegedy 2015)",
            0.1 <= ratio1["ReLU + batch norm"] <= 10 and acc["ReLU + batch norm"] >= 0.6,
            {"ratio_after": ratio1["ReLU + batch norm"], "train_accuracy": acc["ReLU + batch norm"]}))
    else:
        # Checked against PyTorch (same weights, batches and Adam; float64 gradients agree to
        # 1e-12): a plain ReLU + batch-norm stack 50 deep stays near chance there as well with
        # Adam 1e-3, 1e-4 (with or without warm-up) and SGD+momentum 1e-2, 1e-3. Batch norm
        # keeps every layer's signal alive, but the exploding gradient makes the deep plain
        # stack untrainable; this is the degradation He et al. (2016) met with deep plain nets
        # and the reason for residual connections, which train at this depth (claim above).
        claims.append(Claim(
            f"A plain ReLU + batch-norm stack {depth} deep does not train (training accuracy <= 0.3, "
            "the same in PyTorch), while the residual network of the same depth does (>= 0.6): "
            "batch norm alone does not make great depth trainable. (Yang et al. 2019; He et al. 2016)",
            acc["ReLU + batch norm"] <= 0.3 and acc["ReLU + residual"] >= 0.6,
            {"train_accuracy": acc["ReLU + batch norm"], "residual_train_accuracy": acc["ReLU + residual"],
             "ratio_after": ratio1["ReLU + batch norm"]}))

    figures = []
    if out_dir is not None:
        from .. import plots
        layers = np.arange(1, depth + 2)
        floor = 1e-30  # a gradient that underflowed to 0 cannot be drawn on a log axis

        def series(norms):
            return {k: (layers, np.maximum(v, floor)) for k, v in norms.items()}

        ep = np.arange(1, epochs + 1)
        def grad_panel(title, norms):
            panel = {"title": title, "xlabel": "layer (1 = input side)", "ylabel": "|dL/dW| (Frobenius)",
                     "logy": True, "series": series(norms), "legend_loc": "center left"}
            if any(np.any(v < floor) for v in norms.values()):  # say where the zeros are drawn
                panel.update(hline=floor, hline_label="exactly 0 (float32 underflow), drawn at 1e-30")
            return panel

        figures.append(plots.line_panels(
            [grad_panel("At initialisation", at_init),
             grad_panel(f"After {epochs} epochs", after),
             {"title": "Training accuracy (colours as left; dotted: chance)", "xlabel": "epoch",
              "ylabel": "accuracy", "hline": 0.1, "ylim": (0, 1.02), "legend": False,
              "series": {k: (ep, h["accuracy"]) for k, h in curves.items()}}],
            out_dir / "vanishing_gradients.png",
            title=f"Per-layer gradient norms, depth {depth}, width {width} (digits)"))
    return LabResult("vanishing-gradients", "", columns=[
        "network", "learning rate", "|dL/dW1| at init", "|dL/dW_last| at init", "ratio first/last at init",
        "ratio after training", "train accuracy", "test accuracy"], rows=rows, claims=claims,
        figures=figures, notes=[f"depth {depth}, width {width}, {opt_name} (lr {' or '.join(map(str, lrs))}), {epochs} epochs, "
                                f"{len(Xtr)} training images; gradient norms on {probe.stop} images"])
