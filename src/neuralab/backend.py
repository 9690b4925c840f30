"""Array backends: NumPy on the CPU, CuPy on a CUDA GPU, behind one small interface.

Every op works on raw arrays through the NumPy API; CuPy implements the same API, so the
only device-specific code is here: picking the array module and moving arrays.

Example:
    >>> from neuralab import backend
    >>> backend.get_array_module("cpu").__name__
    'numpy'
"""
from __future__ import annotations

import functools
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


# ----------------------------------------------------------------------------- denormals
# Numbers below float32's smallest normal value (1.2e-38) are "denormal". Intel and AMD
# CPUs compute with them through a slow microcode path, many times slower per element
# (figures in benchmarks/README.md). Training makes them all the
# time: a momentum or Adam buffer whose gradient stays zero (a dead ReLU, a blank MNIST
# pixel) shrinks by 0.9 per step and crosses the denormal range after ~800 steps. TensorFlow
# and XLA (JAX) flush them to zero by default; PyTorch offers ``torch.set_flush_denormal``.
# The switches live in the floating-point control register of the calling thread, reached
# through C's fegetenv/fesetenv (glibc's fenv_t layout, x86-64 and AArch64 only).
@functools.lru_cache(maxsize=None)
def _fenv() -> tuple[Any, int, int] | None:
    """(libm, byte offset of the control word in fenv_t, bits that flush denormals) or None."""
    import platform  # noqa: PLC0415
    import sys  # noqa: PLC0415
    machine = platform.machine().lower()
    if not (sys.platform.startswith("linux") and machine in ("x86_64", "amd64", "aarch64", "arm64")):
        return None
    try:
        import ctypes  # noqa: PLC0415
        import ctypes.util  # noqa: PLC0415
        libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
    except OSError:  # pragma: no cover - no usable libm
        return None
    if machine in ("x86_64", "amd64"):
        return libm, 28, 0x8040  # MXCSR after the 28-byte x87 state: FTZ (bit 15), DAZ (bit 6)
    return libm, 0, 1 << 24  # FPCR first: FZ (bit 24)


def _fenv_bits(on: bool | None) -> bool | None:
    """Read (``on=None``) or set the calling thread's flush-denormals bits; None if unsupported."""
    fe = _fenv()
    if fe is None:
        return None
    import ctypes  # noqa: PLC0415
    libm, offset, bits = fe
    env = (ctypes.c_uint8 * 64)()  # larger than any fenv_t
    if libm.fegetenv(env) != 0:  # pragma: no cover
        return None
    word = int.from_bytes(bytes(env[offset:offset + 4]), "little")
    was = (word & bits) == bits
    if on is not None and on != was:
        word = (word | bits) if on else (word & ~bits)
        env[offset:offset + 4] = list(word.to_bytes(4, "little"))
        libm.fesetenv(env)
    return was


class flush_denormals:
    """Context manager: inside it, denormal floats on this thread are read and written as zero.

    ``nl.fit`` trains inside it (set ``NEURALAB_KEEP_DENORMALS=1`` to turn that off). It
    changes results only for values below 1.2e-38 in float32 (2.2e-308 in float64), and is a
    no-op where the platform has no known switch (then ``active`` is False).

    Example:
        >>> with backend.flush_denormals() as fd:
        ...     opt.step()
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.active = False
        self._was: bool | None = None

    def __enter__(self) -> "flush_denormals":
        if self.enabled:
            self._was = _fenv_bits(True)
            self.active = self._was is not None
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.active and not self._was:
            _fenv_bits(False)
        self.active = False
