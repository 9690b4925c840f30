"""Optimizers, schedules and clipping against PyTorch (the oracle), in float64."""
from __future__ import annotations

import math

import numpy as np
import pytest

import neuralab as nl
from neuralab import functional as F
from neuralab import optim
from neuralab.nn import Parameter
from neuralab.optim import optimizer as optimizer_module

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    # Tiny problems on a shared 2-core machine: torch's thread pool only adds contention
    # (20 Adam steps took 1.6 s with it, 10 ms without).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

# ----------------------------------------------------------------------------- the problem
# A 4-6-3 tanh network with a cross-entropy loss on fixed data: curved enough that every
# optimizer's state matters, small enough to run 20 steps of each in milliseconds.
RNG = np.random.default_rng(0)
X = RNG.normal(size=(24, 4))
Y = RNG.integers(0, 3, size=24)
INIT = [RNG.normal(scale=0.5, size=s) for s in [(6, 4), (6,), (3, 6), (3,)]]


def nl_params(dtype="float64"):
    return [Parameter(a.copy(), dtype=dtype) for a in INIT]


def nl_loss(params):
    w1, b1, w2, b2 = params
    h = F.tanh(F.linear(nl.tensor(X, dtype=w1.dtype), w1, b1))
    return F.cross_entropy(F.linear(h, w2, b2), Y)


def torch_loss(params):
    w1, b1, w2, b2 = params
    h = torch.tanh(torch.nn.functional.linear(torch.from_numpy(X), w1, b1))
    return torch.nn.functional.cross_entropy(torch.nn.functional.linear(h, w2, b2),
                                             torch.from_numpy(Y))


def nl_run(opt, params, steps):
    out = []
    for _ in range(steps):
        opt.zero_grad()
        nl_loss(params).backward()
        opt.step()
        out.append([p.data.copy() for p in params])
    return out


def torch_run(opt, params, steps):
    out = []
    for _ in range(steps):
        opt.zero_grad()
        torch_loss(params).backward()
        opt.step()
        out.append([p.detach().numpy().copy() for p in params])
    return out


CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, weight_decay=0.05)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.1, momentum=0.8, nesterov=True, weight_decay=0.02)),
    ("Adam", dict(lr=0.05)),
    ("Adam", dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    ("Adam", dict(lr=0.05, amsgrad=True)),
    ("Adam", dict(lr=0.05, amsgrad=True, weight_decay=0.05)),
    ("AdamW", dict(lr=0.05)),
    ("AdamW", dict(lr=0.05, weight_decay=0.3, amsgrad=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, weight_decay=0.05)),
    ("RMSprop", dict(lr=0.01, momentum=0.9)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5, weight_decay=0.01, eps=1e-5)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, weight_decay=0.02, initial_accumulator_value=0.1)),
]


def _ids(case):
    return case[0] + "(" + ",".join(f"{k}={v}" for k, v in case[1].items()) + ")"


def make_opt(name, params, kwargs, flat=True):
    """An optimizer taking the flat path (all parameters at once) or the per-parameter one."""
    opt = getattr(optim, name)(params, **kwargs)
    opt.flat_max_mean_size = 10**9 if flat else 0
    return opt


@pytest.mark.parametrize("flat", [True, False], ids=["flat", "each"])
@pytest.mark.parametrize("name,kwargs", CASES, ids=[_ids(c) for c in CASES])
def test_trajectory_matches_pytorch(name, kwargs, flat):
    params = nl_params()
    tparams = [torch.tensor(a, requires_grad=True) for a in INIT]
    opt = make_opt(name, params, kwargs, flat)
    ours = nl_run(opt, params, 20)
    assert bool(opt._flat) == flat, "the step did not take the path under test"
    theirs = torch_run(getattr(torch.optim, name)(tparams, **kwargs), tparams, 20)
    moved = max(np.abs(ours[-1][i] - INIT[i]).max() for i in range(4))
    assert moved > 1e-2, "the optimizer barely moved: the comparison would prove little"
    for step, (a, b) in enumerate(zip(ours, theirs)):
        for i in range(4):
            np.testing.assert_allclose(a[i], b[i], rtol=1e-5, atol=1e-9,
                                       err_msg=f"{name} step {step + 1}, parameter {i}")


