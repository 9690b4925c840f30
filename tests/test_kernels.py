"""Every fused kernel against its NumPy reference: the same bits, on any thread count.

The kernels do per element the reference's operations in the reference's order (numba
without fastmath: no reassociation, no fused multiply-add), so the table asks for equal
bits, not a tolerance. Sizes are odd, and some pass ``PARALLEL_FROM`` so that numba's
threads split them.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from neuralab import kernels, optim
from neuralab.kernels import numpy_ref
from neuralab.nn import Parameter

numba = pytest.importorskip("numba")
from neuralab.kernels import numba_impl  # noqa: E402

BIG = numba_impl.PARALLEL_FROM + 4099  # split over threads, with a partial last chunk
SIZES = [1, 7, 1023, BIG]


def _arrays(rng, n, dtype, k, positive=()):
    out = [rng.standard_normal(n).astype(dtype) for _ in range(k)]
    for i in positive:
        out[i] = np.abs(out[i])
    return out


# name -> (number of arrays, indices of non-negative arrays, scalar sets, flag sets)
CASES = {
    "sgd": (3, (), [(0.1, 0.0, 0.0, 1.0), (0.05, 0.01, 0.9, 0.7), (0.1, 0.02, 0.8, 1.0)],
            [(False, True), (False, False), (True, False), (True, True)]),
    "adam": (5, (3, 4), [(1e-3, 0.9, 0.1, 0.999, 1e-3, 1e-8, 0.0, 1.0),
                         (2e-3, 0.8, 0.2, 0.99, 1e-2, 1e-6, 0.1, 1.0),
                         (2e-3, 0.9, 0.1, 0.999, 1e-3, 1e-8, 0.0, 1 - 1e-4)],
             [(False,), (True,)]),
    "rmsprop": (5, (2,), [(1e-2, 0.0, 0.99, 0.01, 1e-8, 0.0), (1e-2, 0.05, 0.9, 0.1, 1e-5, 0.9)],
                [(False,), (True,)]),
    "adagrad": (3, (2,), [(0.1, 0.0, 1e-10), (0.05, 0.02, 1e-6)], [()]),
}


def _call(impl, name, arrays, nums, flags):
    arrays = [a.copy() for a in arrays]
    if name == "rmsprop" and flags[0]:  # centered: sq must stay above ga**2
        arrays[2] += arrays[3] ** 2
    getattr(impl, name)(*arrays, *numpy_ref.scalars(arrays[0].dtype, *nums), *flags)
    return arrays


TABLE = [(name, dtype, n, i, flags)
         for name, (k, pos, numbers, flag_sets) in CASES.items()
         for dtype in ("float32", "float64") for n in SIZES
         for i in range(len(numbers)) for flags in flag_sets
         if n != BIG or i == len(numbers) - 1]  # the big size: one scalar set each


@pytest.mark.parametrize("name,dtype,n,i,flags", TABLE,
                         ids=[f"{c[0]}-{c[1]}-{c[2]}-s{c[3]}-{c[4]}" for c in TABLE])
def test_kernel_equals_numpy_reference(name, dtype, n, i, flags):
    k, pos, numbers, _ = CASES[name]
    rng = np.random.default_rng([n, i, len(flags) and int(flags[0])])
    arrays = _arrays(rng, n, dtype, k, pos)
    fast = _call(numba_impl, name, arrays, numbers[i], flags)
    ref = _call(numpy_ref, name, arrays, numbers[i], flags)
    assert not np.array_equal(fast[0], arrays[0]), "the kernel did not move the weights"
    for j, (a, b) in enumerate(zip(fast, ref)):
        assert a.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(a, b, err_msg=f"{name}: array {j}")


@pytest.mark.parametrize("name", list(CASES))
def test_strided_inputs(name):
    """Strided 1-D views (every other value of a larger array) give the reference's bits."""
    k, pos, numbers, flag_sets = CASES[name]
    rng = np.random.default_rng(3)
    arrays = [a[::2] for a in _arrays(rng, 2 * 301, "float64", k, pos)]
    fast = _call(numba_impl, name, arrays, numbers[-1], flag_sets[-1])
    ref = _call(numpy_ref, name, arrays, numbers[-1], flag_sets[-1])
    for a, b in zip(fast, ref):
        np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="numba has one thread here")
@pytest.mark.parametrize("name", list(CASES))
def test_bits_do_not_depend_on_thread_count(name):
    k, pos, numbers, flag_sets = CASES[name]
    arrays = _arrays(np.random.default_rng(5), BIG, "float32", k, pos)
    before = numba.get_num_threads()
    try:
        got = []
        for threads in (1, 2):
            numba.set_num_threads(threads)
            got.append(_call(numba_impl, name, arrays, numbers[-1], flag_sets[-1]))
    finally:
        numba.set_num_threads(before)
    for a, b in zip(*got):
        np.testing.assert_array_equal(a, b)


def test_amsgrad_max_propagates_nan_like_numpy():
    w, g, m, v, vmax = (np.ones(4) for _ in range(5))
    vmax[1] = np.nan
    fast = _call(numba_impl, "adam", [w, g, m, v, vmax], CASES["adam"][2][0], (True,))
    ref = _call(numpy_ref, "adam", [w, g, m, v, vmax], CASES["adam"][2][0], (True,))
    assert np.isnan(ref[4][1])
    for a, b in zip(fast, ref):
        np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------- layer kernels
