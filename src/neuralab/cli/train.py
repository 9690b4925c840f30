"""``neuralab train``: one engine for a built-in data set and for a CSV/TSV/Parquet file.

Both become a table with a target column: a built-in data set is its train part (and its
test part, scored at the end), a file is its rows. The same steps follow for both, so every
flag means the same thing: hold out ``--validation-split`` of the rows, fit the preprocessing
(``preprocessing.TabularPreprocessor``) on the training part only, train the network chosen
by ``--model`` (``MODELS``) with early stopping on the validation loss, keep the best epoch,
and print one train/validation(/test) table. Ctrl-C or SIGTERM stops after the current
batch, saves the best model so far with what ``--resume`` needs, and exits 130.

Example (shell):
    neuralab train --dataset digits
    neuralab train houses.csv --target price --out price.safetensors        # tabular model
    neuralab train houses.csv --target price --model mlp --hidden 64,32
"""
from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import click

from ._errors import BadInput, guard, require

# Extra callbacks every training run gets (empty when shipped). Tests put one here to slow
# a run down so a signal lands mid-training; nothing reads an environment variable for it.
EXTRA_CALLBACKS: list = []


# ============================================================================ --hidden
def parse_hidden(text: str) -> tuple[int, ...]:
    """The one reading of ``--hidden``: positive integers separated by commas.

    ``"128,64"`` -> ``(128, 64)``; ``"none"`` (or ``""``) -> ``()``, no hidden layer (a
    linear or logistic model). Anything else (``"64,,32"``, ``"0"``, ``"-3"``, ``"1.5"``) is
    refused with one line.
    Example: ``parse_hidden("128, 64")  # (128, 64)``
    """
    cleaned = str(text).strip().lower()
    if cleaned in ("", "none"):
        return ()
    parts = [p.strip() for p in cleaned.split(",")]
    if any(not p.isdigit() or int(p) <= 0 for p in parts):
        raise BadInput(f"--hidden must be positive layer widths separated by commas, like "
                       f"128,64 (or 'none' for no hidden layer); got {text!r}")
    return tuple(int(p) for p in parts)


# ============================================================================ models
def fit_mlp(X_tr: Any, y_tr: Any, X_val: Any, y_val: Any, task: str, n_out: int, p: dict,
            callbacks: list, rng: Any, early: Any, comm: Any = None) -> tuple[Any, Any]:
    """The plain MLP: ``nn.MLP`` trained with ``nl.fit``; returns (network, optimizer).

    ``p`` holds the train flags (hidden, activation, dropout, norm, residual, optimizer, lr,
    l2, epochs, batch_size, seed, device, first_epoch); ``comm``: an MPI communicator when
    every rank trains on its own rows (``--distributed``).
    Example: ``net, opt = fit_mlp(X, y, Xv, yv, "classification", 3, flags, [], rng, None)``
    """
    import numpy as np  # noqa: PLC0415

    from .. import nn  # noqa: PLC0415
    from ..training import fit, make_optimizer  # noqa: PLC0415

    model = nn.MLP(X_tr.shape[1], hidden=p["hidden"], out_features=n_out,
                   activation=p["activation"], dropout=p["dropout"], norm=p["norm"],
                   residual=p["residual"], rng=np.random.default_rng(p["seed"]))
    opt = make_optimizer(model, p["optimizer"], p["lr"])  # an object: a checkpoint keeps its state
    loss = "cross_entropy" if task == "classification" else "mse"
    hist = fit(model, X_tr, y_tr, loss=loss, optimizer=opt, l2=p["l2"],
               epochs=p["epochs"] - p["first_epoch"], batch_size=p["batch_size"],
               validation_data=(X_val, y_val), callbacks=callbacks, seed=rng, verbose=0,
               device=p["device"], blas_threads=p.get("blas_threads"),
               **({"comm": comm} if comm is not None else {}))
    return model, hist


# The networks `train --model` offers on the prepared arrays: name -> the function that
# trains it. "tabular" (train_tabular.py) takes the table's columns as they are instead.
MODELS: dict[str, Callable[..., Any]] = {"mlp": fit_mlp}
MODEL_CHOICES = ["tabular", *MODELS]
# A DATA file trains the tabular recipe; a built-in data set (pixels, mostly) the plain MLP.
DEFAULT_MODEL = {"file": "tabular", "dataset": "mlp"}
# The plain MLP's settings of the flags whose default depends on the model (the tabular
# model's are its estimator's: 3 x 256 units, its preset's epochs, batch 256, lr by task)
MLP_DEFAULTS = {"hidden": "128,128", "activation": "relu", "dropout": 0.0, "lr": 1e-3,
                "epochs": 200, "batch_size": 32}
# Flags only the plain MLP reads: with the tabular model they are refused with one line
MLP_ONLY = ("optimizer", "l2", "norm", "batch_norm", "residual", "patience", "min_epochs",
            "early_stopping")


