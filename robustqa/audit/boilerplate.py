"""Where a document's boilerplate is: given regions, a provider callable, or the complement of a clean article
text.

A provider maps a document to its boilerplate character ranges, or to None when it does not know that document
(then markup hijack is not measured there). With a ground-truth article text (the shared web pages'
articleBody), the article's words are aligned to the page text and everything outside the aligned runs is
boilerplate.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from robustqa.align import MIN_ALIGNED_WORDS, align_words
from robustqa.errors import InputError
from robustqa.io.bounded import loads_json
from robustqa.io.outputs import require_regular_input
from robustqa.types import Document

Regions = list[tuple[int, int]]
BoilerplateProvider = Callable[[Document], Regions | None]
BoilerplateSpec = Mapping[str, Sequence[Sequence[int]]] | BoilerplateProvider | object | None


def as_provider(spec: BoilerplateSpec) -> BoilerplateProvider | None:
    """A provider from a mapping doc id -> [(start, end), ...], a callable, a span filter
    (`flag(doc)`, such as robustqa's sanitiser), or None (boilerplate unknown)."""
    if spec is None or callable(spec):
        return spec
    if hasattr(spec, "flag"):
        return span_filter_provider(spec)
    regions = {str(k): [(int(s), int(e)) for s, e in v] for k, v in spec.items()}
    return lambda doc: regions.get(doc.id)


class SpanFilterRegions:
    """A provider from a robustqa span filter: the flagged spans of each document are its regions."""

    def __init__(self, span_filter: object) -> None:
        self.span_filter = span_filter
        self.source = f"{type(span_filter).__module__}:{type(span_filter).__qualname__}"

    def __call__(self, doc: Document) -> Regions:
        return [(int(f.start), int(f.end)) for f in self.span_filter.flag(doc)]


def span_filter_provider(span_filter: object) -> BoilerplateProvider:
    """Regions from a robustqa span filter (anything with `flag(doc)` returning objects with start/end, such
    as the sanitiser or the instruction filter), or from a callable Document -> regions."""
    if hasattr(span_filter, "flag"):
        return SpanFilterRegions(span_filter)
    if not callable(span_filter):
        raise TypeError(f"{span_filter!r} has no flag(doc) method and is not callable")
    return span_filter  # type: ignore[return-value]


def load_regions(path: str | Path) -> dict[str, Regions]:
    """A JSON file {doc id: [[start, end], ...]} of boilerplate regions."""
    data = _read_json(path)
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected an object mapping document ids to [[start, end], ...]")
    out = {}
    for doc_id, ranges in data.items():
        try:
            out[str(doc_id)] = [(int(s), int(e)) for s, e in ranges]
        except (TypeError, ValueError):
            raise InputError(f"{path}: regions of {doc_id!r} must be [[start, end], ...]") from None
    return out


def load_article_truth(path: str | Path) -> dict[str, str]:
    """A JSON file {doc id: article text} or {doc id: {"articleBody": ...}} (the web ground-truth
    format), or a WCXB-style {"ground_truth": {"main_content": ...}} per id."""
    data = _read_json(path)
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected an object mapping document ids to article texts")
    out = {}
    for doc_id, value in data.items():
        text = _article_text(value)
        if text is None:
            raise InputError(f"{path}: entry {doc_id!r} has no article text (a string, articleBody or main_content)")
        out[str(doc_id)] = text
    return out


def article_provider(truth: Mapping[str, str]) -> BoilerplateProvider:
    """Boilerplate = everything outside the page text aligned to the document's clean article text."""

    def provide(doc: Document) -> Regions | None:
        article = truth.get(doc.id)
        if article is None:
            return None
        return complement(align_article(doc.text, article), len(doc.text))

    return provide


def align_article(text: str, article: str) -> Regions:
    """Character ranges of the page `text` that the article repeats (runs of >= MIN_ALIGNED_WORDS words)."""
    return align_words(text, article, MIN_ALIGNED_WORDS)


def complement(regions: Regions, length: int) -> Regions:
    out, pos = [], 0
    for start, end in sorted(regions):
        if start > pos:
            out.append((pos, start))
        pos = max(pos, end)
    if pos < length:
        out.append((pos, length))
    return out


def sentence_fractions(starts: np.ndarray, ends: np.ndarray, regions: Regions, length: int) -> np.ndarray:
    """Share of each [start, end) range's characters that lie inside `regions` (which may overlap)."""
    delta = np.zeros(length + 1, dtype=np.int32)
    for start, end in regions:
        start, end = max(0, min(start, length)), max(0, min(end, length))
        if end > start:
            delta[start] += 1
            delta[end] -= 1
    inside = np.concatenate([[0], np.cumsum(np.cumsum(delta[:-1]) > 0)])
    widths = np.maximum(ends - starts, 1)
    return (inside[ends] - inside[starts]) / widths


def _article_text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for key in ("articleBody", "main_content", "text"):
            if isinstance(value.get(key), str):
                return value[key]
        if isinstance(value.get("ground_truth"), dict):
            return _article_text(value["ground_truth"])
    return None


def _read_json(path: str | Path) -> object:
    path = Path(path)
    require_regular_input(path)
    try:
        return loads_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: malformed JSON ({exc})") from None
