"""Every fast path equals its readable twin bit for bit: one table, one ``np.array_equal``.

CI runs this file under ``OPENBLAS_CORETYPE=Prescott`` (SSE, no fused multiply-add) and
``OPENBLAS_CORETYPE=Haswell`` (AVX2 with FMA) as well as on the machine's own kernel: the
paths must be equal by construction (the same NumPy/BLAS calls on the same operands), not
by the luck of one kernel's rounding.
"""
import threading

import numpy as np
import pytest

import neuralab as nl
from neuralab import functional as F
from neuralab import nn, optim
from neuralab.nn.module import Parameter
from neuralab.training.captured import CapturedMLP

ROWS: dict = {}  # row name -> function(monkeypatch) -> [(what, fast, readable), ...]


def row(name):
    def register(fn):
        ROWS[name] = fn
        return fn
    return register


def _data(n=150, d=6, c=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    y = (X[:, :c] @ rng.standard_normal(c) > 0).astype(np.int64) + (X[:, 0] > 1)
    return X, y


def _weights(model):
    return [p.data.copy() for p in model.parameters()]


# ----------------------------------------------------------------------------- captured step
@row("captured step: loss, gradients and logits vs the eager graph")
def _captured_gradients(monkeypatch):
    out = []
    for dtype, hidden in (("float32", (16, 16)), ("float64", (33,))):
        X, y = _data()
        X = X.astype(dtype)
        model = nn.MLP(6, hidden=hidden, out_features=3, rng=0, dtype=dtype)
        loss = F.cross_entropy(model(nl.tensor(X)), y)
        loss.backward()
        eager = [p.grad.copy() for p in model.parameters()]
        with nl.no_grad():
            logits = model(nl.tensor(X)).data
        cap = CapturedMLP.from_model(model)
        value = cap.forward_backward(X, y)
        out.append((f"{dtype} loss", np.array(value), np.array(loss.item())))
        out += [(f"{dtype} grad {i}", p.grad, g) for i, (p, g) in enumerate(zip(model.parameters(), eager))]
        out.append((f"{dtype} logits", cap.logits, logits))
    return out


@row("captured step: binary cross-entropy (sum, scaled) vs the eager graph")
def _captured_bce(monkeypatch):
    X, y = _data(80)
    t = np.stack([y > 0, X[:, 1] > 0], axis=1).astype(np.float32)
    model = nn.MLP(6, hidden=(12,), out_features=2, rng=0)
    loss = F.binary_cross_entropy_with_logits(model(nl.tensor(X)), nl.tensor(t), reduction="sum") * 0.25
    loss.backward()
    eager = [p.grad.copy() for p in model.parameters()]
    value = CapturedMLP.from_model(model, loss="bce_sum").forward_backward(X, t, scale=0.25)
    return [("loss", np.array(value), np.array(loss.item()))] + [
        (f"grad {i}", p.grad, g) for i, (p, g) in enumerate(zip(model.parameters(), eager))]


def _fit_twice(monkeypatch, make_opt, **fit_kw):
    got = []
    for eager in (True, False):
        if eager:
            monkeypatch.setenv("NEURALAB_EAGER", "1")
        else:
            monkeypatch.delenv("NEURALAB_EAGER", raising=False)
        X, y = _data()
        model = nn.MLP(6, hidden=(16, 16), out_features=3, rng=1)
        hist = nl.fit(model, X, y, optimizer=make_opt(model), epochs=3, batch_size=32,
                      verbose=0, seed=0, **fit_kw)
        got.append((np.array(hist.history["loss"]), _weights(model)))
    (loss_e, w_e), (loss_c, w_c) = got
    assert loss_c[-1] < loss_c[0]  # it learned: the comparison is about something
    return [("losses", loss_c, loss_e)] + [(f"weight {i}", c, e) for i, (c, e) in enumerate(zip(w_c, w_e))]


@row("captured fit (SGD momentum) vs eager fit")
def _captured_fit_sgd(monkeypatch):
    return _fit_twice(monkeypatch, lambda m: optim.SGD(m.parameters(), lr=0.05, momentum=0.9))


@row("captured fit (Adam) vs eager fit")
def _captured_fit_adam(monkeypatch):
    return _fit_twice(monkeypatch, lambda m: optim.Adam(m.parameters(), lr=1e-2))


def _estimator_twice(monkeypatch, labels):
    X, y = _data(200)
    if labels == "binary":  # one logistic output: the captured step's "bce_sum" loss
        y = (y > 0).astype(np.int64)
    elif labels == "multilabel":
        y = np.stack([y > 0, X[:, 1] > 0], axis=1).astype(np.int64)
    fitted = []
    for eager in (True, False):
        if eager:  # make capture impossible: the estimator then builds graphs
            monkeypatch.setattr(CapturedMLP, "from_model", classmethod(lambda cls, *a, **k: None))
        else:
            monkeypatch.undo()
        fitted.append(nl.MLPClassifier(hidden_layer_sizes=(12,), max_iter=4, random_state=0,
                                       dtype="float32").fit(X, y))
    eager, cap = fitted
    return ([("loss curve", np.array(cap.loss_curve_), np.array(eager.loss_curve_))]
            + [(f"coef {i}", c, e) for i, (c, e) in enumerate(zip(cap.coefs_, eager.coefs_))])


for _labels in ("multiclass", "binary", "multilabel"):
    row(f"MLPClassifier captured vs eager training ({_labels})")(
        lambda monkeypatch, _l=_labels: _estimator_twice(monkeypatch, _l))


# ----------------------------------------------------------------------------- no-graph forward
def _eager_forward(model, x):
    for m in model:  # the chain through the modules' own forward, with the graph on
        x = m(x)
    return x.data


@row("nn._fast.forward_layers vs the eager modules")
def _forward_layers(monkeypatch):
    from neuralab.nn._fast import forward_layers, inference_layers
    X, _ = _data()
    model = nn.MLP(6, hidden=(16, 16), out_features=3, rng=0).eval()
    with nl.no_grad():
        expected = model(nl.tensor(X)).data
    return [("mlp output", forward_layers(inference_layers(model), X), expected)]


@row("Sequential under no_grad (nn._fast.no_grad_forward) vs the eager modules")
def _no_grad_sequential(monkeypatch):
    from neuralab.nn import container
    calls = []
    real = container.no_grad_forward
    monkeypatch.setattr(container, "no_grad_forward", lambda c, x: calls.append(1) or real(c, x))
    model = nn.Sequential(nn.Linear(7, 16, rng=0), nn.ReLU(), nn.Linear(16, 16, rng=1), nn.ReLU(),
                          nn.Linear(16, 3, rng=2))
    out = []
    for what, X in (("one row", np.random.default_rng(0).standard_normal((1, 7)).astype(np.float32)),
                    ("float64 rows", np.random.default_rng(1).standard_normal((50, 7))),
                    ("a vector", np.random.default_rng(2).standard_normal(7).astype(np.float32))):
        with nl.no_grad():
            got = model(X)
        assert not got.requires_grad and got.dtype == np.float32
        out.append((what, got.data, _eager_forward(model, nl.tensor(X))))
    assert len(calls) == 3  # the fast path did run
    # the model is read afresh on every call: a changed weight or a removed bias shows at once
    model[0].weight.data[:] = 0.5
    model[2].bias = None
    X = np.ones((2, 7), np.float32)
    with nl.no_grad():
        out.append(("after an edit", model(X).data, _eager_forward(model, nl.tensor(X))))
    return out


# ----------------------------------------------------------------------------- optimizers
_OPTIMIZERS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, weight_decay=0.05)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.05)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.05)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.1)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.1)),
]
# odd sizes: every parameter ends mid-way through a kernel's vector block, and the group
# holds one parameter over AXPY_BLOCK values; 27,395 values in all
_SHAPES = [(100, 83), (83,), (64, 100), (64,), (10, 64), (10,), (107, 111), (3, 7)]


