"""nn layers against PyTorch: same weights and input give the same output and gradients.

Every comparison runs in float64 with rtol 1e-6: our layer is built with dtype=float64, the
torch layer's state dict is loaded into it (which also checks that the keys agree), both get
the same input and the same upstream gradient, and output, input gradient and every
parameter gradient are compared.
"""
from collections import OrderedDict

import numpy as np
import pytest

import neuralab as nl
from neuralab import nn

torch = pytest.importorskip("torch")
tnn = torch.nn

RTOL, ATOL = 1e-6, 1e-10
F64 = np.float64


def _close(ours, theirs, what):
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=RTOL, atol=ATOL,
                               err_msg=what)


def copy_from_torch(ours: nn.Module, theirs: "tnn.Module") -> None:
    ours.load_state_dict({k: v.detach().numpy().copy() for k, v in theirs.state_dict().items()})


def compare(ours, theirs, x, seed=0, params=True):
    """Forward and backward through both modules; compare everything. Returns the outputs."""
    xt = torch.tensor(x, requires_grad=True)
    xo = nl.tensor(x, dtype=F64, requires_grad=True)
    yo, yt = ours(xo), theirs(xt)
    _close(yo.data, yt.detach().numpy(), "forward output")
    g = np.random.default_rng(seed).normal(size=yo.shape)
    yo.backward(g)
    yt.backward(torch.tensor(g))
    _close(xo.grad, xt.grad.numpy(), "input gradient")
    if params:
        ours_p = dict(ours.named_parameters())
        theirs_p = dict(theirs.named_parameters())
        assert list(ours_p) == list(theirs_p)
        for name, p in ours_p.items():
            _close(p.grad, theirs_p[name].grad.numpy(), f"gradient of {name}")
    return yo, yt


def data(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape)


class TorchResidual(tnn.Module):
    """The torch twin of nn.Residual (torch has none)."""

    def __init__(self, block, projection=None):
        super().__init__()
        self.block = block
        self.projection = projection

    def forward(self, x):
        return self.block(x) + (x if self.projection is None else self.projection(x))


# ------------------------------------------------------------------ Linear and activations
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(bias):
    torch.manual_seed(0)
    theirs = tnn.Linear(5, 3, bias=bias).double()
    ours = nn.Linear(5, 3, bias=bias, dtype=F64)
    assert ours.weight.dtype == np.float64  # so the comparison below is a float64 one
    copy_from_torch(ours, theirs)
    compare(ours, theirs, data(7, 5))
    theirs.zero_grad()
    ours.zero_grad()
    compare(ours, theirs, data(2, 4, 5, seed=1))  # extra leading axes


def test_linear_layout_and_errors():
    layer = nn.Linear(4, 3, rng=0)
    assert layer.weight.shape == (3, 4) and layer.bias.shape == (3,)
    assert layer.weight.dtype == np.float32 and layer.weight.requires_grad
    with pytest.raises(ValueError, match="input has 5 features"):
        layer(nl.tensor(np.ones((2, 5))))
    with pytest.raises(ValueError, match="out_features must be a positive integer"):
        nn.Linear(4, 0)
    same = nn.Linear(4, 3, rng=0)
    assert np.array_equal(layer.weight.data, same.weight.data)
    assert not np.array_equal(layer.weight.data, nn.Linear(4, 3, rng=1).weight.data)


@pytest.mark.parametrize("ours, theirs", [
    (nn.ReLU(), tnn.ReLU()), (nn.Sigmoid(), tnn.Sigmoid()), (nn.Tanh(), tnn.Tanh()),
    (nn.LeakyReLU(), tnn.LeakyReLU()), (nn.LeakyReLU(0.2), tnn.LeakyReLU(0.2)),
    (nn.GELU(), tnn.GELU()), (nn.GELU("tanh"), tnn.GELU("tanh")),
    (nn.Softmax(axis=1), tnn.Softmax(dim=1)), (nn.Softmax(axis=0), tnn.Softmax(dim=0)),
    (nn.LogSoftmax(axis=-1), tnn.LogSoftmax(dim=-1)), (nn.Identity(), tnn.Identity()),
    (nn.Flatten(), tnn.Flatten()),
])
def test_activation_matches_torch(ours, theirs):
    x = data(6, 4, 3) if isinstance(ours, nn.Flatten) else data(6, 4) * 3
    compare(ours, theirs, x)


