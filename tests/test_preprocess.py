import re
import subprocess
import sys

from nltk.tokenize import NLTKWordTokenizer

from rnnlab.data.preprocess import Preprocessor, _letters_tokenize, english_stopwords
from rnnlab.data.synthetic import synthetic_reviews

REVIEW = (
    "I <b>didn't</b> like it.<br /><br />Not good, NOT great! See http://example.com/x or "
    "www.example.org for 10/10 fans... It cannot be saved."
)


def test_default_pipeline_cleans_and_keeps_negations():
    tokens = Preprocessor()(REVIEW)
    assert tokens == ["didnt", "like", "not", "good", "not", "great", "see", "fans", "not", "saved"]


def test_each_step_can_be_switched_off():
    assert "b" in Preprocessor(strip_html=False)(REVIEW)
    assert "http" in Preprocessor(strip_urls=False)(REVIEW)
    assert "I" in Preprocessor(lowercase=False, remove_stopwords=False)(REVIEW)
    kept = Preprocessor(remove_stopwords=False)(REVIEW)
    assert kept[:4] == ["i", "didnt", "like", "it"]
    assert "not" not in Preprocessor(keep_negations=False)(REVIEW)
    assert "didn't" in Preprocessor(letters_only=False, remove_stopwords=False)(
        REVIEW
    ) or "n't" in (Preprocessor(letters_only=False, remove_stopwords=False)(REVIEW))


def test_max_len_truncates():
    assert Preprocessor(max_len=3)(REVIEW) == ["didnt", "like", "not"]


def test_letters_tokenizer_matches_nltk_word_tokenizer():
    texts, _ = synthetic_reviews(200, seed=3)
    texts += ["you cannot be serious gonna wanna gotta lemme gimme", "  spaced   out  text "]
    tokenizer = NLTKWordTokenizer()
    for text in texts:
        letters = re.sub(r"[^a-z]+", " ", text.lower())
        assert _letters_tokenize(letters) == tokenizer.tokenize(letters)


def tip_clean(text: str, stop_words: frozenset[str]) -> str:
    """The tip's clean(), verbatim."""
    text = text.lower()
    text = [word for word in text.split() if word not in stop_words]
    text = " ".join(text)
    text = re.sub(r"<.*?>", "", text)
    text = re.sub(r"https?://\S+|www\.\S+", "", text)
    text = re.sub(r"[^a-z\s]", "", text)
    text = " ".join(text)
    return text


def test_seed_tip_reproduces_the_character_quirk():
    stop = english_stopwords()
    tip = Preprocessor(mode="seed_tip")
    for text in [REVIEW, *synthetic_reviews(50, seed=1)[0]]:
        tokens = tip(text)
        assert tokens == NLTKWordTokenizer().tokenize(tip_clean(text, stop))
        assert all(len(t) == 1 and t.isalpha() for t in tokens)  # characters, not words


def test_missing_stopword_corpus_gives_clear_message(tmp_path):
    code = "from rnnlab.data.preprocess import english_stopwords; english_stopwords()"
    env = {"NLTK_DATA": str(tmp_path), "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "nltk.downloader stopwords" in result.stderr
    assert "preprocess.remove_stopwords=false" in result.stderr
