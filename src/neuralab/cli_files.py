"""The command line on a user's own files: train, predict, evaluate, info and export.

The click commands live here with the logic they run; ``cli.py`` registers them on the
``neuralab`` group. Every command exits 0 on success, 2 with one ``Error: ...`` line on bad
usage or bad input (unreadable file, unknown column, damaged model file), and 1 on an
unexpected error.

Example (shell):
    neuralab train houses.csv --target price --hidden 64,32 --epochs 50 --out price.safetensors
    neuralab predict price.safetensors new_houses.csv --out predictions.csv
"""
from __future__ import annotations

import csv
import io as _io
import json
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import click
import numpy as np

# Built-in tables usable in place of a file: scikit-learn's bundled sets (offline).
BUILTIN_TABLES = {
    "iris": "load_iris", "wine": "load_wine", "breast_cancer": "load_breast_cancer",
    "digits": "load_digits", "diabetes": "load_diabetes",
}
PARQUET_SUFFIXES = {".parquet", ".pq"}


class BadInput(click.ClickException):
    """Bad input or usage: one clear line and exit code 2 (click's code for usage errors)."""

    exit_code = 2


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the errors a user can fix (files, columns, model files) into exit code 2."""
    from .io import ModelFileError
    from .preprocessing import PreprocessingError
    try:
        yield
    except (ModelFileError, PreprocessingError, FileNotFoundError, IsADirectoryError,
            UnicodeDecodeError) as e:
        raise BadInput(_one_line(e)) from None


@contextmanager
def command_errors() -> Iterator[None]:
    """A command's outer guard: user errors exit 2, anything unforeseen exits 1 with one line
    (set NEURALAB_DEBUG=1 to see the traceback)."""
    import os
    try:
        with user_errors():
            yield
    except click.ClickException:
        raise
    except (ValueError, TypeError) as e:  # e.g. data a model cannot take
        if os.environ.get("NEURALAB_DEBUG"):
            raise
        raise BadInput(_one_line(e)) from None
    except Exception as e:  # noqa: BLE001 - the last line of defence of a command-line tool
        if os.environ.get("NEURALAB_DEBUG"):
            raise
        raise click.ClickException(f"unexpected {type(e).__name__}: {_one_line(e)} "
                                   f"(set NEURALAB_DEBUG=1 to see the traceback)") from None


@contextmanager
def echo_warnings() -> Iterator[None]:
    """Show warnings (e.g. unknown categories) as one 'warning:' line each on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    seen = set()
    for w in caught:
        if issubclass(w.category, (DeprecationWarning, FutureWarning)):
            continue
        msg = str(w.message)
        if msg not in seen:
            seen.add(msg)
            click.echo(f"warning: {msg}", err=True)


def _one_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    if isinstance(e, FileNotFoundError) and e.filename:
        text = f"no such file: {e.filename}"
    return " ".join(text.split())


# ============================================================================ reading data
def read_table(source: str, sep: str | None = None):
    """A DataFrame from a CSV/TSV/Parquet path or a built-in table name ("iris", ...).

    The delimiter of a text file is sniffed (comma, semicolon, tab, pipe) unless ``sep``
    is given; a ``.tsv`` file defaults to tabs. Example: ``read_table("data.csv")``
    """
    import pandas as pd
    path = Path(source)
    if not path.exists():
        if source in BUILTIN_TABLES:
            return builtin_table(source)
        if _dataset_name(source):
            return dataset_table(source)
        raise BadInput(f"no such file or built-in dataset: {source!r} (built-ins: "
                       f"{', '.join(BUILTIN_TABLES)})")
    if path.is_dir():
        raise BadInput(f"{source} is a folder; expected a CSV, TSV or Parquet file")
    try:
        if path.suffix.lower() in PARQUET_SUFFIXES:
            frame = pd.read_parquet(path)
        else:
            is_tsv = path.suffix.lower() in (".tsv", ".tab")
            if sep is None:
                sep = "\t" if is_tsv else sniff_delimiter(path)
            # TSV has no quoting (a field cannot hold a tab or newline); reading '"' as a quote
            # would merge lines of free text such as SMS messages.
            quoting = csv.QUOTE_NONE if is_tsv and sep == "\t" else csv.QUOTE_MINIMAL
            frame = pd.read_csv(path, sep=sep, encoding="utf-8-sig", skipinitialspace=True,
                                quoting=quoting)
    except UnicodeDecodeError:
        raise BadInput(f"{source}: not UTF-8 text (is it a CSV file?)") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, OSError) as e:
        raise BadInput(f"{source}: cannot read it as a table ({_one_line(e)})") from None
    if frame.shape[1] == 0 or len(frame) == 0:
        raise BadInput(f"{source}: the table has no rows or no columns")
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def sniff_delimiter(path: Path) -> str:
    """The most plausible delimiter of a text table among , ; tab and |."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        sample = f.read(64 * 1024)
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        # The sniffer gives up on e.g. one-column files; count separators in the header.
        header = sample.splitlines()[0] if sample else ""
        counts = {d: header.count(d) for d in ",;\t|"}
        best = max(counts, key=counts.get)
        return best if counts[best] else ","


def builtin_table(name: str):
    """One of scikit-learn's bundled datasets as a DataFrame with a 'target' column."""
    import sklearn.datasets
    bunch = getattr(sklearn.datasets, BUILTIN_TABLES[name])(as_frame=True)
    frame = bunch.frame.copy()
    if name in ("iris", "wine", "breast_cancer"):
        frame["target"] = np.asarray(bunch.target_names)[bunch.target.to_numpy()]
    return frame


