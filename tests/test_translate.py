"""Date translation: the generator, the seq2seq model with attention, decoding, the shipped model."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from click.testing import CliRunner

import neuralab as nl
from neuralab.apps.translate import (FORMATS, MONTH_ABBREVIATIONS, TARGET_CHARS, DateTranslator,
                                default_model_path, format_date, make_dates, split_days,
                                train_translator)

DAY = dt.date(2026, 11, 25)


@pytest.mark.parametrize("template, lang, text", [
    ("{A}, {B} {d}, {yyyy}", "en", "Wednesday, November 25, 2026"),
    ("{d} {b} {yyyy}", "en", "25 Nov 2026"),
    ("{m}/{d}/{yy}", "en", "11/25/26"),
    ("{A} {d} {B} {yyyy}", "fr", "mercredi 25 novembre 2026"),
    ("{A}, {d}. {B} {yyyy}", "de", "Mittwoch, 25. November 2026"),
    ("{d} de {B} de {yyyy}", "es", "25 de noviembre de 2026"),
])
def test_format_date(template, lang, text):
    assert format_date(DAY, template, lang) == text


def test_generated_pairs_are_consistent_and_days_disjoint():
    src, tgt = make_dates(300, random_state=0)
    for s, t in zip(src, tgt):
        day = dt.date.fromisoformat(t)
        assert dt.date(1950, 1, 1) <= day <= dt.date(2049, 12, 31)
        assert str(day.year) in s or f"{day.year % 100:02d}" in s
    assert len(set(src)) > 250                     # many formats, not one
    assert make_dates(5, random_state=1) == make_dates(5, random_state=1)
    train, test = split_days(0.1, 0)
    assert not set(train) & set(test) and len(test) == int(0.1 * (len(train) + len(test)))
    _, tgt = make_dates(200, random_state=0, days=test)
    assert {dt.date.fromisoformat(t).toordinal() for t in tgt} <= set(test.tolist())


def test_every_generated_string_names_one_date():
    # French "juin"[:3] == "juillet"[:3] once made "12 jui. 1987" mean two dates.
    for lang, short in MONTH_ABBREVIATIONS.items():
        assert len({s.lower() for s in short}) == 12, (lang, short)
    assert format_date(dt.date(1987, 7, 23), "{d} {b} {yyyy}", "fr") == "23 juil. 1987"
    meaning = {}
    days = range(dt.date(1987, 1, 1).toordinal(), dt.date(1989, 1, 1).toordinal())
    for ordinal in days:
        day = dt.date.fromordinal(ordinal)
        for lang, templates in FORMATS.items():
            for template in templates:
                text = format_date(day, template, lang)
                for variant in (text, text.lower(), text.upper()):
                    assert meaning.setdefault(variant, day) == day, (variant, day, meaning[variant])
    assert len(meaning) > 50 * len(days)         # dozens of distinct spellings per day


def test_attention_is_a_distribution_that_ignores_padding():
    model = DateTranslator(rng=0)
    src = model.encode_source(["1.2.1950", "Wednesday, November 25, 2026"])
    logits, attn = model(src, model.encode_target(["1950-02-01", "2026-11-25"]))
    assert logits.shape == (2, 11, len(TARGET_CHARS))
    w = attn.numpy()
    np.testing.assert_allclose(w.sum(axis=-1), 1.0, rtol=1e-5)
    assert np.all(w[0, :, 8:] < 1e-6)              # the short input's padding gets no weight


def test_small_model_learns_far_beyond_chance_and_beam_agrees_with_greedy():
    model = train_translator(n_train=3000, epochs=3, batch_size=64, random_state=0, hidden=32)
    assert model.loss_curve_[-1] < model.loss_curve_[0] / 2
    _, test = split_days(0.1, 0)
    src, tgt = make_dates(200, random_state=5, days=test)
    pred = model.translate(src)
    char_acc = np.mean([a == b for p, t in zip(pred, tgt) for a, b in zip(p.ljust(10), t)])
    # Chance per character is about 1/12; the model must get most characters right.
    assert char_acc > 0.6, char_acc
    assert model.translate(src[:20], beam_width=1) == pred[:20]
    beams = model.translate(src[:20], beam_width=3)
    assert all(len(b) == 10 and b[4] == "-" and b[7] == "-" for b in beams)


def test_save_load_keeps_the_alphabet_and_outputs(tmp_path):
    model = DateTranslator(embed_dim=8, hidden=8, rng=0)
    nl.save(model, tmp_path / "d.safetensors")
    back = nl.load(tmp_path / "d.safetensors")
    assert back.source_chars == model.source_chars
    texts = ["25 Nov 2026", "3 juin 1987"]
    assert back.translate(texts) == model.translate(texts)


shipped = pytest.mark.skipif(not default_model_path().is_file(),
                             reason="the trained date model is not shipped in this checkout")


@shipped
def test_shipped_model_is_exact_on_held_out_dates():
    model = nl.load(default_model_path())
    assert model.evaluate(400, random_state=0) >= 0.99
    assert model.translate("Wednesday, November 25, 2026") == "2026-11-25"


@shipped
def test_cli_translate_dates():
    from neuralab.cli import main
    res = CliRunner().invoke(main, ["translate-dates", "25 Nov 2026", "11/25/26", "--beam", "3"])
    assert res.exit_code == 0, res.output
    assert res.output.splitlines() == ["25 Nov 2026\t2026-11-25", "11/25/26\t2026-11-25"]
