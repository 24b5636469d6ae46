"""The P3 throughput benchmark's plumbing, against a tiny in-process OpenAI-compatible server.

The fake server answers each chat request after a fixed latency with a reply derived from the prompt, counts the
requests in flight, and can be told to fail or to change one prompt's answer. That is enough to check that both
clients send the same bodies, really run C requests at once (a serialising client would take C times longer),
that ratios and medians are computed from the passes, and that failures and changed outputs are reported.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import sys
import threading
import time

import pytest
from conftest import REPO
from json_server import serve_json

from robustqa.errors import InputError
from robustqa.lm.base import ChatRequest

_spec = importlib.util.spec_from_file_location("openai_throughput", REPO / "benchmarks" / "openai_throughput.py")
bench = importlib.util.module_from_spec(_spec)
sys.modules["openai_throughput"] = bench  # dataclasses look their module up here
_spec.loader.exec_module(bench)

MODEL = "fake-model"


class FakeOpenAIServer:
    """`ThreadingHTTPServer` on 127.0.0.1: POST /v1/chat/completions answers "echo: <last user message's first
    word> (<length>)" after `latency` seconds, with usage; prompts containing `fail_marker` get HTTP 400."""

    def __init__(self, latency: float = 0.0, fail_marker: str | None = None) -> None:
        self.latency = latency
        self.fail_marker = fail_marker
        self.altered: set[str] = set()  # first words whose answers change from now on
        self.bodies: list[dict] = []
        self.in_flight = 0
        self.peak = 0
        self._lock = threading.Lock()
        self._served: contextlib.AbstractContextManager[str] | None = None

    def _handle(self, path: str, body: dict) -> tuple[int, dict]:
        with self._lock:
            self.bodies.append(body)
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            time.sleep(self.latency)
            return self.answer(body)
        finally:
            with self._lock:
                self.in_flight -= 1

    def answer(self, body: dict) -> tuple[int, dict]:
        prompt = body["messages"][-1]["content"]
        if body.get("model") != MODEL:
            return 404, {"error": {"message": f"unknown model {body.get('model')}"}}
        if self.fail_marker and self.fail_marker in prompt:
            return 400, {"error": {"message": "refused by the fake server"}}
        first = prompt.split()[0]
        words = min(body["max_tokens"], len(prompt) % 7 + 2)
        text = " ".join([f"echo: {first}", *["x"] * words, "(changed)" if first in self.altered else ""])
        usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": words, "total_tokens": 0}
        choice = {"index": 0, "message": {"role": "assistant", "content": f" {text} "}, "finish_reason": "stop"}
        return 200, {"id": "x", "object": "chat.completion", "choices": [choice], "usage": usage}

    def __enter__(self) -> FakeOpenAIServer:
        self._served = serve_json(self._handle, keep_alive=True)
        self.base_url = f"{self._served.__enter__()}/v1"
        return self

    def __exit__(self, *exc) -> None:
        assert self._served is not None
        self._served.__exit__(*exc)


def _requests(n: int = 8, max_tokens: int = 5) -> list[ChatRequest]:
    return [
        ChatRequest.of([{"role": "user", "content": f"para{i} " + "word " * i}], max_tokens=max_tokens)
        for i in range(n)
    ]


def test_both_clients_send_the_same_bodies_and_read_the_same_answers():
    reqs = _requests()
    with FakeOpenAIServer() as srv:
        plain = bench.plain_pass(srv.base_url, MODEL, reqs, 3)
        plain_bodies, srv.bodies = srv.bodies, []
        robust = bench.robustqa_pass(srv.base_url, MODEL, reqs, 3)
    key = lambda b: json.dumps(b, sort_keys=True)  # noqa: E731
    assert sorted(map(key, plain_bodies)) == sorted(map(key, srv.bodies))  # same work for the server
    assert plain.completed == robust.completed == 8
    assert [o.text for o in plain.outcomes] == [o.text for o in robust.outcomes]
    assert plain.outcomes[2].text == " echo: para2 x x x x  "  # raw, as OpenAILM returns it (nothing stripped)
    assert (
        plain.completion_tokens == robust.completion_tokens == sum(min(5, len(r.messages[-1][1]) % 7 + 2) for r in reqs)
    )
    assert bench.mismatches(plain, robust) == {
        "text_mismatches": [],
        "token_count_mismatches": [],
        "completion_tokens": [plain.completion_tokens, robust.completion_tokens],
    }
    assert robust.extra["backend_stats"]["requests"] == 8


@pytest.mark.parametrize("client", ["plain_pass", "robustqa_pass"])
def test_each_client_keeps_exactly_c_requests_in_flight(client):
    latency, n, c = 0.25, 8, 4
    with FakeOpenAIServer(latency=latency) as srv:
        res = getattr(bench, client)(srv.base_url, MODEL, _requests(n), c)
    assert srv.peak == c  # never more than C at once, and really C (a serialising client peaks at 1)
    assert res.completed == n
    # C at once (the peak) bounds the time from below; no upper bound, which a loaded machine could break.
    assert latency * n / c <= res.seconds
    assert res.requests_per_s == pytest.approx(n / res.seconds)