@pytest.mark.parametrize("name,kwargs", CASES[::3], ids=[_ids(c) for c in CASES[::3]])
def test_numpy_fallback_equals_blas_path(name, kwargs, monkeypatch):
    """The array-op path (used for CuPy and strided arrays), with BLAS or plain NumPy,
    computes the update the fused kernels compute."""
    params = nl_params()
    fast = nl_run(getattr(optim, name)(params, **kwargs), params, 5)
    monkeypatch.setattr(optimizer_module.Optimizer, "_kernel_views", staticmethod(lambda *a: None))
    params = nl_params()
    blas = nl_run(getattr(optim, name)(params, **kwargs), params, 5)
    for a, b in zip(fast[-1], blas[-1]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    monkeypatch.setattr(optimizer_module, "_blas", lambda: ({}, lambda: 0))  # no BLAS: NumPy everywhere
    params = nl_params()
    slow = nl_run(getattr(optim, name)(params, **kwargs), params, 5)
    for a, b in zip(fast[-1], slow[-1]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_updates_in_place_and_leaves_grad_alone(name):
    params = nl_params("float32")
    arrays = [p.data for p in params]
    kwargs = dict(lr=0.01, weight_decay=0.1)
    if name in ("SGD", "RMSprop"):
        kwargs["momentum"] = 0.9
    opt = getattr(optim, name)(params, **kwargs)
    nl_loss(params).backward()
    grads = [p.grad.copy() for p in params]
    opt.step()
    for p, a, g in zip(params, arrays, grads):
        assert p.data is a, "the parameter array was replaced instead of updated in place"
        assert p.data.dtype == np.float32
        np.testing.assert_array_equal(p.grad, g)
    assert all(v.dtype == np.float32 for s in opt.state.values() for v in s.values()
               if hasattr(v, "dtype"))


def test_float32_follows_float64_trajectory():
    p32, p64 = nl_params("float32"), nl_params("float64")
    a = nl_run(optim.Adam(p32, lr=0.05), p32, 20)[-1]
    b = nl_run(optim.Adam(p64, lr=0.05), p64, 20)[-1]
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=1e-3, atol=1e-4)


def test_param_groups_and_zero_grad():
    params = nl_params()
    opt = optim.SGD([{"params": params[:2]}, {"params": params[2:], "lr": 0.5}], lr=0.1,
                    momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert [g["momentum"] for g in opt.param_groups] == [0.9, 0.9]
    tparams = [torch.tensor(a, requires_grad=True) for a in INIT]
    topt = torch.optim.SGD([{"params": tparams[:2]}, {"params": tparams[2:], "lr": 0.5}],
                           lr=0.1, momentum=0.9)
    for a, b in zip(nl_run(opt, params, 5)[-1], torch_run(topt, tparams, 5)[-1]):
        np.testing.assert_allclose(a, b, rtol=1e-10)
    opt.zero_grad()
    assert all(p.grad is None for p in params)
    nl_loss(params).backward()
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() for p in params)


@pytest.mark.parametrize("name,kwargs", [CASES[3], CASES[11], CASES[16], CASES[18]],
                         ids=[_ids(CASES[i]) for i in (3, 11, 16, 18)])
def test_missing_gradient_mid_run_matches_pytorch(name, kwargs):
    """A step where one parameter has no gradient (PyTorch skips it and its step count)."""
    params, tparams = nl_params(), [torch.tensor(a, requires_grad=True) for a in INIT]
    opt, topt = make_opt(name, params, kwargs), getattr(torch.optim, name)(tparams, **kwargs)
    for step in range(8):
        opt.zero_grad()
        topt.zero_grad()
        nl_loss(params).backward()
        torch_loss(tparams).backward()
        if step == 3:
            params[1].grad = None
            tparams[1].grad = None
        opt.step()
        topt.step()
    for p, t in zip(params, tparams):
        np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-5, atol=1e-9)
    if "step" in opt.state[params[0]]:
        assert [opt.state[p]["step"] for p in params] == [8, 7, 8, 8]


