"""Engine behaviour: backward, accumulation, no_grad, detach, freed graphs, errors, dtypes,
numerical stability at +-1000, and property tests for broadcasting."""
from __future__ import annotations

import sys
import weakref

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import neuralab as nl
from neuralab import functional as F
from neuralab.tensor import unbroadcast


def f64(data, requires_grad=True):
    return nl.tensor(data, dtype="float64", requires_grad=requires_grad)


# --------------------------------------------------------------------------- backward
def test_backward_on_scalar_fills_leaf_gradients():
    x = f64([1.0, -2.0, 3.0])
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, -4.0, 6.0])


def test_backward_on_one_element_tensor_needs_no_grad_argument():
    x = f64([[2.0]])
    (x * 3.0).backward()
    np.testing.assert_array_equal(x.grad, [[3.0]])


def test_backward_on_non_scalar_requires_grad_argument():
    x = f64([1.0, 2.0])
    y = x * 2.0
    with pytest.raises(RuntimeError, match=r"scalar.*shape \(2,\)"):
        y.backward()
    y.backward(np.array([1.0, 10.0]))
    np.testing.assert_array_equal(x.grad, [2.0, 20.0])


def test_backward_grad_of_wrong_shape_names_both_shapes():
    y = f64([1.0, 2.0]) * 2.0
    with pytest.raises(ValueError, match=r"\(3,\).*\(2,\)"):
        y.backward(np.ones(3))


def test_backward_on_constant_is_a_clear_error():
    with pytest.raises(RuntimeError, match="does not require grad"):
        (nl.tensor([1.0]) * 2).backward()


def test_chain_of_10000_ops_has_no_recursion_error():
    x = f64([1.0, 2.0])
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    limit = sys.getrecursionlimit()
    y.sum().backward()
    assert sys.getrecursionlimit() == limit  # not raised to make it pass
    np.testing.assert_allclose(x.grad, [1.0001 ** 10_000] * 2, rtol=1e-9)


def test_tensor_used_several_times_accumulates():
    x = f64([1.0, 2.0, 3.0])
    y = x * x + x * 3.0 + x  # d/dx = 2x + 4
    y.sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.numpy() + 4)


def test_two_backward_calls_accumulate_into_grad():
    x = f64([1.0, 2.0])
    (x * x).sum().backward()
    first = x.grad
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * first)
    np.testing.assert_allclose(first, [2.0, 4.0])  # the first result was not changed in place


def test_diamond_graph_gradients_add():
    x = f64([0.5, -1.0])
    h = x.exp()
    y = (h * 2.0 + h.sqrt()).sum()
    y.backward()
    e = np.exp(x.numpy())
    np.testing.assert_allclose(x.grad, 2 * e + 0.5 * np.sqrt(e))


def test_second_backward_without_retain_graph_raises():
    x = f64([1.0, 2.0])
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = f64([1.0, 2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad, [4.0, 8.0])


def test_saved_buffers_are_released_after_backward():
    x = f64(np.ones((50, 50)))
    h = x * 3.0
    ref = weakref.ref(h.data)  # saved by the Mul below; nothing else keeps it once h is gone
    loss = (h * h).sum()
    del h
    assert ref() is not None  # the graph still holds it
    loss.backward()
    assert ref() is None


def test_leaf_gradients_are_owned_writable_arrays():
    # optimizers update p.grad in place: it must not be a broadcast view nor shared
    a, b = f64([1.0, 2.0]), f64([3.0, 4.0])
    (a + b).sum().backward()
    assert a.grad is not b.grad
    assert a.grad.flags.writeable and b.grad.flags.writeable
    a.grad += 1
    np.testing.assert_array_equal(b.grad, [1.0, 1.0])
    c = f64(3.0)
    (c * 2.0).backward()
    assert isinstance(c.grad, np.ndarray) and c.grad.shape == ()


def test_backward_does_not_alias_callers_grad_array():
    x = f64([1.0, 2.0])
    g = np.array([1.0, 1.0])
    (x + 0.0).backward(g)
    x.grad += 5
    np.testing.assert_array_equal(g, [1.0, 1.0])


def test_op_outputs_are_arrays_not_numpy_scalars():
    s = f64([1.0, 2.0]).sum()
    assert isinstance(s.data, np.ndarray) and s.shape == ()
    assert s.item() == 3.0


# --------------------------------------------------------------------------- no_grad, detach
def test_no_grad_builds_no_graph():
    x = f64([1.0, 2.0])
    with nl.no_grad():
        y = (x * 2.0).exp().sum()
    assert not y.requires_grad and y._ctx is None
    assert nl.is_grad_enabled()
    z = x * 2.0
    assert z.requires_grad and z._ctx is not None


def test_no_grad_as_decorator_and_enable_grad_inside():
    x = f64([1.0])

    @nl.no_grad()
    def f():
        a = x * 2.0
        with nl.enable_grad():
            b = x * 2.0
        return a, b
    a, b = f()
    assert not a.requires_grad and b.requires_grad
    assert nl.is_grad_enabled()


def test_detach_cuts_the_graph_and_shares_data():
    x = f64([1.0, 2.0])
    y = x * 3.0
    d = y.detach()
    assert not d.requires_grad and d._ctx is None
    assert np.shares_memory(d.data, y.data)
    (x * d).sum().backward()  # gradient flows only through the direct use of x
    np.testing.assert_array_equal(x.grad, [3.0, 6.0])


def test_comparisons_give_constant_boolean_tensors():
    x = f64([1.0, -1.0])
    m = x > 0
    assert m.dtype == bool and not m.requires_grad
    np.testing.assert_array_equal(m.numpy(), [True, False])


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "matmul"])
def test_shape_errors_name_both_shapes(op):
    a, b = f64(np.ones((2, 3))), f64(np.ones((4, 5)))
    fn = {"add": lambda: a + b, "sub": lambda: a - b, "mul": lambda: a * b,
          "div": lambda: a / b, "matmul": lambda: a @ b}[op]
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 5\)"):
        fn()


