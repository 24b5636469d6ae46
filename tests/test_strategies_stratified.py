"""The stratified selector and the targeted question writer: targets, strata, rounds, parsing (no model)."""

from __future__ import annotations

import random

import pytest
from robustqa.strategies.context_answerer import ContextAnswerer
from robustqa.strategies.question_parsing import parse_question
from robustqa.strategies.stratified import StratifiedSelector
from robustqa.strategies.targeted_writer import TargetedQuestionWriter, mark_target

from robustqa.budget import allocate_budget
from robustqa.components import SpanFlag
from robustqa.errors import ConfigError
from robustqa.lm.fake import FakeLM
from robustqa.registry import REGISTRY
from robustqa.strategy import ComposedStrategy
from robustqa.types import Document


@pytest.fixture
def article(xquad_paragraphs) -> Document:
    """Three real paragraphs of one article under two Markdown sections."""
    texts = [text for _, text in xquad_paragraphs[:3]]
    return Document("art", f"# Part one\n\n{texts[0]}\n\n{texts[1]}\n\n# Part two\n\n{texts[2]}")


def test_budget_equal_to_eligible_spans_covers_every_span_once(article):
    sel = StratifiedSelector()
    eligible = sel.eligible(article)
    items = sel.select(article, len(eligible), seed=1, blocked=[], fingerprint="fp")
    targets = [(it.target.start, it.target.end) for it in items]
    assert len(targets) == len(set(targets)) == len(eligible)
    spans = sel.units(article)
    assert sorted(targets) == sorted((spans[i].start, spans[i].end) for i in eligible)


def test_second_round_only_after_every_span_has_a_question(article):
    sel = StratifiedSelector()
    n_eligible = len(sel.eligible(article))
    items = sel.select(article, n_eligible + 3, seed=2, blocked=[], fingerprint="fp")
    first = [it for it in items if it.meta["round"] == 0]
    second = [it for it in items if it.meta["round"] == 1]
    assert len(first) == n_eligible and len(second) == 3
    assert len({it.target.start for it in second}) == 3
    assert len({it.id for it in items}) == len(items)


def test_small_budget_is_spread_over_strata_by_content_length(article):
    sel = StratifiedSelector(position_buckets=4)
    strata_seen = set()
    for seed in range(5):
        items = sel.select(article, 4, seed=seed, blocked=[], fingerprint="fp")
        labels = [it.meta["stratum"] for it in items]
        # Four items over at least three strata: never piled onto one region of the document.
        assert len(set(labels)) >= 3
        strata_seen.update(labels)
    # Both Markdown sections are strata of their own.
    assert any(label.startswith("section0/") for label in strata_seen)
    assert any(label.startswith("section1/") for label in strata_seen)


def test_selection_is_deterministic_per_seed_and_varies_across_seeds(article):
    sel = StratifiedSelector()
    state = random.getstate()
    a = sel.select(article, 5, seed=7, blocked=[], fingerprint="fp")
    b = StratifiedSelector().select(article, 5, seed=7, blocked=[], fingerprint="fp")
    assert random.getstate() == state
    assert [(it.id, it.target, it.context) for it in a] == [(it.id, it.target, it.context) for it in b]
    others = [sel.select(article, 5, seed=s, blocked=[], fingerprint="fp") for s in range(8, 12)]
    assert any([it.target for it in o] != [it.target for it in a] for o in others)


def test_blocked_spans_are_never_targets(article):
    sel = StratifiedSelector()
    spans = sel.units(article)
    eligible = sel.eligible(article)
    blocked_span = spans[eligible[2]]
    # A flag covering part of one sentence is enough to exclude it.
    flag = SpanFlag(blocked_span.start + 3, blocked_span.start + 10, "instruction", 0.9, "test")
    items = sel.select(article, 3 * len(eligible), seed=0, blocked=[flag], fingerprint="fp")
    assert items and all(it.target != blocked_span for it in items)
    assert len({it.target.start for it in items}) == len(eligible) - 1


