"""Bad input gets one clear line naming the problem: one table over the Python API and the CLI.

Every row is a mistake a user makes with real data or settings. A Python row must raise the
given exception with a message matching the pattern (never a bare NumPy error); a CLI row
must exit with code 2 and print exactly one ``Error: ...`` line matching it, no traceback.
The table's size is printed by ``test_table_size`` (and reported in the issue).
"""
from __future__ import annotations

import json
import re
import struct

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.utils._param_validation import InvalidParameterError

import neuralab as nl
from neuralab import nn
from neuralab.cli import main
from neuralab.io import ModelFileError

RNG = np.random.default_rng(0)
X = RNG.normal(size=(20, 3))
Y = np.arange(20) % 2
X_NAN = X.copy()
X_NAN[3, 1], X_NAN[5, 2], X_NAN[7, 1] = np.nan, np.nan, np.nan
X_INF = X.copy()
X_INF[4, 0] = np.inf
FRAME = pd.DataFrame(X, columns=["age", "height", "weight"])


def _clf(**kw):
    return nl.MLPClassifier(**{"hidden_layer_sizes": (4,), "max_iter": 3, "random_state": 0, **kw})


def _reg(**kw):
    return nl.MLPRegressor(**{"hidden_layer_sizes": (4,), "max_iter": 3, "random_state": 0, **kw})


_FITTED: dict = {}


def _fitted(kind: str = "array"):
    if kind not in _FITTED:
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _FITTED[kind] = _clf().fit(FRAME if kind == "frame" else X, Y)
    return _FITTED[kind]


def _net():
    return nn.MLP(3, hidden=(4,), out_features=2, rng=np.random.default_rng(0))


def _other_version(src, dst):
    """A copy of a real model file claiming model format version 2 (a future neuralab)."""
    data = src.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header["__metadata__"]["format_version"] = "2"
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    dst.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n:])
    return dst


