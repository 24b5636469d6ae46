"""report.html: one self-contained page (figures as base64 PNGs, inline CSS, no scripts or external links).

Sections: the metrics side by side (one column per dataset), coverage curves, position histogram, Lorenz
curves, a heat map of questions along the busiest documents, those documents' text with each sentence shaded
by its question count, the per-document table, and examples of duplicates, injection carriers and answers
with invented specifics.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import figures
from .config import AuditConfig

if TYPE_CHECKING:
    from .run import AuditResult

MAX_TEXT_CHARS = 20_000
DOC_TABLE_ROWS = 40

# (label, path in a dataset summary, format)
TABLE_ROWS: list[tuple[str, tuple[str, ...], str]] = [
    ("records audited", ("records", "audited"), "d"),
    ("records attributed", ("records", "attributed"), "d"),
    ("records unattributable", ("records", "unattributable"), "d"),
    ("coverage", ("coverage", "value"), "p"),
    ("documents covered", ("coverage", "document_share_covered"), "p"),
    ("saturation point (questions)", ("coverage", "saturation_point"), "d"),
    ("documents judged for saturation", ("coverage", "documents_judged_for_saturation"), "d"),
    ("documents saturated", ("coverage", "documents_saturated"), "d"),
    ("median document saturation point", ("coverage", "document_saturation_median"), "d"),
    ("Gini (questions per sentence)", ("concentration", "gini"), "f"),
    ("normalised entropy", ("concentration", "normalised_entropy"), "f"),
    ("top-10% sentence share", ("concentration", "top10_share"), "p"),
    ("mean position", ("position", "mean"), "f"),
    ("position: total variation from content", ("position", "total_variation_from_content"), "f"),
    ("convergence by seed prompt (mean Jaccard)", ("convergence", "by_seed_prompt", "mean_jaccard"), "f"),
    ("convergence by strategy (mean Jaccard)", ("convergence", "by_strategy", "mean_jaccard"), "f"),
    ("markup hijack share", ("markup_hijack", "share"), "p"),
    ("questions on instruction-like spans", ("injection", "question_share_on_instruction_spans"), "p"),
    ("answers carrying an injection", ("injection", "answers_carrying_injection"), "d"),
    ("groundedness", ("groundedness", "share"), "p"),
    ("answers with invented specifics", ("invented_specifics", "share"), "p"),
    ("near-duplicate pairs", ("duplicates", "pairs"), "d"),
    ("questions with a near-duplicate", ("duplicates", "share_with_duplicate"), "p"),
    ("redundant share", ("duplicates", "redundant_share"), "p"),
]

CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}
th{background:#f3f3f3;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
.doc{border:1px solid #ccc;padding:1em;white-space:pre-wrap;font-size:13px;line-height:1.6;max-height:30em;
overflow:auto}.bp{color:#999;text-decoration:line-through}.inj{outline:2px solid #d33}
figure{margin:1em 0}img{max-width:100%}.legend span{padding:0 6px;margin-right:6px}
"""


def write_report(result: AuditResult, path: str | Path, config: AuditConfig | None = None) -> None:
    """The self-contained report.html of an audit result (its own config unless another is given), written whole
    or not at all: a full disk leaves the old report."""
    from robustqa.io.outputs import atomic_write_text

    atomic_write_text(path, render(result, config or result.config))