def test_context_window_holds_the_target_and_respects_the_size_limit(article):
    sel = StratifiedSelector(window=2, max_context_chars=400)
    for it in sel.select(article, 10, seed=3, blocked=[], fingerprint="fp"):
        start, end = it.context
        assert start <= it.target.start < it.target.end <= end
        assert end - start <= max(400, it.target.end - it.target.start)


def test_short_lines_are_not_targets_and_weight_counts_content_only():
    doc = Document("d", "Home\nMenu\n\nThe bridge was opened in 1932 after six years of work.\n\nShare")
    sel = StratifiedSelector()
    assert [sel.units(doc)[i].text for i in sel.eligible(doc)] == [
        "The bridge was opened in 1932 after six years of work."
    ]
    assert sel.weight(doc) == 1.0  # one content sentence
    assert StratifiedSelector(weight_by="chars").weight(doc) == len(
        "The bridge was opened in 1932 after six years of work."
    )
    assert sel.select(Document("e", "Home\nMenu"), 3, seed=0, blocked=[], fingerprint="fp") == []


def test_one_question_per_content_sentence_over_a_corpus_reaches_every_sentence():
    # Long sentences in one document, short ones in the other: weighing by length would give the first more
    # questions than it has sentences and leave sentences of the second without one.
    long = " ".join(f"The {w} bridge was opened by the county council after many years of careful work." for w in "abc")
    short = " ".join(f"Trains cross bridge {w} daily." for w in "defghij")
    docs = [Document("long", long), Document("short", short)]
    sel = StratifiedSelector(window=0)
    n = sum(len(sel.eligible(d)) for d in docs)
    counts = allocate_budget([sel.weight(d) for d in docs], n)
    targets = {(d.id, it.target.start) for d, k in zip(docs, counts) for it in sel.select(d, k, 0, [], "fp")}
    assert counts == [3, 7] and len(targets) == n
    by_length = allocate_budget([StratifiedSelector(weight_by="chars").weight(d) for d in docs], n)
    assert by_length[0] > 3  # what the default avoids
    with pytest.raises(ConfigError, match="weight_by"):
        StratifiedSelector(weight_by="tokens").validate()


def test_bad_unit_is_a_config_error(article):
    with pytest.raises(ConfigError, match="unit"):
        StratifiedSelector(unit="word").validate()
    with pytest.raises(ConfigError, match="unit"):  # at build time, before any document is seen
        REGISTRY.make_component("selector", {"name": "stratified", "unit": "word"})


# -- the targeted question writer ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw, expected",
    [
        (
            "Sure, here is a question: What year did the Normans reach Italy?",
            "What year did the Normans reach Italy?",
        ),
        ('"Who led the Panthers defense in sacks?"', "Who led the Panthers defense in sacks?"),
        ("1. **Question:** When was the bridge opened?\n2. Why?", "When was the bridge opened?"),
        (
            "Here is a question about the text.\n\nHow many sacks did Short record?",
            "How many sacks did Short record?",
        ),
        ("Q: how many points did the Panthers give up?  A: 308", "How many points did the Panthers give up?"),
        ("What does the U.S. Army do in Normandy?", "What does the U.S. Army do in Normandy?"),
        ("<target>Who founded the duchy?</target>", "Who founded the duchy?"),
        ("The answer is Paris.", ""),
        ("Write one question that the marked sentence answers.", ""),
        ("Why?", ""),
        ("", ""),
    ],
)
def test_parse_question(raw, expected):
    assert parse_question(raw) == expected


def test_parse_question_prefers_a_question_about_the_target():
    raw = "What is the answer to this question? Who led the Panthers in sacks? Why?"
    assert parse_question(raw) == "What is the answer to this question?"
    assert parse_question(raw, about="Kawann Short led the Panthers in sacks.") == "Who led the Panthers in sacks?"
    # Nothing about the target: the first question stands (the verifier judges it).
    assert parse_question(raw, about="The weather was mild.") == "What is the answer to this question?"


