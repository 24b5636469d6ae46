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
# A template question must keep this many words of its sentence outside the answer: a cloze of a heading with
# the whole heading blanked ('Which words fill the blank in "____."?') asks nothing.
MIN_CONTEXT_WORDS = 3
# A predicate opening with an auxiliary, a common irregular past, or a regular past tense ("-ed"): only then is
# "Who <rest>?" grammatical.
_VERB_START = re.compile(
    r"^(?:is|are|was|were|has|have|had|will|would|can|could|did|does|became|becomes|won|led|wrote|made|"
    r"took|gave|began|held|became|brought|built|found|left|lost|met|ran|saw|sent|set|spent|told|went|"
    r"[a-z]{3,}ed)\b"
)


def blanked_sentence(target: Span, answer: AnswerSpan) -> str:
    """The target sentence with `answer` (a span inside it) replaced by a blank, ending in one full stop."""
    sentence, lo, hi = _sentence_and_answer(target, answer)
    blanked = f"{sentence[:lo]}{BLANK}{sentence[hi:]}".strip()
    return blanked.rstrip(".!?;:").strip() + "."


def can_template(target: Span, answer: AnswerSpan) -> bool:
    """Whether a template question about `answer` keeps MIN_CONTEXT_WORDS words of the sentence around it."""
    sentence, lo, hi = _sentence_and_answer(target, answer)
    return len(f"{sentence[:lo]} {sentence[hi:]}".split()) >= MIN_CONTEXT_WORDS


def template_question(target: Span, answer: AnswerSpan) -> str:
    """A question about `target` whose answer is `answer` (a span inside it)."""
    sentence, lo, hi = _sentence_and_answer(target, answer)
    rest = sentence[hi:].strip().rstrip(".!?;:").strip()
    if lo == 0 and answer.kind in ("name", "number") and _VERB_START.match(rest) and len(rest.split()) >= 2:
        asker = "Who" if answer.kind == "name" and len(answer.text.split()) >= 2 else "What"
        if answer.kind == "number":
            asker = "What number"
        return f"{asker} {rest}?"
    return f'Which words fill the blank in "{blanked_sentence(target, answer)}"?'


def _sentence_and_answer(target: Span, answer: AnswerSpan) -> tuple[str, int, int]:
    """The stripped target sentence and the answer's offsets within it."""
    sentence = target.text.strip()
    offset = target.text.index(sentence[:1]) if sentence else 0
    return sentence, answer.start - target.start - offset, answer.end - target.start - offset