# 2-D batches: (rows, columns). One column (bias_grad sums it pairwise, NumPy's way), one
# row, odd sizes, many rows, and a batch past PARALLEL_FROM (split over threads)
SHAPES = [(1, 1), (1, 9), (7, 5), (33, 1), (64, 10), (129, 257), (20001, 3),
          (numba_impl.PARALLEL_FROM // 127 + 3, 127)]
LAYER_KERNELS = ("bias_relu", "relu_mask_backward", "bias_grad")


def _bits(a):
    """The bytes of ``a``: tells -0.0 from 0.0 and one NaN payload from another."""
    return np.ascontiguousarray(a).view(np.uint8)


def _special(rng, shape, dtype):
    """Random values with NaNs (two payloads), +-inf, -0.0 and 0.0 strewn among them."""
    x = rng.standard_normal(shape).astype(dtype)
    flat = x.reshape(-1)
    uint = np.uint32 if x.dtype == np.float32 else np.uint64
    payload = np.array([0x7FC00123 if uint is np.uint32 else 0x7FF8000000000123], uint)
    for value, step in ((np.nan, 11), (np.inf, 13), (-np.inf, 17), (-0.0, 5), (0.0, 7)):
        flat[rng.integers(0, step):: step] = value
    flat[rng.integers(0, 19)::19] = payload.view(x.dtype)[0]
    return x


def _layer_call(impl, name, x, other):
    x, other = x.copy(), other.copy()
    if name == "bias_grad":
        out = np.full(x.shape[1], 7.0, x.dtype)  # every value must be written
        impl.bias_grad(x, out)
        return out
    getattr(impl, name)(x, other)
    return x


LAYER_TABLE = [(name, dtype, shape, special) for name in LAYER_KERNELS
               for dtype in ("float32", "float64") for shape in SHAPES for special in (False, True)]


@pytest.mark.filterwarnings("ignore:invalid value")
@pytest.mark.parametrize("name,dtype,shape,special", LAYER_TABLE,
                         ids=[f"{c[0]}-{c[1]}-{c[2][0]}x{c[2][1]}-{'special' if c[3] else 'plain'}"
                              for c in LAYER_TABLE])
def test_layer_kernel_equals_numpy_reference(name, dtype, shape, special):
    rng = np.random.default_rng([shape[0], shape[1], special])
    make = _special if special else (lambda r, s, d: r.standard_normal(s).astype(d))
    x = make(rng, shape, dtype)
    # bias_relu: a bias row; relu_mask_backward: a ReLU output (zeros, positives, NaNs)
    other = (make(rng, shape[1], dtype) if name == "bias_relu"
             else np.maximum(make(rng, shape, dtype), 0))
    fast = _layer_call(numba_impl, name, x, other)
    ref = _layer_call(numpy_ref, name, x, other)
    assert fast.dtype == np.dtype(dtype) and fast.shape == ref.shape
    if name == "bias_grad":
        # where two NaNs meet in a sum, which payload survives is not NumPy's to say either:
        # its own result for one column changes with the column's place (SIMD body or tail)
        nan = np.isnan(ref)
        np.testing.assert_array_equal(np.isnan(fast), nan)
        fast, ref = fast[~nan], ref[~nan]
    np.testing.assert_array_equal(_bits(fast), _bits(ref), err_msg=name)


def test_bias_relu_keeps_nan_payloads_and_clears_the_sign_of_zero():
    z = np.array([[-0.0, -2.0, 3.0, np.inf, -np.inf, 0.0]], np.float32)
    nan = np.array([0x7FC00123], np.uint32).view(np.float32)[0]
    z = np.concatenate([z, [[nan]]], axis=1)
    b = np.array([-0.0, 1.0, 0.5, 1.0, 1.0, -0.0, 0.0], np.float32)
    for impl in (numba_impl, numpy_ref):
        out = z.copy()
        impl.bias_relu(out, b)
        np.testing.assert_array_equal(out[0, :6], [0.0, 0.0, 3.5, np.inf, 0.0, 0.0])
        assert not np.signbit(out[0, :6]).any()  # -0.0 + -0.0 is -0.0; max(-0.0, 0) is +0.0
        assert out.view(np.uint32)[0, 6] == 0x7FC00123


@pytest.mark.filterwarnings("ignore:invalid value")
def test_relu_mask_backward_multiplies_like_numpy():
    d = np.array([[2.0, -3.0, np.inf, np.nan, 4.0]])
    a = np.array([[1.0, 0.0, 0.0, 0.0, np.nan]])  # a NaN output is not > 0: masked
    for impl in (numba_impl, numpy_ref):
        out = d.copy()
        impl.relu_mask_backward(out, a)
        assert out[0, 0] == 2.0 and out[0, 1] == 0.0 and np.signbit(out[0, 1])  # -3 * 0
        assert np.isnan(out[0, 2]) and np.isnan(out[0, 3]) and out[0, 4] == 0.0


def test_bias_grad_sums_columns_from_zero_row_after_row():
    d = np.array([[-0.0, 1e8, 1.0], [-0.0, 1.0, 2.0], [-0.0, -1e8, 3.0]], np.float32)
    for impl in (numba_impl, numpy_ref):
        out = np.empty(3, np.float32)
        impl.bias_grad(d, out)
        # (1e8 + 1) - 1e8 is 0 in float32: the rows are added in order, not pairwise
        np.testing.assert_array_equal(out, [0.0, 0.0, 6.0])
        assert not np.signbit(out[0])  # a column of -0.0 sums to +0.0, as NumPy's sum
    empty = np.empty((0, 4))
    out = np.full(4, 7.0)
    numba_impl.bias_grad(empty, out)
    np.testing.assert_array_equal(out, np.zeros(4))


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="numba has one thread here")
@pytest.mark.parametrize("name", LAYER_KERNELS)
def test_layer_kernel_bits_do_not_depend_on_thread_count(name):
    rng = np.random.default_rng(9)
    x = rng.standard_normal(SHAPES[-1]).astype(np.float32)
    other = x[0].copy() if name == "bias_relu" else np.maximum(rng.standard_normal(x.shape), 0)
    other = other.astype(np.float32)
    before = numba.get_num_threads()
    try:
        got = []
        for threads in (1, 2):
            numba.set_num_threads(threads)
            got.append(_layer_call(numba_impl, name, x, other))
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(_bits(got[0]), _bits(got[1]))


# ----------------------------------------------------------------------------- dispatch
def test_get_dispatches_and_the_environment_turns_kernels_off(monkeypatch):
    monkeypatch.delenv("NEURALAB_KERNELS", raising=False)
    assert kernels.get("adam") is numba_impl.adam
    monkeypatch.setenv("NEURALAB_KERNELS", "numpy")
    assert kernels.get("adam") is numpy_ref.adam
    assert kernels.numba_module() is None
    with pytest.raises(ValueError, match="unknown kernel 'adamax'"):
        kernels.get("adamax")


def test_an_optimizer_follows_the_environment_at_each_step(monkeypatch):
    """Made with kernels on, an optimizer steps on the NumPy reference once it is set."""
    monkeypatch.delenv("NEURALAB_KERNELS", raising=False)
    p = Parameter(np.ones(5, np.float32))
    opt = optim.SGD([p], lr=0.5, momentum=0.9)
    calls = []
    monkeypatch.setattr(numpy_ref, "sgd", lambda *a: calls.append(a) or None)
    p.grad = np.ones(5, np.float32)
    opt.step()
    assert calls == [] and np.all(p.data == 0.5)  # numba's kernel moved the weights
    monkeypatch.setenv("NEURALAB_KERNELS", "numpy")
    opt.step()
    assert len(calls) == 1 and np.all(p.data == 0.5)  # the (stubbed) reference ran instead


def test_an_optimizer_pickles_and_steps_on(monkeypatch):
    import pickle
    monkeypatch.delenv("NEURALAB_KERNELS", raising=False)
    p = Parameter(np.ones(5, np.float32))
    opt = optim.SGD([p], lr=0.5, momentum=0.9)
    p.grad = np.ones(5, np.float32)
    opt.step()
    copy = pickle.loads(pickle.dumps(opt))
    q = copy.param_groups[0]["params"][0]
    q.grad = np.ones(5, np.float32)
    p.grad = np.ones(5, np.float32)
    opt.step()
    copy.step()
    np.testing.assert_array_equal(q.data, p.data)
    np.testing.assert_allclose(p.data, 0.5 - 0.5 * 1.9)  # buffer 0.9 * 1 + 1


def test_usable_only_for_contiguous_float_numpy_arrays():
    a = np.zeros((4, 3), np.float32)
    assert kernels.usable(a, a.copy())
    assert not kernels.usable(a, a.T)  # strided
    assert not kernels.usable(a, a.astype(np.float64))  # mixed dtypes
    assert not kernels.usable(a.astype(np.float16))


def test_compiled_functions_are_cached_on_disk():
    for fn in (numba_impl._sgd_span, numba_impl._adam_parallel, numba_impl._adagrad_span):
        assert fn._cache.__class__.__name__ != "NullCache"


def test_import_neuralab_does_not_import_numba():
    code = "import neuralab, sys; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ}, check=True)
    assert out.stdout.strip() == "False"


# ----------------------------------------------------------------------------- optimizers
OPTS = [("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
        ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
        ("AdamW", dict(lr=0.01)),
        ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5)),
        ("Adagrad", dict(lr=0.1, lr_decay=0.01))]


