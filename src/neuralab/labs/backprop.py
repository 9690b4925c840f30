"""Lab ``backprop``: a 2-2-1 network worked by hand, then checked by the engine.

The forward pass, the loss, every local derivative and every chain-rule product are
computed with plain floats and printed; each weight's gradient is then compared with
neuralab's ``backward()`` and with central finite differences, and one gradient-descent
step is taken to show the loss going down.

Example: ``print(nl.labs.run("backprop"))``
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .. import functional as F
from ..tensor import Tensor
from . import Claim, LabResult

# The classic textbook numbers (a 2-2-1 version of Matt Mazur's worked example).
X_IN = (0.05, 0.10)
TARGET = 0.01
PARAMS = {"w1": 0.15, "w2": 0.20, "w3": 0.25, "w4": 0.30, "b1": 0.35,
          "w5": 0.40, "w6": 0.45, "b2": 0.60}
LR = 0.5


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def _loss(p: dict[str, float]) -> float:
    x1, x2 = X_IN
    h1 = _sigmoid(p["w1"] * x1 + p["w2"] * x2 + p["b1"])
    h2 = _sigmoid(p["w3"] * x1 + p["w4"] * x2 + p["b1"])
    o = _sigmoid(p["w5"] * h1 + p["w6"] * h2 + p["b2"])
    return 0.5 * (o - TARGET) ** 2


def by_hand(p: dict[str, float]) -> tuple[dict[str, float], list[str]]:
    """Forward and backward with plain floats; returns the gradients and the printed steps.

    Example: ``grads, steps = by_hand(params)``
    """
    x1, x2 = X_IN
    s: list[str] = []
    s.append("FORWARD  (h = sigmoid(z), o = sigmoid(z_o), L = 1/2 (o - t)^2)")
    z1 = p["w1"] * x1 + p["w2"] * x2 + p["b1"]
    h1 = _sigmoid(z1)
    s.append(f"  z1 = w1*x1 + w2*x2 + b1 = {p['w1']}*{x1} + {p['w2']}*{x2} + {p['b1']} = {z1:.6f};  h1 = sigmoid(z1) = {h1:.6f}")
    z2 = p["w3"] * x1 + p["w4"] * x2 + p["b1"]
    h2 = _sigmoid(z2)
    s.append(f"  z2 = w3*x1 + w4*x2 + b1 = {p['w3']}*{x1} + {p['w4']}*{x2} + {p['b1']} = {z2:.6f};  h2 = sigmoid(z2) = {h2:.6f}")
    zo = p["w5"] * h1 + p["w6"] * h2 + p["b2"]
    o = _sigmoid(zo)
    s.append(f"  zo = w5*h1 + w6*h2 + b2 = {zo:.6f};  o = sigmoid(zo) = {o:.6f}")
    loss = 0.5 * (o - TARGET) ** 2
    s.append(f"  L  = 1/2 (o - t)^2 = 1/2 ({o:.6f} - {TARGET})^2 = {loss:.8f}")

    s.append("BACKWARD (local derivatives, then the chain rule)")
    dL_do = o - TARGET
    do_dzo = o * (1 - o)
    delta_o = dL_do * do_dzo
    s.append(f"  dL/do   = o - t          = {dL_do:.6f}")
    s.append(f"  do/dzo  = o (1 - o)      = {do_dzo:.6f}")
    s.append(f"  dL/dzo  = dL/do * do/dzo = {dL_do:.6f} * {do_dzo:.6f} = {delta_o:.6f}")
    g = {}
    g["w5"] = delta_o * h1
    g["w6"] = delta_o * h2
    g["b2"] = delta_o
    s.append(f"  dL/dw5  = dL/dzo * h1 = {delta_o:.6f} * {h1:.6f} = {g['w5']:.8f}")
    s.append(f"  dL/dw6  = dL/dzo * h2 = {delta_o:.6f} * {h2:.6f} = {g['w6']:.8f}")
    s.append(f"  dL/db2  = dL/dzo * 1  = {g['b2']:.8f}")
    dh1 = delta_o * p["w5"]
    dh2 = delta_o * p["w6"]
    d1 = dh1 * h1 * (1 - h1)
    d2 = dh2 * h2 * (1 - h2)
    s.append(f"  dL/dh1  = dL/dzo * w5 = {dh1:.6f};  dL/dz1 = dL/dh1 * h1 (1 - h1) = {dh1:.6f} * {h1 * (1 - h1):.6f} = {d1:.8f}")
    s.append(f"  dL/dh2  = dL/dzo * w6 = {dh2:.6f};  dL/dz2 = dL/dh2 * h2 (1 - h2) = {dh2:.6f} * {h2 * (1 - h2):.6f} = {d2:.8f}")
    g["w1"], g["w2"] = d1 * x1, d1 * x2
    g["w3"], g["w4"] = d2 * x1, d2 * x2
    g["b1"] = d1 + d2   # b1 feeds both hidden units, so its gradient is the sum of both paths
    s.append(f"  dL/dw1  = dL/dz1 * x1 = {g['w1']:.8f};  dL/dw2 = dL/dz1 * x2 = {g['w2']:.8f}")
    s.append(f"  dL/dw3  = dL/dz2 * x1 = {g['w3']:.8f};  dL/dw4 = dL/dz2 * x2 = {g['w4']:.8f}")
    s.append(f"  dL/db1  = dL/dz1 + dL/dz2 (shared bias: the two paths add) = {g['b1']:.8f}")
    return g, s


def by_engine(p: dict[str, float]) -> dict[str, float]:
    """The same network as neuralab Tensors (float64); ``backward()`` fills the gradients.

    Example: ``by_engine(params)["w1"]``
    """
    t = {k: Tensor(np.array(v), requires_grad=True, dtype=np.float64) for k, v in p.items()}
    x1, x2 = X_IN
    h1 = F.sigmoid(t["w1"] * x1 + t["w2"] * x2 + t["b1"])
    h2 = F.sigmoid(t["w3"] * x1 + t["w4"] * x2 + t["b1"])
    o = F.sigmoid(t["w5"] * h1 + t["w6"] * h2 + t["b2"])
    loss = 0.5 * (o - TARGET) ** 2
    loss.backward()
    return {k: float(v.grad) for k, v in t.items()}


def finite_differences(p: dict[str, float], eps: float = 1e-6) -> dict[str, float]:
    """Central differences (L(w + eps) - L(w - eps)) / (2 eps), one weight at a time.

    Example: ``finite_differences(params, eps=1e-6)["w1"]``
    """
    out = {}
    for k in p:
        hi, lo = dict(p), dict(p)
        hi[k] += eps
        lo[k] -= eps
        out[k] = (_loss(hi) - _loss(lo)) / (2 * eps)
    return out


def run(quick: bool = False, out_dir: Path | None = None, seed: int = 0) -> LabResult:
    """Work the 2-2-1 example (quick and full mode are the same: it takes milliseconds)."""
    p = dict(PARAMS)
    hand, steps = by_hand(p)
    engine = by_engine(p)
    numeric = finite_differences(p)
    new = {k: p[k] - LR * hand[k] for k in p}
    loss0, loss1 = _loss(p), _loss(new)
    steps.append(f"UPDATE   w <- w - {LR} * dL/dw for every weight")
    steps.append(f"  loss before = {loss0:.8f}, after one step = {loss1:.8f} "
                 f"(change {loss1 - loss0:+.3e})")

    rows = [[k, p[k], hand[k], engine[k], numeric[k], new[k]] for k in p]
    err_engine = max(abs(hand[k] - engine[k]) for k in p)
    rel_fd = max(abs(hand[k] - numeric[k]) / max(abs(numeric[k]), 1e-12) for k in p)
    # First-order prediction of the loss change: -lr * |grad|^2.
    predicted = -LR * sum(v * v for v in hand.values())
    claims = [
        Claim("The chain-rule gradients worked by hand equal neuralab's backward() for every weight.",
              err_engine < 1e-12, {"max_abs_difference": err_engine}),
        Claim("Each weight's gradient agrees with central finite differences.",
              rel_fd < 1e-6, {"max_relative_difference": rel_fd, "eps": 1e-6}),
        Claim("backward() gives the shared bias b1 the sum of the gradients of both paths through it.",
              abs(engine["b1"] - (hand["w1"] / X_IN[0] + hand["w3"] / X_IN[0])) < 1e-12,
              {"dL_db1": engine["b1"], "dL_dz1": hand["w1"] / X_IN[0], "dL_dz2": hand["w3"] / X_IN[0]}),
        Claim("One gradient-descent step lowers the loss, by about -lr * |grad|^2.",
              loss1 < loss0 and abs((loss1 - loss0) - predicted) < 0.1 * abs(predicted),
              {"loss_before": loss0, "loss_after": loss1, "predicted_change": predicted,
               "actual_change": loss1 - loss0}),
    ]
    figures = []
    if out_dir is not None:
        from .. import plots
        names = list(p)
        figures.append(plots.bar_panels(
            [{"title": "dL/dw: by hand, by backward(), by finite differences", "ylabel": "gradient",
              "groups": names, "bars": {"by hand": [hand[k] for k in names],
                                        "backward()": [engine[k] for k in names],
                                        "finite differences": [numeric[k] for k in names]},
              "rotation": 0, "logy": True}],
            out_dir / "backprop_gradients.png", title="Backprop on a 2-2-1 network"))
    return LabResult("backprop", "", columns=["weight", "value", "dL/dw by hand", "backward()",
                                              "finite diff.", f"after step (lr={LR})"],
                     rows=rows, claims=claims, figures=figures, notes=steps)
