"""Conv2d and LSTM/GRU forward+backward: neuralab vs PyTorch (CPU), same process, medians and ratios.

MNIST-sized inputs: a batch of 64 28x28 images through Conv2d(1, 32, 3) and
Conv2d(32, 64, 3) on 14x14 maps; an LSTM(28, 128) and a GRU(28, 128) reading 64 images
row by row (28 steps). Each case runs at 1 and at 2 threads (both libraries limited alike:
threadpoolctl for our BLAS, torch.set_num_threads for PyTorch), the two libraries
alternating in blocks of calls so that a burst of load elsewhere hits both.
Targets (issue 10): conv at most 2x PyTorch's time, LSTM at most 1.5x.

Run it as the README says, with the BLAS kernel chosen by the machine:
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/conv_speed.py
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


def main() -> None:
    import argparse

    # --help describes the benchmark instead of running it (it takes a minute or two)
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    import threadpoolctl
    import torch

    for info in threadpoolctl.threadpool_info():
        print(f"{info['internal_api']} {info.get('version')} kernel={info.get('architecture')} "
              f"threads={info['num_threads']} ({info['prefix']})")
    print(f"torch {torch.__version__}; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')} "
          f"OPENBLAS_L2_SIZE={os.environ.get('OPENBLAS_L2_SIZE')}; load average {os.getloadavg()[0]:.2f}")
    rng = np.random.default_rng(0)
    cases = []  # (name, ours, theirs, target)

    def conv_case(name, n, c, o, hw):
        ours = nn.Conv2d(c, o, 3, padding=1, rng=0)
        theirs = torch.nn.Conv2d(c, o, 3, padding=1)
        x = rng.normal(size=(n, c, hw, hw)).astype(np.float32)
        # inputs need a gradient, as inside a network (the first layer's would not)
        X, tx = nl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)

        def run_ours():
            ours.zero_grad()
            ours(X).sum().backward()

        def run_torch():
            theirs.zero_grad()
            theirs(tx).sum().backward()
        cases.append((name, run_ours, run_torch, 2.0))

    conv_case("Conv2d(1->32, 3x3) 64x1x28x28", 64, 1, 32, 28)
    conv_case("Conv2d(32->64, 3x3) 64x32x14x14", 64, 32, 64, 14)

    x = rng.normal(size=(64, 28, 28)).astype(np.float32)
    for name, ours_cls, theirs_cls, target in (("LSTM(28->128) 64x28 steps", nn.LSTM, torch.nn.LSTM, 1.5),
                                               ("GRU(28->128) 64x28 steps", nn.GRU, torch.nn.GRU, 1.5)):
        ours = ours_cls(28, 128, batch_first=True, rng=0)
        theirs = theirs_cls(28, 128, batch_first=True)
        X, tx = nl.tensor(x), torch.tensor(x)

        def rec_ours(ours=ours):
            ours.zero_grad()
            out, _ = ours(X)
            out.sum().backward()

        def rec_torch(theirs=theirs):
            theirs.zero_grad()
            out, _ = theirs(tx)
            out.sum().backward()
        cases.append((name, rec_ours, rec_torch, target))

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


if __name__ == "__main__":
    main()
