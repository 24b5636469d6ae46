"""Any OpenAI-compatible chat-completions server (vLLM, llama.cpp, `transformers serve`, hosted APIs).

Requests run concurrently on a bounded thread pool sharing one `httpx.Client`. Transient failures (429,
500, 502, 503, 504, timeouts, refused or dropped connections) are retried with exponential backoff and
jitter, honouring `Retry-After`; any other HTTP error fails at once with the server's message. Servers do
not all honour `n` (llama.cpp and `transformers serve` return one choice), so when fewer choices come back
the backend asks again for the rest. A choice without content is an error, never an empty string.

Scoring (teacher-forced log-probabilities of a given answer) works where the server returns prompt
log-probabilities the way vLLM does; the first need of it probes the server once (`robustqa.lm.openai_scoring`),
and a server that cannot is refused on one line naming the model, the server and what it lacks.
"""

from __future__ import annotations

import email.utils
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from robustqa.errors import BackendError, ConfigError

from .base import LM, ChatRequest, Completion, Score, ScoreRequest

TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})


class PartialBatchError(BackendError):
    """Some requests of a batch failed for good. `completed` maps the batch index of each request that did not
    fail to its Completion, so a cache can keep them."""

    def __init__(self, message: str, completed: dict[int, Completion]) -> None:
        super().__init__(message)
        self.completed = completed


class RefusedRequest(BackendError):
    """The server answered with an HTTP error that is not retried (a 4xx other than 429): `url`, `status` and the
    server's own `server_message` let a capability probe tell "this server cannot" from "this server is down"."""

    def __init__(self, message: str, url: str, status: int, server_message: str) -> None:
        super().__init__(message)
        self.url = url
        self.status = status
        self.server_message = server_message


