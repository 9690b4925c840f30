"""`neuralab tune --preset tabular`: random search of a Tabular estimator on the raw table."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.model_selection import ParameterSampler

import neuralab as nl
from neuralab import tuning
from neuralab.cli import main
from neuralab.estimators import TabularClassifier, TabularRegressor

DOCS = Path(__file__).resolve().parents[1] / "docs" / "tabular.md"
QUICK = ["--preset", "tabular", "--n-iter", "2", "--cv", "2", "--max-iter", "3", "--quiet"]


def _table(n: int = 120, seed: int = 0) -> pd.DataFrame:
    """Mixed columns (a number with gaps, a category) and a label that follows both."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x": rng.normal(size=n), "colour": rng.choice(["red", "blue", "green"], size=n)})
    df["label"] = np.where(df.x + (df.colour == "red") > 0.5, "yes", "no")
    df["price"] = 3.0 * df.x + 2.0 * (df.colour == "red") + rng.normal(scale=0.1, size=n)
    df.loc[::10, "x"] = np.nan
    return df


def _params(output: str) -> list[dict[str, str]]:
    """The params column of the ranked table, one dict per candidate."""
    rows = [line for line in output.splitlines() if re.match(r"^\s+\d+\s+-?\d", line)]
    return [dict(re.findall(r"(\w+)=(\([^)]*\)|[^,\s]+)", row.split("  ")[-1])) for row in rows]