def test_step_is_heaviside_with_zero_gradient():
    x = nl.tensor([-1.5, -0.0, 0.0, 2.0], dtype=F64, requires_grad=True)
    y = nn.Step()(x)
    assert y.data.tolist() == [0, 1, 1, 1]
    y.sum().backward()
    assert np.all(x.grad == 0)


def test_flatten_axes():
    x = nl.tensor(np.zeros((2, 3, 4, 5)))
    assert nn.Flatten()(x).shape == (2, 60)
    assert nn.Flatten(start_axis=2)(x).shape == (2, 3, 20)
    assert nn.Flatten(0, 1)(x).shape == (6, 4, 5)
    assert tuple(tnn.Flatten(0, 1)(torch.zeros(2, 3, 4, 5)).shape) == (6, 4, 5)


def test_numpy_input_is_accepted():
    model = nn.Sequential(nn.Linear(3, 2, rng=0), nn.ReLU())
    x = data(4, 3)
    np.testing.assert_allclose(model(x).data, model(nl.tensor(x)).data)


# ------------------------------------------------------------------ Dropout
def test_dropout_is_inverted_seeded_and_off_in_eval():
    x = nl.tensor(np.ones((200, 100)), dtype=F64, requires_grad=True)
    a, b, c = nn.Dropout(0.3, rng=42), nn.Dropout(0.3, rng=42), nn.Dropout(0.3, rng=43)
    ya, yb, yc = a(x), b(x), c(x)
    assert np.array_equal(ya.data, yb.data)          # same seed, same mask
    assert not np.array_equal(ya.data, yc.data)      # other seed, other mask
    assert not np.array_equal(ya.data, a(x).data)    # the layer's Generator advances
    kept = ya.data != 0
    assert abs(kept.mean() - 0.7) < 0.01             # 20000 draws: 5 standard errors
    np.testing.assert_allclose(ya.data[kept], 1 / 0.7)  # survivors scaled up (inverted)
    ya.backward(np.ones(ya.shape))
    np.testing.assert_allclose(x.grad, ya.data)      # gradient flows through the same mask
    a.eval()
    assert a(x) is x                                  # identity in eval mode
    assert nn.Dropout(0.0)(x) is x
    with pytest.raises(ValueError, match="p must be a probability"):
        nn.Dropout(1.0)


def test_dropout_matches_torch_when_given_its_mask():
    # torch's RNG differs, so compare the maths: with torch's mask as a fixed multiplier the
    # expected value of the output is the input in both
    x = nl.tensor(np.full((400, 250), 2.0), dtype=F64)
    y = nn.Dropout(0.5, rng=0)(x)
    yt = tnn.Dropout(0.5)(torch.full((400, 250), 2.0, dtype=torch.float64))
    assert abs(y.data.mean() - 2.0) < 0.03 and abs(yt.numpy().mean() - 2.0) < 0.03
    assert set(np.unique(y.data)) == set(np.unique(yt.numpy())) == {0.0, 4.0}


# ------------------------------------------------------------------ BatchNorm1d
@pytest.mark.parametrize("kwargs", [
    {}, {"momentum": 0.3, "eps": 1e-3}, {"momentum": None}, {"affine": False},
    {"track_running_stats": False}])
