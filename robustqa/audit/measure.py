"""All metrics of one attributed dataset, overall and per document (their meanings: docs/audit.md).

A row attributed to k sentences counts 1/k on each, so sentence counts sum to the attributed rows. Coverage,
concentration and positions are over content sentences (not boilerplate, with a letter or digit); rows on
boilerplate count towards markup hijack instead.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import groupby

import numpy as np
import scipy.sparse as sp

from ..specifics import invented, tokens_present
from ..specifics import tokens as specific_tokens
from . import metrics as M
from .attribution import METHODS, STATUS, Attribution
from .config import AuditConfig
from .corpus import CorpusIndex
from .duplicates import near_duplicates
from .encode import EncodedDataset


@dataclass
class Measured:
    """One dataset's audit: the JSON summary plus arrays the report draws."""

    summary: dict
    documents: dict[str, dict]
    sentence_weight: np.ndarray
    curve: np.ndarray
    position_counts: np.ndarray
    covered_pairs: tuple[np.ndarray, np.ndarray]  # (row, content sentence) in generation order


def measure(data: EncodedDataset, att: Attribution, corpus: CorpusIndex, config: AuditConfig) -> Measured:
    n, m = data.n, corpus.n_sentences
    rows = att.row_of_pairs()
    per_row = np.diff(att.ptr)
    weight = 1.0 / per_row[rows] if len(rows) else np.zeros(0)
    sentence_weight = np.bincount(att.sents, weights=weight, minlength=m)
    content = corpus.content
    attributed = att.attributed & (per_row > 0)

    # Rows' attributed span: its first sentence's start to its last sentence's end.
    span_rows = np.flatnonzero(per_row > 0)
    starts = np.minimum.reduceat(corpus.sent_start[att.sents], att.ptr[span_rows]) if len(span_rows) else []
    ends = np.maximum.reduceat(corpus.sent_end[att.sents], att.ptr[span_rows]) if len(span_rows) else []
    position = np.full(n, np.nan)
    if len(span_rows):
        lengths = np.maximum(corpus.doc_lengths[att.doc[span_rows]], 1)
        position[span_rows] = (np.asarray(starts) + np.asarray(ends)) / 2 / lengths

    boiler = _row_mean(corpus.boilerplate, att, rows, weight, n)
    instr = _row_mean(corpus.instruction_like, att, rows, weight, n)
    hijack_rows = attributed & (att.doc >= 0) & corpus.boilerplate_known[np.maximum(att.doc, 0)]
    grounded, checked = _groundedness(data, att, corpus, attributed)
    invented_summary, invented_rows = _invented_specifics(data, att, corpus, attributed)

    first = np.full(m, n, dtype=np.int64)
    if len(rows):
        np.minimum.at(first, att.sents, rows)
    curve = M.coverage_curve(first[content], int(content.sum()), n)
    pos_counts = M.histogram(position[attributed & ~np.isnan(position)], config.position_bins)
    sentence_mid = (corpus.sent_start + corpus.sent_end) / 2 / np.maximum(corpus.doc_lengths[corpus.sent_doc], 1)
    expected = M.histogram(sentence_mid[content], config.position_bins)
    dup = near_duplicates(data.questions, config.duplicate_threshold)

    summary = {
        "name": data.name,
        "path": data.path,
        "records": _records(data, att),
        "attribution": _attribution(att, attributed),
        "coverage": _coverage(curve, content, sentence_weight, att, corpus, config),
        "concentration": _concentration(sentence_weight[content]),
        "position": {
            "bins": config.position_bins,
            "question_counts": pos_counts.tolist(),
            "question_share": _norm(pos_counts),
            "content_sentence_share": _norm(expected),
            "mean": _mean(position[attributed]),
            "total_variation_from_content": M.total_variation(pos_counts, expected),
        },
        "convergence": {
            "by_seed_prompt": _convergence(data.seed_prompt, att, rows, content),
            "by_strategy": _convergence(data.strategy, att, rows, content),
        },
        "markup_hijack": {
            "measured_rows": int(hijack_rows.sum()),
            "hijacked": float(boiler[hijack_rows].sum()),
            "share": M.share(boiler[hijack_rows].sum(), hijack_rows.sum()),
        },
        "injection": _injection(data, att, attributed, instr, corpus),
        "groundedness": {
            "threshold": config.groundedness_threshold,
            "checked": int(checked.sum()),
            "supported": int((grounded[checked] >= config.groundedness_threshold).sum()),
            "share": M.share((grounded[checked] >= config.groundedness_threshold).sum(), checked.sum()),
            "mean_containment": _mean(grounded[checked]),
        },
        "invented_specifics": invented_summary,
        "self_answering": {
            "questions": int(data.self_answering.sum()),
            "share": M.share(int(data.self_answering.sum()), n),
            "examples": [{"question": q, "answer": a} for q, a in data.self_answering_examples],
        },
        "sources": {"question": _shares(data.question_source), "answer": _shares(data.answer_source)},
        "duplicates": {
            "threshold": config.duplicate_threshold,
            "pairs": dup.pairs,
            "questions_with_duplicate": dup.questions_with_duplicate,
            "share_with_duplicate": M.share(dup.questions_with_duplicate, n),
            "clusters": dup.clusters,
            "redundant_share": M.share(dup.redundant, n),
            "examples": [
                {
                    "a": data.questions[a],
                    "b": None if b < 0 else data.questions[b],
                    "cosine": round(s, 4),
                    "kind": "exact repeat" if b < 0 else "near duplicate",
                }
                for a, b, s in dup.examples
            ],
        },
    }
    documents = _per_document(
        data,
        att,
        corpus,
        config,
        sentence_weight,
        position=position,
        boiler=boiler,
        instr=instr,
        grounded=grounded,
        checked=checked,
        invented=invented_rows,
    )
    summary["coverage"].update(_document_saturation(documents, config))
    keep = content[att.sents] if len(att.sents) else np.zeros(0, dtype=bool)
    return Measured(summary, documents, sentence_weight, curve, pos_counts, (rows[keep], att.sents[keep]))


