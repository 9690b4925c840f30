"""One table over every primitive op and functional: finite differences, PyTorch, dtypes.

Each case is ``(id, neuralab fn, torch fn or None when the same code works for both, args)``.
Args are float64 NumPy arrays (inputs that take a gradient) or ``Const`` (constants: class
targets, masks, weights). Every case is checked three ways:
- ``nl.gradcheck`` in float64 (central differences);
- forward values and gradients against PyTorch in float64, rtol 1e-6;
- in float32, the output and every gradient stay float32 (no silent float64 promotion).
"""
from __future__ import annotations

import numpy as np
import pytest

import neuralab as nl
from neuralab import functional as F

RTOL, ATOL = 1e-6, 1e-10


class Const:
    """An argument that takes no gradient (targets, masks, class weights)."""

    def __init__(self, value):
        self.value = np.asarray(value)


_rng = np.random.default_rng(1234)


def R(*shape, low=None):
    """A random float64 input; ``low`` keeps it positive (log, sqrt, fractional powers)."""
    if low is not None:
        return _rng.uniform(low, 2.0, shape)
    return _rng.standard_normal(shape)


def probs(*shape):
    p = _rng.uniform(0.1, 1.0, shape)
    return p / p.sum(axis=-1, keepdims=True)


CASES: list = []


def case(name, nl_fn, torch_fn, *args):
    CASES.append((name, nl_fn, torch_fn, args))


# --------------------------------------------------------------------------- arithmetic
BROADCAST_PAIRS = [((3, 4), (3, 4)), ((2, 3, 4), (4,)), ((3, 1), (1, 4)),
                   ((2, 1, 3), (4, 1)), ((), (3,)), ((2, 3), ())]
for sa, sb in BROADCAST_PAIRS:
    tag = f"{sa}x{sb}"
    case(f"add{tag}", lambda a, b: a + b, None, R(*sa), R(*sb))
    case(f"sub{tag}", lambda a, b: a - b, None, R(*sa), R(*sb))
    case(f"mul{tag}", lambda a, b: a * b, None, R(*sa), R(*sb))
    case(f"div{tag}", lambda a, b: a / b, None, R(*sa), R(*sb, low=0.5))
    case(f"pow_tensor{tag}", lambda a, b: a ** b, None, R(*sa, low=0.5), R(*sb))
    case(f"maximum{tag}", F.maximum, lambda a, b: __import__("torch").maximum(a, b), R(*sa), R(*sb))
    case(f"minimum{tag}", F.minimum, lambda a, b: __import__("torch").minimum(a, b), R(*sa), R(*sb))

for shape in [(5,), (3, 4)]:
    case(f"radd{shape}", lambda a: 2.5 + a, None, R(*shape))
    case(f"rsub{shape}", lambda a: 2.5 - a, None, R(*shape))
    case(f"rmul{shape}", lambda a: a * 3.0 * a, None, R(*shape))
    case(f"rdiv{shape}", lambda a: 3.0 / a, None, R(*shape, low=0.5))
    case(f"rpow{shape}", lambda a: 2.0 ** a, None, R(*shape))
    case(f"neg{shape}", lambda a: -a, None, R(*shape))
    for p in (2, 3, 0.5, -1.5):
        case(f"pow{p}{shape}", lambda a, p=p: a ** p, None, R(*shape, low=0.5))

# --------------------------------------------------------------------------- matmul
for sa, sb in [((4,), (4,)), ((3, 4), (4,)), ((4,), (4, 5)), ((3, 4), (4, 5)),
               ((2, 3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)), ((2, 1, 3, 4), (5, 4, 2)),
               ((4,), (2, 4, 5)), ((2, 3, 4), (4,)), ((3, 4), (2, 4, 2))]:
    case(f"matmul{sa}@{sb}", lambda a, b: a @ b, None, R(*sa), R(*sb))

