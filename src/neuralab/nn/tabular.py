"""Layers for tables: robust input scaling, periodic numeric embeddings, NTK and ensemble linears.

These are the ingredients of RealMLP (Holzmüller, Grinsztajn & Steinwart, "Better by Default:
Strong Pre-Tuned MLPs and Boosted Trees on Tabular Data", NeurIPS 2024) and of TabM's
parameter-efficient ensemble (Gorishniy et al., "TabM: Advancing Tabular Deep Learning with
Parameter-Efficient Ensembling", ICLR 2025). Each layer only composes existing ops, so its
gradient comes from the engine; ``TabularMLP`` puts them together.

Each layer lists ``lr_factors``: per parameter, the (learning-rate, weight-decay) multipliers
RealMLP uses, read by ``TabularMLP.param_groups``.

Example:
    >>> from neuralab import nn
    >>> net = nn.TabularMLP(n_numeric=3, n_binary=2, cardinalities=[12], n_out=2, rng=0)
    >>> net(np.zeros((5, 6), np.float32)).shape
    (5, 2)
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from .. import functional as F
from .. import functions as fn
from ..tensor import Tensor, no_grad
from . import init as nn_init
from .container import ModuleList
from .layers import Dropout
from .module import Module, Parameter

__all__ = ["RobustScale", "ScaleLayer", "PeriodicEmbedding", "NTKLinear", "EnsembleLinear",
           "CategoricalEmbedding", "ParametricActivation", "TabularMLP"]


class RobustScale(Module):
    """(x - center) * scale, then the smooth clip x / sqrt(1 + (x/3)**2); statistics are buffers.

    RealMLP's preprocessing, kept inside the network so a model file and an ONNX graph carry it.
    ``fit_statistics`` sets center = median and scale = 1 / IQR (or 2 / range when the IQR is
    0; 0 for a constant column), as RealMLP does.

    Args:
        n_features: number of input columns.
        clip: apply the smooth clip (to about +-3) after scaling.

    Example:
        >>> X2 = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]], np.float32)
        >>> rs = nn.RobustScale(2).fit_statistics(X2)
        >>> rs(X2).shape
        (3, 2)
    """

    lr_factors: dict = {}

    def __init__(self, n_features: int, clip: bool = True) -> None:
        super().__init__()
        self.n_features, self.clip = int(n_features), bool(clip)
        self.register_buffer("center", np.zeros(self.n_features, np.float32))
        self.register_buffer("scale", np.ones(self.n_features, np.float32))

    def fit_statistics(self, x: Any) -> "RobustScale":
        """Set ``center``/``scale`` from training rows ``x`` (N, n_features); NaNs are ignored.

        Example: ``rs.fit_statistics(X_train)``
        """
        self.center[...], self.scale[...] = robust_statistics(x)
        return self

    def forward(self, x: Tensor) -> Tensor:
        z = (x - Tensor(self.center)) * Tensor(self.scale)
        return F.smooth_clip(z, 3.0) if self.clip else z

    def extra_repr(self) -> str:
        return f"{self.n_features}, clip={self.clip}"


def robust_statistics(x: Any) -> tuple[np.ndarray, np.ndarray]:
    """Per-column median and 1 / IQR (2 / range if the IQR is 0; 0 for constant columns).

    Example: ``center, scale = robust_statistics(X_train)``
    """
    x = np.asarray(x, dtype=np.float64)
    if x.shape[1] == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    q25, q50, q75 = np.nanquantile(x, [0.25, 0.5, 0.75], axis=0)
    iqr = q75 - q25
    half_range = 0.5 * (np.nanmax(x, axis=0) - np.nanmin(x, axis=0))
    iqr = np.where(iqr == 0.0, half_range, iqr)
    ok = np.isfinite(iqr) & (iqr != 0.0)
    scale = np.where(ok, 1.0 / np.where(ok, iqr, 1.0), 0.0)
    return np.nan_to_num(q50).astype(np.float32), scale.astype(np.float32)


class ScaleLayer(Module):
    """A learnable scale per feature, ``x * weight`` (initialised to 1): RealMLP's front scale.

    It lets the network down-weight useless columns early (trained with a 6x learning rate).

    Args:
        n_features: number of features.

    Example: ``nn.ScaleLayer(8)(x)  # same shape as x``
    """

    lr_factors = {"weight": (6.0, 6.0)}

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.n_features = int(n_features)
        self.weight = Parameter(nn_init.ones((self.n_features,)))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.weight

    def extra_repr(self) -> str:
        return f"{self.n_features}"


class PeriodicEmbedding(Module):
    """PBLD numeric embedding: periodic, bias, linear, densenet (RealMLP; cf. PLR, Gorishniy 2022).

    Each feature x becomes ``[x, W2 cos(2 pi w1 x + b1) + b2]``: ``frequencies`` periodic
    features with their own frequencies w1 ~ N(0, sigma^2) and phases b1 ~ U(-pi, pi),
    mixed by a small per-feature linear map to ``out_dim - 1`` values; the raw value is kept
    ("densenet"). Output (N, n_features * out_dim), features in order.

    Args:
        n_features: number of numeric inputs.
        frequencies: periodic features per input (16 in RealMLP-TD).
        out_dim: values per input, including the input itself (4 in RealMLP-TD).
        sigma: std of the initial frequencies (0.1).
        rng: Generator or seed for the initial weights.

    Example: ``nn.PeriodicEmbedding(3, rng=0)(x).shape  # (N, 12)``
    """

    lr_factors = {"weight_1": (0.1, 0.1), "bias_1": (0.1, 0.1), "weight_2": (0.1, 0.1),
                  "bias_2": (0.1, 0.1)}

    def __init__(self, n_features: int, frequencies: int = 16, out_dim: int = 4, sigma: float = 0.1,
                 rng: np.random.Generator | int | None = None) -> None:
        super().__init__()
        if out_dim < 2:
            raise ValueError(f"PeriodicEmbedding: out_dim must be >= 2 (the input plus at least one "
                             f"mixed value), got {out_dim}")
        rng = np.random.default_rng(rng)
        n, h, o = int(n_features), int(frequencies), int(out_dim) - 1
        self.n_features, self.frequencies, self.out_dim = n, h, int(out_dim)
        self.weight_1 = Parameter(nn_init.normal((n, h), rng, std=sigma))
        self.bias_1 = Parameter(nn_init.uniform((n, h), rng, -math.pi, math.pi))
        bound = 1.0 / math.sqrt(h)
        self.weight_2 = Parameter(nn_init.uniform((n, h, o), rng, -bound, bound))
        self.bias_2 = Parameter(nn_init.uniform((n, o), rng, -bound, bound))

    def forward(self, x: Tensor) -> Tensor:
        b, n = x.shape
        z = F.cos(x.reshape((b, n, 1)) * (self.weight_1 * (2 * math.pi)) + self.bias_1)  # (B, n, h)
        z = z.transpose(1, 0, 2) @ self.weight_2  # one small linear map per feature: (n, B, o)
        z = z.transpose(1, 0, 2) + self.bias_2
        return F.concatenate([x.reshape((b, n, 1)), z], axis=2).reshape((b, n * self.out_dim))

    def extra_repr(self) -> str:
        return f"{self.n_features}, frequencies={self.frequencies}, out_dim={self.out_dim}"


class NTKLinear(Module):
    """Linear layer in NTK parametrisation: y = x W^T / sqrt(in_features) + b, with W ~ N(0, 1).

    The 1/sqrt(fan-in) factor sits in the forward pass instead of the initialisation, so one
    learning rate suits every width (Jacot et al., 2018; RealMLP). ``data_init`` rescales W
    so the outputs have unit std on a batch and sets RealMLP's "he+5" bias: minus a random
    convex combination of 5 outputs, so each unit's kink lies among the data.

    Args:
        in_features, out_features: sizes; weight has PyTorch's shape (out, in).
        bias: learn a bias (trained with a 0.1x learning rate and no weight decay).
        rng: Generator or seed for the weights and for ``data_init``.
        ntk: False gives the standard parametrisation instead (W ~ N(0, 1/in), no factor).

    Example: ``nn.NTKLinear(16, 8, rng=0)(x).shape  # (N, 8)``
    """

    lr_factors = {"weight": (1.0, 1.0), "bias": (0.1, 0.0)}

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 rng: np.random.Generator | int | None = None, ntk: bool = True) -> None:
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.ntk = bool(ntk)
        self._rng = np.random.default_rng(rng)
        std = 1.0 if self.ntk else 1.0 / math.sqrt(max(self.in_features, 1))
        self.weight = Parameter(nn_init.normal((self.out_features, self.in_features), self._rng, std=std))
        self.bias = Parameter(nn_init.zeros((self.out_features,))) if bias else None

    def _factor(self) -> float:
        return 1.0 / math.sqrt(max(self.in_features, 1)) if self.ntk else 1.0

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self._factor(), self.bias)

    def data_init(self, x: np.ndarray) -> None:
        """Unit-std outputs on batch ``x`` and the "he+5" bias (RealMLP's initialisation).

        Example: ``layer.data_init(first_batch_inputs)``
        """
        pre = _data_init_weight(self.weight.data, x.reshape(-1, x.shape[-1]), self._factor())
        if self.bias is not None:
            self.bias.data[...] = _he5_bias(pre, self._rng)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, ntk={self.ntk}"


def _data_init_weight(weight: np.ndarray, x: np.ndarray, factor: float) -> np.ndarray:
    """Rescale ``weight`` (out, in) in place so x W^T * factor has unit std per column."""
    pre = (x @ weight.T) * factor
    std = np.maximum(pre.std(axis=0), 1e-30)
    weight /= std[:, None].astype(weight.dtype)
    return pre / std


def _he5_bias(pre: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Minus a random convex combination of 5 rows of ``pre`` (N, out), one per column."""
    rows = rng.integers(0, len(pre), size=(pre.shape[1], 5))
    w = rng.exponential(1.0, size=(pre.shape[1], 5))
    w /= w.sum(axis=1, keepdims=True)
    picked = pre[rows, np.arange(pre.shape[1])[:, None]]
    return -(picked * w).sum(axis=1)


class EnsembleLinear(Module):
    """BatchEnsemble linear layer: k members share one NTK weight, each with its own adapters.

    Member i computes ``((x * r_i) W^T / sqrt(in)) * s_i + b_i`` (Wen et al., 2020; TabM,
    Gorishniy et al., 2025): k networks for little more than one's parameters, all in one
    forward. Input (N, in) is shared by every member; (k, N, in) gives each its own.
    Output (k, N, out). r is initialised with random signs (TabM's first layer) or ones.

    Args:
        in_features, out_features: sizes; the shared weight has shape (out, in).
        k: number of ensemble members.
        random_signs: initialise r with random +-1 (so the members differ from the start).
        rng: Generator or seed.
        ntk: as ``NTKLinear``.

    Example: ``nn.EnsembleLinear(16, 8, k=4, rng=0)(x).shape  # (4, N, 8)``
    """

    lr_factors = {"weight": (1.0, 1.0), "r": (1.0, 0.0), "s": (1.0, 0.0), "bias": (0.1, 0.0)}

    def __init__(self, in_features: int, out_features: int, k: int = 4, random_signs: bool = False,
                 rng: np.random.Generator | int | None = None, ntk: bool = True) -> None:
        super().__init__()
        self.in_features, self.out_features, self.k = int(in_features), int(out_features), int(k)
        self.ntk = bool(ntk)
        self._rng = np.random.default_rng(rng)
        std = 1.0 if self.ntk else 1.0 / math.sqrt(max(self.in_features, 1))
        self.weight = Parameter(nn_init.normal((self.out_features, self.in_features), self._rng, std=std))
        r = (2.0 * self._rng.integers(0, 2, (self.k, self.in_features)) - 1.0).astype(np.float32) \
            if random_signs else nn_init.ones((self.k, self.in_features))
        self.r = Parameter(r)
        self.s = Parameter(nn_init.ones((self.k, self.out_features)))
        self.bias = Parameter(nn_init.zeros((self.k, self.out_features)))

    def _factor(self) -> float:
        return 1.0 / math.sqrt(max(self.in_features, 1)) if self.ntk else 1.0

    def forward(self, x: Tensor) -> Tensor:
        k, i, o = self.k, self.in_features, self.out_features
        h = x * self.r.reshape((k, 1, i))                        # (k, N, in)
        h = h @ (self.weight * self._factor()).T                 # (k, N, out): one shared matmul
        return h * self.s.reshape((k, 1, o)) + self.bias.reshape((k, 1, o))

    def data_init(self, x: np.ndarray) -> None:
        """Unit-std outputs (pooled over members) and a "he+5" bias per member on batch ``x``.

        Example: ``layer.data_init(first_batch_inputs)``
        """
        xr = np.broadcast_to(x, (self.k,) + x.shape[-2:]) * self.r.data[:, None, :]
        pre = _data_init_weight(self.weight.data, xr.reshape(-1, self.in_features), self._factor())
        pre = pre.reshape(self.k, -1, self.out_features)
        for m in range(self.k):
            self.bias.data[m] = _he5_bias(pre[m], self._rng)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, k={self.k}"


class CategoricalEmbedding(Module):
    """A learned vector per category of each categorical column, concatenated.

    Input: integer codes (N, n_columns), column j in 0..cardinalities[j]-1 (code 0 is kept
    for unknown and missing values by ``TabularClassifier``). Output (N, n_columns * dim).

    Args:
        cardinalities: number of codes per column.
        dim: embedding size per column (8 in RealMLP-TD).
        rng: Generator or seed for the N(0, 1) initial table.

    Example: ``nn.CategoricalEmbedding([10, 20], dim=8, rng=0)(codes).shape  # (N, 16)``
    """

    lr_factors = {"weight": (1.0, 1.0)}

    def __init__(self, cardinalities: Sequence[int], dim: int = 8,
                 rng: np.random.Generator | int | None = None) -> None:
        super().__init__()
        self.cardinalities, self.dim = [int(c) for c in cardinalities], int(dim)
        self.weight = Parameter(nn_init.normal((sum(self.cardinalities), self.dim), rng))
        self.register_buffer("offsets", np.cumsum([0] + self.cardinalities[:-1]).astype(np.int64))

    def forward(self, codes: Any) -> Tensor:
        idx = np.asarray(codes.data if isinstance(codes, Tensor) else codes).astype(np.int64)
        idx = np.clip(idx, 0, np.asarray(self.cardinalities) - 1) + self.offsets  # out of range -> last code
        out = F.embedding(idx, self.weight)                      # (N, n_columns, dim)
        return out.reshape((idx.shape[0], len(self.cardinalities) * self.dim))

    def one_hot(self, onehot: Tensor) -> Tensor:
        """The same output from one-hot blocks (N, sum(cardinalities)) instead of codes: each
        column's block times its rows of ``weight``. Equal to ``forward`` on one-hot rows, and
        differentiable in its input, which gradient explanations need (a code has no gradient).

        Example: ``emb.one_hot(Tensor(np.eye(30, dtype=np.float32)[:2]))``
        """
        parts, start = [], 0
        for card in self.cardinalities:
            parts.append(onehot[:, start:start + card] @ self.weight[start:start + card])
            start += card
        return parts[0] if len(parts) == 1 else F.concatenate(parts, axis=1)

    def extra_repr(self) -> str:
        return f"cardinalities={self.cardinalities}, dim={self.dim}"


# activations whose Function the fused parametric form reuses (others: the composite ops)
_FUSED_ACTIVATIONS = {"selu": fn.SELU, "mish": fn.Mish, "relu": fn.ReLU}


class ParametricActivation(Module):
    """x + weight * (f(x) - x), one weight per unit initialised to 1 (RealMLP's parametric act).

    Args:
        activation: "selu", "mish", "relu", ... (``F.get_activation`` names).
        n_features: number of units (the weight broadcasts over the last axis).
        parametric: learn the weight; otherwise plain ``f(x)``.

    Example: ``nn.ParametricActivation("selu", 8)(x)``
    """

    lr_factors = {"weight": (0.1, 0.1)}

    def __init__(self, activation: str = "selu", n_features: int = 1, parametric: bool = True) -> None:
        super().__init__()
        self.activation, self.n_features, self.parametric = activation, int(n_features), bool(parametric)
        self._f = F.get_activation(activation)
        self.weight = Parameter(nn_init.ones((self.n_features,))) if parametric else None

    def forward(self, x: Tensor) -> Tensor:
        if self.weight is None:
            return self._f(x)
        inner = _FUSED_ACTIVATIONS.get(self.activation)
        if inner is not None and isinstance(x, Tensor):  # one node (functions.ParametricActivation)
            return fn.ParametricActivation.apply(x, self.weight, inner=inner)
        return x + (self._f(x) - x) * self.weight

    def extra_repr(self) -> str:
        return f"{self.activation!r}, {self.n_features}, parametric={self.parametric}"


class TabularMLP(Module):
    """RealMLP-style network on encoded table rows, optionally a TabM-style ensemble of k members.

    Input columns, in order: ``n_numeric`` numbers, ``n_binary`` 0/1 columns (one-hot
    categories and missing-value flags), then one integer code per embedded categorical
    column. Numbers and flags are robust-scaled and smooth-clipped (``RobustScale``), numbers
    get ``PeriodicEmbedding``, codes get ``CategoricalEmbedding``; then a front
    ``ScaleLayer`` and ``hidden`` blocks of NTK linear, parametric activation and dropout.
    With ``k > 1`` every linear layer is an ``EnsembleLinear``; the output is (N, k * n_out),
    member by member (average them to predict).

    Args:
        n_numeric, n_binary: numbers of numeric and 0/1 input columns.
        cardinalities: number of codes of each embedded categorical column.
        n_out: outputs per member (classes, or 1 for regression).
        hidden: widths of the hidden layers.
        activation: "selu" (RealMLP-TD classification) or "mish" (regression), ...
        k: ensemble members (1: a single network).
        periodic: use PBLD embeddings for numeric columns.
        frequencies, periodic_dim, sigma: PBLD sizes and initial frequency std.
        embedding_dim: size of each categorical embedding.
        dropout: initial dropout probability (schedules change ``set_dropout``).
        front_scale, parametric: the learnable front scale and parametric activations.
        clip: smooth clipping after robust scaling.
        ntk: NTK parametrisation of the linear layers (else the standard one).
        rng: Generator or seed for every initial weight.

    Example:
        >>> net = nn.TabularMLP(4, 0, [], n_out=3, k=4, rng=0)
        >>> net(np.zeros((2, 4), np.float32)).shape
        (2, 12)
    """

    def __init__(self, n_numeric: int, n_binary: int = 0, cardinalities: Sequence[int] = (),
                 n_out: int = 1, hidden: Sequence[int] = (256, 256, 256), activation: str = "selu",
                 k: int = 1, periodic: bool = True, frequencies: int = 16, periodic_dim: int = 4,
                 sigma: float = 0.1, embedding_dim: int = 8, dropout: float = 0.15,
                 front_scale: bool = True, parametric: bool = True, clip: bool = True,
                 ntk: bool = True, rng: np.random.Generator | int | None = None) -> None:
        super().__init__()
        rng = np.random.default_rng(rng)
        self.n_numeric, self.n_binary = int(n_numeric), int(n_binary)
        self.cardinalities = [int(c) for c in cardinalities]
        self.n_out, self.k = int(n_out), int(k)
        self.scaler = RobustScale(self.n_numeric + self.n_binary, clip=clip)
        self.periodic = PeriodicEmbedding(self.n_numeric, frequencies, periodic_dim, sigma, rng) \
            if periodic and self.n_numeric else None
        self.embedding = CategoricalEmbedding(self.cardinalities, embedding_dim, rng) \
            if self.cardinalities else None
        width = (self.n_numeric * periodic_dim if self.periodic is not None else self.n_numeric) \
            + self.n_binary + len(self.cardinalities) * embedding_dim
        self.front = ScaleLayer(width) if front_scale else None
        self.linears, self.acts, self.drops = ModuleList(), ModuleList(), ModuleList()
        sizes = [width] + [int(h) for h in hidden] + [self.n_out]
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            if self.k == 1:
                self.linears.append(NTKLinear(a, b, rng=rng, ntk=ntk))
            else:
                self.linears.append(EnsembleLinear(a, b, self.k, random_signs=i == 0, rng=rng, ntk=ntk))
            if i < len(sizes) - 2:
                self.acts.append(ParametricActivation(activation, b, parametric))
                self.drops.append(Dropout(dropout, rng=rng))

    def set_dropout(self, p: float) -> None:
        """Set every dropout layer's probability (for a dropout schedule).

        Example: ``net.set_dropout(0.0)``
        """
        for d in self.drops:
            d.p = float(p)

    def features(self, x: Tensor, one_hot_codes: bool = False) -> Tensor:
        """The concatenated input representation before the front scale (N, width).

        ``one_hot_codes``: the embedded columns come as one-hot blocks, one column per code
        (``CategoricalEmbedding.one_hot``), not as codes.
        Example: ``net.features(X).shape``
        """
        n_in = self.n_numeric + self.n_binary
        z = self.scaler(x[:, :n_in]) if n_in else None
        parts = []
        if self.n_numeric:
            num = z[:, :self.n_numeric]
            parts.append(self.periodic(num) if self.periodic is not None else num)
        if self.n_binary:
            parts.append(z[:, self.n_numeric:])
        if self.embedding is not None:
            parts.append(self.embedding.one_hot(x[:, n_in:]) if one_hot_codes
                         else self.embedding(x.data[:, n_in:]))
        return parts[0] if len(parts) == 1 else F.concatenate(parts, axis=1)

    def forward(self, x: Tensor, init: bool = False, one_hot_codes: bool = False) -> Tensor:
        h = self.features(x, one_hot_codes)
        if self.front is not None:
            h = self.front(h)
        for i, linear in enumerate(self.linears):
            if init:  # RealMLP's data-dependent initialisation, layer by layer, on this batch
                linear.data_init(np.asarray(h.data))
            h = linear(h)
            if i < len(self.acts):
                h = self.drops[i](self.acts[i](h))
        if self.k > 1:  # (k, N, out) -> (N, k * out), member by member
            n = h.shape[1]
            h = h.transpose(1, 0, 2).reshape((n, self.k * self.n_out))
        return h

    def data_init(self, x: Any) -> None:
        """Initialise the linear layers from a batch of training rows (RealMLP's "std" + "he+5").

        Example: ``net.data_init(X_train[:256])``
        """
        was = self.training
        self.eval()  # no dropout while measuring
        with no_grad():
            self.forward(Tensor(np.asarray(x, dtype=np.float32)), init=True)
        self.train(was)

    def param_groups(self, lr: float, weight_decay: float) -> list[dict]:
        """Optimizer groups with RealMLP's per-parameter lr and weight-decay factors.

        Each group gets ``lr * lr_factor`` and ``weight_decay * wd_factor`` (AdamW decays by
        lr * weight_decay, so a weight's decay is the product of both factors).

        Example: ``opt = optim.AdamW(net.param_groups(0.04, 0.02), betas=(0.9, 0.95))``
        """
        groups: dict[tuple, list] = {}
        for _, module in self.named_modules():
            factors = getattr(type(module), "lr_factors", None)
            if factors is None:
                continue
            for name, value in vars(module).items():
                if isinstance(value, Parameter):
                    groups.setdefault(factors.get(name, (1.0, 1.0)), []).append(value)
        return [{"params": ps, "lr": lr * lf, "weight_decay": weight_decay * wf}
                for (lf, wf), ps in groups.items()]