def _dataset_name(name: str) -> bool:
    """True when NAME is one of `neuralab datasets` (e.g. "moons", "mnist1d")."""
    from . import datasets
    try:
        datasets.describe(name)
    except ValueError:
        return False
    return True


def dataset_columns(data: Any) -> list[str]:
    """Column names for a ``datasets.Dataset``'s features: its own when they fit, else x0, x1..."""
    n = int(np.prod(data.X_train.shape[1:]))
    names = [str(c) for c in getattr(data, "feature_names", None) or []]
    return names if len(names) == n and len(set(names)) == n else [f"x{i}" for i in range(n)]


def dataset_table(name: str):
    """A data set of `neuralab datasets` (train and test parts together) as a DataFrame with
    a 'target' column holding class names (or values), as ``neuralab train --dataset`` saw it.

    Example: ``dataset_table("moons").columns.tolist()  # ['x0', 'x1', 'target']``
    """
    import pandas as pd
    from . import datasets
    data = datasets.load(name)
    parts = [(data.X_train, data.y_train)] + ([] if data.X_test is None else [(data.X_test, data.y_test)])
    X = np.concatenate([np.asarray(x).reshape(len(x), -1) for x, _ in parts])
    y = np.concatenate([np.asarray(t) for _, t in parts])
    frame = pd.DataFrame(X, columns=dataset_columns(data))
    names = data.target_names
    if data.task == "classification" and names and y.ndim == 1 and int(y.max()) < len(names):
        y = np.asarray(names, dtype=object)[y.astype(np.int64)]
    frame["target"] = y if y.ndim == 1 else list(y)
    return frame


def _split_list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_hidden(text: str) -> tuple[int, ...]:
    """``"128,64"`` -> ``(128, 64)``; ``""`` or ``"0"`` -> no hidden layer."""
    try:
        sizes = tuple(int(t) for t in text.replace(" ", "").split(",") if t)
    except ValueError:
        raise BadInput(f"--hidden expects widths separated by commas, e.g. 128,64; got {text!r}") from None
    if any(s < 0 for s in sizes):
        raise BadInput(f"--hidden widths must be positive, got {text!r}")
    if 0 in sizes and len(sizes) > 1:
        raise BadInput(f"--hidden has a layer of width 0 in {text!r}; widths must be positive "
                       f"(--hidden 0 alone means no hidden layer)")
    return tuple(s for s in sizes if s > 0)


