"""robustqa.text_match against the official SQuAD v1.1 normalisation, and the filters' variant."""

from __future__ import annotations

import re
import string

from hypothesis import given
from hypothesis import strategies as st
from robustqa.strategies import text_match as strategies_text_match
from robustqa.training.metrics import token_f1 as best_f1

from robustqa.text_match import normalize, normalize_answer, overlap_f1, token_f1


def squad_v11_normalize_answer(s):
    """normalize_answer of the SQuAD v1.1 evaluation script (evaluate-v1.1.py), as published."""

    def remove_articles(text):
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


EXAMPLES = [
    "The  Denver Broncos!",
    "an apple, a pear and THE end.",
    "don't stop-believing (1986)",
    "Théâtre “quoted” — dash",
    "",
    "   ",
    "a",
    "another theory",
]


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=60))
def test_normalize_answer_is_squads(text):
    assert normalize_answer(text) == squad_v11_normalize_answer(text)


def test_normalize_answer_examples():
    for text in EXAMPLES:
        assert normalize_answer(text) == squad_v11_normalize_answer(text), text
    assert normalize_answer("The  Denver Broncos!") == "denver broncos"


def test_the_filters_split_at_punctuation_instead():
    # The filters' decisions depend on this (tests/test_golden.py): "don't" is two tokens to them, one to SQuAD.
    assert normalize("don't stop-believing") == "don t stop believing"
    assert normalize_answer("don't stop-believing") == "dont stopbelieving"
    assert normalize("“Quoted” — dash") == "quoted dash"
    assert strategies_text_match.normalize is normalize  # the old import path is the same function


def test_f1():
    assert overlap_f1([], ["a"]) == 0.0 and overlap_f1(["x", "y"], ["y", "z"]) == 0.5
    assert token_f1("the cat sat", "a cat sat down") == 2 * (1.0 * 2 / 3) / (1.0 + 2 / 3)
    assert best_f1("Denver Broncos", ["Broncos", "the Denver Broncos"]) == 1.0
    assert best_f1("", ["!"]) == 1.0 and best_f1("", ["x"]) == 0.0
