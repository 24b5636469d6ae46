"""benchmarks/markup_hijack.py: the hijack verdicts on a hand-built page, the wcxb ground truth, what naive is
shown, and the FakeLM run end to end."""

from __future__ import annotations

import json
import sys

import pytest
from conftest import REPO

# Appended, not prepended: benchmarks/coverage.py must not shadow the `coverage` package.
if str(REPO / "benchmarks") not in sys.path:
    sys.path.append(str(REPO / "benchmarks"))

import markup_hijack as mh  # noqa: E402

from robustqa.audit.boilerplate import article_provider  # noqa: E402
from robustqa.errors import InputError  # noqa: E402
from robustqa.runner import generate_records  # noqa: E402
from robustqa.types import Document  # noqa: E402

NAV = "Home\nNews\nSport\nWeather"
COOKIE = "We use cookies to improve your experience on our website."
ARTICLE = (
    "The river Loire flows through the city of Orleans in central France.\n\n"
    "Engineers rebuilt the old stone bridge over the river in 1760."
)
PAGE = f"{NAV}\n\n{COOKIE}\n\n{ARTICLE}\n\nCopyright 2024 Example Media Group. All rights reserved."


def _page_set(text: str = PAGE, article: str = ARTICLE) -> mh.PageSet:
    doc = Document("page", text, {"format": "html"})
    return mh.PageSet("hand", [doc], article_provider({"page": article}), {"page": "article"})


def _target(text: str, sentence: str) -> dict:
    start = text.index(sentence)
    return {"start": start, "end": start + len(sentence), "text": sentence}


def test_hand_built_page_counts_evidence_outside_the_article_as_hijacked(tmp_path):
    pages = _page_set()
    bridge = "Engineers rebuilt the old stone bridge over the river in 1760."
    rows = [
        # Targets: a span outside the article body is hijacked, one inside is not.
        {"doc_id": "page", "question": "What does the site use?", "answer": "cookies", "target": _target(PAGE, COOKIE)},
        {"doc_id": "page", "question": "When was it rebuilt?", "answer": "1760", "target": _target(PAGE, bridge)},
        # No target (naive): attributed by retrieval inside its context window.
        {
            "doc_id": "page",
            "question": "Who holds the copyright?",
            "answer": "Example Media Group holds the copyright.",
            "context": {"start": 0, "end": len(PAGE)},
        },
        {
            "doc_id": "page",
            "question": "Which river flows through Orleans?",
            "answer": "The Loire.",
            "context": {"start": 0, "end": len(PAGE)},
        },
        # Shares no word with the page: unattributable, counted apart.
        {"doc_id": "page", "question": "Xyzzy plugh?", "answer": "Qwerty.", "context": {"start": 0, "end": len(PAGE)}},
    ]
    summary = mh.measure_file(rows, pages, tmp_path, "hand")
    assert summary["records"] == 5
    assert summary["judged"] == 4
    assert summary["hijacked"]["k"] == 2 and summary["hijacked"]["n"] == 4
    assert summary["hijacked"]["share"] == 0.5
    low, high = summary["hijacked"]["ci95"]
    assert 0.1 < low < 0.5 < high < 0.9  # Wilson, 2 of 4: [0.150, 0.850]
    assert sum(summary["unattributable"].values()) == 1
    assert summary["by_method"] == {"sentence-in-context": 2, "target": 2}
    assert all(summary["retrieval_score_median"].values())  # one retrieved row on each side
    assert {e["question"] for e in summary["examples"]} == {"What does the site use?", "Who holds the copyright?"}
    # One evidence sentence per record: the audit's own (fractional) share agrees.
    assert summary["audit_markup_hijack"]["hijacked"] == 2.0
    assert summary["audit_markup_hijack"]["measured_rows"] == 4


def test_every_record_inside_the_article_gives_zero(tmp_path):
    sentence = "The river Loire flows through the city of Orleans in central France."
    rows = [{"doc_id": "page", "question": "Where?", "answer": "Orleans", "target": _target(PAGE, sentence)}] * 3
    summary = mh.measure_file(rows, _page_set(), tmp_path, "clean")
    assert (summary["hijacked"]["k"], summary["hijacked"]["n"]) == (0, 3)
    assert mh.measure_file([], _page_set(), tmp_path, "none") is None


