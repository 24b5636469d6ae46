"""Reading QA datasets for the audit, streamed: robustqa records and foreign formats, normalised to
`AuditRow`.

Accepted rows (one JSON object per line):
- robustqa records (`QARecord.to_dict`): `doc_id`, `question`, `answer`, `target` {start, end, text} or null,
  `strategy`, `kept`, `meta.seed_prompt`, and `context` {start, end}: the window the question was written
  from, within which a record without a target is attributed first;
- foreign rows with `question` (or `query`, `instruction`, `prompt` as a string) and `answer` (or `response`,
  `output`, `completion` as a string, or SQuAD-style `answers`);
- chat rows: `messages` (or ShareGPT `conversations` with from/value), or TRL's conversational `prompt` /
  `completion` lists: the first user turn is the question, the first assistant turn after it the answer.

The document is named by `doc_id`, `document` or `title` when the row has one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robustqa.errors import InputError
from robustqa.io.jsonl import iter_jsonl

QUESTION_KEYS = ("question", "query", "instruction")
ANSWER_KEYS = ("answer", "response", "output")
DOC_KEYS = ("doc_id", "document", "title")
_USER_ROLES = {"user", "human"}
_ASSISTANT_ROLES = {"assistant", "gpt", "model", "bot"}


@dataclass(slots=True)
class AuditRow:
    """One QA pair as the audit sees it. `order` is its position among the audited rows (generation order)."""

    order: int
    line: int
    question: str
    answer: str
    doc_key: str | None = None
    target: tuple[int, int] | None = None
    target_text: str | None = None
    context: tuple[int, int] | None = None
    strategy: str | None = None
    seed_prompt: str | None = None
    question_source: str | None = None
    answer_source: str | None = None


@dataclass
class ReadStats:
    """What the reader saw: rows read, rows skipped because a filter rejected them (kept=false)."""

    rows: int = 0
    audited: int = 0
    skipped_rejected: int = 0


def iter_rows(
    path: str | Path, chunk_size: int = 4096, include_rejected: bool = False, stats: ReadStats | None = None
) -> Iterator[list[AuditRow]]:
    """Chunks of normalised rows in file order; InputError names the file and line of a bad row."""
    stats = stats if stats is not None else ReadStats()
    chunk: list[AuditRow] = []
    for lineno, obj in iter_jsonl(path):
        stats.rows += 1
        if obj.get("kept") is False and not include_rejected:
            stats.skipped_rejected += 1
            continue
        chunk.append(normalise_row(obj, order=stats.audited, where=f"{path}:{lineno}", line=lineno))
        stats.audited += 1
        if len(chunk) >= chunk_size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def normalise_row(obj: dict[str, Any], order: int, where: str, line: int = 0) -> AuditRow:
    question, answer = _question_answer(obj, where)
    meta = obj.get("meta") if isinstance(obj.get("meta"), dict) else {}
    target, target_text = _target(obj.get("target"), where)
    seed_prompt = meta.get("seed_prompt")
    strategy = obj.get("strategy")
    return AuditRow(
        order=order,
        line=line,
        question=question,
        answer=answer,
        doc_key=_doc_key(obj),
        target=target,
        target_text=target_text,
        context=_context(obj.get("context")),
        strategy=str(strategy) if strategy not in (None, "") else None,
        seed_prompt=str(seed_prompt) if seed_prompt not in (None, "") else None,
        question_source=_label(meta.get("question_source")),
        answer_source=_label(meta.get("answer_source")),
    )


def _label(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _question_answer(obj: dict[str, Any], where: str) -> tuple[str, str]:
    question = _first_string(obj, QUESTION_KEYS)
    if question is None and isinstance(obj.get("prompt"), str):
        question = obj["prompt"]
    answer = _first_string(obj, ANSWER_KEYS)
    if answer is None and isinstance(obj.get("completion"), str):
        answer = obj["completion"]
    if answer is None:
        answer = _squad_answer(obj.get("answers"))
    if question is None:
        turns = _turns(obj, where)
        if turns:
            question, turn_answer = _from_turns(turns, where)
            answer = answer if answer is not None else turn_answer
    if question is None:
        raise InputError(
            f"{where}: no question found: expected a 'question' field, 'messages' (or 'conversations'), "
            f"or TRL 'prompt'/'completion' turns"
        )
    return question, answer or ""


def _first_string(obj: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        if isinstance(obj.get(key), str):
            return obj[key]
    return None


def _squad_answer(answers: Any) -> str | None:
    if isinstance(answers, dict) and isinstance(answers.get("text"), list) and answers["text"]:
        return str(answers["text"][0])
    if isinstance(answers, list) and answers:
        first = answers[0]
        if isinstance(first, dict) and isinstance(first.get("text"), str):
            return first["text"]
        if isinstance(first, str):
            return first
    return None


def _turns(obj: dict[str, Any], where: str) -> list[dict[str, Any]] | None:
    for key in ("messages", "conversations"):
        if key in obj:
            if not isinstance(obj[key], list):
                raise InputError(f"{where}: '{key}' must be a list of turns")
            return obj[key]
    if isinstance(obj.get("prompt"), list):
        completion = obj.get("completion")
        return obj["prompt"] + (completion if isinstance(completion, list) else [])
    return None


def _from_turns(turns: list[Any], where: str) -> tuple[str | None, str | None]:
    question = answer = None
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise InputError(f"{where}: turn {i} is not an object")
        role = str(turn.get("role", turn.get("from", ""))).lower()
        content = turn.get("content", turn.get("value"))
        if isinstance(content, list):  # multimodal content parts: keep the text parts
            content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
        if not isinstance(content, str):
            continue
        if question is None and role in _USER_ROLES:
            question = content
        elif question is not None and role in _ASSISTANT_ROLES:
            answer = content
            break
    return question, answer


def _target(target: Any, where: str) -> tuple[tuple[int, int] | None, str | None]:
    if target is None:
        return None, None
    if not isinstance(target, dict):
        raise InputError(f"{where}: 'target' must be an object with start/end offsets or null")
    start, end = target.get("start"), target.get("end")
    ok = all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end))
    if not ok or start < 0 or end < start:
        raise InputError(f"{where}: 'target' needs integer offsets 0 <= start <= end, got {start!r}, {end!r}")
    text = target.get("text")
    return (start, end), text if isinstance(text, str) else None


def _context(context: Any) -> tuple[int, int] | None:
    """The window the question was written from (robustqa records), when it is a usable non-empty range."""
    if not isinstance(context, dict):
        return None
    start, end = context.get("start"), context.get("end")
    ok = all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end))
    return (start, end) if ok and 0 <= start < end else None


def _doc_key(obj: dict[str, Any]) -> str | None:
    for key in DOC_KEYS:
        value = obj.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
            return str(value)
    return None
