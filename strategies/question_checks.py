"""Checks every question must pass before it is used, whoever wrote it. Each returns a reason or None.

1. it is a question: ends with "?", a sensible length, and asks (a question word or an auxiliary verb);
2. it is about its target: at least `min_overlap` content words shared with the target sentence;
3. it does not contain its own answer (then it teaches nothing: the student copies the question);
4. it names no number or proper name absent from the context the teacher saw (invented specifics);
5. it is not a near-duplicate of an earlier question on the same document.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from robustqa.specifics import missing_specifics
from robustqa.text_match import contains_answer, content_tokens, tokens

__all__ = ["QUESTION_WORDS", "QuestionChecks", "contains_answer"]

QUESTION_WORDS = {
    "what", "who", "whom", "whose", "when", "where", "why", "how", "which",
    "is", "are", "was", "were", "do", "does", "did", "can", "could", "should", "would", "will", "has", "have",
    "had", "according", "in", "on", "at", "during", "name", "from", "for", "by", "to", "with",
}  # fmt: skip


@dataclass(frozen=True)
class QuestionChecks:
    """Parameters of the checks (see the module docstring)."""

    min_words: int = 4
    max_words: int = 40
    min_overlap: int = 2
    duplicate_jaccard: float = 0.8

    def failure(self, question: str, answer: str, target: str, context: str, earlier: Iterable[str] = ()) -> str | None:
        """Why `question` fails (None when it passes every check)."""
        words = tokens(question)
        if not question.strip().endswith("?") or not (self.min_words <= len(words) <= self.max_words):
            return f"not a question: {len(words)} words, {'ends' if question.strip().endswith('?') else 'no'} '?'"
        if not QUESTION_WORDS & set(words):
            return "not a question: no question word or auxiliary verb"
        wanted = set(content_tokens(target))
        shared = len(wanted & set(content_tokens(question)))
        need = min(self.min_overlap, len(wanted))
        if shared < need:
            return f"not about the target: {shared} content word(s) shared (< {need})"
        if answer and contains_answer(question, answer):
            return f"contains its own answer {answer!r}"
        invented = missing_specifics(question, context)
        if invented:
            return f"invented specifics: {', '.join(repr(w) for w in invented[:5])} not in the context"
        mine = set(words)
        for other in earlier:
            theirs = set(tokens(other))
            if mine and theirs and len(mine & theirs) / len(mine | theirs) >= self.duplicate_jaccard:
                return f"near-duplicate of an earlier question on the document: {other!r}"
        return None
