"""Optimizer: the base class every optimizer builds on (PyTorch's API), plus in-place kernels.

An optimizer holds ``param_groups``: a list of dicts, each with ``"params"`` (a list of
Parameters) and that group's hyperparameters (``"lr"``, ...). A learning-rate schedule
changes ``group["lr"]`` between steps. Per-parameter state (momentum buffers, running
averages) lives in ``optimizer.state[param]`` and is created on the first step.

Updates are done in place on ``param.data`` (the array is never replaced, so views of it,
such as a model's state dict, stay valid) and never write to ``param.grad``.

Example:
    >>> opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    >>> opt.zero_grad(); loss_fn(model(X), y).backward(); opt.step()
"""
from __future__ import annotations

import functools
import operator
import os
from typing import Any, Callable, Iterable

import numpy as np

from .. import backend, kernels
from ..kernels import numpy_ref
from ..tensor import Tensor

# ----------------------------------------------------------------------------- kernels
# An optimizer step touches every parameter several times; on a wide net those passes over
# memory, not the arithmetic, are the cost. The helpers below make each pass count
# (figures in benchmarks/README.md, "Optimizer kernels").

# NOTE: BLAS axpy kernels compute the values of a call in vector blocks with fused
# multiply-adds and the last few (past the last full block) with scalar code that rounds
# differently, so a value's bits depend on where the call's array ends. Arrays longer than
# this are handed over in slices of exactly this many values: a multiple of every x86
# kernel's block (so slice ends are never "last few" values and the bits equal one call on
# the whole array), and under OpenBLAS's 10,000 values above which axpy wakes more threads.
AXPY_BLOCK = 8192


@functools.lru_cache(maxsize=None)
def _blas() -> tuple[dict, Any]:
    """(dtype -> SciPy's BLAS axpy, a function returning that BLAS's thread count or 0).

    Loaded on the first step: SciPy is heavy to import.
    """
    try:
        from scipy.linalg import blas  # noqa: PLC0415 - lazy: keeps `import neuralab` light
    except ImportError:  # pragma: no cover - scipy is a dependency, but stay usable
        return {}, lambda: 0
    kernels = {np.dtype(np.float32): blas.saxpy, np.dtype(np.float64): blas.daxpy}
    try:
        from threadpoolctl import ThreadpoolController  # noqa: PLC0415
        libs = [lib for lib in ThreadpoolController().select(user_api="blas").lib_controllers
                if os.path.basename(os.path.dirname(lib.filepath)).startswith("scipy")]
    except (ImportError, AttributeError):  # pragma: no cover - threadpoolctl is a dependency
        libs = []
    return kernels, (libs[0].get_num_threads if len(libs) == 1 else (lambda: 0))


def axpy(alpha: float, x: Any, y: Any) -> None:
    """``y += alpha * x`` in place (``x`` and ``y`` same shape, distinct arrays).

    Example: ``axpy(-0.1, grad, param.data)  # a plain SGD step``
    """
    # NOTE: NumPy needs two passes and a temporary for this (``alpha * x``, then ``+=``);
    # BLAS axpy does it in one pass with no temporary.
    if alpha == 1.0 and x.shape == y.shape:
        y += x  # one add, in NumPy as in BLAS: the same rounding, without a BLAS call
        return
    if (type(y) is np.ndarray and type(x) is np.ndarray and x.dtype == y.dtype
            and y.flags.c_contiguous and x.flags.c_contiguous):
        kernels, blas_threads = _blas()
        fn = kernels.get(y.dtype)
        if fn is not None:
            xf, yf = x.reshape(-1), y.reshape(-1)  # views: BLAS writes into the parameter
            # one call when it stays on this thread: a short array, or SciPy's BLAS held at
            # one thread (as inside a training run, see training.threads); the same bits
            # as the slices either way (see AXPY_BLOCK)
            step = yf.size if yf.size <= AXPY_BLOCK or blas_threads() == 1 else AXPY_BLOCK
            for i in range(0, yf.size, step):
                part = yf[i:i + step]
                out = fn(xf[i:i + step], part, a=alpha)
                if out is not part:  # pragma: no cover - f2py copied (not for contiguous input)
                    part[...] = out
            return
    y += alpha * x  # CuPy arrays, odd dtypes or strided views: the plain NumPy way


