"""Core data types: documents, spans, work items and QA records.

Every QA record carries its provenance (document, target span offsets, strategy, config fingerprint, model, seed)
and every filter decision with score and reason, so nothing is dropped or changed silently.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Document:
    """A source document. `id` is unique within a corpus; `meta` holds loader facts (path, format, ...)."""

    id: str
    text: str
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Span:
    """A half-open character range of a document: `doc.text[start:end] == text` always holds."""

    doc_id: str
    start: int
    end: int
    text: str
    kind: str = "sentence"  # sentence | paragraph | section | chunk | ...
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class AnswerSpan:
    """An answer that is a span of its document: `doc.text[start:end] == text`. `kind` says what sort of span
    it is (number, date, name, phrase, clause, sentence)."""

    start: int
    end: int
    text: str
    kind: str = "phrase"

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "text": self.text, "kind": self.kind}


@dataclass
class Decision:
    """One filter's verdict on a span or a QA pair: the score, whether it was kept, and why."""

    filter: str
    score: float | None
    kept: bool
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SpanFlag:
    """A span a span filter judged unfit: not eligible as a target, and masked from what the models see."""

    start: int
    end: int
    filter: str
    score: float
    reason: str

    def decision(self) -> Decision:
        # The pair is kept; the decision records that this span was removed from the model's view.
        return Decision(self.filter, self.score, True, f"masked [{self.start},{self.end}): {self.reason}")


@dataclass
class WorkItem:
    """One planned QA pair, fixed before any model call so runs are resumable and shardable.

    `id` is deterministic in (strategy fingerprint, document, index), so a resumed run skips exactly the items that
    already reached the output. `context` is what the models are shown; `target` (optional) is the span the question
    must be about.
    """

    id: str
    doc_id: str
    index: int
    seed: int
    context: tuple[int, int]
    target: Span | None = None
    # What the planner wants its records to say (stratum, seed prompt, ...): copied into the record's meta.
    meta: dict[str, Any] = field(default_factory=dict)
    # The flagged spans inside `context`, cut from what the models see (set by the composed strategy's plan).
    masked: tuple[SpanFlag, ...] = ()
    # The run's bookkeeping (set by the runner): its seed and fingerprint, which every record carries.
    run_seed: int | None = None
    fingerprint: str | None = None


@dataclass
class QARecord:
    """One generated QA pair with full provenance. `kept` is False for pairs a filter rejected."""

    id: str
    doc_id: str
    question: str
    answer: str
    target: dict[str, Any] | None
    context: dict[str, int]
    strategy: str
    model: str
    seed: int
    fingerprint: str
    decisions: list[Decision] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    # Where the answer lies in the document when it is a span of it (extractive answers): groundedness by offsets.
    answer_span: dict[str, Any] | None = None
    # The assistant turn when it is more than the answer (the answer, then its evidence: robustqa.response).
    response: str | None = None

    @property
    def kept(self) -> bool:
        return all(d.kept for d in self.decisions)

    @property
    def assistant_text(self) -> str:
        return self.answer if self.response is None else self.response

    @property
    def messages(self) -> list[dict[str, str]]:
        # Closed book: the document is not in the prompt; the student must learn the answer.
        return [{"role": "user", "content": self.question}, {"role": "assistant", "content": self.assistant_text}]

    def to_dict(self) -> dict[str, Any]:
        row = self._fields()
        if self.answer_span is not None:  # only extractive answers have one; other records stay as they were
            row["answer_span"] = self.answer_span
        return row

    def _fields(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "doc_id": self.doc_id,
            "question": self.question,
            "answer": self.answer,
            "messages": self.messages,
            "target": self.target,
            "context": self.context,
            "strategy": self.strategy,
            "model": self.model,
            "seed": self.seed,
            "fingerprint": self.fingerprint,
            "kept": self.kept,
            "decisions": [d.to_dict() for d in self.decisions],
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> QARecord:
        return cls(
            id=row["id"],
            doc_id=row["doc_id"],
            question=row["question"],
            answer=row["answer"],
            target=row.get("target"),
            context=row.get("context") or {},
            strategy=row.get("strategy", ""),
            model=row.get("model", ""),
            seed=int(row.get("seed", 0)),
            fingerprint=row.get("fingerprint", ""),
            decisions=[Decision(**d) for d in row.get("decisions", [])],
            meta=row.get("meta") or {},
            answer_span=row.get("answer_span"),
            response=_response_of(row),
        )


def _response_of(row: dict[str, Any]) -> str | None:
    """The assistant turn of a serialized record, where it differs from the answer (`messages` carries it)."""
    messages = row.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
        content = messages[-1].get("content")
        if isinstance(content, str) and content != row["answer"]:
            return content
    return None


def span_dict(span: Span | None) -> dict[str, Any] | None:
    return None if span is None else {"start": span.start, "end": span.end, "text": span.text, "kind": span.kind}


def stable_hash(*parts: Any, length: int = 16) -> str:
    """A short hash that is the same in every process and Python version (unlike hash())."""
    h = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8"))
    return h.hexdigest()[:length]


def stripped_text_hash(text: str, length: int = 16, chunk_chars: int = 1 << 20) -> str:
    """`stable_hash(text.strip())`, hashed a chunk at a time: no copy of a large text (200 MB) is made."""
    start, end = 0, len(text)
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    h = hashlib.sha256()
    for a in range(start, end, chunk_chars):
        h.update(text[a : min(end, a + chunk_chars)].encode("utf-8", "surrogatepass"))
    return h.hexdigest()[:length]


def derive_seed(*parts: Any) -> int:
    """A per-item seed derived from the run seed and the item's identity: no global random state."""
    return int(stable_hash(*parts, length=8), 16)
