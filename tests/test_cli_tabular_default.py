"""``neuralab train FILE``'s default model: the tabular recipe, end to end through the CLI.

The same command a user runs (train, then predict / evaluate / info / export from the saved
file) on small generated tables; the plain MLP's file model is tested in test_cli_files.py.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import neuralab as nl
from neuralab.cli import main

SHORT = ["--epochs", "12", "--hidden", "32,32", "--batch-size", "32", "--seed", "0", "-q"]


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _table(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Mixed columns with missing values; churn is a rule of age and plan only."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n).astype(float)
    plan = rng.choice(["basic", "plus", "pro"], n)
    df = pd.DataFrame({"customer": [f"c{i:05d}" for i in range(n)],  # an ID: left out
                       "age": age, "plan": plan, "city": rng.choice(list("ABCDEFGHIJKL"), n),
                       "noise": rng.normal(size=n)})
    df["churn"] = np.where((age > 45) == (plan == "pro"), "yes", "no")
    df["spend"] = 2.0 * age + np.where(plan == "pro", 40.0, 0.0) + rng.normal(0, 3, n)
    df.loc[rng.choice(n, 20, replace=False), "age"] = np.nan  # missing values stay in the table
    return df


@pytest.fixture(scope="module")
def churn(tmp_path_factory):
    d = tmp_path_factory.mktemp("tabular_cli")
    frame = _table()
    data = d / "churn.csv"
    frame.drop(columns="spend").to_csv(data, index=False)
    out = d / "churn.safetensors"
    r = _invoke("train", data, "--target", "churn", "--out", out, *SHORT)
    assert r.exit_code == 0, r.output
    return d, data, out, r, frame


def _rows(stdout: str) -> dict:
    return {line.split()[0]: [float(v) for v in line.split()[1:]] for line in stdout.splitlines()
            if line.split()[:1] in (["train"], ["validation"], ["test"])}


def test_a_file_trains_the_tabular_model_by_default(churn):
    _, _, out, r, frame = churn
    assert "model   TABULAR (RealMLP-TD recipe, preset default" in r.stdout
    assert "320 train / 80 validation rows" in r.stdout  # --validation-split 0.2 of 400 rows
    assert "column 'customer' left out: ID-like" in r.stderr
    model = nl.load(out)
    assert isinstance(model, nl.TabularClassifier)
    assert model.feature_names_in_.tolist() == ["age", "plan", "city", "noise"]
    # up to 4,000 training rows the default bags one network over 3 folds of the training rows
    assert model.n_iter_ == 12 and len(model.networks_) == 3 and model.n_ensemble_ == 1
    assert all(1 <= b <= 12 for b in model.best_epochs_)
    assert "preset default: 1 network x 3 bags" in r.stdout
    # the reported scores are the saved model's, on the rows the command held out
    rows = _rows(r.stdout)
    acc = float(np.mean(model.predict(frame) == frame["churn"].to_numpy()))
    assert acc == pytest.approx((320 * rows["train"][1] + 80 * rows["validation"][1]) / 400, abs=1e-4)
    assert rows["validation"][1] >= 0.85  # a rule of two columns, learnt in 12 epochs


def test_predict_evaluate_info_read_the_saved_file(churn):
    d, data, out, _, frame = churn
    r = _invoke("predict", out, data, "--proba")
    assert r.exit_code == 0, r.output
    lines = r.stdout.strip().splitlines()
    assert lines[0] == "prediction,proba_no,proba_yes" and len(lines) == 401
    proba = np.array([[float(v) for v in line.split(",")[1:]] for line in lines[1:]])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    model = nl.load(out)
    assert [line.split(",")[0] for line in lines[1:]] == model.predict(frame).tolist()
    r = _invoke("evaluate", out, data, "--json")  # the target column comes from the file
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["accuracy"] == pytest.approx(
        float(np.mean(model.predict(frame) == frame["churn"].to_numpy())))
    r = _invoke("info", out)
    assert r.exit_code == 0, r.output
    assert "estimator: TabularClassifier(" in r.stdout and "classes: no, yes" in r.stdout
    assert "  plan: 3 categories, one-hot (" in r.stdout
    assert "  city: 12 categories, learned embedding (" in r.stdout
    assert "  age: number, missing -> median + flag" in r.stdout
    assert re.search(r"model=tabular, preset=default, epochs=12", r.stdout)


def test_export_matches_onnxruntime_on_the_encoded_rows(churn):
    ort = pytest.importorskip("onnxruntime")
    d, _, out, _, frame = churn
    r = _invoke("export", out, "--onnx", d / "churn.onnx")
    assert r.exit_code == 0, r.output
    assert "inputs: one per column (age, plan, city, noise)" in r.stderr
    model = nl.load(out)
    sess = ort.InferenceSession(str(d / "churn.onnx"))
    assert [i.name for i in sess.get_inputs()] == ["age", "plan", "city", "noise"]
    got = sess.run(None, nl.io.onnx_feed(model, frame))  # raw columns: strings and NaN
    proba = next(o for o, meta in zip(got, sess.get_outputs()) if meta.name == "probabilities")
    np.testing.assert_allclose(proba, model.predict_proba(frame), atol=1e-5)


def test_explain_rows_name_the_table_columns(churn):
    _, data, out, _, _ = churn
    r = _invoke("explain", out, data, "--rows", "0,1", "--top", "3")
    assert r.exit_code == 0, r.output
    named = re.findall(r"^  (\S+)\s+[+-]", r.stdout, flags=re.M)
    assert len(named) == 6 and set(named) <= {"age", "plan", "city", "noise"}  # no encoded names
    r = _invoke("explain", out, data, "--global", "--top", "2")
    assert r.exit_code == 0, r.output
    top2 = {line.split()[0] for line in r.stdout.splitlines()[1:3]}
    assert top2 == {"age", "plan"} and "permutation" in r.stdout.splitlines()[0]


def test_regression_file(tmp_path):
    frame = _table(seed=1)
    data = tmp_path / "spend.csv"
    frame.drop(columns="churn").to_csv(data, index=False)
    out = tmp_path / "spend.safetensors"
    r = _invoke("train", data, "--target", "spend", "--out", out, *SHORT)
    assert r.exit_code == 0, r.output
    model = nl.load(out)
    assert isinstance(model, nl.TabularRegressor) and "mish" in r.stdout
    assert _rows(r.stdout)["validation"][2] > 0.9  # r2: spend is 2 x age (+ 40 for pro) + noise
    r = _invoke("evaluate", out, data, "--json")
    assert r.exit_code == 0, r.output
    err = frame["spend"].to_numpy() - model.predict(frame)
    assert json.loads(r.stdout)["mse"] == pytest.approx(float(np.mean(err ** 2)), rel=1e-5)


@pytest.mark.parametrize("flags, words", [
    (["--norm", "batch"], "--norm sets the plain MLP; add --model mlp"),
    (["--optimizer", "sgd", "--l2", "0.1"], "--optimizer, --l2 set the plain MLP; add --model mlp"),
    (["--model", "mlp", "--preset", "fast"], "--preset sets the tabular model"),
    (["--model", "tabular", "--text", "plan"], "--text (TF-IDF columns) trains the plain MLP"),
    (["--hidden", "none"], "--hidden none (no hidden layer) needs --model mlp"),
    (["--model", "mlp", "--ple-bins", "8"], "--ple-bins sets the tabular model"),
    (["--ple-bins", "many"], "--ple-bins must be 'auto' or a whole number >= 0, got 'many'"),
    (["--ple-bins", "-2"], "--ple-bins must be 'auto' or a whole number >= 0, got '-2'"),
])
def test_flags_of_the_other_model_get_one_line(churn, flags, words):
    d, data, _, _, _ = churn
    r = _invoke("train", data, "--target", "churn", "--out", d / "x.safetensors", *flags)
    assert r.exit_code == 2 and words in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1 and not (d / "x.safetensors").exists()


def test_ple_bins_flag_sets_the_bins_and_the_file_keeps_them(churn):
    d, data, _, _, _ = churn
    out = d / "bins.safetensors"
    r = _invoke("train", data, "--target", "churn", "--out", out, "--ple-bins", "4", *SHORT)
    assert r.exit_code == 0, r.output
    assert "numbers in 4 piecewise-linear bins" in r.stdout
    model = nl.load(out)
    assert model.ple_bins_ == 4 and any(c.get("edges") for c in model.encoding_["columns"])
    assert "piecewise-linear bins: up to 4 per number column" in _invoke("info", out).stdout
    r = _invoke("train", data, "--target", "churn", "--out", out, "--force", "--ple-bins", "0",
                *SHORT)
    assert r.exit_code == 0 and "piecewise-linear" not in r.stdout, r.output
    assert nl.load(out).ple_bins_ == 0


def test_categorical_flag_treats_integer_codes_as_categories(tmp_path):
    rng = np.random.default_rng(1)
    n = 800
    school, x = rng.integers(100, 140, n), rng.normal(size=n)
    effect = rng.normal(size=200)
    frame = pd.DataFrame({"school": school, "x": x,
                          "pass": np.where(effect[school] + 0.3 * x > 0, "yes", "no")})
    data = tmp_path / "schools.csv"
    frame.to_csv(data, index=False)
    scores = {}
    for model in ("tabular", "mlp"):
        out = tmp_path / f"{model}.safetensors"
        r = _invoke("train", data, "--target", "pass", "--model", model, "--out", out,
                    "--categorical", "school", *SHORT)
        assert r.exit_code == 0, r.output
        scores[model] = _rows(r.stdout)["validation"][-1]
        shown = [line for line in _invoke("info", out).stdout.splitlines()
                 if line.strip().startswith("school")]
        assert shown and "40 categories" in shown[0], shown
        new = tmp_path / "new.csv"
        pd.DataFrame({"school": [101, 139], "x": [0.0, 0.0]}).to_csv(new, index=False)
        r = _invoke("predict", out, new)
        assert r.exit_code == 0 and r.stdout.split()[1:] in (["yes", "no"], ["no", "yes"],
                                                             ["yes", "yes"], ["no", "no"]), r.output
    plain = _invoke("train", data, "--target", "pass", "--out", tmp_path / "plain.safetensors",
                    *SHORT)
    assert plain.exit_code == 0, plain.output
    assert scores["tabular"] > _rows(plain.stdout)["validation"][-1] + 0.1, (scores, plain.stdout)
    bad = _invoke("train", data, "--target", "pass", "--categorical", "schol",
                  "--out", tmp_path / "bad.safetensors", *SHORT)
    assert bad.exit_code != 0 and "'schol'" in bad.output and "Traceback" not in bad.output


def test_a_text_column_of_many_values_is_left_out_with_a_note(tmp_path):
    # 400 names over 500 rows: not an ID (names repeat), too many for a category
    rng = np.random.default_rng(2)
    n = 500
    x = rng.normal(size=n)
    frame = pd.DataFrame({"x": x, "who": [f"name{v}" for v in rng.integers(0, 800, n)],
                          "y": np.where(x > 0, "up", "down")})
    data = tmp_path / "names.csv"
    frame.to_csv(data, index=False)
    out = tmp_path / "names.safetensors"
    r = _invoke("train", data, "--target", "y", "--out", out, *SHORT)
    assert r.exit_code == 0, r.output
    distinct = frame["who"].iloc[:400].nunique()  # about the training part's
    note = [line for line in r.output.splitlines() if "'who' left out" in line]
    assert len(note) == 1 and "too many for a category" in note[0], r.output
    assert abs(int(re.search(r"(\d+) distinct", note[0]).group(1)) - distinct) < 60
    assert "1 columns" in r.stdout and _rows(r.stdout)["validation"][-1] > 0.9
    assert list(nl.load(out).feature_names_in_) == ["x"]
    r = _invoke("predict", out, data)  # the file's rows, the left-out column and all
    assert r.exit_code == 0 and len(r.stdout.split()) == n + 1, r.output
    r = _invoke("train", data, "--target", "y", "--features", "who",
                "--out", tmp_path / "none.safetensors", *SHORT)
    assert r.exit_code != 0 and "no usable feature columns left" in r.output
    assert "Traceback" not in r.output


def test_a_built_in_data_set_keeps_the_plain_mlp(tmp_path):
    r = _invoke("train", "--dataset", "iris", "--epochs", "3", "-q")
    assert r.exit_code == 0, r.output
    assert "model   MLP 4-128-128-3 relu" in r.stdout


SLOW = """
import sys, time
from neuralab.callbacks import Callback
from neuralab.cli import main, train
class Slow(Callback):
    def on_epoch_end(self, epoch, logs=None):
        print(f"[slow] epoch {epoch + 1} ends", file=sys.stderr, flush=True)
    def on_batch_end(self, batch, logs=None):
        time.sleep(0.05)
train.EXTRA_CALLBACKS.append(Slow())
sys.exit(main())
"""


@pytest.mark.skipif(os.name != "posix", reason="signal delivery to a child needs POSIX")
def test_ctrl_c_keeps_the_best_epoch_so_far(tmp_path):
    frame = _table()
    data = tmp_path / "churn.csv"
    frame.to_csv(data, index=False)
    out = tmp_path / "m.safetensors"
    proc = subprocess.Popen([sys.executable, "-c", SLOW, "train", str(data), "--target", "churn",
                             "--drop", "spend", "--epochs", "200", "--batch-size", "64",
                             "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if "epoch 3 ends" in line:
            break
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    err = "".join(lines) + err
    assert proc.returncode == 130, err
    assert "saved the best epoch so far to" in err and str(out) in err and "Traceback" not in err
    model = nl.load(out)
    ran = len(model.history_[0]["loss"])
    assert 3 <= ran < 200 and 1 <= model.best_epochs_[0] <= ran
    assert set(model.predict(frame)) <= {"no", "yes"}
    assert not list(tmp_path.glob(".*.tmp"))
