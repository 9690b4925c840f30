"""``neuralab train FILE``'s default model: the tabular recipe (``TabularClassifier/Regressor``).

The table goes in as it is: the same rows are held out for validation as with ``--model
mlp``, the same columns are chosen (``--features``, ``--drop``, ID-like columns left out,
see ``preprocessing.TabularPreprocessor``), and then the estimator encodes them itself
(robust scaling, one-hot or embedded categories, periodic embeddings) and keeps the epoch
with the best validation score. The model file is the estimator, so ``neuralab predict``,
``evaluate``, ``info`` and ``export`` read it like any saved estimator.

Ctrl-C or SIGTERM stops after the current batch and saves the best epoch so far; such a run
cannot be resumed (``--resume`` continues ``--model mlp`` runs), it is trained again.

Example (shell):
    neuralab train churn.csv --target churn                 # preset "default"
    neuralab train churn.csv --target churn --preset best   # ensemble + bagging
"""
from __future__ import annotations

import sys
import time
import warnings
from typing import Any

from ._errors import BadInput
from ._resume import SigintStop



def _labels(values: Any) -> Any:
    """Target labels as one comparable kind (text labels stay text; numbers stay numbers)."""
    import numpy as np  # noqa: PLC0415

    arr = np.asarray(values)
    if arr.dtype.kind == "O":  # a mix (1 and "1", True): compare them as text, as predict does
        from ..preprocessing import _category_key  # noqa: PLC0415
        arr = np.array([_category_key(v) for v in arr], dtype=object)
    return arr


def _scores(est: Any, X: Any, y: Any, task: str) -> dict:
    import numpy as np  # noqa: PLC0415

    if task == "regression":
        from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score  # noqa: PLC0415
        pred = est.predict(X)
        truth = np.asarray(y, dtype=np.float64)
        r2 = r2_score(truth, pred) if len(truth) > 1 else float("nan")
        return {"mse": float(mean_squared_error(truth, pred)),
                "mae": float(mean_absolute_error(truth, pred)), "r2": float(r2)}
    proba = est.predict_proba(X)
    index = {c: i for i, c in enumerate(est.classes_.tolist())}
    pos = np.array([index.get(v, -1) for v in np.asarray(y).tolist()])
    seen = pos >= 0  # a label never seen in training has no probability: counted as wrong
    picked = np.where(seen, proba[np.arange(len(pos)), np.maximum(pos, 0)], 0.0)
    loss = float(-np.log(np.clip(picked, 1e-15, 1.0)).mean())
    return {"loss": loss, "accuracy": float(np.mean(proba.argmax(axis=1) == pos))}


def tabular_columns(frame: Any, target: str, say: Any, features: list | None = None,
                    drop: Any = (), task: str | None = None, categorical: Any = (),
                    hint: bool = True) -> tuple:
    """(a fitted ``TabularPreprocessor``, the columns the tabular model reads) for ``frame``:
    the columns and the task as ``--model mlp`` chooses them (ID-like text left out), less
    the text columns of too many values for a category; each column left out is one note.

    Example: ``prep, columns = tabular_columns(train_rows, "y", click.echo)``
    """
    from ..estimators.tabular import free_text_columns  # noqa: PLC0415
    from ..preprocessing import TabularPreprocessor  # noqa: PLC0415

    prep = TabularPreprocessor(features=features, drop=drop, task=task, categorical=categorical)
    prep.fit(frame, target=target)
    for notice in prep.notices:
        if "grouped as" not in notice:  # the tabular model embeds every category: none grouped
            say(f"note: {notice}", err=True)
    columns = prep.input_columns
    # text of more distinct values than half the rows (names, addresses, comments): the
    # estimator refuses it as a category, so the command leaves it out, as it does IDs
    wide = free_text_columns(frame[columns], categorical=categorical)
    for col, distinct in wide.items():
        say(f"note: column {col!r} left out: {distinct} distinct values in {len(frame)} rows, "
            f"too many for a category" + (f"; --model mlp keeps its 50 most frequent, or use "
                                          f"--text {col} with --model mlp if it is free text"
                                          if hint else ""), err=True)
    columns = [c for c in columns if c not in wide]
    if not columns:
        raise BadInput(f"no usable feature columns left (left out: {', '.join(wide)})")
    return prep, columns


