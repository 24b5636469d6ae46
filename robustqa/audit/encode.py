"""Pass over one QA dataset: stream its rows in chunks and keep only what the metrics need.

Per row: the resolved document, target offsets, the query vector (question + answer), the answer's binary word
vector and distinct-word count (groundedness), the answer's numbers and proper names (invented specifics), payload
checks (done here, so answer texts are never all held), group labels, and the question text (needed by the
near-duplicate search).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from ..specifics import specifics
from ..text_match import contains_answer
from .config import AuditConfig
from .corpus import CorpusIndex
from .payloads import NgramMatcher
from .records import AuditRow, ReadStats, iter_rows


@dataclass
class EncodedDataset:
    """Everything the metrics need about one dataset, row i being the i-th audited row in generation order."""

    name: str
    path: str
    stats: ReadStats
    doc: np.ndarray
    group: np.ndarray
    groups: list[tuple[int, ...]]
    target_start: np.ndarray
    target_end: np.ndarray
    context_start: np.ndarray
    context_end: np.ndarray
    query: sp.csr_matrix
    query_counts: sp.csr_matrix
    answer_words: sp.csr_matrix
    answer_distinct: np.ndarray
    payload_hit: np.ndarray
    copied_hit: np.ndarray
    strategy: list[str | None]
    seed_prompt: list[str | None]
    questions: list[str]
    answer_specifics: list[tuple[str, ...]]
    question_source: list[str | None]
    answer_source: list[str | None]
    self_answering: np.ndarray  # the question contains its own answer
    self_answering_examples: list[tuple[str, str]]
    lines: np.ndarray
    resolution: Counter = field(default_factory=Counter)

    @property
    def n(self) -> int:
        return len(self.doc)


def encode_dataset(
    path: str | Path,
    corpus: CorpusIndex,
    config: AuditConfig,
    payloads: NgramMatcher | None = None,
    flagged: NgramMatcher | None = None,
    name: str | None = None,
) -> EncodedDataset:
    stats = ReadStats()
    resolution: Counter = Counter()
    group_ids: dict[tuple[int, ...], int] = {}
    parts: dict[str, list] = {
        k: [] for k in ("doc", "group", "ts", "te", "cs", "ce", "q", "qc", "a", "ad", "pay", "copy", "line")
    }
    strategy: list[str | None] = []
    seed_prompt: list[str | None] = []
    questions: list[str] = []
    answer_specifics: list[tuple[str, ...]] = []
    question_source: list[str | None] = []
    answer_source: list[str | None] = []
    self_answering: list[bool] = []
    self_examples: list[tuple[str, str]] = []
    for chunk in iter_rows(path, config.chunk_size, config.include_rejected, stats):
        doc, group, ts, te, cs, ce = _resolve(chunk, corpus, group_ids, resolution)
        q_counts, _ = corpus.encode([r.question for r in chunk])
        a_counts, a_distinct = corpus.encode([r.answer for r in chunk])
        q_vec = corpus.sentence_idf.transform(q_counts)
        a_vec = corpus.sentence_idf.transform(a_counts)
        query = normalize(q_vec + config.query_answer_weight * a_vec).astype(np.float32)
        a_bin = a_counts.copy()
        a_bin.data[:] = 1.0
        answers = [r.answer for r in chunk]
        parts["doc"].append(doc)
        parts["group"].append(group)
        parts["ts"].append(ts)
        parts["te"].append(te)
        parts["cs"].append(cs)
        parts["ce"].append(ce)
        parts["q"].append(query.tocsr())
        parts["qc"].append((q_counts + a_counts).tocsr())
        parts["a"].append(a_bin)
        parts["ad"].append(a_distinct)
        parts["pay"].append(_matches(payloads, answers))
        parts["copy"].append(_matches(flagged, answers))
        parts["line"].append(np.array([r.line for r in chunk], dtype=np.int64))
        strategy.extend(r.strategy for r in chunk)
        seed_prompt.extend(r.seed_prompt for r in chunk)
        questions.extend(r.question for r in chunk)
        answer_specifics.extend(tuple(specifics(a)) for a in answers)
        question_source.extend(r.question_source for r in chunk)
        answer_source.extend(r.answer_source for r in chunk)
        for r in chunk:
            self_answering.append(contains_answer(r.question, r.answer))
            if self_answering[-1] and len(self_examples) < 5:
                self_examples.append((r.question, r.answer))

    width = len(corpus.vocabulary)
    groups = [g for g, _ in sorted(group_ids.items(), key=lambda kv: kv[1])]
    return EncodedDataset(
        name=name or Path(path).stem,
        path=str(path),
        stats=stats,
        doc=_cat(parts["doc"], np.int64),
        group=_cat(parts["group"], np.int64),
        groups=groups,
        target_start=_cat(parts["ts"], np.int64),
        target_end=_cat(parts["te"], np.int64),
        context_start=_cat(parts["cs"], np.int64),
        context_end=_cat(parts["ce"], np.int64),
        query=_stack(parts["q"], width),
        query_counts=_stack(parts["qc"], width),
        answer_words=_stack(parts["a"], width),
        answer_distinct=_cat(parts["ad"], np.int32),
        payload_hit=_cat(parts["pay"], np.int64),
        copied_hit=_cat(parts["copy"], np.int64),
        strategy=strategy,
        seed_prompt=seed_prompt,
        questions=questions,
        answer_specifics=answer_specifics,
        question_source=question_source,
        answer_source=answer_source,
        self_answering=np.array(self_answering, dtype=bool),
        self_answering_examples=self_examples,
        lines=_cat(parts["line"], np.int64),
        resolution=resolution,
    )


def _resolve(
    chunk: list[AuditRow], corpus: CorpusIndex, group_ids: dict, resolution: Counter
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each row's document (or -1), candidate group (or -1), usable target and context offsets (or -1)."""
    n = len(chunk)
    cs = np.full(n, -1, dtype=np.int64)
    ce = np.full(n, -1, dtype=np.int64)
    doc = np.full(n, -1, dtype=np.int64)
    group = np.full(n, -1, dtype=np.int64)
    ts = np.full(n, -1, dtype=np.int64)
    te = np.full(n, -1, dtype=np.int64)
    for i, row in enumerate(chunk):
        match = corpus.resolve(row.doc_key)
        if row.doc_key is None:
            resolution["no_document_name"] += 1
        elif match.unknown_name:
            resolution["unknown_document_name"] += 1
        elif match.group is not None:
            resolution["document_group"] += 1
            group[i] = group_ids.setdefault(match.group, len(group_ids))
        else:
            resolution["document_by_name"] += 1
        doc[i] = match.doc
        if row.context is not None and match.doc >= 0 and row.context[1] <= len(corpus.documents[match.doc].text):
            cs[i], ce[i] = row.context
        if row.target is None:
            continue
        if match.doc < 0:
            resolution["target_without_document"] += 1
            continue
        start, end = row.target
        text = corpus.documents[match.doc].text
        if end > len(text):
            resolution["target_out_of_range"] += 1
        elif row.target_text is not None and text[start:end].strip() != row.target_text.strip():
            resolution["target_text_mismatch"] += 1
        else:
            ts[i], te[i] = start, end
            resolution["target_used"] += 1
    return doc, group, ts, te, cs, ce


def _matches(matcher: NgramMatcher | None, answers: list[str]) -> np.ndarray:
    if not matcher:
        return np.full(len(answers), -1, dtype=np.int64)
    return np.array(matcher.match_all(answers), dtype=np.int64)


def _cat(parts: list[np.ndarray], dtype) -> np.ndarray:
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)


def _stack(parts: list[sp.csr_matrix], width: int) -> sp.csr_matrix:
    return sp.vstack(parts, format="csr") if parts else sp.csr_matrix((0, width), dtype=np.float32)
