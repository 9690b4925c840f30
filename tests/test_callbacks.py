"""Callbacks: early stopping, checkpoints, progress, gradient norms, NaN stop, LR schedules, CSV."""
from __future__ import annotations

import csv
import io

import numpy as np
import pytest

import neuralab as nl
from neuralab import nn, optim
from neuralab.callbacks import (Callback, CSVLogger, EarlyStopping, GradientMonitor,
                                LearningRateScheduler, ModelCheckpoint, ProgressBar,
                                TerminateOnNaN)
from neuralab.training import TrainingRun


def blobs(n=200, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = rng.standard_normal((n, 4)).astype(np.float32) + 2.5 * np.eye(3, 4, dtype=np.float32)[y]
    return X, y


def drive(callback, model, values, monitor="val_loss", on_epoch=None):
    """Run a callback through epochs whose logs carry the given monitored values."""
    trainer = TrainingRun(model, optimizer=None, params={"has_validation": True, "epochs": len(values)})
    callback.set_run(trainer)
    callback.on_train_begin({})
    ran = []
    for epoch, v in enumerate(values):
        callback.on_epoch_begin(epoch, {})
        if on_epoch:
            on_epoch(epoch)
        callback.on_epoch_end(epoch, {"loss": 1.0, monitor: v})
        ran.append(epoch)
        if trainer.stop_training:
            break
    callback.on_train_end({})
    return ran


def test_early_stopping_waits_patience_epochs_and_restores_the_best_weights():
    model = nn.Linear(2, 1, rng=np.random.default_rng(0))

    def set_weights(epoch):  # the weights of epoch e are all e, so we can see which came back
        model.weight.data[...] = epoch

    es = EarlyStopping(patience=2)
    ran = drive(es, model, [1.0, 0.5, 0.6, 0.55, 0.4], on_epoch=set_weights)
    assert ran == [0, 1, 2, 3]  # epochs 2 and 3 did not beat 0.5: stop after the 2nd of them
    assert es.stopped_epoch == 3 and es.best_epoch == 1 and es.best == 0.5
    np.testing.assert_array_equal(model.weight.data, 1)

    es = EarlyStopping(patience=2, restore_best=False)
    drive(es, model, [1.0, 0.5, 0.6, 0.55], on_epoch=set_weights)
    np.testing.assert_array_equal(model.weight.data, 3)


def test_early_stopping_min_delta_and_max_mode():
    model = nn.Linear(2, 1)
    es = EarlyStopping(patience=1, min_delta=0.1)
    assert drive(es, model, [1.0, 0.95, 0.5]) == [0, 1]  # 0.95 is not 0.1 better
    es = EarlyStopping(monitor="val_accuracy", patience=1)
    assert es.mode == "max"
    assert drive(es, model, [0.5, 0.7, 0.6, 0.9], monitor="val_accuracy") == [0, 1, 2]


def test_early_stopping_in_fit_stops_and_leaves_the_best_validation_loss():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 10)).astype(np.float32)
    y = rng.integers(0, 2, 120)  # random labels: validation loss soon rises as the net memorises
    model = nn.MLP(10, hidden=(64,), out_features=2, rng=0)
    es = EarlyStopping(patience=3)
    hist = nl.fit(model, X, y, epochs=200, batch_size=16, lr=0.01, validation_split=0.3,
                  seed=0, verbose=0, callbacks=[es])
    n = len(hist.history["val_loss"])
    assert es.stopped_epoch == n - 1 < 199
    best = min(hist.history["val_loss"])
    assert hist.history["val_loss"].index(best) == es.best_epoch == n - 4
    # the restored weights are the best epoch's: its validation loss again
    from neuralab.data import train_val_split
    _, Xv, _, yv = train_val_split(X.astype(np.float32), y, validation_split=0.3,
                                   seed=np.random.default_rng(0))
    assert nl.evaluate(model, Xv, yv)["loss"] == pytest.approx(best, rel=1e-5)


def _read_weights(path):
    try:
        return nl.load(path).state_dict()
    except (ImportError, AttributeError):
        from safetensors.numpy import load_file
        return load_file(str(path))


def test_model_checkpoint_saves_only_improvements_atomically(tmp_path):
    model = nn.Linear(2, 1, rng=np.random.default_rng(0))
    path = tmp_path / "best.safetensors"

    def set_weights(epoch):
        model.weight.data[...] = epoch

    ck = ModelCheckpoint(path, save_best_only=True)
    drive(ck, model, [1.0, 0.5, 0.7, 0.4, 0.45], on_epoch=set_weights)
    assert len(ck.saved) == 3  # epochs 0, 1 and 3 improved
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.safetensors"]  # no temp files left
    np.testing.assert_array_equal(_read_weights(path)["weight"], 3)


def test_model_checkpoint_every_epoch_with_a_formatted_name(tmp_path):
    X, y = blobs()
    model = nn.MLP(4, hidden=(8,), out_features=3, rng=0)
    ck = ModelCheckpoint(str(tmp_path / "ep{epoch:02d}-{loss:.2f}.safetensors"))
    nl.fit(model, X, y, epochs=3, seed=0, verbose=0, callbacks=[ck])
    assert [p.split("/")[-1][:4] for p in ck.saved] == ["ep00", "ep01", "ep02"]
    last = _read_weights(ck.saved[-1])
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(last[k], v)
    with pytest.raises(ValueError, match="not a log key"):
        nl.fit(model, X, y, epochs=1, verbose=0,
               callbacks=[ModelCheckpoint(str(tmp_path / "{nope}.safetensors"))])


