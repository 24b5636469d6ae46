"""Teacher logprobs: the answering model's token ids and top-k log-probabilities of each kept record's answer.

Cartridges trains by context distillation (`targets="logits"`): per assistant turn it needs the teacher's token
ids and, at every position, the top-k log-probabilities the teacher gave with the document in its context.
robustqa computes them as a post-step the runner applies to kept records, teacher-forced on the record's final
answer with the context the answering model saw, so any strategy's answer (a majority vote, a retry) gets them.

The context comes from the record itself: `meta["answer_prompt"]` holds the system prompt the answerer was
shown (and its chat-template settings, e.g. `enable_thinking`); the user turn is the record's question. A record
without it cannot be scored, and the error names it.

Storage (`meta["teacher"]`), compact and self-describing, so `--resume`, `merge` and exports carry it with the
record: the top-k rows are cut as Cartridges cuts them (`TopLogprobs.flatten`: per position the leading
entries until their probability mass reaches `min_prob_mass`, all k when it never does), then the answer's token
ids (int32), the kept count per position (uint8), the kept ids (int32) and log-probabilities (float32, exact to
the model's float32 output) are concatenated little-endian, zlib-compressed and base64-encoded.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ConfigError, InputError
from .lm.base import LM, Score, ScoreRequest

FORMAT = "robustqa.teacher/1"
MAX_TOP_K = 255  # the kept count per position is stored in one byte


@dataclass(frozen=True)
class TeacherSettings:
    """`top_k` log-probabilities per answer token, cut at `min_prob_mass` (Cartridges: 20 and 0.99)."""

    top_k: int
    min_prob_mass: float = 0.99

    def check(self) -> None:
        if not 1 <= self.top_k <= MAX_TOP_K:
            raise ConfigError(f"teacher_logprobs must be between 1 and {MAX_TOP_K}, got {self.top_k}")
        if not 0.0 < self.min_prob_mass <= 1.0:
            raise ConfigError(f"min_prob_mass must be in (0, 1], got {self.min_prob_mass}")

    def describe(self) -> dict[str, Any]:
        return {"top_k": self.top_k, "min_prob_mass": self.min_prob_mass}


@dataclass
class TeacherLogprobs:
    """Decoded `meta["teacher"]`: Cartridges' `FlatTopLogprobs` fields plus the answer's token ids."""

    token_ids: np.ndarray  # int64 [T]: the answer's tokens as the teacher read them (end of turn included)
    token_idx: np.ndarray  # int64 [N]: the position each kept entry belongs to
    token_id: np.ndarray  # int64 [N]
    logprobs: np.ndarray  # float32 [N], natural log
    shape: tuple[int, int]  # (T, top_k)
    model: str = ""


def require_teacher(lm: LM, settings: TeacherSettings) -> None:
    """Fail before any work, on one line, when the backend cannot score (naming the server where there is one)."""
    settings.check()
    if lm.can_score:
        return
    server = getattr(lm, "base_url", None) or getattr(getattr(lm, "inner", None), "base_url", None)
    where = f"the server at {server}" if server else f"the {lm.backend} backend ({lm.model_id})"
    problem = getattr(lm, "scoring_problem", None)  # what a server lacks, where the backend asked it
    why = f" ({problem()})" if callable(problem) and problem() else ""
    raise ConfigError(
        f"--teacher-logprobs {settings.top_k}: {where} cannot return teacher-forced top-k log-probabilities of a "
        f"given answer{why}; serve the model with vLLM, or compute them with --backend hf on the same model"
    )


def answer_messages(meta: dict[str, Any], question: str, record_id: str) -> tuple[list[dict[str, str]], dict]:
    """The messages (system, user) the answering model saw, and its chat-template settings."""
    prompt = meta.get("answer_prompt")
    if not isinstance(prompt, dict) or not isinstance(prompt.get("system"), str):
        raise InputError(
            f"record {record_id}: no meta.answer_prompt (the answering model's system prompt), so its teacher "
            "logprobs cannot be computed; regenerate it with this version of robustqa"
        )
    messages = [{"role": "system", "content": prompt["system"]}, {"role": "user", "content": question}]
    return messages, dict(prompt.get("chat_template_kwargs") or {})


def score_records(records: Sequence[Any], lm: LM, settings: TeacherSettings) -> int:
    """Put `meta["teacher"]` on every kept record (QARecord objects), in one scoring batch; returns how many."""
    kept = [r for r in records if r.kept]
    if not kept:
        return 0
    requests = []
    for rec in kept:
        messages, template_kwargs = answer_messages(rec.meta, rec.question, rec.id)
        requests.append(_request(messages, rec.assistant_text, settings.top_k, template_kwargs))
    for rec, score in zip(kept, lm.score(requests), strict=True):
        rec.meta["teacher"] = encode(score, settings, lm.model_id)
    return len(kept)


def _request(messages: list[dict[str, str]], answer: str, top_k: int, template_kwargs: dict) -> ScoreRequest:
    kwargs = tuple(sorted(template_kwargs.items()))
    return ScoreRequest.of(messages, answer, end_turn=True, top_k=top_k, chat_template_kwargs=kwargs)


# -- the mass cut (Cartridges' TopLogprobs.flatten) ----------------------------------------------------------


def flatten(top_ids: np.ndarray, top_logprobs: np.ndarray, min_prob_mass: float) -> tuple[np.ndarray, ...]:
    """(token_idx, token_id, logprobs) of the leading entries per row whose mass first reaches the threshold."""
    top_ids = np.asarray(top_ids)
    top_logprobs = np.asarray(top_logprobs)
    if top_ids.shape != top_logprobs.shape or top_ids.ndim != 2:
        raise ValueError(f"top ids {top_ids.shape} and logprobs {top_logprobs.shape} must be equal 2-D shapes")
    rows, k = top_ids.shape
    reached = np.cumsum(np.exp(top_logprobs.astype(np.float64)), axis=1) >= min_prob_mass
    keep = np.where(reached.any(axis=1), reached.argmax(axis=1) + 1, k)  # entries kept per row
    mask = np.arange(k)[None, :] < keep[:, None]
    token_idx = np.nonzero(mask)[0].astype(np.int64)
    return token_idx, top_ids[mask].astype(np.int64), top_logprobs[mask].astype(np.float32)


# -- encoding ------------------------------------------------------------------------------------------------


def encode(score: Score, settings: TeacherSettings, model: str = "") -> dict[str, Any]:
    if score.top_ids is None or score.top_logprobs is None:
        raise ValueError("teacher logprobs need a score with top-k rows (ScoreRequest.top_k > 0)")
    t = len(score.token_ids)
    ids = np.asarray(score.top_ids, dtype=np.int64).reshape(t, settings.top_k)
    lps = np.asarray(score.top_logprobs, dtype=np.float32).reshape(t, settings.top_k)
    token_idx, token_id, logprobs = flatten(ids, lps, settings.min_prob_mass)
    counts = np.bincount(token_idx, minlength=t).astype(np.uint8)
    payload = b"".join(
        (
            np.asarray(score.token_ids, dtype="<i4").tobytes(),
            counts.tobytes(),
            token_id.astype("<i4").tobytes(),
            logprobs.astype("<f4").tobytes(),
        )
    )
    return {
        "format": FORMAT,
        "model": model,
        "top_k": settings.top_k,
        "min_prob_mass": settings.min_prob_mass,
        "n_tokens": t,
        "n_entries": int(len(token_id)),
        "data": base64.b64encode(zlib.compress(payload, 6)).decode("ascii"),
    }


def decode(teacher: dict[str, Any]) -> TeacherLogprobs:
    if not isinstance(teacher, dict) or teacher.get("format") != FORMAT:
        raise InputError(f"not a {FORMAT} teacher entry: {str(teacher)[:80]!r}")
    t, n, k = int(teacher["n_tokens"]), int(teacher["n_entries"]), int(teacher["top_k"])
    raw = zlib.decompress(base64.b64decode(teacher["data"]))
    if len(raw) != 4 * t + t + 8 * n:
        raise InputError(f"teacher entry holds {len(raw)} bytes, expected {9 * t + 8 * n} for {t} tokens, {n} entries")
    token_ids = np.frombuffer(raw, "<i4", t, 0).astype(np.int64)
    counts = np.frombuffer(raw, np.uint8, t, 4 * t).astype(np.int64)
    token_id = np.frombuffer(raw, "<i4", n, 5 * t).astype(np.int64)
    logprobs = np.frombuffer(raw, "<f4", n, 5 * t + 4 * n).astype(np.float32)
    token_idx = np.repeat(np.arange(t, dtype=np.int64), counts)
    return TeacherLogprobs(token_ids, token_idx, token_id, logprobs, (t, k), str(teacher.get("model", "")))