# ---------------------------------------------------------------- the Python rows
# (id, callable(tmp files), exception type, pattern)
API_CASES = [
    ("nan-in-X", lambda f: _clf().fit(X_NAN, Y), ValueError,
     r"X has 3 NaN value\(s\) in 2 column\(s\) \[1, 2\] \(first in row 3\)"),
    ("inf-in-X", lambda f: _clf().fit(X_INF, Y), ValueError,
     r"X has 1 infinite value\(s\) in 1 column\(s\) \[0\] \(first in row 4\)"),
    ("nan-in-X-frame-names-columns", lambda f: _clf().fit(FRAME.assign(height=X_NAN[:, 1]), Y),
     ValueError, r"2 NaN value\(s\) in 1 column\(s\) \['height'\]"),
    ("nan-in-X-at-predict", lambda f: _fitted().predict(X_NAN), ValueError, r"X has 3 NaN"),
    ("nan-in-X-perceptron", lambda f: nl.Perceptron().fit(X_NAN, Y), ValueError, r"X has 3 NaN"),
    ("nan-in-X-nl.fit", lambda f: nl.fit(_net(), X_NAN, Y, verbose=0), ValueError,
     r"X has 3 NaN or infinite value\(s\) in column\(s\) \[1, 2\]"),
    ("nan-in-y", lambda f: _reg().fit(X, np.where(Y, np.nan, 1.0)), ValueError, r"y contains NaN"),
    ("inf-in-y", lambda f: _reg().fit(X, np.where(Y, np.inf, 1.0)), ValueError,
     r"y contains infinity"),
    ("length-mismatch", lambda f: _clf().fit(X, Y[:-1]), ValueError,
     r"inconsistent numbers of samples: \[20, 19\]"),
    ("length-mismatch-nl.fit", lambda f: nl.fit(_net(), X, Y[:-1], verbose=0), ValueError,
     r"X has 20 samples but y has 19"),
    ("empty", lambda f: _clf().fit(X[:0], Y[:0]), ValueError, r"0 sample"),
    ("empty-nl.fit", lambda f: nl.fit(_net(), X[:0], Y[:0], verbose=0), ValueError,
     r"X is empty \(0 samples\)"),
    ("one-sample", lambda f: _reg().fit(X[:1], Y[:1]), ValueError, r"got 1 sample; .*at least 2"),
    ("one-class", lambda f: _clf().fit(X, np.zeros(20)), ValueError,
     r"y has only one class \(0\.0\)"),
    ("one-class-perceptron", lambda f: nl.Perceptron().fit(X, np.zeros(20)), ValueError,
     r"at least 2 classes"),
    ("wrong-n-features", lambda f: _fitted().predict(X[:, :2]), ValueError,
     r"X has 2 features, but MLPClassifier is expecting 3"),
    ("other-column-names", lambda f: _fitted("frame").predict(FRAME.rename(columns={"age": "AGE"})),
     ValueError, r"feature names should match.*AGE"),
    ("non-numeric-column", lambda f: _clf().fit(FRAME.assign(city=["Paris", "Oslo"] * 10), Y),
     ValueError, r"column 'city' is not numeric \(row 0 holds 'Paris'\)"),
    ("batch_size-0", lambda f: _clf(batch_size=0).fit(X, Y), InvalidParameterError,
     r"'batch_size' parameter of MLPClassifier must be .* Got 0"),
    ("batch_size-negative", lambda f: _clf(batch_size=-5).fit(X, Y), InvalidParameterError,
     r"'batch_size' parameter .* Got -5"),
    ("batch_size-0-nl.fit", lambda f: nl.fit(_net(), X, Y, batch_size=0, verbose=0), ValueError,
     r"batch_size must be a positive integer, got 0"),
    ("hidden-with-zero", lambda f: _clf(hidden_layer_sizes=(5, 0)).fit(X, Y),
     InvalidParameterError, r"'hidden_layer_sizes' parameter of MLPClassifier must be positive"),
    ("dropout-1", lambda f: _clf(dropout=1.0).fit(X, Y), InvalidParameterError,
     r"'dropout' parameter .* range \[0.0, 1.0\)\. Got 1.0"),
    ("dropout-negative", lambda f: _clf(dropout=-0.1).fit(X, Y), InvalidParameterError,
     r"'dropout' parameter .* Got -0.1"),
    ("unknown-activation", lambda f: _clf(activation="relu6").fit(X, Y), InvalidParameterError,
     r"'activation' parameter .* Got 'relu6'"),
    ("unknown-solver", lambda f: _clf(solver="adamx").fit(X, Y), InvalidParameterError,
     r"'solver' parameter .* Got 'adamx'"),
    ("model-file-other-version", lambda f: nl.load(f["v2"]), ModelFileError,
     r"model format version 2 .* reads format version 1; upgrade neuralab"),
    ("model-file-missing", lambda f: nl.load(f["dir"] / "nope.safetensors"), ModelFileError,
     r"no such file"),
    ("model-file-is-a-csv", lambda f: nl.load(f["ok"]), ModelFileError,
     r"not a safetensors model file"),
]


# ---------------------------------------------------------------- the CLI rows
def _train(data, *extra):
    return ["train", str(data), "--target", "y", "--epochs", "2", "--hidden", "4", *extra]


