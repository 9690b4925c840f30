"""How many BLAS threads a training run uses (OpenBLAS's pools, through threadpoolctl).

Example:
    >>> with blas_threads_for(model, 128) as policy:
    ...     step = policy.wrap(step)
"""
from __future__ import annotations

import os
from typing import Any

__all__ = ["BlasThreadPolicy", "blas_threads_for"]


_RECENT_CHOICES: dict = {}  # (flops, threads) -> (time of the trial, chosen thread count)
_BLAS_LIBS: dict = {}  # number of loaded shared libraries -> threadpoolctl's BLAS controllers


def _blas_libs() -> list:
    """threadpoolctl's controllers of the loaded BLAS libraries (looked up again only when
    new libraries were loaded: scanning them costs milliseconds)."""
    import sys
    key = len(sys.modules)
    if key not in _BLAS_LIBS:
        try:
            from threadpoolctl import ThreadpoolController
            _BLAS_LIBS.clear()
            _BLAS_LIBS[key] = ThreadpoolController().select(user_api="blas").lib_controllers
        except (ImportError, AttributeError):  # pragma: no cover - optional
            _BLAS_LIBS[key] = []
    return _BLAS_LIBS[key]


class BlasThreadPolicy:
    """How many BLAS threads a training run uses: a context manager that restores them.

    Small matmuls (under 4 MFLOP) always run on one thread. For larger ones, ``wrap(step)``
    times a few steps on one thread and a few on all of them, and keeps the faster.

    NOTE: waking a second OpenBLAS thread costs more than it saves on small matmuls, and on
    a busy machine it can cost far more than the work: a digits epoch took 1.4 s with 2
    threads vs 30 ms with 1, and an mnist one 5x longer, on this shared 2-core box. On a quiet
    machine 2 threads win for mnist-sized layers; measuring decides, per run.

    Example:
        >>> with blas_threads_for(model, 128) as policy:
        ...     step = policy.wrap(step)
    """

    trial_steps = 6  # steps timed per thread count (after one warm-up each)
    small_flops = 4e6  # below this a step's matmuls always run on one thread
    remember_s = 60.0  # a choice is reused by runs starting within this many seconds

    def __init__(self, model: Any = None, batch_size: int = 0, flops: int | None = None) -> None:
        if flops is None:
            sizes = ([p.data.size for p in model.parameters() if p.ndim >= 2]
                     if hasattr(model, "parameters") else [])
            flops = int(batch_size) * max(sizes) if sizes else 0
        self.flops = int(flops)  # multiply-adds of the largest matmul of a step
        self._libs: list = []
        self._orig: list = []
        self._all_libs: list = []
        self._whole: bool | None = None

    def _set(self, n: int) -> None:
        for lib in self._libs:
            lib.set_num_threads(n)

    def __enter__(self) -> "BlasThreadPolicy":
        if self.flops:
            from ..optim import optimizer
            if optimizer._AXPY is None:
                optimizer._load_blas()  # SciPy's BLAS too must be among the libraries below
            self._libs = _blas_libs()
        self._all_libs = list(self._libs)
        self._orig = [lib.num_threads for lib in self._libs]
        self.max_threads = max(self._orig, default=1)
        # NOTE: the optimizers' axpy comes from SciPy's own OpenBLAS (pip wheels ship one in
        # scipy.libs, apart from NumPy's). Held at one thread, it can take whole arrays: no
        # Python loop over 10,000-value slices (see optim.optimizer.axpy), 1.9x faster for
        # SGD on the wide net, and its idle threads never spin against NumPy's GEMMs.
        axpy_libs = [lib for lib in self._libs
                     if os.path.basename(os.path.dirname(lib.filepath)).startswith("scipy")]
        if axpy_libs and len(axpy_libs) < len(self._libs):
            from ..optim.optimizer import whole_axpy
            for lib in axpy_libs:
                lib.set_num_threads(1)
            self._libs = [lib for lib in self._libs if lib not in axpy_libs]
            self._whole = whole_axpy(True)
        if self.flops and self.flops < self.small_flops:
            self._set(1)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._whole is not None:
            from ..optim.optimizer import whole_axpy
            whole_axpy(self._whole)
            self._whole = None
        for lib, n in zip(self._all_libs, self._orig):
            lib.set_num_threads(n)

    def wrap(self, step: Any) -> Any:
        """``step`` timed on 1 and on all threads for its first calls, then the faster kept."""
        if self.flops < self.small_flops or self.max_threads <= 1 or not self._libs:
            return step
        import time
        plan = [1] * (self.trial_steps + 1) + [self.max_threads] * (self.trial_steps + 1)
        times: dict[int, list] = {1: [], self.max_threads: []}
        state = {"i": 0, "chosen": None}
        key = (self.flops, self.max_threads)
        recent = _RECENT_CHOICES.get(key)
        if recent is not None and time.monotonic() - recent[0] < self.remember_s:
            state["chosen"] = recent[1]  # fit called epoch by epoch: do not re-time every call
            self._set(recent[1])

        def tuned(*args: Any, **kwargs: Any) -> Any:
            if state["chosen"] is not None:
                return step(*args, **kwargs)
            i = state["i"]
            n = plan[i]
            if i == 0 or plan[i - 1] != n:
                self._set(n)
            t = time.perf_counter()
            out = step(*args, **kwargs)
            if i and plan[i - 1] == n:  # the first call on a new count is a warm-up
                times[n].append(time.perf_counter() - t)
            state["i"] = i + 1
            if state["i"] == len(plan):
                best = min(times, key=lambda k: sorted(times[k])[len(times[k]) // 2])
                state["chosen"] = best
                _RECENT_CHOICES[key] = (time.monotonic(), best)
                self._set(best)
            return out

        tuned.policy = self
        tuned.chosen = state
        return tuned


def blas_threads_for(model: Any, batch_size: int) -> BlasThreadPolicy:
    """The BLAS thread policy for training ``model`` with this batch size (see BlasThreadPolicy).

    Example: ``with blas_threads_for(model, 128) as policy: step = policy.wrap(step)``
    """
    return BlasThreadPolicy(model, batch_size)
