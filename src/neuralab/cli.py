"""The ``neuralab`` command line: one click group, one function per command.

Exit codes: 0 success, 2 bad usage or bad input (one ``Error: ...`` line), 1 an unexpected
error (one line; set NEURALAB_DEBUG=1 for the traceback). Heavy imports happen inside the
commands, so ``neuralab --help`` stays fast.

Example (shell):
    neuralab train --dataset digits
    neuralab datasets
"""
from __future__ import annotations

import os
import sys
import time
import warnings
from contextlib import contextmanager
from typing import Any, Iterator

import click

from .cli_files import BadInput  # one class for every command's bad input (exit code 2)


class Unexpected(click.ClickException):
    """An error we did not foresee: one line and exit code 1."""

    exit_code = 1


@contextmanager
def handle_errors() -> Iterator[None]:
    """Map errors a user can fix (ValueError, missing files) to exit 2, anything else to 1."""
    try:
        yield
    except click.ClickException:
        raise
    except (ValueError, FileNotFoundError, IsADirectoryError, PermissionError) as e:
        if os.environ.get("NEURALAB_DEBUG"):
            raise
        raise BadInput(_one_line(e)) from None
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)  # the shell's code for Ctrl-C
    except Exception as e:  # noqa: BLE001 - the last line of defence of a command-line tool
        if os.environ.get("NEURALAB_DEBUG"):
            raise
        raise Unexpected(f"unexpected {type(e).__name__}: {_one_line(e)} "
                         "(set NEURALAB_DEBUG=1 to see the traceback)") from None


def _one_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    if isinstance(e, FileNotFoundError) and e.filename:
        text = f"no such file: {e.filename}"
    return " ".join(text.split())


def _version() -> str:
    from . import __version__  # noqa: PLC0415

    return __version__


# ============================================================================ the group
@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
             epilog="Example:\n\n\b\n  neuralab train --dataset digits\n  neuralab datasets")
@click.version_option(_version(), prog_name="neuralab")
def main() -> None:
    """neuralab: neural networks from first principles on NumPy."""


# ============================================================================ datasets
def _datasets_module():
    from . import datasets  # noqa: PLC0415  (sklearn and mnist1d are imported inside it, lazily)

    return datasets


def dataset_names() -> list[str]:
    """The built-in data set names ``train --dataset`` accepts."""
    return list(_datasets_module().list_datasets())


def load_dataset(name: str) -> Any:
    """Load a built-in data set by name: a ``datasets.Dataset`` with a test split."""
    ds = _datasets_module()
    try:
        return ds.load(name)
    except ValueError as e:
        if "unknown dataset" in str(e):
            raise BadInput(f"{_one_line(e)} (see `neuralab datasets`)") from None
        raise


def _builtin_dataset(name: str) -> bool:
    """True when NAME is not a file but a built-in data set of `neuralab datasets`."""
    if os.path.exists(name):
        return False
    try:
        return name.lower().replace("-", "_") in dataset_names()
    except Exception:  # noqa: BLE001 - no datasets module: then it is not a built-in
        return False


def _task_of(data: Any) -> str:
    import numpy as np  # noqa: PLC0415

    task = getattr(data, "task", None)
    if task in ("classification", "regression"):
        return task
    return "classification" if np.asarray(data.y_train).dtype.kind in "iub" else "regression"


@main.command("datasets", epilog="Example:\n\n\b\n  neuralab datasets")
def datasets_command() -> None:
    """List the built-in data sets that `neuralab train --dataset NAME` accepts."""
    with handle_errors():
        ds = _datasets_module()
        for name in dataset_names():
            click.echo(f"{name:<14} {ds.describe(name)}")


# ============================================================================ train
def _parse_hidden(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in text.replace(" ", "").split(",") if s)
    except ValueError:
        raise BadInput(f"--hidden must be layer widths separated by commas, like 128,64; got {text!r}") from None
    if not sizes or any(s <= 0 for s in sizes):
        raise BadInput(f"--hidden needs at least one positive width, got {text!r}")
    return sizes


TRAIN_EXAMPLE = """Examples:

\b
  neuralab train houses.csv --target price --hidden 64,32 --out price.safetensors
  neuralab train --dataset digits
  neuralab train --dataset mnist --hidden 256,256 --epochs 15 --out mnist.safetensors
  neuralab train --dataset diabetes --hidden 32 --lr 0.003"""


@main.command("train", epilog=TRAIN_EXAMPLE)
@click.argument("data", required=False)
@click.option("--dataset", "-d", metavar="NAME",
              help="A built-in data set (see `neuralab datasets`).")
