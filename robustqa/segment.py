"""Segmentation into sentences, paragraphs, sections and token windows, with exact character offsets.

Every function returns spans with `text[span.start:span.end] == span.text`, stripped of surrounding
whitespace, non-empty, sorted and non-overlapping; the sentences (or paragraphs, or sections) of a text cover
every non-whitespace character of it.

Sentences come from nltk's Punkt with parameters learnt offline (`tools/train_punkt.py`, shipped as
`robustqa/data/punkt_params.json`): nothing is downloaded. Web and Markdown text has many lines without a
full stop (headings, list items, navigation), so line breaks end sentences too, unless the next line goes on
with the previous one (a lower-case start, or hard-wrapped prose).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # nltk is imported on first use: importing it costs about 2 s of CLI start-up
    from nltk.tokenize.punkt import PunktSentenceTokenizer

import json
import random
import re
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Sequence
from functools import lru_cache
from importlib.resources import files
from itertools import accumulate
from typing import Protocol

from robustqa.token_index import WORD, OffsetTokens, TokenIndex
from robustqa.types import Span

_NEWLINE = re.compile(r"\r\n|\r|\n")

# A line that starts a new block: heading, bullet or numbered list item, block quote, table row, code fence.
_BLOCK_START = re.compile(
    r"""[ \t]{0,3}(?:
        \#{1,6}(?:\s|$)
      | [-*+\u2022\u2023\u25e6\u25aa\u25cf\u25a0\u2013\u2014](?:\s|$)
      | \d{1,9}[.)](?:\s|$)
      | >
      | \|
      | ```
      | ~~~
    )""",
    re.X,
)
# A line after which a new block starts: ATX heading, table row, code fence.
_BLOCK_LINE = re.compile(r"[ \t]{0,3}(?:\#{1,6}(?:\s|$)|\||```|~~~)")
# Sentence-final punctuation, possibly followed by closing quotes or brackets.
_TERMINAL = re.compile(r"[.!?\u2026][\"'\u201d\u2019\u00bb)\]]*$")
# A line ending like this continues on the next one ("Paris,", "state-", "and (").
_OPEN_END = re.compile(r"[,\-\u2013\u2014(/&+]$")
# A line starting like this continues the previous one.
_CONTINUATION_START = set(",;:)]}%")
# Hard wrapping happens at 40-200 columns; longer lines are whole paragraphs (rendered HTML).
_MIN_WRAP, _MAX_WRAP = 40, 200
# Characters handed to Punkt at once (see _punkt_breaks).
_PUNKT_WINDOW = 50_000
# ASCII whitespace only: nltk's regexes and str.split disagree about some Unicode separators (U+2028).
_SAFE_CUT = re.compile(r"[^\W_][ \t\n\r\f\v](?=[^\W_])")
_MAX_LOOKAHEAD = 100_000