def _steps(name, kwargs, shapes, steps=3, strided=False):
    rng = np.random.default_rng(0)
    params = [Parameter(rng.standard_normal(s).astype(np.float32)) for s in shapes]
    if strided:  # a transposed view: no kernel, the optimizer's array-op code
        for p in params:
            p.data = p.data.T
    opt = getattr(optim, name)(params, **kwargs)
    for _ in range(steps):
        for p, s in zip(params, shapes):
            g = rng.standard_normal(s).astype(np.float32)
            p.grad = g.T if strided else g
        opt.step()
    return [p.data.copy() for p in params]


@pytest.mark.parametrize("name,kwargs", OPTS, ids=[o[0] for o in OPTS])
def test_optimizer_on_kernels_equals_numpy_reference(name, kwargs, monkeypatch):
    shapes = [(31, 17), (17,), (5, 31), (5,)]
    monkeypatch.delenv("NEURALAB_KERNELS", raising=False)
    fast = _steps(name, kwargs, shapes)
    monkeypatch.setenv("NEURALAB_KERNELS", "numpy")
    ref = _steps(name, kwargs, shapes)
    for a, b in zip(fast, ref):
        np.testing.assert_array_equal(a, b)
    # the array-op path (CuPy arrays, strided views) does the same maths, rounded its own way
    arrays = _steps(name, kwargs, shapes, strided=True)
    for a, b in zip(arrays, ref):
        np.testing.assert_allclose(a.T, b, rtol=1e-5, atol=1e-6)


def test_fit_sets_numba_threads_and_restores_them(monkeypatch):
    monkeypatch.delenv("NEURALAB_KERNELS", raising=False)
    from neuralab.training.threads import BlasThreadPolicy
    before = numba.get_num_threads()
    policy = BlasThreadPolicy(flops=0, threads=1)
    with policy:
        assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == before


