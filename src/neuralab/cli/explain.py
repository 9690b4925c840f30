"""``neuralab explain``: which input columns drove a model's predictions, per row or overall.

Works on models saved by ``neuralab train`` (the preprocessing is applied first, and the
one-hot columns are summed back to the column they came from) and on saved estimators.

Example:
    neuralab explain model.safetensors new.csv --rows 0,5,9 --method ig --plot why.png
"""
from __future__ import annotations

import math
from typing import Any

import click
import numpy as np

from ._errors import BadInput, guard, require
from .files import _model_inputs, _read, load_model, stored_target

METHODS = {"ig": "integrated_gradients", "saliency": "saliency", "gradxinput": "gradient_x_input",
           "smoothgrad": "smoothgrad", "shap": "shap", "lime": "lime"}
EXAMPLE = """Examples:

\b
  neuralab explain churn.safetensors new_customers.csv --rows 0,5,9
  neuralab explain churn.safetensors new_customers.csv --global --plot importance.png
  neuralab explain digits.safetensors digits --rows 3 --method ig --plot digit3.png
"""


def _source_columns(prep: Any) -> list[str]:
    """The original column behind each model input (one-hot and date parts map back)."""
    sources = []
    for col in prep.spec["columns"]:
        if col["kind"] in ("numeric", "date"):
            sources.append(col["name"])
        elif col["kind"] == "text":  # each TF-IDF word is its own source: explanations name words
            sources.extend(f"{col['name']}:{w}" for w in col["tfidf"]["vocabulary"])
        else:
            n = len(col["categories"]) + bool(col["other"]) + bool(col["missing"])
            sources.extend([col["name"]] * n)
    return sources


class Explained:
    """The model's numeric inputs for a table, with names, source columns and label decoding.

    Example: ``exp = Explained(model, pd.read_csv("data.csv"))``
    """

    def __init__(self, model: Any, frame: Any) -> None:
        from ..preprocessing import TabularModel

        if isinstance(getattr(model, "encoding_", None), dict):  # the tabular model
            self.estimator = model
            table = model._table(frame, reset=False)
            self.X = model._encoder().transform(table)
            self.names = list(model.feature_names_out_)
            self.sources = model._encoder().source_columns()
            self.classes = list(getattr(model, "classes_", [])) or None
        elif isinstance(model, TabularModel):
            self.estimator = model.estimator
            self.X = np.asarray(model.features(frame), dtype=np.float32)
            self.names = list(model.preprocessor.feature_names)
            self.sources = _source_columns(model.preprocessor)
            self.classes = model.classes
        else:
            self.estimator = model
            X = _model_inputs(model, frame)
            self.X = np.asarray(X.to_numpy() if hasattr(X, "to_numpy") else X, dtype=np.float32)
            cols = getattr(model, "feature_names_in_", None)
            self.names = [str(c) for c in cols] if cols is not None else \
                [str(c) for c in frame.select_dtypes("number").columns[:self.X.shape[1]]]
            self.sources = list(self.names)
            self.classes = list(getattr(model, "classes_", [])) or None
        spec = getattr(getattr(model, "preprocessor", None), "spec", None)
        self.target = spec.get("target") if isinstance(spec, dict) else None
        if not hasattr(self.estimator, "model_"):
            raise BadInput(f"explain needs a neural network model; this file holds a "
                           f"{type(self.estimator).__name__}")
        side = math.isqrt(self.X.shape[1])
        numeric_only = self.sources == self.names
        self.image_side = side if numeric_only and side * side == self.X.shape[1] and side >= 8 else None

    def probabilities(self, rows: np.ndarray) -> np.ndarray | None:
        """Class probabilities of ``rows`` (None for a regressor).

        Example: ``exp.probabilities(np.array([0, 5]))``
        """
        if not hasattr(self.estimator, "predict_proba"):
            return None
        if isinstance(getattr(self.estimator, "encoding_", None), dict):  # X is encoded already
            from ..explain import _Explained
            return _Explained(self.estimator).outputs(self.X[rows])
        return self.estimator.predict_proba(self.X[rows])

    def label(self, index: int) -> str:
        """The name of output ``index``: its class label, or "output <index>" without classes.

        Example: ``exp.label(1)``
        """
        return str(self.classes[index]) if self.classes else f"output {index}"


