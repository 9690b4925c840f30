"""Conv2d and LSTM/GRU forward+backward: neuralab vs PyTorch (CPU), same process, medians and ratios.

MNIST-sized inputs: a batch of 64 28x28 images through Conv2d(1, 32, 3) and
Conv2d(32, 64, 3) on 14x14 maps; an LSTM(28, 128) and a GRU(28, 128) reading 64 images
row by row (28 steps). Each case runs at 1 and at 2 threads (both libraries limited alike:
threadpoolctl for our BLAS, torch.set_num_threads for PyTorch), the two libraries
alternating in blocks of calls so that a burst of load elsewhere hits both.
Targets: conv at most 2x PyTorch's time, LSTM at most 1.5x.

In one process each library's idle threads disturb the other's at 2 threads (PyTorch's
2-thread LSTM took 5 ms alone and 9-10 ms next to neuralab), so ``--separate`` also times
each library alone in a child process of its own and prints those ratios as well.

Run it as the README says, with the BLAS kernel chosen by the machine:
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/conv_speed.py [--separate]
"""
from __future__ import annotations

import os
import statistics
import time

import numpy as np

import neuralab as nl
from neuralab import nn


def interleaved_ms(fa, fb, rounds: int = 4, block: int = 6) -> tuple[float, float]:
    """Median milliseconds of fa and of fb, run in alternating blocks of calls.

    Blocks, not single calls: with two threads on two cores, each library's idle worker
    threads (OpenBLAS's, PyTorch's OpenMP) keep spinning or sleeping right after a call and
    slowed the other's next call 2-10x when the two alternated call by call. The first call of
    each block (the threads waking up) is left out of the median.
    """
    ta, tb = [], []
    for _ in range(rounds):
        for f, times in ((fa, ta), (fb, tb)):
            f()
            for _ in range(block - 1):
                t0 = time.perf_counter()
                f()
                times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(ta), 1e3 * statistics.median(tb)


def build_cases(side: str) -> list:
    """``[(name, run, target), ...]``: one forward+backward per call of ``run``, for ``side``
    "neuralab" or "torch" (the same inputs and sizes for both)."""
    rng = np.random.default_rng(0)
    cases = []
    if side == "torch":
        import torch
    for name, n, c, o, hw in (("Conv2d(1->32, 3x3) 64x1x28x28", 64, 1, 32, 28),
                              ("Conv2d(32->64, 3x3) 64x32x14x14", 64, 32, 64, 14)):
        x = rng.normal(size=(n, c, hw, hw)).astype(np.float32)
        # inputs need a gradient, as inside a network (the first layer's would not)
        if side == "torch":
            layer, X = torch.nn.Conv2d(c, o, 3, padding=1), torch.tensor(x, requires_grad=True)
        else:
            layer, X = nn.Conv2d(c, o, 3, padding=1, rng=0), nl.tensor(x, requires_grad=True)

        def run_conv(layer=layer, X=X):
            layer.zero_grad()
            layer(X).sum().backward()
        cases.append((name, run_conv, 2.0))
    x = rng.normal(size=(64, 28, 28)).astype(np.float32)
    for name, kind, target in (("LSTM(28->128) 64x28 steps", "LSTM", 1.5),
                               ("GRU(28->128) 64x28 steps", "GRU", 1.5)):
        if side == "torch":
            layer, X = getattr(torch.nn, kind)(28, 128, batch_first=True), torch.tensor(x)
        else:
            layer, X = getattr(nn, kind)(28, 128, batch_first=True, rng=0), nl.tensor(x)

        def run_rec(layer=layer, X=X):
            layer.zero_grad()
            out, _ = layer(X)
            out.sum().backward()
        cases.append((name, run_rec, target))
    return cases


def set_threads(side: str, threads: int) -> None:
    if side == "torch":
        import torch
        torch.set_num_threads(threads)


def alone(side: str, rounds: int = 5, block: int = 8) -> None:
    """Time one library's cases in this process only (no other library's threads around)."""
    import threadpoolctl
    cases = build_cases(side)
    for threads in (1, 2):
        set_threads(side, threads)
        with threadpoolctl.threadpool_limits(limits=threads, user_api="blas"):
            for name, run, _ in cases:
                times = []
                for _ in range(rounds):
                    run()
                    for _ in range(block - 1):
                        t0 = time.perf_counter()
                        run()
                        times.append(time.perf_counter() - t0)
                print(f"CASE|{name}|{threads}|{1e3 * statistics.median(times):.3f}")


def separate() -> None:
    """Each library alone in a child process of its own, then the ratios."""
    import subprocess
    import sys
    results: dict = {}
    for side in ("neuralab", "torch", "neuralab", "torch"):  # twice each, alternating
        out = subprocess.run([sys.executable, __file__, "--alone", side], capture_output=True,
                             text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("CASE|"):
                _, name, threads, ms = line.split("|")
                results.setdefault((name, int(threads)), {}).setdefault(side, []).append(float(ms))
    print(f"each library alone in its own process, two runs each; load average now {os.getloadavg()[0]:.2f}")
    print(f"{'fwd+bwd':34s} {'threads':>7s} {'neuralab ms':>12s} {'torch ms':>9s} {'ratio':>6s}")
    for (name, threads), r in results.items():
        a, b = statistics.median(r["neuralab"]), statistics.median(r["torch"])
        print(f"{name:34s} {threads:7d} {a:12.2f} {b:9.2f} {a / b:6.2f}")


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--separate", action="store_true",
                    help="also time each library alone in a process of its own (its threads "
                         "undisturbed by the other's), and print those ratios")
    ap.add_argument("--alone", choices=("neuralab", "torch"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.alone:
        alone(args.alone)
        return
    import threadpoolctl
    import torch

    for info in threadpoolctl.threadpool_info():
        print(f"{info['internal_api']} {info.get('version')} kernel={info.get('architecture')} "
              f"threads={info['num_threads']} ({info['prefix']})")
    print(f"torch {torch.__version__}; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')} "
          f"OPENBLAS_L2_SIZE={os.environ.get('OPENBLAS_L2_SIZE')}; load average {os.getloadavg()[0]:.2f}")
    cases = [(name, ours, theirs, target) for (name, ours, target), (_, theirs, _)
             in zip(build_cases("neuralab"), build_cases("torch"))]

    rows = []
    default_threads = torch.get_num_threads()
    for threads in (1, 2):
        torch.set_num_threads(threads)
        with threadpoolctl.threadpool_limits(limits=threads, user_api="blas"):
            for name, run_ours, run_torch, target in cases:
                a, b = interleaved_ms(run_ours, run_torch)
                rows.append((name, threads, a, b, target))
    torch.set_num_threads(default_threads)

    print(f"(the machine is shared with other work: timings are noisy; load average now "
          f"{os.getloadavg()[0]:.2f})")
    print(f"{'fwd+bwd':34s} {'threads':>7s} {'neuralab ms':>12s} {'torch ms':>9s} {'ratio':>6s} {'target':>7s}")
    for name, threads, a, b, target in rows:
        print(f"{name:34s} {threads:7d} {a:12.2f} {b:9.2f} {a / b:6.2f} {'<=' + str(target):>7s}")
    if args.separate:
        print()
        separate()


if __name__ == "__main__":
    main()