def test_inference_forward_uses_bias_relu_once_numba_is_loaded(monkeypatch):
    from neuralab import nn
    from neuralab.nn._fast import forward_layers, inference_layers
    monkeypatch.delenv("NEURALAB_KERNELS", raising=False)
    kernels.get("sgd")  # numba imported, as by a training step
    assert kernels.loaded()
    layers = inference_layers(nn.MLP(12, (200,), 3, rng=0))
    X = np.random.default_rng(2).standard_normal((50, 12)).astype(np.float32)  # 10000 values
    calls = []
    real = numba_impl.bias_relu
    monkeypatch.setattr(numba_impl, "bias_relu", lambda z, b: calls.append(z.shape) or real(z, b))
    fast = forward_layers(layers, X)
    assert calls == [(50, 200)]
    monkeypatch.setenv("NEURALAB_KERNELS", "numpy")
    assert not kernels.loaded()
    np.testing.assert_array_equal(_bits(fast), _bits(forward_layers(layers, X)))
    assert len(calls) == 1


# ----------------------------------------------------------------------------- softmax cross-entropy and dropout
# softmax_xent: numba's loops fuse the passes between NumPy's own exp and log calls (numba's
# libm exp is slower here and up to 34 ulps off), so the bits are the reference's. Shapes:
# one class, fewer than 8 (summed one by one), 8 and 9 (8 running sums and a tail), up to
# numba_impl.WIDE and past it (handed to the reference), an empty batch
XENT_SHAPES = [(1, 1), (5, 2), (7, 7), (3, 8), (33, 9), (128, 10), (17, 63), (64, 64), (9, 65),
               (4, 1000), (0, 10)]


def _xent_inputs(rng, shape, dtype, special=False):
    z = (rng.standard_normal(shape) * 4).astype(dtype)
    if special and shape[0] >= 4 and shape[1] >= 2:
        z[0, 1] = np.nan  # a NaN row: NaN loss and gradient
        z[1, 0] = np.inf  # inf - inf: NaN
        z[2] = -np.inf  # nothing finite: NaN
        z[3, 0] = 80  # the others' exps vanish beside 1: a sure class
    t = rng.integers(0, shape[1], shape[0])
    if special and shape[0] >= 4:
        t[3] = 0
    return z, t


def _xent_call(impl, z, t, scale):
    grad, loss = np.full(z.shape, 7, z.dtype), np.full(z.shape[0], 7, z.dtype)  # all written
    impl.softmax_xent(z, t, z.dtype.type(scale), grad, loss)
    return grad, loss


XENT_TABLE = [(dtype, shape, special) for dtype in ("float32", "float64") for shape in XENT_SHAPES
              for special in (False, True)]


@pytest.mark.filterwarnings("ignore:invalid value")
@pytest.mark.parametrize("dtype,shape,special", XENT_TABLE,
                         ids=[f"{c[0]}-{c[1][0]}x{c[1][1]}-{'special' if c[2] else 'plain'}"
                              for c in XENT_TABLE])