@click.option("--target", "-t", help="DATA: the column to predict.")
@click.option("--task", type=click.Choice(["classification", "regression"]),
              help="DATA: override the task inferred from the target.")
@click.option("--features", help="DATA: comma-separated columns to use (default: all).")
@click.option("--drop", help="DATA: comma-separated columns to leave out.")
@click.option("--sep", help="DATA: column delimiter (default: detected).")
@click.option("--text", metavar="COLS", help="DATA: comma-separated free-text columns (TF-IDF "
              "features; vocabulary and idf stored in the model file).")
@click.option("--batch-norm", is_flag=True, help="Same as --norm batch.")
@click.option("--residual", is_flag=True, help="DATA: residual hidden blocks.")
@click.option("--early-stopping/--no-early-stopping", default=None,
              help="DATA: hold out --validation-split and stop after --patience bad epochs.")
@click.option("--plot", type=click.Path(dir_okay=False), help="DATA: save learning curves (PNG).")
@click.option("--hidden", default="128,128", show_default=True, help="Hidden layer widths.")
@click.option("--activation", default="relu", show_default=True,
              type=click.Choice(["relu", "tanh", "sigmoid", "leaky_relu", "gelu"]))
@click.option("--dropout", default=0.0, show_default=True, type=click.FloatRange(0, 1, max_open=True))
@click.option("--norm", default="none", show_default=True, type=click.Choice(["none", "batch", "layer"]))
@click.option("--optimizer", "--solver", "optimizer", default="adam", show_default=True,
              type=click.Choice(["adam", "adamw", "sgd", "rmsprop", "adagrad", "lbfgs"]))
@click.option("--lr", default=1e-3, show_default=True, type=click.FloatRange(0, min_open=True))
@click.option("--l2", default=0.0, show_default=True, type=click.FloatRange(0), help="L2 penalty on weights.")
@click.option("--epochs", default=100, show_default=True, type=click.IntRange(1),
              help="Most epochs; early stopping usually ends sooner.")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1))
@click.option("--patience", default=10, show_default=True, type=click.IntRange(0),
              help="Early stopping: epochs without validation improvement (0: off).")
@click.option("--validation-split", default=0.1, show_default=True,
              type=click.FloatRange(0, 1, min_open=True, max_open=True))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--device", default="cpu", show_default=True, type=click.Choice(["cpu", "cuda"]))
@click.option("--out", "-o", type=click.Path(dir_okay=False), help="Save the trained model here (.safetensors).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("--resume", type=click.Path(dir_okay=False),
              help="Continue a run interrupted with Ctrl-C from the file it saved "
                   "(same data and settings; --out defaults to that file).")
def train_command(dataset: str, hidden: str, activation: str, dropout: float, norm: str,
                  optimizer: str, lr: float, l2: float, epochs: int, batch_size: int,
                  patience: int, validation_split: float, seed: int, device: str,
                  out: str | None, quiet: bool, data: str | None = None,
                  **file_options: Any) -> None:
    """Train an MLP on a CSV/TSV/Parquet file (DATA --target COL) or a built-in data set
    (--dataset NAME) and report its metrics.

    DATA files: numbers are median-imputed and standardised, text/boolean columns one-hot
    encoded, ID-like columns left out; the model file keeps this preprocessing.

    Inputs are standardised (statistics of the training part only), the network is trained
    with the chosen optimizer and early stopping on the validation loss, and the best
    epoch's weights are kept.
    """
    resume = file_options.pop("resume", None)
    if resume is not None:
        from .cli_resume import load_checkpoint  # noqa: PLC0415
        with handle_errors():
            args, snapshot = load_checkpoint(resume)
            _train_dataset(args, out or resume, quiet, snapshot)
        return
    if data is not None and not (file_options["target"] is None and _builtin_dataset(data)):
        if dataset is not None:
            raise BadInput("give either a DATA file or --dataset NAME, not both")
        from .cli_files import train_file  # noqa: PLC0415
        with handle_errors():
            train_file(data, out=out, hidden=hidden, activation=activation, dropout=dropout,
                       norm=None if norm == "none" else norm, optimizer=optimizer, lr=lr, l2=l2,
                       epochs=epochs, batch_size=batch_size, patience=patience,
                       validation_split=validation_split, seed=seed, device=device, **file_options)
        return
    dataset = dataset or data
    if dataset is None:
        raise BadInput("give a DATA file with --target COL, or --dataset NAME")
    if file_options["batch_norm"]:
        norm = "batch"
    if file_options["early_stopping"] is False:
        patience = 0
    with handle_errors():
        args = {"dataset": dataset, "hidden": list(_parse_hidden(hidden)), "activation": activation,
                "dropout": dropout, "norm": None if norm == "none" else norm,
                "optimizer": optimizer, "lr": lr, "l2": l2, "epochs": epochs,
                "batch_size": batch_size, "patience": patience,
                "validation_split": validation_split, "seed": seed, "device": device}
        _train_dataset(args, out, quiet)


