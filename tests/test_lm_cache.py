"""The SQLite response cache (and the factory that wraps backends in it)."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from robustqa.errors import BackendError, ConfigError
from robustqa.lm.base import LM, ChatRequest, Completion
from robustqa.lm.cache import CachedLM, cache_key
from robustqa.lm.factory import make_lm
from robustqa.lm.fake import FakeLM
from robustqa.lm.openai_compat import OpenAILM, PartialBatchError


def _req(text: str = "What is in the passage?", **params) -> ChatRequest:
    return ChatRequest.of([{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}], **params)


class CountingLM(FakeLM):
    """A fake whose every answer is new, so a cached answer is told apart from a fresh one."""

    def __init__(self) -> None:
        self.counter = 0
        super().__init__(default=self._next)

    def _next(self, req: ChatRequest) -> str:
        self.counter += 1
        return f"answer {self.counter}"


def test_a_hit_returns_the_stored_answer_without_calling_the_backend(tmp_path):
    inner = CountingLM()
    lm = CachedLM(inner, tmp_path / "c.sqlite")
    first = lm.generate([_req("a"), _req("b")])
    second = lm.generate([_req("a"), _req("b")])
    assert [c.texts for c in second] == [c.texts for c in first] == [["answer 1"], ["answer 2"]]
    assert [c.cached for c in first] == [False, False] and [c.cached for c in second] == [True, True]
    assert len(inner.calls) == 2 and (lm.hits, lm.misses) == (2, 2)
    assert lm.usage.cached_requests == 2 and second[0].prompt_tokens == first[0].prompt_tokens


def test_misses_go_to_the_backend_in_one_batch(tmp_path):
    inner = CountingLM()
    lm = CachedLM(inner, tmp_path / "c.sqlite")
    lm.generate([_req("a")])
    out = lm.generate([_req("x"), _req("a"), _req("y")])
    assert [c.cached for c in out] == [False, True, False]
    assert inner.usage.calls == 2 and [r.messages[-1][1] for r in inner.calls] == ["a", "x", "y"]


def test_entries_persist_across_instances(tmp_path):
    path = tmp_path / "c.sqlite"
    a = CachedLM(CountingLM(), path)
    texts = a.generate([_req(n=2, temperature=0.7, seed=1)])[0].texts
    a.close()
    b = CachedLM(CountingLM(), path)
    (again,) = b.generate([_req(n=2, temperature=0.7, seed=1)])
    assert again.cached and again.texts == texts and len(b) == 1
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize(
    "change",
    [{"seed": 2}, {"n": 2}, {"temperature": 0.5}, {"max_tokens": 64}, {"top_p": 0.9}, {"text": "other"}],
)
def test_every_parameter_and_the_prompt_are_part_of_the_key(tmp_path, change):
    base = {"text": "q", "seed": 1, "n": 1, "temperature": 0.0, "max_tokens": 32, "top_p": 1.0}
    lm = CachedLM(CountingLM(), tmp_path / "c.sqlite")
    lm.generate([_req(**base)])
    (out,) = lm.generate([_req(**{**base, **change})])
    assert not out.cached


def test_backend_and_model_are_part_of_the_key(tmp_path):
    req = _req()
    assert cache_key("hf", "m", req) != cache_key("hf", "m2", req) != cache_key("openai", "m", req)
    path = tmp_path / "c.sqlite"
    CachedLM(FakeLM(model_id="one"), path).generate([req])
    (out,) = CachedLM(FakeLM(model_id="two"), path).generate([req])
    assert not out.cached


def test_the_finished_part_of_a_failed_batch_is_kept(tmp_path):
    class HalfFailing(LM):
        backend, model_id = "openai", "m"

        def _generate(self, requests):
            raise PartialBatchError("second request failed", {0: Completion(["kept"], 3, 1)})

    path = tmp_path / "c.sqlite"
    with pytest.raises(BackendError, match="second request failed"):
        CachedLM(HalfFailing(), path).generate([_req("a"), _req("b")])
    fresh = CachedLM(CountingLM(), path)
    fresh.backend, fresh.model_id = "openai", "m"
    assert [c.texts for c in fresh.generate([_req("a")])] == [["kept"]]


def test_concurrent_threads_share_one_cache(tmp_path):
    lm = CachedLM(FakeLM(default=lambda r: r.messages[-1][1].upper()), tmp_path / "c.sqlite")
    errors = []

    def work(k):
        try:
            for i in range(20):
                (c,) = lm.generate([_req(f"q{(i + k) % 10}")])
                assert c.texts == [f"Q{(i + k) % 10}"]
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(lm) == 10 and lm.hits + lm.misses == 80


def test_factory_builds_and_wraps_backends(tmp_path):
    lm = make_lm("fake", cache_path=tmp_path / "c.sqlite", replies=["hello"])
    assert isinstance(lm, CachedLM) and lm.backend == "fake" and lm.calls == []  # extras pass through
    hf = make_lm("hf", model=str(tmp_path), concurrency=8, max_retries=6, timeout=None, batch_size=4)
    assert hf.backend == "hf" and hf.batch_size == 4 and hf.model_id == str(tmp_path)
    oa = make_lm("openai", model="m", base_url="http://127.0.0.1:1/v1", concurrency=2, batch_size=4)
    assert isinstance(oa, OpenAILM) and oa.concurrency == 2 and oa.model_id == "m"


def test_factory_rejects_unknown_backends_and_options():
    with pytest.raises(ConfigError, match="unknown LM backend 'gpt'"):
        make_lm("gpt")
    with pytest.raises(ConfigError, match="unknown option.*concurency"):
        make_lm("openai", model="m", base_url="http://x/v1", concurency=2)
    with pytest.raises(ConfigError, match="base_url is required"):
        make_lm("openai", model="m")
