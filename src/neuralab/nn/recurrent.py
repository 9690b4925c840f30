"""Recurrent layers: RNN, LSTM and GRU (multi-layer, bidirectional, batch-first option).

PyTorch's gate orders (LSTM i, f, g, o; GRU r, z, n) and parameter names
(``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``, ``..._reverse``), so a
PyTorch state dict loads one to one. Each layer and direction is one op over the whole
sequence (``functions.RNNSequence``, ``LSTMSequence``, ``GRUSequence``), whose backward is
backpropagation through time.

Example:
    >>> lstm = nn.LSTM(8, 16, num_layers=2, batch_first=True, rng=0)
    >>> out, (h_n, c_n) = lstm(nl.zeros(4, 10, 8))
    >>> out.shape, h_n.shape
    ((4, 10, 16), (2, 4, 16))
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import backend
from .. import functional as F
from .. import functions as fn
from ..tensor import Tensor
from . import init
from .module import Module, Parameter

__all__ = ["RNN", "LSTM", "GRU"]


class _RNNBase(Module):
    """Parameters, shapes and the layer/direction loop shared by RNN, LSTM and GRU."""

    gates = 1  # how many gate blocks the weights stack (LSTM 4, GRU 3)

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 rng: np.random.Generator | int | None = None, dtype: Any = None) -> None:
        super().__init__()
        name = type(self).__name__
        for label, n in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
                raise ValueError(f"{name}: {label} must be a positive integer, got {n!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"{name}: dropout must be in [0, 1), got {dropout!r}")
        self.input_size, self.hidden_size, self.num_layers = int(input_size), int(hidden_size), int(num_layers)
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional = bidirectional
        self.rng = np.random.default_rng(rng)
        dtype = backend.get_default_dtype() if dtype is None else np.dtype(dtype)
        # PyTorch's reset_parameters: every weight and bias U(-1/sqrt(hidden), 1/sqrt(hidden)).
        k = 1.0 / math.sqrt(hidden_size)
        g = self.gates * hidden_size
        for layer in range(num_layers):
            in_size = input_size if layer == 0 else hidden_size * self.num_directions
            for suffix in self._suffixes(layer):
                setattr(self, f"weight_ih{suffix}", Parameter(init.uniform((g, in_size), self.rng, -k, k, dtype=dtype)))
                setattr(self, f"weight_hh{suffix}", Parameter(init.uniform((g, hidden_size), self.rng, -k, k, dtype=dtype)))
                if bias:
                    setattr(self, f"bias_ih{suffix}", Parameter(init.uniform((g,), self.rng, -k, k, dtype=dtype)))
                    setattr(self, f"bias_hh{suffix}", Parameter(init.uniform((g,), self.rng, -k, k, dtype=dtype)))

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _suffixes(self, layer: int) -> list[str]:
        return [f"_l{layer}"] + ([f"_l{layer}_reverse"] if self.bidirectional else [])

    def _weights(self, suffix: str) -> tuple:
        w = (getattr(self, f"weight_ih{suffix}"), getattr(self, f"weight_hh{suffix}"))
        if self.bias:
            w += (getattr(self, f"bias_ih{suffix}"), getattr(self, f"bias_hh{suffix}"))
        return w

    def _initial(self, state: Any, x: Tensor, what: str) -> Tensor:
        shape = (self.num_layers * self.num_directions, x.shape[1], self.hidden_size)
        if state is None:
            return Tensor._make(backend.xp_of(x.data).zeros(shape, dtype=x.dtype), False)
        if tuple(state.shape) != shape:
            raise ValueError(f"{type(self).__name__}: {what} must have shape {shape} "
                             f"(layers * directions, batch, hidden_size), got {tuple(state.shape)}")
        return state

    def _run(self, x: Tensor, states: list) -> tuple[Tensor, list]:
        """Run every layer and direction; returns the last layer's output and the final states."""
        name = type(self).__name__
        unbatched = x.ndim == 2
        if unbatched:
            x = x.reshape(x.shape[0], 1, x.shape[1])
            states = [None if s is None else s.reshape(s.shape[0], 1, s.shape[1]) for s in states]
        if x.ndim != 3 or x.shape[-1] != self.input_size:
            layout = "(N, T, input_size)" if self.batch_first else "(T, N, input_size)"
            raise ValueError(f"{name} expects input of shape {layout} with input_size={self.input_size}, "
                             f"got {x.shape}")
        if self.batch_first and not unbatched:
            x = x.transpose(1, 0, 2)
        states = [self._initial(s, x, what) for s, what in zip(states, ("h0", "c0"))]
        finals: list[list] = [[] for _ in states]
        for layer in range(self.num_layers):
            if layer and self.dropout and self.training:
                x = F.dropout(x, self.dropout, training=True, rng=self.rng)
            outs = []
            for d, suffix in enumerate(self._suffixes(layer)):
                idx = layer * self.num_directions + d
                seq = x if d == 0 else x[::-1]  # the reverse direction reads the sequence backwards
                # NOTE: each layer and direction keeps its op's big scratch arrays (gates, states)
                # for the next call, saving their page faults (see functions.Workspace)
                ws = self.__dict__.setdefault("_workspaces", {}).setdefault(idx, fn.Workspace())
                out, last = self._cell(seq, [s[idx] for s in states], self._weights(suffix), ws)
                outs.append(out if d == 0 else out[::-1])
                for f, s in zip(finals, last):
                    f.append(s)
            x = outs[0] if len(outs) == 1 else F.concatenate(outs, axis=-1)
        if self.batch_first and not unbatched:
            x = x.transpose(1, 0, 2)
        finals = [F.stack(f, axis=0) for f in finals]
        if unbatched:
            x = x.reshape(x.shape[0], x.shape[2])
            finals = [f.reshape(f.shape[0], f.shape[2]) for f in finals]
        return x, finals

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, bias={self.bias}, "
                f"batch_first={self.batch_first}, dropout={self.dropout}, bidirectional={self.bidirectional}")


