"""`neuralab tune DATA --target COL`: search on a user's file, preprocessed as `train` does."""
from __future__ import annotations

import numpy as np
import pandas as pd
from click.testing import CliRunner

import neuralab as nl
from neuralab.cli import main
from neuralab.preprocessing import TabularModel


def test_tune_on_a_csv_saves_a_model_that_predicts_raw_rows(tmp_path):
    rng = np.random.default_rng(0)
    n = 120
    df = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n),
                       "colour": rng.choice(["red", "blue"], size=n)})
    df["label"] = np.where(df.x1 + (df.colour == "red") > 0.5, "yes", "no")
    data = tmp_path / "t.csv"
    df.to_csv(data, index=False)
    out = tmp_path / "best.safetensors"
    res = CliRunner().invoke(main, ["tune", str(data), "--target", "label", "--param",
                                    "hidden_layer_sizes=8,16", "--max-iter", "60", "--cv", "2",
                                    "--quiet", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "2 candidates" in res.output
    model = nl.load(out)
    assert isinstance(model, TabularModel)
    pred = model.predict(df.drop(columns=["label"]))
    assert set(pred) <= {"yes", "no"}
    assert (pred == df.label).mean() > 0.8


def test_tune_on_a_file_names_a_missing_target(tmp_path):
    data = tmp_path / "t.csv"
    pd.DataFrame({"a": [1, 2, 3], "b": [0, 1, 0]}).to_csv(data, index=False)
    res = CliRunner().invoke(main, ["tune", str(data), "--target", "price", "--param", "alpha=1e-4"])
    assert res.exit_code == 2
    assert "target column 'price' is not in the data; columns are ['a', 'b']" in res.output