def _optimizer_run(name, kwargs, flat, steps=5):
    rng = np.random.default_rng(0)
    params = [Parameter(rng.standard_normal(s).astype(np.float32)) for s in _SHAPES]
    opt = getattr(optim, name)(params, **kwargs)
    opt.flat_max_mean_size = 10**9 if flat else 0  # every group flat, or none
    grads = np.random.default_rng(1)
    for _ in range(steps):
        for p in params:
            p.grad = grads.standard_normal(p.shape).astype(np.float32)
        opt.step()
    assert (opt._flat != {}) == flat  # the path asked for is the one that ran
    state = opt.state_dict()["state"]
    return [p.data.copy() for p in params], state


def _optimizer_row(name, kwargs):
    def compare(monkeypatch):
        (w_flat, s_flat), (w_each, s_each) = (_optimizer_run(name, kwargs, flat) for flat in (True, False))
        out = [(f"weight {i}", a, b) for i, (a, b) in enumerate(zip(w_flat, w_each))]
        for i in s_each:
            out += [(f"state {i} {k}", np.asarray(s_flat[i][k]), np.asarray(v)) for k, v in s_each[i].items()]
        return out
    return compare


for _name, _kw in _OPTIMIZERS:
    row(f"{_name} flat step vs per-parameter step, 5 steps "
        f"({', '.join(f'{k}={v}' for k, v in _kw.items())})")(_optimizer_row(_name, _kw))


