"""Answers that are spans of the document: the candidate spans of a target, and snapping a free answer onto one.

A weak teacher invents names and numbers in most free-form answers, but a span of the target cannot be invented:
its offsets say where it is, so its groundedness is a fact. Two ways to get one:

- `candidate_spans(target)`: the spans of a target sentence that can be answers, most specific first: numbers,
  dates, names (capitalised runs), noun-phrase-like runs of content words, clauses, and the whole sentence last.
  Found by patterns, not by a tagger (nltk's tagger data cannot be installed here); they only need to be
  plausible answers, since the teacher then ranks them or writes a question for one.
- `snap(answer, target)`: the contiguous run of the target's words that best matches a free answer (token F1 on
  normalised words), with its exact offsets and the match score.
"""

from __future__ import annotations

import random
import re
from collections import Counter

from robustqa.text_match import stop_words
from robustqa.types import AnswerSpan, Span

from .text_match import normalize

# Kinds in order of preference as an answer: specific facts first, the whole sentence last.
KINDS = ("number", "date", "name", "phrase", "clause", "sentence")

_WORD = re.compile(r"[^\W_](?:[\w'’\-.]*[^\W_])?")
_MONTHS = (
    "January|February|March|April|May|June|July|August|September|October|November|December|"
    "Jan\\.?|Feb\\.?|Mar\\.?|Apr\\.?|Jun\\.?|Jul\\.?|Aug\\.?|Sep\\.?|Sept\\.?|Oct\\.?|Nov\\.?|Dec\\.?"
)
_DATE = re.compile(
    rf"\b(?:(?:{_MONTHS})\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{3,4}})?|\d{{1,2}}\s+(?:{_MONTHS})(?:\s+\d{{3,4}})?"
    rf"|(?:{_MONTHS})\s+\d{{3,4}})\b"
)
# A month named alone ("In November, Luther wrote ...") is a date too ("May" alone is mostly the verb).
_LONE_MONTH = re.compile(r"\b(?:January|February|March|April|June|July|August|September|October|November|December)\b")
_POSSESSIVE = re.compile(r"['’]s$")
_NUMBER = re.compile(
    r"(?<![\w.:])[$£€]?\d[\d,]*(?:[.:]\d+)?(?:[–-]\d[\d,]*(?:[.:]\d+)?)?"
    r"(?:\s?(?:%|percent|per cent|million|billion|trillion|thousand|hundred))?(?![\w])"
)
_NAME_JOINERS = {"of", "the", "de", "la", "van", "von", "der", "and", "du", "da", "del", "y"}
_CLAUSE_BREAK = re.compile(r"[,;:()\u2013\u2014]|\b(?:which|who|whom|whose|because|although|while|whereas)\b")


def candidate_spans(target: Span, limit: int = 8) -> list[AnswerSpan]:
    """Candidate answers of a target, as document spans, most preferred kind first (the sentence always last)."""
    text = target.text
    found: dict[tuple[int, int], AnswerSpan] = {}

    def add(start: int, end: int, kind: str) -> None:
        start, end = _trim(text, start, end)
        if end <= start or (start, end) in found:
            return
        piece = text[start:end]
        if sum(ch.isalnum() for ch in piece) < 2:  # "S" of "S sport" is no answer
            return
        if kind != "sentence" and (end - start >= len(text.strip()) or not _has_content(piece)):
            return
        found[(start, end)] = AnswerSpan(target.start + start, target.start + end, piece, kind)

    for m in _DATE.finditer(text):
        add(m.start(), m.end(), "date")
    for m in _LONE_MONTH.finditer(text):
        if not any(s <= m.start() and m.end() <= e for (s, e), a in found.items() if a.kind == "date"):
            add(m.start(), m.end(), "date")
    for m in _NUMBER.finditer(text):
        if not any(s <= m.start() and m.end() <= e for (s, e), a in found.items() if a.kind == "date"):
            add(m.start(), m.end(), "number")
    dates = [(a.start - target.start, a.end - target.start) for a in found.values() if a.kind == "date"]
    for start, end in _name_runs(text):
        if not any(s < end and start < e for s, e in dates):  # "February" of a date is not a name
            # "Manning's problems": the name is "Manning"; the cloze then reads "____'s problems".
            possessive = _POSSESSIVE.search(text[start:end])
            add(start, end - (2 if possessive else 0), "name")
    for start, end in _content_runs(text):
        add(start, end, "phrase")
    for start, end in _clauses(text):
        add(start, end, "clause")
    by_kind = sorted(found.values(), key=lambda a: (KINDS.index(a.kind), a.start))
    picked = by_kind[: max(0, limit - 1)]
    lo, hi = _trim(text, 0, len(text))
    sentence = AnswerSpan(target.start + lo, target.start + hi, text[lo:hi], "sentence")
    return [a for a in picked if (a.start, a.end) != (sentence.start, sentence.end)] + [sentence]


def choose_answer(candidates: list[AnswerSpan], sentence: str, seed: int, round_no: int = 0) -> AnswerSpan:
    """The span a question will be written for. Specific facts (numbers, dates, names) come first, in an order
    seeded by `seed` (derive it from the target, not the item, so that every round on one target sees the same
    order); round r takes the r-th, so a target asked about again gets another answer, not a duplicate
    question. Spans that occur once in the sentence come first (a question built around a repeated span
    would contain its own answer)."""
    if not candidates:
        raise ValueError("no candidate spans")
    unique = [a for a in candidates if sentence.count(a.text) <= 1] or candidates
    specific = [a for a in unique if a.kind in ("number", "date", "name")]
    rest = [a for a in unique if a not in specific]
    random.Random(seed).shuffle(specific)
    order = specific + rest
    return order[round_no % len(order)]


