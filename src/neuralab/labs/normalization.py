"""Lab ``normalization``: why inputs are standardised before training.

In the wine data (scikit-learn's copy of the UCI set) one feature, proline, runs into the
thousands while others stay below one. With raw inputs the proline weight's gradient
dwarfs the rest, so any learning rate small enough to be stable for it is far too small for
the others; standardised inputs (mean 0, standard deviation 1) put every weight on the same
footing.

Example: ``nl.labs.run("normalization", quick=True).rows``
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import datasets
from . import Claim, LabResult
from ._common import accuracy, lab_mlp, make_optimizer, standardize, train


def run(quick: bool = False, out_dir: Path | None = None, seed: int = 0) -> LabResult:
    """Train on raw and on standardised wine features and compare.

    Example: ``run(quick=True).passed``
    """
    d = datasets.load_wine(test_size=0.3, random_state=seed)
    Xtr, ytr, Xte, yte = d.X_train, d.y_train, d.X_test, d.y_test
    X = np.concatenate([Xtr, Xte])
    epochs = 60 if quick else 200
    scales = X.std(axis=0)

    inputs = {"raw features": (Xtr, Xte), "standardised": tuple(standardize(Xtr, Xte))}
    rows, curves, reach = [], {}, {}
    for label, (a, b) in inputs.items():
        # The largest learning rate that does not diverge on raw inputs is ~1e-7 (proline is
        # ~1e3, so the curvature is ~1e6); we give both the same, well-tuned-for-standardised
        # rate and, for raw inputs, also the stable one.
        for lr in ((0.05,) if label == "standardised" else (0.05, 1e-6)):
            model = lab_mlp(13, 32, 3, depth=1, activation="relu", init="he", rng=np.random.default_rng(seed))
            opt = make_optimizer("momentum", model.parameters(), lr=lr)
            with np.errstate(all="ignore"):
                hist = train(model, a, ytr, opt, epochs=epochs, batch_size=16, rng=np.random.default_rng(seed))
                test = accuracy(model, b, yte)
            key = f"{label}, lr={lr:g}"
            curves[key] = hist
            hit = np.flatnonzero(np.array(hist["accuracy"]) >= 0.9)
            reach[key] = int(hit[0]) + 1 if len(hit) else None
            loss = hist["loss"][-1]
            rows.append([key, reach[key], hist["accuracy"][-1], test, loss if np.isfinite(loss) else float("nan")])

    acc = {r[0]: r[3] for r in rows}
    std_key = "standardised, lr=0.05"
    raw_keys = [k for k in acc if k.startswith("raw")]
    claims = [
        Claim("The features' scales differ by more than 1000x (largest against smallest standard deviation).",
              scales.max() / scales.min() > 1000,
              {"largest_std": float(scales.max()), "smallest_std": float(scales.min())}),
        Claim("With standardised inputs the network reaches 90% training accuracy within the budget "
              "and >= 0.9 test accuracy.",
              reach[std_key] is not None and acc[std_key] >= 0.9,
              {"epochs_to_90pct": reach[std_key], "test_accuracy": acc[std_key]}),
        Claim("With raw inputs, at either learning rate, test accuracy stays at least 0.2 lower and "
              "90% training accuracy is reached later or never.",
              all(acc[k] <= acc[std_key] - 0.2 and (reach[k] is None or reach[k] > reach[std_key])
                  for k in raw_keys),
              {**{f"test_accuracy_{k}": acc[k] for k in raw_keys},
               **{f"epochs_to_90pct_{k}": reach[k] for k in raw_keys}}),
    ]
    figures = []
    if out_dir is not None:
        from .. import plots
        ep = np.arange(1, epochs + 1)
        figures.append(plots.line_panels(
            [{"title": "Training loss", "xlabel": "epoch", "ylabel": "cross-entropy", "logy": True,
              "series": {k: (ep, np.where(np.isfinite(h["loss"]), h["loss"], np.nan)) for k, h in curves.items()}},
             {"title": "Training accuracy", "xlabel": "epoch", "ylabel": "accuracy", "ylim": (0, 1.02),
              "hline": 0.9, "series": {k: (ep, h["accuracy"]) for k, h in curves.items()}},
             {"title": "Feature scales in wine", "xlabel": "feature index", "ylabel": "standard deviation",
              "logy": True, "series": {"std of each raw feature": (np.arange(13), scales)}}],
            out_dir / "normalization.png", title="Raw against standardised inputs (wine, 13-32-3 MLP, SGD+momentum)"))
    return LabResult("normalization", "", columns=["inputs", "epochs to 90% train acc.", "train accuracy",
                                                   "test accuracy", "final loss"],
                     rows=rows, claims=claims, figures=figures)
