"""Data-parallel training over MPI ranks, and reductions that make preprocessing rank-count-free.

Every rank (process) holds a full copy of the model and its own part (shard) of the data.
Each step, every rank computes the gradients of its own mini-batch; one ``Allreduce`` sums
them over the ranks, weighted by batch size, so every rank holds the gradient of the whole
global batch (``ranks x batch_size`` samples) and applies the same optimizer step. The
replicas therefore stay bit-identical, which a cheap checksum checks every ``check_every``
steps.

    mpiexec -n 4 python train.py            # every rank runs the same script

    from mpi4py import MPI
    X_local, y_local = X[shard_rows(len(X), MPI.COMM_WORLD)], ...
    nl.fit(model, X_local, y_local, batch_size=64, comm=MPI.COMM_WORLD)   # global batch 256

What each rank does differently, and why:

* rank 0's initial weights (and optimizer state, on resume) are broadcast at the start;
* every rank takes the same number of steps per epoch, the smallest shard's (otherwise a
  rank would wait forever in the Allreduce of a step the others never take);
* batch norm normalises with each rank's own batch statistics (as PyTorch's
  DistributedDataParallel without SyncBatchNorm); the running mean/variance buffers are
  averaged over the ranks at the end of every epoch, so all replicas evaluate the same;
* only rank 0 prints progress; the per-batch loss a callback sees is its own rank's, the
  epoch's loss, metrics and validation scores are over every rank's samples;
* an error on any rank prints ``rank R of N: <error>`` and ends every rank (``MPI_Abort``)
  instead of leaving the others waiting; Ctrl-C stops every rank after the current step.

mpi4py is imported only by the functions that need it; ``import neuralab`` never loads it.
The preprocessing reductions (``exact_sum``, ``mean_and_std``, ``quantiles``,
``merge_counts``) give the same bits whatever the number of ranks: sums are exact (integer
arithmetic on the floats' mantissas) and order statistics are found by a search over the
values' bit patterns, not by averaging per-rank estimates.

Example:
    >>> from mpi4py import MPI
    >>> rows = shard_rows(len(X), MPI.COMM_WORLD)
    >>> hist = nl.fit(model, X[rows.start:rows.stop], y[rows.start:rows.stop],
    ...               batch_size=64, comm=MPI.COMM_WORLD)
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
import warnings
from fractions import Fraction
from itertools import islice
from typing import Any, Callable, Iterable, Sequence

import numpy as np

__all__ = ["DataParallel", "DistributedError", "shard_rows", "exact_sum", "mean_and_std",
           "quantiles", "merge_counts", "fit_on_ranks"]


class DistributedError(RuntimeError):
    """An error every rank found together (so every rank raises it; nothing needs aborting).

    Example: ``except nl.distributed.DistributedError as e: print(e)``
    """


def _mpi() -> Any:
    from mpi4py import MPI  # noqa: PLC0415 - optional, and heavy to initialise
    return MPI


# ============================================================================ sharding
def shard_rows(n_rows: int, comm: Any = None) -> range:
    """The rows this rank reads: a contiguous block, the blocks of all ranks covering 0..n-1.

    Rank r of p gets rows ``r*n//p`` to ``(r+1)*n//p``: sizes differ by at most one row.
    With ``comm=None`` (one process) that is every row.

    Example:
        >>> shard_rows(10, comm)  # on rank 1 of 3
        range(3, 6)
    """
    n = int(n_rows)
    if n < 0:
        raise ValueError(f"n_rows must be >= 0, got {n_rows}")
    rank, size = (0, 1) if comm is None else (comm.Get_rank(), comm.Get_size())
    return range(rank * n // size, (rank + 1) * n // size)


# ============================================================================ exact reductions
# A finite float64 is m * 2**(e - 53) with an integer mantissa |m| < 2**53. Sums of such
# integers, grouped by exponent, are exact in int64 when the mantissa is split into halves
# of 26 and 27 bits; adding the groups as Python integers gives the exact sum, rounded
# once at the end. Any split of the values over ranks gives the same groups, so the same bits.
_LOW_BITS = 26
_CHUNK = 1 << 30  # values summed per int64 accumulation (27-bit halves: no overflow)


def _exact_parts(values: np.ndarray) -> dict[int, int]:
    """{exponent: exact integer sum of the mantissas with that exponent} of a 1-D array."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(v)):
        raise ValueError("exact_sum needs finite values (leave NaN and infinity out first)")
    mant, exp = np.frexp(v)  # v = mant * 2**exp, 0.5 <= |mant| < 1
    m = (mant * 2.0 ** 53).astype(np.int64)  # exact: 53 significant bits
    parts: dict[int, int] = {}
    for e in np.unique(exp[m != 0]):
        sel = m[exp == e]
        hi, lo = sel >> _LOW_BITS, sel & ((1 << _LOW_BITS) - 1)
        total = 0
        for start in range(0, len(sel), _CHUNK):
            total += (int(hi[start:start + _CHUNK].sum()) << _LOW_BITS) + int(lo[start:start + _CHUNK].sum())
        parts[int(e)] = parts.get(int(e), 0) + total
    return parts


