"""Containers: Sequential, ModuleList and Residual.

Sub-modules are attributes named "0", "1", ... so state-dict keys read like PyTorch's
(``"0.weight"``, ``"2.bias"``).

Example:
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> list(model.state_dict())
    ['0.weight', '0.bias', '2.weight', '2.bias']
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Iterable, Iterator

import numpy as np

from ..tensor import Tensor, _grad_mode
from ._fast import no_grad_forward
from .layers import Linear
from .module import Module

__all__ = ["Sequential", "ModuleList", "Residual"]


def _check_module(owner: str, name: str, module: Any) -> Module:
    if not isinstance(module, Module):
        raise TypeError(f"{owner}: item {name} is a {type(module).__name__}, not a Module "
                        f"(did you write nn.ReLU instead of nn.ReLU()?)")
    return module


class _ModuleContainer(Module):
    """What Sequential and ModuleList share: numbered items, indexing, len, iteration."""

    def _items(self) -> list[tuple[str, Module]]:
        return list(self.named_children())

    def __len__(self) -> int:
        return len(self._items())

    def __iter__(self) -> Iterator[Module]:
        return iter([m for _, m in self._items()])

    def __getitem__(self, index: int | slice) -> Any:
        items = self._items()
        if isinstance(index, slice):
            return type(self)._from_items(items[index])
        try:
            return items[index][1]
        except (IndexError, TypeError):
            raise IndexError(f"{type(self).__name__} index {index!r} is out of range for "
                             f"{len(items)} modules") from None

    def append(self, module: Module) -> "_ModuleContainer":
        """Add a module at the end, named by its position. Returns self."""
        name = str(len(self))
        setattr(self, name, _check_module(type(self).__name__, name, module))
        return self

    @classmethod
    def _from_items(cls, items: list) -> "_ModuleContainer":
        return cls(*[m for _, m in items])


class Sequential(_ModuleContainer):
    """Modules applied one after the other; ``Sequential(OrderedDict(name=module))`` names them.

    Supports ``len``, iteration, ``model[0]``, ``model[1:]`` (a new Sequential sharing the
    modules) and ``append``.

    Example:
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> model[0].weight.shape, len(model)
        ((8, 4), 3)
    """

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], dict):
            items = list(modules[0].items())
        else:
            items = [(str(i), m) for i, m in enumerate(modules)]
        for name, module in items:
            setattr(self, str(name), _check_module("Sequential", name, module))

    @classmethod
    def _from_items(cls, items: list) -> "Sequential":
        # A slice keeps the original names (as PyTorch) and is a plain Sequential even for
        # subclasses such as MLP, whose constructor takes other arguments.
        return Sequential(OrderedDict(items))

    def forward(self, x: Any) -> Any:
        if not _grad_mode.enabled and isinstance(x, Tensor):
            # NOTE: under no_grad a plain Linear/ReLU chain runs as raw NumPy calls, without
            # module and op dispatch, which dominate a one-row prediction; same numbers bit for bit.
            out = no_grad_forward(vars(self).values(), x)
            if out is not None:
                return out
        for module in vars(self).values():  # the items in order, without building a list
            if isinstance(module, Module):
                x = module(x)
        return x

    # nn._fast runs a Sequential as a flat chain only when its forward is this one (not a
    # subclass's override); the mark tells it so without _fast importing this module.
    forward.runs_children_in_order = True


class ModuleList(_ModuleContainer):
    """A list of modules whose parameters the owner can find (a plain list would hide them).

    Example:
        >>> blocks = nn.ModuleList([nn.Linear(8, 8) for _ in range(3)])
        >>> len(blocks.parameters())
        6
    """

    def __init__(self, modules: Iterable[Module] | None = None) -> None:
        super().__init__()
        for module in modules or ():
            self.append(module)

    @classmethod
    def _from_items(cls, items: list) -> "ModuleList":
        return cls([m for _, m in items])

    def extend(self, modules: Iterable[Module]) -> "ModuleList":
        """Append each module in turn. Returns self.

        Example: ``blocks.extend([nn.Linear(8, 8), nn.ReLU()])``
        """
        for module in modules:
            self.append(module)
        return self

    def __setitem__(self, index: int, module: Module) -> None:
        name = self._items()[index][0]
        setattr(self, name, _check_module("ModuleList", name, module))

    def forward(self, *args: Any) -> Any:
        raise NotImplementedError("ModuleList has no forward(); iterate over it in your own forward")


class Residual(Module):
    """A skip connection: ``block(x) + x``, or ``block(x) + projection(x)`` when widths differ.

    The skip path needs a projection when the block changes the width. Either pass it
    (any module), or pass ``in_features`` and ``out_features``: when they differ a
    ``Linear(in_features, out_features, bias=False)`` is made (no bias: the block already
    has one, so ``rng`` and ``dtype`` are for that Linear). Without either, a width change
    is reported as an error at the first call.

    Example:
        >>> block = nn.Sequential(nn.Linear(16, 32), nn.ReLU())
        >>> res = nn.Residual(block, in_features=16, out_features=32, rng=0)
        >>> [name for name, _ in res.named_parameters()]
        ['block.0.weight', 'block.0.bias', 'projection.weight']
    """

    def __init__(self, block: Module, in_features: int | None = None,
                 out_features: int | None = None, projection: Module | None = None,
                 rng: np.random.Generator | int | None = None, dtype: Any = None) -> None:
        super().__init__()
        self.block = _check_module("Residual", "block", block)
        if projection is None and in_features is not None and out_features is not None \
                and in_features != out_features:
            projection = Linear(in_features, out_features, bias=False, rng=rng, dtype=dtype)
        if projection is not None:
            self.projection = _check_module("Residual", "projection", projection)
        else:
            self.projection = None

    def forward(self, x: Tensor) -> Tensor:
        out = self.block(x)
        skip = x if self.projection is None else self.projection(x)
        if skip.shape != out.shape:
            raise ValueError(f"Residual: the block maps shape {x.shape} to {out.shape}, but the skip "
                             f"path gives {skip.shape}; give Residual in_features and out_features "
                             f"(or projection=) so it can project the input")
        return out + skip
