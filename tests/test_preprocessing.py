"""Tabular preprocessing: the recipe is plain JSON data and does what it says per column."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
from neuralab.preprocessing import (  # noqa: E402
    PreprocessingError, TabularPreprocessor, infer_task)


@pytest.fixture
def frame():
    return pd.DataFrame({
        "id": ["u1", "u2", "u3", "u4", "u5"],
        "size": [10.0, np.nan, 30.0, 50.0, 20.0],
        "color": ["red", "blue", None, "red", "blue"],
        "ok": [True, False, True, None, False],
        "day": ["2024-01-31", "2024-02-29", "2023-12-25", None, "2024-07-04"],
        "y": ["a", "b", "a", "b", "a"],
    })


def test_each_column_kind(frame):
    prep = TabularPreprocessor().fit(frame, target="y")
    assert prep.feature_names == [
        "size", "color=blue", "color=red", "color=<missing>", "ok=False", "ok=True", "ok=<missing>",
        "day.year", "day.month", "day.day", "day.weekday"]
    assert [d["name"] for d in prep.spec["dropped"]] == ["id"]
    X = prep.transform(frame, scale=False)
    assert X.dtype == np.float32
    assert X[1, 0] == 25.0  # median of 10, 30, 50, 20
    np.testing.assert_array_equal(X[:, 1:4], [[0, 1, 0], [1, 0, 0], [0, 0, 1], [0, 1, 0], [1, 0, 0]])
    np.testing.assert_array_equal(X[:, 4:7], [[0, 1, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]])
    np.testing.assert_array_equal(X[0, 7:], [2024, 1, 31, 2])  # 31 Jan 2024 was a Wednesday
    assert X[3, 7] == 2024  # a missing date gets the median of each part
    scaled = prep.transform(frame)
    filled = np.array([10, 25, 30, 50, 20.0])
    np.testing.assert_allclose(scaled[:, 0], (filled - filled.mean()) / filled.std(), rtol=1e-6)
    np.testing.assert_array_equal(prep.transform_target(frame), [0, 1, 0, 1, 0])
    assert any("ID-like" in n for n in prep.notices) and any("dates" in n for n in prep.notices)


def test_spec_is_json_and_round_trips(frame):
    prep = TabularPreprocessor(drop=["ok"]).fit(frame, target="y")
    data = json.loads(json.dumps(prep.to_dict()))
    again = TabularPreprocessor.from_dict(data)
    np.testing.assert_array_equal(again.transform(frame), prep.transform(frame))
    assert again.decode_labels([1, 0]).tolist() == ["b", "a"]


def test_unknown_category_is_ignored_with_a_warning(frame):
    prep = TabularPreprocessor().fit(frame, target="y")
    new = frame.copy()
    new.loc[0, "color"] = "green"
    with pytest.warns(UserWarning, match=r"column 'color'.*'green'"):
        X = prep.transform(new, scale=False)
    np.testing.assert_array_equal(X[0, 1:4], [0, 0, 0])


def test_missing_column_and_bad_numbers_are_named(frame):
    prep = TabularPreprocessor().fit(frame, target="y")
    with pytest.raises(PreprocessingError, match="'size'"):
        prep.transform(frame.drop(columns="size"))
    bad = frame.copy()
    bad["size"] = bad["size"].astype(object)
    bad.loc[2, "size"] = "thirty"
    with pytest.raises(PreprocessingError, match=r"'size' should hold numbers but row 2 has 'thirty'"):
        prep.transform(bad)


def test_feature_selection_and_errors(frame):
    prep = TabularPreprocessor(features=["size", "color"]).fit(frame, target="y")
    assert prep.input_columns == ["size", "color"]
    with pytest.raises(PreprocessingError, match="'nope'"):
        TabularPreprocessor(drop=["nope"]).fit(frame, target="y")
    with pytest.raises(PreprocessingError, match="single class"):
        TabularPreprocessor().fit(frame.assign(y="a"), target="y")


def test_missing_target_rows_are_left_out(frame):
    frame.loc[1, "y"] = None
    prep = TabularPreprocessor().fit(frame, target="y")
    assert any("1 row(s) with a missing target" in n for n in prep.notices)
    assert prep.spec["classes"] == ["a", "b"]


@pytest.mark.parametrize("values, task", [
    (["x", "y", "x"], "classification"),
    ([True, False, True], "classification"),
    ([0, 1, 2, 1, 0, 2, 1, 0], "classification"),
    ([0.5, 1.25, 3.0, 2.2], "regression"),
    (list(range(100)), "regression"),
])
def test_infer_task(values, task):
    assert infer_task(pd.Series(values)) == task


def test_regression_target_is_standardised():
    frame = pd.DataFrame({"x": np.arange(10.0), "y": np.linspace(100, 200, 10) + 0.5})
    prep = TabularPreprocessor().fit(frame, target="y")
    assert prep.spec["task"] == "regression"
    z = prep.scale_target(prep.transform_target(frame))
    assert abs(z.mean()) < 1e-6 and abs(z.std() - 1) < 1e-6
    np.testing.assert_allclose(prep.unscale_target(z), frame["y"], rtol=1e-6)


def test_rare_categories_share_other():
    frame = pd.DataFrame({"c": list("aaabbc") + ["d"], "y": [0, 1, 0, 1, 0, 1, 0]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prep = TabularPreprocessor(max_categories=2).fit(frame, target="y")
        X = prep.transform(frame, scale=False)
    assert prep.feature_names == ["c=a", "c=b", "c=<other>"]
    np.testing.assert_array_equal(X[:, 2], [0, 0, 0, 0, 0, 1, 1])
