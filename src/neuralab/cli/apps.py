"""`neuralab recommend train/evaluate/recommend` and `neuralab translate-dates` (applications).

Heavy imports happen inside the commands.

Example (shell):
    neuralab recommend evaluate clicks.csv --user user_id --item item_id --plot hr.png
    neuralab translate-dates "25 Nov 2026" "mercredi 25 novembre 2026"
"""
from __future__ import annotations

import time
from typing import Any

import click

from ._errors import BadInput, guard


@click.group("recommend", epilog="Examples:\n\n\b\n"
            "  neuralab recommend evaluate clicks.csv --user user_id --item item_id --plot hr.png\n"
            "  neuralab recommend train clicks.csv --user user_id --item item_id --out rec.safetensors\n"
            "  neuralab recommend recommend rec.safetensors alice -k 10")
def recommend_group() -> None:
    """Recommendations from implicit feedback (user,item[,rating] CSV): NCF vs baselines."""


def _interactions(data: str, user: str, item: str, rating: str | None,
                  min_rating: float | None, sep: str | None) -> tuple[Any, Any]:
    from ..data import read_table  # noqa: PLC0415
    frame = read_table(data, sep=sep)
    missing = [c for c in (user, item, rating) if c is not None and c not in frame.columns]
    if missing:
        raise BadInput(f"column(s) {missing} not in {data}; columns are {list(frame.columns)[:12]}")
    frame = frame.dropna(subset=[user, item])
    if rating is not None and min_rating is not None:
        frame = frame[frame[rating] >= min_rating]
    if len(frame) < 2:
        raise BadInput(f"{data}: fewer than two interactions to learn from")
    return frame[user].astype(str).to_numpy(), frame[item].astype(str).to_numpy()


def _interaction_options(fn: Any) -> Any:
    for opt in reversed([
            click.argument("data"),
            click.option("--user", "-u", default="user", show_default=True, help="User id column."),
            click.option("--item", "-i", default="item", show_default=True, help="Item id column."),
            click.option("--rating", help="Optional rating column (see --min-rating)."),
            click.option("--min-rating", type=float,
                         help="Keep only rows whose rating is at least this (implicit positives)."),
            click.option("--sep", help="Column delimiter (default: detected)."),
            click.option("--epochs", default=20, show_default=True, type=click.IntRange(1)),
            click.option("--seed", default=0, show_default=True, type=int)]):
        fn = opt(fn)
    return fn


@recommend_group.command("train")
@_interaction_options
@click.option("--out", "-o", default="recommender.safetensors", show_default=True,
              type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Replace --out even if it is not a neuralab model.")
def recommend_train(data: str, user: str, item: str, rating: str | None, min_rating: float | None,
                    sep: str | None, epochs: int, seed: int, out: str, force: bool) -> None:
    """Train neural collaborative filtering (NeuMF) on every interaction in DATA and save it."""
    with guard():
        from ..io import save  # noqa: PLC0415
        from ..apps.recommend import NCFRecommender  # noqa: PLC0415
        from ..io import check_output  # noqa: PLC0415

        check_output(out, inputs=[data], force=force, kind="model")
        users, items = _interactions(data, user, item, rating, min_rating, sep)
        start = time.perf_counter()
        rec = NCFRecommender(epochs=epochs, random_state=seed).fit(users, items)
        click.echo(f"trained NCF on {len(users)} interactions ({len(rec.user_ids_)} users, "
                   f"{len(rec.item_ids_)} items) in {time.perf_counter() - start:.1f} s, "
                   f"final loss {rec.loss_curve_[-1]:.4f}")
        save(rec, out)
        click.echo(f"saved {out}")


@recommend_group.command("evaluate")
@_interaction_options
@click.option("--plot", type=click.Path(dir_okay=False), help="Save the HR@K curves (PNG).")
def recommend_evaluate(data: str, user: str, item: str, rating: str | None,
                       min_rating: float | None, sep: str | None, epochs: int, seed: int,
                       plot: str | None) -> None:
    """Leave-one-out HR@10 / NDCG@10 of NCF against popularity and PureSVD on DATA."""
    with guard():
        from ..apps.recommend import (NCFRecommender, Popularity, PureSVD,  # noqa: PLC0415
                                leave_one_out_report, plot_hit_rate)
        users, items = _interactions(data, user, item, rating, min_rating, sep)
        models = {"popularity": Popularity(), "PureSVD (k=16)": PureSVD(16),
                  "NCF (NeuMF)": NCFRecommender(epochs=epochs, random_state=seed)}
        report = leave_one_out_report(users, items, models=models, random_state=seed)
        click.echo(report["table"])
        if plot:
            plot_hit_rate(report["results"], plot)
            click.echo(f"saved {plot}")


@recommend_group.command("recommend")
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("user")
@click.option("-k", default=10, show_default=True, type=click.IntRange(1), help="How many items.")
@click.option("--include-seen", is_flag=True, help="Also list items the user already has.")
def recommend_recommend(model: str, user: str, k: int, include_seen: bool) -> None:
    """The top K items for USER from a MODEL saved by `neuralab recommend train`."""
    with guard():
        from ..io import load  # noqa: PLC0415
        rec = load(model)
        if not hasattr(rec, "recommend"):
            raise BadInput(f"{model} is not a recommender (it holds a {type(rec).__name__})")
        for rank, (it, score) in enumerate(rec.recommend(user, k=k, exclude_seen=not include_seen), 1):
            click.echo(f"{rank:>3}  {it}  {score:.3f}")


@click.command("translate-dates", epilog="Example:\n\n\b\n"
              "  neuralab translate-dates \"25 Nov 2026\" \"mercredi 25 novembre 2026\" 11/25/26")
@click.argument("dates", nargs=-1, required=True)
@click.option("--beam", default=1, show_default=True, type=click.IntRange(1),
              help="Beam width (1: greedy decoding).")
@click.option("--model", "model_path", type=click.Path(dir_okay=False),
              help="Model file (default: the one shipped with neuralab).")
def translate_dates_command(dates: tuple[str, ...], beam: int, model_path: str | None) -> None:
    """Translate human-written DATES ("25 Nov 2026", "11/25/26", "3 juin 1987") to ISO 8601
    with a character seq2seq model with attention."""
    with guard():
        from ..apps.translate import load_or_train  # noqa: PLC0415
        model = load_or_train(model_path)
        bad = 0
        for text, iso in zip(dates, model.translate(list(dates), beam_width=beam)):
            problem = _not_a_date(text, iso)
            if problem:
                bad += 1
                click.echo(f"{text}\t! {problem}")
            else:
                click.echo(f"{text}\t{iso}")
        if bad == len(dates):
            raise BadInput("none of the inputs is a date the model can translate")


def _not_a_date(text: str, iso: str) -> str | None:
    """Why a translation is not to be trusted, or None: the input must hold a number (a day or
    a year) and the output must be a real calendar date."""
    import datetime  # noqa: PLC0415

    if not any(ch.isdigit() for ch in text):
        return "not a date (no day or year in it)"
    try:
        datetime.date.fromisoformat(iso)
    except ValueError:
        return f"not a valid date (it would read as {iso}, which does not exist)"
    return None