# ============================================================================ train
def estimator_params(hidden: str = "128,128", activation: str = "relu", dropout: float = 0.0,
                     norm: str | None = None, batch_norm: bool = False, residual: bool = False,
                     optimizer: str = "adam", lr: float = 1e-3, l2: float = 0.0,
                     epochs: int = 100, batch_size: Any = 64, early_stopping: bool | None = None,
                     patience: int = 10, validation_split: float = 0.1, seed: int = 0,
                     device: str = "cpu", **unused: Any) -> dict:
    """The MLPClassifier/MLPRegressor parameters that ``neuralab train``'s flags describe."""
    if norm == "layer":
        raise BadInput("--norm layer is not available when training on a DATA file; "
                       "use --batch-norm (or --norm batch)")
    if optimizer not in ("adam", "adamw", "sgd", "rmsprop", "lbfgs"):
        raise BadInput(f"--optimizer {optimizer} is not available when training on a DATA file; "
                       f"choose adam, adamw, sgd, rmsprop or lbfgs")
    if batch_size != "auto":
        try:
            batch_size = int(batch_size)
        except ValueError:
            raise BadInput(f"--batch-size expects a number or 'auto', got {batch_size!r}") from None
    stop = bool(early_stopping)  # off unless asked: small files have little to hold out
    return {"hidden_layer_sizes": parse_hidden(hidden), "activation": activation,
            "dropout": dropout, "batch_norm": bool(batch_norm or norm == "batch"),
            "residual": residual, "solver": optimizer, "learning_rate_init": lr, "alpha": l2,
            "max_iter": epochs, "batch_size": batch_size, "early_stopping": stop,
            "n_iter_no_change": max(int(patience), 1), "validation_fraction": validation_split,
            "random_state": seed, "device": device}


def is_builtin_name(data: str) -> bool:
    """True when DATA names a built-in table rather than an existing file."""
    return not Path(data).exists() and data in BUILTIN_TABLES


def train_file(data: str, target: str | None = None, task: str | None = None,
               features: str | None = None, drop: str | None = None, sep: str | None = None,
               out: str | None = "model.safetensors", plot: str | None = None,
               text: str | None = None, **flags: Any) -> Any:
    """``neuralab train DATA --target COL``: preprocess, fit, save; returns the TabularModel.

    ``flags`` are ``neuralab train``'s options (see ``estimator_params``).
    Example: ``train_file("houses.csv", target="price", hidden="64,32", epochs=50)``
    """
    from .estimators import MLPClassifier, MLPRegressor
    params = estimator_params(**flags)
    out = out or "model.safetensors"
    from .io import save
    from .preprocessing import TabularModel, TabularPreprocessor
    with user_errors():
        frame = read_table(data, sep=sep)
        if target is None:
            if "target" in frame.columns and not Path(data).exists():
                target = "target"
            else:
                raise BadInput(f"--target is required: which column should be predicted? "
                               f"(columns: {', '.join(map(str, frame.columns[:20]))})")
        prep = TabularPreprocessor(features=_split_list(features), drop=_split_list(drop) or (),
                                   task=task, text=_split_list(text) or ()).fit(frame, target=target)
        for notice in prep.notices:
            click.echo(f"note: {notice}", err=True)
        frame = frame[frame[target].notna()]
        X, y = prep.transform(frame), prep.transform_target(frame)
    task = prep.spec["task"]
    if task == "regression":
        y = prep.scale_target(y)
    est = (MLPClassifier if task == "classification" else MLPRegressor)(**params)
    # Ctrl-C: the estimator stops after the current batch (keeping its best weights) and
    # the model is saved below. L-BFGS has no batches: there Ctrl-C stops at once.
    stopper = None
    if params["solver"] != "lbfgs":
        from .cli_resume import SigintStop
        stopper = SigintStop()
        est.set_params(callbacks=[stopper])
    click.echo(f"training {type(est).__name__} on {len(X)} rows x {X.shape[1]} features "
               f"({len(prep.input_columns)} columns), target {target!r} ({task}"
               + (f", {len(prep.spec['classes'])} classes" if task == "classification" else "") + ")"
               + ("; Ctrl-C stops after the current batch and saves the model so far"
                  if stopper else ""), err=True)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning at the last epoch is expected
        if stopper:
            stopper.install()
        try:
            est.fit(X, y)
        except ValueError as e:  # parameter validation, e.g. a too-small data set
            raise BadInput(_one_line(e)) from None
        finally:
            if stopper:
                stopper.uninstall()
            est.set_params(callbacks=None)  # the saved model keeps no handler
    seconds = time.perf_counter() - start
    interrupted = bool(getattr(est, "interrupted_", False))
    score = float(est.score(X, y))
    metric = "accuracy" if task == "classification" else "R2"
    info = {"data": Path(data).name, "rows": int(len(X)), "target": target, "task": task,
            "seconds": round(seconds, 3), f"train_{metric.lower()}": round(score, 6),
            "trained_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": "neuralab train"}
    if interrupted:
        info["interrupted"] = f"after {est.n_iter_} complete epoch(s)"
    model = TabularModel(prep, est, info=info)
    save(model, out)
    if interrupted:
        click.echo(f"interrupted: finished the current batch and saved the best model so far "
                   f"({est.n_iter_} complete epoch(s), training {metric} {score:.4f}) to {out}",
                   err=True)
        sys.exit(130)  # the shell's code for Ctrl-C
    epochs = getattr(est, "n_iter_", "?")
    loss = getattr(est, "loss_", None)
    click.echo(f"epochs: {epochs}  final loss: {loss:.4f}  training {metric}: {score:.4f}  "
               f"time: {seconds:.2f}s" if loss is not None else
               f"epochs: {epochs}  training {metric}: {score:.4f}  time: {seconds:.2f}s")
    click.echo(f"saved {out}")
    if plot:
        plot_curves(est, plot)
        click.echo(f"saved learning curves to {plot}")
    return model