# ============================================================================ the engine
def _frames(args: dict, comm: Any = None) -> tuple[Any, Any, str, str]:
    """(training table, test table or None, target column, display name) of a run; with
    ``comm`` (``--distributed``) this rank's part of them, indexed by row in the whole table."""
    from .. import datasets  # noqa: PLC0415
    from ..data import read_table, read_table_part  # noqa: PLC0415

    if args.get("dataset"):
        name = datasets.canonical_name(args["dataset"])
        train, test = datasets.as_frames(name)
        if comm is not None:  # a built-in set is small: every rank loads it, keeps its rows
            from ..distributed import shard_rows  # noqa: PLC0415

            train, test = (f.iloc[shard_rows(len(f), comm).start:shard_rows(len(f), comm).stop]
                           for f in (train, test))
        return train, test, "target", name
    if comm is not None:
        from . import _ranks  # noqa: PLC0415

        frame = _ranks.agree(comm, lambda: read_table_part(args["data"], comm, sep=args.get("sep"),
                                                           decimal=args.get("decimal")))
        headers = comm.allgather([str(c) for c in frame.columns])
        odd = next((r for r, h in enumerate(headers) if h != headers[0]), None)
        if odd is not None:
            _ranks.stop_all(comm, [(odd, f"{args['data']}: the part of rank {odd} has the "
                                         f"columns {headers[odd][:8]}, rank 0's has "
                                         f"{headers[0][:8]}; every file must have the same columns")])
        frame = _ranks.global_rows(comm, frame)
    else:
        frame = read_table(args["data"], sep=args.get("sep"), decimal=args.get("decimal"))
    target = args.get("target")
    if target is None:
        raise BadInput(f"--target is required: which column should be predicted? "
                       f"(columns: {', '.join(map(str, frame.columns[:20]))})")
    from ..data import check_target  # noqa: PLC0415

    try:
        check_target(frame, target, args["data"])
    except ValueError as e:
        raise BadInput(str(e)) from None
    return frame, None, target, Path(args["data"]).name


def run_training(args: dict, out: str | None, quiet: bool, snapshot: Any = None,
                 force: bool = False, comm: Any = None) -> dict:
    """Train as ``args`` (the flags, JSON-able: a checkpoint stores them) say; print the
    report, save to ``out``; on Ctrl-C/SIGTERM save a checkpoint and exit 130. With
    ``comm`` (``--distributed``), every rank trains and only rank 0 prints and writes.

    Example: ``run_training({"dataset": "iris", **defaults}, "iris.safetensors", quiet=True)``
    """
    result = train_table(args, progress=not quiet, resume=snapshot, comm=comm)
    if comm is not None and comm.Get_rank() != 0:
        if result["interrupted"]:
            save_checkpoint(result, args, out or "interrupted.safetensors", comm)
            sys.exit(130)
        return result
    if result["interrupted"] and args.get("model") == "tabular":
        from .train_tabular import save_tabular  # noqa: PLC0415

        path = save_tabular(result, out or "interrupted.safetensors")
        click.echo(f"interrupted: finished the current batch and saved the best epoch so far to "
                   f"{path} (a tabular run is not resumable: train again to finish it)", err=True)
        sys.exit(130)
    if result["interrupted"]:
        path = save_checkpoint(result, args, out or "interrupted.safetensors", comm)
        click.echo(f"interrupted: finished the current batch and saved the best model so far to "
                   f"{path}; continue with `neuralab train --resume {path}`", err=True)
        sys.exit(130)
    if result["diverged"]:
        click.echo(f"warning: {result['diverged']}", err=True)
    click.echo(result["report"])
    if out:
        if args.get("model") == "tabular":
            from .train_tabular import save_tabular  # noqa: PLC0415
            path = save_tabular(result, out)
        else:
            path = save_trained(result, out)
        click.echo(f"saved the model to {path}")
    if args.get("plot"):
        plot_curves(result["history"], args["plot"])
        click.echo(f"saved learning curves to {args['plot']}")
    return result