def test_flat_state_is_viewed_per_parameter_and_survives_a_mode_change():
    params = nl_params()
    opt = make_opt("Adam", params, dict(lr=0.05))
    nl_run(opt, params, 3)
    m = opt.state[params[2]]["exp_avg"]
    assert m.shape == params[2].shape and m.base is opt._flat[0]["state"]["exp_avg"]
    saved, weights = opt.state_dict(), [p.data.copy() for p in params]
    expected = nl_run(opt, params, 4)[-1]
    params2 = [Parameter(w, dtype="float64") for w in weights]
    opt2 = make_opt("Adam", params2, dict(lr=0.05), flat=False)
    opt2.load_state_dict(saved)
    for a, b in zip(nl_run(opt2, params2, 4)[-1], expected):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_parameter_without_grad_is_skipped():
    params = nl_params()
    opt = optim.Adam(params, lr=0.1)
    nl_loss(params).backward()
    params[3].grad = None
    before = params[3].data.copy()
    opt.step()
    np.testing.assert_array_equal(params[3].data, before)
    assert params[3] not in opt.state and params[0] in opt.state


ROUND_TRIP = [CASES[i] for i in (3, 5, 9, 11, 16, 18)]


@pytest.mark.parametrize("name,kwargs", ROUND_TRIP, ids=[_ids(c) for c in ROUND_TRIP])
def test_state_dict_round_trip_resumes_identically(name, kwargs):
    params = nl_params()
    opt = getattr(optim, name)(params, **kwargs)
    nl_run(opt, params, 7)
    saved_params = [p.data.copy() for p in params]
    saved = opt.state_dict()
    expected = nl_run(opt, params, 6)  # the original keeps going (must not alter `saved`)

    params2 = [Parameter(a, dtype="float64") for a in saved_params]
    opt2 = getattr(optim, name)(params2, lr=123.0)  # hyperparameters come from the state
    opt2.load_state_dict(saved)
    assert opt2.param_groups[0]["lr"] == kwargs["lr"]
    resumed = nl_run(opt2, params2, 6)
    for a, b in zip(expected, resumed):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


TORCH_STATE = [CASES[i] for i in (3, 9, 16, 18)]


