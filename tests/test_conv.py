"""Convolution and pooling: finite differences, and PyTorch's layers with the same weights."""
from __future__ import annotations

import numpy as np
import pytest

import neuralab as nl
from neuralab import functional as F
from neuralab import nn

from _layer_check import close, compare_params, copy_to_torch, t64, torch64

torch = pytest.importorskip("torch")
TF = torch.nn.functional

CONV2D = [  # (stride, padding, dilation, groups, bias)
    (1, 0, 1, 1, True),
    (2, 1, 1, 1, True),
    (1, 2, 2, 1, False),
    (2, (1, 0), (1, 2), 2, True),
    (1, "same", 2, 1, True),
    ((2, 1), 1, 1, 4, True),   # depthwise
]


@pytest.mark.parametrize("band", [None, 1])
@pytest.mark.parametrize("stride,padding,dilation,groups,bias", CONV2D)
def test_conv2d_matches_torch(stride, padding, dilation, groups, bias, band, monkeypatch):
    if band:  # one output row per im2col band: the banded forward and backward must agree too
        monkeypatch.setattr(nl.functions.Conv2d, "CHUNK", band)
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=(2, 4, 7, 6)), rng.normal(size=(8, 4 // groups, 3, 2)), rng.normal(size=8)
    X, W, B = t64(x), t64(w), t64(b)
    y = F.conv2d(X, W, B if bias else None, stride, padding, dilation, groups)
    tx, tw, tb = torch64(x), torch64(w), torch64(b)
    ty = TF.conv2d(tx, tw, tb if bias else None, stride, padding, dilation, groups)
    g = rng.normal(size=ty.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    close(y, ty, "output")
    close(X.grad, tx.grad, "dx")
    close(W.grad, tw.grad, "dw")
    if bias:
        close(B.grad, tb.grad, "db")


@pytest.mark.parametrize("band", [None, 1])
def test_conv2d_workspace_gives_the_same_bits_with_graphs_alive(band, monkeypatch):
    # nn.Conv2d passes a workspace so that its band buffers are reused from call to call
    # (bands of different sizes, forwards and backwards interleaved): the same bits as fresh arrays
    if band:
        monkeypatch.setattr(nl.functions.Conv2d, "CHUNK", band)
    rng = np.random.default_rng(1)
    xs = [rng.normal(size=(3, 4, 7, 6)) for _ in range(2)]
    w, b = rng.normal(size=(6, 2, 3, 3)), rng.normal(size=6)
    gs = [rng.normal(size=(3, 6, 7, 6)) for _ in range(2)]

    def forward(x, ws):
        X, W, B = t64(x), t64(w), t64(b)
        return X, W, B, F.conv2d(X, W, B, 1, 1, 1, 2, workspace=ws)

    ws = nl.functions.Workspace()
    live = [forward(x, ws) for x in xs]
    for (_, _, _, y), g in reversed(list(zip(live, gs))):
        y.backward(g)
    assert len(ws) >= 2  # the buffers were kept for the next call
    again = forward(xs[0], ws)  # a third call reuses them
    again[3].backward(gs[0])
    for got, x, g in ((live[0], xs[0], gs[0]), (live[1], xs[1], gs[1]), (again, xs[0], gs[0])):
        ref = forward(x, None)
        ref[3].backward(g)
        assert np.array_equal(got[3].data, ref[3].data)
        for a, r in zip(got[:3], ref[:3]):  # dx, dw, db
            assert np.array_equal(np.asarray(a.grad), np.asarray(r.grad))


@pytest.mark.parametrize("stride,padding,dilation,groups", [(1, 0, 1, 1), (2, 2, 1, 1), (1, "same", 3, 2), (3, 1, 2, 1)])
def test_conv1d_matches_torch(stride, padding, dilation, groups):
    rng = np.random.default_rng(1)
    x, w, b = rng.normal(size=(3, 4, 11)), rng.normal(size=(6, 4 // groups, 3)), rng.normal(size=6)
    X, W, B = t64(x), t64(w), t64(b)
    y = F.conv1d(X, W, B, stride, padding, dilation, groups)
    tx, tw, tb = torch64(x), torch64(w), torch64(b)
    ty = TF.conv1d(tx, tw, tb, stride, padding, dilation, groups)
    g = rng.normal(size=ty.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    for ours, theirs, what in ((y, ty, "out"), (X.grad, tx.grad, "dx"), (W.grad, tw.grad, "dw"), (B.grad, tb.grad, "db")):
        close(ours, theirs, what)


POOLS = [  # (ours, torch's, input shape, kwargs)
    (F.max_pool2d, TF.max_pool2d, (2, 3, 7, 8), dict(kernel_size=2)),
    (F.max_pool2d, TF.max_pool2d, (2, 3, 7, 8), dict(kernel_size=3, stride=2, padding=1)),
    (F.max_pool2d, TF.max_pool2d, (1, 2, 9, 9), dict(kernel_size=(2, 3), stride=(1, 2), dilation=2)),
    (F.avg_pool2d, TF.avg_pool2d, (2, 3, 7, 8), dict(kernel_size=2)),
    (F.avg_pool2d, TF.avg_pool2d, (2, 3, 7, 8), dict(kernel_size=3, stride=2, padding=1)),
    (F.max_pool1d, TF.max_pool1d, (2, 3, 11), dict(kernel_size=3, stride=2, padding=1)),
    (F.avg_pool1d, TF.avg_pool1d, (2, 3, 11), dict(kernel_size=4, stride=3)),
]


@pytest.mark.parametrize("ours,theirs,shape,kw", POOLS)
def test_pooling_matches_torch(ours, theirs, shape, kw):
    rng = np.random.default_rng(2)
    x = rng.normal(size=shape)
    X, tx = t64(x), torch64(x)
    y, ty = ours(X, **kw), theirs(tx, **kw)
    g = rng.normal(size=ty.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    close(y, ty, "output")
    close(X.grad, tx.grad, "dx")


GRADCHECKS = [
    ("conv2d", lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1), [(2, 2, 5, 4), (3, 2, 3, 3), (3,)]),
    ("conv2d groups dilation", lambda x, w: F.conv2d(x, w, None, padding=(2, 1), dilation=2, groups=2),
     [(1, 4, 5, 5), (2, 2, 2, 3)]),
    ("conv1d", lambda x, w, b: F.conv1d(x, w, b, stride=2, padding="valid"), [(2, 3, 7), (2, 3, 3), (2,)]),
    ("max_pool2d", lambda x: F.max_pool2d(x, 3, 2, 1), [(2, 2, 5, 5)]),
    ("avg_pool2d", lambda x: F.avg_pool2d(x, 2, 1, 1), [(1, 2, 4, 5)]),
    ("max_pool1d", lambda x: F.max_pool1d(x, 2), [(2, 2, 6)]),
    ("avg_pool1d", lambda x: F.avg_pool1d(x, 3, 2), [(2, 2, 7)]),
]


@pytest.mark.parametrize("name,fn,shapes", GRADCHECKS, ids=[g[0] for g in GRADCHECKS])
def test_gradcheck(name, fn, shapes):
    rng = np.random.default_rng(3)
    # distinct values: a max with ties has no derivative, and finite differences would see that
    args = [t64(rng.permutation(np.prod(s)).reshape(s) / np.prod(s) + rng.normal(size=s) * 1e-3) for s in shapes]
    assert nl.gradcheck(fn, *args)


def test_conv2d_layer_state_dict_maps_to_torch():
    layer = nn.Conv2d(4, 6, (3, 2), stride=2, padding=1, groups=2, rng=0, dtype="float64")
    tl = torch.nn.Conv2d(4, 6, (3, 2), stride=2, padding=1, groups=2).double()
    copy_to_torch(layer, tl)
    x = np.random.default_rng(4).normal(size=(2, 4, 8, 7))
    X, tx = t64(x), torch64(x)
    y, ty = layer(X), tl(tx)
    (y * y).sum().backward()
    (ty * ty).sum().backward()
    close(y, ty, "output")
    close(X.grad, tx.grad, "dx")
    compare_params(layer, tl)


def test_default_init_has_pytorch_scale():
    w = nn.Conv2d(16, 32, 3, rng=0).weight.data
    bound = 1 / np.sqrt(16 * 9)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound


def test_batchnorm2d_matches_torch_train_and_eval():
    bn = nn.BatchNorm2d(3, dtype="float64")
    tbn = torch.nn.BatchNorm2d(3).double()
    rng = np.random.default_rng(5)
    bn.weight.data[...] = rng.normal(size=3)
    copy_to_torch(bn, tbn)
    for _ in range(2):
        x = rng.normal(loc=2.0, size=(4, 3, 5, 5))
        X, tx = t64(x), torch64(x)
        y, ty = bn(X), tbn(tx)
        (y * y).sum().backward()
        (ty * ty).sum().backward()
        close(y, ty, "train output")
        close(X.grad, tx.grad, "dx")
    close(bn.running_mean, tbn.running_mean, "running_mean")
    close(bn.running_var, tbn.running_var, "running_var")
    compare_params(bn, tbn)
    x = rng.normal(size=(2, 3, 4, 4))
    close(bn.eval()(t64(x)), tbn.eval()(torch64(x)), "eval output")


def test_dropout2d_zeroes_whole_channels():
    x = nl.ones(50, 8, 4, 4)
    drop = nn.Dropout2d(0.5, rng=0)
    y = drop(x).numpy()
    per_channel = y.reshape(50, 8, -1)
    assert np.all((per_channel == 0).all(-1) | (per_channel == 2.0).all(-1))
    assert 0.35 < (per_channel[..., 0] == 0).mean() < 0.65
    assert drop.eval()(x) is x


def test_lenet_shapes_and_training_step_reduce_loss():
    rng = np.random.default_rng(6)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, rng=0), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(4, 8, 3, rng=1), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
                        nn.Linear(8, 3, rng=2))  # 10 -> 10 -> 5 -> 3 -> 1
    x = rng.normal(size=(24, 1, 10, 10))
    y = nl.tensor(np.stack([x[:, 0, :5].mean((1, 2)), x[:, 0, 5:].mean((1, 2)), 0 * x[:, 0, 0, 0]]).argmax(0))
    x = nl.tensor(x)
    losses = []
    for _ in range(40):
        loss = F.cross_entropy(net(x), y)
        net.zero_grad()
        loss.backward()
        for p in net.parameters():
            p.data -= 0.3 * p.grad
        losses.append(loss.item())
    assert losses[-1] < 0.75 * losses[0]


@pytest.mark.parametrize("call,match", [
    (lambda: nn.Conv2d(3, 4, 3)(nl.zeros(1, 2, 8, 8)), r"\(N, 3, H, W\).*\(1, 2, 8, 8\)"),
    (lambda: nn.Conv2d(3, 4, 3, groups=2), "divisible by groups"),
    (lambda: F.conv2d(nl.zeros(1, 1, 2, 2), nl.zeros(1, 1, 3, 3)), "smaller than"),
    (lambda: F.conv2d(nl.zeros(1, 1, 5, 5), nl.zeros(1, 1, 3, 3), stride=2, padding="same"), "stride 1"),
    (lambda: nn.MaxPool2d(2)(nl.zeros(1, 3, 8)), r"\(N, C, H, W\)"),
    (lambda: nn.BatchNorm2d(3)(nl.zeros(2, 4, 2, 2)), "BatchNorm2d"),
])
def test_bad_input_names_the_problem(call, match):
    with pytest.raises(ValueError, match=match):
        call()
