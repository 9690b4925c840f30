"""Fused elementwise kernels: numba-compiled loops, with a readable NumPy twin of each.

``get(name)`` returns the compiled kernel (``numba_impl``), or the NumPy reference
(``numpy_ref``) when numba is not installed or ``NEURALAB_KERNELS=numpy`` is set;
``active()`` returns the module they come from (optimizers look it up once per step). Both
take the same arguments and do the same arithmetic per element in the same order, so they
give the same bits (``tests/test_kernels.py``). Kernels work on C-contiguous float32 or
float64 NumPy arrays (``usable`` says whether arrays qualify): 1-D for the optimizer steps,
2-D batches for the layer kernels (``bias_relu``, ``relu_mask_backward``, ``bias_grad``,
``softmax_xent``), arrays of any shape for ``dropout`` and ``dropout_backward``, Conv2d's
(C, H, W, N) input and its column bands for ``im2col``/``col2im``; anything else, CuPy
arrays included, stays on the callers' array-op code.

The recurrent steps (``lstm_step``, ``gru_step`` and their ``_backward``) take one time step's
transposed (features, N) arrays; their compiled forms call NumPy's tanh between their loops,
and their NumPy references also run CuPy arrays (functions.LSTMSequence and GRUSequence).

numba is imported on the first ``get`` (never by ``import neuralab``), and its compiled
functions are cached on disk, so only the first process on a machine compiles them. Even with
that cache, importing numba and loading its code costs about half a second in a fresh
process, more than a small fit's updates ever save, so ``nl.fit`` trains inside
``deferred(work)``: a small job gets numba's kernels only if numba is already imported, the
NumPy reference otherwise. That never changes a result, because every kernel gives its reference's bits.

Example:
    >>> from neuralab import kernels
    >>> adam = kernels.get("adam")
"""
from __future__ import annotations

import functools
import os
from typing import Any, Callable

import numpy as np

from . import numpy_ref

__all__ = ["get", "active", "loaded", "usable", "numba_module", "deferred", "WORTH_LOADING", "NAMES"]

NAMES = ("sgd", "adam", "rmsprop", "adagrad", "bias_relu", "relu_mask_backward", "bias_grad",
         "softmax_xent", "dropout", "dropout_backward", "im2col", "col2im", "lstm_step",
         "lstm_step_backward", "gru_step", "gru_step_backward")
_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# NOTE: parameter values x optimizer steps from which a fit imports numba. Loading it costs
# 0.52 s in a fresh process with a warm cache (benchmarks/kernels.py); the fused Adam saves
# about 1.9 ns per value and step (4.49 -> 1.02 ms a step for 1.86M values), SGD 0.3 ns, so
# 3e8 is where Adam breaks even. The digits net of the README (9,610 values, under 2,000
# steps) is under 2e7: it never waits for numba; one epoch of the mnist benchmark net is 4.2e7.
WORTH_LOADING = 3e8
_deferring = 0  # how many deferred() blocks keep numba unloaded now (fit inside fit: each counts)
_deferred_work = 0.0  # the work of every deferred() job of this process so far


@functools.lru_cache(maxsize=None)
def _compiled() -> Any:
    """The ``numba_impl`` module, or None when numba cannot be imported."""
    try:
        from . import numba_impl  # noqa: PLC0415 - lazy: numba takes ~0.2 s to import
    except ImportError:
        return None
    return numba_impl


def _wanted() -> bool:
    return os.environ.get("NEURALAB_KERNELS", "").strip().lower() != "numpy"


def _use_numba() -> bool:
    if not _wanted():
        return False
    if _deferring and _compiled.cache_info().currsize == 0:
        return False  # inside deferred(), and numba not imported yet: stay on NumPy
    return _compiled() is not None


class deferred:
    """A job of ``work`` parameter values x optimizer steps: inside, ``active()`` and
    ``numba_module()`` do not import numba while this job and the deferred ones before it
    add up to less than ``WORTH_LOADING``; they give numba's kernels if it is already
    imported, the NumPy reference otherwise (the same bits). ``add`` counts work found out
    on the way (batches of unknown number).

    Example: ``with kernels.deferred(n_values * steps): train()   # a small job never waits``
    """

    def __init__(self, work: float = 0.0) -> None:
        self._work, self._holding = float(work), False

    def __enter__(self) -> "deferred":
        global _deferring
        self._holding = True
        _deferring += 1
        self.add(self._work)
        return self

    def add(self, work: float) -> bool:
        """Count ``work`` more; True when that lifts the deferral (numba may load from now on).

        Example: ``if job.add(n_values * batches_done): ...   # set numba's threads now``
        """
        global _deferring, _deferred_work
        _deferred_work += float(work)
        if self._holding and _deferred_work >= WORTH_LOADING:  # small jobs add up, too
            self._holding = False
            _deferring -= 1
            return True
        return False

    def __exit__(self, *exc: Any) -> None:
        global _deferring
        if self._holding:
            self._holding = False
            _deferring -= 1


def numba_module() -> Any:
    """The ``numba`` module when compiled kernels are in use, else None.

    Example: ``nb = kernels.numba_module(); nb and nb.get_num_threads()``
    """
    if not _use_numba():
        return None
    import numba  # noqa: PLC0415 - already imported by numba_impl
    return numba


def active() -> Any:
    """The module whose kernels run now: ``numba_impl``, or ``numpy_ref`` (numba missing or
    ``NEURALAB_KERNELS=numpy``). Read from the environment on every call.

    Example: ``kernels.active().sgd(w, g, buf, lr, wd, momentum, damp, nesterov, first)``
    """
    return _compiled() if _use_numba() else numpy_ref


def loaded() -> bool:
    """Whether ``active()`` gives numba's kernels without importing numba now: they are wanted
    and already imported (by an optimizer step, say). Inference uses kernels only then, so a
    first prediction never waits for numba's import; the bits are the same either way.

    Example: ``k = kernels.active() if kernels.loaded() else numpy_ref``
    """
    return _wanted() and _compiled.cache_info().currsize > 0 and _compiled() is not None


def get(name: str) -> Callable[..., None]:
    """The kernel ``name`` (one of ``NAMES``): numba's, or the NumPy reference.

    Example: ``kernels.get("sgd")(w, g, buf, lr, wd, momentum, damp, nesterov, first)``
    """
    if name not in NAMES:
        raise ValueError(f"unknown kernel {name!r}; expected one of {list(NAMES)}")
    return getattr(active(), name)


def usable(*arrays: Any) -> bool:
    """Whether kernels can run on these arrays: NumPy, C-contiguous, one float32/float64 dtype.

    Example: ``kernels.usable(p.data, p.grad)``
    """
    # NOTE: called for every parameter of every step, so a plain loop (no generator) and an
    # identity test before ``!=``: dtypes of one kind are mostly one object, and ``!=``
    # between two dtypes is several times slower than ``is``
    dtype = arrays[0].dtype
    if dtype not in _DTYPES:
        return False
    for a in arrays:
        if (type(a) is not np.ndarray or (a.dtype is not dtype and a.dtype != dtype)
                or not a.flags.c_contiguous):
            return False
    return True