# ----------------------------------------------------------------------------- axpy
@row("axpy: one BLAS call on the whole array vs AXPY_BLOCK slices")
def _axpy(monkeypatch):
    from threadpoolctl import threadpool_limits

    from neuralab.optim import optimizer
    rng = np.random.default_rng(0)
    out = []
    for dtype in (np.float32, np.float64):
        for n, offset in ((123_457, 0), (123_457, 3), (8192 * 3, 1), (20_000, 0)):
            x = rng.standard_normal(n + offset).astype(dtype)[offset:]
            y0 = rng.standard_normal(n + offset).astype(dtype)[offset:]  # offset: unaligned views
            fn = optimizer._blas()[0][np.dtype(dtype)]
            sliced = y0.copy()
            for i in range(0, n, optimizer.AXPY_BLOCK):  # the readable twin: the slices by hand
                fn(x[i:i + optimizer.AXPY_BLOCK], sliced[i:i + optimizer.AXPY_BLOCK], a=-0.3)
            results = {}
            for threads in (1, 2):  # SciPy's BLAS at one thread: one call; at two: slices
                y = y0.copy()
                with threadpool_limits(threads, user_api="blas"):
                    optimizer.axpy(-0.3, x, y)
                results[threads] = y
            np.testing.assert_allclose(sliced, y0 - 0.3 * x, rtol=1e-6, atol=1e-6)
            out += [(f"{np.dtype(dtype)} n={n}+{offset} whole", results[1], sliced),
                    (f"{np.dtype(dtype)} n={n}+{offset} in axpy's slices", results[2], sliced)]
    return out


# ----------------------------------------------------------------------------- estimators
@row("MLPClassifier / CNNClassifier predict_proba vs F.softmax of the network's logits")
def _predict_proba(monkeypatch):
    X, y = _data(120)
    mlp = nl.MLPClassifier(hidden_layer_sizes=(10,), max_iter=3, random_state=0).fit(X, y)
    with nl.no_grad():
        z = mlp.model_(nl.tensor(X)).data
    out = [("MLP logits (cached NumPy forward)", mlp._forward_raw(X), z),
           ("MLP proba", mlp.predict_proba(X), F.softmax(nl.tensor(z), axis=1).data)]
    images = np.random.default_rng(0).random((40, 1, 6, 6)).astype(np.float32)
    cnn = nl.CNNClassifier(conv_channels=(3,), hidden_layer_sizes=(8,), max_iter=2,
                           random_state=0).fit(images, y[:40])
    # predict_proba sends the images through in one order fixed by their bytes (a GEMM may
    # round an image's outputs by its place in the batch): the logits of that same batch
    rows = images.reshape(len(images), -1)
    canon = np.argsort(rows.view(np.dtype((np.void, rows.strides[0]))).ravel(), kind="stable")
    zc = np.empty((len(images), 3), np.float32)
    with nl.no_grad():
        zc[canon] = cnn.model_(nl.tensor(images[canon])).data
    out.append(("CNN proba", cnn.predict_proba(images), F.softmax(nl.tensor(zc), axis=1).data))
    order = np.random.default_rng(1).permutation(40)  # and the same rows in another order
    out.append(("CNN proba, rows reordered", cnn.predict_proba(images[order]), cnn.predict_proba(images)[order]))
    return out


