"""The assistant turn a student trains on: the answer alone, or the answer followed by the sentence it comes from.

A span answer ("1857") teaches a closed-book student the fact's surface only; quoting the target sentence after it
also puts the document's own words in the training data, which is what self-study is for. The record's `answer`
stays the bare answer (audits and offsets read it); only `messages` carry the longer turn.
"""

from __future__ import annotations

from .text_match import normalize

RESPONSES = ("answer", "answer+evidence")


def answer_with_evidence(answer: str, evidence: str) -> str | None:
    """The answer, then its evidence quoted on a line of its own; None when the evidence adds nothing (it is empty,
    or the answer already contains it, as a whole-sentence answer does)."""
    quoted = " ".join(evidence.split())
    if not quoted or not answer.strip() or normalize(quoted) in normalize(answer):
        return None
    return f'{answer}\n\nThe document says: "{quoted}"'
