"""How neuralab's epoch time grows with the data and the width, next to the GEMM floor.

Rows: MNIST 784-(256,256)-10 on 10k, 20k, 40k and 60k rows; then 784-(w,w)-10 on 10k rows
for w = 256, 512, 1024, 2048 (batch 128, Adam). For each: per-epoch medians of the floor (the
matmuls training needs, best of 1 and 2 BLAS threads) and of ``nl.fit``, and their ratio,
which should stay flat if neuralab's cost tracks the floor's.

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/scaling.py [--quick]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench import (Config, Floor, NLFit, blas_info, fmt_ms, interleave, load_data,  # noqa: E402
                    load_text, median)


def measure(cfg: Config, repeats: int) -> tuple[float, float]:
    X, y = load_data(cfg)
    comps = {"floor1": Floor(cfg, "adam", X, y, threads=1), "floor2": Floor(cfg, "adam", X, y, threads=2),
             "fit": NLFit(cfg, "adam", X, y)}
    t = interleave(comps, repeats)
    return min(median(t["floor1"]), median(t["floor2"])), median(t["fit"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer sizes, 2 repeats")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    repeats = 2 if args.quick else args.repeats
    print("BLAS:", blas_info())
    print("before:", load_text(), "(a shared machine: timings are noisy)")
    rows = [10000, 20000] if args.quick else [10000, 20000, 40000, 60000]
    widths = [256, 512] if args.quick else [256, 512, 1024, 2048]
    print("\n| samples | floor ms | nl.fit ms | fit/floor | floor growth | fit growth |")
    print("|---|---|---|---|---|---|")
    first = None
    for n in rows:
        f, t = measure(Config("mnist", 784, (256, 256), 10, n, 128), repeats)
        first = first or (f, t)
        print(f"| {n:,} | {fmt_ms(f)} | {fmt_ms(t)} | {t / f:.2f} | {f / first[0]:.2f}x | {t / first[1]:.2f}x |",
              flush=True)
    print("\n| width | floor ms | nl.fit ms | fit/floor | floor growth | fit growth |")
    print("|---|---|---|---|---|---|")
    first = None
    for w in widths:
        f, t = measure(Config("mnist", 784, (w, w), 10, 10000, 128), repeats)
        first = first or (f, t)
        print(f"| {w} | {fmt_ms(f)} | {fmt_ms(t)} | {t / f:.2f} | {f / first[0]:.2f}x | {t / first[1]:.2f}x |",
              flush=True)
    print("after:", load_text())


if __name__ == "__main__":
    main()
