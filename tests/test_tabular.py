"""TabularClassifier / TabularRegressor: mixed tables, model files, bad input, sklearn's checks."""
import warnings

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

import neuralab as nl
from neuralab.estimators.tabular import TableEncoder

pd = pytest.importorskip("pandas")

FAST = dict(n_epochs=3, hidden=(16, 16), batch_size=32, random_state=0)


def mixed_table(n=120, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "num": rng.standard_normal(n),
        "few": rng.choice(["a", "b", "c"], n),
        "many": rng.choice([f"k{i}" for i in range(15)], n),
        "flag": rng.random(n) > 0.5,
        "when": pd.date_range("2021-01-01", periods=n, freq="D").astype(str),
        "count": rng.integers(0, 5, n),
    })
    df.loc[::9, "num"] = np.nan
    df.loc[::13, "many"] = None
    y = np.where(df["num"].fillna(0) + (df["few"] == "a") > 0.2, "yes", "no")
    return df, y


def test_piecewise_linear_encoding_by_hand():
    from neuralab.estimators.tabular import ple
    z = ple(np.array([-1.0, 0.0, 0.25, 1.5, 9.0]), [0.0, 1.0, 2.0, 4.0])
    np.testing.assert_array_equal(z, [[-1, 0, 0], [0, 0, 0], [0.25, 0, 0], [1, 0.5, 0],
                                      [1, 1, 3.5]])
    df = pd.DataFrame({"x": [0.0, 1, 2, 3, 4, 5, 6, 7, np.nan], "two": [0, 1] * 4 + [1],
                       "c": list("abcabcabc")})
    enc = TableEncoder(ple_bins=4).fit(df)
    x, two, _ = enc.spec["columns"]
    # edges at the quantiles of the present values; a column of two values gets no bins
    assert x["edges"] == [0.0, 1.75, 3.5, 5.25, 7.0] and "edges" not in two
    # numbers x, two | x's missing flag, x's 4 bins, c's 3 one-hots
    assert enc.layout() == (2, 8, [])
    assert enc.feature_names()[:7] == ["x", "two", "x=<missing>", "x:bin0", "x:bin1", "x:bin2",
                                       "x:bin3"]
    assert enc.source_columns()[:7] == ["x", "two"] + ["x"] * 5
    Z = enc.transform(df)
    # the missing x is the median (3.5), binned as such, with its flag
    np.testing.assert_allclose(Z[8, [0, 2, 3, 4, 5, 6]], [3.5, 1, 1, 1, 0, 0])
    np.testing.assert_allclose(Z[:, 3:7], ple(np.r_[np.arange(8.0), 3.5], x["edges"]), rtol=1e-6)
    assert "edges" not in TableEncoder().fit(df).spec["columns"][0]  # off by default


def test_auto_bins_keep_the_encoding_that_validates_better():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 10, 400)
    df = pd.DataFrame({"x": x, "noise": rng.standard_normal(400)})
    y = np.where((x > 3.0) & (x < 3.8), "in", "out")  # a narrow band: bins find it at once
    runs = {b: nl.TabularClassifier(**{**FAST, "n_epochs": 6}, n_bags=b, ple_bins="auto").fit(df, y)
            for b in (1, 3)}
    for bags, est in runs.items():
        assert est.ple_bins_ in (0, 16) and len(est.networks_) == bags
        has_bins = any(c.get("edges") for c in est.encoding_["columns"])
        assert has_bins == (est.ple_bins_ == 16)
        assert est.feature_names_out_ == est._encoder().feature_names()
    # the choice is the lower first-fold validation error of the two networks (ties: no bins),
    # and the result is that encoding's own fit (both start from the same random state)
    plain = nl.TabularClassifier(**{**FAST, "n_epochs": 6}, n_bags=1).fit(df, y)
    binned = nl.TabularClassifier(**{**FAST, "n_epochs": 6}, n_bags=1, ple_bins=16).fit(df, y)
    errors = [min(m.history_[0]["val_error"]) for m in (plain, binned)]
    assert runs[1].ple_bins_ == (16 if errors[1] < errors[0] else 0)
    kept = binned if runs[1].ple_bins_ else plain
    np.testing.assert_array_equal(runs[1].predict_proba(df), kept.predict_proba(df))
    with pytest.raises(ValueError, match="ple_bins must be a non-negative integer or 'auto'"):
        nl.TabularClassifier(**FAST, ple_bins="many").fit(df, y)


