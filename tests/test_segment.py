"""Segmentation: exact offsets on arbitrary text (property tests), named sentence cases, real documents."""

from __future__ import annotations

import json
import random
import re
import statistics
from unittest import mock

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from robustqa import segment
from robustqa.segment import (
    SpanIndex,
    overlapping,
    paragraphs,
    sections,
    sentences,
    token_windows,
    word_spans,
)
from robustqa.types import Span

# Pieces that reach every rule of the splitters: abbreviations, initials, list markers, headings, setext
# underlines, fences, quotes, several kinds of line break and whitespace.
PIECES = [
    "Dr.",
    "Smith",
    "went",
    "home",
    ".",
    "!",
    "?",
    "...",
    " ",
    "  ",
    "\t",
    "\n",
    "\n\n",
    "\r\n",
    "\r",
    "\u2028",
    "\u00a0",
    "# ",
    "## Title",
    "- ",
    "* ",
    "1. ",
    "> ",
    "| a |",
    "```",
    "~~~",
    "===",
    "---",
    "U.S.",
    "e.g.",
    "J.",
    "K.",
    "'",
    '"',
    "\u201d",
    ")",
    "(",
    ",",
    "the",
    "The",
    "He",
    "3.5",
    "Jan.",
    "5",
    "a",
    "é",
    "\u0301",
    "中文",
    "x" * 45,
    "\x0c",
    "",
]
texts = st.one_of(
    st.text(max_size=300),
    st.lists(st.sampled_from(PIECES), max_size=60).map("".join),
    st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=5)), max_size=40).map("".join),
)
EXAMPLES = settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_spans(text: str, spans: list[Span], kind: str, doc_id: str = "d", cover: bool = True) -> None:
    previous_end = 0
    gaps = []
    for span in spans:
        assert text[span.start : span.end] == span.text
        assert span.text and span.text == span.text.strip()
        assert span.kind == kind and span.doc_id == doc_id
        assert span.start >= previous_end, "spans overlap or are out of order"
        gaps.append(text[previous_end : span.start])
        previous_end = span.end
    gaps.append(text[previous_end:])
    if cover:
        assert "".join(gaps).strip() == "", "a non-whitespace character is in no span"


# ------------------------------------------------------------------------------------------------------------
# Properties over arbitrary text


@EXAMPLES
@given(texts)
def test_sentences_paragraphs_sections_offsets_and_coverage(text):
    # One test for the three splitters, so each sees the same 3000 texts for a third of the generation cost.
    paras = paragraphs(text, "d")
    check_spans(text, paras, "paragraph")
    for span in paras:
        assert not re.search(r"\n[^\S\n]*\n", span.text.replace("\r\n", "\n").replace("\r", "\n"))
    spans = sentences(text, "d")
    check_spans(text, spans, "sentence")
    # A sentence never crosses a blank line: each lies inside one paragraph.
    for span in spans:
        assert sum(p.start <= span.start and span.end <= p.end for p in paras) == 1
    secs = sections(text, "d")
    check_spans(text, secs, "section")
    assert len(secs) >= (1 if text.strip() else 0)


@EXAMPLES
@given(texts, st.integers(1, 40), st.integers(0, 40), st.integers(0, 2**32))
def test_token_windows_cover_whole_tokens(text, min_tokens, extra, seed):
    offsets = word_spans(text)
    if not offsets:
        with pytest.raises(ValueError):
            token_windows(text, "d", offsets, min_tokens, min_tokens + extra, random.Random(seed))
        return
    span = token_windows(text, "d", offsets, min_tokens, min_tokens + extra, random.Random(seed))
    check_spans(text, [span], "chunk", cover=False)
    starts, ends = [s for s, _ in offsets], [e for _, e in offsets]
    assert span.start in starts and span.end in ends
    inside = starts.index(span.start), ends.index(span.end)
    count = inside[1] - inside[0] + 1
    assert min_tokens <= count <= min_tokens + extra or (count == len(offsets) < min_tokens + extra)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 60), st.integers(0, 15)), max_size=30),
    st.integers(0, 80),
    st.integers(0, 20),
)
def test_span_index_matches_brute_force(ranges, start, width):
    spans = [Span("d", s, s + w, "x" * w) for s, w in ranges]
    # Spans sharing a character with the range: none for an empty range, even inside a span.
    expected = [i for i, s in enumerate(spans) if s.start < start + width and s.end > start and width > 0]
    assert SpanIndex(spans).overlapping(start, start + width) == expected
    assert overlapping(spans, start, start + width) == expected


