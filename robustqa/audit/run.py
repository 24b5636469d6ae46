"""The audit pipeline: index the corpus once, then per dataset stream, attribute and measure; return the
result.

Outputs in `out`: audit.json (schema in docs/audit.md), report.html (when the caller passes a `report` writer,
e.g. `robustqa.audit.report.write_report`; this module never imports the report) and attributions.jsonl (the
main dataset's attribution of every audited row, for inspection). They are written to temporary files and
renamed into place together once all are written, so a failure (a full disk) leaves the earlier audit's files
as they were, never a new one beside old ones.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robustqa.io.outputs import atomic_paths
from robustqa.types import Document

from . import metrics as M
from .attribution import METHODS, STATUS, Attribution, attribute
from .boilerplate import BoilerplateSpec, as_provider, span_filter_provider
from .config import AuditConfig
from .corpus import CorpusIndex
from .encode import EncodedDataset, encode_dataset
from .instructions import InstructionScorer
from .measure import Measured, measure
from .payloads import NgramMatcher

log = logging.getLogger(__name__)
SCHEMA = "robustqa.audit/1"


@dataclass
class AuditResult:
    """The audit.json content, plus what the report draws from (`robustqa.audit.report.write_report`)."""

    summary: dict
    corpus: CorpusIndex
    measured: list[Measured] = field(default_factory=list)
    config: AuditConfig = field(default_factory=AuditConfig)


def run_audit(
    qa: str | Path,
    documents: Sequence[Document],
    out: str | Path | None = None,
    compare: Sequence[str | Path] = (),
    boilerplate: BoilerplateSpec = None,
    boilerplate_source: str | None = None,
    instruction_scorer: InstructionScorer | None = None,
    instruction_filter: object | None = None,
    payloads: Sequence[str] | None = None,
    config: AuditConfig | None = None,
    names: Sequence[str] | None = None,
    report: Callable[[AuditResult, Path], None] | None = None,
) -> AuditResult:
    """Audit `qa` (and each `compare` dataset) against `documents`; with `out`, write audit.json and
    attributions.jsonl there, and with `report` (`robustqa.audit.report.write_report`) report.html, all three
    renamed into place together. Without `report` the caller may render the result itself.

    `boilerplate`: {doc id: [(start, end), ...]}, a span filter or a callable Document -> regions | None.
    `instruction_scorer`: a batched callable (list[str]) -> list[float] in [0, 1] (default: a built-in phrase
    heuristic). `instruction_filter`: instead, a span filter (`flag(doc)`, e.g. robustqa's instruction filter)
    or a callable Document -> regions, judging sentences in their document. `payloads`: canary strings or
    payload texts whose presence in an answer marks it as carrying an injection.
    """
    config = config or AuditConfig()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    corpus = CorpusIndex(
        documents,
        as_provider(boilerplate),
        instruction_scorer,
        config.instruction_threshold,
        config.boilerplate_majority,
        config.retrieval_max_df,
        config.workers,
        span_filter_provider(instruction_filter) if instruction_filter is not None else None,
    )
    timings["index_corpus"] = time.perf_counter() - t0
    payload_matcher = NgramMatcher(payloads, config.copy_ngram) if payloads else None
    flagged_ids = np.flatnonzero(corpus.instruction_like)
    flagged = NgramMatcher([corpus.sentence_text(s) for s in flagged_ids], config.copy_ngram)

    paths = [Path(qa), *map(Path, compare)]
    labels = list(names) if names else _labels(paths)
    measured, attributions = [], []
    for path, label in zip(paths, labels, strict=True):
        t = time.perf_counter()
        data = encode_dataset(path, corpus, config, payload_matcher, flagged, name=label)
        timings[f"read:{label}"] = time.perf_counter() - t
        t = time.perf_counter()
        att = attribute(
            corpus,
            data.doc,
            data.group,
            data.groups,
            data.target_start,
            data.target_end,
            data.context_start,
            data.context_end,
            data.query,
            data.query_counts,
            config.min_score,
        )
        timings[f"attribute:{label}"] = time.perf_counter() - t
        t = time.perf_counter()
        result = measure(data, att, corpus, config)
        result.summary["injection"]["examples_copied_sentences"] = _copied_examples(data, flagged_ids, corpus)
        timings[f"measure:{label}"] = time.perf_counter() - t
        measured.append(result)
        attributions.append((data, att))

    summary = {
        "schema": SCHEMA,
        "config": config.to_dict(),
        "corpus": {**corpus.describe(), "boilerplate_source": boilerplate_source or _source(boilerplate)},
        "datasets": [{**m.summary, "documents": m.documents} for m in measured],
        "between_datasets": _between(measured, [d.n for d, _ in attributions], corpus),
    }
    result = AuditResult(summary, corpus, measured, config)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        names = ["attributions.jsonl", "audit.json", *(["report.html"] if report is not None else [])]
        with atomic_paths(*(out / name for name in names)) as tmps:
            t = time.perf_counter()
            _write_attributions(tmps[0], *attributions[0], corpus)
            timings["write"] = time.perf_counter() - t
            summary["timing_seconds"] = {k: round(v, 3) for k, v in timings.items()}
            tmps[1].write_text(json.dumps(summary, indent=1, ensure_ascii=False), encoding="utf-8")
            if report is not None:
                report(result, tmps[2])
    else:
        summary["timing_seconds"] = {k: round(v, 3) for k, v in timings.items()}
    return result


def _labels(paths: list[Path]) -> list[str]:
    stems = [p.stem for p in paths]
    return stems if len(set(stems)) == len(stems) else [f"{i}:{p}" for i, p in enumerate(paths)]


def _source(boilerplate: BoilerplateSpec) -> str:
    if boilerplate is None:
        return "none (markup hijack not measured)"
    return "callable" if callable(boilerplate) else "regions"


def _between(measured: list[Measured], sizes: list[int], corpus: CorpusIndex) -> dict | None:
    """Convergence between datasets: Jaccard of the content sentences covered by each one's first b questions,
    b = the smallest dataset's size."""
    if len(measured) < 2:
        return None
    budget = min(sizes)
    sets = {}
    for m in measured:
        rows, sents = m.covered_pairs
        sets[m.summary["name"]] = set(sents[rows < budget].tolist())
    out = M.pairwise_jaccard(sets)
    out.update({"budget_per_dataset": budget, "covered": {k: len(v) for k, v in sets.items()}})
    return out


def _copied_examples(data: EncodedDataset, flagged_ids: np.ndarray, corpus: CorpusIndex) -> list[dict]:
    rows = np.flatnonzero(data.copied_hit >= 0)[:5]
    return [
        {
            "line": int(data.lines[i]),
            "flagged_sentence": corpus.sentence_text(int(flagged_ids[data.copied_hit[i]])),
        }
        for i in rows
    ]


def _write_attributions(path: Path, data: EncodedDataset, att: Attribution, corpus: CorpusIndex) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(data.n):
            sents = att.sents[att.ptr[i] : att.ptr[i + 1]]
            row = {
                "line": int(data.lines[i]),
                "doc_id": corpus.doc_ids[att.doc[i]] if att.doc[i] >= 0 else None,
                "sentences": [[int(corpus.sent_start[s]), int(corpus.sent_end[s])] for s in sents],
                "score": None if np.isnan(att.score[i]) else round(float(att.score[i]), 4),
                "document_score": None if np.isnan(att.doc_score[i]) else round(float(att.doc_score[i]), 4),
                "method": METHODS[att.method[i]],
                "status": STATUS[att.status[i]],
            }
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
