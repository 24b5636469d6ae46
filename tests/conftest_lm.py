"""Fixtures for the LM backend tests: a tiny random chat model with SmolLM2's real tokenizer, built locally.

The model is `robustqa.training.tiny`'s 2-layer Llama with hidden size 64 (about 3M parameters, most of them
the 49k-token embedding), randomly initialised: it writes gibberish fast, which is all the mechanics tests need. The
tokenizer is SmolLM2's own, taken from the embedded model's converted directory when one exists (0.5 s),
else read from the GGUF (about 10 s), so chat templating, special tokens and padding behave exactly as with
the real model.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from robustqa.lm.base import ScoreRequest


@functools.cache
def smollm2_tokenizer():
    from transformers import AutoTokenizer

    from robustqa.lm.embedded import converted_embedded_dir, embedded_gguf_path

    converted = converted_embedded_dir()
    if converted is not None:
        return AutoTokenizer.from_pretrained(str(converted), local_files_only=True)
    gguf = embedded_gguf_path()
    return AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)


@functools.cache
def _tiny_model_dir(root: Path) -> Path:
    # functools.cache keyed by the session's temp root: built once per session even when several test modules
    # import this fixture.
    from robustqa.training.tiny import save_tiny_model

    # A wide init spreads the logits, so greedy argmax is not decided by float rounding noise.
    return save_tiny_model(
        root / "tiny-lm", smollm2_tokenizer(), seed=1234, max_position_embeddings=2048, initializer_range=0.5
    )


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory) -> Path:
    return _tiny_model_dir(tmp_path_factory.getbasetemp())


# Scoring requests every scoring backend is checked on: a plain continuation, one with top-k under a system
# prompt, and a long prompt without the end-of-turn token.
SCORE_REQUESTS = [
    ScoreRequest.of([{"role": "user", "content": "Who wrote it?"}], "Thomas Jefferson"),
    ScoreRequest.of(
        [
            {"role": "system", "content": "Use the text: the river floods every spring."},
            {"role": "user", "content": "When?"},
        ],
        "every spring",
        top_k=3,
    ),
    ScoreRequest.of([{"role": "user", "content": "Say something long. " * 20}], "ok", end_turn=False),
]
