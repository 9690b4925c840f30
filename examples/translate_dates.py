"""Date translation: a character seq2seq model with attention turns human dates into ISO 8601.

Inputs are generated offline from ``datetime``: 29 formats in English, French, German and
Spanish ("25 Nov 2026", "Wednesday, November 25, 2026", "11/25/26", "mercredi 25 novembre
2026", "Mittwoch, 25. November 2026", "25 de noviembre de 2026", ...). Training and test
dates are disjoint days of 1950-2049 (10% of the days are held out).

Run:  python examples/translate_dates.py            # trains (about 20000 pairs, 12 epochs)
      python examples/translate_dates.py --model F  # evaluate an already trained model file
Writes docs/apps/dates_attention.png and, after training, the model that
``neuralab translate-dates`` uses (src/neuralab/translate_dates.safetensors).
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

import neuralab as nl
from neuralab.apps.translate import default_model_path, make_dates, split_days, train_translator

OUT = Path(__file__).resolve().parents[1] / "docs" / "apps"
EXAMPLES = ["25 Nov 2026", "Wednesday, November 25, 2026", "11/25/26", "mercredi 25 novembre 2026",
            "Mittwoch, 25. November 2026", "25 de noviembre de 2026", "3 juin 1987", "1.2.1950"]


def attention_figure(model, text: str, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    (iso,), attn = model.greedy([text])
    w = attn[0, : len(iso) + 1, : len(text)]
    fig, ax = plt.subplots(figsize=(0.32 * len(text) + 2, 0.32 * (len(iso) + 1) + 1.6))
    ax.imshow(w, cmap="viridis", aspect="auto", vmin=0, vmax=1)
    ax.set_xticks(range(len(text)), list(text))
    ax.set_yticks(range(len(iso) + 1), list(iso) + ["<end>"])
    ax.set_xlabel("input characters")
    ax.set_ylabel("output characters")
    ax.set_title(f"attention: {text!r} -> {iso}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _pandas_parse(text: str) -> str | None:
    import warnings

    import pandas as pd
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return pd.to_datetime(text, format="mixed").date().isoformat()
        except (ValueError, TypeError, OverflowError):
            return None


def main(model_path: str | None = None) -> dict:
    if model_path:
        model = nl.load(model_path)
        print(f"loaded {model_path}")
    else:
        start = time.perf_counter()
        model = train_translator(n_train=20000, epochs=12, batch_size=64, random_state=0,
                                 verbose=True)
        print(f"trained in {time.perf_counter() - start:.0f} s")
        path = nl.save(model, default_model_path())
        print(f"saved {path} ({path.stat().st_size / 1e6:.2f} MB)")
    print(f"{model.num_parameters():,} parameters")
    results = {}
    for beam in (1, 4):
        start = time.perf_counter()
        results[beam] = model.evaluate(2000, beam_width=beam)
        print(f"exact match on 2000 held-out dates, {'greedy' if beam == 1 else f'beam {beam}'}: "
              f"{results[beam]:.4f} ({time.perf_counter() - start:.1f} s)")
    # The classical alternative: a rule-based parser (pandas' to_datetime, dateutil inside),
    # on the same held-out pairs that evaluate() uses.
    _, test_days = split_days(0.1, 0)
    src, tgt = make_dates(2000, np.random.default_rng(10_000), test_days)
    results["pandas"] = float(np.mean([_pandas_parse(s) == t for s, t in zip(src, tgt)]))
    print(f"exact match, pandas.to_datetime(format='mixed') on the same dates: {results['pandas']:.4f}")
    pred = model.translate(src)
    wrong = [(s, p, t) for s, p, t in zip(src, pred, tgt) if p != t]
    print(f"greedy mistakes ({len(wrong)}): {wrong[:5]}")
    for text, iso in zip(EXAMPLES, model.translate(EXAMPLES, beam_width=4)):
        print(f"  {text!r:35} -> {iso}")
    os.environ.setdefault("MPLCONFIGDIR", "/tmp/matplotlib")
    OUT.mkdir(parents=True, exist_ok=True)
    attention_figure(model, "Wednesday, November 25, 2026", OUT / "dates_attention.png")
    print(f"saved {OUT / 'dates_attention.png'}")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="evaluate this trained model file instead of training")
    main(parser.parse_args().model)
