"""``neuralab train --distributed``: what each MPI rank does besides training.

Every rank runs the same command. Each reads only its part of the data
(``data.read_table_part``), the preprocessing is fitted on all ranks' training rows
together (``TabularPreprocessor.fit(..., comm=)``), the validation rows are chosen row by
row from the row's number in the whole table (so every rank holds out its own rows, and
the split is the same whatever the number of ranks), and only rank 0 prints and writes.

Errors: a check every rank runs on its own (reading its part, transforming it) is compared
over the ranks, so a bad part ends every rank with one line naming the rank; an error in a
step that holds collective calls ends every rank through ``MPI_Abort`` (never a hang).

Example (shell):
    mpiexec -n 4 neuralab train data.parquet --target y --distributed --out m.safetensors
"""
from __future__ import annotations

import os
import sys
from typing import Any, Callable

import click
import numpy as np

from ._errors import BadInput, one_line


class OneRank:
    """A communicator of one process: what ``--distributed`` uses without MPI.

    Example: ``OneRank().allgather(3)  # [3]``
    """

    def Get_rank(self) -> int:  # noqa: N802 - mpi4py's names
        return 0

    def Get_size(self) -> int:  # noqa: N802
        return 1

    def allgather(self, value: Any) -> list:
        return [value]

    def bcast(self, value: Any, root: int = 0) -> Any:
        return value


def world() -> tuple[Any, str | None]:
    """(the communicator, None) under mpiexec/srun; (OneRank(), the one-line note) otherwise.

    Example: ``comm, note = world()``
    """
    try:
        from mpi4py import MPI  # noqa: PLC0415
    except ImportError:
        return OneRank(), ("note: --distributed: mpi4py is not installed (pip install "
                           "\"neuralab[mpi]\"); training in this one process")
    comm = MPI.COMM_WORLD
    if comm.Get_size() == 1:
        return comm, ("note: --distributed: this is the only process (start several with "
                      "mpiexec -n N or srun); training in this one process")
    return comm, None


def is_mpi(comm: Any) -> bool:
    """True for a communicator of more than one rank (what ``nl.fit(comm=)`` needs)."""
    return comm is not None and not isinstance(comm, OneRank) and comm.Get_size() > 1


def agree(comm: Any, work: Callable[[], Any]) -> Any:
    """Run ``work()`` on every rank; if it failed on any, stop every rank with one line.

    ``work`` must not hold collective calls (every rank reaches the comparison). Rank 0
    prints ``Error: <message>`` (prefixed ``rank R of N:`` unless every rank failed alike)
    and every rank exits 2.
    Example: ``part = agree(comm, lambda: read_table_part(path, comm))``
    """
    try:
        value, failure = work(), None
    except click.ClickException as e:
        value, failure = None, e.format_message()
    except (Exception, KeyboardInterrupt) as e:  # noqa: BLE001 - every rank must hear of it
        value, failure = None, one_line(e)
    failures = comm.allgather(failure)
    failed = [(r, f) for r, f in enumerate(failures) if f is not None]
    if failed:
        stop_all(comm, failed)
    return value


def stop_all(comm: Any, failed: list[tuple[int, str]]) -> None:
    """Every rank knows of ``failed`` [(rank, message)]: rank 0 says it, all exit 2."""
    size = comm.Get_size()
    rank, message = failed[0]
    if not (len(failed) == size and len({m for _, m in failed}) == 1) and size > 1:
        message = f"rank {rank} of {size}: {message}"
    if comm.Get_rank() == 0:
        raise BadInput(message)
    sys.exit(2)


def abort(comm: Any, error: BaseException) -> None:
    """An error on this rank alone, amid collective calls: one line, then end every rank.

    Example: ``except Exception as e: abort(comm, e)``
    """
    if os.environ.get("NEURALAB_DEBUG"):
        import traceback  # noqa: PLC0415
        traceback.print_exception(type(error), error, error.__traceback__)
    text = error.format_message() if isinstance(error, click.ClickException) else one_line(error)
    sys.stdout.flush()
    click.echo(f"Error: rank {comm.Get_rank()} of {comm.Get_size()}: {text}", err=True)
    sys.stderr.flush()
    comm.Abort(2)
    os._exit(2)  # NOTE: MPICH's Abort may return before the process is ended


def global_rows(comm: Any, frame: Any) -> Any:
    """``frame`` indexed by its rows' numbers in the whole table (parts in rank order)."""
    import pandas as pd  # noqa: PLC0415

    counts = comm.allgather(len(frame))
    start = sum(counts[:comm.Get_rank()])
    return frame.set_axis(pd.RangeIndex(start, start + len(frame)), axis=0)


def validation_rows(rows: np.ndarray, share: float, seed: int) -> np.ndarray:
    """True for the rows held out for validation, chosen from each row's number alone.

    A hash of (seed, row number) -> a number in [0, 1); below ``share``: validation. Every
    rank decides for its own rows, and the same rows are held out whatever the number of
    ranks (about ``share`` of them, not exactly).
    Example: ``validation_rows(np.arange(10), 0.2, seed=0)``
    """
    # splitmix64 (Steele, Lea and Flood 2014): a fixed, well-mixed 64-bit hash
    with np.errstate(over="ignore"):
        z = rows.astype(np.uint64) + np.uint64(seed % (1 << 64)) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0 ** -53 < share


def scores(comm: Any, model: Any, X: Any, y: Any, task: str, prep: Any) -> dict:
    """The scores of ``train``'s report over every rank's rows (sums added up over the ranks).

    Example: ``scores(comm, model, X_val, y_val, "classification", prep)["accuracy"]``
    """
    from ..training import predict  # noqa: PLC0415

    out = predict(model, X) if len(X) else np.zeros((0, model_outputs(model)))
    if task == "classification":
        z = out - out.max(axis=1, keepdims=True) if len(out) else out
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True)) if len(out) else z
        parts = comm.allgather((float(-logp[np.arange(len(y)), y].sum()) if len(y) else 0.0,
                                int((out.argmax(axis=1) == y).sum()) if len(y) else 0, len(y)))
        n = sum(p[2] for p in parts)
        return {"loss": sum(p[0] for p in parts) / n, "accuracy": sum(p[1] for p in parts) / n}
    pred = prep.unscale_target(out[:, 0]) if len(out) else np.zeros(0)
    truth = prep.unscale_target(y)
    err = pred - truth
    parts = comm.allgather((float(np.sum(err ** 2)), float(np.sum(np.abs(err))),
                            float(np.sum(truth)), len(truth)))
    n = sum(p[3] for p in parts)
    mean = sum(p[2] for p in parts) / n
    sst = sum(comm.allgather(float(np.sum((truth - mean) ** 2))))
    sse = sum(p[0] for p in parts)
    return {"mse": sse / n, "mae": sum(p[1] for p in parts) / n,
            "r2": 1.0 - sse / sst if sst > 0 else 0.0}


def model_outputs(model: Any) -> int:
    """The width of the network's last layer's output."""
    params = [p for p in model.parameters()]
    return int(params[-1].data.shape[0]) if params else 1
