"""nn.init: shapes, dtypes, seeding, and the variances of each initialiser (statistically)."""
import math

import numpy as np
import pytest
from scipy import stats

from neuralab import nn
from neuralab.nn import init

torch = pytest.importorskip("torch")

SHAPE = (300, 400)  # 120000 draws: the sample variance is within about 1% of the true one
FAN_IN, FAN_OUT = 400, 300


def _rel(a, b):
    return abs(a - b) / abs(b)


@pytest.mark.parametrize("fn, kwargs, var", [
    (init.xavier_uniform, {}, 2 / (FAN_IN + FAN_OUT)),
    (init.xavier_uniform, {"gain": 5 / 3}, (5 / 3) ** 2 * 2 / (FAN_IN + FAN_OUT)),
    (init.xavier_normal, {}, 2 / (FAN_IN + FAN_OUT)),
    (init.kaiming_uniform, {"nonlinearity": "relu"}, 2 / FAN_IN),
    (init.kaiming_uniform, {"nonlinearity": "relu", "mode": "fan_out"}, 2 / FAN_OUT),
    (init.kaiming_uniform, {"a": math.sqrt(5)}, 1 / (3 * FAN_IN)),  # PyTorch Linear's default
    (init.kaiming_normal, {"nonlinearity": "relu"}, 2 / FAN_IN),
    (init.kaiming_normal, {"nonlinearity": "tanh"}, (5 / 3) ** 2 / FAN_IN),
    (init.kaiming_normal, {"a": 0.2, "nonlinearity": "leaky_relu"}, 2 / (1 + 0.04) / FAN_IN),
    (init.lecun_normal, {}, 1 / FAN_IN),
])
def test_variance_matches_formula(fn, kwargs, var):
    w = fn(SHAPE, np.random.default_rng(0), **kwargs)
    assert w.shape == SHAPE and w.dtype == np.float32
    assert _rel(w.var(), var) < 0.03
    assert abs(w.mean()) < 4 * math.sqrt(var / w.size)


@pytest.mark.parametrize("ours, theirs, kwargs", [
    (init.xavier_uniform, torch.nn.init.xavier_uniform_, {}),
    (init.xavier_normal, torch.nn.init.xavier_normal_, {"gain": 2.0}),
    (init.kaiming_uniform, torch.nn.init.kaiming_uniform_, {"a": math.sqrt(5)}),
    (init.kaiming_uniform, torch.nn.init.kaiming_uniform_, {"mode": "fan_out", "nonlinearity": "relu"}),
    (init.kaiming_normal, torch.nn.init.kaiming_normal_, {"nonlinearity": "relu"}),
])
def test_variance_agrees_with_torch(ours, theirs, kwargs):
    # conv-shaped weight (out, in, k) exercises the receptive-field part of the fans
    shape = (64, 32, 5)
    w = ours(shape, np.random.default_rng(1), **kwargs)
    torch.manual_seed(1)
    t = theirs(torch.empty(shape, dtype=torch.float64), **kwargs).numpy()
    assert _rel(w.var(), t.var()) < 0.05
    if ours in (init.xavier_uniform, init.kaiming_uniform):  # same support [-b, b]
        assert _rel(np.abs(w).max(), np.abs(t).max()) < 0.01


@pytest.mark.parametrize("fn, dist", [
    (lambda s, r: init.xavier_uniform(s, r), lambda b: stats.uniform(-b, 2 * b).cdf),
    (lambda s, r: init.kaiming_uniform(s, r, nonlinearity="relu"), lambda b: stats.uniform(-b, 2 * b).cdf),
])
def test_uniform_initialisers_are_uniform(fn, dist):
    w = fn((200, 100), np.random.default_rng(3)).astype(np.float64).ravel()
    bound = np.abs(w).max()
    assert stats.kstest(w, dist(bound)).pvalue > 0.01
    assert stats.kstest(w, stats.norm(0, w.std()).cdf).pvalue < 1e-6  # and not normal


def test_normal_initialisers_are_normal():
    w = init.kaiming_normal((200, 100), np.random.default_rng(4), nonlinearity="relu").ravel()
    assert stats.kstest(w.astype(np.float64), stats.norm(0, math.sqrt(2 / 100)).cdf).pvalue > 0.01


@pytest.mark.parametrize("name, param", [
    ("linear", None), ("sigmoid", None), ("tanh", None), ("relu", None), ("leaky_relu", None),
    ("leaky_relu", 0.2), ("selu", None), ("conv2d", None)])