# --------------------------------------------------------------------------- elementwise
UNARY = {
    "exp": (lambda x: x.exp(), None, None),
    "log": (lambda x: x.log(), None, 0.3),
    "sqrt": (lambda x: x.sqrt(), None, 0.3),
    "abs": (lambda x: x.abs(), None, None),
    "clip": (lambda x: x.clip(-0.5, 0.7), lambda x: x.clip(-0.5, 0.7), None),
    "clip_min": (lambda x: x.clip(min=0.2), lambda x: x.clip(min=0.2), None),
    "clip_max": (lambda x: x.clip(max=0.2), lambda x: x.clip(max=0.2), None),
    "relu": (F.relu, lambda x: x.relu(), None),
    "relu_method": (lambda x: x.relu(), None, None),
    "sigmoid": (F.sigmoid, lambda x: x.sigmoid(), None),
    "tanh": (F.tanh, lambda x: x.tanh(), None),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.1),
                   lambda x: __import__("torch").nn.functional.leaky_relu(x, 0.1), None),
    "gelu": (F.gelu, lambda x: __import__("torch").nn.functional.gelu(x), None),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"),
                  lambda x: __import__("torch").nn.functional.gelu(x, approximate="tanh"), None),
    # step's oracle: the Heaviside function with an explicit zero gradient
    "step": (F.step, lambda x: (x >= 0).to(x.dtype) + 0 * x, None),
}
for name, (nl_fn, torch_fn, low) in UNARY.items():
    for shape in [(5,), (3, 4), (2, 3, 4)]:
        case(f"{name}{shape}", nl_fn, torch_fn, R(*shape, low=low))

# the tabular ops (RealMLP's activations and periodic embeddings)
TABULAR_UNARY = {
    "cos": (F.cos, lambda x: x.cos()),
    "selu": (F.selu, lambda x: __import__("torch").nn.functional.selu(x)),
    "mish": (F.mish, lambda x: __import__("torch").nn.functional.mish(x)),
    "smooth_clip": (F.smooth_clip, lambda x: x / (1 + (x / 3) ** 2).sqrt()),
}
for name, (nl_fn, torch_fn) in TABULAR_UNARY.items():
    for shape in [(5,), (3, 4)]:
        case(f"{name}{shape}", nl_fn, torch_fn, R(*shape) * 3)

# --------------------------------------------------------------------------- reductions
for red in ("sum", "mean", "max", "min"):
    for axis in (None, 0, -1, (0, 2), 1):
        for keepdims in (False, True):
            case(f"{red}(axis={axis},keepdims={keepdims})",
                 lambda x, r=red, a=axis, k=keepdims: getattr(x, r)(axis=a, keepdims=k),
                 lambda x, r=red, a=axis, k=keepdims: _torch_reduce(x, r, a, k),
                 R(2, 3, 4))
    case(f"{red}(1-d)", lambda x, r=red: getattr(x, r)(), lambda x, r=red: _torch_reduce(x, r, None, False),
         R(7))
case("var(axis=0)", lambda x: x.var(axis=0), lambda x: x.var(dim=0, unbiased=False), R(5, 3))
case("var(all,ddof=1)", lambda x: x.var(ddof=1), lambda x: x.var(), R(4, 3))


def _torch_reduce(x, red, axis, keepdims):
    dim = tuple(range(x.ndim)) if axis is None else axis
    if red == "sum":
        return x.sum(dim=dim, keepdim=keepdims)
    if red == "mean":
        return x.mean(dim=dim, keepdim=keepdims)
    return x.amax(dim=dim, keepdim=keepdims) if red == "max" else x.amin(dim=dim, keepdim=keepdims)


# --------------------------------------------------------------------------- shapes
case("reshape(6,4)", lambda x: x.reshape(6, 4), None, R(2, 3, 4))
case("reshape(-1)", lambda x: x.reshape((-1,)), None, R(2, 3, 4))
case("flatten(1)", lambda x: x.flatten(1), None, R(2, 3, 4))
case("transpose()", lambda x: x.transpose(), lambda x: x.permute(2, 1, 0), R(2, 3, 4))
case("transpose(1,0,2)", lambda x: x.transpose(1, 0, 2), lambda x: x.permute(1, 0, 2), R(2, 3, 4))
case("transpose(2,0,1)", lambda x: x.transpose((2, 0, 1)), lambda x: x.permute(2, 0, 1), R(2, 3, 4))
case("T", lambda x: x.T, lambda x: x.T, R(3, 5))

