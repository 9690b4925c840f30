"""Lab ``activations``: sigmoid, tanh, ReLU, leaky ReLU and GELU, side by side.

The same network (same depth, width, data, optimizer and seed) is built five times, once
per activation, and the lab measures what the textbooks say about each:

* the derivative's maximum: 1/4 for sigmoid (at 0), 1 for tanh, 1 for the ReLU family,
  so every sigmoid layer can shrink the backward signal by at least 4x;
* the mean activation: sigmoid's outputs are all positive (mean near 0.5, not
  zero-centred), tanh's are centred on zero;
* per-layer gradient norms at initialisation: the first layer gets the least with sigmoid;
* saturated units (sigmoid or tanh output within 5% of its bounds, where the derivative is
  nearly 0) and dead ReLUs (output 0 for every training image, so no gradient ever again);
* learning curves: the ReLU family learns fastest, sigmoid slowest.

Example: ``nl.labs.run("activations", quick=True).rows``
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import datasets, nn, optim
from ..callbacks import GradientMonitor
from ..tensor import Tensor, no_grad
from ..training import fit
from . import Claim, LabResult
from ._common import layer_grad_norms, standardize

ACTIVATIONS = {"sigmoid": "sigmoid", "tanh": "tanh", "ReLU": "relu", "leaky ReLU": "leaky_relu",
               "GELU": "gelu"}


def derivative_max(activation: str) -> tuple[float, float]:
    """The largest derivative of an activation on [-6, 6] and where it occurs, by backward().

    Example: ``derivative_max("sigmoid")  # (0.25, 0.0)``
    """
    from .. import functional as F
    x = Tensor(np.linspace(-6, 6, 120001), requires_grad=True, dtype=np.float64)
    F.get_activation(activation)(x).sum().backward()
    i = int(np.argmax(x.grad))
    return float(x.grad[i]), float(x.data[i])


def hidden_outputs(model: nn.MLP, X: np.ndarray) -> list[np.ndarray]:
    """Each hidden block's output (after its activation), in eval mode.

    Example: ``[h.shape for h in hidden_outputs(model, X)]``
    """
    outs, h = [], Tensor(X)
    model.eval()
    with no_grad():
        for block in list(model)[:-1]:  # the last module is the output Linear
            h = block(h)
            outs.append(h.data)
    return outs


def unit_stats(activation: str, outs: list[np.ndarray]) -> dict[str, float]:
    """Mean activation, share of saturated units' outputs and share of dead units.

    Example: ``unit_stats("relu", hidden_outputs(model, X))``
    """
    a = np.concatenate([o.reshape(-1) for o in outs])
    if activation == "sigmoid":  # within 5% of the bounds 0 and 1: derivative < 0.048
        saturated = float(np.mean((a < 0.05) | (a > 0.95)))
    elif activation == "tanh":    # within 5% of the bounds -1 and 1: derivative < 0.098
        saturated = float(np.mean(np.abs(a) > 0.9))
    else:
        saturated = float("nan")  # the ReLU family has no upper bound to saturate against
    # A unit is dead when it outputs exactly 0 for every input: it never passes a gradient.
    dead = float(np.mean(np.concatenate([np.all(o == 0, axis=0) for o in outs])))
    return {"mean": float(a.mean()), "saturated": saturated, "dead": dead}


def run(quick: bool = False, out_dir: Path | None = None, seed: int = 0) -> LabResult:
    """Train the same network with each activation and compare speed, saturation and dead units.

    Example: ``run(quick=True).format_claims()``
    """
    depth, width = (5, 64) if quick else (8, 128)
    epochs, lr = (12, 0.02) if quick else (40, 0.02)
    data = datasets.load_digits(test_size=0.25, random_state=seed)
    Xtr, Xte = standardize(data.X_train, data.X_test)
    ytr, yte = data.y_train, data.y_test
    if quick:
        Xtr, ytr = Xtr[:600], ytr[:600]
    probe = slice(0, 256)

    rows, curves, grads0, grads_train, stats = [], {}, {}, {}, {}
    for label, act in ACTIVATIONS.items():
        model = nn.MLP(64, (width,) * depth, 10, activation=act, rng=seed)
        grads0[label] = layer_grad_norms(model, Xtr[probe], ytr[probe], weights=_weights(model))
        init_stats = unit_stats(act, hidden_outputs(model, Xtr))
        monitor = GradientMonitor()
        # SGD with momentum: Adam rescales every gradient and would hide the activations' scale.
        opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        hist = fit(model, Xtr, ytr, optimizer=opt, epochs=epochs, batch_size=32,
                   validation_data=(Xte, yte), metrics=["accuracy"], callbacks=[monitor],
                   seed=seed, verbose=0)
        curves[label] = hist.history
        grads_train[label] = np.array([v[0] for v in monitor.history.values()])
        after = unit_stats(act, hidden_outputs(model, Xtr))
        stats[label] = {"init": init_stats, "after": after}
        g = grads0[label]
        rows.append([label, derivative_max(act)[0], init_stats["mean"], float(g[0] / g[-2]),
                     init_stats["saturated"], after["saturated"], init_stats["dead"], after["dead"],
                     hist.history["loss"][-1],
                     hist.history["accuracy"][-1], hist.history["val_accuracy"][-1]])

    r = {row[0]: row for row in rows}
    dmax = {k: derivative_max(a) for k, a in ACTIVATIONS.items()}
    loss = {k: v[8] for k, v in r.items()}
    ratio = {k: v[3] for k, v in r.items()}
    mean0 = {k: v[2] for k, v in r.items()}
    relu_family = ("ReLU", "leaky ReLU", "GELU")
    claims = [
        Claim("Sigmoid's derivative peaks at 0.25 (at x = 0) and tanh's at 1, so each sigmoid layer "
              "scales the backward signal by at most 1/4.",
              abs(dmax["sigmoid"][0] - 0.25) < 1e-6 and abs(dmax["tanh"][0] - 1) < 1e-6
              and abs(dmax["sigmoid"][1]) < 1e-3,
              {"sigmoid_max": dmax["sigmoid"][0], "at_x": dmax["sigmoid"][1],
               "tanh_max": dmax["tanh"][0], "relu_max": dmax["ReLU"][0], "gelu_max": dmax["GELU"][0]}),
        Claim("Sigmoid is not zero-centred (mean hidden activation > 0.3 at initialisation); tanh is "
              "(|mean| < 0.05).",
              mean0["sigmoid"] > 0.3 and abs(mean0["tanh"]) < 0.05,
              {"sigmoid_mean": mean0["sigmoid"], "tanh_mean": mean0["tanh"], "relu_mean": mean0["ReLU"]}),
        Claim(f"At initialisation the first layer's gradient, relative to the last hidden layer's, is "
              f"smallest with sigmoid (depth {depth}).",
              all(ratio["sigmoid"] < ratio[k] for k in r if k != "sigmoid"),
              {f"ratio_{k.replace(' ', '_')}": v for k, v in ratio.items()}),
        Claim(f"After {epochs} epochs of the same SGD every ReLU-family network has a lower training "
              "loss than tanh, and tanh lower than sigmoid.",
              all(loss[k] < loss["tanh"] for k in relu_family) and loss["tanh"] < loss["sigmoid"],
              {f"loss_{k.replace(' ', '_')}": v for k, v in loss.items()}),
    ]

    figures = []
    if out_dir is not None:
        from .. import plots
        ep = np.arange(1, epochs + 1)
        layers = np.arange(1, depth + 2)
        xs = np.linspace(-5, 5, 401)
        from .. import functional as F

        def curve(act, grad=False):
            t = Tensor(xs, requires_grad=True, dtype=np.float64)
            y = F.get_activation(act)(t)
            y.sum().backward()
            return t.grad if grad else y.data

        figures.append(plots.line_panels(
            [{"title": "The functions", "xlabel": "x", "ylabel": "f(x)", "ylim": (-1.5, 3),
              "series": {k: (xs, curve(a)) for k, a in ACTIVATIONS.items()}, "legend_loc": "upper left"},
             {"title": "Their derivatives (sigmoid peaks at 0.25)", "xlabel": "x", "ylabel": "f'(x)",
              "hline": 0.25, "series": {k: (xs, curve(a, True)) for k, a in ACTIVATIONS.items()},
              "legend_loc": "upper left"},
             {"title": "Per-layer gradient norm at initialisation", "xlabel": "layer (1 = input side)",
              "ylabel": "|dL/dW| (Frobenius)", "logy": True,
              "series": {k: (layers, v) for k, v in grads0.items()}},
             {"title": "Training loss", "xlabel": "epoch", "ylabel": "cross-entropy", "logy": True,
              "series": {k: (ep, h["loss"]) for k, h in curves.items()}},
             {"title": "Validation accuracy", "xlabel": "epoch", "ylabel": "accuracy", "ylim": (0, 1.02),
              "hline": 0.1, "series": {k: (ep, h["val_accuracy"]) for k, h in curves.items()},
              "legend_loc": "lower right"},
             {"title": "Gradient norm in training (epoch 1 mean)", "xlabel": "layer (1 = input side)",
              "ylabel": "|dL/dW| (Frobenius)", "logy": True,
              "series": {k: (layers, v) for k, v in grads_train.items()}},
             {"kind": "bar", "title": "Saturated outputs (sigmoid, tanh: within 5% of a bound)\n"
              "and dead units (output 0 on every training image)",
              "ylabel": "share of outputs / of units", "groups": list(ACTIVATIONS), "annotate": ".1%",
              "rotation": 0, "legend_loc": "upper right",
              "bars": {"saturated, init": [s["init"]["saturated"] for s in stats.values()],
                       "saturated, trained": [s["after"]["saturated"] for s in stats.values()],
                       "dead, init": [s["init"]["dead"] for s in stats.values()],
                       "dead, trained": [s["after"]["dead"] for s in stats.values()]}}],
            out_dir / "activations.png", ncols=4,
            title=f"Five activations, same {depth}x{width} MLP on digits, SGD+momentum lr={lr}"))
    notes = [f"{k}: mean activation {s['init']['mean']:.3f} at init, {s['after']['mean']:.3f} after; "
             f"saturated {s['after']['saturated']:.3f}, dead {s['after']['dead']:.3f} after training"
             for k, s in stats.items()]
    return LabResult("activations", "", columns=[
        "activation", "max derivative", "mean activation at init", "grad ratio first/last at init",
        "saturated share at init", "saturated share after", "dead-unit share at init",
        "dead-unit share after", "final train loss", "train accuracy",
        "validation accuracy"], rows=rows, claims=claims, figures=figures, notes=notes)


def _weights(model: nn.MLP) -> list:
    """The dense layers' weights, input side first."""
    return [p for name, p in model.named_parameters() if name.endswith("weight") and p.ndim == 2]
