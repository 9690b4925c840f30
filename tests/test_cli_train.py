"""`neuralab train --dataset NAME` and `neuralab datasets`: output, saved model, exit codes."""
from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from neuralab import cli


@pytest.fixture
def runner():
    return CliRunner()


def test_help_shows_examples_for_the_group_and_every_command(runner):
    result = runner.invoke(cli.main, ["--help"])
    assert result.exit_code == 0
    assert "neuralab train --dataset digits" in result.output
    for name in cli.main.commands:
        sub = runner.invoke(cli.main, [name, "--help"])
        assert sub.exit_code == 0, name
        assert "Example" in sub.output, name


def test_importing_the_cli_stays_light():
    code = ("import sys, neuralab.cli; print(sorted(m for m in ('sklearn', 'torch', 'pandas', "
            "'matplotlib', 'scipy', 'onnx', 'tqdm', 'shap') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_datasets_lists_the_built_in_names(runner):
    result = runner.invoke(cli.main, ["datasets"])
    assert result.exit_code == 0, result.output
    names = [line.split()[0] for line in result.output.splitlines() if line.strip()]
    assert "digits" in names and "xor" in names


def test_train_digits_prints_a_table_and_saves_a_model_that_scores_the_same(runner, tmp_path):
    out = tmp_path / "digits.safetensors"
    result = runner.invoke(cli.main, ["train", "--dataset", "digits", "--hidden", "64",
                                      "--epochs", "15", "--patience", "3", "-q", "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = result.output
    assert re.search(r"trained \d+ epochs? in [\d.]+ s", text)
    rows = {line.split()[0]: [float(v) for v in line.split()[1:]]
            for line in text.splitlines() if line.split()[:1] in (["train"], ["validation"], ["test"])}
    assert set(rows) == {"train", "validation", "test"}
    assert "accuracy" in text and rows["test"][1] > 0.9
    assert out.exists() and f"saved the model to {out}" in text

    # The file holds the network and the scaler: it reproduces the printed test accuracy.
    import neuralab as nl
    from neuralab.datasets import column_names as dataset_columns
    from neuralab.io import read_metadata

    meta = read_metadata(out)["user"]
    model = nl.load(out)
    data = nl.datasets.load("digits")
    frame = pd.DataFrame(np.asarray(data.X_test, np.float64), columns=dataset_columns(data))
    labels = model.predict(frame)
    acc = float(np.mean(labels.astype(int) == np.asarray(data.y_test)))
    assert acc == pytest.approx(rows["test"][1], abs=1e-4)
    assert meta["scores"]["test"]["accuracy"] == pytest.approx(acc, abs=1e-9)
    # ... and the network on the stored preprocessing (pixels scaled together) gives the same classes.
    spec = model.preprocessor.spec["columns"]
    assert len({(c["mean"], c["std"]) for c in spec}) == 1  # one scale for every pixel
    X = (frame.to_numpy() - spec[0]["mean"]) / spec[0]["std"]
    raw = nl.predict(model.estimator.model_, X.astype(np.float32)).argmax(1)
    np.testing.assert_array_equal(raw, labels.astype(int))


def test_train_a_regression_data_set_reports_r2(runner):
    import neuralab as nl

    if "diabetes" not in nl.datasets.list_datasets():
        pytest.fail("the diabetes data set is missing from neuralab.datasets")
    result = runner.invoke(cli.main, ["train", "-d", "diabetes", "--hidden", "16", "--epochs", "40",
                                      "--lr", "0.003", "-q"])
    assert result.exit_code == 0, result.output
    header = next(line for line in result.output.splitlines() if "r2" in line)
    assert header.split() == ["mse", "mae", "r2"]
    test_row = next(line for line in result.output.splitlines() if line.startswith("test"))
    assert float(test_row.split()[3]) > 0.2  # a real fit, in the targets' own units


@pytest.mark.parametrize("args, message", [
    (["train", "--dataset", "nope"], "unknown dataset 'nope'"),
    (["train", "--dataset", "digits", "--hidden", "12,x"], "--hidden must be positive layer widths"),
    (["train", "--dataset", "digits", "--lr", "-1"], "--lr"),
    (["train"], "--dataset"),
])
def test_bad_usage_exits_2_with_one_clear_line(runner, args, message):
    result = runner.invoke(cli.main, args)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and message in result.output


def test_unexpected_errors_exit_1_with_one_line(runner, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("something broke")

    from neuralab.cli import train as cli_train

    monkeypatch.setattr(cli_train, "train_table", boom)
    result = runner.invoke(cli.main, ["train", "--dataset", "digits"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: unexpected RuntimeError: something broke (set NEURALAB_DEBUG=1 to see the traceback)"]


@pytest.mark.parametrize("name", ["iris", "diabetes"])
def test_a_train_dataset_model_predicts_evaluates_explains_and_exports(runner, tmp_path, name):
    """The README's main command keeps a model that every other command takes."""
    import json

    import onnxruntime as ort
    from sklearn.metrics import r2_score

    import neuralab as nl
    from neuralab.data import read_table
    from neuralab.io import read_metadata

    out = tmp_path / f"{name}.safetensors"
    res = runner.invoke(cli.main, ["train", "--dataset", name, "--hidden", "16", "--epochs", "30",
                                   "--lr", "0.01", "-q", "--out", str(out)])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert [line.split()[0] for line in lines[-4:-1]] == ["train", "validation", "test"]
    assert lines[-1] == f"saved the model to {out}"
    classification = name == "iris"

    # predict: the stored scaler, the network, then class names / the target's units
    preds_path = tmp_path / "preds.csv"
    res = runner.invoke(cli.main, ["predict", str(out), name, "--out", str(preds_path)]
                        + (["--proba"] if classification else []))
    assert res.exit_code == 0, res.output
    preds = pd.read_csv(preds_path)
    assert f"using its test part" in res.stderr  # a built-in name means its unseen rows
    table = read_table(name, part="test")
    model = nl.load(out)
    features = table.drop(columns="target")
    spec = model.preprocessor.spec
    mean = np.array([c["mean"] for c in spec["columns"]])
    std = np.array([c["std"] for c in spec["columns"]])
    X = (features.to_numpy(np.float64) - mean) / std
    z = np.asarray(nl.predict(model.estimator.model_, X.astype(np.float32)), np.float64)
    if classification:
        names = ["setosa", "versicolor", "virginica"]
        assert preds["prediction"].tolist() == [names[i] for i in z.argmax(1)]
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        np.testing.assert_allclose(preds[[f"proba_{c}" for c in names]].to_numpy(), p, atol=1e-6)
    else:
        np.testing.assert_allclose(preds["prediction"],
                                   z[:, 0] * spec["target_std"] + spec["target_mean"], rtol=1e-5)

    # evaluate: its numbers are those of the predictions against the table's target
    res = runner.invoke(cli.main, ["evaluate", str(out), name, "--json"])
    assert res.exit_code == 0, res.output
    scores = json.loads(res.stdout)
    assert scores["rows"] == len(table)
    assert scores["rows"] == len(nl.datasets.load(name).X_test)  # the test part only
    if classification:
        assert scores["accuracy"] == pytest.approx(np.mean(preds["prediction"] == table["target"]))
        assert scores["accuracy"] > 0.8
    else:
        assert scores["r2"] == pytest.approx(r2_score(table["target"], preds["prediction"]))
        assert scores["r2"] > 0.2

    # explain and info name the data set's own columns
    res = runner.invoke(cli.main, ["explain", str(out), name, "--rows", "0,1"])
    assert res.exit_code == 0, res.output
    assert "row 1:" in res.output
    named = [line.strip().rsplit(None, 1)[0] for line in res.output.splitlines()
             if line.startswith("  ")]
    assert len(named) >= 4 and set(named) <= set(features.columns)
    res = runner.invoke(cli.main, ["info", str(out)])
    assert res.exit_code == 0, res.output
    assert "kind: tabular" in res.output and f"data={name}" in res.output
    assert ("classes: setosa, versicolor, virginica" in res.output) == classification
    assert res.output.count(": numeric, median-imputed") == features.shape[1]

    # export: the ONNX graph (scaling folded in) gives the same predictions
    onnx_path = tmp_path / "m.onnx"
    res = runner.invoke(cli.main, ["export", str(out), "--onnx", str(onnx_path)])
    assert res.exit_code == 0, res.output
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = dict(zip([o.name for o in sess.get_outputs()],
                   sess.run(None, nl.io.onnx_feed(nl.load(out), features))))
    if classification:
        assert got["label"].tolist() == preds["prediction"].tolist()
        np.testing.assert_allclose(got["probabilities"], p, atol=1e-5)
    else:
        np.testing.assert_allclose(got["prediction"], preds["prediction"], rtol=1e-4)


def test_a_train_dataset_model_predicts_any_built_in_name(runner, tmp_path):
    """Synthetic sets (moons, ...) are tables too: columns x0, x1 and the target."""
    out = tmp_path / "moons.safetensors"
    res = runner.invoke(cli.main, ["train", "--dataset", "moons", "--hidden", "16", "--epochs", "30",
                                   "--lr", "0.01", "-q", "--out", str(out)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli.main, ["evaluate", str(out), "moons", "--json"])
    assert res.exit_code == 0, res.output
    import json

    from neuralab.datasets import load
    data = load("moons")
    assert json.loads(res.stdout)["rows"] == len(data.X_test)  # never the training rows
    assert "test part (50 rows)" in res.stderr
    assert json.loads(res.stdout)["accuracy"] > 0.75


def test_info_summarises_the_columns_of_a_wide_model(runner, tmp_path):
    out = tmp_path / "digits.safetensors"
    res = runner.invoke(cli.main, ["train", "--dataset", "digits", "--hidden", "8", "--epochs", "2",
                                   "-q", "--out", str(out)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli.main, ["info", str(out)])
    assert res.exit_code == 0, res.output
    assert res.output.count(": numeric, median-imputed") == 20
    assert "  ... and 44 more columns" in res.output and "features: 64 from 64 columns" in res.output