# (id, argv(tmp files), pattern of the one Error line)
CLI_CASES = [
    ("inf-in-column", lambda f: _train(f["inf"], "-o", f["out"]),
     r"column 'a' has 1 infinite value\(s\) \(first in row 3\)"),
    ("inf-at-predict", lambda f: ["predict", f["model"], f["inf"]],
     r"column 'a' has 1 infinite value\(s\)"),
    ("one-class", lambda f: _train(f["oneclass"], "-o", f["out"]),
     r"target column 'y' has a single class 'p'"),
    ("one-sample", lambda f: ["train", f["onerow"], "--target", "a", "--epochs", "2", "-o", f["out"]],
     r"1 sample"),
    ("header-only", lambda f: _train(f["header"]), r"the table has no rows"),
    ("empty-file", lambda f: _train(f["empty"]), r"empty.csv: cannot read it as a table"),
    ("binary-file", lambda f: _train(f["binary"]), r"binary.csv: not UTF-8 text"),
    ("not-utf8", lambda f: _train(f["latin"]), r"latin.csv: not UTF-8 text"),
    ("not-a-table", lambda f: _train(f["json"]), r"json.csv: cannot read it as a table"),
    ("missing-file", lambda f: _train(f["dir"] / "missing.csv"),
     r"no such file or built-in dataset: '.*missing.csv'"),
    ("missing-target", lambda f: ["train", f["ok"], "--target", "price"],
     r"target column 'price' is not in the data; columns are \['a', 'b', 'c', 'y'\]"),
    ("text-target-for-regression", lambda f: ["train", f["ok"], "--target", "c", "--task",
                                              "regression", "-o", f["out"]],
     r"target column 'c' holds non-numbers \(e.g. 'x'\); regression needs numbers"),
    ("batch-size-0", lambda f: _train(f["ok"], "--batch-size", "0"),
     r"Invalid value for '--batch-size': 0 is not in the range x>=1"),
    ("batch-size-0-dataset", lambda f: ["train", "--dataset", "iris", "--batch-size", "-3"],
     r"Invalid value for '--batch-size': -3"),
    ("hidden-with-zero", lambda f: _train(f["ok"], "--hidden", "5,0"),
     r"--hidden must be positive layer widths separated by commas, like 128,64 .*got '5,0'"),
    ("dropout-1", lambda f: _train(f["ok"], "--dropout", "1"),
     r"Invalid value for '--dropout': 1.0 is not in the range 0<=x<1"),
    ("unknown-activation", lambda f: _train(f["ok"], "--activation", "relu6"),
     r"Invalid value for '--activation': 'relu6' is not one of"),
    ("unknown-solver", lambda f: _train(f["ok"], "--solver", "adamx"),
     r"'--solver': 'adamx' is not one of"),
    ("predict-missing-column", lambda f: ["predict", f["model"], f["nob"]],
     r"column\(s\) \['b'\] used by the model are missing from the data"),
    ("predict-renamed-column", lambda f: ["predict", f["model"], f["renamed"]],
     r"column\(s\) \['b'\] used by the model are missing"),
    ("model-file-other-version", lambda f: ["predict", f["v2"], f["ok"]],
     r"model format version 2"),
    ("model-file-missing", lambda f: ["predict", f["dir"] / "nope.safetensors", f["ok"]],
     r"nope.safetensors: no such file"),
    ("model-file-is-a-csv", lambda f: ["info", f["ok"]], r"not a safetensors model file"),
    ("resume-a-finished-model", lambda f: ["train", "--resume", f["model"]],
     r"not an interrupted run's checkpoint"),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=30), "b": rng.normal(size=30),
                       "c": ["x", "y", "z"] * 10, "y": ["p", "q"] * 15})
    f = {"dir": d, "out": d / "out.safetensors"}

    def put(name, frame):
        frame.to_csv(d / name, index=False)
        f[name.split(".")[0]] = d / name

    put("ok.csv", df)
    put("inf.csv", df.assign(a=np.where(np.arange(30) == 3, np.inf, df.a)))
    put("oneclass.csv", df.assign(y="p"))
    put("onerow.csv", df.iloc[:1])
    put("header.csv", df.iloc[:0])
    put("nob.csv", df.drop(columns=["b"]))
    put("renamed.csv", df.rename(columns={"b": "B"}))
    (d / "empty.csv").write_bytes(b"")
    (d / "binary.csv").write_bytes(bytes(range(256)) * 8)
    (d / "latin.csv").write_bytes("a,b,y\n1,2,caf\xe9\n3,4,th\xe9\n".encode("latin-1"))
    (d / "json.csv").write_text('{"json": [1, 2, 3]}\n"unterminated\n')
    f.update({k: d / f"{k}.csv" for k in ("empty", "binary", "latin", "json")})
    res = CliRunner().invoke(main, _train(f["ok"], "-o", str(d / "model.safetensors")))
    assert res.exit_code == 0, res.output
    f["model"] = d / "model.safetensors"
    f["v2"] = _other_version(f["model"], d / "v2.safetensors")
    return {k: (str(v) if k != "dir" else v) for k, v in f.items()}