def test_softmax_xent_equals_numpy_reference(dtype, shape, special):
    z, t = _xent_inputs(np.random.default_rng(list(shape)), shape, dtype, special)
    scale = 1 / max(1, shape[0])
    fast = _xent_call(numba_impl, z, t, scale)
    ref = _xent_call(numpy_ref, z, t, scale)
    for a, b in zip(fast, ref):
        assert a.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(a, b)
    if shape[0] and not special:  # the numbers are softmax cross-entropy's
        z64 = z.astype(np.float64)
        p = np.exp(z64 - z64.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        rows = np.arange(shape[0])
        onehot = np.zeros_like(p)
        onehot[rows, t] = 1
        tol = 1e-5 if dtype == "float32" else 1e-12
        np.testing.assert_allclose(ref[0], (p - onehot) * scale, rtol=tol, atol=tol * scale)
        np.testing.assert_allclose(ref[1], -np.log(p[rows, t]), rtol=tol, atol=tol)


@pytest.mark.filterwarnings("ignore:invalid value", "ignore:overflow")
def test_softmax_xent_special_rows():
    z, t = _xent_inputs(np.random.default_rng(0), (5, 6), np.float32, special=True)
    for impl in (numba_impl, numpy_ref):
        grad, loss = _xent_call(impl, z, t, 0.5)
        assert np.isnan(loss[:3]).all() and np.isnan(grad[:3]).all()
        assert loss[3] == 0 and grad[3, 0] == 0 and (np.abs(grad[3, 1:]) < 1e-20).all()
        assert np.isfinite(grad[4]).all() and 0 < loss[4] < 50


def test_softmax_xent_is_todays_captured_arithmetic():
    """The reference is the captured step's former softmax: max-shift, exp, log of the sum,
    exp again, 1 off at the target, times the scale (the same calls, so the same bits)."""
    rng = np.random.default_rng(4)
    for dtype, shape in (("float32", (128, 10)), ("float64", (31, 700))):
        z, t = _xent_inputs(rng, shape, dtype)
        rows, scale = np.arange(shape[0]), np.ones((), dtype) / shape[0]
        logp = z - z.max(axis=1, keepdims=True)
        logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
        p = np.exp(logp)
        p[rows, t] -= 1.0
        p *= scale
        grad, loss = _xent_call(numpy_ref, z, t, scale)
        np.testing.assert_array_equal(grad, p)
        np.testing.assert_array_equal(loss, -logp[rows, t])


def test_cross_entropy_runs_the_kernel_of_the_captured_step(monkeypatch):
    """F.cross_entropy (class indices) and the captured step call one softmax_xent: the
    active module's (numba's, or the reference under NEURALAB_KERNELS=numpy)."""
    import neuralab as nl
    from neuralab import functional as F
    from neuralab import nn
    from neuralab.training.captured import CapturedMLP
    monkeypatch.delenv("NEURALAB_KERNELS", raising=False)
    for impl, env in ((numba_impl, None), (numpy_ref, "numpy")):
        if env:
            monkeypatch.setenv("NEURALAB_KERNELS", env)
        calls = []
        real = impl.softmax_xent
        monkeypatch.setattr(impl, "softmax_xent", lambda *a, _r=real: calls.append(a[0].shape) or _r(*a))
        model = nn.MLP(6, hidden=(8,), out_features=3, rng=0)
        X = np.random.default_rng(1).standard_normal((20, 6)).astype(np.float32)
        y = np.arange(20) % 3
        F.cross_entropy(model(nl.tensor(X)), y).backward()
        CapturedMLP.from_model(model).forward_backward(X, y)
        assert calls == [(20, 3), (20, 3)]
        monkeypatch.undo()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_fused_equals_the_general_path(dtype, reduction):
    """The kernel's path (no class weight) against the general one, made to run by a weight
    of ones: the same sums of the same log-probabilities, so the same bits."""
    import neuralab as nl
    from neuralab import functional as F
    rng = np.random.default_rng(2)
    z, t = _xent_inputs(rng, (40, 7), dtype)
    out = []
    for weight in (None, np.ones(7, dtype)):
        x = nl.tensor(z, dtype=dtype, requires_grad=True)
        loss = F.cross_entropy(x, t, weight=weight, reduction=reduction)
        (loss.sum() if reduction == "none" else loss).backward()
        out.append((loss.data, x.grad))
    for a, b in zip(*out):
        assert a.dtype == b.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(a, b)


def test_cross_entropy_of_one_row_and_of_strided_logits():
    import neuralab as nl
    from neuralab import functional as F
    z, t = _xent_inputs(np.random.default_rng(3), (6, 5), "float32")
    whole = nl.tensor(z, requires_grad=True)
    F.cross_entropy(whole, t, reduction="sum").backward()
    row = nl.tensor(z[2], requires_grad=True)  # logits (C,), one class index
    loss = F.cross_entropy(row, t[2])
    loss.backward()
    assert loss.shape == () and row.grad.shape == (5,)
    np.testing.assert_array_equal(row.grad, whole.grad[2])
    wide = np.zeros((6, 10), np.float32)
    wide[:, ::2] = z  # a strided view: copied to a C-contiguous batch first
    strided = nl.tensor(wide[:, ::2], requires_grad=True)
    F.cross_entropy(strided, t, reduction="sum").backward()
    np.testing.assert_array_equal(strided.grad, whole.grad)


# dropout: a comparison and a product per value, both IEEE-exact, so equal bits everywhere
DROPOUT_SHAPES = [(1,), (7, 5), (64, 10), (3, 4, 129), (70001,)]


@pytest.mark.filterwarnings("ignore:invalid value")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", DROPOUT_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("p", [0.0, 0.2, 0.9])
def test_dropout_equals_numpy_reference(dtype, shape, p):
    rng = np.random.default_rng(len(shape))
    x, grad = _special(rng, shape, dtype), _special(rng, shape, dtype)
    u = rng.random(shape)
    u.reshape(-1)[:3] = p  # u == p keeps the value (as NumPy's u >= p)
    scale = x.dtype.type(1 / (1 - p))
    got = []
    for impl in (numba_impl, numpy_ref):
        out, mask, back = np.empty_like(x), np.ones(shape, np.bool_), np.empty_like(x)
        impl.dropout(x, u, p, scale, out, mask)
        impl.dropout_backward(grad, mask, scale, back)
        got.append((out, mask, back))
    for a, b in zip(*got):
        np.testing.assert_array_equal(_bits(a), _bits(b))
    out, mask, back = got[1]
    np.testing.assert_array_equal(mask, u >= p)
    assert mask.reshape(-1)[:3].all()
    np.testing.assert_array_equal(_bits(out), _bits(x * ((u >= p).astype(dtype) * scale)))


def _todays_dropout(x, p, rng):
    """F.dropout as it was before the kernel: a float mask, then a product in the graph."""
    import neuralab as nl
    keep = rng.random(x.shape) >= p
    mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - p))
    return x * nl.Tensor._make(mask, False)


@pytest.mark.filterwarnings("ignore:invalid value")
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_f_dropout_equals_todays_mask_and_product(dtype, monkeypatch):
    """Forward, gradient and the Generator's state after it: as the float-mask product (a
    float16 batch still takes that product; NumPy and CuPy arrays of other dtypes too)."""
    import neuralab as nl
    from neuralab import functional as F
    from neuralab import functions
    monkeypatch.delenv("NEURALAB_KERNELS", raising=False)
    x0 = _special(np.random.default_rng(1), (33, 17), dtype)
    g = np.random.default_rng(2).standard_normal(x0.shape).astype(dtype)
    results = []
    for fused in (True, False):
        rng = np.random.default_rng(5)
        x = nl.tensor(x0, dtype=dtype, requires_grad=True)
        out = F.dropout(x, 0.3, rng=rng) if fused else _todays_dropout(x, 0.3, rng)
        assert isinstance(out._ctx, functions.Dropout) == (fused and dtype != "float16")
        out.backward(g)
        results.append((out.data, x.grad, rng.random(3)))
    for a, b in zip(*results):
        np.testing.assert_array_equal(_bits(a), _bits(b))
    kept = results[0][1] != 0  # the gradient: g (never 0) times 0 or 1 / (1 - p)
    assert 0.6 < kept.mean() < 0.8  # about 1 - p of the values stay