class RNN(_RNNBase):
    """Elman RNN, h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh) (or relu), as PyTorch's.

    ``forward(x, h0=None) -> (output, h_n)``; x is (T, N, input_size), or (N, T, input_size)
    with ``batch_first=True``; h0 and h_n are (num_layers * directions, N, hidden_size).
    Example: ``out, h_n = nn.RNN(8, 16, batch_first=True, rng=0)(nl.zeros(4, 10, 8))``
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False,
                 rng: np.random.Generator | int | None = None, dtype: Any = None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, rng, dtype)

    def _cell(self, x, states, weights, ws):
        out = fn.RNNSequence.apply(x, states[0], *weights, nonlinearity=self.nonlinearity)
        return out, [out[-1]]

    def forward(self, x: Tensor, h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
        out, (h_n,) = self._run(x, [h0])
        return out, h_n


class LSTM(_RNNBase):
    """Long short-term memory, PyTorch's gate order (i, f, g, o) and parameter names.

    ``forward(x, (h0, c0)=None) -> (output, (h_n, c_n))``; layouts as ``nn.RNN``.
    Example: ``out, (h_n, c_n) = nn.LSTM(8, 16, bidirectional=True, rng=0)(nl.zeros(10, 4, 8))``
    """

    gates = 4

    def _cell(self, x, states, weights, ws):
        hc = fn.LSTMSequence.apply(x, states[0], states[1], *weights, workspace=ws)  # (T, N, 2H): h and c
        hid = self.hidden_size
        return hc[:, :, :hid], [hc[-1, :, :hid], hc[-1, :, hid:]]

    def forward(self, x: Tensor, hx: tuple | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        h0, c0 = (None, None) if hx is None else hx
        out, (h_n, c_n) = self._run(x, [h0, c0])
        return out, (h_n, c_n)


class GRU(_RNNBase):
    """Gated recurrent unit, PyTorch's gate order (r, z, n) and parameter names.

    ``forward(x, h0=None) -> (output, h_n)``; layouts as ``nn.RNN``.
    Example: ``out, h_n = nn.GRU(1, 32, batch_first=True, rng=0)(nl.zeros(4, 40, 1))``
    """

    gates = 3

    def _cell(self, x, states, weights, ws):
        out = fn.GRUSequence.apply(x, states[0], *weights, workspace=ws)
        return out, [out[-1]]

    def forward(self, x: Tensor, h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
        out, (h_n,) = self._run(x, [h0])
        return out, h_n
