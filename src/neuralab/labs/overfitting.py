"""Lab ``overfitting``: a large network on few samples, and the three classic cures.

Sixty noisy points of scikit-learn's two-moons shape and two hidden layers of 128 units
(about 17,000 weights, 280 per training point): the network can memorise every point, noise
included, so training loss goes to ~0 while validation loss climbs and the decision
boundary wraps around single points. Each remedy limits how far it can fit the noise:

* L2 regularisation (weight decay) adds ``l2/2 * sum(w**2)`` to the loss, keeping weights small;
* dropout zeroes a random half of the hidden units at every step, so no unit can rely on
  a particular other one (Srivastava et al. 2014);
* early stopping keeps the weights of the epoch with the lowest validation loss.

Every configuration is trained with ``nl.fit`` on the same data from the same initial
weights; this is repeated over a few seeds (a new sample of points each) so that what the
lab reports is the mean, not one lucky draw.

Example: ``nl.labs.run("overfitting", quick=True).rows``
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import datasets, nn
from ..callbacks import EarlyStopping
from ..training import evaluate, fit, predict
from . import Claim, LabResult

# label -> (l2, dropout, early stopping)
REMEDIES = {"none": (0.0, 0.0, False), "L2 (1e-2)": (1e-2, 0.0, False),
            "dropout 0.5": (0.0, 0.5, False), "early stopping": (0.0, 0.0, True),
            "all three": (1e-2, 0.5, True)}


def run(quick: bool = False, out_dir: Path | None = None, seed: int = 0) -> LabResult:
    """Overfit a large network on few points, then cure it with L2, dropout and early stopping.

    Example: ``run(quick=True).passed``
    """
    n_train, n_val, n_test, noise = 60, 200, 1000, 0.35
    hidden = (128, 128) if quick else (256, 256)
    epochs, lr = (200, 5e-3) if quick else (400, 3e-3)
    seeds = [seed + i for i in range(3 if quick else 10)]

    per_seed: dict[str, list[dict]] = {k: [] for k in REMEDIES}
    curves: dict[str, dict] = {}
    models, first = {}, None
    for s in seeds:
        d = datasets.make_moons(n_train + n_val + n_test, noise=noise, random_state=s)
        X, y = d.X_train, d.y_train
        Xtr, ytr = X[:n_train], y[:n_train]
        Xval, yval = X[n_train:n_train + n_val], y[n_train:n_train + n_val]
        Xte, yte = X[n_train + n_val:], y[n_train + n_val:]
        if first is None:
            first = (Xtr, ytr)
        for label, (l2, p, early) in REMEDIES.items():
            model = nn.MLP(2, hidden, 2, dropout=p, rng=s)
            stopper = EarlyStopping(monitor="val_loss", patience=20, restore_best=True)
            hist = fit(model, Xtr, ytr, optimizer="adam", lr=lr, epochs=epochs, batch_size=32,
                       validation_data=(Xval, yval), metrics=["accuracy"], l2=l2,
                       callbacks=[stopper] if early else [], seed=s, verbose=0)
            # Measured after training (weights restored by early stopping), in eval mode.
            tr = evaluate(model, Xtr, ytr, metrics=["accuracy"])
            va = evaluate(model, Xval, yval, metrics=["accuracy"])
            te = evaluate(model, Xte, yte, metrics=["accuracy"])
            per_seed[label].append({
                "loss_gap": va["loss"] - tr["loss"], "acc_gap": tr["accuracy"] - va["accuracy"],
                "test": te["accuracy"], "train_loss": tr["loss"], "val_loss": va["loss"],
                "epochs": len(hist.history["loss"])})
            if s == seeds[0]:
                curves[label], models[label] = hist.history, model

    def mean(label, key):
        return float(np.mean([d[key] for d in per_seed[label]]))

    rows = [[label, mean(label, "train_loss"), mean(label, "val_loss"), mean(label, "loss_gap"),
             mean(label, "acc_gap"), mean(label, "test"),
             float(np.min([d["test"] for d in per_seed[label]])), mean(label, "epochs")]
            for label in REMEDIES]
    gap = {r[0]: r[3] for r in rows}
    test = {r[0]: r[5] for r in rows}
    remedies = [k for k in REMEDIES if k != "none"]
    claims = [
        Claim(f"Without a remedy the network overfits: training loss near 0, validation loss at least "
              f"10x higher (mean of {len(seeds)} seeds, {n_train} training points).",
              rows[0][1] < 0.05 and rows[0][2] >= 10 * rows[0][1],
              {"train_loss": rows[0][1], "val_loss": rows[0][2]}),
        Claim("Each remedy (L2, dropout, early stopping, all three) narrows the train-validation loss gap.",
              all(gap[k] < gap["none"] for k in remedies),
              {f"gap_{k.split()[0]}": v for k, v in gap.items()}),
        Claim("Each remedy raises the mean test accuracy.",
              all(test[k] > test["none"] for k in remedies),
              {**{f"test_{k.split()[0]}": v for k, v in test.items()},
               **{f"seeds_won_{k.split()[0]}": sum(a["test"] > b["test"] for a, b in
                                                   zip(per_seed[k], per_seed["none"])) for k in remedies},
               "seeds": len(seeds)}),
    ]

    figures = []
    if out_dir is not None:
        from .. import plots
        panels = []
        for label, h in curves.items():
            ep = np.arange(1, len(h["loss"]) + 1)
            panels.append({"title": label, "xlabel": "epoch", "ylabel": "cross-entropy", "logy": True,
                           "ylim": (1e-3, 20),
                           "series": {"train": (ep, h["loss"]), "validation": (ep, h["val_loss"])},
                           "legend_loc": "lower left"})
        panels.append({"title": f"Mean over {len(seeds)} seeds", "kind": "bar", "ylabel": "",
                       "groups": list(REMEDIES), "legend_loc": "upper right", "ylim": (0, 1.6),
                       "bars": {"val - train loss": [gap[k] for k in REMEDIES],
                                "test accuracy": [test[k] for k in REMEDIES]}})
        figures.append(plots.line_panels(
            panels, out_dir / "overfitting_curves.png",
            title=f"{n_train} noisy moons, MLP 2-{hidden[0]}-{hidden[1]}-2, Adam: train vs validation loss (seed {seeds[0]})"))

        def predictor(m):
            return lambda G: predict(m, G.astype(np.float32)).argmax(axis=1)

        figures.append(plots.decision_boundaries(
            [{"title": f"{k}\ntest accuracy {per_seed[k][0]['test']:.3f}", "predict": predictor(m),
              "X": first[0], "y": first[1]} for k, m in models.items()],
            out_dir / "overfitting_boundaries.png", ncols=5,
            title=f"Decision boundaries on the {n_train} training points (seed {seeds[0]})"))
    return LabResult("overfitting", "", columns=[
        "remedy", "train loss", "val loss", "val - train loss", "train - val accuracy",
        "test accuracy (mean)", "test accuracy (worst seed)", "epochs run"], rows=rows, claims=claims,
        figures=figures, notes=[f"two moons, noise {noise}: {n_train} training, {n_val} validation, "
                                f"{n_test} test points per seed; seeds {seeds}; {epochs} epochs of Adam "
                                f"lr={lr}; early stopping on val_loss (patience 20, best weights restored)"])
