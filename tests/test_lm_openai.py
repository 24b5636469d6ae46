"""The OpenAI-compatible backend against a REAL server (`transformers serve` on the tiny model), directly and
through a proxy that injects faults (5xx, 429 with Retry-After, hangs, dropped connections, null content).

`transformers serve` ignores `n` (one choice per call), so the re-ask path is exercised by the real server.
The server's greedy answers are also checked against the local backend on the same weights: nothing is
invented. `transformers serve` returns no prompt log-probabilities, so scoring is refused on one line there
(tests/test_lm_openai_scoring.py scores against a stand-in for vLLM).
"""

from __future__ import annotations

import json
import time

import pytest
from conftest_lm import tiny_lm_dir  # noqa: F401  (fixture)
from fault_proxy import FaultProxy
from lm_server import free_port, transformers_server

from robustqa.errors import BackendError
from robustqa.lm.base import ChatRequest, ScoringUnsupported, require_scoring
from robustqa.lm.hf import HFLM
from robustqa.lm.openai_compat import OpenAILM, _retry_after

pytest.importorskip("fastapi", reason='the real-server tests need `pip install "transformers[serving]"`')
pytest.importorskip("uvicorn", reason='the real-server tests need `pip install "transformers[serving]"`')

QUESTIONS = [f"Question {i}: what does paragraph {i} say about rivers?" for i in range(6)]


def _reqs(**params) -> list[ChatRequest]:
    return [ChatRequest.of([{"role": "user", "content": q}], **{"max_tokens": 6, **params}) for q in QUESTIONS]


@pytest.fixture(scope="module")
def server(tiny_lm_dir):  # noqa: F811
    with transformers_server(tiny_lm_dir) as served:
        print(f"\ntransformers serve ready in {served.startup_seconds:.1f}s")
        yield served


@pytest.fixture(scope="module")
def local_greedy(tiny_lm_dir):  # noqa: F811
    """The same weights run in-process: what the server's greedy answers must be."""
    return [c.texts[0] for c in HFLM(tiny_lm_dir).generate(_reqs())]


def _lm(base_url: str, model: str, **kw) -> OpenAILM:
    return OpenAILM(base_url, model, api_key_env=None, **{"backoff_base": 0.02, "timeout": 30.0, **kw})


def test_real_server_answers_match_the_local_model(server, local_greedy):
    lm = _lm(server.base_url, server.model, concurrency=2)
    out = lm.generate(_reqs())
    assert [c.texts[0] for c in out] == local_greedy
    assert all(c.prompt_tokens > 0 and 0 < c.completion_tokens <= 6 for c in out)
    assert lm.stats["retries"] == 0 and lm.stats["failures"] == 0
    lm.close()


def test_fewer_choices_than_n_are_asked_for_again(server):
    lm = _lm(server.base_url, server.model)
    (comp,) = lm.generate(_reqs(n=3, temperature=0.0)[:1])
    assert len(comp.texts) == 3 and lm.stats["reasks"] == 2  # the server returned one choice per call
    assert lm.stats["requests"] == 3
    lm.close()


def test_sampling_reasks_draw_new_seeded_samples(server):
    # transformers serve samples only when told do_sample in a generation config; `extra_body` carries it.
    lm = _lm(server.base_url, server.model, extra_body={"generation_config": json.dumps({"do_sample": True})})
    req = _reqs(n=3, temperature=1.0, seed=11)[:1]
    (first,) = lm.generate(req)
    (again,) = lm.generate(req)
    assert len(set(first.texts)) == 3  # each re-ask shifted the seed, so no sample repeats
    assert again.texts == first.texts  # and the seeds make it reproducible
    lm.close()


def test_a_400_is_not_retried_and_names_the_server_message(server):
    lm = _lm(server.base_url, "not-the-served-model", max_retries=5)
    with pytest.raises(BackendError, match=r"HTTP 400 \(not retried\).*pinned"):
        lm.generate(_reqs()[:1])
    assert lm.stats == {"requests": 1, "retries": 0, "failures": 1, "reasks": 0}


def test_every_request_succeeds_through_a_faulty_proxy(server, local_greedy):
    faults = ["500", "429", "drop", "hang", "503", "truncate", "502", "504", "500", "drop"]
    with FaultProxy(server.base_url.removesuffix("/v1"), faults, hang_seconds=4.0) as proxy:
        lm = _lm(proxy.base_url, server.model, concurrency=3, timeout=2.0, max_retries=len(faults))
        out = lm.generate(_reqs())
        lm.close()
    print(f"\nfaults injected {dict(proxy.injected)}; backend stats {lm.stats}")
    assert sum(proxy.injected.values()) == len(faults)
    assert [c.texts[0] for c in out] == local_greedy  # every answer is the model's own, none made up
    assert lm.stats["failures"] == 0
    # Each fault cost exactly one retry; a slow real answer may add a timeout retry on a loaded machine.
    assert lm.stats["retries"] >= len(faults)
    assert lm.stats["requests"] == len(QUESTIONS) + lm.stats["retries"]
    assert proxy.peak <= 3


def test_retry_after_is_honoured(server):
    with FaultProxy(server.base_url.removesuffix("/v1"), ["429"], retry_after=1.0) as proxy:
        lm = _lm(proxy.base_url, server.model)
        t0 = time.perf_counter()
        lm.generate(_reqs()[:1])
        assert time.perf_counter() - t0 >= 1.0
        assert lm.stats["retries"] == 1 and proxy.injected["429"] == 1


def test_a_server_that_stays_down_fails_after_max_retries(server):
    with FaultProxy(server.base_url.removesuffix("/v1"), default="503") as proxy:
        lm = _lm(proxy.base_url, server.model, max_retries=3)
        with pytest.raises(
            BackendError, match=r"POST http://127\.0\.0\.1:\d+/v1/chat/completions failed after 4 tries.*503"
        ):
            lm.generate(_reqs()[:2])
    assert lm.stats["retries"] == 6 and lm.stats["failures"] == 2 and proxy.forwarded == 0


def test_a_closed_port_fails_after_max_retries():
    lm = _lm(f"http://127.0.0.1:{free_port()}/v1", "m", max_retries=2)
    with pytest.raises(BackendError, match=r"failed after 3 tries; last error: ConnectError"):
        lm.generate(_reqs()[:1])


def test_a_choice_without_content_is_an_error_not_empty_text(server):
    with FaultProxy(server.base_url.removesuffix("/v1"), ["null"]) as proxy:
        lm = _lm(proxy.base_url, server.model)
        with pytest.raises(BackendError, match="without text content"):
            lm.generate(_reqs()[:1])
    assert proxy.forwarded == 1


def test_a_server_without_prompt_logprobs_cannot_score_and_says_so_on_one_line(server):
    lm = _lm(server.base_url, server.model)
    with pytest.raises(ScoringUnsupported) as info:
        require_scoring(lm, "the grounded_answer filter (scoring: require)")
    message = str(info.value)
    assert "\n" not in message and f"{server.model} at {server.base_url}" in message
    assert "/tokenize answered HTTP 4" in message  # `transformers serve` has no /tokenize
    assert not lm.can_score and lm.stats["requests"] == 1  # probed once, the answer kept
    lm.close()


def test_retry_after_parses_seconds_and_http_dates():
    import httpx

    assert _retry_after(httpx.Response(429, headers={"Retry-After": "2.5"})) == 2.5
    assert _retry_after(httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0.0
    assert _retry_after(httpx.Response(429, headers={"Retry-After": "soon"})) is None
    assert _retry_after(httpx.Response(429)) is None
