"""Scoring on the OpenAI-compatible backend, against a stand-in for vLLM's server (tests/vllm_fake_server.py) that
answers in vLLM's shapes from a real tiny model: the scores and top-k must equal the hf backend's on the same
weights, a server without prompt log-probabilities is refused on one line at start-up (and by the CLI before any
file is written), and a server that stops returning them mid-run is an error, never a made-up number.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from conftest import REPO
from conftest_lm import SCORE_REQUESTS, tiny_lm_dir  # noqa: F401  (fixture)
from vllm_fake_server import fake_vllm_server

from robustqa.errors import BackendError, ConfigError
from robustqa.lm.base import ScoreRequest, ScoringUnsupported, require_scoring
from robustqa.lm.hf import HFLM
from robustqa.lm.openai_compat import OpenAILM
from robustqa.teacher_logprobs import TeacherSettings, decode, require_teacher

REQUESTS = [
    *SCORE_REQUESTS,
    ScoreRequest.of([{"role": "user", "content": "When?"}], "In 1887, when the dam was built.", top_k=20),
    ScoreRequest.of([{"role": "user", "content": "When?"}], "1887", top_k=20),  # shares the prompt above
]


@pytest.fixture(scope="module")
def tiny(tiny_lm_dir):  # noqa: F811
    return HFLM(tiny_lm_dir, batch_size=8).load()


@pytest.fixture(scope="module")
def server(tiny):
    with fake_vllm_server(tiny) as served:
        yield served


def _lm(base_url: str, **kw) -> OpenAILM:
    return OpenAILM(base_url, "fake-vllm-model", api_key_env=None, **{"backoff_base": 0.02, "timeout": 30.0, **kw})


def test_scores_and_top_k_equal_the_hf_backend_on_the_same_model(server, tiny):
    lm = _lm(server.base_url, concurrency=3)
    assert lm.can_score
    remote, local = lm.score(REQUESTS), tiny.score(REQUESTS)
    for req, r, h in zip(REQUESTS, remote, local, strict=True):
        assert r.token_ids == h.token_ids  # the end-of-turn token included, where asked for
        assert max(abs(a - b) for a, b in zip(r.token_logprobs, h.token_logprobs, strict=True)) <= 1e-4
        if req.top_k:
            assert r.top_ids == h.top_ids
            flat_r = [x for row in r.top_logprobs for x in row]
            flat_h = [x for row in h.top_logprobs for x in row]
            assert max(abs(a - b) for a, b in zip(flat_r, flat_h, strict=True)) <= 1e-4
        else:
            assert r.top_ids is None
    assert remote[0].token_ids[-1] == tiny.tokenizer.eos_token_id
    assert remote[2].token_ids == tiny.tokenizer("ok", add_special_tokens=False)["input_ids"]
    assert lm.usage.score_requests == len(REQUESTS)
    lm.close()


def test_the_probe_runs_once_and_its_answer_is_kept(server):
    lm = _lm(server.base_url)
    before = len(server.paths)
    assert lm.can_score and lm.can_score
    require_scoring(lm, "the grounded_answer filter")
    probe_calls = len(server.paths) - before
    assert server.paths[before:].count("/v1/completions") == 1 and probe_calls <= 5
    lm.close()


@pytest.mark.parametrize(
    ("switch", "named"),
    [("prompt_logprobs", "does not return prompt_logprobs"), ("tokenize", "/tokenize answered HTTP 404")],
)
def test_a_server_that_cannot_is_refused_on_one_line_naming_it(tiny, switch, named):
    with fake_vllm_server(tiny, **{switch: False}) as served:
        lm = _lm(served.base_url)
        with pytest.raises(ScoringUnsupported) as info:
            require_scoring(lm, "the grounded_answer filter (scoring: require)")
        message = str(info.value)
        assert "\n" not in message and named in message
        assert f"fake-vllm-model at {served.base_url}" in message and "scoring=off" in message
        with pytest.raises(ConfigError, match=rf"the server at {served.base_url} cannot return") as info:
            require_teacher(lm, TeacherSettings(5))
        assert "\n" not in str(info.value) and named in str(info.value)
        assert not lm.can_score  # auto: a strategy falls back to not scoring
        lm.close()


def test_logprobs_that_stop_coming_are_an_error_not_a_number(tiny):
    with fake_vllm_server(tiny) as served:
        lm = _lm(served.base_url)
        assert lm.can_score
        served.prompt_logprobs = False
        with pytest.raises(BackendError, match=rf"the server at {served.base_url} does not return prompt_logprobs"):
            lm.score(REQUESTS[:1])
        lm.close()


def test_an_unreachable_server_is_an_error_not_a_refusal():
    from lm_server import free_port

    lm = _lm(f"http://127.0.0.1:{free_port()}/v1", max_retries=1)
    with pytest.raises(BackendError, match=r"/tokenize failed after 2 tries; last error: ConnectError") as info:
        require_scoring(lm, "x")
    assert not isinstance(info.value, ScoringUnsupported)


# -- through the CLI ---------------------------------------------------------------------------------------------


def _generate(tmp_path, base_url: str, *extra: str) -> subprocess.CompletedProcess:
    doc = tmp_path / "doc.txt"
    doc.write_text(
        "The river floods every spring, when snow melts in the northern hills. Farmers plant rice on the wet "
        "plains after the water recedes. In 1887 a dam was built upstream to hold back the worst floods.\n"
    )
    config = tmp_path / "run.yaml"
    params = {"min_tokens": 24, "max_tokens": 40, "max_tokens_a": 12, "max_tokens_b": 10}
    config.write_text(yaml.safe_dump({"strategy": "naive", "strategy_params": params, "cache": None}))
    args = ["generate", str(doc), "--config", str(config), "--budget", "2", "--out", str(tmp_path / "qa.jsonl")]
    args += ["--backend", "openai", "--base-url", base_url, "--model", "fake-vllm-model", *extra]
    return subprocess.run(
        [sys.executable, "-c", "from robustqa.cli import main; main()", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_cli_refuses_teacher_logprobs_on_one_line_before_any_file(tiny, tmp_path):
    with fake_vllm_server(tiny, prompt_logprobs=False) as served:
        proc = _generate(tmp_path, served.base_url, "--teacher-logprobs", "5")
    assert proc.returncode != 0
    err = proc.stderr.strip()
    assert err.startswith("robustqa: error: --teacher-logprobs 5:") and "\n" not in err, err
    assert served.base_url in err and "prompt_logprobs" in err
    assert not (tmp_path / "qa.jsonl").exists() and not (tmp_path / "qa.rejected.jsonl").exists()
    assert "/v1/chat/completions" not in served.paths  # refused before any generation


def test_the_cli_stores_teacher_logprobs_from_a_vllm_server(tiny, server, tmp_path):
    proc = _generate(tmp_path, server.base_url, "--teacher-logprobs", "4")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in (tmp_path / "qa.jsonl").read_text().splitlines()]
    assert rows, "the tiny model must keep some pairs for the check to mean anything"
    for row in rows:
        stored = decode(row["meta"]["teacher"])
        prompt = row["meta"]["answer_prompt"]
        messages = [{"role": "system", "content": prompt["system"]}, {"role": "user", "content": row["question"]}]
        (local,) = tiny.score([ScoreRequest.of(messages, row["answer"], top_k=4)])
        assert stored.token_ids.tolist() == local.token_ids and stored.shape == (local.n_tokens, 4)