REPEATS = np.array([0, 2, 0, 3, 2])
MASK = R(4, 5) > 0
INDEXES = {
    "slice": (slice(1, 3),),
    "step_slice": (slice(None), slice(None, None, 2)),
    "int": (1,),
    "ellipsis_int": (Ellipsis, 0),
    "newaxis": (None, slice(1, 3)),
    "int_array_repeats": (REPEATS,),
    "int_arrays_pair": (np.array([0, 1, 1, 3]), np.array([2, 2, 2, 0])),
    "mixed_slice_array": (slice(None), np.array([4, 4, 1])),
    "bool_mask": (MASK,),
    "bool_rows": (np.array([True, False, True, True]),),
}


def _torch_index(index):
    import torch
    return tuple(torch.as_tensor(i) if isinstance(i, np.ndarray) else i for i in index)


for name, index in INDEXES.items():
    case(f"getitem[{name}]", lambda x, i=index: x[i if len(i) > 1 else i[0]],
         lambda x, i=index: x[_torch_index(i) if len(i) > 1 else _torch_index(i)[0]], R(4, 5))
case("getitem[negative_step]", lambda x: x[::-1, 1:], lambda x: x.flip(0)[:, 1:], R(4, 5))
case("getitem[list]", lambda x: x[[2, 0, 2]], lambda x: x[[2, 0, 2]], R(4, 5))

for axis in (0, 1, -1):
    case(f"concatenate(axis={axis})", lambda a, b, c, ax=axis: nl.concatenate([a, b, c], axis=ax),
         lambda a, b, c, ax=axis: __import__("torch").cat([a, b, c], dim=ax),
         R(2, 3), R(2, 3), R(2, 3))
    case(f"stack(axis={axis})", lambda a, b, ax=axis: nl.stack([a, b], axis=ax),
         lambda a, b, ax=axis: __import__("torch").stack([a, b], dim=ax), R(2, 3), R(2, 3))
case("concatenate(uneven)", lambda a, b: nl.concatenate([a, b], axis=1),
     lambda a, b: __import__("torch").cat([a, b], dim=1), R(2, 1), R(2, 4))

# --------------------------------------------------------------------------- fused layers
def _tf():
    import torch.nn.functional as tf
    return tf


case("linear", F.linear, lambda x, w, b: _tf().linear(x, w, b), R(5, 3), R(4, 3), R(4))
case("linear(no bias)", F.linear, lambda x, w: _tf().linear(x, w), R(5, 3), R(4, 3))
case("linear(batched)", F.linear, lambda x, w, b: _tf().linear(x, w, b), R(2, 5, 3), R(4, 3), R(4))
case("linear(1-d input)", F.linear, lambda x, w, b: _tf().linear(x, w, b), R(3), R(4, 3), R(4))
for shape, axis in [((3, 4), -1), ((3, 4), 0), ((2, 3, 4), 1), ((5,), 0)]:
    case(f"softmax{shape}axis{axis}", lambda x, a=axis: F.softmax(x, axis=a),
         lambda x, a=axis: _tf().softmax(x, dim=a), R(*shape))
    case(f"log_softmax{shape}axis{axis}", lambda x, a=axis: F.log_softmax(x, axis=a),
         lambda x, a=axis: _tf().log_softmax(x, dim=a), R(*shape))
    case(f"softmax_method{shape}axis{axis}", lambda x, a=axis: x.softmax(axis=a),
         lambda x, a=axis: x.softmax(dim=a), R(*shape))

