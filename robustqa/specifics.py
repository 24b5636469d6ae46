"""Specifics of a text: its numbers and proper names, the details a small model invents most often.

Used by the verifier (robustqa.strategies.verifier) and by the audit's `invented_specifics` figure. The verifier
requires every specific of a question and its answer to occur in the context the answerer saw:
"October 23, 2023" or "Josh Norman" in an answer about a paragraph that names neither is invented, however
fluent the rest of the answer is and however often the same model repeats it. Proper names are capitalised
words that do not start a sentence (a name that opens a sentence is missed: the check never rejects for it).
"""

from __future__ import annotations

import re

# A word: letters (any script), digits, inner apostrophes or hyphens.
_WORD = re.compile(r"[^\W_](?:[\w'’\-]*[^\W_])?")
# List markers ("1.", "2)") and Markdown emphasis are layout, not claims.
_LIST_MARKER = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+", re.MULTILINE)
_SENTENCE_END = re.compile(r"[.!?:;\n]\s*[\"'“‘(\[]*\s*$")
_STOP_CAPS = {"I", "I'm", "I've", "I'd", "I'll", "OK"}
_POSSESSIVE = re.compile(r"['’]s$")
_TOKEN = re.compile(r"[^\W_]+")
_NON_TOKEN = re.compile(r"[\W_]")


def specifics(text: str) -> list[str]:
    """Numbers and proper names of `text`, in order, without repeats (as written)."""
    text = _LIST_MARKER.sub(" ", text.replace("*", " ").replace("_", " "))
    found: dict[str, None] = {}
    for match in _WORD.finditer(text):
        word = _POSSESSIVE.sub("", match.group())  # "Empire's" claims "Empire"
        if any(ch.isdigit() for ch in word):
            found[word] = None
        elif word[0].isupper() and word not in _STOP_CAPS and not _starts_sentence(text, match.start()):
            found[word] = None
    return list(found)


def missing_specifics(text: str, evidence: str) -> list[str]:
    """The specifics of `text` with a token that never occurs in `evidence` (case and punctuation ignored)."""
    return invented(specifics(text), set(tokens(evidence)))


def invented(words: list[str], available: set[str]) -> list[str]:
    """The words with a token missing from `available` (a set of `tokens` of the evidence)."""
    return [word for word in words if any(t not in available for t in tokens(word))]


def tokens(text: str) -> list[str]:
    """Lower-cased runs of letters and digits: punctuation and case never decide whether a name occurs."""
    return _TOKEN.findall(text.lower())


def tokens_present(text: str, wanted: set[str], chunk_chars: int = 1 << 20) -> set[str]:
    """The tokens of `wanted` that occur in `text` (as `tokens` finds them), read about `chunk_chars` at a time:
    memory stays bounded by the chunk, not by the text's token list (38M strings for a 200 MB document)."""
    found: set[str] = set()
    start = 0
    while start < len(text) and len(found) < len(wanted):
        cut = _NON_TOKEN.search(text, min(len(text), start + chunk_chars))  # a cut there splits no token
        end = cut.start() + 1 if cut else len(text)
        found.update(wanted.intersection(_TOKEN.findall(text[start:end].lower())))
        start = end
    return found


def _starts_sentence(text: str, start: int) -> bool:
    before = text[max(0, start - 8) : start]
    return not text[:start].strip() or bool(_SENTENCE_END.search(before))
