"""Array backends: NumPy on the CPU, CuPy on a CUDA GPU, behind one small interface.

Every op works on raw arrays through the NumPy API; CuPy implements the same API, so the
only device-specific code is here: picking the array module and moving arrays.

Example:
    >>> from neuralab import backend
    >>> backend.get_array_module("cpu").__name__
    'numpy'
"""
from __future__ import annotations

from typing import Any

import numpy as np

_DEFAULT_DTYPE = np.dtype(np.float32)
_cupy = None  # imported on first use of "cuda" so the CPU path never needs CuPy


def get_default_dtype() -> np.dtype:
    """The float dtype new tensors get (float32 unless changed).

    Example: ``nl.backend.get_default_dtype()  # dtype('float32')``
    """
    return _DEFAULT_DTYPE


def set_default_dtype(dtype: Any) -> None:
    """Set the float dtype new tensors get, e.g. ``set_default_dtype("float64")``.

    Example: ``nl.backend.set_default_dtype("float64")``
    """
    global _DEFAULT_DTYPE
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"default dtype must be a float dtype, got {dt}")
    _DEFAULT_DTYPE = dt


def _load_cupy():
    global _cupy
    if _cupy is None:
        try:
            import cupy  # noqa: PLC0415  (optional dependency)
        except ImportError as exc:  # pragma: no cover - depends on the machine
            raise RuntimeError(
                "device='cuda' needs CuPy and a CUDA GPU: pip install 'neuralab[gpu]' "
                f"(import failed: {exc})"
            ) from None
        try:
            available = cupy.cuda.runtime.getDeviceCount() > 0
        except Exception:  # noqa: BLE001 - any CUDA runtime error means 'no GPU'
            available = False
        if not available:
            raise RuntimeError("device='cuda' was asked for, but CuPy finds no CUDA GPU")
        _cupy = cupy
    return _cupy


def cuda_is_available() -> bool:
    """True when CuPy is installed and sees a GPU.

    Example: ``if nl.backend.cuda_is_available(): model.to("cuda")``
    """
    try:
        _load_cupy()
    except RuntimeError:
        return False
    return True


def normalize_device(device: str | None) -> str:
    """Map user spellings ("cpu", "cuda", "cuda:0", "gpu") to "cpu" or "cuda".

    Example: ``normalize_device("cuda:0")  # 'cuda'``
    """
    if device is None:
        return "cpu"
    name = str(device).lower()
    if name == "cpu":
        return "cpu"
    if name in ("cuda", "gpu") or name.startswith("cuda:"):
        return "cuda"
    raise ValueError(f"unknown device {device!r}: expected 'cpu' or 'cuda'")


def get_array_module(device: str | None = "cpu"):
    """The array module for a device: numpy for "cpu", cupy for "cuda".

    Example: ``xp = get_array_module("cpu"); xp.zeros(3)``
    """
    return np if normalize_device(device) == "cpu" else _load_cupy()


def xp_of(array: Any):
    """The array module an array belongs to (numpy unless it is a CuPy array).

    Example: ``xp = xp_of(grad); xp.exp(grad)``
    """
    if isinstance(array, np.ndarray):
        return np
    if _cupy is None:  # CuPy not loaded yet, unless the array was made by CuPy directly
        return _load_cupy() if type(array).__module__.startswith("cupy") else np
    return _cupy.get_array_module(array)


def device_of(array: Any) -> str:
    """"cpu" or "cuda" for an array.

    Example: ``device_of(np.zeros(3))  # 'cpu'``
    """
    return "cpu" if xp_of(array) is np else "cuda"


def to_device(array: Any, device: str | None):
    """Move an array to a device (a no-op when it is already there).

    Example: ``to_device(np.zeros(3), "cpu")``
    """
    dev = normalize_device(device)
    if dev == "cpu":
        if isinstance(array, np.ndarray):
            return array
        get = getattr(array, "get", None)
        return get() if get is not None else np.asarray(array)
    return _load_cupy().asarray(array)


def to_numpy(array: Any) -> np.ndarray:
    """A NumPy copy (or view) of any backend array.

    Example: ``to_numpy(t.data)``
    """
    return to_device(array, "cpu")
