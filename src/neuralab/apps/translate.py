"""Date translation: a sequence-to-sequence model with attention, trained on generated data.

Human-written dates ("25 Nov 2026", "Wednesday, November 25, 2026", "11/25/26", "mercredi
25 novembre 2026", "25 de noviembre de 2026", ...) go in character by character; the ISO date
"2026-11-25" comes out. Everything is generated offline from Python's ``datetime``.

The model (``DateTranslator``) is the classic RNN encoder-decoder with Luong-style global
attention:

- encoder: character embeddings -> bidirectional GRU -> one vector per input character;
- decoder: a GRU over the output characters so far (teacher forcing in training: it reads the
  true previous character); at each step its state ``h_t`` scores every encoder vector
  (``h_t W e_s``), a softmax over the input gives the attention weights, their weighted sum
  is the context, and ``tanh(W [h_t; context])`` is classified into the next character.

Because the decoder GRU does not see the context (no "input feeding"), training runs every
time step in parallel: one GRU op over the whole target, one batched matmul for attention.
Decoding is greedy or beam search, one step at a time.

Example:
    >>> from neuralab.apps.translate import make_dates, train_translator, translate_dates
    >>> src, tgt = make_dates(3, random_state=0)
    >>> model = train_translator(n_train=20000, epochs=12, random_state=0)  # doctest: +SKIP
    >>> translate_dates(["25 Nov 2026", "11/25/26"])   # the model that ships with neuralab
    ['2026-11-25', '2026-11-25']
"""
from __future__ import annotations

import datetime as _dt
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from .. import functional as F
from ..callbacks.base import Callback
from ..nn import GRU, Embedding, Linear, Module
from ..tensor import Tensor, no_grad

__all__ = ["MONTHS", "MONTH_ABBREVIATIONS", "WEEKDAYS", "format_date", "make_dates", "split_days", "DateTranslator",
           "train_translator",
           "default_model_path", "load_or_train", "translate_dates"]

FIRST_DAY, LAST_DAY = _dt.date(1950, 1, 1), _dt.date(2049, 12, 31)  # two-digit years unambiguous

MONTHS = {
    "en": ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"],
    "fr": ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
           "septembre", "octobre", "novembre", "décembre"],
    "de": ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August",
           "September", "Oktober", "November", "Dezember"],
    "es": ["enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto",
           "septiembre", "octubre", "noviembre", "diciembre"],
}
WEEKDAYS = {
    "en": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    "fr": ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"],
    "de": ["Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"],
    "es": ["lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"],
}

# Short month names: the first three letters, except in French, where three letters would
# make juin and juillet both "jui"; French uses its usual abbreviations (dot included).
MONTH_ABBREVIATIONS = {lang: [m[:3] for m in names] for lang, names in MONTHS.items()}
MONTH_ABBREVIATIONS["fr"] = ["janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août",
                             "sept.", "oct.", "nov.", "déc."]

# Each format is a template over: {d} day, {dd} zero-padded day, {m}/{mm} month number,
# {yy}/{yyyy} year, {B} month name, {b} its short form (MONTH_ABBREVIATIONS), {A} weekday name.
# Slashes with a two-digit year are US order (m/d/yy); with four digits, European (d/m/yyyy);
# the model can tell them apart by the year's length, so no string is ambiguous.
FORMATS = {
    "en": ["{d} {b} {yyyy}", "{dd} {b} {yyyy}", "{A}, {B} {d}, {yyyy}", "{B} {d}, {yyyy}",
           "{b} {d} {yyyy}", "{d} {B} {yyyy}", "{A} {d} {B} {yyyy}", "{b}. {d}, {yyyy}",
           "{m}/{d}/{yy}", "{mm}/{dd}/{yy}", "{dd}/{mm}/{yyyy}", "{d}.{m}.{yyyy}",
           "{dd}.{mm}.{yyyy}", "{yyyy}/{mm}/{dd}", "{yyyy}-{mm}-{dd}", "{yyyy}{mm}{dd}",
           "{d}-{b}-{yyyy}", "{B} {yyyy}, {d}"],
    "fr": ["{d} {B} {yyyy}", "{A} {d} {B} {yyyy}", "le {d} {B} {yyyy}", "{d} {b} {yyyy}"],
    "de": ["{d}. {B} {yyyy}", "{A}, {d}. {B} {yyyy}", "{d}. {b}. {yyyy}", "{dd}.{mm}.{yyyy}"],
    "es": ["{d} de {B} de {yyyy}", "{A}, {d} de {B} de {yyyy}", "{d} {b} {yyyy}"],
}