def _parts_value(parts: dict[int, int]) -> Fraction:
    return sum((Fraction(m) * Fraction(2) ** (e - 53) for e, m in parts.items()), Fraction(0))


def _merge_parts(all_parts: Sequence[dict[int, int]]) -> dict[int, int]:
    merged: dict[int, int] = {}
    for parts in all_parts:
        for e, m in parts.items():
            merged[e] = merged.get(e, 0) + m
    return merged


def _gathered(obj: Any, comm: Any) -> list:
    return [obj] if comm is None else comm.allgather(obj)


def exact_sum(values: Any, comm: Any = None, axis: int | None = None) -> Any:
    """The sum of every rank's ``values``, computed exactly and rounded once to float64.

    The result does not depend on how the values are split over ranks (or ordered), unlike
    a floating-point sum. ``axis=0`` sums each column of a 2-D array (an array of sums).

    Example:
        >>> exact_sum([1e16, 1.0, -1e16])   # a float sum says 0.0
        1.0
    """
    a = np.asarray(values, dtype=np.float64)
    if axis is None:
        return float(_parts_value(_merge_parts(_gathered(_exact_parts(a), comm))))
    if axis != 0 or a.ndim != 2:
        raise ValueError(f"exact_sum: axis must be None or 0 with a 2-D array, got axis={axis}, "
                         f"shape {a.shape}")
    cols = [_exact_parts(a[:, j]) for j in range(a.shape[1])]
    gathered = _gathered(cols, comm)
    return np.array([float(_parts_value(_merge_parts([g[j] for g in gathered])))
                     for j in range(a.shape[1])])


def _total_count(n: int, comm: Any) -> int:
    return int(sum(_gathered(int(n), comm)))


