"""The backend contract, shared by the transformers (`hf`) and CTranslate2 (`ct2`) engines, on the tiny random
Llama with SmolLM2's tokenizer; plus what is particular to ct2 (conversion cache, prefix sharing, the fallback
to transformers on a machine without ctranslate2).

ct2 runs here in float32, so its numbers can be held to the hand computation as tightly as hf's; the int8 default
is compared with hf on the real model by `benchmarks/coverage.py --lm ct2` against `--lm hf`, not here.
"""

from __future__ import annotations

import builtins
import importlib.util

import pytest
import torch
from conftest_lm import SCORE_REQUESTS, tiny_lm_dir  # noqa: F401  (fixture)
from hypothesis import given, settings
from hypothesis import strategies as st

from robustqa.errors import BackendError, ConfigError
from robustqa.lm import ct2 as ct2_mod
from robustqa.lm.base import ChatRequest, ScoreRequest
from robustqa.lm.factory import make_lm
from robustqa.lm.hf import HFLM

ctranslate2 = pytest.importorskip("ctranslate2")

PROMPTS = [
    "Hi.",
    "Write one question about this passage: The river floods every spring and the town moves uphill.",
    "Summarise: " + "The committee met on Tuesday to discuss the budget, the roads and the new library. " * 6,
    "What is 2 + 2?",
]
SCORES = SCORE_REQUESTS


def _reqs(**params) -> list[ChatRequest]:
    return [ChatRequest.of([{"role": "user", "content": p}], **params) for p in PROMPTS]


@pytest.fixture(scope="module")
def ct2_cache(tmp_path_factory):
    # One conversion per session: tests/test_speed_engines.py converts into the same folder.
    return tmp_path_factory.getbasetemp() / "ct2-cache"


@pytest.fixture(scope="module")
def hf_tiny(tiny_lm_dir):  # noqa: F811
    return HFLM(tiny_lm_dir, batch_size=16).load()


@pytest.fixture(scope="module")
def ct2_tiny(tiny_lm_dir, ct2_cache):  # noqa: F811
    return ct2_mod.CT2LM(tiny_lm_dir, compute_type="float32", batch_size=16, cache_dir=ct2_cache).load()


@pytest.fixture(params=["hf", "ct2"])
def engine(request, hf_tiny, ct2_tiny):
    return {"hf": hf_tiny, "ct2": ct2_tiny}[request.param]


def _by_hand(tiny_dir, req: ScoreRequest) -> list[float]:
    """One unbatched fp32 transformers forward pass, log-softmax, the continuation's tokens picked out."""
    ref = _reference_model(tiny_dir)
    prompt_ids, cont_ids = ref.score_ids(req)
    ids = torch.tensor([prompt_ids + cont_ids])
    with torch.no_grad():
        logprobs = torch.log_softmax(ref._model(input_ids=ids).logits[0].float(), dim=-1)
    return [float(logprobs[len(prompt_ids) + j - 1, t]) for j, t in enumerate(cont_ids)]


_REF: dict = {}


def _reference_model(tiny_dir) -> HFLM:
    if tiny_dir not in _REF:
        _REF[tiny_dir] = HFLM(tiny_dir).load()
    return _REF[tiny_dir]


# -- the shared contract ---------------------------------------------------------------------------------------
def test_seeded_sampling_is_reproducible_and_n_is_honoured(engine):
    first = engine.generate(_reqs(temperature=1.0, n=3, seed=7, max_tokens=6))
    again = engine.generate(_reqs(temperature=1.0, n=3, seed=7, max_tokens=6))
    other = engine.generate(_reqs(temperature=1.0, n=3, seed=8, max_tokens=6))
    assert all(len(c.texts) == 3 for c in first)
    assert [c.texts for c in first] == [c.texts for c in again]
    assert [c.texts for c in first] != [c.texts for c in other]
    assert any(len(set(c.texts)) > 1 for c in first)  # n samples, not one sample copied
    assert all(1 <= c.completion_tokens <= 3 * 6 for c in first)


def test_greedy_n_returns_n_copies_and_counts_tokens(engine):
    out = engine.generate(_reqs(n=2, max_tokens=7))
    tok = engine.tokenizer
    for prompt, comp in zip(PROMPTS, out, strict=True):
        ids = tok.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True, return_dict=True
        )["input_ids"]
        assert len(comp.texts) == 2 and comp.texts[0] == comp.texts[1]
        assert comp.prompt_tokens == len(ids)
        assert 1 <= comp.completion_tokens <= 7  # computed once, counted once
    assert any(c.texts[0] for c in out)


def test_scores_equal_a_hand_computed_log_probability(engine, tiny_lm_dir):  # noqa: F811
    scores = engine.score(SCORES)
    for req, score in zip(SCORES, scores, strict=True):
        expected = _by_hand(tiny_lm_dir, req)
        assert score.token_ids == _reference_model(tiny_lm_dir).score_ids(req)[1]
        assert score.token_logprobs == pytest.approx(expected, abs=1e-4)
        assert score.prompt_tokens == len(_reference_model(tiny_lm_dir).score_ids(req)[0])
    top = scores[1]
    assert [len(r) for r in top.top_ids] == [3] * top.n_tokens
    for lp, tops in zip(top.token_logprobs, top.top_logprobs, strict=True):
        assert tops == sorted(tops, reverse=True)
        assert lp <= tops[0] + 1e-5
    assert scores[0].token_ids[-1] == engine.tokenizer.eos_token_id  # end_turn


