"""A scripted fake LM for unit tests (robustqa's and users'): deterministic, no model, no network.

Replies come from, in order of precedence: `rules` (a list of (substring, reply) pairs matched against the last
message), a queue of `replies`, or `default` (a callable of the request, or a string). Every request is recorded in
`calls` so tests can assert on prompts. It is for tests only: never a fallback for a failing real backend.

Scoring is scripted too: with `scorer` (a callable of a ScoreRequest returning one log-probability per
continuation token, tokens being whitespace words) the fake can score; without one it cannot, like a server
without prompt log-probabilities. `overlap_scorer` is a ready-made scorer that makes a continuation likelier the
more of its words the prompt contains.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable

from robustqa.types import stable_hash

from .base import LM, ChatRequest, Completion, Score, ScoreRequest


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
        scorer: Callable[[ScoreRequest], list[float]] | None = None,
    ) -> None:
        super().__init__()
        self.scorer = scorer
        self.score_calls: list[ScoreRequest] = []
        self.replies = deque(replies)
        self.rules = list(rules)
        self.default = default
        self.model_id = model_id
        self.calls: list[ChatRequest] = []

    @property
    def can_score(self) -> bool:  # type: ignore[override]
        return self.scorer is not None

    def _score(self, requests: list[ScoreRequest]) -> list[Score]:
        assert self.scorer is not None
        out = []
        for req in requests:
            self.score_calls.append(req)
            words = req.continuation.split() + (["<end>"] if req.end_turn else [])
            logprobs = [float(x) for x in self.scorer(req)]
            if len(logprobs) != len(words):
                raise AssertionError(f"FakeLM scorer gave {len(logprobs)} log-probabilities for {len(words)} tokens")
            ids = [int(stable_hash(w, length=6), 16) for w in words]
            out.append(Score(ids, logprobs, prompt_tokens=sum(len(c.split()) for _, c in req.messages)))
        return out

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


def overlap_scorer(req: ScoreRequest) -> list[float]:
    """-0.1 per continuation word found in the prompt, -3.0 per word the prompt lacks, -0.5 for the end token."""
    seen = {w.strip(".,;:!?\"'()").lower() for _, content in req.messages for w in content.split()}
    logprobs = [-0.1 if w.strip(".,;:!?\"'()").lower() in seen else -3.0 for w in req.continuation.split()]
    return logprobs + ([-0.5] if req.end_turn else [])