def test_calculate_gain_matches_torch(name, param):
    assert init.calculate_gain(name, param) == pytest.approx(torch.nn.init.calculate_gain(name, param))


def test_calculate_gain_rejects_unknown_names():
    with pytest.raises(ValueError, match="unsupported nonlinearity 'softplus'"):
        init.calculate_gain("softplus")


def test_fans_of_dense_and_conv_shapes():
    assert init.fan_in_and_fan_out((10, 3)) == (3, 10)
    assert init.fan_in_and_fan_out((10, 3, 5)) == (15, 50)
    assert init.fan_in_and_fan_out((8, 4, 3, 3)) == (36, 72)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.xavier_uniform((5,), np.random.default_rng(0))
    with pytest.raises(ValueError, match="mode must be"):
        init.kaiming_normal((5, 5), np.random.default_rng(0), mode="fan_avg")


def test_seeding_dtype_and_constants():
    a = init.xavier_normal((4, 5), np.random.default_rng(7), dtype=np.float64)
    b = init.xavier_normal((4, 5), np.random.default_rng(7), dtype="float64")
    c = init.xavier_normal((4, 5), 7, dtype=np.float64)  # a seed works as well
    d = init.xavier_normal((4, 5), np.random.default_rng(8), dtype=np.float64)
    assert a.dtype == np.float64 and np.array_equal(a, b) and np.array_equal(a, c)
    assert not np.allclose(a, d)
    rng = np.random.default_rng(0)
    first, second = init.normal((3,), rng), init.normal((3,), rng)  # the Generator advances
    assert not np.allclose(first, second)
    assert np.array_equal(init.zeros((2, 3)), np.zeros((2, 3), np.float32))
    assert init.ones(4).dtype == np.float32 and init.ones(4).sum() == 4
    assert np.all(init.constant((2,), 0.5) == 0.5)
    u = init.uniform((1000,), rng, -0.1, 0.3)
    assert u.min() >= -0.1 and u.max() < 0.3


def test_global_numpy_seed_is_not_used():
    np.random.seed(0)
    a = init.xavier_uniform((3, 3), np.random.default_rng(5))
    np.random.seed(1)
    b = init.xavier_uniform((3, 3), np.random.default_rng(5))
    assert np.array_equal(a, b)


def test_linear_default_matches_pytorch_bounds():
    layer = nn.Linear(50, 400, rng=0)
    bound = 1 / math.sqrt(50)
    w, b = layer.weight.data, layer.bias.data
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert np.abs(b).max() <= bound and np.abs(b).max() > 0.9 * bound
    assert _rel(w.var(), bound ** 2 / 3) < 0.03


def test_linear_named_init_and_zero_bias():
    layer = nn.Linear(300, 400, rng=0, init="xavier_normal")
    assert np.all(layer.bias.data == 0)
    assert _rel(layer.weight.data.var(), 2 / 700) < 0.03
    custom = nn.Linear(3, 2, init=lambda shape, rng, dtype: np.full(shape, 0.5, dtype))
    assert np.all(custom.weight.data == 0.5)
    with pytest.raises(ValueError, match="unknown init 'glorious'"):
        nn.Linear(3, 2, init="glorious")


@pytest.mark.parametrize("activation, var", [
    ("relu", 2 / 400), ("gelu", 2 / 400), ("leaky_relu", 2 / (1 + 1e-4) / 400),
    ("tanh", 2 / (400 + 300)), ("sigmoid", 2 / (400 + 300)), ("identity", 2 / (400 + 300))])
def test_mlp_picks_he_for_relu_family_and_xavier_otherwise(activation, var):
    model = nn.MLP(400, hidden=(300,), out_features=200, activation=activation, rng=0)
    hidden, out = model[0][0], model[1]
    assert _rel(hidden.weight.data.var(), var) < 0.03
    assert np.all(hidden.bias.data == 0)
    # the output layer has no activation, so it gets Xavier whatever the hidden activation
    assert _rel(out.weight.data.var(), 2 / (300 + 200)) < 0.03
    relu_out = nn.MLP(400, hidden=(300,), out_features=200, output_activation="relu", rng=0)
    assert _rel(relu_out[1].weight.data.var(), 2 / 300) < 0.03


def test_mlp_init_none_is_pytorch_default():
    model = nn.MLP(400, hidden=(300,), out_features=2, init=None, rng=0)
    assert _rel(model[0][0].weight.data.var(), 1 / (3 * 400)) < 0.03
    assert np.any(model[0][0].bias.data != 0)