_ATX = re.compile(r"[ \t]{0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT_UNDERLINE = re.compile(r"[ \t]{0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"[ \t]{0,3}(`{3,}|~{3,})")
_NOT_SETEXT_TEXT = re.compile(r"[ \t]{0,3}(?:[-*+>|]|\d{1,9}[.)](?:\s|$))")

# Punkt's known misses, undone afterwards: "'Is it over?' she asked.", "J. K. Rowling", "(D-Minn.), the".
_QUESTION_OR_BANG_END = re.compile(r"[?!][\"'\u201d\u2019\u00bb)\]]*$")
_INITIAL_END = re.compile(r"(?:^|\s)[A-Z]\.$")
_INITIAL_START = re.compile(r"[A-Z]\.")

_WORD = WORD


class _HasRange(Protocol):
    start: int
    end: int


# ------------------------------------------------------------------------------------------------------------
# Punkt parameters, learnt offline and shipped with the package


@lru_cache(maxsize=1)
def punkt_tokenizer() -> PunktSentenceTokenizer:
    """nltk's Punkt with robustqa's shipped parameters (loaded once, on first use)."""
    raw = json.loads((files("robustqa") / "data" / "punkt_params.json").read_text(encoding="utf-8"))
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

    params = PunktParameters()
    params.abbrev_types = set(raw["abbrev_types"])
    params.collocations = {tuple(pair) for pair in raw["collocations"]}
    params.sent_starters = set(raw["sent_starters"])
    params.ortho_context = defaultdict(int, raw["ortho_context"])
    return PunktSentenceTokenizer(params)


# ------------------------------------------------------------------------------------------------------------
# Lines and blocks


def _lines(text: str) -> list[tuple[int, int]]:
    """(start, end) of every line, line-break characters excluded."""
    out, pos = [], 0
    for match in _NEWLINE.finditer(text):
        out.append((pos, match.start()))
        pos = match.end()
    out.append((pos, len(text)))
    return out


def _strip(text: str, start: int, end: int) -> tuple[int, int] | None:
    """[start, end) without surrounding whitespace, or None when nothing is left."""
    piece = text[start:end]
    left = len(piece) - len(piece.lstrip())
    if left == len(piece):
        return None
    return start + left, start + len(piece.rstrip())


def _span(text: str, doc_id: str, start: int, end: int, kind: str, meta: dict | None = None) -> Span | None:
    bounds = _strip(text, start, end)
    if bounds is None:
        return None
    return Span(doc_id, bounds[0], bounds[1], text[bounds[0] : bounds[1]], kind, meta or {})


def _blank_separated(text: str) -> list[list[tuple[int, int]]]:
    """Groups of consecutive non-blank lines."""
    groups: list[list[tuple[int, int]]] = [[]]
    for start, end in _lines(text):
        if text[start:end].strip():
            groups[-1].append((start, end))
        elif groups[-1]:
            groups.append([])
    return [g for g in groups if g]


def paragraphs(text: str, doc_id: str = "") -> list[Span]:
    """Blocks of text separated by blank lines."""
    spans = (_span(text, doc_id, g[0][0], g[-1][1], "paragraph") for g in _blank_separated(text))
    return [s for s in spans if s is not None]


# ------------------------------------------------------------------------------------------------------------
# Sentences


def _symbols_only(line: str) -> bool:
    return not any(ch.isalnum() for ch in line)


def _forced_break(prev: str, line: str) -> bool:
    """Does a new block start at `line`, whatever the punctuation says?"""
    return bool(_BLOCK_START.match(line) or _BLOCK_LINE.match(prev) or _symbols_only(prev) or _symbols_only(line))


def _looks_hard_wrapped(lines: list[str], joinable: list[bool]) -> bool:
    """Is this paragraph prose wrapped at a fixed width? Then every wrapped line is nearly full: its length
    plus the next line's first word exceeds the width (or a greedy wrapper would have put it there)."""
    width = max(len(line.rstrip()) for line in lines)
    if not _MIN_WRAP <= width <= _MAX_WRAP:
        return False
    if len(lines) < 3 and not _TERMINAL.search(lines[-1].rstrip()):
        return False  # two lines without a full stop: more likely two headlines than one wrapped sentence
    pairs = [(a, b) for a, b, ok in zip(lines, lines[1:], joinable, strict=False) if ok]
    return bool(pairs) and all(len(a.rstrip()) + 1 + len(b.split()[0]) > width for a, b in pairs)


def _joins(prev: str, line: str, wrapped: bool) -> bool:
    """Does the sentence go on across the line break between `prev` and `line`?"""
    prev, first = prev.rstrip(), line.lstrip()[0]
    if _TERMINAL.search(prev):
        return True  # Punkt decides ("Dr.\nSmith" goes on, "went home.\nThen" does not)
    if first.islower() or first in _CONTINUATION_START or _OPEN_END.search(prev):
        return True
    return wrapped


def _runs(text: str, group: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Split one blank-line paragraph at the line breaks that end a sentence."""
    lines = [text[s:e] for s, e in group]
    joinable = [not _forced_break(a, b) for a, b in zip(lines, lines[1:], strict=False)]
    wrapped = _looks_hard_wrapped(lines, joinable)
    runs, run_start = [], group[0][0]
    for i, ok in enumerate(joinable):
        if not (ok and _joins(lines[i], lines[i + 1], wrapped)):
            runs.append((run_start, group[i][1]))
            run_start = group[i + 1][0]
    runs.append((run_start, group[-1][1]))
    return runs


def _false_break(before: str, after: str) -> bool:
    """Is a Punkt break between `before` and `after` one of its known misses?"""
    before, after = before.rstrip(), after.lstrip()
    if not before or not after:
        return False
    if after[0] in _CONTINUATION_START:
        return True  # "Rep. Ilhan Omar (D-Minn.), the office said": no sentence starts with ")" or ","
    if _QUESTION_OR_BANG_END.search(before) and after[0].islower():
        return True
    return bool(_INITIAL_END.search(before) and _INITIAL_START.match(after))


def _punkt_breaks(tokenizer: PunktSentenceTokenizer, text: str, start: int, end: int) -> list[int]:
    """Offsets in (start, end) where Punkt ends a sentence, found window by window: nltk runs each regex
    search under a 5 s wall-clock limit, which a run of a few MB in one piece exceeds."""
    breaks: list[int] = []
    pos = start
    while pos < end:
        limit = _safe_cut(text, pos, pos + _PUNKT_WINDOW, end)
        ends = [pos + e for _, e in tokenizer.span_tokenize(text[pos:limit])]
        breaks += ends[:-1]
        pos = limit
    return breaks


def _safe_cut(text: str, start: int, limit: int, end: int) -> int:
    """A window end near `limit` where Punkt loses no decision: ASCII whitespace between two letters or digits
    (a break needs a sentence-final mark before it and the next token after it, both inside one window; a mark
    right after the cut, as in "Smith .!", would lose the word before it)."""
    if limit >= end:
        return end
    for i in range(limit, start, -1):
        if text[i] in " \t\n\r\f\v" and text[i - 1].isalnum() and i + 1 < end and text[i + 1].isalnum():
            return i
    # None in the window: look ahead; only text without one for 100k characters is cut anywhere.
    ahead = _SAFE_CUT.search(text, limit, end)
    if ahead is None:
        return end if end - limit <= _MAX_LOOKAHEAD else limit
    return min(ahead.start() + 1, limit + _MAX_LOOKAHEAD)


def sentences(text: str, doc_id: str = "") -> list[Span]:
    """Sentences by Punkt within runs of lines; headings, list items and one-line blocks are sentences."""
    tokenizer = punkt_tokenizer()
    out: list[Span] = []
    for group in _blank_separated(text):
        for run_start, run_end in _runs(text, group):
            # Only Punkt's break positions are used, so no character between two breaks can be lost.
            bounds = [run_start]
            for end in _punkt_breaks(tokenizer, text, run_start, run_end):
                # A few characters either side decide it; whole slices would be quadratic on long runs.
                before, after = text[max(bounds[-1], end - 16) : end], text[end : min(run_end, end + 16)]
                if not _false_break(before, after):
                    bounds.append(end)
            bounds.append(run_end)
            for start, end in zip(bounds, bounds[1:], strict=False):
                span = _span(text, doc_id, start, end, "sentence")
                if span is not None:
                    out.append(span)
    return out


# ------------------------------------------------------------------------------------------------------------
# Sections


def _headings(text: str) -> list[tuple[int, int, str]]:
    """(start offset, level, heading text) of every Markdown ATX or setext heading outside code fences."""
    lines = _lines(text)
    found: list[tuple[int, int, str]] = []
    fence: str | None = None
    para_start: int | None = None  # index of the first line of the current paragraph
    for i, (start, end) in enumerate(lines):
        line = text[start:end]
        fence_match = _FENCE.match(line)
        if fence is not None:
            if fence_match and fence_match.group(1)[0] == fence[0] and len(fence_match.group(1)) >= len(fence):
                fence = None
            continue
        if fence_match:
            fence, para_start = fence_match.group(1), None
            continue
        if not line.strip():
            para_start = None
            continue
        atx = _ATX.match(line)
        if atx:
            found.append((start, len(atx.group(1)), (atx.group(2) or "").strip()))
            para_start = None
            continue
        underline = _SETEXT_UNDERLINE.match(line)
        if underline and para_start is not None:
            first = lines[para_start][0]
            heading = " ".join(text[s:e].strip() for s, e in lines[para_start:i])
            found.append((first, 1 if underline.group(1)[0] == "=" else 2, heading))
            para_start = None
            continue
        if para_start is None and not _NOT_SETEXT_TEXT.match(line):
            para_start = i
    return found


def sections(text: str, doc_id: str = "") -> list[Span]:
    """Markdown sections: each ATX (#) or setext heading starts one; text before the first heading is one."""
    heads = _headings(text)
    starts = [(0, 0, None)] + heads if not heads or heads[0][0] > 0 else heads
    out = []
    for (start, level, heading), nxt in zip(starts, starts[1:] + [(len(text), 0, None)], strict=True):
        span = _span(text, doc_id, start, nxt[0], "section", {"heading": heading, "level": level})
        if span is not None:
            out.append(span)
    return out


# ------------------------------------------------------------------------------------------------------------
# Tokens and token windows


def word_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every word and punctuation mark: a cheap tokenizer without a model tokenizer."""
    return [m.span() for m in _WORD.finditer(text)]


def token_windows(
    text: str,
    doc_id: str,
    offsets: Sequence[tuple[int, int]],
    min_tokens: int,
    max_tokens: int,
    rng: random.Random,
) -> Span:
    """A random window of whole tokens, as Cartridges' TokenChunker picks one: a length uniform in
    [min_tokens, max_tokens], a start uniform over the positions where it fits, the whole text when shorter.

    `offsets` are token character ranges (from `word_spans` or a tokenizer's offset mapping); tokens that
    cover only whitespace (or nothing, like special tokens) are not counted.
    """
    return token_window(text, doc_id, OffsetTokens(text, offsets, doc_id), min_tokens, max_tokens, rng)


def token_window(
    text: str, doc_id: str, tokens: TokenIndex, min_tokens: int, max_tokens: int, rng: random.Random
) -> Span:
    """`token_windows` over tokens indexed once (`robustqa.token_index`): what a plan of many windows uses."""
    if not 0 < min_tokens <= max_tokens:
        raise ValueError(f"need 0 < min_tokens <= max_tokens, got {min_tokens}, {max_tokens}")
    if not len(tokens):
        raise ValueError(f"document {doc_id!r} has no tokens")
    start, end = tokens.draw(min_tokens, max_tokens, rng)
    span = _span(text, doc_id, start, end, "chunk")
    assert span is not None  # every kept token holds a non-whitespace character
    return span


# ------------------------------------------------------------------------------------------------------------
# Finding spans by character range


class SpanIndex:
    """Finds the spans overlapping a character range in O(log n + hits). Spans may be unsorted and overlap."""

    def __init__(self, spans: Sequence[_HasRange]) -> None:
        self.order = sorted(range(len(spans)), key=lambda i: (spans[i].start, spans[i].end))
        self.starts = [spans[i].start for i in self.order]
        self.ends = [spans[i].end for i in self.order]
        # Running maximum of the ends: monotone, so bisect finds the first span that can reach a position.
        self.reach = list(accumulate(self.ends, max))

    def overlapping(self, start: int, end: int) -> list[int]:
        """Indices (ascending, into the given sequence) of the spans sharing a character with [start, end)."""
        if end <= start:
            return []
        lo = bisect_right(self.reach, start)
        hi = bisect_left(self.starts, end)
        return sorted(self.order[k] for k in range(lo, hi) if self.ends[k] > start and self.starts[k] < end)

    def at(self, position: int) -> list[int]:
        """Indices of the spans containing the character at `position`."""
        return self.overlapping(position, position + 1)


def span_index(spans: Sequence[_HasRange]) -> SpanIndex:
    """An index for repeated `overlapping` queries over the same spans."""
    return SpanIndex(spans)


def overlapping(spans: Sequence[_HasRange], start: int, end: int) -> list[int]:
    """Indices of the spans sharing at least one character with [start, end); none for an empty range."""
    return SpanIndex(spans).overlapping(start, end)