def _row_mean(flags: np.ndarray, att: Attribution, rows: np.ndarray, weight: np.ndarray, n: int) -> np.ndarray:
    """Per row: the share of its attributed sentences carrying `flags`."""
    return np.bincount(rows, weights=weight * flags[att.sents], minlength=n) if len(rows) else np.zeros(n)


def _groundedness(data, att: Attribution, corpus: CorpusIndex, attributed: np.ndarray):
    """Per row: the share of the answer's distinct content words found in its attributed sentences."""
    n = data.n
    rows = att.row_of_pairs()
    pairs = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, att.sents)), shape=(n, corpus.n_sentences))
    span_words = (pairs @ corpus.sent_bin).tocsr()
    span_words.data[:] = 1.0
    found = np.asarray(data.answer_words.multiply(span_words).sum(axis=1)).ravel()
    checked = attributed & (data.answer_distinct > 0)
    containment = np.where(checked, found / np.maximum(data.answer_distinct, 1), np.nan)
    return containment, checked


def _invented_specifics(data, att: Attribution, corpus: CorpusIndex, attributed: np.ndarray):
    """Answers naming a number or proper name that their document never mentions (robustqa.specifics): the
    fluent details a small model invents, which containment alone does not weigh. Returns the summary and,
    per row, whether its answer has one."""
    flags = np.zeros(data.n, dtype=bool)
    rows = np.flatnonzero(attributed & (att.doc >= 0))
    rows = rows[np.argsort(att.doc[rows], kind="stable")]
    with_specifics = with_invented = 0
    examples: list[dict] = []
    asking = [i for i in rows if data.answer_specifics[i]]
    # One document at a time: which of the tokens its answers name occur in it (a bounded scan of its text).
    for d, group in groupby(asking, key=lambda i: int(att.doc[i])):
        group = list(group)
        wanted = {t for i in group for word in data.answer_specifics[i] for t in specific_tokens(word)}
        present = tokens_present(corpus.documents[d].text, wanted)
        for i in group:
            with_specifics += 1
            missing = invented(list(data.answer_specifics[i]), present)
            if missing:
                with_invented += 1
                flags[i] = True
                examples.append({"line": int(data.lines[i]), "question": data.questions[i], "invented": missing[:5]})
    examples.sort(key=lambda e: e["line"])
    summary = {
        "checked": len(rows),
        "answers_with_specifics": with_specifics,
        "answers_with_invented": with_invented,
        "share": M.share(with_invented, len(rows)),
        "examples": examples[:5],
    }
    return summary, flags


def _records(data: EncodedDataset, att: Attribution) -> dict:
    status = Counter(STATUS[s] for s in att.status)
    return {
        "read": data.stats.rows,
        "audited": data.stats.audited,
        "skipped_rejected": data.stats.skipped_rejected,
        "attributed": int(status.pop("attributed", 0)),
        "unattributable": int(sum(status.values())),
        "unattributable_by_reason": dict(sorted(status.items())),
        "document_resolution": dict(sorted(data.resolution.items())),
    }


