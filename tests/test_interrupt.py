"""Ctrl-C during ``neuralab train`` loses nothing: a real subprocess, a real SIGINT.

The run is slowed by a callback the test puts into ``neuralab.cli.train.EXTRA_CALLBACKS`` (a
sleep after each batch; nothing in the shipped code reads a test switch) so the signal lands
mid-training; the test waits for the command's own "training..." notice before sending it,
so it never races the imports. Where in the run the signal lands does not
matter: the resumed run must end with exactly the weights of an uninterrupted one.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import neuralab as nl

ARGS = ["train", "--dataset", "digits", "--hidden", "24", "--epochs", "6", "--batch-size", "64",
        "--patience", "3", "--dropout", "0.1", "--seed", "3", "-q"]


SLOW = """
import sys, time
from neuralab.callbacks import Callback
from neuralab.cli import main, train

class Slow(Callback):
    def on_epoch_begin(self, epoch, logs=None):
        print(f"[slow] epoch {epoch + 1} begins", file=sys.stderr, flush=True)
    def on_epoch_end(self, epoch, logs=None):
        print(f"[slow] epoch {epoch + 1} ends", file=sys.stderr, flush=True)
    def on_batch_end(self, batch, logs=None):
        time.sleep(DELAY)

train.EXTRA_CALLBACKS.append(Slow())
sys.exit(main())
"""


def _cli(*args, env=None, delay=None, **kw):
    code = ("import sys; from neuralab.cli import main; sys.exit(main())" if delay is None
            else SLOW.replace("DELAY", str(delay)))
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


@pytest.mark.skipif(os.name != "posix", reason="signal delivery to a child needs POSIX")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_saves_checkpoint_and_resume_matches_uninterrupted_run(tmp_path, sig):
    ck = tmp_path / "ck.safetensors"
    proc = _cli(*ARGS, "--out", str(ck), delay=0.03)
    started = proc.stderr.readline()  # printed just before the first batch
    assert "training" in started and "Ctrl-C" in started, started
    for line in proc.stderr:  # wait until the second epoch has begun, then a few batches
        if "epoch 2 begins" in line:
            break
    time.sleep(0.2)
    os.kill(proc.pid, sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert f"saved the best model so far to {ck}" in err
    assert f"neuralab train --resume {ck}" in err
    assert "Traceback" not in err
    # The file is a complete, loadable model (written atomically), plus a resumable state.
    interrupted = nl.load(ck)  # a CLI model: predict takes the data set's table
    assert all(np.isfinite(v).all() for v in interrupted.estimator.model_.state_dict().values())
    user, arrays = nl.io.read_extra_arrays(ck)
    state = user["checkpoint"]["state"]
    assert 1 <= state["epoch"] < 6  # interrupted in epoch 2 or later, not at the end
    assert state["blas_threads"] >= 1  # the resumed run multiplies on as many threads
    assert any(k.startswith("opt.") for k in arrays)  # Adam's moments travel with it
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind

    resumed = _cli("train", "--resume", str(ck), env={**os.environ})
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, (out, err)
    assert f"saved the model to {ck}" in out

    full_path = tmp_path / "full.safetensors"
    full = _cli(*ARGS, "--out", str(full_path), env={**os.environ})
    out_full, err_full = full.communicate(timeout=120)
    assert full.returncode == 0, err_full
    a, b = (nl.load(p).estimator.model_.state_dict() for p in (ck, full_path))
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    # Same report (scores on train/validation/test) for both runs.
    assert out.splitlines()[-5:-1] == out_full.splitlines()[-5:-1]


def test_resume_of_a_missing_checkpoint_is_a_clear_error(tmp_path):
    proc = _cli("train", "--resume", str(tmp_path / "nope.safetensors"))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert err.strip().splitlines() == [f"Error: {tmp_path / 'nope.safetensors'}: no such file"]


@pytest.mark.skipif(os.name != "posix", reason="signal delivery to a child needs POSIX")
def test_ctrl_c_during_start_up_is_one_line_and_exit_130():
    # Interrupted while the command still imports its libraries: no traceback, exit 130.
    code = ("import sys, time\n"
            "from neuralab.cli import main, train\n"
            "real = train.run_training\n"
            "def slow(*a, **k):\n"
            "    print('starting', file=sys.stderr, flush=True); time.sleep(30)\n"
            "train.run_training = slow\n"
            "sys.exit(main())\n")
    proc = subprocess.Popen([sys.executable, "-c", code, "train", "--dataset", "iris"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert "starting" in proc.stderr.readline()
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "interrupted"


@pytest.mark.skipif(os.name != "posix", reason="SIGINT delivery to a child needs POSIX")
def test_sigint_on_a_data_file_saves_the_model_so_far(tmp_path):
    """`neuralab train FILE --target COL`: the estimator stops after the batch, the CLI saves."""
    import pandas as pd

    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 3))
    frame = pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2],
                          "colour": rng.choice(["red", "blue"], 2000),
                          "y": np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")})
    data = tmp_path / "data.csv"
    frame.to_csv(data, index=False)
    out = tmp_path / "m.safetensors"
    proc = _cli("train", str(data), "--target", "y", "--model", "mlp", "--hidden", "16", "--epochs", "50",
                "--batch-size", "32", "--lr", "0.01", "--seed", "1", "--out", str(out),
                delay=0.02)
    lines = []
    for line in proc.stderr:  # the notice, then one line per finished epoch
        lines.append(line)
        if "epoch 2 ends" in line:
            break
    assert any("training" in t and "Ctrl-C" in t for t in lines), lines
    time.sleep(0.2)
    os.kill(proc.pid, signal.SIGINT)
    out_text, err = proc.communicate(timeout=120)
    err = "".join(lines) + err
    assert proc.returncode == 130, (out_text, err)
    assert f"saved the best model so far" in err and str(out) in err
    assert "Traceback" not in err
    assert not list(tmp_path.glob(".*.tmp"))

    model = nl.load(out)  # a complete CLI model, written atomically
    done = model.estimator.n_iter_
    assert 2 <= done < 50 and err.count("ends") >= 2
    assert model.info["interrupted"] == f"after {done} complete epoch(s)"
    assert model.estimator.callbacks is None  # the Ctrl-C handler is not saved
    # the same engine as --dataset: the file run resumes too
    resumed = _cli("train", "--resume", str(out))
    assert resumed.communicate(timeout=120) and resumed.returncode == 0
    acc = np.mean(model.predict(frame) == frame["y"].to_numpy())
    assert acc > 0.9  # two epochs on a linear rule already learn it


def test_a_resumed_run_uses_the_recorded_blas_thread_count(monkeypatch):
    # Another thread count can round a matmul's sums differently, so --resume passes the count
    # the interrupted run used (from its checkpoint) on to fit instead of choosing anew.
    from neuralab.cli import train
    from neuralab import training
    seen = {}
    real = training.fit

    def spy(*args, **kwargs):
        seen["blas_threads"] = kwargs.get("blas_threads")
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "fit", spy)
    X = np.random.default_rng(0).standard_normal((40, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    p = {"hidden": (4,), "activation": "relu", "dropout": 0.0, "norm": None, "residual": False,
         "optimizer": "adam", "lr": 1e-3, "l2": 0.0, "epochs": 1, "batch_size": 16, "seed": 0,
         "device": "cpu", "first_epoch": 0, "blas_threads": 2}
    train.fit_mlp(X, y, X[:8], y[:8], "classification", 2, p, [], np.random.default_rng(0), None)
    assert seen["blas_threads"] == 2
