"""Which layer sizes gain from a second BLAS thread: one training step at 1 and at 2 threads.

The step is fit's (the captured MLP forward/backward plus the optimizer) on a
784-(h, h)-10 net, batch 128, for widths h from 32 to 1024, both thread counts interleaved
in one process (each sees the same load); medians of ``--repeats`` rounds. The size that
``training.threads.choose_threads`` reads is the largest matmul's multiply-adds,
batch * (largest weight matrix), printed as "MFLOP".

Usage:
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/blas_threads.py [--repeats 7]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=7, help="interleaved rounds (medians)")
    ap.add_argument("--steps", type=int, default=10, help="timed steps per round")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--widths", default="32,64,96,128,192,256,384,512,768,1024")
    ap.add_argument("--optimizer", default="adam", choices=["adam", "sgd"])
    args = ap.parse_args()

    from threadpoolctl import threadpool_info

    from neuralab import nn, optim
    from neuralab.training.captured import CapturedMLP
    from neuralab.training.threads import BlasThreadPolicy, choose_threads

    print("load average before:", os.getloadavg())
    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.batch, 784)).astype(np.float32)
    y = rng.integers(0, 10, args.batch)
    print(f"{'h':>5} {'MFLOP':>7} {'1 thread ms':>12} {'2 threads ms':>13} {'1/2':>6}  rule")
    for h in (int(w) for w in args.widths.split(",")):
        model = nn.MLP(784, hidden=(h, h), out_features=10, rng=0)
        opt = (optim.Adam(model.parameters(), lr=1e-3) if args.optimizer == "adam"
               else optim.SGD(model.parameters(), lr=0.01, momentum=0.9))
        cap = CapturedMLP.from_model(model)
        times: dict[int, list] = {1: [], 2: []}
        for _ in range(args.repeats):
            for n in (1, 2):
                with BlasThreadPolicy(threads=n, flops=0):
                    cap.forward_backward(X, y)  # warm-up on this count
                    opt.step()
                    t = time.perf_counter()
                    for _ in range(args.steps):
                        cap.forward_backward(X, y)
                        opt.step()
                    times[n].append((time.perf_counter() - t) / args.steps)
        one, two = (statistics.median(times[n]) * 1e3 for n in (1, 2))
        flops = args.batch * max(784 * h, h * h)
        print(f"{h:>5} {flops / 1e6:>7.1f} {one:>12.3f} {two:>13.3f} {one / two:>6.2f}  "
              f"{choose_threads(flops, 2)}")
    print("load average after:", os.getloadavg())
    for lib in threadpool_info():
        if lib.get("user_api") == "blas":
            print(f"BLAS: {lib.get('internal_api')} {lib.get('version')} kernel "
                  f"{lib.get('architecture')} ({os.path.basename(os.path.dirname(lib['filepath']))})")


if __name__ == "__main__":
    main()
