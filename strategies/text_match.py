"""Answer comparison without a model: SQuAD-style normalisation, token F1 and containment.

Shared by the verifier (is the answer's claim in the target?) and the consistency filter (do two samples claim
the same thing?).
"""

from __future__ import annotations

import re
import string
from collections import Counter

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans({c: " " for c in string.punctuation + "\u2018\u2019\u201c\u201d\u2013\u2014"})


def normalize(text: str) -> str:
    """SQuAD's answer normalisation: lower case, no punctuation, no articles, single spaces."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split())


def tokens(text: str) -> list[str]:
    return normalize(text).split()


def content_tokens(text: str) -> list[str]:
    """Normalised tokens without stop words: what an answer claims, not how it is phrased."""
    return [t for t in tokens(text) if t not in ENGLISH_STOP_WORDS]


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD token F1 (0 when either side has no tokens)."""
    pred, ref = tokens(prediction), tokens(reference)
    common = sum((Counter(pred) & Counter(ref)).values())
    if not pred or not ref or common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


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
