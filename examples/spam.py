"""SMS spam filtering: TF-IDF + MLP and a fastText-style model against the classical baselines.

Data: the SMS Spam Collection (5574 messages, 13.4% spam), sms_spam.tsv in $NEURALAB_DATA, ./data or ~/.neuralab/data (or
$NEURALAB_DATA/sms_spam.tsv). Stratified 80/20 split, seed 0. All four models see the same
split; LogisticRegression, MultinomialNB and the MLP see the same TF-IDF features.

Run:  python examples/spam.py [path/to/sms_spam.tsv]
Writes docs/apps/spam_confusion.png (confusion matrices of the two neural models).
"""
from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import neuralab as nl
from neuralab.apps.text import FastTextClassifier, TfidfFeatures, load_sms_spam

OUT = Path(__file__).resolve().parents[1] / "docs" / "apps"


def scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    from sklearn.metrics import accuracy_score, matthews_corrcoef, recall_score
    return {"accuracy": accuracy_score(y_true, y_pred),
            "spam recall": recall_score(y_true, y_pred, pos_label="spam"),
            "MCC": matthews_corrcoef(y_true, y_pred)}


def main(path: str | None = None) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import confusion_matrix
    from sklearn.model_selection import train_test_split
    from sklearn.naive_bayes import MultinomialNB

    texts, labels = load_sms_spam(path)
    tr_x, te_x, tr_y, te_y = train_test_split(texts, labels, test_size=0.2, stratify=labels,
                                              random_state=0)
    print(f"{len(texts)} messages ({np.mean(labels == 'spam'):.1%} spam): "
          f"{len(tr_x)} train / {len(te_x)} test, stratified, seed 0")
    tfidf = TfidfFeatures(max_features=3000, ngram_range=(1, 2), min_df=2)
    X_tr = tfidf.fit_transform(tr_x)
    X_te = tfidf.transform(te_x)
    print(f"TF-IDF: {X_tr.shape[1]} words and word pairs (vocabulary and idf kept as data)")

    results, preds, times = {}, {}, {}
    models = {
        "LogisticRegression (TF-IDF)": lambda: LogisticRegression(max_iter=2000),
        "MultinomialNB (TF-IDF)": lambda: MultinomialNB(),
        "MLP 3000-64-2, dropout 0.3 (TF-IDF)": lambda: nl.MLPClassifier(
            hidden_layer_sizes=(64,), dropout=0.3, max_iter=15, random_state=0),
    }
    for name, make in models.items():
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the MLP's "max_iter reached" is intended
            model = make().fit(X_tr, tr_y)
        times[name] = time.perf_counter() - start
        preds[name] = model.predict(X_te)
    name = "fastText-style (embeddings of words + bigrams)"
    start = time.perf_counter()
    ft = FastTextClassifier(embed_dim=32, ngrams=2, epochs=10, random_state=0).fit(tr_x, tr_y)
    times[name] = time.perf_counter() - start
    preds[name] = ft.predict(te_x)

    width = max(len(n) for n in preds) + 2
    print(f"\n{'model':<{width}}{'accuracy':>9}{'spam recall':>13}{'MCC':>8}{'fit s':>8}")
    for n, p in preds.items():
        results[n] = scores(te_y, p)
        r = results[n]
        print(f"{n:<{width}}{r['accuracy']:>9.4f}{r['spam recall']:>13.4f}{r['MCC']:>8.4f}"
              f"{times[n]:>8.1f}")
    print("(paper's best, a linear SVM, Almeida et al. 2011: about 0.976 accuracy)")

    example = "WINNER!! You have been selected for a 1000 cash prize. Call 09061701461 now"
    print(f"\nfastText on a new message: {example!r}")
    print(f"  -> {ft.predict([example])[0]} (p_spam = {ft.predict_proba([example])[0][1]:.3f}); "
          f"words that pushed it there: {[w for w, _ in ft.explain(example, top=5)]}")

    os.environ.setdefault("MPLCONFIGDIR", "/tmp/matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    OUT.mkdir(parents=True, exist_ok=True)
    shown = [n for n in preds if "MLP" in n or "fastText" in n]
    fig, axes = plt.subplots(1, len(shown), figsize=(4.6 * len(shown), 4))
    for ax, n in zip(axes, shown):
        cm = confusion_matrix(te_y, preds[n], labels=["ham", "spam"])
        ax.imshow(cm, cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=14,
                    color="white" if v > cm.max() / 2 else "black")
        ax.set_xticks([0, 1], ["ham", "spam"])
        ax.set_yticks([0, 1], ["ham", "spam"])
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{n.split(' (')[0]}\naccuracy {results[n]['accuracy']:.4f}, "
                     f"MCC {results[n]['MCC']:.3f}", fontsize=10)
    fig.tight_layout()
    fig.savefig(OUT / "spam_confusion.png", dpi=110)
    plt.close(fig)
    print(f"\nsaved {OUT / 'spam_confusion.png'}")
    return results


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