# --------------------------------------------------------------------------- losses
TARGETS = Const(np.array([0, 3, 1, 3, 2]))
CLASS_W = Const(np.array([0.5, 2.0, 1.0, 3.0]))
SAMPLE_W = np.array([1.0, 0.5, 2.0, 0.0, 1.5])
for reduction in ("mean", "sum", "none"):
    for ls in (0.0, 0.1):
        case(f"cross_entropy(int,{reduction},ls={ls})",
             lambda z, t, r=reduction, s=ls: F.cross_entropy(z, t, reduction=r, label_smoothing=s),
             lambda z, t, r=reduction, s=ls: _tf().cross_entropy(z, t, reduction=r, label_smoothing=s),
             R(5, 4), TARGETS)
        case(f"cross_entropy(int,weight,{reduction},ls={ls})",
             lambda z, t, w, r=reduction, s=ls: F.cross_entropy(z, t, weight=w, reduction=r,
                                                                 label_smoothing=s),
             lambda z, t, w, r=reduction, s=ls: _tf().cross_entropy(z, t, weight=w, reduction=r,
                                                                    label_smoothing=s),
             R(5, 4), TARGETS, CLASS_W)
        case(f"cross_entropy(probs,weight,{reduction},ls={ls})",
             lambda z, p, w, r=reduction, s=ls: F.cross_entropy(z, p, weight=w, reduction=r,
                                                                 label_smoothing=s),
             lambda z, p, w, r=reduction, s=ls: _tf().cross_entropy(z, p, weight=w, reduction=r,
                                                                    label_smoothing=s),
             R(5, 4), Const(probs(5, 4)), CLASS_W)
    case(f"cross_entropy(probs,{reduction})",
         lambda z, p, r=reduction: F.cross_entropy(z, p, reduction=r),
         lambda z, p, r=reduction: _tf().cross_entropy(z, p, reduction=r), R(5, 4), Const(probs(5, 4)))
case("cross_entropy(1-d logits)", F.cross_entropy, lambda z, t: _tf().cross_entropy(z, t),
     R(4), Const(np.array(2)))
for reduction in ("mean", "sum"):
    # sample_weight: a weighted mean over samples (sum(w_i l_i) / sum(w_i)) or a weighted sum
    case(f"cross_entropy(sample_weight,{reduction})",
         lambda z, t, r=reduction: F.cross_entropy(z, t, reduction=r, sample_weight=SAMPLE_W),
         lambda z, t, r=reduction: _weighted(_tf().cross_entropy(z, t, reduction="none"), r),
         R(5, 4), TARGETS)
    case(f"mse_loss(sample_weight,{reduction})",
         lambda p, t, r=reduction: F.mse_loss(p, t, reduction=r, sample_weight=SAMPLE_W),
         lambda p, t, r=reduction: _weighted(_tf().mse_loss(p, t, reduction="none"), r),
         R(5, 2), Const(R(5, 2)))