def attributions(exp: Explained, rows: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    """(values per input column for each row, explained output index per row).

    Example: ``values, targets = attributions(exp, rows, "integrated_gradients")``
    """
    from .. import explain

    X = exp.X[rows]
    if method == "shap":
        background = exp.X[np.random.default_rng(0).permutation(len(exp.X))[:200]]
        att = explain.shap_values(exp.estimator, X, background=background)
        return att.values, att.target
    if method == "lime":
        index = {n: j for j, n in enumerate(exp.names)}
        values = np.zeros(X.shape)
        targets = explain._Explained(exp.estimator).targets(X, None)
        for i, row in enumerate(X):
            for rule, w in explain.lime_explanation(exp.estimator, row, exp.X, feature_names=exp.names,
                                                    num_features=min(10, X.shape[1])):
                j = index.get(rule) if rule in index else next(
                    (index[n] for n in sorted(index, key=len, reverse=True) if rule.startswith(n)), None)
                if j is not None:
                    values[i, j] += w
        return values, targets
    extra, model = {}, exp.estimator
    if isinstance(getattr(exp.estimator, "encoding_", None), dict):
        if method == "ig":
            # NOTE: the tabular model's periodic embeddings (cosines of high frequency) and its
            # embedded category codes make the path integral converge slowly: the default's
            # doubling to 4096 steps took 100 s for 320 rows; 256 steps rank the columns the same
            extra = {"max_steps": 256}
        n_num, n_bin, cards = exp.estimator._encoder().layout()
        if cards:
            # an embedded column's code has no gradient (a table lookup): the gradients are
            # taken on its one-hot block (the same network), then summed back to the column
            from ..estimators.tabular import _averaged_network, one_hot_codes  # noqa: PLC0415
            X, sizes = one_hot_codes(exp.estimator, X)
            model = _averaged_network(exp.estimator, one_hot_codes=True)
    att = getattr(explain, METHODS[method])(model, X, **extra)
    values = att.values
    if model is not exp.estimator:
        front = n_num + n_bin
        ends = np.cumsum([front, *sizes])
        values = np.hstack([values[:, :front]] + [values[:, a:b].sum(axis=1, keepdims=True)
                                                  for a, b in zip(ends[:-1], ends[1:])])
    return values, att.target


def _parse_rows(text: str, n: int) -> np.ndarray:
    try:
        rows = [int(r) for r in text.split(",") if r.strip()]
    except ValueError:
        raise BadInput(f"--rows must be comma-separated row numbers, got {text!r}") from None
    bad = [r for r in rows if not 0 <= r < n]
    if bad or not rows:
        raise BadInput(f"--rows {bad or text!r}: the data has rows 0 to {n - 1}")
    return np.asarray(rows)


def _bar_plot(ax: Any, names: list[str], values: np.ndarray, title: str) -> None:
    order = np.argsort(np.abs(values))[::-1][:12][::-1]
    colours = ["#0877bd" if values[j] >= 0 else "#f59322" for j in order]
    ax.barh([names[j] for j in order], values[order], color=colours)
    ax.axvline(0, color="#444", lw=0.8)
    ax.set_title(title, fontsize=10)
    ax.locator_params(axis="x", nbins=4)
    ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3))
    ax.set_xlabel("attribution (blue raises, orange lowers)")


@click.command("explain", epilog=EXAMPLE)
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("data")
@click.option("--rows", default="0", show_default=True, help="Comma-separated rows to explain.")
@click.option("--method", default="ig", show_default=True, type=click.Choice(list(METHODS)),
              help="ig = integrated gradients; gradxinput = gradient x input.")
@click.option("--global", "global_", is_flag=True,
              help="Importance over the whole table (mean |attribution|, and permutation "
                   "importance when the target column is present).")
@click.option("--top", default=5, show_default=True, type=click.IntRange(1), help="Features shown per row.")
@click.option("--plot", type=click.Path(dir_okay=False), help="Save a figure (PNG).")
@click.option("--sep", help="Column delimiter of a text file (default: detected).")
def explain_command(model: str, data: str, rows: str, method: str, global_: bool, top: int,
                    plot: str | None, sep: str | None) -> None:
    """Explain a model's predictions: the input columns that drove them."""
    with guard():
        if method in ("shap", "lime"):
            require(method)
        if plot:
            require("matplotlib")
        loaded = load_model(model)
        frame = _read(data, sep)
        exp = Explained(loaded, frame)
        exp.target = exp.target or stored_target(model)  # a tabular model's file names it
        if global_:
            _explain_global(exp, loaded, frame, method, top, plot)
        else:
            _explain_rows(exp, _parse_rows(rows, len(exp.X)), method, top, plot)


