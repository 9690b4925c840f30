"""The CLI on a user's own files, as a user meets it: train, predict, evaluate, info, export."""
from __future__ import annotations

import re

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import neuralab as nl

pd = pytest.importorskip("pandas")
from neuralab.cli import main  # noqa: E402

# These tests check the plain MLP's file model (a TabularModel: preprocessing + MLP);
# test_cli_tabular_default.py checks the default tabular model on files.
FAST = ["--model", "mlp", "--hidden", "16", "--epochs", "40", "--batch-size", "32", "--lr", "0.01", "--seed", "0"]


def _people(n=160, seed=0):
    """A table with missing numbers, strings, booleans, a date, an ID and a unicode header."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n).astype(float)
    income = rng.normal(50, 15, n).round(1)
    city = rng.choice(["Oslo", "Zürich", "Kraków"], n).astype(object)
    member = rng.random(n) > 0.5
    frame = pd.DataFrame({
        "customer_id": [f"C{i:05d}" for i in range(n)],
        "âge": age,
        "income": income,
        "city": city,
        "member": member,
        "signup": pd.date_range("2021-01-01", periods=n, freq="3D").strftime("%Y-%m-%d"),
    })
    score = (age - 50) / 15 + (income - 50) / 15 + np.where(city == "Oslo", 1.0, -0.5)
    frame["churn"] = np.where(score > 0, "yes", "no")
    frame["spend"] = (2.0 * age + income + np.where(member, 10, 0) + rng.normal(0, 2, n)).round(2)
    frame.loc[::9, "âge"] = np.nan
    frame.loc[::13, "city"] = None
    frame["member"] = frame["member"].astype(object)
    frame.loc[::17, "member"] = None
    return frame


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    frame = _people()
    paths = {"frame": frame, "dir": d}
    frame.to_csv(d / "people.csv", sep=";", index=False)          # semicolons: sniffed
    frame.to_csv(d / "people.tsv", sep="\t", index=False)
    frame.to_csv(d / "people.txt", sep="|", index=False)          # needs --sep or sniffing
    frame.to_parquet(d / "people.parquet")
    new = _people(20, seed=1).drop(columns=["churn", "spend"])
    new.loc[0, "city"] = "Atlantis"                                # unknown category
    new.to_csv(d / "new.csv", index=False)
    for k in ("people.csv", "people.tsv", "people.txt", "people.parquet", "new.csv"):
        paths[k] = str(d / k)
    return paths


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def clf_model(files):
    out = files["dir"] / "churn.safetensors"
    r = _invoke("train", files["people.csv"], "--target", "churn", "--out", out,
                "--drop", "spend", "--plot", files["dir"] / "curves.png", *FAST)
    assert r.exit_code == 0, r.output
    return out, r


def test_train_classification_from_semicolon_csv(files, clf_model):
    out, r = clf_model
    assert "column 'customer_id' left out: ID-like" in r.stderr
    assert "column 'signup' looks like dates" in r.stderr
    assert "2 classes" in r.stdout
    model = nl.load(out)
    assert model.task == "classification" and model.classes == ["no", "yes"]
    assert model.preprocessor.input_columns == ["âge", "income", "city", "member", "signup"]
    assert (files["dir"] / "curves.png").stat().st_size > 1000
    # a validation part is held out and reported; together the two parts are every row
    rows = {line.split()[0]: [float(v) for v in line.split()[1:]] for line in r.stdout.splitlines()
            if line.split()[:1] in (["train"], ["validation"])}
    n_tr, n_val = (int(t) for t in re.findall(r"(\d+) train / (\d+) validation rows", r.stdout)[0])
    frame = files["frame"]
    acc_all = np.mean(model.predict(frame) == frame["churn"].to_numpy())
    assert acc_all == pytest.approx((n_tr * rows["train"][1] + n_val * rows["validation"][1])
                                    / (n_tr + n_val), abs=1e-4)
    assert rows["validation"][1] > 0.7  # the label is a simple function of the columns


def test_predict_to_stdout_and_file(files, clf_model):
    out, _ = clf_model
    r = _invoke("predict", out, files["new.csv"], "--proba")
    assert r.exit_code == 0, r.output
    assert "warning: column 'city'" in r.stderr and "Atlantis" in r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0] == "prediction,proba_no,proba_yes" and len(lines) == 21
    rows = [line.split(",") for line in lines[1:]]
    assert all(row[0] in ("no", "yes") for row in rows)
    np.testing.assert_allclose([float(a) + float(b) for _, a, b in rows], 1.0, atol=1e-6)
    target = files["dir"] / "preds.csv"
    r = _invoke("predict", out, files["new.csv"], "--out", target)
    assert r.exit_code == 0
    preds = pd.read_csv(target)
    model = nl.load(out)
    with pytest.warns(UserWarning, match="Atlantis"):
        expected = model.predict(pd.read_csv(files["new.csv"]))
    assert list(preds["prediction"]) == list(expected)


def test_evaluate_classification(files, clf_model):
    out, _ = clf_model
    r = _invoke("evaluate", out, files["people.tsv"], "--json")
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout)
    frame = files["frame"]
    pred = nl.load(out).predict(frame)
    truth = frame["churn"].to_numpy()
    assert result["accuracy"] == pytest.approx(np.mean(pred == truth))
    cm = np.array(result["confusion_matrix"])
    assert cm.sum() == len(frame) and np.trace(cm) == np.sum(pred == truth)
    yes = result["per_class"][1]
    tp = np.sum((pred == "yes") & (truth == "yes"))
    assert yes["precision"] == pytest.approx(tp / np.sum(pred == "yes"))
    assert yes["recall"] == pytest.approx(tp / np.sum(truth == "yes"))
    text = _invoke("evaluate", out, files["people.tsv"]).stdout
    assert "accuracy:" in text and "confusion matrix" in text and "precision" in text


def test_regression_on_parquet_with_task_and_features(files):
    out = files["dir"] / "spend.safetensors"
    r = _invoke("train", files["people.parquet"], "--target", "spend", "--features",
                "âge,income,member", "--out", out, *FAST)
    assert r.exit_code == 0, r.output
    model = nl.load(out)
    assert model.task == "regression" and model.preprocessor.input_columns == ["âge", "income", "member"]
    r = _invoke("evaluate", out, files["people.csv"], "--json")
    result = json.loads(r.stdout)
    frame = files["frame"]
    pred = model.predict(frame)
    err = frame["spend"].to_numpy() - pred
    assert result["mse"] == pytest.approx(np.mean(err ** 2), rel=1e-5)
    assert result["mae"] == pytest.approx(np.mean(np.abs(err)), rel=1e-5)
    assert 0.5 < result["r2"] <= 1.0
    # --task overrides the inference: an integer column treated as a class label
    r = _invoke("train", files["people.csv"], "--target", "churn", "--task", "regression",
                "--out", files["dir"] / "x.safetensors", *FAST)
    assert r.exit_code == 2 and "regression needs numbers" in r.output


def test_separator_option(files):
    out = files["dir"] / "pipe.safetensors"
    r = _invoke("train", files["people.txt"], "--target", "churn", "--sep", "|", "--out", out, *FAST)
    assert r.exit_code == 0, r.output
    # the wrong separator leaves one column, so the target is not found: exit 2, one line
    r = _invoke("train", files["people.csv"], "--target", "churn", "--sep", ",", "--out", out)
    assert r.exit_code == 2
    assert r.output.strip().startswith("Error: target column 'churn' is not in the data")
    assert len(r.output.strip().splitlines()) == 1


def test_info_and_export(files, clf_model):
    ort = pytest.importorskip("onnxruntime")
    out, _ = clf_model
    r = _invoke("info", out)
    assert r.exit_code == 0, r.output
    model = nl.load(out)
    n_params = model.estimator.model_.num_parameters()
    assert f"parameters: {n_params:,}" in r.stdout
    assert "kind: tabular" in r.stdout and "classes: no, yes" in r.stdout
    assert "customer_id: left out" in r.stdout and "signup: date" in r.stdout
    onnx_path = files["dir"] / "churn.onnx"
    r = _invoke("export", out, "--onnx", onnx_path)
    assert r.exit_code == 0, r.output
    frame = files["frame"]
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    proba, label = sess.run(["probabilities", "label"], nl.io.onnx_feed(model, frame))
    np.testing.assert_allclose(proba, model.predict_proba(frame), atol=1e-5)
    assert list(label.astype(str)) == list(model.predict(frame))


def test_builtin_table(tmp_path):
    out = tmp_path / "wine.safetensors"
    r = _invoke("train", "wine", "--target", "target", "--out", out, *FAST)
    assert r.exit_code == 0, r.output
    assert nl.load(out).classes == ["class_0", "class_1", "class_2"]


@pytest.mark.parametrize("args, message", [
    (["train", "missing.csv", "--target", "y"], "no such file or built-in dataset"),
    (["train", "{people.csv}", "--target", "nope"], "target column 'nope' is not in the data"),
    (["train", "{people.csv}", "--target", "churn", "--drop", "ghost"], "'ghost'"),
    (["train", "{people.csv}", "--target", "churn", "--hidden", "a,b"], "--hidden"),
    (["train", "{people.csv}"], "--target is required"),
    (["predict", "{bad_model}", "{new.csv}"], "not a safetensors model file"),
    (["predict", "{model}", "{no_city}"], "'city'"),
    (["evaluate", "{model}", "{new.csv}"], "no target column 'churn'"),
    (["info", "missing.safetensors"], "no such file"),
])
def test_bad_input_exits_2_with_one_line(files, clf_model, tmp_path, args, message):
    bad_model = tmp_path / "bad.safetensors"
    bad_model.write_text("id,age\n1,2\n")
    no_city = tmp_path / "no_city.csv"
    pd.read_csv(files["new.csv"]).drop(columns="city").to_csv(no_city, index=False)
    fill = {**files, "bad_model": bad_model, "model": clf_model[0], "no_city": no_city}
    args = [str(fill[a[1:-1]]) if a.startswith("{") else a for a in args]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert lines[-1].startswith("Error:") and message in lines[-1]
    assert "Traceback" not in r.output


def test_unexpected_error_exits_1(files, clf_model, monkeypatch):
    from neuralab.cli import files as cli_files

    def boom(*a, **k):
        raise RuntimeError("disk on fire")
    monkeypatch.setattr(cli_files, "predict_frame", boom)
    r = CliRunner().invoke(main, ["predict", str(clf_model[0]), files["new.csv"]])
    assert r.exit_code == 1
    assert "unexpected RuntimeError: disk on fire" in r.output and "Traceback" not in r.output


@pytest.mark.parametrize("command", ["train", "predict", "evaluate", "info", "export"])
def test_help_has_an_example(command):
    r = _invoke(command, "--help")
    assert r.exit_code == 0 and "Example" in r.output and f"neuralab {command}" in r.output


def test_real_subprocess(files, tmp_path):
    """The installed entry point end to end, as a shell user runs it."""
    def run(*args):
        return subprocess.run([sys.executable, "-m", "neuralab.cli", *map(str, args)],
                              capture_output=True, text=True, encoding="utf-8")
    model = tmp_path / "m.safetensors"
    r = run("train", files["people.csv"], "--target", "churn", "--out", model, *FAST)
    assert r.returncode == 0, r.stderr
    preds = tmp_path / "p.csv"
    r = run("predict", model, files["people.csv"], "--out", preds)
    assert r.returncode == 0, r.stderr
    assert len(pd.read_csv(preds)) == len(files["frame"])
    r = run("evaluate", model, files["people.csv"])
    assert r.returncode == 0 and "accuracy:" in r.stdout
    r = run("predict", model, tmp_path / "absent.csv")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("Error: no such file")


def test_info_prints_strings_from_the_file_escaped(tmp_path):
    pd = pytest.importorskip("pandas")
    from neuralab.preprocessing import TabularModel, TabularPreprocessor
    rng = np.random.default_rng(0)
    evil = "size\x1b[2J\x07"  # clears the screen and rings the bell if printed raw
    frame = pd.DataFrame({evil: rng.normal(size=40), "y": rng.choice(["a", "b"], 40)})
    prep = TabularPreprocessor().fit(frame, target="y")
    clf = nl.MLPClassifier((4,), max_iter=5, random_state=0).fit(prep.transform(frame),
                                                                prep.transform_target(frame))
    path = tmp_path / "m.safetensors"
    nl.save(TabularModel(prep, clf), path)
    r = _invoke("info", path)
    assert r.exit_code == 0, r.output
    assert "\x1b" not in r.output and "\x07" not in r.output
    assert "size\\x1b[2J\\x07" in r.output
