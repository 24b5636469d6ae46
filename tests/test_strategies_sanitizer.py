"""The sanitizer: boilerplate line rules on text/Markdown, trafilatura main text on real HTML pages."""

from __future__ import annotations

import json

import numpy as np
import pytest
from robustqa.strategies.boilerplate_rules import find_boilerplate
from robustqa.strategies.flag_merge import merge_adjacent
from robustqa.strategies.html_alignment import align_words, covered_fraction
from robustqa.strategies.sanitizer import Sanitizer

from robustqa.components import SpanFlag
from robustqa.types import Document

ARTICLE = (
    "The Golden Gate Bridge is a suspension bridge spanning the strait that connects San Francisco Bay and "
    "the Pacific Ocean. It was opened in 1937 after four years of construction.\n\n"
    "Preheat the oven to 200 degrees and stir the sauce until it thickens; you can find the steps below.\n\n"
    "## History\n\n"
    "The idea of a bridge across the strait was proposed as early as 1872 by the railroad entrepreneur "
    "Charles Crocker."
)


def _flagged_text(doc: Document, flags: list[SpanFlag]) -> str:
    return " | ".join(doc.text[f.start : f.end] for f in flags)


@pytest.mark.parametrize(
    "line, rule",
    [
        ("We use cookies to improve your experience. Accept all cookies", "banner"),
        ("Subscribe to our newsletter for the latest updates", "banner"),
        ("Subscribe to the Example Gadgets YouTube Channel for all of the latest videos!", "banner"),
        ("Copyright \u00a9 2024 Example Media. All rights reserved.", "banner"),
        ("Home | News | Sport | Weather | Contact", "navigation"),
        ("[Home](/) [About](/about) [Blog](/blog) [Contact](/contact)", "link_list"),
        ("https://example.com/a/very/long/link?utm_source=newsletter", "link_list"),
        ('<div class="nav"><span>Menu</span></div>', "markup"),
        (".header{display:none;margin:0 auto;} .nav a{color:#fff;}", "markup"),
        ("Related articles", "banner"),
        ("Sign in", "navigation"),
    ],
)
def test_line_rules_flag_boilerplate(line, rule):
    hits = find_boilerplate(f"{ARTICLE}\n\n{line}\n")
    assert [h.filter for h in hits] == [rule]
    assert hits[0].reason


def test_line_rules_leave_article_prose_and_code_blocks_alone():
    code = "```css\n.header { display: none; }\n```"
    assert find_boilerplate(f"{ARTICLE}\n\n{code}\n") == []
    # A long sentence that mentions cookies or a newsletter is prose, not a banner.
    prose = (
        "The bakery's cookies became famous after a newsletter in 1998 described how the family had kept the "
        "recipe secret for three generations while the town around them changed beyond recognition."
    )
    assert find_boilerplate(prose) == []
    # Subscribing to an idea is prose; only a line that opens with the call is a banner.
    assert find_boilerplate("He came to subscribe to the theory that the channel was open.") == []
    # Angle-bracketed titles are not tags.
    assert find_boilerplate("Visitors came to watch <The Palace: Tale of Jang Noksu> at the theatre.") == []


def test_headlines_under_a_related_list_header_are_boilerplate():
    related = "Who will win the cup this year?\nLocal band tops the charts again\nCity council approves new budget"
    text = f"{ARTICLE}\n\nYou may also like...\n\n{related}\n\n{ARTICLE}"
    hits = find_boilerplate(text)
    flagged = [text[h.start : h.end] for h in hits]
    assert flagged == ["You may also like...", *related.split("\n")]
    assert hits[1].reason == "headline listed under 'You may also like...'"
    # The list ends at the first line that reads like prose: the article after it stays.
    assert all(ARTICLE not in f for f in flagged)