def _weighted(losses, reduction):
    import torch
    w = torch.tensor(SAMPLE_W, dtype=losses.dtype).reshape((-1,) + (1,) * (losses.ndim - 1))
    total = (losses * w).sum()
    if reduction == "sum":
        return total
    return total / (w.sum() * (losses.numel() // losses.shape[0]))


for reduction in ("mean", "sum", "none"):
    case(f"bce_with_logits({reduction})",
         lambda z, t, r=reduction: F.binary_cross_entropy_with_logits(z, t, reduction=r),
         lambda z, t, r=reduction: _tf().binary_cross_entropy_with_logits(z, t, reduction=r),
         R(6), Const(_rng.uniform(0, 1, 6)))
    case(f"bce_with_logits(weight,pos_weight,{reduction})",
         lambda z, t, w, pw, r=reduction: F.binary_cross_entropy_with_logits(
             z, t, weight=w, pos_weight=pw, reduction=r),
         lambda z, t, w, pw, r=reduction: _tf().binary_cross_entropy_with_logits(
             z, t, weight=w, pos_weight=pw, reduction=r),
         R(3, 4), Const((R(3, 4) > 0).astype(float)), Const(_rng.uniform(0.5, 2, 4)),
         Const(_rng.uniform(0.5, 3, 4)))
    case(f"bce_with_logits(weight,{reduction})",
         lambda z, t, w, r=reduction: F.binary_cross_entropy_with_logits(z, t, weight=w, reduction=r),
         lambda z, t, w, r=reduction: _tf().binary_cross_entropy_with_logits(z, t, weight=w,
                                                                             reduction=r),
         R(3, 4), Const(_rng.uniform(0, 1, (3, 4))), Const(_rng.uniform(0.5, 2, (3, 1))))
    for shape in [(6,), (3, 4)]:
        case(f"mse_loss{shape}({reduction})", lambda p, t, r=reduction: F.mse_loss(p, t, reduction=r),
             lambda p, t, r=reduction: _tf().mse_loss(p, t, reduction=r), R(*shape), R(*shape))
        case(f"l1_loss{shape}({reduction})", lambda p, t, r=reduction: F.l1_loss(p, t, reduction=r),
             lambda p, t, r=reduction: _tf().l1_loss(p, t, reduction=r), R(*shape), R(*shape))
        case(f"huber_loss{shape}({reduction})",
             lambda p, t, r=reduction: F.huber_loss(p, t, delta=0.8, reduction=r),
             lambda p, t, r=reduction: _tf().huber_loss(p, t, delta=0.8, reduction=r),
             R(*shape) * 1.5, R(*shape))

# --------------------------------------------------------------------------- norms, dropout
RUN_MEAN, RUN_VAR = _rng.standard_normal(3), _rng.uniform(0.5, 2, 3)
for shape in [(6, 3), (4, 3, 5)]:
    case(f"batch_norm(train){shape}",
         lambda x, g, b: F.batch_norm(x, RUN_MEAN.copy(), RUN_VAR.copy(), g, b, training=True),
         lambda x, g, b: _tf().batch_norm(x, _t64(RUN_MEAN), _t64(RUN_VAR), g, b, training=True),
         R(*shape), R(3), R(3))
    case(f"batch_norm(train,no affine){shape}",
         lambda x: F.batch_norm(x, None, None, training=True),
         lambda x: _tf().batch_norm(x, None, None, training=True), R(*shape))
    case(f"batch_norm(eval){shape}",
         lambda x, g, b: F.batch_norm(x, RUN_MEAN, RUN_VAR, g, b, training=False),
         lambda x, g, b: _tf().batch_norm(x, _t64(RUN_MEAN), _t64(RUN_VAR), g, b, training=False),
         R(*shape), R(3), R(3))
case("layer_norm(4,5)", lambda x, g, b: F.layer_norm(x, 5, g, b),
     lambda x, g, b: _tf().layer_norm(x, (5,), g, b), R(4, 5), R(5), R(5))
case("layer_norm(2,3,4)/(3,4)", lambda x, g, b: F.layer_norm(x, (3, 4), g, b),
     lambda x, g, b: _tf().layer_norm(x, (3, 4), g, b), R(2, 3, 4), R(3, 4), R(3, 4))
case("layer_norm(no affine)", lambda x: F.layer_norm(x, 4), lambda x: _tf().layer_norm(x, (4,)),
     R(3, 4))
for p in (0.3, 0.6):
    # the same mask as neuralab's: a fresh Generator(0) drawn over the input's shape
    case(f"dropout(p={p})", lambda x, p=p: F.dropout(x, p, rng=np.random.default_rng(0)),
         lambda x, p=p: x * _t64((np.random.default_rng(0).random(x.shape) >= p) / (1 - p)),
         R(4, 5))
case("dropout(eval)", lambda x: F.dropout(x, 0.5, training=False), lambda x: x * 1, R(4, 5))


def _t64(a):
    import torch
    return torch.tensor(np.asarray(a), dtype=torch.float64)


# --------------------------------------------------------------------------- helpers
IDS = [c[0] for c in CASES]
assert len(set(IDS)) == len(IDS), "duplicate case ids"


def _nl_args(args, dtype):
    out = []
    for a in args:
        if isinstance(a, Const):
            v = a.value
            out.append(nl.tensor(v, dtype=dtype if v.dtype.kind == "f" else None))
        else:
            out.append(nl.tensor(a, dtype=dtype, requires_grad=True))
    return out


def _torch_args(args):
    import torch
    out = []
    for a in args:
        if isinstance(a, Const):
            out.append(torch.tensor(a.value))
        else:
            out.append(torch.tensor(a, dtype=torch.float64, requires_grad=True))
    return out


@pytest.mark.parametrize("name,nl_fn,torch_fn,args", CASES, ids=IDS)
def test_gradcheck(name, nl_fn, torch_fn, args):
    assert nl.gradcheck(nl_fn, *_nl_args(args, np.float64))


@pytest.mark.parametrize("name,nl_fn,torch_fn,args", CASES, ids=IDS)
def test_matches_torch(name, nl_fn, torch_fn, args):
    torch = pytest.importorskip("torch")
    xs = _nl_args(args, np.float64)
    ts = _torch_args(args)
    out = nl_fn(*xs)
    t_out = (torch_fn or nl_fn)(*ts)
    assert out.shape == tuple(t_out.shape)
    np.testing.assert_allclose(out.numpy(), t_out.detach().numpy(), rtol=RTOL, atol=ATOL)
    r = np.random.default_rng(0).standard_normal(out.shape)
    (out * nl.tensor(r, dtype=np.float64)).sum().backward()
    (t_out * torch.tensor(r)).sum().backward()
    for i, (x, t) in enumerate(zip(xs, ts)):
        if not x.requires_grad:
            continue
        t_grad = np.zeros(x.shape) if t.grad is None else t.grad.numpy()
        assert x.grad is not None, f"input {i} got no gradient"
        assert x.grad.shape == x.shape
        np.testing.assert_allclose(x.grad, t_grad, rtol=RTOL, atol=ATOL, err_msg=f"input {i}")


@pytest.mark.parametrize("name,nl_fn,torch_fn,args", CASES, ids=IDS)
def test_float32_stays_float32(name, nl_fn, torch_fn, args):
    xs = _nl_args(args, np.float32)
    out = nl_fn(*xs)
    assert out.dtype == np.float32
    (out * nl.tensor(np.ones(out.shape))).sum().backward()
    for x in xs:
        if x.requires_grad:
            assert x.grad is not None and x.grad.dtype == np.float32, x.grad.dtype
            assert x.grad.shape == x.shape


# --------------------------------------------------------------------------- beyond the table
def test_max_ties_split_gradient_like_torch_amax():
    torch = pytest.importorskip("torch")
    data = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    for axis in (None, 1):
        x = nl.tensor(data, dtype="float64", requires_grad=True)
        t = torch.tensor(data, requires_grad=True)
        x.max(axis=axis).sum().backward()
        (t.amax() if axis is None else t.amax(dim=axis)).sum().backward()
        np.testing.assert_allclose(x.grad, t.grad.numpy())


def test_maximum_ties_split_gradient_like_torch():
    torch = pytest.importorskip("torch")
    a, b = np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 5.0])
    x, y = (nl.tensor(v, dtype="float64", requires_grad=True) for v in (a, b))
    tx, ty = (torch.tensor(v, requires_grad=True) for v in (a, b))
    F.maximum(x, y).sum().backward()
    torch.maximum(tx, ty).sum().backward()
    np.testing.assert_allclose(x.grad, tx.grad.numpy())
    np.testing.assert_allclose(y.grad, ty.grad.numpy())


