"""gradcheck: passes on correct ops, and names input, index and both values on a wrong one."""
from __future__ import annotations

import re

import numpy as np
import pytest

import neuralab as nl
from neuralab import functional as F
from neuralab.functions import Function


class WrongSquare(Function):
    """x**2 with a deliberately wrong derivative (3x instead of 2x)."""

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, grad):
        return (grad * 3 * self.x,)


class WrongSecondInput(Function):
    """a * b whose gradient for b is off by one at b's element (1, 2) only."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, grad):
        gb = grad * self.a
        gb[1, 2] += 1.0
        return grad * self.b, gb


def rand(*shape, seed=0):
    return nl.tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


def test_passes_on_correct_ops():
    a, b = rand(3, 4), rand(4, 2, seed=1)
    assert nl.gradcheck(lambda x, y: F.tanh(x @ y).sum(), a, b) is True
    assert nl.gradcheck(lambda x: F.softmax(x, axis=0), a) is True  # non-scalar output


def test_checks_in_float64_and_leaves_inputs_untouched():
    x = rand(2, 3)  # float32: gradcheck works on a float64 copy
    before = x.numpy().copy()
    assert nl.gradcheck(lambda t: (t ** 3).sum(), x)
    np.testing.assert_array_equal(x.numpy(), before)
    assert x.dtype == np.float32 and x.grad is None


def test_wrong_custom_function_raises_naming_input_index_and_values():
    x = nl.tensor([[1.0, -2.0], [0.5, 4.0]], dtype="float64", requires_grad=True)
    with pytest.raises(AssertionError) as info:
        nl.gradcheck(lambda t: WrongSquare.apply(t).sum(), x)
    msg = str(info.value)
    # the worst entry is where |3x - 2x| = |x| is largest: x[1, 1] = 4, analytic 12, numeric 8
    assert "input 0" in msg and "index (1, 1)" in msg
    values = [float(v) for v in re.findall(r"(?:analytic|numeric) (-?[\d.e+-]+)", msg)]
    np.testing.assert_allclose(values, [12.0, 8.0], rtol=1e-6)


def test_wrong_gradient_of_second_input_is_located():
    a, b = rand(3, 4), rand(3, 4, seed=1)
    with pytest.raises(AssertionError, match=r"input 1 .*index \(1, 2\)"):
        nl.gradcheck(lambda x, y: WrongSecondInput.apply(x, y).sum(), a, b)


def test_constant_inputs_are_not_checked():
    a = rand(2, 2)
    c = nl.tensor(np.ones((2, 2)))
    assert nl.gradcheck(lambda x, k: (x * k).sum(), a, c)
    with pytest.raises(ValueError, match="requires_grad"):
        nl.gradcheck(lambda k: k.sum(), c)


def test_output_independent_of_input_has_zero_gradient():
    a = rand(2)
    assert nl.gradcheck(lambda x: nl.tensor([1.0, 2.0], dtype="float64") * 2.0, a)