def _pipeline(doc, lm, writer=None):
    strategy = ComposedStrategy(
        selector=StratifiedSelector(window=1),
        question_writer=writer or TargetedQuestionWriter(),
        answerer=ContextAnswerer(),
    )
    items = strategy.plan(doc, 3, seed=0, fingerprint="fp")
    return items, strategy.run(items, {doc.id: doc}, lm)


def test_writer_marks_the_target_in_the_prompt_and_keeps_raw_output(article):
    lm = FakeLM(rules=[("<target>", "Sure! Here is one: What did the defense do?")], default="They did well.")
    items, records = _pipeline(article, lm)
    prompts = [req.messages[-1][1] for req in lm.calls if "<target>" in req.messages[-1][1]]
    assert len(prompts) == len(items)
    for prompt, item in zip(prompts, items, strict=True):
        marked = prompt.rsplit("<target>", 1)[1].split("</target>", 1)[0]
        assert marked == item.target.text
    assert all(r.question == "What did the defense do?" for r in records)
    assert all(r.meta["question_raw"].startswith("Sure!") for r in records)
    assert all(r.target["start"] == it.target.start for r, it in zip(records, items, strict=True))


def test_unusable_writer_output_is_rejected_not_invented(article):
    lm = FakeLM(rules=[("<target>", "I think this sentence is about football.")], default="An answer.")
    _, records = _pipeline(article, lm)
    assert records and all(not r.kept and r.question == "" for r in records)
    assert all(any(d.reason == "empty question" for d in r.decisions) for r in records)


def test_mark_target_skips_masked_text(article):
    sel = StratifiedSelector(window=2)
    item = sel.select(article, 1, seed=0, blocked=[], fingerprint="fp")[0]
    # Mask the context's first characters (a flagged neighbour): the target is still marked in place.
    item.masked = (SpanFlag(item.context[0], item.context[0] + 5, "x", 1.0, "test"),)
    from robustqa.context import render_context

    ctx = render_context(article, *item.context, [(item.context[0], item.context[0] + 5)])
    marked = mark_target(item, ctx, {article.id: article})
    assert f"<target>{item.target.text}</target>" in marked


def test_attempts_ask_again_on_the_same_target_and_keep_the_history(article):
    first_seeds: set[int] = set()

    def reply(req) -> str:
        if "<target>" not in req.messages[-1][1]:
            return "They did well."
        # The first attempt writes nothing usable; a retry (new seed) writes a question.
        return "" if req.params.seed in first_seeds else "What did the defense do?"

    def strategy(attempts: int) -> ComposedStrategy:
        return ComposedStrategy(
            selector=StratifiedSelector(window=1),
            question_writer=TargetedQuestionWriter(),
            answerer=ContextAnswerer(),
            attempts=attempts,
        )

    items = strategy(2).plan(article, 3, seed=0, fingerprint="fp")
    first_seeds.update(it.seed for it in items)
    once = strategy(1).run(items, {article.id: article}, FakeLM(default=reply))
    assert [r.kept for r in once] == [False, False, False]

    records = strategy(2).run(items, {article.id: article}, FakeLM(default=reply))
    assert [r.id for r in records] == [it.id for it in items]
    assert all(r.kept and r.question == "What did the defense do?" for r in records)
    for rec, item in zip(records, items, strict=True):
        assert rec.target["start"] == item.target.start and rec.meta["attempt"] == 1
        assert rec.meta["item_seed"] != item.seed
        (earlier,) = rec.meta["earlier_attempts"]
        assert earlier["seed"] == item.seed and earlier["question"] == ""
        assert any(d["reason"] == "empty question" and not d["kept"] for d in earlier["decisions"])


def test_attempts_below_one_is_a_config_error(article):
    strategy = ComposedStrategy(
        selector=StratifiedSelector(), question_writer=TargetedQuestionWriter(), answerer=ContextAnswerer(), attempts=0
    )
    with pytest.raises(ConfigError, match="attempts"):
        strategy.validate()
