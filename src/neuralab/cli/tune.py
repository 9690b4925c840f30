"""``neuralab tune``: grid or random hyperparameter search (``neuralab.tuning``), locally or on Dask.

Without ``--preset`` it searches an MLPClassifier/MLPRegressor over the ``--param`` ranges;
``--preset tabular`` searches a TabularClassifier/TabularRegressor at random over
``tuning.TABULAR_SPACE`` (plus any ``--param``), on the raw table.

Example (shell):
    neuralab tune -d digits --param hidden_layer_sizes=64,128 --param alpha=1e-4:1e-2:log
    neuralab tune credit.csv --target Status --preset tabular
"""
from __future__ import annotations

import time
import warnings
from typing import Any

import click

from ._errors import BadInput, guard, require
from ..io import check_output


EXAMPLE = ("Examples:\n\n\b\n"
           "  neuralab tune -d digits --param hidden_layer_sizes=64,128 "
           "--param alpha=1e-4:1e-2:log --search random --n-iter 8\n"
           "  neuralab tune -d digits --config search.toml --scheduler tcp://HOST:8786\n"
           "  neuralab tune houses.csv --target price --param alpha=1e-4:1e-2:log\n"
           "  neuralab tune credit.csv --target Status --preset tabular --n-iter 8 --max-iter 32\n"
           "  neuralab tune credit.csv --target Status --preset tabular --param dropout=0:0.1 "
           "--scheduler local\n\n"
           "--preset tabular: random search (8 candidates, 32 epochs each by default) of a\n"
           "TabularClassifier/Regressor over lr, hidden, dropout, weight_decay, label_smoothing\n"
           "(classification) and periodic; the space is tuning.TABULAR_SPACE (docs: Tables,\n"
           "Tuning). --param adds to it or replaces a range. The best model is refit on all\n"
           "rows and `neuralab predict` takes raw rows of the file.")


@click.command("tune", epilog=EXAMPLE)
@click.argument("data", required=False)
@click.option("--target", "-t", help="DATA (CSV/TSV/Parquet): the column to predict.")
@click.option("--dataset", "-d", metavar="NAME", help="A built-in data set (see `neuralab datasets`).")
@click.option("--param", "params", multiple=True, metavar="NAME=SPEC",
              help="A range: 64,128 | 1e-4:1e-2:log | 0:0.5 | 1:10:int (repeatable).")
@click.option("--config", type=click.Path(exists=True, dir_okay=False),
              help="TOML file with [params] (and optional search, n_iter, cv, [fixed]).")
@click.option("--preset", type=click.Choice(["tabular"]), default=None,
              help="tabular: a TabularClassifier/Regressor on the raw table, random search over "
                   "tuning.TABULAR_SPACE (--param adds to it).")
@click.option("--search", "method", type=click.Choice(["grid", "random"]), default=None,
              help="Grid or random search [default: grid; --preset tabular: random only].")
@click.option("--n-iter", type=click.IntRange(1), default=None,
              help="Candidates for random search [10; --preset tabular: 8, i.e. 25 fits with "
                   "--cv 3: about 2 minutes for 1,300 rows x 3 columns on 2 busy CPU cores].")
@click.option("--cv", type=click.IntRange(2), default=None, help="Cross-validation folds [3].")
@click.option("--max-iter", type=click.IntRange(1), default=None,
              help="Epochs per fit [100; --preset tabular: n_epochs, 32].")
@click.option("--n-jobs", type=int, default=None, help="Local parallel fits (-1: all cores).")
@click.option("--scheduler", default=None, metavar="local|tcp://HOST:8786",
              help="Run on Dask: 'local' starts a 2-worker LocalCluster, or a scheduler address.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "-o", default="best.safetensors", show_default=True,
              help="Where to save the best model (refit on all the data).")
@click.option("--force", is_flag=True, help="Replace --out even if it is not a neuralab model.")
@click.option("--quiet", is_flag=True, help="No per-fit progress lines.")
def tune_command(data: str | None, target: str | None, dataset: str | None, params: tuple,
                 config: str | None, preset: str | None, method: str | None,
                 n_iter: int | None, cv: int | None, max_iter: int | None, n_jobs: int | None,
                 scheduler: str | None, seed: int, out: str, force: bool, quiet: bool) -> None:
    """Grid or random hyperparameter search for an MLP on a file (DATA --target COL,
    preprocessed as `neuralab train` does) or a built-in data set (--dataset NAME);
    with --preset tabular, a random search for a TabularClassifier/Regressor on the raw table."""
    with guard():
        from .. import tuning
        from ..estimators import MLPClassifier, MLPRegressor

        if scheduler is not None:
            require("distributed")
        doc = tuning.load_toml(config) if config else {"params": {}}
        if preset == "tabular":
            _tune_tabular(data, target, dataset, tuning.parse_params(list(params)), doc, method,
                          n_iter, cv, max_iter, n_jobs, scheduler, seed, out, force, quiet,
                          [p for p in (data, config) if p])
            return
        space = dict(doc["params"])
        space.update(tuning.parse_params(list(params)))
        if not space:
            raise BadInput("give at least one --param NAME=SPEC or a --config file")
        check_output(out, inputs=[p for p in (data, config) if p], force=force, kind="model")
        prep = None
        if data is not None:
            if dataset is not None or target is None:
                raise BadInput("give DATA --target COL, or --dataset NAME")
            X, y, task, prep = tuning.load_file(data, target)
            dataset = data
        elif dataset is None:
            raise BadInput("give DATA --target COL, or --dataset NAME")
        else:
            X, y, task = tuning.load_builtin(dataset)
        fixed = {"max_iter": max_iter or doc.get("max_iter", 100), "random_state": seed,
                 **doc.get("fixed", {})}
        est = (MLPClassifier if task == "classification" else MLPRegressor)(**fixed)
        method = method or doc.get("search", "grid")
        where = f"Dask scheduler {scheduler}" if scheduler else f"n_jobs={n_jobs or 1}"
        click.echo(f"{method} search on {dataset} ({X.shape[0]} rows, {task}) with {where}")
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            search = tuning.run_search(est, space, X, y, method=method,
                                       n_iter=n_iter or doc.get("n_iter", 10),
                                       cv=cv or doc.get("cv", 3), n_jobs=n_jobs,
                                       scheduler=scheduler, random_state=seed,
                                       verbose=0 if quiet else 1)
        _summarise(caught)
        click.echo(f"\n{len(search.cv_results_['params'])} candidates in "
                   f"{time.perf_counter() - t0:.1f} s\n")
        click.echo(tuning.ranked_table(search))
        from ..io import save

        best = search.best_estimator_
        if prep is not None:  # a CLI model: `neuralab predict` then takes raw rows of the file
            from ..preprocessing import TabularModel
            best = TabularModel(prep, best, info={"data": dataset, "target": target,
                                                  "command": "neuralab tune"})
        shown = {k: tuning.plain(v) for k, v in search.best_params_.items()}
        path = save(best, out, metadata={
            "command": "neuralab tune", "dataset": dataset, "best_params": repr(shown),
            "best_cv_score": float(search.best_score_)})
        click.echo("\nbest: " + ", ".join(f"{k}={v}" for k, v in shown.items())
                   + f" (CV score {tuning.plain(float(search.best_score_))}); saved to {path}")


