"""The strategy contract (robustqa/strategy.py), run over EVERY registered strategy, built-in or plugin."""

from __future__ import annotations

import copy
import random

import pytest

from robustqa.errors import ConfigError
from robustqa.lm.fake import FakeLM
from robustqa.params import Configurable
from robustqa.registry import REGISTRY
from robustqa.strategy import Strategy

STRATEGY_NAMES = sorted(REGISTRY.available())


def _components(strategy: Configurable):
    yield strategy
    for value in strategy.get_params().values():
        items = value if isinstance(value, (list, tuple)) else [value]
        for v in items:
            if isinstance(v, Configurable):
                yield from _components(v)


def _fake_lm() -> FakeLM:
    # A plausible question and an answer that copies words of the prompt, so filters have something to score.
    return FakeLM(default=lambda req: req.messages[-1][1].split("\n")[-1][:200] or "What is described?")


def test_there_are_strategies_to_check():
    assert "naive" in STRATEGY_NAMES


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_constructors_only_store_their_arguments(name):
    strategy = REGISTRY.make_strategy(name)
    assert isinstance(strategy, Strategy)
    for part in _components(strategy):
        params = part.get_params()
        # Rebuilding from the stored parameters gives an equal object: nothing was derived or consumed.
        rebuilt = type(part)(**params)
        assert rebuilt.get_params().keys() == params.keys()
        assert rebuilt.fingerprint() == part.fingerprint()


def _subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_parameters_are_checked_when_built_and_never_per_call(name, real_docs, monkeypatch):
    strategy = REGISTRY.make_strategy(name)
    calls = []
    for cls in _subclasses(Configurable):
        if "validate" in vars(cls):
            monkeypatch.setattr(cls, "validate", lambda self, cls=cls: calls.append(cls.__name__))
    docs = {d.id: d for d in real_docs}
    items = [it for d in real_docs for it in strategy.plan(d, 2, seed=0, fingerprint="fp")]
    assert items and len(strategy.run(items, docs, _fake_lm())) == len(items)
    assert calls == []


@pytest.mark.parametrize(
    "kind, spec, message",
    [
        ("selector", {"name": "stratified", "unit": "word"}, "unit must be one of"),
        ("selector", {"name": "stratified", "weight_by": "tokens"}, "weight_by must be one of"),
        ("selector", {"name": "stratified", "window": -1}, "window >= 0"),
        ("selector", {"name": "token_window", "min_tokens": 90, "max_tokens": 10}, "min_tokens <= max_tokens"),
        ("selector", {"name": "token_window", "chunk_group": 0}, "chunk_group must be >= 1"),
        ("answerer", {"name": "context", "samples": 0}, "samples must be >= 1"),
        ("answerer", {"name": "context", "samples": 3, "temperature": 0.0}, "needs temperature > 0"),
        ("question_writer", {"name": "answer_aware", "prompt_style": "poem"}, "prompt_style must be"),
        ("span_filter", {"name": "instruction", "weights": {"no_such_cue": 1.0}}, "unknown weight"),
        ("filter", {"name": "verifier", "lexical": False, "semantic": False, "round_trip": False}, "at least one"),
        ("filter", {"name": "grounded_answer", "scoring": "maybe"}, "scoring must be auto, require or off"),
    ],
)
def test_a_bad_parameter_fails_when_the_component_is_built(kind, spec, message):
    with pytest.raises(ConfigError, match=message):
        REGISTRY.make_component(kind, spec)