class _Starts(nl.callbacks.Callback):
    """Counts the networks trained (each ``nl.fit`` begins once)."""

    def __init__(self):
        super().__init__()
        self.starts = 0

    def on_train_begin(self, logs=None):
        self.starts += 1


@pytest.mark.parametrize("rows, preset, starts, bins", [
    (400, "default", 2, 16),  # up to 4,000 rows: 16 bins tried against none on the first fold
    (4_001, "default", 1, 0),  # beyond: none tried (one network's time)
    (400, "fast", 1, 0),  # the fast preset: none
])
def test_the_presets_try_bins_up_to_4000_rows(rows, preset, starts, bins):
    from neuralab.estimators.tabular import auto_ple_bins
    assert (auto_ple_bins(4_000), auto_ple_bins(4_001)) == (16, 0)
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 10, rows)
    df = pd.DataFrame({"x": x, "noise": rng.standard_normal(rows)})
    y = np.where((x > 3.0) & (x < 3.8), "in", "out")
    seen = _Starts()
    est = nl.TabularClassifier(preset, n_epochs=2, hidden=(8,), batch_size=512, n_bags=1,
                               random_state=0).fit(df, y, callbacks=[seen])
    assert seen.starts == starts and est.ple_bins_ in (0, bins)
    if bins == 0:
        assert not any(c.get("edges") for c in est.encoding_["columns"])


def test_encoder_layout_and_names():
    df, _ = mixed_table()
    enc = TableEncoder().fit(df)
    n_num, n_bin, cards = enc.layout()
    # numbers: num, 4 date parts, count; 0/1: num's missing flag, few's 3 one-hots, flag
    assert (n_num, n_bin, cards) == (6, 5, [16])
    # each encoded column names the table column it came from (explanations group by it)
    sources = dict(zip(enc.feature_names(), enc.source_columns()))
    assert sources["num=<missing>"] == "num" and sources["when.month"] == "when"
    assert sources["many#code"] == "many" and len(sources) == n_num + n_bin + 1
    Z = enc.transform(df)
    assert Z.shape == (len(df), n_num + n_bin + 1) and Z.dtype == np.float32
    assert np.isfinite(Z).all()
    assert enc.feature_names()[:2] == ["num", "when.year"]
    assert Z[:, -1].min() == 0 and Z[:, -1].max() == 15  # code 0: missing


def test_classifier_on_a_mixed_table():
    df, y = mixed_table()
    clf = nl.TabularClassifier(**FAST).fit(df, y)
    p = clf.predict_proba(df)
    assert p.shape == (len(df), 2)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert set(clf.predict(df)) <= {"yes", "no"}
    assert list(clf.feature_names_in_) == list(df.columns)


def test_regressor_on_arrays_standardises_and_clips():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((150, 4))
    y = 1000 + 50 * X[:, 0]
    reg = nl.TabularRegressor(n_epochs=20, hidden=(32,), random_state=0).fit(X, y)
    pred = reg.predict(X)
    assert reg.y_mean_ == pytest.approx(y.mean()) and reg.y_std_ == pytest.approx(y.std())
    assert pred.min() >= y.min() and pred.max() <= y.max()
    assert reg.score(X, y) > 0.5


