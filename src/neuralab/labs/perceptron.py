"""Lab ``perceptron``: Rosenblatt's perceptron learns AND and OR but never XOR; one hidden
layer solves XOR.

AND and OR can be split by a line, so the perceptron rule converges (Novikoff); XOR cannot,
so it keeps making mistakes however long it runs (Minsky and Papert 1969). A 2-4-1 MLP
trained by backpropagation bends the boundary and gets all four points right.

Example: ``nl.labs.run("perceptron", quick=True).claims``
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ..tensor import Tensor, no_grad
from . import Claim, LabResult
from ._common import accuracy, lab_mlp, make_optimizer, train

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
TARGETS = {"AND": np.array([0, 0, 0, 1]), "OR": np.array([0, 1, 1, 1]), "XOR": np.array([0, 1, 1, 0])}


def run(quick: bool = False, out_dir: Path | None = None, seed: int = 0) -> LabResult:
    """Fit a perceptron to AND, OR and XOR, then solve XOR with one hidden layer.

    Example: ``run(quick=True).passed``
    """
    from ..estimators import Perceptron
    max_iter = 100 if quick else 1000
    rows, panels, fitted = [], [], {}
    for gate, y in TARGETS.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # XOR's ConvergenceWarning is the point of the lab
            clf = Perceptron(max_iter=max_iter, random_state=seed).fit(X, y)
        acc = float((clf.predict(X) == y).mean())
        fitted[gate] = clf
        rows.append([f"perceptron on {gate}", acc, bool(clf.converged_), int(clf.n_iter_),
                     int(clf.mistakes_[-1])])
        panels.append({"title": f"perceptron, {gate}: accuracy {acc:.2f}", "predict": clf.predict,
                       "X": X, "y": y, "legend_loc": "center"})

    # A 2-4-1 network (tanh hidden layer) learns XOR by gradient descent.
    y = TARGETS["XOR"]
    Xs = np.repeat(X, 8, axis=0)  # 8 copies of each point: mini-batches of mixed points
    ys = np.repeat(y, 8)
    mlp = lab_mlp(2, 4, 2, depth=1, activation="tanh", init="xavier", rng=np.random.default_rng(seed))
    opt = make_optimizer("adam", mlp.parameters(), lr=0.05)
    hist = train(mlp, Xs, ys, opt, epochs=100 if quick else 300, batch_size=8, rng=np.random.default_rng(seed))
    mlp_acc = accuracy(mlp, X, y)
    rows.append(["MLP 2-4-1 (tanh) on XOR", mlp_acc, mlp_acc == 1.0, len(hist["loss"]),
                 int(round((1 - mlp_acc) * 4))])

    def mlp_predict(G):
        mlp.eval()
        with no_grad():
            return mlp(Tensor(G.astype(np.float32))).data.argmax(axis=1)

    panels.append({"title": f"MLP 2-4-1, XOR: accuracy {mlp_acc:.2f}", "predict": mlp_predict, "X": X, "y": y, "legend_loc": "center"})
    acc = {r[0]: r[1] for r in rows}
    claims = [
        Claim("The perceptron learns AND and OR: the rule converges with every point right.",
              all(fitted[g].converged_ and acc[f"perceptron on {g}"] == 1.0 for g in ("AND", "OR")),
              {"AND_epochs": int(fitted["AND"].n_iter_), "OR_epochs": int(fitted["OR"].n_iter_)}),
        Claim("The perceptron fails XOR: after every epoch it still gets at least one point wrong.",
              (not fitted["XOR"].converged_) and acc["perceptron on XOR"] < 1.0
              and min(fitted["XOR"].mistakes_) >= 1,
              {"epochs": int(fitted["XOR"].n_iter_), "accuracy": acc["perceptron on XOR"],
               "fewest_mistakes_in_an_epoch": int(min(fitted["XOR"].mistakes_))}),
        Claim("A one-hidden-layer MLP (2-4-1) solves XOR.", mlp_acc == 1.0,
              {"accuracy": mlp_acc, "final_loss": hist["loss"][-1]}),
    ]
    figures = []
    if out_dir is not None:
        from .. import plots
        figures.append(plots.decision_boundaries(panels, out_dir / "perceptron_boundaries.png", ncols=4,
                                                 title="Perceptron: AND and OR yes, XOR no; one hidden layer solves XOR"))
    return LabResult("perceptron", "", columns=["model", "accuracy", "converged", "epochs",
                                                "mistakes in last epoch"], rows=rows, claims=claims,
                     figures=figures)
