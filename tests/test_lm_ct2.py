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


class _Order:
    """Spy on an engine: logs each submission and each awaited result, in the order they happen."""

    def __init__(self, inner, events):
        self._inner, self._events = inner, events

    def _wrap(self, method, args, kwargs):
        out = getattr(self._inner, method)(*args, **kwargs)
        self._events.append(f"submit {method}")
        if not kwargs.get("asynchronous"):
            return out
        return [_AwaitSpy(f, self._events) for f in out]

    def generate_batch(self, *args, **kwargs):
        return self._wrap("generate_batch", args, kwargs)

    def score_batch(self, *args, **kwargs):
        return self._wrap("score_batch", args, kwargs)

    def __getattr__(self, name):
        return getattr(self._inner, name)


class _AwaitSpy:
    def __init__(self, inner, events):
        self._inner, self._events = inner, events

    def result(self):
        self._events.append("await")
        return self._inner.result()


def test_workers_get_every_job_at_once_and_change_no_output(tiny_lm_dir, ct2_cache, monkeypatch):  # noqa: F811
    reqs = _reqs(max_tokens=6)  # four prompts of different lengths: four jobs at pad_tolerance 0
    pool = ct2_mod.CT2LM(
        tiny_lm_dir, compute_type="float32", cache_dir=ct2_cache, workers=2, num_threads=2, pad_tolerance=0
    ).load()
    single = ct2_mod.CT2LM(
        tiny_lm_dir, compute_type="float32", cache_dir=ct2_cache, workers=1, num_threads=1, pad_tolerance=0
    ).load()
    assert pool.worker_layout() == (2, 1) and single.worker_layout() == (1, 1)
    assert pool._engine.num_generators == 2 and single._engine.num_generators == 1
    events: list[str] = []
    monkeypatch.setattr(pool, "_engine", _Order(pool._engine, events))
    assert [c.texts for c in pool.generate(reqs)] == [c.texts for c in single.generate(reqs)]
    # Every group was submitted before the first result was awaited, so the workers could share them.
    assert events == ["submit generate_batch"] * 4 + ["await"] * 4
    events.clear()
    scored, alone = pool.score(SCORES[:1] + SCORES[2:]), single.score(SCORES[:1] + SCORES[2:])
    assert events[0].startswith("submit") and events[-1] == "await" and "submit score_batch" in events
    for a, b in zip(scored, alone, strict=True):
        assert a.token_ids == b.token_ids and a.token_logprobs == pytest.approx(b.token_logprobs, abs=1e-5)
    with pytest.raises(ConfigError, match="workers"):
        ct2_mod.CT2LM(tiny_lm_dir, workers=0)


def test_seeded_sampling_runs_on_seeded_one_worker_engines_whatever_the_pool(tiny_lm_dir, ct2_cache):  # noqa: F811
    sampled = _reqs(temperature=1.0, n=2, seed=3, max_tokens=6)  # four length groups at pad_tolerance 0
    texts = []
    for workers, threads in ((2, 2), (1, 1), (3, 1)):
        lm = ct2_mod.CT2LM(
            tiny_lm_dir,
            compute_type="float32",
            cache_dir=ct2_cache,
            workers=workers,
            num_threads=threads,
            pad_tolerance=0,
        ).load()
        first, again = lm.generate(sampled), lm.generate(sampled)
        assert [c.texts for c in first] == [c.texts for c in again]
        assert len(lm._seeded) == ct2_mod.SEEDED_SHARDS and all(e.num_generators == 1 for e in lm._seeded)
        texts.append([c.texts for c in first])
    assert texts[0] == texts[1] == texts[2]  # the pool's layout does not change seeded samples
    one = ct2_mod.CT2LM(tiny_lm_dir, compute_type="float32", cache_dir=ct2_cache, pad_tolerance=0).load()
    assert len(one._seeded_engines(3, jobs=1)) == 1  # no more engines than jobs
    with pytest.raises(ConfigError, match="seeded_shards"):
        ct2_mod.CT2LM(tiny_lm_dir, seeded_shards=0)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 500), max_size=30), st.integers(1, 4))
def test_shard_groups_balance_the_jobs_by_a_fixed_rule(costs, shards):
    out = ct2_mod.shard_groups(costs, shards)
    assert out == ct2_mod.shard_groups(list(costs), shards) and all(0 <= k < shards for k in out)
    loads = [sum(c for c, k in zip(costs, out, strict=True) if k == s) for s in range(shards)]
    if costs:
        # Longest-job-first: no engine carries more than the lightest one plus the costliest job.
        assert max(loads) <= min(loads) + max(costs)


def test_conversion_is_cached_and_names_the_engine(tiny_lm_dir, ct2_cache, ct2_tiny):  # noqa: F811
    again = ct2_mod.CT2LM(tiny_lm_dir, compute_type="float32", cache_dir=ct2_cache)
    assert again.ct2_dir == ct2_tiny.ct2_dir
    assert (again.ct2_dir / "model.bin").is_file() and (again.ct2_dir / "tokenizer.json").is_file()
    assert ct2_tiny.model_id.endswith("@ct2-float32")
    assert ct2_mod.CT2LM(tiny_lm_dir, model_id="x").model_id == "x"


def test_backend_choice_auto_hf_and_a_machine_without_ctranslate2(monkeypatch, tiny_lm_dir):  # noqa: F811
    auto = make_lm("auto")  # the embedded model, ctranslate2 installed: transformers' numbers, on ct2
    assert auto.backend == "ct2" and auto.compute_type == ct2_mod.AUTO_COMPUTE_TYPE == "float32"
    assert make_lm("auto", compute_type="int8").compute_type == "int8"  # a setting given is kept
    assert make_lm("ct2").compute_type == "int8"
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