def render(result: AuditResult, config: AuditConfig) -> str:
    corpus, measured = result.corpus, result.measured
    main = measured[0]
    names = [m.summary["name"] for m in measured]
    title = _e(" vs ".join(names))  # a comparison names every dataset, not only the first
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>robustqa audit: {title}</title>"
        f"<style>{CSS}</style></head><body>",
        f"<h1>robustqa audit: {title}</h1>",
        _corpus_line(result.summary["corpus"]),
    ]

    parts.append("<h2>Metrics</h2>" + _metrics_table(measured))
    between = result.summary.get("between_datasets")
    if between:
        parts.append(_between_table(between))

    parts.append("<h2>Coverage curves</h2>")
    curves = {m.summary["name"]: m.curve for m in measured}
    saturation = {m.summary["name"]: m.summary["coverage"]["saturation_point"] for m in measured}
    parts.append(_figure(figures.coverage_curves(curves, saturation), "coverage curves"))

    parts.append("<h2>Position in the document</h2>")
    shares = {m.summary["name"]: m.summary["position"]["question_share"] for m in measured}
    content_share = main.summary["position"]["content_sentence_share"]
    parts.append(_figure(figures.position_histogram(shares, content_share), "position histogram"))

    parts.append("<h2>Concentration</h2>")
    lorenz = {m.summary["name"]: m.sentence_weight[corpus.content] for m in measured}
    parts.append(_figure(figures.lorenz_curves(lorenz), "Lorenz curves"))

    busiest = _busiest_documents(main, corpus, figures.HEATMAP_ROWS)
    if busiest:
        parts.append(f"<h2>Coverage heat map ({_e(names[0])})</h2>")
        parts.append(_figure(figures.coverage_heatmap(corpus, main.sentence_weight, busiest), "coverage heat map"))
        parts.append(_text_heatmaps(corpus, main.sentence_weight, busiest[: config.heatmap_documents]))

    parts.append(f"<h2>Documents ({_e(names[0])})</h2>" + _document_table(main.documents))
    parts.append(_examples(main.summary))
    parts.append("</body></html>")
    return "\n".join(parts)


def _e(value: Any) -> str:
    return html.escape(str(value))