class Workspace:
    """One reusable scratch buffer per (device, dtype), grown to the largest parameter.

    NOTE: temporaries like ``sqrt(v) + eps`` are written into this buffer instead of a
    fresh array each step: no allocation, and the memory stays warm in cache. Its size is
    one parameter's, not the model's.

    Example: ``ws = Workspace(); tmp = ws.get(p.data)``
    """

    def __init__(self) -> None:
        self._buffers: dict[tuple[str, np.dtype, int], Any] = {}

    def get(self, like: Any, slot: int = 0) -> Any:
        """A scratch array shaped like ``like`` (contents undefined); ``slot`` picks a second one.

        Example: ``tmp = ws.get(p.data); np.multiply(p.grad, lr, out=tmp)``
        """
        key = (backend.device_of(like), like.dtype, slot)
        buf = self._buffers.get(key)
        if buf is None or buf.size < like.size:
            buf = backend.xp_of(like).empty(like.size, dtype=like.dtype)
            self._buffers[key] = buf
        return buf[:like.size].reshape(like.shape)


# ----------------------------------------------------------------------------- base class
class Optimizer:
    """Base class: parameter groups, ``zero_grad``, ``step`` and state dicts, as in PyTorch.

    Args:
        params: an iterable of Parameters, or of dicts ``{"params": [...], "lr": ...}`` to give
            groups their own hyperparameters (missing ones come from ``defaults``).
        defaults: the optimizer's hyperparameters and their default values.

    Subclasses write ``_update(group, w, g, state)``: update the array ``w`` in place from the
    gradient ``g``, keeping buffers in ``state``. It must work element by element, because it
    is called either on one parameter or on all of a group's small parameters at once,
    flattened and concatenated (see ``flat_max_mean_size``), and do its axpys with
    ``self._axpy``, which hands BLAS one parameter's values per call in both cases, so the
    two ways give the same bits.
    A fused kernel is called as ``self._kernels.<name>`` on ``self._kernel_views(...)``
    (see ``neuralab.kernels``).

    Example:
        >>> opt = optim.SGD([{"params": body.parameters()},
        ...                  {"params": head.parameters(), "lr": 1e-3}], lr=1e-2)
        >>> [g["lr"] for g in opt.param_groups]
        [0.01, 0.001]
    """

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[Tensor, dict[str, Any]] = {}
        self._work = Workspace()
        self._flat: dict[int, dict[str, Any]] = {}  # group index -> flat buffers (see _step_flat)
        self._segments: list | None = None  # during a flat step: each parameter's (start, end)
        self._kernels = numpy_ref  # where _update's fused kernels come from: set by step
        self._last_scalars: tuple | None = None  # (key, scalars), see _reused_scalars
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of Parameters "
                            "(e.g. model.parameters()), got a single Tensor; wrap it in a list")
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__} got an empty parameter list "
                             "(does the model have parameters?)")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_kernels", None)  # a module cannot be pickled; looked up again when loaded
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._kernels = numpy_ref

    def add_param_group(self, group: dict[str, Any]) -> None:
        """Add a group of parameters with its own hyperparameters (e.g. a new head to fine-tune).

        Example: ``opt.add_param_group({"params": head.parameters(), "lr": 1e-3})``
        """
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"a parameter group must be a dict with a 'params' key, got {group!r}")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__}: parameter {i} of group "
                                f"{len(self.param_groups)} is a {type(p).__name__}, not a Tensor")
            if not p.requires_grad:
                raise ValueError(f"{type(self).__name__}: parameter {i} of group "
                                 f"{len(self.param_groups)} does not require gradients")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params) or len({id(p) for p in params}) != len(params):
            raise ValueError("some parameters appear in more than one group (or twice in one)")
        unknown = [k for k in group if k != "params" and k not in self.defaults]
        if unknown:
            raise TypeError(f"{type(self).__name__}: unknown hyperparameters {unknown} "
                            f"(expected some of {sorted(self.defaults)})")
        full = {**self.defaults, **group, "params": params}
        self._check_hyperparameters(full)
        self.param_groups.append(full)

    def _check_hyperparameters(self, group: dict[str, Any]) -> None:
        """Raise a clear error for a bad value (subclasses extend this)."""
        if not group["lr"] >= 0:
            raise ValueError(f"{type(self).__name__}: lr must be >= 0, got {group['lr']}")
        if group.get("weight_decay", 0) < 0:
            raise ValueError(f"{type(self).__name__}: weight_decay must be >= 0, "
                             f"got {group['weight_decay']}")

    def _params(self) -> list[Tensor]:
        return [p for g in self.param_groups for p in g["params"]]

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients: ``grad = None`` (PyTorch's default) or fill them with zeros.

        Example: ``opt.zero_grad(); loss.backward(); opt.step()``
        """
        for p in self._params():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.fill(0)

    def step(self) -> None:
        """Update every parameter that has a gradient, in place, from its ``grad``.

        Example: ``loss.backward(); opt.step()``
        """
        # NOTE: the kernels' module (NEURALAB_KERNELS, see neuralab.kernels) is looked up
        # once per step, not per parameter: reading the environment costs about as much as
        # a small parameter's kernel call
        self._kernels = kernels.active()
        for index, group in enumerate(self.param_groups):
            if not (self._flat_eligible(group) and self._step_flat(index, group)):
                self._step_each(group)

    def _step_each(self, group: dict[str, Any]) -> None:
        for p in group["params"]:
            if p.grad is None:
                continue  # as PyTorch: a parameter without gradient is left alone
            if p.grad.shape != p.data.shape:
                raise ValueError(f"{type(self).__name__}: a gradient of shape {p.grad.shape} "
                                 f"for a parameter of shape {p.data.shape}")
            state = self.state.get(p)
            if state is None:
                state = self.state[p] = {}
            self._update(group, p.data, p.grad, state)

    # NOTE: a deep net of small layers spends its optimizer time in Python: about ten NumPy
    # calls per parameter (benchmarks/README.md, "Figures behind the code"). For a group of
    # such parameters the step gathers weights and gradients into one flat array each, runs
    # the same update once, and copies the weights back: three more passes, over memory that
    # fits in cache, for ten times fewer calls. Large layers keep the per-parameter path,
    # where the passes over memory are the cost.
    flat_max_mean_size = 16384  # mean parameter size (values) up to which groups go flat

    def _flat_eligible(self, group: dict[str, Any]) -> bool:
        params = group["params"]
        if len(params) < 2 or self.flat_max_mean_size <= 0:
            return False
        dtype = params[0].data.dtype
        total = 0
        for p in params:
            w, g = p.data, p.grad
            if (g is None or type(w) is not np.ndarray or type(g) is not np.ndarray
                    or w.dtype != dtype or g.dtype != dtype or g.shape != w.shape):
                return False  # the per-parameter path handles (or reports) these
            total += w.size
        return total <= self.flat_max_mean_size * len(params)

    def _step_flat(self, index: int, group: dict[str, Any]) -> bool:
        """One update on all of a group's parameters at once; False to fall back per parameter.

        The per-parameter state stays what ``state_dict`` shows: its arrays are views into
        the group's flat state arrays, so both always agree.
        """
        params = group["params"]
        shapes = [p.data.shape for p in params]
        cache = self._flat.get(index)
        if cache is None or cache["shapes"] != shapes or cache["W"].dtype != params[0].data.dtype:
            ends = np.cumsum([p.data.size for p in params])
            bounds = list(zip([0, *ends[:-1]], ends))
            W = np.empty(int(ends[-1]), params[0].data.dtype)
            cache = self._flat[index] = {
                "shapes": shapes, "bounds": bounds, "W": W, "G": np.empty_like(W),
                "W_views": [W[a:b].reshape(shape) for (a, b), shape in zip(bounds, shapes)],
                "state": None, "views": None}
        state = self._flat_state(cache, params)
        if state is None:
            return False
        W, G = cache["W"], cache["G"]
        np.concatenate([p.data.reshape(-1) for p in params], out=W)
        np.concatenate([p.grad.reshape(-1) for p in params], out=G)
        self._segments = cache["bounds"]
        try:
            self._update(group, W, G, state)
        finally:
            self._segments = None
        for p, w in zip(params, cache["W_views"]):
            np.copyto(p.data, w)
        if cache["views"] is None:  # first step: give each parameter its views of the state
            self._bind_flat_state(cache, params, state)
        else:
            scalars = {k: v for k, v in state.items() if not hasattr(v, "shape")}
            for view in cache["views"]:
                view.update(scalars)
        return True

    def _flat_state(self, cache: dict[str, Any], params: list[Tensor]) -> dict[str, Any] | None:
        """The group's flat state, rebuilt from the per-parameter state when that changed."""
        current = [self.state.get(p) for p in params]
        views, state = cache["views"], cache["state"]
        if views is not None and all(c is v for c, v in zip(current, views)):
            scalars = [(k, v) for k, v in state.items() if not hasattr(v, "shape")]
            if all(c[k] == v for c in current for k, v in scalars):
                return state
        if all(not c for c in current):  # no state yet: the update creates it, flat
            cache["state"], cache["views"] = {}, None
            return cache["state"]
        # the state was loaded, or some parameter was stepped alone: pack it if it agrees
        if any(not c or c.keys() != current[0].keys() for c in current):
            return None
        flat: dict[str, Any] = {}
        for key, first in current[0].items():
            values = [c[key] for c in current]
            if hasattr(first, "shape") and first.ndim > 0:
                if any(type(v) is not np.ndarray or v.shape != s
                       for v, s in zip(values, cache["shapes"])):
                    return None
                flat[key] = np.concatenate([v.reshape(-1) for v in values]).astype(
                    cache["W"].dtype, copy=False)
            elif any(v != first for v in values):
                return None  # e.g. different step counts: keep stepping one by one
            else:
                flat[key] = first
        self._bind_flat_state(cache, params, flat)
        return flat

    def _bind_flat_state(self, cache: dict[str, Any], params: list[Tensor],
                         state: dict[str, Any]) -> None:
        views = []
        for p, shape, (a, b) in zip(params, cache["shapes"], cache["bounds"]):
            view = {k: (v[a:b].reshape(shape) if hasattr(v, "shape") else v)
                    for k, v in state.items()}
            self.state[p] = view
            views.append(view)
        cache["state"], cache["views"] = state, views

    def _update(self, group: dict[str, Any], w: Any, g: Any, state: dict[str, Any]) -> None:
        raise NotImplementedError  # pragma: no cover - abstract

    @staticmethod
    def _kernel_views(*arrays: Any) -> list | None:
        """1-D views of ``arrays`` for a fused kernel (``neuralab.kernels``), or None when a
        kernel cannot take them (CuPy arrays, strided views, other dtypes): then the
        optimizer's array-op code runs instead.

        NOTE: a kernel computes each element on its own, so running it on one parameter or
        on a flat group of them gives every value the same bits.
        """
        if not kernels.usable(*arrays):
            return None
        return [a.ravel() for a in arrays]  # views, as C order was checked; cheaper than reshape

    def _reused_scalars(self, key: tuple, make: Callable[[], tuple]) -> tuple:
        """``make()`` (a kernel's scalars), reused while ``key`` holds the same objects as before.

        NOTE: a group's parameters take the same hyperparameters in a step, and converting
        them to the arrays' dtype costs as much as a small parameter's kernel call. Reuse is
        decided by identity, not ``==``: 0.0 and -0.0 are equal but not the same scalar.
        """
        last = self._last_scalars
        if last is None or len(last[0]) != len(key) or not all(map(operator.is_, last[0], key)):
            last = self._last_scalars = (key, make())
        return last[1]

    def _axpy(self, alpha: float, x: Any, y: Any) -> None:
        """``axpy(alpha, x, y)``, one call per parameter's slice during a flat step.

        NOTE: a BLAS kernel rounds the last few values of each call its own way (see
        ``AXPY_BLOCK``); calling it on each parameter's slice of the flat arrays gives every
        value the rounding it gets when that parameter is stepped alone.
        """
        bounds = self._segments
        fn = _blas()[0].get(y.dtype) if bounds is not None and alpha != 1.0 else None
        if fn is None or type(x) is not np.ndarray or x.dtype != y.dtype:
            axpy(alpha, x, y)  # one parameter, or alpha 1 (one elementwise add, see axpy)
            return
        for a, b in bounds:
            if b - a > AXPY_BLOCK:
                axpy(alpha, x[a:b], y[a:b])
                continue
            part = y[a:b]  # the flat arrays are contiguous: BLAS writes into this view
            out = fn(x[a:b], part, a=alpha)
            if out is not part:  # pragma: no cover - f2py copied (not for contiguous input)
                part[...] = out

    def _grad_with_decay(self, g: Any, w: Any, weight_decay: float) -> Any:
        """``g + weight_decay * w`` (L2 penalty) in scratch space; ``g`` itself is never changed."""
        if not weight_decay:
            return g
        out = self._work.get(w, slot=1)
        out[...] = g
        self._axpy(weight_decay, w, out)
        return out

    # ------------------------------------------------------------------ state dicts
    def state_dict(self) -> dict[str, Any]:
        """A copy of the state, laid out as PyTorch's: state keyed by parameter index.

        ``{"state": {0: {"step": 3, "exp_avg": array, ...}, ...},
        "param_groups": [{"lr": ..., "params": [0, 1, ...]}, ...]}``

        Example: ``saved = opt.state_dict(); ...; opt.load_state_dict(saved)``
        """
        index = {id(p): i for i, p in enumerate(self._params())}
        state = {}
        for p, s in self.state.items():
            state[index[id(p)]] = {k: (v.copy() if hasattr(v, "shape") else v)
                                   for k, v in s.items()}
        groups = []
        for g in self.param_groups:
            groups.append({**{k: v for k, v in g.items() if k != "params"},
                           "params": [index[id(p)] for p in g["params"]]})
        return {"state": dict(sorted(state.items())), "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyperparameters and buffers saved by ``state_dict`` (arrays are copied).

        The optimizer must have been built over the same parameters, in the same order.
        Arrays may be NumPy arrays or anything with ``numpy()`` (e.g. torch tensors).

        Example: ``opt.load_state_dict(saved)``
        """
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"load_state_dict: the state has {len(groups)} parameter groups, "
                             f"this optimizer has {len(self.param_groups)}")
        for i, (saved, own) in enumerate(zip(groups, self.param_groups)):
            if len(saved["params"]) != len(own["params"]):
                raise ValueError(f"load_state_dict: group {i} has {len(saved['params'])} "
                                 f"parameters in the state but {len(own['params'])} here")
        params = {}
        for saved, own in zip(groups, self.param_groups):
            params.update(zip(saved["params"], own["params"]))
        new_state: dict[Tensor, dict[str, Any]] = {}
        for key, s in state_dict["state"].items():
            if int(key) not in params:
                raise KeyError(f"load_state_dict: state for parameter {key}, which no group lists")
            p = params[int(key)]
            entry = {}
            for name, value in s.items():
                if getattr(value, "ndim", 0) > 0:
                    arr = _to_param_array(value, p.data)
                    if arr.shape != p.data.shape:
                        raise ValueError(f"load_state_dict: '{name}' of parameter {key} has shape "
                                         f"{arr.shape}, the parameter has {p.data.shape}")
                    entry[name] = arr
                else:
                    value = value.item() if hasattr(value, "item") else value
                    entry[name] = int(value) if name == "step" else value
            new_state[p] = entry
        self.state = new_state
        for saved, own in zip(groups, self.param_groups):
            for k, v in saved.items():
                if k != "params":
                    own[k] = tuple(v) if isinstance(v, list) and k == "betas" else v

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines.extend(f"    {k}: {v}" for k, v in sorted(g.items()) if k != "params")
        return "\n".join(lines) + "\n)"


def _to_param_array(value: Any, like: Any) -> Any:
    """A fresh copy of ``value`` (NumPy, CuPy or torch) with ``like``'s dtype and device."""
    if hasattr(value, "detach"):  # a torch tensor, e.g. from a PyTorch optimizer's state
        value = value.detach().cpu().numpy()
    arr = np.array(backend.to_numpy(value), dtype=like.dtype)
    return backend.to_device(arr, backend.device_of(like))


__all__ = ["Optimizer", "Workspace", "axpy"]
