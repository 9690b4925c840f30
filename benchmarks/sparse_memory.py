"""Training on a sparse TF-IDF-like matrix: peak memory and time, neuralab against scikit-learn.

A 20,000 x 50,000 CSR matrix with about 0.1% of its entries set (50 words a row, 1.0 million
values, 12 MB as CSR; 4 GB as a dense float32 array) and three classes; MLPClassifier 50,000-(100)-3, Adam, batch
200, 3 epochs. Each estimator runs alone in a child process (peak RSS includes the
interpreter, the imports and the data); the parent also reports the process's peak with
``predict_proba`` on all rows. The estimators must stay far below the dense size.

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/sparse_memory.py
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from _bench import blas_info, load_text, peak_rss_mb  # noqa: E402

HERE = str(Path(__file__).resolve())
ROWS, COLS, PER_ROW = 20_000, 50_000, 50  # 50 of 50,000 columns: 0.1%


def make_data() -> tuple:
    """A TF-IDF-like CSR matrix (rows of unit length) and labels that depend on its columns."""
    from scipy import sparse
    rng = np.random.default_rng(0)
    rows = np.repeat(np.arange(ROWS), PER_ROW)
    cols = rng.integers(0, COLS, ROWS * PER_ROW)
    X = sparse.csr_matrix((rng.random(ROWS * PER_ROW), (rows, cols)), shape=(ROWS, COLS))
    X.sum_duplicates()
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1))).ravel()
    X = sparse.diags(1 / np.maximum(norms, 1e-12)) @ X
    score = X @ rng.standard_normal(COLS)
    y = np.digitize(score, np.quantile(score, [1 / 3, 2 / 3]))
    return X.tocsr(), y


def run_child(who: str) -> dict:
    """Run this script as ``--child who``; its report lines as a dict of floats."""
    import subprocess
    out = subprocess.run([sys.executable, HERE, "--child", who], capture_output=True, text=True,
                         check=False)
    words = " ".join(line for line in out.stdout.splitlines() if line.isupper() or " " in line).split()
    report = {k: float(v) for k, v in zip(words[::2], words[1::2]) if k.isupper()}
    if "PEAK_RSS_MB" not in report:
        sys.stderr.write(out.stderr[-2000:])
    return report


def child(who: str) -> None:
    from sklearn.exceptions import ConvergenceWarning
    warnings.simplefilter("ignore", ConvergenceWarning)
    X, y = make_data()
    if who == "imports":
        import neuralab  # noqa: F401
        import sklearn.neural_network  # noqa: F401
        print(f"PEAK_RSS_MB {peak_rss_mb():.1f}")
        return
    if who == "neuralab":
        import neuralab as nl
        est = nl.MLPClassifier(hidden_layer_sizes=(100,), max_iter=3, random_state=0)
    else:
        from sklearn.neural_network import MLPClassifier
        est = MLPClassifier(hidden_layer_sizes=(100,), max_iter=3, random_state=0)
    t = time.perf_counter()
    est.fit(X, y)
    fit_s = time.perf_counter() - t
    acc = est.score(X, y)
    print(f"SECONDS {fit_s:.1f} TRAIN_ACCURACY {acc:.3f}")
    print(f"PEAK_RSS_MB {peak_rss_mb():.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child)
    print("BLAS:", blas_info())
    print("before:", load_text())
    X, _ = make_data()
    dense_gb = X.shape[0] * X.shape[1] * 4 / 1e9
    csr_mb = (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes) / 1e6
    print(f"X: {X.shape[0]:,} x {X.shape[1]:,}, {X.nnz:,} values ({X.nnz / np.prod(X.shape):.2%}); "
          f"CSR {csr_mb:.0f} MB, dense float32 {dense_gb:.1f} GB")
    base = run_child("imports")["PEAK_RSS_MB"]
    print(f"\nA child process each: make X, fit 3 epochs of Adam, score on all rows (the "
          f"imports alone: {base:.0f} MB peak RSS)")
    print("| | peak RSS (MB) | fit (s) | train accuracy |\n|---|---|---|---|")
    for who in ("neuralab", "sklearn"):
        r = run_child(who)
        print(f"| {who} | {r.get('PEAK_RSS_MB', float('nan')):.0f} | {r.get('SECONDS', float('nan')):.1f} "
              f"| {r.get('TRAIN_ACCURACY', float('nan')):.3f} |")
    print("after:", load_text())


if __name__ == "__main__":
    main()
