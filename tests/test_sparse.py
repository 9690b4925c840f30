"""A SciPy sparse input to a linear layer: sparse-dense products forward and backward."""
from __future__ import annotations

import numpy as np
import pytest

import neuralab as nl
from neuralab import functional as F
from neuralab import nn

sp = pytest.importorskip("scipy.sparse")


def _sparse(n=7, d=11, density=0.3, seed=0, dtype=np.float64):
    return sp.random(n, d, density=density, format="csr", random_state=seed, dtype=dtype)


def test_forward_equals_the_dense_product():
    x = _sparse(dtype=np.float32)
    rng = np.random.default_rng(0)
    w = nl.tensor(rng.standard_normal((4, 11)).astype(np.float32))
    b = nl.tensor(rng.standard_normal(4).astype(np.float32))
    out = F.linear(x, w, b)
    assert type(out.data) is np.ndarray and out.dtype == np.float32
    np.testing.assert_allclose(out.data, x.toarray() @ w.data.T + b.data, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_weight_and_bias_gradients_equal_the_dense_ones(fmt):
    x = _sparse().asformat(fmt)
    rng = np.random.default_rng(1)
    w = nl.tensor(rng.standard_normal((3, 11)), requires_grad=True, dtype=np.float64)
    b = nl.tensor(rng.standard_normal(3), requires_grad=True, dtype=np.float64)
    (F.linear(x, w, b) ** 2).sum().backward()
    wd = nl.tensor(w.data.copy(), requires_grad=True, dtype=np.float64)
    bd = nl.tensor(b.data.copy(), requires_grad=True, dtype=np.float64)
    (F.linear(nl.tensor(x.toarray(), dtype=np.float64), wd, bd) ** 2).sum().backward()
    np.testing.assert_allclose(w.grad, wd.grad, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b.grad, bd.grad, rtol=1e-12, atol=1e-12)


def test_gradcheck_with_a_sparse_input():
    x = _sparse()
    rng = np.random.default_rng(2)
    w = nl.tensor(rng.standard_normal((3, 11)), requires_grad=True, dtype=np.float64)
    b = nl.tensor(rng.standard_normal(3), requires_grad=True, dtype=np.float64)
    nl.gradcheck(lambda w, b: F.tanh(F.linear(x, w, b)).sum(), w, b)


def test_a_network_takes_sparse_rows():
    x = _sparse(n=5, d=11, dtype=np.float32)
    net = nn.Sequential(nn.Linear(11, 6, rng=0), nn.ReLU(), nn.Linear(6, 2, rng=1))
    dense = net(x.toarray()).data
    with nl.no_grad():
        np.testing.assert_allclose(net(x).data, dense, rtol=1e-6, atol=1e-6)
    out = net(x)
    out.sum().backward()
    assert net[0].weight.grad.shape == (6, 11)


def test_a_sparse_input_of_the_wrong_width_is_one_clear_error():
    w = nl.tensor(np.ones((2, 4), np.float32))
    with pytest.raises(ValueError, match="input has 11 features"):
        F.linear(_sparse(), w)


# ----------------------------------------------------------------------------- the estimators
def _quiet():
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    ctx = warnings.catch_warnings()
    ctx.__enter__()
    warnings.simplefilter("ignore", ConvergenceWarning)
    return ctx


@pytest.fixture
def quiet():
    ctx = _quiet()
    yield
    ctx.__exit__(None, None, None)


def _task(n=300, d=80, density=0.08, seed=0):
    X = sp.random(n, d, density=density, format="csr", random_state=seed, dtype=np.float64)
    w = np.random.default_rng(seed).standard_normal(d)
    score = X @ w
    return X, score, np.digitize(score, np.quantile(score, [0.33, 0.66]))


def _params(est):
    return est.coefs_ + est.intercepts_


@pytest.mark.parametrize("make", [
    lambda: nl.MLPClassifier(hidden_layer_sizes=(16,), max_iter=6, random_state=0),  # captured step
    lambda: nl.MLPClassifier(hidden_layer_sizes=(16,), solver="sgd", max_iter=6, random_state=0,
                             learning_rate_init=0.3,
                             early_stopping=True, n_iter_no_change=50),
    lambda: nl.MLPClassifier(hidden_layer_sizes=(16,), max_iter=6, random_state=0, batch_norm=True),
    lambda: nl.MLPRegressor(hidden_layer_sizes=(16,), max_iter=6, random_state=0),
    lambda: nl.MLPClassifier(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=15, random_state=0,
                             dtype="float64"),
], ids=["adam", "sgd-early-stopping", "batch-norm", "regressor", "lbfgs-float64"])
def test_sparse_x_trains_as_its_dense_copy(make, quiet):
    """Same seed: the same initial weights and batches; only the first product's summation
    order differs (SciPy's sparse kernel vs BLAS), so the results agree to float rounding:
    1e-5 absolute on every weight after 6 epochs in float32, 1e-9 for float64 L-BFGS."""
    X, score, y3 = _task()
    est = make()
    y = score if isinstance(est, nl.MLPRegressor) else y3
    sparse_fit = make().fit(X, y)
    dense_fit = make().fit(X.toarray(), y)
    atol = 1e-9 if est.dtype == "float64" else 1e-5
    assert sparse_fit.n_iter_ == dense_fit.n_iter_
    compared = _params(sparse_fit), _params(dense_fit)
    if est.batch_norm:
        # The bias before a batch norm has a zero gradient up to rounding (the norm subtracts
        # the batch mean), which Adam scales up to steps of lr: it is noise on either path.
        compared = [p[:len(p) // 2] + p[len(p) // 2 + 1:] for p in compared]
    for a, b in zip(*compared):
        np.testing.assert_allclose(a, b, rtol=0, atol=atol)
    early = make().set_params(max_iter=1).fit(X, y)
    moved = max(np.abs(a - b).max() for a, b in zip(_params(sparse_fit), _params(early)))
    assert moved > 100 * atol  # training moved the weights: the agreement says something
    predict = getattr(sparse_fit, "predict_proba", sparse_fit.predict)
    np.testing.assert_allclose(predict(X), predict(X.toarray()), rtol=1e-5, atol=1e-6)
    if not est.batch_norm:  # (with batch norm the bias noise above makes the fits' labels differ)
        assert sparse_fit.score(X, y) == pytest.approx(dense_fit.score(X.toarray(), y), abs=0.01)


def test_partial_fit_and_sample_weight_take_sparse_rows(quiet):
    X, _, y = _task()
    w = np.random.default_rng(3).uniform(0.5, 2, X.shape[0])
    a = nl.MLPClassifier(hidden_layer_sizes=(8,), random_state=0)
    b = nl.MLPClassifier(hidden_layer_sizes=(8,), random_state=0)
    for _ in range(3):
        a.partial_fit(X.tocsc(), y, classes=[0, 1, 2], sample_weight=w)  # the eager step
        b.partial_fit(X.toarray(), y, classes=[0, 1, 2], sample_weight=w)
    for p, q in zip(_params(a), _params(b)):
        np.testing.assert_allclose(p, q, rtol=0, atol=1e-5)


def test_the_captured_step_replays_a_sparse_batch_as_the_eager_graph():
    # Equal by construction: both call SciPy's sparse x dense kernel for the first layer.
    from neuralab.training.captured import CapturedMLP
    X, _, y = _task(n=64)
    X = X.astype(np.float32)
    model = nn.MLP(80, hidden=(12, 7), out_features=3, rng=0)
    loss = F.cross_entropy(model(X), y)
    loss.backward()
    eager = [p.grad.copy() for p in model.parameters()]
    with nl.no_grad():
        logits = model(X).data
    cap = CapturedMLP.from_model(model)
    value = cap.forward_backward(X, y)
    assert np.array_equal(np.float32(value), np.float32(loss.item()))
    assert np.array_equal(cap.logits, logits)
    for p, g in zip(model.parameters(), eager):
        assert np.array_equal(p.grad, g)


def test_the_no_graph_forward_leaves_sparse_rows_to_the_modules():
    from neuralab.nn._fast import forward_layers, inference_layers, no_grad_forward
    X, _, _ = _task(n=20)
    X = X.astype(np.float32)
    model = nn.MLP(80, hidden=(12,), out_features=3, rng=0)
    assert no_grad_forward(list(model), nl.Tensor._make(X, False)) is None  # falls back
    with nl.no_grad():
        eager = model(X).data
    assert np.array_equal(forward_layers(inference_layers(model), X), eager)  # same SciPy call


def test_gradcheck_of_the_estimators_first_layer_on_sparse_input():
    torch = pytest.importorskip("torch")
    X, _, y = _task(n=40)
    clf = nl.MLPClassifier(hidden_layer_sizes=(6,), activation="tanh", max_iter=2,
                           random_state=0, dtype="float64")
    with _quiet_ctx():
        clf.fit(X, y)
    first = clf._linears[0]
    target = nl.Tensor._make(np.searchsorted(clf.classes_, y), False)

    def loss(weight, bias):
        first.weight, first.bias = weight, bias
        return clf._batch_loss(clf.model_(X), target, None, float(X.shape[0]))

    w0, b0 = first.weight, first.bias
    try:
        w = nl.tensor(w0.data.copy(), requires_grad=True, dtype=np.float64)
        b = nl.tensor(b0.data.copy(), requires_grad=True, dtype=np.float64)
        assert nl.gradcheck(loss, w, b)
        loss(w, b).backward()
    finally:
        first.weight, first.bias = w0, b0
    # PyTorch on the dense copy as the oracle
    tw = torch.tensor(w.data, requires_grad=True)
    h = torch.tanh(torch.tensor(X.toarray()) @ tw.T + torch.tensor(b.data))
    rest = clf._linears[1]
    z = h @ torch.tensor(rest.weight.data).T + torch.tensor(rest.bias.data)
    torch.nn.functional.cross_entropy(z, torch.tensor(target.data)).backward()
    np.testing.assert_allclose(w.grad, tw.grad.numpy(), rtol=1e-10, atol=1e-12)


def _quiet_ctx():
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    ctx = warnings.catch_warnings()
    warnings.simplefilter("ignore", ConvergenceWarning)
    return ctx


def _texts(n=600, seed=0):
    """Three topics: each word comes from the document's topic with probability 0.3, else from
    words all topics share, so one document is ambiguous now and then."""
    rng = np.random.default_rng(seed)
    shared = [f"w{i}" for i in range(150)]
    topics = [[f"t{k}x{i}" for i in range(40)] for k in range(3)]
    labels = rng.integers(0, 3, n)
    docs = [" ".join(rng.choice(topics[k]) if rng.random() < 0.3 else rng.choice(shared)
                     for _ in range(10)) for k in labels]
    return docs, np.array(["sport", "news", "music"])[labels]


def _pipeline_scores(make_vectorizer, texts, labels, hidden, max_iter):
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    tr, te, ytr, yte = train_test_split(texts, labels, test_size=0.3, random_state=0, stratify=labels)
    scores = {}
    for name, est in (("neuralab", nl.MLPClassifier(hidden_layer_sizes=hidden, max_iter=max_iter, random_state=0)),
                      ("sklearn", MLPClassifier(hidden_layer_sizes=hidden, max_iter=max_iter, random_state=0))):
        with _quiet_ctx():
            scores[name] = make_pipeline(make_vectorizer(), est).fit(tr, ytr).score(te, yte)
    return scores


def test_a_tfidf_pipeline_learns_as_sklearns_mlp():
    from sklearn.feature_extraction.text import TfidfVectorizer
    texts, labels = _texts()
    scores = _pipeline_scores(TfidfVectorizer, texts, labels, (32,), 30)
    assert scores["neuralab"] > 0.8  # chance is 1/3
    assert scores["neuralab"] >= scores["sklearn"] - 0.03, scores


def test_sms_spam_pipeline_matches_sklearn():
    from neuralab.datasets import find_data_file
    path = find_data_file("sms_spam.tsv")
    if path is None:
        pytest.skip("sms_spam.tsv is not in the data folders (NEURALAB_DATA, ./data)")
    import csv

    import pandas as pd
    from sklearn.feature_extraction.text import TfidfVectorizer
    df = pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE)
    scores = _pipeline_scores(lambda: TfidfVectorizer(min_df=2), df.iloc[:, 1].astype(str),
                              df.iloc[:, 0].to_numpy(), (16,), 5)
    assert scores["neuralab"] > 0.95
    assert scores["neuralab"] >= scores["sklearn"] - 0.01, scores


def test_a_column_transformer_with_sparse_one_hot_output(quiet):
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    rng = np.random.default_rng(0)
    n = 400
    df = pd.DataFrame({"city": rng.choice([f"c{i}" for i in range(30)], n),
                       "shop": rng.choice([f"s{i}" for i in range(20)], n),
                       "x": rng.standard_normal(n)})
    effect = {f"c{i}": rng.standard_normal() for i in range(30)}
    y = (df.city.map(effect) + df.x > 0).astype(int).to_numpy()
    prep = ColumnTransformer([("cat", OneHotEncoder(sparse_output=True, handle_unknown="ignore"),
                               ["city", "shop"]), ("num", StandardScaler(), ["x"])],
                             sparse_threshold=1.0)
    assert sp.issparse(prep.fit_transform(df))
    make = lambda: nl.MLPClassifier(hidden_layer_sizes=(16,), max_iter=60, random_state=0)  # noqa: E731
    pipe = make_pipeline(prep, make()).fit(df[:300], y[:300])
    assert pipe.score(df[300:], y[300:]) > 0.8
    dense = make().fit(prep.fit_transform(df[:300]).toarray(), y[:300])
    np.testing.assert_allclose(pipe[-1].predict_proba(prep.transform(df[300:])),
                               dense.predict_proba(prep.transform(df[300:]).toarray()), atol=1e-5)


def test_onnx_export_of_a_model_trained_on_sparse_rows(tmp_path, quiet):
    ort = pytest.importorskip("onnxruntime")
    X, _, y = _task()
    clf = nl.MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, y)
    path = nl.export_onnx(clf, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    outputs = [o.name for o in session.get_outputs()]
    got = dict(zip(outputs, session.run(None, {name: X.toarray().astype(np.float32)})))  # dense input
    np.testing.assert_allclose(got["probabilities"], clf.predict_proba(X), rtol=1e-5, atol=1e-6)


def test_training_on_sparse_rows_never_densifies_the_data(quiet):
    # 1000 x 100000 at 0.05%: 400 MB dense in float32, 0.6 MB sparse. The network's own arrays
    # (weights, gradient, Adam's two moments: 4 x 100000 x 8 float32) are about 13 MB.
    import tracemalloc
    rng = np.random.default_rng(0)
    rows, cols = np.repeat(np.arange(1000), 50), rng.integers(0, 100_000, 50_000)
    X = sp.csr_matrix((rng.random(50_000, dtype=np.float32), (rows, cols)), shape=(1000, 100_000))
    y = np.arange(1000) % 2
    nl.MLPClassifier(hidden_layer_sizes=(8,), max_iter=1).fit(X[:20], y[:20])  # imports, untraced
    tracemalloc.start()
    try:
        clf = nl.MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0).fit(X, y)
        clf.predict_proba(X)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 60e6, f"peak {peak / 1e6:.0f} MB"