def test_batch_norm_running_stats_match_torch():
    torch = pytest.importorskip("torch")
    x = R(8, 3, 2)
    rm, rv = np.zeros(3), np.ones(3)
    trm, trv = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    for _ in range(3):
        F.batch_norm(nl.tensor(x, dtype="float64"), rm, rv, training=True, momentum=0.2)
        torch.nn.functional.batch_norm(torch.tensor(x), trm, trv, training=True, momentum=0.2)
    np.testing.assert_allclose(rm, trm.numpy(), rtol=1e-12)
    np.testing.assert_allclose(rv, trv.numpy(), rtol=1e-12)


def test_getitem_repeated_indices_add_up():
    x = nl.tensor(np.arange(4.0), requires_grad=True)
    x[np.array([1, 1, 1, 3])].sum().backward()
    np.testing.assert_array_equal(x.grad, [0, 3, 0, 1])


def test_cross_entropy_rejects_bad_targets():
    z = nl.tensor(np.zeros((3, 4)), requires_grad=True)
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        F.cross_entropy(z, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"\(3,\)"):
        F.cross_entropy(z, np.array([0, 1]))
    with pytest.raises(TypeError, match="integers"):
        F.cross_entropy(z, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(z, np.array([0, 1, 2]), reduction="avg")


def test_linear_shape_error_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(5, 3\).*\(4, 2\)"):
        F.linear(nl.tensor(np.zeros((5, 3))), nl.tensor(np.zeros((4, 2))))