def test_a_prompt_over_max_input_tokens_fails_clearly(engine):
    saved = engine.max_input_tokens
    engine.max_input_tokens = 20
    try:
        with pytest.raises(BackendError, match="max_input_tokens=20"):
            engine.generate(_reqs(max_tokens=2))
    finally:
        engine.max_input_tokens = saved


# -- ct2 in particular ------------------------------------------------------------------------------------------
def test_ct2_float32_greedy_gives_the_same_tokens_as_transformers(hf_tiny, ct2_tiny):
    hf = hf_tiny.generate(_reqs(max_tokens=8))
    ct = ct2_tiny.generate(_reqs(max_tokens=8))
    assert [c.texts for c in ct] == [c.texts for c in hf]
    assert [c.completion_tokens for c in ct] == [c.completion_tokens for c in hf]


def test_shared_prefix_is_passed_once_and_changes_nothing(tiny_lm_dir, ct2_cache, monkeypatch):  # noqa: F811
    context = "Use this text: " + "The committee met on Tuesday to discuss the budget and the roads. " * 4
    reqs = [
        ChatRequest.of([{"role": "system", "content": context}, {"role": "user", "content": q}], max_tokens=6)
        for q in ("Who met?", "When did the committee meet?", "What did they discuss?")
    ]
    # One length group for all three (pad_tolerance None), so they share one call.
    sharing = ct2_mod.CT2LM(tiny_lm_dir, compute_type="float32", cache_dir=ct2_cache, pad_tolerance=None).load()
    whole = ct2_mod.CT2LM(tiny_lm_dir, compute_type="float32", cache_dir=ct2_cache, prefix_sharing=False).load()
    seen = []
    monkeypatch.setattr(
        sharing, "_engine", _Spy(sharing._engine, lambda kw: seen.append(len(kw.get("static_prompt") or [])))
    )
    assert [c.texts for c in sharing.generate(reqs)] == [c.texts for c in whole.generate(reqs)]
    assert seen and seen[0] > 40  # the system prompt and the context went in once, as the static prompt


class _Spy:
    def __init__(self, inner, record):
        self._inner, self._record = inner, record

    def generate_batch(self, *args, **kwargs):
        self._record(kwargs)
        return self._inner.generate_batch(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._inner, name)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 300), max_size=40), st.one_of(st.none(), st.integers(0, 50)))
def test_length_groups_partition_the_prompts_within_the_tolerance(lengths, tolerance):
    groups = ct2_mod.length_groups(lengths, tolerance)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    if tolerance is None:
        assert len(groups) == (1 if lengths else 0)
        return
    for g in groups:
        assert max(lengths[i] for i in g) - min(lengths[i] for i in g) <= tolerance
    # Greedy in length order: the next group's first prompt could not have joined the group before it.
    for before, after in zip(groups, groups[1:]):
        assert lengths[after[0]] - lengths[before[0]] > tolerance


def test_length_groups_change_no_output(tiny_lm_dir, ct2_cache, monkeypatch):  # noqa: F811
    reqs = _reqs(max_tokens=6) + _reqs(max_tokens=6)[:2]  # two pairs of equal prompts, two singletons
    grouped = ct2_mod.CT2LM(tiny_lm_dir, compute_type="float32", cache_dir=ct2_cache, pad_tolerance=0).load()
    padded = ct2_mod.CT2LM(tiny_lm_dir, compute_type="float32", cache_dir=ct2_cache, pad_tolerance=None).load()
    calls = []
    monkeypatch.setattr(grouped, "_engine", _Spy(grouped._engine, lambda kw: calls.append(kw)))
    assert [c.texts for c in grouped.generate(reqs)] == [c.texts for c in padded.generate(reqs)]
    assert len(calls) == 4  # the equal prompts shared a call, the others ran alone
    with pytest.raises(ConfigError, match="pad_tolerance"):
        ct2_mod.CT2LM(tiny_lm_dir, pad_tolerance=-1)


def test_conversion_is_cached_and_names_the_engine(tiny_lm_dir, ct2_cache, ct2_tiny):  # noqa: F811
    again = ct2_mod.CT2LM(tiny_lm_dir, compute_type="float32", cache_dir=ct2_cache)
    assert again.ct2_dir == ct2_tiny.ct2_dir
    assert (again.ct2_dir / "model.bin").is_file() and (again.ct2_dir / "tokenizer.json").is_file()
    assert ct2_tiny.model_id.endswith("@ct2-float32")
    assert ct2_mod.CT2LM(tiny_lm_dir, model_id="x").model_id == "x"


def test_backend_choice_auto_hf_and_a_machine_without_ctranslate2(monkeypatch, tiny_lm_dir):  # noqa: F811
    assert make_lm("auto").backend == "ct2"  # the embedded model, ctranslate2 installed
    assert make_lm("hf").backend == "hf"
    assert make_lm("auto", model=str(tiny_lm_dir)).backend == "hf"  # any other local directory: transformers

    real_import = builtins.__import__

    def no_ct2(name, *args, **kwargs):
        if name == "ctranslate2" or name.startswith("ctranslate2."):
            raise ImportError("No module named 'ctranslate2'")
        return real_import(name, *args, **kwargs)

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(builtins, "__import__", no_ct2)
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ctranslate2" else real_find_spec(name, *a)
    )
    assert make_lm("auto").backend == "hf"
    lm = make_lm("ct2", model=str(tiny_lm_dir))
    with pytest.raises(BackendError, match="pip install ctranslate2"):
        lm.generate(_reqs(max_tokens=2))