def plot_curves(est: Any, path: str) -> None:
    """Training loss (and validation score, with early stopping) per epoch, as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    loss = getattr(est, "loss_curve_", None)
    if not loss:
        raise BadInput("--plot needs per-epoch losses, which the lbfgs solver does not record")
    val = getattr(est, "validation_scores_", None)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(np.arange(1, len(loss) + 1), loss, label="training loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if val:
        ax2 = ax.twinx()
        ax2.plot(np.arange(1, len(val) + 1), val, color="tab:orange", label="validation score")
        ax2.set_ylabel("validation score")
        fig.legend(loc="upper right")
    else:
        ax.legend()
    ax.set_title("learning curves")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ============================================================================ predict / evaluate
def load_model(path: str) -> Any:
    """A model file saved by ``neuralab train`` or ``nl.save`` (estimator or CLI model)."""
    from .io import load
    with user_errors():
        model = load(path)
    if not hasattr(model, "predict"):
        raise BadInput(f"{path} holds a bare network ({type(model).__name__}); predict and "
                       f"evaluate need a model from `neuralab train` or a saved estimator")
    return model


def _model_inputs(model: Any, frame) -> Any:
    """What the model's predict takes: the frame (CLI model) or its numeric columns."""
    from .preprocessing import TabularModel
    if isinstance(model, TabularModel):
        return frame
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        missing = [n for n in names if n not in frame.columns]
        if missing:
            raise BadInput(f"column(s) {missing[:8]} used by the model are missing from the data")
        return frame[list(names)]
    n = getattr(model, "n_features_in_", frame.shape[1])
    numeric = frame.select_dtypes("number")
    if numeric.shape[1] < n:
        raise BadInput(f"the model expects {n} numeric columns, the data has {numeric.shape[1]}")
    return numeric.iloc[:, :n].to_numpy(np.float32)


def predict_frame(model: Any, frame, proba: bool = False):
    """Predictions (and class probabilities) for each row, as a DataFrame."""
    import pandas as pd
    X = _model_inputs(model, frame)
    with user_errors():
        labels = model.predict(X)
        out = pd.DataFrame({"prediction": np.asarray(labels)}, index=frame.index)
        if proba:
            if not hasattr(model, "predict_proba") or getattr(model, "task", "") == "regression":
                raise BadInput("--proba needs a classification model")
            p = model.predict_proba(X)
            classes = model.classes if hasattr(model, "preprocessor") else list(model.classes_)
            for j, c in enumerate(classes):
                out[f"proba_{c}"] = p[:, j]
    return out


def evaluate_frame(model: Any, frame, target: str | None = None) -> dict:
    """Metrics of ``model`` on a table that holds the target column."""
    from sklearn import metrics
    from .preprocessing import TabularModel, _category_key
    if isinstance(model, TabularModel):
        target = target or model.preprocessor.spec["target"]
        task = model.task
    else:
        task = "classification" if hasattr(model, "classes_") else "regression"
    if target is None or target not in frame.columns:
        raise BadInput(f"the data has no target column {target!r} to evaluate against "
                       f"(use --target)")
    known = frame[frame[target].notna()]
    if len(known) < len(frame):
        click.echo(f"note: {len(frame) - len(known)} row(s) without a target value left out",
                   err=True)
    if len(known) == 0:
        raise BadInput(f"target column {target!r} has no values")
    pred = np.asarray(model.predict(_model_inputs(model, known)))
    y = known[target]
    if task == "regression":
        try:
            y_true = y.to_numpy(dtype=np.float64)
        except (ValueError, TypeError):
            raise BadInput(f"target column {target!r} holds non-numbers") from None
        return {"task": task, "rows": int(len(known)),
                "mse": float(metrics.mean_squared_error(y_true, pred)),
                "mae": float(metrics.mean_absolute_error(y_true, pred)),
                "r2": float(metrics.r2_score(y_true, pred))}
    # Compare labels as text, so 1 read from a CSV equals the class 1 seen in training.
    y_true = np.array([_category_key(v) for v in y.to_numpy()], dtype=object)
    y_pred = np.array([_category_key(v) for v in pred], dtype=object)
    classes = model.classes if isinstance(model, TabularModel) else list(model.classes_)
    labels = [_category_key(c) for c in classes]
    labels += sorted(set(y_true) - set(labels))  # labels never seen in training
    p, r, f, support = metrics.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0)
    return {"task": task, "rows": int(len(known)),
            "accuracy": float(metrics.accuracy_score(y_true, y_pred)), "labels": labels,
            "per_class": [{"label": lab, "precision": float(p[i]), "recall": float(r[i]),
                           "f1": float(f[i]), "support": int(support[i])}
                          for i, lab in enumerate(labels)],
            "confusion_matrix": metrics.confusion_matrix(y_true, y_pred, labels=labels).tolist()}