def test_wcxb_without_snippets_are_boilerplate_even_inside_the_main_content(tmp_path):
    text = "Buy now\n\nThe Model X laptop has a 14-inch screen.\n\nIts battery lasts ten hours."
    main = "The Model X laptop has a 14-inch screen. Its battery lasts ten hours."
    provider = mh.wcxb_provider({"p": main}, {"p": ["its  BATTERY lasts, ten hours"]})
    doc = Document("p", text)
    regions = provider(doc)
    battery = text.index("Its battery")
    assert (battery, battery + len("Its battery lasts ten hours")) in regions
    assert provider(Document("unknown", text)) is None
    pages = mh.PageSet("wcxb", [doc], provider, {"p": "product"})
    rows = [
        {
            "doc_id": "p",
            "question": "How long?",
            "answer": "ten hours",
            "target": _target(text, "Its battery lasts ten hours."),
        },
        {"doc_id": "p", "question": "Screen?", "answer": "14-inch", "target": _target(text, main.split(". ")[0] + ".")},
    ]
    summary = mh.measure_file(rows, pages, tmp_path, "w")
    assert (summary["hijacked"]["k"], summary["hijacked"]["n"]) == (1, 2)
    assert summary["by_page_type"]["product"]["k"] == 1


def test_snippet_regions_match_across_collapsed_whitespace_and_case():
    text = "Privacy   Policy | Terms of\nService"
    assert mh.snippet_regions(text, ["privacy policy", "Terms of Service", "absent words", "  "]) == [
        (0, 16),
        (19, len(text)),
    ]
    assert mh.snippet_regions("Policyholder", ["policy"]) == []  # whole words only


def test_spread_is_even_and_complete():
    assert mh.spread(list(range(10)), 3) == [0, 4, 9]  # 0, 4.5 (rounds to even), 9
    assert mh.spread([1, 2], 5) == [1, 2]
    assert mh.spread([1, 2], 0) == []


def test_wcxb_pages_without_main_content_are_skipped(fixture_data):
    pages = mh.load_wcxb(fixture_data, 1000)
    assert {"4181", "4482"} <= set(pages.skipped)
    assert len(pages.documents) + len(pages.skipped) == len(list((fixture_data / "wcxb" / "html").iterdir()))
    assert set(pages.page_types.values()) <= {
        "article",
        "forum",
        "product",
        "service",
        "documentation",
        "listing",
        "collection",
    }
    with pytest.raises(InputError, match="unknown source"):
        mh.load_pages("nope", fixture_data, 1)


def test_naive_is_shown_the_page_boilerplate_and_robust_is_not(fixture_data, tmp_path):
    """No silent improvement of the baseline: naive's prompts carry the page's boilerplate as loaded."""
    pages = mh.load_web(fixture_data, 100)
    # A short page (4k characters, 40 boilerplate lines), so naive's six windows span nearly all of it.
    doc = next(d for d in pages.documents if d.id.startswith("e372e42c"))
    lines = [line.strip() for s, e in pages.boilerplate(doc) for line in doc.text[s:e].splitlines()]
    boiler = [line for line in lines if len(line.split()) >= 4]
    assert boiler, "the page should have boilerplate lines"
    shown = {}
    for spec in ("naive", "robust@use_embeddings=false"):
        lm = mh.page_echo_fake()
        strategy = mh.build_strategy(spec)
        generate_records([doc], strategy, lm, 6, 0, tmp_path / f"{spec}.jsonl", progress=False)
        prompts = "\n".join(content for call in lm.calls for _, content in call.messages)
        shown[spec] = sum(b in prompts for b in boiler) / len(boiler)
    assert list(mh.build_strategy("naive").span_filters) == []
    assert shown["naive"] > 0.5  # 1.0 on this page: its windows show every boilerplate line
    assert shown["robust@use_embeddings=false"] < 0.25  # 0.0: the sanitiser masks them


def test_fake_run_end_to_end(fixture_data, tmp_path):
    out = tmp_path / "mh.json"
    argv = ["--lm", "fake", "--pages", "2", "--budget-per-page", "2", "--data", str(fixture_data), "--out", str(out)]
    result = mh.main([*argv, "--strategies", "naive", "robust@use_embeddings=false", "--smoke"])
    assert json.loads(out.read_text()) == json.loads(json.dumps(result, default=str))
    assert result["smoke"] is True and result["lm"] == "fake-page-echo"
    assert set(result["sources"]) == {"web", "wcxb"}
    for source in result["sources"].values():
        assert source["pages"] == 2
        for row in source["strategies"].values():
            assert row["planned"] == 4 and row["kept"] + row["rejected"] == 4
            kept = row["kept_questions"]
            if kept is not None:
                h = kept["hijacked"]
                assert h["n"] == kept["judged"] <= kept["records"] == row["kept"]
                assert kept["judged"] + sum(kept["unattributable"].values()) == kept["records"]
                assert h["n"] == 0 or h["ci95"][0] <= h["share"] <= h["ci95"][1]
        assert source["strategies"]["naive"]["span_filters"] == []
    for spec, figures in result["pooled"].items():
        per_source = [s["strategies"][spec]["kept_questions"] for s in result["sources"].values()]
        assert figures["kept_questions"]["n"] == sum(p["hijacked"]["n"] for p in per_source if p)
    assert "robust@use_embeddings=false" in result["verdict"]
    assert "naive" in result["naive_input"] and result["definition"]