@pytest.mark.parametrize("shape", [(16, 4), (8, 4, 5)])
def test_batchnorm1d_train_eval_and_running_stats(kwargs, shape):
    torch.manual_seed(0)
    theirs = tnn.BatchNorm1d(4, **kwargs).double()
    ours = nn.BatchNorm1d(4, dtype=F64, **kwargs)
    if theirs.affine:  # non-trivial scale and shift
        with torch.no_grad():
            theirs.weight.uniform_(0.5, 1.5)
            theirs.bias.uniform_(-1, 1)
    copy_from_torch(ours, theirs)
    for step in range(4):  # a few training steps on shifted, scaled batches
        x = data(*shape, seed=step) * (step + 1) + step
        theirs.zero_grad()
        ours.zero_grad()
        compare(ours, theirs, x, seed=step)
        for name, value in theirs.state_dict().items():
            _close(ours.state_dict()[name], value.numpy(), f"{name} after step {step}")
    assert ours.training
    ours.eval()
    theirs.eval()
    theirs.zero_grad()
    ours.zero_grad()
    compare(ours, theirs, data(*shape, seed=9) * 2 + 1, seed=9)
    if theirs.track_running_stats:
        assert int(ours.num_batches_tracked) == 4
        assert ours.state_dict()["num_batches_tracked"].dtype == np.int64


def test_batchnorm1d_buffers_and_errors():
    bn = nn.BatchNorm1d(3)
    assert list(bn.state_dict()) == list(tnn.BatchNorm1d(3).state_dict())
    assert [name for name, _ in bn.named_parameters()] == ["weight", "bias"]
    assert bn.num_parameters() == 6  # buffers are not parameters
    with pytest.raises(ValueError, match=r"BatchNorm1d\(3\) expects input of shape \(N, 3\)"):
        bn(nl.tensor(np.zeros((4, 5))))
    with pytest.raises(ValueError, match="more than one value per channel"):
        bn(nl.tensor(np.zeros((1, 3))))
    bn.eval()
    assert bn(nl.tensor(np.zeros((1, 3)))).shape == (1, 3)  # one sample is fine in eval
    assert list(nn.BatchNorm1d(3, track_running_stats=False).state_dict()) == ["weight", "bias"]


def test_batchnorm1d_in_no_grad_training_still_updates_running_stats():
    ours = nn.BatchNorm1d(2, dtype=F64)
    theirs = tnn.BatchNorm1d(2).double()
    x = data(10, 2) + 3
    with nl.no_grad():
        ours(nl.tensor(x, dtype=F64))
    with torch.no_grad():
        theirs(torch.tensor(x))
    _close(ours.running_mean, theirs.running_mean.numpy(), "running_mean")
    _close(ours.running_var, theirs.running_var.numpy(), "running_var")


# ------------------------------------------------------------------ LayerNorm
@pytest.mark.parametrize("normalized_shape, shape, affine", [
    (6, (5, 6), True), (6, (2, 3, 6), True), ((3, 6), (4, 3, 6), True), (6, (5, 6), False)])
def test_layernorm_matches_torch(normalized_shape, shape, affine):
    torch.manual_seed(0)
    theirs = tnn.LayerNorm(normalized_shape, elementwise_affine=affine).double()
    if affine:
        with torch.no_grad():
            theirs.weight.uniform_(0.5, 1.5)
            theirs.bias.uniform_(-1, 1)
    ours = nn.LayerNorm(normalized_shape, elementwise_affine=affine, dtype=F64)
    copy_from_torch(ours, theirs)
    compare(ours, theirs, data(*shape) * 3 + 1)
    ours.eval()
    theirs.eval()  # no running statistics: eval is the same function
    ours.zero_grad()
    theirs.zero_grad()
    compare(ours, theirs, data(*shape, seed=1))


def test_layernorm_rejects_wrong_trailing_shape():
    with pytest.raises(ValueError, match="does not end with normalized_shape"):
        nn.LayerNorm(4)(nl.tensor(np.zeros((2, 5))))