def format_metrics(result: dict) -> str:
    """A plain-text table of ``evaluate_frame``'s result."""
    lines = []
    if result["task"] == "regression":
        lines.append(f"rows: {result['rows']}")
        for k in ("mse", "mae", "r2"):
            lines.append(f"{k.upper():<4} {result[k]:.6g}")
        return "\n".join(lines)
    lines.append(f"rows: {result['rows']}   accuracy: {result['accuracy']:.4f}")
    width = max(8, *(len(str(c["label"])) for c in result["per_class"]))
    lines.append("")
    lines.append(f"{'class':<{width}}  precision  recall  f1      support")
    for c in result["per_class"]:
        lines.append(f"{c['label']:<{width}}  {c['precision']:<9.4f}  {c['recall']:<6.4f}  "
                     f"{c['f1']:<6.4f}  {c['support']}")
    lines.append("")
    lines.append("confusion matrix (rows: true, columns: predicted)")
    labels = [str(lab) for lab in result["labels"]]
    cw = max(5, *(len(lab) for lab in labels))
    lines.append(" " * (width + 2) + "  ".join(f"{lab:>{cw}}" for lab in labels))
    for lab, row in zip(labels, result["confusion_matrix"]):
        lines.append(f"{lab:<{width}}  " + "  ".join(f"{v:>{cw}}" for v in row))
    return "\n".join(lines)


# ============================================================================ info
def model_info(path: str) -> str:
    """The text ``neuralab info`` prints: kind, architecture, parameters, preprocessing, training."""
    from .io import load, read_metadata
    from .nn.module import Module
    from .preprocessing import TabularModel
    with user_errors():
        meta = read_metadata(path)
        model = load(path)
    size = Path(path).stat().st_size
    lines = [f"file: {path} ({size:,} bytes)",
             f"format: neuralab model file v{meta['format_version']}, written by neuralab "
             f"{meta['neuralab_version']}",
             f"kind: {meta['kind']}"]
    est = model.estimator if isinstance(model, TabularModel) else model
    net = est if isinstance(est, Module) else next(
        (v for v in vars(est).values() if isinstance(v, Module)), None)
    if net is None and not isinstance(est, Module):  # one network per bag (TabularClassifier)
        net = next((v[0] for v in vars(est).values() if isinstance(v, list) and v
                    and isinstance(v[0], Module)), None)
    if not isinstance(est, Module):
        params = est.get_params(deep=False)
        shown = {k: params[k] for k in ("hidden_layer_sizes", "activation", "solver", "alpha",
                                        "learning_rate_init", "max_iter", "batch_size", "dropout",
                                        "batch_norm", "residual", "preset", "n_epochs",
                                        "n_ensemble", "n_bags", "hidden", "random_state")
                 if k in params}
        lines.append(f"estimator: {type(est).__name__}(" +
                     ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")")
    if net is not None:
        lines.append(f"parameters: {net.num_parameters():,}")
        lines.append("architecture:")
        lines.extend("  " + line for line in repr(net).splitlines())
    elif hasattr(est, "coef_"):
        lines.append(f"parameters: {np.size(est.coef_) + np.size(est.intercept_):,}")
    if isinstance(model, TabularModel):
        spec = model.preprocessor.spec
        lines.append(f"target: {spec['target']!r} ({spec['task']})")
        if spec.get("classes") is not None:
            lines.append(f"classes: {', '.join(map(str, spec['classes']))}")
        lines.append(f"features: {len(model.preprocessor.feature_names)} from "
                     f"{len(model.preprocessor.input_columns)} columns")
        lines.append("preprocessing:")
        described = model.preprocessor.describe()
        shown = described if len(described) <= 24 else described[:20]  # 784 pixels: a summary
        lines.extend("  " + line for line in shown)
        if len(shown) < len(described):
            lines.append(f"  ... and {len(described) - len(shown)} more columns")
    elif meta.get("classes") is not None:
        lines.append(f"classes: {', '.join(map(str, meta['classes']))}")
    summary = dict(meta.get("training") or {})
    if isinstance(model, TabularModel):
        summary.update({k: v for k, v in model.info.items() if k not in ("command",)})
    if summary:
        lines.append("training: " + ", ".join(f"{k}={_fmt(v)}" for k, v in summary.items()))
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


