"""How many BLAS threads a training run uses (OpenBLAS's pools, through threadpoolctl).

The count is a rule on the step's shapes and the machine's cores, never a stopwatch: the
same model, batch size and machine always get the same count, so a run resumed from a
checkpoint does the same arithmetic as the run it continues (a GEMM split over another
number of threads may round differently).

Example:
    >>> with blas_threads_for(model, 128) as policy:   # a small net: one thread
    ...     print(policy.threads)
    1
"""
from __future__ import annotations

import os
import sys
from typing import Any

__all__ = ["BlasThreadPolicy", "blas_threads_for", "choose_threads"]


_BLAS_LIBS: dict = {}  # number of loaded modules -> threadpoolctl's BLAS controllers (a lookup cache)

# NOTE: a step whose largest matmul has fewer multiply-adds than this runs on one thread:
# below it, waking a second OpenBLAS thread costs more than it saves (and far more on a
# busy machine). Measured with benchmarks/blas_threads.py; the figures are in
# benchmarks/README.md ("BLAS threads").
TWO_THREADS_FROM = 16_000_000


def choose_threads(flops: int, cores: int) -> int:
    """The BLAS thread count for a step whose largest matmul has ``flops`` multiply-adds.

    One thread below ``TWO_THREADS_FROM``, else every core BLAS may use.

    Example: ``choose_threads(128 * 784 * 1024, 2)  # 2``
    """
    return 1 if cores <= 1 or flops < TWO_THREADS_FROM else int(cores)


def _cores() -> int:
    """The cores this process may run on, capped by OPENBLAS_NUM_THREADS when it is set.

    NOTE: read from the machine, not from BLAS's current setting, which another run in
    this process may have changed for a while.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    cap = os.environ.get("OPENBLAS_NUM_THREADS", "")
    return max(1, min(cores, int(cap))) if cap.isdigit() and int(cap) > 0 else max(1, cores)


def _blas_libs() -> list:
    """threadpoolctl's controllers of the loaded BLAS libraries (looked up again only when
    new modules were loaded: scanning the libraries costs milliseconds)."""
    key = len(sys.modules)
    if key not in _BLAS_LIBS:
        try:
            from threadpoolctl import ThreadpoolController  # noqa: PLC0415
            found = ThreadpoolController().select(user_api="blas").lib_controllers
        except (ImportError, AttributeError):  # pragma: no cover - threadpoolctl is a dependency
            found = []
        _BLAS_LIBS.clear()
        _BLAS_LIBS[key] = found
    return _BLAS_LIBS[key]


class BlasThreadPolicy:
    """How many BLAS threads a training run uses: a context manager that restores them.

    Args:
        model: the model trained (its largest weight matrix sizes the matmuls), or None.
        batch_size: rows per step.
        flops: or the multiply-adds of the step's largest matmul directly.
        threads: force this many threads (e.g. the count a checkpoint recorded); None
            chooses with ``choose_threads`` from ``flops`` and the cores this process may use.

    ``threads`` is the count the run's matmuls use (chosen here, applied on enter); the fused
    kernels (``neuralab.kernels``) run on one numba thread meanwhile (numba's setting is per
    calling thread, and restored on exit). The optimizers'
    axpy library (SciPy's own OpenBLAS, when it is another library than NumPy's) is held
    at one thread, which lets it take whole arrays (see ``optim.optimizer.axpy``).

    Example:
        >>> policy = BlasThreadPolicy(model, 128)    # a digits-sized net: one thread
        >>> policy.threads, BlasThreadPolicy(model, 128, threads=2).threads
        (1, 2)
        >>> with policy:
        ...     out = model(nl.tensor(np.zeros((128, 64), np.float32)))
    """

    def __init__(self, model: Any = None, batch_size: int = 0, flops: int | None = None,
                 threads: int | None = None) -> None:
        if flops is None:
            sizes = ([p.data.size for p in model.parameters() if p.ndim >= 2]
                     if hasattr(model, "parameters") else [])
            flops = int(batch_size) * max(sizes) if sizes else 0
        if threads is not None and int(threads) < 1:
            raise ValueError(f"blas threads must be a positive integer, got {threads}")
        self.flops = int(flops)  # multiply-adds of the largest matmul of a step
        self.forced = None if threads is None else int(threads)
        self.max_threads = _cores()
        self.threads = (self.forced if self.forced is not None
                        else choose_threads(self.flops, self.max_threads))  # the count used
        self._libs: list = []
        self._orig: list = []
        self._numba: Any = None  # numba, while this policy holds its thread count
        self._numba_orig = 0

    def __enter__(self) -> "BlasThreadPolicy":
        from ..optim.optimizer import _blas  # noqa: PLC0415
        _blas()  # loads SciPy's BLAS, so it is among the libraries below
        libs = _blas_libs()
        self._libs = list(libs)
        self._orig = [lib.num_threads for lib in libs]
        # NOTE: NumPy's and SciPy's pip wheels each ship an OpenBLAS (numpy.libs, scipy.libs).
        # The optimizers' axpy runs on SciPy's: held at one thread it takes whole arrays
        # (no Python loop over slices), and its idle threads never spin against NumPy's GEMMs.
        axpy_libs = [lib for lib in libs
                     if os.path.basename(os.path.dirname(lib.filepath)).startswith("scipy")]
        gemm_libs = [lib for lib in libs if lib not in axpy_libs] if len(axpy_libs) < len(libs) else libs
        if gemm_libs is not libs:
            for lib in axpy_libs:
                lib.set_num_threads(1)
        for lib in gemm_libs:
            lib.set_num_threads(self.threads)
        from .. import kernels  # noqa: PLC0415 - imports numba only when its kernels are used
        nb = kernels.numba_module()
        if nb is not None:
            # NOTE: the fused optimizer kernels run on one numba thread: on one thread they
            # are already 2.5-5x NumPy's passes, while a second thread made the wide net's
            # step 10x slower whenever the machine had other work (OpenMP threads waiting
            # for a core; benchmarks/README.md, "Fused kernels").
            self._numba, self._numba_orig = nb, nb.get_num_threads()
            nb.set_num_threads(1)
        return self

    def __exit__(self, *exc: Any) -> None:
        for lib, n in zip(self._libs, self._orig):
            lib.set_num_threads(n)
        if self._numba is not None:
            self._numba.set_num_threads(self._numba_orig)
            self._numba = None

    def wrap(self, step: Any) -> Any:
        """``step`` itself: the count is chosen on entering, from shapes (kept for callers).

        Example: ``step = policy.wrap(step)``
        """
        return step


def blas_threads_for(model: Any, batch_size: int, threads: int | None = None) -> BlasThreadPolicy:
    """The BLAS thread policy for training ``model`` with this batch size (see BlasThreadPolicy).

    Example: ``with blas_threads_for(model, 128) as policy: print(policy.threads)``
    """
    return BlasThreadPolicy(model, batch_size, threads=threads)
