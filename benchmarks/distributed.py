"""Data-parallel training over MPI on this machine: 1 rank x 2 BLAS threads vs 2 ranks x 1.

Configurations (Adam, the same global batch either way, 2 ranks taking half each):
mnist 784-256-256-10, batch 128, 20,000 samples; wide 784-1024-1024-10, batch 256, 10,000.
MNIST is read from NEURALAB_DATA (or ./data); without it, synthetic data of that shape.

For each: the median epoch time, and for 2 ranks per step: seconds in the gradient Allreduce
(which includes waiting for the slower rank), in copying gradients to and from the flat
buffer, in the stop-flag Allreduce, the buffer's bytes, and the Allreduce of that buffer
alone (no training around it: the transfer itself). Then a projection to 4, 16 and 64 ranks
from these numbers (see docs/distributed.md for the model).

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/distributed.py [--epochs 4]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _bench import CONFIGS, MNIST, blas_info, load_data, load_text, median  # noqa: E402

# (name, latency per message s, bandwidth bytes/s): assumed links for the projection
LINKS = [("10 Gbit/s", 25e-6, 10e9 / 8), ("100 Gbit/s", 3e-6, 100e9 / 8)]
RANKS = [4, 16, 64]


def _data(cfg):
    if MNIST.exists():
        return load_data(cfg), "MNIST"
    rng = np.random.default_rng(0)
    X = rng.random((cfg.samples, cfg.n_in), dtype=np.float32)
    return (X, rng.integers(0, cfg.n_out, cfg.samples)), "synthetic"


def worker(name: str, epochs: int, use_mpi: bool) -> None:
    import neuralab as nl
    from neuralab import nn
    from neuralab.callbacks import Callback

    cfg = CONFIGS[name]
    (X, y), source = _data(cfg)
    comm = dp = None
    rank, size = 0, 1
    if use_mpi:
        from mpi4py import MPI

        from neuralab.distributed import DataParallel, shard_rows
        comm = MPI.COMM_WORLD
        rank, size = comm.Get_rank(), comm.Get_size()
        rows = shard_rows(len(X), comm)
        X, y = X[rows.start:rows.stop], y[rows.start:rows.stop]
        dp = DataParallel(comm, check_every=100)

    class Clock(Callback):
        def __init__(self):
            self.times = []

        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self.t)

    clock = Clock()
    model = nn.MLP(cfg.n_in, hidden=cfg.hidden, out_features=cfg.n_out, rng=np.random.default_rng(0))
    batch = cfg.batch // size
    hist = nl.fit(model, X, y, epochs=epochs, batch_size=batch, optimizer="adam", lr=1e-3, seed=0,
                  verbose=0, callbacks=[clock], comm=dp)
    out = {"config": name, "source": source, "ranks": size, "batch_per_rank": batch,
           "epoch_s": clock.times, "loss": hist.history["loss"][-1], "blas": blas_info(),
           "steps_per_epoch": len(X) // batch + (len(X) % batch > 0)}
    if dp is not None:
        steps = dp.stats["steps"]
        out.update({k: dp.stats[k] / steps for k in ("allreduce_s", "copy_s", "stop_s")})
        out["bytes_per_step"] = dp.stats["bytes_per_step"]
        out["steps_per_epoch"] = steps // epochs
        buf = np.ones(dp.stats["bytes_per_step"] // 4, dtype=np.float32)
        comm.Barrier()
        t = time.perf_counter()
        for _ in range(20):
            comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
        out["bare_allreduce_s"] = (time.perf_counter() - t) / 20
    if rank == 0:
        print("RESULT " + json.dumps(out), flush=True)


def run(name: str, epochs: int, ranks: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    env.update(OPENBLAS_NUM_THREADS=str(2 // ranks), OMP_NUM_THREADS=str(2 // ranks),
               PYTHONPATH=str(HERE.parent / "src") + os.pathsep + env.get("PYTHONPATH", ""))
    cmd = [sys.executable, __file__, "--worker", name, "--epochs", str(epochs)]
    if ranks > 1:
        cmd = ["mpiexec", "-n", str(ranks), *cmd, "--mpi"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr[-2000:]}")


def project(r1: dict, r2: dict) -> list[str]:
    """Epoch time and efficiency at RANKS on LINKS, per-rank batch kept (weak scaling)."""
    b = r2["batch_per_rank"]
    comm_2 = r2["allreduce_s"] + r2["copy_s"] + r2["stop_s"]
    compute = median(r2["epoch_s"][1:] or r2["epoch_s"]) / r2["steps_per_epoch"] - comm_2
    per_sample = compute / b
    size = r2["bytes_per_step"]
    n = r1["steps_per_epoch"] * r1["batch_per_rank"]
    lines = [f"\n{r2['config']}: compute {compute * 1e3:.2f} ms a step of {b} samples a rank "
             f"({per_sample * 1e6:.1f} us/sample, one thread), copies {r2['copy_s'] * 1e3:.2f} ms, "
             f"buffer {size / 1e6:.2f} MB",
             "| ranks | link | global batch | comm ms/step | epoch s | speed-up vs 1 rank | efficiency "
             "| per-rank batch for 50% |", "|---|---|---|---|---|---|---|---|"]
    for p in RANKS:
        for link, alpha, beta in LINKS:
            comm = 2 * (p - 1) * alpha + 2 * (p - 1) / p * size / beta + r2["copy_s"] \
                + 2 * np.log2(p) * alpha  # ring allreduce of the gradients, the stop flag
            step = compute + comm
            epoch = n / (p * b) * step
            one = n * per_sample
            half = comm / per_sample  # compute of b samples = comm: 50% efficiency
            lines.append(f"| {p} | {link} | {p * b} | {comm * 1e3:.2f} | {epoch:.3f} | "
                         f"{one / epoch:.1f}x | {compute / step:.0%} | {half:.0f} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--configs", default="mnist,wide")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--mpi", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker, args.epochs, args.mpi)
    if shutil.which("mpiexec") is None:
        raise SystemExit("needs mpiexec and mpi4py: pip install 'neuralab[mpi]'")
    print("before:", load_text(), "(a shared machine: timings are noisy)")
    print("\n| config | data | ranks x threads | batch/rank | epoch s (median) | Allreduce ms/step "
          "| bare Allreduce ms | copy ms/step | stop flag ms/step | bytes/step |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    projections: list[str] = []
    for name in args.configs.split(","):
        r1 = run(name, args.epochs, 1)
        r2 = run(name, args.epochs, 2)
        for r in (r1, r2):
            ms = (lambda k: f"{r[k] * 1e3:.2f}" if k in r else "-")
            print(f"| {name} | {r['source']} | {r['ranks']} x {2 // r['ranks']} | {r['batch_per_rank']} "
                  f"| {median(r['epoch_s'][1:]):.3f} | {ms('allreduce_s')} | {ms('bare_allreduce_s')} "
                  f"| {ms('copy_s')} | {ms('stop_s')} | {r.get('bytes_per_step', '-')} |", flush=True)
        projections += project(r1, r2)
    print("BLAS (1 rank):", r1["blas"], "\nBLAS (2 ranks):", r2["blas"])
    print("after:", load_text())
    print("\nProjection (per-rank batch kept; links: latency 25 us at 10 Gbit/s, 3 us at 100):")
    print("\n".join(projections))


if __name__ == "__main__":
    main()
