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