def train_tabular(p: dict, frame: Any, test_frame: Any, target: str, name: str,
                  split: tuple[Any, Any], callbacks: list, say: Any) -> dict:
    """Fit a TabularClassifier/Regressor on the training rows of ``frame``, pick the best
    epoch on the validation rows, score every part; returns ``train_table``'s result keys.

    ``p``: the train flags; ``split``: (training row positions, validation row positions)
    in ``frame``'s rows with a target; ``callbacks`` ride along with the training.
    Example: ``train_tabular(flags, df, None, "y", "data.csv", (tr, va), [], click.echo)``
    """
    import numpy as np  # noqa: PLC0415

    from ..estimators import TabularClassifier, TabularRegressor  # noqa: PLC0415

    known = frame[frame[target].notna()]
    tr, val = known.iloc[split[0]], known.iloc[split[1]]
    prep, columns = tabular_columns(tr, target, say, features=p.get("features"),
                                    drop=p.get("drop") or (), task=p.get("task"),
                                    categorical=p.get("categorical") or ())
    task = prep.spec["task"]
    parts = {"train": tr, "validation": val}
    if test_frame is not None:
        parts["test"] = test_frame[test_frame[target].notna()]
    y = {k: (_labels(f[target].to_numpy()) if task == "classification"
             else f[target].to_numpy(dtype=np.float64)) for k, f in parts.items()}
    if task == "classification":
        unseen = ~np.isin(y["validation"], np.unique(y["train"]))
        if unseen.any():  # a class with one row that fell in the validation part
            say(f"note: {int(unseen.sum())} validation row(s) have a class that no training "
                f"row has; they are scored but do not choose the best epoch", err=True)
    chosen = {k: v for k, v in {"n_epochs": p.get("epochs"), "batch_size": p.get("batch_size"),
                                "hidden": p.get("hidden") or None, "lr": p.get("lr"),
                                "dropout": p.get("dropout"),
                                "activation": p.get("activation"),
                                "ple_bins": p.get("ple_bins")}.items() if v is not None}
    if "hidden" in chosen:
        chosen["hidden"] = tuple(chosen["hidden"])
    cls = TabularClassifier if task == "classification" else TabularRegressor
    declared = [c for c in p.get("categorical") or () if c in columns]
    est = cls(preset=p.get("preset") or "default", random_state=p["seed"],
              categorical_features=declared or None, **chosen)
    val_rows = np.ones(len(val), bool) if task == "regression" else ~unseen
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        # bagged, the folds of the training rows choose the epochs; the validation rows are then
        # scored as rows no network saw
        warnings.filterwarnings("ignore", "validation_data is not used", UserWarning)
        # sklearn's "more than 50% unique classes": the preprocessing's note says it for users
        warnings.filterwarnings("ignore", "The number of unique classes", UserWarning)
        est.fit(tr[columns], y["train"], callbacks=callbacks,
                validation_data=(val[columns][val_rows], y["validation"][val_rows])
                if val_rows.any() else None)
    seconds = time.perf_counter() - start
    table = {k: _scores(est, parts[k][columns], y[k], task) for k in parts}
    return _report(est, p, task, prep, parts, table, seconds, name, target)


