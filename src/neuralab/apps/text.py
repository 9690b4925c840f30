"""Text classification: a tokenizer, TF-IDF features stored as data, and a fastText-style model.

Three pieces, each usable alone (the first two live in ``apps.text_features``, which trains
nothing, and are re-exported here):

- ``tokenize(text)``: lower-cased words, numbers and a few symbols; runs of 5+ digits (phone
  numbers, short codes) also give the token ``<longnum>``, since spam leans on them.
- ``TfidfFeatures``: scikit-learn's TF-IDF vectoriser fitted once, then kept as plain data
  (the vocabulary in column order and one idf weight per column), so a model file can hold it
  as JSON and transform new messages without pickling a vectoriser.
- ``FastTextClassifier``: Joulin et al. (2016) "Bag of Tricks": the embeddings of a message's
  words and word bigrams are averaged and a linear layer classifies the mean. It is a
  scikit-learn estimator (``fit(texts, y)``, ``predict``, ``predict_proba``) and ``nl.save``
  stores it, vocabulary included, as data.

Example:
    >>> from neuralab.apps.text import FastTextClassifier, TfidfFeatures, tokenize
    >>> tokenize("WIN £1000 now! Call 09061701461")
    ['win', '£', '1000', 'now', '!', 'call', '09061701461', '<longnum>']
    >>> clf = FastTextClassifier(random_state=0).fit(texts, labels)
    >>> clf.explain("Free entry to win a prize")[:2]   # words that pushed towards the answer
    [('prize', ...), (..., ...)]
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from ..nn import Embedding, Linear, Module
from ..tensor import Tensor
from .text_features import (LONGNUM, TfidfFeatures, _as_texts, text_column_spec,  # noqa: F401
                            text_feature_names, tokenize, transform_text_column)

__all__ = ["tokenize", "TfidfFeatures", "FastText", "FastTextClassifier", "load_sms_spam",
           "text_column_spec", "transform_text_column"]

PAD, UNK = "<pad>", "<unk>"


def load_sms_spam(path: str | None = None) -> tuple[list[str], np.ndarray]:
    """The SMS Spam Collection as (messages, labels 'ham'/'spam'); reads a local TSV, never downloads.

    ``path`` defaults to ``sms_spam.tsv`` in ``$NEURALAB_DATA``, ``./data`` or ``~/.neuralab/data``.
    Example: ``texts, labels = load_sms_spam(); len(texts)  # 5574``
    """
    import csv
    from pathlib import Path
    from ..datasets import data_dirs, find_data_file
    candidates = [path] if path else [find_data_file("sms_spam.tsv")]
    for p in candidates:
        if p and Path(p).is_file():
            with open(p, encoding="utf-8", newline="") as f:
                rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
            header, rows = rows[0], [r for r in rows[1:] if r]
            if header[:2] != ["Label", "SMS"]:
                raise ValueError(f"{p}: expected the header 'Label<TAB>SMS', got {header[:2]}")
            bad = next((i for i, r in enumerate(rows) if len(r) != 2), None)
            if bad is not None:
                raise ValueError(f"{p}: row {bad + 2} has {len(rows[bad])} fields, expected 2")
            return [r[1] for r in rows], np.array([r[0] for r in rows])
    where = path or ", ".join(str(d) for d in data_dirs())
    raise FileNotFoundError(f"sms_spam.tsv not found in {where}; pass its path or put it in one of "
                            f"these folders (NEURALAB_DATA names your own)")


# ============================================================================ fastText
def _ngrams(tokens: list[str], n: int) -> list[str]:
    out = list(tokens)
    for k in range(2, n + 1):
        out.extend(" ".join(tokens[i:i + k]) for i in range(len(tokens) - k + 1))
    return out


class FastText(Module):
    """Mean of token embeddings, then a linear layer (Joulin et al. 2016).

    Args:
        vocab_size: rows of the embedding table (row 0 is padding).
        embed_dim: embedding width.
        num_classes: output logits.

    Example:
        >>> net = FastText(1000, 32, 2, rng=0)
        >>> net(np.array([[5, 9, 0, 0]])).shape     # ids (N, T), 0 = padding
        (1, 2)
    """

    def __init__(self, vocab_size: int, embed_dim: int, num_classes: int,
                 rng: np.random.Generator | int | None = None) -> None:
        super().__init__()
        rng = np.random.default_rng(rng)
        self.embedding = Embedding(vocab_size, embed_dim, padding_idx=0, rng=rng)
        # N(0, 1) rows make the first means noisy; start them at the scale of 1/sqrt(dim).
        self.embedding.weight.data *= np.float32(1.0 / np.sqrt(embed_dim))
        self.fc = Linear(embed_dim, num_classes, rng=rng)

    def pooled(self, ids: Any) -> Tensor:
        """The mean embedding of each row's non-padding tokens, (N, embed_dim)."""
        ids = np.asarray(ids.data if isinstance(ids, Tensor) else ids)
        mask = (ids != 0).astype(self.fc.weight.dtype)
        count = np.maximum(mask.sum(axis=1, keepdims=True), 1.0)
        emb = self.embedding(ids)
        return (emb * Tensor(mask[:, :, None])).sum(axis=1) * Tensor(1.0 / count)

    def forward(self, ids: Any) -> Tensor:
        return self.fc(self.pooled(ids))


