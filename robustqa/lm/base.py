"""The one small batched protocol every language-model backend implements.

A backend takes a batch of chat requests and returns, for each, exactly `params.n` completions. It never invents
output: a failure raises `BackendError` (after retries, where the backend retries), it is never turned into "".
Token counts and the seconds spent inside the model are accumulated in `usage`, so benchmarks can report LM tokens
per kept pair and the share of wall time spent outside LM calls.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

Message = dict[str, str]


@dataclass(frozen=True)
class GenerationParams:
    """Sampling parameters of one request. temperature 0 means greedy decoding."""

    temperature: float = 0.0
    max_tokens: int = 128
    n: int = 1
    seed: int | None = None
    top_p: float = 1.0

    def with_(self, **changes: Any) -> GenerationParams:
        return replace(self, **changes)


@dataclass(frozen=True)
class ChatRequest:
    messages: tuple[tuple[str, str], ...]
    params: GenerationParams = GenerationParams()

    @classmethod
    def of(cls, messages: Sequence[Message], **params: Any) -> ChatRequest:
        return cls(tuple((m["role"], m["content"]) for m in messages), GenerationParams(**params))

    @property
    def message_dicts(self) -> list[Message]:
        return [{"role": r, "content": c} for r, c in self.messages]


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

    def to_dict(self) -> dict[str, float]:
        return {
            "calls": self.calls,
            "requests": self.requests,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "cached_requests": self.cached_requests,
            "seconds": round(self.seconds, 3),
        }


class LM:
    """Base class of backends. Subclasses implement `_generate`; callers use `generate`.

    `model_id` names the model in every record's provenance; `backend` names the backend kind.
    """

    backend: str = "base"
    model_id: str = "unknown"

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

    def close(self) -> None:
        """Release resources (HTTP clients, caches)."""
