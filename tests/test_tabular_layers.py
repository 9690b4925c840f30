"""The tabular layers (nn/tabular.py) and ops: by hand, against PyTorch, and by gradcheck."""
import math

import numpy as np
import pytest

import neuralab as nl
from neuralab import functional as F
from neuralab import nn, optim

torch = pytest.importorskip("torch")


def test_smooth_clip_by_hand():
    x = nl.tensor([0.0, 3.0, -3.0, 1.0, 1e6], dtype=np.float64)
    expected = [0.0, 3 / math.sqrt(2), -3 / math.sqrt(2), 1 / math.sqrt(1 + 1 / 9), 3.0]
    np.testing.assert_allclose(F.smooth_clip(x).data, expected, rtol=1e-9)


def test_robust_statistics_by_hand():
    x = np.array([[1.0, 5.0, 0.0, np.nan],
                  [2.0, 5.0, 0.0, 1.0],
                  [3.0, 5.0, 0.0, 2.0],
                  [4.0, 5.0, 0.0, 3.0],
                  [100.0, 5.0, 1.0, 4.0]])
    center, scale = nn.tabular.robust_statistics(x)
    # column 0: quartiles 2 and 4 -> 1 / 2; column 1 is constant -> 0; column 2 has IQR 0 ->
    # 2 / range; column 3 ignores the NaN: quartiles 1.75 and 3.25
    np.testing.assert_allclose(center, [3.0, 5.0, 0.0, 2.5])
    np.testing.assert_allclose(scale, [0.5, 0.0, 2.0, 1 / 1.5], rtol=1e-6)
    rs = nn.RobustScale(4).fit_statistics(x)
    out = rs(nl.tensor(np.nan_to_num(x[:2]), dtype=np.float32)).data
    z = (np.nan_to_num(x[:2]) - center) * scale
    np.testing.assert_allclose(out, z / np.sqrt(1 + (z / 3) ** 2), rtol=1e-6)


def _torch(a):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def _to64(module):
    for p in module.parameters():
        p.data = p.data.astype(np.float64)
    return module


def _compare(out, ref, params, refs, x=None, xref=None):
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-9, atol=1e-12)
    g = np.random.default_rng(1).standard_normal(out.shape)
    (out * nl.tensor(g, dtype=np.float64)).sum().backward()
    (ref * torch.tensor(g)).sum().backward()
    for p, r in zip(params, refs):
        np.testing.assert_allclose(p.grad, r.grad.numpy(), rtol=1e-8, atol=1e-10)
    if x is not None:
        np.testing.assert_allclose(x.grad, xref.grad.numpy(), rtol=1e-8, atol=1e-10)


def test_periodic_embedding_matches_torch():
    emb = _to64(nn.PeriodicEmbedding(3, frequencies=5, out_dim=4, sigma=0.5, rng=0))
    xv = np.random.default_rng(2).standard_normal((7, 3))
    x = nl.tensor(xv, dtype=np.float64, requires_grad=True)
    w1, b1, w2, b2 = (_torch(p.data) for p in (emb.weight_1, emb.bias_1, emb.weight_2, emb.bias_2))
    xt = _torch(xv)
    # PBLD written directly in PyTorch: [x, W2_f cos(2 pi w1_f x + b1_f) + b2_f] per feature f
    z = torch.cos(2 * math.pi * xt[:, :, None] * w1 + b1)               # (N, n, h)
    z = torch.einsum("bnh,nho->bno", z, w2) + b2
    ref = torch.cat([xt[:, :, None], z], dim=2).reshape(7, 12)
    _compare(emb(x), ref, [emb.weight_1, emb.bias_1, emb.weight_2, emb.bias_2], [w1, b1, w2, b2], x, xt)