def train_table(args: dict, progress: bool = True, resume: Any = None, comm: Any = None) -> dict:
    """The work behind ``neuralab train``: returns the model, preprocessing, scores and report.

    With ``comm`` (a communicator, or ``_ranks.OneRank()``), this rank's part of the data
    only: validation rows chosen by row number, preprocessing fitted over all ranks, scores
    added up over the ranks, training data-parallel.

    Example: ``train_table({"dataset": "iris", "hidden": [16], ...})["scores"]["test"]``
    """
    import numpy as np  # noqa: PLC0415

    from .. import callbacks as cb  # noqa: PLC0415
    from .. import datasets  # noqa: PLC0415
    from ..data import train_val_split  # noqa: PLC0415
    from ..preprocessing import TabularPreprocessor, _py  # noqa: PLC0415
    from ._resume import ResumableRun  # noqa: PLC0415

    p = dict(args)
    p.setdefault("model", "mlp")
    if p["hidden"] is not None:
        p["hidden"] = tuple(p["hidden"])
    rank = 0 if comm is None else comm.Get_rank()
    say = click.echo if rank == 0 else (lambda *a, **k: None)
    if comm is not None:
        from . import _ranks  # noqa: PLC0415
    frame, test_frame, target, name = _frames(args, comm)
    known = frame[frame[target].notna()]
    n_all, n_known = ((len(frame), len(known)) if comm is None else
                      (sum(comm.allgather(len(frame))), sum(comm.allgather(len(known)))))
    if n_known < n_all:
        say(f"note: {n_all - n_known} row(s) without a target value left out", err=True)
    if n_known < 4:
        raise BadInput(f"{name}: {n_known} sample(s) with a target value; training needs "
                       f"at least 4 (some for validation)")
    rng = np.random.default_rng(p["seed"] if rank == 0 else [p["seed"], rank])
    if comm is None:
        try:
            idx_tr, idx_val = train_val_split(np.arange(len(known)),
                                              validation_split=p["validation_split"], seed=rng)
        except ValueError as e:
            raise BadInput(f"--validation-split: {e}") from None
    else:  # each rank holds out its own rows, the same ones whatever the number of ranks
        held = _ranks.validation_rows(known.index.to_numpy(), p["validation_split"], p["seed"])
        idx_tr, idx_val = np.flatnonzero(~held), np.flatnonzero(held)
        sizes = comm.allgather((len(idx_tr), len(idx_val)))
        short = next((r for r, (t, v) in enumerate(sizes) if t == 0 or v == 0), None)
        if short is not None:
            _ranks.stop_all(comm, [(short, f"--validation-split: this rank's part has "
                                           f"{sizes[short][0]} training and {sizes[short][1]} "
                                           "validation rows; every rank needs both (more rows "
                                           "per rank, or fewer ranks)")])
    if p["model"] == "tabular":
        from .train_tabular import StopOnSignal, progress_callbacks, train_tabular  # noqa: PLC0415

        stop = StopOnSignal()
        stop.install()
        say("training... Ctrl-C stops after the current batch and saves the best epoch so far",
            err=True)
        try:
            result = train_tabular(p, frame, test_frame, target, name, (idx_tr, idx_val),
                                   [stop, *progress_callbacks(progress), *EXTRA_CALLBACKS], say)
        finally:
            stop.uninstall()
        result["interrupted"] = result["interrupted"] and stop.interrupted
        return result
    tr, val = known.iloc[idx_tr], known.iloc[idx_val]
    pixels = bool(args.get("dataset")) and datasets.is_pixels(name)
    prep = TabularPreprocessor(features=p.get("features"), drop=p.get("drop") or (),
                               task=p.get("task"), text=p.get("text") or (),
                               categorical=p.get("categorical") or (),
                               numeric_scale="shared_range" if pixels else "standard")
    if comm is None:
        prep.fit(tr, target=target)  # the training part only: no peeking at validation or test
    else:
        from ..preprocessing import PreprocessingError  # noqa: PLC0415

        try:  # all ranks' training rows; its errors are found by every rank together
            prep.fit(tr, target=target, comm=comm)
        except PreprocessingError as e:
            _ranks.stop_all(comm, [(0, str(e))] * comm.Get_size())
    for notice in prep.notices:
        say(f"note: {notice}", err=True)
    task = prep.spec["task"]
    if task == "classification":  # every label of the table, so validation's are known too
        labels = [v for v in known[target].to_numpy() if v is not None]
        if comm is None:
            prep.spec["classes"] = [_py(v) for v in np.unique(np.asarray(labels))]
        else:
            every = [v for part in comm.allgather([_py(v) for v in np.unique(np.asarray(labels))])
                     for v in part]
            prep.spec["classes"] = [_py(v) for v in np.unique(np.asarray(every))]
    parts = {"train": tr, "validation": val}
    if test_frame is not None:
        parts["test"] = test_frame[test_frame[target].notna()]

    def transformed() -> tuple[dict, dict]:
        X = {k: prep.transform(f) for k, f in parts.items()}
        if task == "classification":
            y = {k: prep.transform_target(f) for k, f in parts.items()}
        else:
            y = {k: prep.scale_target(prep.transform_target(f)) for k, f in parts.items()}
        return X, y

    X, y = transformed() if comm is None else _ranks.agree(comm, transformed)
    n_out = len(prep.spec["classes"]) if task == "classification" else 1
    X_tr, X_val = X["train"], X["validation"]
    y_tr, y_val = y["train"], y["validation"]
    if task == "regression":
        y_tr, y_val = y_tr[:, None], y_val[:, None]

    callbacks: list = []
    early = None
    if p["patience"]:
        early = cb.EarlyStopping(monitor="val_loss", patience=p["patience"], restore_best=True,
                                 start_from_epoch=p["min_epochs"])
        callbacks.append(early)
    if progress and rank == 0 and sys.stderr.isatty():
        callbacks.append(cb.ProgressBar())
    p["first_epoch"] = resume[0]["epoch"] if resume is not None else 0
    # a resumed run multiplies on as many BLAS threads as the run it continues (same rounding)
    p["blas_threads"] = resume[0].get("blas_threads") if resume is not None else None
    run = ResumableRun(rng, early, p["first_epoch"], resume)
    nan_guard = cb.TerminateOnNaN()
    callbacks += [run, nan_guard, *EXTRA_CALLBACKS]
    run.install()
    fit_comm = comm if comm is not None and _ranks.is_mpi(comm) else None
    ranks = "" if fit_comm is None else f" on {comm.Get_size()} ranks"
    say(f"training{ranks}{' (resumed at epoch ' + str(p['first_epoch'] + 1) + ')' if resume else ''}"
        f"... Ctrl-C stops after the current batch and saves the model so far", err=True)
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # TerminateOnNaN's; reported below
            model, hist = MODELS[p["model"]](X_tr, y_tr, X_val, y_val, task, n_out, p,
                                             callbacks, rng, early,
                                             **({"comm": fit_comm} if fit_comm else {}))
    finally:
        run.uninstall()
    seconds = time.perf_counter() - start
    interrupted, diverged = run.interrupted, nan_guard.message
    if fit_comm is not None:  # a Ctrl-C or a NaN seen by one rank stopped them all
        interrupted = any(comm.allgather(bool(interrupted)))
        diverged = next((m for m in comm.allgather(diverged) if m), None)
    if diverged and run.snapshot is not None:
        # Diverged: unless early stopping restored a finite best epoch, go back to the weights
        # at the start of the epoch that blew up.
        finite = all(np.isfinite(q.data).all() for q in model.parameters())
        if fit_comm is not None:
            finite = all(comm.allgather(finite))
        if not finite:
            model.load_state_dict({k[len("model."):]: v for k, v in run.snapshot[1].items()
                                   if k.startswith("model.")})
    if comm is None:
        table = {k: _scores(model, X[k], y[k], task, prep) for k in parts}
        counts = {k: len(parts[k]) for k in parts}
    else:
        table = {k: _ranks.scores(comm, model, X[k], y[k], task, prep) for k in parts}
        counts = {k: sum(comm.allgather(len(parts[k]))) for k in parts}
    n_epochs = len(hist.history["loss"]) + p["first_epoch"]
    n_in = X_tr.shape[1]
    sizes = " / ".join(f"{counts[k]} {k}" for k in parts)
    what = (f"{n_out} classes" if task == "classification" else "regression")
    head = (f"dataset {name}: {sizes} samples, {n_in} features, {what}" if args.get("dataset") else
            f"data    {name}: {sizes} rows, {n_in} features from {len(prep.input_columns)} "
            f"columns, target {target!r} ({what})")
    arch = "-".join(str(s) for s in (n_in, *p["hidden"], n_out))
    ranks_n = 1 if fit_comm is None else comm.Get_size()
    lines = [
        head,
        f"model   {p['model'].upper()} {arch} {p['activation']}"
        + (f", dropout {p['dropout']}" if p["dropout"] else "")
        + (f", {p['norm']} norm" if p["norm"] else "") + (", residual" if p["residual"] else "")
        + f" ({model.num_parameters():,} parameters), {p['optimizer']} lr={p['lr']:g}, "
          f"batch {p['batch_size']}" + (f" per rank (global {ranks_n * p['batch_size']})"
                                       if ranks_n > 1 else ""),
        f"trained {n_epochs} epoch{'s' if n_epochs != 1 else ''} in {seconds:.1f} s"
        + (f" (early stopping kept epoch {early.best_epoch + 1})"
           if early is not None and early.best_epoch is not None else ""),
        "",
        _format_scores(table),
    ]
    return {"model": model, "prep": prep, "task": task, "scores": table, "seconds": seconds,
            "epochs": n_epochs, "history": hist.history, "report": "\n".join(lines),
            "name": name, "target": target, "n_out": n_out, "interrupted": interrupted,
            "snapshot": run.snapshot, "diverged": diverged, "n_train": counts["train"],
            "params": p, "ranks": 1 if comm is None else comm.Get_size()}