def _train_dataset(args: dict, out: str | None, quiet: bool, snapshot: Any = None) -> None:
    """Train on a built-in data set; on Ctrl-C save a resumable checkpoint and exit 130."""
    data = load_dataset(args["dataset"])
    kwargs = {k: v for k, v in args.items() if k != "dataset"}
    kwargs["hidden"] = tuple(kwargs["hidden"])
    result = train_on(data, name=args["dataset"], progress=not quiet, resume=snapshot,
                      interruptible=True, **kwargs)
    if result.get("interrupted"):
        from .cli_resume import save_checkpoint  # noqa: PLC0415
        path = save_checkpoint(result, result["snapshot"], args, out or "interrupted.safetensors")
        click.echo(f"interrupted: finished the current batch and saved the best model so far to "
                   f"{path}; continue with `neuralab train --resume {path}`", err=True)
        sys.exit(130)
    if result.get("diverged"):
        click.echo(f"warning: {result['diverged']}", err=True)
    click.echo(result["report"])
    if out:
        path = save_trained(result, out)
        click.echo(f"saved the model to {path}")


def train_on(data: Any, name: str, hidden: tuple[int, ...], activation: str = "relu",
             dropout: float = 0.0, norm: str | None = None, optimizer: str = "adam",
             lr: float = 1e-3, l2: float = 0.0, epochs: int = 100, batch_size: int = 64,
             patience: int = 10, validation_split: float = 0.1, seed: int = 0,
             device: str = "cpu", progress: bool = True, resume: Any = None,
             interruptible: bool = False) -> dict:
    """The work behind ``neuralab train``: returns the model, scalers, scores and a report."""
    import numpy as np  # noqa: PLC0415

    from . import callbacks as cb  # noqa: PLC0415
    from . import nn  # noqa: PLC0415
    from .data import StandardScaler, as_features, train_val_split  # noqa: PLC0415
    from .metrics import get_metric  # noqa: PLC0415
    from .training import fit, predict  # noqa: PLC0415

    task = _task_of(data)
    X_train = as_features(data.X_train).reshape(len(data.X_train), -1)
    X_test = as_features(data.X_test).reshape(len(data.X_test), -1)
    y_train, y_test = np.asarray(data.y_train), np.asarray(data.y_test)
    rng = np.random.default_rng(seed)
    X_tr, X_val, y_tr, y_val = train_val_split(X_train, y_train, validation_split=validation_split, seed=rng)

    scaler = StandardScaler().fit(X_tr)  # training part only: no peeking at validation or test
    median = np.median(X_tr, axis=0)  # the saved model imputes a missing number with it
    X_tr, X_val, X_te = scaler.transform(X_tr), scaler.transform(X_val), scaler.transform(X_test)
    if task == "classification":
        y_tr, y_val, y_te = (a.astype(np.int64) for a in (y_tr, y_val, y_test))
        n_out = int(max(y_tr.max(), y_val.max(), y_test.max())) + 1
        loss, metric_names = "cross_entropy", ["accuracy"]
        y_mean, y_scale = 0.0, 1.0
    else:
        y_tr, y_val, y_te = (a.astype(np.float32) for a in (y_tr, y_val, y_test))
        n_out = 1 if y_tr.ndim == 1 else y_tr.shape[1]
        loss, metric_names = "mse", ["mse", "mae", "r2"]
        # Train on standardised targets (well-scaled gradients); report in the data's units.
        y_mean, y_scale = float(y_tr.mean()), float(y_tr.std()) or 1.0
    scale_y = (lambda a: (a - y_mean) / y_scale) if task == "regression" else (lambda a: a)

    model = nn.MLP(X_tr.shape[1], hidden=hidden, out_features=n_out, activation=activation,
                   dropout=dropout, norm=norm, rng=np.random.default_rng(seed))
    callbacks: list = []
    if patience:
        callbacks.append(cb.EarlyStopping(monitor="val_loss", patience=patience, restore_best=True))
    if progress:
        callbacks.append(cb.ProgressBar())
    from .cli_resume import ResumableRun  # noqa: PLC0415
    from .training import make_optimizer  # noqa: PLC0415
    opt = make_optimizer(model, optimizer, lr)  # an object, so a checkpoint can restore its state
    first_epoch = resume[0]["epoch"] if resume is not None else 0
    run = ResumableRun(rng, callbacks[0] if patience else None, first_epoch, resume)
    nan_guard = cb.TerminateOnNaN()
    callbacks += [run, nan_guard]
    if interruptible:
        run.install()
        click.echo(f"training{' (resumed at epoch ' + str(first_epoch + 1) + ')' if resume else ''}"
                   f"... Ctrl-C stops after the current batch and saves the model so far",
                   err=True)
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # TerminateOnNaN's; reported below
            hist = fit(model, X_tr, scale_y(y_tr), loss=loss, optimizer=opt, l2=l2,
                       epochs=epochs - first_epoch, batch_size=batch_size,
                       validation_data=(X_val, scale_y(y_val)), callbacks=callbacks, seed=rng,
                       verbose=0, device=device)
    finally:
        run.uninstall()
    seconds = time.perf_counter() - start
    if nan_guard.message and run.snapshot is not None:
        # Diverged: unless early stopping restored a finite best epoch, go back to the weights
        # at the start of the epoch that blew up.
        if not all(np.isfinite(p.data).all() for p in model.parameters()):
            model.load_state_dict({k[len("model."):]: v for k, v in run.snapshot[1].items()
                                   if k.startswith("model.")})

    def scores(X: Any, y: Any) -> dict:
        out = predict(model, X)
        if task == "regression":
            out = out * y_scale + y_mean
        values = {}
        if task == "classification":
            values["loss"] = _cross_entropy(out, y)
        for m_name in metric_names:
            m = get_metric(m_name)
            m.update(out, y)
            values[m_name] = m.result()
        return values

    table = {"train": scores(X_tr, y_tr), "validation": scores(X_val, y_val), "test": scores(X_te, y_te)}
    early = callbacks[0] if patience else None
    n_epochs = len(hist.history["loss"]) + first_epoch
    lines = [
        f"dataset {name}: {len(X_tr)} train / {len(X_val)} validation / {len(X_te)} test samples, "
        f"{X_tr.shape[1]} features, " + (f"{n_out} classes" if task == "classification" else "regression"),
        f"model   MLP {'-'.join(str(s) for s in (X_tr.shape[1], *hidden, n_out))} {activation}"
        + (f", dropout {dropout}" if dropout else "") + (f", {norm} norm" if norm else "")
        + f" ({model.num_parameters():,} parameters), {optimizer} lr={lr:g}, batch {batch_size}",
        f"trained {n_epochs} epoch{'s' if n_epochs != 1 else ''} in {seconds:.1f} s"
        + (f" (early stopping kept epoch {early.best_epoch + 1})"
           if early is not None and early.best_epoch is not None else ""),
        "",
        _format_table(table),
    ]
    return {"model": model, "scaler": scaler, "task": task, "scores": table, "seconds": seconds,
            "epochs": n_epochs, "history": hist.history, "report": "\n".join(lines), "name": name,
            "target_scaler": {"mean": y_mean, "scale": y_scale}, "n_out": n_out,
            "interrupted": run.interrupted, "snapshot": run.snapshot,
            "diverged": nan_guard.message, "median": median, "n_train": len(X_tr),
            "feature_names": _columns_of(data),
            "classes": getattr(data, "target_names", None),
            "params": {"hidden": hidden, "activation": activation, "dropout": dropout,
                       "norm": norm, "optimizer": optimizer, "lr": lr, "l2": l2,
                       "epochs": epochs, "batch_size": batch_size, "seed": seed,
                       "device": device}}