def mean_and_std(X: Any, comm: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Each column's mean and (population) standard deviation over every rank's rows.

    Two exact passes: the mean (exact sum / n, rounded once), then the exact sum of squared
    deviations from it, so the result is the same whatever the number of ranks. It agrees
    with ``X.mean(0)``, ``X.std(0)`` of the whole data to float64 rounding.

    Example:
        >>> mean, std = mean_and_std(X_local, MPI.COMM_WORLD)
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    n = _total_count(len(X), comm)
    if n == 0:
        raise ValueError("mean_and_std: no rows on any rank")
    # NOTE: the exact sum divided by n as Fractions is the correctly rounded mean.
    mean = np.array([float(s) for s in _exact_column_sums(X, comm, n)])
    dev = X - mean
    var = np.array([float(s) for s in _exact_column_sums(dev * dev, comm, n)])
    return mean, np.sqrt(var)


def _exact_column_sums(X: np.ndarray, comm: Any, divide_by: int) -> list[Fraction]:
    cols = [_exact_parts(X[:, j]) for j in range(X.shape[1])]
    gathered = _gathered(cols, comm)
    return [_parts_value(_merge_parts([g[j] for g in gathered])) / divide_by
            for j in range(X.shape[1])]


def _sort_keys(v: np.ndarray) -> np.ndarray:
    """uint64 keys that sort as the float64 values do (negatives: all bits flipped)."""
    u = np.ascontiguousarray(v, dtype=np.float64).view(np.uint64)
    sign = np.uint64(1 << 63)
    return np.where(u & sign, ~u, u | sign)


def _key_value(key: int) -> float:
    sign = 1 << 63
    u = (key ^ sign) if key & sign else (~key & ((1 << 64) - 1))
    return float(np.array([u], dtype=np.uint64).view(np.float64)[0])


def _kth_smallest(keys: np.ndarray, ks: list[int], comm: Any) -> list[float]:
    """The k-th smallest values (0-based) of every rank's sorted ``keys``, found together:
    64 halvings of the key range, each counting the keys below it on every rank."""
    lo = [0] * len(ks)
    hi = [(1 << 64) - 1] * len(ks)
    for _ in range(64):
        mids = [(a + b) // 2 for a, b in zip(lo, hi)]
        local = np.searchsorted(keys, np.array(mids, dtype=np.uint64), side="right").astype(np.int64)
        counts = local if comm is None else np.sum(comm.allgather(local), axis=0)
        for i, (k, c) in enumerate(zip(ks, counts)):
            if c > k:      # at least k+1 keys <= mid: the answer is <= mid
                hi[i] = mids[i]
            else:
                lo[i] = mids[i] + 1
    return [_key_value(h) for h in hi]


def quantiles(values: Any, q: Any, comm: Any = None) -> np.ndarray:
    """Quantiles of every rank's values together, as ``np.quantile`` of all of them ("linear").

    Exact: the order statistics are found among the values themselves (a search over their
    bit patterns, with one tiny allgather per halving), so the result does not depend on
    the number of ranks. ``q=0.5`` is the median (the mean of the middle two, as np.median).
    NaN values are left out.

    Example:
        >>> quantiles(column_local, [0.25, 0.5, 0.75], MPI.COMM_WORLD)
        array([1.5 , 3.  , 7.25])
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    v = v[~np.isnan(v)]
    qs = np.atleast_1d(np.asarray(q, dtype=np.float64))
    if np.any((qs < 0) | (qs > 1)):
        raise ValueError(f"quantiles: q must lie in [0, 1], got {q}")
    n = _total_count(len(v), comm)
    if n == 0:
        raise ValueError("quantiles: no values on any rank")
    keys = np.sort(_sort_keys(v))
    pos = qs * (n - 1)
    below = np.floor(pos).astype(np.int64)
    ks = sorted({int(k) for k in below} | {int(min(k + 1, n - 1)) for k in below})
    found = dict(zip(ks, _kth_smallest(keys, ks, comm)))
    out = []
    for p, k in zip(pos, below):
        a, b = found[int(k)], found[int(min(k + 1, n - 1))]
        t = float(p - k)
        # NOTE: numpy's lerp, from the nearer end so that t=1 gives b exactly
        out.append(a + (b - a) * t if t < 0.5 else b - (b - a) * (1.0 - t))
    return np.array(out)


def merge_counts(counts: dict, comm: Any = None) -> dict:
    """The counts of every rank added up: ``{category: count}`` over all rows.

    Sorted by category, so every rank gets the same dict whatever it saw first. With the
    total counts, the most frequent categories (or "every value distinct") are chosen the
    same way on every rank.

    Example:
        >>> merge_counts(df["city"].value_counts().to_dict(), MPI.COMM_WORLD)
        {'Bergen': 120, 'Oslo': 342}
    """
    total: dict = {}
    for part in _gathered(dict(counts), comm):
        for key, c in part.items():
            total[key] = total.get(key, 0) + int(c)
    return dict(sorted(total.items(), key=lambda kv: str(kv[0])))


# ============================================================================ data-parallel fit
class _FirstSteps:
    """The first ``steps`` batches of each pass over ``batches``."""

    def __init__(self, batches: Iterable, steps: int) -> None:
        self.batches, self.steps = batches, steps

    def __iter__(self) -> Any:
        return islice(iter(self.batches), self.steps)

    def __len__(self) -> int:
        return self.steps


class _AveragingOptimizer:
    """An optimizer whose ``step()`` first replaces every gradient by its average over the
    ranks (one Allreduce of one flat buffer), then runs the real optimizer's step."""

    def __init__(self, dp: "DataParallel", optimizer: Any) -> None:
        self.dp, self.optimizer = dp, optimizer
        self.params = [p for g in optimizer.param_groups for p in g["params"]]
        dtypes = {p.data.dtype for p in self.params}
        self.dtype = dtypes.pop() if len(dtypes) == 1 else np.dtype(np.float64)
        sizes = [p.data.size for p in self.params]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        # the gradients, then one slot for this rank's batch weight (its sample count)
        self.flat = np.empty(int(self.offsets[-1]) + 1, dtype=self.dtype)
        self.views = [self.flat[a:b].reshape(p.data.shape)
                      for p, a, b in zip(self.params, self.offsets[:-1], self.offsets[1:])]

    def zero_grad(self, *args: Any, **kwargs: Any) -> None:
        self.optimizer.zero_grad(*args, **kwargs)

    def step(self) -> None:
        MPI = _mpi()
        stats, weight = self.dp.stats, self.dp.batch_weight
        t0 = time.perf_counter()
        # NOTE: each gradient is a mean over this rank's batch; times the batch weight it is
        # a sum, and the summed sums over the summed weights is the global batch's mean.
        for p, view in zip(self.params, self.views):
            if p.grad is None:
                view[...] = 0  # a parameter that did not take part on this rank
            else:
                np.multiply(p.grad, weight, out=view)
        self.flat[-1] = weight
        t1 = time.perf_counter()
        self.dp.comm.Allreduce(MPI.IN_PLACE, self.flat, op=MPI.SUM)
        t2 = time.perf_counter()
        scale = self.dtype.type(1.0) / self.flat[-1]
        for p, view in zip(self.params, self.views):
            if p.grad is None or p.grad.base is not None or not p.grad.flags.writeable:
                p.grad = np.empty_like(p.data)
            np.multiply(view, scale, out=p.grad)
        t3 = time.perf_counter()
        stats["copy_s"] += (t1 - t0) + (t3 - t2)
        stats["allreduce_s"] += t2 - t1
        stats["bytes_per_step"] = self.flat.nbytes
        self.optimizer.step()


class DataParallel:
    """Data-parallel training over an MPI communicator: what ``fit(..., comm=...)`` runs on.

    Pass it as ``comm=`` instead of the communicator to choose ``check_every`` (steps between
    the replicas' checksum comparisons; 0: only at the end) or to read ``stats`` afterwards:
    steps, seconds in the gradient Allreduce and in copying gradients to and from its
    buffer, and the buffer's bytes.

    Example:
        >>> dp = DataParallel(MPI.COMM_WORLD, check_every=50)
        >>> nl.fit(model, X_local, y_local, batch_size=64, comm=dp)
        History(epochs=10, ...)
        >>> per_step = dp.stats["allreduce_s"] / dp.stats["steps"]   # seconds in the Allreduce
    """

    def __init__(self, comm: Any, check_every: int = 100) -> None:
        if not hasattr(comm, "Allreduce"):
            raise TypeError(f"comm must be an MPI communicator (mpi4py), got {type(comm).__name__}")
        self.comm = comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.check_every = int(check_every)
        self.stats: dict[str, Any] = {"steps": 0, "allreduce_s": 0.0, "copy_s": 0.0,
                                      "bytes_per_step": 0, "stop_s": 0.0}
        self.batch_weight = 0.0
        self.interrupted = False
        self.steps_per_rank: list[int] = []
        self._averaging: _AveragingOptimizer | None = None
        self._model: Any = None
        self._flag = np.zeros(1, dtype=np.int32)
        self._sigint: Any = None
        self.guarding = False

    # ---- the fault guard: an error on one rank must not leave the others waiting forever
    def fail(self, error: BaseException) -> None:
        """Print ``rank R of N: <error>`` and end every rank (MPI_Abort).

        Example: ``except Exception as e: dp.fail(e)``
        """
        what = "interrupted" if isinstance(error, KeyboardInterrupt) else (
            f"{type(error).__name__}: {' '.join(str(error).split()) or type(error).__name__}")
        if os.environ.get("NEURALAB_DEBUG"):
            import traceback  # noqa: PLC0415
            traceback.print_exception(type(error), error, error.__traceback__)
        sys.stdout.flush()
        print(f"rank {self.rank} of {self.size}: {what}", file=sys.stderr, flush=True)
        code = 130 if isinstance(error, KeyboardInterrupt) else 1
        # NOTE: mpiexec forwards each rank's stderr through its proxy, and on MPI_Abort it may
        # kill the ranks and exit before that line has been forwarded (seen once in CI under
        # load: an empty stderr); a moment's wait lets the proxy pass it on. Only a failing
        # run pays it.
        time.sleep(0.5)
        self.comm.Abort(code)
        os._exit(code)  # NOTE: MPICH's Abort may return before the process is ended

    # ---- before training: the ranks agree on what they are about to do
    def agree(self, batches: Any, steps: int | None, samples: int | None, has_validation: bool,
              epochs: int, batch_size: int, device: str) -> tuple[Any, int]:
        """Check that every rank trains alike; return the batches cut to the common steps.

        Example: ``batches, steps = dp.agree(batches, len(batches), n, False, 10, 64, "cpu")``
        """
        if steps is None:
            raise ValueError("distributed training needs arrays X, y or a list of batches "
                             "(a number of steps known in advance)")
        if device != "cpu":
            raise ValueError(f"distributed training runs on the CPU, not on {device!r}")
        mine = {"steps": int(steps), "samples": samples, "validation": bool(has_validation),
                "epochs": int(epochs), "batch_size": int(batch_size)}
        everyone = self.comm.allgather(mine)
        for key in ("epochs", "batch_size", "validation"):
            values = [e[key] for e in everyone]
            if len(set(values)) > 1:
                raise DistributedError(
                    f"the ranks disagree on {key}: " + ", ".join(
                        f"rank {r} has {v}" for r, v in enumerate(values)) + "; every rank must "
                    "call fit with the same arguments" + (" (and all or none validation data)"
                                                          if key == "validation" else ""))
        self.steps_per_rank = [e["steps"] for e in everyone]
        common = min(self.steps_per_rank)
        if common == 0:
            raise DistributedError("a rank has no training batch: steps per epoch are "
                                   f"{self.steps_per_rank} (rank by rank)")
        if len(set(self.steps_per_rank)) > 1 and self.rank == 0:
            sizes = ", ".join(f"rank {r}: {e['samples']} samples, {e['steps']} steps"
                              for r, e in enumerate(everyone))
            warnings.warn(f"the ranks' shards differ in size ({sizes}); every rank takes "
                          f"{common} steps an epoch (the smallest shard's), so each epoch "
                          "leaves out the larger shards' extra batches (other ones each epoch "
                          "when shuffling)", RuntimeWarning, stacklevel=3)
        return _FirstSteps(batches, common), common

    def averaging(self, optimizer: Any) -> _AveragingOptimizer:
        """The optimizer to step with: gradients averaged over the ranks before each step.

        Example: ``step = make_train_step(model, loss_fn, dp.averaging(opt))``
        """
        self._averaging = _AveragingOptimizer(self, optimizer)
        return self._averaging

    def counting(self, step: Callable) -> Callable:
        """``step`` that tells the averaging its batch weight and checks the replicas now and then.

        Example: ``train_step = dp.counting(train_step)``
        """
        def counted(xb: Any, yb: Any, wb: Any) -> Any:
            # the loop's weighting of the epoch loss: samples, or the sum of sample weights
            self.batch_weight = len(xb) if wb is None else float(np.sum(wb))
            out = step(xb, yb, wb)
            self.stats["steps"] += 1
            if self.check_every and self.stats["steps"] % self.check_every == 0:
                self.check_replicas()
            return out
        return counted

    def begin(self, model: Any, optimizer: Any) -> None:
        """Give every rank rank 0's weights and optimizer state; route Ctrl-C to a stop flag.

        Example: ``dp.begin(model, optimizer)``
        """
        self._model = model
        state = self.comm.bcast(model.state_dict() if self.rank == 0 else None, root=0)
        if self.rank:
            model.load_state_dict(state)
        if hasattr(optimizer, "state_dict"):
            opt_state = self.comm.bcast(optimizer.state_dict() if self.rank == 0 else None, root=0)
            if self.rank:
                optimizer.load_state_dict(opt_state)
        # NOTE: mpiexec passes Ctrl-C to every rank, but not at the same step; a rank that left
        # the loop alone would leave the others in an Allreduce. So the first Ctrl-C only sets
        # a flag that the ranks share after each step (the CLI's own handler works the same way).
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._sigint = signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self.interrupted:
            raise KeyboardInterrupt
        self.interrupted = True

    def end(self) -> None:
        """Give Ctrl-C back its handler. Example: ``dp.end()``"""
        if self._sigint is not None:
            signal.signal(signal.SIGINT, self._sigint)
            self._sigint = None

    # ---- during training
    def any_rank(self, stop: bool) -> bool:
        """True on every rank when any rank wants to stop (a callback, Ctrl-C).

        Example: ``run.stop_training = dp.any_rank(run.stop_training)``
        """
        MPI = _mpi()
        t = time.perf_counter()
        self._flag[0] = 1 if (stop or self.interrupted) else 0
        self.comm.Allreduce(MPI.IN_PLACE, self._flag, op=MPI.MAX)
        self.stats["stop_s"] += time.perf_counter() - t
        return bool(self._flag[0])

    def reduce_scores(self, total: float, count: float, metrics: Sequence[Any],
                      model: Any = None) -> tuple[float, float]:
        """Add up an epoch's loss sums and the metrics' running sums over the ranks.

        With ``model``, its batch-norm running statistics are averaged over the ranks too.
        Example: ``total, count = dp.reduce_scores(total, count, train_metrics, model)``
        """
        MPI = _mpi()
        parts: list[np.ndarray] = [np.array([total, count], dtype=np.float64)]
        slots: list[tuple[Any, str, Any]] = []
        for m in metrics:
            for name in getattr(m, "state_names", ("total", "count")):
                v = getattr(m, name)
                slots.append((m, name, np.shape(v)))
                parts.append(np.asarray(v, dtype=np.float64).reshape(-1))
        buffers = []
        if model is not None and hasattr(model, "named_buffers"):
            buffers = [b for _, b in model.named_buffers()
                       if isinstance(b, np.ndarray) and b.dtype.kind == "f"]
            parts.extend(b.astype(np.float64).reshape(-1) for b in buffers)
        flat = np.concatenate(parts)
        self.comm.Allreduce(MPI.IN_PLACE, flat, op=MPI.SUM)
        pos = 2
        for m, name, shape in slots:
            n = int(np.prod(shape))
            v = flat[pos:pos + n]
            setattr(m, name, float(v[0]) if shape == () else v.reshape(shape).copy())
            pos += n
        for b in buffers:
            b[...] = (flat[pos:pos + b.size] / self.size).reshape(b.shape)
            pos += b.size
        return float(flat[0]), float(flat[1])

    def checksum(self, buffers: bool = False) -> int:
        """An exact checksum of this rank's weights: the sum of their bit patterns.

        Any changed bit changes it (short of two changes cancelling). Example: ``dp.checksum()``
        """
        arrays = [p.data for p in self._averaging.params] if self._averaging else []
        if buffers and self._model is not None and hasattr(self._model, "named_buffers"):
            arrays += [b for _, b in self._model.named_buffers() if isinstance(b, np.ndarray)]
        total = 0
        for a in arrays:
            a = np.ascontiguousarray(a).reshape(-1)
            bits = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize]
            total += int(np.add.reduce(a.view(bits), dtype=np.uint64))
        return total

    def check_replicas(self, buffers: bool = False) -> None:
        """Compare every rank's checksum; all ranks raise DistributedError when one differs.

        Example: ``dp.check_replicas()``
        """
        sums = self.comm.allgather(self.checksum(buffers))
        if len(set(sums)) > 1:
            odd = [r for r, s in enumerate(sums) if s != sums[0]]
            raise DistributedError(
                f"the model replicas differ after {self.stats['steps']} steps: the weights of "
                f"rank(s) {odd} are not rank 0's (checksums {sums}); every rank must run the "
                "same model, optimizer and neuralab/NumPy versions, and nothing may change one "
                "rank's weights alone")


def fit_on_ranks(fit: Callable, comm: Any, args: dict) -> Any:
    """Run ``fit(**args)`` as one rank of a data-parallel run (``fit(comm=...)`` calls this).

    Only rank 0 prints. An exception on any rank prints ``rank R of N: <error>`` and ends
    every rank, rather than leaving the others waiting in a collective call; an error all
    ranks found together (DistributedError) is raised on each.

    Example: ``fit_on_ranks(nl.fit, MPI.COMM_WORLD, dict(model=m, X=X, y=y))``
    """
    dp = comm if isinstance(comm, DataParallel) else DataParallel(comm)
    args = {**args, "comm": dp}
    if dp.rank != 0:
        args["verbose"] = 0
    dp.guarding = True
    try:
        return fit(**args)
    except DistributedError:
        raise
    except (Exception, KeyboardInterrupt) as error:  # noqa: BLE001 - any error must end every rank
        if dp.size == 1:
            raise
        dp.fail(error)
        raise  # pragma: no cover - Abort does not return
    finally:
        dp.guarding = False
        dp.end()