def _cases():
    for case_id, make, exc, pattern in API_CASES:
        yield pytest.param("api", make, exc, pattern, id=f"api-{case_id}")
    for case_id, make, pattern in CLI_CASES:
        yield pytest.param("cli", make, None, pattern, id=f"cli-{case_id}")


@pytest.mark.parametrize("where, make, exc, pattern", list(_cases()))
def test_bad_input_is_named_in_one_line(files, where, make, exc, pattern):
    if where == "api":
        with pytest.raises(exc) as info:
            make({**files, "dir": files["dir"]})
        message = str(info.value)
        assert re.search(pattern, message, re.S), message
        # The problem is named in the first line, in our words or sklearn's, never NumPy's.
        assert not re.search(r"could not convert|operands could not be broadcast|"
                             r"invalid value encountered", message)
        return
    args = [str(a) for a in make(files)]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2, (args, res.exit_code, res.output)
    errors = [line for line in res.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, res.output
    assert re.search(pattern, errors[0]), errors[0]
    assert "Traceback" not in res.output
    assert isinstance(res.exception, SystemExit)


def test_table_size():
    """The issue asks for the table's size; the table must cover both surfaces."""
    print(f"bad-input table: {len(API_CASES)} Python rows + {len(CLI_CASES)} CLI rows "
          f"= {len(API_CASES) + len(CLI_CASES)}")
    assert len(API_CASES) >= 25 and len(CLI_CASES) >= 20


# ---------------------------------------------------------------- divergence and large inputs
def _digits():
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    return X[:400], y[:400]


def test_huge_learning_rate_stops_with_a_message_and_keeps_finite_weights():
    from sklearn.exceptions import ConvergenceWarning
    X, y = _digits()
    clf = nl.MLPClassifier(hidden_layer_sizes=(32,), solver="sgd", learning_rate_init=1e6,
                           max_iter=20, random_state=0)
    # it stops when the loss becomes NaN, or before, when it has grown 1000-fold
    with pytest.warns(ConvergenceWarning, match=r"loss became (nan|\S+, over 1000 times).*"
                                                r"smaller learning_rate_init \(now 1e\+06"):
        clf.fit(X, y)
    assert clf.diverged_ is not None and clf.n_iter_ < 20  # it stopped early
    for p in clf.model_.parameters():
        assert np.isfinite(p.data).all()
    proba = clf.predict_proba(X)
    assert np.isfinite(proba).all() and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert "kept the last finite weights" in clf.diverged_


def test_regressor_divergence_never_predicts_nan():
    X, y = _digits()
    reg = nl.MLPRegressor(hidden_layer_sizes=(16,), solver="sgd", learning_rate_init=10.0,
                          max_iter=10, random_state=0)
    with pytest.warns(Warning, match="diverged"):
        reg.fit(X, y * 1000.0)
    assert np.isfinite(reg.predict(X)).all()


def test_cli_divergence_is_reported(tmp_path):
    # (1e12: digits' pixels are scaled to [0, 1], where lr 1e6 only kills every ReLU)
    res = CliRunner().invoke(main, ["train", "--dataset", "digits", "--lr", "1e12", "--optimizer",
                                    "sgd", "--epochs", "3", "--hidden", "16", "--patience", "0",
                                    "-q", "--out", str(tmp_path / "m.safetensors")])
    assert res.exit_code == 0, res.output
    assert re.search(r"warning: loss became (nan|inf).*smaller learning rate", res.output)
    model = nl.load(tmp_path / "m.safetensors")
    assert all(np.isfinite(v).all() for v in model.estimator.model_.state_dict().values())
    data = nl.datasets.load("digits")
    from neuralab.datasets import column_names as dataset_columns
    frame = pd.DataFrame(data.X_test, columns=dataset_columns(data))
    assert np.isfinite(model.predict_proba(frame)).all()  # the saved model never predicts NaN


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh", "leaky_relu", "gelu", "softmax",
                                  "log_softmax"])