def _attribution(att: Attribution, attributed: np.ndarray) -> dict:
    methods = Counter(METHODS[x] for x in att.method[attributed])
    scored = attributed & (att.method >= 2)
    scores = att.score[scored]
    quantiles = np.quantile(scores, [0.1, 0.5, 0.9]).round(4).tolist() if len(scores) else None
    return {
        "by_method": dict(sorted(methods.items())),
        "retrieval_score_mean": _mean(scores),
        "retrieval_score_quantiles_10_50_90": quantiles,
        "sentences_per_row_mean": _mean(np.diff(att.ptr)[attributed]),
    }


def _coverage(curve, content, sentence_weight, att: Attribution, corpus: CorpusIndex, config: AuditConfig) -> dict:
    n_content = int(content.sum())
    covered = content & (sentence_weight > 0)
    window, gain = config.saturation_window, config.saturation_gain
    applicable = M.saturation_applicable(window, gain, n_content)
    docs_with = np.zeros(len(corpus.documents), dtype=bool)
    docs_with[corpus.sent_doc[covered]] = True
    has_content = np.bincount(corpus.sent_doc[content], minlength=len(corpus.documents)) > 0
    step = max(1, int(np.ceil((len(curve) - 1) / config.curve_points)))
    xs = list(range(0, len(curve), step))
    if xs[-1] != len(curve) - 1:
        xs.append(len(curve) - 1)
    return {
        "value": M.share(covered.sum(), n_content),
        "covered_sentences": int(covered.sum()),
        "content_sentences": n_content,
        "documents_covered": int(docs_with.sum()),
        "documents_with_content": int(has_content.sum()),
        "document_share_covered": M.share(docs_with.sum(), has_content.sum()),
        "saturation_point": M.saturation_point(curve, window, gain) if applicable else None,
        "saturation_applicable": applicable,
        "saturation_window": window,
        "saturation_gain": gain,
        "curve": {"questions": xs, "coverage": [round(float(curve[x]), 6) for x in xs]},
    }


def _document_saturation(documents: dict[str, dict], config: AuditConfig) -> dict:
    """How many documents got enough questions to judge saturation (`window` or more), how many saturated,
    and the median point among those."""
    judged = [e for e in documents.values() if e["questions"] >= config.saturation_window]
    points = [e["saturation_point"] for e in judged if e.get("saturation_point") is not None]
    return {
        "documents_judged_for_saturation": len(judged),
        "documents_saturated": len(points),
        "document_saturation_median": float(np.median(points)) if points else None,
    }


def _concentration(counts: np.ndarray) -> dict:
    return {
        "gini": M.gini(counts),
        "normalised_entropy": M.normalised_entropy(counts),
        "top10_share": M.top_share(counts, 0.1),
        "questions_on_content": float(counts.sum()),
        "max_questions_on_one_sentence": float(counts.max()) if len(counts) else 0.0,
    }


def _convergence(labels: list[str | None], att: Attribution, rows: np.ndarray, content: np.ndarray) -> dict | None:
    """Jaccard of the content-sentence sets covered by each label's first b questions, b = the smallest
    label's count (equal budgets: a bigger group would otherwise cover more and look less convergent)."""
    names = sorted({x for x in labels if x is not None})
    if len(names) < 2:
        return None
    label_of = np.array([names.index(x) if x is not None else -1 for x in labels], dtype=np.int64)
    sizes = {name: int((label_of == i).sum()) for i, name in enumerate(names)}
    budget = min(sizes.values())
    rank = np.zeros(len(labels), dtype=np.int64)
    for i in range(len(names)):
        members = np.flatnonzero(label_of == i)
        rank[members] = np.arange(len(members))
    keep = content[att.sents] & (label_of[rows] >= 0) & (rank[rows] < budget)
    sets = {name: set(att.sents[keep & (label_of[rows] == i)].tolist()) for i, name in enumerate(names)}
    out = M.pairwise_jaccard(sets)
    out.update({"groups": sizes, "budget_per_group": budget, "covered": {k: len(v) for k, v in sets.items()}})
    return out