def test_learns_an_easy_problem():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((300, 3))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    clf = nl.TabularClassifier(n_epochs=30, hidden=(32, 32), random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.9


@pytest.mark.parametrize("est", [nl.TabularClassifier, nl.TabularRegressor])
@pytest.mark.parametrize("k, bags, ple_bins", [(1, 1, 0), (2, 2, 8)])
def test_model_file_round_trip_is_bit_identical(tmp_path, est, k, bags, ple_bins):
    df, y = mixed_table()
    target = y if est is nl.TabularClassifier else np.random.default_rng(0).standard_normal(len(df))
    model = est(n_ensemble=k, n_bags=bags, ple_bins=ple_bins, **FAST).fit(df, target)
    path = tmp_path / "tab.safetensors"
    nl.save(model, path)
    loaded = nl.load(path)
    assert type(loaded) is est
    assert np.array_equal(loaded.predict(df), model.predict(df))
    if est is nl.TabularClassifier:
        assert np.array_equal(loaded.predict_proba(df), model.predict_proba(df))
    assert loaded.encoding_ == model.encoding_
    assert nl.io.read_metadata(path)["kind"] == "estimator"


def test_reproducible_with_random_state():
    df, y = mixed_table()
    a = nl.TabularClassifier(**FAST).fit(df, y).predict_proba(df)
    b = nl.TabularClassifier(**FAST).fit(df, y).predict_proba(df)
    assert np.array_equal(a, b)


def test_unseen_categories_at_predict_time_map_to_unknown():
    df, y = mixed_table()
    clf = nl.TabularClassifier(**FAST).fit(df, y)
    new = df.head(4).copy()
    new["few"] = ["zzz", "a", None, "b"]
    new["many"] = ["never-seen", "k1", None, "k2"]
    with warnings.catch_warnings(record=True) as caught:  # said, not silent: one line a column
        warnings.simplefilter("always")
        p = clf.predict_proba(new)
    said = sorted(str(w.message) for w in caught)
    assert said == ["column 'few': 1 value(s) not seen in training (first: 'zzz'), encoded as missing",
                    "column 'many': 1 value(s) not seen in training (first: 'never-seen'), "
                    "encoded as missing"]
    assert np.isfinite(p).all()
    with pytest.warns(UserWarning, match="not seen in training"):
        Z = TableEncoder().fit(df).transform(new)
    assert Z[0, -1] == 0 and Z[2, -1] == 0  # unknown and missing share code 0


def _school_table(n=600, seed=0):
    """A class decided by a school id of 40 values (stored as integers) and a small slope."""
    rng = np.random.default_rng(seed)
    school, x = rng.integers(100, 140, n), rng.standard_normal(n)
    effect = rng.standard_normal(200)
    y = np.where(effect[school] + 0.3 * x + 0.3 * rng.standard_normal(n) > 0, "yes", "no")
    return pd.DataFrame({"school": school, "x": x}), y


def test_categorical_features_encode_integer_codes_as_categories(tmp_path):
    df, y = _school_table()
    kw = dict(preset="fast", random_state=0)
    plain = nl.TabularClassifier(**kw).fit(df[:400], y[:400])
    assert [c["kind"] for c in plain.encoding_["columns"]] == ["numeric", "numeric"]
    scores = {}
    for given in (np.array([True, False]), [True, False], [0], ["school"]):
        clf = nl.TabularClassifier(categorical_features=given, **kw).fit(df[:400], y[:400])
        col = clf.encoding_["columns"][0]
        assert col["kind"] == "embedding" and len(col["categories"]) == 40
        assert sorted(col["categories"], key=int) == [str(v) for v in range(100, 140)]
        scores[str(given)] = clf.score(df[400:], y[400:])
    assert len(set(scores.values())) == 1  # the same columns however they are named
    # a smooth number cannot isolate 40 schools in 32 epochs; their embedding can
    assert min(scores.values()) > plain.score(df[400:], y[400:]) + 0.1
    # floats of whole numbers are the same categories; an array's columns are x0, x1, ...
    arr = nl.TabularClassifier(categorical_features=[0], **kw).fit(df.to_numpy()[:400], y[:400])
    assert arr.encoding_["columns"][0]["categories"] == clf.encoding_["columns"][0]["categories"]
    path = tmp_path / "school.safetensors"
    nl.save(clf, path)
    back = nl.load(path)
    assert back.categorical_features == ["school"]
    assert np.array_equal(back.predict_proba(df[400:]), clf.predict_proba(df[400:]))
    with pytest.warns(UserWarning, match="'school': 1 value"):  # a new school: said, as missing
        back.predict(pd.DataFrame({"school": [101, 999], "x": [0.0, 0.0]}))
    reg = nl.TabularRegressor(categorical_features=["school"], **kw).fit(df, df["x"] * 2)
    assert reg.encoding_["columns"][0]["kind"] == "embedding"
    ort = pytest.importorskip("onnxruntime")
    from neuralab.io import onnx_feed
    sess = ort.InferenceSession(str(nl.export_onnx(back, tmp_path / "school.onnx")))
    outs = sess.run(None, onnx_feed(back, df[400:]))  # the codes go in as category strings
    np.testing.assert_allclose(outs[0], back.predict_proba(df[400:]), atol=1e-5)


def test_free_text_columns_are_those_the_encoder_refuses():
    from neuralab.estimators.tabular import free_text_columns
    n = 400
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"num": rng.standard_normal(n), "id": rng.integers(0, 10**6, n),
                       "few": rng.choice(list("abc"), n), "flag": rng.random(n) > 0.5,
                       "when": pd.date_range("2021-01-01", periods=n, freq="D").astype(str),
                       "name": [f"n{v}" for v in rng.integers(0, 300, n)],
                       "pair": [f"p{v}" for v in rng.integers(0, 150, n)]})
    found = free_text_columns(df)
    assert list(found) == ["name"] and found["name"] == df["name"].nunique()  # ~250 of 400
    assert free_text_columns(df, categorical=["name"]) == {}
    with pytest.raises(ValueError, match="'name' looks like free text"):
        TableEncoder().fit(df)
    TableEncoder().fit(df.drop(columns="name"))  # what it leaves the encoder takes


