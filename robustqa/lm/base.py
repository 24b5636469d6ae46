"""The one small batched protocol every language-model backend implements.

A backend takes a batch of chat requests and returns, for each, exactly `params.n` completions. It never invents
output: a failure raises `BackendError` (after retries, where the backend retries), it is never turned into "".
Token counts and the seconds spent inside the model are accumulated in `usage`, so benchmarks can report LM tokens
per kept pair and the share of wall time spent outside LM calls.

Scoring is an optional second capability: `score(requests)` returns the teacher-forced log-probability of a given
assistant continuation after given messages, token by token (and the top-k alternatives at each position when
asked). Backends that can score set `can_score = True`; a component that needs scoring calls `require_scoring`
when its strategy starts, so a backend without it fails before any work, with one line naming the backend.

How a continuation is scored, the same on every backend: the prompt is the chat template of the messages with the
generation prompt added; the continuation is tokenized on its own (no special tokens) and, with `end_turn`, the
end-of-turn token follows it, so "the answer is exactly this" is scored, not "the answer starts with this".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from robustqa.errors import BackendError

Message = dict[str, str]


def as_tuples(messages: Sequence[Message]) -> tuple[tuple[str, str], ...]:
    """Chat messages as hashable (role, content) pairs, the form requests hold them in."""
    return tuple((m["role"], m["content"]) for m in messages)


def as_dicts(messages: Sequence[tuple[str, str]]) -> list[Message]:
    return [{"role": r, "content": c} for r, c in messages]


@dataclass(frozen=True)
class GenerationParams:
    """Sampling parameters of one request. temperature 0 means greedy decoding."""

    temperature: float = 0.0
    max_tokens: int = 128
    n: int = 1
    seed: int | None = None
    top_p: float = 1.0
    # Extra chat-template arguments, e.g. (("enable_thinking", False),): local backends pass them to the tokenizer's
    # chat template, OpenAI-compatible servers get them as `chat_template_kwargs` (vLLM, SGLang).
    chat_template_kwargs: tuple[tuple[str, Any], ...] = ()

    def with_(self, **changes: Any) -> GenerationParams:
        return replace(self, **changes)


@dataclass(frozen=True)
class ChatRequest:
    messages: tuple[tuple[str, str], ...]
    params: GenerationParams = GenerationParams()

    @classmethod
    def of(cls, messages: Sequence[Message], **params: Any) -> ChatRequest:
        return cls(as_tuples(messages), GenerationParams(**params))

    @property
    def message_dicts(self) -> list[Message]:
        return as_dicts(self.messages)


@dataclass
class Completion:
    """The n texts a backend produced for one request, with token counts (0 when the backend cannot tell)."""

    texts: list[str]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False


@dataclass
class Usage:
    calls: int = 0
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_requests: int = 0
    score_requests: int = 0
    seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, completions: Sequence[Completion], seconds: float) -> None:
        with self._lock:
            self.calls += 1
            self.requests += len(completions)
            self.seconds += seconds
            for c in completions:
                if c.cached:
                    self.cached_requests += 1
                else:
                    self.prompt_tokens += c.prompt_tokens
                    self.completion_tokens += c.completion_tokens

    def add_scores(self, scores: Sequence[Score], seconds: float) -> None:
        # Scoring reads prompt and continuation once, generating nothing: its tokens count as prompt tokens.
        with self._lock:
            self.calls += 1
            self.score_requests += len(scores)
            self.seconds += seconds
            for s in scores:
                self.prompt_tokens += s.prompt_tokens + s.n_tokens

    def to_dict(self) -> dict[str, float]:
        return {
            "score_requests": self.score_requests,
            "calls": self.calls,
            "requests": self.requests,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "cached_requests": self.cached_requests,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class ScoreRequest:
    """Score `continuation` as the assistant's reply to `messages`. `top_k` > 0 also asks for the k most likely
    tokens (ids and log-probabilities) at every position of the continuation."""

    messages: tuple[tuple[str, str], ...]
    continuation: str
    end_turn: bool = True
    top_k: int = 0
    chat_template_kwargs: tuple[tuple[str, Any], ...] = ()  # as in GenerationParams: the prompt's template arguments

    @classmethod
    def of(
        cls,
        messages: Sequence[Message],
        continuation: str,
        end_turn: bool = True,
        top_k: int = 0,
        chat_template_kwargs: tuple[tuple[str, Any], ...] = (),
    ) -> ScoreRequest:
        return cls(as_tuples(messages), continuation, end_turn, top_k, chat_template_kwargs)

    @property
    def message_dicts(self) -> list[Message]:
        return as_dicts(self.messages)


@dataclass
class Score:
    """Teacher-forced log-probabilities (natural log) of one continuation's tokens."""

    token_ids: list[int]
    token_logprobs: list[float]
    prompt_tokens: int = 0
    top_ids: list[list[int]] | None = None
    top_logprobs: list[list[float]] | None = None

    @property
    def logprob(self) -> float:
        return float(sum(self.token_logprobs))

    @property
    def n_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def mean_logprob(self) -> float:
        return self.logprob / self.n_tokens if self.token_ids else 0.0