def _columns_of(data: Any) -> list[str]:
    from .cli_files import dataset_columns  # noqa: PLC0415

    return dataset_columns(data)


def _cross_entropy(logits: Any, y: Any) -> float:
    import numpy as np  # noqa: PLC0415

    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(y)), y].mean())


def _format_table(table: dict[str, dict[str, float]]) -> str:
    cols = list(next(iter(table.values())))
    lines = [f"{'':<11}" + "".join(f"{c:>11}" for c in cols)]
    for split, values in table.items():
        lines.append(f"{split:<11}" + "".join(f"{values[c]:>11.4f}" for c in cols))
    return "\n".join(lines)


def trained_model(result: dict) -> Any:
    """The network of ``train_on`` as a CLI model (``preprocessing.TabularModel``).

    Its ``predict`` takes a table with the data set's columns (``neuralab predict m iris``),
    imputes and standardises them with the training part's statistics, and gives class
    names, or values in the target's own units; ``neuralab evaluate``, ``info``, ``explain``
    and ``export`` take it like a model trained on a file.
    Example: ``nl.save(trained_model(train_on(data, "iris", hidden=(16,))), "iris.safetensors")``
    """
    from .estimators import MLPClassifier, MLPRegressor  # noqa: PLC0415
    from .preprocessing import TabularModel, TabularPreprocessor  # noqa: PLC0415

    scaler, p, task = result["scaler"], result["params"], result["task"]
    n_features = len(scaler.mean_)
    names = result["feature_names"]  # as `neuralab predict MODEL NAME` reads the data set
    classes = result.get("classes")
    if task == "classification" and (classes is None or len(classes) != result["n_out"]):
        classes = list(range(result["n_out"]))
    ts = result["target_scaler"]
    prep = TabularPreprocessor.numeric(names, scaler.mean_, scaler.scale_, result["median"],
                                       task=task, classes=classes, target_mean=ts["mean"],
                                       target_std=ts["scale"])
    solver = p["optimizer"] if p["optimizer"] in ("adam", "adamw", "sgd", "rmsprop", "lbfgs") else "adam"
    params = {"hidden_layer_sizes": tuple(p["hidden"]), "activation": p["activation"],
              "dropout": p["dropout"], "batch_norm": p["norm"] == "batch", "solver": solver,
              "learning_rate_init": p["lr"], "max_iter": p["epochs"],
              # nl.fit adds l2/2 ||W||^2 per batch, sklearn alpha/2 ||W||^2 / batch size
              "alpha": float(p["l2"]) * p["batch_size"],
              "batch_size": p["batch_size"], "random_state": p["seed"], "device": p["device"]}
    # The estimator reports sklearn's losses: cross-entropy as is, squared error halved.
    curve = [v * (0.5 if task == "regression" else 1.0) for v in result["history"].get("loss", [])]
    cls = MLPClassifier if task == "classification" else MLPRegressor
    est = cls.from_network(result["model"], n_features,
                           classes=list(range(result["n_out"])) if task == "classification" else None,
                           loss_curve=curve, n_samples=result["n_train"], **params)
    est.n_iter_ = result["epochs"]  # also counts the epochs before a --resume
    test = result["scores"]["test"]
    metric = "accuracy" if task == "classification" else "r2"
    info = {"data": result["name"], "rows": int(result["n_train"]), "target": "target",
            "task": task, "epochs": result["epochs"], "optimizer": p["optimizer"],
            "norm": p["norm"], "l2": p["l2"], "seconds": round(result["seconds"], 3),
            f"test_{metric}": round(float(test[metric]), 6),
            "trained_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": "neuralab train"}
    return TabularModel(prep, est, info=info)