def _format_scores(table: dict) -> str:
    from ._tables import format_scores  # noqa: PLC0415

    return format_scores(table)


def _scores(model: Any, X: Any, y: Any, task: str, prep: Any) -> dict:
    import numpy as np  # noqa: PLC0415

    from ..metrics import get_metric  # noqa: PLC0415
    from ..training import predict  # noqa: PLC0415

    out = predict(model, X)
    if task == "classification":
        z = out - out.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        values = {"loss": float(-logp[np.arange(len(y)), y].mean())}
        names = ["accuracy"]
        truth = y
    else:
        out = prep.unscale_target(out[:, 0])
        truth = prep.unscale_target(y)
        values, names = {}, ["mse", "mae", "r2"]
    for m_name in names:
        m = get_metric(m_name)
        m.update(out, truth)
        values[m_name] = m.result()
    return values


# ============================================================================ the model file
def trained_model(result: dict) -> Any:
    """The network of ``train_table`` as a CLI model (``preprocessing.TabularModel``): its
    ``predict`` takes a table with the training columns and gives labels or values.

    Example: ``nl.save(trained_model(train_table(args)), "iris.safetensors")``
    """
    from ..estimators import MLPClassifier, MLPRegressor  # noqa: PLC0415
    from ..preprocessing import TabularModel  # noqa: PLC0415

    p, task, prep = result["params"], result["task"], result["prep"]
    solver = p["optimizer"] if p["optimizer"] in ("adam", "adamw", "sgd", "rmsprop") else "adam"
    params = {"hidden_layer_sizes": tuple(p["hidden"]), "activation": p["activation"],
              "dropout": p["dropout"], "batch_norm": p["norm"] == "batch",
              "residual": p["residual"], "solver": solver, "learning_rate_init": p["lr"],
              "max_iter": p["epochs"],
              # nl.fit adds l2/2 ||W||^2 per batch, sklearn alpha/2 ||W||^2 / batch size
              "alpha": float(p["l2"]) * p["batch_size"],
              "batch_size": p["batch_size"], "random_state": p["seed"], "device": "cpu"}
    # The estimator reports sklearn's losses: cross-entropy as is, squared error halved.
    curve = [v * (0.5 if task == "regression" else 1.0) for v in result["history"].get("loss", [])]
    cls = MLPClassifier if task == "classification" else MLPRegressor
    est = cls.from_network(result["model"], len(prep.feature_names),
                           classes=list(range(result["n_out"])) if task == "classification" else None,
                           loss_curve=curve, n_samples=result["n_train"], **params)
    est.n_iter_ = result["epochs"]  # also counts the epochs before a --resume
    metric = "accuracy" if task == "classification" else "r2"
    info = {"data": result["name"], "rows": int(result["n_train"]), "target": result["target"],
            "task": task, "model": p["model"], "epochs": result["epochs"],
            "optimizer": p["optimizer"], "norm": p["norm"], "l2": p["l2"],
            "seconds": round(result["seconds"], 3)}
    for part, values in result["scores"].items():
        info[f"{part}_{metric}"] = round(float(values[metric]), 6)
    if result["interrupted"]:
        info["interrupted"] = f"after {result['epochs']} complete epoch(s)"
    info.update({"trained_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": "neuralab train"})
    return TabularModel(prep, est, info=info)


