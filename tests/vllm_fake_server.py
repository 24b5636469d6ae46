"""A stand-in for vLLM's OpenAI-compatible server, for tests: the endpoints robustqa's openai backend uses, answered
by a real local transformers model (an `HFLM`) in vLLM's shapes.

- POST /tokenize: chat `messages` (`add_generation_prompt`, `chat_template_kwargs`) or a text `prompt`
  (`add_special_tokens`, default true as in vLLM); answers `tokens`, `count`, `max_model_len`.
- POST /v1/completions: a token-id `prompt`; with `prompt_logprobs: K`, on the choice one entry per prompt token,
  None first, then a dict keyed by token id: the token's `logprob`, `rank` and `decoded_token`, and the K
  likeliest tokens (ranks 1..K). `return_token_ids` echoes `prompt_token_ids`. The text is one greedy token.
- POST /v1/chat/completions: greedy generation, for end-to-end runs.

Switches play a server that cannot: `tokenize=False` (no /tokenize: 404), `prompt_logprobs=False` (the parameter
ignored, as a server that does not know it ignores it). They can be flipped while the server runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from json_server import serve_json

from robustqa.lm.base import ChatRequest
from robustqa.lm.hf import HFLM


@dataclass
class FakeVLLM:
    lm: HFLM
    tokenize: bool = True
    prompt_logprobs: bool = True
    max_model_len: int = 2048
    base_url: str = ""
    model: str = "fake-vllm-model"
    paths: list[str] = field(default_factory=list)  # every request's path, in order

    # -- the endpoints ---------------------------------------------------------------------------------------
    def handle(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.paths.append(path)
        if path == "/tokenize" and self.tokenize:
            return 200, self._tokenize(body)
        if path == "/v1/completions":
            return 200, self._completions(body)
        if path == "/v1/chat/completions":
            return 200, self._chat(body)
        return 404, {"detail": "Not Found"}

    def _tokenize(self, body: dict[str, Any]) -> dict[str, Any]:
        tok = self.lm.tokenizer
        if "messages" in body:
            text = tok.apply_chat_template(
                body["messages"],
                tokenize=False,
                add_generation_prompt=body.get("add_generation_prompt", True),
                **(body.get("chat_template_kwargs") or {}),
            )
            ids = tok(text, add_special_tokens=body.get("add_special_tokens", False))["input_ids"]
        else:
            ids = tok(body["prompt"], add_special_tokens=body.get("add_special_tokens", True))["input_ids"]
        return {"count": len(ids), "max_model_len": self.max_model_len, "tokens": list(ids)}

    def _completions(self, body: dict[str, Any]) -> dict[str, Any]:
        ids = body["prompt"]
        with self.lm._lock, torch.no_grad():
            self.lm.load()
            logits = self.lm._model(input_ids=torch.tensor([ids])).logits[0].float()
        logprobs = torch.log_softmax(logits, dim=-1)
        choice: dict[str, Any] = {"index": 0, "text": self.lm.tokenizer.decode([int(logprobs[-1].argmax())]),
                                  "finish_reason": "length", "prompt_logprobs": None}  # fmt: skip
        k = body.get("prompt_logprobs")
        if k is not None and self.prompt_logprobs:
            choice["prompt_logprobs"] = [None] + [
                self._position(logprobs[i - 1], ids[i], k) for i in range(1, len(ids))
            ]
        if body.get("return_token_ids"):
            choice["prompt_token_ids"] = list(ids)
        usage = {"prompt_tokens": len(ids), "completion_tokens": 1, "total_tokens": len(ids) + 1}
        return {"id": "cmpl-fake", "object": "text_completion", "model": body.get("model"), "choices": [choice],
                "usage": usage}  # fmt: skip

    def _position(self, row: torch.Tensor, token: int, k: int) -> dict[str, dict[str, Any]]:
        """vLLM's entry for one prompt position: the scored token first, then the top k (a dict: no duplicates)."""
        decode = self.lm.tokenizer.decode
        rank = int((row > row[token]).sum()) + 1
        entry = {str(token): {"logprob": float(row[token]), "rank": rank, "decoded_token": decode([token])}}
        top = row.topk(k)
        for r, (lp, tid) in enumerate(zip(top.values.tolist(), top.indices.tolist()), start=1):
            entry.setdefault(str(tid), {"logprob": lp, "rank": r, "decoded_token": decode([tid])})
        return entry

    def _chat(self, body: dict[str, Any]) -> dict[str, Any]:
        req = ChatRequest.of(body["messages"], max_tokens=body.get("max_tokens", 16), n=body.get("n", 1))
        (comp,) = self.lm.generate([req])
        choices = [{"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
                   for i, t in enumerate(comp.texts)]  # fmt: skip
        usage = {"prompt_tokens": comp.prompt_tokens, "completion_tokens": comp.completion_tokens}
        return {"id": "chatcmpl-fake", "object": "chat.completion", "model": body.get("model"), "choices": choices,
                "usage": usage}  # fmt: skip


@contextmanager
def fake_vllm_server(lm: HFLM, **switches: Any) -> Iterator[FakeVLLM]:
    """Serve `lm` on a free port of 127.0.0.1 in a thread; stopped when the context exits."""
    served = FakeVLLM(lm, **switches)

    with serve_json(served.handle) as root:
        served.base_url = f"{root}/v1"
        yield served