def test_ensemble_linear_matches_torch():
    layer = _to64(nn.EnsembleLinear(4, 3, k=5, random_signs=True, rng=0))
    layer.s.data[...] = np.random.default_rng(3).standard_normal(layer.s.shape)
    xv = np.random.default_rng(4).standard_normal((6, 4))
    x = nl.tensor(xv, dtype=np.float64, requires_grad=True)
    w, r, s, b = (_torch(p.data) for p in (layer.weight, layer.r, layer.s, layer.bias))
    xt = _torch(xv)
    ref = ((xt[None] * r[:, None, :]) @ (w.T / 2.0)) * s[:, None, :] + b[:, None, :]
    _compare(layer(x), ref, [layer.weight, layer.r, layer.s, layer.bias], [w, r, s, b], x, xt)


def test_ntk_linear_and_embedding_match_torch():
    lin = _to64(nn.NTKLinear(9, 2, rng=0))
    xv = np.random.default_rng(5).standard_normal((4, 9))
    x = nl.tensor(xv, dtype=np.float64, requires_grad=True)
    w, b = _torch(lin.weight.data), _torch(lin.bias.data)
    xt = _torch(xv)
    _compare(lin(x), torch.nn.functional.linear(xt, w / 3.0, b), [lin.weight, lin.bias], [w, b], x, xt)

    emb = _to64(nn.CategoricalEmbedding([3, 4], dim=2, rng=0))
    codes = np.array([[0, 3], [2, 1], [2, 0]])
    table = _torch(emb.weight.data)
    ref = torch.nn.functional.embedding(torch.tensor(codes + [0, 3]), table).reshape(3, 4)
    _compare(emb(codes), ref, [emb.weight], [table])


def test_parametric_activation_and_ops_match_torch():
    xv = np.random.default_rng(6).standard_normal((5, 3)) * 3
    for name, tf in (("selu", torch.nn.functional.selu), ("mish", torch.nn.functional.mish)):
        act = _to64(nn.ParametricActivation(name, 3))
        act.weight.data[...] = [0.5, 1.0, 2.0]
        x = nl.tensor(xv, dtype=np.float64, requires_grad=True)
        w, xt = _torch(act.weight.data), _torch(xv)
        _compare(act(x), xt + (tf(xt) - xt) * w, [act.weight], [w], x, xt)


@pytest.mark.parametrize("name", ["selu", "mish", "relu"])
def test_fused_parametric_activation_equals_the_composite_ops_and_gradchecks(name):
    # functions.ParametricActivation (one node) against x + (f(x) - x) * w built from the ops,
    # on an ensemble-shaped (k, N, F) float64 input, and by finite differences in x and w
    rng = np.random.default_rng(9)
    xv = rng.standard_normal((2, 5, 3)) * 3
    act = _to64(nn.ParametricActivation(name, 3))
    act.weight.data[...] = [0.5, 1.0, -2.0]
    g = rng.standard_normal(xv.shape)
    x1 = nl.tensor(xv, dtype=np.float64, requires_grad=True)
    fused = act(x1)
    fused.backward(g)
    dx1, dw1 = x1.grad.copy(), act.weight.grad.copy()
    act.zero_grad()
    x2 = nl.tensor(xv, dtype=np.float64, requires_grad=True)
    comp = x2 + (F.get_activation(name)(x2) - x2) * act.weight
    comp.backward(g)
    assert type(fused._ctx).__name__ == "ParametricActivation"  # the fused node ran
    np.testing.assert_allclose(fused.data, comp.data, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx1, x2.grad, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dw1, act.weight.grad, rtol=1e-12, atol=1e-12)
    xg = nl.tensor(xv + 0.1, dtype=np.float64, requires_grad=True)  # off ReLU's kink
    assert nl.gradcheck(lambda x, w: nl.functions.ParametricActivation.apply(
        x, w, inner=getattr(nl.functions, {"selu": "SELU", "mish": "Mish", "relu": "ReLU"}[name])),
        xg, act.weight)