# ----------------------------------------------------------------------------- runs in threads
@row("a fit while another fit starts and ends in another thread vs the fit alone")
def _fits_in_threads(monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 128)).astype(np.float32)  # a 128x128 layer: over AXPY_BLOCK
    y = rng.integers(0, 3, 64)

    def train(callbacks=(), epochs=3):
        model = nn.MLP(128, hidden=(128,), out_features=3, rng=0)
        opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        nl.fit(model, X, y, optimizer=opt, epochs=epochs, batch_size=8, verbose=0, seed=0,
               callbacks=list(callbacks))
        return _weights(model)

    alone = train()
    first_in, second_in, first_done = threading.Event(), threading.Event(), threading.Event()

    class Pause(nl.callbacks.Callback):
        def __init__(self, signal, wait):
            self.signal, self.wait, self.done = signal, wait, False

        def on_batch_end(self, batch, logs=None):
            if not self.done:  # once, mid-run: let the other run do its part
                self.done = True
                self.signal.set()
                assert self.wait.wait(60), "the other run never arrived"

    class Done(nl.callbacks.Callback):
        def on_train_end(self, logs=None):
            first_done.set()

    results = {}
    first = threading.Thread(target=lambda: results.setdefault(
        "first", train([Pause(first_in, second_in), Done()], epochs=1)))
    second = threading.Thread(target=lambda: results.setdefault(
        "second", train([Pause(second_in, first_done)])))
    first.start()
    assert first_in.wait(60)
    second.start()  # starts while the first runs, and goes on after the first has ended
    first.join(60)
    second.join(60)
    return [(f"weight {i}", a, b) for i, (a, b) in enumerate(zip(results["second"], alone))]


# ----------------------------------------------------------------------------- the table
@pytest.mark.parametrize("name", list(ROWS))
def test_fast_path_equals_its_readable_twin(name, monkeypatch):
    pairs = ROWS[name](monkeypatch)
    assert pairs
    for what, fast, readable in pairs:
        fast, readable = np.asarray(fast), np.asarray(readable)
        assert fast.shape == readable.shape and fast.dtype == readable.dtype, what
        assert np.array_equal(fast, readable), (
            f"{what}: {int((fast != readable).sum())} of {fast.size} values differ")


def test_the_blas_kernel_is_the_one_asked_for():
    """Under OPENBLAS_CORETYPE the table runs on that kernel (threadpoolctl reports it)."""
    import os

    from threadpoolctl import threadpool_info
    from neuralab.optim import optimizer
    optimizer._blas()  # SciPy's BLAS is loaded, as in a training run
    asked = os.environ.get("OPENBLAS_CORETYPE", "").lower()
    kernels = {i["architecture"].lower() for i in threadpool_info()
               if i.get("internal_api") == "openblas"}
    if not asked or not kernels:
        pytest.skip("no OPENBLAS_CORETYPE override, or no OpenBLAS")
    # OpenBLAS reports its SSE kernel for Prescott as "Katmai", the generic SSE family's name
    expected = {"prescott": {"prescott", "katmai"}}.get(asked, {asked})
    assert kernels <= expected, f"asked for {asked}, OpenBLAS runs {kernels}"