def test_tabular_preset_on_a_csv_saves_a_classifier_that_predicts_raw_rows(tmp_path):
    df = _table()
    data, out = tmp_path / "t.csv", tmp_path / "best.safetensors"
    df.drop(columns="price").to_csv(data, index=False)
    res = CliRunner().invoke(main, ["tune", str(data), "--target", "label", *QUICK, "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "random search of a TabularClassifier" in res.output
    assert "(120 rows, 2 columns, classification)" in res.output
    assert "2 candidates" in res.output
    assert re.search(r"rank\s+score\s+± std\s+fit s\s+params", res.output)
    cands = _params(res.output)
    assert len(cands) == 2
    assert set(cands[0]) == {"lr", "hidden", "dropout", "weight_decay", "label_smoothing", "periodic",
                             "ple_bins"}
    model = nl.load(out)
    assert isinstance(model, TabularClassifier)
    assert model.n_epochs == 3  # --max-iter
    # one network per candidate (the search's folds validate it), bins as the search chose
    assert len(model.networks_) == 1 and model.ple_bins_ in (0, 16)
    assert list(model.feature_names_in_) == ["x", "colour"]
    # raw rows, with the target column still in the file: columns are found by name
    pred = CliRunner().invoke(main, ["predict", str(out), str(data)])
    assert pred.exit_code == 0, pred.output
    lines = pred.output.strip().splitlines()
    assert lines[0] == "prediction" and len(lines) == 121
    assert set(lines[1:]) <= {"yes", "no"}


def test_tabular_preset_regression_and_param_overrides(tmp_path):
    df = _table(seed=1)
    data, out = tmp_path / "r.csv", tmp_path / "best.safetensors"
    df.drop(columns="label").to_csv(data, index=False)
    res = CliRunner().invoke(main, ["tune", str(data), "--target", "price", *QUICK,
                                    "--param", "dropout=0", "--param", "batch_size=32,64",
                                    "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "random search of a TabularRegressor" in res.output and "regression" in res.output
    cands = _params(res.output)
    assert len(cands) == 2
    # the regression space has no label smoothing; --param fixed dropout and added batch_size
    assert set(cands[0]) == {"lr", "hidden", "dropout", "weight_decay", "periodic", "ple_bins",
                             "batch_size"}
    assert all(c["dropout"] == "0" and c["batch_size"] in ("32", "64") for c in cands)
    assert all(0.05 <= float(c["lr"]) <= 0.5 for c in cands)
    model = nl.load(out)
    assert isinstance(model, TabularRegressor)
    assert model.dropout == 0
    pred = model.predict(df.head(5))
    assert pred.shape == (5,) and np.isfinite(pred).all()


def test_tabular_preset_on_a_builtin_data_set(tmp_path):
    out = tmp_path / "iris.safetensors"
    res = CliRunner().invoke(main, ["tune", "-d", "iris", *QUICK, "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "(150 rows, 4 columns, classification)" in res.output
    model = nl.load(out)
    assert isinstance(model, TabularClassifier)
    assert set(model.classes_) == {"setosa", "versicolor", "virginica"}


def test_rows_without_a_target_are_left_out(tmp_path):
    df = _table().drop(columns="price")
    df.loc[:19, "label"] = None
    data = tmp_path / "t.csv"
    df.to_csv(data, index=False)
    X, y, task = tuning.load_table(str(data), "label")
    assert (len(X), len(y), task) == (100, 100, "classification")
    assert list(X.columns) == ["x", "colour"]
    assert X["x"].isna().sum() == 10  # rows 20, 30, ..., 110: the raw column, gaps kept for the estimator


def test_id_and_free_text_columns_are_left_out_as_train_leaves_them(tmp_path):
    df = _table(240).drop(columns="price")
    rng = np.random.default_rng(3)
    df.insert(0, "customer", [f"c{i:04d}" for i in range(len(df))])  # an ID
    df["note"] = [f"n{v}" for v in rng.integers(0, 400, len(df))]  # ~180 of 240: not a category
    data, out = tmp_path / "ids.csv", tmp_path / "best.safetensors"
    df.to_csv(data, index=False)
    res = CliRunner().invoke(main, ["tune", str(data), "--target", "label", *QUICK, "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "column 'customer' left out: ID-like" in res.output
    assert "column 'note' left out" in res.output and "too many for a category" in res.output
    assert "(240 rows, 2 columns, classification)" in res.output
    assert list(nl.load(out).feature_names_in_) == ["x", "colour"]


def test_a_search_whose_every_fit_fails_says_why_in_one_line():
    df = _table(240).drop(columns="price")
    df["note"] = [f"n{i}" for i in range(len(df))]  # the estimator refuses it in every fit
    est = TabularClassifier(n_epochs=2, n_bags=1, ple_bins=0)
    with pytest.raises(ValueError) as info:
        tuning.run_search(est, tuning.parse_params(["lr=0.01,0.02"]), df.drop(columns="label"), df["label"], cv=2)
    msg = str(info.value)
    assert msg.startswith("every fit failed: column 'note' looks like free text or an ID")
    assert "\n" not in msg and "Traceback" not in msg


def test_the_space_is_the_documented_one():
    # each range as docs/tabular.md states it, sampled 300 times
    docs = DOCS.read_text(encoding="utf-8")
    for task, space in tuning.TABULAR_SPACE.items():
        for name, spec in space.items():
            assert f"`{name}={spec}`" in docs, (task, name, spec)
    hidden = {(128,) * 3, (256,) * 3, (512,) * 3}
    for task, lr in (("classification", (0.01, 0.15)), ("regression", (0.05, 0.5))):
        dists = tuning.to_sklearn(tuning.tabular_space(task), "random")
        draws = list(ParameterSampler(dists, n_iter=300, random_state=0))
        lrs = np.array([d["lr"] for d in draws])
        assert lrs.min() >= lr[0] and lrs.max() <= lr[1]
        # log-uniform: the geometric middle splits the draws about in half
        assert 0.4 < np.mean(lrs < np.sqrt(lr[0] * lr[1])) < 0.6
        assert {d["hidden"] for d in draws} == hidden
        assert all(0 <= d["dropout"] <= 0.3 and 0 <= d["weight_decay"] <= 0.05 for d in draws)
        assert {d["periodic"] for d in draws} == {True, False}
        assert {d["ple_bins"] for d in draws} == {0, 16}
        smoothing = [d.get("label_smoothing") for d in draws]
        if task == "classification":
            assert all(0 <= s <= 0.2 for s in smoothing)
        else:
            assert smoothing == [None] * 300


@pytest.mark.parametrize("extra, message", [
    (["--search", "grid"], "--preset tabular searches at random only"),
    (["--param", "hidden_layer_sizes=64"], "unknown parameter(s) ['hidden_layer_sizes'] for TabularClassifier"),
    (["--param", "lr=0.1:0.01:log"], "LOW must be below HIGH"),
])
def test_bad_combinations_are_one_line(tmp_path, extra, message):
    data = tmp_path / "t.csv"
    _table().drop(columns="price").to_csv(data, index=False)
    res = CliRunner().invoke(main, ["tune", str(data), "--target", "label", *QUICK, *extra,
                                    "-o", str(tmp_path / "m.safetensors")])
    assert res.exit_code == 2, res.output
    assert res.output.strip().count("\n") == 0 and message in res.output, res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "m.safetensors").exists()


def test_a_missing_target_or_no_data_is_one_line(tmp_path):
    data = tmp_path / "t.csv"
    pd.DataFrame({"a": [1, 2, 3], "b": [0, 1, 0]}).to_csv(data, index=False)
    res = CliRunner().invoke(main, ["tune", str(data), "--target", "price", *QUICK])
    assert res.exit_code == 2
    assert "target column 'price' is not in the data; columns are ['a', 'b']" in res.output
    res = CliRunner().invoke(main, ["tune", *QUICK])
    assert res.exit_code == 2 and "give DATA --target COL, or --dataset NAME" in res.output


def test_tabular_preset_on_a_local_dask_cluster(tmp_path):
    pytest.importorskip("distributed")
    data, out = tmp_path / "t.csv", tmp_path / "best.safetensors"
    _table().drop(columns="price").to_csv(data, index=False)
    res = CliRunner().invoke(main, ["tune", str(data), "--target", "label", *QUICK,
                                    "--scheduler", "local", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "Dask scheduler local" in res.output and "2 candidates" in res.output
    assert isinstance(nl.load(out), TabularClassifier)
