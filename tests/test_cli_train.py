"""`neuralab train --dataset NAME` and `neuralab datasets`: output, saved model, exit codes."""
from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
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
    from neuralab.io import read_metadata

    meta = read_metadata(out)["user"]
    model = nl.load(out)
    data = cli.load_dataset("digits")
    X = (np.asarray(data.X_test, np.float64).reshape(len(data.X_test), -1)
         - meta["input_scaler"]["mean"]) / meta["input_scaler"]["scale"]
    acc = float(np.mean(nl.predict(model, X.astype(np.float32)).argmax(1) == np.asarray(data.y_test)))
    assert acc == pytest.approx(rows["test"][1], abs=1e-4)
    assert meta["scores"]["test"]["accuracy"] == pytest.approx(acc, abs=1e-9)


def test_train_a_regression_data_set_reports_r2(runner):
    if "diabetes" not in cli.dataset_names():
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
    (["train", "--dataset", "digits", "--hidden", "12,x"], "--hidden must be layer widths"),
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

    monkeypatch.setattr(cli, "train_on", boom)
    result = runner.invoke(cli.main, ["train", "--dataset", "digits"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: unexpected RuntimeError: something broke (set NEURALAB_DEBUG=1 to see the traceback)"]