@pytest.mark.parametrize("name", ["selu", "mish", "relu"])
@pytest.mark.parametrize("shape", [(256, 256), (7, 33), (2, 5, 33)])
def test_fused_parametric_activation_gives_the_composite_ops_bits_in_float32(name, shape):
    # the fused node adds its backward's parts in the engine's order: training gives the same
    # bits as with the four ops, so results measured before it stay valid
    rng = np.random.default_rng(10)
    act = nn.ParametricActivation(name, shape[-1])
    act.weight.data[...] = rng.normal(size=shape[-1]).astype(np.float32)
    xv, g = (rng.normal(size=shape) * 3).astype(np.float32), rng.normal(size=shape).astype(np.float32)
    x1 = nl.tensor(xv, requires_grad=True)
    out1 = act(x1)
    out1.backward(g)
    dw1 = act.weight.grad.copy()
    act.zero_grad()
    x2 = nl.tensor(xv, requires_grad=True)
    out2 = x2 + (F.get_activation(name)(x2) - x2) * act.weight
    out2.backward(g)
    assert np.array_equal(out1.data, out2.data)
    assert np.array_equal(x1.grad, x2.grad)
    assert np.array_equal(dw1, act.weight.grad)


@pytest.mark.parametrize("fn", [F.cos, F.selu, F.mish, F.smooth_clip])
def test_new_ops_gradcheck_float64(fn):
    x = nl.tensor(np.random.default_rng(7).standard_normal((4, 5)) * 2, dtype=np.float64,
                  requires_grad=True)
    assert nl.gradcheck(fn, x)


def test_ops_extremes_stay_finite_and_float32():
    x = nl.tensor(np.array([-1e4, -100.0, 0.0, 100.0, 1e4], np.float32), requires_grad=True)
    for fn in (F.selu, F.mish):
        out = fn(x)
        out.sum().backward()
        assert out.dtype == np.float32 and x.grad.dtype == np.float32
        assert np.isfinite(out.data).all() and np.isfinite(x.grad).all()
        x.grad = None


def test_tabular_mlp_shapes_and_gradients_reach_every_parameter():
    rng = np.random.default_rng(8)
    x = np.concatenate([rng.standard_normal((40, 5)), rng.integers(0, 6, (40, 2))], axis=1).astype(np.float32)
    for k in (1, 3):
        net = nn.TabularMLP(3, 2, [6, 6], n_out=2, hidden=(16, 16), k=k, rng=0)
        net.scaler.fit_statistics(x[:, :5])
        net.data_init(x)
        out = net(x)
        assert out.shape == (40, 2 * k)
        out.sum().backward()
        assert all(p.grad is not None and np.isfinite(p.grad).all() for p in net.parameters())
        assert sum(len(g["params"]) for g in net.param_groups(0.04, 0.02)) == len(net.parameters())


def test_data_init_gives_unit_std_outputs():
    x = np.random.default_rng(9).standard_normal((256, 8)).astype(np.float32) * 5
    lin = nn.NTKLinear(8, 16, rng=0)
    lin.data_init(x)
    out = lin(x).data
    np.testing.assert_allclose((out - lin.bias.data).std(axis=0), 1.0, rtol=1e-4)


def test_coslog_schedule_values():
    p = nn.Parameter(np.zeros(1, np.float32))
    opt = optim.AdamW([p], lr=0.04)
    sched = optim.CosLogLR(opt, total_steps=100, cycles=4)
    lrs = [sched.get_last_lr()[0]]
    for _ in range(100):
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    expected = [0.04 * 0.5 * (1 - math.cos(2 * math.pi * math.log2(1 + 15 * t / 100))) for t in range(101)]
    np.testing.assert_allclose(lrs, expected, atol=1e-12)
    assert lrs[0] == 0.0 and abs(lrs[100]) < 1e-12  # zero at both ends


def test_flat_cos_schedule():
    from neuralab.estimators.tabular import _flat_cos
    assert _flat_cos(0.0) == 1.0 and _flat_cos(0.5) == 1.0
    assert _flat_cos(0.75) == pytest.approx(0.5) and _flat_cos(1.0) == pytest.approx(0.0)