def save_trained(result: dict, path: str, arrays: dict | None = None) -> str:
    """Save the model of ``train_on`` (a CLI model, see ``trained_model``) with its scalers
    and scores as metadata; ``arrays`` are a checkpoint's extra arrays."""
    from .io import save  # noqa: PLC0415

    scaler = result["scaler"]
    meta = {"command": "neuralab train", "dataset": result["name"], "task": result["task"],
            "input_scaler": {"mean": scaler.mean_.tolist(), "scale": scaler.scale_.tolist()},
            "target_scaler": result["target_scaler"], "scores": result["scores"],
            "epochs": result["epochs"], "seconds": round(result["seconds"], 3)}
    if result.get("checkpoint"):
        meta["checkpoint"] = result["checkpoint"]
    return str(save(trained_model(result), path, metadata=meta, arrays=arrays))


# Commands on the user's own files (predict, evaluate, info, export) live in cli_files.py.
from . import cli_files as _cli_files  # noqa: E402

_cli_files.register(main)

# `neuralab recommend ...` and `neuralab translate-dates` (applications) live in _apps_cli.py.
# (Not when this file runs as __main__, `python -m neuralab.cli`: _apps_cli imports the
# package module neuralab.cli, whose own import of _apps_cli would find it half-made.)
if __name__ != "__main__":
    from ._apps_cli import register as _register_apps  # noqa: E402

    _register_apps(main)

# `neuralab tune` (hyperparameter search) lives in tuning.py, which imports only click here.
from .tuning import register as _register_tune  # noqa: E402

_register_tune(main)

# `neuralab lab` (the labs) lives in labs/_cli.py.
from .labs._cli import register as _register_lab  # noqa: E402

_register_lab(main)

# `neuralab explain` lives in cli_explain.py, `neuralab playground` in playground/command.py.
from .cli_explain import register as _register_explain  # noqa: E402
from .playground.command import register as _register_playground  # noqa: E402

_register_explain(main)
_register_playground(main)


if __name__ == "__main__":  # pragma: no cover
    from neuralab.cli import main as _package_main  # every command, registered once

    sys.exit(_package_main())