def test_activations_do_not_overflow_on_1e6(name):
    import warnings
    from neuralab import functional as F
    big = np.array([[1e6, -1e6, 3.0], [-1e6, 1e6, 0.0]], np.float32)
    x = nl.tensor(big, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow RuntimeWarning fails the test
        out = getattr(F, name)(x)
        (out * nl.tensor(np.ones_like(big))).sum().backward()
    assert np.isfinite(out.data).all() and np.isfinite(x.grad).all()


@pytest.mark.parametrize("name, target", [
    ("cross_entropy", np.array([1, 0])),
    ("binary_cross_entropy_with_logits", np.ones((2, 3), np.float32)),
    ("mse_loss", np.zeros((2, 3), np.float32)),
    ("huber_loss", np.zeros((2, 3), np.float32)),
    ("l1_loss", np.zeros((2, 3), np.float32)),
])
def test_losses_do_not_overflow_on_1e6(name, target):
    import warnings
    from neuralab import functional as F
    big = np.array([[1e6, -1e6, 3.0], [-1e6, 1e6, 0.0]], np.float32)
    x = nl.tensor(big, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = getattr(F, name)(x, nl.tensor(target))
        loss.backward()
    assert np.isfinite(loss.data) and float(loss.data) > 1e4  # large, exact-ish, not inf
    assert np.isfinite(x.grad).all()


def test_estimator_on_inputs_of_1e6_predicts_finite_probabilities():
    import warnings
    Xb = X * 1e6
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for act in ("relu", "logistic", "tanh", "gelu"):
            clf = _clf(activation=act).fit(Xb, Y)
            p = clf.predict_proba(Xb)
            assert np.isfinite(p).all() and np.allclose(p.sum(axis=1), 1, atol=1e-5), act


# ---------------------------------------------------------------- concurrent predict
def test_concurrent_predict_from_threads_is_correct_and_leaves_grad_mode_alone():
    import threading
    from sklearn.datasets import load_digits
    Xd, yd = load_digits(return_X_y=True)
    Xd = (Xd / 16.0).astype(np.float32)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = nl.MLPClassifier(hidden_layer_sizes=(32,), max_iter=10, random_state=0).fit(Xd, yd)
    expected_p, expected_y = clf.predict_proba(Xd), clf.predict(Xd)
    failures, barrier = [], threading.Barrier(6)

    def worker(k):
        rng = np.random.default_rng(k)
        barrier.wait()  # start together, to overlap as much as possible
        for _ in range(30):
            idx = rng.choice(len(Xd), size=int(rng.integers(1, 400)), replace=False)
            p = clf.predict_proba(Xd[idx])
            if not (np.allclose(p, expected_p[idx], rtol=1e-5, atol=1e-7)
                    and np.array_equal(clf.predict(Xd[idx]), expected_y[idx])):
                failures.append(k)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    # Each thread's no_grad was its own: this thread still records graphs.
    assert nl.is_grad_enabled()
    x = nl.tensor(np.ones(3), requires_grad=True)
    (x * 2).sum().backward()
    np.testing.assert_array_equal(x.grad, [2, 2, 2])


def test_no_grad_is_per_thread():
    import threading
    inside = threading.Event()
    release = threading.Event()
    seen = []

    def other():
        with nl.no_grad():
            inside.set()
            release.wait(10)
            seen.append(nl.is_grad_enabled())

    t = threading.Thread(target=other)
    t.start()
    inside.wait(10)
    assert nl.is_grad_enabled()  # the other thread's no_grad does not reach this one
    release.set()
    t.join()
    assert seen == [False] and nl.is_grad_enabled()