def save_trained(result: dict, path: str, arrays: dict | None = None) -> str:
    """Save the model of ``train_table`` with its scores as metadata; ``arrays`` are a
    checkpoint's extra arrays.

    Example: ``save_trained(result, "model.safetensors")``
    """
    from ..io import save  # noqa: PLC0415

    meta = {"command": "neuralab train", "dataset": result["name"], "task": result["task"],
            "scores": result["scores"], "epochs": result["epochs"],
            "seconds": round(result["seconds"], 3)}
    if result.get("checkpoint"):
        meta["checkpoint"] = result["checkpoint"]
    return str(save(trained_model(result), path, metadata=meta, arrays=arrays))


def save_checkpoint(result: dict, args: dict, path: str, comm: Any = None) -> str:
    """The best model so far (loadable with nl.load) plus what ``--resume`` needs.

    With ``comm`` every rank calls it: rank 0 writes the file, with every rank's random
    generators (its shuffling and dropout), and returns its path; the others return "".
    Example: ``save_checkpoint(result, args, "interrupted.safetensors")``
    """
    state, arrays = result["snapshot"]
    if comm is not None:
        every = comm.allgather({"rng": state["rng"], "layer_rngs": state["layer_rngs"]})
        if comm.Get_rank() != 0:
            return ""
        state = {**state, "ranks": every}
    result = dict(result)
    result["checkpoint"] = {"args": args, "state": state}
    return save_trained(result, path, arrays=arrays)