def _report(est: Any, p: dict, task: str, prep: Any, parts: dict, table: dict, seconds: float,
            name: str, target: str) -> dict:
    from ._tables import format_scores  # noqa: PLC0415

    net = est.networks_[0]
    n_params = sum(n.num_parameters() for n in est.networks_)
    preset = p.get("preset") or "default"
    epochs = int(est.n_iter_)
    ran = len(est.history_[-1].get("loss", ()))
    interrupted = len(est.networks_) < est.n_bags_ or ran < epochs
    n_out = len(est.classes_) if task == "classification" else 1
    what = f"{n_out} classes" if task == "classification" else "regression"
    sizes = " / ".join(f"{len(parts[k])} {k}" for k in parts)
    activation = est.activation or ("selu" if task == "classification" else "mish")
    lr = est.lr if est.lr is not None else (0.04 if task == "classification" else 0.2)
    layers = f"{len(est.hidden)} x {est.hidden[0]}" if len(set(est.hidden)) == 1 else \
        "-".join(map(str, est.hidden))
    kept = ", ".join(str(b) for b in est.best_epochs_)
    head = (f"dataset {name}: {sizes} samples, {est.n_features_in_} columns, {what}"
            if p.get("dataset") else
            f"data    {name}: {sizes} rows, {est.n_features_in_} columns, target "
            f"{target!r} ({what})")
    lines = [
        head,
        f"model   TABULAR (RealMLP-TD recipe, preset {preset}: {_networks(est)}) "
        f"{layers} {activation}, {len(est.feature_names_out_)} encoded inputs "
        f"({n_params:,} parameters), AdamW lr={lr:g}, batch {est.batch_size}",
        f"trained {len(est.networks_)} x {ran if len(est.networks_) == 1 else epochs} epochs in "
        f"{seconds:.1f} s (kept the best validation epoch: {kept})",
        "",
        format_scores(table),
    ]
    return {"model": est, "prep": prep, "task": task, "scores": table, "seconds": seconds,
            "epochs": ran, "history": {"loss": est.history_[-1].get("loss", []),
                                       "val_loss": est.history_[-1].get("val_loss", [])},
            "report": "\n".join(lines), "name": name, "target": target, "n_out": n_out,
            "interrupted": interrupted, "snapshot": None, "diverged": None,
            "n_train": len(parts["train"]), "params": p, "ranks": 1, "network": net}


def _networks(est: Any) -> str:
    """What a preset trains, in words: "1 network" or "4-member ensemble x 3 bags" (and the
    piecewise-linear bins, when ``ple_bins`` chose them)."""
    k, bags = int(est.n_ensemble_), int(est.n_bags_)
    one = "1 network" if k == 1 else f"{k}-member ensemble"
    bins = int(getattr(est, "ple_bins_", 0))
    return (one if bags == 1 else f"{one} x {bags} bags") + \
        (f", numbers in {bins} piecewise-linear bins" if bins else "")


def save_tabular(result: dict, path: str) -> str:
    """Save the estimator of ``train_tabular`` with the run's scores as metadata.

    Example: ``save_tabular(result, "model.safetensors")``
    """
    from ..io import save  # noqa: PLC0415

    metric = "accuracy" if result["task"] == "classification" else "r2"
    info = {"data": result["name"], "rows": int(result["n_train"]), "target": result["target"],
            "task": result["task"], "model": "tabular",
            "preset": result["params"].get("preset") or "default", "epochs": result["epochs"],
            "seconds": round(result["seconds"], 3)}
    for part, values in result["scores"].items():
        info[f"{part}_{metric}"] = round(float(values[metric]), 6)
    if result["interrupted"]:
        info["interrupted"] = f"after {result['epochs']} epoch(s)"
    info["trained_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    meta = {"command": "neuralab train", "dataset": result["name"], "task": result["task"],
            "target": result["target"], "scores": result["scores"], "epochs": result["epochs"],
            "seconds": round(result["seconds"], 3), "info": info}
    return str(save(result["model"], path, metadata=meta))


class StopOnSignal(SigintStop):
    """Ctrl-C/SIGTERM: ``nl.fit`` stops after the current batch (the best epoch is kept).

    Example: ``stop = StopOnSignal(); stop.install(); est.fit(X, y, callbacks=[stop])``
    """

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.interrupted:
            self.run.stop_training = True


def refuse_mlp_flags(given: list[str]) -> None:
    """One line when flags of the plain MLP come with the tabular model.

    Example: ``refuse_mlp_flags(["--norm"])``
    """
    if given:
        raise BadInput(f"{', '.join(given)} set{'s' if len(given) == 1 else ''} the plain MLP; "
                       f"add --model mlp (a DATA file trains the tabular model by default)")


def progress_callbacks(progress: bool) -> list:
    """A progress bar when stderr is a terminal (as --model mlp).

    Example: ``est.fit(X, y, callbacks=progress_callbacks(progress=True))``
    """
    from .. import callbacks as cb  # noqa: PLC0415

    return [cb.ProgressBar()] if progress and sys.stderr.isatty() else []


__all__ = ["train_tabular", "save_tabular", "refuse_mlp_flags", "StopOnSignal", "progress_callbacks"]
