"""Where one epoch of ``nl.fit`` goes: GEMMs, fused kernels, the optimizer step, the rest.

Every ``numpy.matmul`` call (all of a captured MLP step's products), every call of a fused
kernel (``neuralab.kernels``' numba functions, or their NumPy references with
``NEURALAB_KERNELS=numpy``) and every ``optimizer.step()`` is timed in place by a thin
wrapper during whole epochs of the benchmark configurations (``_bench.CONFIGS``); what is
left of the epoch is Python and the remaining NumPy passes (batch gathering, the softmax,
the loss). The wrappers add about a microsecond per call. Medians over ``--repeats`` epochs
after a warm-up one.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/time_split.py
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE NEURALAB_KERNELS=numpy python benchmarks/time_split.py
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.pop("OPENBLAS_CORETYPE", None)  # the benchmark's own BLAS settings, both together
os.environ.pop("OPENBLAS_L2_SIZE", None)
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from _bench import CONFIGS, NLFit, blas_info, load_data, load_text  # noqa: E402

SPENT = {"gemm": 0.0, "kernels": 0.0, "optimizer": 0.0}


def _timed(fn, key):
    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            SPENT[key] += time.perf_counter() - t
    wrapper.__wrapped_fn__ = fn
    return wrapper


def instrument(opt) -> None:
    """Wrap numpy.matmul, every kernel of the active kernels module, and ``opt.step``."""
    from neuralab import kernels
    np.matmul = _timed(np.matmul, "gemm")
    module = kernels.active()
    for name in kernels.NAMES:
        if name in ("sgd", "adam", "rmsprop", "adagrad"):
            continue  # inside opt.step, counted there
        setattr(module, name, _timed(getattr(module, name), "kernels"))
    step = opt.step
    opt.step = _timed(step, "optimizer")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default="mnist,wide,deep")
    ap.add_argument("--optimizers", default="sgd,adam")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    from neuralab import kernels
    print(f"BLAS: {blas_info()}\nkernels: {kernels.active().__name__}\n{load_text()}")
    print(f"\n{'config':7s} {'opt':5s} {'epoch ms':>9s} {'GEMM':>7s} {'kernels':>8s} "
          f"{'optimizer':>9s} {'rest':>7s}   (ms, medians; share of the epoch)")
    original_matmul = np.matmul
    for name in args.configs.split(","):
        cfg = CONFIGS[name]
        X, y = load_data(cfg)
        for opt in args.optimizers.split(","):
            np.matmul = original_matmul
            bench = NLFit(cfg, opt, X, y)
            bench.epoch()  # warm-up: buffers, numba's cache
            instrument(bench.opt)
            rows = []
            for _ in range(args.repeats):
                for k in SPENT:
                    SPENT[k] = 0.0
                total = bench.epoch()
                rows.append((total, SPENT["gemm"], SPENT["kernels"], SPENT["optimizer"],
                             total - sum(SPENT.values())))
            med = [statistics.median(col) * 1e3 for col in zip(*rows)]
            share = " ".join(f"{v / med[0]:5.0%}" for v in med[1:])
            print(f"{name:7s} {opt:5s} {med[0]:9.1f} {med[1]:7.1f} {med[2]:8.1f} {med[3]:9.1f} "
                  f"{med[4]:7.1f}   {share}", flush=True)
            from neuralab import kernels as k_mod  # undo the kernel wrappers for the next case
            for kname in k_mod.NAMES:
                fn = getattr(k_mod.active(), kname)
                inner = getattr(fn, "__wrapped_fn__", None)
                if inner is not None:
                    setattr(k_mod.active(), kname, inner)
    print(load_text())


if __name__ == "__main__":
    main()
