"""Fit time of the tabular presets on a 10,000-row, 20-column table (and pytabkit's RealMLP-TD).

The table is synthetic (16 numeric columns with 5% missing values, 4 categorical ones of 3 to
40 levels, a binary target from a nonlinear rule), so the run needs no data files. Each model
is fitted ``--repeats`` times in this process, interleaved, and the median is printed with
its ratio to neuralab's default; the BLAS kernel and load average are printed first.

    python benchmarks/tabular_speed.py                 # fast and default, 3 repeats
    python benchmarks/tabular_speed.py --models fast,default,realmlp --repeats 1
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

# The benchmark's own BLAS settings: no machine-specific OpenBLAS overrides, both together.
os.environ.pop("OPENBLAS_CORETYPE", None)
os.environ.pop("OPENBLAS_L2_SIZE", None)

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import blas_info, load_text  # noqa: E402


def make_table(rows: int = 10_000, seed: int = 0):
    """A 20-column table (16 numeric with NaNs, 4 categorical) and a binary target."""
    import pandas as pd
    rng = np.random.default_rng(seed)
    num = rng.standard_normal((rows, 16))
    levels = [3, 8, 15, 40]
    cats = [rng.integers(0, k, rows) for k in levels]
    logit = np.sin(2 * num[:, 0]) + num[:, 1] * num[:, 2] + 0.5 * num[:, 3] + (cats[3] % 5 - 2) * 0.4
    y = (logit + 0.5 * rng.standard_normal(rows) > 0).astype(int)
    num[rng.random(num.shape) < 0.05] = np.nan
    frame = pd.DataFrame(num, columns=[f"x{i}" for i in range(16)])
    for i, c in enumerate(cats):
        frame[f"c{i}"] = pd.Categorical([f"level{v}" for v in c])
    return frame, y


def fit_seconds(model: str, X, y) -> float:
    t = time.perf_counter()
    if model == "realmlp":
        from pytabkit import RealMLP_TD_Classifier
        num = X.select_dtypes("number")  # pytabkit refuses NaN in numbers: training medians
        X = X.assign(**num.fillna(num.median()))
        RealMLP_TD_Classifier(random_state=0, device="cpu").fit(X, y)
    else:
        import neuralab as nl
        nl.TabularClassifier(preset=model, random_state=0).fit(X, y)
    return time.perf_counter() - t


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="fast,default", help="from fast, default, best, realmlp")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rows", type=int, default=10_000)
    args = ap.parse_args(argv)
    models = args.models.split(",")
    X, y = make_table(args.rows)
    Xtr, ytr = X.iloc[: int(0.8 * len(X))], y[: int(0.8 * len(X))]  # the benchmark's 80% part
    print(f"BLAS: {blas_info()}\n{load_text()}\ntable: {len(Xtr)} training rows x {X.shape[1]} columns")
    times: dict[str, list[float]] = {m: [] for m in models}
    for r in range(args.repeats):
        for m in models:
            times[m].append(fit_seconds(m, Xtr, ytr))
            print(f"  repeat {r}: {m:8s} {times[m][-1]:7.1f} s  ({load_text()})", flush=True)
    base = statistics.median(times["default"]) if "default" in times else None
    print("\nmodel     median fit s" + ("   / default" if base else ""))
    for m in models:
        med = statistics.median(times[m])
        print(f"{m:8s}  {med:11.1f}" + (f"   {med / base:8.2f}" if base else ""))


if __name__ == "__main__":
    main()
