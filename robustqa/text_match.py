"""Answer comparison without a model: SQuAD normalisation, token F1, containment and claims.

Students are scored with the official SQuAD v1.1 normalisation (`normalize_answer`: punctuation removed, so
"don't" is one token). The strategies' filters split at punctuation instead (`normalize`: "state-of-the-art" is
four tokens, and typographic quotes and dashes count as punctuation); their decisions, so the generated records,
depend on it, and the two stay distinct.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence
from functools import cache

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_REMOVE_PUNCTUATION = str.maketrans("", "", string.punctuation)
_SPLIT_AT_PUNCTUATION = str.maketrans({c: " " for c in string.punctuation + "\u2018\u2019\u201c\u201d\u2013\u2014"})


def normalize_answer(text: str, split_punctuation: bool = False) -> str:
    """SQuAD v1.1's normalize_answer: lower case, no punctuation, no articles a/an/the, single spaces.
    `split_punctuation` turns punctuation into spaces instead of removing it (see the module docstring)."""
    table = _SPLIT_AT_PUNCTUATION if split_punctuation else _REMOVE_PUNCTUATION
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(table)).split())


def normalize(text: str) -> str:
    """The filters' normalisation: `normalize_answer` splitting at punctuation."""
    return normalize_answer(text, split_punctuation=True)


def tokens(text: str) -> list[str]:
    return normalize(text).split()


def overlap_f1(prediction: Sequence[str], reference: Sequence[str]) -> float:
    """SQuAD token F1 of two token lists (0 when they share no token, so also when either is empty)."""
    common = sum((Counter(prediction) & Counter(reference)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(prediction), common / len(reference)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, reference: str) -> float:
    """Token F1 of two answers under the filters' normalisation."""
    return overlap_f1(tokens(prediction), tokens(reference))


@cache
def stop_words() -> frozenset[str]:
    """scikit-learn's English stop words, imported on first use: importing sklearn costs about 1.3 s, which every
    CLI call would pay, most of them (errors, merge, export) without ever comparing a word."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


def content_tokens(text: str) -> list[str]:
    """Normalised tokens without stop words: what an answer claims, not how it is phrased."""
    stop = stop_words()
    return [t for t in tokens(text) if t not in stop]


def share_in(claimed: list[str], evidence: str) -> float:
    """Share of the claimed tokens (from `tokens`) that occur in the evidence; 0.0 for an empty claim."""
    if not claimed:
        return 0.0
    available = set(tokens(evidence))
    return sum(t in available for t in claimed) / len(claimed)


def claim_tokens(answer: str, question: str) -> list[str]:
    """The answer's content tokens that the question does not already contain: what the answer claims.
    A small model restates the question at length ("The person who performed the anthem is ..."), and
    those echoed words say nothing about whether the answer is right."""
    asked = set(tokens(question))
    return [t for t in content_tokens(answer) if t not in asked]


def claim_text(answer: str, question: str) -> str:
    """`claim_tokens` joined, or the normalised answer when it claims nothing beyond the question."""
    return " ".join(claim_tokens(answer, question)) or normalize(answer)


def claim_f1(a: str, b: str, question: str) -> float:
    """Token F1 of two answers to one question, over their claims (the restated question left out)."""
    return token_f1(claim_text(a, question), claim_text(b, question))


def contains_answer(question: str, answer: str) -> bool:
    """Does the question already say its answer? All of the answer's content words (or, for an answer of stop
    words only, its normalised text) occur in the question. Such a pair teaches nothing: the student copies."""
    claimed = content_tokens(answer)
    asked = set(tokens(question))
    if claimed:
        return all(t in asked for t in claimed)
    norm = " ".join(tokens(answer))
    return bool(norm) and f" {norm} " in f" {' '.join(tokens(question))} "
