"""Template questions: deterministic, grammatical questions built from a target sentence and its answer span.

They stand in only when the teacher's own questions fail the checks after the allowed attempts, and the record
says so (`meta.question_source = "template"`). Two forms:

- subject question: when the answer opens the sentence and the rest reads as a predicate
  ("Peyton Manning was named MVP." with answer "Peyton Manning" -> "Who was named MVP?");
- cloze question: the answer blanked out of the sentence
  ('Which words fill the blank in "The Broncos beat the Panthers on ____."?').
Both are answered by the span by construction.
"""

from __future__ import annotations

import re

from robustqa.types import AnswerSpan, Span

BLANK = "____"
_VERB_START = re.compile(
    r"^(?:is|are|was|were|has|have|had|will|would|can|could|did|does|do|became|becomes|won|led|wrote|made|"
    r"played|received|founded|created|built|defeated|joined|served|remained|began|started|ended|took|gave|"
    r"[a-z]+ed|[a-z]+s)\b"
)


def template_question(target: Span, answer: AnswerSpan) -> str:
    """A question about `target` whose answer is `answer` (a span inside it)."""
    lo, hi = answer.start - target.start, answer.end - target.start
    sentence = target.text.strip()
    offset = target.text.index(sentence[:1]) if sentence else 0
    lo, hi = lo - offset, hi - offset
    rest = sentence[hi:].strip().rstrip(".!?;:").strip()
    if lo == 0 and answer.kind in ("name", "phrase", "number") and _VERB_START.match(rest) and len(rest.split()) >= 2:
        asker = "Who" if answer.kind == "name" and len(answer.text.split()) >= 2 else "What"
        if answer.kind == "number":
            asker = "What number"
        return f"{asker} {rest}?"
    blanked = f"{sentence[:lo]}{BLANK}{sentence[hi:]}".strip()
    blanked = blanked.rstrip(".!?;:").strip() + "."
    return f'Which words fill the blank in "{blanked}"?'