def _tune_tabular(data: str | None, target: str | None, dataset: str | None, params: dict,
                  doc: dict, method: str | None, n_iter: int | None, cv: int | None,
                  max_iter: int | None, n_jobs: int | None, scheduler: str | None, seed: int,
                  out: str, force: bool, quiet: bool, inputs: list[str]) -> None:
    """``--preset tabular``: random search of a Tabular estimator over TABULAR_SPACE + --param."""
    from .. import tuning
    from ..estimators import TabularClassifier, TabularRegressor
    from ..io import save

    method = method or doc.get("search", "random")
    if method != "random":
        # a grid over its continuous ranges would be 5 points each: thousands of candidates
        raise BadInput("--preset tabular searches at random only; drop --search grid "
                       "(or give --param ranges without --preset for a grid)")
    if data is not None and (dataset is not None or target is None):
        raise BadInput("give DATA --target COL, or --dataset NAME")
    if data is None and dataset is None:
        raise BadInput("give DATA --target COL, or --dataset NAME")
    check_output(out, inputs=inputs, force=force, kind="model")
    X, y, task = tuning.load_table(data, target) if data is not None else tuning.load_table(dataset)
    if data is not None:  # the columns `neuralab train` reads: ID-like and free text left out
        from .train_tabular import tabular_columns  # noqa: PLC0415
        _, columns = tabular_columns(X.assign(**{target: y}), target, click.echo, task=task,
                                     hint=False)
        X = X[columns]
    name = data if data is not None else dataset
    space = tuning.tabular_space(task)
    space.update(doc["params"])
    space.update(params)
    # one network per candidate: the search's own folds validate it (the default preset's
    # bags and its ple_bins trial would each fit more networks inside every fold)
    fixed = {"n_epochs": max_iter or doc.get("max_iter", tuning.TABULAR_EPOCHS),
             "n_ensemble": 1, "n_bags": 1, "ple_bins": 0,
             "random_state": seed, **doc.get("fixed", {})}
    est = (TabularClassifier if task == "classification" else TabularRegressor)(**fixed)
    tuning.check_names(est, space)  # before any output: a misspelt --param is one line
    where = f"Dask scheduler {scheduler}" if scheduler else f"n_jobs={n_jobs or 1}"
    click.echo(f"random search of a {type(est).__name__} on {name} ({X.shape[0]} rows, "
               f"{X.shape[1]} columns, {task}) with {where}")
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        search = tuning.run_search(est, space, X, y, method="random",
                                   n_iter=n_iter or doc.get("n_iter", tuning.TABULAR_N_ITER),
                                   cv=cv or doc.get("cv", 3), n_jobs=n_jobs, scheduler=scheduler,
                                   random_state=seed, verbose=0 if quiet else 1,
                                   shuffle=True)
    _summarise(caught)
    click.echo(f"\n{len(search.cv_results_['params'])} candidates in "
               f"{time.perf_counter() - t0:.1f} s\n")
    click.echo(tuning.ranked_table(search))
    # the best estimator, refit on every row; it takes raw rows (columns found by name)
    shown = {k: tuning.plain(v) for k, v in search.best_params_.items()}
    path = save(search.best_estimator_, out, metadata={
        "command": "neuralab tune --preset tabular", "dataset": name, "target": target or "target",
        "task": task, "best_params": repr(shown), "best_cv_score": float(search.best_score_)})
    click.echo("\nbest: " + ", ".join(f"{k}={v}" for k, v in shown.items())
               + f" (CV score {tuning.plain(float(search.best_score_))}); saved to {path}")


def _summarise(caught: list[Any]) -> None:
    """One line per kind of warning, with how many fits raised it."""
    counts: dict[str, int] = {}
    for w in caught:
        if issubclass(w.category, (DeprecationWarning, FutureWarning)):
            continue
        kind = w.category.__name__
        counts[kind] = counts.get(kind, 0) + 1
    for kind, n in counts.items():
        hint = (" (the epochs ran out before the loss settled; try a larger --max-iter)"
                if kind == "ConvergenceWarning" else "")
        click.echo(f"warning: {n} fit(s) raised a {kind}{hint}", err=True)
