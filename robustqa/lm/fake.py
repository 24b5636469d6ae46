"""A scripted fake LM for unit tests (robustqa's and users'): deterministic, no model, no network.

Replies come from, in order of precedence: `rules` (a list of (substring, reply) pairs matched against the last
message), a queue of `replies`, or `default` (a callable of the request, or a string). Every request is recorded in
`calls` so tests can assert on prompts. It is for tests only: never a fallback for a failing real backend.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable

from .base import LM, ChatRequest, Completion


def _echo_last_words(req: ChatRequest) -> str:
    last = req.messages[-1][1]
    words = last.split()
    return " ".join(words[-12:]) if words else "ok"


class FakeLM(LM):
    backend = "fake"

    def __init__(
        self,
        replies: Iterable[str] = (),
        rules: Iterable[tuple[str, str]] = (),
        default: str | Callable[[ChatRequest], str] = _echo_last_words,
        model_id: str = "fake-lm",
    ) -> None:
        super().__init__()
        self.replies = deque(replies)
        self.rules = list(rules)
        self.default = default
        self.model_id = model_id
        self.calls: list[ChatRequest] = []

    def _reply(self, req: ChatRequest, k: int) -> str:
        last = req.messages[-1][1]
        for needle, reply in self.rules:
            if needle in last:
                return reply
        if self.replies:
            return self.replies.popleft()
        return self.default(req) if callable(self.default) else self.default

    def _generate(self, requests: list[ChatRequest]) -> list[Completion]:
        out = []
        for req in requests:
            self.calls.append(req)
            texts = [self._reply(req, k) for k in range(req.params.n)]
            prompt_tokens = sum(len(c.split()) for _, c in req.messages)
            out.append(Completion(texts, prompt_tokens, sum(len(t.split()) for t in texts)))
        return out
