"""Batched greedy answers and gold-answer likelihoods from a local chat model (transformers, CPU), through the
local transformers backend (one implementation of batched generation and scoring). The gold-answer
NLL is the mean negative log-likelihood per token of the gold answer placed as the assistant turn after
the prompt: at 135M parameters generated answers barely change with training, while this likelihood moves
(facts.md)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from robustqa.lm.base import ChatRequest, ScoreRequest
from robustqa.lm.hf import HFLM

from .models import load_model, load_tokenizer

Conversation = list[dict[str, str]]


class ChatModel:
    """A causal LM and its tokenizer; `answer` and `gold_nll` take chat prompts (lists of messages). Generation and
    scoring are the local transformers backend's (`robustqa.lm.hf.HFLM`), over the model in memory."""

    def __init__(self, model, tokenizer, name: str = "model") -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.lm = HFLM.from_loaded(model, tokenizer, model_id=name)

    @classmethod
    def load(cls, model_dir: str | Path, name: str | None = None, device: str = "auto") -> ChatModel:
        return cls(load_model(model_dir, device), load_tokenizer(model_dir), name or str(model_dir))

    def prompt_ids(self, conversation: Conversation) -> list[int]:
        ids = self.tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=True)
        # transformers 5 may return a BatchEncoding-like mapping; older versions return the list itself.
        return list(ids["input_ids"] if hasattr(ids, "keys") else ids)

    def answer(self, prompts: Sequence[Conversation], max_new_tokens: int = 32, batch_size: int = 16) -> list[str]:
        """Greedy answers, one per prompt, in order (prompts of similar length share a batch: less padding)."""
        order = sorted(range(len(prompts)), key=lambda i: len(self.prompt_ids(prompts[i])))
        self.lm.batch_size = batch_size
        requests = [ChatRequest.of(prompts[i], temperature=0.0, max_tokens=max_new_tokens) for i in order]
        out = [""] * len(prompts)
        for i, completion in zip(order, self.lm.generate(requests), strict=True):
            out[i] = completion.texts[0].strip()
        return out

    def gold_nll(self, prompts: Sequence[Conversation], answers: Sequence[str], batch_size: int = 16) -> list[float]:
        """Mean NLL per token of each answer as the assistant's reply to its prompt (nats; NaN for an empty
        answer)."""
        self.lm.batch_size = batch_size
        requests = [ScoreRequest.of(p, a, end_turn=False) for p, a in zip(prompts, answers, strict=True)]
        return [-s.logprob / s.n_tokens if s.n_tokens else float("nan") for s in self.lm.score(requests)]