def snap(answer: str, target: Span) -> tuple[AnswerSpan | None, float]:
    """The contiguous run of the target's words with the highest token F1 against `answer`, and that F1.
    Offsets are exact: `target.text[span.start - target.start : span.end - target.start] == span.text`."""
    words = [(m.start(), m.end(), normalize(m.group())) for m in _WORD.finditer(target.text)]
    words = [w for w in words if w[2]]
    wanted = Counter(t for t in normalize(answer).split())
    if not words or not wanted:
        return None, 0.0
    n_wanted = sum(wanted.values())
    best: tuple[float, int, int] = (0.0, 0, 0)
    best_len = 0
    for i in range(len(words)):
        got: Counter[str] = Counter()
        for j in range(i, len(words)):
            got.update(words[j][2].split())
            common = sum((got & wanted).values())
            if common == 0:
                continue
            f1 = 2 * common / (sum(got.values()) + n_wanted)
            # Ties go to the shorter, then the earlier run: extra words only dilute an answer.
            length = words[j][1] - words[i][0]
            if f1 > best[0] + 1e-12 or (abs(f1 - best[0]) <= 1e-12 and length < best_len):
                best, best_len = (f1, i, j), length
    f1, i, j = best
    if f1 == 0.0:
        return None, 0.0
    start, end = words[i][0], words[j][1]
    return AnswerSpan(target.start + start, target.start + end, target.text[start:end], "snapped"), f1


def overlap(a: AnswerSpan, b: AnswerSpan) -> float:
    """Intersection over union of two spans' character ranges."""
    inter = max(0, min(a.end, b.end) - max(a.start, b.start))
    union = max(a.end, b.end) - min(a.start, b.start)
    return inter / union if union > 0 else 0.0


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """Strip spaces, quotes and trailing sentence punctuation from a span."""
    while start < end and (text[start].isspace() or text[start] in "\"'“‘()[],;:"):
        start += 1
    while end > start and (text[end - 1].isspace() or text[end - 1] in "\"'”’)],;:.!?"):
        end -= 1
    return start, end


def _has_content(piece: str) -> bool:
    return any(t not in stop_words() for t in normalize(piece).split())


def _name_runs(text: str) -> list[tuple[int, int]]:
    """Runs of capitalised words (joined by "of", "the", ...), not counting a lone sentence-initial word."""
    runs, current = [], []
    for m in _WORD.finditer(text):
        word = m.group()
        joined = not current or not re.search(r"[^\s]", text[current[-1].end() : m.start()])
        if (word[0].isupper() or (current and word in _NAME_JOINERS)) and joined:
            current.append(m)
            continue
        if word[0].isupper():  # punctuation ended the run; this word may start the next one
            runs.append(current)
            current = [m]
            continue
        runs.append(current)
        current = []
    runs.append(current)
    out = []
    for run in runs:
        while run and run[-1].group() in _NAME_JOINERS:
            run = run[:-1]
        if not run:
            continue
        if run[0].start() == _first_word_start(text) and len(run) == 1:
            continue  # "The" or "However" opening the sentence is not a name
        if run[0].start() == _first_word_start(text) and _opens_sentence_only(run[0].group()):
            run = run[1:]  # "Despite Manning's problems": the capital is the sentence's, not a name's
            while run and run[0].group() in _NAME_JOINERS:
                run = run[1:]
            if not run:
                continue
        out.append((run[0].start(), run[-1].end()))
    return out


# Capitalised only because they open a sentence: function words, and the adverbs and prepositions that open
# sentences in news and encyclopaedic text (beside scikit-learn's stop words).
_SENTENCE_OPENERS = {
    "despite", "earlier", "later", "following", "today", "yesterday", "tomorrow", "fellow", "unlike", "like",
    "according", "although", "instead", "overall", "finally", "initially", "eventually", "additionally", "also",
}  # fmt: skip


def _opens_sentence_only(word: str) -> bool:
    low = word.lower()
    return low in stop_words() or low in _SENTENCE_OPENERS or (low.endswith("ly") and len(low) > 4)


def _first_word_start(text: str) -> int:
    m = _WORD.search(text)
    return m.start() if m else 0


def _content_runs(text: str, max_words: int = 6) -> list[tuple[int, int]]:
    """Maximal runs of content words (stop words and punctuation break them): noun-phrase-like pieces."""
    out, run = [], []
    words = list(_WORD.finditer(text))
    for k, m in enumerate(words):
        gap = text[words[k - 1].end() : m.start()] if k else ""
        breaks = bool(re.search(r"[,;:()\"“”.!?]", gap))
        if normalize(m.group()) in stop_words() or not normalize(m.group()) or breaks:
            if run:
                out.append(run)
            run = [] if normalize(m.group()) in stop_words() or not normalize(m.group()) else [m]
            continue
        run.append(m)
    if run:
        out.append(run)
    spans = []
    for run in out:
        if len(run) > max_words:
            run = run[:max_words]
        if len(run) >= 2:
            spans.append((run[0].start(), run[-1].end()))
    return spans


def _clauses(text: str) -> list[tuple[int, int]]:
    """Pieces between clause breaks (commas, semicolons, relative pronouns) of at least three words."""
    cuts = [0] + [m.start() for m in _CLAUSE_BREAK.finditer(text)] + [len(text)]
    out = []
    for a, b in zip(cuts, cuts[1:]):
        piece = text[a:b]
        if len(_WORD.findall(piece)) >= 3:
            out.append((a, b))
    return out
