"""``neuralab tune``: grid or random hyperparameter search (``neuralab.tuning``), locally or on Dask.

Example (shell):
    neuralab tune -d digits --param hidden_layer_sizes=64,128 --param alpha=1e-4:1e-2:log
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
           "  neuralab tune houses.csv --target price --param alpha=1e-4:1e-2:log")


@click.command("tune", epilog=EXAMPLE)
@click.argument("data", required=False)
@click.option("--target", "-t", help="DATA (CSV/TSV/Parquet): the column to predict.")
@click.option("--dataset", "-d", metavar="NAME", help="A built-in data set (see `neuralab datasets`).")
@click.option("--param", "params", multiple=True, metavar="NAME=SPEC",
              help="A range: 64,128 | 1e-4:1e-2:log | 0:0.5 | 1:10:int (repeatable).")
@click.option("--config", type=click.Path(exists=True, dir_okay=False),
              help="TOML file with [params] (and optional search, n_iter, cv, [fixed]).")
@click.option("--search", "method", type=click.Choice(["grid", "random"]), default=None,
              help="Grid or random search [default: grid].")
@click.option("--n-iter", type=click.IntRange(1), default=None, help="Candidates for random search [10].")
@click.option("--cv", type=click.IntRange(2), default=None, help="Cross-validation folds [3].")
@click.option("--max-iter", type=click.IntRange(1), default=None, help="Epochs per fit [100].")
@click.option("--n-jobs", type=int, default=None, help="Local parallel fits (-1: all cores).")
@click.option("--scheduler", default=None, metavar="local|tcp://HOST:8786",
              help="Run on Dask: 'local' starts a 2-worker LocalCluster, or a scheduler address.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "-o", default="best.safetensors", show_default=True,
              help="Where to save the best model (refit on all the data).")
@click.option("--force", is_flag=True, help="Replace --out even if it is not a neuralab model.")
@click.option("--quiet", is_flag=True, help="No per-fit progress lines.")
def tune_command(data: str | None, target: str | None, dataset: str | None, params: tuple,
                 config: str | None, method: str | None, n_iter: int | None, cv: int | None,
                 max_iter: int | None, n_jobs: int | None, scheduler: str | None, seed: int,
                 out: str, force: bool, quiet: bool) -> None:
    """Grid or random hyperparameter search for an MLP on a file (DATA --target COL,
    preprocessed as `neuralab train` does) or a built-in data set (--dataset NAME)."""
    with guard():
        from .. import tuning
        from ..estimators import MLPClassifier, MLPRegressor

        if scheduler is not None:
            require("distributed")
        doc = tuning.load_toml(config) if config else {"params": {}}
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
