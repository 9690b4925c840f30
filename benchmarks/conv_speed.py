"""Conv2d and LSTM forward+backward: neuralab vs PyTorch (CPU), same process, medians and ratios.

MNIST-sized inputs: a batch of 64 28x28 images through Conv2d(1, 32, 3) and
Conv2d(32, 64, 3) on 14x14 maps; an LSTM(28, 128) reading 64 images row by row (28 steps).
Targets (issue 10): conv at most 2x PyTorch's time, LSTM at most 1.5x.

Run it as the README says, with the BLAS kernel chosen by the machine:
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/conv_speed.py
"""
from __future__ import annotations

import statistics
import time

import numpy as np

import neuralab as nl
from neuralab import nn


def median_ms(fn, repeat: int = 7, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def main() -> None:
    import threadpoolctl
    import torch

    for info in threadpoolctl.threadpool_info():
        print(f"{info['internal_api']} {info.get('version')} kernel={info.get('architecture')} "
              f"threads={info['num_threads']} ({info['prefix']})")
    torch.set_num_threads(2)  # the same two cores our BLAS uses
    print(f"torch {torch.__version__}, threads={torch.get_num_threads()}")
    rng = np.random.default_rng(0)
    rows = []

    def conv_case(name, n, c, o, hw):
        ours = nn.Conv2d(c, o, 3, padding=1, rng=0)
        theirs = torch.nn.Conv2d(c, o, 3, padding=1)
        x = rng.normal(size=(n, c, hw, hw)).astype(np.float32)
        X, tx = nl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)

        def run_ours():
            ours.zero_grad()
            ours(X).sum().backward()

        def run_torch():
            theirs.zero_grad()
            theirs(tx).sum().backward()
        rows.append((name, median_ms(run_ours), median_ms(run_torch), 2.0))

    conv_case("Conv2d(1->32, 3x3) 64x1x28x28", 64, 1, 32, 28)
    conv_case("Conv2d(32->64, 3x3) 64x32x14x14", 64, 32, 64, 14)

    ours = nn.LSTM(28, 128, batch_first=True, rng=0)
    theirs = torch.nn.LSTM(28, 128, batch_first=True)
    x = rng.normal(size=(64, 28, 28)).astype(np.float32)
    X, tx = nl.tensor(x), torch.tensor(x)

    def lstm_ours():
        ours.zero_grad()
        out, (h, c) = ours(X)
        (out.sum() + h.sum()).backward()

    def lstm_torch():
        theirs.zero_grad()
        out, (h, c) = theirs(tx)
        (out.sum() + h.sum()).backward()
    rows.append(("LSTM(28->128) 64x28 steps", median_ms(lstm_ours), median_ms(lstm_torch), 1.5))

    print("(the machine is shared with other work: timings are noisy)")
    print(f"{'fwd+bwd':36s} {'neuralab ms':>12s} {'torch ms':>10s} {'ratio':>7s} {'target':>7s}")
    for name, a, b, target in rows:
        print(f"{name:36s} {a:12.2f} {b:10.2f} {a / b:7.2f} {'<=' + str(target):>7s}")


if __name__ == "__main__":
    main()
