"""Fast paths of data loading, the BLAS thread rule, denormal flushing; fallbacks to the eager path.

Parity of each fast path with its readable twin: tests/test_fast_paths.py.
"""
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


def _eager_forward(model, x):
    for m in model:  # the chain through the modules' own forward, with the graph on
        x = m(x)
    return x.data


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




def _blas_threads():
    from threadpoolctl import threadpool_info
    return [(i["filepath"], i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas"]


def test_thread_rule_reads_shapes_and_cores_only():
    from neuralab.training.threads import TWO_THREADS_FROM, choose_threads
    assert choose_threads(TWO_THREADS_FROM - 1, 2) == 1
    assert choose_threads(TWO_THREADS_FROM, 2) == 2
    assert choose_threads(TWO_THREADS_FROM * 100, 1) == 1
    assert choose_threads(TWO_THREADS_FROM * 100, 8) == 8
    small, wide = nn.MLP(64, hidden=(128,), out_features=10, rng=0), nn.MLP(784, hidden=(1024,), out_features=10, rng=0)
    # the same settings give the same count, every time: nothing is timed
    assert [BlasThreadPolicy(small, 64).threads for _ in range(3)] == [1, 1, 1]
    cores = BlasThreadPolicy(wide, 256).max_threads
    assert [BlasThreadPolicy(wide, 256).threads for _ in range(3)] == [choose_threads(256 * 784 * 1024, cores)] * 3
    assert BlasThreadPolicy(wide, 256, threads=1).threads == 1
    with pytest.raises(ValueError, match="positive integer"):
        BlasThreadPolicy(small, 64, threads=0)


def test_thread_policy_sets_the_count_and_restores_it():
    nl.fit(nn.MLP(8, hidden=(4,), out_features=2, rng=0), np.zeros((8, 8), np.float32),
           np.zeros(8, np.int64), epochs=1, verbose=0)  # SciPy's BLAS is loaded too
    before = _blas_threads()
    seen = []
    with BlasThreadPolicy(flops=10**9, threads=1) as policy:
        seen = _blas_threads()
    assert policy.threads == 1 and {n for _, n in seen} == {1}
    assert _blas_threads() == before


def test_fit_records_its_thread_count_and_a_forced_count_repeats_bit_for_bit():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((256, 256)).astype(np.float32)
    y = rng.integers(0, 4, 256)
    recorded = []

    class Record(nl.callbacks.Callback):
        def on_train_begin(self, logs=None):
            recorded.append(self.run.blas_threads)

    def train(threads):
        model = nn.MLP(256, hidden=(256, 256), out_features=4, rng=0)
        nl.fit(model, X, y, epochs=2, batch_size=64, verbose=0, seed=0, blas_threads=threads,
               callbacks=[Record()])
        return [p.data.copy() for p in model.parameters()]

    chosen = BlasThreadPolicy(nn.MLP(256, hidden=(256, 256), out_features=4, rng=0), 64).threads
    train(None)
    train(None)
    assert recorded == [chosen, chosen]  # the same settings, the same count
    for threads in (1, 2):
        a, b = train(threads), train(threads)
        assert recorded[-2:] == [threads, threads]
        for wa, wb in zip(a, b):
            np.testing.assert_array_equal(wa, wb)