PAD, BOS, EOS, UNK = "\0", "^", "$", "?"
TARGET_CHARS = PAD + BOS + EOS + "0123456789-"
MAX_INPUT = 48


def format_date(day: _dt.date, template: str, lang: str = "en") -> str:
    """``day`` written with ``template`` (see ``FORMATS``) in language ``lang``.

    Example: ``format_date(date(2026, 11, 25), "{A}, {B} {d}, {yyyy}")  # 'Wednesday, November 25, 2026'``
    """
    name = MONTHS[lang][day.month - 1]
    return template.format(d=day.day, dd=f"{day.day:02d}", m=day.month, mm=f"{day.month:02d}",
                           yy=f"{day.year % 100:02d}", yyyy=day.year, B=name,
                           b=MONTH_ABBREVIATIONS[lang][day.month - 1],
                           A=WEEKDAYS[lang][day.weekday()])


def _all_templates() -> list[tuple[str, str]]:
    return [(lang, t) for lang, ts in FORMATS.items() for t in ts]


def make_dates(n: int, random_state: Any = None, days: np.ndarray | None = None,
               ) -> tuple[list[str], list[str]]:
    """``n`` (human-written date, ISO date) pairs from random days, formats and languages.

    ``days`` (ordinal numbers, as ``date.toordinal()``) restricts which days are drawn, so a
    training and a test set can hold disjoint dates. A third of the inputs are lower-cased
    and a few upper-cased, as people type them.
    Example: ``make_dates(2, random_state=0)  # (['3 juin 1987', ...], ['1987-06-03', ...])``
    """
    rng = np.random.default_rng(random_state)
    if days is None:
        days = np.arange(FIRST_DAY.toordinal(), LAST_DAY.toordinal() + 1)
    templates = _all_templates()
    src, tgt = [], []
    for ordinal, k, case in zip(rng.choice(days, n), rng.integers(0, len(templates), n),
                                rng.random(n)):
        day = _dt.date.fromordinal(int(ordinal))
        lang, template = templates[k]
        text = format_date(day, template, lang)
        text = text.lower() if case < 0.33 else text.upper() if case > 0.95 else text
        src.append(text)
        tgt.append(day.isoformat())
    return src, tgt


