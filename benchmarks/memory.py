"""Memory while training: neuralab against scikit-learn, and data larger than memory.

1. Peak RSS of a process training the mnist configuration 784-(256,256)-10 on 20,000 rows
   (2 epochs, Adam, batch 128) with nl.fit, nl.MLPClassifier and sklearn's MLPClassifier on
   float32 (target: neuralab no higher than sklearn). Each runs alone in a child process;
   the figure includes the interpreter, the imports and the data.
2. The same training from ``np.load(..., mmap_mode="r")`` and from a function yielding
   (X, y) batches.
3. A 4 GB float32 memory-mapped file (MNIST rows repeated with noise, written to /tmp and
   deleted afterwards) trained for one epoch: peak RSS must stay under 600 MB.

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/memory.py [--quick] [--gb 4]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from _bench import CONFIGS, blas_info, child_peak_rss, load_data, load_text, peak_rss_mb  # noqa: E402

HERE = str(Path(__file__).resolve())


def _model():
    from _bench import _nl_model
    return _nl_model(CONFIGS["mnist"], 0)


def child(kind: str, path: str | None) -> None:
    import neuralab as nl
    cfg = CONFIGS["mnist"]
    t = time.perf_counter()
    if kind == "memmap-big":
        X = np.load(path, mmap_mode="r")
        y = np.load(path + ".y.npy")
        nl.fit(_model(), X, y, optimizer="adam", epochs=1, batch_size=cfg.batch, verbose=0, seed=0)
        print(f"ROWS {len(X)} SECONDS {time.perf_counter() - t:.1f}")
    elif kind == "memmap":
        X = np.load(path, mmap_mode="r")
        y = np.load(path + ".y.npy")
        nl.fit(_model(), X, y, optimizer="adam", epochs=2, batch_size=cfg.batch, verbose=0, seed=0)
    elif kind == "batches":
        X = np.load(path, mmap_mode="r")
        y = np.load(path + ".y.npy")

        def batches():  # e.g. chunks read from files or a database, one at a time
            for s in range(0, len(X), cfg.batch):
                yield np.asarray(X[s:s + cfg.batch]), y[s:s + cfg.batch]
        nl.fit(_model(), batches, epochs=2, verbose=0, seed=0)
    else:
        from train_speed import COMPETITORS
        X, y = load_data(cfg)
        if kind.startswith("fit"):  # as a user runs it, or with numba's kernels loaded first
            from _bench import NLFit
            c = NLFit(cfg, "adam", X, y, load_kernels=kind == "fit+numba")
        else:
            c = COMPETITORS[kind](cfg, "adam", X, y)
        for _ in range(2):
            c.epoch()
    print(f"PEAK_RSS_MB {peak_rss_mb():.1f}")


def make_big(path: str, gb: float) -> int:
    """Write a float32 .npy of about ``gb`` GB (MNIST rows plus noise) and its labels; rows."""
    with np.load(Path(os.environ.get("NEURALAB_DATA", "data")) / "mnist.npz") as d:
        base = d["x_train"].reshape(60000, -1)
        labels = d["y_train"]
    rows = int(gb * 1e9 // (784 * 4))
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, 784))
    rng = np.random.default_rng(0)
    y = np.empty(rows, np.int64)
    chunk = 20000
    for s in range(0, rows, chunk):
        n = min(chunk, rows - s)
        idx = rng.integers(0, 60000, n)
        block = base[idx].astype(np.float32) / 255.0
        block += rng.normal(0, 0.02, block.shape).astype(np.float32)
        out[s:s + n] = block
        y[s:s + n] = labels[idx]
        out.flush()
        # drop the written pages from this process's mapping: the parent must not hold 4 GB
        out._mmap.madvise(__import__("mmap").MADV_DONTNEED)
    del out
    np.save(path + ".y.npy", y)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="skip the big memmap")
    ap.add_argument("--gb", type=float, default=4.0)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child[0], None if args.child[1] == "-" else args.child[1])
    print("BLAS:", blas_info())
    print("before:", load_text())
    cfg = CONFIGS["mnist"]
    rss = {}
    for who in ("fit", "fit+numba", "est", "sklearn"):
        rss[who] = child_peak_rss([HERE, "--child", who, "-"])
    tmp = tempfile.mkdtemp(prefix="nl_mem_")
    try:
        X, y = load_data(cfg)
        path = os.path.join(tmp, "mnist20k.npy")
        np.save(path, X)
        np.save(path + ".y.npy", y)
        rss["memmap"] = child_peak_rss([HERE, "--child", "memmap", path])
        rss["batches"] = child_peak_rss([HERE, "--child", "batches", path])
        print("\nPeak RSS (MB), mnist 784-(256,256)-10, 20,000 rows, 2 epochs of Adam:")
        print("| nl.fit | nl.fit, numba loaded | nl.MLPClassifier | sklearn float32 | nl.fit from memmap "
              "| nl.fit from batches |")
        print("|---|---|---|---|---|---|")
        print(f"| {rss['fit']:.0f} | {rss['fit+numba']:.0f} | {rss['est']:.0f} | {rss['sklearn']:.0f} "
              f"| {rss['memmap']:.0f} | {rss['batches']:.0f} |")
        print(f"nl.fit / sklearn = {rss['fit'] / rss['sklearn']:.2f} (target <= 1)")
        if not args.quick:
            big = os.path.join(tmp, "big.npy")
            t = time.perf_counter()
            rows = make_big(big, args.gb)
            size = os.path.getsize(big) / 1e9
            print(f"\nwrote {big}: {rows:,} rows, {size:.2f} GB in {time.perf_counter() - t:.0f} s")
            import subprocess
            out = subprocess.run([sys.executable, HERE, "--child", "memmap-big", big],
                                 capture_output=True, text=True)
            lines = dict(line.split(" ", 1) for line in out.stdout.splitlines()
                         if " " in line and not line.startswith("ROWS "))
            for line in out.stdout.splitlines():  # "ROWS n SECONDS s"
                if line.startswith("ROWS "):
                    parts = line.split()
                    lines["ROWS"], lines["SECONDS"] = parts[1], parts[3]
            if "PEAK_RSS_MB" not in lines:
                print(out.stderr[-2000:])
            else:
                peak = float(lines["PEAK_RSS_MB"])
                print(f"one epoch over the {size:.1f} GB memmap ({int(lines.get('ROWS', 0)):,} rows in "
                      f"{lines.get('SECONDS')} s): "
                      f"peak RSS {peak:.0f} MB "
                      f"(target < 600 MB): {'holds' if peak < 600 else 'FAILS'}")
    finally:
        for f in Path(tmp).glob("*"):
            f.unlink()
        os.rmdir(tmp)
    print("after:", load_text())


if __name__ == "__main__":
    main()