def test_menu_runs_and_html_comments_spanning_lines():
    text = f"Home\nNews\nSport\nWeather\n\n{ARTICLE}\n<!-- tracking pixel\nsecond line -->\nEnd of story here."
    hits = find_boilerplate(text)
    nav = [h for h in hits if h.filter == "navigation"]
    assert [text[h.start : h.end] for h in nav] == ["Home", "News", "Sport", "Weather"]
    comment = [h for h in hits if h.filter == "markup"]
    assert text[comment[0].start : comment[0].end] == "<!-- tracking pixel\nsecond line -->"
    # Ingredient lists (digits, lower case) are not menus.
    assert find_boilerplate("Ingredients\n2 eggs\n1 cup flour\n3 tbsp sugar\n1 pinch salt") == []


def test_sanitizer_flags_with_reasons_and_merges_adjacent_lines():
    doc = Document("d", f"Home\nNews\nSport\nWeather\n\n{ARTICLE}\n\nShare this article on Facebook\nFollow us on X")
    flags = Sanitizer().flag(doc)
    assert all(f.filter == "sanitizer" and f.reason for f in flags)
    assert _flagged_text(doc, flags) == "Home\nNews\nSport\nWeather | Share this article on Facebook\nFollow us on X"
    # The article, including its imperative recipe sentence, is untouched.
    covered = np.zeros(len(doc.text), dtype=bool)
    for f in flags:
        covered[f.start : f.end] = True
    start = doc.text.index("The Golden Gate")
    assert not covered[start : start + len(ARTICLE)].any()


def test_merge_adjacent_joins_only_whitespace_separated_flags_of_one_filter():
    text = "aaa bbb ccc ddd"
    flags = [SpanFlag(0, 3, "f", 0.2, "r1"), SpanFlag(4, 7, "f", 0.9, "r2"), SpanFlag(12, 15, "f", 0.5, "r1")]
    merged = merge_adjacent(text, flags)
    assert [(m.start, m.end, m.score) for m in merged] == [(0, 7, 0.9), (12, 15, 0.5)]
    assert merged[0].reason == "r1; r2"
    assert len(merge_adjacent(text, [SpanFlag(0, 3, "f", 1, "a"), SpanFlag(4, 7, "g", 1, "b")])) == 2


def test_alignment_maps_extracted_text_back_to_offsets():
    page = "Menu Home\n\nThe quick brown fox jumps over the lazy dog.\n\nFooter links"
    ranges = align_words(page, "The quick brown fox jumps over the lazy dog.")
    assert [page[s:e] for s, e in ranges] == ["The quick brown fox jumps over the lazy dog"]
    start = page.index("The")
    assert covered_fraction(start, start + 44, ranges) > 0.95
    assert covered_fraction(0, 9, ranges) == 0.0


def test_html_pages_keep_the_article_and_flag_the_rest(fixture_data):
    """On the vendored real pages (6 of the web set): most boilerplate flagged, nearly all article text kept."""
    from robustqa.audit.boilerplate import align_article
    from robustqa.io.loaders import load_document

    truth = json.loads((fixture_data / "web" / "ground-truth.json").read_text(encoding="utf-8"))
    pages = sorted((fixture_data / "web" / "html").glob("*.html.gz"))
    article = article_flagged = boiler = boiler_flagged = 0
    for path in pages:
        doc = load_document(path)[0]
        assert doc.meta["format"] == "html"
        is_article = np.zeros(len(doc.text), dtype=bool)
        for s, e in align_article(doc.text, truth[path.name.split(".")[0]]["articleBody"]):
            is_article[s:e] = True
        flagged = np.zeros(len(doc.text), dtype=bool)
        for f in Sanitizer().flag(doc):
            flagged[f.start : f.end] = True
        visible = np.array([not c.isspace() for c in doc.text])
        article += (is_article & visible).sum()
        article_flagged += (is_article & visible & flagged).sum()
        boiler += (~is_article & visible).sum()
        boiler_flagged += (~is_article & visible & flagged).sum()
    assert article_flagged / article < 0.03
    assert boiler_flagged / boiler > 0.85


def test_html_without_main_text_falls_back_to_line_rules():
    html = "<html><body><nav><a href='/'>Home</a></nav></body></html>"
    doc = Document("p", "Home\nNews\nSport\nWeather", {"format": "html", "html": html})
    flags = Sanitizer().flag(doc)
    assert flags and all("navigation" in f.reason for f in flags)
