"""Pulling one question out of a small model's loose output, or nothing: a question is never invented.

SmolLM2-class models wrap the question in chatter ("Sure! Here is a question: ..."), quotes, numbering or
Markdown, repeat the instructions, or write several questions. The first well-formed question wins.
"""

from __future__ import annotations

import re

from .text_match import content_tokens

_FENCE = re.compile(r"```.*?(```|$)", re.S)
_MARKERS = re.compile(r"</?target>|>>>|<<<", re.I)
# Labels and list markers in front of a question: "Question 1:", "Q:", "1.", "- ", "**".
_LEADER = re.compile(r"^\s*(?:[-*\u2022>#]+\s*|\d{1,2}[.)]\s*|\*\*|__)*(?:(?:question|q)\s*\d*\s*[:.)-]\s*)?", re.I)
_WRAPPERS = "\"'`*_\u201c\u201d\u2018\u2019 \t"
# Chatter that ends where the question starts: "Sure, here is a question:", "Here's one:".
_PREAMBLE = re.compile(
    r"^(?:sure|certainly|okay|ok|of course|absolutely|here(?:'s| is| are)|great)\b[^?]*?[:!.]\s+", re.I
)
_SENTENCE_THEN_QUESTION = re.compile(
    r"[.!]\s+(?=(?:what|who|whom|whose|when|where|why|how|which|is|are|was|were|do|does|did|can|could|should|"
    r"would|will|has|have|had|according|in|on|at|during)\b)",
    re.I,
)
# A line may hold several questions: each piece runs up to and including its "?" (with closing quotes).
_QUESTION_PIECE = re.compile(r"[^?]*\?[\"'\u201d\u2019*_]*")
_WORD = re.compile(r"[A-Za-z\u00C0-\u024F0-9]+")


def parse_question(text: str, min_words: int = 3, max_words: int = 60, about: str = "") -> str:
    """The first question (ending in "?") in `text`, cleaned of labels, quotes and preambles; "" when none.

    With `about` (the target text), the first question sharing a content word with it wins over a generic one
    before it ("What is the answer to this question? Who led ...?").
    """
    found = question_candidates(text, min_words, max_words)
    if about:
        wanted = set(content_tokens(about))
        for question in found:
            if wanted & set(content_tokens(question)):
                return question
    return found[0] if found else ""


def question_candidates(text: str, min_words: int = 3, max_words: int = 60) -> list[str]:
    """Every well-formed question in `text`, in order."""
    text = _MARKERS.sub("", _FENCE.sub("\n", text or ""))
    out = []
    for line in text.splitlines():
        for piece in _QUESTION_PIECE.findall(line):
            candidate = _question_in_line(piece)
            if candidate and min_words <= len(_WORD.findall(candidate)) <= max_words:
                out.append(candidate)
    return out


def _question_in_line(line: str) -> str:
    line = _LEADER.sub("", line).strip(_WRAPPERS)
    if "?" not in line:
        return ""
    head = line[: line.index("?") + 1]
    # The question starts after chatter that ends in a colon ("Here is one: What ...?"), or after a sentence
    # that ends before a question word ("Great text. Who ...?"); "U.S. Army" does not split.
    if ": " in head:
        head = head.rsplit(": ", 1)[1]
    for match in reversed(list(_SENTENCE_THEN_QUESTION.finditer(head))):
        head = head[match.end() :]
        break
    head = _PREAMBLE.sub("", head)
    head = _LEADER.sub("", head).strip(_WRAPPERS)
    if not head.endswith("?"):
        return ""
    return head[0].upper() + head[1:] if head[0].isalpha() else head