class _Transient(Exception):
    """A failure worth retrying; `retry_after` is the server's requested wait in seconds, if it gave one."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class OpenAILM(LM):
    backend = "openai"

    def __init__(
        self,
        base_url: str | None = None,
        model: str | None = None,
        api_key_env: str | None = "OPENAI_API_KEY",
        concurrency: int = 8,
        timeout: float = 60.0,
        max_retries: int = 6,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        extra_body: dict[str, Any] | None = None,
        model_id: str | None = None,
    ) -> None:
        super().__init__()
        if not base_url:
            raise ConfigError("openai backend: base_url is required, e.g. http://127.0.0.1:8000/v1")
        if not model:
            raise ConfigError("openai backend: model (the served model name) is required")
        if concurrency < 1 or max_retries < 0:
            raise ConfigError(
                f"openai backend: need concurrency >= 1, max_retries >= 0 (got {concurrency}, {max_retries})"
            )
        self.base_url = base_url.rstrip("/")
        self.url = f"{self.base_url}/chat/completions"
        self.model = model
        self.model_id = model_id or model
        self.api_key_env = api_key_env
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.extra_body = dict(extra_body or {})
        self.stats = {"requests": 0, "retries": 0, "failures": 0, "reasks": 0}
        self._stats_lock = threading.Lock()
        self._client: httpx.Client | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._open_lock = threading.Lock()
        from .openai_scoring import PromptLogprobScorer  # it imports this module's errors

        self._scorer = PromptLogprobScorer(self)
        self._probe_lock = threading.Lock()
        self._probed = False
        self._problem: str | None = None

    # -- scoring (robustqa.lm.openai_scoring): probed once, on first need ------------------------------------
    @property
    def can_score(self) -> bool:  # type: ignore[override]
        return self.scoring_problem() is None

    def scoring_problem(self) -> str | None:
        """None when the server scores continuations, else what it lacks, in a few words. The first call asks the
        server (one small scoring request) and the answer is kept; a server that cannot be reached raises."""
        with self._probe_lock:
            if not self._probed:
                self._problem = self._scorer.probe()
                self._probed = True
            return self._problem

    def scoring_unsupported_reason(self) -> str:
        return (
            f"the openai backend ({self.model_id} at {self.base_url}) cannot score continuations: "
            f"{self.scoring_problem() or 'no reason given'}; scoring needs a vLLM-compatible server (chat messages "
            "on /tokenize, prompt_logprobs on /v1/completions); else use --backend hf or ct2 with a local copy of "
            "the model, or -p scoring=off"
        )

    def _score(self, requests: list[ScoreRequest]) -> list[Score]:
        return self._scorer.score(requests)

    def _count(self, key: str) -> None:
        with self._stats_lock:
            self.stats[key] += 1

    def _open(self) -> tuple[httpx.Client, ThreadPoolExecutor]:
        with self._open_lock:
            if self._client is None:
                headers = {}
                key = os.environ.get(self.api_key_env) if self.api_key_env else None
                if key:  # local servers need none
                    headers["Authorization"] = f"Bearer {key}"
                limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
                self._client = httpx.Client(headers=headers, timeout=self.timeout, limits=limits)
                self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="robustqa-openai")
            return self._client, self._pool  # type: ignore[return-value]

    # -- the batch -------------------------------------------------------------------------------------------
    def _generate(self, requests: list[ChatRequest]) -> list[Completion]:
        _, pool = self._open()
        futures = [pool.submit(self._complete, req) for req in requests]
        completed: dict[int, Completion] = {}
        errors: list[str] = []
        for i, fut in enumerate(futures):  # wait for all, so finished work is not thrown away
            try:
                completed[i] = fut.result()
            except BackendError as exc:
                errors.append(str(exc))
        if errors:
            more = f" (and {len(errors) - 1} more failed requests)" if len(errors) > 1 else ""
            raise PartialBatchError(errors[0] + more, completed)
        return [completed[i] for i in range(len(requests))]

    def _complete(self, req: ChatRequest) -> Completion:
        p = req.params
        texts: list[str] = []
        prompt_tokens = completion_tokens = 0
        while len(texts) < p.n:
            want = p.n - len(texts)
            body: dict[str, Any] = {
                "model": self.model,
                "messages": req.message_dicts,
                "n": want,
                "temperature": p.temperature,
                "max_tokens": p.max_tokens,
                "top_p": p.top_p,
            }
            if p.chat_template_kwargs:
                body["chat_template_kwargs"] = dict(p.chat_template_kwargs)
            if p.seed is not None:
                # A re-ask with the same seed would repeat the first samples; shift it deterministically.
                body["seed"] = p.seed + len(texts)
            if texts:
                self._count("reasks")
            data = self._post({**self.extra_body, **body})
            choices = data.get("choices")
            if not isinstance(choices, list) or not choices:
                raise self._failed(f"the response from {self.url} has no choices: {str(data)[:300]}")
            for choice in choices[:want]:
                content = (choice.get("message") or {}).get("content") if isinstance(choice, dict) else None
                if not isinstance(content, str):
                    reason = choice.get("finish_reason") if isinstance(choice, dict) else None
                    raise self._failed(f"{self.url} returned a choice without text content (finish_reason={reason!r})")
                texts.append(content)  # raw: callers decide what to strip
            usage = data.get("usage") or {}
            prompt_tokens += int(usage.get("prompt_tokens") or 0)
            completion_tokens += int(usage.get("completion_tokens") or 0)
        return Completion(texts, prompt_tokens, completion_tokens)

    def _failed(self, message: str) -> BackendError:
        self._count("failures")
        return BackendError(f"openai backend: {message}")

    # -- one HTTP call, with retries -------------------------------------------------------------------------
    def _post(self, body: dict[str, Any], url: str | None = None) -> dict[str, Any]:
        """POST `body` as JSON to `url` (default: chat completions) and return the JSON object it answers."""
        url = url or self.url
        client, _ = self._open()
        last = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                self._count("retries")
            self._count("requests")
            try:
                return self._post_once(client, body, url)
            except _Transient as exc:
                last = str(exc)
                if attempt < self.max_retries:
                    time.sleep(self._delay(attempt, exc.retry_after))
        raise self._failed(f"POST {url} failed after {self.max_retries + 1} tries; last error: {last}")

    def _post_once(self, client: httpx.Client, body: dict[str, Any], url: str) -> dict[str, Any]:
        try:
            resp = client.post(url, json=body)
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise self._failed(f"bad base_url {self.base_url!r}: {exc}") from exc
        except httpx.TimeoutException as exc:
            raise _Transient(f"timed out after {self.timeout}s ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:  # refused, reset, dropped mid-response
            raise _Transient(f"{type(exc).__name__}: {exc}") from exc
        if resp.status_code in TRANSIENT_STATUS:
            raise _Transient(f"HTTP {resp.status_code}: {_server_message(resp)}", _retry_after(resp))
        if resp.status_code >= 400:
            said = _server_message(resp)
            self._count("failures")
            raise RefusedRequest(
                f"openai backend: {url} answered HTTP {resp.status_code} (not retried): {said}",
                url,
                resp.status_code,
                said,
            )
        try:
            data = resp.json()
        except ValueError as exc:
            raise self._failed(f"{url} answered HTTP {resp.status_code} with non-JSON: {resp.text[:300]!r}") from exc
        if not isinstance(data, dict):
            raise self._failed(f"{url} answered with JSON that is not an object: {str(data)[:300]}")
        return data

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, max(self.backoff_max, 60.0))
        # Full jitter keeps many clients that failed together from retrying together.
        return min(self.backoff_max, self.backoff_base * 2**attempt) * random.uniform(0.5, 1.0)

    def close(self) -> None:
        with self._open_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
            if self._client is not None:
                self._client.close()
                self._client = None


def _server_message(resp: httpx.Response) -> str:
    try:
        data = resp.json()
    except ValueError:
        return resp.text[:500] or "(empty body)"
    if isinstance(data, dict):
        err = data.get("error", data.get("detail", data))
        if isinstance(err, dict):
            return str(err.get("message", err))[:500]
        return str(err)[:500]
    return str(data)[:500]


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:  # the other form: an HTTP date
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