def _explain_rows(exp: Explained, rows: np.ndarray, method: str, top: int, plot: str | None) -> None:
    from ..explain import group_by_source

    values, targets = attributions(exp, rows, method)
    grouped, sources = group_by_source(values.reshape(len(rows), -1), exp.sources)
    probs = exp.probabilities(rows)
    for i, r in enumerate(rows):
        head = f"row {r}: explaining {exp.label(int(targets[i]))}"
        if probs is not None:
            head += f" (probability {probs[i, targets[i]]:.3f})"
        click.echo(head)
        order = np.argsort(-np.abs(grouped[i]))[:top]
        width = max(len(sources[j]) for j in order)
        for j in order:
            click.echo(f"  {sources[j]:<{width}}  {grouped[i, j]:+.4f}")
    if plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        n = min(len(rows), 6)
        fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.6 if exp.image_side else 3.2 + 0.15 * top),
                                 squeeze=False)
        for i in range(n):
            ax = axes[0, i]
            title = f"row {rows[i]}: {exp.label(int(targets[i]))}"
            if exp.image_side:
                s = exp.image_side
                lim = np.abs(values[i]).max() or 1.0
                im = ax.imshow(values[i].reshape(s, s), cmap="RdBu_r", vmin=-lim, vmax=lim)
                ax.contour(exp.X[rows[i]].reshape(s, s), levels=1, colors="k", linewidths=0.5)
                ax.set_title(title + f"\n{method} attribution", fontsize=10)
                ax.set_xticks([]), ax.set_yticks([])
                fig.colorbar(im, ax=ax, fraction=0.046)
            else:
                _bar_plot(ax, sources, grouped[i], title)
        fig.tight_layout()
        fig.savefig(plot, dpi=110)
        plt.close(fig)
        click.echo(f"figure saved to {plot}")


def _explain_global(exp: Explained, loaded: Any, frame: Any, method: str, top: int,
                    plot: str | None) -> None:
    from ..explain import group_by_source

    if method in ("shap", "lime"):
        raise BadInput("--global uses gradient methods (ig, saliency, gradxinput, smoothgrad)")
    rows = np.arange(min(len(exp.X), 1000))
    values, _ = attributions(exp, rows, method)
    grouped, sources = group_by_source(np.abs(values.reshape(len(rows), -1)), exp.sources)
    mean_abs = grouped.mean(axis=0)
    perm = None
    target = exp.target
    if target is not None and target in frame.columns:
        from sklearn.inspection import permutation_importance

        if hasattr(loaded, "preprocessor"):
            y = loaded.preprocessor.transform_target(frame)
            scorer_model = _SourceModel(loaded)
        else:  # an estimator on the raw table (the tabular model): its own score
            frame = frame[frame[target].notna()]
            y = frame[target].to_numpy()
            scorer_model = _SourceModel(loaded, raw=True)
        perm = permutation_importance(scorer_model, frame.drop(columns=[target]), y,
                                      n_repeats=3, random_state=0)
        names = list(frame.drop(columns=[target]).columns)
        perm = dict(zip(names, perm.importances_mean))
    order = np.argsort(-mean_abs)[:top]
    width = max(len(sources[j]) for j in order)
    head = f"{'column':<{width}}  mean |{method}|" + ("  permutation" if perm else "")
    click.echo(head)
    for j in order:
        line = f"{sources[j]:<{width}}  {mean_abs[j]:>11.4f}"
        if perm:
            line += f"  {perm.get(sources[j], float('nan')):>11.4f}"
        click.echo(line)
    if plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        if exp.image_side:
            fig, ax = plt.subplots(figsize=(4.4, 3.8))
            s = exp.image_side
            im = ax.imshow(np.abs(values).mean(axis=0).reshape(s, s), cmap="viridis")
            ax.set_title(f"mean |{method}| per pixel", fontsize=10)
            ax.set_xticks([]), ax.set_yticks([])
            fig.colorbar(im, ax=ax, fraction=0.046)
        else:
            fig, ax = plt.subplots(figsize=(6, 0.5 + 0.3 * len(order)))
            ax.barh([sources[j] for j in order[::-1]], mean_abs[order[::-1]], color="#0877bd")
            ax.set_xlabel(f"mean |{method} attribution|")
            ax.set_title("Global importance per input column", fontsize=10)
        fig.tight_layout()
        fig.savefig(plot, dpi=110)
        plt.close(fig)
        click.echo(f"figure saved to {plot}")


class _SourceModel:
    """Adapts a CLI model to scikit-learn's scorer protocol on the raw table (for permutations)."""

    def __init__(self, model: Any, raw: bool = False) -> None:
        self.model, self.raw = model, raw

    def fit(self, *args: Any) -> "_SourceModel":  # pragma: no cover - never refitted
        return self

    def score(self, frame: Any, y: Any) -> float:
        if self.raw:  # accuracy or R^2 on the table as it is
            return float(self.model.score(frame, y))
        pred = self.model.estimator.predict(self.model.features(frame))
        if self.model.task == "classification":
            return float(np.mean(pred == y))
        return -float(np.mean((pred - y) ** 2))