def test_concatenate_and_stack_errors_name_the_shapes():
    a, b = f64(np.ones((2, 3))), f64(np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"\(2, 3\), \(2, 4\)"):
        nl.concatenate([a, b], axis=0)
    with pytest.raises(ValueError, match=r"\(2, 3\), \(2, 4\)"):
        nl.stack([a, b])


def test_reshape_and_index_errors_name_the_shape():
    x = f64(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 2\)"):
        x.reshape(4, 2)
    with pytest.raises(IndexError, match=r"\(2, 3\)"):
        x[5]


# --------------------------------------------------------------------------- dtypes
def test_float_input_defaults_to_float32():
    assert nl.tensor([1.0, 2.0]).dtype == np.float32
    assert nl.tensor(np.ones(3, dtype=np.float64)).dtype == np.float32
    assert nl.Tensor(np.ones(2)).dtype == np.float32


def test_float64_is_kept_when_asked():
    x = nl.tensor(np.ones(3), dtype="float64", requires_grad=True)
    assert x.dtype == np.float64
    y = (x * 2 + 1.5) / 3
    assert y.dtype == np.float64
    y.sum().backward()
    assert x.grad.dtype == np.float64


def test_float32_stays_float32_with_python_and_float64_constants():
    x = nl.tensor([1.0, 2.0], requires_grad=True)
    y = (x * 2.5 + np.float64(1.0) - np.ones(2)) ** 2
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_integer_tensors_are_allowed_but_take_no_gradient():
    t = nl.tensor([1, 2, 3])
    assert t.dtype.kind == "i"
    assert (t + 1).numpy().tolist() == [2, 3, 4]
    with pytest.raises(TypeError, match="float"):
        nl.tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError, match="float"):
        t.requires_grad_()


def test_non_numeric_data_is_rejected_clearly():
    with pytest.raises(TypeError, match="dtype"):
        nl.tensor(["a", "b"])


def test_tensor_attributes():
    x = nl.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    assert x.shape == (2, 3) and x.ndim == 2 and x.size == 6 and len(x) == 2
    assert x.device == "cpu" and x.is_leaf
    assert isinstance(x.numpy(), np.ndarray)
    assert "requires_grad=True" in repr(x)
    assert nl.zeros(2, 3).shape == (2, 3) and nl.ones((4,)).numpy().tolist() == [1.0] * 4


# --------------------------------------------------------------------------- stability (point 6)
EXTREME = np.array([[-1000.0, 0.0, 1000.0], [1000.0, 999.0, -1000.0], [-1000.0, -999.0, -1000.0]])


