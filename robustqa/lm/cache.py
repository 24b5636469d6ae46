"""A persistent response cache in front of any backend, so a re-run or a resumed run pays only for new
requests.

The key is the SHA-256 of (backend, model_id, messages, every generation parameter including n and seed),
so a change to any of them is a miss. Hits come back with `cached=True`; misses go to the inner backend in
one batch, and its answers are committed as soon as that batch returns (a killed run keeps them). When a
batch fails part way (`PartialBatchError`), the requests that did finish are still stored before the error
propagates. Teacher-forced scores (`score`) are cached the same way, keyed by the whole score request.
SQLite in WAL mode lets several processes share one file; a lock makes one instance safe across
threads.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from robustqa.errors import BackendError, ConfigError

from .base import LM, ChatRequest, Completion, Score, ScoreRequest

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    backend TEXT NOT NULL,
    model_id TEXT NOT NULL,
    texts TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    created REAL NOT NULL
)
"""
# Teacher-forced scores (robustqa.teacher_logprobs' top-k rows are what a killed run would otherwise recompute).
_SCORE_SCHEMA = """
CREATE TABLE IF NOT EXISTS scores (
    key TEXT PRIMARY KEY,
    backend TEXT NOT NULL,
    model_id TEXT NOT NULL,
    score TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def score_key(backend: str, model_id: str, request: ScoreRequest) -> str:
    payload = {"backend": backend, "model_id": model_id, "request": asdict(request)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def cache_key(backend: str, model_id: str, request: ChatRequest) -> str:
    params = asdict(request.params)
    if not params["chat_template_kwargs"]:  # absent unless set, so keys written before the field existed still hit
        del params["chat_template_kwargs"]
    payload = {
        "backend": backend,
        "model_id": model_id,
        "messages": [list(m) for m in request.messages],
        "params": params,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


class CachedLM(LM):
    def __init__(self, inner: LM, path: str | Path) -> None:
        super().__init__()
        self.inner = inner
        self.backend = inner.backend
        self.model_id = inner.model_id
        self.path = Path(path)
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)
            self._db.execute(_SCORE_SCHEMA)
            self._db.commit()
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"response cache {self.path}: cannot open it as SQLite: {exc}") from exc

    @property
    def can_score(self) -> bool:  # type: ignore[override]
        return self.inner.can_score

    def scoring_unsupported_reason(self) -> str:
        return self.inner.scoring_unsupported_reason()

    def _score(self, requests: list[ScoreRequest]) -> list[Score]:
        # Cached like completions (a rerun of a killed batch does not pay for its teacher logprobs twice).
        keys = [score_key(self.backend, self.model_id, r) for r in requests]
        with self._lock:
            rows = [self._db.execute("SELECT score FROM scores WHERE key = ?", (k,)).fetchone() for k in keys]
        found: list[Score | None] = [None if row is None else Score(**json.loads(row[0])) for row in rows]
        missing = [i for i, s in enumerate(found) if s is None]
        with self._lock:
            self.hits += len(requests) - len(missing)
            self.misses += len(missing)
        if missing:
            fresh = self.inner.score([requests[i] for i in missing])
            now = time.time()
            stored = [
                (keys[i], self.backend, self.model_id, json.dumps(asdict(s)), now)
                for i, s in zip(missing, fresh, strict=True)
            ]
            with self._lock:
                self._db.executemany("INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?, ?)", stored)
                self._db.commit()
            for i, s in zip(missing, fresh, strict=True):
                found[i] = s
        return [s for s in found if s is not None]

    def __getattr__(self, name: str) -> Any:
        # Backend-specific extras (tokenizer, stats, load) pass through to the wrapped backend.
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def _lookup(self, key: str) -> Completion | None:
        row = self._db.execute(
            "SELECT texts, prompt_tokens, completion_tokens FROM responses WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            return None
        return Completion(json.loads(row[0]), int(row[1]), int(row[2]), cached=True)

    def _store(self, items: list[tuple[str, Completion]]) -> None:
        now = time.time()
        rows = [
            (
                k,
                self.backend,
                self.model_id,
                json.dumps(c.texts, ensure_ascii=False),
                c.prompt_tokens,
                c.completion_tokens,
                now,
            )
            for k, c in items
        ]
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            self._db.commit()

    def _generate(self, requests: list[ChatRequest]) -> list[Completion]:
        keys = [cache_key(self.backend, self.model_id, r) for r in requests]
        with self._lock:
            found = [self._lookup(k) for k in keys]
        missing = [i for i, c in enumerate(found) if c is None]
        with self._lock:
            self.hits += len(requests) - len(missing)
            self.misses += len(missing)
        if missing:
            try:
                fresh = self.inner.generate([requests[i] for i in missing])
            except BackendError as exc:
                done = getattr(exc, "completed", None) or {}
                self._store([(keys[missing[j]], c) for j, c in done.items()])
                raise
            self._store([(keys[i], c) for i, c in zip(missing, fresh, strict=True)])
            for i, c in zip(missing, fresh, strict=True):
                found[i] = c
        return [c for c in found if c is not None]

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        self.inner.close()
        with self._lock:
            self._db.close()
