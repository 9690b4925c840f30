"""Fused elementwise kernels: numba-compiled loops, with a readable NumPy twin of each.

``get(name)`` returns the compiled kernel (``numba_impl``), or the NumPy reference
(``numpy_ref``) when numba is not installed or ``NEURALAB_KERNELS=numpy`` is set;
``active()`` returns the module they come from (optimizers look it up once per step). Both
take the same arguments and do the same arithmetic per element in the same order, so they
give the same bits (``tests/test_kernels.py``). Kernels work on C-contiguous float32 or
float64 NumPy arrays (``usable`` says whether arrays qualify): 1-D for the optimizer steps,
2-D batches for the layer kernels (``bias_relu``, ``relu_mask_backward``, ``bias_grad``);
anything else, CuPy arrays included, stays on the callers' array-op code.

The recurrent steps (``lstm_step``, ``gru_step`` and their ``_backward``) take one time step's
transposed (features, N) arrays; their compiled forms call NumPy's tanh between their loops,
and their NumPy references also run CuPy arrays (functions.LSTMSequence and GRUSequence).

numba is imported on the first ``get`` (never by ``import neuralab``), and its compiled
functions are cached on disk, so only the first process on a machine compiles them.

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

__all__ = ["get", "active", "loaded", "usable", "numba_module", "NAMES"]

NAMES = ("sgd", "adam", "rmsprop", "adagrad", "bias_relu", "relu_mask_backward", "bias_grad",
         "lstm_step", "lstm_step_backward", "gru_step", "gru_step_backward")
_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


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


def numba_module() -> Any:
    """The ``numba`` module when compiled kernels are in use, else None.

    Example: ``nb = kernels.numba_module(); nb and nb.get_num_threads()``
    """
    if not _wanted() or _compiled() is None:
        return None
    import numba  # noqa: PLC0415 - already imported by numba_impl
    return numba


def active() -> Any:
    """The module whose kernels run now: ``numba_impl``, or ``numpy_ref`` (numba missing or
    ``NEURALAB_KERNELS=numpy``). Read from the environment on every call.

    Example: ``kernels.active().sgd(w, g, buf, lr, wd, momentum, damp, nesterov, first)``
    """
    impl = _compiled() if _wanted() else None
    return impl if impl is not None else numpy_ref


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
