"""Commands on model files: predict, evaluate, info and export.

Every command exits 0 on success, 2 with one ``Error: ...`` line on bad usage or bad input
(unreadable file, unknown column, damaged model file, a missing extra), and 1 on an
unexpected error.

Example (shell):
    neuralab train houses.csv --target price --hidden 64,32 --epochs 50 --out price.safetensors
    neuralab predict price.safetensors new_houses.csv --out predictions.csv
"""
from __future__ import annotations

import io as _io
import json
from pathlib import Path
from typing import Any

import click
import numpy as np

from ._errors import BadInput, echo_warnings, guard, require
from ..io import check_output
from ..tuning import plain
from ._tables import format_metrics


# ============================================================================ predict / evaluate
def load_model(path: str) -> Any:
    """A model file saved by ``neuralab train`` or ``nl.save`` (estimator or CLI model)."""
    from ..io import load
    model = load(path)
    if not hasattr(model, "predict"):
        raise BadInput(f"{path} holds a bare network ({type(model).__name__}); predict and "
                       f"evaluate need a model from `neuralab train` or a saved estimator")
    return model


def stored_target(path: str) -> str | None:
    """The target column a `neuralab train` file of an estimator names in its metadata, if any.

    Example: ``stored_target("churn.safetensors")  # 'churned'``
    """
    from ..io import read_metadata
    user = read_metadata(path).get("user")
    name = user.get("target") if isinstance(user, dict) else None
    return name if isinstance(name, str) else None


def _model_inputs(model: Any, frame) -> Any:
    """What the model's predict takes: the frame (CLI model) or its numeric columns."""
    from ..preprocessing import TabularModel
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
    from ..preprocessing import TabularModel, _category_key
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


# ============================================================================ info
def model_info(path: str) -> str:
    """The text ``neuralab info`` prints: kind, architecture, parameters, preprocessing, training."""
    from ..io import load, printable, read_metadata
    from ..nn.module import Module
    from ..preprocessing import TabularModel
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
                                        "n_ensemble", "n_bags", "ple_bins", "hidden", "random_state")
                 if k in params}
        if params.get("categorical_features") is not None:  # declared codes (--categorical)
            shown["categorical_features"] = params["categorical_features"]
        lines.append(f"estimator: {type(est).__name__}(" +
                     ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")")
    members, nets = getattr(est, "n_ensemble_", None), getattr(est, "networks_", None)
    if isinstance(members, int) and isinstance(nets, list) and not isinstance(members, bool):
        # a tabular estimator: what n_ensemble="auto" and n_bags chose
        one = "1 network" if members == 1 else f"a {members}-member ensemble"
        lines.append(f"networks: {one}" + (f" in each of {len(nets)} bags" if len(nets) > 1 else ""))
        bins = getattr(est, "ple_bins_", 0)
        if bins:  # what ple_bins="auto" chose
            lines.append(f"piecewise-linear bins: up to {bins} per number column")
    if net is not None:
        lines.append(f"parameters: {net.num_parameters():,}"
                     + (" (each bag)" if isinstance(nets, list) and len(nets) > 1 else ""))
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
    encoding = getattr(est, "encoding_", None)
    if isinstance(encoding, dict):  # a tabular estimator: how each column is encoded
        lines.append("encoding:")
        described = [_encoded(c) for c in encoding.get("columns", [])]
        lines.extend("  " + line for line in described[:24])
        if len(described) > 24:
            lines.append(f"  ... and {len(described) - 24} more columns")
    summary = dict(meta.get("training") or {})
    user = meta.get("user")
    if isinstance(user, dict) and isinstance(user.get("info"), dict):  # `neuralab train`'s record
        summary.update(user["info"])
    if isinstance(model, TabularModel):
        summary.update({k: v for k, v in model.info.items() if k not in ("command",)})
    if summary:
        lines.append("training: " + ", ".join(f"{k}={v if isinstance(v, str) else plain(v)}"
                                              for k, v in summary.items()))
    # every string above may come from the file: control characters are shown escaped, so a
    # file cannot drive the terminal (clear it, retitle it, hide text)
    return "\n".join(printable(line, limit=None) for line in lines)