@pytest.mark.parametrize("name,kwargs", TORCH_STATE, ids=[_ids(c) for c in TORCH_STATE])
def test_state_dict_layout_matches_pytorch_and_loads_its_state(name, kwargs):
    """Same keys as PyTorch's state dict, and a PyTorch optimizer's state continues here."""
    tparams = [torch.tensor(a, requires_grad=True) for a in INIT]
    topt = getattr(torch.optim, name)(tparams, **kwargs)
    torch_run(topt, tparams, 5)
    tsd = topt.state_dict()
    params = nl_params()
    opt = getattr(optim, name)(params, **kwargs)
    nl_run(opt, params, 5)
    sd = opt.state_dict()
    assert sorted(sd["state"]) == sorted(tsd["state"])
    for i in sd["state"]:
        assert set(sd["state"][i]) == set(tsd["state"][i]), f"state keys of parameter {i}"
    assert [g["params"] for g in sd["param_groups"]] == [g["params"] for g in tsd["param_groups"]]

    mine = [Parameter(p.detach().numpy().copy(), dtype="float64") for p in tparams]
    opt2 = getattr(optim, name)(mine, **kwargs)
    opt2.load_state_dict(tsd)
    for a, b in zip(nl_run(opt2, mine, 5)[-1], torch_run(topt, tparams, 5)[-1]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_clear_errors():
    params = nl_params()
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="single Tensor"):
        optim.SGD(params[0], lr=0.1)
    with pytest.raises(TypeError, match="parameter 1 of group 0 is a ndarray"):
        optim.SGD([params[0], np.zeros(3)], lr=0.1)
    with pytest.raises(ValueError, match="more than one group"):
        optim.SGD([{"params": params[:2]}, {"params": params[1:]}], lr=0.1)
    with pytest.raises(ValueError, match="lr must be >= 0"):
        optim.Adam(params, lr=-1.0)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam(params, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD(params, lr=0.1, nesterov=True)
    with pytest.raises(TypeError, match="unknown hyperparameters \\['momentum'\\]"):
        optim.Adam([{"params": params, "momentum": 0.9}])
    opt = optim.Adam(params)
    other = optim.Adam(params[:3]).state_dict()
    with pytest.raises(ValueError, match="group 0 has 3 parameters in the state but 4 here"):
        opt.load_state_dict(other)
    params[0].grad = np.zeros((2, 2))
    with pytest.raises(ValueError, match="gradient of shape \\(2, 2\\) for a parameter of shape"):
        opt.step()


# ----------------------------------------------------------------------------- schedules
def _lr_sequences(ours_factory, torch_factory, steps=40, lrs=(0.1, 0.03)):
    params = nl_params()
    opt = optim.SGD([{"params": params[:2], "lr": lrs[0]}, {"params": params[2:], "lr": lrs[1]}])
    tparams = [torch.tensor(a, requires_grad=True) for a in INIT]
    topt = torch.optim.SGD([{"params": tparams[:2], "lr": lrs[0]},
                            {"params": tparams[2:], "lr": lrs[1]}])
    sched, tsched = ours_factory(opt), torch_factory(topt)
    ours, theirs = [sched.get_last_lr()], [tsched.get_last_lr()]
    for _ in range(steps):
        opt.step()
        topt.step()
        sched.step()
        tsched.step()
        ours.append(sched.get_last_lr())
        theirs.append(tsched.get_last_lr())
        assert [g["lr"] for g in opt.param_groups] == ours[-1]
    return np.array(ours), np.array(theirs)


L = torch.optim.lr_scheduler
SCHEDULES = {
    "step": (lambda o: optim.StepLR(o, step_size=7, gamma=0.5),
             lambda o: L.StepLR(o, step_size=7, gamma=0.5)),
    "exponential": (lambda o: optim.ExponentialLR(o, gamma=0.93),
                    lambda o: L.ExponentialLR(o, gamma=0.93)),
    "cosine": (lambda o: optim.CosineAnnealingLR(o, T_max=15, eta_min=1e-3),
               lambda o: L.CosineAnnealingLR(o, T_max=15, eta_min=1e-3)),
    "cosine-default": (lambda o: optim.CosineAnnealingLR(o, T_max=40),
                       lambda o: L.CosineAnnealingLR(o, T_max=40)),
    "warmup": (lambda o: optim.LinearWarmup(o, warmup_steps=10, start_factor=0.1),
               lambda o: L.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=10)),
    "warmup-default": (lambda o: optim.LinearWarmup(o), lambda o: L.LinearLR(o)),
}


@pytest.mark.parametrize("kind", list(SCHEDULES))
def test_schedule_matches_pytorch(kind):
    ours, theirs = _lr_sequences(*SCHEDULES[kind])
    assert len(np.unique(ours[:, 0])) > 3, "the schedule should change the learning rate"
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)


PLATEAU = [
    dict(),
    dict(mode="min", factor=0.5, patience=2, threshold=0.01, cooldown=2, min_lr=[1e-3, 5e-3]),
    dict(mode="max", factor=0.3, patience=1, threshold=0.05, threshold_mode="abs", min_lr=1e-4),
    dict(mode="min", factor=0.5, patience=0, threshold_mode="abs", threshold=0.0, cooldown=1),
]


@pytest.mark.parametrize("kwargs", PLATEAU, ids=[str(i) for i in range(len(PLATEAU))])
def test_reduce_on_plateau_matches_pytorch(kwargs):
    rng = np.random.default_rng(3)
    # a metric that improves, then plateaus with noise, then improves a little again
    metric = np.concatenate([np.linspace(2, 1, 10), 1 + 0.02 * rng.normal(size=40),
                             np.linspace(1, 0.9, 10), np.full(20, 0.9)])
    params = nl_params()
    opt = optim.SGD([{"params": params[:2], "lr": 0.1}, {"params": params[2:], "lr": 0.05}])
    tparams = [torch.tensor(a, requires_grad=True) for a in INIT]
    topt = torch.optim.SGD([{"params": tparams[:2], "lr": 0.1}, {"params": tparams[2:], "lr": 0.05}])
    sched, tsched = optim.ReduceLROnPlateau(opt, **kwargs), L.ReduceLROnPlateau(topt, **kwargs)
    ours, theirs = [], []
    for m in metric:
        sched.step(m)
        tsched.step(float(m))
        ours.append(sched.get_last_lr())
        theirs.append(tsched.get_last_lr())
    assert len(np.unique(np.array(ours)[:, 0])) > 1, "the plateau should reduce the rate"
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    assert [g["lr"] for g in opt.param_groups] == ours[-1]


