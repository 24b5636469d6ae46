"""naive as Cartridges' SelfStudySynthesizer runs it: one system prompt for both calls, Cartridges' output limits,
thinking off for call A and drawn for call B, model-token chunks (fixed length with a null minimum), raw outputs,
seed-prompt variants within a type, and chunks shared across a group."""

from __future__ import annotations

from conftest_lm import tiny_lm_dir  # noqa: F401  (fixture)
from robustqa.strategies.seed_prompts import VARIANTS

from robustqa.lm.fake import FakeLM
from robustqa.registry import REGISTRY
from robustqa.types import Document

TEXT = " ".join(f"Sentence {i} tells of the river and the dam built in {1800 + i}." for i in range(120))
DOC = Document("river", TEXT)


def _run(n=12, **params):
    strategy = REGISTRY.make_strategy("naive", **params)
    lm = FakeLM(default="  A reply with spaces.\n")
    items = strategy.plan(DOC, n, seed=3, fingerprint="fp")
    return items, strategy.run(items, {DOC.id: DOC}, lm), lm


def test_both_calls_see_one_system_prompt_and_cartridges_limits():
    items, records, lm = _run(min_tokens=20, max_tokens=40)
    calls_a, calls_b = lm.calls[: len(items)], lm.calls[len(items) :]
    for a, b, rec in zip(calls_a, calls_b, records, strict=True):
        assert a.messages[0] == b.messages[0] == ("system", rec.meta["answer_prompt"]["system"])
        assert "<info>\n" in a.messages[0][1] and a.messages[1][1] == rec.meta["seed_prompt_text"]
        assert b.messages[1][1] == rec.question  # call B answers the raw message
        assert (a.params.max_tokens, b.params.max_tokens) == (512, 1024)
        assert (a.params.temperature, b.params.temperature) == (0.6, 0.0)
    # Raw outputs: nothing stripped.
    assert {r.question for r in records} == {r.answer for r in records} == {"  A reply with spaces.\n"}


def test_thinking_is_off_for_call_a_and_drawn_per_window_for_call_b():
    items, _, lm = _run(n=40, prob_thinking=0.5, chunk_group=4, min_tokens=20, max_tokens=40)
    calls_a, calls_b = lm.calls[: len(items)], lm.calls[len(items) :]
    assert {a.params.chat_template_kwargs for a in calls_a} == {(("enable_thinking", False),)}
    drawn = [dict(b.params.chat_template_kwargs)["enable_thinking"] for b in calls_b]
    assert 0 < sum(drawn) < len(drawn)
    for i in range(0, 40, 4):  # one draw (and one chunk) per group of 4
        assert len(set(drawn[i : i + 4])) == 1 and len({it.context for it in items[i : i + 4]}) == 1
    assert len({it.context for it in items}) > 1
    _, _, quiet = _run(n=2, thinking_control=False, min_tokens=20, max_tokens=40)
    assert {c.params.chat_template_kwargs for c in quiet.calls} == {()}


def test_chunks_count_model_tokens_and_a_null_minimum_fixes_the_length(tiny_lm_dir):  # noqa: F811
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_lm_dir))
    items = REGISTRY.make_strategy("naive", min_tokens=None, max_tokens=50, tokenizer=str(tiny_lm_dir)).plan(DOC, 8, 0)
    offsets = tok(TEXT, return_offsets_mapping=True, add_special_tokens=False)["offset_mapping"]
    for it in items:
        inside = [o for o in offsets if o[0] >= it.context[0] and o[1] <= it.context[1]]
        assert len(inside) == 50
        assert it.meta["chunk_unit"] == f"tokenizer {tiny_lm_dir}"


def test_seed_prompts_vary_within_a_type():
    items, _, _ = _run(n=200, seed_prompts=["structuring", "summarization", "question"], min_tokens=20, max_tokens=40)
    seen: dict[str, set] = {}
    for it in items:
        seen.setdefault(it.meta["seed_prompt"], set()).add(it.meta["seed_prompt_variant"])
    assert len(VARIANTS["structuring"]) == 12 and len(seen["structuring"]) >= 10
    assert seen["summarization"] == {"0", "1"} and seen["question"] == {"0", "1", "2"}