def _encoded(col: dict) -> str:
    """One line of a tabular estimator's column recipe, for ``neuralab info``."""
    kind = col.get("kind")
    if kind in ("numeric", "date"):
        name = col["name"] if kind == "numeric" else f"{col['name']}.{col.get('part')}"
        missing = ", missing -> median + flag" if col.get("missing") else ""
        return f"{name}: number{missing} (median {plain(col.get('median'))})"
    cats = col.get("categories") or []
    how = "one-hot" if kind == "one_hot" else "learned embedding"
    shown = ", ".join(map(str, cats[:5])) + (", ..." if len(cats) > 5 else "")
    return f"{col['name']}: {len(cats)} categories, {how} ({shown})"


# ============================================================================ commands
def _read(data: str, sep: str | None, decimal: str | None = None) -> Any:
    """The table of DATA; a built-in data set's test part only (its rows training never saw)."""
    from ..data import read_table

    if not Path(data).exists():
        frame = read_table(data, sep=sep, part="test")
        click.echo(f"note: {data} is a built-in data set: using its test part ({len(frame)} "
                   f"rows), which `neuralab train --dataset {data}` does not train on", err=True)
        return frame
    return read_table(data, sep=sep, decimal=decimal)


@click.command("predict")
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("data")
@click.option("--out", "-o", type=click.Path(dir_okay=False),
              help="Write predictions to this CSV (default: print them).")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@click.option("--proba", is_flag=True, help="Add one probability column per class.")
@click.option("--sep", help="Column delimiter of a text file (default: detected).")
@click.option("--decimal", type=click.Choice([".", ","]), help="Decimal mark (default: detected).")
def predict_command(model: str, data: str, out: str | None, force: bool, proba: bool,
                    sep: str | None, decimal: str | None) -> None:
    """Predict each row of DATA (CSV, TSV or Parquet) with a trained MODEL.

    \b
    Example:
      neuralab predict model.safetensors new.csv --out preds.csv --proba
    """
    with guard():
        if out:
            check_output(out, inputs=[model, data], force=force, kind="predictions")
        m = load_model(model)
        frame = _read(data, sep, decimal)
        with echo_warnings():
            preds = predict_frame(m, frame, proba=proba)
        if out:
            from ..io.files import atomic_write
            atomic_write(out, preds.to_csv(index=False).encode("utf-8"))
            click.echo(f"wrote {len(preds)} predictions to {out}", err=True)
            return
    buf = _io.StringIO()
    preds.to_csv(buf, index=False)
    click.echo(buf.getvalue(), nl=False)


@click.command("evaluate")
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("data")
@click.option("--target", "-t", help="Target column (default: the one the model was trained on).")
@click.option("--sep", help="Column delimiter of a text file (default: detected).")
@click.option("--decimal", type=click.Choice([".", ","]), help="Decimal mark (default: detected).")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def evaluate_command(model: str, data: str, target: str | None, sep: str | None,
                     decimal: str | None, as_json: bool) -> None:
    """Score a trained MODEL on labelled DATA: accuracy, per-class precision/recall/F1 and the
    confusion matrix (classification), or MSE/MAE/R2 (regression). A built-in data set's
    name scores its test part.

    \b
    Example:
      neuralab evaluate model.safetensors test.csv
    """
    with guard():
        m = load_model(model)
        frame = _read(data, sep, decimal)
        target = target or stored_target(model)
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
    with guard():
        text = model_info(model)
    click.echo(text)


@click.command("export")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--onnx", "onnx_path", required=True, type=click.Path(dir_okay=False),
              help="ONNX file to write.")
@click.option("--opset", default=17, show_default=True, type=click.IntRange(17),
              help="ONNX opset (>= 17; 20+ uses the native Gelu op).")
@click.option("--force", is_flag=True, help="Replace --onnx if it exists.")
def export_command(model: str, onnx_path: str, opset: int, force: bool) -> None:
    """Export a trained MODEL to ONNX (preprocessing's imputation and scaling included).

    \b
    Example:
      neuralab export model.safetensors --onnx model.onnx
    """
    with guard():
        require("onnx")
        check_output(onnx_path, inputs=[model], force=force, kind="onnx")
        from ..io import export_onnx, load
        from ..preprocessing import TabularModel
        m = load(model)
        export_onnx(m, onnx_path, opset=opset)
    click.echo(f"wrote {onnx_path}")
    if isinstance(m, TabularModel) or isinstance(getattr(m, "encoding_", None), dict):
        import onnx
        names = [i.name for i in onnx.load(onnx_path).graph.input]
        click.echo(f"inputs: one per column ({', '.join(names[:4])}"
                   f"{', ...' if len(names) > 4 else ''}); see nl.io.onnx_feed", err=True)
