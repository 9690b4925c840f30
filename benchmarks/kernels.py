"""The fused optimizer kernels (numba) against their NumPy references, and what numba costs.

1. One optimizer step on the wide net's parameters (784-1024-1024-10, 1.86M float32), SGD
   momentum and Adam, kernels vs ``NEURALAB_KERNELS=numpy``, at 1 and 2 threads,
   interleaved, medians.
2. Fresh processes: ``import neuralab``, and the first ``nl.fit`` (small net, Adam) as it
   runs (a job that small keeps to NumPy: ``kernels.WORTH_LOADING``), with
   ``NEURALAB_KERNELS=numpy`` (no numba at all), and made to load numba (the threshold set to
   0) with numba's cache empty (cold: compiles) and filled (warm: loads): what any job above
   the threshold pays once.

Run (unset the OpenBLAS overrides together, for benchmarks only):
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/kernels.py [--repeats 9]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from _bench import blas_info, load_text, median  # noqa: E402

WIDE = [(1024, 784), (1024,), (1024, 1024), (1024,), (10, 1024), (10,)]

FIRST_FIT = """
import time, os
t0 = time.perf_counter()
import numpy as np, neuralab as nl
from neuralab import kernels, nn, optim
t1 = time.perf_counter()
if os.environ.get("BENCH_LOAD_NUMBA"):
    kernels.WORTH_LOADING = 0.0
rng = np.random.default_rng(0)
X = rng.standard_normal((512, 64)).astype(np.float32); y = rng.integers(0, 10, 512)
model = nn.MLP(64, hidden=(64,), out_features=10, rng=0)
t2 = time.perf_counter()
nl.fit(model, X, y, optimizer=optim.Adam(model.parameters(), lr=1e-3), epochs=1,
       batch_size=128, verbose=0, seed=0)
t3 = time.perf_counter()
print(f"{t1 - t0:.4f} {t3 - t2:.4f}")
"""


def step_bench(repeats: int, steps: int) -> None:
    from neuralab import optim
    from neuralab.nn import Parameter
    from neuralab.training.threads import BlasThreadPolicy
    rng = np.random.default_rng(0)
    cases = {}
    for opt in ("sgd", "adam"):
        for mode in ("numba", "numpy"):
            for threads in (1, 2):
                params = [Parameter(rng.standard_normal(s).astype(np.float32) * 0.01) for s in WIDE]
                for p in params:
                    p.grad = rng.standard_normal(p.data.shape).astype(np.float32) * 1e-3
                kw = dict(lr=0.01, momentum=0.9) if opt == "sgd" else dict(lr=1e-3)
                cases[(opt, mode, threads)] = optim.get(opt, params, **kw)
    times = {k: [] for k in cases}
    for r in range(repeats + 1):
        for (opt, mode, threads), o in cases.items():
            os.environ["NEURALAB_KERNELS"] = mode
            with BlasThreadPolicy(flops=0, threads=threads):
                t = time.perf_counter()
                for _ in range(steps):
                    o.step()
                dt = (time.perf_counter() - t) / steps
            if r:
                times[(opt, mode, threads)].append(dt)
    os.environ.pop("NEURALAB_KERNELS", None)
    print("\noptimizer step alone, wide net (1.86M float32), ms per step (median of "
          f"{repeats} x {steps} steps):")
    print(f"{'optimizer':10s} {'threads':>7s} {'numba':>8s} {'numpy':>8s} {'speed-up':>8s}")
    for opt in ("sgd", "adam"):
        for threads in (1, 2):
            a, b = median(times[(opt, "numba", threads)]), median(times[(opt, "numpy", threads)])
            print(f"{opt:10s} {threads:7d} {a * 1e3:8.2f} {b * 1e3:8.2f} {b / a:7.1f}x")


def fresh(env: dict) -> tuple[float, float]:
    out = subprocess.run([sys.executable, "-c", FIRST_FIT], env=env, capture_output=True,
                         text=True, check=True)
    a, b = out.stdout.split()
    return float(a), float(b)


def process_bench(repeats: int) -> None:
    base = {k: v for k, v in os.environ.items() if k != "NEURALAB_KERNELS"}
    got = {"import": [], "numpy": [], "as_is": [], "cold": [], "warm": []}
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as cache:
            env = {**base, "NUMBA_CACHE_DIR": cache}
            imp, got_np = fresh({**env, "NEURALAB_KERNELS": "numpy"})
            got["import"].append(imp)
            got["numpy"].append(got_np)
            got["as_is"].append(fresh(env)[1])
            load = {**env, "BENCH_LOAD_NUMBA": "1"}
            got["cold"].append(fresh(load)[1])
            got["warm"].append(fresh(load)[1])
    m = {k: median(v) for k, v in got.items()}
    print(f"\nfresh processes (median of {repeats}): import neuralab {m['import'] * 1e3:.0f} ms; "
          f"first fit (64-64-10, Adam, 1 epoch): NEURALAB_KERNELS=numpy {m['numpy']:.2f} s, "
          f"as it runs (too small to load numba) {m['as_is']:.2f} s "
          f"(+{m['as_is'] - m['numpy']:.2f} s); made to load numba: warm cache "
          f"{m['warm']:.2f} s (+{m['warm'] - m['numpy']:.2f} s), cold cache {m['cold']:.2f} s "
          f"(+{m['cold'] - m['numpy']:.2f} s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--process-repeats", type=int, default=3)
    args = ap.parse_args()
    print(blas_info())
    import numba
    print(f"numba {numba.__version__}, {load_text()}")
    step_bench(args.repeats, args.steps)
    print("threading layer:", numba.threading_layer())
    process_bench(args.process_repeats)
    print(load_text())


if __name__ == "__main__":
    main()
