"""neuralab's MLPClassifier against scikit-learn's, same settings, side by side in one process.

Run (unset the OpenBLAS overrides together, for benchmarks only):
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/vs_sklearn.py [--quick]

Prints test accuracy and median fit time for each data set, the ratio nl/sklearn, and a
dropout + batch-norm variant that sklearn cannot express. sklearn is given the data as a user
would (float64 after scaling) and, for reference, as float32 too.
"""
from __future__ import annotations

import argparse
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SkMLP
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_info

import neuralab as nl

MNIST = Path(os.environ.get("NEURALAB_DATA", "data")) / "mnist.npz"


def datasets(quick: bool):
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X / 16.0, y, test_size=0.25, random_state=0, stratify=y)
    yield "digits 64-(100)-10", (Xtr, Xte, ytr, yte), dict(hidden_layer_sizes=(100,), max_iter=50), 5
    X, y = load_breast_cancer(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    sc = StandardScaler().fit(Xtr)
    yield "breast cancer 30-(100)-1", (sc.transform(Xtr), sc.transform(Xte), ytr, yte), \
        dict(hidden_layer_sizes=(100,), max_iter=50), 5
    with np.load(MNIST) as d:
        n = 10000 if quick else 60000
        Xtr = d["x_train"][:n].reshape(n, -1) / 255.0
        Xte = d["x_test"].reshape(len(d["x_test"]), -1) / 255.0
        ytr, yte = d["y_train"][:n], d["y_test"]
    yield f"mnist 784-(256)-10, {n} rows", (Xtr, Xte, ytr, yte), \
        dict(hidden_layer_sizes=(256,), max_iter=20), 1


def timed_fit(make, X, y, repeats):
    times, model = [], None
    for _ in range(repeats):
        model = make()
        t = time.perf_counter()
        model.fit(X, y)
        times.append(time.perf_counter() - t)
    return statistics.median(times), model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="10000 MNIST rows")
    args = ap.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    for info in threadpool_info():
        print(f"BLAS: {info['internal_api']} {info.get('version')} kernel={info.get('architecture')} "
              f"threads={info['num_threads']}")
    # fixed epoch count on both sides: tol=0 and patience longer than the run
    common = dict(solver="adam", batch_size="auto", learning_rate_init=1e-3, alpha=1e-4,
                  tol=0.0, n_iter_no_change=1000, random_state=0)
    print(f"{'data set':34s} {'model':28s} {'acc %':>7s} {'fit s':>8s} {'nl/sk64':>8s}")
    for name, (Xtr, Xte, ytr, yte), params, reps in datasets(args.quick):
        kw = {**common, **params}
        rows = []
        t64, sk64 = timed_fit(lambda: SkMLP(**kw), Xtr, ytr, reps)
        rows.append(("sklearn (float64 input)", sk64.score(Xte, yte), t64))
        Xtr32, Xte32 = Xtr.astype(np.float32), Xte.astype(np.float32)
        t32, sk32 = timed_fit(lambda: SkMLP(**kw), Xtr32, ytr, reps)
        rows.append(("sklearn (float32 input)", sk32.score(Xte32, yte), t32))
        tnl, m = timed_fit(lambda: nl.MLPClassifier(**kw), Xtr, ytr, reps)
        rows.append(("neuralab (float32)", m.score(Xte, yte), tnl))
        tv, mv = timed_fit(lambda: nl.MLPClassifier(**kw, dropout=0.2, batch_norm=True), Xtr, ytr, reps)
        rows.append(("neuralab dropout+batch_norm", mv.score(Xte, yte), tv))
        for label, acc, t in rows:
            print(f"{name:34s} {label:28s} {100 * acc:7.2f} {t:8.3f} {t / t64:8.2f}")
        print(f"{'':34s} accuracy gap nl - sklearn64: {100 * (rows[2][1] - rows[0][1]):+.2f} points; "
              f"time nl/sk32: {tnl / t32:.2f}\n")


if __name__ == "__main__":
    main()