# ------------------------------------------------------------------ Residual
def test_residual_without_projection_matches_torch():
    torch.manual_seed(0)
    tblock = tnn.Sequential(tnn.Linear(6, 6), tnn.Tanh()).double()
    theirs = TorchResidual(tblock)
    ours = nn.Residual(nn.Sequential(nn.Linear(6, 6, dtype=F64), nn.Tanh()), 6, 6)
    assert ours.projection is None
    copy_from_torch(ours, theirs)
    compare(ours, theirs, data(5, 6))


def test_residual_with_projection_matches_torch():
    torch.manual_seed(0)
    theirs = TorchResidual(tnn.Sequential(tnn.Linear(4, 6), tnn.ReLU()),
                           tnn.Linear(4, 6, bias=False)).double()
    ours = nn.Residual(nn.Sequential(nn.Linear(4, 6, dtype=F64), nn.ReLU()), in_features=4,
                       out_features=6, dtype=F64)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == \
        ["block.0.weight", "block.0.bias", "projection.weight"]
    assert ours.projection.weight.dtype == np.float64
    copy_from_torch(ours, theirs)
    compare(ours, theirs, data(5, 4))
    explicit = nn.Residual(nn.Linear(4, 6), projection=nn.Linear(4, 6))
    assert [n for n, _ in explicit.named_parameters()] == \
        ["block.weight", "block.bias", "projection.weight", "projection.bias"]


def test_residual_width_change_without_projection_is_a_clear_error():
    res = nn.Residual(nn.Linear(4, 6))
    with pytest.raises(ValueError, match="give Residual in_features and out_features"):
        res(nl.tensor(np.zeros((2, 4))))


# ------------------------------------------------------------------ Sequential and ModuleList
def test_sequential_matches_torch_and_has_its_keys():
    torch.manual_seed(0)
    theirs = tnn.Sequential(tnn.Linear(5, 8), tnn.BatchNorm1d(8), tnn.ReLU(), tnn.Dropout(0.5),
                            tnn.Linear(8, 3), tnn.LayerNorm(3)).double()
    ours = nn.Sequential(nn.Linear(5, 8, dtype=F64), nn.BatchNorm1d(8, dtype=F64), nn.ReLU(),
                         nn.Dropout(0.5), nn.Linear(8, 3, dtype=F64), nn.LayerNorm(3, dtype=F64))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    copy_from_torch(ours, theirs)
    ours.eval()
    theirs.eval()
    compare(ours, theirs, data(6, 5))
    assert ours.num_parameters() == sum(p.numel() for p in theirs.parameters()) == 48 + 16 + 27 + 6


def test_sequential_container_protocol():
    a, b, c = nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)
    model = nn.Sequential(a, b)
    assert len(model) == 2 and model[0] is a and model[-1] is b and list(model) == [a, b]
    model.append(c)
    assert len(model) == 3 and model[2] is c and list(model.state_dict())[-1] == "2.bias"
    head = model[1:]
    assert isinstance(head, nn.Sequential) and list(head) == [b, c]
    assert list(head.state_dict()) == ["2.weight", "2.bias"]  # names kept, as PyTorch
    assert model(nl.tensor(np.ones((4, 2)))).shape == (4, 1)
    named = nn.Sequential(OrderedDict([("hidden", nn.Linear(2, 3)), ("act", nn.ReLU())]))
    assert list(named.state_dict()) == ["hidden.weight", "hidden.bias"]
    with pytest.raises(IndexError, match="out of range for 3 modules"):
        model[3]
    with pytest.raises(TypeError, match="did you write nn.ReLU instead of nn.ReLU()"):
        nn.Sequential(nn.Linear(2, 3), nn.ReLU)