def _stable_cases():
    import torch
    tf = torch.nn.functional
    t_idx = np.array([0, 2, 1])
    probs = np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0], [0.0, 0.5, 0.5]])
    bce_t = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    return {
        "sigmoid": (F.sigmoid, torch.sigmoid),
        "softmax": (lambda x: F.softmax(x, axis=1), lambda x: tf.softmax(x, dim=1)),
        "log_softmax": (lambda x: F.log_softmax(x, axis=1), lambda x: tf.log_softmax(x, dim=1)),
        "cross_entropy": (lambda x: F.cross_entropy(x, t_idx),
                          lambda x: tf.cross_entropy(x, torch.tensor(t_idx))),
        "cross_entropy_probs": (lambda x: F.cross_entropy(x, probs, label_smoothing=0.1),
                                lambda x: tf.cross_entropy(x, torch.tensor(probs),
                                                           label_smoothing=0.1)),
        "bce_with_logits": (lambda x: F.binary_cross_entropy_with_logits(x, bce_t),
                            lambda x: tf.binary_cross_entropy_with_logits(x, torch.tensor(bce_t))),
        "bce_with_logits_pos_weight": (
            lambda x: F.binary_cross_entropy_with_logits(x, bce_t, pos_weight=np.array([2.0, 0.5, 3.0])),
            lambda x: tf.binary_cross_entropy_with_logits(
                x, torch.tensor(bce_t), pos_weight=torch.tensor([2.0, 0.5, 3.0]))),
    }


@pytest.mark.parametrize("name", ["sigmoid", "softmax", "log_softmax", "cross_entropy",
                                  "cross_entropy_probs", "bce_with_logits",
                                  "bce_with_logits_pos_weight"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_extreme_inputs_stay_finite_and_match_torch(name, dtype):
    torch = pytest.importorskip("torch")
    nl_fn, torch_fn = _stable_cases()[name]
    x = nl.tensor(EXTREME, dtype=dtype, requires_grad=True)
    out = nl_fn(x)
    r = np.random.default_rng(0).standard_normal(out.shape)
    (out * nl.tensor(r, dtype=dtype)).sum().backward()
    assert np.isfinite(out.numpy()).all() and np.isfinite(x.grad).all()
    t = torch.tensor(EXTREME, dtype=getattr(torch, dtype), requires_grad=True)
    t_out = torch_fn(t)
    (t_out * torch.tensor(r, dtype=t.dtype)).sum().backward()
    tol = dict(rtol=1e-6, atol=1e-10) if dtype == "float64" else dict(rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out.numpy(), t_out.detach().numpy(), **tol)
    np.testing.assert_allclose(x.grad, t.grad.numpy(), **tol)


# --------------------------------------------------------------------------- broadcasting (hypothesis)
SHAPE_PAIRS = mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=4)


@settings(max_examples=60, deadline=None)
@given(shapes=SHAPE_PAIRS, seed=st.integers(0, 2**16))
def test_unbroadcast_is_the_adjoint_of_broadcasting(shapes, seed):
    # <unbroadcast(g), v> == <g, broadcast(v)> for all g, v: the defining property of a gradient
    (shape, _), big = shapes.input_shapes, shapes.result_shape
    rng = np.random.default_rng(seed)
    g, v = rng.standard_normal(big), rng.standard_normal(shape)
    u = unbroadcast(g, shape)
    assert u.shape == shape
    np.testing.assert_allclose(np.sum(u * v), np.sum(g * np.broadcast_to(v, big)), rtol=1e-9, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(shapes=SHAPE_PAIRS, op=st.sampled_from(["add", "sub", "mul", "div"]),
       seed=st.integers(0, 2**16))
def test_broadcast_gradients_have_input_shapes_and_match_torch(shapes, op, seed):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    sa, sb = shapes.input_shapes
    a_np, b_np = rng.standard_normal(sa), rng.uniform(0.5, 2.0, sb)
    fn = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b,
          "mul": lambda a, b: a * b, "div": lambda a, b: a / b}[op]
    a, b = f64(a_np), f64(b_np)
    ta, tb = (torch.tensor(v, requires_grad=True) for v in (a_np, b_np))
    r = rng.standard_normal(shapes.result_shape)
    (fn(a, b) * f64(r, False)).sum().backward()
    (fn(ta, tb) * torch.tensor(r)).sum().backward()
    assert a.grad.shape == sa and b.grad.shape == sb
    np.testing.assert_allclose(a.grad, ta.grad.numpy(), rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(b.grad, tb.grad.numpy(), rtol=1e-6, atol=1e-10)