def _figure(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f"<figure><img alt='{_e(alt)}' src='data:image/png;base64,{data}'></figure>"


def _get(summary: dict, path: tuple[str, ...]) -> Any:
    value: Any = summary
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _fmt(value: Any, kind: str) -> str:
    if value is None:
        return "n/a"
    if kind == "p":
        return f"{100 * value:.1f}%"
    if kind == "f":
        return f"{value:.3f}"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def _corpus_line(corpus: dict) -> str:
    return (
        f"<p>{corpus['documents']:,} documents, {corpus['characters']:,} characters, "
        f"{corpus['sentences']:,} sentences ({corpus['content_sentences']:,} content, "
        f"{corpus['boilerplate_sentences']:,} boilerplate; "
        f"boilerplate source: {_e(corpus['boilerplate_source'])}"
        f"), {corpus['instruction_like_sentences']:,} instruction-like sentences "
        f"(scorer: {_e(corpus['instruction_scorer'])}).</p>"
    )


def _metrics_table(measured) -> str:
    head = "".join(f"<th>{_e(m.summary['name'])}</th>" for m in measured)
    rows = []
    for label, path, kind in TABLE_ROWS:
        cells = "".join(f"<td class='n'>{_fmt(_get(m.summary, path), kind)}</td>" for m in measured)
        rows.append(f"<tr><th>{_e(label)}</th>{cells}</tr>")
    return f"<table><tr><th>metric</th>{head}</tr>{''.join(rows)}</table>"


def _between_table(between: dict) -> str:
    rows = "".join(
        f"<tr><td>{_e(p['a'])}</td><td>{_e(p['b'])}</td><td class='n'>{_fmt(p['jaccard'], 'f')}</td></tr>"
        for p in between["pairs"]
    )
    return (
        f"<h3>Convergence between datasets (first {between['budget_per_dataset']:,} questions each)</h3>"
        f"<table><tr><th>dataset</th><th>dataset</th><th>Jaccard of covered sentences</th></tr>{rows}</table>"
    )


def _busiest_documents(main, corpus, k: int) -> list[int]:
    questions = np.array([main.documents[d]["questions"] for d in corpus.doc_ids])
    order = np.argsort(-questions, kind="stable")
    return [int(d) for d in order[:k] if questions[d] > 0]


def _text_heatmaps(corpus, weight: np.ndarray, docs: list[int]) -> str:
    top = max(1e-9, max(float(weight[corpus.sent_ptr[d] : corpus.sent_ptr[d + 1]].max(initial=0)) for d in docs))
    out = [
        "<p class='legend'>Sentences shaded by question count (darkest = "
        f"{top:g} questions); <span class='bp'>struck through</span>: boilerplate; "
        "<span class='inj'>outlined</span>: instruction-like.</p>"
    ]
    for d in docs:
        text = corpus.documents[d].text
        lo, hi = corpus.sent_ptr[d], corpus.sent_ptr[d + 1]
        pieces, pos = [], 0
        for s in range(lo, hi):
            start, end = int(corpus.sent_start[s]), int(corpus.sent_end[s])
            if start >= MAX_TEXT_CHARS:
                break
            pieces.append(_e(text[pos:start]))
            alpha = weight[s] / top
            classes = [c for c, on in (("bp", corpus.boilerplate[s]), ("inj", corpus.instruction_like[s])) if on]
            style = f"background:rgba(230,80,0,{alpha:.2f})" if weight[s] > 0 else ""
            pieces.append(
                f"<span class='{' '.join(classes)}' style='{style}' title='{weight[s]:g} questions'>"
                f"{_e(text[start:end])}</span>"
            )
            pos = end
        cut = " (first 20,000 characters)" if len(text) > MAX_TEXT_CHARS else ""
        out.append(f"<h3>{_e(corpus.doc_ids[d])}{cut}</h3><div class='doc'>{''.join(pieces)}</div>")
    return "\n".join(out)


def _document_table(documents: dict[str, dict]) -> str:
    ranked = sorted(documents.items(), key=lambda kv: -kv[1]["questions"])
    columns = [
        ("questions", "d"),
        ("content_sentences", "d"),
        ("coverage", "p"),
        ("gini", "f"),
        ("top10_share", "p"),
        ("mean_position", "f"),
        ("markup_hijack_share", "p"),
        ("instruction_span_share", "p"),
        ("groundedness", "p"),
        ("saturation_point", "d"),
    ]
    head = "".join(f"<th>{_e(c.replace('_', ' '))}</th>" for c, _ in columns)
    rows = []
    for doc_id, entry in ranked[:DOC_TABLE_ROWS]:
        cells = "".join(f"<td class='n'>{_fmt(entry.get(c), k)}</td>" for c, k in columns)
        rows.append(f"<tr><td>{_e(doc_id)}</td>{cells}</tr>")
    without = sum(1 for e in documents.values() if e["questions"] == 0)
    note = f"<p>{len(documents):,} documents, {without:,} without any question"
    note += f"; the {DOC_TABLE_ROWS} with the most questions:</p>" if len(documents) > DOC_TABLE_ROWS else ".</p>"
    return f"{note}<table><tr><th>document</th>{head}</tr>{''.join(rows)}</table>"


def _examples(summary: dict) -> str:
    def number(value: Any) -> str:
        return f"<td class='n'>{value}</td>"

    def text(value: Any) -> str:
        return f"<td>{_e(value)}</td>"

    tables = [
        (
            "Duplicate questions (examples)",
            ("kind", "question", "near duplicate", "cosine"),
            [
                text(x["kind"]) + text(x["a"]) + text(x["b"] or "") + number(f"{x['cosine']:.3f}")
                for x in summary["duplicates"]["examples"]
            ],
        ),
        (
            "Answers carrying an injection (examples)",
            ("line", "question"),
            [number(x["line"]) + text(x["question"]) for x in summary["injection"]["examples"]],
        ),
        (
            "Answers with invented specifics (examples)",
            ("line", "question", "not in the document"),
            [
                number(x["line"]) + text(x["question"]) + text(", ".join(x["invented"]))
                for x in summary["invented_specifics"]["examples"]
            ],
        ),
    ]
    out = []
    for title, headers, rows in tables:
        if rows:
            head = "".join(f"<th>{h}</th>" for h in headers)
            body = "".join(f"<tr>{row}</tr>" for row in rows)
            out.append(f"<h2>{title}</h2><table><tr>{head}</tr>{body}</table>")
    return "\n".join(out)
