"""Text features without training: the tokenizer and TF-IDF features kept as plain data.

``neuralab.apps.text`` re-exports them beside its fastText classifier; the tabular
preprocessing (``neuralab train DATA --text COL``) uses the column hooks at the end.

Example:
    >>> from neuralab.apps.text_features import TfidfFeatures, tokenize
    >>> tokenize("Call 09061701461 now!")
    ['call', '09061701461', '<longnum>', 'now', '!']
"""
from __future__ import annotations

import re
from typing import Any, Iterable

import numpy as np

__all__ = ["tokenize", "TfidfFeatures", "text_column_spec", "transform_text_column",
           "text_feature_names"]

_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?|\d+|[£$€!?&]")
LONGNUM = "<longnum>"


def tokenize(text: Any) -> list[str]:
    """Lower-cased words, digit runs and the symbols £ $ € ! ? &; 5+ digits add ``<longnum>``.

    Example: ``tokenize("Call 09061701461 now!")  # ['call', '09061701461', '<longnum>', 'now', '!']``
    """
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return []
    out = []
    for tok in _TOKEN.findall(str(text).lower()):
        out.append(tok)
        if tok.isdigit() and len(tok) >= 5:
            out.append(LONGNUM)
    return out


# ============================================================================ TF-IDF as data
class TfidfFeatures:
    """TF-IDF features whose fitted state is plain data: ``vocabulary`` (list) and ``idf`` (list).

    Fitting uses scikit-learn's ``TfidfVectorizer`` (with ``tokenize``); transforming recomputes
    the same numbers from the stored lists: counts of each vocabulary n-gram, ``1 + log(count)``
    if ``sublinear_tf``, times idf, rows scaled to unit length.

    Args:
        max_features: keep the most frequent n-grams only.
        ngram_range: (1, 2) for words and word pairs.
        min_df: drop n-grams seen in fewer documents.
        sublinear_tf: use 1 + log(tf) instead of tf.

    Example:
        >>> tf = TfidfFeatures(max_features=3000).fit(texts)
        >>> X = tf.transform(["free prize, call now"])            # (1, 3000) float32
        >>> same = TfidfFeatures.from_dict(tf.to_dict())          # JSON-able
    """

    def __init__(self, max_features: int | None = 5000, ngram_range: tuple[int, int] = (1, 2),
                 min_df: int = 2, sublinear_tf: bool = True) -> None:
        self.max_features, self.ngram_range = max_features, tuple(ngram_range)
        self.min_df, self.sublinear_tf = min_df, sublinear_tf
        self.vocabulary: list[str] | None = None
        self.idf: list[float] | None = None

    def fit(self, texts: Iterable[Any]) -> "TfidfFeatures":
        """Learn the vocabulary and idf weights from ``texts``; returns self."""
        from sklearn.feature_extraction.text import TfidfVectorizer
        texts = _as_texts(texts)
        vec = TfidfVectorizer(tokenizer=tokenize, lowercase=False, token_pattern=None,
                              ngram_range=self.ngram_range, min_df=self.min_df,
                              max_features=self.max_features, sublinear_tf=self.sublinear_tf)
        try:
            vec.fit(texts)
        except ValueError as e:  # e.g. "empty vocabulary"
            raise ValueError(f"TF-IDF: cannot build a vocabulary from {len(texts)} texts ({e})") from None
        self.vocabulary = [str(w) for w in vec.get_feature_names_out()]
        self.idf = [float(v) for v in vec.idf_]
        return self

    def _vectorizer(self):
        from sklearn.feature_extraction.text import CountVectorizer
        if self.vocabulary is None:
            raise ValueError("TfidfFeatures is not fitted yet; call fit(texts) first")
        return CountVectorizer(tokenizer=tokenize, lowercase=False, token_pattern=None,
                               ngram_range=self.ngram_range,
                               vocabulary={w: i for i, w in enumerate(self.vocabulary)})

    def transform_sparse(self, texts: Iterable[Any]):
        """The TF-IDF matrix as a SciPy CSR matrix (rows: texts, columns: ``vocabulary``)."""
        from sklearn.preprocessing import normalize
        counts = self._vectorizer().transform(_as_texts(texts)).astype(np.float64)
        if self.sublinear_tf:
            np.log(counts.data, out=counts.data)
            counts.data += 1.0
        weighted = counts.multiply(np.asarray(self.idf)[None, :]).tocsr()
        return normalize(weighted, norm="l2", copy=False)

    def transform(self, texts: Iterable[Any]) -> np.ndarray:
        """The TF-IDF matrix as a dense float32 array (what the MLP takes)."""
        return self.transform_sparse(texts).toarray().astype(np.float32)

    def fit_transform(self, texts: Iterable[Any]) -> np.ndarray:
        """``fit(texts).transform(texts)``."""
        texts = _as_texts(texts)
        return self.fit(texts).transform(texts)

    def to_dict(self) -> dict:
        """The fitted state as JSON-able data."""
        if self.vocabulary is None:
            raise ValueError("TfidfFeatures is not fitted yet; call fit(texts) first")
        return {"kind": "tfidf", "tokenizer": "neuralab.text.tokenize/1",
                "vocabulary": list(self.vocabulary), "idf": list(self.idf),
                "ngram_range": list(self.ngram_range), "sublinear_tf": self.sublinear_tf,
                "min_df": self.min_df, "max_features": self.max_features}

    @classmethod
    def from_dict(cls, data: dict) -> "TfidfFeatures":
        """Rebuild from ``to_dict()``'s output."""
        if not isinstance(data, dict) or data.get("kind") != "tfidf":
            raise ValueError("not a TF-IDF description (expected a dict with kind 'tfidf')")
        if len(data["vocabulary"]) != len(data["idf"]):
            raise ValueError(f"TF-IDF description: {len(data['vocabulary'])} words but "
                             f"{len(data['idf'])} idf weights")
        tf = cls(data.get("max_features"), tuple(data["ngram_range"]), data.get("min_df", 1),
                 data["sublinear_tf"])
        tf.vocabulary, tf.idf = list(data["vocabulary"]), [float(v) for v in data["idf"]]
        return tf


def _as_texts(texts: Iterable[Any]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("expected a list of texts, got one string; wrap it in a list")
    return ["" if t is None or (isinstance(t, float) and np.isnan(t)) else str(t) for t in texts]


# Hooks for the tabular preprocessing (`neuralab train DATA --text COL`): a text column
# becomes one TF-IDF block whose description is stored in the model file as data.
def text_column_spec(name: str, values: Iterable[Any], max_features: int = 5000) -> dict:
    """The preprocessing entry for text column ``name``: fitted TF-IDF as data.

    Example: ``text_column_spec("SMS", frame["SMS"])["kind"]  # 'text'``
    """
    tf = TfidfFeatures(max_features=max_features).fit(values)
    return {"name": name, "kind": "text", "tfidf": tf.to_dict()}


def transform_text_column(col: dict, values: Iterable[Any]) -> np.ndarray:
    """The TF-IDF block (rows, len(vocabulary)) of a column described by ``text_column_spec``."""
    return TfidfFeatures.from_dict(col["tfidf"]).transform(values).astype(np.float64)


def text_feature_names(col: dict) -> list[str]:
    """Feature names of a text column's block: ``'SMS:free'``, ``'SMS:call now'``, ..."""
    return [f"{col['name']}:{w}" for w in col["tfidf"]["vocabulary"]]