@pytest.mark.parametrize("kind", ["step", "cosine", "warmup"])
def test_schedule_state_dict_round_trip(kind):
    factory = SCHEDULES[kind][0]
    params = nl_params()
    opt = optim.SGD(params, lr=0.1)
    sched = factory(opt)
    for _ in range(9):
        sched.step()
    saved_opt, saved = opt.state_dict(), sched.state_dict()
    rest = []
    for _ in range(10):
        sched.step()
        rest.append(sched.get_last_lr())
    opt2 = optim.SGD(nl_params(), lr=0.1)
    opt2.load_state_dict(saved_opt)
    sched2 = factory(opt2)
    sched2.load_state_dict(saved)
    resumed = []
    for _ in range(10):
        sched2.step()
        resumed.append(sched2.get_last_lr())
    assert resumed == rest


def test_plateau_state_dict_round_trip():
    opt = optim.SGD(nl_params(), lr=0.1)
    sched = optim.ReduceLROnPlateau(opt, patience=1, factor=0.5)
    for m in [1.0, 0.9, 0.95, 0.97]:
        sched.step(m)
    saved, lr_then = sched.state_dict(), opt.param_groups[0]["lr"]
    assert lr_then < 0.1  # already reduced once
    tail = [0.96, 0.99, 0.98, 1.0, 1.0]
    expected = []
    for m in tail:
        sched.step(m)
        expected.append(sched.get_last_lr())
    opt2 = optim.SGD(nl_params(), lr=lr_then)
    sched2 = optim.ReduceLROnPlateau(opt2)
    sched2.load_state_dict(saved)
    got = []
    for m in tail:
        sched2.step(m)
        got.append(sched2.get_last_lr())
    assert got == expected and len(set(x[0] for x in got)) > 1


def test_schedule_errors():
    opt = optim.SGD(nl_params(), lr=0.1)
    with pytest.raises(ValueError, match="factor must be < 1"):
        optim.ReduceLROnPlateau(opt, factor=2.0)
    with pytest.raises(ValueError, match="step_size"):
        optim.StepLR(opt, step_size=0)
    with pytest.raises(KeyError, match="initial_lr"):
        optim.ExponentialLR(opt, gamma=0.9, last_epoch=3)
    with pytest.raises(TypeError, match="neuralab optimizer"):
        optim.StepLR("adam", step_size=2)


# ----------------------------------------------------------------------------- clipping
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.05, 100.0])
def test_clip_grad_norm_matches_pytorch(norm_type, max_norm):
    params = nl_params()
    nl_loss(params).backward()
    params[1].grad = None  # parameters without gradients are skipped
    tparams = [torch.tensor(a, requires_grad=True) for a in INIT]
    torch_loss(tparams).backward()
    tparams[1].grad = None
    total = optim.clip_grad_norm(params, max_norm, norm_type=norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(tparams, max_norm, norm_type=norm_type)
    assert isinstance(total, float)
    np.testing.assert_allclose(total, ttotal.item(), rtol=1e-12)
    for p, t in zip(params, tparams):
        if t.grad is None:
            assert p.grad is None
        else:
            np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-12)
    if max_norm < total:
        assert optim.clip_grad_norm(params, 1e9, norm_type) == pytest.approx(max_norm, rel=1e-4)


def test_clip_grad_value_and_nonfinite():
    p = Parameter(np.zeros(4), dtype="float64")
    p.grad = np.array([-3.0, -0.2, 0.5, 7.0])
    optim.clip_grad_value([p], 1.0)
    np.testing.assert_array_equal(p.grad, [-1.0, -0.2, 0.5, 1.0])
    p.grad = np.array([1.0, np.inf])
    with pytest.raises(RuntimeError, match="inf"):
        optim.clip_grad_norm(p, 1.0, error_if_nonfinite=True)
    assert optim.clip_grad_norm([], 1.0) == 0.0