# ============================================================================ commands
@click.command("predict")
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("data")
@click.option("--out", "-o", type=click.Path(dir_okay=False),
              help="Write predictions to this CSV (default: print them).")
@click.option("--proba", is_flag=True, help="Add one probability column per class.")
@click.option("--sep", help="Column delimiter of a text file (default: detected).")
def predict_command(model: str, data: str, out: str | None, proba: bool, sep: str | None) -> None:
    """Predict each row of DATA (CSV, TSV or Parquet) with a trained MODEL.

    \b
    Example:
      neuralab predict model.safetensors new.csv --out preds.csv --proba
    """
    with command_errors():
        m = load_model(model)
        frame = read_table(data, sep=sep)
        with echo_warnings():
            preds = predict_frame(m, frame, proba=proba)
    if out:
        preds.to_csv(out, index=False)
        click.echo(f"wrote {len(preds)} predictions to {out}", err=True)
    else:
        buf = _io.StringIO()
        preds.to_csv(buf, index=False)
        click.echo(buf.getvalue(), nl=False)


@click.command("evaluate")
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("data")
@click.option("--target", "-t", help="Target column (default: the one the model was trained on).")
@click.option("--sep", help="Column delimiter of a text file (default: detected).")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def evaluate_command(model: str, data: str, target: str | None, sep: str | None,
                     as_json: bool) -> None:
    """Score a trained MODEL on labelled DATA: accuracy, per-class precision/recall/F1 and the
    confusion matrix (classification), or MSE/MAE/R2 (regression).

    \b
    Example:
      neuralab evaluate model.safetensors test.csv
    """
    with command_errors():
        m = load_model(model)
        frame = read_table(data, sep=sep)
        with echo_warnings():
            result = evaluate_frame(m, frame, target)
    click.echo(json.dumps(result, indent=2) if as_json else format_metrics(result))


@click.command("info")
@click.argument("model", type=click.Path(dir_okay=False))
def info_command(model: str) -> None:
    """Describe a model file: architecture, parameter count, preprocessing, training summary.

    \b
    Example:
      neuralab info model.safetensors
    """
    with command_errors():
        text = model_info(model)
    click.echo(text)


@click.command("export")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--onnx", "onnx_path", required=True, type=click.Path(dir_okay=False),
              help="ONNX file to write.")
@click.option("--opset", default=17, show_default=True, type=click.IntRange(17),
              help="ONNX opset (>= 17; 20+ uses the native Gelu op).")
def export_command(model: str, onnx_path: str, opset: int) -> None:
    """Export a trained MODEL to ONNX (preprocessing's imputation and scaling included).

    \b
    Example:
      neuralab export model.safetensors --onnx model.onnx
    """
    from .io import export_onnx, load
    from .preprocessing import TabularModel
    with command_errors():
        m = load(model)
        export_onnx(m, onnx_path, opset=opset)
    click.echo(f"wrote {onnx_path}")
    if isinstance(m, TabularModel):
        click.echo(f"input 'features': {len(m.preprocessor.feature_names)} columns "
                   f"({', '.join(m.preprocessor.feature_names[:6])}"
                   f"{', ...' if len(m.preprocessor.feature_names) > 6 else ''}); "
                   f"missing numbers may be NaN", err=True)


FILE_COMMANDS: Sequence[click.Command] = (predict_command, evaluate_command, info_command,
                                          export_command)


def register(group: click.Group) -> None:
    """Add predict, evaluate, info and export to the ``neuralab`` group."""
    for command in FILE_COMMANDS:
        if command.name not in group.commands:
            group.add_command(command)

