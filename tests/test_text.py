"""Text classification: tokenizer, TF-IDF as data, fastText-style model, `neuralab train --text`."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import neuralab as nl
from neuralab.apps.text import FastTextClassifier, TfidfFeatures, load_sms_spam, tokenize


@pytest.fixture(scope="module")
def sms():
    """A stratified 1600/600 subset of the SMS Spam Collection (fixed seed)."""
    from sklearn.model_selection import train_test_split
    try:
        texts, labels = load_sms_spam()
    except FileNotFoundError:
        pytest.skip("sms_spam.tsv is not available (set NEURALAB_DATA)")
    texts, _, labels, _ = train_test_split(texts, labels, train_size=2200, stratify=labels,
                                           random_state=0)
    return train_test_split(texts, labels, test_size=600, stratify=labels, random_state=0)


def test_tokenize_words_numbers_symbols_and_long_numbers():
    assert tokenize("WIN £1000 now! Call 09061701461") == [
        "win", "£", "1000", "now", "!", "call", "09061701461", "<longnum>"]
    assert tokenize("don't") == ["don't"]
    assert tokenize(None) == [] and tokenize(float("nan")) == []


def test_tfidf_matches_sklearn_and_survives_json(sms):
    from sklearn.feature_extraction.text import TfidfVectorizer
    tr_x, te_x, _, _ = sms
    tf = TfidfFeatures(max_features=500).fit(tr_x)
    ref = TfidfVectorizer(tokenizer=tokenize, lowercase=False, token_pattern=None,
                          ngram_range=(1, 2), min_df=2, max_features=500, sublinear_tf=True).fit(tr_x)
    assert tf.vocabulary == list(ref.get_feature_names_out())
    np.testing.assert_allclose(tf.transform(te_x), ref.transform(te_x).toarray(), atol=1e-6)
    # The fitted state is plain data: through JSON and back, the same features.
    again = TfidfFeatures.from_dict(json.loads(json.dumps(tf.to_dict())))
    np.testing.assert_array_equal(again.transform(te_x), tf.transform(te_x))


def test_tfidf_errors_name_the_problem():
    with pytest.raises(ValueError, match="not fitted"):
        TfidfFeatures().transform(["hello"])
    with pytest.raises(TypeError, match="one string"):
        TfidfFeatures().fit("just one string")
    with pytest.raises(ValueError, match="2 words but 1 idf"):
        TfidfFeatures.from_dict({"kind": "tfidf", "vocabulary": ["a", "b"], "idf": [1.0],
                                 "ngram_range": [1, 1], "sublinear_tf": True})


def test_fasttext_beats_majority_class_and_naive_bayes(sms):
    from sklearn.metrics import accuracy_score, matthews_corrcoef, recall_score
    from sklearn.naive_bayes import MultinomialNB
    tr_x, te_x, tr_y, te_y = sms
    clf = FastTextClassifier(epochs=8, random_state=0).fit(tr_x, tr_y)
    pred = clf.predict(te_x)
    tf = TfidfFeatures().fit(tr_x)
    nb = MultinomialNB().fit(tf.transform(tr_x), tr_y).predict(tf.transform(te_x))
    assert matthews_corrcoef(te_y, pred) > matthews_corrcoef(te_y, nb)
    assert accuracy_score(te_y, pred) > accuracy_score(te_y, nb)
    majority = np.mean(te_y == "ham")
    acc = accuracy_score(te_y, pred)
    assert acc > majority + 0.08, (acc, majority)       # majority class: ~0.866
    assert recall_score(te_y, pred, pos_label="spam") > 0.75
    assert matthews_corrcoef(te_y, pred) > 0.8
    assert clf.loss_curve_[-1] < clf.loss_curve_[0] / 3
    proba = clf.predict_proba(te_x[:5])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)


def test_fasttext_explanations_are_exact_and_name_message_words(sms):
    tr_x, _, tr_y, _ = sms
    clf = FastTextClassifier(epochs=5, random_state=0).fit(tr_x, tr_y)
    msg = "URGENT! You have won a free prize, call 09061701461 to claim"
    words = clf.explain(msg, top=100)
    grams = set(clf._grams(msg))
    assert words and all(w in grams or w == "<unk>" for w, _ in words)
    # Shares sum to the winning logit minus the runner-up's, up to the bias difference.
    z = clf.decision_function([msg])[0]
    win, other = np.argsort(z)[::-1][:2]
    b = clf.model_.fc.bias.data
    assert sum(s for _, s in words) == pytest.approx(z[win] - z[other] - (b[win] - b[other]), abs=1e-4)


def test_fasttext_save_load_round_trip(sms, tmp_path):
    tr_x, te_x, tr_y, _ = sms
    clf = FastTextClassifier(epochs=2, random_state=0).fit(tr_x[:400], tr_y[:400])
    nl.save(clf, tmp_path / "ft.safetensors")
    meta = nl.io.read_metadata(tmp_path / "ft.safetensors")
    assert "vocabulary_" in json.dumps(meta)   # the vocabulary travels as JSON data
    back = nl.load(tmp_path / "ft.safetensors")
    np.testing.assert_array_equal(back.predict_proba(te_x[:50]), clf.predict_proba(te_x[:50]))


def test_cli_train_with_text_column_predict_and_evaluate(sms, tmp_path):
    import pandas as pd
    from neuralab.cli import main
    tr_x, te_x, tr_y, te_y = sms
    pd.DataFrame({"Label": tr_y, "SMS": tr_x}).to_csv(tmp_path / "train.tsv", sep="\t", index=False)
    pd.DataFrame({"Label": te_y, "SMS": te_x}).to_csv(tmp_path / "test.tsv", sep="\t", index=False)
    model = str(tmp_path / "sms.safetensors")
    runner = CliRunner()
    res = runner.invoke(main, ["train", str(tmp_path / "train.tsv"), "--target", "Label",
                               "--text", "SMS", "--hidden", "32", "--epochs", "8", "--out", model])
    assert res.exit_code == 0, res.output
    spec = nl.io.read_metadata(model)["preprocessing"]["spec"]
    (col,) = spec["columns"]
    assert col["kind"] == "text" and "free" in col["tfidf"]["vocabulary"]
    assert len(col["tfidf"]["idf"]) == len(col["tfidf"]["vocabulary"])
    res = runner.invoke(main, ["evaluate", model, str(tmp_path / "test.tsv"), "--json"])
    assert res.exit_code == 0, res.output
    result = json.loads(res.output[res.output.index("{"):])
    assert result["accuracy"] > np.mean(te_y == "ham") + 0.08
    new = tmp_path / "new.tsv"
    new.write_text("SMS\nFREE entry! WIN a 1000 cash prize, text WIN to 87121 now\n"
                   "see you at lunch tomorrow?\n")
    res = runner.invoke(main, ["predict", model, str(new)])
    assert res.exit_code == 0, res.output
    assert res.output.split()[1:] == ["spam", "ham"]
    res = runner.invoke(main, ["explain", model, str(new), "--rows", "0", "--top", "3"])
    assert res.exit_code == 0, res.output
    words = [line.split()[0] for line in res.output.splitlines()[1:]]
    assert len(words) == 3 and all(w.startswith("SMS:") for w in words)   # explanations name words
    toks = tokenize(new.read_text().splitlines()[1])
    grams = set(toks) | {f"{a} {b}" for a, b in zip(toks, toks[1:])}
    assert {w[len("SMS:"):] for w in words} <= grams     # words and word pairs of that message


def test_cli_text_column_that_does_not_exist(tmp_path):
    from neuralab.cli import main
    (tmp_path / "d.csv").write_text("Label,SMS\nham,hi\nspam,win\nham,ok\nspam,free\n")
    res = CliRunner().invoke(main, ["train", str(tmp_path / "d.csv"), "--target", "Label",
                                    "--text", "Message", "--epochs", "1"])
    assert res.exit_code == 2
    assert "Message" in res.output


def test_read_table_keeps_every_row_of_a_tsv_with_stray_quotes(tmp_path):
    from neuralab.data import read_table
    path = tmp_path / "msgs.tsv"
    # An opening quote with no closing one: read as a quote, it would swallow the next lines.
    path.write_text('Label\tSMS\nham\t"Hi there\nspam\tWIN "cash" now\nham\tok "\n', encoding="utf-8")
    frame = read_table(str(path))
    assert frame["SMS"].tolist() == ['"Hi there', 'WIN "cash" now', 'ok "']
    assert frame["Label"].tolist() == ["ham", "spam", "ham"]


def test_read_table_reads_all_5574_sms_messages():
    from pathlib import Path

    from neuralab.data import read_table
    try:
        texts, labels = load_sms_spam()
    except FileNotFoundError:
        pytest.skip("sms_spam.tsv is not available (set NEURALAB_DATA)")
    from neuralab.datasets import find_data_file
    where = find_data_file("sms_spam.tsv")
    frame = read_table(str(where))
    assert len(frame) == 5574 == len(texts)
    assert frame["Label"].tolist() == labels.tolist()
    # read_table skips spaces after a separator (skipinitialspace), e.g. " said kiss, ...".
    assert frame["SMS"].tolist() == [t.lstrip(" ") for t in texts]