def test_a_bad_strategy_parameter_fails_when_the_strategy_is_built():
    with pytest.raises(ConfigError, match="min_tokens <= max_tokens"):
        REGISTRY.make_strategy("naive", min_tokens=90, max_tokens=10)
    with pytest.raises(ConfigError, match="attempts must be >= 1"):
        REGISTRY.make_strategy("stratified", attempts=0)


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_plan_is_deterministic_bounded_and_inside_the_document(name, real_docs):
    strategy = REGISTRY.make_strategy(name)
    doc = real_docs[0]
    state = random.getstate()
    items = strategy.plan(doc, 5, seed=3, fingerprint="fp")
    again = REGISTRY.make_strategy(name).plan(doc, 5, seed=3, fingerprint="fp")
    other_seed = strategy.plan(doc, 5, seed=4, fingerprint="fp")
    assert random.getstate() == state, "plan() must not touch the global random state"
    assert 0 < len(items) <= 5
    assert [it.id for it in items] == [it.id for it in again]
    assert [(it.context, it.target) for it in items] == [(it.context, it.target) for it in again]
    assert len({it.id for it in items}) == len(items)
    assert {it.id for it in items} != {it.id for it in other_seed} or len(items) == 0
    for it in items:
        assert it.doc_id == doc.id
        assert 0 <= it.context[0] < it.context[1] <= len(doc.text)
        if it.target is not None:
            assert doc.text[it.target.start : it.target.end] == it.target.text
            assert it.context[0] <= it.target.start and it.target.end <= it.context[1]


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_run_returns_one_record_per_item_with_provenance(name, real_docs):
    strategy = REGISTRY.make_strategy(name)
    docs = {d.id: d for d in real_docs}
    items = [it for d in real_docs for it in strategy.plan(d, 2, seed=0, fingerprint="fp")]
    lm = _fake_lm()
    records = strategy.run(items, docs, lm)
    assert [r.id for r in records] == [it.id for it in items]
    for rec, item in zip(records, items):
        row = rec.to_dict()
        for key in (
            "id",
            "doc_id",
            "question",
            "answer",
            "messages",
            "target",
            "context",
            "strategy",
            "model",
            "seed",
            "fingerprint",
            "decisions",
            "meta",
            "kept",
        ):
            assert key in row
        assert row["doc_id"] == item.doc_id
        assert row["context"] == {"start": item.context[0], "end": item.context[1]}
        assert row["model"] == lm.model_id
        assert row["strategy"] == strategy.name
        assert row["messages"][0]["role"] == "user" and row["messages"][1]["role"] == "assistant"
        assert all({"filter", "score", "kept", "reason"} <= set(d) for d in row["decisions"])
        # Where the question and the answer came from; a span answer carries its exact offsets.
        assert row["meta"]["question_source"] in ("model", "template")
        assert row["meta"]["answer_source"] in (
            "abstractive", "extractive-snapped", "extractive-scored", "extractive-planned", "target-sentence"
        )  # fmt: skip
        if "answer_span" in row:
            span = row["answer_span"]
            assert docs[row["doc_id"]].text[span["start"] : span["end"]] == span["text"] == row["answer"]
        if not row["kept"]:
            assert any(not d["kept"] and d["reason"] for d in row["decisions"])


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_run_leaves_the_items_it_was_given_unchanged(name, real_docs):
    """Components return what they produce (questions, answers, the prompt answered with); they never write it
    into the work item, so a retried or resumed item starts from what was planned."""
    strategy = REGISTRY.make_strategy(name)
    docs = {d.id: d for d in real_docs}
    items = [it for d in real_docs for it in strategy.plan(d, 2, seed=0, fingerprint="fp")]
    planned = copy.deepcopy(items)
    records = strategy.run(items, docs, _fake_lm())
    assert items == planned
    # Every answered record says what its answering model saw.
    assert all("system" in r.meta["answer_prompt"] for r in records if r.answer)


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_empty_model_output_is_rejected_with_a_reason_not_dropped(name, real_docs):
    strategy = REGISTRY.make_strategy(name)
    items = strategy.plan(real_docs[0], 2, seed=0, fingerprint="fp")
    records = strategy.run(items, {d.id: d for d in real_docs}, FakeLM(default=""))
    assert len(records) == len(items)
    # A faithful baseline (naive: Cartridges keeps whatever came back) keeps the pair; every other rejects it.
    keeps = getattr(strategy, "keeps_empty_outputs", False)
    assert all(r.kept == keeps for r in records)
    assert all(any(d.reason.startswith("empty") for d in r.decisions) for r in records)