def split_days(test_fraction: float = 0.1, random_state: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint (train_days, test_days) ordinals covering 1950-2049."""
    rng = np.random.default_rng(random_state)
    days = rng.permutation(np.arange(FIRST_DAY.toordinal(), LAST_DAY.toordinal() + 1))
    n_test = int(len(days) * test_fraction)
    return days[n_test:], days[:n_test]


def _source_chars() -> str:
    chars = set()
    for lang in MONTHS:
        for w in MONTHS[lang] + WEEKDAYS[lang]:
            chars.update(w.lower() + w.upper())
    chars.update("0123456789 ,./-")
    return PAD + UNK + "".join(sorted(chars - {PAD, UNK}))


class DateTranslator(Module):
    """Character seq2seq with attention: bidirectional-GRU encoder, GRU decoder, Luong attention.

    Args:
        source_chars: the input alphabet (index 0 is padding, 1 unknown).
        embed_dim: character embedding width.
        hidden: encoder GRU width per direction; the decoder's is ``2 * hidden``.
        rng: seed or Generator for the initial weights.

    Example:
        >>> model = DateTranslator(rng=0)
        >>> logits, attn = model(model.encode_source(["25 Nov 2026"]), model.encode_target(["2026-11-25"]))
        >>> logits.shape, attn.shape              # (N, 11 output steps, 14 chars), (N, 11, 11)
        ((1, 11, 14), (1, 11, 11))
    """

    def __init__(self, source_chars: str | None = None, embed_dim: int = 24, hidden: int = 64,
                 rng: np.random.Generator | int | None = None) -> None:
        super().__init__()
        self.source_chars = source_chars or _source_chars()
        self.src_index = {c: i for i, c in enumerate(self.source_chars)}
        self.tgt_index = {c: i for i, c in enumerate(TARGET_CHARS)}
        rng = np.random.default_rng(rng)
        h2 = 2 * hidden
        self.src_embed = Embedding(len(self.source_chars), embed_dim, padding_idx=0, rng=rng)
        self.encoder = GRU(embed_dim, hidden, bidirectional=True, batch_first=True, rng=rng)
        self.bridge = Linear(h2, h2, rng=rng)
        self.tgt_embed = Embedding(len(TARGET_CHARS), embed_dim, rng=rng)
        self.decoder = GRU(embed_dim, h2, batch_first=True, rng=rng)
        self.attn = Linear(h2, h2, bias=False, rng=rng)
        self.combine = Linear(2 * h2, h2, rng=rng)
        self.out = Linear(h2, len(TARGET_CHARS), rng=rng)

    # -------------------------------------------------------------- text <-> ids
    def encode_source(self, texts: Sequence[str]) -> np.ndarray:
        """Character ids (N, S), 0-padded; unknown characters map to 1."""
        texts = [str(t).strip()[:MAX_INPUT] for t in texts]
        out = np.zeros((len(texts), max([len(t) for t in texts] + [1])), np.int64)
        for r, t in enumerate(texts):
            out[r, : len(t)] = [self.src_index.get(c, 1) for c in t]
        return out

    def encode_target(self, isos: Sequence[str]) -> np.ndarray:
        """Ids of ``BOS + iso + EOS`` (N, 12)."""
        return np.array([[self.tgt_index[c] for c in BOS + s + EOS] for s in isos], np.int64)

    # -------------------------------------------------------------- the network
    def encode(self, src: np.ndarray) -> tuple[Tensor, Tensor, np.ndarray]:
        """Encoder vectors (N, S, 2H), the decoder's first state (1, N, 2H), a padding bias (N, 1, S)."""
        enc, h_n = self.encoder(self.src_embed(src))
        last = F.concatenate([h_n[0], h_n[1]], axis=1)   # forward and backward final states
        h0 = F.tanh(self.bridge(last)).reshape(1, *last.shape)
        # -1e9 (not -inf) keeps softmax finite; padded positions get zero weight.
        bias = np.where(src == 0, np.float32(-1e9), np.float32(0))[:, None, :]
        return enc, h0, bias

    def step_logits(self, dec: Tensor, enc: Tensor, bias: np.ndarray) -> tuple[Tensor, Tensor]:
        """Attention over ``enc`` for decoder states ``dec`` (N, T, 2H): (logits, weights)."""
        scores = self.attn(dec) @ enc.transpose(0, 2, 1) + Tensor(bias)   # (N, T, S)
        weights = F.softmax(scores, axis=-1)
        context = weights @ enc                                          # (N, T, 2H)
        mixed = F.tanh(self.combine(F.concatenate([dec, context], axis=-1)))
        return self.out(mixed), weights

    def forward(self, src: Any, tgt: Any) -> tuple[Tensor, Tensor]:
        """Teacher forcing: logits for ``tgt[:, 1:]`` given ``tgt[:, :-1]`` (N, T, V), and attention."""
        src = np.asarray(src.data if isinstance(src, Tensor) else src)
        tgt = np.asarray(tgt.data if isinstance(tgt, Tensor) else tgt)
        enc, h0, bias = self.encode(src)
        dec, _ = self.decoder(self.tgt_embed(tgt[:, :-1]), h0)
        return self.step_logits(dec, enc, bias)

    # -------------------------------------------------------------- decoding
    def _decode_step(self, tokens: np.ndarray, h: Tensor, enc: Tensor, bias: np.ndarray):
        dec, h = self.decoder(self.tgt_embed(tokens[:, None]), h)
        logits, weights = self.step_logits(dec, enc, bias)
        return logits.numpy()[:, 0], h, weights.numpy()[:, 0]

    def greedy(self, texts: Sequence[str], max_len: int = 11) -> tuple[list[str], np.ndarray]:
        """Greedy decoding: the most likely next character each step; returns (isos, attention (N, T, S))."""
        self.eval()
        src = self.encode_source(texts)
        with no_grad():
            enc, h, bias = self.encode(src)
            tokens = np.full(len(src), self.tgt_index[BOS])
            out, attn = [], []
            for _ in range(max_len):
                logits, h, w = self._decode_step(tokens, h, enc, bias)
                logits[:, :2] = -np.inf   # never PAD or BOS
                tokens = logits.argmax(axis=1)
                out.append(tokens)
                attn.append(w)
        return self._strings(np.stack(out, axis=1)), np.stack(attn, axis=1)

    def beam(self, texts: Sequence[str], beam_width: int = 4, max_len: int = 11) -> list[str]:
        """Beam search: keep the ``beam_width`` most likely prefixes (sum of log-probabilities)."""
        self.eval()
        src = self.encode_source(texts)
        n, B, eos = len(src), beam_width, self.tgt_index[EOS]
        with no_grad():
            enc, h, bias = self.encode(src)
            # Every sentence gets B beams: repeat the encoder outputs and the state B times.
            rep = np.repeat(np.arange(n), B)
            enc, bias = enc[rep], bias[rep]
            h = h[:, rep]
            scores = np.full((n, B), -np.inf)
            scores[:, 0] = 0.0                    # start with one live beam per sentence
            tokens = np.full(n * B, self.tgt_index[BOS])
            history = np.zeros((n * B, 0), np.int64)
            done = np.zeros(n * B, bool)
            for _ in range(max_len):
                logits, h, _ = self._decode_step(tokens, h, enc, bias)
                logits[:, :2] = -np.inf
                logp = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
                logp[done] = -np.inf              # a finished beam only extends with EOS, free
                logp[done, eos] = 0.0
                V = logp.shape[1]
                total = (scores.reshape(-1, 1) + logp).reshape(n, B * V)
                best = np.argsort(-total, axis=1, kind="stable")[:, :B]
                scores = np.take_along_axis(total, best, axis=1)
                parent = (np.arange(n)[:, None] * B + best // V).reshape(-1)
                tokens = (best % V).reshape(-1)
                history = np.concatenate([history[parent], tokens[:, None]], axis=1)
                h = h[:, parent]
                done = done[parent] | (tokens == eos)
            winners = history.reshape(n, B, -1)[:, 0]   # beams are sorted best first
        return self._strings(winners)

    def _strings(self, ids: np.ndarray) -> list[str]:
        out = []
        for row in ids:
            chars = []
            for t in row:
                c = TARGET_CHARS[int(t)]
                if c == EOS:
                    break
                chars.append(c)
            out.append("".join(chars))
        return out

    def translate(self, texts: Sequence[str] | str, beam_width: int = 1) -> list[str] | str:
        """ISO dates for human-written ones (greedy, or beam search if ``beam_width > 1``).

        Texts are decoded in groups of equal length: the backward GRU would otherwise start
        on padding, and a date's translation would depend on the other dates in the batch.
        Example: ``model.translate("25 Nov 2026")  # '2026-11-25'``
        """
        one = isinstance(texts, str)
        texts = [texts] if one else list(texts)
        lengths = np.array([len(str(t).strip()[:MAX_INPUT]) for t in texts])
        out: list[str] = [""] * len(texts)
        for n in np.unique(lengths):
            idx = np.flatnonzero(lengths == n)
            group = [texts[i] for i in idx]
            res = self.greedy(group)[0] if beam_width <= 1 else self.beam(group, beam_width)
            for i, r in zip(idx, res):
                out[i] = r
        return out[0] if one else out

    def evaluate(self, n: int = 2000, random_state: Any = 0, beam_width: int = 1) -> float:
        """Exact-match accuracy on ``n`` pairs from the held-out days (never seen in training)."""
        _, test_days = split_days(0.1, random_state)
        src, tgt = make_dates(n, np.random.default_rng(10_000 + int(random_state or 0)), test_days)
        pred = self.translate(src, beam_width=beam_width)
        return float(np.mean([p == t for p, t in zip(pred, tgt)]))


# ============================================================================ training
def train_translator(n_train: int = 20000, epochs: int = 12, batch_size: int = 64,
                     lr: float = 3e-3, random_state: Any = 0, verbose: bool = False,
                     **kwargs: Any) -> DateTranslator:
    """Build and train a model on ``n_train`` generated pairs from the training days.

    The training days exclude a fixed 10% of 1950-2049 (``split_days(0.1, random_state)``),
    which ``evaluate`` uses. ``kwargs`` go to the constructor.
    Example: ``model = train_translator(n_train=5000, epochs=5)``
    """
    from .. import optim
    from ..training import fit
    rng = np.random.default_rng(random_state)
    train_days, _ = split_days(0.1, random_state)
    src_text, tgt_text = make_dates(n_train, rng, train_days)
    model = DateTranslator(rng=rng, **kwargs)
    src, tgt = model.encode_source(src_text), model.encode_target(tgt_text)
    lengths = (src != 0).sum(axis=1)
    # Batches of equal-length inputs: no padding, so the backward GRU never reads any and
    # training matches decoding (see DateTranslator.translate).
    batches = [idx[i:i + batch_size] for n in np.unique(lengths)
               for idx in [np.flatnonzero(lengths == n)] for i in range(0, len(idx), batch_size)]
    opt = optim.Adam(model.parameters(), lr=lr)
    sched = optim.CosineAnnealingLR(opt, T_max=epochs * len(batches))

    def shuffled() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for k in rng.permutation(len(batches)):
            b = rng.permutation(batches[k])
            yield src[b, : int(lengths[b].max())], tgt[b]

    def train_step(x: np.ndarray, y: np.ndarray, _: Any) -> tuple[float, None]:
        logits, _ = model(x, y)   # teacher forcing: the decoder reads y[:, :-1]
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        optim.clip_grad_norm(model.parameters(), 5.0)
        opt.step()
        sched.step()   # the cosine schedule runs over batches, not epochs
        return loss.item(), None

    # Small matrices: a second BLAS thread only adds synchronisation (far slower per batch
    # on a busy machine), so train single-threaded.
    hist = fit(model, shuffled, optimizer=opt, epochs=epochs, batch_size=batch_size, seed=rng,
               verbose=0, blas_threads=1, train_step=train_step,
               callbacks=[_EpochLine()] if verbose else None)
    model.loss_curve_ = [float(v) for v in hist.history["loss"]]
    return model


class _EpochLine(Callback):
    """Prints ``epoch 3/12  loss 0.1234  41 s`` after each epoch (``train_translator(verbose=True)``)."""

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        print(f"epoch {epoch + 1}/{self.params['epochs']}  loss {logs['loss']:.4f}  "
              f"{time.perf_counter() - self.start:.0f} s", flush=True)


# ============================================================================ shipped model
def default_model_path() -> Path:
    """Where ``translate-dates`` looks for its trained model: beside this module."""
    return Path(__file__).with_name("translate_dates.safetensors")


def load_or_train(path: str | Path | None = None, verbose: bool = True) -> DateTranslator:
    """The trained date model: loaded from ``path`` (default: the shipped file), or trained once
    (a few minutes on a laptop) and saved there if the file is missing.

    Example: ``model = load_or_train(); model.translate("3 juin 1987")``
    """
    from ..io import load, save
    path = Path(path) if path else default_model_path()
    if path.is_file():
        return load(path)
    if verbose:
        import sys
        print(f"no trained date model at {path}: training one now (about 20000 generated "
              f"dates, a few minutes on a laptop); it is saved for next time", file=sys.stderr)
    model = train_translator(verbose=verbose)
    try:
        save(model, path)
    except OSError:
        cache = Path.home() / ".cache" / "neuralab" / path.name
        cache.parent.mkdir(parents=True, exist_ok=True)
        save(model, cache)
    return model


def translate_dates(texts: Sequence[str] | str, beam_width: int = 1,
                    path: str | Path | None = None) -> list[str] | str:
    """Translate human-written dates to ISO with the trained model (see ``load_or_train``).

    Example: ``translate_dates("Wednesday, November 25, 2026")  # '2026-11-25'``
    """
    return load_or_train(path).translate(texts, beam_width=beam_width)