def test_progress_bar_is_quiet_off_a_terminal_and_shows_numbers_when_forced(capsys):
    X, y = blobs(64)
    model = nn.MLP(4, hidden=(8,), out_features=3, rng=0)
    nl.fit(model, X, y, epochs=2, batch_size=16, validation_split=0.25, seed=0, verbose=1)
    assert capsys.readouterr().err == ""
    buf = io.StringIO()
    nl.fit(model, X, y, epochs=2, batch_size=16, validation_split=0.25, seed=0, verbose=0,
           metrics=["accuracy"], callbacks=[ProgressBar(force=True, file=buf)])
    text = buf.getvalue()
    assert "epoch 2/2" in text and "val_accuracy" in text and "loss" in text
    assert "6/6" in text  # 3 steps per epoch x 2 epochs, all counted


def test_verbose_2_prints_one_line_per_epoch(capsys):
    X, y = blobs(64)
    nl.fit(nn.Linear(4, 3), X, y, epochs=3, seed=0, verbose=2)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and lines[2].startswith("epoch 3/3") and "loss=" in lines[2]


def test_gradient_monitor_shows_vanishing_gradients_in_a_deep_sigmoid_net():
    X, y = blobs(128)
    model = nn.MLP(4, hidden=(32,) * 6, out_features=3, activation="sigmoid", rng=0)
    gm = GradientMonitor()
    nl.fit(model, X, y, epochs=2, batch_size=32, seed=0, verbose=0, callbacks=[gm])
    names = gm.layers
    assert names == [n for n, p in model.named_parameters() if p.ndim == 2]
    assert all(len(v) == 2 for v in gm.history.values())
    first, last = gm.history[names[0]][0], gm.history[names[-1]][0]
    assert 0 < first < last / 100, (first, last)


def test_terminate_on_nan_stops_and_suggests_a_smaller_learning_rate():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 3)).astype(np.float32) * 100
    y = X.sum(axis=1) * 100
    model = nn.MLP(3, hidden=(16,), out_features=1, rng=0)
    stop = TerminateOnNaN()
    with pytest.warns(RuntimeWarning, match="smaller learning rate"), np.errstate(all="ignore"):
        hist = nl.fit(model, X, y, loss="mse", optimizer="sgd", lr=10.0, epochs=50, batch_size=8,
                      seed=0, verbose=0, callbacks=[stop])
    assert len(hist.history["loss"]) < 50
    assert "learning rate (now 10)" in stop.message and "epoch 1," in stop.message


def test_learning_rate_scheduler_from_a_function_and_from_optim():
    X, y = blobs(64)
    model = nn.Linear(4, 3)
    hist = nl.fit(model, X, y, epochs=4, optimizer="sgd", lr=0.1, seed=0, verbose=0,
                  callbacks=[LearningRateScheduler(lambda epoch: 0.1 / (epoch + 1))])
    np.testing.assert_allclose(hist.history["lr"], [0.1, 0.05, 0.1 / 3, 0.025])

    opt = optim.SGD(model.parameters(), lr=0.2)
    sched = optim.StepLR(opt, step_size=2, gamma=0.5)
    hist = nl.fit(model, X, y, epochs=5, optimizer=opt, seed=0, verbose=0,
                  callbacks=[LearningRateScheduler(sched)])
    np.testing.assert_allclose(hist.history["lr"], [0.2, 0.2, 0.1, 0.1, 0.05])

    opt = optim.SGD(model.parameters(), lr=0.2)
    plateau = optim.ReduceLROnPlateau(opt, factor=0.5, patience=0)
    hist = nl.fit(model, X, y, epochs=4, optimizer=opt, seed=0, verbose=0,
                  callbacks=[_FakeMonitor([1.0, 2.0, 3.0, 4.0]),
                             LearningRateScheduler(plateau, monitor="loss")])
    np.testing.assert_allclose(hist.history["lr"], [0.2, 0.2, 0.1, 0.05])


class _FakeMonitor(Callback):
    """Overwrites logs["loss"] with a scripted sequence (runs before the scheduler reads it)."""

    def __init__(self, values):
        self.values = values

    def on_epoch_end(self, epoch, logs):
        logs["loss"] = self.values[epoch]


def test_csv_logger_writes_a_row_per_epoch(tmp_path):
    X, y = blobs(64)
    path = tmp_path / "log.csv"
    hist = nl.fit(nn.Linear(4, 3), X, y, epochs=3, validation_split=0.25, seed=0, verbose=0,
                  metrics=["accuracy"], callbacks=[CSVLogger(path)])
    rows = list(csv.DictReader(open(path)))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert list(rows[0]) == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr"]
    np.testing.assert_allclose([float(r["val_loss"]) for r in rows], hist.history["val_loss"])


def test_callbacks_see_every_hook_in_order():
    events = []

    class Recorder(Callback):
        def on_train_begin(self, logs=None): events.append("train_begin")
        def on_epoch_begin(self, epoch, logs=None): events.append(f"epoch_begin {epoch}")
        def on_batch_end(self, batch, logs=None): events.append(f"batch {batch}")
        def on_epoch_end(self, epoch, logs=None): events.append(f"epoch_end {epoch}")
        def on_train_end(self, logs=None): events.append("train_end")

    X, y = blobs(40)
    nl.fit(nn.Linear(4, 3), X, y, epochs=2, batch_size=20, verbose=0, callbacks=[Recorder()])
    assert events == ["train_begin", "epoch_begin 0", "batch 0", "batch 1", "epoch_end 0",
                      "epoch_begin 1", "batch 0", "batch 1", "epoch_end 1", "train_end"]
    with pytest.raises(TypeError, match="Callback instances"):
        nl.fit(nn.Linear(4, 3), X, y, epochs=1, verbose=0, callbacks=[print])
