"""The program tests/test_distributed.py runs under ``mpiexec -n P python _mpi_script.py MODE OUT``.

Each rank writes what it saw into OUT (weights, history, stats) for the test to compare.
``data()`` and ``start_weights()`` are imported by the test too, for the one-process reference.
"""
from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

N_ROWS, N_FEATURES, BATCH = 1024, 20, 128


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N_ROWS, N_FEATURES)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1).astype(np.int64)
    return X, y


def model_with_start_weights():
    from neuralab import nn
    model = nn.MLP(N_FEATURES, hidden=(32,), out_features=3)
    g = np.random.default_rng(5)
    model.load_state_dict({k: (g.normal(size=v.shape) * 0.3).astype(v.dtype)
                           for k, v in model.state_dict().items()})
    return model


def interleaved_rows(rank: int, size: int) -> np.ndarray:
    """Rows such that the k-th batches of all ranks together are rows k*BATCH..(k+1)*BATCH-1
    in rank order: the one-process run with batch BATCH sees the same samples each step."""
    per = BATCH // size
    return np.arange(N_ROWS).reshape(-1, BATCH)[:, rank * per:(rank + 1) * per].reshape(-1)


def main(mode: str, out: str) -> None:
    from mpi4py import MPI

    import neuralab as nl
    from neuralab.callbacks import Callback
    from neuralab.distributed import DataParallel, DistributedError

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()

    if mode == "prep":
        from neuralab import distributed as d
        g = np.random.default_rng(3)
        X = np.concatenate([g.normal(size=(1001, 3)) * [1.0, 1e6, 1e-6] + [0.0, 3e7, 1.0],
                            g.integers(0, 9, size=(1001, 1))], axis=1)
        cats = np.array(["oslo", "bergen", "tromsø", "bodø"])[g.integers(0, 4, 1001)]
        rows = d.shard_rows(len(X), comm)
        part = X[rows.start:rows.stop]
        mean, std = d.mean_and_std(part, comm)
        q = d.quantiles(part[:, 0], [0.0, 0.1, 0.5, 0.75, 1.0], comm)
        med3 = d.quantiles(part[:, 3], 0.5, comm)
        uniq, counts = np.unique(cats[rows.start:rows.stop], return_counts=True)
        merged = d.merge_counts(dict(zip(uniq.tolist(), counts.tolist())), comm)
        result = {"rows": [rows.start, rows.stop], "mean": [v.hex() for v in mean],
                  "std": [v.hex() for v in std], "q": [v.hex() for v in q],
                  "median3": med3[0].hex(), "counts": merged,
                  "sum": d.exact_sum(part[:, 1], comm).hex()}
        with open(os.path.join(out, f"prep{size}_{rank}.json"), "w") as f:
            json.dump(result, f)
        return

    X, y = data()
    model = model_with_start_weights()
    if rank:  # every rank but 0 starts elsewhere: fit must broadcast rank 0's weights
        model.load_state_dict({k: v + 1 for k, v in model.state_dict().items()})
    kwargs = dict(epochs=3, batch_size=BATCH // size, shuffle=False, seed=1, optimizer="adam",
                  lr=0.01, metrics=["accuracy"], verbose=0)
    rows = interleaved_rows(rank, size)
    callbacks = []
    check_every = 5

    class RaiseOnRank1(Callback):
        def on_batch_end(self, batch, logs=None):
            if rank == 1 and batch == 3:
                raise RuntimeError("a step failed on purpose")

    class NudgeRank1(Callback):
        def on_batch_end(self, batch, logs=None):
            if rank == 1 and batch == 1:
                w = self.model.parameters()[0].data
                # 0.1% (not one ulp: the next update's rounding can absorb a 1-ulp nudge,
                # how often depends on the BLAS kernel)
                w.flat[0] = w.flat[0] * np.float32(1.001) + np.float32(1e-3)

    class Slow(Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:  # the test interrupts rank 0 once it has seen this file
                with open(os.path.join(out, f"epoch1_{rank}"), "w") as f:
                    f.write(str(os.getpid()))

        def on_batch_end(self, batch, logs=None):
            time.sleep(0.02)

    if mode == "fault_step":
        callbacks = [RaiseOnRank1()]
    elif mode == "fault_shard" and rank == 1:
        X = X[:, :-1]  # this rank's file has a column fewer
    elif mode == "uneven":
        rows = np.arange(N_ROWS)[rank::size][: (512 if rank == 0 else 300)]
        kwargs.update(shuffle=True, validation_data=(X[rank::size][:64], y[rank::size][:64]))
    elif mode == "diverge":
        callbacks, check_every = [NudgeRank1()], 2
    elif mode == "sigint":
        callbacks, kwargs["epochs"] = [Slow()], 200

    dp = DataParallel(comm, check_every=check_every)
    with open(os.path.join(out, f"ready_{rank}"), "w") as f:  # imports done: the test's clock starts
        f.write(repr(time.time()))
    try:
        hist = nl.fit(model, X[rows], y[rows], callbacks=callbacks, comm=dp, **kwargs)
    except DistributedError as e:
        print(f"rank {rank}: DistributedError: {e}", file=sys.stderr, flush=True)
        sys.exit(3)
    np.savez(os.path.join(out, f"weights{size}_{rank}.npz"), **model.state_dict())
    with open(os.path.join(out, f"run{size}_{rank}.json"), "w") as f:
        json.dump({"history": hist.history, "stats": dp.stats, "interrupted": dp.interrupted,
                   "steps_per_rank": dp.steps_per_rank}, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