def test_dropout_backward_of_a_broadcast_gradient():
    """A gradient that is not a C-contiguous array of the mask's dtype takes NumPy's product,
    which gives the kernel's bits."""
    import neuralab as nl
    from neuralab import functional as F
    x = nl.tensor(np.ones((4, 6), np.float32), requires_grad=True)
    out = F.dropout(x, 0.5, rng=np.random.default_rng(0))
    out.sum().backward()  # the sum's gradient: ones broadcast to (4, 6), not contiguous
    np.testing.assert_array_equal(x.grad, out.data)  # x is ones: out is the mask times 2
    assert set(np.unique(x.grad)) <= {0.0, 2.0}


def test_dropout_module_and_tabular_mlp_use_the_kernel(monkeypatch):
    from neuralab import nn
    import neuralab as nl
    monkeypatch.delenv("NEURALAB_KERNELS", raising=False)
    calls = []
    real = numba_impl.dropout
    monkeypatch.setattr(numba_impl, "dropout", lambda x, *a: calls.append(x.shape) or real(x, *a))
    net = nn.Sequential(nn.Linear(5, 8, rng=0), nn.ReLU(), nn.Dropout(0.2, rng=0), nn.Linear(8, 2, rng=1))
    X = np.random.default_rng(0).standard_normal((10, 5)).astype(np.float32)
    net(nl.tensor(X)).sum().backward()
    assert calls == [(10, 8)]
    net.eval()
    net(nl.tensor(X))
    assert calls == [(10, 8)]  # eval: the identity, no kernel
    tab = nn.TabularMLP(5, 0, [], n_out=3, hidden=(16, 16), k=2, dropout=0.15, rng=0)
    tab.train()
    tab(nl.tensor(X)).sum().backward()
    assert len(calls) == 3 and tab.linears[0].weight.grad is not None  # one per hidden block


# ----------------------------------------------------------------------------- convolution
# im2col / col2im on Conv2d's layouts: xpad (C, Hp, Wp, N), a band of cols (C, kh, kw, rows,
# Wo, N) for output rows r0 .. r0 + rows - 1. Copies and tap-ordered sums: equal bits.
# (C, N, Hp, Wp, kh, kw, stride, dilation, r0, rows)
CONV_CASES = [
    (1, 1, 3, 3, 1, 1, (1, 1), (1, 1), 0, 3),
    (3, 5, 9, 8, 3, 3, (1, 1), (1, 1), 2, 4),      # a band in the middle
    (4, 3, 11, 10, 3, 2, (2, 1), (1, 2), 1, 3),   # row stride, column dilation
    (2, 7, 12, 13, 2, 3, (2, 3), (2, 1), 0, 4),   # column stride: runs of N values
    (5, 1, 7, 9, 3, 3, (1, 2), (3, 1), 0, 1),     # batch of one, one output row
    (6, 2, 16, 9, 5, 1, (3, 1), (2, 1), 1, 2),
]


def _conv_case(case, dtype, seed):
    c, n, hp, wp, kh, kw, (sh, sw), (dh, dw), r0, rows = case
    wo = (wp - dw * (kw - 1) - 1) // sw + 1
    assert (hp - dh * (kh - 1) - 1) // sh + 1 >= r0 + rows and wo > 0  # the band fits
    rng = np.random.default_rng(seed)
    xpad = _special(rng, (c, hp, wp, n), dtype)
    dcols = _special(rng, (c, kh, kw, rows, wo, n), dtype)
    return xpad, dcols, r0, (sh, sw), (dh, dw)


def _conv_call(impl, name, xpad, dcols, r0, stride, dilation):
    if name == "im2col":
        cols = np.full_like(dcols, 7.0)  # every value must be written
        impl.im2col(xpad, cols, r0, stride, dilation)
        return cols
    dxpad = xpad.copy()  # col2im adds onto what is there
    impl.col2im(dcols, dxpad, r0, stride, dilation)
    return dxpad


CONV_TABLE = [(name, dtype, i) for name in ("im2col", "col2im") for dtype in ("float32", "float64")
              for i in range(len(CONV_CASES))]


@pytest.mark.filterwarnings("ignore:invalid value")
@pytest.mark.parametrize("name,dtype,i", CONV_TABLE,
                         ids=[f"{c[0]}-{c[1]}-case{c[2]}" for c in CONV_TABLE])
def test_conv_kernel_equals_numpy_reference(name, dtype, i):
    args = _conv_case(CONV_CASES[i], dtype, i)
    fast = _conv_call(numba_impl, name, *args)
    ref = _conv_call(numpy_ref, name, *args)
    assert fast.dtype == np.dtype(dtype) and fast.shape == ref.shape
    if name == "col2im":  # which payload a NaN + NaN keeps is not NumPy's to say (as bias_grad)
        nan = np.isnan(ref)
        np.testing.assert_array_equal(np.isnan(fast), nan)
        fast, ref = fast[~nan], ref[~nan]
    np.testing.assert_array_equal(_bits(fast), _bits(ref), err_msg=name)