# ------------------------------------------------------------------------------------------------------------
# Named cases


NAMED_CASES = [
    ["Dr. Smith went to Washington.", "He arrived Jan. 5."],
    ["The U.S. economy grew.", "Prices rose."],
    ["Inflation was 3.5 percent.", "It fell."],
    ["Wait... what happened?", "Nobody knows."],
    ['He said "Stop."', "Then he left."],
    ["'Is it over?' she asked.", "'Yes.'"],
    ["Fruit, e.g. apples, pears, etc. are good.", "Cars, i.e. Fords, are not."],
    ["See Fig. 3 and Smith et al. (2020) for details.", "It is clear."],
    ["Mrs. Jones met Prof. Brown at St. Mary's.", "They talked."],
    ["J. K. Rowling wrote it.", "She lives in the U.K. now."],
    ["He moved to the U.S.", "He stayed."],
    ["It weighed approx. 5 kg.", "No. 7 was lighter."],
    ["A man threatened Rep. Omar (D-Minn.), the office said.", "He left."],
    ["The meeting is at 5 p.m. tomorrow.", "Please come."],
]


@pytest.mark.parametrize("expected", NAMED_CASES, ids=[c[0][:20] for c in NAMED_CASES])
def test_named_sentence_cases(expected):
    text = " ".join(expected)
    spans = sentences(text)
    assert [s.text for s in spans] == expected
    check_spans(text, spans, "sentence", "")


def test_lines_without_full_stop_are_not_joined():
    text = "Breaking news from the world today\nStocks fall as markets fear inflation"
    assert [s.text for s in sentences(text)] == text.split("\n")


def test_web_and_markdown_lines_end_sentences():
    text = "# Title\nSome text here. More text.\n\n## Section\n- item one\n- item two\nHome\nNews\nSports"
    assert [s.text for s in sentences(text)] == [
        "# Title",
        "Some text here.",
        "More text.",
        "## Section",
        "- item one",
        "- item two",
        "Home",
        "News",
        "Sports",
    ]


def test_hard_wrapped_prose_is_joined():
    text = (
        "This is a hard-wrapped paragraph of prose that a text editor\n"
        "broke at about sixty columns so that it reads well in\n"
        "Terminals and Emacs. It has two sentences."
    )
    got = [s.text for s in sentences(text)]
    assert got == [text[: text.index("Emacs.") + 6], "It has two sentences."]


def test_abbreviation_before_line_break_goes_on():
    assert [s.text for s in sentences("We met Dr.\nSmith there. Then we left.")] == [
        "We met Dr.\nSmith there.",
        "Then we left.",
    ]


def test_paragraphs_split_on_blank_lines_only():
    text = "  First line\nsecond line.\n \t\nNext para.\r\n\r\nLast."
    assert [p.text for p in paragraphs(text, "x")] == ["First line\nsecond line.", "Next para.", "Last."]


def test_sections_atx_setext_preamble_and_fences():
    text = (
        "Intro text.\n\n# One\nbody 1\n```\n# not a heading\n```\nTitle two\n=========\nbody 2\n\n"
        "### Three ###\nbody 3\n\n---\n\nafter a rule"
    )
    got = sections(text, "x")
    assert [s.meta["heading"] for s in got] == [None, "One", "Title two", "Three"]
    assert [s.meta["level"] for s in got] == [0, 1, 1, 3]
    assert got[1].text.startswith("# One") and "# not a heading" in got[1].text
    assert got[3].text.endswith("after a rule")  # a rule after a blank line is not a setext underline
    assert [s.text for s in sections("no headings\n\nat all")] == ["no headings\n\nat all"]
    assert sections("   \n") == [] and sentences("") == [] and paragraphs("\n\n") == []


def test_token_windows_lengths_starts_and_determinism():
    text = " ".join(f"w{i}" for i in range(200))
    offsets = word_spans(text)
    windows = [token_windows(text, "d", offsets, 10, 20, random.Random(seed)) for seed in range(300)]
    counts = [len(w.text.split()) for w in windows]
    assert min(counts) == 10 and max(counts) == 20
    assert len({w.start for w in windows}) > 100  # starts spread over the document
    assert token_windows(text, "d", offsets, 10, 20, random.Random(7)) == windows[7]
    whole = token_windows("short text here", "d", word_spans("short text here"), 10, 20, random.Random(0))
    assert whole.text == "short text here"


