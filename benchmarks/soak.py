"""Soak test: fit and predict over and over; memory must stay flat.

Trains a fresh MLPClassifier on digits, predicts, saves and loads it, N times (default 100,
or for --minutes), and prints the process's resident memory (RSS, from /proc) every 10 fits,
plus the growth between fit 10 (warm: imports, BLAS buffers) and the last one. Then hammers
one fitted estimator's predict from several threads at once and checks every answer.

Run (the machine is shared: times are noisy, memory is not):
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/soak.py --fits 100
"""
from __future__ import annotations

import argparse
import gc
import os
import tempfile
import threading
import time
import warnings

import numpy as np


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fits", type=int, default=100)
    ap.add_argument("--minutes", type=float, default=0.0, help="keep going at least this long")
    ap.add_argument("--threads", type=int, default=8)
    args = ap.parse_args()

    from sklearn.datasets import load_digits
    from threadpoolctl import threadpool_info

    import neuralab as nl
    print("BLAS:", ", ".join(f"{i['internal_api']} {i.get('architecture')} "
                              f"{i['num_threads']} threads" for i in threadpool_info()))
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    path = os.path.join(tempfile.mkdtemp(), "soak.safetensors")
    samples, times = [], []
    start = time.perf_counter()
    i = 0
    while i < args.fits or time.perf_counter() - start < args.minutes * 60:
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf = nl.MLPClassifier(hidden_layer_sizes=(64, 64), max_iter=15, dropout=0.1,
                                   random_state=i).fit(X, y)
        pred = clf.predict(X)
        nl.save(clf, path)
        again = nl.load(path)
        assert np.array_equal(again.predict(X), pred)
        del clf, again, pred
        gc.collect()
        times.append(time.perf_counter() - t0)
        i += 1
        samples.append(rss_mb())
        if i % 10 == 0:
            print(f"fit {i:4d}: RSS {samples[-1]:7.1f} MB   median fit+predict+save+load "
                  f"{np.median(times[-10:]):.2f} s", flush=True)
    base = samples[min(9, len(samples) - 1)]
    print(f"{i} fits in {(time.perf_counter() - start) / 60:.1f} min; RSS after fit 10: "
          f"{base:.1f} MB, after fit {i}: {samples[-1]:.1f} MB, growth {samples[-1] - base:+.1f} MB "
          f"({(samples[-1] - base) / max(1, i - 10) * 1024:+.1f} KB per fit)")

    # Concurrent predict on one fitted estimator.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = nl.MLPClassifier(hidden_layer_sizes=(64,), max_iter=20, random_state=0).fit(X, y)
    expected, labels = clf.predict_proba(X), clf.predict(X)
    errors, diffs = [], []

    def worker(k: int) -> None:
        # Batches of other sizes may round differently in the last bit (BLAS picks kernels
        # by shape): compare probabilities to 1e-5 and labels exactly.
        rng = np.random.default_rng(k)
        for _ in range(50):
            idx = rng.choice(len(X), size=int(rng.integers(1, 300)), replace=False)
            p = clf.predict_proba(X[idx])
            diffs.append(float(np.abs(p - expected[idx]).max()))
            if not (np.allclose(p, expected[idx], rtol=1e-5, atol=1e-7)
                    and np.array_equal(clf.predict(X[idx]), labels[idx])):
                errors.append(k)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"{args.threads} threads x 50 predict calls: {len(errors)} wrong answers, largest "
          f"probability difference {max(diffs):.2g} ({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