def test_im2col_copies_each_tap_and_col2im_adds_overlaps_tap_after_tap():
    # one channel, one sample, a 1x5 row, a 1x3 kernel at stride 1: Wo = 3
    xpad = np.arange(1.0, 6.0, dtype=np.float32).reshape(1, 1, 5, 1)
    for impl in (numba_impl, numpy_ref):
        cols = np.empty((1, 1, 3, 1, 3, 1), np.float32)
        impl.im2col(xpad, cols, 0, (1, 1), (1, 1))
        np.testing.assert_array_equal(cols.reshape(3, 3), [[1, 2, 3], [2, 3, 4], [3, 4, 5]])
        # x[2] gets 1.0 from tap 0, then 1e8 from tap 1, then -1e8 from tap 2: in float32
        # (1 + 1e8) - 1e8 is 0, the other way round (-1e8 + 1e8) + 1 would be 1
        dcols = np.zeros(cols.shape, np.float32)
        dcols[0, 0, 0, 0, 2], dcols[0, 0, 1, 0, 1], dcols[0, 0, 2, 0, 0] = 1.0, 1e8, -1e8
        dxpad = np.zeros_like(xpad)
        impl.col2im(dcols, dxpad, 0, (1, 1), (1, 1))
        np.testing.assert_array_equal(dxpad.reshape(-1), [0.0, 0.0, 0.0, 0.0, 0.0])


