"""Module and Parameter: the containers every layer is built from (PyTorch's API).

A Module finds its parameters, buffers and sub-modules by looking at its own attributes, in
the order they were set, so a layer only has to assign them in ``__init__``.

Example:
    >>> class Affine(nn.Module):
    ...     def __init__(self, n):
    ...         super().__init__()
    ...         self.scale = nn.Parameter(np.ones(n, np.float32))
    ...     def forward(self, x):
    ...         return x * self.scale
    >>> [name for name, _ in Affine(3).named_parameters()]
    ['scale']
"""
from __future__ import annotations

import functools
import inspect
from collections import OrderedDict
from typing import Any, Callable, Iterator

import numpy as np

from .. import backend
from ..tensor import Tensor


class Parameter(Tensor):
    """A Tensor that is a learnable weight of a Module (``requires_grad`` is True).

    Example: ``w = nn.Parameter(np.zeros((2, 3), np.float32))``
    """

    __slots__ = ()

    def __init__(self, data: Any, requires_grad: bool = True, dtype: Any = None) -> None:
        # An array made by nn.init already has the dtype the layer asked for: keep it
        # (plain Tensor() would turn float64 into the default float32).
        if dtype is None and getattr(data, "dtype", None) is not None and data.dtype.kind == "f":
            dtype = data.dtype
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of layers and models: parameters, modes, state dicts and devices.

    Subclasses set parameters and sub-modules as attributes in ``__init__`` and write
    ``forward``; calling the module calls ``forward``.

    Example:
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> model.num_parameters()
        58
    """

    training: bool = True

    def __init__(self) -> None:
        self.training = True
        self._buffers: list[str] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Record each layer's constructor arguments (outermost __init__ only) so that
        # nl.save can store the architecture as data and nl.load can rebuild it; layers
        # need not write any serialisation code.
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None:
            return

        @functools.wraps(init)
        def recording_init(self, *args: Any, **kw: Any) -> None:
            if "_init_args" not in vars(self):
                object.__setattr__(self, "_init_args", (args, kw))
            init(self, *args, **kw)

        cls.__init__ = recording_init

    def config(self) -> dict:
        """The constructor arguments this module was built with, by name.

        Example: ``nn.Linear(3, 2).config()  # {'in_features': 3, 'out_features': 2, ...}``
        """
        args, kw = vars(self).get("_init_args", ((), {}))
        bound = inspect.signature(type(self).__init__).bind(self, *args, **kw)
        bound.apply_defaults()
        return {k: v for k, v in list(bound.arguments.items())[1:]}

    # ------------------------------------------------------------------ forward
    def forward(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover - abstract
        """Compute the output; subclasses write this and callers use ``module(x)``.

        Example: ``def forward(self, x): return F.relu(self.fc(x))``
        """
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run ``forward``; NumPy arrays passed in become Tensors as ``nl.tensor`` makes them."""
        for a in args:
            if isinstance(a, np.ndarray):
                args = tuple([_as_input(a) for a in args])
                break
        return self.forward(*args, **kwargs)

    # ------------------------------------------------------------------ discovery
    def register_buffer(self, name: str, value: Any) -> None:
        """Keep an array (e.g. a running mean) in the state dict without training it.

        Example: ``self.register_buffer("running_mean", np.zeros(16, np.float32))``
        """
        if "_buffers" not in vars(self):
            self._buffers = []
        if name not in self._buffers:
            self._buffers.append(name)
        setattr(self, name, value)

    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        """(name, sub-module) pairs of the direct sub-modules, in the order they were set.

        Example: ``[n for n, _ in model.named_children()]  # ['0', '1', '2']``
        """
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def children(self) -> Iterator["Module"]:
        """The direct sub-modules, in the order they were set.

        Example: ``list(model.children())``
        """
        for _, m in self.named_children():
            yield m

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        """This module and every sub-module, with dotted names ("" for self).

        Example: ``dict(model.named_modules()).keys()``
        """
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator["Module"]:
        """This module and every sub-module (as ``named_modules`` without the names).

        Example: ``sum(isinstance(m, nn.Linear) for m in model.modules())``
        """
        for _, m in self.named_modules():
            yield m

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """(name, parameter) pairs with PyTorch's dotted names, e.g. ``"0.weight"``.

        Example: ``[n for n, _ in model.named_parameters()]  # ['0.weight', '0.bias', ...]``
        """
        seen: set[int] = set()
        for mod_name, module in self.named_modules(prefix):
            for name, value in vars(module).items():
                if isinstance(value, Parameter) and id(value) not in seen:
                    seen.add(id(value))
                    yield (f"{mod_name}.{name}" if mod_name else name), value

    def parameters(self) -> list[Parameter]:
        """All learnable parameters (each once), in a stable order.

        Example: ``optim.SGD(model.parameters(), lr=0.1)``
        """
        return [p for _, p in self.named_parameters()]

    def named_buffers(self) -> Iterator[tuple[str, Any]]:
        """(name, array) pairs of every buffer (running statistics), with dotted names.

        Example: ``dict(model.named_buffers())["1.running_mean"]``
        """
        for mod_name, module in self.named_modules():
            for name in vars(module).get("_buffers", ()):
                yield (f"{mod_name}.{name}" if mod_name else name), getattr(module, name)

    def num_parameters(self, trainable_only: bool = False) -> int:
        """The number of scalar parameters. Example: ``nn.Linear(3, 2).num_parameters()  # 8``"""
        return sum(p.size for p in self.parameters() if p.requires_grad or not trainable_only)

    # ------------------------------------------------------------------ training state
    def zero_grad(self) -> None:
        """Forget accumulated gradients (sets each ``grad`` to None, as PyTorch's default).

        Example: ``model.zero_grad(); loss.backward()``
        """
        for p in self.parameters():
            p.grad = None

    def train(self, mode: bool = True) -> "Module":
        """Training mode (dropout on, batch norm uses batch statistics). Returns self.

        Example: ``model.train()``
        """
        for m in self.modules():
            m.training = mode
        return self

    def eval(self) -> "Module":
        """Evaluation mode (dropout off, batch norm uses running statistics). Returns self.

        Example: ``model.eval(); pred = model(X_test)``
        """
        return self.train(False)

    def apply(self, fn: Callable[["Module"], None]) -> "Module":
        """Call ``fn`` on every sub-module and then on self. Returns self.

        Example: ``model.apply(lambda m: print(type(m).__name__))``
        """
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------------ state dict
    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Parameters and buffers by PyTorch-style name, as arrays (not copies).

        Keys come in PyTorch's order: each module's parameters, then its buffers, then its
        sub-modules'. Example: ``list(nn.Linear(3, 2).state_dict())  # ['weight', 'bias']``
        """
        state: OrderedDict[str, Any] = OrderedDict()
        seen: set[int] = set()
        for mod_name, module in self.named_modules():
            prefix = f"{mod_name}." if mod_name else ""
            for name, value in vars(module).items():
                if isinstance(value, Parameter) and id(value) not in seen:
                    seen.add(id(value))
                    state[prefix + name] = value.data
            for name in vars(module).get("_buffers", ()):
                state[prefix + name] = getattr(module, name)
        return state

    def load_state_dict(self, state: dict, strict: bool = True) -> "Module":
        """Copy arrays into the parameters and buffers in place (names and shapes must match).

        Everything is checked before anything is copied, so a failed load leaves the model
        unchanged. With ``strict=False`` missing and unexpected keys are ignored.
        Example: ``model.load_state_dict(other.state_dict())``
        """
        if not hasattr(state, "items"):
            raise TypeError(f"load_state_dict expects a dict of arrays, got {type(state).__name__}")
        targets = self.state_dict()
        missing = [k for k in targets if k not in state]
        unexpected = [k for k in state if k not in targets]
        if strict and (missing or unexpected):
            problems = []
            if missing:
                problems.append(f"missing keys {missing}")
            if unexpected:
                problems.append(f"unexpected keys {unexpected}")
            raise KeyError(f"load_state_dict into {type(self).__name__}: " + "; ".join(problems)
                           + f" (the model expects {list(targets)})")
        pairs = []
        for name, value in state.items():
            if name not in targets:
                continue
            target = targets[name]
            value = value.data if isinstance(value, Tensor) else value
            if not hasattr(value, "shape"):
                value = np.asarray(value)
            value = backend.to_device(value, backend.device_of(target))
            if target.shape != value.shape:
                raise ValueError(f"load_state_dict: '{name}' has shape {tuple(value.shape)} in the "
                                 f"state dict but {tuple(target.shape)} in the model")
            pairs.append((target, value))
        for target, value in pairs:
            target[...] = value  # in place: optimizers and views keep pointing at the same array
        return self

    # ------------------------------------------------------------------ devices
    def to(self, device: str | None = None, dtype: Any = None) -> "Module":
        """Move every parameter and buffer to a device ("cpu"/"cuda") and/or float dtype.

        Example: ``model.to("cuda")``, ``model.to(dtype="float64")``. Returns self.
        Integer buffers (e.g. ``num_batches_tracked``) keep their dtype.
        """
        dev = None if device is None else backend.normalize_device(device)
        dt = None if dtype is None else np.dtype(dtype)
        if dt is not None and dt.kind != "f":
            raise TypeError(f"Module.to: dtype must be a float dtype, got {dt}")

        def move(array: Any) -> Any:
            if dev is not None:
                array = backend.to_device(array, dev)
            if dt is not None and array.dtype.kind == "f" and array.dtype != dt:
                array = array.astype(dt)
            return array

        for p in self.parameters():
            p.data = move(p.data)
            if p.grad is not None:
                p.grad = move(p.grad)
        for module in self.modules():
            for name in vars(module).get("_buffers", ()):
                setattr(module, name, move(getattr(module, name)))
        return self

    # ------------------------------------------------------------------ repr
    def extra_repr(self) -> str:
        """One line of the layer's settings, shown inside its repr.

        Example: ``def extra_repr(self): return f"{self.in_features}, {self.out_features}"``
        """
        return ""

    def __repr__(self) -> str:
        children = list(self.named_children())
        extra = self.extra_repr()
        if not children:
            return f"{type(self).__name__}({extra})"
        lines = [f"{type(self).__name__}("]
        if extra:
            lines.append("  " + extra.replace("\n", "\n  "))
        for name, child in children:
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        return "\n".join(lines) + "\n)"


def _as_input(a: Any) -> Any:
    # A NumPy array given to a module becomes a constant Tensor by the library's usual rule
    # (float data becomes the default dtype, float32), exactly as nl.tensor(a) would.
    if type(a) is np.ndarray and a.dtype == backend.get_default_dtype():
        return Tensor._make(a, False)  # NOTE: what Tensor(a) gives, without its checks (1 us a call)
    return Tensor(a) if isinstance(a, np.ndarray) else a
