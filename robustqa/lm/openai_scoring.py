"""Scoring on an OpenAI-compatible server: the log-probabilities a vLLM server returns for the prompt's own tokens.

The contract is the local backends' (`robustqa.lm.base`): the prompt is the chat template of the messages with the
generation prompt, the continuation is tokenized on its own, and with `end_turn` the end-of-turn token follows.
Token ids are sent, not text, so the server scores exactly those tokens and no boundary is re-tokenized:

1. The prompt's ids: POST {server}/tokenize with the messages, `add_generation_prompt: true` and the
   `chat_template_kwargs` (vLLM renders its own chat template there, as for /v1/chat/completions).
2. The continuation's ids: POST {server}/tokenize with `prompt` and `add_special_tokens: false`. The end-of-turn
   token is the one the chat template puts right after an assistant message's text, read once per backend.
3. POST {base_url}/completions with `prompt` the concatenated ids (a token-id prompt is not re-tokenized),
   `max_tokens: 1` and `prompt_logprobs: K`. vLLM answers, on the choice, one entry per prompt token: null for
   the first, then a dict keyed by token id holding that token's `logprob` (and `rank`, `decoded_token`) plus the
   K most likely tokens (ranks 1..K). The continuation's entries are read; nothing is estimated.

`probe` runs one such request; a server that cannot (no /tokenize for chat messages, a refused or ignored
`prompt_logprobs`) is named with what it lacks. SGLang's OpenAI API has no chat /tokenize, so it is refused there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from robustqa.errors import BackendError

from .base import Score, ScoreRequest, as_dicts, check_score_lengths
from .openai_compat import RefusedRequest

if TYPE_CHECKING:
    from .openai_compat import OpenAILM

T = TypeVar("T")
R = TypeVar("R")

PROBE = ScoreRequest.of([{"role": "user", "content": "Say hello."}], "Hello there", top_k=1)


class MissingLogprobs(BackendError):
    """The server answered, but without what scoring needs (token ids, prompt log-probabilities)."""


class PromptLogprobScorer:
    def __init__(self, lm: OpenAILM) -> None:
        self.lm = lm
        # vLLM serves /tokenize at the server's root, beside /v1.
        self.tokenize_url = f"{lm.base_url.removesuffix('/v1')}/tokenize"
        self.completions_url = f"{lm.base_url}/completions"
        self._end_turn: int | None = None
        self._max_model_len = 0

    def probe(self) -> str | None:
        """None when the server scores; else what it lacks. A server that cannot be reached raises."""
        try:
            self.score([PROBE])
        except RefusedRequest as exc:
            return f"POST {exc.url} answered HTTP {exc.status} ({exc.server_message[:160]})"
        except MissingLogprobs as exc:
            return "the server " + str(exc).removeprefix(f"openai backend: the server at {self.lm.base_url} ")
        return None

    # -- scoring -----------------------------------------------------------------------------------------------
    def score(self, requests: Sequence[ScoreRequest]) -> list[Score]:
        end_turn = [self._end_turn_id()] if any(r.end_turn for r in requests) else []
        # Candidate answers of one question share its prompt: each distinct text is tokenized once.
        prompts = list(dict.fromkeys((r.messages, r.chat_template_kwargs) for r in requests))
        prompt_ids = dict(zip(prompts, self._map(lambda p: self._tokenize_chat(as_dicts(p[0]), True, p[1]), prompts)))
        texts = list(dict.fromkeys(r.continuation for r in requests))
        text_ids = dict(zip(texts, self._map(self._tokenize_text, texts)))
        encoded = [
            (
                prompt_ids[(r.messages, r.chat_template_kwargs)],
                text_ids[r.continuation] + (end_turn if r.end_turn else []),
            )
            for r in requests
        ]
        if self._max_model_len > 1:  # one generated token must fit too
            check_score_lengths("openai", encoded, requests, self._max_model_len - 1)
        pairs = [(p, c, r.top_k) for (p, c), r in zip(encoded, requests, strict=True)]
        return self._map(lambda job: self._score_one(*job), pairs)

    def _score_one(self, prompt: list[int], cont: list[int], top_k: int) -> Score:
        if not cont:
            return Score([], [], prompt_tokens=len(prompt), **({"top_ids": [], "top_logprobs": []} if top_k else {}))
        ids = prompt + cont
        body = {
            "model": self.lm.model,
            "prompt": ids,
            "max_tokens": 1,
            "temperature": 0.0,
            "prompt_logprobs": top_k,
            "return_token_ids": True,
        }
        data = self.lm._post(body, self.completions_url)
        rows = self._prompt_logprobs(data, ids)
        score = Score(token_ids=list(cont), token_logprobs=[], prompt_tokens=len(prompt))
        if top_k:
            score.top_ids, score.top_logprobs = [], []
        for pos, token in enumerate(cont, start=len(prompt)):
            row = rows[pos]
            entry = row.get(str(token)) if isinstance(row, dict) else None
            if not isinstance(entry, dict) or not isinstance(entry.get("logprob"), int | float):
                raise self._missing(f"has no log-probability for prompt token {token} at position {pos}")
            score.token_logprobs.append(float(entry["logprob"]))
            if top_k:
                top = _top(row, top_k)
                if len(top) < top_k:
                    raise self._missing(f"returned {len(top)} top log-probabilities at position {pos}, not {top_k}")
                score.top_ids.append([t for t, _ in top])  # type: ignore[union-attr]
                score.top_logprobs.append([lp for _, lp in top])  # type: ignore[union-attr]
        return score

    def _prompt_logprobs(self, data: dict[str, Any], ids: list[int]) -> list[Any]:
        choices = data.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
        rows = choice.get("prompt_logprobs")  # vLLM's /v1/completions puts them on the choice
        if not isinstance(rows, list):
            raise self._missing("does not return prompt_logprobs on /v1/completions")
        if len(rows) != len(ids):
            raise self._missing(f"returned {len(rows)} prompt log-probabilities for a prompt of {len(ids)} tokens")
        echoed = choice.get("prompt_token_ids")
        if isinstance(echoed, list) and echoed != ids:
            raise self._missing("scored other prompt tokens than the ones sent")
        return rows

    # -- token ids ---------------------------------------------------------------------------------------------
    def _tokenize_chat(self, messages: list[dict[str, str]], generation_prompt: bool, kwargs=()) -> list[int]:
        body: dict[str, Any] = {"model": self.lm.model, "messages": messages,
                                "add_generation_prompt": generation_prompt}  # fmt: skip
        if kwargs:
            body["chat_template_kwargs"] = dict(kwargs)
        return self._tokens(self.lm._post(body, self.tokenize_url))

    def _tokenize_text(self, text: str) -> list[int]:
        if not text:
            return []
        body = {"model": self.lm.model, "prompt": text, "add_special_tokens": False}
        return self._tokens(self.lm._post(body, self.tokenize_url))

    def _tokens(self, data: dict[str, Any]) -> list[int]:
        tokens = data.get("tokens")
        # Every input here renders to some tokens: none means the server read another field than the one sent.
        if not isinstance(tokens, list) or not tokens or not all(isinstance(t, int) for t in tokens):
            raise self._missing(f"{self.tokenize_url} answered without token ids: {str(data)[:160]}")
        if isinstance(data.get("max_model_len"), int):
            self._max_model_len = data["max_model_len"]
        return tokens

    def _end_turn_id(self) -> int:
        """The token the chat template puts right after an assistant message's text (hf: the tokenizer's
        end-of-turn token, which chat templates end a turn with)."""
        if self._end_turn is None:
            messages, text = PROBE.message_dicts, PROBE.continuation
            turn = self._tokenize_chat([*messages, {"role": "assistant", "content": text}], False)
            at = _find_last(turn, self._tokenize_text(text))
            if at is None or at >= len(turn):
                raise self._missing("renders an assistant turn in which its text's own tokens cannot be found")
            self._end_turn = turn[at]
        return self._end_turn

    # -- helpers -----------------------------------------------------------------------------------------------
    def _map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """`fn` over `items` on the backend's bounded pool, in order; the first failure is raised after all end."""
        _, pool = self.lm._open()
        futures = [pool.submit(fn, item) for item in items]
        out: list[R] = []
        errors: list[BackendError] = []
        for fut in futures:
            try:
                out.append(fut.result())
            except BackendError as exc:
                errors.append(exc)
        if errors:
            raise errors[0]
        return out

    def _missing(self, what: str) -> MissingLogprobs:
        return MissingLogprobs(f"openai backend: the server at {self.lm.base_url} {what}")


def _top(row: dict[str, Any], k: int) -> list[tuple[int, float]]:
    """The k likeliest entries of one position. The scored token is in the row even when it ranks below k; its
    rank sorts it after an equally likely top-k entry."""
    entries = [
        (int(tid), float(e["logprob"]), e.get("rank") if isinstance(e.get("rank"), int) else 0)
        for tid, e in row.items()
        if isinstance(e, dict) and isinstance(e.get("logprob"), int | float)
    ]
    entries.sort(key=lambda e: (-e[1], e[2]))
    return [(tid, lp) for tid, lp, _ in entries[:k]]


def _find_last(haystack: list[int], needle: list[int]) -> int | None:
    """The index just past the last occurrence of `needle` in `haystack`, or None."""
    for start in range(len(haystack) - len(needle), -1, -1):
        if haystack[start : start + len(needle)] == needle:
            return start + len(needle)
    return None
