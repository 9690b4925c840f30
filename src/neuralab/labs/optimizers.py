"""Lab ``optimizers``: gradient descent, momentum and Adam on the same ill-conditioned problem.

Least squares with two weights whose features differ in scale has a long, narrow valley:
the steep direction caps gradient descent's learning rate, so it crawls along the flat one.
Momentum accumulates velocity along the valley floor; Adam divides each weight's step by its
own gradient scale, so its first step moves both weights by the same amount.

Example: ``nl.labs.run("optimizers").claims``
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import functional as F
from ..nn.module import Parameter
from ..tensor import Tensor
from . import Claim, LabResult
from ._common import make_optimizer

START = np.array([-2.0, 1.8])


def problem(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """X with feature scales 1 and 0.15 (curvatures differ ~45x), y = X @ w_true + noise.

    Example: ``X, y, w_true = problem(seed=0)``
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((200, 2)) * np.array([1.0, 0.15])
    w_true = np.array([1.0, -1.5])
    y = X @ w_true + 0.05 * rng.standard_normal(200)
    return X, y, w_true


def run(quick: bool = False, out_dir: Path | None = None, seed: int = 0) -> LabResult:
    """Race gradient descent, momentum and Adam down the same narrow valley.

    Example: ``run(quick=True).passed``
    """
    X, y, _ = problem(seed)
    w_star = np.linalg.lstsq(X, y, rcond=None)[0]
    loss_star = float(np.mean((X @ w_star - y) ** 2))
    Xt, yt = Tensor(X, dtype=np.float64), Tensor(y, dtype=np.float64)
    steps = 150 if quick else 400
    settings = {"gradient descent": ("sgd", 0.4, {}), "momentum (0.9)": ("momentum", 0.4, {}),
                "Adam": ("adam", 0.1, {})}

    paths, losses, rows, first_step = {}, {}, [], {}
    for label, (name, lr, kw) in settings.items():
        w = Parameter(START.copy(), dtype=np.float64)
        opt = make_optimizer(name, [w], lr=lr, **kw)
        path, curve = [w.data.copy()], []
        for _ in range(steps):
            opt.zero_grad()
            loss = F.mse_loss(Xt @ w, yt)
            loss.backward()
            opt.step()
            curve.append(float(loss.item()) - loss_star)
            path.append(w.data.copy())
        paths[label], losses[label] = np.array(path), np.maximum(np.array(curve), 1e-16)
        first_step[label] = np.abs(path[1] - path[0])
        reach = np.flatnonzero(losses[label] < 1e-4)
        rows.append([label, lr, int(reach[0]) + 1 if len(reach) else None, float(losses[label][-1]),
                     float(np.linalg.norm(path[-1] - w_star))])

    reach = {r[0]: r[2] for r in rows}
    final = {r[0]: r[3] for r in rows}

    def steps_or_inf(k):
        return reach[k] if reach[k] is not None else np.inf
    fs = first_step["Adam"]
    claims = [
        Claim("Momentum reaches the minimum (excess loss < 1e-4) in fewer steps than plain gradient "
              "descent with the same learning rate.",
              steps_or_inf("momentum (0.9)") < steps_or_inf("gradient descent"),
              {"steps_gd": reach["gradient descent"], "steps_momentum": reach["momentum (0.9)"]}),
        Claim("Adam's first step moves both weights by the same amount (its learning rate), although "
              "their gradients differ by an order of magnitude.",
              abs(fs[0] - fs[1]) < 1e-6 * max(fs),
              {"adam_first_step_w1": float(fs[0]), "adam_first_step_w2": float(fs[1]),
               "gd_first_step_ratio_w1_w2": float(first_step["gradient descent"][0] /
                                                 first_step["gradient descent"][1])}),
        Claim("On the flat direction plain gradient descent crawls: after the step budget its excess "
              "loss is at least 100x that of momentum and of Adam.",
              final["gradient descent"] >= 100 * max(final["momentum (0.9)"], final["Adam"]),
              {"steps": steps, **{f"final_excess_{k.split()[0].lower()}": v for k, v in final.items()}}),
    ]
    figures = []
    if out_dir is not None:
        from .. import plots

        def surface(a, b):
            W = np.stack([a.ravel(), b.ravel()], axis=1)
            return (((X @ W.T) - y[:, None]) ** 2).mean(axis=0).reshape(a.shape)

        figures.append(plots.contour_paths(
            surface, {k: v[:60] for k, v in paths.items()}, (-2.5, 2.5), (-3.5, 2.5),
            out_dir / "optimizers_trajectories.png",
            title="First 60 steps on an ill-conditioned least-squares loss", minimum=tuple(w_star)))
        figures.append(plots.line_panels(
            [{"title": "Excess loss against steps", "xlabel": "step", "ylabel": "loss - minimum loss",
              "logy": True, "hline": 1e-4,
              "series": {k: (np.arange(1, steps + 1), v) for k, v in losses.items()}}],
            out_dir / "optimizers_loss.png", title="Gradient descent, momentum, Adam"))
    return LabResult("optimizers", "", columns=["optimizer", "learning rate", "steps to excess loss < 1e-4",
                                                "final excess loss", "distance to optimum"],
                     rows=rows, claims=claims, figures=figures)