def plot_curves(history: dict, path: str) -> None:
    """Training and validation loss per epoch, as a PNG.

    Example: ``plot_curves(result["history"], "curves.png")``
    """
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in (("loss", "training loss"), ("val_loss", "validation loss")):
        values = history.get(key) or []
        ax.plot(range(1, len(values) + 1), values, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    ax.set_title("learning curves")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ============================================================================ the command
TRAIN_EXAMPLE = """Examples:

\b
  neuralab train houses.csv --target price --out price.safetensors
  neuralab train churn.csv --target churn --preset fast
  neuralab train houses.csv --target price --model mlp --hidden 64,32
  neuralab train --dataset digits
  neuralab train --dataset mnist --hidden 256,256 --epochs 15 --out mnist.safetensors
  neuralab train --dataset diabetes --hidden 32 --lr 0.003"""


def _split_list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


def _finite(ctx: Any, param: Any, value: float) -> float:
    import math  # noqa: PLC0415

    if value is not None and not math.isfinite(value):
        raise BadInput(f"--{param.name.replace('_', '-')} must be a finite number, got {value}")
    return value


def _ple_bins(ctx: Any, param: Any, value: str | None) -> int | str | None:
    """--ple-bins as the estimator takes it: "auto" or a count of bins >= 0."""
    if value is None or value == "auto":
        return value
    try:
        bins = int(value)
    except ValueError:
        bins = -1
    if bins < 0:
        raise BadInput(f"--ple-bins must be 'auto' or a whole number >= 0, got {value!r}")
    return bins


def _activations() -> list[str]:
    from ..nn import ACTIVATIONS  # noqa: PLC0415 - NumPy only

    return [a for a in ACTIVATIONS if a not in ("softmax", "identity", "linear")]


def _optimizers() -> list[str]:
    from ..optim import OPTIMIZERS  # noqa: PLC0415 - NumPy only

    return list(OPTIMIZERS)


@click.command("train", epilog=TRAIN_EXAMPLE)
@click.argument("data", required=False)
@click.option("--dataset", "-d", metavar="NAME", help="A built-in data set (see `neuralab datasets`).")
@click.option("--target", "-t", help="DATA: the column to predict.")
@click.option("--task", type=click.Choice(["classification", "regression"]),
              help="DATA: override the task inferred from the target.")
@click.option("--features", help="DATA: comma-separated columns to use (default: all).")
@click.option("--drop", help="DATA: comma-separated columns to leave out.")
@click.option("--sep", help="DATA: column delimiter (default: detected).")
@click.option("--decimal", type=click.Choice([".", ","]),
              help="DATA: decimal mark (default: ',' when the delimiter is ';' and numbers look "
                   "like 3,14, else '.').")
@click.option("--text", metavar="COLS", help="DATA: comma-separated free-text columns (TF-IDF "
              "features; vocabulary and idf stored in the model file).")
@click.option("--categorical", metavar="COLS", help="DATA: comma-separated columns to treat as "
              "categories even though they hold numbers (codes such as a store or school id; "
              "by default a column of numbers is a number).")
@click.option("--model", "model_name", default=None, type=click.Choice(MODEL_CHOICES),
              help="tabular: the RealMLP-TD recipe on the table's columns as they are (default "
                   "for a DATA file); mlp: a plain MLP on preprocessed columns (default for "
                   "--dataset, and with --text or --distributed).")
@click.option("--preset", type=click.Choice(["fast", "default", "best"]), default=None,
              help="--model tabular: fast (32 epochs, one network), default (256 epochs; one "
                   "network bagged over 3 folds on up to 4,000 rows, 3-8 for regression, "
                   "--ple-bins auto), or "
                   "best (a 4-member ensemble bagged over 3 folds: about 12x one network's "
                   "time) [default: default].")
@click.option("--ple-bins", default=None, callback=_ple_bins, metavar="N|auto",
              help="--model tabular: piecewise-linear bins of each number column (0: none); "
                   "auto tries 16 against none on the first fold, up to 4,000 rows [preset "
                   "default and best: auto; fast: 0].")
@click.option("--hidden", default=None,
              help="Hidden layer widths, positive integers separated by commas ('none': no "
                   "hidden layer) [mlp: 128,128; tabular: 256,256,256].")
@click.option("--activation", default=None, type=click.Choice(_activations()),
              help="[mlp: relu; tabular: selu (classification), mish (regression)]")
@click.option("--dropout", default=None, type=click.FloatRange(0, 1, max_open=True),
              help="[mlp: 0; tabular: 0.15, on a schedule]")
@click.option("--norm", default="none", show_default=True, type=click.Choice(["none", "batch", "layer"]))
@click.option("--batch-norm", is_flag=True, help="Same as --norm batch.")
@click.option("--residual", is_flag=True, help="Residual hidden blocks.")
@click.option("--optimizer", "--solver", "optimizer", default="adam", show_default=True,
              type=click.Choice(_optimizers()))
@click.option("--lr", default=None, type=click.FloatRange(0, min_open=True), callback=_finite,
              help="Learning rate [mlp: 0.001; tabular: 0.04 (classification), 0.2 "
                   "(regression), on a schedule].")
@click.option("--l2", default=0.0, show_default=True, type=click.FloatRange(0), callback=_finite,
              help="L2 penalty on weights.")
@click.option("--epochs", default=None, type=click.IntRange(1),
              help="mlp: most epochs, early stopping usually ends sooner [200]; tabular: the "
                   "epochs run, the best on validation is kept [the preset's: 256, fast 32].")
@click.option("--batch-size", default=None, type=click.IntRange(1), help="[mlp: 32; tabular: 256]")
@click.option("--patience", default=10, show_default=True, type=click.IntRange(0),
              help="Early stopping: epochs without validation improvement (0: off).")
@click.option("--min-epochs", default=30, show_default=True, type=click.IntRange(0),
              help="Early stopping never stops before this many epochs (the best one is kept).")
@click.option("--early-stopping/--no-early-stopping", default=True,
              help="Stop after --patience epochs without validation improvement.")
@click.option("--validation-split", default=0.2, show_default=True,
              type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Share of the rows held out to pick the best epoch (and reported).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--device", default="cpu", show_default=True, type=click.Choice(["cpu", "cuda"]))
@click.option("--out", "-o", type=click.Path(dir_okay=False),
              help="Save the trained model here (.safetensors; a DATA run defaults to "
                   "model.safetensors).")
@click.option("--force", is_flag=True, help="Replace --out even if it is not a neuralab model.")
@click.option("--plot", type=click.Path(dir_okay=False), help="Save learning curves (PNG).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("--resume", type=click.Path(dir_okay=False),
              help="Continue a run interrupted with Ctrl-C from the file it saved "
                   "(same data and settings; --out defaults to that file).")
@click.option("--distributed", is_flag=True,
              help="Data-parallel over MPI ranks (run under mpiexec or srun): each rank reads "
                   "its part of DATA, rank 0 prints and writes the model.")
def train_command(data: str | None, dataset: str | None, out: str | None, force: bool,
                  quiet: bool, resume: str | None, distributed: bool, **flags: Any) -> None:
    """Train a network on a CSV/TSV/Parquet file (DATA --target COL) or a built-in data set
    (--dataset NAME) and report train, validation (and test) scores.

    Both hold out --validation-split of the rows and keep the epoch with the best
    validation score. A DATA file trains the tabular model (--model tabular: the RealMLP-TD
    recipe, which encodes the columns itself: robust scaling, categories one-hot or
    embedded, periodic numeric embeddings; --preset fast|default|best). --dataset (and
    --model mlp) trains a plain MLP on preprocessed columns (numbers median-imputed and
    standardised, pixels scaled together, text/boolean columns one-hot encoded, ID-like
    columns left out) with early stopping. The model file keeps the preprocessing:
    `neuralab predict` takes raw rows.
    """
    # a launcher's rank: without --distributed only rank 0 reports a bad --resume file
    rank = int(os.environ.get("PMI_RANK") or os.environ.get("OMPI_COMM_WORLD_RANK") or 0)
    comm = None
    if distributed or (resume is not None and _resumes_distributed(resume)):
        from . import _ranks  # noqa: PLC0415

        comm, note = _ranks.world()
        rank = comm.Get_rank()
        if note:
            click.echo(note, err=True)
    from click.core import ParameterSource  # noqa: PLC0415

    ctx = click.get_current_context()
    given = {k for k in flags if ctx.get_parameter_source(k) not in (ParameterSource.DEFAULT, None)}
    try:
        _train(data, dataset, out, force, quiet, resume, comm, flags, given)
    except click.ClickException:
        if rank != 0:  # every rank found it; rank 0 says it
            sys.exit(2)
        raise


def _resumes_distributed(path: str) -> bool:
    """True when ``path`` is the checkpoint of a ``--distributed`` run."""
    try:
        from ._resume import load_checkpoint  # noqa: PLC0415
        return bool(load_checkpoint(path)[0].get("distributed"))
    except Exception:  # noqa: BLE001 - the real reading reports the problem
        return False


def _train(data: str | None, dataset: str | None, out: str | None, force: bool, quiet: bool,
           resume: str | None, comm: Any, flags: dict, given: set | frozenset = frozenset()) -> None:
    with guard():
        if resume is not None:
            from ._resume import load_checkpoint  # noqa: PLC0415
            args, snapshot = load_checkpoint(resume)
            args["distributed"] = comm is not None
            # a checkpoint of an older version lacks the newer settings: theirs were these
            for key, value in {"data": None, "target": None, "task": None, "features": None,
                               "drop": None, "sep": None, "decimal": None, "text": None,
                               "categorical": None,
                               "model": "mlp", "residual": False, "min_epochs": 0,
                               "plot": None}.items():
                args.setdefault(key, value)
            target = out or resume
            if comm is not None:
                snapshot = _rank_snapshot(snapshot, comm)
            _checked_output(target, args, True, comm)
            _run(args, target, quiet, snapshot, comm)
            return
        from .. import datasets  # noqa: PLC0415

        if data is not None and dataset is not None:
            raise BadInput("give either a DATA file or --dataset NAME, not both")
        if data is not None and not os.path.exists(data) and flags["target"] in (None, "target"):
            try:  # `neuralab train iris` means the built-in data set
                dataset, data = datasets.canonical_name(data), None
            except ValueError:
                pass
        if data is None and dataset is None:
            raise BadInput("give a DATA file with --target COL, or --dataset NAME")
        if dataset is not None:
            try:
                dataset = datasets.canonical_name(dataset)
            except ValueError as e:
                raise BadInput(f"{e} (see `neuralab datasets`)") from None
        elif not os.path.exists(data):
            raise BadInput(f"no such file or built-in dataset: {data!r} (built-ins: "
                           f"{', '.join(datasets.list_datasets())})")
        if data is not None and out is None:
            out = "model.safetensors"
        args = _args(data, dataset, flags, given, distributed=comm is not None)
        args["distributed"] = comm is not None
        _checked_output(out, args, force, comm)
        _run(args, out, quiet, None, comm)


def _checked_output(out: str | None, args: dict, force: bool, comm: Any) -> None:
    if comm is None:
        _check_output(out, args, force)
        return
    from . import _ranks  # noqa: PLC0415

    # only rank 0 writes: only its view of the file system counts
    _ranks.agree(comm, lambda: _check_output(out, args, force) if comm.Get_rank() == 0 else None)


def _rank_snapshot(snapshot: Any, comm: Any) -> Any:
    """This rank's part of a checkpoint: its own random generators when the rank counts match."""
    state, arrays = snapshot
    saved = state.get("ranks") or [None]
    if len(saved) == comm.Get_size():
        if saved[0] is not None:
            state = {**state, **saved[comm.Get_rank()]}
    elif comm.Get_rank() == 0:
        click.echo(f"note: --resume: the run was interrupted on {len(saved)} rank(s), this one "
                   f"has {comm.Get_size()}: it continues from the saved weights, optimizer and "
                   "early stopping, with other batches than an uninterrupted run", err=True)
    return state, arrays


def _run(args: dict, out: str | None, quiet: bool, snapshot: Any, comm: Any) -> None:
    """run_training; with MPI ranks, an error on one rank ends every rank with one line."""
    if comm is None:
        from ._errors import echo_warnings  # noqa: PLC0415

        with echo_warnings():  # e.g. a validation row's unseen category: one 'warning:' line
            run_training(args, out, quiet, snapshot)
        return
    from . import _ranks  # noqa: PLC0415

    try:
        run_training(args, out, quiet, snapshot, comm=comm)
    except (click.ClickException, SystemExit):
        raise
    except (Exception, KeyboardInterrupt) as e:  # noqa: BLE001 - must end every rank
        if not _ranks.is_mpi(comm):
            raise
        _ranks.abort(comm, e)


def _model_for(data: str | None, dataset: str | None, f: dict, given: set | frozenset,
               distributed: bool) -> str:
    """The model a run trains: --model, or the default for its data and flags; refuses flags
    the chosen model does not read."""
    model = f["model_name"]
    if model is None:
        plain = dataset is not None or f["text"] or distributed or f["device"] == "cuda"
        model = DEFAULT_MODEL["dataset" if plain else "file"]
    if model == "tabular":
        from .train_tabular import refuse_mlp_flags  # noqa: PLC0415
        for flag, why in (("text", "--text (TF-IDF columns)"), ("distributed", "--distributed"),
                          ("device", "--device cuda")):
            if (f.get(flag) if flag != "distributed" else distributed) and \
                    (flag != "device" or f["device"] == "cuda"):
                raise BadInput(f"{why} trains the plain MLP: use --model mlp (the tabular model "
                               f"runs on the CPU, on one process)")
        refuse_mlp_flags(["--" + k.replace("_", "-") for k in MLP_ONLY if k in given])
        if f["hidden"] is not None and not parse_hidden(f["hidden"]):
            raise BadInput("--hidden none (no hidden layer) needs --model mlp")
    elif f.get("preset") is not None:
        raise BadInput("--preset sets the tabular model (--model tabular); --model mlp has none")
    elif f.get("ple_bins") is not None:
        raise BadInput("--ple-bins sets the tabular model (--model tabular); --model mlp has none")
    return model


def _args(data: str | None, dataset: str | None, f: dict, given: set | frozenset = frozenset(),
          distributed: bool = False) -> dict:
    """The JSON-able settings of a run (what a checkpoint stores for --resume)."""
    model = _model_for(data, dataset, f, given, distributed)
    if model != "tabular":
        f = {**f, **{k: v for k, v in MLP_DEFAULTS.items() if f[k] is None}}
    norm = "batch" if f["batch_norm"] else (None if f["norm"] == "none" else f["norm"])
    if f["device"] == "cuda":
        from .. import backend  # noqa: PLC0415
        if not backend.cuda_is_available():
            raise BadInput("--device cuda needs CuPy and a CUDA GPU: pip install \"neuralab[gpu]\"")
    if f["plot"]:
        require("matplotlib")
    return {"data": None if data is None else str(data), "dataset": dataset,
            "target": f["target"], "task": f["task"], "features": _split_list(f["features"]),
            "drop": _split_list(f["drop"]), "sep": f["sep"], "decimal": f["decimal"],
            "text": _split_list(f["text"]), "categorical": _split_list(f.get("categorical")),
            "model": model, "preset": f.get("preset"),
            "ple_bins": f.get("ple_bins"),
            "hidden": None if f["hidden"] is None else list(parse_hidden(f["hidden"])),
            "activation": f["activation"],
            "dropout": f["dropout"], "norm": norm, "residual": f["residual"],
            "optimizer": f["optimizer"], "lr": f["lr"], "l2": f["l2"], "epochs": f["epochs"],
            "batch_size": f["batch_size"],
            "patience": f["patience"] if f["early_stopping"] else 0,
            "min_epochs": f["min_epochs"], "validation_split": f["validation_split"],
            "seed": f["seed"], "device": f["device"], "plot": f["plot"]}


def _check_output(out: str | None, args: dict, force: bool) -> None:
    """Refuse, before any training, an --out that cannot be written or would destroy a file."""
    from ..io import check_output  # noqa: PLC0415

    inputs = [p for p in (args.get("data"),) if p]
    if out:
        check_output(out, inputs=inputs, force=force, kind="model")
    if args.get("plot"):
        check_output(args["plot"], inputs=inputs + ([out] if out else []), force=True, kind="plot")