@pytest.mark.filterwarnings("ignore:invalid value")
@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="numba has one thread here")
@pytest.mark.parametrize("name", ["im2col", "col2im"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_conv_kernel_bits_do_not_depend_on_thread_count(name, dtype, monkeypatch):
    monkeypatch.setattr(numba_impl, "CONV_PARALLEL_FROM", 0)  # channels split over threads
    args = _conv_case(CONV_CASES[3], dtype, 11)
    ref = _conv_call(numpy_ref, name, *args)
    before, got = numba.get_num_threads(), []
    try:
        for threads in (1, 2):
            numba.set_num_threads(threads)
            got.append(_conv_call(numba_impl, name, *args))
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(_bits(got[0]), _bits(got[1]))
    nan = np.isnan(ref)  # and the reference's numbers (NaN payloads aside, as above)
    np.testing.assert_array_equal(np.isnan(got[0]), nan)
    np.testing.assert_array_equal(_bits(got[0][~nan]), _bits(ref[~nan]))


# Conv2d on the kernels vs on the reference: the same copies and the same GEMM calls, so the
# same bits; odd sizes, bands of one output row and of several (CHUNK), groups, float32/64
CONV2D_LAYERS = [  # (x shape, weight shape, stride, padding, dilation, groups, chunk)
    ((3, 4, 7, 6), (6, 2, 3, 2), (2, 1), (1, 2), (1, 2), 2, 1),
    ((2, 3, 9, 8), (5, 3, 3, 3), (1, 1), (1, 1), (1, 1), 1, 1000),
    ((1, 4, 6, 7), (4, 1, 3, 3), (1, 2), (2, 0), (2, 1), 4, 1 << 18),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", range(len(CONV2D_LAYERS)))
def test_conv2d_on_kernels_equals_conv2d_on_numpy_reference(case, dtype, monkeypatch):
    import neuralab as nl
    from neuralab import functional as F
    xs, ws, stride, padding, dilation, groups, chunk = CONV2D_LAYERS[case]
    monkeypatch.setattr(nl.functions.Conv2d, "CHUNK", chunk)
    rng = np.random.default_rng(case)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in (xs, ws, ws[:1]))
    calls = []
    real = numba_impl.col2im
    monkeypatch.setattr(numba_impl, "col2im", lambda *a: calls.append(1) or real(*a))
    grad, results = None, []
    for env in ("numba", "numpy"):
        monkeypatch.setenv("NEURALAB_KERNELS", env)
        X, W, B = (nl.tensor(a, requires_grad=True) for a in (x, w, b))
        y = F.conv2d(X, W, B, stride, padding, dilation, groups)
        if grad is None:
            grad = rng.standard_normal(y.shape).astype(dtype)
        y.backward(grad)
        results.append([y.data, X.grad, W.grad, B.grad])
    assert calls, "the numba kernels did not run"
    for a, b_ in zip(*results):
        np.testing.assert_array_equal(_bits(a), _bits(b_))


# ----------------------------------------------------------------------------- recurrent cells
# One LSTM/GRU step's elementwise part on the transposed (features, N) arrays. The compiled
# steps call NumPy's own tanh between their loops (numba's is libm's, not NumPy's SIMD one),
# and do the reference's adds and products in its order, so the bits are equal by construction.
# (H, N): one unit, odd sizes, the benchmark's, and one past PARALLEL_FROM (split over threads)
CELL_SHAPES = [(1, 1), (3, 5), (128, 64), (numba_impl.PARALLEL_FROM // 211 + 5, 211)]
CELL_KERNELS = ("lstm_step", "lstm_step_backward", "gru_step", "gru_step_backward")


def _cell_arrays(name, hid, n, dtype, bias, rng):
    """Arguments for ``name`` on (hid, n) per-step arrays, activations in their real ranges."""
    def r(*shape, lo=None):
        x = rng.standard_normal(shape).astype(dtype)
        return rng.uniform(lo, 1, shape).astype(dtype) if lo is not None else x
    if name == "lstm_step":
        return [r(4 * hid, n), r(4 * hid, n), r(4 * hid, 1) if bias else None, r(hid, n),
                np.empty((hid, n), dtype), np.empty((hid, n), dtype), np.empty((hid, n), dtype)]
    if name == "lstm_step_backward":  # gates o, i, f as sigmoids, g and tanh(c) in (-1, 1)
        a = np.concatenate([r(3 * hid, n, lo=0), r(hid, n, lo=-1)])
        return [r(2 * hid, n), r(2 * hid, n), a, r(hid, n, lo=-1), r(hid, n),
                np.empty((4 * hid, n), dtype), np.full((4 * hid, 3, n), 7, dtype), 1]
    if name == "gru_step":
        return [r(3 * hid, n), r(3 * hid, n), r(hid, 1) if bias else None, r(hid, n),
                np.empty((hid, n), dtype)]
    a = np.concatenate([r(2 * hid, n, lo=0), r(hid, n, lo=-1)])
    return [r(hid, n), r(hid, n), a, r(hid, n), r(hid, n), np.empty((3 * hid, n), dtype),
            np.empty((3 * hid, n), dtype)]


def _cell_call(impl, name, arrays):
    arrays = [a.copy() if isinstance(a, np.ndarray) else a for a in arrays]
    getattr(impl, name)(*arrays)
    return [a for a in arrays if isinstance(a, np.ndarray)]


CELL_TABLE = [(name, dtype, shape, bias) for name in CELL_KERNELS
              for dtype in ("float32", "float64") for shape in CELL_SHAPES
              for bias in ((True, False) if name in ("lstm_step", "gru_step") else (True,))]


@pytest.mark.parametrize("name,dtype,shape,bias", CELL_TABLE,
                         ids=[f"{c[0]}-{c[1]}-{c[2][0]}x{c[2][1]}-{'bias' if c[3] else 'nobias'}"
                              for c in CELL_TABLE])
def test_cell_step_equals_numpy_reference(name, dtype, shape, bias):
    rng = np.random.default_rng([shape[0], shape[1], bias])
    arrays = _cell_arrays(name, *shape, dtype, bias, rng)
    fast = _cell_call(numba_impl, name, arrays)
    ref = _cell_call(numpy_ref, name, arrays)
    before = [a for a in arrays if isinstance(a, np.ndarray)]
    assert all(np.isfinite(a).all() for a in ref)
    assert any(not np.array_equal(a, b) for a, b in zip(ref, before)), "nothing was written"
    if name == "lstm_step_backward":  # d: the reference's scratch
        fast, ref = [fast[0], fast[1], fast[-1]], [ref[0], ref[1], ref[-1]]
    for j, (a, b) in enumerate(zip(fast, ref)):
        assert a.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(_bits(a), _bits(b), err_msg=f"{name}: array {j}")


def test_lstm_step_is_the_cell():
    """lstm_step against the cell's equations written out: the sigmoid is tanh(z/2)."""
    rng = np.random.default_rng(4)
    hid, n = 3, 2
    z, c_prev = rng.standard_normal((4 * hid, n)), rng.standard_normal((hid, n))
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    o, i, f, g = sig(z[:hid]), sig(z[hid:2 * hid]), sig(z[2 * hid:3 * hid]), np.tanh(z[3 * hid:])
    c_want = f * c_prev + i * g
    for impl in (numba_impl, numpy_ref):
        a = z.copy()
        a[:3 * hid] /= 2  # the sigmoid rows arrive halved
        c, tc, h = (np.empty((hid, n)) for _ in range(3))
        impl.lstm_step(a, np.zeros_like(a), None, c_prev, c, tc, h)
        np.testing.assert_allclose(c, c_want, rtol=1e-12)
        np.testing.assert_allclose(h, o * np.tanh(c_want), rtol=1e-12)
        np.testing.assert_allclose(a[hid:2 * hid], i, rtol=1e-12)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="numba has one thread here")
@pytest.mark.parametrize("name", CELL_KERNELS)
def test_cell_step_bits_do_not_depend_on_thread_count(name):
    arrays = _cell_arrays(name, *CELL_SHAPES[-1], "float32", True, np.random.default_rng(8))
    before = numba.get_num_threads()
    try:
        got = []
        for threads in (1, 2):
            numba.set_num_threads(threads)
            got.append(_cell_call(numba_impl, name, arrays))
    finally:
        numba.set_num_threads(before)
    for a, b in zip(*got):
        np.testing.assert_array_equal(_bits(a), _bits(b))


def _recurrent_run(kind, x):
    """Output, input gradient and weight gradients of a 2-layer bidirectional layer."""
    import neuralab as nl
    from neuralab import nn
    layer = getattr(nn, kind)(x.shape[2], 7, num_layers=2, bidirectional=True, rng=1)
    X = nl.tensor(x, requires_grad=True)
    out, _ = layer(X)
    (out * out).sum().backward()
    with nl.no_grad():
        inference = layer(X)[0].data
    return [out.data, X.grad, inference] + [p.grad for p in layer.parameters()]


@pytest.mark.parametrize("kind,step", [("LSTM", "lstm_step"), ("GRU", "gru_step")])
def test_recurrent_layers_run_the_step_kernels(kind, step, monkeypatch):
    """Training takes kernels.active(), inference numba's only once loaded; same bits both ways."""
    import neuralab as nl
    from neuralab import nn
    monkeypatch.delenv("NEURALAB_KERNELS", raising=False)
    calls = []
    for name in (step, step + "_backward"):
        real = getattr(numba_impl, name)
        monkeypatch.setattr(numba_impl, name,
                            lambda *a, _n=name, _f=real: calls.append(_n) or _f(*a))
    x = np.random.default_rng(6).standard_normal((5, 3, 4)).astype(np.float32)
    fast = _recurrent_run(kind, x)
    # 2 layers x 2 directions: 5 steps each forward (training, then inference) and backward
    assert calls.count(step) == 2 * 20 and calls.count(step + "_backward") == 20
    monkeypatch.setenv("NEURALAB_KERNELS", "numpy")
    calls.clear()
    ref = _recurrent_run(kind, x)
    assert calls == []
    for a, b in zip(fast, ref):
        np.testing.assert_array_equal(_bits(a), _bits(b))
    monkeypatch.delenv("NEURALAB_KERNELS")
    monkeypatch.setattr(kernels, "loaded", lambda: False)  # a process that has not imported numba
    with nl.no_grad():
        getattr(nn, kind)(4, 7, rng=1)(nl.tensor(x))
    assert calls == []