def test_bad_categorical_features_give_one_clear_line():
    df, y = _school_table(200)
    fit = lambda given: nl.TabularClassifier(preset="fast", categorical_features=given).fit(df, y)  # noqa: E731
    _one_line_error(lambda: fit(["nope"]), "'nope'", "not in X", "'school'")
    _one_line_error(lambda: fit([2]), "position 2", "2")
    _one_line_error(lambda: fit([True]), "boolean mask", "(2)")
    _one_line_error(lambda: fit([1.5]), "names, positions or a boolean mask", "1.5")
    # a column of 200 distinct floats is no category: said, not 200 one-row categories
    _one_line_error(lambda: fit(["x"]), "'x'", "declared categorical", "200 distinct")


def _one_line_error(fn, *words):
    with pytest.raises(ValueError) as info:
        fn()
    msg = str(info.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg
    return msg


def test_bad_tables_give_one_clear_line():
    df, y = mixed_table()
    _one_line_error(lambda: nl.TabularClassifier(**FAST).fit(df.assign(empty=np.nan), y),
                    "'empty'", "missing")
    _one_line_error(lambda: nl.TabularClassifier(**FAST).fit(df, np.array(["same"] * len(df))),
                    "single class", "'same'")
    n = 10_000
    text = pd.DataFrame({"x": np.arange(n, dtype=float), "note": [f"note {i}" for i in range(n)]})
    _one_line_error(lambda: nl.TabularClassifier(**FAST).fit(text, np.arange(n) % 2),
                    "'note'", "10000 distinct")
    _one_line_error(lambda: nl.TabularRegressor(**FAST).fit(df, ["a"] * len(df)), "numbers")
    clf = nl.TabularClassifier(**FAST).fit(df, y)
    _one_line_error(lambda: clf.predict(df.drop(columns=["few"])), "few")
    bad = df.copy()
    bad["num"] = bad["num"].astype(object)
    bad.loc[3, "num"] = "oops"
    _one_line_error(lambda: clf.predict(bad), "'num'", "'oops'")


def test_presets_and_lazy_names():
    assert nl.TabularClassifier is nl.estimators.TabularClassifier
    with pytest.raises(ValueError, match="preset"):
        nl.TabularClassifier(preset="huge").fit(np.zeros((10, 2)), np.arange(10) % 2)
    from neuralab.estimators.tabular import PRESETS
    assert set(PRESETS) == {"fast", "default", "best"}
    assert PRESETS["default"]["n_epochs"] == 256


def test_the_auto_ensemble_size_follows_the_table_size():
    from neuralab.estimators.tabular import PRESETS, auto_members
    assert [auto_members(n) for n in (1, 300, 2_500, 2_501, 5_000, 10**6)] == [4, 4, 4, 1, 1, 1]
    assert PRESETS["default"]["n_ensemble"] == 1  # the ensemble is an option, not the default
    df, y = mixed_table(150)
    est = nl.TabularClassifier(**FAST, n_ensemble="auto").fit(df, y)
    assert (est.n_ensemble_, est.n_bags_, est.networks_[0].k) == (4, 1, 4)  # not bagged as well
    assert est.predict_proba(df).shape == (150, 2)
    assert nl.TabularClassifier(**FAST, preset="fast").fit(df, y).networks_[0].k == 1
    for bad in ("four", 0):
        with pytest.raises(ValueError, match="n_ensemble must be a positive integer or 'auto'"):
            nl.TabularClassifier(**FAST, n_ensemble=bad).fit(df, y)
        with pytest.raises(ValueError, match="n_bags must be a positive integer or 'auto'"):
            nl.TabularClassifier(**FAST, n_bags=bad).fit(df, y)


def test_the_default_bags_tables_up_to_4000_rows():
    from neuralab.estimators.tabular import auto_bags
    assert [auto_bags(n, 1) for n in (1, 300, 2_500, 4_000, 4_001, 10**6)] == [3, 3, 3, 3, 1, 1]
    assert auto_bags(3_000, 4) == 1  # an ensemble is not bagged as well: 12x the time
    # regression: as many bags as fit 8,000 rows of training, (K - 1) * n, from 3 up to 8,
    # and more than 3 only while each fold keeps 20 rows
    sizes = (30, 100, 160, 824, 1_000, 1_143, 1_875, 2_667, 4_000, 4_001)
    assert [auto_bags(n, 1, "regression") for n in sizes] == [3, 5, 8, 8, 8, 7, 5, 3, 3, 1]
    assert auto_bags(800, 4, "regression") == 1
    df, y = mixed_table(150)
    target = df["count"].to_numpy() * 1.0
    est = nl.TabularRegressor(**FAST).fit(df, target)
    assert (est.n_ensemble_, est.n_bags_, len(est.networks_)) == (1, 7, 7)  # 150 // 20 folds
    assert est.networks_[0].k == 1
    assert nl.TabularClassifier(**FAST).fit(df, df["count"] > 2).n_bags_ == 3
    one = nl.TabularRegressor(**FAST, n_bags=1).fit(df, target)
    assert (one.n_bags_, len(one.networks_)) == (1, 1)
    # the bags' average is not any one bag's prediction
    bagged = est.predict(df)
    assert bagged.shape == (150,) and not np.allclose(bagged, one.predict(df))
    with pytest.raises(ValueError, match="n_bags=8 folds need at least 8 rows; the table has 6"):
        nl.TabularRegressor(**FAST, n_bags=8).fit(df.head(6), target[:6])


def test_the_best_epoch_can_be_picked_on_the_log_loss():
    df, y = mixed_table(200)
    runs = {m: nl.TabularClassifier(**{**FAST, "n_epochs": 8}, n_bags=1, val_metric=m).fit(df, y)
            for m in (None, "error", "log_loss")}
    assert "val_error" in runs["error"].history_[0] and "val_log_loss" in runs["log_loss"].history_[0]
    for name, est in runs.items():
        key = "val_log_loss" if name == "log_loss" else "val_error"
        curve = est.history_[0][key]
        # the kept epoch is the last of the lowest values (ties: the later epoch, as RealMLP)
        lowest = np.flatnonzero(np.isclose(curve, min(curve)))[-1] + 1
        assert est.best_epochs_[0] == lowest
    assert runs[None].best_epochs_ == runs["error"].best_epochs_  # None is RealMLP's error
    with pytest.raises(ValueError, match="val_metric must be 'error' or 'log_loss'"):
        nl.TabularClassifier(**FAST, val_metric="auc").fit(df, y)
    with pytest.raises(ValueError, match="val_metric must be 'mse' for a regressor"):
        nl.TabularRegressor(**FAST, val_metric="log_loss").fit(df, df["count"] * 1.0)


def test_info_command_shows_the_estimator(tmp_path):
    from click.testing import CliRunner

    from neuralab.cli import main
    df, y = mixed_table()
    path = tmp_path / "m.safetensors"
    nl.save(nl.TabularClassifier(**FAST).fit(df, y), path)
    out = CliRunner().invoke(main, ["info", str(path)])
    assert out.exit_code == 0 and "TabularClassifier" in out.output
    assert "networks: 1 network in each of 3 bags" in out.output  # n_bags="auto" on 120 rows
    nl.save(nl.TabularClassifier(**FAST, n_ensemble="auto").fit(df, y), path)
    out = CliRunner().invoke(main, ["info", str(path)])
    assert "networks: a 4-member ensemble\n" in out.output
    nl.save(nl.TabularClassifier(**FAST, n_ensemble=1, n_bags=2).fit(df, y), path)
    out = CliRunner().invoke(main, ["info", str(path)])
    assert "networks: 1 network in each of 2 bags" in out.output and "(each bag)" in out.output


# sklearn's own checks, on small instances (they test the API, not accuracy)
CHECKED = [nl.TabularClassifier(n_epochs=2, hidden=(8,), random_state=0),
           nl.TabularRegressor(n_epochs=2, hidden=(8,), random_state=0)]
_OBJECT = ("an object array is a table of categories by design: any value, a dict too, is "
           "a category (text), so no TypeError")
_SUBSET = ("float32 predictions of a batch of 10 rows and of 20 differ in the last bits (2e-7 "
           "relative: BLAS blocks matrices by row count); sklearn's tolerance is 1e-7")
_ORDER = ("float32 predictions of a row moved to another place in the batch differ in the last "
          "bits on some OpenBLAS kernels (seen with Haswell's on an AMD EPYC: 2e-7 relative, a "
          "row's sums are blocked by its position); sklearn's tolerance is 1e-7")
EXPECTED_FAILURES = {
    "TabularClassifier": {
        "check_dtype_object": _OBJECT,
        "check_methods_subset_invariance": _SUBSET,
        "check_methods_sample_order_invariance": _ORDER,
        "check_classifiers_train": "a 2-epoch net is not meant to reach sklearn's accuracy bar "
                                   "(tested with more epochs in test_learns_an_easy_problem)",
    },
    "TabularRegressor": {
        "check_dtype_object": _OBJECT,
        "check_methods_subset_invariance": _SUBSET,
        "check_methods_sample_order_invariance": _ORDER,
        "check_regressors_train": "a 2-epoch net does not reach sklearn's R^2 bar "
                                  "(tested with more epochs in test_regressor_on_arrays...)",
    },
}


@parametrize_with_checks(CHECKED, expected_failed_checks=lambda e: EXPECTED_FAILURES.get(type(e).__name__, {}))
@pytest.mark.slow
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("est", [nl.TabularClassifier, nl.TabularRegressor])
@pytest.mark.parametrize("k, bags, ple_bins", [(1, 1, 0), (3, 2, 0), (1, 1, 8)])
def test_onnx_export_matches_onnxruntime(tmp_path, est, k, bags, ple_bins):
    ort = pytest.importorskip("onnxruntime")
    from neuralab.io import onnx_feed
    df, y = mixed_table()
    target = y if est is nl.TabularClassifier else np.random.default_rng(0).standard_normal(len(df))
    model = est(n_ensemble=k, n_bags=bags, ple_bins=ple_bins, **FAST).fit(df, target)
    if ple_bins:  # new rows beyond the training range use the open first and last bins
        df = df.assign(num=df["num"] * 4.0, count=df["count"] + 3)
    path = nl.export_onnx(model, tmp_path / "tab.onnx")
    # one input per column, as the table has them: strings, missing values, dates (as parts)
    sess = ort.InferenceSession(str(path))
    assert [i.name for i in sess.get_inputs()][:3] == ["num", "few", "many"]
    outs = sess.run(None, onnx_feed(model, df))
    if est is nl.TabularClassifier:
        np.testing.assert_allclose(outs[0], model.predict_proba(df), atol=1e-5)
        assert list(outs[1]) == list(model.predict(df))
    else:
        np.testing.assert_allclose(outs[0], model.predict(df), atol=1e-5)


# ---------------------------------------------------------------- fit(validation_data, callbacks)
def test_validation_data_picks_the_best_epoch_on_those_rows():
    df, y = mixed_table(200)
    val_df, val_y = mixed_table(80, seed=5)
    est = nl.TabularClassifier(**{**FAST, "n_epochs": 6}, n_bags=1)
    est.fit(df, y, validation_data=(val_df, val_y))
    errors = est.history_[0]["val_error"]
    assert len(errors) == 6
    # the kept epoch is the last one with the lowest validation error (ties: the later one)
    best = max(i for i, e in enumerate(errors) if e == min(errors)) + 1
    assert est.best_epochs_ == [best]
    # ... and its weights are kept: the validation error of the returned model is that epoch's
    assert np.mean(est.predict(val_df) != val_y) == pytest.approx(min(errors), abs=1e-12)
    with pytest.raises(ValueError, match="label 'maybe' is not among the training labels"):
        est.fit(df, y, validation_data=(val_df, np.where(val_y == "yes", "maybe", val_y)))
    # bagged (the default on up to 4,000 rows), each bag validates on its own fold: said once
    with pytest.warns(UserWarning, match=r"validation_data is not used: each of the 3 bags"):
        bagged = nl.TabularClassifier(**FAST).fit(df, y, validation_data=(val_df, val_y))
    assert len(bagged.networks_) == 3


def test_a_callback_that_stops_training_ends_the_bagging():
    from neuralab.callbacks import Callback

    class StopAfterTwoEpochs(Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                self.run.stop_training = True

    df, y = mixed_table(150)
    est = nl.TabularClassifier(**{**FAST, "n_epochs": 5}, n_bags=3)
    est.fit(df, y, callbacks=[StopAfterTwoEpochs()])
    assert len(est.networks_) == 1 and len(est.history_[0]["loss"]) == 2
    assert est.predict_proba(df).shape == (150, 2)  # the network trained so far predicts


def test_embedded_codes_as_one_hot_blocks_give_the_same_network_and_complete_ig():
    from neuralab.estimators.tabular import _averaged_network, one_hot_codes
    from neuralab.tensor import Tensor
    df, y = _school_table()
    clf = nl.TabularClassifier(preset="fast", categorical_features=["school"], n_bags=2,
                               random_state=0).fit(df, y)
    Z = clf._encoder().transform(df[:40])
    X1, sizes = one_hot_codes(clf, Z)
    assert sizes == [41] and X1.shape == (40, Z.shape[1] - 1 + 41)
    assert np.array_equal(X1[:, -41:].argmax(axis=1), Z[:, -1].astype(int))
    # one-hot rows times the embedding table are the table's rows: the same bits
    same = _averaged_network(clf)(Tensor(Z)).data
    assert np.array_equal(_averaged_network(clf, one_hot_codes=True)(Tensor(X1)).data, same)
    # integrated gradients add up to f(x) - f(baseline) on the one-hot blocks; on the codes
    # the school gets nothing and the sum misses by a lot
    old = nl.explain.integrated_gradients(clf, Z[:8], max_steps=256)
    new = nl.explain.integrated_gradients(_averaged_network(clf, one_hot_codes=True), X1[:8],
                                          max_steps=256)
    assert np.all(old.values[:, -1] == 0) and np.abs(old.residual).max() > 0.05
    assert np.abs(new.residual).max() < 0.01
    assert np.abs(new.values[:, -41:].sum(axis=1)).mean() > 0.02


@pytest.mark.parametrize("cls", [nl.TabularClassifier, nl.TabularRegressor])
def test_model_is_the_averaged_network_explanations_differentiate(cls):
    from neuralab.explain import _Explained

    df, y = mixed_table(150)
    target = y if cls is nl.TabularClassifier else df["count"].to_numpy() * 1.5 + 2.0
    est = cls(**FAST, n_ensemble=2, n_bags=2).fit(df, target)
    z = est._encoder().transform(est._table(df, reset=False))
    out = _Explained(est).outputs(z)
    expected = est.predict_proba(df) if cls is nl.TabularClassifier else est.predict(df)[:, None]
    if cls is nl.TabularRegressor:  # predict clips to the training range; model_ does not
        inside = (expected[:, 0] > est.y_min_) & (expected[:, 0] < est.y_max_)
        out, expected = out[inside], expected[inside]
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