def _pass(client: str, seconds: float, tokens: list[int]) -> object:
    return bench.PassResult(client, seconds, [bench.Outcome("t", k, 1) for k in tokens])


def test_ratio_math():
    plain, robust = _pass("plain", 2.0, [4, 4]), _pass("robustqa", 2.5, [4, 6])
    assert plain.requests_per_s == 1.0 and robust.requests_per_s == 0.8
    r = bench.repeat_ratios(plain, robust)
    assert r["requests_per_s_ratio"] == pytest.approx(0.8)
    assert r["tokens_per_s_ratio"] == pytest.approx((10 / 2.5) / (8 / 2.0))
    assert bench.repeat_ratios(_pass("plain", 1.0, []), robust)["requests_per_s_ratio"] is None
    assert bench.median_or_none([0.9, None, 1.1, 0.8]) == 0.9
    assert bench.median_or_none([None]) is None
    failed = bench.PassResult("plain", 1.0, [bench.Outcome("a", 3), bench.Outcome(error="boom")])
    assert failed.completed == 1 and failed.completion_tokens == 3 and failed.summary()["failed"] == 1


def test_measure_alternates_and_takes_medians_from_the_passes():
    with FakeOpenAIServer(latency=0.05) as srv:
        out = bench.measure(srv.base_url, MODEL, _requests(8), concurrency=4, repeats=3)
    plain_first, robust_first = ["plain", "robustqa"], ["robustqa", "plain"]
    assert [row["order"] for row in out["runs"]] == [plain_first, robust_first, plain_first]
    ratios = []
    for row in out["runs"]:
        p, b = row["plain"], row["robustqa"]
        assert row["requests_per_s_ratio"] == pytest.approx(
            (b["completed"] / b["seconds"]) / (p["completed"] / p["seconds"]), rel=1e-2
        )
        ratios.append(row["requests_per_s_ratio"])
    assert out["median_requests_per_s_ratio"] == pytest.approx(sorted(ratios)[1])
    best = [max(row[c]["completed"] / row[c]["seconds"] for row in out["runs"]) for c in ("robustqa", "plain")]
    assert out["best_pass_requests_per_s_ratio"] == pytest.approx(best[0] / best[1], rel=1e-2)
    assert all(row["plain"]["load_average_1min_before"] >= 0 for row in out["runs"])
    # A serialising backend would score 0.25 here (C=4); the fake server costs the same for both clients.
    assert out["median_requests_per_s_ratio"] > 0.5
    assert out["outputs_identical"] and out["all_completed"]


def test_changed_outputs_and_failures_are_reported():
    reqs = _requests(6)
    with FakeOpenAIServer(fail_marker="para4") as srv:
        first = bench.plain_pass(srv.base_url, MODEL, reqs, 2)
        srv.altered.add("para1")
        robust = bench.robustqa_pass(srv.base_url, MODEL, reqs, 2)
    assert first.completed == robust.completed == 5
    assert first.outcomes[4].error and "400" in first.outcomes[4].error
    assert robust.outcomes[4].error and "refused by the fake server" in robust.outcomes[4].error
    m = bench.mismatches(first, robust)
    assert m["text_mismatches"] == [1] and m["token_count_mismatches"] == []


def test_main_writes_the_record_against_an_existing_server(tmp_path, capsys):
    data = {
        "data": [
            {
                "title": "T",
                "paragraphs": [{"context": f"Ctx{i} text.", "qas": [{"question": f"Q{i}?"}]} for i in range(5)],
            }
        ]
    }
    path = tmp_path / "xquad_en_dev.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    out = tmp_path / "res.json"
    with FakeOpenAIServer() as srv:
        argv = ["--data", str(tmp_path), "--requests", "4", "--concurrency", "2", "--repeats", "2"]
        argv += ["--base-url", srv.base_url, "--model", MODEL, "--server-kind", "fake", "--out", str(out)]
        assert bench.main(argv) == 0
    rec = json.loads(out.read_text())
    assert rec["N"] == 4 and rec["C"] == 2 and rec["server"]["kind"] == "fake" and "partial" not in rec
    assert len(rec["runs"]) == 2 and rec["warmup"]["completed"] == 1
    assert rec["runs"][0]["plain"]["completed"] == 4 and rec["outputs_identical"] is True
    assert "median robustqa/plain" in capsys.readouterr().out
    assert srv.bodies[0]["messages"][0]["content"].startswith("Ctx0 text.\n\nQuestion: Q0?")


def test_unreadable_data_is_an_input_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"data": [{"paragraphs": [{"context": "c"}]}]', encoding="utf-8")
    with pytest.raises(InputError, match="bad.json"):
        bench.xquad_requests(bad, 1, 8, 100)
    good = tmp_path / "one.json"
    good.write_text(json.dumps({"data": [{"paragraphs": [{"context": "c", "qas": [{"question": "q"}]}]}]}))
    with pytest.raises(InputError, match="fewer than --requests 2"):
        bench.xquad_requests(good, 2, 8, 100)