def test_token_windows_with_tokenizer_style_offsets():
    # Byte-level BPE offsets carry the leading space; special tokens are (0, 0).
    text = "Hello world, this is\n\n a test."
    offsets = [(0, 0), (0, 5), (5, 11), (11, 12), (12, 17), (17, 20), (20, 22), (22, 24), (24, 29), (29, 30)]
    for seed in range(50):
        span = token_windows(text, "d", offsets, 2, 3, random.Random(seed))
        assert text[span.start : span.end] == span.text == span.text.strip()
    with pytest.raises(ValueError, match="outside"):
        token_windows(text, "d", [(0, 99)], 1, 2, random.Random(0))
    with pytest.raises(ValueError, match="min_tokens"):
        token_windows(text, "d", offsets, 0, 2, random.Random(0))


def test_span_index_point_queries():
    spans = sentences("One. Two. Three.")
    index = SpanIndex(spans)
    assert index.at(0) == [0] and index.at(4) == [] and index.at(5) == [1]
    assert index.overlapping(3, 6) == [0, 1] and index.overlapping(2, 2) == []


# ------------------------------------------------------------------------------------------------------------
# Real documents


def test_real_xquad_paragraphs(fixture_data):
    squad = json.loads((fixture_data / "xquad_en_dev.json").read_text(encoding="utf-8"))
    contexts = [p["context"] for a in squad["data"] for p in a["paragraphs"]]
    spans = []
    for context in contexts:
        got = sentences(context, "x")
        check_spans(context, got, "sentence", "x")
        check_spans(context, paragraphs(context, "x"), "paragraph", "x")
        check_spans(context, sections(context, "x"), "section", "x")
        spans += got
    words = statistics.mean(len(s.text.split()) for s in spans)
    assert 15 <= words <= 35, words  # Wikipedia prose: about 25 words a sentence
    assert 2 <= len(spans) / len(contexts) <= 10
    ends = sum(bool(re.search(r"[.!?][\"')\]\u201d\u2019]*$", s.text)) for s in spans)
    assert ends / len(spans) > 0.95  # prose sentences end with a full stop, not mid-way after "Dr." or "U.S."


def test_real_covidqa_papers(fixture_data):
    # Their segmentation speed is measured by benchmarks/speed.py (a timing bound here broke on loaded machines).
    squad = json.loads((fixture_data / "covidqa" / "covidqa_dev.json").read_text(encoding="utf-8"))
    papers = [a["paragraphs"][0]["context"] for a in squad["data"]][:3]
    results = [sentences(p, "c") for p in papers]
    for paper, got in zip(papers, results, strict=True):
        check_spans(paper, got, "sentence", "c")
        check_spans(paper, paragraphs(paper, "c"), "paragraph", "c")
        mean = statistics.mean(len(s.text) for s in got)
        assert 60 <= mean <= 300, mean
        abbreviation_ends = [s.text for s in got if re.search(r"\b(?:Dr|e\.g|i\.e|Fig|U\.S|vs|approx)\.$", s.text)]
        assert not abbreviation_ends


@settings(max_examples=1000, deadline=None)
@given(texts)
@example("Smith .!!")  # a cut before " .!" lost the word that decides the break
def test_sentences_windowing_changes_nothing(text):
    # Punkt sees long runs window by window (nltk regex time limit); small windows must change nothing.
    whole = sentences(text)
    with mock.patch.object(segment, "_PUNKT_WINDOW", 7):
        assert sentences(text) == whole


def test_real_papers_same_sentences_in_small_windows(fixture_data):
    squad = json.loads((fixture_data / "covidqa" / "covidqa_dev.json").read_text(encoding="utf-8"))
    papers = [a["paragraphs"][0]["context"] for a in squad["data"]][:3]
    whole = [sentences(p) for p in papers]
    with mock.patch.object(segment, "_PUNKT_WINDOW", 300):
        assert [sentences(p) for p in papers] == whole


def test_huge_single_line_document():
    text = "The cat sat on the mat. Dr. Smith arrived Jan. 5 at noon. " * 10_000  # 590k chars, one line
    spans = sentences(text)
    assert len(spans) == 20_000
    check_spans(text, spans, "sentence", "")


def test_shipped_punkt_parameters_name_their_sources_relative_to_the_repository():
    """The shipped file names no machine: sources are recorded as the tool records them (../shared/data/...)."""
    from importlib.resources import files

    params = json.loads((files("robustqa") / "data" / "punkt_params.json").read_text(encoding="utf-8"))
    paths = [source["path"] for source in params["sources"]]
    assert len(paths) == 3
    assert all(p.startswith("../shared/data/") and not p.startswith("/") for p in paths), paths