class LM:
    """Base class of backends. Subclasses implement `_generate` (and `_score` where the engine can score, with
    `can_score = True`); callers use `generate` and `score`.

    `model_id` names the model in every record's provenance; `backend` names the backend kind.
    """

    backend: str = "base"
    model_id: str = "unknown"
    can_score: bool = False

    def __init__(self) -> None:
        self.usage = Usage()

    def generate(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        if not requests:
            return []
        t0 = time.perf_counter()
        out = self._generate(list(requests))
        if len(out) != len(requests):
            raise AssertionError(f"{type(self).__name__} returned {len(out)} completions for {len(requests)}")
        for req, comp in zip(requests, out):
            if len(comp.texts) != req.params.n:
                raise AssertionError(f"{type(self).__name__} returned {len(comp.texts)} texts, wanted {req.params.n}")
        self.usage.add(out, time.perf_counter() - t0)
        return out

    def _generate(self, requests: list[ChatRequest]) -> list[Completion]:
        raise NotImplementedError

    def score(self, requests: Sequence[ScoreRequest]) -> list[Score]:
        """Teacher-forced scores of the continuations, one per request, in order."""
        if not requests:
            return []
        if not self.can_score:
            raise ScoringUnsupported(self.scoring_unsupported_reason())
        t0 = time.perf_counter()
        out = self._score(list(requests))
        if len(out) != len(requests):
            raise AssertionError(f"{type(self).__name__} returned {len(out)} scores for {len(requests)}")
        self.usage.add_scores(out, time.perf_counter() - t0)
        return out

    def _score(self, requests: list[ScoreRequest]) -> list[Score]:
        raise NotImplementedError

    def scoring_unsupported_reason(self) -> str:
        return f"the {self.backend} backend ({self.model_id}) cannot score continuations (log-probabilities)"

    def close(self) -> None:
        """Release resources (HTTP clients, caches)."""


class ScoringUnsupported(BackendError):
    """The backend (or its server) cannot score continuations."""


def require_scoring(lm: LM, who: str) -> None:
    """Fail at start-up, on one line, when `who` (a component) needs scoring and the backend cannot score."""
    if not lm.can_score:
        raise ScoringUnsupported(f"{who} needs scoring, but {lm.scoring_unsupported_reason()}")


def generate_in_batches(
    requests: Sequence[ChatRequest],
    batch_size: int,
    generate_batch: Callable[[list[ChatRequest], GenerationParams, int | None], list[Completion]],
) -> list[Completion]:
    """Local engines' batching: requests with equal sampling parameters (the seed aside) share batches of at most
    `batch_size` sequences (n samples per prompt mean fewer prompts per batch); a batch is seeded from its first
    request's seed. Completions come back in request order."""
    out: list[Completion | None] = [None] * len(requests)
    groups: dict[GenerationParams, list[int]] = {}
    for i, req in enumerate(requests):
        groups.setdefault(req.params.with_(seed=None), []).append(i)
    for params, indices in groups.items():
        per_batch = max(1, batch_size // (1 if params.temperature == 0 else params.n))
        for start in range(0, len(indices), per_batch):
            chunk = indices[start : start + per_batch]
            comps = generate_batch([requests[i] for i in chunk], params, requests[chunk[0]].params.seed)
            for i, comp in zip(chunk, comps, strict=True):
                out[i] = comp
    return [c for c in out if c is not None]


def check_score_lengths(
    backend: str, encoded: Sequence[tuple[list[int], list[int]]], requests: Sequence[ScoreRequest], limit: int
) -> None:
    """One line naming the request when a scoring request's prompt and continuation exceed the engine's limit."""
    for (prompt_ids, cont_ids), req in zip(encoded, requests, strict=True):
        if len(prompt_ids) + len(cont_ids) > limit:
            raise BackendError(
                f"{backend} backend: a scoring request has {len(prompt_ids) + len(cont_ids)} tokens, over "
                f"max_input_tokens={limit} (starts {req.messages[-1][1][:80]!r})"
            )