class FastTextClassifier(ClassifierMixin, BaseEstimator):
    """fastText-style text classifier: averaged word (+ bigram) embeddings and a linear layer.

    Args:
        embed_dim: embedding width.
        ngrams: 1 for words only, 2 to add word bigrams (fastText's trick for word order).
        min_count: keep tokens/n-grams seen at least this often in training.
        max_len: tokens kept per message (longer ones are cut).
        epochs, batch_size, lr: Adam training settings.
        weight_decay: AdamW's decoupled weight decay.
        random_state: seed or Generator (initial weights and batch order).

    Attributes after fit: ``classes_``, ``vocabulary_`` (list, index = embedding row),
    ``model_`` (the FastText network), ``loss_curve_``.

    Example:
        >>> clf = FastTextClassifier(epochs=10, random_state=0).fit(texts, labels)
        >>> clf.predict(["WINNER!! claim your prize now"])
        array(['spam'], dtype='<U4')
    """

    def __init__(self, embed_dim: int = 32, ngrams: int = 2, min_count: int = 2,
                 max_len: int = 96, epochs: int = 10, batch_size: int = 32, lr: float = 5e-3,
                 weight_decay: float = 0.0, random_state: Any = None) -> None:
        self.embed_dim, self.ngrams, self.min_count, self.max_len = embed_dim, ngrams, min_count, max_len
        self.epochs, self.batch_size, self.lr = epochs, batch_size, lr
        self.weight_decay, self.random_state = weight_decay, random_state

    # -------------------------------------------------------------- tokens -> ids
    def _grams(self, text: Any) -> list[str]:
        return _ngrams(tokenize(text), self.ngrams)

    def encode(self, texts: Iterable[Any]) -> np.ndarray:
        """Token ids (N, T), 0 = padding, 1 = unknown; T is the longest message (<= max_len)."""
        index = self._index()
        rows = [[index.get(g, 1) for g in self._grams(t)][: self.max_len] for t in _as_texts(texts)]
        out = np.zeros((len(rows), max([len(r) for r in rows] + [1])), np.int64)
        for i, r in enumerate(rows):
            out[i, : len(r)] = r
        return out

    def _index(self) -> dict[str, int]:
        if not hasattr(self, "vocabulary_"):
            raise ValueError("this FastTextClassifier is not fitted yet; call fit(texts, y) first")
        return {w: i for i, w in enumerate(self.vocabulary_)}  # ~1 ms; not kept (saved files stay small)

    # -------------------------------------------------------------- fitting
    def fit(self, X: Sequence[Any], y: Sequence[Any]) -> "FastTextClassifier":
        """Build the vocabulary from ``X`` (texts) and train on labels ``y``; returns self."""
        from .. import optim
        texts = _as_texts(X)
        y = np.asarray(y)
        if len(texts) != len(y):
            raise ValueError(f"FastTextClassifier.fit: {len(texts)} texts but {len(y)} labels")
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"FastTextClassifier.fit: need two classes, got {self.classes_.tolist()}")
        counts = Counter(g for t in texts for g in set(self._grams(t)))
        kept = sorted(w for w, c in counts.items() if c >= self.min_count)
        self.vocabulary_ = [PAD, UNK] + kept
        rng = np.random.default_rng(self.random_state)
        self.model_ = FastText(len(self.vocabulary_), self.embed_dim,
                                 len(self.classes_), rng=rng)
        opt = optim.AdamW(self.model_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        self._train(opt, self.encode(texts), y_idx, rng)
        self.n_iter_ = self.epochs
        return self

    def _train(self, opt: Any, ids_all: np.ndarray, y_idx: np.ndarray,
               rng: np.random.Generator) -> None:
        """Train ``model_`` with ``nl.fit``: shuffled batches of token ids, padding trimmed per batch."""
        from .. import functional as F
        from ..training import fit
        model, lengths = self.model_, (ids_all != 0).sum(axis=1)

        def batches() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            order = rng.permutation(len(ids_all))
            for start in range(0, len(order), self.batch_size):
                b = order[start:start + self.batch_size]
                yield ids_all[b, : max(int(lengths[b].max()), 1)], y_idx[b]

        def train_step(ids: np.ndarray, yb: np.ndarray, _: Any) -> tuple[float, None]:
            loss = F.cross_entropy(model(ids), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss.item(), None

        # Small matrices: extra BLAS threads only add synchronisation (slower on a busy machine).
        hist = fit(model, batches, optimizer=opt, epochs=self.epochs, batch_size=self.batch_size,
                   seed=rng, verbose=0, blas_threads=1, train_step=train_step)
        self.loss_curve_ = [float(v) for v in hist.history["loss"]]

    # -------------------------------------------------------------- predicting
    def decision_function(self, X: Sequence[Any]) -> np.ndarray:
        """Logits (N, n_classes)."""
        from ..tensor import no_grad
        ids = self.encode(X)
        with no_grad():
            return self.model_(ids).numpy()

    def predict_proba(self, X: Sequence[Any]) -> np.ndarray:
        """Class probabilities (N, n_classes), columns in ``classes_`` order."""
        from .. import functional as F
        return F.softmax(Tensor(self.decision_function(X)), axis=1).numpy()

    def predict(self, X: Sequence[Any]) -> np.ndarray:
        """The most probable class of each text."""
        return self.classes_[self.decision_function(X).argmax(axis=1)]

    def explain(self, text: str, top: int = 5) -> list[tuple[str, float]]:
        """The words/bigrams that pushed this text towards its predicted class, strongest first.

        The logit is linear in the mean embedding, so each token's share of the winning logit
        minus the runner-up's is exact: ``(w_win - w_other) . e_token / n_tokens``.
        Example: ``clf.explain("Free entry to win")  # [('free', 1.9), ('win', 1.2), ...]``
        """
        ids = self.encode([text])[0]
        ids = ids[ids != 0]
        if len(ids) == 0:
            return []
        logits = self.decision_function([text])[0]
        order = np.argsort(logits)[::-1]
        w = self.model_.fc.weight.data
        direction = w[order[0]] - w[order[1]]
        emb = self.model_.embedding.weight.data[ids]
        share = emb @ direction / len(ids)
        scores: dict[str, float] = {}
        for i, s in zip(ids, share):
            word = self.vocabulary_[i]
            scores[word] = scores.get(word, 0.0) + float(s)
        ranked = sorted(scores.items(), key=lambda kv: -kv[1])
        return ranked[:top]
