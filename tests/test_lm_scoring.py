"""Scoring in the LM protocol: teacher-forced log-probabilities of continuations.

The HF backend's scores are checked against a hand computation (one unbatched forward pass, log-softmax, the
continuation's tokens picked out), in a padded batch of prompts of different lengths.
"""

from __future__ import annotations

import pytest
import torch
from conftest_lm import SCORE_REQUESTS, tiny_lm_dir  # noqa: F401  (fixture)

from robustqa.lm.base import ScoreRequest, ScoringUnsupported, require_scoring
from robustqa.lm.cache import CachedLM
from robustqa.lm.fake import FakeLM, overlap_scorer
from robustqa.lm.hf import HFLM

REQUESTS = SCORE_REQUESTS


def _by_hand(lm: HFLM, req: ScoreRequest) -> list[float]:
    prompt_ids, cont_ids = lm.score_ids(req)
    ids = torch.tensor([prompt_ids + cont_ids])
    with torch.no_grad():
        logprobs = torch.log_softmax(lm._model(input_ids=ids).logits[0].float(), dim=-1)
    return [float(logprobs[len(prompt_ids) + j - 1, t]) for j, t in enumerate(cont_ids)]


@pytest.fixture(scope="module")
def tiny(tiny_lm_dir):  # noqa: F811
    return HFLM(tiny_lm_dir, batch_size=8).load()


def test_hf_scores_equal_a_hand_computed_log_probability(tiny):
    scores = tiny.score(REQUESTS)
    assert len(scores) == len(REQUESTS)
    for req, score in zip(REQUESTS, scores):
        expected = _by_hand(tiny, req)
        assert score.n_tokens == len(expected)
        assert score.token_logprobs == pytest.approx(expected, abs=1e-4)
        assert score.logprob == pytest.approx(sum(expected), abs=1e-3)
    # end_turn appends the end-of-turn token; without it the continuation's own tokens only.
    assert scores[0].token_ids[-1] == tiny.tokenizer.eos_token_id
    assert scores[2].token_ids == tiny.tokenizer("ok", add_special_tokens=False)["input_ids"]
    assert tiny.usage.score_requests == 3


def test_hf_continuations_of_one_prompt_share_its_computation_and_score_the_same(tiny):
    messages = [
        {"role": "system", "content": "Text: the river floods every spring."},
        {"role": "user", "content": "When?"},
    ]
    conts = ["every spring", "spring", "the river floods every spring and the town moves uphill", "x"]
    shared = tiny.score([ScoreRequest.of(messages, c, top_k=2) for c in conts])
    for c, score in zip(conts, shared):
        req = ScoreRequest.of(messages, c)
        assert score.token_logprobs == pytest.approx(_by_hand(tiny, req), abs=1e-4)
        assert score.top_ids is not None and len(score.top_ids) == score.n_tokens
    # The prompt is computed, and counted, once.
    prompt_len = len(tiny.score_ids(ScoreRequest.of(messages, "x"))[0])
    assert [s.prompt_tokens for s in shared] == [prompt_len, 0, 0, 0]


def test_hf_top_k_holds_the_k_likeliest_tokens_at_each_position(tiny):
    score = tiny.score([REQUESTS[1]])[0]
    assert score.top_ids is not None and score.top_logprobs is not None
    assert [len(row) for row in score.top_ids] == [3] * score.n_tokens
    for lp, tops in zip(score.token_logprobs, score.top_logprobs):
        assert tops == sorted(tops, reverse=True)
        assert lp <= tops[0] + 1e-6


def test_a_backend_without_scoring_fails_on_one_line_at_start_up():
    lm = FakeLM()
    with pytest.raises(ScoringUnsupported, match="extractive answerer needs scoring, but the fake backend"):
        require_scoring(lm, "extractive answerer")
    with pytest.raises(ScoringUnsupported):
        lm.score(REQUESTS[:1])


def test_fake_scorer_is_scripted_and_the_cache_passes_scoring_through(tmp_path):
    lm = FakeLM(scorer=overlap_scorer)
    require_scoring(lm, "x")
    good, bad = lm.score(
        [
            ScoreRequest.of([{"role": "user", "content": "the river floods"}], "river floods"),
            ScoreRequest.of([{"role": "user", "content": "the river floods"}], "desert winds"),
        ]
    )
    assert good.logprob > bad.logprob
    cached = CachedLM(lm, tmp_path / "c.sqlite")
    assert cached.can_score
    assert cached.score(REQUESTS[:1])[0].n_tokens == 3  # "Thomas", "Jefferson", end of turn
    # A second wrapper on the same file answers from the cache: the scorer is not called again.
    calls = len(lm.score_calls)
    again = CachedLM(lm, tmp_path / "c.sqlite").score(REQUESTS[:1])[0]
    assert len(lm.score_calls) == calls and again.n_tokens == 3
