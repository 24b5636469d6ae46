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
# A predicate opening with an auxiliary, a common irregular past, or a regular past tense ("-ed"): only then is
# "Who <rest>?" grammatical.
_VERB_START = re.compile(
    r"^(?:is|are|was|were|has|have|had|will|would|can|could|did|does|became|becomes|won|led|wrote|made|"
    r"took|gave|began|held|became|brought|built|found|left|lost|met|ran|saw|sent|set|spent|told|went|"
    r"[a-z]{3,}ed)\b"
)


def template_question(target: Span, answer: AnswerSpan) -> str:
    """A question about `target` whose answer is `answer` (a span inside it)."""
    lo, hi = answer.start - target.start, answer.end - target.start
    sentence = target.text.strip()
    offset = target.text.index(sentence[:1]) if sentence else 0
    lo, hi = lo - offset, hi - offset
    rest = sentence[hi:].strip().rstrip(".!?;:").strip()
    if lo == 0 and answer.kind in ("name", "number") and _VERB_START.match(rest) and len(rest.split()) >= 2:
        asker = "Who" if answer.kind == "name" and len(answer.text.split()) >= 2 else "What"
        if answer.kind == "number":
            asker = "What number"
        return f"{asker} {rest}?"
    blanked = f"{sentence[:lo]}{BLANK}{sentence[hi:]}".strip()
    blanked = blanked.rstrip(".!?;:").strip() + "."
    return f'Which words fill the blank in "{blanked}"?'