def test_modulelist_registers_its_modules():
    class Tower(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([nn.Linear(4, 4) for _ in range(3)])

        def forward(self, x):
            for block in self.blocks:
                x = block(x)
            return x

    tower = Tower()
    assert len(tower.parameters()) == 6
    assert [n for n, _ in tower.named_parameters()][:2] == ["blocks.0.weight", "blocks.0.bias"]
    tower.blocks.append(nn.Linear(4, 2))
    tower.blocks.extend([nn.ReLU()])
    assert len(tower.blocks) == 5 and tower(nl.tensor(np.ones((1, 4)))).shape == (1, 2)
    tower.blocks[4] = nn.Tanh()
    assert isinstance(tower.blocks[4], nn.Tanh)
    with pytest.raises(NotImplementedError, match="iterate over it"):
        tower.blocks(nl.tensor(np.ones(4)))


# ------------------------------------------------------------------ MLP
_TORCH_ACT = {"relu": tnn.ReLU, "leaky_relu": tnn.LeakyReLU, "gelu": tnn.GELU, "tanh": tnn.Tanh,
              "sigmoid": tnn.Sigmoid, "identity": tnn.Identity,
              "softmax": lambda: tnn.Softmax(dim=-1)}


def torch_mlp(in_features, hidden, out_features, activation="relu", dropout=0.0, norm=None,
              residual=False, output_activation=None):
    """The same architecture written directly in torch."""
    layers, widths = [], (in_features,) + tuple(hidden)
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        block = [tnn.Linear(n_in, n_out)]
        if norm == "batch":
            block.append(tnn.BatchNorm1d(n_out))
        elif norm == "layer":
            block.append(tnn.LayerNorm(n_out))
        block.append(_TORCH_ACT[activation]())
        if dropout:
            block.append(tnn.Dropout(dropout))
        block = tnn.Sequential(*block)
        if residual:
            block = TorchResidual(block, tnn.Linear(n_in, n_out, bias=False) if n_in != n_out else None)
        layers.append(block)
    layers.append(tnn.Linear(widths[-1], out_features))
    if output_activation:
        layers.append(_TORCH_ACT[output_activation]())
    return tnn.Sequential(*layers).double()


MLP_VARIANTS = [
    dict(hidden=(8,), activation="relu"),
    dict(hidden=(8, 6), activation="tanh", output_activation="softmax"),
    dict(hidden=(8, 8), activation="gelu", norm="batch"),
    dict(hidden=(8, 8), activation="leaky_relu", norm="layer", output_activation="sigmoid"),
    dict(hidden=(8, 8, 6), activation="relu", residual=True),
    dict(hidden=(5, 8), activation="sigmoid", norm="batch", residual=True),
    dict(hidden=(8, 8), activation="relu", norm="layer", residual=True, dropout=0.2),
    dict(hidden=(), activation="identity"),
]


@pytest.mark.parametrize("cfg", MLP_VARIANTS, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_mlp_matches_equivalent_torch_sequential(cfg):
    torch.manual_seed(0)
    theirs = torch_mlp(5, out_features=3, **cfg)
    ours = nn.MLP(5, out_features=3, rng=0, dtype=F64, **cfg)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert ours.num_parameters() == sum(p.numel() for p in theirs.parameters())
    assert all(p.dtype == np.float64 for p in ours.parameters())  # a true float64 comparison
    copy_from_torch(ours, theirs)
    if cfg.get("dropout"):  # torch's dropout masks differ from ours: compare in eval mode
        ours.eval()
        theirs.eval()
    for step in range(2):  # twice, so batch-norm running statistics are compared after updates
        ours.zero_grad()
        theirs.zero_grad()
        compare(ours, theirs, data(7, 5, seed=step) * 2, seed=step)
    for name, value in theirs.state_dict().items():
        _close(ours.state_dict()[name], value.numpy(), name)
    ours.eval()
    theirs.eval()
    ours.zero_grad()
    theirs.zero_grad()
    compare(ours, theirs, data(4, 5, seed=5), seed=5)


def test_mlp_dropout_is_deterministic_with_a_seed_and_off_in_eval():
    x = nl.tensor(data(16, 5))
    a = nn.MLP(5, hidden=(32, 32), out_features=2, dropout=0.5, rng=3)
    b = nn.MLP(5, hidden=(32, 32), out_features=2, dropout=0.5, rng=3)
    np.testing.assert_array_equal(a(x).data, b(x).data)
    assert not np.array_equal(a(x).data, a(x).data)   # fresh masks each call in training
    a.eval()
    np.testing.assert_array_equal(a(x).data, a(x).data)
    assert [type(m).__name__ for m in a[0]] == ["Linear", "ReLU", "Dropout"]


def test_mlp_structure_keys_and_errors():
    model = nn.MLP(64, hidden=(128, 128), out_features=10, dropout=0.2, norm="batch", rng=0)
    keys = list(model.state_dict())
    assert keys[:7] == ["0.0.weight", "0.0.bias", "0.1.weight", "0.1.bias", "0.1.running_mean",
                        "0.1.running_var", "0.1.num_batches_tracked"]
    assert keys[-2:] == ["2.weight", "2.bias"] and len(model) == 3
    assert model.num_parameters() == (64 * 128 + 128 + 256) + (128 * 128 + 128 + 256) + (128 * 10 + 10)
    assert nn.MLP(3, (4,), 2, output_activation="softmax")(nl.tensor(np.ones((2, 3)))).data.sum() \
        == pytest.approx(2.0)
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        nn.MLP(3, (4,), 2, activation="swish")
    with pytest.raises(ValueError, match="norm must be None, 'batch' or 'layer'"):
        nn.MLP(3, (4,), 2, norm="group")
    with pytest.raises(ValueError, match="hidden must be positive layer widths"):
        nn.MLP(3, (4, 0), 2)
    with pytest.raises(ValueError, match="dropout must be a probability"):
        nn.MLP(3, (4,), 2, dropout=1.5)


# ------------------------------------------------------------------ Module behaviour
def test_state_dict_round_trip():
    a = nn.MLP(4, hidden=(6,), out_features=2, norm="batch", rng=0)
    b = nn.MLP(4, hidden=(6,), out_features=2, norm="batch", rng=1)
    x = nl.tensor(data(5, 4))
    a(x)  # move a's running statistics away from their initial values
    a.eval()
    b.eval()
    assert not np.allclose(a(x).data, b(x).data)
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a(x).data, b(x).data)
    for (name, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        np.testing.assert_array_equal(va, vb, err_msg=name)
        assert va is not vb  # copied into b's own arrays, not shared
    a[0][0].weight.data += 1  # changing a later leaves b alone
    assert not np.allclose(a(x).data, b(x).data)


def test_load_state_dict_errors_are_clear_and_leave_the_model_unchanged():
    model = nn.Sequential(nn.Linear(3, 4, rng=0), nn.ReLU(), nn.Linear(4, 2, rng=0))
    before = {k: v.copy() for k, v in model.state_dict().items()}
    state = {k: np.zeros_like(v) for k, v in model.state_dict().items()}
    missing = dict(state)
    del missing["2.bias"]
    with pytest.raises(KeyError, match=r"missing keys \['2.bias'\]"):
        model.load_state_dict(missing)
    with pytest.raises(KeyError, match=r"unexpected keys \['3.weight'\]"):
        model.load_state_dict({**state, "3.weight": np.zeros(2)})
    wrong = {**state, "2.weight": np.zeros((4, 2))}
    with pytest.raises(ValueError, match=r"'2.weight' has shape \(4, 2\) in the state dict but \(2, 4\)"):
        model.load_state_dict(wrong)
    for k, v in model.state_dict().items():  # nothing was half-loaded
        np.testing.assert_array_equal(v, before[k], err_msg=k)
    model.load_state_dict(missing, strict=False)  # partial load when asked
    assert np.all(model[0].weight.data == 0) and np.array_equal(model[2].bias.data, before["2.bias"])
    with pytest.raises(TypeError, match="expects a dict"):
        model.load_state_dict([1, 2])


def test_load_state_dict_accepts_torch_tensors_and_keeps_arrays_in_place():
    theirs = tnn.Linear(3, 2)
    ours = nn.Linear(3, 2)
    w = ours.weight.data
    ours.load_state_dict(theirs.state_dict())
    assert ours.weight.data is w and w.dtype == np.float32  # in place, dtype kept
    np.testing.assert_allclose(w, theirs.weight.detach().numpy())


def test_train_eval_propagate_and_return_self():
    model = nn.MLP(3, hidden=(4, 4), out_features=2, dropout=0.1, norm="batch", residual=True)
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    assert model.train() is model and all(m.training for m in model.modules())
    model.train(False)
    assert not model[1].block[1].training


def test_zero_grad_parameters_and_children():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    assert [type(c).__name__ for c in model.children()] == ["Linear", "ReLU", "Linear"]
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert all(isinstance(p, nn.Parameter) for p in model.parameters())
    model(nl.tensor(np.ones((2, 3)))).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_repr_is_readable_and_matches_torch():
    ours = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2, bias=False), nn.Sigmoid())
    theirs = tnn.Sequential(tnn.Linear(3, 4), tnn.ReLU(), tnn.Linear(4, 2, bias=False), tnn.Sigmoid())
    assert repr(ours) == repr(theirs)
    assert repr(nn.Dropout(0.2)) == "Dropout(p=0.2)"
    assert repr(nn.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"
    text = repr(nn.MLP(3, hidden=(4,), out_features=2, norm="layer", residual=True))
    assert text.startswith("MLP(\n  in_features=3, hidden=(4,), out_features=2")
    assert "(0): Residual(\n    (block): Sequential(\n      (0): Linear(in_features=3, out_features=4" in text
    assert "(projection): Linear(in_features=3, out_features=4, bias=False)" in text


def test_num_parameters():
    assert nn.Linear(3, 2).num_parameters() == 8
    assert nn.Linear(3, 2, bias=False).num_parameters() == 6
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    assert model.num_parameters() == 58
    model[0].weight.requires_grad = False
    assert model.num_parameters(trainable_only=True) == 58 - 32


def test_to_dtype_and_cpu():
    model = nn.MLP(3, hidden=(4,), out_features=2, norm="batch")
    assert model.to("cpu") is model
    model.to(dtype="float64")
    assert all(v.dtype == np.float64 for k, v in model.state_dict().items() if "num_batches" not in k)
    assert model.state_dict()["0.1.num_batches_tracked"].dtype == np.int64
    with pytest.raises(TypeError, match="must be a float dtype"):
        model.to(dtype="int32")
    with pytest.raises(ValueError, match="unknown device"):
        model.to("tpu")


def test_mlp_gradients_pass_finite_differences():
    # an oracle independent of torch: central differences through a residual, normalised MLP,
    # for the input and every parameter
    for norm in ("batch", "layer"):
        model = nn.MLP(3, hidden=(4, 5), out_features=2, activation="tanh", norm=norm,
                       residual=True, rng=0, dtype=F64)
        slots = []  # (module, attribute) of each parameter, so fn can swap in gradcheck's copies
        for mod_name, module in model.named_modules():
            for attr, value in list(vars(module).items()):
                if isinstance(value, nn.Parameter):
                    slots.append((module, attr))

        def fn(x, *params):
            for (module, attr), p in zip(slots, params):
                setattr(module, attr, p)
            return model(x)

        x = nl.tensor(data(6, 3), dtype=F64, requires_grad=True)
        params = [getattr(m, a) for m, a in slots]
        assert len(params) == len(model.parameters())
        assert nl.gradcheck(fn, x, *params)


def test_deepcopy_keeps_weights_and_dropout_stream():
    import copy
    model = nn.MLP(3, hidden=(8,), out_features=2, dropout=0.5, rng=0)
    twin = copy.deepcopy(model)
    x = nl.tensor(data(4, 3))
    np.testing.assert_array_equal(model(x).data, twin(x).data)
    assert twin[0][0].weight is not model[0][0].weight
