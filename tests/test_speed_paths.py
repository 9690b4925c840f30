"""Fast paths of data loading and thread choice give the same numbers as the plain ones."""
import pytest
import numpy as np

import neuralab as nl
from neuralab import data, nn
from neuralab.training.threads import BlasThreadPolicy


def test_large_memmap_is_read_in_chunks_with_the_same_batches(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((100, 5)).astype(np.float32)
    y = rng.integers(0, 3, 100)
    np.save(tmp_path / "X.npy", X)
    Xmm = np.load(tmp_path / "X.npy", mmap_mode="r")
    monkeypatch.setattr(data, "_DROP_ABOVE", 0)  # treat the small file as a large one
    dropped = []
    real = data._drop_mapped_pages
    monkeypatch.setattr(data, "_drop_mapped_pages", lambda a: dropped.append(1) or real(a))
    got = [(xb.copy(), yb.copy()) for xb, yb, _ in data.Batches(Xmm, y, 32, rng=np.random.default_rng(1))]
    want = [(xb.copy(), yb.copy()) for xb, yb, _ in data.Batches(X, y, 32, rng=np.random.default_rng(1))]
    assert len(dropped) == sum(-(-len(b[0]) // data._ROWS_PER_READ) for b in got)
    # memmap batches are sorted within the batch; compare as sets of rows
    for (xa, ya), (xb, yb) in zip(got, want):
        order_a, order_b = np.lexsort(xa.T), np.lexsort(xb.T)
        np.testing.assert_array_equal(xa[order_a], xb[order_b])
        np.testing.assert_array_equal(ya[order_a], yb[order_b])


def test_thread_policy_restores_threads_and_keeps_results(monkeypatch):
    from threadpoolctl import threadpool_info
    X = np.random.default_rng(0).standard_normal((256, 8)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    nl.fit(nn.MLP(8, hidden=(4,), out_features=2, rng=0), X, y, epochs=1, verbose=0)  # loads scipy's BLAS too
    before = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    losses = []
    for small in (0, 4e6):  # with a timed trial of 1 vs all threads, and without (one thread)
        monkeypatch.setattr(BlasThreadPolicy, "small_flops", small)
        model = nn.MLP(8, hidden=(16,), out_features=2, rng=0)
        losses.append(nl.fit(model, X, y, epochs=2, batch_size=16, verbose=0, seed=0).history["loss"])
    assert losses[0] == losses[1]
    assert [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"] == before


def test_thread_policy_picks_one_count_after_its_trial(monkeypatch):
    from neuralab.training import threads
    monkeypatch.setattr(threads, "_RECENT_CHOICES", {})
    policy = BlasThreadPolicy(flops=10**8)
    calls = []
    with policy:
        policy.max_threads = max(policy.max_threads, 2)  # pretend there are 2 threads to try
        step = policy.wrap(lambda: calls.append(1))
        for _ in range(2 * (policy.trial_steps + 1) + 3):
            step()
    assert step.chosen["chosen"] in (1, policy.max_threads)
    assert threads._RECENT_CHOICES  # remembered: a fit started right after skips the trial
    with BlasThreadPolicy(flops=10**8) as again:
        again.max_threads = policy.max_threads
        assert again.wrap(lambda: None).chosen["chosen"] == step.chosen["chosen"]
    assert len(calls) == 2 * (policy.trial_steps + 1) + 3


def _eager_forward(model, x):
    # the same chain through the modules' own forward, with the graph on
    for m in model:
        x = m(x)
    return x.data


def test_no_grad_sequential_fast_path_equals_eager_bit_for_bit(monkeypatch):
    from neuralab.nn import container
    calls = []
    real = container.no_grad_forward
    monkeypatch.setattr(container, "no_grad_forward", lambda c, x: calls.append(1) or real(c, x))
    model = nn.Sequential(nn.Linear(7, 16, rng=0), nn.ReLU(), nn.Linear(16, 16, rng=1), nn.ReLU(),
                          nn.Linear(16, 3, rng=2))
    for X in (np.random.default_rng(0).standard_normal((1, 7)).astype(np.float32),
              np.random.default_rng(1).standard_normal((50, 7)),       # float64 -> float32
              np.random.default_rng(2).standard_normal(7).astype(np.float32)):  # one vector
        with nl.no_grad():
            out = model(X)
        assert not out.requires_grad and out.dtype == np.float32
        np.testing.assert_array_equal(out.data, _eager_forward(model, nl.tensor(X)))
    assert len(calls) == 3
    # the model is read afresh on every call: a changed weight or a removed bias shows at once
    model[0].weight.data[:] = 0.5
    model[2].bias = None
    X = np.ones((2, 7), np.float32)
    with nl.no_grad():
        np.testing.assert_array_equal(model(X).data, _eager_forward(model, nl.tensor(X)))


def test_no_grad_fast_path_leaves_other_models_and_errors_to_the_eager_path():
    import pytest
    X = np.ones((4, 7), np.float32)
    others = [nn.Sequential(nn.Linear(7, 5, rng=0), nn.Tanh(), nn.Linear(5, 2, rng=1)),
              nn.Sequential(nn.ReLU(), nn.Linear(7, 2, rng=0)),
              nn.Sequential(nn.Linear(7, 5, rng=0), nn.Dropout(0.5), nn.Linear(5, 2, rng=1)).eval()]
    for model in others:
        with nl.no_grad():
            got = model(X).data
        np.testing.assert_array_equal(got, _eager_forward(model, nl.tensor(X)))
    with nl.no_grad(), pytest.raises(ValueError, match="input has 6 features"):
        nn.Sequential(nn.Linear(7, 5, rng=0), nn.ReLU())(np.ones((2, 6), np.float32))
    with nl.no_grad(), pytest.raises(ValueError, match="weight expects 6"):
        nn.Sequential(nn.Linear(7, 5, rng=0), nn.Linear(6, 2, rng=0))(X)


def test_flush_denormals_zeroes_them_inside_and_restores_the_mode_after():
    from neuralab import backend
    tiny = np.full(4, 1e-39, np.float32)  # below float32's smallest normal value (1.2e-38)
    assert (tiny * np.float32(1)).tolist() == tiny.tolist()
    with backend.flush_denormals() as fd:
        if not fd.active:
            pytest.skip("no floating-point control switch on this platform")
        assert (tiny * np.float32(1) == 0).all()
        with backend.flush_denormals():
            pass
        assert (tiny * np.float32(1) == 0).all()  # an inner block leaves the outer mode on
    assert (tiny * np.float32(1)).tolist() == tiny.tolist()
    with backend.flush_denormals(enabled=False) as off:
        assert not off.active and (tiny * np.float32(1) != 0).all()


def test_fit_flushes_denormals_only_while_training(monkeypatch):
    from neuralab import backend
    if backend._fenv() is None:
        pytest.skip("no floating-point control switch on this platform")
    X = np.random.default_rng(0).standard_normal((64, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    seen = []

    class Probe(nl.callbacks.Callback):
        def on_batch_end(self, batch, logs=None):
            seen.append(backend._fenv_bits(None))

    nl.fit(nn.MLP(4, hidden=(8,), out_features=2, rng=0), X, y, epochs=1, batch_size=32,
           verbose=0, callbacks=[Probe()])
    assert seen == [True, True] and backend._fenv_bits(None) is False
    monkeypatch.setenv("NEURALAB_KEEP_DENORMALS", "1")
    seen.clear()
    nl.fit(nn.MLP(4, hidden=(8,), out_features=2, rng=0), X, y, epochs=1, batch_size=32,
           verbose=0, callbacks=[Probe()])
    assert seen == [False, False]


def test_whole_array_axpy_equals_the_sliced_one_and_the_policy_restores_it():
    from neuralab.optim import optimizer
    rng = np.random.default_rng(0)
    x = rng.standard_normal(123_457).astype(np.float32)
    y0 = rng.standard_normal(123_457).astype(np.float32)
    results = []
    for whole in (False, True):
        old = optimizer.whole_axpy(whole)
        y = y0.copy()
        optimizer.axpy(-0.3, x, y)
        optimizer.whole_axpy(old)
        results.append(y)
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_allclose(results[0], y0 - 0.3 * x, rtol=1e-6, atol=1e-7)
    assert optimizer._WHOLE["on"] is False
    with BlasThreadPolicy(flops=10**8):
        pass
    assert optimizer._WHOLE["on"] is False