def _injection(data: EncodedDataset, att, attributed, instr, corpus: CorpusIndex) -> dict:
    n = data.n
    payload = data.payload_hit >= 0
    copied = data.copied_hit >= 0
    return {
        "instruction_like_sentences": int(corpus.instruction_like.sum()),
        "questions_on_instruction_spans": float(instr[attributed].sum()),
        "question_share_on_instruction_spans": M.share(instr[attributed].sum(), attributed.sum()),
        "answers_with_payload": int(payload.sum()),
        "answers_copying_flagged_spans": int(copied.sum()),
        "answers_carrying_injection": int((payload | copied).sum()),
        "answer_share_carrying_injection": M.share((payload | copied).sum(), n),
        "examples": [
            {"line": int(data.lines[i]), "question": data.questions[i]} for i in np.flatnonzero(payload | copied)[:10]
        ],
    }


def _per_document(data, att, corpus, config, sentence_weight, position, boiler, instr, grounded, checked, invented):
    n_docs = len(corpus.documents)
    content = corpus.content
    has_doc = att.doc >= 0
    attributed = att.attributed & (np.diff(att.ptr) > 0)
    doc_of = np.where(has_doc, att.doc, 0)
    questions = np.bincount(att.doc[has_doc], minlength=n_docs)
    n_attr = np.bincount(doc_of[attributed], minlength=n_docs)

    def per_doc_sum(values, mask):
        return np.bincount(doc_of[mask], weights=values[mask], minlength=n_docs)

    pos_sum = per_doc_sum(np.nan_to_num(position), attributed)
    hij = per_doc_sum(boiler, attributed)
    ins = per_doc_sum(instr, attributed)
    sup = per_doc_sum((np.nan_to_num(grounded) >= config.groundedness_threshold).astype(float), checked)
    n_checked = np.bincount(doc_of[checked], minlength=n_docs)
    invented_count = per_doc_sum(invented.astype(float), attributed & has_doc)
    carrying = per_doc_sum(((data.payload_hit >= 0) | (data.copied_hit >= 0)).astype(float), has_doc)

    # Each row's rank among its document's rows (generation order within the document): per-document curves.
    rows = att.row_of_pairs()
    doc_rank = np.zeros(data.n, dtype=np.int64)
    order = np.flatnonzero(has_doc)[np.argsort(att.doc[has_doc], kind="stable")]
    if len(order):
        starts = np.r_[0, np.flatnonzero(np.diff(att.doc[order])) + 1]
        doc_rank[order] = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    first = np.full(corpus.n_sentences, np.iinfo(np.int64).max, dtype=np.int64)
    if len(rows):
        np.minimum.at(first, att.sents, doc_rank[rows])

    out = {}
    for d, doc_id in enumerate(corpus.doc_ids):
        lo, hi = corpus.sent_ptr[d], corpus.sent_ptr[d + 1]
        mask = content[lo:hi]
        counts = sentence_weight[lo:hi][mask]
        n_content = int(mask.sum())
        entry = {
            "sentences": int(hi - lo),
            "content_sentences": n_content,
            "questions": int(questions[d]),
            "attributed": int(n_attr[d]),
            "coverage": M.share((counts > 0).sum(), n_content),
        }
        if n_attr[d]:
            curve = M.coverage_curve(first[lo:hi][mask], n_content, int(questions[d]))
            window, gain = config.saturation_window, config.saturation_gain
            applicable = M.saturation_applicable(window, gain, n_content)
            entry.update(
                {
                    "saturation_point": M.saturation_point(curve, window, gain) if applicable else None,
                    "gini": M.gini(counts),
                    "normalised_entropy": M.normalised_entropy(counts),
                    "top10_share": M.top_share(counts, 0.1),
                    "mean_position": float(pos_sum[d] / n_attr[d]),
                    "markup_hijack_share": float(hij[d] / n_attr[d]) if corpus.boilerplate_known[d] else None,
                    "instruction_span_share": float(ins[d] / n_attr[d]),
                    "groundedness": M.share(sup[d], n_checked[d]),
                    "invented_specifics": M.share(invented_count[d], n_attr[d]),
                    "answers_carrying_injection": int(carrying[d]),
                }
            )
        out[doc_id] = entry
    return out


def _norm(counts: np.ndarray) -> list[float]:
    total = counts.sum()
    return [round(float(c / total), 6) for c in counts] if total else [0.0] * len(counts)


def _shares(labels: list[str | None]) -> dict[str, dict[str, float]]:
    """Count and share of each label ("unrecorded" for rows that do not say), most common first."""
    counts = Counter(label or "unrecorded" for label in labels)
    total = max(sum(counts.values()), 1)
    return {k: {"count": v, "share": round(v / total, 4)} for k, v in counts.most_common()}


def _mean(values: np.ndarray) -> float | None:
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    return float(values.mean()) if len(values) else None
